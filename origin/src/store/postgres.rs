//! The scaled-out store: PostgreSQL, shared by every origin instance and worker.

use super::sql::sql_store;
use super::{
    AppendOutcome, LogEntry, MemberRoom, NewUser, RefreshOutcome, RoomCursor, RoomQuery,
    RoomRecord, StoreError, UserRecord,
};
use confab_shared::api::{Room, RoomScope};
use confab_shared::events::{MessageDeleted, MessageEdited, RoomEvent};
use confab_shared::ids::{ClientMsgId, ClientRef, MessageId, RoomId, SessionId, UserId};
use confab_shared::protocol::{ChatMessage, UserPublic};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Row};
use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;
use uuid::Uuid;

/// The PostgreSQL store.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
}

/// The migrations for PostgreSQL, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

impl PgStore {
    /// Connects (pool of `max_connections`) and applies pending migrations. Concurrent
    /// instances starting together are safe: sqlx takes an advisory lock while migrating.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, sqlx::Error> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }
}

sql_store!(PgStore, Postgres, PgRow);

impl PgStore {
    /// A transaction that will write.
    async fn begin_write(
        pool: &PgPool,
    ) -> Result<sqlx::Transaction<'static, Postgres>, sqlx::Error> {
        pool.begin().await
    }

    /// Serializes appends to these rooms (sorted): their rows are locked until the transaction
    /// ends, in one order, so two batches of the same rooms wait for each other, never deadlock.
    async fn lock_rooms(conn: &mut sqlx::PgConnection, rooms: &[Uuid]) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT id FROM rooms WHERE id = ANY($1) ORDER BY id FOR UPDATE")
            .bind(rooms)
            .fetch_all(conn)
            .await?;
        Ok(())
    }
}
