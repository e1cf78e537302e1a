//! `confab worker`: moves accepted log entries from the Redis persistence stream into the
//! database.
//!
//! Entries are read in batches through a consumer group, appended in ONE transaction per batch
//! (an entry already stored is skipped by its unique (room, actor, reference); see
//! [`Store::append`](crate::store::Store::append) for entries that arrive out of order),
//! and acknowledged (and deleted from the stream) only after the commit. A worker restarted
//! under the same name first takes up its own unacknowledged entries; entries left by a worker
//! that died for good are claimed by the others after `claim_idle_ms`.

use crate::broker::redis::keys::{PERSIST_GROUP, PERSIST_STREAM};
use crate::broker::redis::{manager_config, wire};
use crate::config::WorkerConfig;
use crate::store::DynStore;
use anyhow::Context;
use redis::aio::ConnectionManager;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadOptions, StreamReadReply};
use redis::AsyncCommands;
use std::future::Future;
use std::time::Duration;

/// How long one read blocks waiting for new entries.
const BLOCK_MS: usize = 1000;
/// How often other consumers' stale entries are claimed and lag is logged.
const CLAIM_EVERY: Duration = Duration::from_secs(5);

fn consumer_name(config: &WorkerConfig) -> String {
    config.worker_name.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "local".into());
        format!("worker-{host}")
    })
}

/// Creates the consumer group (reading from the start of the stream) unless it exists.
pub async fn ensure_group(conn: &mut ConnectionManager) -> redis::RedisResult<()> {
    let created: redis::RedisResult<()> = conn
        .xgroup_create_mkstream(PERSIST_STREAM, PERSIST_GROUP, "0")
        .await;
    match created {
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        other => other,
    }
}

/// One worker: a store, a Redis connection and a consumer name.
pub struct Worker {
    store: DynStore,
    conn: ConnectionManager,
    name: String,
    batch: usize,
    claim_idle_ms: u64,
}

impl Worker {
    /// Connects to both ends.
    pub async fn connect(config: &WorkerConfig) -> anyhow::Result<Self> {
        let store =
            crate::store::open(&config.database_url, config.database_max_connections).await?;
        let client = redis::Client::open(config.redis_url.as_str())?;
        let mut conn = ConnectionManager::new_with_config(client, manager_config())
            .await
            .context("connecting to Redis")?;
        ensure_group(&mut conn).await?;
        Ok(Self {
            store,
            conn,
            name: consumer_name(config),
            batch: config.batch.max(1),
            claim_idle_ms: config.claim_idle_ms,
        })
    }

    /// Writes a batch, then acknowledges it. Entries that cannot be decoded are logged and
    /// dropped (acknowledged), so they never block the stream.
    async fn persist(&mut self, entries: &[StreamId]) -> anyhow::Result<usize> {
        if entries.is_empty() {
            return Ok(0);
        }
        let mut batch = Vec::with_capacity(entries.len());
        for e in entries {
            match wire::decode_stream_entry(e) {
                Some(entry) => batch.push(entry),
                None => tracing::error!(id = %e.id, "dropping an unreadable stream entry"),
            }
        }
        metrics::histogram!("confab_persist_batch_size").record(batch.len() as f64);
        crate::metrics::db("append", self.store.append(&batch))
            .await
            .context("writing a batch")?;
        for entry in &batch {
            crate::metrics::since_accepted("confab_persist_lag_seconds", entry.at);
        }
        let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
        let _acked: i64 = self.conn.xack(PERSIST_STREAM, PERSIST_GROUP, &ids).await?;
        let _deleted: i64 = self.conn.xdel(PERSIST_STREAM, &ids).await?;
        Ok(batch.len())
    }

    /// Reads from `start` ("0" = own pending entries, ">" = new ones).
    async fn read(&mut self, start: &str, block: bool) -> anyhow::Result<Vec<StreamId>> {
        let mut opts = StreamReadOptions::default()
            .group(PERSIST_GROUP, &self.name)
            .count(self.batch);
        if block {
            opts = opts.block(BLOCK_MS);
        }
        let reply: Option<StreamReadReply> = self
            .conn
            .xread_options(&[PERSIST_STREAM], &[start], &opts)
            .await?;
        Ok(reply
            .map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect())
            .unwrap_or_default())
    }

    async fn claim_stale(&mut self) -> anyhow::Result<Vec<StreamId>> {
        let reply: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
            .arg(PERSIST_STREAM)
            .arg(PERSIST_GROUP)
            .arg(&self.name)
            .arg(self.claim_idle_ms)
            .arg("0-0")
            .arg("COUNT")
            .arg(self.batch)
            .query_async(&mut self.conn)
            .await?;
        Ok(reply.claimed)
    }

    async fn log_lag(&mut self) {
        let len: redis::RedisResult<i64> = self.conn.xlen(PERSIST_STREAM).await;
        if let Ok(len) = len {
            tracing::info!(backlog = len, "persistence stream backlog");
        }
    }

    /// Runs until `stop` resolves, then finishes the batch in hand.
    pub async fn run(mut self, stop: impl Future<Output = ()>) -> anyhow::Result<()> {
        tokio::pin!(stop);
        tracing::info!(consumer = %self.name, "worker started");
        // Our own entries from before a crash come first.
        let mut own_pending = true;
        let mut last_claim = tokio::time::Instant::now();
        loop {
            let step = async {
                if own_pending {
                    let entries = self.read("0", false).await?;
                    if entries.is_empty() {
                        own_pending = false;
                    }
                    return self.persist(&entries).await;
                }
                if last_claim.elapsed() >= CLAIM_EVERY {
                    last_claim = tokio::time::Instant::now();
                    self.log_lag().await;
                    let claimed = self.claim_stale().await?;
                    if !claimed.is_empty() {
                        tracing::info!(
                            entries = claimed.len(),
                            "claimed entries of a stalled worker"
                        );
                        return self.persist(&claimed).await;
                    }
                }
                let entries = self.read(">", true).await?;
                self.persist(&entries).await
            };
            tokio::select! {
                _ = &mut stop => break,
                result = step => {
                    if let Err(e) = result {
                        // Nothing was acknowledged: the entries stay pending and are read again.
                        tracing::warn!(error = format!("{e:#}"), "persisting failed; retrying");
                        own_pending = true;
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        }
        tracing::info!("worker stopped");
        self.store.close().await;
        Ok(())
    }
}
