//! The connection to Redis, one Redis or a Redis Cluster, behind one type, so the broker, the
//! presence code and the workers send the same commands either way.
//!
//! - One Redis: a reconnecting [`ConnectionManager`].
//! - A cluster: the `redis` crate's `cluster_async` connection. It keeps one multiplexed
//!   connection per node, routes each command (and each pipeline, by its first key) to the
//!   master of the key's slot and follows `MOVED`. It does not follow a failover by itself:
//!   it refreshes its slot map on `MOVED` only, so after a master dies it keeps trying the dead
//!   address (until something answers there), and in our failover tests its request loop
//!   stopped answering altogether once the replica was promoted. [`ClusterLink`] therefore
//!   replaces the whole cluster connection after a few consecutive connection failures or
//!   timeouts: the new one reads the slot map afresh, from whichever nodes answer, and so finds
//!   the promoted replica.
//!
//! Both give up fast (a few retries, short timeouts): during an outage or a failover a change
//! must fail with a retryable error rather than hang, and the client's resend tries again.

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, ToRedisArgs, Value};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Where Redis is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisTarget {
    /// One Redis (`redis://host:port`).
    Single(String),
    /// A Redis Cluster: some of its nodes (`redis://host:port` each); the others are found.
    Cluster(Vec<String>),
}

impl RedisTarget {
    /// The target named by the settings: `CONFAB_REDIS_URL` or `CONFAB_REDIS_CLUSTER`
    /// (`host:port,host:port`, or `redis://` URLs), not both.
    pub fn from_settings(
        url: Option<&str>,
        cluster: &[String],
    ) -> anyhow::Result<Option<RedisTarget>> {
        let nodes: Vec<String> = cluster
            .iter()
            .map(|n| n.trim())
            .filter(|n| !n.is_empty())
            .map(|n| {
                if n.contains("://") {
                    n.to_owned()
                } else {
                    format!("redis://{n}")
                }
            })
            .collect();
        // An empty setting is no setting (docker-compose passes unset ones as empty).
        let url = url.map(str::trim).filter(|u| !u.is_empty());
        match (url, nodes.is_empty()) {
            (Some(_), false) => anyhow::bail!(
                "set CONFAB_REDIS_URL (one Redis) or CONFAB_REDIS_CLUSTER (a Redis Cluster), not both"
            ),
            (Some(url), true) => Ok(Some(RedisTarget::Single(url.to_owned()))),
            (None, false) => Ok(Some(RedisTarget::Cluster(nodes))),
            (None, true) => Ok(None),
        }
    }

    /// The key layout that goes with this target.
    pub fn key_space(&self, shards: u32) -> super::keys::KeySpace {
        match self {
            RedisTarget::Single(_) => super::keys::KeySpace::single(),
            RedisTarget::Cluster(_) => super::keys::KeySpace::cluster(shards),
        }
    }
}

/// Reconnect quickly and give up quickly (see the module docs).
pub fn manager_config() -> redis::aio::ConnectionManagerConfig {
    redis::aio::ConnectionManagerConfig::new()
        .set_number_of_retries(2)
        .set_factor(100)
        .set_max_delay(500)
        .set_connection_timeout(Duration::from_secs(1))
        .set_response_timeout(Duration::from_secs(2))
}

/// How long a command may take to be answered (a connection waiting for `WAIT`s gets the
/// `WAIT` timeout on top).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// The cluster client's settings: the same fail-fast policy as [`manager_config`]. Three
/// retries, 100-400 ms apart, span a node's death and the refresh of the slot map.
pub fn cluster_builder(nodes: &[String]) -> ClusterClientBuilder {
    ClusterClientBuilder::new(nodes.to_vec())
        .retries(3)
        .min_retry_wait(100)
        .max_retry_wait(400)
        .connection_timeout(Duration::from_secs(1))
        .response_timeout(RESPONSE_TIMEOUT)
}

/// Consecutive connection failures or timeouts after which a cluster connection is replaced.
const RENEW_AFTER_FAILURES: u32 = 3;

/// A cluster connection that replaces itself when it stops getting answers (see the module
/// docs). Shared by every clone of a [`RedisConn`].
pub struct ClusterLink {
    builder: Box<dyn Fn() -> ClusterClientBuilder + Send + Sync>,
    current: RwLock<ClusterConnection>,
    failures: AtomicU32,
    /// How many times it was replaced (subscriptions do not carry over to a new one).
    generation: AtomicU32,
    /// Held by the one request that is replacing the connection.
    renewing: tokio::sync::Mutex<()>,
}

impl ClusterLink {
    /// Connects with the client `builder` makes (called again for each replacement).
    pub async fn connect(
        builder: impl Fn() -> ClusterClientBuilder + Send + Sync + 'static,
    ) -> RedisResult<Arc<Self>> {
        let conn = builder().build()?.get_async_connection().await?;
        Ok(Arc::new(Self {
            builder: Box::new(builder),
            current: RwLock::new(conn),
            failures: AtomicU32::new(0),
            generation: AtomicU32::new(0),
            renewing: tokio::sync::Mutex::new(()),
        }))
    }

    /// The connection in use (a cheap clone; the lock is held only to clone it).
    pub fn conn(&self) -> ClusterConnection {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// How many times the connection was replaced.
    pub fn generation(&self) -> u32 {
        self.generation.load(Ordering::Relaxed)
    }

    /// Counts a request's outcome; after enough failures in a row, replaces the connection
    /// (one request does it; the others go on failing fast meanwhile).
    async fn observe<T>(&self, result: &RedisResult<T>) {
        let failed = match result {
            Ok(_) => false,
            Err(e) => {
                e.is_io_error()
                    || e.is_timeout()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
                    || e.kind() == redis::ErrorKind::ClusterConnectionNotFound
            }
        };
        if !failed {
            self.failures.store(0, Ordering::Relaxed);
            return;
        }
        if self.failures.fetch_add(1, Ordering::Relaxed) + 1 < RENEW_AFTER_FAILURES {
            return;
        }
        let Ok(_renewing) = self.renewing.try_lock() else {
            return;
        };
        let fresh = async { (self.builder)().build()?.get_async_connection().await };
        match tokio::time::timeout(Duration::from_secs(3), fresh).await {
            Ok(Ok(conn)) => {
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = conn;
                self.failures.store(0, Ordering::Relaxed);
                self.generation.fetch_add(1, Ordering::Relaxed);
                tracing::info!("redis cluster connection replaced (slot map read afresh)");
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "replacing the redis cluster connection failed")
            }
            Err(_) => tracing::warn!("replacing the redis cluster connection timed out"),
        }
    }
}

/// A command connection to one Redis or to a cluster. Cheap to clone (multiplexed).
#[derive(Clone)]
pub enum RedisConn {
    Single(ConnectionManager),
    Cluster(Arc<ClusterLink>),
}

impl RedisConn {
    /// Connects, failing when Redis cannot be reached now.
    pub async fn connect(target: &RedisTarget) -> RedisResult<Self> {
        Self::connect_waiting(target, Duration::ZERO).await
    }

    /// Connects a connection whose commands may also wait up to `wait` for replicas.
    pub async fn connect_waiting(target: &RedisTarget, wait: Duration) -> RedisResult<Self> {
        let timeout = RESPONSE_TIMEOUT + wait;
        match target {
            RedisTarget::Single(url) => {
                let client = redis::Client::open(url.as_str())?;
                let config = manager_config().set_response_timeout(timeout);
                Ok(Self::Single(
                    ConnectionManager::new_with_config(client, config).await?,
                ))
            }
            RedisTarget::Cluster(nodes) => {
                let nodes = nodes.clone();
                Ok(Self::Cluster(
                    ClusterLink::connect(move || cluster_builder(&nodes).response_timeout(timeout))
                        .await?,
                ))
            }
        }
    }
}

/// Connections for commands that `WAIT` for replicas. A `WAIT` holds up every command behind
/// it on its connection, and a cluster client has one connection per node: several of them
/// let that many appends wait for their replicas at once.
pub struct WaitLanes {
    lanes: Vec<RedisConn>,
    next: std::sync::atomic::AtomicUsize,
}

impl WaitLanes {
    /// Opens `count` connections that may wait up to `wait`.
    pub async fn connect(target: &RedisTarget, count: usize, wait: Duration) -> RedisResult<Self> {
        let mut lanes = Vec::with_capacity(count);
        for _ in 0..count.max(1) {
            lanes.push(RedisConn::connect_waiting(target, wait).await?);
        }
        Ok(Self {
            lanes,
            next: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// The next connection, round robin.
    pub fn pick(&self) -> RedisConn {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.lanes.len();
        self.lanes[i].clone()
    }
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConn::Single(c) => c.req_packed_command(cmd),
            RedisConn::Cluster(link) => Box::pin(async move {
                let result = link.conn().req_packed_command(cmd).await;
                link.observe(&result).await;
                result
            }),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConn::Single(c) => c.req_packed_commands(cmd, offset, count),
            RedisConn::Cluster(link) => Box::pin(async move {
                let result = link.conn().req_packed_commands(cmd, offset, count).await;
                link.observe(&result).await;
                result
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConn::Single(c) => c.get_db(),
            RedisConn::Cluster(_) => 0,
        }
    }
}

/// A Lua script embedded from its file: its source and its SHA-1.
pub struct Lua {
    code: &'static str,
    hash: String,
}

impl Lua {
    pub fn new(code: &'static str) -> Self {
        Self {
            hash: redis::Script::new(code).get_hash().to_owned(),
            code,
        }
    }

    /// A call of the script: add its `KEYS` and `ARGV`, then invoke it alone or in a pipeline.
    pub fn call(&'static self) -> LuaCall {
        LuaCall {
            lua: self,
            keys: Vec::new(),
            args: Vec::new(),
        }
    }
}

/// One call of a [`Lua`] script. Unlike `redis::ScriptInvocation` it can be sent in a pipeline
/// (the append and the `WAIT` after it must travel on the same connection to the same node).
pub struct LuaCall {
    lua: &'static Lua,
    keys: Vec<Vec<u8>>,
    args: Vec<Vec<u8>>,
}

impl LuaCall {
    pub fn key(mut self, key: impl ToRedisArgs) -> Self {
        self.keys.extend(key.to_redis_args());
        self
    }

    pub fn arg(mut self, arg: impl ToRedisArgs) -> Self {
        self.args.extend(arg.to_redis_args());
        self
    }

    /// `EVALSHA` (`by_hash`) or `EVAL` (which also caches the script on that node).
    pub fn cmd(&self, by_hash: bool) -> Cmd {
        let mut cmd = if by_hash {
            let mut c = redis::cmd("EVALSHA");
            c.arg(&self.lua.hash);
            c
        } else {
            let mut c = redis::cmd("EVAL");
            c.arg(self.lua.code);
            c
        };
        cmd.arg(self.keys.len()).arg(&self.keys).arg(&self.args);
        cmd
    }

    /// Runs the script: by its hash, and by its source on a node that does not have it yet (a
    /// fresh node, or a replica just promoted).
    pub async fn invoke<T: redis::FromRedisValue>(
        &self,
        conn: &mut impl ConnectionLike,
    ) -> RedisResult<T> {
        match self.cmd(true).query_async(conn).await {
            Err(e) if e.kind() == redis::ErrorKind::NoScriptError => {
                self.cmd(false).query_async(conn).await
            }
            other => other,
        }
    }

    /// Runs the script, then `WAIT`s until its writes are on `replicas` replicas (at most
    /// `timeout_ms`), in one pipeline on one connection: `WAIT` counts the writes of the
    /// connection it is sent on. Returns the script's answer and how many replicas have it.
    pub async fn invoke_and_wait<T: redis::FromRedisValue>(
        &self,
        conn: &mut impl ConnectionLike,
        replicas: u32,
        timeout_ms: u64,
    ) -> RedisResult<(T, u32)> {
        let pipe = |by_hash: bool| {
            let mut p = redis::pipe();
            p.add_command(self.cmd(by_hash))
                .cmd("WAIT")
                .arg(replicas)
                .arg(timeout_ms);
            p
        };
        match pipe(true).query_async(conn).await {
            Err(e) if e.kind() == redis::ErrorKind::NoScriptError => {
                pipe(false).query_async(conn).await
            }
            other => other,
        }
    }
}
