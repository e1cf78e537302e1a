//! The local room hub: which rooms and users have live connections on this instance.
//!
//! Per room, one bounded `broadcast` channel carries every event as pre-serialized bytes
//! ([`Delivery`]), so an event is encoded once however many local connections receive it. A
//! connection that falls more than the channel's capacity behind gets `Lagged` and is told to
//! resync; it never makes the sender wait and never grows memory.
//!
//! Per user, a small broadcast carries [`UserEvent`]s (session revoked, membership changed, read
//! marker moved) to all that user's connections here.
//!
//! The maps sit behind one `std::sync::Mutex`: every critical section is a hash-map lookup or
//! insert, never an `.await`, so a blocking lock is cheaper than an async one.

use axum::extract::ws::Utf8Bytes;
use confab_shared::ids::{RoomId, SessionId, UserId};
use confab_shared::protocol::{ServerFrame, UserPublic};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{broadcast, Notify};

/// User events buffered per user; they are rare, so a small buffer is plenty.
const USER_BUFFER: usize = 32;

/// One event for a room's local connections, serialized once.
#[derive(Debug)]
pub struct Delivery {
    /// What it is, for the per-connection decisions (skip already-recovered messages, turn
    /// messages into `activity` for connections not subscribed).
    pub kind: DeliveryKind,
    /// The `ServerFrame` as JSON text, shared by every recipient.
    pub frame: Utf8Bytes,
}

/// The kind of a [`Delivery`].
#[derive(Debug)]
pub enum DeliveryKind {
    /// A new message.
    Message { seq: i64, author: UserPublic },
    /// This instance may have missed events of the room (its broker link was down): every
    /// subscribed connection must resync.
    Resync,
    /// Anything else for subscribers only (presence, typing, edits, deletions). `from` names
    /// the user whose own action it reports (presence, typing): it is not echoed back to them.
    Event { from: Option<UserId> },
}

impl Delivery {
    /// Serializes `frame` once for all recipients.
    pub fn new(kind: DeliveryKind, frame: &ServerFrame) -> Arc<Self> {
        Arc::new(Self {
            kind,
            frame: Utf8Bytes::from(frame.to_json()),
        })
    }

    /// A non-message event, serialized once.
    pub fn event(frame: &ServerFrame) -> Arc<Self> {
        let from = match frame {
            ServerFrame::Presence { user, .. } | ServerFrame::Typing { user, .. } => Some(user.id),
            _ => None,
        };
        Self::new(DeliveryKind::Event { from }, frame)
    }
}

/// Something that concerns every connection of one user.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum UserEvent {
    /// Sessions were revoked: one (`Some`) or all of the user's (`None`). Their sockets close.
    SessionsRevoked(Option<SessionId>),
    /// The user joined or left a room.
    Membership { room: RoomId, member: bool },
    /// The user's read marker in a room moved.
    ReadMarker { room: RoomId, seq: i64 },
}

struct LocalRoom {
    tx: broadcast::Sender<Arc<Delivery>>,
    /// Users with at least one connection subscribed here, with that connection count.
    present: HashMap<UserId, (UserPublic, u32)>,
}

#[derive(Default)]
struct Inner {
    rooms: HashMap<RoomId, LocalRoom>,
    users: HashMap<UserId, broadcast::Sender<Arc<UserEvent>>>,
}

/// The hub. Shared by the gateway (listen, enter, leave) and the broker (deliver).
pub struct RoomHub {
    inner: Mutex<Inner>,
    room_buffer: usize,
    /// Signalled whenever a room or user starts or stops being live here, so a broker that
    /// subscribes per room (Redis) can follow.
    changed: Notify,
}

impl RoomHub {
    /// A hub whose room channels buffer `room_buffer` events per connection.
    pub fn new(room_buffer: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            room_buffer: room_buffer.max(1),
            changed: Notify::new(),
        }
    }

    /// Resolves after the set of live rooms or users changes.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// The rooms with a listener or a present user here.
    pub fn live_rooms(&self) -> Vec<RoomId> {
        self.lock().rooms.keys().copied().collect()
    }

    /// The users with a connection here.
    pub fn live_users(&self) -> Vec<UserId> {
        self.lock().users.keys().copied().collect()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves only plain maps behind; keep serving.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts receiving a room's events. Call [`RoomHub::release`] after dropping the receiver.
    pub fn listen(&self, room: RoomId) -> broadcast::Receiver<Arc<Delivery>> {
        let mut inner = self.lock();
        let buffer = self.room_buffer;
        let fresh = !inner.rooms.contains_key(&room);
        let rx = inner
            .rooms
            .entry(room)
            .or_insert_with(|| LocalRoom {
                tx: broadcast::channel(buffer).0,
                present: HashMap::new(),
            })
            .tx
            .subscribe();
        drop(inner);
        if fresh {
            self.changed.notify_one();
        }
        rx
    }

    /// Forgets a room once nobody here listens to it any more.
    pub fn release(&self, room: RoomId) {
        let mut inner = self.lock();
        if let Some(r) = inner.rooms.get(&room) {
            if r.tx.receiver_count() == 0 && r.present.is_empty() {
                inner.rooms.remove(&room);
                drop(inner);
                self.changed.notify_one();
            }
        }
    }

    /// Tells every local listener of every room to resync (after a broker outage).
    pub fn resync_all(&self) {
        let inner = self.lock();
        for r in inner.rooms.values() {
            let _delivered = r.tx.send(Arc::new(Delivery {
                kind: DeliveryKind::Resync,
                frame: Utf8Bytes::from_static(""),
            }));
        }
    }

    /// Hands an event to every local listener of the room; returns how many got it.
    pub fn deliver(&self, room: RoomId, delivery: Arc<Delivery>) -> usize {
        let inner = self.lock();
        match inner.rooms.get(&room) {
            // An error only means nobody listens right now, which is fine for live events.
            Some(r) => r.tx.send(delivery).unwrap_or(0),
            None => 0,
        }
    }

    /// Whether any local connection listens to the room.
    pub fn is_local(&self, room: RoomId) -> bool {
        self.lock().rooms.contains_key(&room)
    }

    /// Counts a connection of `user` into the room; true when it is the user's first here.
    pub fn enter(&self, room: RoomId, user: &UserPublic) -> bool {
        let mut inner = self.lock();
        let buffer = self.room_buffer;
        let r = inner.rooms.entry(room).or_insert_with(|| LocalRoom {
            tx: broadcast::channel(buffer).0,
            present: HashMap::new(),
        });
        let entry = r
            .present
            .entry(user.id)
            .or_insert_with(|| (user.clone(), 0));
        entry.1 += 1;
        entry.1 == 1
    }

    /// Counts a connection of `user` out of the room; true when it was the user's last here.
    pub fn leave(&self, room: RoomId, user: UserId) -> bool {
        let mut inner = self.lock();
        let Some(r) = inner.rooms.get_mut(&room) else {
            return false;
        };
        let last = match r.present.get_mut(&user) {
            Some(entry) if entry.1 > 1 => {
                entry.1 -= 1;
                false
            }
            Some(_) => {
                r.present.remove(&user);
                true
            }
            None => false,
        };
        if r.tx.receiver_count() == 0 && r.present.is_empty() {
            inner.rooms.remove(&room);
            drop(inner);
            self.changed.notify_one();
        }
        last
    }

    /// The users with a connection subscribed to the room here.
    pub fn present(&self, room: RoomId) -> Vec<UserPublic> {
        let inner = self.lock();
        inner
            .rooms
            .get(&room)
            .map(|r| r.present.values().map(|(u, _)| u.clone()).collect())
            .unwrap_or_default()
    }

    /// Starts receiving a user's events. Call [`RoomHub::release_user`] after dropping it.
    pub fn listen_user(&self, user: UserId) -> broadcast::Receiver<Arc<UserEvent>> {
        let mut inner = self.lock();
        let fresh = !inner.users.contains_key(&user);
        let rx = inner
            .users
            .entry(user)
            .or_insert_with(|| broadcast::channel(USER_BUFFER).0)
            .subscribe();
        drop(inner);
        if fresh {
            self.changed.notify_one();
        }
        rx
    }

    /// Forgets a user once none of their connections is here.
    pub fn release_user(&self, user: UserId) {
        let mut inner = self.lock();
        if inner
            .users
            .get(&user)
            .is_some_and(|tx| tx.receiver_count() == 0)
        {
            inner.users.remove(&user);
            drop(inner);
            self.changed.notify_one();
        }
    }

    /// Hands an event to every local connection of the user.
    pub fn deliver_user(&self, user: UserId, event: UserEvent) {
        let inner = self.lock();
        if let Some(tx) = inner.users.get(&user) {
            // No receiver means the user has no connection here: nothing to tell.
            let _delivered = tx.send(Arc::new(event)).unwrap_or(0);
        }
    }

    /// How many rooms and users are live here (for metrics and tests).
    pub fn sizes(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.rooms.len(), inner.users.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn user(n: u128) -> UserPublic {
        UserPublic {
            id: UserId(Uuid::from_u128(n)),
            username: format!("user{n}"),
        }
    }

    #[test]
    fn presence_counts_transitions_only() {
        let hub = RoomHub::new(4);
        let room = RoomId(Uuid::from_u128(1));
        let alice = user(1);
        assert!(hub.enter(room, &alice));
        assert!(!hub.enter(room, &alice));
        assert!(!hub.leave(room, alice.id));
        assert!(hub.leave(room, alice.id));
        assert_eq!(hub.sizes().0, 0, "the room is forgotten once empty");
    }

    #[test]
    fn a_slow_listener_lags_instead_of_blocking() {
        let hub = RoomHub::new(2);
        let room = RoomId(Uuid::from_u128(1));
        let mut rx = hub.listen(room);
        for _ in 0..5 {
            hub.deliver(room, Delivery::event(&ServerFrame::Pong));
        }
        assert!(matches!(
            rx.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(3))
        ));
        drop(rx);
        hub.release(room);
        assert_eq!(hub.sizes().0, 0);
    }
}
