//! Browser-facing protections applied to every request and response:
//!
//! - [`security_headers`]: every response gets `X-Content-Type-Options: nosniff`,
//!   `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer`, `Cross-Origin-Opener-Policy`,
//!   HSTS when the public URL is https, and a `Content-Security-Policy`: the web client's
//!   ([`client_csp`]) on pages and assets, a deny-all one on the API. A handler that sets its
//!   own (served files carry a sandboxing CSP) keeps it.
//! - [`refuse_cross_site`]: a state-changing API request (anything but GET, HEAD, OPTIONS) that
//!   a browser sent from another site is refused with 403 before it reaches a handler. The
//!   `Origin` header, when present, must be one of the allowed origins (the same list the
//!   WebSocket upgrade checks); without it, `Sec-Fetch-Site` must say `same-origin` or `none`.
//!   Requests with neither header come from programs, not browsers, and carry no ambient
//!   credentials a third site could borrow. SameSite=Lax cookies alone let a top-level form
//!   POST through from another site's page; this does not.

use crate::error::ApiError;
use axum::extract::{Request, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// The CSP of API responses: JSON is never a document, so it may load or run nothing.
const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// The headers set on responses, computed once at start-up.
#[derive(Debug, Clone)]
pub struct SecurityHeaders {
    client_csp: HeaderValue,
    api_csp: HeaderValue,
    hsts: Option<HeaderValue>,
}

impl SecurityHeaders {
    /// Headers for a server reached at a public URL (`https` or not), whose pages may also be
    /// opened from `allowed_origins`, with files on `edge_url` when an edge is deployed.
    pub fn new(https: bool, allowed_origins: &[String], edge_url: Option<&str>) -> Self {
        let csp = client_csp(allowed_origins, edge_url);
        Self {
            client_csp: HeaderValue::from_str(&csp)
                .unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'")),
            api_csp: HeaderValue::from_static(API_CSP),
            hsts: https.then(|| HeaderValue::from_static("max-age=31536000")),
        }
    }
}

/// The web client's policy. Scripts only from this origin (the Vite build has no inline
/// script); styles also inline, because Chakra UI (Emotion) injects its styles at run time;
/// images from this origin (uploads, proxied link-preview images), `data:` and `blob:` (local
/// previews of files being sent); connections to this origin and its WebSocket; no plugins, no
/// framing, no `<base>`, forms only to this origin. With an edge, its origin serves files and
/// takes uploads, so it is allowed for images, media and connections.
pub fn client_csp(allowed_origins: &[String], edge_url: Option<&str>) -> String {
    let mut connect = vec!["'self'".to_owned()];
    // CSP has no syntax for IPv6 literals (`[::1]`): such origins are left to 'self'.
    for origin in allowed_origins.iter().filter(|o| !o.contains('[')) {
        if let Some(rest) = origin.strip_prefix("https://") {
            connect.push(format!("wss://{rest}"));
        } else if let Some(rest) = origin.strip_prefix("http://") {
            connect.push(format!("ws://{rest}"));
        }
    }
    let edge = edge_url
        .and_then(|e| url::Url::parse(e).ok())
        .map(|u| u.origin().ascii_serialization());
    let mut media = "'self' data: blob:".to_owned();
    if let Some(edge) = &edge {
        connect.push(edge.clone());
        media.push(' ');
        media.push_str(edge);
    }
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
         img-src {media}; media-src {media}; font-src 'self' data:; connect-src {}; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; \
         frame-src 'none'; worker-src 'self' blob:; manifest-src 'self'",
        connect.join(" ")
    )
}

fn set_default(headers: &mut HeaderMap, name: HeaderName, value: HeaderValue) {
    headers.entry(name).or_insert(value);
}

/// Middleware: the security headers on every response.
pub async fn security_headers(
    State(policy): State<Arc<SecurityHeaders>>,
    req: Request,
    next: Next,
) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    let csp = if api {
        policy.api_csp.clone()
    } else {
        policy.client_csp.clone()
    };
    set_default(headers, header::CONTENT_SECURITY_POLICY, csp);
    set_default(
        headers,
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    set_default(
        headers,
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("DENY"),
    );
    set_default(
        headers,
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    set_default(
        headers,
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    if let Some(hsts) = &policy.hsts {
        set_default(headers, header::STRICT_TRANSPORT_SECURITY, hsts.clone());
    }
    response
}

/// Whether a request is one a browser sent from another site.
pub fn is_cross_site(headers: &HeaderMap, allowed_origins: &[String]) -> bool {
    if let Some(origin) = headers.get(header::ORIGIN) {
        return !origin
            .to_str()
            .is_ok_and(|o| allowed_origins.iter().any(|a| a.eq_ignore_ascii_case(o)));
    }
    match headers.get("sec-fetch-site").map(HeaderValue::as_bytes) {
        Some(b"same-origin" | b"none") | None => false,
        Some(_) => true,
    }
}

/// Middleware: refuses state-changing requests sent cross-site.
pub async fn refuse_cross_site(
    State(allowed_origins): State<Arc<Vec<String>>>,
    req: Request,
    next: Next,
) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe && is_cross_site(req.headers(), &allowed_origins) {
        return ApiError::Forbidden("cross-site request refused").into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn cross_site_requests_are_recognised() {
        let allowed = vec!["http://127.0.0.1:8080".to_owned()];
        assert!(!is_cross_site(&headers(&[]), &allowed), "programs");
        assert!(!is_cross_site(
            &headers(&[("origin", "http://127.0.0.1:8080")]),
            &allowed
        ));
        assert!(is_cross_site(
            &headers(&[("origin", "http://evil.example")]),
            &allowed
        ));
        assert!(is_cross_site(&headers(&[("origin", "null")]), &allowed));
        assert!(is_cross_site(
            &headers(&[("sec-fetch-site", "cross-site")]),
            &allowed
        ));
        assert!(is_cross_site(
            &headers(&[("sec-fetch-site", "same-site")]),
            &allowed
        ));
        assert!(!is_cross_site(
            &headers(&[("sec-fetch-site", "same-origin")]),
            &allowed
        ));
    }

    #[test]
    fn the_client_policy_allows_its_own_socket_and_the_edge() {
        let csp = client_csp(
            &["https://chat.example".to_owned()],
            Some("https://files.example/x"),
        );
        assert!(csp.contains("script-src 'self';"), "{csp}");
        assert!(csp.contains("wss://chat.example"), "{csp}");
        assert!(csp.contains("img-src 'self' data: blob: https://files.example;"));
        assert!(csp.contains("frame-ancestors 'none'"));
        let csp = client_csp(&["http://[::1]:8080".to_owned()], None);
        assert!(!csp.contains("[::1]"), "{csp}");
    }
}
