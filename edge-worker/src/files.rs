//! Files at the edge, in R2:
//!
//! - `PUT /uploads` with `Authorization: Bearer {ticket}`: the origin signed the ticket (EdDSA);
//!   we verify it with the public key alone (`CONFAB_JWT_PUBLIC_KEY`), check the bytes with the
//!   shared rules (`confab_shared::files`), write them to R2 under the ticket's key → 201
//!   `Attachment`.
//! - `GET /files/{key}`: for logged-in members of the file's room only. The access token is
//!   verified here (401 without a valid one); membership is the origin's answer to
//!   `GET /api/files/{key}/access`, asked with the user's own token (403 for a non-member),
//!   and a yes is remembered for at most 30 s (`CONFAB_FILE_ACCESS_TTL_SECS`), so a member who
//!   leaves or is removed loses access within that. Then the same headers as the origin
//!   (nosniff, sandbox CSP, attachment but for inline images, ETag, Range, a year of private
//!   caching).

use crate::{bearer, now_secs, origin, public_key, require_login, var, Answer, Failure};
use confab_shared::claims::AccessClaims;
use confab_shared::files::{
    check_claim, content_disposition, etag_matches, is_inline, is_valid_key, parse_range, sniff,
    ByteRange, UploadTicketClaims, DEFAULT_MAX_UPLOAD_BYTES, IMMUTABLE_CACHE, SANDBOX_CSP,
};
use confab_shared::protocol::{Attachment, AttachmentRef};
use confab_shared::ErrorCode;
use futures_util::StreamExt;
use std::cell::RefCell;
use std::collections::HashMap;
use worker::*;

/// The longest a member's access to a file is remembered, in seconds: removal from a room takes
/// effect at the edge within this.
const MAX_GRANT_SECS: u64 = 30;
/// Grants remembered at most, per isolate.
const MAX_GRANTS: usize = 10_000;

thread_local! {
    /// (user, file key) → until when (ms) the origin's yes holds. Per isolate (isolates share
    /// nothing), so each asks the origin at most once per user and file per grant time. Only
    /// yeses are kept: a user who just joined is let in at once. Borrowed only between awaits,
    /// never across one (an isolate interleaves its requests at awaits).
    static GRANTS: RefCell<HashMap<(String, String), f64>> = RefCell::new(HashMap::new());
}

fn max_bytes(env: &Env) -> u64 {
    var(env, "CONFAB_MAX_UPLOAD_BYTES")
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_MAX_UPLOAD_BYTES)
}

fn grant_ms(env: &Env) -> f64 {
    let secs = var(env, "CONFAB_FILE_ACCESS_TTL_SECS")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(MAX_GRANT_SECS)
        .min(MAX_GRANT_SECS);
    (secs * 1000) as f64
}

/// Whether the user of `claims` (whose token is `token`) may read `key` now: a grant still
/// held here, or the origin's answer.
async fn authorize(
    req: &Request,
    env: &Env,
    token: &str,
    claims: &AccessClaims,
    key: &str,
) -> std::result::Result<(), Failure> {
    let now = Date::now().as_millis() as f64;
    let id = (claims.sub.to_string(), key.to_owned());
    if GRANTS.with(|g| g.borrow().get(&id).is_some_and(|until| *until > now)) {
        return Ok(());
    }
    let status = origin::ask(req, env, &format!("/api/files/{key}/access"), token).await?;
    match status {
        204 => {
            let ttl = grant_ms(env);
            if ttl > 0.0 {
                GRANTS.with(|g| {
                    let mut g = g.borrow_mut();
                    if g.len() >= MAX_GRANTS {
                        g.retain(|_, until| *until > now);
                        if g.len() >= MAX_GRANTS {
                            g.clear();
                        }
                    }
                    g.insert(id, now + ttl);
                });
            }
            Ok(())
        }
        401 => Err(Failure::new(ErrorCode::Unauthorized, "not logged in")),
        403 => Err(Failure::new(
            ErrorCode::Forbidden,
            "only members of the file's room may read it",
        )),
        404 => Err(Failure::new(ErrorCode::NotFound, "no such file")),
        other => Err(Failure::new(
            ErrorCode::Unavailable,
            format!("the origin answered {other} about this file: retry"),
        )),
    }
}

fn too_large(max: u64) -> Failure {
    Failure::new(
        ErrorCode::PayloadTooLarge,
        format!("the file is over the {max}-byte limit"),
    )
}

pub async fn upload(mut req: Request, env: &Env) -> Answer {
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

pub async fn serve(req: &Request, env: &Env, key: &str) -> Answer {
    if !is_valid_key(key) {
        return Err(Failure::new(ErrorCode::NotFound, "no such file"));
    }
    let (token, claims) = require_login(req, env)?;
    authorize(req, env, &token, &claims, key).await?;
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
