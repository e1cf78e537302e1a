//! The embedded store: SQLite in WAL mode with `synchronous = FULL`, so a committed batch
//! survives a crash of the process or the machine.

use super::sql::sql_store;
use super::{
    AppendOutcome, LogEntry, MemberRecord, MemberRoom, NewUser, RefreshOutcome, RoomCursor,
    RoomQuery, RoomRecord, StoreError, UserRecord,
};
use confab_shared::admin::{AdminUser, AuditEntry, Invite, TokenInfo};
use confab_shared::api::{Ban, Pin, Receipt, Room, RoomScope, SearchHit};
use confab_shared::conversation::{ReplyTo, RoomKind, RoomRole};
use confab_shared::events::{MessageDeleted, MessageEdited, RoomEvent};
use confab_shared::ids::{ClientMsgId, ClientRef, MessageId, RoomId, SessionId, UserId};
use confab_shared::protocol::{ChatMessage, UserPublic};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, Sqlite};
use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;
use uuid::Uuid;

/// The SQLite store.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

/// The migrations for SQLite, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

impl SqliteStore {
    /// Opens (creating when missing) the database at `url` and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Self, sqlx::Error> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        // SQLite has one writer at a time; a handful of connections serve concurrent reads.
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }
}

super::notify::notify_store!(SqliteStore, Sqlite);
sql_store!(SqliteStore, Sqlite, SqliteRow);
super::admin::admin_sql_store!(SqliteStore, Sqlite, SqliteRow);

impl SqliteStore {
    /// Messages matching a search (FTS5, ranked by bm25), as rows for `Store::search`.
    async fn search_rows(&self, q: &super::SearchQuery) -> Result<Vec<SqliteRow>, StoreError> {
        let Some(terms) = super::sql::fts5_literal(&q.text) else {
            return Ok(Vec::new());
        };
        let mut b: sqlx::QueryBuilder<Sqlite> = sqlx::QueryBuilder::new(format!(
            "SELECT m.id, m.room_id, m.seq, m.author_id, u.username, m.created_at, r.name AS room_name, \
             bm25(messages_fts) AS rank, \
             snippet(messages_fts, 0, '{}', '{}', '…', 16) AS snippet \
             FROM messages_fts JOIN messages m ON m.rowid = messages_fts.rowid \
             JOIN users u ON u.id = m.author_id JOIN rooms r ON r.id = m.room_id \
             JOIN room_members rm ON rm.room_id = m.room_id AND rm.user_id = ",
            super::sql::HIT_START,
            super::sql::HIT_END
        ));
        b.push_bind(q.user.0);
        b.push(" WHERE messages_fts MATCH ").push_bind(terms);
        b.push(" AND m.deleted_at IS NULL");
        if let Some(room) = q.room {
            b.push(" AND m.room_id = ").push_bind(room.0);
        }
        // bm25 is lower for better matches: ascending is best first.
        if let Some(after) = &q.after {
            b.push(" AND (bm25(messages_fts) > ")
                .push_bind(after.rank)
                .push(" OR (bm25(messages_fts) = ")
                .push_bind(after.rank)
                .push(" AND (m.room_id, m.seq) > (")
                .push_bind(after.room.0)
                .push(", ")
                .push_bind(after.seq)
                .push(")))");
        }
        b.push(" ORDER BY rank, m.room_id, m.seq LIMIT ")
            .push_bind(i64::from(q.limit) + 1);
        Ok(b.build().fetch_all(&self.pool).await?)
    }

    /// A transaction that will write: it takes the write lock at once (`BEGIN IMMEDIATE`,
    /// waiting up to the busy timeout), so it never fails half-way because another writer
    /// committed after it first read.
    async fn begin_write(
        pool: &SqlitePool,
    ) -> Result<sqlx::Transaction<'static, Sqlite>, sqlx::Error> {
        pool.begin_with("BEGIN IMMEDIATE").await
    }

    /// Serializes appends to these rooms: nothing to do, SQLite has one writer at a time (a
    /// transaction that writes holds the database's write lock until it ends).
    async fn lock_rooms(
        _conn: &mut sqlx::SqliteConnection,
        _rooms: &[Uuid],
    ) -> Result<(), sqlx::Error> {
        Ok(())
    }
}
