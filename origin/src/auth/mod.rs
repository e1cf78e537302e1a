//! Authentication: password hashing ([`password`]), access tokens and refresh tokens
//! ([`tokens`]), login throttling ([`throttle`]) and the [`AuthUser`] extractor that every
//! protected handler takes.

pub mod password;
pub mod throttle;
pub mod tokens;

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum_extra::extract::CookieJar;
use confab_shared::claims::{AccessClaims, ACCESS_COOKIE};
use confab_shared::ids::{SessionId, UserId};

/// The caller of a protected endpoint: a valid access token whose session is not revoked.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: UserId,
    pub session: SessionId,
    pub username: String,
}

/// Reads the access token from the cookie, or from `Authorization: Bearer` for tools.
pub fn access_token(parts: &Parts) -> Option<String> {
    let jar = CookieJar::from_headers(&parts.headers);
    if let Some(c) = jar.get(ACCESS_COOKIE) {
        return Some(c.value().to_owned());
    }
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned)
}

impl AuthUser {
    /// Verifies a token and checks that its session is still live.
    pub async fn from_token(state: &AppState, token: &str) -> Result<Self, ApiError> {
        let claims: AccessClaims = state
            .keys
            .verify(token)
            .map_err(|_| ApiError::Unauthorized)?;
        if !crate::metrics::db("session_active", state.store.session_active(claims.sid)).await? {
            return Err(ApiError::Unauthorized);
        }
        Ok(Self {
            id: claims.sub,
            session: claims.sid,
            username: claims.name,
        })
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = access_token(parts).ok_or(ApiError::Unauthorized)?;
        Self::from_token(state, &token).await
    }
}
