//! One WebSocket connection, from `ready` to close, in a single task: a [`Session`].
//!
//! The task owns the transport and a mailbox in the local fan-out, which every room the user
//! is a member of fills with its events, and the user's own events too. A room is either
//! *subscribed* (the client gets its log entries and ephemeral events) or *watched* (the client
//! gets an `activity` counter bump per new message, never content).
//!
//! The session's code is split by job:
//! - this module: the connection's life (start, the event loop, timers, the one way to stop);
//! - [`wake`]: which of its three sources (mail, socket, timer) woke it;
//! - [`writer`]: writing with bounded time and buffers, one flush per burst;
//! - [`inbound`]: reading, size and rate limits, decoding into typed frames;
//! - [`commands`]: the client's commands (`subscribe`, `send`, `edit`, `delete`, ...);
//! - [`delivery`]: what each piece of mail means for this connection (filtering, activity,
//!   resync on overflow, the user's events);
//! - [`rooms`]: the connection's view of its rooms and the one "must be a member" check.
//!
//! A session is generic over its [`Transport`] (a stream and sink of WebSocket messages), so
//! tests drive it without a socket.

mod commands;
mod delivery;
mod inbound;
mod rooms;
mod wake;
mod writer;

use crate::auth::AuthUser;
use crate::broker::UserEvent;
use crate::error::ApiError;
use crate::fanout::{Batch, Mailbox};
use crate::state::AppState;
use confab_shared::ids::SessionId;
use confab_shared::protocol::{ServerFrame, UserPublic};
use confab_ws::{CloseFrame, Message, Utf8Bytes};
use futures::{Sink, SinkExt, Stream, StreamExt};
use inbound::{Inbound, Reader};
use rooms::Rooms;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Interval, MissedTickBehavior};
use wake::{Source, Wakeups};
use writer::Writer;

/// How often the server pings an otherwise quiet client.
const PING_EVERY: Duration = Duration::from_secs(25);
/// How long the closing handshake may take.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// WebSocket close codes used here.
pub mod close {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const PROTOCOL: u16 = 1002;
    pub const INVALID_TEXT: u16 = 1007;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    pub const INTERNAL: u16 = 1011;
}

/// What a session runs over: a stream and a sink of WebSocket messages (a
/// [`confab_ws::WebSocket`], or a pair of channels in tests).
pub trait Transport:
    Stream<Item = Result<Message, confab_ws::Error>>
    + Sink<Message, Error = confab_ws::Error>
    + Unpin
    + Send
{
}

impl<T> Transport for T where
    T: Stream<Item = Result<Message, confab_ws::Error>>
        + Sink<Message, Error = confab_ws::Error>
        + Unpin
        + Send
{
}

/// Why a session ends: the one way to stop, propagated with `?` from wherever it is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Close with this code and reason (and complete the closing handshake).
    Close(u16, &'static str),
    /// The peer is gone or unwritable: just drop the transport.
    Gone,
}

/// What one step of the session led to.
type Step = Result<(), Stop>;

/// What woke the session.
enum Wakeup {
    /// Mail was taken from the mailbox into `Session::mail`.
    Mail,
    /// The socket yielded this.
    Inbound(Option<Result<Message, confab_ws::Error>>),
    Tick,
}

/// The session's clock: one interval drives the idle timeout, the pings and revalidation.
struct Timers {
    tick: Interval,
    idle: Duration,
    ping_every: Duration,
    next_ping: Instant,
    revalidate: Duration,
    next_revalidate: Instant,
}

impl Timers {
    fn new(config: &crate::config::Config) -> Self {
        let idle = config.idle_timeout();
        let mut tick = tokio::time::interval(
            (idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(5)),
        );
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let ping_every = PING_EVERY.min(idle / 2);
        let revalidate = Duration::from_secs(config.revalidate_secs.max(1));
        Self {
            tick,
            idle,
            ping_every,
            next_ping: Instant::now() + ping_every,
            revalidate,
            next_revalidate: Instant::now() + revalidate,
        }
    }
}

/// A live WebSocket session.
pub struct Session<T> {
    state: AppState,
    user: UserPublic,
    session: SessionId,
    /// A signed-in user, or an API token limited to its scopes.
    access: crate::auth::Access,
    io: T,
    out: Writer,
    reader: Reader,
    mailbox: Arc<Mailbox<UserEvent>>,
    /// What was last taken from the mailbox (kept for its allocation).
    mail: Batch<UserEvent>,
    rooms: Rooms,
    wakeups: Wakeups,
    /// This connection's id in the attention registry (who looks at which room).
    conn: uuid::Uuid,
    /// Whether the client's tab is visible (`visibility` frame); tabs start visible.
    visible: bool,
}

impl<T: Transport> Session<T> {
    /// Runs the session until the client leaves, misbehaves, is revoked, or the server stops.
    ///
    /// The session is built here, before the future: the future captures it and works on it
    /// in place, so a parked connection's task holds one copy of its state, not also the
    /// arguments it was made from (an `async fn` keeps its arguments for its whole life).
    pub fn run(state: AppState, auth: AuthUser, io: T) -> impl Future<Output = ()> + Send {
        let mut session = Self::new(state, auth, io);
        async move {
            let connections = metrics::gauge!("confab_ws_connections");
            connections.increment(1.0);
            let outcome = session.start().await;
            connections.decrement(1.0);
            session.out.report();
            Box::pin(session.leave_all()).await;
            session.state.hub.disconnect(&session.mailbox);
            if let Err(Stop::Close(code, reason)) = outcome {
                Box::pin(session.close(code, reason)).await;
            }
        }
    }

    fn new(state: AppState, auth: AuthUser, io: T) -> Self {
        let wakeups = Wakeups::new();
        let config = state.config.clone();
        let user = auth.public();
        Session {
            mailbox: state.hub.connect(user.id, wakeups.mail_waker()),
            mail: Batch::default(),
            session: auth.session,
            access: auth.access,
            io,
            out: Writer::new(Duration::from_secs(config.write_timeout_secs.max(1))),
            reader: Reader::new(config.max_frame_bytes, config.frame_rate, config.send_rate),
            rooms: Rooms::default(),
            wakeups,
            conn: uuid::Uuid::new_v4(),
            visible: true,
            user,
            state,
        }
    }

    async fn start(&mut self) -> Step {
        match self.state.store.member_rooms(self.user.id).await {
            Ok(rooms) => {
                for r in rooms {
                    self.watch(r.room, r.last_read_seq, r.unread);
                }
            }
            Err(e) => {
                tracing::error!(error = ?e, "loading member rooms failed");
                return Err(Stop::Close(close::INTERNAL, "server error"));
            }
        }
        let mut timers = Timers::new(&self.state.config);
        // Boxed: held across an await, a `ServerFrame` (the size of its largest variant)
        // would be part of the session's future for the connection's life.
        let ready = Box::new(ServerFrame::Ready {
            user: self.user.clone(),
            idle_timeout_ms: timers.idle.as_millis() as i64,
        });
        Box::pin(self.reply(&ready)).await?;
        drop(ready);
        self.event_loop(&mut timers).await
    }

    /// Waits for a source, handles it, waits again. Each handler's future is boxed while it
    /// runs: what a parked connection keeps is only this loop's wait, not the largest state
    /// any command, delivery or tick could reach (several KiB; docs/BENCHMARKS.md).
    async fn event_loop(&mut self, timers: &mut Timers) -> Step {
        loop {
            let wakeup = std::future::poll_fn(|cx| self.poll_wakeup(cx, &mut timers.tick)).await;
            match wakeup {
                Wakeup::Mail => Box::pin(self.on_mail()).await?,
                Wakeup::Inbound(inbound) => Box::pin(self.on_inbound(inbound)).await?,
                Wakeup::Tick => Box::pin(self.on_tick(timers)).await?,
            }
        }
    }

    async fn on_tick(&mut self, timers: &mut Timers) -> Step {
        self.out.report();
        self.publish_receipts().await;
        let now = Instant::now();
        if now.duration_since(self.reader.last_inbound) > timers.idle {
            return Err(Stop::Close(close::NORMAL, "idle timeout"));
        } else if now >= timers.next_revalidate {
            timers.next_revalidate = now + timers.revalidate;
            self.revalidate();
        } else if now >= timers.next_ping {
            timers.next_ping = now + timers.ping_every;
            self.out
                .send(&mut self.io, Message::Ping(Default::default()))
                .await?;
        }
        Ok(())
    }

    /// Waits for the next source that has something: mail taken from the mailbox, a message
    /// read from the socket, or a tick.
    fn poll_wakeup(&mut self, cx: &mut Context<'_>, tick: &mut Interval) -> Poll<Wakeup> {
        let (mailbox, mail, io) = (&self.mailbox, &mut self.mail, &mut self.io);
        self.wakeups.poll(cx, |source, cx| match source {
            Source::Mail => match mailbox.take(mail) {
                true => Poll::Ready(Wakeup::Mail),
                false => Poll::Pending,
            },
            Source::Socket => io.poll_next_unpin(cx).map(Wakeup::Inbound),
            Source::Tick => tick.poll_tick(cx).map(|_| Wakeup::Tick),
        })
    }

    async fn on_inbound(&mut self, inbound: Option<Result<Message, confab_ws::Error>>) -> Step {
        match self.reader.read(inbound)? {
            Inbound::Frame(frame) => self.on_frame(frame).await,
            Inbound::Refused(e) => self.reply_error(e, None).await,
            Inbound::RateLimited => self.rate_limited(None).await,
            Inbound::Nothing => Ok(()),
        }
    }

    /// Writes one frame to the client.
    async fn reply(&mut self, frame: &ServerFrame) -> Step {
        self.out.frame(&mut self.io, frame).await
    }

    /// Tells the client a request failed (`reference`: its `client_msg_id`, `ref` or room).
    async fn reply_error(&mut self, e: ApiError, reference: Option<String>) -> Step {
        self.reply(&e.into_frame(reference)).await
    }

    /// Answers a request over a rate limit, and counts the strike.
    async fn rate_limited(&mut self, reference: Option<String>) -> Step {
        self.reader.strike()?;
        let e = ApiError::RateLimited {
            retry_after: Duration::from_secs(1),
        };
        self.reply_error(e, reference).await
    }

    /// Has the login session behind the connection checked (with the other sockets of this
    /// instance due about now, in one query); if it has ended, the answer comes as a
    /// `SessionsRevoked` event, as a revocation always does.
    fn revalidate(&self) {
        self.state.session_checks.ask(self.user.id, self.session);
    }

    /// The closing handshake: send our close, then read (and discard) until the peer's close
    /// arrives, so frames still in flight are not answered with a TCP reset. Best effort and
    /// bounded: the peer may already be gone.
    async fn close(&mut self, code: u16, reason: &'static str) {
        let frame = Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        }));
        let io = &mut self.io;
        let _timed_out = tokio::time::timeout(CLOSE_WAIT, async {
            if io.send(frame).await.is_ok() {
                while let Some(Ok(m)) = io.next().await {
                    if matches!(m, Message::Close(_)) {
                        break;
                    }
                }
            }
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::size_of;

    type Socket = confab_ws::WebSocket<hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>>;

    fn size_of_run() -> usize {
        fn returned<A, B, C, R>(_: impl FnOnce(A, B, C) -> R) -> usize {
            size_of::<R>()
        }
        returned(Session::<Socket>::run)
    }

    /// The session's state, which a parked connection's task holds inline, part by part
    /// (printed with `--nocapture`; docs/BENCHMARKS.md quotes the release figures).
    #[test]
    fn a_session_stays_small() {
        let parts = [
            ("AppState", size_of::<AppState>()),
            ("UserPublic", size_of::<UserPublic>()),
            ("Access", size_of::<crate::auth::Access>()),
            ("socket", size_of::<Socket>()),
            ("Writer", size_of::<Writer>()),
            ("Reader", size_of::<Reader>()),
            ("Batch", size_of::<Batch<UserEvent>>()),
            ("Rooms", size_of::<Rooms>()),
            ("Wakeups", size_of::<Wakeups>()),
            ("Timers", size_of::<Timers>()),
            ("ServerFrame", size_of::<ServerFrame>()),
        ];
        let session = size_of::<Session<Socket>>();
        fn returned<A, B, R>(_: impl FnOnce(A, B) -> R) -> usize {
            size_of::<R>()
        }
        fn returned1<A, R>(_: impl FnOnce(A) -> R) -> usize {
            size_of::<R>()
        }
        let futures = [
            ("start", returned1(Session::<Socket>::start)),
            ("event_loop", returned(Session::<Socket>::event_loop)),
            ("run", size_of_run()),
        ];
        println!("Session: {session} bytes; {parts:?}; futures {futures:?}");
        assert!(
            session <= 768,
            "the session grew to {session} bytes: {parts:?}"
        );
    }
}
