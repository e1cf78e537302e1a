//! The HTTP server loop. `axum::serve` has no timeouts at all, so a client that opens
//! connections and sends nothing (or a header line every few seconds) would keep them forever.
//! This loop accepts connections itself and serves each with hyper, adding what a public
//! server needs:
//!
//! - at most `per_address` TCP connections at once from one address: further ones are answered
//!   429 and closed. The slot lives in the connection's IO, so a connection upgraded to a
//!   WebSocket keeps holding it for as long as the socket is open;
//! - a head deadline: a request's line and headers must arrive within `header_read` of their
//!   first byte (for a new connection, of its opening), however slowly they trickle in;
//! - a keep-alive deadline: a kept-alive connection idle for `keep_alive` between requests is
//!   closed;
//! - graceful shutdown: stop accepting, let requests in progress finish (idle connections close
//!   at once), wait for them under `grace`.
//!
//! The loop serves a TCP listener, or a Unix socket for a proxy on the same host
//! (`CONFAB_LISTEN_UNIX`): a frame relayed over a Unix socket skips the kernel's TCP and IP
//! layers, which are most of what a fan-out delivery costs an origin on loopback
//! (docs/BENCHMARKS.md).
//!
//! Request bodies have their own deadline (`crate::http::body_deadline`), because uploads may
//! take longer than a JSON body. Upgraded connections (WebSockets) leave these deadlines behind:
//! the gateway's idle timeout and write timeout govern them.

use crate::limits::{KeyedLimit, Slot};
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// The limits the loop applies to every connection.
#[derive(Debug, Clone, Copy)]
pub struct ServerSettings {
    /// Time to send a request's head, from its first byte (or from the connection's opening).
    pub header_read: Duration,
    /// Time a kept-alive connection may stay idle between requests.
    pub keep_alive: Duration,
    /// TCP connections at once per peer address (0: no limit).
    pub per_address: usize,
    /// How long shutdown waits for requests in progress.
    pub grace: Duration,
}

/// What a connection over its address's limit is told before it is closed. Written with one
/// non-blocking write into the fresh socket's empty send buffer, so a refused client cannot
/// make the accept loop wait.
const REFUSAL: &[u8] = b"HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n\
retry-after: 5\r\nconnection: close\r\ncontent-length: 84\r\n\r\n\
{\"error\":{\"code\":\"rate_limited\",\"message\":\"too many connections from this address\"}}";

/// What the loop accepts connections from.
pub trait Listener: Send + 'static {
    /// An accepted connection.
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// The next connection and its peer's address.
    fn accept(&self) -> impl Future<Output = io::Result<(Self::Io, SocketAddr)>> + Send;

    /// Writes what fits of `bytes` without waiting (the refusal of a connection over its
    /// address's limit).
    fn try_write(io: &Self::Io, bytes: &[u8]);

    /// Sets a fresh connection's socket options.
    fn prepare(_io: &Self::Io) {}
}

impl Listener for TcpListener {
    type Io = TcpStream;

    async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        TcpListener::accept(self).await
    }

    fn try_write(io: &TcpStream, bytes: &[u8]) {
        let _sent = io.try_write(bytes);
    }

    fn prepare(io: &TcpStream) {
        if let Err(e) = io.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
    }
}

/// A Unix socket's peer is a process on this host (a proxy): its address is loopback's.
impl Listener for UnixListener {
    type Io = UnixStream;

    async fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (stream, _) = UnixListener::accept(self).await?;
        Ok((stream, SocketAddr::from(([127, 0, 0, 1], 0))))
    }

    fn try_write(io: &UnixStream, bytes: &[u8]) {
        let _sent = io.try_write(bytes);
    }
}

/// Serves `app` on `listener` until `stop` resolves, then shuts down gracefully.
pub async fn serve<L: Listener>(
    listener: L,
    app: Router,
    settings: ServerSettings,
    stop: impl Future<Output = ()>,
) -> io::Result<()> {
    let per_address = KeyedLimit::new(settings.per_address);
    let connections = TaskTracker::new();
    let closing = CancellationToken::new();
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was accepted:
                    // pause briefly rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(slot) = per_address.try_acquire(peer.ip()) else {
            metrics::counter!("confab_connections_refused_total", "why" => "per_address")
                .increment(1);
            // Dropping the stream closes it; whether the 429 got out does not matter.
            L::try_write(&stream, REFUSAL);
            continue;
        };
        L::prepare(&stream);
        connections.spawn(serve_connection(
            stream,
            peer,
            slot,
            app.clone(),
            settings,
            closing.child_token(),
        ));
    }
    drop(listener);
    closing.cancel();
    connections.close();
    if tokio::time::timeout(settings.grace, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!("some HTTP requests did not finish in time");
    }
    Ok(())
}

async fn serve_connection<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    stream: S,
    peer: SocketAddr,
    slot: Slot<IpAddr>,
    app: Router,
    settings: ServerSettings,
    closing: CancellationToken,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        stream,
        activity: activity.clone(),
        _slot: slot,
    });
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            let in_flight = activity.begin_request();
            let app = app.clone();
            async move {
                let response = app.oneshot(req.map(axum::body::Body::new)).await;
                // The request counts as in progress until its response body is written out.
                response.map(|r| {
                    r.map(|body| {
                        axum::body::Body::new(Tracked {
                            body,
                            _in_flight: in_flight,
                        })
                    })
                })
            }
        })
    };
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, service)
        .with_upgrades();
    tokio::pin!(conn);
    let mut shutting_down = false;
    loop {
        let deadline = activity.deadline(&settings);
        let expired = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, %peer, "HTTP connection ended with an error");
                }
                return;
            }
            _ = closing.cancelled(), if !shutting_down => {
                shutting_down = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = activity.changed.notified() => {}
            _ = expired => {
                if activity.deadline(&settings).is_some_and(|at| at <= Instant::now()) {
                    metrics::counter!("confab_connections_timed_out_total").increment(1);
                    tracing::debug!(%peer, "closing an HTTP connection past its deadline");
                    return;
                }
            }
        }
    }
}

/// What a connection is doing, for its deadlines. Atomics, because the IO updates it on
/// every read.
struct Activity {
    opened: Instant,
    /// Requests whose response has not been written out yet.
    in_flight: AtomicUsize,
    /// Requests begun so far.
    served: AtomicU64,
    /// When the first byte of the next request's head arrived (ms after `opened`, plus 1);
    /// 0 while none has.
    head_started: AtomicU64,
    /// When the last response was written out (ms after `opened`).
    idle_since: AtomicU64,
    /// Woken on every change, so the connection's task recomputes its deadline.
    changed: Notify,
}

impl Activity {
    fn new() -> Self {
        Self {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            served: AtomicU64::new(0),
            head_started: AtomicU64::new(0),
            idle_since: AtomicU64::new(0),
            changed: Notify::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn at(&self, ms: u64) -> Instant {
        self.opened + Duration::from_millis(ms)
    }

    /// Bytes arrived: while no request is in progress, they start the next one's head.
    fn on_bytes(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0
            && self.head_started.load(Ordering::Acquire) == 0
            && self
                .head_started
                .compare_exchange(0, self.now_ms() + 1, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            self.changed.notify_one();
        }
    }

    fn begin_request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.served.fetch_add(1, Ordering::AcqRel);
        self.head_started.store(0, Ordering::Release);
        self.changed.notify_one();
        InFlight(self.clone())
    }

    /// When the connection must be closed unless something happens first; `None` while a
    /// request is in progress.
    fn deadline(&self, s: &ServerSettings) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        match self.head_started.load(Ordering::Acquire) {
            0 if self.served.load(Ordering::Acquire) == 0 => Some(self.opened + s.header_read),
            0 => Some(self.at(self.idle_since.load(Ordering::Acquire)) + s.keep_alive),
            started => Some(self.at(started - 1) + s.header_read),
        }
    }
}

/// A request in progress; its drop (when the response body is done) makes the connection idle.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let a = &self.0;
        a.idle_since.store(a.now_ms(), Ordering::Release);
        a.in_flight.fetch_sub(1, Ordering::AcqRel);
        a.changed.notify_one();
    }
}

/// A response body that keeps its request in progress until it is dropped.
struct Tracked {
    body: axum::body::Body,
    _in_flight: InFlight,
}

impl http_body::Body for Tracked {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// The connection's socket, reporting reads to its [`Activity`] and holding its address slot.
struct Watched<S> {
    stream: S,
    activity: Arc<Activity>,
    _slot: Slot<IpAddr>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.on_bytes();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
