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
    /// Not valid before, seconds since the Unix epoch (Confab does not set it; honoured when
    /// present).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
}

impl AccessClaims {
    /// Whether the token's times hold at `now` (seconds), with `leeway` seconds of clock skew:
    /// issued no later than now, not before its `nbf`, not expired, and living at most
    /// `max_ttl` seconds (`exp - iat`), so a token signed with a longer life is refused even
    /// while its signature is good. Origin and edge both apply it.
    pub fn times_hold(&self, now: i64, max_ttl: i64, leeway: i64) -> bool {
        let lifetime = self.exp - self.iat;
        self.iat <= now + leeway
            && self.nbf.is_none_or(|nbf| nbf <= now + leeway)
            && now < self.exp + leeway
            && (0..=max_ttl).contains(&lifetime)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn claims(iat: i64, exp: i64, nbf: Option<i64>) -> AccessClaims {
        AccessClaims {
            sub: UserId(Uuid::nil()),
            sid: SessionId(Uuid::nil()),
            name: "ann".into(),
            iss: ISSUER.into(),
            iat,
            exp,
            nbf,
        }
    }

    #[test]
    fn lifetimes_over_the_maximum_and_early_tokens_are_refused() {
        let now = 1_000_000;
        assert!(claims(now, now + 900, None).times_hold(now, 900, 5));
        assert!(
            !claims(now, now + 86_400, None).times_hold(now, 900, 5),
            "a day-long token"
        );
        assert!(
            !claims(now, now + 900, Some(now + 60)).times_hold(now, 900, 5),
            "nbf"
        );
        assert!(claims(now, now + 900, Some(now)).times_hold(now, 900, 5));
        assert!(
            !claims(now + 600, now + 900, None).times_hold(now, 900, 5),
            "issued later"
        );
        assert!(
            !claims(now - 1000, now - 100, None).times_hold(now, 900, 5),
            "expired"
        );
    }
}
