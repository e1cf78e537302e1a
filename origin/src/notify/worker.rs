//! The workers' side of the Redis queue (`confab worker` with one Redis): read notification
//! jobs from the stream through the consumer group, dispatch them, and acknowledge each entry
//! once everything it caused is done ([`AckGuard`]). A worker's own unacknowledged entries are
//! read first at start (a restarted worker with the same name resumes at once), and other
//! consumers' entries idle for `claim_idle_ms` are claimed every few seconds, so a worker
//! killed mid-send loses nothing: its entries are sent again by another (at least once).

use super::dispatch::{AckGuard, Dispatcher};
use super::queue::GROUP;
use super::Job;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadOptions, StreamReadReply};
use redis::AsyncCommands;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Entries read at once.
const COUNT: usize = 64;
/// How long one read blocks waiting for new entries.
const BLOCK_MS: usize = 1000;
/// How often stale entries of other consumers are claimed.
const CLAIM_EVERY: Duration = Duration::from_secs(2);
/// Acknowledgements waiting to be sent, at most (a full channel leaves entries pending).
const ACKS: usize = 4096;

/// Reads and dispatches until `stop`, then waits for the pushes in flight.
pub async fn run(
    url: &str,
    stream: &str,
    consumer: String,
    claim_idle_ms: u64,
    linger: Duration,
    dispatcher: Arc<Dispatcher>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let client = redis::Client::open(url)?;
    let mut conn = redis::aio::ConnectionManager::new_with_config(
        client,
        crate::broker::redis::manager_config(),
    )
    .await?;
    let created: redis::RedisResult<()> = conn.xgroup_create_mkstream(stream, GROUP, "0").await;
    match created {
        Err(e) if e.code() != Some("BUSYGROUP") => return Err(e.into()),
        _ => {}
    }
    let (acks, mut ack_rx) = mpsc::channel::<String>(ACKS);
    let acker = {
        let mut conn = conn.clone();
        let stream = stream.to_owned();
        tokio::spawn(async move {
            while let Some(id) = ack_rx.recv().await {
                let mut ids = vec![id];
                while let Ok(more) = ack_rx.try_recv() {
                    ids.push(more);
                }
                let done: redis::RedisResult<()> = redis::pipe()
                    .xack(&stream, GROUP, &ids)
                    .ignore()
                    .xdel(&stream, &ids)
                    .ignore()
                    .query_async(&mut conn)
                    .await;
                if let Err(e) = done {
                    // Left pending: claimed and sent again later (at least once).
                    tracing::warn!(error = %e, "acknowledging notification jobs failed");
                }
            }
        })
    };
    tracing::info!(%consumer, "notification worker started");
    let mut own = true;
    let mut last_claim = tokio::time::Instant::now();
    loop {
        if stop.is_cancelled() {
            break;
        }
        let mut entries: Vec<StreamId> = Vec::new();
        if last_claim.elapsed() >= CLAIM_EVERY {
            last_claim = tokio::time::Instant::now();
            let claimed: redis::RedisResult<StreamAutoClaimReply> = redis::cmd("XAUTOCLAIM")
                .arg(stream)
                .arg(GROUP)
                .arg(&consumer)
                .arg(claim_idle_ms)
                .arg("0-0")
                .arg("COUNT")
                .arg(COUNT)
                .query_async(&mut conn)
                .await;
            match claimed {
                Ok(reply) => entries.extend(reply.claimed),
                Err(e) => tracing::warn!(error = %e, "claiming notification jobs failed"),
            }
            let backlog: redis::RedisResult<i64> = conn.xlen(stream).await;
            if let Ok(n) = backlog {
                metrics::gauge!("confab_push_queue_backlog").set(n as f64);
            }
        }
        let from = if own { "0" } else { ">" };
        let mut options = StreamReadOptions::default()
            .group(GROUP, &consumer)
            .count(COUNT);
        if !own {
            options = options.block(BLOCK_MS);
        }
        let (streams, ids) = ([stream], [from]);
        let read = tokio::select! {
            _ = stop.cancelled() => break,
            r = conn.xread_options::<_, _, StreamReadReply>(&streams, &ids, &options) => r,
        };
        match read {
            Ok(reply) => {
                let got: Vec<StreamId> = reply.keys.into_iter().flat_map(|k| k.ids).collect();
                if own && got.is_empty() {
                    own = false;
                }
                entries.extend(got);
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading notification jobs failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        }
        let read = entries.len();
        let mut jobs = Vec::with_capacity(read);
        for entry in entries {
            let job: Option<Job> = entry
                .get::<String>("job")
                .and_then(|j| serde_json::from_str(&j).ok());
            let ack = AckGuard::new(entry.id.clone(), acks.clone());
            match job {
                Some(job) => jobs.push((job, ack)),
                None => tracing::warn!(id = %entry.id, "an unreadable notification job dropped"),
            }
        }
        dispatcher.handle(jobs).await;
        if read > 0 && read < COUNT && !linger.is_zero() {
            // Gather the next batch for a moment (see `WorkerConfig::linger_ms`).
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(linger) => {}
            }
        }
    }
    dispatcher.finish().await;
    drop(acks);
    if let Err(e) = acker.await {
        tracing::warn!(error = ?e, "the acknowledging task failed");
    }
    tracing::info!("notification worker stopped");
    Ok(())
}

/// Starts the notification worker of `confab worker` when push is on and one Redis is
/// configured; it stops with `stop`.
pub async fn start(
    config: &crate::config::WorkerConfig,
    stop: CancellationToken,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let (true, Some(url)) = (config.push.enabled, config.redis_url.clone()) else {
        return Ok(None);
    };
    let store = crate::store::open(&config.database_url, 2).await?;
    let vapid = Arc::new(super::load_vapid(
        &config.push,
        std::path::Path::new("."),
        false,
        "localhost",
    )?);
    let allow = confab_shared::preview::Allowlist::parse(&config.push.allowlist);
    let attention: super::attention::DynAttention =
        Arc::new(super::attention::RedisAttention::connect(&url, 120_000).await?);
    let sender = Arc::new(super::sender::PushSender::new(
        vapid,
        allow,
        super::send_settings(&config.push),
    ));
    let dispatcher = Dispatcher::new(
        store,
        attention,
        sender,
        Duration::from_millis(config.push.coalesce_ms),
    );
    let consumer = config.consumer_name();
    let claim = config.claim_idle_ms;
    let linger = Duration::from_millis(config.linger_ms);
    let stream = config.push.stream.clone();
    Ok(Some(tokio::spawn(async move {
        if let Err(e) = run(&url, &stream, consumer, claim, linger, dispatcher, stop).await {
            tracing::error!(error = format!("{e:#}"), "the notification worker failed");
        }
    })))
}
