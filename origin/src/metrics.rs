//! Prometheus metrics (the `metrics` facade with the Prometheus exporter), rendered at
//! `GET /metrics`. Names, all prefixed `confab_`:
//!
//! | metric | kind | what |
//! |---|---|---|
//! | `ws_connections` | gauge | open WebSockets |
//! | `ws_frames_in_total` / `ws_frames_out_total` | counter | frames received / written |
//! | `send_ack_seconds` | histogram | a `send` frame read → its `ack` written |
//! | `broker_publish_seconds` | histogram | the broker's accept (Lua script, or queue + commit) |
//! | `fanout_seconds` | histogram | message accepted → handed to this instance's hub |
//! | `resyncs_total` | counter | connections told to resync (fell behind, or broker outage) |
//! | `slow_client_drops_total` | counter | connections dropped after a blocked write |
//! | `persist_batch_size` | histogram | messages per database write |
//! | `persist_lag_seconds` | histogram | message accepted → committed to the database |
//! | `db_seconds{op}` | histogram | database timings of the hot queries |
//! | `stream_backlog` | gauge | messages in the Redis persistence stream, not yet in the database |

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::future::Future;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder once; later calls (several servers in one test
/// process) share it.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let seconds = [
                0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
            ];
            let sizes = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];
            let built = PrometheusBuilder::new()
                .set_buckets(&seconds)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("confab_persist_batch_size".into()),
                        &sizes,
                    )
                })
                .and_then(|b| b.install_recorder());
            match built {
                Ok(handle) => {
                    start_upkeep(handle.clone());
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        })
        .as_ref()
}

/// How often histogram samples are folded into their buckets.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The exporter keeps every histogram sample until it is folded into the buckets, which
/// rendering does, and otherwise only its upkeep: without this, a server nobody scrapes grows by
/// every sample it records (tens of bytes a message, without bound). A thread, not a task: the
/// recorder may be installed outside a runtime, and it outlives any one of them.
fn start_upkeep(handle: PrometheusHandle) {
    let started = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || loop {
            std::thread::sleep(UPKEEP_EVERY);
            handle.run_upkeep();
        });
    if let Err(e) = started {
        tracing::warn!(error = %e, "metrics upkeep not started");
    }
}

/// The metrics in Prometheus text format.
pub fn render() -> String {
    install().map(PrometheusHandle::render).unwrap_or_default()
}

/// Runs a database call, recording its duration under `op`.
pub async fn db<T>(op: &'static str, fut: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let out = fut.await;
    metrics::histogram!("confab_db_seconds", "op" => op).record(started.elapsed().as_secs_f64());
    out
}

/// Records the delay between a message's acceptance (`created_at`, ms) and now.
pub fn since_accepted(name: &'static str, created_at_ms: i64) {
    let lag = (crate::time::now_ms() - created_at_ms).max(0) as f64 / 1000.0;
    metrics::histogram!(name).record(lag);
}
