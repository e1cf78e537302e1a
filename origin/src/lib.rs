//! Confab's origin server.
//!
//! Modules, and how data flows between them:
//!
//! - [`config`]: settings (flags and `CONFAB_*` variables) with embedded defaults.
//! - [`startup`]: binds, builds the components into an [`state::AppState`], serves, shuts down.
//! - [`server`]: the HTTP accept loop: per-address connection cap, head and keep-alive
//!   deadlines, graceful shutdown.
//! - [`mail`]: outgoing e-mail (SMTP), for registration by e-mail confirmation.
//! - [`limits`]: per-user and per-address caps on things held at once (sockets, uploads,
//!   preview fetches).
//! - [`http`]: the JSON API under `/api` (one router per area), health checks, the web client.
//! - [`auth`]: Argon2id passwords, EdDSA access tokens, rotating refresh tokens, throttling,
//!   and the [`auth::AuthUser`] extractor.
//! - [`gateway`]: the WebSocket endpoint. Each connection is a [`gateway::session::Session`]
//!   task.
//! - [`chat`]: what members do to a room's messages (post, edit, delete, react, pin), checked
//!   once for both the WebSocket and the HTTP API.
//! - [`membership`]: who is in a room and who decides (join, add, remove, ban, roles, name and
//!   topic, direct conversations).
//! - [`broker`]: appends changes to each room's log (seq, durable hand-off, fan-out), presence
//!   and recovery; [`broker::memory`] is the in-process one, with its batch persister;
//!   [`broker::redis`] the one for many instances (Lua append, one pub/sub connection per
//!   instance, presence with heartbeats).
//! - [`fanout`]: this instance's live rooms and users and each connection's mailbox, below both
//!   the broker and the gateway; it carries pre-serialized frames.
//! - [`store`]: the database behind a trait; [`store::sqlite`] is the embedded default,
//!   [`store::postgres`] the scaled one (the same SQL for both, in `store::sql`).
//! - [`operator`]: `confab admin ...`, site administration from the command line (the
//!   database directly).
//! - [`worker`]: `confab worker`, which moves log entries from the Redis stream into the
//!   database.
//! - [`dead_letters`]: `confab dead-letters`, what the workers set aside (list, replay,
//!   discard).
//! - [`notify`]: notifications for people with no tab open: Web Push (VAPID, endpoint policy,
//!   who gets what, coalescing, the queue and its dispatcher) and the e-mail digest.
//! - [`files`]: uploaded files (local disk or S3/R2), upload checks, attachment resolution.
//! - [`preview`]: the SSRF-safe link-preview fetcher with its bounded cache.
//!
//! A change: client `send` / `edit` / `delete` → `Session` checks membership and rate →
//! [`chat`] checks the body and authorship → `Broker` assigns the room's next seq and queues
//! the entry → the persister writes the batch in one transaction and commits → the broker
//! delivers the entry (serialized once) to the fan-out → every session in the room writes the
//! same bytes → the sender gets `ack`.
//!
//! Layers, each depending only on those below it: `http`, `gateway` → `state` → `chat` →
//! `broker`, `files`, `preview` → `fanout`, `store` → `config`, `metrics`, `time`
//! (`tests/layering.rs` fails on an import circle).

pub mod auth;
pub mod broker;
pub mod chat;
pub mod config;
pub mod dead_letters;
pub mod error;
pub mod fanout;
pub mod files;
pub mod gateway;
pub mod http;
pub mod limits;
pub mod mail;
pub mod membership;
pub mod metrics;
pub mod notify;
pub mod operator;
pub mod peer;
pub mod preview;
pub mod server;
pub mod startup;
pub mod state;
pub mod store;
pub mod time;
pub mod worker;

pub use config::Config;
pub use startup::Application;
