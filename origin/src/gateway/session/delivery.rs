//! What the mail means for this connection. Everything taken from the mailbox at once is
//! handled in order and written with one flush. Per delivery:
//!
//! - a subscribed room's log entries go out as they are (the shared bytes), skipping seqs the
//!   client was already given (during recovery); its ephemeral events too, except the user's
//!   own presence and typing;
//! - a watched room's new messages become `activity {room, seq, unread, author}` (never
//!   content), its other entries and events are not sent;
//! - a room whose events did not fit in the mailbox is unsubscribed and sent `resync {room}`
//!   (the client resubscribes with `after_seq` and recovers), so a slow connection never
//!   slows the room or grows memory;
//! - the user's events: revocation closes the socket, membership changes start or stop
//!   watching a room, read markers update the unread count.

use super::{close, Session, Step, Stop, Transport};
use crate::broker::UserEvent;
use crate::fanout::{Batch, Delivery, DeliveryKind, Mail};
use confab_shared::ids::RoomId;
use confab_shared::protocol::ServerFrame;
use std::sync::Arc;

impl<T: Transport> Session<T> {
    /// Handles everything taken from the mailbox, then flushes once.
    pub(super) async fn on_mail(&mut self) -> Step {
        let mut batch = std::mem::take(&mut self.mail);
        self.out.begin_burst();
        let handled = self.on_batch(&mut batch).await;
        batch.recycle();
        self.mail = batch;
        handled?;
        self.out.end_burst(&mut self.io).await
    }

    async fn on_batch(&mut self, batch: &mut Batch<UserEvent>) -> Step {
        if batch.closing {
            return Err(Stop::Close(close::GOING_AWAY, "server shutting down"));
        }
        // What fitted in the mailbox came before anything that did not.
        for mail in batch.mail.drain(..) {
            match mail {
                Mail::Room(room, delivery) => self.on_delivery(room, delivery).await?,
                Mail::User(event) => self.on_user_event(&event).await?,
            }
        }
        for room in std::mem::take(&mut batch.missed_rooms) {
            self.on_missed(room).await?;
        }
        if batch.missed_user_events {
            // Missed user events may include a revocation: check now.
            self.revalidate();
        }
        Ok(())
    }

    async fn on_delivery(&mut self, room: RoomId, delivery: Arc<Delivery>) -> Step {
        let me = self.user.id;
        let Some(view) = self.rooms.get_mut(&room) else {
            return Ok(());
        };
        match (&delivery.kind, view.subscribed) {
            (DeliveryKind::Resync, Some(_)) => self.resync(room).await,
            (DeliveryKind::Message { seq, author, .. }, Some(high)) => {
                if *seq <= high {
                    return Ok(());
                }
                view.subscribed = Some(*seq);
                if author.id != me {
                    view.unread += 1;
                }
                self.out.shared(&mut self.io, &delivery.frame).await
            }
            (DeliveryKind::Entry { seq }, Some(high)) => {
                if *seq <= high {
                    return Ok(());
                }
                view.subscribed = Some(*seq);
                self.out.shared(&mut self.io, &delivery.frame).await
            }
            (DeliveryKind::Event { from }, Some(_)) => {
                if *from == Some(me) {
                    return Ok(());
                }
                self.out.shared(&mut self.io, &delivery.frame).await
            }
            (
                DeliveryKind::Message {
                    seq,
                    author,
                    mentions,
                },
                None,
            ) => {
                if author.id == me {
                    return Ok(());
                }
                view.unread += 1;
                let frame = ServerFrame::Activity {
                    room,
                    seq: *seq,
                    unread: view.unread,
                    author: author.clone(),
                    mention: mentions.contains(&me),
                };
                self.reply(&frame).await
            }
            (
                DeliveryKind::Resync | DeliveryKind::Entry { .. } | DeliveryKind::Event { .. },
                None,
            ) => Ok(()),
        }
    }

    /// Unsubscribes the room and tells the client to resubscribe with `after_seq`.
    async fn resync(&mut self, room: RoomId) -> Step {
        metrics::counter!("confab_resyncs_total").increment(1);
        self.end_subscription(room).await;
        self.reply(&ServerFrame::Resync { room }).await
    }

    /// Events of `room` did not fit in the mailbox.
    async fn on_missed(&mut self, room: RoomId) -> Step {
        let me = self.user.id;
        let Some(view) = self.rooms.get(&room) else {
            return Ok(());
        };
        if view.subscribed.is_some() {
            tracing::info!(user = %me, %room, "slow consumer: resync");
            return self.resync(room).await;
        }
        // Watched rooms only lose counter bumps; the next one carries the true count.
        let unread = self.state.store.unread(room, me).await;
        if let (Ok(unread), Some(view)) = (unread, self.rooms.get_mut(&room)) {
            view.unread = unread;
        }
        Ok(())
    }

    async fn on_user_event(&mut self, event: &UserEvent) -> Step {
        match event {
            UserEvent::SessionsRevoked(which) => {
                if which.is_none_or(|s| s == self.session) {
                    return Err(Stop::Close(close::POLICY, "session ended"));
                }
                Ok(())
            }
            UserEvent::Membership { room, member: true } => {
                if self.rooms.contains(room) {
                    return Ok(());
                }
                let unread = self
                    .state
                    .store
                    .unread(*room, self.user.id)
                    .await
                    .unwrap_or(0);
                self.watch(*room, 0, unread);
                self.reply(&ServerFrame::Membership {
                    room: *room,
                    member: true,
                })
                .await
            }
            UserEvent::Membership {
                room,
                member: false,
            } => {
                if !self.rooms.contains(room) {
                    return Ok(());
                }
                self.unwatch(*room).await;
                self.reply(&ServerFrame::Membership {
                    room: *room,
                    member: false,
                })
                .await
            }
            UserEvent::ReadMarker { room, seq } => {
                let stale = self.rooms.get(room).is_none_or(|v| v.last_read >= *seq);
                if stale {
                    return Ok(());
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
                Ok(())
            }
        }
    }
}
