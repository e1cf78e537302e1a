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
//! A `message` entry in the log carries no reactions: the `reaction` entries after it add them
//! (history pages carry each message's reactions as they are now, with who reacted, so the
//! entries that follow a page apply exactly).
//!
//! Typing, presence and read receipts are not log entries: they carry no seq and are never
//! replayed.

use crate::conversation::{Emoji, RoomRole};
use crate::ids::{MessageId, RoomId};
use crate::protocol::{ChatMessage, UserPublic};
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
    /// Someone added (or took back) a reaction to a message.
    Reaction(ReactionChanged),
    /// A message was pinned to the room.
    Pinned(PinChanged),
    /// A message was unpinned.
    Unpinned(PinChanged),
    /// Someone became a member (joined a public room, or was added).
    MemberAdded(MemberAdded),
    /// Someone stopped being a member (left, was removed, or banned).
    MemberRemoved(MemberRemoved),
    /// A member's role changed.
    RoleChanged(RoleChanged),
    /// The room's name or topic changed.
    RoomUpdated(RoomUpdated),
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

/// A reaction added or taken back (`reaction`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ReactionChanged {
    /// The room.
    pub room: RoomId,
    /// This entry's position in the room's log.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub seq: i64,
    /// The message reacted to.
    pub message: MessageId,
    /// The emoji.
    pub emoji: Emoji,
    /// Who reacted.
    pub user: UserPublic,
    /// True when added, false when taken back.
    pub on: bool,
}

/// A message pinned or unpinned (`pinned`, `unpinned`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PinChanged {
    /// The room.
    pub room: RoomId,
    /// This entry's position in the room's log.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub seq: i64,
    /// The message.
    pub message: MessageId,
    /// Who pinned or unpinned it.
    pub by: UserPublic,
}

/// Someone became a member (`member_added`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct MemberAdded {
    /// The room.
    pub room: RoomId,
    /// This entry's position in the room's log.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub seq: i64,
    /// The new member.
    pub user: UserPublic,
    /// Their role.
    pub role: RoomRole,
    /// Who added them (themselves when they joined).
    pub by: UserPublic,
}

/// Someone stopped being a member (`member_removed`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct MemberRemoved {
    /// The room.
    pub room: RoomId,
    /// This entry's position in the room's log.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub seq: i64,
    /// The former member.
    pub user: UserPublic,
    /// Who removed them (themselves when they left).
    pub by: UserPublic,
    /// Whether they were banned (they cannot come back until unbanned).
    pub banned: bool,
}

/// A member's role changed (`role_changed`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct RoleChanged {
    /// The room.
    pub room: RoomId,
    /// This entry's position in the room's log.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub seq: i64,
    /// The member.
    pub user: UserPublic,
    /// Their role now.
    pub role: RoomRole,
    /// Who changed it.
    pub by: UserPublic,
}

/// The room's name or topic changed (`room_updated`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct RoomUpdated {
    /// The room.
    pub room: RoomId,
    /// This entry's position in the room's log.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub seq: i64,
    /// The room's name now.
    pub name: String,
    /// Its topic now (null: none).
    pub topic: Option<String>,
    /// Who changed it.
    pub by: UserPublic,
}

impl RoomEvent {
    /// The entry's position in its room's log.
    pub fn seq(&self) -> i64 {
        match self {
            Self::Message(m) => m.seq,
            Self::Edited(e) => e.seq,
            Self::Deleted(d) => d.seq,
            Self::Reaction(r) => r.seq,
            Self::Pinned(p) | Self::Unpinned(p) => p.seq,
            Self::MemberAdded(m) => m.seq,
            Self::MemberRemoved(m) => m.seq,
            Self::RoleChanged(r) => r.seq,
            Self::RoomUpdated(r) => r.seq,
        }
    }

    /// Gives the entry its position in the log.
    pub fn set_seq(&mut self, seq: i64) {
        match self {
            Self::Message(m) => m.seq = seq,
            Self::Edited(e) => e.seq = seq,
            Self::Deleted(d) => d.seq = seq,
            Self::Reaction(r) => r.seq = seq,
            Self::Pinned(p) | Self::Unpinned(p) => p.seq = seq,
            Self::MemberAdded(m) => m.seq = seq,
            Self::MemberRemoved(m) => m.seq = seq,
            Self::RoleChanged(r) => r.seq = seq,
            Self::RoomUpdated(r) => r.seq = seq,
        }
    }

    /// The room whose log it is in.
    pub fn room(&self) -> RoomId {
        match self {
            Self::Message(m) => m.room,
            Self::Edited(e) => e.room,
            Self::Deleted(d) => d.room,
            Self::Reaction(r) => r.room,
            Self::Pinned(p) | Self::Unpinned(p) => p.room,
            Self::MemberAdded(m) => m.room,
            Self::MemberRemoved(m) => m.room,
            Self::RoleChanged(r) => r.room,
            Self::RoomUpdated(r) => r.room,
        }
    }

    /// The message the entry is or is about, if it is about one.
    pub fn message_id(&self) -> Option<MessageId> {
        match self {
            Self::Message(m) => Some(m.id),
            Self::Edited(e) => Some(e.id),
            Self::Deleted(d) => Some(d.id),
            Self::Reaction(r) => Some(r.message),
            Self::Pinned(p) | Self::Unpinned(p) => Some(p.message),
            Self::MemberAdded(_)
            | Self::MemberRemoved(_)
            | Self::RoleChanged(_)
            | Self::RoomUpdated(_) => None,
        }
    }

    /// The entry's `"type"`, as stored.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Message(_) => "message",
            Self::Edited(_) => "edited",
            Self::Deleted(_) => "deleted",
            Self::Reaction(_) => "reaction",
            Self::Pinned(_) => "pinned",
            Self::Unpinned(_) => "unpinned",
            Self::MemberAdded(_) => "member_added",
            Self::MemberRemoved(_) => "member_removed",
            Self::RoleChanged(_) => "role_changed",
            Self::RoomUpdated(_) => "room_updated",
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

    /// The message as a tombstone: its text, file, quote, mentions and reactions gone,
    /// `deleted_at` set.
    pub fn into_tombstone(mut self, deleted_at: i64) -> Self {
        self.body.clear();
        self.attachment = None;
        self.mentions.clear();
        self.reactions.clear();
        self.pinned = false;
        if let Some(reply) = &mut self.reply_to {
            reply.excerpt.clear();
        }
        self.deleted_at = Some(self.deleted_at.unwrap_or(deleted_at));
        self
    }
}

impl ChatMessage {
    /// The message as a `message` entry of the log carries it: without reactions or pin state
    /// (the entries after it in the log add those).
    pub fn as_log_entry(mut self) -> Self {
        self.reactions.clear();
        self.pinned = false;
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
            bot: false,
            body: "hello".into(),
            client_msg_id: ClientMsgId::parse("c-1").unwrap(),
            attachment: None,
            created_at: 10,
            edited_at: None,
            deleted_at: None,
            reply_to: None,
            mentions: Vec::new(),
            reactions: Vec::new(),
            pinned: false,
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
