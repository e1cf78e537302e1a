//! Confab's shared vocabulary: everything the server, the edge worker and the web client must agree on.
//!
//! - [`ids`]: newtype identifiers (`UserId`, `RoomId`, `MessageId`, `SessionId`, `ClientMsgId`,
//!   `ClientRef`).
//! - [`conversation`]: rooms' kinds, visibility and roles, topics, reaction emoji, replies and
//!   `@mentions`.
//! - [`domain`]: values parsed at the boundary (`Username`, `Email`, `Password`, `RoomName`,
//!   `MessageBody`); once you hold one, it is valid.
//! - [`events`]: the room log's entries ([`events::RoomEvent`]: `message`, `edited`, `deleted`),
//!   shared by the WebSocket, the HTTP catch-up endpoint and the store.
//! - [`protocol`]: the WebSocket frames, [`protocol::ClientFrame`] and [`protocol::ServerFrame`],
//!   JSON objects tagged by `"type"`.
//! - [`api`]: the JSON bodies of the HTTP API under `/api`.
//! - [`notify`]: Web Push subscriptions, notification levels and settings, the push payload.
//! - [`admin`]: site roles, invites, the administrators' API and audit log, API tokens, bots
//!   and incoming webhooks.
//! - [`error`]: [`error::ErrorCode`], shared by HTTP error bodies and `error` frames.
//! - [`claims`]: the access-token claims (EdDSA-signed JWT) that origin and edge both verify.
//! - [`files`]: upload rules both tiers apply (type sniffing, inline or download, ranges, ETags)
//!   and the upload-ticket claims.
//! - [`edge`] (feature `edge`): the client address the edge worker signs for the origin.
//! - [`preview`]: the link-preview address policy (SSRF blocklist) and, with the `preview`
//!   feature, the one HTML extraction function both tiers use.
//!
//! This crate has no runtime, framework or database dependency, so it builds for
//! `wasm32-unknown-unknown`. With the `ts` feature it derives TypeScript definitions, which a test
//! writes to `web/src/generated/protocol.ts`.

pub mod admin;
pub mod api;
pub mod claims;
pub mod conversation;
pub mod domain;
#[cfg(feature = "edge")]
pub mod edge;
pub mod error;
pub mod events;
pub mod files;
pub mod ids;
pub mod notify;
pub mod preview;
pub mod protocol;

pub use error::ErrorCode;
