//! What the broker writes into Redis and reads back: the pub/sub payloads of room and user
//! channels, and the persistence stream's entries (read by `confab worker`).
//!
//! A room channel's payload is a one-line header, a newline, and the frame every recipient
//! gets, unchanged:
//!
//! - `m SEQ AUTHOR_ID AUTHOR_NAME ACCEPTED_MS MENTIONED_IDS` — a new message (entry `SEQ` of
//!   the log; the ids comma-separated, `-` for none);
//! - `l SEQ` — any other log entry;
//! - `e FROM` — an ephemeral event (`FROM` is the user it reports on, or `-`).
//!
//! A stream entry has the fields `f` (the entry's JSON, as delivered), `a` (the actor's id),
//! `r` (the request's reference) and `t` (when it was accepted, ms).

use crate::broker::UserEvent;
use crate::fanout::{Delivery, DeliveryKind, Frame};
use crate::store::LogEntry;
use confab_shared::events::RoomEvent;
use confab_shared::ids::{ClientRef, UserId};
use confab_shared::protocol::{ServerFrame, UserPublic};
use std::sync::Arc;

/// The stream entry fields.
pub const FIELD_ENTRY: &str = "f";
pub const FIELD_ACTOR: &str = "a";
pub const FIELD_REFERENCE: &str = "r";
pub const FIELD_ACCEPTED: &str = "t";

/// Splits an entry's JSON, serialized with seq 0, around that seq, for the publish script to
/// splice the real one in. The first `"seq":0,` is the field: the ones before it are the type
/// and UUIDs, and a body's quotes are escaped.
pub fn split_at_seq(json: &str) -> Option<(&str, &str)> {
    const MARK: &str = "\"seq\":0,";
    let at = json.find(MARK)?;
    Some((&json[..at + MARK.len() - 2], &json[at + MARK.len() - 1..]))
}

/// The pub/sub header of an entry, split around its seq like the entry.
pub fn entry_header(event: &RoomEvent, accepted_at: i64) -> (&'static str, String) {
    match event {
        RoomEvent::Message(m) => {
            let mentions = if m.mentions.is_empty() {
                "-".to_owned()
            } else {
                m.mentions
                    .iter()
                    .map(UserId::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            };
            (
                "m ",
                format!(
                    " {} {} {accepted_at} {mentions}",
                    m.author.id, m.author.username
                ),
            )
        }
        _ => ("l ", String::new()),
    }
}

/// The payload of an ephemeral event on a room channel.
pub fn event_payload(frame: &ServerFrame) -> String {
    let from = crate::broker::event_from(frame)
        .map(|u| u.to_string())
        .unwrap_or_else(|| "-".to_owned());
    format!("e {from}\n{}", frame.to_json())
}

/// Reads a room channel's payload.
pub fn parse_room_payload(payload: &[u8]) -> Option<Arc<Delivery>> {
    let text = std::str::from_utf8(payload).ok()?;
    let (header, frame) = text.split_once('\n')?;
    let mut parts = header.split(' ');
    let kind = match parts.next()? {
        "m" => {
            let seq = parts.next()?.parse().ok()?;
            let id = UserId(parts.next()?.parse().ok()?);
            let username = parts.next()?.to_owned();
            if let Some(accepted) = parts.next().and_then(|c| c.parse().ok()) {
                crate::metrics::since_accepted("confab_fanout_seconds", accepted);
            }
            let mentions = match parts.next() {
                None | Some("-") => Vec::new(),
                Some(ids) => ids
                    .split(',')
                    .filter_map(|u| u.parse().ok().map(UserId))
                    .collect(),
            };
            DeliveryKind::Message {
                seq,
                author: UserPublic { id, username },
                mentions,
            }
        }
        "l" => DeliveryKind::Entry {
            seq: parts.next()?.parse().ok()?,
        },
        "e" => DeliveryKind::Event {
            from: parts.next().and_then(|f| f.parse().ok()).map(UserId),
        },
        _ => return None,
    };
    Some(Arc::new(Delivery {
        kind,
        frame: Frame::from_json(frame.to_owned()),
    }))
}

/// The payload of a user channel.
pub fn user_payload(event: &UserEvent) -> Option<String> {
    serde_json::to_string(event).ok()
}

/// Reads a user channel's payload.
pub fn parse_user_payload(payload: &[u8]) -> Option<UserEvent> {
    serde_json::from_slice(payload).ok()
}

/// Reads a log entry's JSON (the recent history's members, the stream's `f` field).
pub fn parse_entry(json: &str) -> Option<RoomEvent> {
    serde_json::from_str(json).ok()
}

/// Reads a persistence stream entry back into the log entry it carries.
pub fn decode_stream_entry(entry: &redis::streams::StreamId) -> Option<LogEntry> {
    let json: String = entry.get(FIELD_ENTRY)?;
    let actor: String = entry.get(FIELD_ACTOR)?;
    let reference: String = entry.get(FIELD_REFERENCE)?;
    let at: i64 = entry.get(FIELD_ACCEPTED)?;
    Some(LogEntry {
        actor: UserId(actor.parse().ok()?),
        reference: ClientRef::parse(&reference).ok()?,
        at,
        event: parse_entry(&json)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use confab_shared::events::MessageEdited;
    use confab_shared::ids::{ClientMsgId, MessageId, RoomId};
    use confab_shared::protocol::ChatMessage;
    use uuid::Uuid;

    #[test]
    fn entries_split_around_the_seq_and_payloads_parse() {
        let author = UserPublic {
            id: UserId(Uuid::from_u128(9)),
            username: "ann".into(),
        };
        let message = RoomEvent::Message(ChatMessage {
            id: MessageId(Uuid::from_u128(1)),
            room: RoomId(Uuid::from_u128(2)),
            seq: 0,
            author: author.clone(),
            bot: false,
            body: "\"seq\":0, in a body".into(),
            client_msg_id: ClientMsgId::parse("c").unwrap(),
            attachment: None,
            created_at: 5,
            edited_at: None,
            deleted_at: None,
            reply_to: None,
            mentions: Vec::new(),
            reactions: Vec::new(),
            pinned: false,
        });
        let json = message.to_json();
        let (a, b) = split_at_seq(&json).unwrap();
        let spliced = format!("{a}42{b}");
        let RoomEvent::Message(m) = parse_entry(&spliced).unwrap() else {
            panic!("a message")
        };
        assert_eq!((m.seq, m.body.as_str()), (42, "\"seq\":0, in a body"));
        let (head, tail) = entry_header(&RoomEvent::Message(m), 5);
        let payload = format!("{head}42{tail}\n{spliced}");
        let d = parse_room_payload(payload.as_bytes()).unwrap();
        assert!(
            matches!(&d.kind, DeliveryKind::Message { seq: 42, author: a, mentions } if *a == author && mentions.is_empty())
        );
        assert_eq!(d.frame.bytes(), spliced.as_bytes());

        let edited = RoomEvent::Edited(MessageEdited {
            room: RoomId(Uuid::from_u128(2)),
            seq: 0,
            id: MessageId(Uuid::from_u128(1)),
            body: "x".into(),
            edited_at: 6,
        });
        let json = edited.to_json();
        let (a, b) = split_at_seq(&json).unwrap();
        let (head, tail) = entry_header(&edited, 6);
        let payload = format!("{head}43{tail}\n{a}43{b}");
        let d = parse_room_payload(payload.as_bytes()).unwrap();
        assert_eq!(d.kind, DeliveryKind::Entry { seq: 43 });
        assert_eq!(parse_entry(&format!("{a}43{b}")).map(|e| e.seq()), Some(43));

        let d = parse_room_payload(event_payload(&ServerFrame::Pong).as_bytes()).unwrap();
        assert_eq!(d.kind, DeliveryKind::Event { from: None });
        assert!(parse_room_payload(b"x 1\n{}").is_none());
    }
}
