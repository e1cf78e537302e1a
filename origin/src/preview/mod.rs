//! The SSRF-safe link-preview fetcher behind `GET /api/preview?url=`.
//!
//! Every hop (the URL and each redirect, at most 3) goes through the shared address policy
//! (`confab_shared::preview`): http(s) only, no credentials, no local names, and every address
//! the host resolves to must pass [`is_forbidden_ip`]; the connection is then pinned to those
//! checked addresses (reqwest's resolver override), so a second DNS answer cannot swap in a
//! private address. Only `text/html` is read, at most 1 MB of it, and the whole fetch has 5 s.
//! Results are kept in a bounded in-memory cache and, when Redis is configured, in Redis too
//! (shared by every instance, with the same TTL); fetches at once are bounded too.

use confab_shared::api::LinkPreview;
use confab_shared::preview::{
    check_host, extract, is_forbidden_ip, is_html, parse_url, Allowlist, PolicyError, Target,
    FETCH_TIMEOUT_SECS, MAX_BODY_BYTES, MAX_REDIRECTS,
};
use reqwest::header::{ACCEPT, CONTENT_TYPE, LOCATION};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Previews cached at most (oldest dropped first).
const CACHE_ENTRIES: usize = 1024;
/// How long a cached preview is served.
const CACHE_TTL: Duration = Duration::from_secs(10 * 60);
/// Fetches in flight at most; more get `Busy` (503).
const MAX_IN_FLIGHT: usize = 32;

/// Why no preview was made.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    /// The URL or an address it leads to is refused by the policy.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The page could not be fetched, was not HTML, or redirected too often.
    #[error("{0}")]
    Upstream(String),
    /// Too many previews are being fetched right now.
    #[error("too many previews in progress: retry")]
    Busy,
}

/// The fetcher with its cache. One per server, shared by handlers.
pub struct PreviewFetcher {
    allow: Allowlist,
    /// The cache shared by all instances, when Redis is configured. A cache only: its errors
    /// are logged and the preview is fetched as if it missed.
    shared: Option<redis::aio::ConnectionManager>,
    /// Short critical sections only (lookup or insert); never held across an await.
    cache: Mutex<Cache>,
    in_flight: Semaphore,
}

#[derive(Default)]
struct Cache {
    entries: HashMap<String, (Instant, LinkPreview)>,
    order: VecDeque<String>,
}

impl PreviewFetcher {
    /// A fetcher that lifts the policy only for `allow` (`CONFAB_PREVIEW_ALLOWLIST`).
    pub fn new(allow: Allowlist) -> Self {
        Self {
            allow,
            shared: None,
            cache: Mutex::new(Cache::default()),
            in_flight: Semaphore::new(MAX_IN_FLIGHT),
        }
    }

    /// Also caches previews in Redis at `url`, shared with the other instances.
    pub async fn with_redis(mut self, url: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)?;
        self.shared = Some(
            redis::aio::ConnectionManager::new_with_config(
                client,
                crate::broker::redis::manager_config(),
            )
            .await?,
        );
        Ok(self)
    }

    fn shared_key(url: &str) -> String {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(url.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("confab:preview:{hex}")
    }

    async fn shared_get(&self, key: &str) -> Option<LinkPreview> {
        let mut conn = self.shared.clone()?;
        let found: redis::RedisResult<Option<String>> = redis::cmd("GET")
            .arg(Self::shared_key(key))
            .query_async(&mut conn)
            .await;
        match found {
            Ok(json) => json.and_then(|j| serde_json::from_str(&j).ok()),
            Err(e) => {
                tracing::warn!(error = %e, "preview cache read failed");
                None
            }
        }
    }

    async fn shared_put(&self, key: &str, preview: &LinkPreview) {
        let (Some(mut conn), Ok(json)) = (self.shared.clone(), serde_json::to_string(preview))
        else {
            return;
        };
        let stored: redis::RedisResult<()> = redis::cmd("SET")
            .arg(Self::shared_key(key))
            .arg(json)
            .arg("EX")
            .arg(CACHE_TTL.as_secs())
            .query_async(&mut conn)
            .await;
        if let Err(e) = stored {
            tracing::warn!(error = %e, "preview cache write failed");
        }
    }

    /// A preview of the page at `raw`, from the cache or fetched now.
    pub async fn preview(&self, raw: &str) -> Result<LinkPreview, PreviewError> {
        let url = parse_url(raw)?;
        // Refuse forbidden literal hosts before looking at the cache or the semaphore.
        check_host(&url, &self.allow)?;
        if let Some(hit) = self.cached(url.as_str()) {
            return Ok(hit);
        }
        if let Some(hit) = self.shared_get(url.as_str()).await {
            self.remember(url.to_string(), hit.clone());
            return Ok(hit);
        }
        let _permit = self
            .in_flight
            .try_acquire()
            .map_err(|_| PreviewError::Busy)?;
        let key = url.to_string();
        let preview =
            tokio::time::timeout(Duration::from_secs(FETCH_TIMEOUT_SECS), self.fetch(url))
                .await
                .map_err(|_| PreviewError::Upstream("the page took too long".into()))??;
        self.shared_put(&key, &preview).await;
        self.remember(key, preview.clone());
        Ok(preview)
    }

    fn cached(&self, key: &str) -> Option<LinkPreview> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < CACHE_TTL)
            .map(|(_, p)| p.clone())
    }

    fn remember(&self, key: String, preview: LinkPreview) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache
            .entries
            .insert(key.clone(), (Instant::now(), preview))
            .is_none()
        {
            cache.order.push_back(key);
        }
        while cache.order.len() > CACHE_ENTRIES {
            if let Some(old) = cache.order.pop_front() {
                cache.entries.remove(&old);
            }
        }
    }

    async fn fetch(&self, mut url: url::Url) -> Result<LinkPreview, PreviewError> {
        let upstream = |e: reqwest::Error| PreviewError::Upstream(format!("fetch failed: {e}"));
        for hop in 0..=MAX_REDIRECTS {
            let mut builder = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .user_agent("ConfabLinkPreview/0.1")
                .timeout(Duration::from_secs(FETCH_TIMEOUT_SECS));
            match check_host(&url, &self.allow)? {
                Target::Allowed | Target::Address(_) => {}
                Target::Name(name) => {
                    let port = url.port_or_known_default().unwrap_or(80);
                    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), port))
                        .await
                        .map_err(|_| PreviewError::Upstream("the host does not resolve".into()))?
                        .collect();
                    // Every address must pass, not just the first: a name with one public and
                    // one private address is refused.
                    if addrs.is_empty() || addrs.iter().any(|a| is_forbidden_ip(a.ip())) {
                        return Err(PolicyError::Forbidden.into());
                    }
                    builder = builder.resolve_to_addrs(&name, &addrs);
                }
            }
            let client = builder.build().map_err(upstream)?;
            let mut resp = client
                .get(url.clone())
                .header(ACCEPT, "text/html,application/xhtml+xml;q=0.9")
                .send()
                .await
                .map_err(upstream)?;
            let status = resp.status();
            if status.is_redirection() {
                if hop == MAX_REDIRECTS {
                    return Err(PreviewError::Upstream("too many redirects".into()));
                }
                let location = resp
                    .headers()
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| PreviewError::Upstream("a redirect without Location".into()))?;
                let next = url.join(location).map_err(|_| PolicyError::Invalid)?;
                url = parse_url(next.as_str())?;
                continue;
            }
            if !status.is_success() {
                return Err(PreviewError::Upstream(format!(
                    "the page answered {status}"
                )));
            }
            let ct = resp
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            if !is_html(ct) {
                return Err(PreviewError::Upstream("not an HTML page".into()));
            }
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(upstream)? {
                let room = MAX_BODY_BYTES - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if body.len() >= MAX_BODY_BYTES {
                    break;
                }
            }
            let page = url.to_string();
            return tokio::task::spawn_blocking(move || {
                extract(&String::from_utf8_lossy(&body), &page)
            })
            .await
            .map_err(|e| PreviewError::Upstream(format!("extraction failed: {e}")));
        }
        Err(PreviewError::Upstream("too many redirects".into()))
    }
}
