//! Every Redis key and channel name the broker and the workers use, built here and nowhere
//! else. Scripts receive their keys through `KEYS`, never by building names themselves.
//!
//! Two layouts, chosen by [`KeySpace`]:
//!
//! - **One Redis**: the names as they have always been (`confab:seq:ROOM`, one persistence
//!   stream `confab:persist`, channels `confab:r:ROOM` and `confab:u:USER`).
//! - **Redis Cluster**: rooms map to a fixed number of shards (a power of two), and every key
//!   and channel of a room carries its shard's hash tag, `confab:{7}:seq:ROOM`, so everything one
//!   append touches (seq, recent history, answer, outbox, the shard's persistence stream
//!   `confab:{7}:persist`, the sharded channel `confab:{7}:r:ROOM`) lives in one slot, on one
//!   master, and the append script still runs in one round trip. Users map to shards the same
//!   way (their channel `confab:{3}:u:USER`). Instance liveness is cluster-wide, under the one
//!   tag `{i}`.

use confab_shared::ids::{ClientMsgId, ClientRef, RoomId, UserId};
use uuid::Uuid;

/// The persistence stream of one Redis (and the name of each shard's stream after its tag).
const PERSIST: &str = "persist";
/// The workers' consumer group on every persistence stream.
pub const PERSIST_GROUP: &str = "persisters";

const ROOM_CHANNEL: &str = "r:";
const USER_CHANNEL: &str = "u:";

/// One shard of the key space: the rooms (and users) whose keys share its hash tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Shard {
    index: u32,
    tagged: bool,
}

impl Shard {
    /// The shard's number (0 on one Redis).
    pub fn index(self) -> u32 {
        self.index
    }

    /// What every key and channel of the shard starts with.
    fn prefix(self) -> String {
        if self.tagged {
            format!("confab:{{{}}}:", self.index)
        } else {
            "confab:".to_owned()
        }
    }

    /// The shard's persistence stream.
    pub fn persist_stream(self) -> String {
        format!("{}{PERSIST}", self.prefix())
    }

    /// Where the workers set aside the shard's entries that no database write can take (the
    /// database refuses their data, or they cannot be read), each with the reason, so one such
    /// entry never holds up the stream behind it. In the stream's slot.
    pub fn dead_letter_stream(self) -> String {
        format!("{}{PERSIST}:dead", self.prefix())
    }

    /// An instance's presence entries (`room|user`) in this shard, so they can be reaped when
    /// it dies.
    pub fn instance_presence(self, instance: &str) -> String {
        format!("{}ipres:{instance}", self.prefix())
    }
}

/// Which layout is in use, and how rooms map to shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySpace {
    shards: u32,
    cluster: bool,
}

/// FNV-1a over the id's bytes: stable across builds and platforms (unlike `DefaultHasher`),
/// and it mixes the random tail of a UUIDv7 into the low bits that pick the shard.
fn fnv1a(id: &Uuid) -> u64 {
    id.as_bytes().iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl KeySpace {
    /// One Redis: one shard, the historical names.
    pub fn single() -> Self {
        Self {
            shards: 1,
            cluster: false,
        }
    }

    /// Redis Cluster with `shards` shards (a power of two; anything else is rounded up).
    pub fn cluster(shards: u32) -> Self {
        Self {
            shards: shards.max(1).next_power_of_two(),
            cluster: true,
        }
    }

    /// Whether this is the Redis Cluster layout.
    pub fn is_cluster(self) -> bool {
        self.cluster
    }

    /// How many shards (streams) there are.
    pub fn shard_count(self) -> u32 {
        self.shards
    }

    /// Every shard.
    pub fn shards(self) -> impl Iterator<Item = Shard> {
        let tagged = self.cluster;
        (0..self.shards).map(move |index| Shard { index, tagged })
    }

    fn shard_of(self, id: &Uuid) -> Shard {
        Shard {
            index: (fnv1a(id) & u64::from(self.shards - 1)) as u32,
            tagged: self.cluster,
        }
    }

    /// The shard a room's keys and channel live in.
    pub fn room_shard(self, room: RoomId) -> Shard {
        self.shard_of(&room.0)
    }

    /// The shard a user's channel lives in.
    pub fn user_shard(self, user: UserId) -> Shard {
        self.shard_of(&user.0)
    }

    fn room_key(self, room: RoomId, what: &str) -> String {
        format!("{}{what}:{room}", self.room_shard(room).prefix())
    }

    /// The channel a room's live events are published on (a sharded channel in a cluster).
    pub fn room_channel(self, room: RoomId) -> String {
        format!("{}{ROOM_CHANNEL}{room}", self.room_shard(room).prefix())
    }

    /// The channel a user's events are published on (a sharded channel in a cluster).
    pub fn user_channel(self, user: UserId) -> String {
        format!("{}{USER_CHANNEL}{user}", self.user_shard(user).prefix())
    }

    /// A room's seq counter.
    pub fn seq(self, room: RoomId) -> String {
        self.room_key(room, "seq")
    }

    /// The cluster node that last moved a room's seq counter (see `append.lua`: a different
    /// node means a failover happened, and the counter jumps ahead of any seq it may have lost).
    pub fn seq_writer(self, room: RoomId) -> String {
        self.room_key(room, "seqw")
    }

    /// A room's recent history: a sorted set of log entries scored by seq.
    pub fn recent(self, room: RoomId) -> String {
        self.room_key(room, "recent")
    }

    /// The highest seq of a room a worker has stored in the database: the recent history
    /// keeps every entry above it, so recovery finds in one place or the other every entry
    /// the workers have not stored yet (see `append.lua`).
    pub fn stored(self, room: RoomId) -> String {
        self.room_key(room, "stored")
    }

    /// A room's entries waiting to be published until they are on enough replicas: a sorted
    /// set of pub/sub payloads scored by seq (used only with `CONFAB_REDIS_WAIT_REPLICAS`).
    pub fn outbox(self, room: RoomId) -> String {
        self.room_key(room, "out")
    }

    /// The persistence stream a room's entries go to.
    pub fn persist_stream(self, room: RoomId) -> String {
        self.room_shard(room).persist_stream()
    }

    /// The answer to a post, by its `client_msg_id`.
    pub fn posted(self, room: RoomId, author: UserId, client_msg_id: &ClientMsgId) -> String {
        format!(
            "{}cmid:{room}:{author}:{client_msg_id}",
            self.room_shard(room).prefix()
        )
    }

    /// The answer to any other change, by its reference.
    pub fn changed(self, room: RoomId, actor: UserId, reference: &ClientRef) -> String {
        format!(
            "{}ref:{room}:{actor}:{reference}",
            self.room_shard(room).prefix()
        )
    }

    /// A room's presence: a hash of `user|instance` fields, valued by username.
    pub fn presence(self, room: RoomId) -> String {
        self.room_key(room, "presence")
    }

    /// An instance's presence entries for the rooms of `room`'s shard.
    pub fn instance_presence(self, room: RoomId, instance: &str) -> String {
        self.room_shard(room).instance_presence(instance)
    }

    /// Where instance liveness lives: cluster-wide, under one hash tag.
    fn instance_prefix(self) -> &'static str {
        if self.cluster {
            "confab:{i}:"
        } else {
            "confab:"
        }
    }

    /// The set of instances that have registered (and may hold presence).
    pub fn instances(self) -> String {
        format!("{}instances", self.instance_prefix())
    }

    /// An instance's liveness key (expires unless refreshed).
    pub fn alive(self, instance: &str) -> String {
        format!("{}alive:{instance}", self.instance_prefix())
    }

    /// The claim of the one instance that reaps a dead one.
    pub fn reaper(self, instance: &str) -> String {
        format!("{}reap:{instance}", self.instance_prefix())
    }

    /// Which room or user a channel is for.
    pub fn parse_channel(self, name: &str) -> Option<Channel> {
        let rest = name.strip_prefix("confab:")?;
        let rest = if self.cluster {
            let (tag, rest) = rest.split_once("}:")?;
            tag.strip_prefix('{')?.parse::<u32>().ok()?;
            rest
        } else {
            rest
        };
        if let Some(room) = rest.strip_prefix(ROOM_CHANNEL) {
            return room.parse().ok().map(|r| Channel::Room(RoomId(r)));
        }
        rest.strip_prefix(USER_CHANNEL)?
            .parse()
            .ok()
            .map(|u| Channel::User(UserId(u)))
    }
}

/// Which room or user a channel is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Room(RoomId),
    User(UserId),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_parse_back_in_both_layouts() {
        let room = RoomId(Uuid::from_u128(1));
        let user = UserId(Uuid::from_u128(2));
        for keys in [KeySpace::single(), KeySpace::cluster(64)] {
            assert_eq!(
                keys.parse_channel(&keys.room_channel(room)),
                Some(Channel::Room(room))
            );
            assert_eq!(
                keys.parse_channel(&keys.user_channel(user)),
                Some(Channel::User(user))
            );
            assert_eq!(keys.parse_channel("confab:r:nope"), None);
            assert_eq!(keys.parse_channel("other"), None);
        }
        assert_eq!(
            KeySpace::single().room_channel(room),
            format!("confab:r:{room}")
        );
    }

    #[test]
    fn a_rooms_keys_share_one_hash_tag_and_rooms_spread_over_shards() {
        let keys = KeySpace::cluster(64);
        let room = RoomId(Uuid::now_v7());
        let tag = format!("{{{}}}", keys.room_shard(room).index());
        for key in [
            keys.seq(room),
            keys.seq_writer(room),
            keys.recent(room),
            keys.outbox(room),
            keys.persist_stream(room),
            keys.presence(room),
            keys.instance_presence(room, "i1"),
            keys.room_channel(room),
            keys.posted(room, UserId(Uuid::nil()), &ClientMsgId::parse("c").unwrap()),
            keys.changed(room, UserId(Uuid::nil()), &ClientRef::parse("r").unwrap()),
        ] {
            assert!(key.starts_with(&format!("confab:{tag}:")), "{key}");
        }
        let mut used = std::collections::HashSet::new();
        for _ in 0..2000 {
            used.insert(keys.room_shard(RoomId(Uuid::now_v7())).index());
        }
        assert_eq!(used.len(), 64, "UUIDv7 rooms reach every shard");
        assert_eq!(KeySpace::cluster(48).shard_count(), 64);
        assert_eq!(KeySpace::single().persist_stream(room), "confab:persist");
        let shard = KeySpace::single().room_shard(room);
        assert_eq!(shard.dead_letter_stream(), "confab:persist:dead");
        let shard = keys.room_shard(room);
        assert_eq!(
            shard.dead_letter_stream(),
            format!("{}:dead", shard.persist_stream())
        );
    }
}
