//! The connection's view of its rooms: which it is a member of (each one listened to in the
//! local fan-out), which of those the client has subscribed, up to which seq it has been
//! given entries, and its read state. And the one "must be a member" check every command
//! goes through.

use super::{Session, Transport};
use crate::error::ApiError;
use confab_shared::ids::RoomId;
use std::collections::HashMap;
use tokio::time::Instant;

/// The client's view of one member room.
pub struct RoomView {
    /// `Some(seq)` when subscribed: the highest log seq the client has been given.
    pub subscribed: Option<i64>,
    /// The user's read marker as this connection knows it.
    pub last_read: i64,
    /// Messages by others after the read marker.
    pub unread: i64,
    /// When this connection last relayed `typing` here.
    pub last_typing: Option<Instant>,
    /// When this connection last published the user's read receipt here, and the marker
    /// waiting to be published (receipts go out at most every couple of seconds).
    pub receipt_sent: Option<Instant>,
    pub receipt_pending: Option<i64>,
}

/// The member rooms of a connection.
#[derive(Default)]
pub struct Rooms(HashMap<RoomId, RoomView>);

impl Rooms {
    pub fn get(&self, room: &RoomId) -> Option<&RoomView> {
        self.0.get(room)
    }

    pub fn get_mut(&mut self, room: &RoomId) -> Option<&mut RoomView> {
        self.0.get_mut(room)
    }

    pub fn contains(&self, room: &RoomId) -> bool {
        self.0.contains_key(room)
    }

    /// The read receipts due now: held back ones whose room's last receipt is old enough.
    pub fn due_receipts(&mut self, now: Instant, every: std::time::Duration) -> Vec<(RoomId, i64)> {
        let mut due = Vec::new();
        for (room, view) in &mut self.0 {
            let ready = view
                .receipt_sent
                .is_none_or(|t| now.duration_since(t) >= every);
            if let (true, Some(seq)) = (ready, view.receipt_pending) {
                view.receipt_pending = None;
                view.receipt_sent = Some(now);
                due.push((*room, seq));
            }
        }
        due
    }
}

impl<T: Transport> Session<T> {
    /// Fails unless the user is a member of the room. A room not known to this connection
    /// (joined a moment ago, elsewhere) is looked up in the store and watched from now on.
    pub(super) async fn require_member(&mut self, room: RoomId) -> Result<(), ApiError> {
        if self.rooms.contains(&room) {
            return Ok(());
        }
        let store = self.state.store.clone();
        if !store.is_member(room, self.user.id).await? {
            return Err(ApiError::Forbidden("you are not a member of this room"));
        }
        let unread = store.unread(room, self.user.id).await.unwrap_or(0);
        self.watch(room, 0, unread);
        Ok(())
    }

    /// Starts listening to a member room (its activity, until subscribed).
    pub(super) fn watch(&mut self, room: RoomId, last_read: i64, unread: i64) {
        self.state.hub.listen(room, &self.mailbox);
        self.rooms.0.insert(
            room,
            RoomView {
                subscribed: None,
                last_read,
                unread,
                last_typing: None,
                receipt_sent: None,
                receipt_pending: None,
            },
        );
    }

    /// Ends the client's subscription of a room (it stays watched), and the user's presence
    /// there when this was their last connection in it here.
    pub(super) async fn end_subscription(&mut self, room: RoomId) {
        let was = self
            .rooms
            .get_mut(&room)
            .and_then(|v| v.subscribed.take())
            .is_some();
        if was && self.visible {
            self.state
                .notifier
                .attention
                .set(self.user.id, room, self.conn, false)
                .await;
        }
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

    /// Stops listening to a room the user is no longer a member of.
    pub(super) async fn unwatch(&mut self, room: RoomId) {
        self.end_subscription(room).await;
        if self.rooms.0.remove(&room).is_some() {
            self.state.hub.release(room, &self.mailbox);
        }
    }

    /// The rooms this connection has subscribed.
    fn subscribed_rooms(&self) -> Vec<RoomId> {
        self.rooms
            .0
            .iter()
            .filter(|(_, v)| v.subscribed.is_some())
            .map(|(room, _)| *room)
            .collect()
    }

    /// The tab became visible or hidden: its subscribed rooms are looked at, or no longer.
    pub(super) async fn set_visible(&mut self, visible: bool) {
        if visible == self.visible {
            return;
        }
        self.visible = visible;
        for room in self.subscribed_rooms() {
            self.state
                .notifier
                .attention
                .set(self.user.id, room, self.conn, visible)
                .await;
        }
    }

    /// Renews what this connection looks at (a client ping: it is still there).
    pub(super) async fn renew_attention(&mut self) {
        if self.visible {
            let rooms = self.subscribed_rooms();
            self.state
                .notifier
                .attention
                .renew(self.user.id, &rooms, self.conn)
                .await;
        }
    }

    /// Stops listening to every room (the connection is ending).
    pub(super) async fn leave_all(&mut self) {
        let rooms: Vec<RoomId> = self.rooms.0.keys().copied().collect();
        for room in rooms {
            self.unwatch(room).await;
        }
    }
}
