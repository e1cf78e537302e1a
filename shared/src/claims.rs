//! Access-token claims. The origin signs them (EdDSA / Ed25519) into a JWT held in an HttpOnly
//! cookie; the origin and the edge worker verify them with the public key alone.

use crate::ids::{SessionId, UserId};
use serde::{Deserialize, Serialize};

/// The name of the cookie that carries the access token.
pub const ACCESS_COOKIE: &str = "confab_access";
/// The name of the cookie that carries the opaque refresh token (sent only to `/api/auth`).
pub const REFRESH_COOKIE: &str = "confab_refresh";
/// The JWT issuer every Confab access token names.
pub const ISSUER: &str = "confab";
/// The longest an access token may live, in seconds (15 minutes).
pub const MAX_ACCESS_TTL_SECS: i64 = 15 * 60;

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The user.
    pub sub: UserId,
    /// The login session (refresh-token family) this token belongs to.
    pub sid: SessionId,
    /// The username at issue time, for display and logs.
    pub name: String,
    /// Issuer, always [`ISSUER`].
    pub iss: String,
    /// Issued at, seconds since the Unix epoch.
    pub iat: i64,
    /// Expires at, seconds since the Unix epoch.
    pub exp: i64,
}
