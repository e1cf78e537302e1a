//! The SSRF-safe link-preview fetcher behind `GET /api/preview?url=` and
//! `GET /api/preview/image?url=`.
//!
//! Every hop (the URL and each redirect, at most 3) goes through the shared address policy
//! (`confab_shared::preview`): http(s) only, no credentials, no local names, and every address
//! the host resolves to must pass [`is_forbidden_ip`]; the connection is then pinned to those
//! checked addresses (reqwest's resolver override), so a second DNS answer cannot swap in a
//! private address. Only `text/html` is read, at most 1 MB of it, and the whole fetch has 5 s.
//! Results are kept in a bounded in-memory cache and, when Redis is configured, in Redis too
//! (shared by every instance, with the same TTL); fetches at once are bounded in all (32) and
//! per user (`CONFAB_PREVIEWS_PER_USER`), so one user cannot take every slot.
//!
//! A preview's image is fetched by this server too, through the same policy, only when a
//! viewer asks for it (`image`), at most [`MAX_IMAGE_BYTES`], and only png, jpeg, gif or webp
//! by its bytes; it is cached (bounded by bytes), so viewers' browsers never contact the
//! page's site. The cached preview keeps the image's own address; what clients get names
//! only our `image` link (`confab_shared::preview::image_link`).

use crate::limits::KeyedLimit;
use bytes::Bytes;
use confab_shared::api::LinkPreview;
use confab_shared::ids::UserId;
use confab_shared::preview::{
    check_host, extract, is_forbidden_ip, is_html, parse_url, Allowlist, PolicyError, Target,
    FETCH_TIMEOUT_SECS, MAX_BODY_BYTES, MAX_IMAGE_BYTES, MAX_REDIRECTS,
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
/// Bytes of preview images cached at most (each at most `MAX_IMAGE_BYTES`; oldest dropped).
const IMAGE_CACHE_BYTES: usize = 16 * 1024 * 1024;

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
    /// This user has `CONFAB_PREVIEWS_PER_USER` fetches in progress.
    #[error("too many previews in progress for this user: retry")]
    UserBusy,
    /// The page has no image, or its image is not one we show.
    #[error("{0}")]
    NoImage(&'static str),
}

/// A preview image, checked: its type decided by its bytes.
#[derive(Debug, Clone)]
pub struct PreviewImage {
    pub content_type: &'static str,
    pub bytes: Bytes,
}

/// What a fetch is for: the page (HTML), or its image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wanted {
    Page,
    Image,
}

/// The fetcher with its cache. One per server, shared by handlers.
pub struct PreviewFetcher {
    allow: Allowlist,
    /// The cache shared by all instances, when Redis is configured. A cache only: its errors
    /// are logged and the preview is fetched as if it missed.
    shared: Option<redis::aio::ConnectionManager>,
    /// Short critical sections only (lookup or insert); never held across an await.
    cache: Mutex<Cache>,
    /// Preview images by their own address; same rules as `cache`.
    images: Mutex<ImageCache>,
    in_flight: Semaphore,
    per_user: KeyedLimit<UserId>,
}

#[derive(Default)]
struct Cache {
    entries: HashMap<String, (Instant, LinkPreview)>,
    order: VecDeque<String>,
}

#[derive(Default)]
struct ImageCache {
    entries: HashMap<String, (Instant, PreviewImage)>,
    order: VecDeque<String>,
    bytes: usize,
}

impl PreviewFetcher {
    /// A fetcher that lifts the policy only for `allow` (`CONFAB_PREVIEW_ALLOWLIST`), with at
    /// most `per_user` fetches at once per user (0: only the server's limit).
    pub fn new(allow: Allowlist, per_user: usize) -> Self {
        Self {
            allow,
            shared: None,
            cache: Mutex::new(Cache::default()),
            images: Mutex::new(ImageCache::default()),
            in_flight: Semaphore::new(MAX_IN_FLIGHT),
            per_user: KeyedLimit::new(per_user),
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

    /// A preview of the page at `raw` for `user`, from the cache or fetched now. Its `url` is
    /// the posted URL (normalised); its `image`, when set, is the image's own address: clients
    /// get an [`image_link`](confab_shared::preview::image_link) instead.
    pub async fn preview(&self, raw: &str, user: UserId) -> Result<LinkPreview, PreviewError> {
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
        let _slots = self.slots(user)?;
        let key = url.to_string();
        let (page, body) = self.fetch_within(url.clone(), Wanted::Page).await?;
        let posted = url.to_string();
        let preview = tokio::task::spawn_blocking(move || {
            extract(&String::from_utf8_lossy(&body), &posted, page.as_str())
        })
        .await
        .map_err(|e| PreviewError::Upstream(format!("extraction failed: {e}")))?;
        self.shared_put(&key, &preview).await;
        self.remember(key, preview.clone());
        Ok(preview)
    }

    /// The image of the page posted as `raw`, fetched for `user` (or from the cache).
    pub async fn image(&self, raw: &str, user: UserId) -> Result<PreviewImage, PreviewError> {
        let preview = self.preview(raw, user).await?;
        let source = preview
            .image
            .ok_or(PreviewError::NoImage("this page has no preview image"))?;
        if let Some(hit) = self.cached_image(&source) {
            return Ok(hit);
        }
        let url = parse_url(&source)?;
        let _slots = self.slots(user)?;
        let (_, bytes) = self.fetch_within(url, Wanted::Image).await?;
        let head = &bytes[..bytes.len().min(512)];
        let content_type = confab_shared::files::sniff(head);
        if !confab_shared::files::is_inline(content_type) {
            return Err(PreviewError::NoImage(
                "the preview image is not a png, jpeg, gif or webp",
            ));
        }
        let image = PreviewImage {
            content_type,
            bytes: Bytes::from(bytes),
        };
        self.remember_image(source, image.clone());
        Ok(image)
    }

    /// A fetch slot of `user`'s and one of the server's, or why not.
    fn slots(
        &self,
        user: UserId,
    ) -> Result<
        (
            crate::limits::Slot<UserId>,
            tokio::sync::SemaphorePermit<'_>,
        ),
        PreviewError,
    > {
        let mine = self
            .per_user
            .try_acquire(user)
            .ok_or(PreviewError::UserBusy)?;
        let ours = self
            .in_flight
            .try_acquire()
            .map_err(|_| PreviewError::Busy)?;
        Ok((mine, ours))
    }

    async fn fetch_within(
        &self,
        url: url::Url,
        wanted: Wanted,
    ) -> Result<(url::Url, Vec<u8>), PreviewError> {
        tokio::time::timeout(
            Duration::from_secs(FETCH_TIMEOUT_SECS),
            self.fetch(url, wanted),
        )
        .await
        .map_err(|_| PreviewError::Upstream("the page took too long".into()))?
    }

    fn cached_image(&self, key: &str) -> Option<PreviewImage> {
        let cache = self.images.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < CACHE_TTL)
            .map(|(_, i)| i.clone())
    }

    fn remember_image(&self, key: String, image: PreviewImage) {
        let mut cache = self.images.lock().unwrap_or_else(|e| e.into_inner());
        let size = image.bytes.len();
        match cache.entries.insert(key.clone(), (Instant::now(), image)) {
            Some((_, old)) => cache.bytes -= old.bytes.len(),
            None => cache.order.push_back(key),
        }
        cache.bytes += size;
        while cache.bytes > IMAGE_CACHE_BYTES {
            let Some(old) = cache.order.pop_front() else {
                break;
            };
            if let Some((_, dropped)) = cache.entries.remove(&old) {
                cache.bytes -= dropped.bytes.len();
            }
        }
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

    /// Fetches `url` through the policy (every hop checked, connections pinned to checked
    /// addresses); returns the final URL and at most the body limit of what is wanted.
    async fn fetch(
        &self,
        mut url: url::Url,
        wanted: Wanted,
    ) -> Result<(url::Url, Vec<u8>), PreviewError> {
        let upstream = |e: reqwest::Error| PreviewError::Upstream(format!("fetch failed: {e}"));
        let (accept, limit) = match wanted {
            Wanted::Page => ("text/html,application/xhtml+xml;q=0.9", MAX_BODY_BYTES),
            Wanted::Image => ("image/png,image/jpeg,image/gif,image/webp", MAX_IMAGE_BYTES),
        };
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
                .header(ACCEPT, accept)
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
            match wanted {
                Wanted::Page if !is_html(ct) => {
                    return Err(PreviewError::Upstream("not an HTML page".into()));
                }
                Wanted::Image => {
                    if resp.content_length().is_some_and(|n| n > limit as u64) {
                        return Err(PreviewError::NoImage("the preview image is too large"));
                    }
                }
                Wanted::Page => {}
            }
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(upstream)? {
                if wanted == Wanted::Image && body.len() + chunk.len() > limit {
                    // A cut image is a broken image: refuse it rather than show half.
                    return Err(PreviewError::NoImage("the preview image is too large"));
                }
                let room = limit - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if body.len() >= limit {
                    break;
                }
            }
            return Ok((url, body));
        }
        Err(PreviewError::Upstream("too many redirects".into()))
    }
}
