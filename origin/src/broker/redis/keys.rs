//! Every Redis key and channel name the broker and the workers use, built here and nowhere
//! else. Scripts receive their keys through `KEYS`, never by building names themselves.

use confab_shared::ids::{ClientMsgId, ClientRef, RoomId, UserId};

/// The persistence stream `confab worker`s read.
pub const PERSIST_STREAM: &str = "confab:persist";
/// The workers' consumer group on it.
pub const PERSIST_GROUP: &str = "persisters";
/// The set of instances that have registered (and may hold presence).
pub const INSTANCES: &str = "confab:instances";

const ROOM_CHANNEL: &str = "confab:r:";
const USER_CHANNEL: &str = "confab:u:";

/// The channel a room's live events are published on.
pub fn room_channel(room: RoomId) -> String {
    format!("{ROOM_CHANNEL}{room}")
}

/// The channel a user's events are published on.
pub fn user_channel(user: UserId) -> String {
    format!("{USER_CHANNEL}{user}")
}

/// Which room or user a channel is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Room(RoomId),
    User(UserId),
}

impl Channel {
    /// Reads a channel name built by [`room_channel`] or [`user_channel`].
    pub fn parse(name: &str) -> Option<Self> {
        if let Some(room) = name.strip_prefix(ROOM_CHANNEL) {
            return room.parse().ok().map(Self::Room);
        }
        name.strip_prefix(USER_CHANNEL)?
            .parse()
            .ok()
            .map(Self::User)
    }
}

/// A room's seq counter.
pub fn seq(room: RoomId) -> String {
    format!("confab:seq:{room}")
}

/// A room's recent history: a sorted set of log entries scored by seq.
pub fn recent(room: RoomId) -> String {
    format!("confab:recent:{room}")
}

/// The answer to a post, by its `client_msg_id`.
pub fn posted(room: RoomId, author: UserId, client_msg_id: &ClientMsgId) -> String {
    format!("confab:cmid:{room}:{author}:{client_msg_id}")
}

/// The answer to any other change, by its reference.
pub fn changed(room: RoomId, actor: UserId, reference: &ClientRef) -> String {
    format!("confab:ref:{room}:{actor}:{reference}")
}

/// A room's presence: a hash of `user|instance` fields, valued by username.
pub fn presence(room: RoomId) -> String {
    format!("confab:presence:{room}")
}

/// An instance's presence entries (`room|user`), so they can be reaped when it dies.
pub fn instance_presence(instance: &str) -> String {
    format!("confab:ipres:{instance}")
}

/// An instance's liveness key (expires unless refreshed).
pub fn alive(instance: &str) -> String {
    format!("confab:alive:{instance}")
}

/// The claim of the one instance that reaps a dead one.
pub fn reaper(instance: &str) -> String {
    format!("confab:reap:{instance}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn channels_parse_back() {
        let room = RoomId(Uuid::from_u128(1));
        let user = UserId(Uuid::from_u128(2));
        assert_eq!(
            Channel::parse(&room_channel(room)),
            Some(Channel::Room(room))
        );
        assert_eq!(
            Channel::parse(&user_channel(user)),
            Some(Channel::User(user))
        );
        assert_eq!(Channel::parse("confab:r:nope"), None);
        assert_eq!(Channel::parse("other"), None);
    }
}
