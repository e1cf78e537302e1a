//! The way from a request to the dispatcher, off the request path. Embedded: a bounded
//! in-process queue drained by one task. Scaled out: a Redis stream (`CONFAB_PUSH_STREAM`, capped)
//! read by `confab worker` processes through a consumer group. There the instances queue only
//! reads; a new message's job is queued by the worker that stored it, from the persistence
//! stream, and only when someone in its room could be pushed to (see
//! [`crate::worker`]), so a message costs no second stream entry. An entry is acknowledged only
//! once every push it caused is done (or merged into a later one that is), and entries a dead
//! worker left pending are claimed by another one, so a killed worker loses nothing (pushes
//! are at least once; their payload's id lets the service worker ignore a repeat).

use super::Job;
use tokio::sync::mpsc;

/// The consumer group of the workers.
pub const GROUP: &str = "notify";

/// Jobs waiting to be written to the Redis stream, at most.
const REDIS_BUFFER: usize = 4096;
/// Jobs written to the Redis stream in one round trip, at most.
const REDIS_BATCH: usize = 256;

/// Where [`super::Notifier`] puts jobs.
pub enum JobQueue {
    /// In process, bounded: when full, the job is dropped and counted.
    Local(mpsc::Sender<Job>),
    /// A Redis stream, capped at about `max` entries. Jobs are handed to a task that writes
    /// whatever has gathered in one pipeline, so a busy instance makes one round trip for many
    /// messages, not one per message.
    Redis(mpsc::Sender<Job>),
}

impl JobQueue {
    /// A bounded in-process queue and its receiving end (for the dispatcher).
    pub fn local(capacity: usize) -> (Self, mpsc::Receiver<Job>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (Self::Local(tx), rx)
    }

    /// The Redis stream at `url`; the writing task ends when the queue is dropped, after
    /// writing what it holds.
    pub async fn redis(url: &str, stream: &str, max: i64) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)?;
        let conn = redis::aio::ConnectionManager::new_with_config(
            client,
            crate::broker::redis::manager_config(),
        )
        .await?;
        let (tx, rx) = mpsc::channel(REDIS_BUFFER);
        tokio::spawn(write_to_stream(conn, stream.to_owned(), max, rx));
        Ok(Self::Redis(tx))
    }

    /// Queues a job; a full queue or a Redis error drops it (counted and logged): a
    /// notification is never worth failing the request that caused it.
    pub async fn push(&self, job: Job) {
        let (Self::Local(tx) | Self::Redis(tx)) = self;
        if tx.try_send(job).is_err() {
            metrics::counter!("confab_push_dropped_total", "why" => "queue").increment(1);
        }
    }
}

/// Writes the queued jobs to the stream, each round what has gathered since the last.
async fn write_to_stream(
    mut conn: redis::aio::ConnectionManager,
    stream: String,
    max: i64,
    mut jobs: mpsc::Receiver<Job>,
) {
    let mut batch = Vec::with_capacity(REDIS_BATCH);
    while jobs.recv_many(&mut batch, REDIS_BATCH).await > 0 {
        let jobs_in_round = batch.len();
        let mut pipe = redis::pipe();
        for job in batch.drain(..) {
            add_to_stream(&mut pipe, &stream, max, &job);
        }
        let written: redis::RedisResult<()> = pipe.query_async(&mut conn).await;
        if let Err(e) = written {
            tracing::warn!(error = %e, "queueing notifications failed");
            metrics::counter!("confab_push_dropped_total", "why" => "queue")
                .increment(jobs_in_round as u64);
        }
    }
}

/// Adds `job` to `pipe` as an entry of the stream (capped at about `max` entries).
pub fn add_to_stream(pipe: &mut redis::Pipeline, stream: &str, max: i64, job: &Job) {
    let Ok(payload) = serde_json::to_string(job) else {
        return;
    };
    pipe.cmd("XADD")
        .arg(stream)
        .arg("MAXLEN")
        .arg("~")
        .arg(max)
        .arg("*")
        .arg("job")
        .arg(payload)
        .ignore();
}
