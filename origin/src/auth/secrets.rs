//! High-entropy secrets shown once and stored hashed: API tokens, invite codes, webhook
//! secrets. 32 random bytes (URL-safe base64) behind a prefix that says what the secret is, so
//! a leaked one is recognisable (and secret scanners can match it). They are looked up by their
//! SHA-256 hash, which is all the database holds: with this much entropy a slow hash adds
//! nothing, and a lookup by hash does not reveal the secret through timing.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The prefix of personal and bot API tokens (`Authorization: Bearer cfb_...`).
pub const TOKEN_PREFIX: &str = "cfb_";
/// The prefix of invite codes.
pub const INVITE_PREFIX: &str = "cfi_";
/// The prefix of webhook secrets (the last segment of `/hooks/{secret}`).
pub const WEBHOOK_PREFIX: &str = "cfw_";

/// A new secret with `prefix`.
pub fn generate(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The stored form of a secret.
pub fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Whether `secret` hashes to `stored`, compared in constant time (the lookup found a row by
/// the hash already; this keeps the final check free of early exits all the same).
pub fn matches(secret: &str, stored: &[u8]) -> bool {
    hash(secret).ct_eq(stored).into()
}

#[cfg(test)]
mod tests {
    #[test]
    fn secrets_are_distinct_prefixed_and_match_only_their_hash() {
        let a = super::generate(super::TOKEN_PREFIX);
        let b = super::generate(super::TOKEN_PREFIX);
        assert_ne!(a, b);
        assert!(a.starts_with("cfb_") && a.len() == 4 + 43, "{a}");
        assert!(super::matches(&a, &super::hash(&a)));
        assert!(!super::matches(&b, &super::hash(&a)));
    }
}
