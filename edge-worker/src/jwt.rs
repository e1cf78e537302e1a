//! Just enough JWT for the edge: EdDSA (Ed25519) signatures checked with the origin's public
//! key, issuer and expiry checked, upload tickets told apart from access tokens by audience.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use confab_shared::claims::{AccessClaims, ISSUER, MAX_ACCESS_TTL_SECS};
use confab_shared::files::{UploadTicketClaims, TICKET_AUDIENCE};
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// Seconds of clock skew allowed for access tokens (the origin allows the same).
const LEEWAY_SECS: i64 = 5;

/// The origin's Ed25519 public key.
pub struct PublicKey(VerifyingKey);

#[derive(Deserialize)]
struct Header {
    alg: String,
}

#[derive(Deserialize)]
struct Audience {
    #[serde(default)]
    aud: Option<serde_json::Value>,
}

impl PublicKey {
    /// The raw 32-byte key, base64 (standard or URL-safe).
    pub fn from_base64(s: &str) -> Option<Self> {
        let s = s.trim();
        let raw = STANDARD
            .decode(s)
            .or_else(|_| URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')))
            .ok()?;
        let bytes: [u8; 32] = raw.try_into().ok()?;
        VerifyingKey::from_bytes(&bytes).ok().map(Self)
    }

    /// The payload of a token signed by this key, as JSON, if the signature holds.
    fn payload(&self, token: &str) -> Option<Vec<u8>> {
        let mut parts = token.split('.');
        let (h, p, s) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let header: Header = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()?;
        if header.alg != "EdDSA" {
            return None;
        }
        let sig = Signature::from_slice(&URL_SAFE_NO_PAD.decode(s).ok()?).ok()?;
        let signed = &token[..h.len() + 1 + p.len()];
        self.0.verify(signed.as_bytes(), &sig).ok()?;
        URL_SAFE_NO_PAD.decode(p).ok()
    }

    fn claims<T: DeserializeOwned>(&self, token: &str) -> Option<(T, Option<serde_json::Value>)> {
        let payload = self.payload(token)?;
        let aud: Audience = serde_json::from_slice(&payload).ok()?;
        Some((serde_json::from_slice(&payload).ok()?, aud.aud))
    }

    /// A valid, unexpired upload ticket's claims.
    pub fn verify_ticket(&self, token: &str, now: i64) -> Option<UploadTicketClaims> {
        let (c, _): (UploadTicketClaims, _) = self.claims(token)?;
        (c.iss == ISSUER && c.aud == TICKET_AUDIENCE && c.exp > now).then_some(c)
    }

    /// A valid access token's claims (which carry no audience), whose times hold: not
    /// expired, not before its `nbf`, living at most the 15 minutes the origin ever signs.
    pub fn verify_access(&self, token: &str, now: i64) -> Option<AccessClaims> {
        let (c, aud): (AccessClaims, _) = self.claims(token)?;
        (aud.is_none() && c.iss == ISSUER && c.times_hold(now, MAX_ACCESS_TTL_SECS, LEEWAY_SECS))
            .then_some(c)
    }
}
