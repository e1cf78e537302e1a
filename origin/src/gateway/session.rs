//! One WebSocket connection, from `ready` to close, in a single task.
//!
//! The task owns the socket and a [`Mailbox`] in the hub, which every room the user is a member
//! of fills with its events, and the user's own events too. A room is either *subscribed* (the
//! client sees its events) or *watched* (the client gets an `activity` counter bump per new
//! message, never content). The task wakes for three things only: mail, an inbound frame, a
//! timer tick.
//!
//! Slow consumers: writes to the socket are awaited under `write_timeout`; while the task
//! waits, its mailbox keeps filling. Once it holds `room_buffer` events, further events are not
//! queued but noted per room: the room is unsubscribed and the client is sent `resync {room}`,
//! so it subscribes again with `after_seq` and recovers from history. A write that blocks for
//! `write_timeout` drops the connection. Neither ever slows the room or grows memory.

use super::hub::{Batch, Delivery, DeliveryKind, Mail, Mailbox, UserEvent};
use crate::auth::AuthUser;
use crate::broker::{BrokerError, Outgoing};
use crate::state::AppState;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use confab_shared::domain::MessageBody;
use confab_shared::ids::{ClientMsgId, RoomId, SessionId};
use confab_shared::protocol::{AttachmentRef, ClientFrame, ServerFrame, UserPublic};
use confab_shared::ErrorCode;
use futures::task::AtomicWaker;
use futures::{FutureExt, SinkExt, StreamExt};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::future::Future;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;
use tokio::time::{Instant, Interval, MissedTickBehavior};

/// Most missed messages replayed by one `subscribe`; beyond that `recovered` is false and the
/// client reloads history over HTTP.
const RECOVERY_LIMIT: u32 = 500;
/// Rate-limit violations tolerated within [`STRIKE_WINDOW`] before the socket is closed.
const MAX_STRIKES: u32 = 20;
const STRIKE_WINDOW: Duration = Duration::from_secs(10);
/// At most one `typing` per room per this long is relayed.
const TYPING_EVERY: Duration = Duration::from_secs(2);
/// How often the server pings an otherwise quiet client.
const PING_EVERY: Duration = Duration::from_secs(25);

/// WebSocket close codes used here.
pub mod close {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    pub const INTERNAL: u16 = 1011;
}

/// What the loop does after handling one thing.
enum Flow {
    Continue,
    /// Close with this code and reason.
    Close(u16, &'static str),
    /// The peer is gone or unwritable: just drop the socket.
    Gone,
}

/// The client's view of one member room.
struct RoomView {
    /// `Some(seq)` when subscribed: the highest message seq the client has been given.
    subscribed: Option<i64>,
    /// The user's read marker as this connection knows it.
    last_read: i64,
    /// Messages by others after the read marker.
    unread: i64,
    last_typing: Option<Instant>,
}

/// The three things a session waits on.
const MAIL: u8 = 1;
const SOCKET: u8 = 2;
const TICK: u8 = 4;

/// Which of a session's sources woke it since they were last polled. Each source is polled
/// with its own waker, which sets its bit before waking the task, so a wake-up polls only the
/// sources that asked for it: a delivery costs one mailbox poll, not also a read attempt on
/// the socket and a look at the timer.
struct Woken {
    bits: AtomicU8,
    task: AtomicWaker,
}

struct SourceWaker {
    woken: Arc<Woken>,
    bit: u8,
}

impl Wake for SourceWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.bits.fetch_or(self.bit, Ordering::AcqRel);
        self.woken.task.wake();
    }
}

/// A session's sources and their wakers.
struct Wakeups {
    woken: Arc<Woken>,
    mail: Waker,
    socket: Waker,
    tick: Waker,
    /// Sources to poll at the next turn: woken ones, and ones that were ready last time (they
    /// may have more).
    due: u8,
    /// Turns in a row that were mail: after a few, a waiting inbound frame goes first, so a
    /// flood of mail cannot starve the client's own frames.
    mail_streak: u8,
}

impl Wakeups {
    fn new() -> Self {
        let woken = Arc::new(Woken {
            bits: AtomicU8::new(0),
            task: AtomicWaker::new(),
        });
        let waker = |bit| {
            Waker::from(Arc::new(SourceWaker {
                woken: woken.clone(),
                bit,
            }))
        };
        Self {
            mail: waker(MAIL),
            socket: waker(SOCKET),
            tick: waker(TICK),
            woken,
            due: MAIL | SOCKET | TICK,
            mail_streak: 0,
        }
    }
}

/// What woke the session.
enum Wakeup {
    Mail,
    Inbound(Option<Result<Message, axum::Error>>),
    Tick,
}

/// A live WebSocket session.
pub struct Session {
    state: AppState,
    user: UserPublic,
    session: SessionId,
    socket: WebSocket,
    mailbox: Arc<Mailbox>,
    /// What was last taken from the mailbox (kept for its allocation).
    mail: Batch,
    rooms: HashMap<RoomId, RoomView>,
    frames: DefaultDirectRateLimiter,
    sends: DefaultDirectRateLimiter,
    strikes: u32,
    strikes_since: Instant,
    last_inbound: Instant,
    frames_out: metrics::Counter,
    frames_in: metrics::Counter,
    wakeups: Wakeups,
    /// True while a burst of mail is answered with one flush (see `on_mail`).
    batching: bool,
    /// Frames queued during the current burst.
    batched: u64,
    /// Frames written but not yet added to `frames_out` (added at each tick and at the end:
    /// one shared counter update per connection per tick, not per frame).
    unreported: u64,
}

/// Completes a write to the socket, or gives up on the client after `limit`. The deadline (a
/// timer) is only set up when the write cannot complete at once.
async fn write_bounded(
    limit: Duration,
    write: impl Future<Output = Result<(), axum::Error>>,
) -> Flow {
    let mut write = std::pin::pin!(write);
    let done = match (&mut write).now_or_never() {
        Some(done) => done,
        None => match tokio::time::timeout(limit, write).await {
            Ok(done) => done,
            Err(_) => {
                metrics::counter!("confab_slow_client_drops_total").increment(1);
                tracing::info!("dropping a client that stopped reading");
                return Flow::Gone;
            }
        },
    };
    match done {
        Ok(()) => Flow::Continue,
        Err(_) => Flow::Gone,
    }
}

fn limiter(per_sec: u32, burst: u32) -> DefaultDirectRateLimiter {
    let per_sec = NonZeroU32::new(per_sec).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst).unwrap_or(per_sec);
    RateLimiter::direct(Quota::per_second(per_sec).allow_burst(burst))
}

fn error_frame(
    code: ErrorCode,
    message: impl Into<String>,
    reference: Option<String>,
) -> ServerFrame {
    ServerFrame::Error {
        code,
        message: message.into(),
        reference,
    }
}

impl Session {
    /// Runs the session until the client leaves, misbehaves, is revoked, or the server stops.
    pub async fn run(state: AppState, auth: AuthUser, socket: WebSocket) {
        let user = UserPublic {
            id: auth.id,
            username: auth.username,
        };
        let send_rate = state.config.send_rate;
        let frame_rate = state.config.frame_rate;
        let wakeups = Wakeups::new();
        let mut session = Session {
            mailbox: state.hub.connect(user.id, wakeups.mail.clone()),
            mail: Batch::default(),
            user: user.clone(),
            session: auth.session,
            socket,
            rooms: HashMap::new(),
            frames: limiter(frame_rate, frame_rate.saturating_mul(2)),
            sends: limiter(send_rate, send_rate.saturating_mul(2)),
            strikes: 0,
            strikes_since: Instant::now(),
            last_inbound: Instant::now(),
            frames_out: metrics::counter!("confab_ws_frames_out_total"),
            frames_in: metrics::counter!("confab_ws_frames_in_total"),
            wakeups,
            batching: false,
            batched: 0,
            unreported: 0,
            state,
        };
        let connections = metrics::gauge!("confab_ws_connections");
        connections.increment(1.0);
        let outcome = match session.state.store.member_rooms(user.id).await {
            Ok(rooms) => {
                for r in rooms {
                    session.watch(r.room, r.last_read_seq, r.unread);
                }
                session.event_loop().await
            }
            Err(e) => {
                tracing::error!(error = ?e, "loading member rooms failed");
                Flow::Close(close::INTERNAL, "server error")
            }
        };
        connections.decrement(1.0);
        session.frames_out.increment(session.unreported);
        session.leave_all().await;
        session.state.hub.disconnect(&session.mailbox);
        if let Flow::Close(code, reason) = outcome {
            let frame = Message::Close(Some(CloseFrame {
                code,
                reason: Utf8Bytes::from_static(reason),
            }));
            // The closing handshake: send our close, then read (and discard) until the peer's
            // close arrives, so frames still in flight are not answered with a TCP reset.
            // Best effort and bounded: the peer may already be gone.
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                if session.socket.send(frame).await.is_ok() {
                    while let Some(Ok(m)) = session.socket.recv().await {
                        if matches!(m, Message::Close(_)) {
                            break;
                        }
                    }
                }
            })
            .await;
        }
    }

    async fn event_loop(&mut self) -> Flow {
        let idle = self.state.config.idle_timeout();
        let mut tick = tokio::time::interval(
            (idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(5)),
        );
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut next_ping = Instant::now() + PING_EVERY.min(idle / 2);
        let revalidate = Duration::from_secs(self.state.config.revalidate_secs.max(1));
        let mut next_revalidate = Instant::now() + revalidate;

        let ready = ServerFrame::Ready {
            user: self.user.clone(),
            idle_timeout_ms: idle.as_millis() as i64,
        };
        if let flow @ (Flow::Close(..) | Flow::Gone) = self.send(&ready).await {
            return flow;
        }
        loop {
            let wakeup = std::future::poll_fn(|cx| self.poll_wakeup(cx, &mut tick)).await;
            let flow = match wakeup {
                Wakeup::Mail => self.on_mail().await,
                Wakeup::Inbound(inbound) => self.on_inbound(inbound).await,
                Wakeup::Tick => {
                    self.frames_out
                        .increment(std::mem::take(&mut self.unreported));
                    let now = Instant::now();
                    if now.duration_since(self.last_inbound) > idle {
                        Flow::Close(close::NORMAL, "idle timeout")
                    } else if now >= next_revalidate {
                        next_revalidate = now + revalidate;
                        self.revalidate().await
                    } else if now >= next_ping {
                        next_ping = now + PING_EVERY.min(idle / 2);
                        self.send_raw(Message::Ping(Default::default())).await
                    } else {
                        Flow::Continue
                    }
                }
            };
            match flow {
                Flow::Continue => {}
                other => return other,
            }
        }
    }

    /// Polls the sources that are due, mail first (a revocation or a leave applies before the
    /// next frame is read) unless mail has had several turns in a row.
    fn poll_wakeup(&mut self, cx: &mut Context<'_>, tick: &mut Interval) -> Poll<Wakeup> {
        let w = &mut self.wakeups;
        w.woken.task.register(cx.waker());
        w.due |= w.woken.bits.swap(0, Ordering::AcqRel);
        let order = if w.mail_streak >= 4 {
            [SOCKET, MAIL, TICK]
        } else {
            [MAIL, SOCKET, TICK]
        };
        for source in order {
            if w.due & source == 0 {
                continue;
            }
            w.due &= !source;
            let ready = match source {
                MAIL => match self.mailbox.take(&mut self.mail) {
                    true => Poll::Ready(Wakeup::Mail),
                    false => Poll::Pending,
                },
                SOCKET => self
                    .socket
                    .poll_next_unpin(&mut Context::from_waker(&w.socket))
                    .map(Wakeup::Inbound),
                _ => tick
                    .poll_tick(&mut Context::from_waker(&w.tick))
                    .map(|_| Wakeup::Tick),
            };
            if let Poll::Ready(wakeup) = ready {
                // Ready sources may have more: poll them again next turn.
                w.due |= source;
                w.mail_streak = if source == MAIL {
                    w.mail_streak.saturating_add(1)
                } else {
                    0
                };
                return Poll::Ready(wakeup);
            }
        }
        Poll::Pending
    }

    async fn on_inbound(&mut self, inbound: Option<Result<Message, axum::Error>>) -> Flow {
        match inbound {
            None => Flow::Gone,
            Some(Err(e)) => {
                let text = e.to_string();
                if text.contains("too long") || text.contains("Space limit") {
                    Flow::Close(close::TOO_BIG, "frame too large")
                } else {
                    Flow::Gone
                }
            }
            Some(Ok(message)) => {
                self.last_inbound = Instant::now();
                self.frames_in.increment(1);
                self.on_message(message).await
            }
        }
    }

    async fn send_raw(&mut self, message: Message) -> Flow {
        // While a burst of mail is being answered, frames are only queued in the write buffer;
        // `on_mail` writes them with one system call.
        let limit = self.write_limit();
        let flow = if self.batching {
            write_bounded(limit, self.socket.feed(message)).await
        } else {
            write_bounded(limit, self.socket.send(message)).await
        };
        if matches!(flow, Flow::Continue) {
            self.batched += u64::from(self.batching);
            self.unreported += 1;
        }
        flow
    }

    fn write_limit(&self) -> Duration {
        Duration::from_secs(self.state.config.write_timeout_secs.max(1))
    }

    /// Handles everything taken from the mailbox, in order, then flushes once: under load a
    /// connection gets several frames per write instead of one.
    async fn on_mail(&mut self) -> Flow {
        let mut batch = std::mem::take(&mut self.mail);
        self.batching = true;
        let flow = self.on_batch(&mut batch).await;
        self.batching = false;
        batch.mail.clear();
        self.mail = batch;
        if !matches!(flow, Flow::Continue) {
            return flow;
        }
        if std::mem::take(&mut self.batched) == 0 {
            return Flow::Continue;
        }
        write_bounded(self.write_limit(), self.socket.flush()).await
    }

    async fn on_batch(&mut self, batch: &mut Batch) -> Flow {
        if batch.closing {
            return Flow::Close(close::GOING_AWAY, "server shutting down");
        }
        // What fitted in the mailbox came before anything that did not.
        for mail in batch.mail.drain(..) {
            let flow = match mail {
                Mail::Room(room, delivery) => self.on_delivery(room, delivery).await,
                Mail::User(event) => self.on_user_event(&event).await,
            };
            if !matches!(flow, Flow::Continue) {
                return flow;
            }
        }
        for room in std::mem::take(&mut batch.missed_rooms) {
            if let flow @ (Flow::Close(..) | Flow::Gone) = self.on_missed(room).await {
                return flow;
            }
        }
        if batch.missed_user_events {
            // Missed user events may include a revocation: check now.
            return self.revalidate().await;
        }
        Flow::Continue
    }

    /// Events of `room` did not fit in the mailbox.
    async fn on_missed(&mut self, room: RoomId) -> Flow {
        let me = self.user.id;
        let Some(view) = self.rooms.get_mut(&room) else {
            return Flow::Continue;
        };
        if view.subscribed.is_some() {
            metrics::counter!("confab_resyncs_total").increment(1);
            tracing::info!(user = %me, %room, "slow consumer: resync");
            self.unsubscribe(room).await;
            return self.send(&ServerFrame::Resync { room }).await;
        }
        // Watched rooms only lose counter bumps; the next one carries the true count.
        view.unread = self
            .state
            .store
            .unread(room, me)
            .await
            .unwrap_or(view.unread);
        Flow::Continue
    }

    async fn send(&mut self, frame: &ServerFrame) -> Flow {
        self.send_raw(Message::Text(Utf8Bytes::from(frame.to_json())))
            .await
    }

    async fn send_error(
        &mut self,
        code: ErrorCode,
        message: impl Into<String>,
        reference: Option<String>,
    ) -> Flow {
        self.send(&error_frame(code, message, reference)).await
    }

    /// Counts a rate-limit violation; closes the socket when they keep coming.
    async fn strike(&mut self, reference: Option<String>) -> Flow {
        let now = Instant::now();
        if now.duration_since(self.strikes_since) > STRIKE_WINDOW {
            self.strikes = 0;
            self.strikes_since = now;
        }
        self.strikes += 1;
        if self.strikes > MAX_STRIKES {
            return Flow::Close(close::POLICY, "rate limit exceeded");
        }
        self.send_error(
            ErrorCode::RateLimited,
            "too many frames: slow down",
            reference,
        )
        .await
    }

    async fn on_message(&mut self, message: Message) -> Flow {
        let max = self.state.config.max_frame_bytes;
        match message {
            Message::Text(text) => {
                if text.len() > max {
                    return Flow::Close(close::TOO_BIG, "frame too large");
                }
                if self.frames.check().is_err() {
                    return self.strike(None).await;
                }
                match ClientFrame::decode(text.as_str()) {
                    Ok(frame) => self.on_frame(frame).await,
                    Err(e) => self.send_error(ErrorCode::BadRequest, e.0, None).await,
                }
            }
            Message::Binary(data) => {
                if data.len() > max {
                    return Flow::Close(close::TOO_BIG, "frame too large");
                }
                self.send_error(
                    ErrorCode::BadRequest,
                    "binary frames are not supported: send JSON text",
                    None,
                )
                .await
            }
            // Pongs only prove liveness; pings are answered by the WebSocket layer.
            Message::Ping(_) | Message::Pong(_) => Flow::Continue,
            Message::Close(_) => Flow::Gone,
        }
    }

    async fn on_frame(&mut self, frame: ClientFrame) -> Flow {
        match frame {
            ClientFrame::Subscribe { room, after_seq } => self.subscribe(room, after_seq).await,
            ClientFrame::Unsubscribe { room } => {
                self.unsubscribe(room).await;
                Flow::Continue
            }
            ClientFrame::Send {
                room,
                client_msg_id,
                body,
                attachment,
            } => {
                self.send_message(room, client_msg_id, body, attachment)
                    .await
            }
            ClientFrame::Typing { room } => self.typing(room).await,
            ClientFrame::Read { room, seq } => self.read(room, seq).await,
            ClientFrame::Ping {} => self.send(&ServerFrame::Pong).await,
        }
    }

    /// Whether the user is a member of the room, refreshing the local view from the store when
    /// the room is not known here yet (joined a moment ago, elsewhere).
    async fn is_member(&mut self, room: RoomId) -> Result<bool, Flow> {
        if self.rooms.contains_key(&room) {
            return Ok(true);
        }
        let store = &self.state.store;
        let member = store.is_member(room, self.user.id).await;
        match member {
            Ok(true) => {
                let unread = store.unread(room, self.user.id).await.unwrap_or(0);
                self.watch(room, 0, unread);
                Ok(true)
            }
            Ok(false) => Ok(false),
            Err(e) => {
                tracing::error!(error = ?e, "membership check failed");
                Err(self
                    .send_error(
                        ErrorCode::Unavailable,
                        "could not check membership: retry",
                        Some(room.to_string()),
                    )
                    .await)
            }
        }
    }

    async fn forbidden(&mut self, reference: String) -> Flow {
        self.send_error(
            ErrorCode::Forbidden,
            "you are not a member of this room",
            Some(reference),
        )
        .await
    }

    async fn subscribe(&mut self, room: RoomId, after_seq: Option<i64>) -> Flow {
        match self.is_member(room).await {
            Ok(true) => {}
            Ok(false) => return self.forbidden(room.to_string()).await,
            Err(flow) => return flow,
        }
        if after_seq.is_some_and(|s| s < 0) {
            return self
                .send_error(
                    ErrorCode::Validation,
                    "after_seq must not be negative",
                    Some(room.to_string()),
                )
                .await;
        }
        let broker = self.state.broker.clone();
        // Live events must flow before recovery reads history, or a message accepted in between
        // would be neither recovered nor delivered.
        if let Err(e) = broker.await_subscribed(room).await {
            return self.broker_error(e, room.to_string()).await;
        }
        let (high, recovered) = match after_seq {
            Some(after) => match broker.recover(room, after, RECOVERY_LIMIT).await {
                Ok(recovery) => {
                    let mut high = after;
                    for m in recovery.messages {
                        high = high.max(m.seq);
                        if let flow @ (Flow::Close(..) | Flow::Gone) =
                            self.send(&ServerFrame::Message(m)).await
                        {
                            return flow;
                        }
                    }
                    if recovery.complete {
                        (high, true)
                    } else {
                        // Live delivery resumes after the latest seq; the client reloads history.
                        (broker.last_seq(room).await.unwrap_or(high).max(high), false)
                    }
                }
                Err(e) => return self.broker_error(e, room.to_string()).await,
            },
            None => match broker.last_seq(room).await {
                Ok(last) => (last, true),
                Err(e) => return self.broker_error(e, room.to_string()).await,
            },
        };
        let Some(view) = self.rooms.get_mut(&room) else {
            return Flow::Continue;
        };
        let entering = view.subscribed.is_none();
        view.subscribed = Some(high);
        if entering && self.state.hub.enter(room, &self.user) {
            if let Err(e) = broker.set_presence(room, &self.user, true).await {
                tracing::warn!(error = ?e, "publishing presence failed");
            }
        }
        let online = broker.online(room).await.unwrap_or_default();
        self.send(&ServerFrame::Subscribed {
            room,
            last_seq: high,
            recovered,
            online,
        })
        .await
    }

    async fn unsubscribe(&mut self, room: RoomId) {
        let was = self
            .rooms
            .get_mut(&room)
            .and_then(|v| v.subscribed.take())
            .is_some();
        if was && self.state.hub.leave(room, self.user.id) {
            if let Err(e) = self
                .state
                .broker
                .set_presence(room, &self.user, false)
                .await
            {
                tracing::warn!(error = ?e, "publishing presence failed");
            }
        }
    }

    async fn broker_error(&mut self, e: BrokerError, reference: String) -> Flow {
        let message = match &e {
            BrokerError::Unavailable(why) => why.to_string(),
            BrokerError::Store(err) => {
                tracing::error!(error = ?err, "broker store failure");
                "temporarily unavailable: retry".to_string()
            }
        };
        self.send_error(ErrorCode::Unavailable, message, Some(reference))
            .await
    }

    async fn send_message(
        &mut self,
        room: RoomId,
        client_msg_id: ClientMsgId,
        body: String,
        attachment: Option<AttachmentRef>,
    ) -> Flow {
        let reference = client_msg_id.to_string();
        match self.is_member(room).await {
            Ok(true) => {}
            Ok(false) => return self.forbidden(reference).await,
            Err(flow) => return flow,
        }
        if self.sends.check().is_err() {
            return self.strike(Some(reference)).await;
        }
        // With an attachment the text is a caption and may be empty.
        let parsed = match &attachment {
            Some(_) => MessageBody::parse_caption(&body),
            None => MessageBody::parse(&body),
        };
        let body = match parsed {
            Ok(body) => body,
            Err(e) => {
                return self
                    .send_error(ErrorCode::Validation, e.to_string(), Some(reference))
                    .await
            }
        };
        let attachment = match attachment {
            None => None,
            Some(r) => match self
                .state
                .uploads
                .resolve(&self.state.store, self.user.id, room, &r.0)
                .await
            {
                Ok(a) => Some(a),
                Err(
                    e @ (crate::files::UploadError::Store(_) | crate::files::UploadError::Files(_)),
                ) => {
                    tracing::error!(error = ?e, "resolving an attachment failed");
                    return self
                        .send_error(
                            ErrorCode::Unavailable,
                            "temporarily unavailable: retry",
                            Some(reference),
                        )
                        .await;
                }
                Err(e) => {
                    return self
                        .send_error(ErrorCode::Validation, e.to_string(), Some(reference))
                        .await
                }
            },
        };
        let started = Instant::now();
        let outgoing = Outgoing {
            room,
            author: self.user.clone(),
            client_msg_id: client_msg_id.clone(),
            body,
            attachment,
        };
        let published = self.state.broker.publish_message(outgoing).await;
        metrics::histogram!("confab_broker_publish_seconds")
            .record(started.elapsed().as_secs_f64());
        match published {
            Ok(accepted) => {
                let flow = self
                    .send(&ServerFrame::Ack {
                        room,
                        client_msg_id,
                        id: accepted.id,
                        seq: accepted.seq,
                    })
                    .await;
                metrics::histogram!("confab_send_ack_seconds")
                    .record(started.elapsed().as_secs_f64());
                flow
            }
            Err(e) => self.broker_error(e, reference).await,
        }
    }

    async fn typing(&mut self, room: RoomId) -> Flow {
        match self.is_member(room).await {
            Ok(true) => {}
            Ok(false) => return self.forbidden(room.to_string()).await,
            Err(flow) => return flow,
        }
        let now = Instant::now();
        let Some(view) = self.rooms.get_mut(&room) else {
            return Flow::Continue;
        };
        if view
            .last_typing
            .is_some_and(|t| now.duration_since(t) < TYPING_EVERY)
        {
            return Flow::Continue;
        }
        view.last_typing = Some(now);
        let frame = ServerFrame::Typing {
            room,
            user: self.user.clone(),
        };
        if let Err(e) = self.state.broker.publish_event(room, frame).await {
            tracing::warn!(error = ?e, "publishing typing failed");
        }
        Flow::Continue
    }

    async fn read(&mut self, room: RoomId, seq: i64) -> Flow {
        match self.is_member(room).await {
            Ok(true) => {}
            Ok(false) => return self.forbidden(room.to_string()).await,
            Err(flow) => return flow,
        }
        if seq < 0 {
            return self
                .send_error(
                    ErrorCode::Validation,
                    "seq must not be negative",
                    Some(room.to_string()),
                )
                .await;
        }
        let store = self.state.store.clone();
        let marker = match store.mark_read(room, self.user.id, seq).await {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(error = ?e, "saving read marker failed");
                return self
                    .send_error(
                        ErrorCode::Unavailable,
                        "could not save: retry",
                        Some(room.to_string()),
                    )
                    .await;
            }
        };
        let unread = store.unread(room, self.user.id).await.unwrap_or(0);
        if let Some(view) = self.rooms.get_mut(&room) {
            view.last_read = marker;
            view.unread = unread;
        }
        let event = UserEvent::ReadMarker { room, seq: marker };
        if let Err(e) = self
            .state
            .broker
            .publish_user_event(self.user.id, event)
            .await
        {
            tracing::warn!(error = ?e, "publishing read marker failed");
        }
        Flow::Continue
    }

    async fn on_delivery(&mut self, room: RoomId, delivery: Arc<Delivery>) -> Flow {
        let me = self.user.id;
        let Some(view) = self.rooms.get_mut(&room) else {
            return Flow::Continue;
        };
        match (&delivery.kind, view.subscribed) {
            (DeliveryKind::Resync, Some(_)) => {
                metrics::counter!("confab_resyncs_total").increment(1);
                self.unsubscribe(room).await;
                self.send(&ServerFrame::Resync { room }).await
            }
            (DeliveryKind::Resync, None) => Flow::Continue,
            (DeliveryKind::Message { seq, author }, Some(high)) => {
                if *seq <= high {
                    return Flow::Continue;
                }
                view.subscribed = Some(*seq);
                if author.id != me {
                    view.unread += 1;
                }
                self.send_raw(Message::Text(delivery.frame.clone())).await
            }
            (DeliveryKind::Event { from }, Some(_)) => {
                if *from == Some(me) {
                    return Flow::Continue;
                }
                self.send_raw(Message::Text(delivery.frame.clone())).await
            }
            (DeliveryKind::Message { seq, author }, None) => {
                if author.id == me {
                    return Flow::Continue;
                }
                view.unread += 1;
                let frame = ServerFrame::Activity {
                    room,
                    seq: *seq,
                    unread: view.unread,
                    author: author.clone(),
                };
                self.send(&frame).await
            }
            (DeliveryKind::Event { .. }, None) => Flow::Continue,
        }
    }

    async fn on_user_event(&mut self, event: &UserEvent) -> Flow {
        match event {
            UserEvent::SessionsRevoked(which) => {
                if which.is_none_or(|s| s == self.session) {
                    return Flow::Close(close::POLICY, "session ended");
                }
                Flow::Continue
            }
            UserEvent::Membership { room, member: true } => {
                if self.rooms.contains_key(room) {
                    return Flow::Continue;
                }
                let unread = self
                    .state
                    .store
                    .unread(*room, self.user.id)
                    .await
                    .unwrap_or(0);
                self.watch(*room, 0, unread);
                self.send(&ServerFrame::Membership {
                    room: *room,
                    member: true,
                })
                .await
            }
            UserEvent::Membership {
                room,
                member: false,
            } => {
                if !self.rooms.contains_key(room) {
                    return Flow::Continue;
                }
                self.unwatch(*room).await;
                self.send(&ServerFrame::Membership {
                    room: *room,
                    member: false,
                })
                .await
            }
            UserEvent::ReadMarker { room, seq } => {
                let stale = self.rooms.get(room).is_none_or(|v| v.last_read >= *seq);
                if stale {
                    return Flow::Continue;
                }
                let unread = self
                    .state
                    .store
                    .unread(*room, self.user.id)
                    .await
                    .unwrap_or(0);
                if let Some(view) = self.rooms.get_mut(room) {
                    view.last_read = *seq;
                    view.unread = unread;
                }
                Flow::Continue
            }
        }
    }

    async fn revalidate(&mut self) -> Flow {
        match self.state.store.session_active(self.session).await {
            Ok(true) => Flow::Continue,
            Ok(false) => Flow::Close(close::POLICY, "session ended"),
            Err(e) => {
                // Keep the socket through a database hiccup; the next check decides.
                tracing::warn!(error = ?e, "session revalidation failed");
                Flow::Continue
            }
        }
    }

    fn watch(&mut self, room: RoomId, last_read: i64, unread: i64) {
        self.state.hub.listen(room, &self.mailbox);
        self.rooms.insert(
            room,
            RoomView {
                subscribed: None,
                last_read,
                unread,
                last_typing: None,
            },
        );
    }

    async fn unwatch(&mut self, room: RoomId) {
        self.unsubscribe(room).await;
        if self.rooms.remove(&room).is_some() {
            self.state.hub.release(room, &self.mailbox);
        }
    }

    async fn leave_all(&mut self) {
        let rooms: Vec<RoomId> = self.rooms.keys().copied().collect();
        for room in rooms {
            self.unwatch(room).await;
        }
    }
}
