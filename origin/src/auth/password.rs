//! Argon2id password hashing, run on the blocking pool so it never stalls the async runtime.

use argon2::password_hash::{rand_core::OsRng, PasswordHash, SaltString};
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use std::sync::LazyLock;
use tokio::sync::Semaphore;

/// Hashes running at once. Each takes 19 MiB and a core for tens of milliseconds: more at once
/// than there are cores only piles up memory (each blocking thread keeps its allocator arena)
/// without finishing sooner. Further requests wait their turn.
static HASHING: LazyLock<Semaphore> =
    LazyLock::new(|| Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())));

/// A hash of a password nobody has, verified when the login names no user, so that the
/// answer takes as long as for a real user (no user enumeration by timing).
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_now("confab-dummy-password").unwrap_or_default());

fn hash_now(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// Hashes a password with Argon2id (default parameters: 19 MiB, 2 passes), off the runtime.
pub async fn hash(password: String) -> anyhow::Result<String> {
    let _turn = HASHING.acquire().await?;
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(|| hash_now(&password)))
        .await?
        .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))
}

/// Checks a password against a stored hash (or against a dummy when `hash` is None), off the
/// runtime. False for a wrong password or an unreadable hash.
pub async fn verify(password: String, hash: Option<String>) -> anyhow::Result<bool> {
    let _turn = HASHING.acquire().await?;
    let span = tracing::Span::current();
    Ok(tokio::task::spawn_blocking(move || {
        span.in_scope(|| {
            let real = hash.is_some();
            let stored = hash.unwrap_or_else(|| DUMMY_HASH.clone());
            let Ok(parsed) = PasswordHash::new(&stored) else {
                return false;
            };
            let ok = Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok();
            ok && real
        })
    })
    .await?)
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn hashes_verify_only_their_password() {
        let h = super::hash("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(super::verify("correct horse".into(), Some(h.clone()))
            .await
            .unwrap());
        assert!(!super::verify("wrong horse".into(), Some(h)).await.unwrap());
        assert!(!super::verify("confab-dummy-password".into(), None)
            .await
            .unwrap());
    }
}
