//! The embedded store: SQLite in WAL mode with `synchronous = FULL`, so a committed batch
//! survives a crash of the process or the machine.

use super::sql::sql_store;
use super::{
    AppendOutcome, LogEntry, MemberRoom, NewUser, RefreshOutcome, RoomCursor, RoomQuery,
    RoomRecord, StoreError, UserRecord,
};
use confab_shared::api::{Room, RoomScope};
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

sql_store!(SqliteStore, Sqlite, SqliteRow);

impl SqliteStore {
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
