//! The WebSocket gateway at `GET /ws`: [`upgrade`] checks the handshake (Origin allowlist,
//! session cookie, connection cap) and hands each accepted socket to a [`session::Session`],
//! one task per connection, which listens to the connection's rooms in the local fan-out and
//! speaks the protocol of `confab_shared::protocol`.

pub mod session;
mod upgrade;

pub use upgrade::upgrade;
