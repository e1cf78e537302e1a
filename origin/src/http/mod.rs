//! The HTTP surface: one router per area, merged here, plus our JSON extractor and the static
//! web client.

pub mod admin;
pub mod auth;
pub mod deadline;
pub mod files;
pub mod health;
pub mod invites;
pub mod messages;
pub mod notify;
pub mod openapi;
pub mod people;
pub mod preview;
pub mod rooms;
pub mod search;
pub mod tokens;
pub mod webhooks;

pub use crate::peer::ClientAddr;
pub mod security;

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::middleware::from_fn_with_state;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::trace::TraceLayer;

/// Largest JSON body the API accepts.
const MAX_JSON_BODY: usize = 64 * 1024;

/// The whole application router.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .merge(auth::router())
        .merge(admin::router())
        .merge(invites::router())
        .merge(tokens::router())
        .merge(openapi::router())
        .merge(webhooks::router())
        .merge(rooms::router())
        .merge(messages::router())
        .merge(people::router())
        .merge(search::router())
        .merge(files::router())
        .merge(preview::router())
        .merge(notify::router())
        .fallback(|| async { ApiError::NotFound("no such endpoint") })
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .layer(from_fn_with_state(
            state.allowed_origins.clone(),
            security::refuse_cross_site,
        ));
    let mut app = Router::new()
        .nest("/api", api)
        .merge(health::router())
        .merge(webhooks::hooks_router().layer(DefaultBodyLimit::max(MAX_JSON_BODY)))
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
    let policy = std::sync::Arc::new(security::SecurityHeaders::new(
        state.secure_cookies,
        &state.allowed_origins,
        state.config.files.edge_url.as_deref(),
    ));
    app.layer(from_fn_with_state(state.clone(), deadline::body_deadline))
        .layer(from_fn_with_state(policy, security::security_headers))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
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

/// Our JSON body extractor: malformed bodies get our error shape and our own words, naming the
/// field at fault (serde's messages, which describe our types, are not passed on).
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::BadRequest(
                "expected a JSON body (Content-Type: application/json)".into(),
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(body_rejection)?;
        let not_json = || ApiError::BadRequest("the body is not valid JSON".into());
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let value =
            serde_path_to_error::deserialize(&mut de).map_err(|e| match e.inner().classify() {
                serde_json::error::Category::Data => {
                    ApiError::BadRequest(field_problem("field", &e))
                }
                _ => not_json(),
            })?;
        de.end().map_err(|_| not_json())?;
        Ok(Self(value))
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| {
            let essence = essence.trim().to_ascii_lowercase();
            essence == "application/json"
                || (essence.starts_with("application/") && essence.ends_with("+json"))
        })
}

/// A body that could not be read: too large, too slow, or broken off.
fn body_rejection(e: BytesRejection) -> ApiError {
    use std::error::Error;
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::PayloadTooLarge(format!("body over {MAX_JSON_BODY} bytes"));
    }
    if e.source().is_some_and(deadline::is_body_timeout) || deadline::is_body_timeout(&e) {
        return ApiError::BadRequest(deadline::BodyTimeout.to_string());
    }
    ApiError::BadRequest("the request body could not be read".into())
}

/// Our description of a value that did not fit: which field (or query parameter) is missing or
/// has the wrong type or value, without serde's wording.
fn field_problem<E: std::fmt::Display>(what: &str, e: &serde_path_to_error::Error<E>) -> String {
    let message = e.inner().to_string();
    // The one serde message we read: "missing field `name`" names the absent field, which is
    // not in the path (the path ends at the object holding it).
    if let Some(name) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
    {
        let parent = e.path().to_string();
        return if parent == "." {
            format!("{what} `{name}` is missing")
        } else {
            format!("{what} `{parent}.{name}` is missing")
        };
    }
    match e.path().to_string().as_str() {
        "." => format!("the {}s are not what this endpoint takes", what),
        path => format!("{what} `{path}` has the wrong type or value"),
    }
}

/// Our path extractor: a malformed id gets our error shape, naming the parameter.
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        use axum::extract::path::ErrorKind;
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(p) => Ok(Self(p.0)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                let key = match e.kind() {
                    ErrorKind::ParseErrorAtKey { key, .. }
                    | ErrorKind::InvalidUtf8InPathParam { key }
                    | ErrorKind::DeserializeError { key, .. } => Some(key.clone()),
                    _ => None,
                };
                Err(ApiError::BadRequest(match key {
                    Some(key) => format!("path parameter `{key}` is not valid"),
                    None => "the path is not valid".into(),
                }))
            }
            Err(_) => Err(ApiError::BadRequest("the path is not valid".into())),
        }
    }
}

/// Our query-string extractor: bad parameters get our error shape, naming the parameter.
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(url::form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(Self)
            .map_err(|e| ApiError::BadRequest(field_problem("query parameter", &e)))
    }
}

/// The caller of a protected endpoint: the access token (cookie, or `Authorization: Bearer`)
/// must be valid and its session not revoked; or an API token, which may do only what its
/// scopes cover: `read`, the `GET` requests; `post`, `POST /api/rooms/{id}/messages`. Nothing
/// else (room changes, settings, administration) is open to tokens.
impl FromRequestParts<AppState> for crate::auth::AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = crate::auth::access_token(parts).ok_or(ApiError::Unauthorized)?;
        let user = Self::from_token(&state.keys, &*state.store, &token).await?;
        if user.access != crate::auth::Access::Session {
            let path = parts
                .extensions
                .get::<axum::extract::OriginalUri>()
                .map_or_else(|| parts.uri.path().to_owned(), |u| u.0.path().to_owned());
            let scope = token_scope_for(&parts.method, &path)
                .ok_or(ApiError::Forbidden("an API token cannot do this"))?;
            if !user.access.allows(scope) {
                return Err(ApiError::Forbidden("this token's scopes do not allow it"));
            }
        }
        Ok(user)
    }
}

/// The scope an API token needs for a request, or None when tokens may not make it.
pub fn token_scope_for(
    method: &axum::http::Method,
    path: &str,
) -> Option<confab_shared::admin::TokenScope> {
    use confab_shared::admin::TokenScope;
    if path.starts_with("/api/admin") || path.starts_with("/api/me/") {
        return None;
    }
    if method == axum::http::Method::GET || method == axum::http::Method::HEAD {
        return Some(TokenScope::Read);
    }
    let mut parts = path.trim_start_matches('/').split('/');
    let posts_message = method == axum::http::Method::POST
        && parts.next() == Some("api")
        && parts.next() == Some("rooms")
        && parts.next().is_some()
        && parts.next() == Some("messages")
        && parts.next().is_none();
    posts_message.then_some(TokenScope::Post)
}

/// A signed-in site administrator (never an API token); 403 for everyone else.
pub struct SiteAdmin(pub crate::auth::AuthUser);

impl FromRequestParts<AppState> for SiteAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let user = crate::auth::AuthUser::from_request_parts(parts, state).await?;
        let record = state
            .store
            .user_by_id(user.id)
            .await?
            .ok_or(ApiError::Unauthorized)?;
        if record.role != confab_shared::admin::SiteRole::Admin || record.deactivated_at.is_some() {
            return Err(ApiError::Forbidden("only site administrators may do this"));
        }
        Ok(Self(user))
    }
}
