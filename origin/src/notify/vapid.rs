//! The server's VAPID key (RFC 8292): a P-256 key that signs a short JWT for each push, so a
//! push service knows every push to a subscription comes from the server that made it. The
//! embedded default generates it into the data directory (like the token signing key);
//! elsewhere it is configured (`CONFAB_VAPID_PRIVATE_KEY_FILE`), because instances and workers
//! must share it: browsers subscribed with its public key.

use anyhow::Context;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::path::Path;
use web_push::{
    PartialVapidSignatureBuilder, SubscriptionInfo, VapidSignature, VapidSignatureBuilder,
};

/// How long a VAPID JWT is valid (RFC 8292 allows at most 24 hours).
const JWT_TTL_SECS: u64 = 12 * 3600;

/// The loaded key.
pub struct Vapid {
    builder: PartialVapidSignatureBuilder,
    public_b64: String,
    /// The `sub` claim: how the push service reaches the operator (`mailto:` or an https URL).
    subject: String,
}

/// A new P-256 private key, PKCS#8 PEM.
pub fn generate_pem() -> anyhow::Result<String> {
    use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    let rng = ring::rand::SystemRandom::new();
    let der = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| anyhow::anyhow!("could not generate a P-256 key"))?;
    Ok(pem::encode(&pem::Pem::new(
        "PRIVATE KEY",
        der.as_ref().to_vec(),
    )))
}

impl Vapid {
    /// Loads the key at `path`, generating it first when missing and `generate` is set.
    pub fn load_or_generate(path: &Path, generate: bool, subject: String) -> anyhow::Result<Self> {
        if !path.exists() && generate {
            let pem = generate_pem()?;
            crate::auth::tokens::write_private(path, &pem)
                .with_context(|| format!("writing a new VAPID key to {}", path.display()))?;
            tracing::info!(path = %path.display(), "generated a new VAPID key for Web Push");
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the VAPID key {}", path.display()))?;
        Self::from_pem(&text, subject)
    }

    /// From a P-256 private key in PEM (PKCS#8 or SEC1).
    pub fn from_pem(text: &str, subject: String) -> anyhow::Result<Self> {
        let builder = VapidSignatureBuilder::from_pem_no_sub(text.as_bytes())
            .map_err(|e| anyhow::anyhow!("the VAPID key is not a P-256 private key in PEM: {e}"))?;
        let public_b64 = URL_SAFE_NO_PAD.encode(builder.get_public_key());
        Ok(Self {
            builder,
            public_b64,
            subject,
        })
    }

    /// The public key for `PushManager.subscribe` (base64url, uncompressed point).
    pub fn public_key(&self) -> &str {
        &self.public_b64
    }

    /// A signature for a push to `sub`: audience the endpoint's origin, our subject.
    pub fn sign(&self, sub: &SubscriptionInfo, audience: &str) -> anyhow::Result<VapidSignature> {
        let mut b = self.builder.clone().add_sub_info(sub);
        b.add_claim("sub", self.subject.as_str());
        b.add_claim("aud", audience);
        let exp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default()
            + JWT_TTL_SECS;
        b.add_claim("exp", exp);
        b.build()
            .map_err(|e| anyhow::anyhow!("signing the VAPID JWT: {e}"))
    }
}
