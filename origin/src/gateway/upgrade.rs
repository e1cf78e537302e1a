//! The WebSocket handshake: Origin allowlist → 403, authentication → 401, the global connection
//! cap → 503, the per-user and per-address caps (`crate::limits`) → 429, then a [`Session`] for
//! the socket.

use super::session::Session;
use crate::auth::{access_token, AuthUser};
use crate::error::ApiError;
use crate::peer::ClientAddr;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::header::ORIGIN;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::FutureExt;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use std::future::Future;

/// Upgrades to a WebSocket session after the checks, or answers 400 / 403 / 401 / 503 / 429.
pub async fn upgrade(
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    request: Request,
) -> Response {
    let (mut parts, _body) = request.into_parts();
    let accept = match confab_ws::handshake::accept(&parts.headers, state.config.ws_deflate) {
        Ok(accept) => accept,
        Err(e) => return ApiError::BadRequest(e.to_string()).into_response(),
    };
    let Some(on_upgrade) = parts.extensions.remove::<OnUpgrade>() else {
        return ApiError::BadRequest("this connection cannot be upgraded".into()).into_response();
    };
    // Browsers always send Origin on WebSocket handshakes: a foreign one is a cross-site
    // hijacking attempt. Clients that are not browsers send none and are not at that risk.
    if let Some(origin) = parts.headers.get(ORIGIN) {
        let allowed = origin.to_str().is_ok_and(|o| {
            state
                .allowed_origins
                .iter()
                .any(|a| a.eq_ignore_ascii_case(o))
        });
        if !allowed {
            return ApiError::Forbidden("origin not allowed").into_response();
        }
    }
    let Some(token) = access_token(&parts) else {
        return ApiError::Unauthorized.into_response();
    };
    let user = match AuthUser::from_token(&state.keys, &*state.store, &token).await {
        Ok(user) => user,
        Err(e) => return e.into_response(),
    };
    let Ok(permit) = state.connections.clone().try_acquire_owned() else {
        return ApiError::Unavailable("too many connections").into_response();
    };
    let slots = match state.socket_limits.admit(user.id, address) {
        Ok(slots) => slots,
        Err(e) => return e.into_response(),
    };
    // Frames a little over the limit are read and refused with 1009 by the session; the
    // transport cap (4x) bounds what is buffered at all, from a frame's header.
    let options = confab_ws::Options {
        deflate: accept.deflate,
        max_message: state.config.max_frame_bytes.saturating_mul(4),
        ..confab_ws::Options::new(confab_ws::Role::Server)
    };
    // Two tasks: this one waits for hyper to hand over the connection, then starts the
    // session's own task with the session built outside it, so a parked connection's task
    // holds the session once, not also what it was made from (docs/BENCHMARKS.md).
    tokio::spawn(async move {
        let io = match on_upgrade.await {
            Ok(upgraded) => TokioIo::new(upgraded),
            Err(e) => {
                tracing::debug!(error = %e, "the WebSocket upgrade did not complete");
                return;
            }
        };
        let tracker = state.sessions.clone();
        let socket = confab_ws::WebSocket::new(io, options, Vec::new());
        tokio::spawn(tracker.track_future(connection(state, user, socket, (permit, slots))));
    });
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    response.headers_mut().extend(accept.headers());
    response
}

/// The socket a session runs over once hyper hands the connection over.
type Socket = confab_ws::WebSocket<TokioIo<Upgraded>>;

/// A connection's task: its session, then the release of the slots it held (`held`: the
/// connection permit and the per-user and per-address slots). What a parked connection costs
/// is mostly this future's size (a tokio task stores it inline). A combinator, not an `async`
/// block: a block that awaits a future it captured stores that future twice.
fn connection<H: Send + 'static>(
    state: AppState,
    user: AuthUser,
    socket: Socket,
    held: H,
) -> impl Future<Output = ()> + Send {
    Session::run(state, user, socket).map(move |()| drop(held))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of what a function returns, from its type alone.
    fn returned_size<A, B, C, D, R>(_: impl FnOnce(A, B, C, D) -> R) -> usize {
        std::mem::size_of::<R>()
    }

    /// A parked connection's task holds this future inline: it guards the per-connection
    /// memory of docs/BENCHMARKS.md (1,104 bytes in a release build; a debug build keeps
    /// more temporaries across awaits, so it gets more room).
    #[test]
    fn a_connection_task_stays_small() {
        let size = returned_size(
            connection::<(
                tokio::sync::OwnedSemaphorePermit,
                crate::limits::SocketSlots,
            )>,
        );
        println!("connection task future: {size} bytes");
        let bound = if cfg!(debug_assertions) { 4608 } else { 1536 };
        assert!(
            size <= bound,
            "the connection's future grew to {size} bytes"
        );
    }
}
