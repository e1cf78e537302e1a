//! The local fan-out: which rooms and users have live connections on this instance, and the
//! one [`mailbox::Mailbox`] of each connection. It sits below both the broker (which hands it
//! events) and the gateway (whose sessions drain the mailboxes), and knows neither: it carries
//! frames as plain bytes ([`Frame`]), serialized once by whoever published them, plus the few
//! facts a session needs to decide what to do with each ([`DeliveryKind`]). The user events it
//! carries are of a type its owner (the broker) chooses.
//!
//! - [`hub::RoomHub`]: rooms → listeners (mailboxes), users → their connections' mailboxes,
//!   presence counts; tells its owner when a room or user starts or stops being live here.
//! - [`mailbox`]: one connection's bounded inbox and waker.

pub mod hub;
pub mod mailbox;

use confab_shared::ids::UserId;
use confab_shared::protocol::UserPublic;
use confab_ws::{Shared, Utf8Bytes};
use std::sync::Arc;

pub use hub::RoomHub;
pub use mailbox::{Batch, Mail, Mailbox};

/// A server frame's JSON text, shared by every recipient: cloning it is a reference-count
/// increment. A connection that compresses sends its deflated form, made once for all of them
/// by the first that needs it ([`confab_ws::Shared`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Frame(Arc<Shared>);

impl Frame {
    /// Takes a serialized frame without copying it.
    pub fn from_json(json: String) -> Self {
        Self(Arc::new(Shared::new(json.into())))
    }

    /// A frame known at compile time.
    pub fn from_static(json: &'static str) -> Self {
        Self(Arc::new(Shared::new(Utf8Bytes::from_static(json))))
    }

    /// The frame's encodings, shared with every other recipient (the gateway writes it as a
    /// `confab_ws::Message::Shared`).
    pub fn shared(&self) -> Arc<Shared> {
        self.0.clone()
    }

    /// The JSON text.
    pub fn text(&self) -> &str {
        self.0.text()
    }

    /// The JSON text's bytes.
    pub fn bytes(&self) -> &[u8] {
        self.0.text().as_bytes()
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.0.text().len()
    }

    /// Whether the frame is empty (the placeholder of a [`DeliveryKind::Resync`]).
    pub fn is_empty(&self) -> bool {
        self.0.text().is_empty()
    }
}

/// One event for a room's local connections, serialized once.
#[derive(Debug)]
pub struct Delivery {
    /// What it is, for the per-connection decisions.
    pub kind: DeliveryKind,
    /// The frame as JSON text, shared by every recipient.
    pub frame: Frame,
}

impl Delivery {
    /// An event with its frame already serialized.
    pub fn new(kind: DeliveryKind, json: String) -> Arc<Self> {
        Arc::new(Self {
            kind,
            frame: Frame::from_json(json),
        })
    }
}

/// The kind of a [`Delivery`]: what a session needs to know to route it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryKind {
    /// A new message, entry `seq` of the room's log, mentioning `mentions`. Subscribed
    /// connections get the frame; the others of members get an `activity` counter bump instead.
    Message {
        seq: i64,
        author: UserPublic,
        mentions: Vec<UserId>,
    },
    /// Any other entry of the room's log (an edit, a deletion...): for subscribed connections
    /// only, skipped by one that already has `seq`.
    Entry { seq: i64 },
    /// An ephemeral event (presence, typing), for subscribed connections only. `from` names
    /// the user whose own action it reports: it is not echoed back to them.
    Event { from: Option<UserId> },
    /// This instance may have missed events of the room (its broker link was down): every
    /// subscribed connection must resync.
    Resync,
}

impl DeliveryKind {
    /// The log position of an entry; `None` for what is not in the log.
    pub fn seq(&self) -> Option<i64> {
        match self {
            Self::Message { seq, .. } | Self::Entry { seq } => Some(*seq),
            Self::Event { .. } | Self::Resync => None,
        }
    }
}
