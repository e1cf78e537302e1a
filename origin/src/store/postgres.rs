//! The scaled-out store: PostgreSQL, shared by every origin instance and worker.

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

super::notify::notify_store!(PgStore, Postgres);
sql_store!(PgStore, Postgres, PgRow);
super::admin::admin_sql_store!(PgStore, Postgres, PgRow);

impl PgStore {
    /// Messages matching a search (tsvector, ranked by ts_rank), as rows for `Store::search`.
    async fn search_rows(&self, q: &super::SearchQuery) -> Result<Vec<PgRow>, StoreError> {
        if !q.text.chars().any(char::is_alphanumeric) {
            return Ok(Vec::new());
        }
        // plainto_tsquery reads no operators: every word typed is a literal term, all required.
        let mut b: sqlx::QueryBuilder<Postgres> = sqlx::QueryBuilder::new(format!(
            "SELECT * FROM (SELECT m.id, m.room_id, m.seq, m.author_id, u.username, m.created_at, \
             r.name AS room_name, -ts_rank(m.body_tsv, q)::float8 AS rank, \
             ts_headline('simple', m.body, q, 'StartSel={}, StopSel={}, MaxWords=24, MinWords=8, ShortWord=0') AS snippet \
             FROM messages m CROSS JOIN plainto_tsquery('simple', ",
            super::sql::HIT_START,
            super::sql::HIT_END
        ));
        b.push_bind(q.text.clone());
        b.push(
            ") q JOIN users u ON u.id = m.author_id JOIN rooms r ON r.id = m.room_id \
             JOIN room_members rm ON rm.room_id = m.room_id AND rm.user_id = ",
        );
        b.push_bind(q.user.0);
        b.push(" WHERE m.body_tsv @@ q AND m.deleted_at IS NULL");
        if let Some(room) = q.room {
            b.push(" AND m.room_id = ").push_bind(room.0);
        }
        b.push(") hits WHERE 1 = 1");
        // The rank is negated so that ascending is best first, as with SQLite's bm25.
        if let Some(after) = &q.after {
            b.push(" AND (rank, room_id, seq) > (")
                .push_bind(after.rank)
                .push(", ")
                .push_bind(after.room.0)
                .push(", ")
                .push_bind(after.seq)
                .push(")");
        }
        b.push(" ORDER BY rank, room_id, seq LIMIT ")
            .push_bind(i64::from(q.limit) + 1);
        Ok(b.build().fetch_all(&self.pool).await?)
    }

    /// A transaction that will write.
    async fn begin_write(
        pool: &PgPool,
    ) -> Result<sqlx::Transaction<'static, Postgres>, sqlx::Error> {
        pool.begin().await
    }

    /// Serializes appends to these rooms: a transaction-scoped advisory lock per room, taken
    /// in one order (the keys sorted), so two batches of the same rooms wait for each other and
    /// never deadlock. Unlike `SELECT … FOR UPDATE` on the rooms' rows it writes nothing: no
    /// tuple lock in the heap, no WAL record per room per batch. Two rooms whose keys collide
    /// only wait for each other.
    async fn lock_rooms(conn: &mut sqlx::PgConnection, rooms: &[Uuid]) -> Result<(), sqlx::Error> {
        let mut keys: Vec<i64> = rooms.iter().map(|r| room_lock_key(*r)).collect();
        keys.sort_unstable();
        keys.dedup();
        // A function scan yields the array's elements in order: the locks are taken sorted.
        sqlx::query("SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k")
            .bind(&keys)
            .fetch_all(conn)
            .await?;
        Ok(())
    }
}

/// The advisory lock key of a room's appends: its id folded to 64 bits, in a range of its own
/// (the top bits name the use, so other advisory locks of this database cannot collide).
fn room_lock_key(room: Uuid) -> i64 {
    let (hi, lo) = room.as_u64_pair();
    (((hi ^ lo) & 0x00ff_ffff_ffff_ffff) | 0x0100_0000_0000_0000) as i64
}
