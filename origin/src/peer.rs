//! Who is on the other end of a request: the client's address, for per-address limits and
//! login throttling.
//!
//! In this order: the address the edge worker signed (`X-Confab-Client-Address`, taken only
//! with `CONFAB_EDGE_SECRET` and a valid, fresh signature: `confab_shared::edge`), the first
//! X-Forwarded-For hop (only with `CONFAB_TRUST_FORWARDED_FOR`), the socket peer. A header a
//! client sent itself, without the secret, is ignored, so it cannot pick its own address.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use confab_shared::edge::{self, Refused, CLIENT_ADDRESS_HEADER};
use std::net::{IpAddr, SocketAddr};

/// The client's address: the edge's signed one, the first X-Forwarded-For hop, or the peer.
pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(secret) = state.config.edge_secret() {
            if let Some(ip) = signed_by_edge(parts, secret.as_bytes()) {
                return Ok(Self(ip));
            }
        }
        if state.config.trust_forwarded_for {
            let forwarded = parts
                .headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .and_then(|v| v.trim().parse::<IpAddr>().ok());
            if let Some(ip) = forwarded {
                return Ok(Self(ip));
            }
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::from([127, 0, 0, 1]));
        Ok(Self(peer))
    }
}

/// The address in the edge's header, if it carries a valid signature made within a minute.
fn signed_by_edge(parts: &Parts, secret: &[u8]) -> Option<IpAddr> {
    let value = parts.headers.get(CLIENT_ADDRESS_HEADER)?.to_str().ok()?;
    match edge::verify(secret, value, crate::time::now_secs()) {
        Ok(ip) => Some(ip),
        // Only the edge can sign: this is a replay, or the two clocks disagree.
        Err(Refused::Stale { skew }) => {
            tracing::warn!(
                skew_secs = skew,
                "a client address signed by the edge is too old or too new: check both clocks"
            );
            None
        }
        // Anyone can send these; not worth more than a debug line each.
        Err(e) => {
            tracing::debug!(?e, "ignoring an unsigned or forged client-address header");
            None
        }
    }
}
