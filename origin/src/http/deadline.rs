//! Request-body deadlines: a body must arrive whole within its time, counted from the request's
//! arrival, however slowly it trickles (a timeout between chunks would let one byte every few
//! seconds hold a connection forever). A late body fails with [`BodyTimeout`]; the handler
//! answers 400 and hyper closes the connection, since the body was never read to its end.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Sleep;

use crate::state::AppState;

/// Why a body read failed: it did not arrive in time.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTimeout;

/// Whether `e` (or anything in its source chain) is a [`BodyTimeout`].
pub fn is_body_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(err) = next {
        if err.is::<BodyTimeout>() {
            return true;
        }
        next = err.source();
    }
    false
}

/// How long a request's body may take: uploads get `CONFAB_UPLOAD_TIMEOUT_SECS`, everything
/// else `CONFAB_BODY_READ_TIMEOUT_SECS`.
fn allowance(state: &AppState, path: &str) -> Duration {
    let secs = if path == "/api/uploads" {
        state.config.upload_timeout_secs
    } else {
        state.config.body_read_timeout_secs
    };
    Duration::from_secs(secs)
}

/// Middleware: puts the request's body under its deadline.
pub async fn body_deadline(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let limit = allowance(&state, req.uri().path());
    let req = req.map(|body| Body::new(DeadlineBody::new(body, limit)));
    next.run(req).await
}

/// A body that fails with [`BodyTimeout`] once its deadline has passed.
struct DeadlineBody {
    body: Body,
    /// Created with the body (so the clock runs from the request's arrival); only polled while
    /// the body has nothing ready.
    deadline: Pin<Box<Sleep>>,
}

impl DeadlineBody {
    fn new(body: Body, limit: Duration) -> Self {
        Self {
            body,
            deadline: Box::pin(tokio::time::sleep(limit)),
        }
    }
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.body).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(axum::Error::new(BodyTimeout)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
