//! Tokens. The access token is a JWT signed with Ed25519 (EdDSA), so the edge can verify it
//! holding only the public key. The refresh token is 32 random bytes, shown to the client once
//! and stored only as its SHA-256 hash.

use anyhow::Context;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use confab_shared::claims::{AccessClaims, ISSUER, MAX_ACCESS_TTL_SECS};
use confab_shared::ids::{SessionId, UserId};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use ring::signature::{Ed25519KeyPair, KeyPair};
use sha2::{Digest, Sha256};
use std::path::Path;

/// The signing and verifying keys for access tokens.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    public_key: Vec<u8>,
    /// The longest life an access token may have (`exp - iat`), in seconds.
    max_ttl_secs: i64,
    /// Seals what only this server may read back (pending registrations in confirmation
    /// links): ChaCha20-Poly1305 with a key derived from the signing key.
    sealing: ring::aead::LessSafeKey,
}

/// Seconds of clock skew allowed (the edge allows the same).
const LEEWAY_SECS: u64 = 5;

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtKeys(Ed25519)")
    }
}

/// A new Ed25519 private key as PKCS#8 PEM (what `confab keygen` prints).
pub fn generate_pem() -> anyhow::Result<String> {
    let rng = ring::rand::SystemRandom::new();
    let der = Ed25519KeyPair::generate_pkcs8(&rng)
        .map_err(|_| anyhow::anyhow!("could not generate an Ed25519 key"))?;
    Ok(pem::encode(&pem::Pem::new(
        "PRIVATE KEY",
        der.as_ref().to_vec(),
    )))
}

impl JwtKeys {
    /// Loads keys from a PKCS#8 PEM holding an Ed25519 private key.
    pub fn from_pem(text: &str) -> anyhow::Result<Self> {
        let parsed = pem::parse(text).context("the signing key is not PEM")?;
        let der = parsed.contents();
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .map_err(|e| anyhow::anyhow!("the signing key is not an Ed25519 PKCS#8 key: {e}"))?;
        let public_key = pair.public_key().as_ref().to_vec();
        let sealing = {
            use ring::{aead, hkdf};
            let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"confab-sealing-v1").extract(der);
            let okm = prk
                .expand(&[b"seal"], &aead::CHACHA20_POLY1305)
                .map_err(|_| anyhow::anyhow!("deriving the sealing key failed"))?;
            aead::LessSafeKey::new(aead::UnboundKey::from(okm))
        };
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[ISSUER]);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        Ok(Self {
            encoding: EncodingKey::from_ed_der(der),
            decoding: DecodingKey::from_ed_der(&public_key),
            validation,
            public_key,
            max_ttl_secs: MAX_ACCESS_TTL_SECS,
            sealing,
        })
    }

    /// Encrypts and authenticates `plain` into URL-safe text only this server (or one with the
    /// same signing key) can [`open`](Self::open).
    pub fn seal(&self, plain: &[u8]) -> anyhow::Result<String> {
        use ring::aead::{Aad, Nonce, NONCE_LEN};
        use ring::rand::SecureRandom;
        let mut nonce = [0u8; NONCE_LEN];
        ring::rand::SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| anyhow::anyhow!("no randomness"))?;
        let mut sealed = plain.to_vec();
        self.sealing
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::empty(),
                &mut sealed,
            )
            .map_err(|_| anyhow::anyhow!("sealing failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(URL_SAFE_NO_PAD.encode(out))
    }

    /// What [`seal`](Self::seal) sealed, if `text` is intact.
    pub fn open(&self, text: &str) -> Option<Vec<u8>> {
        use ring::aead::{Aad, Nonce, NONCE_LEN};
        let raw = URL_SAFE_NO_PAD.decode(text).ok()?;
        if raw.len() < NONCE_LEN {
            return None;
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut sealed = sealed.to_vec();
        let plain = self
            .sealing
            .open_in_place(nonce, Aad::empty(), &mut sealed)
            .ok()?;
        Some(plain.to_vec())
    }

    /// Refuses access tokens that live longer than `secs` (`CONFAB_ACCESS_TTL_SECS`), whoever
    /// signed them.
    pub fn with_max_ttl(mut self, secs: i64) -> Self {
        self.max_ttl_secs = secs.min(MAX_ACCESS_TTL_SECS);
        self
    }

    /// Loads the key file, or (when `generate` is set and the file is missing) creates it with
    /// owner-only permissions.
    pub fn load_or_generate(path: &Path, generate: bool) -> anyhow::Result<Self> {
        if !path.exists() && generate {
            let pem = generate_pem()?;
            write_private(path, &pem)
                .with_context(|| format!("writing a new signing key to {}", path.display()))?;
            tracing::info!(path = %path.display(), "generated a new token signing key");
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the signing key {}", path.display()))?;
        Self::from_pem(&text)
    }

    /// The raw 32-byte Ed25519 public key, for the edge.
    pub fn public_key(&self) -> &[u8] {
        &self.public_key
    }

    /// Signs an access token for the session, valid for `ttl_secs` (capped at 15 minutes).
    pub fn sign(
        &self,
        user: UserId,
        session: SessionId,
        username: &str,
        now_secs: i64,
        ttl_secs: i64,
    ) -> anyhow::Result<String> {
        let claims = AccessClaims {
            sub: user,
            sid: session,
            name: username.to_owned(),
            iss: ISSUER.to_owned(),
            iat: now_secs,
            exp: now_secs + ttl_secs.min(self.max_ttl_secs),
            nbf: None,
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::EdDSA),
            &claims,
            &self.encoding,
        )?)
    }

    /// Verifies signature and issuer but not expiry: for logout, which must work with a
    /// token that has just expired.
    pub fn verify_ignoring_expiry(
        &self,
        token: &str,
    ) -> Result<AccessClaims, jsonwebtoken::errors::Error> {
        let mut validation = self.validation.clone();
        validation.validate_exp = false;
        jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &validation).map(|d| d.claims)
    }

    /// Verifies signature, issuer, expiry, `nbf`, and that the token lives no longer than
    /// the configured maximum (`AccessClaims::times_hold`).
    pub fn verify(&self, token: &str) -> Result<AccessClaims, jsonwebtoken::errors::Error> {
        let claims = jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation)
            .map(|d| d.claims)?;
        let now = crate::time::now_secs();
        if !claims.times_hold(now, self.max_ttl_secs, LEEWAY_SECS as i64) {
            return Err(jsonwebtoken::errors::ErrorKind::ImmatureSignature.into());
        }
        Ok(claims)
    }

    /// Signs an upload ticket (audience `confab-upload`, so it is never an access token).
    pub fn sign_ticket(
        &self,
        claims: &confab_shared::files::UploadTicketClaims,
    ) -> anyhow::Result<String> {
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::EdDSA),
            claims,
            &self.encoding,
        )?)
    }

    /// Verifies an upload ticket's signature, issuer, audience and expiry.
    pub fn verify_ticket(
        &self,
        token: &str,
    ) -> Result<confab_shared::files::UploadTicketClaims, jsonwebtoken::errors::Error> {
        let mut validation = self.validation.clone();
        validation.set_audience(&[confab_shared::files::TICKET_AUDIENCE]);
        validation.leeway = 0;
        jsonwebtoken::decode(token, &self.decoding, &validation).map(|d| d.claims)
    }
}

#[cfg(unix)]
pub(crate) fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents.as_bytes())
}

#[cfg(not(unix))]
pub(crate) fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

/// A new refresh token (to give the client) and its hash (to store).
pub fn new_refresh_token() -> (String, Vec<u8>) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_refresh_token(&token);
    (token, hash)
}

/// The stored form of a refresh token.
pub fn hash_refresh_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn tokens_verify_with_their_key_only() {
        let keys = JwtKeys::from_pem(&generate_pem().unwrap()).unwrap();
        let other = JwtKeys::from_pem(&generate_pem().unwrap()).unwrap();
        let now = crate::time::now_secs();
        let t = keys
            .sign(UserId(Uuid::nil()), SessionId(Uuid::nil()), "ann", now, 60)
            .unwrap();
        assert_eq!(keys.verify(&t).unwrap().name, "ann");
        assert!(other.verify(&t).is_err());
        let expired = keys
            .sign(
                UserId(Uuid::nil()),
                SessionId(Uuid::nil()),
                "ann",
                now - 3600,
                60,
            )
            .unwrap();
        assert!(keys.verify(&expired).is_err());
    }

    /// Signs arbitrary access claims with `keys` (what a holder of the key could do).
    fn forge(keys: &JwtKeys, iat: i64, exp: i64, nbf: Option<i64>) -> String {
        let claims = AccessClaims {
            sub: UserId(Uuid::nil()),
            sid: SessionId(Uuid::nil()),
            name: "ann".into(),
            iss: ISSUER.into(),
            iat,
            exp,
            nbf,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &keys.encoding).unwrap()
    }

    #[test]
    fn long_lived_and_not_yet_valid_tokens_are_refused() {
        let keys = JwtKeys::from_pem(&generate_pem().unwrap())
            .unwrap()
            .with_max_ttl(600);
        let now = crate::time::now_secs();
        assert!(keys.verify(&forge(&keys, now, now + 600, None)).is_ok());
        assert!(keys
            .verify(&forge(&keys, now, now + 86_400 * 365, None))
            .is_err());
        assert!(keys.verify(&forge(&keys, now, now + 601, None)).is_err());
        assert!(keys
            .verify(&forge(&keys, now, now + 300, Some(now + 120)))
            .is_err());
    }

    #[test]
    fn sealed_text_opens_only_intact_and_with_its_key() {
        let keys = JwtKeys::from_pem(&generate_pem().unwrap()).unwrap();
        let other = JwtKeys::from_pem(&generate_pem().unwrap()).unwrap();
        let sealed = keys.seal(b"pending registration").unwrap();
        assert_eq!(keys.open(&sealed).unwrap(), b"pending registration");
        assert!(other.open(&sealed).is_none());
        let mut tampered = sealed.into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert!(keys.open(std::str::from_utf8(&tampered).unwrap()).is_none());
    }

    #[test]
    fn lifetimes_are_capped_at_fifteen_minutes() {
        let keys = JwtKeys::from_pem(&generate_pem().unwrap()).unwrap();
        let now = crate::time::now_secs();
        let t = keys
            .sign(
                UserId(Uuid::nil()),
                SessionId(Uuid::nil()),
                "ann",
                now,
                86_400,
            )
            .unwrap();
        let c = keys.verify(&t).unwrap();
        assert_eq!(c.exp - c.iat, MAX_ACCESS_TTL_SECS);
    }
}
