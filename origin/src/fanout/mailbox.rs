//! One connection's inbox: a bounded queue of what its session must handle next (room events
//! as shared [`Delivery`]s, its user's events) and one waker.
//!
//! The mailbox wakes its session only when mail arrives in an empty box: a box that holds
//! something has woken the session already, and the session takes everything at once
//! ([`Mailbox::take`]), so a burst of deliveries costs one wake-up and one write. A full box
//! does not take more: it notes the room whose event it refused (or that user events were
//! lost), and the session resyncs that room (or revalidates). A slow connection never makes
//! the sender wait and never grows memory.

use super::Delivery;
use confab_shared::ids::{RoomId, UserId};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;

/// Locks a mutex that guards only plain data: a panic elsewhere leaves nothing half-done that
/// matters, so keep serving.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What a session takes from its mailbox. `U` is the user-event type of the hub's owner.
#[derive(Debug)]
pub enum Mail<U> {
    /// An event of a room the connection listens to.
    Room(RoomId, Arc<Delivery>),
    /// An event of the connection's user.
    User(Arc<U>),
}

/// Everything waiting in a mailbox, taken at once by [`Mailbox::take`].
#[derive(Debug)]
pub struct Batch<U> {
    /// In arrival order.
    pub mail: VecDeque<Mail<U>>,
    /// Rooms whose events did not fit: the session must resync them.
    pub missed_rooms: Vec<RoomId>,
    /// User events did not fit: the session must revalidate.
    pub missed_user_events: bool,
    /// The server is shutting down.
    pub closing: bool,
}

impl<U> Default for Batch<U> {
    fn default() -> Self {
        Self {
            mail: VecDeque::new(),
            missed_rooms: Vec::new(),
            missed_user_events: false,
            closing: false,
        }
    }
}

/// Mail a handled batch keeps room for, at most. A bigger burst grows the queue for its own
/// time only: a parked connection does not keep the room its largest burst took.
const KEEP: usize = 4;

impl<U> Batch<U> {
    /// Empties a handled batch for reuse (the session hands it back to the mailbox at the
    /// next [`Mailbox::take`]), keeping its allocation only while it is small.
    pub fn recycle(&mut self) {
        self.mail.clear();
        if self.mail.capacity() > KEEP {
            self.mail = VecDeque::new();
        }
        self.missed_rooms = Vec::new();
        self.missed_user_events = false;
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.mail.is_empty()
            && self.missed_rooms.is_empty()
            && !self.missed_user_events
            && !self.closing
    }
}

/// One connection's inbox. Shared by the hub (which fills it) and the session (which drains it).
#[derive(Debug)]
pub struct Mailbox<U> {
    user: UserId,
    capacity: usize,
    waiting: Mutex<Batch<U>>,
    /// Wakes the session; called when mail arrives in an empty mailbox.
    waker: Waker,
}

impl<U> Mailbox<U> {
    pub(super) fn new(user: UserId, capacity: usize, waker: Waker) -> Self {
        Self {
            user,
            capacity: capacity.max(1),
            waiting: Mutex::new(Batch::default()),
            waker,
        }
    }

    /// The connection's user.
    pub fn user(&self) -> UserId {
        self.user
    }

    /// Queues `mail`, or, when the mailbox is full, notes what was lost with `missed`.
    fn offer(&self, mail: Mail<U>, missed: impl FnOnce(&mut Batch<U>)) {
        let mut waiting = lock(&self.waiting);
        let was_empty = waiting.is_empty();
        if waiting.mail.len() < self.capacity {
            waiting.mail.push_back(mail);
        } else {
            missed(&mut waiting);
        }
        drop(waiting);
        if was_empty {
            self.waker.wake_by_ref();
        }
    }

    /// Queues a room's event, or notes the room when full.
    pub(super) fn deliver(&self, room: RoomId, delivery: Arc<Delivery>) {
        self.offer(Mail::Room(room, delivery), |b| {
            if !b.missed_rooms.contains(&room) {
                b.missed_rooms.push(room);
            }
        });
    }

    /// Queues a user event, or notes that user events were lost when full.
    pub(super) fn deliver_user(&self, event: Arc<U>) {
        self.offer(Mail::User(event), |b| b.missed_user_events = true);
    }

    /// Tells the session the server is shutting down (for good).
    pub(super) fn close(&self) {
        lock(&self.waiting).closing = true;
        self.waker.wake_by_ref();
    }

    /// Moves everything waiting into `into` (replacing what it held); false when nothing
    /// waits (the mailbox's waker is called when something arrives). The two queues swap, so
    /// their allocations are reused.
    pub fn take(&self, into: &mut Batch<U>) -> bool {
        let mut waiting = lock(&self.waiting);
        if waiting.is_empty() {
            return false;
        }
        into.mail.clear();
        into.missed_rooms.clear();
        into.missed_user_events = false;
        std::mem::swap(&mut *waiting, into);
        // Shutting down is for good.
        waiting.closing = into.closing;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::super::{DeliveryKind, Frame};
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;
    use uuid::Uuid;

    struct Counter(AtomicUsize);
    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn delivery(seq: i64) -> Arc<Delivery> {
        Arc::new(Delivery {
            kind: DeliveryKind::Entry { seq },
            frame: Frame::from_static("{}"),
        })
    }

    #[test]
    fn wakes_only_when_mail_arrives_in_an_empty_box() {
        let wakes = Arc::new(Counter(AtomicUsize::new(0)));
        let mailbox: Mailbox<()> = Mailbox::new(UserId(Uuid::nil()), 8, Waker::from(wakes.clone()));
        let room = RoomId(Uuid::from_u128(1));
        for seq in 1..=5 {
            mailbox.deliver(room, delivery(seq));
        }
        assert_eq!(
            wakes.0.load(Ordering::SeqCst),
            1,
            "a burst costs one wake-up"
        );
        let mut batch = Batch::default();
        assert!(mailbox.take(&mut batch));
        assert_eq!(batch.mail.len(), 5);
        assert!(!mailbox.take(&mut batch), "taking empties the box");
        mailbox.deliver_user(Arc::new(()));
        assert_eq!(
            wakes.0.load(Ordering::SeqCst),
            2,
            "the empty box wakes again"
        );
    }

    #[test]
    fn a_full_box_notes_rooms_and_lost_user_events_once() {
        let mailbox: Mailbox<()> =
            Mailbox::new(UserId(Uuid::nil()), 2, futures::task::noop_waker());
        let (a, b) = (RoomId(Uuid::from_u128(1)), RoomId(Uuid::from_u128(2)));
        for seq in 1..=4 {
            mailbox.deliver(a, delivery(seq));
        }
        mailbox.deliver(b, delivery(1));
        mailbox.deliver(b, delivery(2));
        mailbox.deliver_user(Arc::new(()));
        let mut batch = Batch::default();
        assert!(mailbox.take(&mut batch));
        assert_eq!(batch.mail.len(), 2, "the capacity, no more");
        assert_eq!(batch.missed_rooms, vec![a, b], "each room once, in order");
        assert!(batch.missed_user_events);
        // The next take starts clean, and reuses the swapped allocations.
        mailbox.deliver(a, delivery(5));
        assert!(mailbox.take(&mut batch));
        assert_eq!(batch.mail.len(), 1);
        assert!(batch.missed_rooms.is_empty() && !batch.missed_user_events);
    }

    #[test]
    fn a_parked_connection_keeps_no_room_for_its_largest_burst() {
        let mailbox: Mailbox<()> =
            Mailbox::new(UserId(Uuid::nil()), 64, futures::task::noop_waker());
        let room = RoomId(Uuid::from_u128(1));
        let mut batch = Batch::default();
        // Bursts of 64, then 2: once handled and recycled, each side holds a small queue.
        for burst in [64, 2] {
            for seq in 1..=burst {
                mailbox.deliver(room, delivery(seq));
            }
            assert!(mailbox.take(&mut batch));
            assert_eq!(batch.mail.len(), burst as usize);
            batch.recycle();
            assert!(batch.mail.capacity() <= KEEP, "{}", batch.mail.capacity());
        }
        // The mailbox fills the queue the last take handed it: small too.
        mailbox.deliver(room, delivery(1));
        assert!(mailbox.take(&mut batch));
        assert!(batch.mail.capacity() <= KEEP);
    }

    #[test]
    fn closing_stays() {
        let mailbox: Mailbox<()> =
            Mailbox::new(UserId(Uuid::nil()), 2, futures::task::noop_waker());
        mailbox.close();
        let mut batch = Batch::default();
        assert!(mailbox.take(&mut batch) && batch.closing);
        assert!(mailbox.take(&mut batch) && batch.closing, "for good");
    }
}
