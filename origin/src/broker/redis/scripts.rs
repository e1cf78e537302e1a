//! The Lua scripts, embedded from their `.lua` files. Each one's header lists its `KEYS` and
//! `ARGV`; key names come from [`super::keys`].

use redis::Script;
use std::sync::LazyLock;

/// Appends one entry to a room's log (idempotency, seq, recent history, stream, publish).
pub static APPEND: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("append.lua")));

/// Finds a message's current entry in a room's recent history.
pub static FIND_MESSAGE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("find_message.lua")));

/// Records a presence transition and publishes it when it is the user's first or last.
pub static PRESENCE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("presence.lua")));

/// Server error codes the scripts answer with (matched by code, never by text).
pub mod errors {
    /// The room's seq counter is missing (Redis lost it): initialize it and retry.
    pub const NO_SEQ: &str = "NOSEQ";
    /// The persistence stream is full: refuse, retryable.
    pub const FULL: &str = "FULL";
}
