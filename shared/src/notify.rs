//! Notifications that reach people with no tab open: Web Push subscriptions, each member's
//! notification level per room, the user's notification settings, and the payload a push
//! carries to the web client's service worker.

use crate::ids::{MessageId, RoomId};
use serde::{Deserialize, Serialize};

/// How much of a room a member is notified about. No choice made: direct conversations `all`,
/// rooms `mentions`. Mentions and direct messages always count as mentions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum NotificationLevel {
    /// Every new message.
    All,
    /// Messages that mention you (and, in a direct conversation, every message).
    Mentions,
    /// Nothing (the room is muted).
    None,
}

impl NotificationLevel {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Mentions => "mentions",
            Self::None => "none",
        }
    }

    /// The level a stored spelling names.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "all" => Some(Self::All),
            "mentions" => Some(Self::Mentions),
            "none" => Some(Self::None),
            _ => None,
        }
    }

    /// Whether a new message is notified at this level: `mention` is true for a message that
    /// mentions the member and for every message of a direct conversation.
    pub fn notifies(self, mention: bool) -> bool {
        match self {
            Self::All => true,
            Self::Mentions => mention,
            Self::None => false,
        }
    }
}

/// `GET /api/push/key`: the server's VAPID public key (the uncompressed P-256 point, base64url
/// without padding), for `PushManager.subscribe({applicationServerKey})`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PushKey {
    /// The key.
    pub key: String,
}

/// The keys of a push subscription, as `PushSubscription.toJSON()` gives them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PushKeys {
    /// The browser's P-256 public key (base64url).
    pub p256dh: String,
    /// The browser's 16-byte authentication secret (base64url).
    pub auth: String,
}

/// `POST /api/push/subscriptions`: this browser's push subscription. Only `https` endpoints of
/// the known push services are accepted (422 otherwise, nothing stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PushSubscriptionRequest {
    /// The push service's URL for this browser.
    pub endpoint: String,
    /// Its keys.
    pub keys: PushKeys,
}

/// `DELETE /api/push/subscriptions`: forget this browser's subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PushUnsubscribeRequest {
    /// The endpoint given when subscribing.
    pub endpoint: String,
}

/// `PATCH /api/rooms/{id}/notifications`: your level in the room (members only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct NotificationLevelRequest {
    /// The new level.
    pub level: NotificationLevel,
}

/// Your level in one room (the answer of `PATCH /api/rooms/{id}/notifications`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct RoomNotificationLevel {
    /// The room.
    pub room: RoomId,
    /// Your level there (the default when you never chose).
    pub level: NotificationLevel,
}

/// `GET /api/me/notifications`: your notification settings and your level in each of your
/// rooms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct NotificationSettings {
    /// Whether the server has Web Push on (then `GET /api/push/key` answers).
    pub push_enabled: bool,
    /// Whether pushes carry an excerpt of the message (`PATCH /api/me {push_previews}`).
    pub push_previews: bool,
    /// Whether the server sends e-mail at all (SMTP configured).
    pub email_available: bool,
    /// Whether you get an e-mail digest of mentions and direct messages you have not read
    /// after a while (`PATCH /api/me {email_notifications}`).
    pub email_notifications: bool,
    /// Your level in each of your rooms.
    pub levels: Vec<RoomNotificationLevel>,
}

/// What a push carries to the service worker (JSON, encrypted for the browser).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PushPayload {
    /// Show (or replace) the room's notification.
    Message {
        /// This push's id: a repeat (pushes are delivered at least once) is ignored.
        id: String,
        /// The notification's tag: one per room, so a room's notifications replace each other.
        tag: String,
        /// The room.
        room: RoomId,
        /// The room's name (for a direct conversation: the author's name).
        room_name: String,
        /// The newest message's author.
        author: String,
        /// The newest message's text, shortened; absent when the user turned previews off.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        excerpt: Option<String>,
        /// The newest message.
        message: MessageId,
        /// Its seq in the room's log.
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        seq: i64,
        /// How many notified messages of the room are waiting (since the user last read it).
        count: u32,
        /// Whether one of them mentions the user (or the room is a direct conversation).
        mention: bool,
    },
    /// Close the room's notification: the user read the room elsewhere.
    Close {
        /// This push's id.
        id: String,
        /// The tag of the notification to close.
        tag: String,
        /// The room.
        room: RoomId,
    },
}

/// The notification tag of a room.
pub fn room_tag(room: RoomId) -> String {
    format!("room:{}", room.0)
}

/// The excerpt a push shows: the first `max` characters of the text, whitespace folded, with
/// an ellipsis when cut.
pub fn excerpt(body: &str, max: usize) -> String {
    let folded = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if folded.chars().count() <= max {
        return folded;
    }
    let mut cut: String = folded.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_round_trip_and_decide() {
        for level in [
            NotificationLevel::All,
            NotificationLevel::Mentions,
            NotificationLevel::None,
        ] {
            assert_eq!(NotificationLevel::parse(level.as_str()), Some(level));
        }
        assert_eq!(NotificationLevel::parse("loud"), None);
        assert!(NotificationLevel::All.notifies(false));
        assert!(!NotificationLevel::Mentions.notifies(false));
        assert!(NotificationLevel::Mentions.notifies(true));
        assert!(!NotificationLevel::None.notifies(true));
    }

    #[test]
    fn excerpts_are_short_and_folded() {
        assert_eq!(excerpt("hi\n  there", 20), "hi there");
        assert_eq!(excerpt("abcdefghij", 5), "abcd…");
    }
}
