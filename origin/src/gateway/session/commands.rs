//! The client's commands. Each checks membership first (one check, [`Session::require_member`])
//! and answers a failure with an `error` frame whose `ref` names the request; nothing changes
//! when a command fails.

use super::{Session, Step, Transport};
use crate::broker::{Accepted, UserEvent};
use crate::error::ApiError;
use confab_shared::ids::{ClientMsgId, ClientRef, MessageId, RoomId};
use confab_shared::protocol::{AttachmentRef, ClientFrame, ServerFrame};
use std::time::Duration;
use tokio::time::Instant;

/// Most missed entries replayed by one `subscribe`; beyond that `recovered` is false and the
/// client reloads history over HTTP.
pub const RECOVERY_LIMIT: u32 = 500;
/// At most one `typing` per room per this long is relayed.
const TYPING_EVERY: Duration = Duration::from_secs(2);
/// At most one read receipt per room per this long is published (the last one is kept and
/// published when the time comes).
pub const RECEIPT_EVERY: Duration = Duration::from_secs(2);

impl<T: Transport> Session<T> {
    pub(super) async fn on_frame(&mut self, frame: ClientFrame) -> Step {
        if let Some(refused) = self.outside_scopes(&frame) {
            return self.reply_error(refused.0, refused.1).await;
        }
        match frame {
            ClientFrame::Subscribe { room, after_seq } => self.subscribe(room, after_seq).await,
            ClientFrame::Unsubscribe { room } => {
                self.end_subscription(room).await;
                Ok(())
            }
            ClientFrame::Send {
                room,
                client_msg_id,
                body,
                attachment,
                reply_to,
            } => {
                self.post(room, client_msg_id, body, attachment, reply_to)
                    .await
            }
            ClientFrame::React {
                room,
                message,
                emoji,
                on,
                reference,
            } => self.react(room, message, emoji, on, reference).await,
            ClientFrame::Edit {
                room,
                id,
                body,
                reference,
            } => self.change(room, id, reference, Some(body)).await,
            ClientFrame::Delete {
                room,
                id,
                reference,
            } => self.change(room, id, reference, None).await,
            ClientFrame::Typing { room } => self.typing(room).await,
            ClientFrame::Read { room, seq } => self.read(room, seq).await,
            ClientFrame::Visibility { visible } => {
                self.set_visible(visible).await;
                Ok(())
            }
            ClientFrame::Ping {} => {
                self.renew_attention().await;
                self.reply(&ServerFrame::Pong).await
            }
        }
    }

    /// An API token's socket may read (`subscribe`, `unsubscribe`, `read`, `typing`,
    /// `visibility`, `ping`)
    /// with `read`, and `send` with `post`; nothing else. The refusal and its `ref`.
    fn outside_scopes(&self, frame: &ClientFrame) -> Option<(ApiError, Option<String>)> {
        use confab_shared::admin::TokenScope;
        if self.access == crate::auth::Access::Session {
            return None;
        }
        let (scope, reference) = match frame {
            ClientFrame::Subscribe { room, .. } | ClientFrame::Unsubscribe { room } => {
                (Some(TokenScope::Read), Some(room.to_string()))
            }
            ClientFrame::Typing { .. }
            | ClientFrame::Read { .. }
            | ClientFrame::Visibility { .. }
            | ClientFrame::Ping {} => (Some(TokenScope::Read), None),
            ClientFrame::Send { client_msg_id, .. } => {
                (Some(TokenScope::Post), Some(client_msg_id.to_string()))
            }
            ClientFrame::React { reference, .. }
            | ClientFrame::Edit { reference, .. }
            | ClientFrame::Delete { reference, .. } => (None, Some(reference.to_string())),
        };
        match scope {
            Some(scope) if self.access.allows(scope) => None,
            Some(_) => Some((
                ApiError::Forbidden("this token's scopes do not allow it"),
                reference,
            )),
            None => Some((
                ApiError::Forbidden("an API token cannot do this"),
                reference,
            )),
        }
    }

    /// `subscribe`: live entries from now on, after replaying those above `after_seq`.
    async fn subscribe(&mut self, room: RoomId, after_seq: Option<i64>) -> Step {
        let reference = Some(room.to_string());
        if let Err(e) = self.require_member(room).await {
            return self.reply_error(e, reference).await;
        }
        if after_seq.is_some_and(|s| s < 0) {
            let e = ApiError::Validation("after_seq must not be negative".into());
            return self.reply_error(e, reference).await;
        }
        let broker = self.state.broker.clone();
        // Live events must flow before recovery reads history, or an entry accepted in between
        // would be neither recovered nor delivered.
        if let Err(e) = broker.await_subscribed(room).await {
            return self.reply_error(e.into(), reference).await;
        }
        let (high, recovered) = match after_seq {
            Some(after) => match broker.recover(room, after, RECOVERY_LIMIT).await {
                Ok(recovery) => {
                    let mut high = after;
                    for event in recovery.events {
                        high = high.max(event.seq());
                        self.reply(&ServerFrame::Entry(event)).await?;
                    }
                    if recovery.complete {
                        (high, true)
                    } else {
                        // Live delivery resumes after the latest seq; the client reloads history.
                        (broker.last_seq(room).await.unwrap_or(high).max(high), false)
                    }
                }
                Err(e) => return self.reply_error(e.into(), reference).await,
            },
            None => match broker.last_seq(room).await {
                Ok(last) => (last, true),
                Err(e) => return self.reply_error(e.into(), reference).await,
            },
        };
        let Some(view) = self.rooms.get_mut(&room) else {
            return Ok(());
        };
        let entering = view.subscribed.is_none();
        view.subscribed = Some(high);
        if entering && self.visible {
            self.state
                .notifier
                .attention
                .set(self.user.id, room, self.conn, true)
                .await;
        }
        if entering && self.state.hub.enter(room, &self.user) {
            if let Err(e) = broker.set_presence(room, &self.user, true).await {
                tracing::warn!(error = ?e, "publishing presence failed");
            }
        }
        let online = broker.online(room).await.unwrap_or_default();
        self.reply(&ServerFrame::Subscribed {
            room,
            last_seq: high,
            recovered,
            online,
        })
        .await
    }

    /// `send`: a new message, acknowledged once durable.
    async fn post(
        &mut self,
        room: RoomId,
        client_msg_id: ClientMsgId,
        body: String,
        attachment: Option<AttachmentRef>,
        reply_to: Option<MessageId>,
    ) -> Step {
        let reference = ClientRef::from(client_msg_id.clone());
        if let Err(e) = self.require_member(room).await {
            return self.reply_error(e, Some(reference.to_string())).await;
        }
        if !self.reader.allow_change() {
            return self.rate_limited(Some(reference.to_string())).await;
        }
        let started = Instant::now();
        let post = crate::chat::Post {
            client_msg_id: client_msg_id.clone(),
            body: &body,
            attachment: attachment.as_ref(),
            reply_to,
            bot: matches!(self.access, crate::auth::Access::Token { bot: true, .. }),
        };
        let posted = crate::chat::post(&self.state, &self.user, room, post).await;
        metrics::histogram!("confab_broker_publish_seconds")
            .record(started.elapsed().as_secs_f64());
        let posted = posted.and_then(|a| match a.id {
            Some(id) => Ok((a, id)),
            None => Err(ApiError::Unavailable("unexpected broker answer")),
        });
        let answer = self
            .answer(room, reference, Some(client_msg_id), posted)
            .await;
        metrics::histogram!("confab_send_ack_seconds").record(started.elapsed().as_secs_f64());
        answer
    }

    /// `edit` (with the new body) or `delete` (without) of the user's own message.
    async fn change(
        &mut self,
        room: RoomId,
        id: MessageId,
        reference: ClientRef,
        body: Option<String>,
    ) -> Step {
        if let Err(e) = self.require_member(room).await {
            return self.reply_error(e, Some(reference.to_string())).await;
        }
        if !self.reader.allow_change() {
            return self.rate_limited(Some(reference.to_string())).await;
        }
        let (state, user) = (&self.state, &self.user);
        let changed = match body {
            Some(body) => crate::chat::edit(state, user, room, id, &body, reference.clone()).await,
            None => crate::chat::delete(state, user, room, id, reference.clone()).await,
        };
        self.answer(room, reference, None, changed.map(|a| (a, id)))
            .await
    }

    /// `react`: sets the user's reaction on a message.
    async fn react(
        &mut self,
        room: RoomId,
        message: MessageId,
        emoji: String,
        on: bool,
        reference: ClientRef,
    ) -> Step {
        if let Err(e) = self.require_member(room).await {
            return self.reply_error(e, Some(reference.to_string())).await;
        }
        if !self.reader.allow_change() {
            return self.rate_limited(Some(reference.to_string())).await;
        }
        let reacted = crate::chat::react(
            &self.state,
            &self.user,
            room,
            message,
            &emoji,
            on,
            reference.clone(),
        )
        .await;
        self.answer(room, reference, None, reacted.map(|a| (a, message)))
            .await
    }

    /// Acknowledges an accepted change (of the message `id`), or reports why it was refused.
    async fn answer(
        &mut self,
        room: RoomId,
        reference: ClientRef,
        client_msg_id: Option<ClientMsgId>,
        result: Result<(Accepted, MessageId), ApiError>,
    ) -> Step {
        match result {
            Ok((accepted, id)) => {
                self.reply(&ServerFrame::Ack {
                    room,
                    reference,
                    client_msg_id,
                    id: accepted.id.unwrap_or(id),
                    seq: accepted.seq,
                })
                .await
            }
            Err(e) => self.reply_error(e, Some(reference.to_string())).await,
        }
    }

    /// Publishes the read receipts that are due (see [`RECEIPT_EVERY`]).
    pub(super) async fn publish_receipts(&mut self) {
        for (room, seq) in self.rooms.due_receipts(Instant::now(), RECEIPT_EVERY) {
            crate::chat::publish_receipt(&self.state, &self.user, room, seq).await;
        }
    }

    /// `typing`: relayed to the room, stamped with this session's user, at most every 2 s.
    async fn typing(&mut self, room: RoomId) -> Step {
        if let Err(e) = self.require_member(room).await {
            return self.reply_error(e, Some(room.to_string())).await;
        }
        let now = Instant::now();
        let Some(view) = self.rooms.get_mut(&room) else {
            return Ok(());
        };
        if view
            .last_typing
            .is_some_and(|t| now.duration_since(t) < TYPING_EVERY)
        {
            return Ok(());
        }
        view.last_typing = Some(now);
        let frame = ServerFrame::Typing {
            room,
            user: self.user.clone(),
        };
        if let Err(e) = self.state.broker.publish_event(room, frame).await {
            tracing::warn!(error = ?e, "publishing typing failed");
        }
        Ok(())
    }

    /// `read`: moves the user's read marker forward; their other connections hear of it.
    async fn read(&mut self, room: RoomId, seq: i64) -> Step {
        let reference = Some(room.to_string());
        if let Err(e) = self.require_member(room).await {
            return self.reply_error(e, reference).await;
        }
        if seq < 0 {
            let e = ApiError::Validation("seq must not be negative".into());
            return self.reply_error(e, reference).await;
        }
        let store = self.state.store.clone();
        let marker = match store.mark_read(room, self.user.id, seq).await {
            Ok(m) => m,
            Err(e) => return self.reply_error(e.into(), reference).await,
        };
        let unread = store.unread(room, self.user.id).await.unwrap_or(0);
        let moved = match self.rooms.get_mut(&room) {
            Some(view) => {
                let moved = marker > view.last_read;
                view.last_read = marker;
                view.unread = unread;
                if moved {
                    view.receipt_pending = Some(marker);
                }
                moved
            }
            None => false,
        };
        if moved {
            self.publish_receipts().await;
            self.state.notifier.read(self.user.id, room, marker).await;
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
        Ok(())
    }
}
