//! Confab's WebSocket connection: RFC 6455 framing and permessage-deflate (RFC 7692) over any
//! tokio byte stream, as a [`futures::Stream`] of received [`Message`]s and a
//! [`futures::Sink`] of messages to send.
//!
//! Why our own and not tungstenite's (whose message types and accept-key derivation this
//! crate still uses): tungstenite refuses compressed frames, and no maintained library lets a
//! server compress a frame once for all its recipients. The rest follows from what a chat
//! server's connections are — thousands, mostly idle:
//! - **Buffers only while bytes are in flight.** Input is read into the stack and only an
//!   incomplete frame is kept on the heap; output is queued in a buffer that is freed once
//!   written. An idle connection holds its socket and a few flags.
//! - **Deflate state per thread, not per connection** ([`deflate`]): no context takeover
//!   either way, so every message is compressed on its own, and a frame sent to many
//!   connections ([`Message::Shared`]) is compressed at most once.
//! - **Bounded.** A frame or message over [`Options::max_message`] (after inflating, too) is
//!   [`Error::TooBig`], found from the header before its payload is buffered.
//!
//! [`handshake`] has the opening handshake for both roles; [`frame`] the frame layer.

pub mod deflate;
pub mod frame;
pub mod handshake;
mod socket;

pub use socket::{Options, Role, WebSocket};
pub use tungstenite::Utf8Bytes;

use bytes::Bytes;
use std::sync::{Arc, OnceLock};

/// A message received or to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Text(Utf8Bytes),
    Binary(Bytes),
    Ping(Bytes),
    Pong(Bytes),
    /// A close frame (`None`: without a status code).
    Close(Option<CloseFrame>),
    /// A text message serialized once for many connections (only ever sent): each connection
    /// that negotiated compression sends its compressed form, made by the first one.
    Shared(Arc<Shared>),
}

/// A close frame's status code and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    pub code: u16,
    pub reason: Utf8Bytes,
}

/// A text message shared by many connections, with its compressed form made at most once.
#[derive(Debug, Default)]
pub struct Shared {
    text: Utf8Bytes,
    deflated: OnceLock<Bytes>,
}

impl Shared {
    pub fn new(text: Utf8Bytes) -> Self {
        Self {
            text,
            deflated: OnceLock::new(),
        }
    }

    /// The message's text.
    pub fn text(&self) -> &Utf8Bytes {
        &self.text
    }

    /// The message compressed (permessage-deflate without context takeover), made on first use.
    pub fn deflated(&self) -> &Bytes {
        self.deflated
            .get_or_init(|| deflate::compress(self.text.as_bytes()))
    }
}

impl PartialEq for Shared {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for Shared {}

/// Why a connection failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The peer broke the protocol (close with 1002, or 1007 for invalid text).
    #[error("protocol violation: {0}")]
    Protocol(&'static str),
    /// A text message that is not UTF-8.
    #[error("invalid UTF-8 in a text message")]
    InvalidText,
    /// A frame or message over the size limit (close with 1009).
    #[error("message over the size limit")]
    TooBig,
    /// The closing handshake has started: nothing more can be sent.
    #[error("the connection is closing")]
    Closed,
    #[error("handshake failed: {0}")]
    Handshake(&'static str),
    /// The server answered the upgrade with this status instead of 101.
    #[error("the server refused the upgrade with HTTP {0}")]
    Rejected(u16),
}
