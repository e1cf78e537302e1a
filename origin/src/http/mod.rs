//! The HTTP surface: one router per area, merged here, plus our JSON extractor and the static
//! web client.

pub mod auth;
pub mod files;
pub mod health;
pub mod messages;
pub mod people;
pub mod preview;
pub mod rooms;
pub mod search;

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;
use serde::de::DeserializeOwned;
use std::net::{IpAddr, SocketAddr};
use tower_http::services::{ServeDir, ServeFile};
use tower_http::trace::TraceLayer;

/// Largest JSON body the API accepts.
const MAX_JSON_BODY: usize = 64 * 1024;

/// The whole application router.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .merge(auth::router())
        .merge(rooms::router())
        .merge(messages::router())
        .merge(people::router())
        .merge(search::router())
        .merge(files::router())
        .merge(preview::router())
        .fallback(|| async { ApiError::NotFound("no such endpoint") })
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY));
    let mut app = Router::new()
        .nest("/api", api)
        .merge(health::router())
        .route("/ws", get(crate::gateway::upgrade));
    let index = state.config.web_dir.join("index.html");
    if index.exists() {
        // The single-page client: known files from dist/, everything else gets index.html.
        app = app.fallback_service(
            ServeDir::new(&state.config.web_dir).not_found_service(ServeFile::new(index)),
        );
    } else {
        app = app.route("/", get(no_client));
    }
    app.layer(TraceLayer::new_for_http()).with_state(state)
}

async fn no_client() -> impl IntoResponse {
    Html(
        "<!doctype html><title>Confab</title><h1>Confab is running</h1>\
         <p>The web client is not built: run <code>npm ci &amp;&amp; npm run build</code> in \
         <code>web/</code>. The API is under <code>/api</code>, the WebSocket at <code>/ws</code>.</p>",
    )
}

/// A page size: `default` when not given, else within 1..=`max`.
pub fn limit_within(limit: Option<u32>, default: u32, max: u32) -> Result<u32, ApiError> {
    match limit {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::Validation(format!(
            "limit must be between 1 and {max}"
        ))),
    }
}

/// A keyset cursor as clients carry it: opaque, URL-safe.
pub fn encode_cursor<T: serde::Serialize>(cursor: &T) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(cursor).unwrap_or_default())
}

/// Reads a cursor this server gave.
pub fn decode_cursor<T: DeserializeOwned>(s: &str) -> Result<T, ApiError> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| ApiError::BadRequest("cursor is not one this server gave".into()))
}

/// Our JSON body extractor: malformed bodies get our error shape, not axum's plain text.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(JsonRejection::BytesRejection(e)) if e.status() == 413 => Err(
                ApiError::PayloadTooLarge(format!("body over {MAX_JSON_BODY} bytes")),
            ),
            Err(e) => Err(ApiError::BadRequest(e.body_text())),
        }
    }
}

/// The client's address: the socket peer, or the first X-Forwarded-For hop when configured.
pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
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

/// Our path extractor: a malformed id gets our error shape.
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Self(p.0))
            .map_err(|e| ApiError::BadRequest(e.body_text()))
    }
}

/// Our query-string extractor: bad parameters get our error shape.
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Self(q.0))
            .map_err(|e| ApiError::BadRequest(e.body_text()))
    }
}

/// The caller of a protected endpoint: the access token (cookie, or `Authorization: Bearer`)
/// must be valid and its session not revoked.
impl FromRequestParts<AppState> for crate::auth::AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = crate::auth::access_token(parts).ok_or(ApiError::Unauthorized)?;
        Self::from_token(&state.keys, &*state.store, &token).await
    }
}
