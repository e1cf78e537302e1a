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
//!   task; [`gateway::hub::RoomHub`] holds this instance's live rooms and users.
//! - [`broker`]: accepts messages (seq, durable hand-off, fan-out), presence and recovery;
//!   [`broker::memory`] is the in-process one, with its batch persister.
//! - [`store`]: the database behind a trait; [`store::sqlite`] is the embedded default,
//!   [`store::postgres`] the scaled one (the same SQL for both, in `store::sql`).
//! - [`broker::redis`]: the broker for many instances (Lua publish, one pub/sub connection per
//!   instance, presence with heartbeats); [`worker`]: `confab worker`, which moves messages
//!   from the Redis stream into the database.
//! - [`files`]: uploaded files (local disk or S3/R2), upload checks, attachment resolution.
//! - [`preview`]: the SSRF-safe link-preview fetcher with its bounded cache.
//!
//! A message: client `send` → `Session` validates (membership, rate, body) → `Broker` assigns
//! the room's next seq and queues it → the persister writes the batch in one statement and
//! commits → the broker delivers the frame (serialized once) to the hub → every session in the
//! room writes the same bytes → the sender gets `ack`.

pub mod auth;
pub mod broker;
pub mod config;
pub mod error;
pub mod files;
pub mod gateway;
pub mod http;
pub mod limits;
pub mod mail;
pub mod metrics;
pub mod preview;
pub mod server;
pub mod startup;
pub mod state;
pub mod store;
pub mod time;
pub mod worker;

pub use config::Config;
pub use startup::Application;
