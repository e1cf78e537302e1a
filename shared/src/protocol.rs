//! The WebSocket protocol at `GET /ws`: JSON text frames tagged by `"type"`.
//!
//! A session starts with the server's [`ServerFrame::Ready`]. The client then `subscribe`s to the
//! rooms it shows and receives their log entries ([`RoomEvent`]: `message`, `edited`,
//! `deleted`) in seq order; for every other room it is a member of it receives
//! [`ServerFrame::Activity`] (a counter bump, never content). `send`, `edit` and `delete` are
//! acknowledged with [`ServerFrame::Ack`] once the entry is durably accepted; a resend with the
//! same `client_msg_id` / `ref` gets the same ack and adds nothing. After a reconnect,
//! `subscribe` with `after_seq` delivers exactly the entries missed, then `subscribed` says
//! whether that recovery was complete.

use crate::conversation::{ReactionCount, ReplyTo};
use crate::error::ErrorCode;
use crate::events::RoomEvent;
use crate::ids::{ClientMsgId, ClientRef, MessageId, RoomId, UserId};
use serde::{Deserialize, Serialize};

/// The default largest frame a client may send, in bytes. Larger frames close the socket (1009).
pub const DEFAULT_MAX_FRAME_BYTES: usize = 64 * 1024;

/// A user as others see them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct UserPublic {
    /// The user's id.
    pub id: UserId,
    /// The user's name.
    pub username: String,
}

/// A reference to an uploaded file, as returned by the upload endpoint and cited by `send`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(type = "string"))]
#[serde(transparent)]
pub struct AttachmentRef(pub String);

/// A file attached to a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Attachment {
    /// The reference the uploader cited.
    pub id: AttachmentRef,
    /// The original file name, for display and downloads.
    pub name: String,
    /// The content type detected from the file's bytes.
    pub content_type: String,
    /// Size in bytes.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub size: i64,
    /// Where to fetch the file.
    pub url: String,
    /// Whether the file is an image shown inline (png, jpeg, gif, webp); otherwise a download.
    pub inline: bool,
}

/// A chat message as delivered live and in history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ChatMessage {
    /// Unique message id.
    pub id: MessageId,
    /// The room.
    pub room: RoomId,
    /// Position in the room: 1, 2, 3... with no reuse. Gaps are possible, order is total.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub seq: i64,
    /// Who wrote it.
    pub author: UserPublic,
    /// Whether the author is a bot account (a bot's token or an incoming webhook).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    #[cfg_attr(feature = "ts", ts(as = "Option<bool>", optional))]
    pub bot: bool,
    /// The text (already validated: up to 4000 characters; empty only with an attachment).
    /// Markdown, rendered without raw HTML.
    pub body: String,
    /// The author's id for this send, so the author's other tabs can match pending messages.
    pub client_msg_id: ClientMsgId,
    /// An attached file, if any.
    pub attachment: Option<Attachment>,
    /// When the server accepted it, milliseconds since the Unix epoch.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub created_at: i64,
    /// When it was last edited, milliseconds since the Unix epoch.
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub edited_at: Option<i64>,
    /// Set only on a deleted message's tombstone (a replayed log entry of a message deleted
    /// since): when it was deleted. Its body is then empty and it has no attachment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional, type = "number"))]
    pub deleted_at: Option<i64>,
    /// The message this one answers, as that message is now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub reply_to: Option<ReplyTo>,
    /// The members `@mentioned` in the text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "ts", ts(as = "Option<Vec<UserId>>", optional))]
    pub mentions: Vec<UserId>,
    /// Its reactions as they are now (history pages only; see `RoomEvent`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "ts", ts(as = "Option<Vec<ReactionCount>>", optional))]
    pub reactions: Vec<ReactionCount>,
    /// Whether it is pinned to the room.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    #[cfg_attr(feature = "ts", ts(as = "Option<bool>", optional))]
    pub pinned: bool,
}

/// A frame from the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "type", rename_all = "snake_case")]
#[serde(deny_unknown_fields)]
pub enum ClientFrame {
    /// Start receiving a room's live events. With `after_seq`, first receive every message after
    /// that seq (the ones missed while away), then `subscribed`.
    Subscribe {
        /// The room (you must be a member).
        room: RoomId,
        /// The last seq you have; omit for live events only.
        #[serde(default)]
        #[cfg_attr(feature = "ts", ts(optional, type = "number"))]
        after_seq: Option<i64>,
    },
    /// Stop receiving a room's live events (its activity counters continue).
    Unsubscribe {
        /// The room.
        room: RoomId,
    },
    /// Post a message. Answered by `ack` or by `error` whose `ref` is the `client_msg_id`.
    Send {
        /// The room (you must be a member).
        room: RoomId,
        /// Your id for this message; a retry with the same id is not posted twice.
        client_msg_id: ClientMsgId,
        /// The text, 1-4000 characters after trimming; may be empty when a file is attached.
        body: String,
        /// An uploaded file to attach (the `id` of the upload's `Attachment`).
        #[serde(default)]
        #[cfg_attr(feature = "ts", ts(optional))]
        attachment: Option<AttachmentRef>,
        /// The message (of the same room) this one answers.
        #[serde(default)]
        #[cfg_attr(feature = "ts", ts(optional))]
        reply_to: Option<MessageId>,
    },
    /// Add (`on: true`) or take back your reaction to a message. Answered like `edit`; adding
    /// one you have, or taking back one you do not, is acknowledged and changes nothing.
    React {
        /// The message's room (you must be a member).
        room: RoomId,
        /// The message.
        message: MessageId,
        /// One emoji.
        emoji: String,
        /// Add or take back.
        on: bool,
        /// Your id for this request; a retry with the same one is applied once.
        #[serde(rename = "ref")]
        #[cfg_attr(feature = "ts", ts(rename = "ref"))]
        reference: ClientRef,
    },
    /// Change the text of your message. Answered by `ack` (with this `ref` and the `edited`
    /// entry's seq) or by `error` with this `ref`.
    Edit {
        /// The message's room (you must be a member).
        room: RoomId,
        /// The message (yours).
        id: MessageId,
        /// The new text, 1-4000 characters after trimming.
        body: String,
        /// Your id for this request; a retry with the same one is applied once.
        #[serde(rename = "ref")]
        #[cfg_attr(feature = "ts", ts(rename = "ref"))]
        reference: ClientRef,
    },
    /// Delete your message. Answered like `edit`.
    Delete {
        /// The message's room (you must be a member).
        room: RoomId,
        /// The message (yours).
        id: MessageId,
        /// Your id for this request; a retry with the same one is applied once.
        #[serde(rename = "ref")]
        #[cfg_attr(feature = "ts", ts(rename = "ref"))]
        reference: ClientRef,
    },
    /// Tell the room you are typing (throttled by the server).
    Typing {
        /// The room.
        room: RoomId,
    },
    /// Whether this tab is visible: a hidden tab's subscribed rooms do not count as looked
    /// at, so their new messages are pushed. Tabs start visible.
    Visibility {
        /// False while the tab is hidden.
        visible: bool,
    },
    /// Mark the room read up to `seq`.
    Read {
        /// The room.
        room: RoomId,
        /// The highest seq you have seen.
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        seq: i64,
    },
    /// Keep-alive; answered by `pong`.
    Ping {},
}

/// Why a client frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FrameError(pub String);

impl ClientFrame {
    /// Decodes one text frame. Never panics, whatever the input.
    pub fn decode(text: &str) -> Result<Self, FrameError> {
        serde_json::from_str(text).map_err(|e| FrameError(format!("bad frame: {e}")))
    }
}

/// A frame from the server.
// Frames live briefly (serialized once, then written): boxing the large log entries would cost
// an allocation per message for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// The session is open.
    Ready {
        /// Who you are.
        user: UserPublic,
        /// Send something (for example `ping`) at least this often or be disconnected.
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        idle_timeout_ms: i64,
    },
    /// Subscription confirmed. Sent after any recovered messages.
    Subscribed {
        /// The room.
        room: RoomId,
        /// The room's latest seq at subscription time.
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        last_seq: i64,
        /// True when every message after `after_seq` was delivered; false means reload history.
        recovered: bool,
        /// Who is in the room now.
        online: Vec<UserPublic>,
    },
    /// Your `send`, `edit` or `delete` was durably accepted.
    Ack {
        /// The room.
        room: RoomId,
        /// The request's id: the `client_msg_id` of a `send`, the `ref` of anything else.
        #[serde(rename = "ref")]
        #[cfg_attr(feature = "ts", ts(rename = "ref"))]
        reference: ClientRef,
        /// For a `send`: the id you sent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        client_msg_id: Option<ClientMsgId>,
        /// The message posted, edited or deleted.
        id: MessageId,
        /// The seq of the log entry your request made (for a resend, the first one's).
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        seq: i64,
    },
    /// Someone entered (first connection subscribed) or left (last one gone) a room.
    Presence {
        /// The room.
        room: RoomId,
        /// Who.
        user: UserPublic,
        /// True on entering, false on leaving.
        online: bool,
    },
    /// Someone is typing in a subscribed room (as stamped by the server).
    Typing {
        /// The room.
        room: RoomId,
        /// Who.
        user: UserPublic,
    },
    /// A new message in a member room you are not subscribed to.
    Activity {
        /// The room.
        room: RoomId,
        /// The new message's seq.
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        seq: i64,
        /// Messages after your read marker.
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        unread: i64,
        /// Who wrote it (for a notification; no content is sent).
        author: UserPublic,
        /// Whether it `@mentions` you.
        #[serde(default)]
        mention: bool,
    },
    /// A member's read marker in a subscribed room moved (read receipts; sent at most every
    /// couple of seconds per member, never for members who do not share them).
    Read {
        /// The room.
        room: RoomId,
        /// Who.
        user: UserPublic,
        /// The highest seq they have read.
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        seq: i64,
    },
    /// You fell behind in this room and missed events: subscribe again with `after_seq`.
    Resync {
        /// The room.
        room: RoomId,
    },
    /// A room's membership changed for you (joined or left elsewhere).
    Membership {
        /// The room.
        room: RoomId,
        /// True when you are now a member.
        member: bool,
    },
    /// Something you sent failed. Nothing changed.
    Error {
        /// What went wrong.
        code: ErrorCode,
        /// For people.
        message: String,
        /// The `client_msg_id`, `ref` or room the error is about, if any.
        #[serde(rename = "ref")]
        #[cfg_attr(feature = "ts", ts(rename = "ref"))]
        reference: Option<String>,
    },
    /// Answer to `ping`.
    Pong,
    /// An entry of a subscribed room's log (`message`, `edited`, `deleted`, ...), in seq order.
    #[serde(untagged)]
    Entry(RoomEvent),
}

impl ServerFrame {
    /// Serializes the frame to its JSON text.
    pub fn to_json(&self) -> String {
        // Serializing these plain data types cannot fail: no maps with non-string keys, no
        // custom serializers that error.
        serde_json::to_string(self).unwrap_or_else(|_| String::from(r#"{"type":"pong"}"#))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use uuid::Uuid;

    #[test]
    fn frames_are_tagged_by_type() {
        let room = RoomId(Uuid::nil());
        let f = ClientFrame::decode(&format!(
            r#"{{"type":"send","room":"{room}","client_msg_id":"a-1","body":"hi"}}"#
        ))
        .unwrap();
        assert!(matches!(
            f,
            ClientFrame::Send {
                attachment: None,
                ..
            }
        ));
        assert_eq!(
            ClientFrame::decode(r#"{"type":"ping"}"#).unwrap(),
            ClientFrame::Ping {}
        );
        assert!(ClientFrame::decode(r#"{"type":"shout"}"#).is_err());
        assert!(ClientFrame::decode(r#"{"type":"ping","x":1}"#).is_err());
        let e = ServerFrame::Error {
            code: ErrorCode::RateLimited,
            message: "slow down".into(),
            reference: Some("a-1".into()),
        };
        assert_eq!(
            e.to_json(),
            r#"{"type":"error","code":"rate_limited","message":"slow down","ref":"a-1"}"#
        );
    }

    #[test]
    fn log_entries_are_server_frames_of_their_own_type() {
        use crate::events::{MessageDeleted, RoomEvent};
        let room = RoomId(Uuid::from_u128(1));
        let deleted = ServerFrame::Entry(RoomEvent::Deleted(MessageDeleted {
            room,
            seq: 7,
            id: MessageId(Uuid::from_u128(2)),
        }));
        let text = deleted.to_json();
        assert_eq!(
            text,
            r#"{"type":"deleted","room":"00000000-0000-0000-0000-000000000001","seq":7,"id":"00000000-0000-0000-0000-000000000002"}"#
        );
        let back: ServerFrame = serde_json::from_str(&text).unwrap();
        assert_eq!(back, deleted);
        let ack = ServerFrame::Ack {
            room,
            reference: ClientRef::parse("e-1").unwrap(),
            client_msg_id: None,
            id: MessageId(Uuid::from_u128(2)),
            seq: 8,
        };
        let text = ack.to_json();
        assert!(text.contains(r#""ref":"e-1""#) && !text.contains("client_msg_id"));
        assert_eq!(serde_json::from_str::<ServerFrame>(&text).unwrap(), ack);
        assert!(serde_json::from_str::<ServerFrame>(r#"{"type":"nonsense"}"#).is_err());
        let edit = ClientFrame::decode(&format!(
            r#"{{"type":"edit","room":"{room}","id":"{}","body":"x","ref":"r-1"}}"#,
            Uuid::from_u128(2)
        ))
        .unwrap();
        assert!(matches!(edit, ClientFrame::Edit { reference, .. } if reference.as_str() == "r-1"));
        assert!(ClientFrame::decode(&format!(
            r#"{{"type":"delete","room":"{room}","id":"{}","ref":"bad ref"}}"#,
            Uuid::from_u128(2)
        ))
        .is_err());
    }

    fn arb_json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(serde_json::Value::from),
            prop_oneof![
                Just("subscribe".to_string()),
                Just("send".to_string()),
                Just("read".to_string()),
                Just("00000000-0000-0000-0000-000000000000".to_string()),
                "\\PC{0,20}"
            ]
            .prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("type".to_string()),
                        Just("room".to_string()),
                        Just("after_seq".to_string()),
                        Just("client_msg_id".to_string()),
                        Just("body".to_string()),
                        Just("seq".to_string()),
                        "[a-z_]{1,8}"
                    ],
                    inner,
                    0..6
                )
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        // The fuzz target for frame decoding: any text, and any JSON shaped like our frames,
        // decodes to a frame or an error, never a panic; decoded frames re-encode to themselves.
        #[test]
        fn decoding_arbitrary_text_never_panics(s in "\\PC{0,200}") {
            let _ = ClientFrame::decode(&s);
        }

        #[test]
        fn decoding_arbitrary_json_never_panics(v in arb_json()) {
            let text = v.to_string();
            if let Ok(frame) = ClientFrame::decode(&text) {
                let again = serde_json::to_string(&frame).unwrap();
                prop_assert_eq!(ClientFrame::decode(&again).unwrap(), frame);
            }
        }

        #[test]
        fn send_frames_round_trip(id in "[a-z0-9-]{1,64}", body in "\\PC{0,100}", seq in proptest::option::of(0i64..1_000_000)) {
            let room = RoomId(Uuid::from_u128(7));
            let frames = [
                ClientFrame::Send { room, client_msg_id: ClientMsgId::parse(&id).unwrap(), body, attachment: None, reply_to: None },
                ClientFrame::Subscribe { room, after_seq: seq },
            ];
            for f in frames {
                let text = serde_json::to_string(&f).unwrap();
                prop_assert_eq!(ClientFrame::decode(&text).unwrap(), f);
            }
        }
    }
}
