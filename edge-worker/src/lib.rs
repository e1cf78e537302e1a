//! Confab's edge worker (Cloudflare Workers, Rust): the one public entry of a deployment.
//!
//! - [`assets`]: the web client (`web/dist`, Workers static assets), hashed files cached for a
//!   year, `index.html` revalidated.
//! - [`origin`]: `/api/*` and `/ws` (WebSocket upgrades included) passed to the origin
//!   (`ORIGIN_URL`) with the client's address signed for it (`CONFAB_EDGE_SECRET`).
//! - [`files`]: `PUT /uploads` (the origin's upload tickets) into R2, and `GET /files/{key}` from
//!   R2 for logged-in members of the file's room (the origin says who is a member; a yes is
//!   remembered here for at most 30 s).
//! - [`preview`]: `GET /preview?url=` and `GET /preview/image?url=`, link previews under the
//!   shared address policy, in the Cache API.
//! - `jwt`: access tokens and tickets, checked with the origin's public key alone.
//!
//! The upload, file and preview paths are the origin's own contract without `/api`
//! (contract/contract.test.mjs runs against both).

mod assets;
mod files;
mod jwt;
mod origin;
mod preview;

use confab_shared::api::{ErrorBody, ErrorDetail};
use confab_shared::claims::AccessClaims;
use confab_shared::ErrorCode;
use worker::*;

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let url = req.url()?;
    let path = url.path().to_owned();
    let result = match (req.method(), path.as_str()) {
        (_, p) if p == "/ws" || p.starts_with("/api/") => origin::pass(req, &env).await,
        (Method::Put, "/uploads") => files::upload(req, &env).await,
        (Method::Get | Method::Head, p) if p.starts_with("/files/") => {
            files::serve(&req, &env, &p["/files/".len()..]).await
        }
        (Method::Get, "/preview") => preview::preview(&req, &env).await,
        (Method::Get, "/preview/image") => preview::preview_image(&req, &env).await,
        (Method::Get, "/healthz") => Response::ok("ok").map_err(Failure::from),
        (Method::Get | Method::Head, _) => assets::serve(&req, &env).await,
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

    fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
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

/// The caller's access token (cookie or bearer) and its claims, verified with the public key.
fn require_login(req: &Request, env: &Env) -> std::result::Result<(String, AccessClaims), Failure> {
    let token =
        access_token(req).ok_or_else(|| Failure::new(ErrorCode::Unauthorized, "not logged in"))?;
    let claims = public_key(env)?
        .verify_access(&token, now_secs())
        .ok_or_else(|| Failure::new(ErrorCode::Unauthorized, "not logged in"))?;
    Ok((token, claims))
}
