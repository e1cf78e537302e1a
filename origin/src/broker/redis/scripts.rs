//! The Lua scripts, embedded from their `.lua` files. Each one's header lists its `KEYS` and
//! `ARGV`; key names come from [`super::keys`].

use super::conn::Lua;
use std::sync::LazyLock;

/// Appends one entry to a room's log (idempotency, seq, recent history, stream, publish).
pub static APPEND: LazyLock<Lua> = LazyLock::new(|| Lua::new(include_str!("append.lua")));

/// Publishes a room's outbox up to a seq (when acks wait for replicas).
pub static PUBLISH: LazyLock<Lua> = LazyLock::new(|| Lua::new(include_str!("publish.lua")));

/// Counts a shard master's replicas in sync (before waiting for them).
pub static REPLICAS: LazyLock<Lua> = LazyLock::new(|| Lua::new(include_str!("replicas.lua")));

/// Sets a room's seq counter Redis lost (or never had).
pub static INIT_SEQ: LazyLock<Lua> = LazyLock::new(|| Lua::new(include_str!("init_seq.lua")));

/// Finds a message's current entry in a room's recent history.
pub static FIND_MESSAGE: LazyLock<Lua> =
    LazyLock::new(|| Lua::new(include_str!("find_message.lua")));

/// Records a presence transition and publishes it when it is the user's first or last.
pub static PRESENCE: LazyLock<Lua> = LazyLock::new(|| Lua::new(include_str!("presence.lua")));

/// Moves a persistence stream entry the database cannot take into the dead-letter stream.
pub static SET_ASIDE: LazyLock<Lua> = LazyLock::new(|| Lua::new(include_str!("set_aside.lua")));

/// Moves one set-aside entry from a dead-letter stream back onto its persistence stream.
pub static REPLAY_DEAD_LETTER: LazyLock<Lua> =
    LazyLock::new(|| Lua::new(include_str!("replay_dead_letter.lua")));

/// Server error codes the scripts answer with (matched by code, never by text).
pub mod errors {
    /// The room's seq counter is missing (Redis lost it): initialize it and retry.
    pub const NO_SEQ: &str = "NOSEQ";
    /// The persistence stream is full: refuse, retryable.
    pub const FULL: &str = "FULL";
}
