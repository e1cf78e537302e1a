//! The application state every handler and WebSocket session receives.

use crate::auth::throttle::LoginThrottle;
use crate::auth::tokens::JwtKeys;
use crate::broker::{DynBroker, Hub};
use crate::config::Config;
use crate::store::DynStore;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// One pointer to the [`Services`]: cloned into each request and each WebSocket session (a
/// parked connection keeps 8 bytes of it, not a copy of every handle), dropped when the
/// server stops.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl AppState {
    pub fn new(services: Services) -> Self {
        Self(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// What the handlers and sessions share. Built once by `startup`.
pub struct Services {
    /// Settings in force (read-only).
    pub config: Arc<Config>,
    /// The database.
    pub store: DynStore,
    /// Message acceptance, fan-out, presence and recovery.
    pub broker: DynBroker,
    /// This instance's live rooms and users; sessions listen here, the broker delivers here.
    pub hub: Arc<Hub>,
    /// Access-token keys.
    pub keys: Arc<JwtKeys>,
    /// Login attempt limits.
    pub throttle: Arc<LoginThrottle>,
    /// Origins allowed to open WebSockets.
    pub allowed_origins: Arc<Vec<String>>,
    /// Whether cookies get `Secure` (public URL is https).
    pub secure_cookies: bool,
    /// WebSocket connection slots; a session holds one permit for its lifetime.
    pub connections: Arc<Semaphore>,
    /// Set when a stop signal arrived: `/readyz` answers 503 while the server drains.
    pub draining: Arc<std::sync::atomic::AtomicBool>,
    /// Cancelled when the server starts shutting down; sessions then close with 1001.
    pub shutdown: CancellationToken,
    /// Every WebSocket session, so shutdown can wait for them.
    pub sessions: TaskTracker,
    /// Uploaded files and link previews (the origin's half of the edge contract).
    pub uploads: Arc<crate::files::Uploads>,
    /// WebSockets open per user and per address (beside the global `connections`).
    pub socket_limits: Arc<crate::limits::SocketLimits>,
    /// Posts over HTTP (API and webhooks) per poster.
    pub posts: Arc<crate::limits::PostRate>,
    /// Outgoing mail, when `CONFAB_SMTP_URL` is set: registration then goes by confirmation.
    pub mailer: Option<Arc<crate::mail::Mailer>>,
    /// Notifications for people with no tab open: queues jobs, records who looks at what.
    pub notifier: Arc<crate::notify::Notifier>,
    /// The open sockets' periodic session checks, a query per round.
    pub session_checks: crate::auth::checks::SessionChecks,
}
