//! The web client (`web/dist`), from Workers static assets (the `ASSETS` binding, uploaded by
//! `wrangler deploy` with the Worker, so a release's client and Worker go live together).
//!
//! Every request reaches this Worker first (`run_worker_first`), so the headers are ours:
//!
//! - Vite's hashed files (`/assets/{name}-{hash}.{ext}`) never change under their name: a year
//!   of `immutable` caching.
//! - Everything else (`index.html`, `color-mode.js`, the icon) is `no-cache`: the browser
//!   revalidates each time (the binding answers `If-None-Match` with 304), so a release shows
//!   at the next load.
//! - A path that is no file and has no extension is a client route: it gets `index.html`, as
//!   from the origin. A missing file gets 404 (never `index.html` under a script's name, which
//!   a year of caching would keep).
//! - The origin's page headers: the web client's CSP (scripts and connections only to this
//!   origin and its WebSocket), nosniff, no framing, no referrer, COOP, HSTS on https.

use crate::{Answer, Failure};
use worker::*;

/// `Cache-Control` of content-hashed files.
const HASHED: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of everything else: revalidate before each use.
const REVALIDATE: &str = "no-cache";

/// Whether `path` is one of Vite's content-hashed outputs: `/assets/{name}-{hash}.{ext}`, the
/// hash at least 8 characters of `[A-Za-z0-9_-]`.
pub fn is_hashed(path: &str) -> bool {
    let Some(file) = path.strip_prefix("/assets/") else {
        return false;
    };
    if file.contains('/') {
        return false;
    }
    let Some((stem, _ext)) = file.rsplit_once('.') else {
        return false;
    };
    let hash = stem.rsplit_once('-').map_or("", |(_, h)| h);
    hash.len() >= 8
        && hash
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether `path` names a client route rather than a file: its last segment has no dot.
fn is_route(path: &str) -> bool {
    !path.rsplit('/').next().unwrap_or_default().contains('.')
}

/// The web client's Content-Security-Policy for pages served at `origin` (`scheme://host`):
/// the origin's own (`origin/src/http/security.rs`, `client_csp`) for a server whose public URL
/// is this one, files and uploads included (they are here too, so `'self'` covers them).
pub fn client_csp(origin: &Url) -> String {
    let host = origin.host_str().unwrap_or_default();
    let socket = match (origin.scheme(), origin.port()) {
        ("https", Some(p)) => format!(" wss://{host}:{p}"),
        ("https", None) => format!(" wss://{host}"),
        (_, Some(p)) => format!(" ws://{host}:{p}"),
        (_, None) => format!(" ws://{host}"),
    };
    // CSP has no syntax for IPv6 literals: such an origin is left to 'self'.
    let socket = if host.starts_with('[') { "" } else { &socket };
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data: blob:; media-src 'self' data: blob:; font-src 'self' data:; \
         connect-src 'self'{socket}; object-src 'none'; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'; frame-src 'none'; worker-src 'self' blob:; manifest-src 'self'"
    )
}

/// Serves a file of the web client (GET or HEAD).
pub async fn serve(req: &Request, env: &Env) -> Answer {
    let assets = env.assets("ASSETS")?;
    let url = req.url()?;
    let path = url.path().to_owned();
    let mut response = assets.fetch_request(req.clone()?).await?;
    if response.status_code() == 404 && is_route(&path) {
        let mut index = url.clone();
        index.set_path("/");
        index.set_query(None);
        let headers = Headers::new();
        for name in ["if-none-match", "if-modified-since"] {
            if let Some(v) = req.headers().get(name)? {
                headers.set(name, &v)?;
            }
        }
        let mut init = RequestInit::new();
        init.with_method(req.method()).with_headers(headers);
        response = assets
            .fetch_request(Request::new_with_init(index.as_str(), &init)?)
            .await?;
    }
    let status = response.status_code();
    // The binding's headers are immutable: answer with a copy.
    let headers = response.headers().clone();
    let cache = match status {
        200 | 304 if is_hashed(&path) => HASHED,
        200 | 304 => REVALIDATE,
        _ => "no-store",
    };
    headers.set("cache-control", cache)?;
    headers.set("content-security-policy", &client_csp(&url))?;
    headers.set("x-content-type-options", "nosniff")?;
    headers.set("x-frame-options", "DENY")?;
    headers.set("referrer-policy", "no-referrer")?;
    headers.set("cross-origin-opener-policy", "same-origin")?;
    if url.scheme() == "https" {
        headers.set("strict-transport-security", "max-age=31536000")?;
    }
    let (_, body) = response.into_parts();
    Ok(Response::from_body(body)
        .map_err(Failure::from)?
        .with_status(status)
        .with_headers(headers))
}
