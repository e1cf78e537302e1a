//! Push endpoints are untrusted input: a browser hands us a URL and we will POST to it, so
//! only `https` URLs of the known push services are taken, and every address they resolve to
//! must pass the same SSRF policy as link previews (`confab_shared::preview`). The connection
//! is then pinned to those checked addresses. `CONFAB_PUSH_ALLOWLIST` lifts both rules for
//! exact `host:port` pairs (tests only, like `CONFAB_PREVIEW_ALLOWLIST`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use confab_shared::preview::{check_host, is_forbidden_ip, Allowlist, Target};
use std::net::SocketAddr;

/// The push services whose endpoints are accepted: exact hosts, or (leading dot) any host
/// under that domain. FCM (Chrome, Edge, Android), Mozilla autopush (Firefox), Apple (Safari),
/// Windows (WNS, Edge's legacy).
pub const PUSH_SERVICES: &[&str] = &[
    "fcm.googleapis.com",
    "android.googleapis.com",
    "updates.push.services.mozilla.com",
    "push.services.mozilla.com",
    ".push.apple.com",
    ".notify.windows.com",
];

/// The longest endpoint accepted.
const MAX_ENDPOINT_BYTES: usize = 2048;

/// Why an endpoint or its keys were refused. The message is safe to show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("the endpoint must be an https URL of a known push service")]
    NotAPushService,
    #[error("the endpoint's address is not allowed")]
    Forbidden,
    #[error("the endpoint's host does not resolve")]
    Unresolved,
    #[error("keys.p256dh must be a P-256 public key and keys.auth 16 bytes, in base64url")]
    Keys,
}

fn known_service(host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    PUSH_SERVICES.iter().any(|s| match s.strip_prefix('.') {
        Some(domain) => host.ends_with(s) && host.len() > domain.len() + 1,
        None => host == *s,
    })
}

/// Checks an endpoint as a browser sent it: its form, scheme, service and literal address.
pub fn check(raw: &str, allow: &Allowlist) -> Result<url::Url, EndpointError> {
    if raw.len() > MAX_ENDPOINT_BYTES {
        return Err(EndpointError::NotAPushService);
    }
    let url = url::Url::parse(raw.trim()).map_err(|_| EndpointError::NotAPushService)?;
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err(EndpointError::NotAPushService);
    }
    match check_host(&url, allow) {
        Ok(Target::Allowed) => return Ok(url),
        Ok(Target::Name(name)) if url.scheme() == "https" && known_service(&name) => {}
        Ok(_) => return Err(EndpointError::NotAPushService),
        Err(confab_shared::preview::PolicyError::Forbidden) => {
            return Err(EndpointError::Forbidden)
        }
        Err(_) => return Err(EndpointError::NotAPushService),
    }
    Ok(url)
}

/// Checks a subscription's keys: p256dh an uncompressed P-256 point, auth 16 bytes.
pub fn check_keys(p256dh: &str, auth: &str) -> Result<(), EndpointError> {
    let point = URL_SAFE_NO_PAD
        .decode(p256dh.trim_end_matches('='))
        .map_err(|_| EndpointError::Keys)?;
    let secret = URL_SAFE_NO_PAD
        .decode(auth.trim_end_matches('='))
        .map_err(|_| EndpointError::Keys)?;
    if point.len() != 65 || point[0] != 4 || secret.len() != 16 {
        return Err(EndpointError::Keys);
    }
    Ok(())
}

/// Resolves an endpoint's host for a send: `None` when allowlisted (connect as it is), else the
/// name and its addresses, every one of which passed the policy (a name with one public and
/// one private address is refused).
pub async fn resolve(
    url: &url::Url,
    allow: &Allowlist,
) -> Result<Option<(String, Vec<SocketAddr>)>, EndpointError> {
    match check_host(url, allow).map_err(|_| EndpointError::Forbidden)? {
        Target::Allowed | Target::Address(_) => Ok(None),
        Target::Name(name) => {
            let port = url.port_or_known_default().unwrap_or(443);
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), port))
                .await
                .map_err(|_| EndpointError::Unresolved)?
                .collect();
            if addrs.is_empty() || addrs.iter().any(|a| is_forbidden_ip(a.ip())) {
                return Err(EndpointError::Forbidden);
            }
            Ok(Some((name, addrs)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_services_over_https() {
        let none = Allowlist::default();
        for ok in [
            "https://fcm.googleapis.com/fcm/send/abc",
            "https://updates.push.services.mozilla.com/wpush/v2/abc",
            "https://web.push.apple.com/QGx",
            "https://wns2-par02p.notify.windows.com/w/?token=x",
        ] {
            assert!(check(ok, &none).is_ok(), "{ok}");
        }
        for bad in [
            "http://fcm.googleapis.com/fcm/send/abc",
            "https://evil.example.com/push",
            "https://push.apple.com.evil.example/x",
            "https://notify.windows.com/x",
            "https://user:pw@fcm.googleapis.com/x",
            "ftp://fcm.googleapis.com/x",
            "not a url",
        ] {
            assert_eq!(
                check(bad, &none),
                Err(EndpointError::NotAPushService),
                "{bad}"
            );
        }
        for private in [
            "https://127.0.0.1/push",
            "https://10.0.0.1/push",
            "https://[::1]/push",
            "https://localhost/push",
            "https://169.254.169.254/latest",
        ] {
            assert_eq!(
                check(private, &none),
                Err(EndpointError::Forbidden),
                "{private}"
            );
        }
        let allow = Allowlist::parse("127.0.0.1:9999");
        assert!(check("http://127.0.0.1:9999/push/1", &allow).is_ok());
        assert!(check("http://127.0.0.1:9998/push/1", &allow).is_err());
    }

    #[test]
    fn keys_have_their_sizes() {
        let point = URL_SAFE_NO_PAD.encode([4u8; 65]);
        let auth = URL_SAFE_NO_PAD.encode([1u8; 16]);
        assert!(check_keys(&point, &auth).is_ok());
        assert!(check_keys(&auth, &auth).is_err());
        assert!(check_keys(&point, "!!").is_err());
    }
}
