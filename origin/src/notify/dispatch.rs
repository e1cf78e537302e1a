//! Who gets what, and when. For a new message: the room's other members whose level notifies
//! it (`all`; `mentions` for a mention or any direct message; never `none`), who have a push
//! subscription, and who are not looking at the room. Per user and room at most one push per
//! coalescing window: the first goes at once, the rest of the window's messages are merged
//! into one push at its end (the newest message, with the count). Reading the room closes
//! what was shown. Every push goes to each of the user's subscriptions; one the push service
//! says is gone is deleted.

use super::attention::DynAttention;
use super::sender::{Outcome, PushSender};
use super::Job;
use crate::store::notify::{default_level, Recipient};
use crate::store::DynStore;
use confab_shared::conversation::RoomKind;
use confab_shared::ids::{MessageId, RoomId, UserId};
use confab_shared::notify::{excerpt, room_tag, PushPayload};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

/// Characters of a message shown in a push.
const EXCERPT_CHARS: usize = 140;
/// Pushes being sent at once, at most (each to all of one user's subscriptions).
const MAX_SENDING: usize = 64;
/// Jobs of the in-process queue handled together, at most.
const LOCAL_BATCH: usize = 64;

/// Acknowledges a queue entry when the last piece of work that came from it is done (dropped).
/// With the in-process queue there is nothing to acknowledge.
pub struct AckGuard(Option<(String, mpsc::Sender<String>)>);

impl AckGuard {
    pub fn none() -> Arc<Self> {
        Arc::new(Self(None))
    }

    pub fn new(id: String, acks: mpsc::Sender<String>) -> Arc<Self> {
        Arc::new(Self(Some((id, acks))))
    }
}

impl Drop for AckGuard {
    fn drop(&mut self) {
        if let Some((id, acks)) = self.0.take() {
            // A full ack channel leaves the entry pending: it is claimed again later and its
            // pushes repeated (at least once; the service worker ignores a repeat by its id).
            if acks.try_send(id).is_err() {
                tracing::warn!("a notification's acknowledgement was dropped");
            }
        }
    }
}

/// The newest message waiting for a user and room.
#[derive(Clone)]
struct Latest {
    message: MessageId,
    seq: i64,
    room_name: String,
    author: String,
    excerpt: Option<String>,
}

/// One user and room: what was sent and what waits.
#[derive(Default)]
struct Pending {
    /// Notified messages since the user last read the room.
    count: u32,
    mention: bool,
    last_sent: Option<Instant>,
    /// The message to push at the end of the window, if any.
    waiting: Option<Latest>,
    /// The queue entries merged into the waiting push.
    acks: Vec<Arc<AckGuard>>,
    /// Whether a push was shown since the last read (then reading closes it).
    shown: bool,
}

/// The dispatcher: one per process that sends (the embedded server, or each worker).
pub struct Dispatcher {
    store: DynStore,
    attention: DynAttention,
    sender: Arc<PushSender>,
    coalesce: Duration,
    /// Tiny critical sections, never held across an await.
    pending: Mutex<HashMap<(UserId, RoomId), Pending>>,
    sending: Arc<Semaphore>,
    tasks: TaskTracker,
}

impl Dispatcher {
    pub fn new(
        store: DynStore,
        attention: DynAttention,
        sender: Arc<PushSender>,
        coalesce: Duration,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            attention,
            sender,
            coalesce,
            pending: Mutex::new(HashMap::new()),
            sending: Arc::new(Semaphore::new(MAX_SENDING)),
            tasks: TaskTracker::new(),
        })
    }

    /// Drains the in-process queue until the server stops, then waits for the pushes in
    /// flight (those waiting for the end of their window included).
    pub async fn run_local(
        self: Arc<Self>,
        mut jobs: mpsc::Receiver<Job>,
        stop: tokio_util::sync::CancellationToken,
    ) {
        let mut batch = Vec::new();
        loop {
            tokio::select! {
                n = jobs.recv_many(&mut batch, LOCAL_BATCH) => {
                    if n == 0 {
                        break;
                    }
                    let batch = std::mem::take(&mut batch);
                    self.handle(batch.into_iter().map(|job| (job, AckGuard::none())).collect())
                        .await;
                }
                _ = stop.cancelled() => break,
            }
        }
        self.finish().await;
    }

    /// Waits for the pushes in flight and the waiting ones.
    pub async fn finish(&self) {
        self.tasks.close();
        self.tasks.wait().await;
    }

    /// Handles a batch of jobs; each one's `ack` is dropped when everything it caused is done.
    /// Who could be pushed to is read once for every room the batch's messages are in.
    pub async fn handle(self: &Arc<Self>, jobs: Vec<(Job, Arc<AckGuard>)>) {
        let mut rooms: Vec<RoomId> = jobs
            .iter()
            .filter_map(|(job, _)| match job {
                Job::Posted { room, .. } => Some(*room),
                Job::Read { .. } => None,
            })
            .collect();
        rooms.sort_unstable();
        rooms.dedup();
        let recipients = self.store.notify_recipients(&rooms).await.map(|found| {
            let mut by_room: HashMap<RoomId, Vec<Recipient>> = HashMap::new();
            for r in found {
                by_room.entry(r.room).or_default().push(r);
            }
            by_room
        });
        if let Err(e) = &recipients {
            tracing::warn!(error = %e, "reading who to notify failed");
        }
        for (job, ack) in jobs {
            crate::metrics::since_accepted("confab_push_queue_lag_seconds", job.queued_at());
            let result = match job {
                Job::Posted {
                    room,
                    seq,
                    message,
                    author,
                    body,
                    mentions,
                    ..
                } => match &recipients {
                    // Left unacknowledged below, like any job that failed.
                    Err(_) => Err(None),
                    Ok(by_room) => {
                        let latest = |room_name: String, previews: bool| Latest {
                            message,
                            seq,
                            room_name,
                            author: author.username.clone(),
                            excerpt: previews.then(|| excerpt(&body, EXCERPT_CHARS)),
                        };
                        let members = by_room.get(&room).map_or(&[][..], Vec::as_slice);
                        self.posted(room, author.id, members, &mentions, latest, &ack)
                            .await
                            .map_err(Some)
                    }
                },
                Job::Read { user, room, .. } => {
                    self.read(user, room, &ack).await;
                    Ok(())
                }
            };
            if let Err(e) = result {
                // The entry stays unacknowledged (Redis: claimed again later).
                if let Some(e) = e {
                    tracing::warn!(error = %e, "a notification job failed");
                }
                metrics::counter!("confab_push_failed_total", "why" => "store").increment(1);
                std::mem::forget(ack);
            }
        }
    }

    /// A new message: `members` are the room's members who could be pushed to.
    async fn posted(
        self: &Arc<Self>,
        room: RoomId,
        author: UserId,
        members: &[Recipient],
        mentions: &[UserId],
        latest: impl Fn(String, bool) -> Latest,
        ack: &Arc<AckGuard>,
    ) -> Result<(), crate::store::StoreError> {
        if members.iter().all(|r| r.user == author) {
            return Ok(());
        }
        let Some(record) = self.store.room(room).await? else {
            return Ok(());
        };
        let dm = record.kind == RoomKind::Dm;
        let room_name = if dm {
            String::new()
        } else {
            record.name.clone()
        };
        for r in members.iter().filter(|r| r.user != author) {
            let mention = dm || mentions.contains(&r.user);
            let level = r.level.unwrap_or(default_level(record.kind));
            if !level.notifies(mention) {
                continue;
            }
            if self.attention.looking(r.user, room).await {
                continue;
            }
            let mut l = latest(room_name.clone(), r.push_previews);
            if dm {
                l.room_name = l.author.clone();
            }
            self.offer(r.user, room, l, mention, ack.clone());
        }
        Ok(())
    }

    /// Sends at once, or merges into the push at the end of the window.
    fn offer(
        self: &Arc<Self>,
        user: UserId,
        room: RoomId,
        latest: Latest,
        mention: bool,
        ack: Arc<AckGuard>,
    ) {
        let now = Instant::now();
        let send_now = {
            let mut map = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            let p = map.entry((user, room)).or_default();
            p.count += 1;
            p.mention |= mention;
            let open = p
                .last_sent
                .is_none_or(|t| now.duration_since(t) >= self.coalesce);
            if open && p.waiting.is_none() {
                p.last_sent = Some(now);
                p.shown = true;
                Some(payload(room, &latest, p.count, p.mention))
            } else {
                let first = p.waiting.is_none();
                p.waiting = Some(latest);
                p.acks.push(ack.clone());
                metrics::counter!("confab_push_coalesced_total").increment(1);
                if first {
                    let due = p.last_sent.map_or(now, |t| t + self.coalesce);
                    let me = self.clone();
                    self.tasks.spawn(async move {
                        tokio::time::sleep_until(due).await;
                        me.flush(user, room).await;
                    });
                }
                None
            }
        };
        if let Some(payload) = send_now {
            self.spawn_send(user, payload, true, ack);
        }
    }

    /// The end of a window: push the newest waiting message, unless the user now looks at the
    /// room (or read it meanwhile, which removed the waiting push).
    async fn flush(self: &Arc<Self>, user: UserId, room: RoomId) {
        let taken = {
            let mut map = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            map.get_mut(&(user, room)).and_then(|p| {
                let latest = p.waiting.take()?;
                p.last_sent = Some(Instant::now());
                p.shown = true;
                Some((
                    payload(room, &latest, p.count, p.mention),
                    std::mem::take(&mut p.acks),
                ))
            })
        };
        let Some((payload, acks)) = taken else { return };
        if self.attention.looking(user, room).await {
            return;
        }
        // The merged entries are acknowledged when this push is done.
        let me = self.clone();
        let permits = self.sending.clone();
        self.tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            me.send_all(user, &payload, true).await;
            drop(acks);
        });
    }

    /// The user read the room: forget what waits, and close what was shown.
    async fn read(self: &Arc<Self>, user: UserId, room: RoomId, ack: &Arc<AckGuard>) {
        let shown = {
            let mut map = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            map.remove(&(user, room)).is_some_and(|p| p.shown)
        };
        if shown {
            let close = PushPayload::Close {
                id: uuid::Uuid::now_v7().to_string(),
                tag: room_tag(room),
                room,
            };
            self.spawn_send(user, close, false, ack.clone());
        }
    }

    fn spawn_send(
        self: &Arc<Self>,
        user: UserId,
        payload: PushPayload,
        high: bool,
        ack: Arc<AckGuard>,
    ) {
        let me = self.clone();
        let permits = self.sending.clone();
        self.tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            me.send_all(user, &payload, high).await;
            drop(ack);
        });
    }

    /// Sends one payload to every subscription of the user; deletes the gone ones.
    async fn send_all(&self, user: UserId, payload: &PushPayload, high: bool) {
        let subs = match self.store.push_subscriptions(user).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = ?e, "reading push subscriptions failed");
                metrics::counter!("confab_push_failed_total", "why" => "store").increment(1);
                return;
            }
        };
        let Ok(body) = serde_json::to_vec(payload) else {
            return;
        };
        let sends = subs.iter().map(|s| self.sender.send(s, &body, high));
        let outcomes = futures::future::join_all(sends).await;
        for (sub, outcome) in subs.iter().zip(outcomes) {
            match outcome {
                Outcome::Sent => metrics::counter!("confab_push_sent_total").increment(1),
                Outcome::Failed => {
                    metrics::counter!("confab_push_failed_total", "why" => "push").increment(1)
                }
                Outcome::Gone => {
                    metrics::counter!("confab_push_dropped_total", "why" => "gone").increment(1);
                    if let Err(e) = self.store.delete_push_endpoint(&sub.endpoint).await {
                        tracing::warn!(error = ?e, "deleting a gone push subscription failed");
                    }
                }
            }
        }
    }
}

fn payload(room: RoomId, l: &Latest, count: u32, mention: bool) -> PushPayload {
    PushPayload::Message {
        // The same message always has the same id: a repeated delivery is recognised.
        id: l.message.0.to_string(),
        tag: room_tag(room),
        room,
        room_name: l.room_name.clone(),
        author: l.author.clone(),
        excerpt: l.excerpt.clone(),
        message: l.message,
        seq: l.seq,
        count,
        mention,
    }
}
