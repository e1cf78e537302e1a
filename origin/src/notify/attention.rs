//! Who is looking at which room: a connection looks at a room while it is subscribed to it and
//! its tab is visible (the client sends `visibility {visible}`). Nobody is notified about a
//! room they are looking at. [`MemoryAttention`] is the embedded one; [`RedisAttention`] is
//! shared by every instance and the workers (a sorted set per user whose members are
//! `room/connection` and whose scores are expiry times, refreshed by the connection's pings,
//! so a dead instance's connections stop counting on their own).

use async_trait::async_trait;
use confab_shared::ids::{RoomId, UserId};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// A shared handle to the attention registry in use.
pub type DynAttention = Arc<dyn Attention>;

/// Who looks at what.
#[async_trait]
pub trait Attention: Send + Sync + 'static {
    /// Records that connection `conn` of `user` looks (or stops looking) at `room`.
    async fn set(&self, user: UserId, room: RoomId, conn: Uuid, looking: bool);
    /// Renews what `conn` looks at (it is still there).
    async fn renew(&self, user: UserId, rooms: &[RoomId], conn: Uuid);
    /// Whether any connection of `user`, on any instance, looks at `room`. When unsure
    /// (backend down) the answer is no: a notification too many beats a missed one.
    async fn looking(&self, user: UserId, room: RoomId) -> bool;
}

/// The in-process registry.
#[derive(Default)]
pub struct MemoryAttention {
    /// Tiny critical sections, never held across an await.
    looking: Mutex<HashMap<(UserId, RoomId), HashSet<Uuid>>>,
}

#[async_trait]
impl Attention for MemoryAttention {
    async fn set(&self, user: UserId, room: RoomId, conn: Uuid, looking: bool) {
        let mut map = self.looking.lock().unwrap_or_else(|p| p.into_inner());
        if looking {
            map.entry((user, room)).or_default().insert(conn);
        } else if let Some(conns) = map.get_mut(&(user, room)) {
            conns.remove(&conn);
            if conns.is_empty() {
                map.remove(&(user, room));
            }
        }
    }

    async fn renew(&self, _user: UserId, _rooms: &[RoomId], _conn: Uuid) {}

    async fn looking(&self, user: UserId, room: RoomId) -> bool {
        let map = self.looking.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&(user, room)).is_some_and(|c| !c.is_empty())
    }
}

/// The registry in Redis, for many instances.
pub struct RedisAttention {
    conn: redis::aio::ConnectionManager,
    /// How long an entry counts without renewal.
    ttl_ms: i64,
}

impl RedisAttention {
    /// Connects to `url`; entries count for `ttl_ms` unless renewed.
    pub async fn connect(url: &str, ttl_ms: i64) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)?;
        let conn = redis::aio::ConnectionManager::new_with_config(
            client,
            crate::broker::redis::manager_config(),
        )
        .await?;
        Ok(Self { conn, ttl_ms })
    }

    fn key(user: UserId) -> String {
        format!("confab:attention:{{{}}}", user.0)
    }

    fn member(room: RoomId, conn: Uuid) -> String {
        format!("{}/{}", room.0, conn)
    }
}

#[async_trait]
impl Attention for RedisAttention {
    async fn set(&self, user: UserId, room: RoomId, conn: Uuid, looking: bool) {
        let mut c = self.conn.clone();
        let key = Self::key(user);
        let now = crate::time::now_ms();
        let result: redis::RedisResult<()> = if looking {
            redis::pipe()
                .cmd("ZADD")
                .arg(&key)
                .arg(now + self.ttl_ms)
                .arg(Self::member(room, conn))
                .ignore()
                .cmd("ZREMRANGEBYSCORE")
                .arg(&key)
                .arg("-inf")
                .arg(now)
                .ignore()
                .cmd("PEXPIRE")
                .arg(&key)
                .arg(self.ttl_ms)
                .ignore()
                .query_async(&mut c)
                .await
        } else {
            redis::cmd("ZREM")
                .arg(&key)
                .arg(Self::member(room, conn))
                .query_async(&mut c)
                .await
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "recording attention failed");
        }
    }

    async fn renew(&self, user: UserId, rooms: &[RoomId], conn: Uuid) {
        if rooms.is_empty() {
            return;
        }
        let mut c = self.conn.clone();
        let key = Self::key(user);
        let until = crate::time::now_ms() + self.ttl_ms;
        let mut pipe = redis::pipe();
        for room in rooms {
            pipe.cmd("ZADD")
                .arg(&key)
                .arg(until)
                .arg(Self::member(*room, conn))
                .ignore();
        }
        pipe.cmd("PEXPIRE").arg(&key).arg(self.ttl_ms).ignore();
        if let Err(e) = pipe.query_async::<()>(&mut c).await {
            tracing::warn!(error = %e, "renewing attention failed");
        }
    }

    async fn looking(&self, user: UserId, room: RoomId) -> bool {
        let mut c = self.conn.clone();
        let found: redis::RedisResult<Vec<String>> = redis::cmd("ZRANGEBYSCORE")
            .arg(Self::key(user))
            .arg(crate::time::now_ms())
            .arg("+inf")
            .query_async(&mut c)
            .await;
        let prefix = format!("{}/", room.0);
        match found {
            Ok(members) => members.iter().any(|m| m.starts_with(&prefix)),
            Err(e) => {
                tracing::warn!(error = %e, "reading attention failed");
                false
            }
        }
    }
}
