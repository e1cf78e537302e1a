//! The WebSocket handshake: Origin allowlist → 403, authentication → 401, the global connection
//! cap → 503, the per-user and per-address caps (`crate::limits`) → 429, then a [`Session`] for
//! the socket.

use super::session::Session;
use crate::auth::{access_token, AuthUser};
use crate::error::ApiError;
use crate::peer::ClientAddr;
use crate::state::AppState;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::http::header::ORIGIN;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

/// Upgrades to a WebSocket session after the checks, or answers 403 / 401 / 503 / 429.
pub async fn upgrade(
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    parts: Parts,
    ws: WebSocketUpgrade,
) -> Response {
    // Browsers always send Origin on WebSocket handshakes: a foreign one is a cross-site
    // hijacking attempt. Clients that are not browsers send none and are not at that risk.
    if let Some(origin) = parts.headers.get(ORIGIN) {
        let allowed = origin.to_str().is_ok_and(|o| {
            state
                .allowed_origins
                .iter()
                .any(|a| a.eq_ignore_ascii_case(o))
        });
        if !allowed {
            return ApiError::Forbidden("origin not allowed").into_response();
        }
    }
    let Some(token) = access_token(&parts) else {
        return ApiError::Unauthorized.into_response();
    };
    let user = match AuthUser::from_token(&state.keys, &*state.store, &token).await {
        Ok(user) => user,
        Err(e) => return e.into_response(),
    };
    let Ok(permit) = state.connections.clone().try_acquire_owned() else {
        return ApiError::Unavailable("too many connections").into_response();
    };
    let slots = match state.socket_limits.admit(user.id, address) {
        Ok(slots) => slots,
        Err(e) => return e.into_response(),
    };
    let max = state.config.max_frame_bytes;
    let tracker = state.sessions.clone();
    // Frames a little over the limit are read and refused with 1009 by the session; the
    // transport cap (4x) bounds what is buffered at all.
    // Small buffers (tungstenite's default is 128 KiB each way): idle connections must stay
    // cheap. The read buffer is allocated up front and kept for the connection's life, so it
    // is as small as the client's usual frames (subscribe, ping, typing, a short send: one
    // read each; a longer frame takes a read per 256 bytes, and grows the buffer to its
    // size). The write buffer is allocated when used, and lets a burst of frames go out in one
    // write (see the session's writer).
    ws.read_buffer_size(256)
        .write_buffer_size(8192)
        .max_message_size(max.saturating_mul(4))
        .max_frame_size(max.saturating_mul(4))
        .on_upgrade(move |socket| {
            // Made here, not inside the tracked future: that future then holds the session
            // once, not also the state, user and socket it was made from.
            let session = Session::run(state, user, socket);
            tracker.track_future(async move {
                session.await;
                drop((permit, slots));
            })
        })
}
