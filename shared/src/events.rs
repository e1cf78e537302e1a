//! The room log: every change to what a room shows is a [`RoomEvent`] with the room's next
//! `seq`. New messages, edits and deletions are all entries of the same ordered log, delivered
//! live in seq order, replayed by `subscribe {after_seq}` and by `GET /api/rooms/{id}/events`,
//! and persisted through the same queue. A client that applies every entry in seq order ends up
//! showing what a client that never disconnected shows.
//!
//! Entries about a message are kept true to the message as it is now: once a message is
//! deleted, a replayed `message` entry for it is a tombstone (empty body, no attachment,
//! `deleted_at` set) and replayed `edited` entries for it have an empty body, so deleted text is
//! never served again.
//!
//! Typing and presence are not log entries: they carry no seq and are never replayed.

use crate::ids::{MessageId, RoomId};
use crate::protocol::ChatMessage;
use serde::{Deserialize, Serialize};

/// One entry of a room's log, tagged by `"type"` like every frame.
// Most entries are messages: boxing them to shrink the rarer kinds would cost an allocation
// per message for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RoomEvent {
    /// A new message.
    Message(ChatMessage),
    /// A message's text was changed by its author.
    Edited(MessageEdited),
    /// A message was deleted by its author.
    Deleted(MessageDeleted),
}

/// A message's new text (`edited`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct MessageEdited {
    /// The room.
    pub room: RoomId,
    /// This entry's position in the room's log.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub seq: i64,
    /// The message edited.
    pub id: MessageId,
    /// Its new text (empty when the message has been deleted since).
    pub body: String,
    /// When, milliseconds since the Unix epoch.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub edited_at: i64,
}

/// A message was deleted (`deleted`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct MessageDeleted {
    /// The room.
    pub room: RoomId,
    /// This entry's position in the room's log.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub seq: i64,
    /// The message deleted.
    pub id: MessageId,
}

impl RoomEvent {
    /// The entry's position in its room's log.
    pub fn seq(&self) -> i64 {
        match self {
            Self::Message(m) => m.seq,
            Self::Edited(e) => e.seq,
            Self::Deleted(d) => d.seq,
        }
    }

    /// Gives the entry its position in the log.
    pub fn set_seq(&mut self, seq: i64) {
        match self {
            Self::Message(m) => m.seq = seq,
            Self::Edited(e) => e.seq = seq,
            Self::Deleted(d) => d.seq = seq,
        }
    }

    /// The room whose log it is in.
    pub fn room(&self) -> RoomId {
        match self {
            Self::Message(m) => m.room,
            Self::Edited(e) => e.room,
            Self::Deleted(d) => d.room,
        }
    }

    /// The message the entry is or is about.
    pub fn message_id(&self) -> MessageId {
        match self {
            Self::Message(m) => m.id,
            Self::Edited(e) => e.id,
            Self::Deleted(d) => d.id,
        }
    }

    /// The entry's `"type"`, as stored.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Message(_) => "message",
            Self::Edited(_) => "edited",
            Self::Deleted(_) => "deleted",
        }
    }

    /// The entry as JSON text.
    pub fn to_json(&self) -> String {
        // Plain data: serializing cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl ChatMessage {
    /// Whether this is a deleted message's tombstone.
    pub fn is_deleted(&self) -> bool {
        self.deleted_at.is_some()
    }

    /// The message after `edited` (entries for other messages change nothing).
    pub fn apply_edit(&mut self, edited: &MessageEdited) {
        if edited.id == self.id && !self.is_deleted() {
            self.body.clone_from(&edited.body);
            self.edited_at = Some(edited.edited_at);
        }
    }

    /// The message as a tombstone: its text and file gone, `deleted_at` set.
    pub fn into_tombstone(mut self, deleted_at: i64) -> Self {
        self.body.clear();
        self.attachment = None;
        self.deleted_at = Some(self.deleted_at.unwrap_or(deleted_at));
        self
    }
}

impl MessageEdited {
    /// The entry with its text removed, for a message deleted since.
    pub fn redacted(mut self) -> Self {
        self.body.clear();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ClientMsgId, UserId};
    use crate::protocol::UserPublic;
    use uuid::Uuid;

    fn message() -> ChatMessage {
        ChatMessage {
            id: MessageId(Uuid::from_u128(1)),
            room: RoomId(Uuid::from_u128(2)),
            seq: 3,
            author: UserPublic {
                id: UserId(Uuid::from_u128(4)),
                username: "ann".into(),
            },
            body: "hello".into(),
            client_msg_id: ClientMsgId::parse("c-1").unwrap(),
            attachment: None,
            created_at: 10,
            edited_at: None,
            deleted_at: None,
        }
    }

    #[test]
    fn entries_are_tagged_and_round_trip() {
        let m = message();
        let edited = RoomEvent::Edited(MessageEdited {
            room: m.room,
            seq: 4,
            id: m.id,
            body: "hi".into(),
            edited_at: 11,
        });
        let text = edited.to_json();
        assert!(text.starts_with(r#"{"type":"edited","room":"#), "{text}");
        assert_eq!(serde_json::from_str::<RoomEvent>(&text).unwrap(), edited);
        let msg = RoomEvent::Message(m.clone());
        let text = msg.to_json();
        assert!(text.starts_with(r#"{"type":"message","id":"#), "{text}");
        assert!(
            !text.contains("deleted_at"),
            "live messages carry no deleted_at"
        );
        assert_eq!(serde_json::from_str::<RoomEvent>(&text).unwrap(), msg);
        assert_eq!((msg.seq(), edited.seq()), (3, 4));
        assert_eq!(edited.kind(), "edited");
    }

    #[test]
    fn edits_and_tombstones_fold_into_the_message() {
        let mut m = message();
        let edit = MessageEdited {
            room: m.room,
            seq: 4,
            id: m.id,
            body: "hi".into(),
            edited_at: 11,
        };
        m.apply_edit(&edit);
        assert_eq!((m.body.as_str(), m.edited_at), ("hi", Some(11)));
        let dead = m.into_tombstone(12);
        assert!(dead.is_deleted() && dead.body.is_empty() && dead.attachment.is_none());
        let mut dead2 = dead.clone();
        dead2.apply_edit(&edit);
        assert_eq!(dead2, dead, "a tombstone takes no edits");
        assert!(edit.redacted().body.is_empty());
    }
}
