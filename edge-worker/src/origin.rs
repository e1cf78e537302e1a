//! The origin behind the edge (`ORIGIN_URL`, `scheme://host[:port]`):
//!
//! - [`pass`]: `/api/*` and `/ws` go to the origin as they came: method, headers, the body
//!   streamed, redirects handed back rather than followed. A WebSocket upgrade is a fetch with
//!   `Upgrade: websocket`; the origin's `101` and its socket go back to the client untouched, so
//!   the runtime joins the two sockets and the Worker is not in the message path.
//! - [`ask`]: a question of the edge's own (may this user read this file?), with the user's token.
//!
//! Either way the origin learns the client's address from
//! `confab_shared::edge::CLIENT_ADDRESS_HEADER`, Cloudflare's `CF-Connecting-IP` signed with
//! `CONFAB_EDGE_SECRET` (a wrangler secret; the origin's setting of the same name), because
//! every request reaches it from a Cloudflare address. A client's own header of that name is
//! dropped; without the secret nothing is passed (500: a misconfigured edge, not a silent
//! one that would lump every client into one login-throttling budget).

use crate::{now_secs, var, Answer, Failure};
use confab_shared::edge::{sign, CLIENT_ADDRESS_HEADER, MIN_SECRET_LEN};
use confab_shared::ErrorCode;
use std::net::IpAddr;
use worker::*;

/// Request headers that are not passed on: `Host` names the edge (the origin's comes from
/// `ORIGIN_URL`), Cloudflare's own `cf-*` are set by Cloudflare on the subrequest, and the
/// client-address header is ours to set.
fn passed(name: &str) -> bool {
    name != "host" && !name.starts_with("cf-") && name != CLIENT_ADDRESS_HEADER
}

fn origin_url(env: &Env) -> std::result::Result<Url, Failure> {
    let raw = var(env, "ORIGIN_URL").ok_or_else(|| Failure::internal("ORIGIN_URL is not set"))?;
    Url::parse(&raw)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .ok_or_else(|| Failure::internal("ORIGIN_URL is not an http(s) URL"))
}

fn secret(env: &Env) -> std::result::Result<String, Failure> {
    env.secret("CONFAB_EDGE_SECRET")
        .ok()
        // Surrounding white space is not part of it (as on the origin).
        .map(|s| s.to_string().trim().to_owned())
        .filter(|s| s.chars().count() >= MIN_SECRET_LEN)
        .ok_or_else(|| {
            Failure::internal(format!(
                "CONFAB_EDGE_SECRET is not set or shorter than {MIN_SECRET_LEN} characters"
            ))
        })
}

/// The headers for the origin: `headers` less those not [`passed`], plus the signed address.
fn for_origin(req: &Request, headers: Headers, env: &Env) -> std::result::Result<Headers, Failure> {
    let out = Headers::new();
    for (name, value) in headers.entries() {
        if passed(&name) {
            out.append(&name, &value)?;
        }
    }
    let secret = secret(env)?;
    let client = req
        .headers()
        .get("cf-connecting-ip")?
        .and_then(|v| v.trim().parse::<IpAddr>().ok());
    match client {
        Some(ip) => out.set(
            CLIENT_ADDRESS_HEADER,
            &sign(secret.as_bytes(), ip, now_secs()),
        )?,
        None => console_warn!("no CF-Connecting-IP: the origin sees the edge's address"),
    }
    Ok(out)
}

fn unreachable(e: worker::Error) -> Failure {
    console_error!("the origin is unreachable: {e}");
    Failure::new(ErrorCode::Unavailable, "the server is unreachable: retry")
}

/// The target on the origin for `path_and_query` (which starts with `/`).
fn target(env: &Env, path_and_query: &str) -> std::result::Result<Url, Failure> {
    origin_url(env)?
        .join(path_and_query)
        .map_err(|_| Failure::new(ErrorCode::BadRequest, "the path is not valid"))
}

/// Passes the request to the origin and its answer back, WebSocket upgrades included.
pub async fn pass(req: Request, env: &Env) -> Answer {
    let url = req.url()?;
    let mut path = url.path().to_owned();
    if let Some(q) = url.query() {
        path.push('?');
        path.push_str(q);
    }
    let target = target(env, &path)?;
    let method = req.method();
    let init = web_sys::RequestInit::new();
    init.set_method(method.as_ref());
    init.set_headers(for_origin(&req, req.headers().clone(), env)?.as_ref());
    init.set_redirect(web_sys::RequestRedirect::Manual);
    if !matches!(method, Method::Get | Method::Head) {
        if let Some(body) = req.inner().body() {
            init.set_body(&body);
        }
    }
    let outbound = web_sys::Request::new_with_str_and_init(target.as_str(), &init)
        .map_err(|e| Failure::internal(format!("building the origin request: {e:?}")))?;
    Fetch::Request(outbound.into())
        .send()
        .await
        .map_err(unreachable)
}

/// Asks the origin `GET {path}` as the user whose access token is `token`; its status.
pub async fn ask(
    req: &Request,
    env: &Env,
    path: &str,
    token: &str,
) -> std::result::Result<u16, Failure> {
    let headers = Headers::new();
    headers.set("authorization", &format!("Bearer {token}"))?;
    let mut init = RequestInit::new();
    init.with_headers(for_origin(req, headers, env)?)
        .with_redirect(RequestRedirect::Manual);
    let outbound = Request::new_with_init(target(env, path)?.as_str(), &init)?;
    let response = Fetch::Request(outbound).send().await.map_err(unreachable)?;
    Ok(response.status_code())
}
