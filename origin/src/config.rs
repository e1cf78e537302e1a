//! Settings. Every setting is a `confab serve` flag and a `CONFAB_*` environment variable, with a
//! default that runs the embedded single-node shape (SQLite, in-process broker, files on disk).

use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The settings of `confab serve` (and of `confab migrate`, which uses the database ones).
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to listen on. Port 0 picks a free port.
    #[arg(long, env = "CONFAB_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// A Unix socket to listen on as well, for a proxy on the same host (HAProxy's
    /// `server ... unix@PATH`): the same server, without the kernel's TCP and IP work per
    /// frame. Its connections count as local (loopback); the client's address comes from the
    /// proxy's `X-Forwarded-For` (`CONFAB_TRUST_FORWARDED_FOR`). A stale socket file at the
    /// path is replaced.
    #[arg(long, env = "CONFAB_LISTEN_UNIX")]
    pub listen_unix: Option<PathBuf>,

    /// Directory for the embedded database, the generated signing key and local files; created
    /// when missing.
    #[arg(long, env = "CONFAB_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Database URL: `sqlite://PATH` or `postgres://...`. Default: SQLite at DATA_DIR/confab.db.
    #[arg(long, env = "CONFAB_DATABASE_URL")]
    pub database_url: Option<String>,

    /// Most database connections this process opens (PostgreSQL).
    #[arg(long, env = "CONFAB_DATABASE_MAX_CONNECTIONS", default_value_t = 10)]
    pub database_max_connections: u32,

    /// Redis URL (`redis://host:port`). When set, messages go through Redis (fan-out across
    /// instances, presence, recovery) and are persisted by `confab worker` processes.
    #[arg(long, env = "CONFAB_REDIS_URL")]
    pub redis_url: Option<String>,

    /// Most messages waiting in the Redis persistence stream (each shard's, on a Redis Cluster)
    /// before sends get `unavailable`.
    #[arg(long, env = "CONFAB_STREAM_MAX", default_value_t = 100_000)]
    pub stream_max: i64,

    /// How long (seconds) Redis remembers the answer to each accepted change, so that a resend
    /// with the same `client_msg_id` (or `ref`) gets the same ack and is not published twice.
    /// Redis holds about 190 bytes per change for this long.
    #[arg(long, env = "CONFAB_RESEND_WINDOW_SECS", default_value_t = 86_400,
          value_parser = clap::value_parser!(u32).range(60..))]
    pub resend_window_secs: u32,

    /// Redis Cluster, and acks that wait for Redis replicas.
    #[command(flatten)]
    pub redis_cluster: RedisClusterConfig,

    /// The URL people use to reach this server (cookies are `Secure` when it is https).
    /// Default: http://LISTEN.
    #[arg(long, env = "CONFAB_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Origins allowed to open WebSockets, comma-separated. Default: the public URL's origin
    /// (plus its localhost / 127.0.0.1 spellings when it is a loopback address).
    #[arg(long, env = "CONFAB_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// PEM file holding the Ed25519 (PKCS#8) key that signs access tokens. Required outside the
    /// embedded default; there it is generated into DATA_DIR/jwt-ed25519.pem when missing.
    /// `confab keygen` prints a new one.
    #[arg(long, env = "CONFAB_JWT_PRIVATE_KEY_FILE")]
    pub jwt_private_key_file: Option<PathBuf>,

    /// Directory of the built web client, served at `/` when it exists.
    #[arg(long, env = "CONFAB_WEB_DIR", default_value = "web/dist")]
    pub web_dir: PathBuf,

    /// Uploads, file storage and link previews.
    #[command(flatten)]
    pub files: crate::files::FilesConfig,

    /// Access-token lifetime in seconds (at most 900).
    #[arg(long, env = "CONFAB_ACCESS_TTL_SECS", default_value_t = 900,
          value_parser = clap::value_parser!(u64).range(10..=900))]
    pub access_ttl_secs: u64,

    /// Refresh-token (login session) lifetime in days.
    #[arg(long, env = "CONFAB_REFRESH_TTL_DAYS", default_value_t = 30)]
    pub refresh_ttl_days: u64,

    /// Largest WebSocket frame a client may send, in bytes; larger ones close the socket (1009).
    #[arg(long, env = "CONFAB_MAX_FRAME_BYTES", default_value_t = confab_shared::protocol::DEFAULT_MAX_FRAME_BYTES)]
    pub max_frame_bytes: usize,

    /// Seconds without any frame from a client before its WebSocket is closed.
    #[arg(long, env = "CONFAB_IDLE_TIMEOUT_SECS", default_value_t = 60)]
    pub idle_timeout_secs: u64,

    /// Seconds between checks that a WebSocket's login session is still valid.
    #[arg(long, env = "CONFAB_REVALIDATE_SECS", default_value_t = 60)]
    pub revalidate_secs: u64,

    /// Seconds a write to a WebSocket may block before the client is dropped as too slow.
    #[arg(long, env = "CONFAB_WRITE_TIMEOUT_SECS", default_value_t = 10)]
    pub write_timeout_secs: u64,

    /// Compress WebSocket messages (permessage-deflate, RFC 7692) for clients that offer it, as
    /// browsers do: about a third fewer bytes for a chat message, at no per-connection memory
    /// (no context takeover; a message sent to a room is compressed once). `false` turns it off.
    #[arg(long, env = "CONFAB_WS_DEFLATE", default_value_t = true, action = clap::ArgAction::Set)]
    pub ws_deflate: bool,

    /// Seconds to wait for WebSockets and queued writes on shutdown.
    #[arg(long, env = "CONFAB_SHUTDOWN_TIMEOUT_SECS", default_value_t = 10)]
    pub shutdown_timeout_secs: u64,

    /// Seconds to keep serving after a stop signal while `/readyz` answers 503, so a load
    /// balancer stops sending new clients here before WebSockets are closed.
    #[arg(long, env = "CONFAB_DRAIN_SECS", default_value_t = 0)]
    pub drain_secs: u64,

    /// Most WebSocket connections at once; further upgrades get 503.
    #[arg(long, env = "CONFAB_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,

    /// Events buffered per connection; a room whose events do not fit is resynced.
    #[arg(long, env = "CONFAB_ROOM_BUFFER", default_value_t = 256)]
    pub room_buffer: usize,

    /// Messages waiting to be written to the database before sends get `unavailable`.
    #[arg(long, env = "CONFAB_QUEUE_CAPACITY", default_value_t = 8192)]
    pub queue_capacity: usize,

    /// Messages a connection may send per second (bursts of twice that are allowed).
    #[arg(long, env = "CONFAB_SEND_RATE", default_value_t = 10)]
    pub send_rate: u32,

    /// Frames of any kind a connection may send per second (bursts of twice that are allowed).
    #[arg(long, env = "CONFAB_FRAME_RATE", default_value_t = 30)]
    pub frame_rate: u32,

    /// Login and registration attempts allowed at once per client address (then one more every
    /// 2 seconds). Raise it for load tests that register many users from one address.
    #[arg(long, env = "CONFAB_AUTH_BURST_PER_ADDRESS", default_value_t = 30)]
    pub auth_burst_per_address: u32,

    /// Trust the first X-Forwarded-For address (set only behind a proxy that sets it).
    #[arg(long, env = "CONFAB_TRUST_FORWARDED_FOR", default_value_t = false)]
    pub trust_forwarded_for: bool,

    /// Seconds a client has to send a request's head (request line and headers), from the
    /// first byte; on a new connection, from the moment it opens. Past it the connection is
    /// closed.
    #[arg(long, env = "CONFAB_HEADER_READ_TIMEOUT_SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub header_read_timeout_secs: u64,

    /// Seconds a client has to send a whole request body (uploads: see
    /// CONFAB_UPLOAD_TIMEOUT_SECS). Past it the request fails and the connection is closed.
    #[arg(long, env = "CONFAB_BODY_READ_TIMEOUT_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub body_read_timeout_secs: u64,

    /// Seconds a client has to send the body of an upload (`/api/uploads`).
    #[arg(long, env = "CONFAB_UPLOAD_TIMEOUT_SECS", default_value_t = 600,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub upload_timeout_secs: u64,

    /// Seconds a kept-alive HTTP connection may wait idle between requests before it is closed.
    #[arg(long, env = "CONFAB_KEEP_ALIVE_TIMEOUT_SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub keep_alive_timeout_secs: u64,

    /// Most TCP connections at once from one address (HTTP and WebSocket alike); further ones
    /// get 429 and are closed. 0: no limit. Not applied with CONFAB_TRUST_FORWARDED_FOR or
    /// CONFAB_EDGE_SECRET, where every connection comes from the proxy (limit clients there).
    #[arg(
        long,
        env = "CONFAB_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = 256
    )]
    pub max_connections_per_address: usize,

    /// Most WebSockets one user may have open at once; a further upgrade is refused with 429
    /// (the new socket is refused, the open ones stay). 0: no limit.
    #[arg(long, env = "CONFAB_MAX_SOCKETS_PER_USER", default_value_t = 16)]
    pub max_sockets_per_user: usize,

    /// Most WebSockets open at once from one client address (the edge's signed address with
    /// CONFAB_EDGE_SECRET, the X-Forwarded-For address with CONFAB_TRUST_FORWARDED_FOR); a
    /// further upgrade is refused with 429. 0: no limit.
    #[arg(long, env = "CONFAB_MAX_SOCKETS_PER_ADDRESS", default_value_t = 64)]
    pub max_sockets_per_address: usize,

    /// Address of a separate listener serving only `GET /metrics` (Prometheus), e.g. on a
    /// private interface. Without it (and without CONFAB_METRICS_TOKEN) metrics are not served.
    #[arg(long, env = "CONFAB_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// A bearer token that opens `GET /metrics` on the main listener
    /// (`Authorization: Bearer TOKEN`). Without it the main listener does not serve metrics.
    #[arg(long, env = "CONFAB_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

    /// SMTP server for registration by e-mail confirmation, e.g.
    /// `smtp://user:pass@mail.example.com:587?tls=required` or `smtps://mail.example.com`.
    /// Without it, registration logs in at once (and tells whether an address is registered).
    #[arg(long, env = "CONFAB_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,

    /// The sender of Confab's e-mail. Default: `Confab <confab@HOST>` with the public URL's host.
    #[arg(long, env = "CONFAB_MAIL_FROM")]
    pub mail_from: Option<String>,

    /// Who may create an account: `open` (anyone), `invite` (with an invite code from
    /// `POST /api/invites`) or `closed` (administrators create accounts, `confab admin
    /// create-user`). In every mode but `closed`, the first account of a fresh install needs
    /// no invite and becomes a site administrator.
    #[arg(long, env = "CONFAB_REGISTRATION", value_enum, default_value_t = Registration::Invite)]
    pub registration: Registration,

    /// Whether every user (not only administrators) may create invites.
    #[arg(long, env = "CONFAB_INVITES_BY_USERS", default_value_t = false)]
    pub invites_by_users: bool,

    // ---- The edge worker as the front door (wrangler.toml; README, "Deploying") ----
    /// The secret shared with the edge worker (its own CONFAB_EDGE_SECRET, a wrangler secret),
    /// at least 32 characters (`openssl rand -base64 32`). With it, a client address the edge
    /// signed with this secret (header X-Confab-Client-Address) is the client's address, for
    /// login throttling and the per-address socket cap, and the per-address TCP limit is off
    /// (every connection comes from the edge). Without it, that header is ignored. It is
    /// checked first: a request without a valid signature falls back to the first
    /// X-Forwarded-For hop (with CONFAB_TRUST_FORWARDED_FOR), else the peer's address. Empty:
    /// the same as unset.
    #[arg(long, env = "CONFAB_EDGE_SECRET", hide_env_values = true, value_parser = EdgeSecret::parse)]
    pub edge_secret: Option<EdgeSecret>,

    /// Web Push and the e-mail digest.
    #[command(flatten)]
    pub push: PushConfig,

    /// Seconds an unread mention or direct message waits before it goes into an e-mail digest
    /// (with CONFAB_SMTP_URL; each user can turn e-mail off).
    #[arg(long, env = "CONFAB_DIGEST_DELAY_SECS", default_value_t = 600)]
    pub digest_delay_secs: u64,
}

/// Web Push: the settings `confab serve` and `confab worker` share (in the scaled-out shape
/// the workers send the pushes).
#[derive(Debug, Clone, Args)]
pub struct PushConfig {
    /// Whether Web Push is on. Outside the embedded default it needs
    /// CONFAB_VAPID_PRIVATE_KEY_FILE (start-up fails without it).
    #[arg(id = "push_enabled", long = "push", value_name = "BOOL", env = "CONFAB_PUSH", default_value_t = true, action = clap::ArgAction::Set)]
    pub enabled: bool,

    /// PEM file holding the P-256 key that signs pushes (VAPID). Required outside the embedded
    /// default, the same file for every instance and worker; there it is generated into
    /// DATA_DIR/vapid-p256.pem when missing. `confab keygen --vapid` prints a new one.
    #[arg(long = "vapid-private-key-file", env = "CONFAB_VAPID_PRIVATE_KEY_FILE")]
    pub vapid_private_key_file: Option<PathBuf>,

    /// How push services can reach the operator (the VAPID `sub`): `mailto:` or an https URL.
    /// Default: mailto:confab@HOST with the public URL's host.
    #[arg(long = "vapid-subject", env = "CONFAB_VAPID_SUBJECT")]
    pub vapid_subject: Option<String>,

    /// `host:port` pairs push endpoints may name despite the push-service list and the address
    /// policy. **Tests only.**
    #[arg(
        long = "push-allowlist",
        env = "CONFAB_PUSH_ALLOWLIST",
        default_value = ""
    )]
    pub allowlist: String,

    /// Milliseconds between two pushes for one user and room; messages in between are merged
    /// into one push at the end of the window.
    #[arg(
        long = "push-coalesce-ms",
        env = "CONFAB_PUSH_COALESCE_MS",
        default_value_t = 5000
    )]
    pub coalesce_ms: u64,

    /// Seconds a push service keeps a push for a browser that is offline.
    #[arg(
        long = "push-ttl-secs",
        env = "CONFAB_PUSH_TTL_SECS",
        default_value_t = 86_400
    )]
    pub ttl_secs: u32,

    /// Tries per push (network errors, 429 and 5xx are retried, with doubling backoff).
    #[arg(
        long = "push-attempts",
        env = "CONFAB_PUSH_ATTEMPTS",
        default_value_t = 4
    )]
    pub attempts: u32,

    /// Milliseconds before the first retry of a push.
    #[arg(
        long = "push-backoff-ms",
        env = "CONFAB_PUSH_BACKOFF_MS",
        default_value_t = 500
    )]
    pub backoff_ms: u64,

    /// Notification jobs waiting in process (embedded) / in the Redis stream, at most; more
    /// are dropped (and counted).
    #[arg(
        id = "push_queue_capacity",
        long = "push-queue-capacity",
        value_name = "JOBS",
        env = "CONFAB_PUSH_QUEUE_CAPACITY",
        default_value_t = 4096
    )]
    pub queue_capacity: usize,

    /// The Redis stream of notification jobs (instances add, workers read); one per deployment
    /// sharing a Redis.
    #[arg(
        long = "push-stream",
        env = "CONFAB_PUSH_STREAM",
        default_value = "confab:notify"
    )]
    pub stream: String,
}

impl Default for PushConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            vapid_private_key_file: None,
            vapid_subject: None,
            allowlist: String::new(),
            coalesce_ms: 5000,
            ttl_secs: 86_400,
            attempts: 4,
            backoff_ms: 500,
            queue_capacity: 4096,
            stream: "confab:notify".into(),
        }
    }
}

/// Who may create an account (`CONFAB_REGISTRATION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Registration {
    /// Anyone may register.
    Open,
    /// Registering needs a valid invite (the default: secure, and the first account is free).
    Invite,
    /// Only administrators create accounts.
    Closed,
}

/// The secret shared with the edge worker. Its `Debug` does not show it.
#[derive(Clone)]
pub struct EdgeSecret(String);

impl EdgeSecret {
    /// A secret of at least [`MIN_SECRET_LEN`](confab_shared::edge::MIN_SECRET_LEN) characters,
    /// or the empty one, which [`Config::edge_secret`] reads as none. Surrounding white space
    /// (a file's last newline) is not part of it, on either side.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let min = confab_shared::edge::MIN_SECRET_LEN;
        if !s.is_empty() && s.chars().count() < min {
            return Err(format!(
                "must be at least {min} characters (openssl rand -base64 32)"
            ));
        }
        Ok(Self(s.to_owned()))
    }

    /// The secret's bytes, for the HMAC.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for EdgeSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EdgeSecret(..)")
    }
}

impl Config {
    /// The defaults, as `confab serve` with no flags or environment would have them, but
    /// listening on a free loopback port, keeping data in `data_dir`, and with open
    /// registration (tests register many users; the tests of registration modes set theirs).
    /// Used by tests.
    pub fn for_tests(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            listen_unix: None,
            data_dir: data_dir.into(),
            database_url: None,
            database_max_connections: 10,
            redis_url: None,
            stream_max: 100_000,
            resend_window_secs: 86_400,
            redis_cluster: RedisClusterConfig::default(),
            public_url: None,
            allowed_origins: Vec::new(),
            jwt_private_key_file: None,
            web_dir: PathBuf::from("web/dist"),
            files: crate::files::FilesConfig::default(),
            access_ttl_secs: 900,
            refresh_ttl_days: 30,
            max_frame_bytes: confab_shared::protocol::DEFAULT_MAX_FRAME_BYTES,
            idle_timeout_secs: 60,
            revalidate_secs: 60,
            write_timeout_secs: 10,
            ws_deflate: true,
            shutdown_timeout_secs: 10,
            drain_secs: 0,
            max_connections: 10_000,
            room_buffer: 256,
            queue_capacity: 8192,
            send_rate: 10,
            frame_rate: 30,
            auth_burst_per_address: 30,
            trust_forwarded_for: false,
            header_read_timeout_secs: 10,
            body_read_timeout_secs: 30,
            upload_timeout_secs: 600,
            keep_alive_timeout_secs: 60,
            max_connections_per_address: 256,
            max_sockets_per_user: 16,
            max_sockets_per_address: 64,
            metrics_listen: None,
            metrics_token: None,
            smtp_url: None,
            mail_from: None,
            edge_secret: None,
            push: PushConfig::default(),
            digest_delay_secs: 600,
            registration: Registration::Open,
            invites_by_users: false,
        }
    }

    /// The database URL in force.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("confab.db").display()),
        }
    }

    /// Whether this is the embedded single-node shape (no external services), where development
    /// conveniences such as a generated signing key are allowed.
    pub fn is_embedded(&self) -> bool {
        self.database_url().starts_with("sqlite:")
            && self.redis_url.is_none()
            && self.redis_cluster.nodes.is_empty()
    }

    /// Whether every connection comes through a proxy that names the client (a trusted
    /// X-Forwarded-For, or the edge worker's signed address): then limits by the peer's own
    /// address would limit the proxy, not a client.
    pub fn behind_proxy(&self) -> bool {
        self.trust_forwarded_for || self.edge_secret().is_some()
    }

    /// The secret shared with the edge worker, when one is set (and not empty).
    pub fn edge_secret(&self) -> Option<&EdgeSecret> {
        self.edge_secret.as_ref().filter(|s| !s.0.is_empty())
    }

    /// Idle timeout as a duration.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }
}

/// The settings of `confab worker`, which moves messages from the Redis stream into the database.
#[derive(Debug, Clone, Args)]
pub struct WorkerConfig {
    /// Database URL (`postgres://...`, or `sqlite://PATH`).
    #[arg(long, env = "CONFAB_DATABASE_URL")]
    pub database_url: String,

    /// Redis URL (one Redis); or set CONFAB_REDIS_CLUSTER.
    #[arg(long, env = "CONFAB_REDIS_URL")]
    pub redis_url: Option<String>,

    /// Redis Cluster, and persisting only what is on enough Redis replicas.
    #[command(flatten)]
    pub redis_cluster: RedisClusterConfig,

    /// Most database connections this process opens.
    #[arg(long, env = "CONFAB_DATABASE_MAX_CONNECTIONS", default_value_t = 4)]
    pub database_max_connections: u32,

    /// This worker's consumer name in the group; a restarted worker with the same name takes up
    /// its own unfinished entries at once. Default: worker-HOSTNAME.
    #[arg(long, env = "CONFAB_WORKER_NAME")]
    pub worker_name: Option<String>,

    /// Most messages written per database statement.
    #[arg(long, env = "CONFAB_WORKER_BATCH", default_value_t = 256)]
    pub batch: usize,

    /// Milliseconds a worker waits after writing a batch that was not full, so the next one
    /// gathers more entries: one transaction (and one read and acknowledgement) per batch,
    /// not per message. The ack to the client never waits for it; it adds at most this much to
    /// the time from accept to row (and to a push's, which follows the commit). 0 writes as
    /// entries arrive. 200 ms: at 1,000 messages a second over 2 workers, batches of ~100,
    /// which cost the database and the workers 40% less per message than 50 ms's ~25
    /// (docs/BENCHMARKS.md, *2026-12-06*).
    #[arg(long, env = "CONFAB_WORKER_LINGER_MS", default_value_t = 200)]
    pub linger_ms: u64,

    /// Address to serve this worker's `/metrics` on (Prometheus); none by default.
    #[arg(long, env = "CONFAB_WORKER_METRICS_LISTEN")]
    pub metrics_listen: Option<std::net::SocketAddr>,

    /// Milliseconds after which another consumer's unacknowledged entries are taken over.
    #[arg(long, env = "CONFAB_WORKER_CLAIM_IDLE_MS", default_value_t = 15_000)]
    pub claim_idle_ms: u64,

    /// Web Push: workers send the pushes queued by the instances.
    #[command(flatten)]
    pub push: PushConfig,
}

impl WorkerConfig {
    /// This worker's consumer name in the persistence and notification groups.
    pub fn consumer_name(&self) -> String {
        self.worker_name.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/etc/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_else(|_| "local".into());
            format!("worker-{host}")
        })
    }
}

/// Redis Cluster, and acks that wait for Redis replicas: the settings `confab serve` and
/// `confab worker` share.
#[derive(Debug, Clone, Args)]
pub struct RedisClusterConfig {
    /// Redis Cluster nodes, comma-separated `host:port` (a few are enough; the rest are
    /// discovered). Use instead of CONFAB_REDIS_URL: rooms are spread over the cluster's
    /// masters by shard, with sharded pub/sub (Redis 7).
    #[arg(
        long = "redis-cluster",
        env = "CONFAB_REDIS_CLUSTER",
        value_delimiter = ','
    )]
    pub nodes: Vec<String>,

    /// Shards rooms are spread over on a Redis Cluster, each with its own persistence stream
    /// (a power of two). Every instance and worker of a deployment must use the same number.
    #[arg(long = "redis-shards", env = "CONFAB_REDIS_SHARDS", default_value_t = 64,
          value_parser = power_of_two)]
    pub shards: u32,

    /// Acknowledge a change only once it is on this many Redis replicas (`WAIT`), so an ack
    /// survives a master failover; workers likewise persist only entries that are. 0: do not
    /// wait (an ack survives what the master's own persistence covers).
    #[arg(
        long = "redis-wait-replicas",
        env = "CONFAB_REDIS_WAIT_REPLICAS",
        default_value_t = 0
    )]
    pub wait_replicas: u32,

    /// Milliseconds to wait for those replicas before answering a retryable `unavailable`.
    #[arg(
        long = "redis-wait-timeout-ms",
        env = "CONFAB_REDIS_WAIT_TIMEOUT_MS",
        default_value_t = 500
    )]
    pub wait_timeout_ms: u64,
}

impl Default for RedisClusterConfig {
    fn default() -> Self {
        Self {
            nodes: Vec::new(),
            shards: 64,
            wait_replicas: 0,
            wait_timeout_ms: 500,
        }
    }
}

fn power_of_two(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(n) if n.is_power_of_two() && n <= 16384 => Ok(n),
        _ => Err(format!("{s} is not a power of two between 1 and 16384")),
    }
}
