//! The local room hub: which rooms and users have live connections on this instance, and the
//! mailbox of each connection.
//!
//! A room keeps the mailboxes of its local listeners; delivering an event pushes one `Arc` into
//! each and wakes its session, so an event is encoded once however many connections receive it.
//!
//! The maps sit behind one `std::sync::Mutex`: every critical section is a hash-map lookup or
//! insert, never an `.await`, so a blocking lock is cheaper than an async one. A room's
//! listener list is copied on write, so delivering holds the lock only to clone one `Arc`.

use super::mailbox::{lock, Mailbox};
use super::{Delivery, DeliveryKind, Frame};
use confab_shared::ids::{RoomId, UserId};
use confab_shared::protocol::UserPublic;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use tokio::sync::Notify;

struct LocalRoom<U> {
    /// The mailboxes of the connections listening here; copied on write (see the module docs).
    listeners: Arc<Vec<Arc<Mailbox<U>>>>,
    /// Users with at least one connection subscribed here, with that connection count.
    present: HashMap<UserId, (UserPublic, u32)>,
}

impl<U> LocalRoom<U> {
    fn new() -> Self {
        Self {
            listeners: Arc::new(Vec::new()),
            present: HashMap::new(),
        }
    }

    fn is_unused(&self) -> bool {
        self.listeners.is_empty() && self.present.is_empty()
    }
}

struct Inner<U> {
    rooms: HashMap<RoomId, LocalRoom<U>>,
    users: HashMap<UserId, Vec<Arc<Mailbox<U>>>>,
    /// Set by [`RoomHub::close_all`]: mailboxes opened afterwards start closed.
    closed: bool,
}

impl<U> Default for Inner<U> {
    fn default() -> Self {
        Self {
            rooms: HashMap::new(),
            users: HashMap::new(),
            closed: false,
        }
    }
}

/// The hub. Shared by the gateway (connect, listen, enter, leave) and the broker (deliver).
/// `U` is the type of the user events it carries (the broker's).
pub struct RoomHub<U> {
    inner: Mutex<Inner<U>>,
    mailbox_capacity: usize,
    /// Signalled whenever a room or user starts or stops being live here, so a broker that
    /// subscribes per room (Redis) can follow.
    changed: Notify,
}

fn remove<U>(list: &mut Vec<Arc<Mailbox<U>>>, mailbox: &Arc<Mailbox<U>>) {
    if let Some(i) = list.iter().position(|m| Arc::ptr_eq(m, mailbox)) {
        list.swap_remove(i);
    }
}

impl<U> RoomHub<U> {
    /// A hub whose mailboxes hold up to `mailbox_capacity` events each.
    pub fn new(mailbox_capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            mailbox_capacity: mailbox_capacity.max(1),
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

    fn lock(&self) -> MutexGuard<'_, Inner<U>> {
        lock(&self.inner)
    }

    /// Opens a mailbox for a new connection of `user`, woken through `waker`; it receives the
    /// user's events at once. Call [`RoomHub::disconnect`] when the connection ends.
    pub fn connect(&self, user: UserId, waker: Waker) -> Arc<Mailbox<U>> {
        let mailbox = Arc::new(Mailbox::new(user, self.mailbox_capacity, waker));
        let mut inner = self.lock();
        if inner.closed {
            mailbox.close();
        }
        let fresh = !inner.users.contains_key(&user);
        inner.users.entry(user).or_default().push(mailbox.clone());
        drop(inner);
        if fresh {
            self.changed.notify_one();
        }
        mailbox
    }

    /// Forgets a connection's mailbox (after it stopped listening to its rooms).
    pub fn disconnect(&self, mailbox: &Arc<Mailbox<U>>) {
        let mut inner = self.lock();
        let Some(list) = inner.users.get_mut(&mailbox.user()) else {
            return;
        };
        remove(list, mailbox);
        if list.is_empty() {
            inner.users.remove(&mailbox.user());
            drop(inner);
            self.changed.notify_one();
        }
    }

    /// Tells every connection, now and later, that the server is shutting down.
    pub fn close_all(&self) {
        let mut inner = self.lock();
        inner.closed = true;
        for mailbox in inner.users.values().flatten() {
            mailbox.close();
        }
    }

    /// Starts delivering a room's events to `mailbox`. Call [`RoomHub::release`] to stop.
    pub fn listen(&self, room: RoomId, mailbox: &Arc<Mailbox<U>>) {
        let mut inner = self.lock();
        let fresh = !inner.rooms.contains_key(&room);
        let r = inner.rooms.entry(room).or_insert_with(LocalRoom::new);
        Arc::make_mut(&mut r.listeners).push(mailbox.clone());
        drop(inner);
        if fresh {
            self.changed.notify_one();
        }
    }

    /// Stops delivering a room's events to `mailbox`; forgets the room once nobody here
    /// listens to it any more.
    pub fn release(&self, room: RoomId, mailbox: &Arc<Mailbox<U>>) {
        let mut inner = self.lock();
        if let Some(r) = inner.rooms.get_mut(&room) {
            remove(Arc::make_mut(&mut r.listeners), mailbox);
            if r.is_unused() {
                inner.rooms.remove(&room);
                drop(inner);
                self.changed.notify_one();
            }
        }
    }

    /// Tells every local listener of every room to resync (after a broker outage).
    pub fn resync_all(&self) {
        let resync = Arc::new(Delivery {
            kind: DeliveryKind::Resync,
            frame: Frame::default(),
        });
        let inner = self.lock();
        for (room, r) in &inner.rooms {
            for mailbox in r.listeners.iter() {
                mailbox.deliver(*room, resync.clone());
            }
        }
    }

    /// Hands an event to every local listener of the room; returns how many got it.
    pub fn deliver(&self, room: RoomId, delivery: Arc<Delivery>) -> usize {
        let listeners = match self.lock().rooms.get(&room) {
            Some(r) => r.listeners.clone(),
            None => return 0,
        };
        for mailbox in listeners.iter() {
            mailbox.deliver(room, delivery.clone());
        }
        listeners.len()
    }

    /// Whether any local connection listens to the room.
    pub fn is_local(&self, room: RoomId) -> bool {
        self.lock().rooms.contains_key(&room)
    }

    /// Counts a connection of `user` into the room; true when it is the user's first here.
    pub fn enter(&self, room: RoomId, user: &UserPublic) -> bool {
        let mut inner = self.lock();
        let r = inner.rooms.entry(room).or_insert_with(LocalRoom::new);
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
        if r.is_unused() {
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

    /// Hands an event to every local connection of the user.
    pub fn deliver_user(&self, user: UserId, event: U) {
        let inner = self.lock();
        let Some(mailboxes) = inner.users.get(&user) else {
            // The user has no connection here: nothing to tell.
            return;
        };
        let event = Arc::new(event);
        for mailbox in mailboxes {
            mailbox.deliver_user(event.clone());
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
    use super::super::{Batch, Mail};
    use super::*;
    use futures::task::noop_waker;
    use uuid::Uuid;

    /// The user-event type of these tests.
    #[derive(Debug, PartialEq)]
    struct Revoked;

    fn pong() -> Arc<Delivery> {
        Delivery::new(
            DeliveryKind::Event { from: None },
            r#"{"type":"pong"}"#.into(),
        )
    }

    fn user(n: u128) -> UserPublic {
        UserPublic {
            id: UserId(Uuid::from_u128(n)),
            username: format!("user{n}"),
        }
    }

    fn take(mailbox: &Mailbox<Revoked>) -> Option<Batch<Revoked>> {
        let mut batch = Batch::default();
        mailbox.take(&mut batch).then_some(batch)
    }

    #[test]
    fn presence_counts_transitions_only() {
        let hub: RoomHub<Revoked> = RoomHub::new(4);
        let room = RoomId(Uuid::from_u128(1));
        let alice = user(1);
        assert!(hub.enter(room, &alice));
        assert!(!hub.enter(room, &alice));
        assert!(!hub.leave(room, alice.id));
        assert!(hub.leave(room, alice.id));
        assert_eq!(hub.sizes().0, 0, "the room is forgotten once empty");
    }

    #[test]
    fn events_arrive_in_order_and_a_full_mailbox_notes_the_room_instead() {
        let hub: RoomHub<Revoked> = RoomHub::new(2);
        let (room, other) = (RoomId(Uuid::from_u128(1)), RoomId(Uuid::from_u128(2)));
        let alice = user(1);
        let mailbox = hub.connect(alice.id, noop_waker());
        hub.listen(room, &mailbox);
        hub.listen(other, &mailbox);
        assert!(take(&mailbox).is_none(), "nothing waits yet");
        for _ in 0..3 {
            assert_eq!(hub.deliver(room, pong()), 1);
        }
        hub.deliver(other, pong());
        hub.deliver_user(alice.id, Revoked);
        let batch = take(&mailbox).expect("mail waits");
        assert_eq!(
            batch.mail.len(),
            2,
            "the mailbox holds its capacity, no more"
        );
        assert!(batch
            .mail
            .iter()
            .all(|m| matches!(m, Mail::Room(r, _) if *r == room)));
        assert_eq!(batch.missed_rooms, vec![room, other]);
        assert!(batch.missed_user_events);
        assert!(!batch.closing);
        assert!(take(&mailbox).is_none(), "taking empties the mailbox");

        hub.deliver_user(alice.id, Revoked);
        let batch = take(&mailbox).expect("room again");
        assert!(matches!(batch.mail.front(), Some(Mail::User(_))));
        assert!(batch.missed_rooms.is_empty() && !batch.missed_user_events);

        hub.release(room, &mailbox);
        hub.release(other, &mailbox);
        hub.disconnect(&mailbox);
        assert_eq!(hub.sizes(), (0, 0), "rooms and users are forgotten");
        assert_eq!(hub.deliver(room, pong()), 0);
    }

    #[test]
    fn closing_reaches_every_mailbox_and_later_ones() {
        let hub: RoomHub<Revoked> = RoomHub::new(4);
        let before = hub.connect(user(1).id, noop_waker());
        hub.close_all();
        let after = hub.connect(user(2).id, noop_waker());
        for mailbox in [&before, &after] {
            assert!(take(mailbox).expect("closing is mail").closing);
            assert!(
                take(mailbox).expect("and stays").closing,
                "a closed mailbox stays closed"
            );
        }
    }
}
