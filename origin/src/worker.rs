//! `confab worker`: moves accepted log entries from the Redis persistence streams into the
//! database.
//!
//! One Redis has one stream; a Redis Cluster has one per shard (see
//! [`keys`](crate::broker::redis::keys)), and every worker reads every shard's stream through
//! the same consumer group, so the entries spread over the workers and a dead worker's are
//! taken over by the others. Entries are read in rounds: each round reads every stream (own
//! unacknowledged entries first where a worker may have left some, other consumers' stale
//! entries every few seconds), appends what came in ONE transaction per `batch` entries (an
//! entry already stored is skipped by its unique (room, actor, reference); see
//! [`Store::append`](crate::store::Store::append) for entries that arrive out of order), and
//! acknowledges (and deletes) the entries only after the commit. One stream is read with a
//! blocking read, and after a round that filled no batch the worker lingers
//! (`CONFAB_WORKER_LINGER_MS`) so the next round finds many entries: a transaction, a read and
//! an acknowledgement per batch rather than per message is most of what the durable path
//! costs. Many streams are polled, back to back while they are busy and less often as they go
//! quiet (a blocking read per stream would need a connection per stream: a blocked command
//! holds up everything behind it on its connection).
//!
//! An entry the database refuses (its room or author is not there, or its data breaks a rule
//! of the schema) or that cannot be read is set aside, with the reason, in its shard's
//! dead-letter stream (`confab:persist:dead`, or `confab:{7}:persist:dead` on a cluster),
//! acknowledged and deleted in one atomic step (`confab dead-letters` lists, replays or
//! discards them; see [`crate::dead_letters`]): retried, it would fail the same way forever and hold up every entry behind
//! it until the stream filled and the instances refused new messages. Any other failure (the
//! database unreachable, a timeout) leaves the round's entries pending, to be read again.
//!
//! With Web Push on (one Redis), the worker also queues each stored message's notification
//! job (the push stream of [`crate::notify::queue`]), after the commit and before the
//! acknowledgement, and only for rooms where a member other than the author has a push
//! subscription (one query per round): the instances queue none, so a message is one stream
//! entry, not two, and a room nobody could be pushed to costs nothing more. A worker that
//! fails in between reads the entries again and queues their jobs again (pushes are at least
//! once).
//!
//! With `CONFAB_REDIS_WAIT_REPLICAS`, a worker persists only entries that are on that many
//! replicas (it `WAIT`s after reading them), so nothing a failover takes back is ever in the
//! database.

use crate::broker::redis::conn::{RedisConn, RedisTarget};
use crate::broker::redis::keys::{KeySpace, Shard, PERSIST_GROUP};
use crate::broker::redis::scripts::{REPLICAS, SET_ASIDE};
use crate::broker::redis::wire;
use crate::config::WorkerConfig;
use crate::notify::{queue, Job};
use crate::store::{AppendOutcome, DynStore, LogEntry, StoreError};
use anyhow::Context;
use confab_shared::ids::RoomId;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadOptions, StreamReadReply};
use redis::AsyncCommands;
use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::time::Duration;

/// About how many set-aside entries each dead-letter stream keeps.
const DEAD_LETTERS_KEPT: usize = 10_000;
/// How long one read blocks waiting for new entries (one stream only).
const BLOCK_MS: usize = 1000;
/// How often other consumers' stale entries are claimed and lag is logged.
const CLAIM_EVERY: Duration = Duration::from_secs(5);
/// Between rounds over many streams: after a round that found entries but filled no batch,
/// and the longest pause once they are all quiet.
const BUSY_PAUSE: Duration = Duration::from_millis(50);
const IDLE_PAUSE: Duration = Duration::from_millis(200);

/// Creates the consumer group on `stream` (reading from its start) unless it exists.
pub async fn ensure_group(conn: &mut RedisConn, stream: &str) -> redis::RedisResult<()> {
    let created: redis::RedisResult<()> = conn
        .xgroup_create_mkstream(stream, PERSIST_GROUP, "0")
        .await;
    match created {
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        other => other,
    }
}

/// What one stream gave in a round.
struct Read {
    shard: Shard,
    entries: Vec<StreamId>,
    /// Read from the worker's own unacknowledged entries, and there are no more of them.
    own_done: bool,
}

/// Where a worker queues the notification jobs of the messages it stores.
struct PushJobs {
    stream: String,
    /// About how many entries the stream keeps.
    max: i64,
}

/// One worker: a store, a Redis connection and a consumer name.
pub struct Worker {
    store: DynStore,
    conn: RedisConn,
    /// With `wait_replicas`: the connection the `WAIT`s go on (a `WAIT` blocks its connection,
    /// and the reads of every other stream go on `conn`).
    wait_conn: Option<RedisConn>,
    keys: KeySpace,
    name: String,
    batch: usize,
    /// After a batch that was not full, how long to gather entries before the next.
    linger: Duration,
    claim_idle_ms: u64,
    wait_replicas: u32,
    wait_timeout_ms: u64,
    /// Per shard: whether this consumer may have unacknowledged entries to read first (at
    /// start, and after a batch that was not written or not yet replicated).
    own_pending: Vec<bool>,
    /// With Web Push on (one Redis: the notification workers read one stream).
    push: Option<PushJobs>,
}

/// What an operator reads in the dead-letter stream: the database's own words where it gave any.
fn reason(e: &StoreError) -> String {
    match e {
        StoreError::Database(db) => db.to_string(),
        other => other.to_string(),
    }
}

impl Worker {
    /// Connects to both ends.
    pub async fn connect(config: &WorkerConfig) -> anyhow::Result<Self> {
        let target =
            RedisTarget::from_settings(config.redis_url.as_deref(), &config.redis_cluster.nodes)?
                .context("set CONFAB_REDIS_URL or CONFAB_REDIS_CLUSTER")?;
        let store =
            crate::store::open(&config.database_url, config.database_max_connections).await?;
        let keys = target.key_space(config.redis_cluster.shards);
        let mut conn = RedisConn::connect(&target)
            .await
            .context("connecting to Redis")?;
        for shard in keys.shards() {
            ensure_group(&mut conn, &shard.persist_stream()).await?;
        }
        let wait_conn = if config.redis_cluster.wait_replicas > 0 {
            let wait = Duration::from_millis(config.redis_cluster.wait_timeout_ms);
            Some(RedisConn::connect_waiting(&target, wait).await?)
        } else {
            None
        };
        Ok(Self {
            store,
            conn,
            wait_conn,
            keys,
            name: config.consumer_name(),
            batch: config.batch.max(1),
            linger: Duration::from_millis(config.linger_ms),
            claim_idle_ms: config.claim_idle_ms,
            wait_replicas: config.redis_cluster.wait_replicas,
            wait_timeout_ms: config.redis_cluster.wait_timeout_ms,
            own_pending: vec![true; keys.shard_count() as usize],
            push: (config.push.enabled && config.redis_url.is_some()).then(|| PushJobs {
                stream: config.push.stream.clone(),
                max: config.push.queue_capacity as i64,
            }),
        })
    }

    /// Reads one shard's stream for this round.
    async fn read_shard(&self, shard: Shard, claim: bool, block: bool) -> anyhow::Result<Read> {
        let stream = shard.persist_stream();
        let mut conn = self.conn.clone();
        let mut own_done = false;
        if self.own_pending[shard.index() as usize] {
            let entries = self.read(&mut conn, &stream, "0", false).await?;
            if !entries.is_empty() {
                return Ok(Read {
                    shard,
                    entries,
                    own_done,
                });
            }
            own_done = true;
        }
        if claim {
            let reply: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
                .arg(&stream)
                .arg(PERSIST_GROUP)
                .arg(&self.name)
                .arg(self.claim_idle_ms)
                .arg("0-0")
                .arg("COUNT")
                .arg(self.batch)
                .query_async(&mut conn)
                .await?;
            if !reply.claimed.is_empty() {
                tracing::info!(
                    entries = reply.claimed.len(),
                    stream,
                    "claimed entries of a stalled worker"
                );
                return Ok(Read {
                    shard,
                    entries: reply.claimed,
                    own_done,
                });
            }
        }
        let entries = self.read(&mut conn, &stream, ">", block).await?;
        Ok(Read {
            shard,
            entries,
            own_done,
        })
    }

    /// Reads from `start` ("0" = own pending entries, ">" = new ones).
    async fn read(
        &self,
        conn: &mut RedisConn,
        stream: &str,
        start: &str,
        block: bool,
    ) -> anyhow::Result<Vec<StreamId>> {
        let mut opts = StreamReadOptions::default()
            .group(PERSIST_GROUP, &self.name)
            .count(self.batch);
        if block {
            opts = opts.block(BLOCK_MS);
        }
        let reply: Option<StreamReadReply> = conn.xread_options(&[stream], &[start], &opts).await?;
        Ok(reply
            .map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect())
            .unwrap_or_default())
    }

    /// Whether the entries just read are on enough replicas. The `XCLAIM` (of entries already
    /// ours) is a write on this connection that comes after the entries in the replication
    /// stream, so the `WAIT` behind it covers them however they were read.
    async fn replicated(&self, shard: Shard, entries: &[StreamId]) -> anyhow::Result<bool> {
        let Some(wait_conn) = &self.wait_conn else {
            return Ok(true);
        };
        // A master without replicas in sync would only make the WAIT time out.
        let in_sync: u32 = REPLICAS
            .call()
            .key(shard.persist_stream())
            .invoke(&mut self.conn.clone())
            .await?;
        if in_sync < self.wait_replicas {
            return Ok(false);
        }
        let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
        let mut conn = wait_conn.clone();
        let (_claimed, replicas): (redis::Value, u32) = redis::pipe()
            .cmd("XCLAIM")
            .arg(shard.persist_stream())
            .arg(PERSIST_GROUP)
            .arg(&self.name)
            .arg(0)
            .arg(&ids)
            .arg("JUSTID")
            .cmd("WAIT")
            .arg(self.wait_replicas)
            .arg(self.wait_timeout_ms)
            .query_async(&mut conn)
            .await?;
        Ok(replicas >= self.wait_replicas)
    }

    /// Acknowledges and deletes a read's entries, after telling each of its rooms' recent
    /// history how far the database now has that room (`stored`: the highest seq stored per
    /// room, see [`KeySpace::stored`]). Two workers may set one room's mark out of order;
    /// a mark set too low only keeps a few more recent entries until the next batch.
    async fn ack(
        &self,
        shard: Shard,
        entries: &[StreamId],
        stored: &BTreeMap<RoomId, i64>,
    ) -> anyhow::Result<()> {
        let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
        let stream = shard.persist_stream();
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        for (&room, seq) in stored {
            if self.keys.room_shard(room) == shard {
                pipe.cmd("SET")
                    .arg(self.keys.stored(room))
                    .arg(seq)
                    .ignore();
            }
        }
        let (_acked, _deleted): (i64, i64) = pipe
            .cmd("XACK")
            .arg(&stream)
            .arg(PERSIST_GROUP)
            .arg(&ids)
            .cmd("XDEL")
            .arg(&stream)
            .arg(&ids)
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    /// One round over every stream. Returns how many entries were written and whether some
    /// stream filled a whole batch (more is waiting).
    async fn round(&mut self, claim: bool) -> anyhow::Result<(usize, bool)> {
        let block = self.keys.shard_count() == 1;
        let reads = futures::future::join_all(
            self.keys
                .shards()
                .map(|shard| self.read_shard(shard, claim, block)),
        )
        .await;
        let mut got = Vec::new();
        let mut failed = 0;
        for (shard, read) in self.keys.shards().zip(reads) {
            match read {
                Ok(read) => {
                    if read.own_done {
                        self.own_pending[shard.index() as usize] = false;
                    }
                    if !read.entries.is_empty() {
                        got.push(read);
                    }
                }
                // That shard's master may be failing over: the others go on.
                Err(e) => {
                    failed += 1;
                    tracing::warn!(
                        error = format!("{e:#}"),
                        stream = shard.persist_stream(),
                        "reading failed; retrying"
                    );
                }
            }
        }
        if got.is_empty() && failed > 0 {
            anyhow::bail!("{failed} persistence streams could not be read");
        }
        let full = got.iter().any(|r| r.entries.len() >= self.batch);
        let checks =
            futures::future::join_all(got.iter().map(|r| self.replicated(r.shard, &r.entries)))
                .await;
        let mut ready = Vec::with_capacity(got.len());
        for (read, check) in got.into_iter().zip(checks) {
            match check {
                Ok(true) => ready.push(read),
                outcome => {
                    if let Err(e) = outcome {
                        tracing::warn!(error = format!("{e:#}"), "waiting for replicas failed");
                    } else {
                        tracing::warn!(
                            stream = read.shard.persist_stream(),
                            "entries not on enough replicas yet; not persisting them"
                        );
                    }
                    // Left unacknowledged: read again from our own pending entries.
                    self.own_pending[read.shard.index() as usize] = true;
                }
            }
        }
        if ready.is_empty() {
            return Ok((0, full));
        }
        let (written, stored) = match self.persist(&ready).await {
            Ok(done) => done,
            Err(e) => {
                for read in &ready {
                    self.own_pending[read.shard.index() as usize] = true;
                }
                return Err(e);
            }
        };
        let acks =
            futures::future::join_all(ready.iter().map(|r| self.ack(r.shard, &r.entries, &stored)))
                .await;
        for (read, ack) in ready.iter().zip(acks) {
            if let Err(e) = ack {
                // Written but not acknowledged: read again, skipped as already stored.
                tracing::warn!(error = format!("{e:#}"), "acknowledging failed");
                self.own_pending[read.shard.index() as usize] = true;
            }
        }
        Ok((written, full))
    }

    /// Writes what a round read, `batch` entries per transaction. An entry the database
    /// refuses (see [`StoreError::rejects_the_data`]) or that cannot be read is set aside in
    /// its shard's dead-letter stream with the reason, before it is acknowledged with the
    /// rest, so it never holds up the entries behind it: a batch the database refuses is
    /// written again an entry at a time to find it. Any other failure fails the round, and
    /// everything unacknowledged is read again (entries already stored are skipped).
    /// Returns how many entries were read and the highest seq stored of each of their rooms.
    async fn persist(&self, reads: &[Read]) -> anyhow::Result<(usize, BTreeMap<RoomId, i64>)> {
        let mut entries = Vec::new();
        let mut sources = Vec::new();
        let mut refused = Vec::new();
        for read in reads {
            for e in &read.entries {
                match wire::decode_stream_entry(e) {
                    Some(entry) => {
                        entries.push(entry);
                        sources.push((read.shard, e));
                    }
                    None => refused.push((read.shard, e, "the entry cannot be read".to_owned())),
                }
            }
        }
        let mut posted = Vec::new();
        for (batch, from) in entries.chunks(self.batch).zip(sources.chunks(self.batch)) {
            metrics::histogram!("confab_persist_batch_size").record(batch.len() as f64);
            let stored: Vec<(&LogEntry, AppendOutcome)> = match crate::metrics::db(
                "append",
                self.store.append(batch),
            )
            .await
            {
                Ok(outcomes) => batch.iter().zip(outcomes).collect(),
                Err(e) if e.rejects_the_data() => {
                    tracing::warn!(error = %e, "the database refuses a batch; writing it an entry at a time");
                    let mut stored = Vec::with_capacity(batch.len());
                    for (entry, &(shard, source)) in batch.iter().zip(from) {
                        match self.store.append(std::slice::from_ref(entry)).await {
                            Ok(outcomes) => stored.extend(outcomes.into_iter().map(|o| (entry, o))),
                            Err(e) if e.rejects_the_data() => {
                                refused.push((shard, source, reason(&e)))
                            }
                            Err(e) => {
                                return Err(anyhow::Error::from(e).context("writing an entry"))
                            }
                        }
                    }
                    stored
                }
                Err(e) => return Err(anyhow::Error::from(e).context("writing a batch")),
            };
            if self.push.is_some() {
                posted.extend(
                    stored
                        .iter()
                        .filter_map(|(entry, outcome)| Job::stored(entry, outcome)),
                );
            }
        }
        for (shard, source, reason) in &refused {
            self.set_aside(*shard, source, reason)
                .await
                .context("setting an entry aside")?;
        }
        let set_aside: HashSet<&str> = refused.iter().map(|(_, e, _)| e.id.as_str()).collect();
        let mut stored = BTreeMap::new();
        for (entry, (_, source)) in entries.iter().zip(&sources) {
            crate::metrics::since_accepted("confab_persist_lag_seconds", entry.at);
            if !set_aside.contains(source.id.as_str()) {
                let seq = stored.entry(entry.event.room()).or_insert(0);
                *seq = entry.event.seq().max(*seq);
            }
        }
        if let Some(push) = &self.push {
            self.queue_notifications(push, posted)
                .await
                .context("queueing notifications")?;
        }
        Ok((entries.len(), stored))
    }

    /// Moves an entry that cannot be stored into its shard's dead-letter stream, with its id
    /// and the reason, acknowledging and deleting it in the same atomic step (`set_aside.lua`):
    /// a worker that fails before it sets the entry aside when it reads it again, one that
    /// fails after it never sees the entry again, so it is set aside once.
    async fn set_aside(&self, shard: Shard, source: &StreamId, reason: &str) -> anyhow::Result<()> {
        tracing::error!(
            id = %source.id,
            stream = shard.persist_stream(),
            reason,
            "setting aside an entry that cannot be stored"
        );
        let mut call = SET_ASIDE
            .call()
            .key(shard.dead_letter_stream())
            .key(shard.persist_stream())
            .arg(PERSIST_GROUP)
            .arg(&source.id)
            .arg(reason)
            .arg(DEAD_LETTERS_KEPT);
        for (field, value) in &source.map {
            if let redis::Value::BulkString(bytes) = value {
                call = call.arg(field).arg(bytes.as_slice());
            }
        }
        let moved: Option<String> = call.invoke(&mut self.conn.clone()).await?;
        if moved.is_some() {
            metrics::counter!("confab_persist_dead_letters_total").increment(1);
        }
        Ok(())
    }

    /// Queues the jobs of the messages just stored whose room has a member other than the
    /// author who could be pushed to.
    async fn queue_notifications(&self, push: &PushJobs, posted: Vec<Job>) -> anyhow::Result<()> {
        let room_of = |job: &Job| match job {
            Job::Posted { room, author, .. } => Some((*room, author.id)),
            Job::Read { .. } => None,
        };
        let mut rooms: Vec<RoomId> = posted.iter().filter_map(room_of).map(|(r, _)| r).collect();
        rooms.sort_unstable();
        rooms.dedup();
        if rooms.is_empty() {
            return Ok(());
        }
        let recipients = self.store.notify_recipients(&rooms).await?;
        let mut pipe = redis::pipe();
        let mut queued = 0;
        for job in &posted {
            let Some((room, author)) = room_of(job) else {
                continue;
            };
            if recipients
                .iter()
                .any(|r| r.room == room && r.user != author)
            {
                queue::add_to_stream(&mut pipe, &push.stream, push.max, job);
                queued += 1;
            }
        }
        if queued > 0 {
            let () = pipe.query_async(&mut self.conn.clone()).await?;
        }
        Ok(())
    }

    async fn log_lag(&mut self) {
        if let Ok(len) = crate::broker::redis::presence::backlog(&mut self.conn, self.keys).await {
            tracing::info!(backlog = len, "persistence stream backlog");
        }
    }

    /// Runs until `stop` resolves, then finishes the round in hand.
    pub async fn run(mut self, stop: impl Future<Output = ()>) -> anyhow::Result<()> {
        tokio::pin!(stop);
        tracing::info!(consumer = %self.name, streams = self.keys.shard_count(), "worker started");
        let many = self.keys.shard_count() > 1;
        let mut last_claim = tokio::time::Instant::now();
        let mut pause = BUSY_PAUSE;
        loop {
            let claim = last_claim.elapsed() >= CLAIM_EVERY;
            if claim {
                last_claim = tokio::time::Instant::now();
                self.log_lag().await;
            }
            let wait = tokio::select! {
                _ = &mut stop => break,
                result = self.round(claim) => match result {
                    Ok((_, true)) => Duration::ZERO,
                    Ok((0, false)) if many => {
                        pause = (pause * 2).min(IDLE_PAUSE);
                        pause
                    }
                    Ok(_) if many => {
                        pause = BUSY_PAUSE;
                        pause
                    }
                    // One stream: an empty round was a blocking read that timed out; after a
                    // batch that was not full, gather for a while (see `linger`).
                    Ok((0, false)) => Duration::ZERO,
                    Ok(_) => self.linger,
                    Err(e) => {
                        // Nothing was acknowledged: the entries stay pending and are read again.
                        tracing::warn!(error = format!("{e:#}"), "persisting failed; retrying");
                        Duration::from_millis(500)
                    }
                },
            };
            if !wait.is_zero() {
                tokio::select! {
                    _ = &mut stop => break,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
        tracing::info!("worker stopped");
        self.store.close().await;
        Ok(())
    }
}
