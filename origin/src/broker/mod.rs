//! The broker: accepts messages (assigning each room's next `seq`), fans events out to every
//! instance's [`RoomHub`](crate::gateway::hub::RoomHub), tracks presence, and recovers what a
//! reconnecting client missed. [`memory::MemoryBroker`] is the embedded, in-process one.

pub mod memory;
pub mod redis;

use crate::gateway::hub::UserEvent;
use crate::store::StoreError;
use async_trait::async_trait;
use confab_shared::domain::MessageBody;
use confab_shared::ids::{ClientMsgId, MessageId, RoomId, UserId};
use confab_shared::protocol::{Attachment, ChatMessage, ServerFrame, UserPublic};
use std::sync::Arc;

/// A shared handle to the broker in use.
pub type DynBroker = Arc<dyn Broker>;

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

/// A message a member wants to post, already validated.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub room: RoomId,
    pub author: UserPublic,
    pub client_msg_id: ClientMsgId,
    pub body: MessageBody,
    pub attachment: Option<Attachment>,
}

/// A durably accepted message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    pub id: MessageId,
    pub seq: i64,
}

/// What a reconnecting client missed.
#[derive(Debug, Clone)]
pub struct Recovery {
    /// Messages after the client's seq, ascending.
    pub messages: Vec<ChatMessage>,
    /// Whether that is everything (false: more than the limit were missed).
    pub complete: bool,
}

impl Recovery {
    /// From up to `limit + 1` messages: the first `limit`, complete when there were no more.
    pub fn from_page(mut messages: Vec<ChatMessage>, limit: u32) -> Self {
        let complete = messages.len() <= limit as usize;
        messages.truncate(limit as usize);
        Self { messages, complete }
    }
}

/// The broker behind the gateway.
#[async_trait]
pub trait Broker: Send + Sync + 'static {
    /// Accepts a message: next seq, durable hand-off, delivery to every subscriber. Returns only
    /// once the message will not be lost. A resend with the same (room, author, client_msg_id)
    /// returns the first acceptance and is not delivered again.
    async fn publish_message(&self, msg: Outgoing) -> Result<Accepted, BrokerError>;

    /// Delivers an ephemeral event (typing, presence, edited, deleted) to the room's
    /// subscribers on every instance. Not persisted by the broker.
    async fn publish_event(&self, room: RoomId, frame: ServerFrame) -> Result<(), BrokerError>;

    /// Delivers an event to every connection of the user on every instance.
    async fn publish_user_event(&self, user: UserId, event: UserEvent) -> Result<(), BrokerError>;

    /// Messages after `after_seq`, at most `limit`.
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
