//! Link previews at the edge, for holders of a valid access token:
//!
//! - `GET /preview?url=`: the shared address policy on the URL and on every redirect (at most
//!   3), HTML only, 1 MB, 5 s, the shared extraction. The card links to the posted URL; its
//!   image is our `GET /preview/image?url=` link.
//! - `GET /preview/image?url=`: the posted page's image, fetched here under the same policy,
//!   png/jpeg/gif/webp by its bytes, at most 1 MB, cached; viewers never contact the page's site.
//!
//! Cards and images are kept in the Cache API for 10 minutes.

use crate::{require_login, var, Answer, Failure};
use confab_shared::files::{is_inline, sniff, SANDBOX_CSP};
use confab_shared::preview::{
    check_host, extract, image_link, is_html, parse_url, Allowlist, PolicyError,
    FETCH_TIMEOUT_SECS, MAX_BODY_BYTES, MAX_IMAGE_BYTES, MAX_REDIRECTS,
};
use confab_shared::ErrorCode;
use futures_util::StreamExt;
use std::time::Duration;
use worker::*;

fn policy_failure(e: PolicyError) -> Failure {
    match e {
        PolicyError::Forbidden => Failure::new(ErrorCode::Forbidden, e.to_string()),
        _ => Failure::new(ErrorCode::BadRequest, e.to_string()),
    }
}

fn cache_key(kind: &str, url: &str) -> String {
    format!(
        "https://confab-preview.invalid/{kind}?u={}",
        url::form_urlencoded::byte_serialize(url.as_bytes()).collect::<String>()
    )
}

/// The card of the page posted as the request's `url`, from the Cache API or fetched now. The
/// cached card keeps the image's own address; responses carry only our image link.
async fn card(
    req: &Request,
    env: &Env,
) -> std::result::Result<(confab_shared::api::LinkPreview, Allowlist), Failure> {
    let raw = req
        .url()?
        .query_pairs()
        .find(|(k, _)| k == "url")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| Failure::new(ErrorCode::BadRequest, "query parameter `url` is missing"))?;
    let allow = Allowlist::parse(&var(env, "CONFAB_PREVIEW_ALLOWLIST").unwrap_or_default());
    let url = parse_url(&raw).map_err(policy_failure)?;
    check_host(&url, &allow).map_err(policy_failure)?;
    let cache = Cache::default();
    let key = cache_key("card", url.as_str());
    if let Some(mut hit) = cache.get(key.as_str(), false).await? {
        if let Ok(card) = hit.json().await {
            return Ok((card, allow));
        }
    }
    let timeout = Delay::from(Duration::from_secs(FETCH_TIMEOUT_SECS));
    let work = Box::pin(fetch_preview(url, &allow));
    let card = match futures_util::future::select(work, timeout).await {
        futures_util::future::Either::Left((r, _)) => r?,
        futures_util::future::Either::Right(_) => {
            return Err(Failure::new(
                ErrorCode::Validation,
                "the page took too long",
            ))
        }
    };
    let headers = Headers::new();
    headers.set("cache-control", "public, max-age=600")?;
    let stored = Response::from_json(&card)?.with_headers(headers);
    if let Err(e) = cache.put(key.as_str(), stored).await {
        console_warn!("caching a preview failed: {e}");
    }
    Ok((card, allow))
}

pub async fn preview(req: &Request, env: &Env) -> Answer {
    require_login(req, env)?;
    let (mut card, _) = card(req, env).await?;
    if card.image.is_some() {
        let origin = req.url()?.origin().ascii_serialization();
        card.image = Some(image_link(&format!("{origin}/preview"), &card.url));
    }
    let headers = Headers::new();
    headers.set("cache-control", "private, max-age=600")?;
    Ok(Response::from_json(&card)?.with_headers(headers))
}

pub async fn preview_image(req: &Request, env: &Env) -> Answer {
    require_login(req, env)?;
    let (card, allow) = card(req, env).await?;
    let source = card
        .image
        .ok_or_else(|| Failure::new(ErrorCode::NotFound, "this page has no preview image"))?;
    let cache = Cache::default();
    let key = cache_key("image", &source);
    if let Some(hit) = cache.get(key.as_str(), false).await? {
        return Ok(hit);
    }
    let url = parse_url(&source).map_err(policy_failure)?;
    let timeout = Delay::from(Duration::from_secs(FETCH_TIMEOUT_SECS));
    let work = Box::pin(fetch_checked(url, &allow, Wanted::Image));
    let (_, bytes) = match futures_util::future::select(work, timeout).await {
        futures_util::future::Either::Left((r, _)) => r?,
        futures_util::future::Either::Right(_) => {
            return Err(Failure::new(
                ErrorCode::Validation,
                "the image took too long",
            ))
        }
    };
    let detected = sniff(&bytes[..bytes.len().min(512)]);
    if !is_inline(detected) {
        return Err(Failure::new(
            ErrorCode::NotFound,
            "the preview image is not a png, jpeg, gif or webp",
        ));
    }
    let headers = Headers::new();
    headers.set("content-type", detected)?;
    headers.set("cache-control", "private, max-age=600")?;
    headers.set("x-content-type-options", "nosniff")?;
    headers.set("content-security-policy", SANDBOX_CSP)?;
    headers.set("content-disposition", "inline")?;
    let mut response = Response::from_bytes(bytes)?.with_headers(headers);
    let mut stored = response.cloned()?;
    stored
        .headers_mut()
        .set("cache-control", "public, max-age=600")?;
    if let Err(e) = cache.put(key.as_str(), stored).await {
        console_warn!("caching a preview image failed: {e}");
    }
    Ok(response)
}

/// What a fetch is for: the page (HTML), or its image.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wanted {
    Page,
    Image,
}

async fn fetch_preview(
    url: url::Url,
    allow: &Allowlist,
) -> std::result::Result<confab_shared::api::LinkPreview, Failure> {
    let posted = url.to_string();
    let (page, body) = fetch_checked(url, allow, Wanted::Page).await?;
    Ok(extract(
        &String::from_utf8_lossy(&body),
        &posted,
        page.as_str(),
    ))
}

/// Fetches `url` under the address policy (every redirect checked again); returns the final
/// URL and at most the body limit of what is wanted.
async fn fetch_checked(
    mut url: url::Url,
    allow: &Allowlist,
    wanted: Wanted,
) -> std::result::Result<(url::Url, Vec<u8>), Failure> {
    let upstream = |m: String| Failure::new(ErrorCode::Validation, m);
    let (accept, limit) = match wanted {
        Wanted::Page => ("text/html,application/xhtml+xml;q=0.9", MAX_BODY_BYTES),
        Wanted::Image => ("image/png,image/jpeg,image/gif,image/webp", MAX_IMAGE_BYTES),
    };
    for hop in 0..=MAX_REDIRECTS {
        // Workers cannot resolve names nor pin addresses; Cloudflare's fetch does not reach
        // private networks. We refuse every literal address and local name the policy forbids.
        check_host(&url, allow).map_err(policy_failure)?;
        let mut init = RequestInit::new();
        init.with_redirect(RequestRedirect::Manual);
        let headers = Headers::new();
        headers.set("accept", accept)?;
        headers.set("user-agent", "ConfabLinkPreview/0.1")?;
        init.with_headers(headers);
        let request = Request::new_with_init(url.as_str(), &init)?;
        let mut resp = Fetch::Request(request)
            .send()
            .await
            .map_err(|e| upstream(format!("fetch failed: {e}")))?;
        let status = resp.status_code();
        if (300..400).contains(&status) {
            if hop == MAX_REDIRECTS {
                return Err(upstream("too many redirects".into()));
            }
            let location = resp
                .headers()
                .get("location")?
                .ok_or_else(|| upstream("a redirect without Location".into()))?;
            let next = url
                .join(&location)
                .map_err(|_| policy_failure(PolicyError::Invalid))?;
            url = parse_url(next.as_str()).map_err(policy_failure)?;
            continue;
        }
        if !(200..300).contains(&status) {
            return Err(upstream(format!("the page answered {status}")));
        }
        let ct = resp.headers().get("content-type")?.unwrap_or_default();
        if wanted == Wanted::Page && !is_html(&ct) {
            return Err(upstream("not an HTML page".into()));
        }
        let too_large = || Failure::new(ErrorCode::NotFound, "the preview image is too large");
        let mut body = Vec::new();
        let mut stream = resp.stream()?;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            if wanted == Wanted::Image && body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            let room = limit - body.len();
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if body.len() >= limit {
                break;
            }
        }
        return Ok((url, body));
    }
    Err(upstream("too many redirects".into()))
}
