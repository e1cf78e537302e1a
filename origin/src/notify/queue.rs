//! The way from a request to the dispatcher, off the request path. Embedded: a bounded
//! in-process queue drained by one task. Scaled out: a Redis stream (`CONFAB_PUSH_STREAM`, capped)
//! read by `confab worker` processes through a consumer group; an entry is acknowledged only
//! once every push it caused is done (or merged into a later one that is), and entries a dead
//! worker left pending are claimed by another one, so a killed worker loses nothing (pushes
//! are at least once; their payload's id lets the service worker ignore a repeat).

use super::Job;
use tokio::sync::mpsc;

/// The consumer group of the workers.
pub const GROUP: &str = "notify";

/// Where [`super::Notifier`] puts jobs.
pub enum JobQueue {
    /// In process, bounded: when full, the job is dropped and counted.
    Local(mpsc::Sender<Job>),
    /// A Redis stream, capped at about `max` entries.
    Redis {
        conn: redis::aio::ConnectionManager,
        stream: String,
        max: i64,
    },
}

impl JobQueue {
    /// A bounded in-process queue and its receiving end (for the dispatcher).
    pub fn local(capacity: usize) -> (Self, mpsc::Receiver<Job>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (Self::Local(tx), rx)
    }

    /// The Redis stream at `url`.
    pub async fn redis(url: &str, stream: &str, max: i64) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)?;
        let conn = redis::aio::ConnectionManager::new_with_config(
            client,
            crate::broker::redis::manager_config(),
        )
        .await?;
        Ok(Self::Redis {
            conn,
            stream: stream.to_owned(),
            max,
        })
    }

    /// Queues a job; a full queue or a Redis error drops it (counted and logged): a
    /// notification is never worth failing the request that caused it.
    pub async fn push(&self, job: Job) {
        let ok = match self {
            Self::Local(tx) => tx.try_send(job).is_ok(),
            Self::Redis { conn, stream, max } => {
                let payload = match serde_json::to_string(&job) {
                    Ok(p) => p,
                    Err(_) => return,
                };
                let mut c = conn.clone();
                let added: redis::RedisResult<String> = redis::cmd("XADD")
                    .arg(stream)
                    .arg("MAXLEN")
                    .arg("~")
                    .arg(*max)
                    .arg("*")
                    .arg("job")
                    .arg(payload)
                    .query_async(&mut c)
                    .await;
                match added {
                    Ok(_) => true,
                    Err(e) => {
                        tracing::warn!(error = %e, "queueing a notification failed");
                        false
                    }
                }
            }
        };
        if !ok {
            metrics::counter!("confab_push_dropped_total", "why" => "queue").increment(1);
        }
    }
}
