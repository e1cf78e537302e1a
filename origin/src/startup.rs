//! Building and running the server: bind, open the store, start the broker, serve until told
//! to stop, then shut down in order (stop accepting, close WebSockets with 1001, write out the
//! queue, close the database).

use crate::auth::throttle::LoginThrottle;
use crate::auth::tokens::JwtKeys;
use crate::broker::memory::MemoryBroker;
use crate::broker::redis::conn::RedisTarget;
use crate::broker::redis::{RedisBroker, RedisSettings};
use crate::broker::{DynBroker, Hub};
use crate::config::Config;
use crate::state::{AppState, Services};
use crate::store::DynStore;
use anyhow::{bail, Context};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A built server, bound to its port, not yet serving.
pub struct Application {
    listener: TcpListener,
    /// The Unix socket for a proxy on this host (`CONFAB_LISTEN_UNIX`), when configured.
    unix_listener: Option<UnixListener>,
    /// The separate `/metrics` listener (`CONFAB_METRICS_LISTEN`), when configured.
    metrics_listener: Option<TcpListener>,
    /// The task sending mail, when SMTP is configured; it stops with the shutdown token.
    mail_task: Option<tokio::task::JoinHandle<()>>,
    /// The push dispatcher and the digest, when they run here; they stop with the token.
    notify_tasks: Vec<tokio::task::JoinHandle<()>>,
    settings: crate::server::ServerSettings,
    state: AppState,
    public_url: String,
}

/// Opens the database named by the configuration and applies migrations.
pub async fn open_store(config: &Config) -> anyhow::Result<DynStore> {
    crate::store::open(&config.database_url(), config.database_max_connections).await
}

/// The origin of a URL: scheme://host[:port].
fn origin_of(url: &url::Url) -> String {
    url.origin().ascii_serialization()
}

/// The origins allowed by default: the public URL's, plus the other loopback spellings of it.
fn default_origins(public: &url::Url) -> Vec<String> {
    let mut origins = vec![origin_of(public)];
    let loopback = matches!(public.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    if loopback {
        if let Some(port) = public.port_or_known_default() {
            for host in ["localhost", "127.0.0.1", "[::1]"] {
                let o = format!("{}://{host}:{port}", public.scheme());
                if !origins.contains(&o) {
                    origins.push(o);
                }
            }
        }
    }
    origins
}

/// The SQLite database file a `sqlite:` URL names, if it is a file.
fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| std::path::PathBuf::from(path))
}

/// Makes the data directory and the embedded database private to this user (0700 / 0600):
/// they hold every message, password hash and session. The database file is created here,
/// before SQLite opens it, because SQLite gives its WAL and shared-memory files the database
/// file's permissions.
#[cfg(unix)]
fn make_private(config: &Config) -> anyhow::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let private = |path: &std::path::Path, mode: u32| -> anyhow::Result<()> {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("making {} private", path.display()))
    };
    private(&config.data_dir, 0o700)?;
    if let Some(db) = sqlite_path(&config.database_url()) {
        if !db.exists() {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&db)
                .with_context(|| format!("creating the database file {}", db.display()))?;
        }
        for suffix in ["", "-wal", "-shm"] {
            let file = std::path::PathBuf::from(format!("{}{suffix}", db.display()));
            if file.exists() {
                private(&file, 0o600)?;
            }
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn make_private(_config: &Config) -> anyhow::Result<()> {
    Ok(())
}

fn load_keys(config: &Config) -> anyhow::Result<JwtKeys> {
    match &config.jwt_private_key_file {
        Some(path) => JwtKeys::load_or_generate(path, false),
        None if config.is_embedded() => {
            JwtKeys::load_or_generate(&config.data_dir.join("jwt-ed25519.pem"), true)
        }
        None => bail!(
            "no token signing key configured: set CONFAB_JWT_PRIVATE_KEY_FILE to a PEM file \
             (create one with `confab keygen > key.pem`). Only the embedded SQLite setup \
             generates a key by itself."
        ),
    }
}

/// Everything [`build_state`] makes: the state, and the task sending mail when SMTP is
/// configured (it stops with the shutdown token).
pub struct Built {
    pub state: AppState,
    pub mail_task: Option<tokio::task::JoinHandle<()>>,
    /// The in-process push dispatcher and the e-mail digest, when they run here; they stop
    /// with the shutdown token.
    pub notify_tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Builds every component of a server whose public URL is `public_url`: the data directory
/// (private), the keys, the store (with its migrations), the hub, the broker, the file store,
/// the preview fetcher and the mailer. Used by [`Application::build`],
/// and by tests that drive sessions without a listener.
pub async fn build_state(config: Config, public_url: &str) -> anyhow::Result<Built> {
    crate::metrics::install();
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating the data directory {}", config.data_dir.display()))?;
    make_private(&config)?;
    let keys = load_keys(&config)?.with_max_ttl(config.access_ttl_secs as i64);
    let parsed = url::Url::parse(public_url)
        .with_context(|| format!("CONFAB_PUBLIC_URL {public_url:?} is not a URL"))?;
    let allowed_origins = if config.allowed_origins.is_empty() {
        default_origins(&parsed)
    } else {
        config
            .allowed_origins
            .iter()
            .map(|o| o.trim().trim_end_matches('/').to_owned())
            .collect()
    };
    let store = open_store(&config).await?;
    let filled = store
        .fill_missing_skeletons()
        .await
        .context("computing the look-alike keys of older names")?;
    if filled > 0 {
        tracing::info!(filled, "look-alike keys filled in for older names");
    }
    let hub = Arc::new(Hub::new(config.room_buffer));
    let redis =
        RedisTarget::from_settings(config.redis_url.as_deref(), &config.redis_cluster.nodes)?;
    let broker: DynBroker = match &redis {
        Some(target) => Arc::new(
            RedisBroker::start(
                target,
                hub.clone(),
                store.clone(),
                RedisSettings {
                    stream_max: config.stream_max,
                    shards: config.redis_cluster.shards,
                    wait_replicas: config.redis_cluster.wait_replicas,
                    wait_timeout_ms: config.redis_cluster.wait_timeout_ms,
                    resend_window_secs: config.resend_window_secs,
                },
            )
            .await
            .context("connecting to Redis")?,
        ),
        None => Arc::new(MemoryBroker::start(
            hub.clone(),
            store.clone(),
            config.queue_capacity,
        )),
    };
    let throttle = Arc::new(LoginThrottle::new(config.auth_burst_per_address));
    let files = crate::files::open(&config.files, &config.data_dir).await?;
    tracing::info!(files = %files.describe(), "file storage");
    let mut previews = crate::preview::PreviewFetcher::new(
        confab_shared::preview::Allowlist::parse(&config.files.preview_allowlist),
        config.files.previews_per_user,
    );
    if let Some(url) = &config.redis_url {
        previews = previews
            .with_redis(url)
            .await
            .context("connecting the preview cache to Redis")?;
    }
    let uploads = Arc::new(crate::files::Uploads {
        files,
        previews,
        max_bytes: config.files.max_upload_bytes,
        public_url: public_url.to_owned(),
        edge_url: config.files.edge_url().map(str::to_owned),
        per_user: crate::limits::KeyedLimit::new(config.files.max_uploads_per_user),
        in_progress: Arc::new(Semaphore::new(config.files.max_uploads)),
    });
    let shutdown = CancellationToken::new();
    let (mailer, mail_task) = match &config.smtp_url {
        Some(url) => {
            let from = config.mail_from.clone().unwrap_or_else(|| {
                format!(
                    "Confab <confab@{}>",
                    parsed.host_str().unwrap_or("localhost")
                )
            });
            let (mailer, task) = crate::mail::Mailer::start(url, &from, shutdown.clone())
                .context("setting up CONFAB_SMTP_URL")?;
            (Some(Arc::new(mailer)), Some(task))
        }
        None => (None, None),
    };
    let (notifier, notify_tasks) = start_notifications(
        &config,
        &store,
        parsed.host_str().unwrap_or("localhost"),
        &shutdown,
    )
    .await?;
    let mut notify_tasks = notify_tasks;
    if let Some(mailer) = &mailer {
        notify_tasks.push(tokio::spawn(crate::notify::digest::run(
            store.clone(),
            mailer.clone(),
            public_url.to_owned(),
            Duration::from_secs(config.digest_delay_secs),
            shutdown.clone(),
        )));
    }
    let state = AppState::new(Services {
        notifier,
        posts: Arc::new(crate::limits::PostRate::new(config.send_rate)),
        mailer,
        socket_limits: Arc::new(crate::limits::SocketLimits::new(
            config.max_sockets_per_user,
            config.max_sockets_per_address,
        )),
        secure_cookies: parsed.scheme() == "https",
        connections: Arc::new(Semaphore::new(config.max_connections)),
        config: Arc::new(config),
        session_checks: crate::auth::checks::SessionChecks::start(store.clone(), hub.clone()),
        store,
        broker,
        hub,
        keys: Arc::new(keys),
        throttle,
        allowed_origins: Arc::new(allowed_origins),
        draining: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        shutdown,
        sessions: TaskTracker::new(),
        uploads,
    });
    Ok(Built {
        state,
        mail_task,
        notify_tasks,
    })
}

/// Web Push: with one Redis, jobs go to its stream and `confab worker` sends them, and who
/// looks at what is kept there; otherwise (embedded, or a Redis Cluster) a dispatcher runs in
/// this process with an in-process queue.
async fn start_notifications(
    config: &Config,
    store: &DynStore,
    host: &str,
    shutdown: &CancellationToken,
) -> anyhow::Result<(
    Arc<crate::notify::Notifier>,
    Vec<tokio::task::JoinHandle<()>>,
)> {
    use crate::notify::attention::{DynAttention, MemoryAttention, RedisAttention};
    use crate::notify::{dispatch::Dispatcher, queue::JobQueue, sender::PushSender, Notifier};
    let allow = confab_shared::preview::Allowlist::parse(&config.push.allowlist);
    let attention: DynAttention = match &config.redis_url {
        // Entries count for two idle timeouts unless a ping renews them.
        Some(url) => Arc::new(
            RedisAttention::connect(url, config.idle_timeout_secs.max(1) as i64 * 2000)
                .await
                .context("connecting the push attention registry to Redis")?,
        ),
        None => Arc::new(MemoryAttention::default()),
    };
    if !config.push.enabled {
        return Ok((
            Arc::new(Notifier::new(None, attention, None, allow)),
            Vec::new(),
        ));
    }
    let vapid = Arc::new(crate::notify::load_vapid(
        &config.push,
        &config.data_dir,
        config.is_embedded(),
        host,
    )?);
    let mut tasks = Vec::new();
    let queue = match &config.redis_url {
        Some(url) => JobQueue::redis(url, &config.push.stream, config.push.queue_capacity as i64)
            .await
            .context("connecting the push queue to Redis")?,
        None => {
            let (queue, jobs) = JobQueue::local(config.push.queue_capacity);
            let sender = Arc::new(PushSender::new(
                vapid.clone(),
                allow.clone(),
                crate::notify::send_settings(&config.push),
            ));
            let dispatcher = Dispatcher::new(
                store.clone(),
                attention.clone(),
                sender,
                Duration::from_millis(config.push.coalesce_ms),
            );
            tasks.push(tokio::spawn(dispatcher.run_local(jobs, shutdown.clone())));
            queue
        }
    };
    Ok((
        Arc::new(Notifier::new(Some(queue), attention, Some(vapid), allow)),
        tasks,
    ))
}

/// Binds a Unix socket at `path`, replacing a stale socket file left by an earlier run (but
/// nothing else).
fn bind_unix(path: &std::path::Path) -> anyhow::Result<UnixListener> {
    use std::os::unix::fs::FileTypeExt;
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            bail!("{} exists and is not a socket", path.display());
        }
        std::fs::remove_file(path)
            .with_context(|| format!("removing the stale socket {}", path.display()))?;
    }
    UnixListener::bind(path).with_context(|| format!("listening on {}", path.display()))
}

impl Application {
    /// Binds the listeners and builds every component.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("listening on {}", config.listen))?;
        let local = listener.local_addr()?;
        let unix_listener = match &config.listen_unix {
            Some(path) => Some(bind_unix(path)?),
            None => None,
        };
        let metrics_listener = match config.metrics_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("listening for metrics on {addr}"))?,
            ),
            None => None,
        };
        let settings = crate::server::ServerSettings {
            header_read: Duration::from_secs(config.header_read_timeout_secs),
            keep_alive: Duration::from_secs(config.keep_alive_timeout_secs),
            // Behind a proxy every connection comes from the proxy: limit clients there.
            per_address: if config.behind_proxy() {
                0
            } else {
                config.max_connections_per_address
            },
            grace: Duration::from_secs(config.shutdown_timeout_secs),
        };
        let public_url = match &config.public_url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None if local.ip().is_unspecified() => format!("http://127.0.0.1:{}", local.port()),
            None => format!("http://{local}"),
        };
        let Built {
            state,
            mail_task,
            notify_tasks,
        } = build_state(config, &public_url).await?;
        Ok(Self {
            listener,
            unix_listener,
            metrics_listener,
            mail_task,
            notify_tasks,
            settings,
            state,
            public_url,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// The address of the separate metrics listener, when configured.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// The URL people use to reach this server.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// Serves until `stop` resolves, then shuts down gracefully.
    pub async fn run_until_stopped(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let state = self.state;
        let shutdown = state.shutdown.clone();
        let pruner = {
            let throttle = state.throttle.clone();
            let posts = state.posts.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                let mut every = tokio::time::interval(Duration::from_secs(60));
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = every.tick() => {
                            throttle.prune();
                            posts.prune();
                        }
                    }
                }
            })
        };
        // Sessions learn of the shutdown through their mailboxes (they do not watch the token).
        let closer = {
            let (hub, shutdown) = (state.hub.clone(), shutdown.clone());
            tokio::spawn(async move {
                shutdown.cancelled().await;
                hub.close_all();
            })
        };
        let app = crate::http::router(state.clone());
        let signal = shutdown.clone();
        let draining = state.draining.clone();
        let drain = Duration::from_secs(state.config.drain_secs);
        let settings = self.settings;
        let metrics = self.metrics_listener.map(|listener| {
            let stop = shutdown.clone();
            tokio::spawn(async move {
                let app = axum::Router::new().route(
                    "/metrics",
                    axum::routing::get(|| async { crate::metrics::render() }),
                );
                crate::server::serve(listener, app, settings, stop.cancelled_owned()).await
            })
        });
        // The Unix socket stops accepting when the TCP listener does (the token below) and
        // lets its requests finish under the same grace.
        let unix = self.unix_listener.map(|listener| {
            let (app, stop) = (app.clone(), shutdown.clone());
            // Every connection here comes from the proxy: its clients are limited there.
            let settings = crate::server::ServerSettings {
                per_address: 0,
                ..settings
            };
            tokio::spawn(async move {
                crate::server::serve(listener, app, settings, stop.cancelled_owned()).await
            })
        });
        crate::server::serve(self.listener, app, settings, async move {
            tokio::select! {
                _ = stop => {
                    // Fail readiness first, so the load balancer sends new clients elsewhere.
                    draining.store(true, std::sync::atomic::Ordering::Relaxed);
                    if !drain.is_zero() {
                        tracing::info!(?drain, "draining before shutdown");
                        tokio::time::sleep(drain).await;
                    }
                }
                _ = signal.cancelled() => {}
            }
            signal.cancel();
        })
        .await
        .context("serving HTTP")?;
        shutdown.cancel();
        if let Some(unix) = unix {
            match unix.await {
                Ok(served) => served.context("serving HTTP on the Unix socket")?,
                Err(e) => tracing::warn!(error = ?e, "the Unix socket's server failed"),
            }
        }

        // WebSocket sessions run outside axum's graceful shutdown: their mailboxes told them,
        // and they are closing with 1001. Wait for them, but not forever.
        if let Err(e) = closer.await {
            tracing::warn!(error = ?e, "closing the sessions failed");
        }
        state.sessions.close();
        let grace = Duration::from_secs(state.config.shutdown_timeout_secs);
        if tokio::time::timeout(grace, state.sessions.wait())
            .await
            .is_err()
        {
            tracing::warn!("some WebSocket sessions did not close in time");
        }
        // Pushes in flight finish before the mailer and the store close.
        for task in self.notify_tasks {
            if let Err(e) = task.await {
                tracing::warn!(error = ?e, "a notification task failed");
            }
        }
        if let Some(task) = self.mail_task {
            if let Err(e) = task.await {
                tracing::warn!(error = ?e, "the mail task failed");
            }
        }
        if let Some(metrics) = metrics {
            match metrics.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "the metrics listener failed"),
                Err(e) => tracing::warn!(error = ?e, "the metrics listener failed"),
            }
        }
        state.broker.shutdown().await;
        state.store.close().await;
        if let Err(e) = pruner.await {
            tracing::warn!(error = ?e, "throttle pruner failed");
        }
        tracing::info!("stopped");
        Ok(())
    }
}
