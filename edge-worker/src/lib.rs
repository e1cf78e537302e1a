//! Confab's edge worker (Cloudflare Workers, Rust): the origin's upload, file and preview
//! contract without `/api`, on R2.
//!
//! - `PUT /uploads` with `Authorization: Bearer {ticket}`: the origin signed the ticket (EdDSA);
//!   we verify it with the public key alone (`CONFAB_JWT_PUBLIC_KEY`), check the bytes with the
//!   shared rules (`confab_shared::files`), write them to R2 under the ticket's key → 201
//!   `Attachment`.
//! - `GET /files/{key}`: the same headers as the origin (nosniff, sandbox CSP, attachment but for
//!   inline images, ETag, Range, immutable caching). The key (128 random bits) is the capability:
//!   the edge has no database to check room membership.
//! - `GET /preview?url=`: for holders of a valid access token; the shared address policy on the
//!   URL and on every redirect (at most 3), HTML only, 1 MB, 5 s, the shared extraction. The
//!   card links to the posted URL; its image is our `GET /preview/image?url=` link.
//! - `GET /preview/image?url=`: the posted page's image, fetched here under the same policy,
//!   png/jpeg/gif/webp by its bytes, at most 1 MB, cached; viewers never contact the page's site.

mod jwt;

use confab_shared::api::{ErrorBody, ErrorDetail};
use confab_shared::files::{
    check_claim, content_disposition, etag_matches, is_inline, is_valid_key, parse_range, sniff,
    ByteRange, UploadTicketClaims, DEFAULT_MAX_UPLOAD_BYTES, IMMUTABLE_CACHE, SANDBOX_CSP,
};
use confab_shared::preview::{
    check_host, extract, image_link, is_html, parse_url, Allowlist, PolicyError,
    FETCH_TIMEOUT_SECS, MAX_BODY_BYTES, MAX_IMAGE_BYTES, MAX_REDIRECTS,
};
use confab_shared::protocol::{Attachment, AttachmentRef};
use confab_shared::ErrorCode;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::time::Duration;
use worker::*;

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let url = req.url()?;
    let path = url.path().to_owned();
    let result = match (req.method(), path.as_str()) {
        (Method::Put, "/uploads") => upload(req, &env).await,
        (Method::Get | Method::Head, p) if p.starts_with("/files/") => {
            serve(&req, &env, &p["/files/".len()..]).await
        }
        (Method::Get, "/preview") => preview(&req, &env).await,
        (Method::Get, "/preview/image") => preview_image(&req, &env).await,
        (Method::Get, "/healthz") => Response::ok("ok").map_err(Failure::from),
        _ => Err(Failure::new(ErrorCode::NotFound, "no such endpoint")),
    };
    match result {
        Ok(r) => Ok(r),
        Err(f) => f.into_response(),
    }
}

/// A failure answered in the origin's error shape.
struct Failure {
    code: ErrorCode,
    message: String,
}

impl Failure {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    fn into_response(self) -> Result<Response> {
        if self.code == ErrorCode::Internal {
            console_error!("internal error: {}", self.message);
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: if self.code == ErrorCode::Internal {
                    "internal error".to_owned()
                } else {
                    self.message
                },
            },
        };
        Ok(Response::from_json(&body)?.with_status(self.code.http_status()))
    }
}

impl From<worker::Error> for Failure {
    fn from(e: worker::Error) -> Self {
        Self::new(ErrorCode::Internal, e.to_string())
    }
}

type Answer = std::result::Result<Response, Failure>;

fn var(env: &Env, name: &str) -> Option<String> {
    env.var(name)
        .ok()
        .map(|v| v.to_string())
        .filter(|s| !s.is_empty())
}

fn max_bytes(env: &Env) -> u64 {
    var(env, "CONFAB_MAX_UPLOAD_BYTES")
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_MAX_UPLOAD_BYTES)
}

fn public_key(env: &Env) -> std::result::Result<jwt::PublicKey, Failure> {
    let raw = var(env, "CONFAB_JWT_PUBLIC_KEY")
        .ok_or_else(|| Failure::new(ErrorCode::Internal, "CONFAB_JWT_PUBLIC_KEY is not set"))?;
    jwt::PublicKey::from_base64(&raw)
        .ok_or_else(|| Failure::new(ErrorCode::Internal, "CONFAB_JWT_PUBLIC_KEY is not a key"))
}

fn now_secs() -> i64 {
    (Date::now().as_millis() / 1000) as i64
}

fn bearer(req: &Request) -> Option<String> {
    req.headers()
        .get("authorization")
        .ok()
        .flatten()
        .and_then(|v| v.strip_prefix("Bearer ").map(str::to_owned))
}

fn too_large(max: u64) -> Failure {
    Failure::new(
        ErrorCode::PayloadTooLarge,
        format!("the file is over the {max}-byte limit"),
    )
}

async fn upload(mut req: Request, env: &Env) -> Answer {
    let token = bearer(&req).ok_or_else(|| Failure::new(ErrorCode::Unauthorized, "no ticket"))?;
    let claims: UploadTicketClaims = public_key(env)?
        .verify_ticket(&token, now_secs())
        .ok_or_else(|| Failure::new(ErrorCode::Unauthorized, "invalid or expired ticket"))?;
    if !is_valid_key(&claims.key) {
        return Err(Failure::new(ErrorCode::Unauthorized, "invalid ticket"));
    }
    let max = claims.max.min(max_bytes(env));
    let declared_len = req
        .headers()
        .get("content-length")?
        .and_then(|v| v.parse::<u64>().ok());
    if declared_len.is_some_and(|n| n > max) {
        return Err(too_large(max));
    }
    let bucket = env.bucket("UPLOADS")?;
    if bucket.head(claims.key.clone()).await?.is_some() {
        return Err(Failure::new(
            ErrorCode::Conflict,
            "this ticket has already been used",
        ));
    }
    let mut bytes = Vec::new();
    let mut stream = req.stream()?;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if (bytes.len() + chunk.len()) as u64 > max {
            return Err(too_large(max));
        }
        bytes.extend_from_slice(&chunk);
    }
    if bytes.is_empty() {
        return Err(Failure::new(ErrorCode::Validation, "the file is empty"));
    }
    let detected = sniff(&bytes[..bytes.len().min(512)]);
    let declared = req.headers().get("content-type")?;
    check_claim(&claims.name, declared.as_deref(), detected)
        .map_err(|e| Failure::new(ErrorCode::Validation, e.to_string()))?;
    let size = bytes.len() as u64;
    let mut custom = HashMap::new();
    custom.insert("size".to_owned(), size.to_string());
    custom.insert(
        "name".to_owned(),
        url::form_urlencoded::byte_serialize(claims.name.as_bytes()).collect::<String>(),
    );
    // Only if nothing is stored under the key yet: of two uploads racing with one ticket, the
    // second finds the first's object and stores nothing (a file is never replaced).
    let stored = bucket
        .put(claims.key.clone(), bytes)
        .http_metadata(HttpMetadata {
            content_type: Some(detected.to_owned()),
            ..Default::default()
        })
        .custom_metadata(custom)
        .only_if(Conditional {
            etag_does_not_match: Some("*".to_owned()),
            ..Default::default()
        })
        .execute()
        .await?;
    if stored.is_none() {
        return Err(Failure::new(
            ErrorCode::Conflict,
            "this ticket has already been used",
        ));
    }
    let origin = req.url()?.origin().ascii_serialization();
    let attachment = Attachment {
        id: AttachmentRef(claims.key.clone()),
        name: claims.name,
        content_type: detected.to_owned(),
        size: size as i64,
        url: format!("{origin}/files/{}", claims.key),
        inline: is_inline(detected),
    };
    Ok(Response::from_json(&attachment)?.with_status(201))
}

async fn serve(req: &Request, env: &Env, key: &str) -> Answer {
    if !is_valid_key(key) {
        return Err(Failure::new(ErrorCode::NotFound, "no such file"));
    }
    let bucket = env.bucket("UPLOADS")?;
    let Some(head) = bucket.head(key.to_owned()).await? else {
        return Err(Failure::new(ErrorCode::NotFound, "no such file"));
    };
    let size = head.size();
    let content_type = head
        .http_metadata()
        .content_type
        .unwrap_or_else(|| "application/octet-stream".to_owned());
    let custom = head.custom_metadata().unwrap_or_default();
    let name = custom
        .get("name")
        .and_then(|n| {
            url::form_urlencoded::parse(format!("n={n}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
        })
        .unwrap_or_else(|| "file".to_owned());
    let etag = format!("\"{key}\"");
    let headers = Headers::new();
    headers.set("etag", &etag)?;
    headers.set("cache-control", IMMUTABLE_CACHE)?;
    headers.set("x-content-type-options", "nosniff")?;
    headers.set("content-security-policy", SANDBOX_CSP)?;
    headers.set("accept-ranges", "bytes")?;
    headers.set("content-type", &content_type)?;
    headers.set(
        "content-disposition",
        &content_disposition(&content_type, &name),
    )?;
    let h = req.headers();
    if etag_matches(h.get("if-none-match")?.as_deref(), &etag) {
        return Ok(Response::empty()?.with_status(304).with_headers(headers));
    }
    let range_header = match h.get("if-range")? {
        Some(tag) if tag != etag => None,
        _ => h.get("range")?,
    };
    let (status, range) = match parse_range(range_header.as_deref(), size) {
        ByteRange::Full => (200, None),
        ByteRange::Part { start, end } => {
            headers.set("content-range", &format!("bytes {start}-{end}/{size}"))?;
            (206, Some((start, end)))
        }
        ByteRange::Unsatisfiable => {
            headers.set("content-range", &format!("bytes */{size}"))?;
            return Ok(Response::empty()?.with_status(416).with_headers(headers));
        }
    };
    if req.method() == Method::Head {
        headers.set("content-length", &size.to_string())?;
        return Ok(Response::empty()?.with_status(status).with_headers(headers));
    }
    let mut get = bucket.get(key.to_owned());
    if let Some((start, end)) = range {
        get = get.range(Range::OffsetWithLength {
            offset: start,
            length: end - start + 1,
        });
    }
    let Some(object) = get.execute().await? else {
        return Err(Failure::new(ErrorCode::NotFound, "no such file"));
    };
    let bytes = match object.body() {
        Some(b) => b.bytes().await?,
        None => Vec::new(),
    };
    Ok(Response::from_bytes(bytes)?
        .with_status(status)
        .with_headers(headers))
}

fn access_token(req: &Request) -> Option<String> {
    if let Some(t) = bearer(req) {
        return Some(t);
    }
    let cookies = req.headers().get("cookie").ok().flatten()?;
    cookies.split(';').find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == confab_shared::claims::ACCESS_COOKIE).then(|| v.to_owned())
    })
}

fn policy_failure(e: PolicyError) -> Failure {
    match e {
        PolicyError::Forbidden => Failure::new(ErrorCode::Forbidden, e.to_string()),
        _ => Failure::new(ErrorCode::BadRequest, e.to_string()),
    }
}

/// The caller's access token, checked.
fn require_login(req: &Request, env: &Env) -> std::result::Result<(), Failure> {
    let token =
        access_token(req).ok_or_else(|| Failure::new(ErrorCode::Unauthorized, "not logged in"))?;
    public_key(env)?
        .verify_access(&token, now_secs())
        .ok_or_else(|| Failure::new(ErrorCode::Unauthorized, "not logged in"))?;
    Ok(())
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

async fn preview(req: &Request, env: &Env) -> Answer {
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

async fn preview_image(req: &Request, env: &Env) -> Answer {
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
