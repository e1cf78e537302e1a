//! Liveness and readiness for load balancers, and `/metrics` for holders of the metrics token.
//! Metrics are served on the main listener only to `Authorization: Bearer CONFAB_METRICS_TOKEN`
//! (404 otherwise, as if there were none); `CONFAB_METRICS_LISTEN` serves them on a listener of
//! their own (see `startup`), for a private interface.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
}

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match (&state.config.metrics_token, presented) {
        (Some(token), Some(presented)) if same_secret(token, presented) => {
            crate::metrics::render().into_response()
        }
        _ => ApiError::NotFound("no such endpoint").into_response(),
    }
}

/// Compares secrets through their SHA-256 digests, so the time an unequal comparison takes
/// tells nothing about the secret (a guess cannot steer where the digests differ).
fn same_secret(a: &str, b: &str) -> bool {
    use sha2::{Digest, Sha256};
    Sha256::digest(a.as_bytes()) == Sha256::digest(b.as_bytes())
}

/// Ready when the database answers and the server is not shutting down.
async fn ready(State(state): State<AppState>) -> (StatusCode, &'static str) {
    if state.shutdown.is_cancelled() || state.draining.load(std::sync::atomic::Ordering::Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    }
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(e) => {
            tracing::warn!(error = ?e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
    }
}
