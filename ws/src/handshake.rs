//! The opening handshake (RFC 6455 section 4): what a server checks in an upgrade request and
//! answers, and a client's whole handshake over a stream.

use crate::{deflate, Error, Options, Role, WebSocket};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tungstenite::http::{header, HeaderMap, HeaderValue};

/// What a server answers an acceptable upgrade request with.
#[derive(Debug, Clone)]
pub struct Accept {
    /// `Sec-WebSocket-Accept`.
    pub accept: HeaderValue,
    /// Whether permessage-deflate is agreed (then `Sec-WebSocket-Extensions` is
    /// [`deflate::RESPONSE`]).
    pub deflate: bool,
}

impl Accept {
    /// The 101 response's headers.
    pub fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        h.insert(header::SEC_WEBSOCKET_ACCEPT, self.accept.clone());
        if self.deflate {
            h.insert(
                header::SEC_WEBSOCKET_EXTENSIONS,
                HeaderValue::from_static(deflate::RESPONSE),
            );
        }
        h
    }
}

/// Checks an upgrade request's headers (the method, GET, is the router's): `Connection`
/// includes `upgrade`, `Upgrade` is `websocket`, version 13 and a key. `offer_deflate`: whether
/// this server would compress; it does when the client offered an acceptable
/// permessage-deflate.
pub fn accept(headers: &HeaderMap, offer_deflate: bool) -> Result<Accept, Error> {
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if !has_token(header::CONNECTION, "upgrade") || !has_token(header::UPGRADE, "websocket") {
        return Err(Error::Handshake("not a WebSocket upgrade"));
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(|v| v.as_bytes())
        != Some(b"13")
    {
        return Err(Error::Handshake("unsupported WebSocket version (13 only)"));
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or(Error::Handshake("no Sec-WebSocket-Key"))?;
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let deflate = offer_deflate
        && deflate::server_accepts(
            headers
                .get_all(header::SEC_WEBSOCKET_EXTENSIONS)
                .iter()
                .filter_map(|v| v.to_str().ok()),
        );
    Ok(Accept {
        accept: HeaderValue::from_str(&accept).map_err(|_| Error::Handshake("accept key"))?,
        deflate,
    })
}

/// The most a client reads of a handshake response.
const MAX_RESPONSE: usize = 16 * 1024;

/// A client's handshake over `stream`: `GET path` on `host` with `extra_headers` (a cookie,
/// an `Origin`), offering permessage-deflate when `options.deflate`. The connection's
/// `options.deflate` is then whether the server agreed.
pub async fn connect<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    host: &str,
    path: &str,
    extra_headers: &[(&str, &str)],
    mut options: Options,
) -> Result<WebSocket<S>, Error> {
    use base64::Engine;
    let key = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 16]>());
    let mut request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
    );
    if options.deflate {
        request.push_str(&format!("Sec-WebSocket-Extensions: {}\r\n", deflate::OFFER));
    }
    for (name, value) in extra_headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await?;

    let mut buf = Vec::with_capacity(1024);
    let (status, accept, extensions, body_at) = loop {
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(Error::Handshake("the server closed during the handshake"));
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&buf) {
            Ok(httparse::Status::Complete(at)) => {
                let find = |name: &str| {
                    response
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(name))
                        .and_then(|h| std::str::from_utf8(h.value).ok())
                        .map(str::to_owned)
                };
                break (
                    response.code.unwrap_or(0),
                    find("sec-websocket-accept"),
                    find("sec-websocket-extensions"),
                    at,
                );
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_RESPONSE => continue,
            _ => return Err(Error::Handshake("malformed handshake response")),
        }
    };
    if status != 101 {
        return Err(Error::Rejected(status));
    }
    if accept.as_deref() != Some(&tungstenite::handshake::derive_accept_key(key.as_bytes())) {
        return Err(Error::Handshake("wrong Sec-WebSocket-Accept"));
    }
    let agreed = deflate::client_accepts(extensions.as_deref())?;
    if agreed && !options.deflate {
        return Err(Error::Handshake(
            "the server chose an extension that was not offered",
        ));
    }
    options.deflate = agreed;
    options.role = Role::Client;
    Ok(WebSocket::new(stream, options, buf.split_off(body_at)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn request(extensions: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        h.insert(
            header::SEC_WEBSOCKET_KEY,
            HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="),
        );
        if let Some(e) = extensions {
            h.insert(
                header::SEC_WEBSOCKET_EXTENSIONS,
                HeaderValue::from_str(e).unwrap(),
            );
        }
        h
    }

    #[test]
    fn the_rfc_key_gets_the_rfc_answer() {
        let a = accept(&request(None), true).unwrap();
        assert_eq!(a.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert!(!a.deflate);
        assert!(!a.headers().contains_key(header::SEC_WEBSOCKET_EXTENSIONS));
    }

    #[test]
    fn deflate_is_agreed_only_when_offered_and_enabled() {
        let offer = Some("permessage-deflate; client_max_window_bits");
        let a = accept(&request(offer), true).unwrap();
        assert!(a.deflate);
        assert_eq!(
            a.headers()[header::SEC_WEBSOCKET_EXTENSIONS],
            deflate::RESPONSE
        );
        assert!(
            !accept(&request(offer), false).unwrap().deflate,
            "turned off"
        );
    }

    #[test]
    fn requests_that_are_not_upgrades_are_refused() {
        let mut h = request(None);
        h.remove(header::SEC_WEBSOCKET_KEY);
        assert!(accept(&h, true).is_err());
        let mut h = request(None);
        h.insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("8"));
        assert!(accept(&h, true).is_err());
        let mut h = request(None);
        h.insert(header::UPGRADE, HeaderValue::from_static("h2c"));
        assert!(accept(&h, true).is_err());
    }
}
