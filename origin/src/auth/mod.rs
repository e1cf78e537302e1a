//! Authentication: password hashing ([`password`]), access tokens and refresh tokens
//! ([`tokens`]), login throttling ([`throttle`]) and [`AuthUser`], the caller every protected
//! handler takes (its extractor is in `http`) and every WebSocket session runs as.

pub mod password;
pub mod throttle;
pub mod tokens;

use crate::error::ApiError;
use crate::store::Store;
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
    pub async fn from_token(
        keys: &tokens::JwtKeys,
        store: &dyn Store,
        token: &str,
    ) -> Result<Self, ApiError> {
        let claims: AccessClaims = keys.verify(token).map_err(|_| ApiError::Unauthorized)?;
        if !crate::metrics::db("session_active", store.session_active(claims.sid)).await? {
            return Err(ApiError::Unauthorized);
        }
        Ok(Self {
            id: claims.sub,
            session: claims.sid,
            username: claims.name,
        })
    }

    /// The user as others see them.
    pub fn public(&self) -> confab_shared::protocol::UserPublic {
        confab_shared::protocol::UserPublic {
            id: self.id,
            username: self.username.clone(),
        }
    }
}
