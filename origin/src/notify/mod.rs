//! Notifications that reach people with no Confab tab open.
//!
//! - [`vapid`]: the server's VAPID key (generated on the embedded default, configured elsewhere).
//! - [`endpoint`]: push endpoints are untrusted input: known push services over https, the
//!   previews' SSRF address policy, connections pinned to checked addresses.
//! - [`attention`]: who is looking at which room (subscribed and visible), in process or in
//!   Redis; nobody is notified about a room they are looking at.
//! - [`sender`]: one encrypted, VAPID-signed push to one subscription, with retries.
//! - [`dispatch`]: who gets what (levels, mentions, attention), one push per user and room per
//!   coalescing window, the close sent when the room is read, metrics.
//! - [`queue`]: the way from a request to the dispatcher: an in-process bounded queue
//!   (embedded) or a Redis stream read by `confab worker` (scaled out), at least once.
//! - [`digest`]: the e-mail digest of mentions and direct messages still unread after a delay.
//!
//! A post: `chat::post` → [`Notifier::posted`] puts a [`Job`] on the queue (never failing
//! the post; scaled out, the worker that stores the message queues it instead, see
//! [`Job::stored`]) → the dispatcher decides per member and sends. A read: the gateway or
//! `POST /api/rooms/{id}/read` → [`Notifier::read`] → the dispatcher closes what it showed.

pub mod attention;
pub mod digest;
pub mod dispatch;
pub mod endpoint;
pub mod queue;
pub mod sender;
pub mod vapid;
pub mod worker;

use attention::DynAttention;
use confab_shared::ids::{MessageId, RoomId, UserId};
use confab_shared::preview::Allowlist;
use confab_shared::protocol::UserPublic;
use std::sync::Arc;

/// What the dispatcher is asked to do.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "job", rename_all = "snake_case")]
pub enum Job {
    /// A new message was accepted.
    Posted {
        room: RoomId,
        seq: i64,
        message: MessageId,
        author: UserPublic,
        body: String,
        mentions: Vec<UserId>,
        /// When it was queued (ms; a job the worker queued: when its message was accepted),
        /// for the queue-lag metric.
        at: i64,
    },
    /// A user read a room up to `seq`: close what was shown for it.
    Read {
        user: UserId,
        room: RoomId,
        seq: i64,
        at: i64,
    },
}

impl Job {
    /// The job of a message entry a worker has just stored (`outcome`: what the database said
    /// of it), or `None` for an entry that is not a new message. An entry stored before (read
    /// again after a worker failed between storing and acknowledging it) gives the first
    /// entry's id and seq: pushes are at least once.
    pub fn stored(
        entry: &crate::store::LogEntry,
        outcome: &crate::store::AppendOutcome,
    ) -> Option<Self> {
        use crate::store::AppendOutcome;
        let confab_shared::events::RoomEvent::Message(m) = &entry.event else {
            return None;
        };
        let (message, seq) = match outcome {
            AppendOutcome::Appended => (m.id, m.seq),
            AppendOutcome::Duplicate { id: Some(id), seq } => (*id, *seq),
            AppendOutcome::Duplicate { id: None, .. } => return None,
        };
        Some(Self::Posted {
            room: m.room,
            seq,
            message,
            author: m.author.clone(),
            body: m.body.clone(),
            mentions: m.mentions.clone(),
            at: entry.at,
        })
    }

    /// When it was queued (ms).
    pub fn queued_at(&self) -> i64 {
        match self {
            Self::Posted { at, .. } | Self::Read { at, .. } => *at,
        }
    }
}

/// A message just accepted, as [`Notifier::posted`] takes it.
pub struct Posted<'a> {
    pub room: RoomId,
    pub seq: i64,
    pub message: MessageId,
    pub author: &'a UserPublic,
    pub body: &'a str,
    pub mentions: &'a [UserId],
}

/// The request side of notifications, held by the state: queues jobs, records attention, and
/// knows the VAPID public key. Cheap to share.
pub struct Notifier {
    /// `None` when Web Push is off.
    queue: Option<queue::JobQueue>,
    /// Who looks at which room.
    pub attention: DynAttention,
    /// The VAPID key, when Web Push is on.
    pub vapid: Option<Arc<vapid::Vapid>>,
    /// `CONFAB_PUSH_ALLOWLIST` (tests only).
    pub allow: Allowlist,
}

impl Notifier {
    pub fn new(
        queue: Option<queue::JobQueue>,
        attention: DynAttention,
        vapid: Option<Arc<vapid::Vapid>>,
        allow: Allowlist,
    ) -> Self {
        Self {
            queue,
            attention,
            vapid,
            allow,
        }
    }

    /// Whether Web Push is on.
    pub fn enabled(&self) -> bool {
        self.vapid.is_some() && self.queue.is_some()
    }

    /// A message was accepted: queue its notifications. Never fails the post (a full queue
    /// drops the job and counts it). Scaled out (the Redis queue) this does nothing: the
    /// worker that stores the message queues its job (see [`crate::worker`]).
    pub async fn posted(&self, post: Posted<'_>) {
        let Some(queue @ queue::JobQueue::Local(_)) = &self.queue else {
            return;
        };
        queue
            .push(Job::Posted {
                room: post.room,
                seq: post.seq,
                message: post.message,
                author: post.author.clone(),
                body: post.body.to_owned(),
                mentions: post.mentions.to_vec(),
                at: crate::time::now_ms(),
            })
            .await;
    }

    /// A user read a room: close its notification on their devices.
    pub async fn read(&self, user: UserId, room: RoomId, seq: i64) {
        let Some(queue) = &self.queue else { return };
        queue
            .push(Job::Read {
                user,
                room,
                seq,
                at: crate::time::now_ms(),
            })
            .await;
    }
}

/// The sender's settings from the configuration.
pub fn send_settings(config: &crate::config::PushConfig) -> sender::SendSettings {
    sender::SendSettings {
        attempts: config.attempts,
        backoff: std::time::Duration::from_millis(config.backoff_ms),
        ttl_secs: config.ttl_secs,
    }
}

/// Loads the VAPID key: configured, or (embedded only) generated into the data directory.
pub fn load_vapid(
    config: &crate::config::PushConfig,
    data_dir: &std::path::Path,
    embedded: bool,
    default_host: &str,
) -> anyhow::Result<vapid::Vapid> {
    let subject = config
        .vapid_subject
        .clone()
        .unwrap_or_else(|| format!("mailto:confab@{default_host}"));
    match &config.vapid_private_key_file {
        Some(path) => vapid::Vapid::load_or_generate(path, false, subject),
        None if embedded => {
            vapid::Vapid::load_or_generate(&data_dir.join("vapid-p256.pem"), true, subject)
        }
        None => anyhow::bail!(
            "Web Push is on but no VAPID key is configured: set CONFAB_VAPID_PRIVATE_KEY_FILE \
             to a PEM file (create one with `confab keygen --vapid > vapid.pem`; every instance \
             and worker needs the same one), or turn push off with CONFAB_PUSH=false. Only the \
             embedded SQLite setup generates a key by itself."
        ),
    }
}
