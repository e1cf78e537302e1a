//! Authentication: password hashing ([`password`]), access tokens and refresh tokens
//! ([`tokens`]), login throttling ([`throttle`]) and [`AuthUser`], the caller every protected
//! handler takes (its extractor is in `http`) and every WebSocket session runs as.

pub mod checks;
pub mod password;
pub mod secrets;
pub mod throttle;
pub mod tokens;

use crate::error::ApiError;
use crate::store::Store;
use axum::http::request::Parts;
use axum_extra::extract::CookieJar;
use confab_shared::admin::TokenScope;
use confab_shared::claims::{AccessClaims, ACCESS_COOKIE};
use confab_shared::ids::{SessionId, UserId};

/// The caller of a protected endpoint: a valid access token whose session is not revoked,
/// or a live API token of an account that is not deactivated.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: UserId,
    /// The login session, or the API token (tokens are sessions too: revoking either ends
    /// the sockets opened with it).
    pub session: SessionId,
    pub username: String,
    /// How the caller signed in, and so what they may do.
    pub access: Access,
}

/// How a caller authenticated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Access {
    /// Signed in (cookie or the access JWT as a bearer token): everything the user may do.
    #[default]
    Session,
    /// A personal or bot API token, limited to its scopes (and never administration).
    Token {
        scopes: Vec<TokenScope>,
        /// Whether the account is a bot.
        bot: bool,
    },
}

impl Access {
    /// Whether this caller may do what `scope` covers.
    pub fn allows(&self, scope: TokenScope) -> bool {
        match self {
            Self::Session => true,
            Self::Token { scopes, .. } => scopes.contains(&scope),
        }
    }
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
        if token.starts_with(secrets::TOKEN_PREFIX) {
            let found =
                crate::metrics::db("token_by_hash", store.token_by_hash(&secrets::hash(token)))
                    .await?
                    .ok_or(ApiError::Unauthorized)?;
            return Ok(Self {
                id: found.user,
                session: found.session,
                username: found.username,
                access: Access::Token {
                    scopes: found.scopes,
                    bot: found.bot,
                },
            });
        }
        let claims: AccessClaims = keys.verify(token).map_err(|_| ApiError::Unauthorized)?;
        if !crate::metrics::db("session_active", store.session_active(claims.sid)).await? {
            return Err(ApiError::Unauthorized);
        }
        Ok(Self {
            id: claims.sub,
            session: claims.sid,
            username: claims.name,
            access: Access::Session,
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
