//! Argon2id password hashing on a pool of its own: a fixed set of threads, one fewer than the
//! machine has cores (at least one), each with one Argon2 memory it reuses for every hash.
//!
//! Why not the runtime's blocking pool: a sign-in storm there takes every core from the
//! real-time path, and each of its many threads keeps the 19 MiB it hashed with in its own
//! allocator arena, so memory grows with every burst and does not come back. Here the cores left
//! to the runtime and the memory (19 MiB a thread) are fixed, and the hashing threads run at a
//! lowest scheduling priority (nice 19), so that where several instances share a machine the
//! real-time threads still come first on a busy core. Requests beyond the pool wait in line, and
//! a request given up while waiting (its client gone, its deadline passed) costs no hash at all.

use argon2::password_hash::{
    rand_core::OsRng, Output, ParamsString, PasswordHash, Salt, SaltString,
};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{mpsc, Arc, LazyLock, Mutex, OnceLock};
use tokio::sync::oneshot;

/// A hash of a password nobody has, verified when the login names no user, so that the
/// answer takes as long as for a real user (no user enumeration by timing).
static DUMMY_HASH: OnceLock<String> = OnceLock::new();

static POOL: LazyLock<Pool> = LazyLock::new(Pool::start);

/// Hashes a password with Argon2id (default parameters: 19 MiB, 2 passes), off the runtime.
pub async fn hash(password: String) -> anyhow::Result<String> {
    POOL.run(move |memory| hash_with(memory, password.as_bytes()))
        .await?
        .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))
}

/// Checks a password against a stored hash (or against a dummy when `hash` is None), off the
/// runtime. False for a wrong password or an unreadable hash.
pub async fn verify(password: String, hash: Option<String>) -> anyhow::Result<bool> {
    POOL.run(move |memory| match hash {
        Some(stored) => verify_with(memory, password.as_bytes(), &stored),
        None => {
            let dummy = DUMMY_HASH
                .get_or_init(|| hash_with(memory, b"confab-dummy-password").unwrap_or_default());
            verify_with(memory, password.as_bytes(), dummy);
            false
        }
    })
    .await
}

/// The Argon2 working memory of one hashing thread, kept between hashes.
#[derive(Default)]
struct Memory(Vec<Block>);

impl Memory {
    /// `count` blocks: the kept ones when they are enough (as for every hash with our own
    /// parameters), else grown once to that size.
    fn blocks(&mut self, count: usize) -> &mut [Block] {
        if self.0.len() < count {
            self.0.resize(count, Block::default());
        }
        &mut self.0[..count]
    }
}

type Job = Box<dyn FnOnce(&mut Memory) + Send>;

/// The hashing threads and the line of work waiting for them.
struct Pool {
    jobs: mpsc::Sender<Job>,
}

impl Pool {
    fn start() -> Self {
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get().saturating_sub(1))
            .max(1);
        let (jobs, line) = mpsc::channel::<Job>();
        let line = Arc::new(Mutex::new(line));
        for i in 0..threads {
            let line = Arc::clone(&line);
            let spawned = std::thread::Builder::new()
                .name(format!("confab-hash-{i}"))
                .spawn(move || {
                    lower_priority();
                    let mut memory = Memory::default();
                    loop {
                        // The lock is held only while waiting for the next job, never while hashing.
                        let job = match line.lock() {
                            Ok(line) => line.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = job else { return };
                        // A panicking hash fails its own request (its answer is dropped), not the thread.
                        let _ = catch_unwind(AssertUnwindSafe(|| job(&mut memory)));
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start a password hashing thread");
            }
        }
        Self { jobs }
    }

    /// Runs `work` on a hashing thread and waits for its answer. Work whose caller stopped
    /// waiting before its turn came is skipped.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Memory) -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let (answer, answered) = oneshot::channel();
        let span = tracing::Span::current();
        let job: Job = Box::new(move |memory| {
            if answer.is_closed() {
                return;
            }
            let _ = answer.send(span.in_scope(|| work(memory)));
        });
        self.jobs
            .send(job)
            .map_err(|_| anyhow::anyhow!("no password hashing thread is running"))?;
        answered
            .await
            .map_err(|_| anyhow::anyhow!("password hashing failed"))
    }
}

/// Niceness of the hashing threads, the lowest there is: on a busy core the scheduler gives a
/// nice-0 thread about 70 times the time of a nice-19 one (weights 1024 and 15), so hashing
/// gets little more than the time chat leaves, and sign-ins still progress (measured against
/// nice 10 in docs/BENCHMARKS.md, "Chat while new users sign up").
const HASHING_NICENESS: i32 = 19;

/// Lowers the calling thread's priority (Linux applies `setpriority` to one thread).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    if let Err(e) =
        rustix::process::setpriority_process(Some(rustix::thread::gettid()), HASHING_NICENESS)
    {
        tracing::warn!(error = %e, "could not lower the password hashing thread's priority");
    }
}

/// A new PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) for `password`.
fn hash_with(memory: &mut Memory, password: &[u8]) -> argon2::password_hash::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    let hashed = compute(
        memory,
        password,
        Algorithm::Argon2id,
        Version::V0x13,
        Params::default(),
        salt.as_salt(),
    )?;
    Ok(hashed.to_string())
}

/// Whether `password` gives the hash in the PHC string `stored` (compared in constant time).
fn verify_with(memory: &mut Memory, password: &[u8], stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(version), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm),
        parsed
            .version
            .map_or(Ok(Version::default()), Version::try_from),
        Params::try_from(&parsed),
    ) else {
        return false;
    };
    compute(memory, password, algorithm, version, params, salt)
        .is_ok_and(|computed| computed.hash == Some(expected))
}

/// What `argon2`'s `PasswordHasher` computes, in the thread's kept memory instead of a fresh
/// allocation.
fn compute<'a>(
    memory: &mut Memory,
    password: &[u8],
    algorithm: Algorithm,
    version: Version,
    params: Params,
    salt: Salt<'a>,
) -> argon2::password_hash::Result<PasswordHash<'a>> {
    let mut salt_bytes = [0u8; Salt::MAX_LENGTH];
    let salt_bytes = salt.decode_b64(&mut salt_bytes)?;
    let argon2 = Argon2::new(algorithm, version, params.clone());
    let blocks = memory.blocks(params.block_count());
    let len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let output = Output::init_with(len, |out| {
        Ok(argon2.hash_password_into_with_memory(password, salt_bytes, out, &mut *blocks)?)
    })?;
    Ok(PasswordHash {
        algorithm: algorithm.ident(),
        version: Some(version.into()),
        params: ParamsString::try_from(&params)?,
        salt: Some(salt),
        hash: Some(output),
    })
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::rand_core::OsRng;
    use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
    use argon2::Argon2;

    #[tokio::test]
    async fn hashes_verify_only_their_password() {
        let h = super::hash("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(super::verify("correct horse".into(), Some(h.clone()))
            .await
            .unwrap());
        assert!(!super::verify("wrong horse".into(), Some(h)).await.unwrap());
        assert!(!super::verify("confab-dummy-password".into(), None)
            .await
            .unwrap());
        assert!(!super::verify("x".into(), Some("not a hash".into()))
            .await
            .unwrap());
    }

    /// Reused memory gives exactly what the `argon2` crate's own hasher gives, both ways, and
    /// hashes with other parameters (older accounts, other settings) still verify.
    #[tokio::test]
    async fn the_kept_memory_agrees_with_the_argon2_crate() {
        let ours = super::hash("battery staple".into()).await.unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default()
            .verify_password(b"battery staple", &parsed)
            .is_ok());

        let small = argon2::Params::new(8192, 3, 1, None).unwrap();
        let theirs = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, small)
            .hash_password(b"battery staple", &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string();
        for _ in 0..2 {
            assert!(super::verify("battery staple".into(), Some(theirs.clone()))
                .await
                .unwrap());
            assert!(
                !super::verify("battery stapler".into(), Some(theirs.clone()))
                    .await
                    .unwrap()
            );
        }
    }

    /// A caller that stops waiting does not stop the pool: later hashes are answered.
    #[tokio::test]
    async fn abandoned_requests_leave_the_pool_working() {
        for _ in 0..8 {
            let abandoned = tokio::spawn(super::hash("given up".into()));
            abandoned.abort();
        }
        assert!(super::hash("still here".into()).await.is_ok());
    }
}
