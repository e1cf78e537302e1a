//! Durable state: users, login sessions, rooms, memberships and each room's log, behind the
//! [`Store`] trait. [`sqlite::SqliteStore`] is the embedded default, [`postgres::PgStore`] the
//! scaled one (the same SQL for both, in `sql`). Callers pass the current time in, so the store
//! holds no clock.
//!
//! The room log: [`Store::append`] writes a batch of [`LogEntry`]s (new messages into
//! `messages`, every other entry into `room_events`) and folds each into the messages as they
//! are now, in one transaction; [`Store::events_after`] replays the log.

pub mod admin;
pub mod notify;
pub mod postgres;
pub(crate) mod sql;
pub mod sqlite;

use anyhow::{bail, Context};
use async_trait::async_trait;
use confab_shared::api::{Ban, Pin, Receipt, Room, RoomScope, SearchHit};
use confab_shared::conversation::{RoomKind, RoomRole, Visibility};
use confab_shared::events::RoomEvent;
use confab_shared::ids::{ClientRef, MessageId, RoomId, SessionId, UserId};
use confab_shared::protocol::{ChatMessage, UserPublic};
use std::sync::Arc;

/// A shared handle to the store in use.
pub type DynStore = Arc<dyn Store>;

/// Opens the database at `url` (`sqlite://PATH` or `postgres://...`) and applies migrations.
pub async fn open(url: &str, max_connections: u32) -> anyhow::Result<DynStore> {
    if url.starts_with("sqlite:") {
        let store = sqlite::SqliteStore::connect(url)
            .await
            .with_context(|| format!("opening the database {url}"))?;
        Ok(Arc::new(store))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        let store = postgres::PgStore::connect(url, max_connections)
            .await
            .context("connecting to PostgreSQL")?;
        Ok(Arc::new(store))
    } else {
        bail!("unsupported database URL {url:?}: expected sqlite://PATH or postgres://...")
    }
}

/// Store failures. Constraint violations are named so the HTTP layer can answer 409.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken; the text names what clashed.
    #[error("{0}")]
    Conflict(&'static str),
    /// The request is not allowed by what the database holds (an invite used up or expired,
    /// registration closed); the text says why.
    #[error("{0}")]
    Refused(&'static str),
    /// The database failed.
    #[error("database error")]
    Database(#[from] sqlx::Error),
}

impl StoreError {
    /// Whether the database refused the data itself, so the same write fails however often it
    /// is retried: it breaks a rule of the schema (a foreign key, uniqueness, NOT NULL, a
    /// check; SQLSTATE class 23) or is not valid for its column (class 22), or could not be
    /// encoded. A lost connection, a timeout or a serialization failure is not.
    pub fn rejects_the_data(&self) -> bool {
        match self {
            StoreError::Conflict(_) | StoreError::Refused(_) => true,
            StoreError::Database(sqlx::Error::Encode(_)) => true,
            StoreError::Database(sqlx::Error::Database(e)) => {
                !matches!(e.kind(), sqlx::error::ErrorKind::Other)
                    || e.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                        .is_some_and(|pg| {
                            pg.code().starts_with("22") || pg.code().starts_with("23")
                        })
            }
            StoreError::Database(_) => false,
        }
    }
}

/// A registered user with the fields only the server sees.
#[derive(Debug, Clone)]
pub struct UserRecord {
    pub id: UserId,
    pub username: String,
    pub email: String,
    pub password_hash: String,
    pub created_at: i64,
    pub share_read_receipts: bool,
    /// The site role.
    pub role: confab_shared::admin::SiteRole,
    /// Set while the account is deactivated.
    pub deactivated_at: Option<i64>,
    /// An administrator reset the password: the next sign-in must choose a new one.
    pub must_change_password: bool,
    /// A bot account's owner.
    pub bot_owner: Option<UserId>,
}

impl UserRecord {
    /// The user as others see them.
    pub fn public(&self) -> UserPublic {
        UserPublic {
            id: self.id,
            username: self.username.clone(),
        }
    }
}

/// A new user, already validated.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub id: UserId,
    pub username: String,
    pub username_folded: String,
    pub email: String,
    pub email_folded: String,
    pub password_hash: String,
    pub created_at: i64,
}

impl NewUser {
    /// A new account: a fresh id, the folded forms of its name and address, created now.
    pub fn new(
        username: confab_shared::domain::Username,
        email: confab_shared::domain::Email,
        password_hash: String,
    ) -> Self {
        Self {
            id: UserId(uuid::Uuid::now_v7()),
            username_folded: username.folded(),
            username: username.into_inner(),
            email_folded: email.folded(),
            email: email.into_inner(),
            password_hash,
            created_at: crate::time::now_ms(),
        }
    }
}

impl UserRecord {
    /// What the row just inserted for `user` reads as: receipts shared, no password change
    /// pending, active.
    pub fn inserted(
        user: NewUser,
        role: confab_shared::admin::SiteRole,
        bot_owner: Option<UserId>,
    ) -> Self {
        Self {
            id: user.id,
            username: user.username,
            email: user.email,
            password_hash: user.password_hash,
            created_at: user.created_at,
            share_read_receipts: true,
            role,
            deactivated_at: None,
            must_change_password: false,
            bot_owner,
        }
    }
}

/// What presenting a refresh token led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The token was current: it is now used up and the new one replaces it.
    Rotated { user: UserId, session: SessionId },
    /// The token had already been used: the whole session (family) is now revoked.
    Reused { user: UserId, session: SessionId },
    /// Unknown, expired, or its session is revoked.
    Invalid,
}

/// A room's stored fields.
#[derive(Debug, Clone)]
pub struct RoomRecord {
    pub id: RoomId,
    /// Empty for a direct conversation.
    pub name: String,
    pub kind: RoomKind,
    pub visibility: Visibility,
    pub topic: Option<String>,
    pub created_by: UserId,
    pub created_at: i64,
}

/// A member and their role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRecord {
    pub user: UserPublic,
    pub role: RoomRole,
    pub joined_at: i64,
}

/// A message search, over the rooms `user` is a member of now.
#[derive(Debug, Clone)]
pub struct SearchQuery {
    pub user: UserId,
    /// The words to find, as typed: never interpreted as query syntax.
    pub text: String,
    /// Only this room.
    pub room: Option<RoomId>,
    pub after: Option<SearchCursor>,
    pub limit: u32,
}

/// The keyset position after which search results continue: (rank, room, seq), best first.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SearchCursor {
    pub rank: f64,
    pub room: RoomId,
    pub seq: i64,
}

/// A room the user is a member of, with their read state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRoom {
    pub room: RoomId,
    pub last_read_seq: i64,
    pub unread: i64,
}

/// The keyset position after which a room listing continues: (folded name, id).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RoomCursor {
    pub name_folded: String,
    pub id: RoomId,
}

/// A room search.
#[derive(Debug, Clone)]
pub struct RoomQuery {
    pub user: UserId,
    pub scope: RoomScope,
    /// Case-insensitive substring of the name.
    pub name_contains: Option<String>,
    pub after: Option<RoomCursor>,
    pub limit: u32,
}

/// An entry on its way into a room's log, with its seq already assigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Who made the change (a message's author).
    pub actor: UserId,
    /// The actor's id for the request (a message's `client_msg_id`): a second entry with the
    /// same (room, actor, reference) is not written; the first one's answer is returned.
    pub reference: ClientRef,
    /// When the change was accepted, milliseconds since the Unix epoch.
    pub at: i64,
    /// The entry as clients see it.
    pub event: RoomEvent,
}

impl LogEntry {
    /// A new message's entry.
    pub fn message(message: ChatMessage) -> Self {
        Self {
            actor: message.author.id,
            reference: message.client_msg_id.clone().into(),
            at: message.created_at,
            event: RoomEvent::Message(message),
        }
    }
}

/// What appending one entry of a batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOutcome {
    /// Written now.
    Appended,
    /// An entry with the same (room, actor, reference) was written before: its message (if it
    /// is about one) and seq.
    Duplicate { id: Option<MessageId>, seq: i64 },
}

/// The database behind the origin. Implementations: SQLite (embedded default).
#[async_trait]
pub trait Store: notify::NotifyStore + admin::AdminStore + Send + Sync + 'static {
    /// Checks the database answers.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Closes the connections, waiting for work in progress.
    async fn close(&self);

    /// Creates a user; `Conflict` when the username or email is taken (case-insensitively).
    async fn create_user(&self, user: NewUser) -> Result<UserRecord, StoreError>;
    /// Finds a user by folded username or folded email.
    async fn user_by_login(&self, folded: &str) -> Result<Option<UserRecord>, StoreError>;
    async fn user_by_id(&self, id: UserId) -> Result<Option<UserRecord>, StoreError>;
    async fn set_password_hash(&self, user: UserId, hash: &str) -> Result<(), StoreError>;
    /// Whether others see the user's read receipts.
    async fn set_share_read_receipts(&self, user: UserId, share: bool) -> Result<(), StoreError>;
    /// Users whose folded username starts with `prefix`, after the folded name `after`, by
    /// folded name; up to `limit + 1` so the caller can tell whether another page exists.
    async fn users_by_prefix(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<UserPublic>, StoreError>;
    /// The users among `ids` that exist.
    async fn users_by_ids(&self, ids: &[UserId]) -> Result<Vec<UserPublic>, StoreError>;

    /// Starts a login session with its first refresh token (stored as a hash).
    async fn create_session(
        &self,
        session: SessionId,
        user: UserId,
        refresh_hash: &[u8],
        expires_at: i64,
        now: i64,
    ) -> Result<(), StoreError>;
    /// Trades a refresh token for a new one, detecting reuse of a rotated token.
    async fn rotate_refresh(
        &self,
        presented_hash: &[u8],
        new_hash: &[u8],
        expires_at: i64,
        now: i64,
    ) -> Result<RefreshOutcome, StoreError>;
    /// Whether the session exists and is not revoked.
    async fn session_active(&self, session: SessionId) -> Result<bool, StoreError>;
    /// Which of these sessions exist and are not revoked, in one query (an instance's
    /// periodic checks of its open sockets; see `auth::checks`).
    async fn sessions_active(
        &self,
        sessions: &[SessionId],
    ) -> Result<std::collections::HashSet<SessionId>, StoreError>;
    async fn revoke_session(&self, session: SessionId, now: i64) -> Result<(), StoreError>;
    /// Revokes every session of the user; returns them.
    async fn revoke_user_sessions(
        &self,
        user: UserId,
        now: i64,
    ) -> Result<Vec<SessionId>, StoreError>;

    /// Creates a room and makes the creator its owner; `Conflict` when the name is taken.
    async fn create_room(&self, room: RoomRecord) -> Result<(), StoreError>;
    /// The direct conversation of `members` (whose sorted ids make `dm_key`): the existing one,
    /// or `room` created now with them all as members.
    async fn open_dm(
        &self,
        room: RoomRecord,
        dm_key: &str,
        members: &[UserId],
    ) -> Result<RoomId, StoreError>;
    /// Renames a room and/or sets its topic (`Some(None)` clears it); `Conflict` when the name
    /// is taken.
    async fn update_room(
        &self,
        room: RoomId,
        name: Option<&str>,
        topic: Option<Option<&str>>,
    ) -> Result<(), StoreError>;
    async fn room(&self, id: RoomId) -> Result<Option<RoomRecord>, StoreError>;
    /// One room as the user sees it (membership, unread).
    async fn room_for(&self, id: RoomId, user: UserId) -> Result<Option<Room>, StoreError>;
    /// Searches rooms by name in (folded name, id) order; returns up to `limit + 1` rows so the
    /// caller can tell whether another page exists.
    async fn list_rooms(&self, query: &RoomQuery) -> Result<Vec<(Room, RoomCursor)>, StoreError>;
    /// Adds a member with `role`, their read marker at the room's latest seq; false when
    /// already one.
    async fn add_member(
        &self,
        room: RoomId,
        user: UserId,
        role: RoomRole,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Removes a member; false when not one.
    async fn remove_member(&self, room: RoomId, user: UserId) -> Result<bool, StoreError>;
    async fn is_member(&self, room: RoomId, user: UserId) -> Result<bool, StoreError>;
    /// The user's role in the room (`None`: not a member).
    async fn member_role(&self, room: RoomId, user: UserId)
        -> Result<Option<RoomRole>, StoreError>;
    /// Changes a member's role; false when not a member.
    async fn set_role(
        &self,
        room: RoomId,
        user: UserId,
        role: RoomRole,
    ) -> Result<bool, StoreError>;
    /// Bans the user from the room (removing them if they are a member); false when banned
    /// already.
    async fn ban(
        &self,
        room: RoomId,
        user: UserId,
        by: UserId,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Lifts a ban; false when there was none.
    async fn unban(&self, room: RoomId, user: UserId) -> Result<bool, StoreError>;
    async fn is_banned(&self, room: RoomId, user: UserId) -> Result<bool, StoreError>;
    /// The room's bans, newest first.
    async fn bans(&self, room: RoomId) -> Result<Vec<Ban>, StoreError>;
    /// The members among those with these folded usernames (for `@mentions`).
    async fn members_named(
        &self,
        room: RoomId,
        folded: &[String],
    ) -> Result<Vec<UserPublic>, StoreError>;
    /// Every room the user is in, with read state.
    async fn member_rooms(&self, user: UserId) -> Result<Vec<MemberRoom>, StoreError>;
    /// Members with their role and join time, by name.
    async fn members(&self, room: RoomId) -> Result<Vec<MemberRecord>, StoreError>;
    /// How far each member has read: the members who share their receipts, and `viewer`.
    async fn receipts(&self, room: RoomId, viewer: UserId) -> Result<Vec<Receipt>, StoreError>;
    /// Moves the read marker forward (never back); returns the marker in force.
    async fn mark_read(&self, room: RoomId, user: UserId, seq: i64) -> Result<i64, StoreError>;
    /// Unread count for one member room.
    async fn unread(&self, room: RoomId, user: UserId) -> Result<i64, StoreError>;

    /// Appends a batch of log entries (ascending by seq within each room) in one transaction,
    /// and folds them into the messages as they are now: an edit changes its message's text
    /// (unless a later edit already did, or the message is deleted), a deletion empties the
    /// message and the text of its edits. Entries may arrive after later ones of the same
    /// message (two workers); the result is the same. Entries whose (room, actor, reference)
    /// exists are not written again.
    async fn append(&self, batch: &[LogEntry]) -> Result<Vec<AppendOutcome>, StoreError>;
    /// Up to `limit` live messages with seq < `before_seq` (all when None), ascending, as
    /// `viewer` sees them (reactions with `me`).
    async fn messages_before(
        &self,
        room: RoomId,
        before_seq: Option<i64>,
        limit: u32,
        viewer: UserId,
    ) -> Result<Vec<ChatMessage>, StoreError>;
    /// Up to `limit` live messages with seq >= `from_seq`, ascending, as `viewer` sees them.
    async fn messages_from(
        &self,
        room: RoomId,
        from_seq: i64,
        limit: u32,
        viewer: UserId,
    ) -> Result<Vec<ChatMessage>, StoreError>;
    /// The room's pinned messages, newest pin first.
    async fn pins(&self, room: RoomId, viewer: UserId) -> Result<Vec<Pin>, StoreError>;
    /// Messages matching a search, best first, with their cursors; up to `limit + 1`.
    async fn search(
        &self,
        query: &SearchQuery,
    ) -> Result<Vec<(SearchHit, SearchCursor)>, StoreError>;
    /// Up to `limit` entries of the room's log with seq > `after_seq`, ascending; entries about
    /// messages show them as they are now (a deleted one as a tombstone), without reactions or
    /// pin state (the entries that follow add those).
    async fn events_after(
        &self,
        room: RoomId,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<RoomEvent>, StoreError>;
    /// The highest seq of the room's log (0 when empty).
    async fn last_seq(&self, room: RoomId) -> Result<i64, StoreError>;
    /// A message as it is now (a deleted one as a tombstone).
    async fn message(&self, id: MessageId) -> Result<Option<ChatMessage>, StoreError>;
    /// The message (if it is about one) and seq of the entry (other than a new message) the
    /// actor made with this reference in the room.
    async fn entry_by_ref(
        &self,
        room: RoomId,
        actor: UserId,
        reference: &ClientRef,
    ) -> Result<Option<(Option<MessageId>, i64)>, StoreError>;

    // Uploads (see `crate::files`). Default bodies refuse, so a store written without them still
    // compiles; every store the server opens implements them.

    /// Records an upload: allowed by a ticket (type and size still unknown) or already stored.
    async fn insert_upload(&self, upload: &UploadRecord) -> Result<(), StoreError>;
    /// An upload by its key.
    async fn upload(&self, key: &str) -> Result<Option<UploadRecord>, StoreError>;
    /// Fills in the look-alike keys (skeletons) of users and rooms made before they existed;
    /// returns how many. A row whose key clashes with another's keeps none (and is logged).
    async fn fill_missing_skeletons(&self) -> Result<u64, StoreError>;

    /// Claims a ticketed upload for the one request that may write its bytes: true for exactly
    /// one caller, however many race (false once claimed or completed). Atomic in the database.
    async fn claim_upload(&self, key: &str, now: i64) -> Result<bool, StoreError>;
    /// Records the checked type and size of an upload whose bytes are now stored.
    async fn complete_upload(
        &self,
        key: &str,
        content_type: &str,
        size: i64,
    ) -> Result<(), StoreError>;
}

/// An uploaded file's row: which room and uploader its key belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRecord {
    /// The storage key, also the attachment id.
    pub key: String,
    pub room: RoomId,
    pub uploader: UserId,
    /// The cleaned file name.
    pub name: String,
    /// The detected type, once the bytes are stored and checked.
    pub content_type: Option<String>,
    /// The size in bytes, once the bytes are stored.
    pub size: Option<i64>,
    pub created_at: i64,
}
