//! The broker: appends changes to each room's log (assigning the room's next `seq` in the same
//! atomic step as the durable hand-off), fans entries and ephemeral events out to every
//! instance's [`Hub`], tracks presence, and replays what a reconnecting client missed.
//! [`memory::MemoryBroker`] is the embedded, in-process one; [`redis::RedisBroker`] the one for
//! many instances.
//!
//! The broker sits above the local fan-out ([`crate::fanout`]) and the store, and below the
//! gateway and the HTTP API, which both speak to it through [`Broker`] only.

pub mod memory;
pub mod redis;

use crate::fanout::{Delivery, DeliveryKind, RoomHub};
use crate::store::{LogEntry, StoreError};
use async_trait::async_trait;
use confab_shared::conversation::{Emoji, ReplyTo};
use confab_shared::domain::MessageBody;
use confab_shared::events::{
    MessageDeleted, MessageEdited, PinChanged, ReactionChanged, RoomEvent,
};
use confab_shared::ids::{ClientMsgId, ClientRef, MessageId, RoomId, SessionId, UserId};
use confab_shared::protocol::{Attachment, ChatMessage, ServerFrame, UserPublic};
use std::sync::Arc;

/// A shared handle to the broker in use.
pub type DynBroker = Arc<dyn Broker>;

/// This instance's local fan-out, carrying the broker's user events.
pub type Hub = RoomHub<UserEvent>;

/// Something that concerns every connection of one user, on every instance.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum UserEvent {
    /// Sessions were revoked: one (`Some`) or all of the user's (`None`). Their sockets close.
    SessionsRevoked(Option<SessionId>),
    /// The user joined or left a room.
    Membership { room: RoomId, member: bool },
    /// The user's read marker in a room moved.
    ReadMarker { room: RoomId, seq: i64 },
}

/// Broker failures. Every one is safe to retry: nothing was accepted.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// Temporarily unable to accept (queue full, backend down, shutting down).
    #[error("{0}")]
    Unavailable(&'static str),
    /// The store failed while loading state.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A change a member asks for, already checked (membership, authorship, body).
#[derive(Debug, Clone)]
pub struct Change {
    /// The room whose log it goes into.
    pub room: RoomId,
    /// Who asks.
    pub actor: UserPublic,
    /// The actor's id for the request (a message's `client_msg_id`); a resend with the same one
    /// gets the first answer and adds no entry.
    pub reference: ClientRef,
    /// What changes.
    pub kind: ChangeKind,
}

/// What a [`Change`] does.
#[derive(Debug, Clone)]
pub enum ChangeKind {
    /// Posts a new message (the reference is its `client_msg_id`).
    Post {
        client_msg_id: ClientMsgId,
        body: MessageBody,
        attachment: Option<Attachment>,
        /// The message it answers, quoted as it is now.
        reply_to: Option<ReplyTo>,
        /// The members it mentions.
        mentions: Vec<UserId>,
        /// Whether its author is a bot account.
        bot: bool,
    },
    /// Replaces the text of `message` (as it is now).
    Edit {
        message: ChatMessage,
        body: MessageBody,
    },
    /// Deletes `message` (as it is now).
    Delete { message: ChatMessage },
    /// Sets the actor's reaction with `emoji` on a message.
    React {
        message: MessageId,
        emoji: Emoji,
        on: bool,
    },
    /// Pins or unpins a message.
    Pin { message: MessageId, on: bool },
    /// Records a change the caller has made to the room's state already (membership, a role,
    /// the name or topic): the entry, seq 0.
    Record(RoomEvent),
}

impl Change {
    /// A new message; its `client_msg_id` is the request's reference.
    pub fn post(
        room: RoomId,
        author: UserPublic,
        client_msg_id: ClientMsgId,
        body: MessageBody,
        attachment: Option<Attachment>,
    ) -> Self {
        Self {
            room,
            actor: author,
            reference: client_msg_id.clone().into(),
            kind: ChangeKind::Post {
                client_msg_id,
                body,
                attachment,
                reply_to: None,
                mentions: Vec::new(),
                bot: false,
            },
        }
    }

    /// New text for `message` (as it is now).
    pub fn edit(
        actor: UserPublic,
        reference: ClientRef,
        message: ChatMessage,
        body: MessageBody,
    ) -> Self {
        Self {
            room: message.room,
            actor,
            reference,
            kind: ChangeKind::Edit { message, body },
        }
    }

    /// The deletion of `message` (as it is now).
    pub fn delete(actor: UserPublic, reference: ClientRef, message: ChatMessage) -> Self {
        Self {
            room: message.room,
            actor,
            reference,
            kind: ChangeKind::Delete { message },
        }
    }

    /// Whether this posts a message (posts and other changes are answered from separate
    /// namespaces: `client_msg_id`s and `ref`s).
    pub fn is_post(&self) -> bool {
        matches!(self.kind, ChangeKind::Post { .. })
    }

    /// The log entry this change makes, with seq 0 (the broker sets it), accepted `now`.
    pub fn entry(&self, now: i64) -> LogEntry {
        let room = self.room;
        let event = match &self.kind {
            ChangeKind::Post {
                client_msg_id,
                body,
                attachment,
                reply_to,
                mentions,
                bot,
            } => RoomEvent::Message(ChatMessage {
                id: MessageId(uuid::Uuid::now_v7()),
                room,
                seq: 0,
                author: self.actor.clone(),
                bot: *bot,
                body: body.as_str().to_owned(),
                client_msg_id: client_msg_id.clone(),
                attachment: attachment.clone(),
                created_at: now,
                edited_at: None,
                deleted_at: None,
                reply_to: reply_to.clone(),
                mentions: mentions.clone(),
                reactions: Vec::new(),
                pinned: false,
            }),
            ChangeKind::Edit { message, body } => RoomEvent::Edited(MessageEdited {
                room,
                seq: 0,
                id: message.id,
                body: body.as_str().to_owned(),
                edited_at: now,
            }),
            ChangeKind::Delete { message } => RoomEvent::Deleted(MessageDeleted {
                room,
                seq: 0,
                id: message.id,
            }),
            ChangeKind::React { message, emoji, on } => RoomEvent::Reaction(ReactionChanged {
                room,
                seq: 0,
                message: *message,
                emoji: emoji.clone(),
                user: self.actor.clone(),
                on: *on,
            }),
            ChangeKind::Pin { message, on } => {
                let pin = PinChanged {
                    room,
                    seq: 0,
                    message: *message,
                    by: self.actor.clone(),
                };
                if *on {
                    RoomEvent::Pinned(pin)
                } else {
                    RoomEvent::Unpinned(pin)
                }
            }
            ChangeKind::Record(event) => event.clone(),
        };
        LogEntry {
            actor: self.actor.id,
            reference: self.reference.clone(),
            at: now,
            event,
        }
    }

    /// The message this change leaves behind, as the room's recent history should show it
    /// from now on (for edits and deletions: the target's new state, as a log entry).
    pub fn target_after(&self, now: i64) -> Option<ChatMessage> {
        match &self.kind {
            ChangeKind::Edit { message, body } => {
                let mut m = message.clone().as_log_entry();
                m.body = body.as_str().to_owned();
                m.edited_at = Some(now);
                Some(m)
            }
            ChangeKind::Delete { message } => {
                Some(message.clone().as_log_entry().into_tombstone(now))
            }
            _ => None,
        }
    }
}

/// A durably accepted change: the message it is or is about (if any), and its entry's seq.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    pub id: Option<MessageId>,
    pub seq: i64,
}

/// What a reconnecting client missed.
#[derive(Debug, Clone)]
pub struct Recovery {
    /// The room's log after the client's seq, ascending.
    pub events: Vec<RoomEvent>,
    /// Whether that is everything (false: more than the limit were missed).
    pub complete: bool,
}

impl Recovery {
    /// From up to `limit + 1` entries: the first `limit`, complete when there were no more.
    pub fn from_page(mut events: Vec<RoomEvent>, limit: u32) -> Self {
        let complete = events.len() <= limit as usize;
        events.truncate(limit as usize);
        Self { events, complete }
    }
}

/// How an entry is handed to the local fan-out: serialized once, with what sessions need to
/// route it.
pub fn entry_delivery(event: &RoomEvent) -> Arc<Delivery> {
    let kind = match event {
        RoomEvent::Message(m) => DeliveryKind::Message {
            seq: m.seq,
            author: m.author.clone(),
            mentions: m.mentions.clone(),
        },
        other => DeliveryKind::Entry { seq: other.seq() },
    };
    Delivery::new(kind, event.to_json())
}

/// How an ephemeral event (presence, typing) is handed to the local fan-out.
pub fn event_delivery(frame: &ServerFrame) -> Arc<Delivery> {
    Delivery::new(
        DeliveryKind::Event {
            from: event_from(frame),
        },
        frame.to_json(),
    )
}

/// The user whose own action an ephemeral event reports (not echoed back to them).
pub fn event_from(frame: &ServerFrame) -> Option<UserId> {
    match frame {
        ServerFrame::Presence { user, .. }
        | ServerFrame::Typing { user, .. }
        | ServerFrame::Read { user, .. } => Some(user.id),
        _ => None,
    }
}

/// The answer the store has for an earlier change (every broker's fallback: the store holds
/// every entry a worker or persister has written).
pub async fn stored_answer(
    store: &crate::store::DynStore,
    room: RoomId,
    actor: UserId,
    reference: &ClientRef,
) -> Result<Option<Accepted>, BrokerError> {
    Ok(store
        .entry_by_ref(room, actor, reference)
        .await?
        .map(|(id, seq)| Accepted { id, seq }))
}

/// A message of `room` as the store has it.
pub async fn stored_message(
    store: &crate::store::DynStore,
    room: RoomId,
    id: MessageId,
) -> Result<Option<ChatMessage>, BrokerError> {
    Ok(store.message(id).await?.filter(|m| m.room == room))
}

/// The broker behind the gateway and the HTTP API.
#[async_trait]
pub trait Broker: Send + Sync + 'static {
    /// Appends a change to its room's log: the room's next seq, durable hand-off, delivery to
    /// every subscriber, in that order. Returns only once the entry will not be lost. A resend
    /// with the same (room, actor, reference) returns the first answer and adds nothing.
    async fn append(&self, change: Change) -> Result<Accepted, BrokerError>;

    /// The answer an earlier change (other than a post) by `actor` with `reference` got, if
    /// any, so a resend is answered the same even when its target has changed since.
    async fn answered(
        &self,
        room: RoomId,
        actor: UserId,
        reference: &ClientRef,
    ) -> Result<Option<Accepted>, BrokerError>;

    /// A message of the room as it is now, including changes not yet in the database.
    async fn message(
        &self,
        room: RoomId,
        id: MessageId,
    ) -> Result<Option<ChatMessage>, BrokerError>;

    /// Delivers an ephemeral event (typing, presence) to the room's subscribers on every
    /// instance. Not in the log, not persisted.
    async fn publish_event(&self, room: RoomId, frame: ServerFrame) -> Result<(), BrokerError>;

    /// Delivers an event to every connection of the user on every instance.
    async fn publish_user_event(&self, user: UserId, event: UserEvent) -> Result<(), BrokerError>;

    /// The room's log after `after_seq`, at most `limit` entries.
    async fn recover(
        &self,
        room: RoomId,
        after_seq: i64,
        limit: u32,
    ) -> Result<Recovery, BrokerError>;

    /// The room's latest accepted seq (0 when none).
    async fn last_seq(&self, room: RoomId) -> Result<i64, BrokerError>;

    /// Records that the user's first connection entered (`online`) or last one left the room
    /// on this instance, and publishes `presence` when that changes the room's presence.
    async fn set_presence(
        &self,
        room: RoomId,
        user: &UserPublic,
        online: bool,
    ) -> Result<(), BrokerError>;

    /// Waits until this instance receives the room's live events from every instance (the
    /// in-process broker always does; the Redis one once its subscription is confirmed).
    async fn await_subscribed(&self, _room: RoomId) -> Result<(), BrokerError> {
        Ok(())
    }

    /// Who is in the room now, across instances.
    async fn online(&self, room: RoomId) -> Result<Vec<UserPublic>, BrokerError>;

    /// Stops accepting, then writes out everything already accepted.
    async fn shutdown(&self);
}
