//! The hardening findings of the outside review, each against the real server: slow and idle
//! connections, per-user and per-address caps, security headers, cross-site requests, the
//! throttles, upload races and limits, previews, look-alike names, and the smaller ones.
#![allow(clippy::unwrap_used)]

mod common;

use common::{password, Client, TestServer};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the server closes the connection (or `within` passes); returns what was read
/// and whether it closed.
async fn read_until_closed(sock: &mut TcpStream, within: Duration) -> (String, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, sock.read(&mut buf)).await {
            Err(_) => return (String::from_utf8_lossy(&out).into_owned(), false),
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&out).into_owned(), true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

async fn error_of(res: reqwest::Response) -> (u16, String, String) {
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap();
    (
        status,
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

// 1. Slow and idle HTTP connections.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_trickling_and_idle_connections_are_closed() {
    let server = TestServer::start_with(|c| {
        c.header_read_timeout_secs = 1;
        c.body_read_timeout_secs = 1;
        c.keep_alive_timeout_secs = 1;
    })
    .await;
    let started = Instant::now();

    // A connection that sends nothing.
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    // A head that trickles in, a header line every 300 ms, never finishing.
    let mut trickle = TcpStream::connect(server.addr).await.unwrap();
    let trickler = {
        let mut writer = TcpStream::connect(server.addr).await.unwrap();
        std::mem::swap(&mut writer, &mut trickle);
        tokio::spawn(async move {
            let _ = writer.write_all(b"GET /healthz HTTP/1.1\r\n").await;
            for i in 0..40 {
                tokio::time::sleep(Duration::from_millis(300)).await;
                if writer
                    .write_all(format!("x-slow-{i}: 1\r\n").as_bytes())
                    .await
                    .is_err()
                {
                    return (writer, true);
                }
            }
            (writer, false)
        })
    };
    // A POST that declares 1,000 bytes and sends one.
    let mut short_body = TcpStream::connect(server.addr).await.unwrap();
    short_body
        .write_all(
            b"POST /api/auth/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
              content-length: 1000\r\n\r\n{",
        )
        .await
        .unwrap();
    // A kept-alive connection that goes idle after one request.
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();

    let (_, closed) = read_until_closed(&mut silent, Duration::from_secs(5)).await;
    assert!(closed, "a silent connection is closed");
    let (answer, closed) = read_until_closed(&mut short_body, Duration::from_secs(5)).await;
    assert!(closed, "a body that never arrives closes the connection");
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let (answer, closed) = read_until_closed(&mut idle, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(closed, "an idle kept-alive connection is closed");
    let (writer, cut) = trickler.await.unwrap();
    drop(writer);
    assert!(cut, "a trickling head is cut before it finishes");
    assert!(started.elapsed() < Duration::from_secs(8));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_per_address_are_capped() {
    let server = TestServer::start_with(|c| c.max_connections_per_address = 3).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut sock = TcpStream::connect(server.addr).await.unwrap();
        sock.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 256];
        let n = sock.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        open.push(sock);
    }
    let mut fourth = TcpStream::connect(server.addr).await.unwrap();
    let (answer, closed) = read_until_closed(&mut fourth, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    assert!(answer.contains("rate_limited"), "{answer}");
    assert!(closed);
    // One closes: there is room again.
    drop(open.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let res = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(res.status(), 200);
    server.stop().await;
}

// 2. WebSockets per user and per address.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_per_user_and_per_address_are_capped() {
    let server = TestServer::start_with(|c| {
        c.max_sockets_per_user = 3;
        c.max_sockets_per_address = 5;
    })
    .await;
    let ann = server.register("ann").await;
    let bob = server.register("bob").await;
    let mut anns = Vec::new();
    for _ in 0..3 {
        anns.push(ann.ws().await);
    }
    match ann.ws_with_origin(None).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            assert_eq!(res.status(), 429);
            assert!(res.headers().get("retry-after").is_some());
        }
        other => panic!(
            "a fourth socket of one user is refused, got {:?}",
            other.err()
        ),
    }
    // The open ones still work.
    anns[0].send(json!({"type": "ping"})).await;
    assert!(matches!(
        anns[0].next().await,
        confab_shared::protocol::ServerFrame::Pong
    ));
    // Another user from the same address: two more fit under the address cap, then no more.
    let _b1 = bob.ws().await;
    let _b2 = bob.ws().await;
    match bob.ws_with_origin(None).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => assert_eq!(res.status(), 429),
        other => panic!("the address cap refuses, got {:?}", other.err()),
    }
    // Closing one gives its slot back.
    let mut first = anns.remove(0);
    first.stream.close(None).await.unwrap();
    drop(first);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _again = ann.ws().await;
    server.stop().await;
}

// 3. Security headers.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_and_the_api_carry_security_headers() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    for path in ["/", "/healthz", "/api/me"] {
        let res = http.get(server.url(path)).send().await.unwrap();
        let h = res.headers();
        let csp = h
            .get("content-security-policy")
            .unwrap_or_else(|| panic!("{path}: no CSP"))
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert!(h.get("strict-transport-security").is_none(), "plain http");
        if path == "/" {
            assert!(csp.contains("script-src 'self'"), "{csp}");
        }
    }
    server.stop().await;

    let server =
        TestServer::start_with(|c| c.public_url = Some("https://chat.example".into())).await;
    let res = reqwest::get(server.url("/")).await.unwrap();
    assert_eq!(
        res.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    server.stop().await;
}

// 11. Cross-site requests.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_state_changes_are_refused() {
    let server = TestServer::start().await;
    let ann = server.register("ann").await;
    let bob = server.register("bob").await;
    let room = bob.create_room("lobby").await;
    let join = ann.url(&format!("/api/rooms/{}/join", room.id));
    // A form POST from another site's page.
    let res = ann
        .http
        .post(&join)
        .header("origin", "http://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("x=1")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.0, 403);
    let res = ann
        .http
        .post(&join)
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // A multipart upload from another site.
    let form = reqwest::multipart::Form::new()
        .text("room_id", room.id.to_string())
        .part(
            "file",
            reqwest::multipart::Part::bytes(b"hello".to_vec()).file_name("a.txt"),
        );
    let res = bob
        .http
        .post(bob.url("/api/uploads"))
        .header("origin", "http://evil.example")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // Nothing changed: ann is not a member.
    let members: Value = bob
        .get(&format!("/api/rooms/{}/members", room.id))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(members.as_array().map(Vec::len), Some(1), "{members}");
    // The same requests from our own page, or from a program, go through.
    let res = ann
        .http
        .post(&join)
        .header("origin", server.base.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = ann
        .http
        .post(ann.url(&format!("/api/rooms/{}/leave", room.id)))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    server.stop().await;
}

// 13. Metrics, errors in our own words.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_their_own_listener_or_the_token() {
    let server = TestServer::start().await;
    let res = reqwest::get(server.url("/metrics")).await.unwrap();
    assert_eq!(res.status(), 404, "not public on the main listener");
    server.stop().await;

    let server = TestServer::start_with(|c| c.metrics_token = Some("s3cret-token".into())).await;
    let http = reqwest::Client::new();
    let res = http
        .get(server.url("/metrics"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = http
        .get(server.url("/metrics"))
        .bearer_auth("s3cret-token")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_and_queries_are_answered_in_our_words() {
    let server = TestServer::start().await;
    let ann = server.register("ann").await;
    let res = ann
        .http
        .post(ann.url("/api/auth/login"))
        .json(&json!({"login": "ann"}))
        .send()
        .await
        .unwrap();
    let (status, code, message) = error_of(res).await;
    assert_eq!((status, code.as_str()), (400, "bad_request"));
    assert_eq!(message, "field `password` is missing");
    let res = ann
        .http
        .post(ann.url("/api/auth/login"))
        .json(&json!({"login": 5, "password": password()}))
        .send()
        .await
        .unwrap();
    let (_, _, message) = error_of(res).await;
    assert_eq!(message, "field `login` has the wrong type or value");
    let res = ann
        .http
        .post(ann.url("/api/auth/login"))
        .header("content-type", "application/json")
        .body("{\"login\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.2, "the body is not valid JSON");
    let (_, _, message) = error_of(ann.get("/api/rooms?limit=lots").await).await;
    assert_eq!(
        message,
        "query parameter `limit` has the wrong type or value"
    );
    let (_, _, message) = error_of(ann.get("/api/rooms?scope=everything").await).await;
    assert_eq!(
        message,
        "query parameter `scope` has the wrong type or value"
    );
    let (_, _, message) = error_of(ann.get("/api/preview").await).await;
    assert_eq!(message, "query parameter `url` is missing");
    let (_, _, message) = error_of(ann.get("/api/rooms/not-a-uuid").await).await;
    assert_eq!(message, "path parameter `id` is not valid");
    server.stop().await;
}

// 5. and 6. Password guessing.

async fn login_from(server: &TestServer, login: &str, pw: &str, from: &str) -> u16 {
    reqwest::Client::new()
        .post(server.url("/api/auth/login"))
        .header("x-forwarded-for", from)
        .json(&json!({"login": login, "password": pw}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_budget_per_account_and_the_owner_is_not_locked_out() {
    let server = TestServer::start_with(|c| c.trust_forwarded_for = true).await;
    server.register("bob").await;
    let attacker = "203.0.113.7";
    // The username and the e-mail are one account: 10 guesses in all, not 10 each.
    for i in 0..10 {
        let login = if i % 2 == 0 { "bob" } else { "BOB@example.com" };
        assert_eq!(
            login_from(&server, login, "guess guess", attacker).await,
            401
        );
    }
    assert_eq!(
        login_from(&server, "bob@example.com", "guess guess", attacker).await,
        429
    );
    assert_eq!(login_from(&server, "bob", password(), attacker).await, 429);
    // The owner, from an address without failures, gets in through the lockout.
    assert_eq!(
        login_from(&server, "bob", password(), "198.51.100.20").await,
        200
    );
    // Another address's wrong guess is checked once, then that address is refused too.
    assert_eq!(
        login_from(&server, "bob", "guess guess", "198.51.100.30").await,
        401
    );
    assert_eq!(
        login_from(&server, "bob", password(), "198.51.100.30").await,
        429
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_changes_are_throttled_like_logins() {
    let server = TestServer::start().await;
    let ann = server.register("ann").await;
    let change = |current: &'static str| {
        ann.post(
            "/api/me/password",
            json!({"current_password": current, "new_password": "a new secret 1"}),
        )
    };
    for _ in 0..10 {
        assert_eq!(change("wrong guess").await.status(), 403);
    }
    let res = change("wrong guess").await;
    assert_eq!(res.status(), 429);
    assert!(res.headers().get("retry-after").is_some());
    assert_eq!(
        change(password()).await.status(),
        429,
        "not even the right one"
    );
    server.stop().await;
}

// The edge worker's signed client address (CONFAB_EDGE_SECRET).

const EDGE_SECRET: &str = "a test secret that is long enough..";

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn signed(address: &str, secret: &str, at: i64) -> String {
    confab_shared::edge::sign(secret.as_bytes(), address.parse().unwrap(), at)
}

/// A failed login (for an account that does not exist) carrying `headers`: 401, or 429 once
/// the address it is counted against is out of budget.
async fn login_with(server: &TestServer, login: &str, headers: &[(&str, String)]) -> u16 {
    let mut req = reqwest::Client::new().post(server.url("/api/auth/login"));
    for (name, value) in headers {
        req = req.header(*name, value);
    }
    req.json(&json!({"login": login, "password": "guess guess"}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_names_the_client_address_only_with_the_secret() {
    use confab_shared::edge::{CLIENT_ADDRESS_HEADER as H, MAX_SKEW_SECS};
    let burst = 3;
    let server = TestServer::start_with(|c| {
        c.edge_secret = Some(confab_origin::config::EdgeSecret::parse(EDGE_SECRET).unwrap());
        c.auth_burst_per_address = burst;
    })
    .await;
    // Addresses the edge signed are the client's: each has its own budget.
    let edge = |a: &str| vec![(H, signed(a, EDGE_SECRET, now_secs()))];
    for _ in 0..burst {
        assert_eq!(
            login_with(&server, "nobody1", &edge("203.0.113.7")).await,
            401
        );
    }
    assert_eq!(
        login_with(&server, "nobody1", &edge("203.0.113.7")).await,
        429
    );
    assert_eq!(
        login_with(&server, "nobody2", &edge("2001:db8::7")).await,
        401
    );

    // A client talking to the origin directly cannot pick its address: every header below is
    // ignored and all the attempts count against the peer (127.0.0.1).
    let now = now_secs();
    let forged = [
        format!("198.51.100.1 {now} {}", "0".repeat(64)),
        signed("198.51.100.2", "another secret, long enough too....", now),
        signed("198.51.100.3", EDGE_SECRET, now - MAX_SKEW_SECS - 5),
        signed("198.51.100.4", EDGE_SECRET, now + MAX_SKEW_SECS + 5),
        "198.51.100.5".to_owned(),
    ];
    for (i, value) in forged.iter().enumerate() {
        let expected = if i < burst as usize { 401 } else { 429 };
        assert_eq!(
            login_with(&server, "nobody3", &[(H, value.clone())]).await,
            expected,
            "{value}"
        );
    }
    // X-Forwarded-For is not trusted here either.
    let xff = [("x-forwarded-for", "198.51.100.6".to_owned())];
    assert_eq!(login_with(&server, "nobody3", &xff).await, 429);
    // The edge's own header still works for its clients.
    assert_eq!(
        login_with(&server, "nobody4", &edge("198.51.100.7")).await,
        401
    );
    server.stop().await;

    // Without the secret the header means nothing, however well signed.
    let server = TestServer::start_with(|c| c.auth_burst_per_address = burst).await;
    for i in 0..=burst {
        let value = signed(&format!("198.51.100.{}", 10 + i), EDGE_SECRET, now_secs());
        let expected = if i < burst { 401 } else { 429 };
        assert_eq!(
            login_with(&server, "nobody5", &[(H, value)]).await,
            expected
        );
    }
    server.stop().await;

    // With both settings the signature comes first; without a valid one, X-Forwarded-For.
    let server = TestServer::start_with(|c| {
        c.edge_secret = Some(confab_origin::config::EdgeSecret::parse(EDGE_SECRET).unwrap());
        c.trust_forwarded_for = true;
        c.auth_burst_per_address = burst;
    })
    .await;
    for _ in 0..burst {
        let headers = [
            (H, signed("203.0.113.20", EDGE_SECRET, now_secs())),
            ("x-forwarded-for", "198.51.100.20".to_owned()),
        ];
        assert_eq!(login_with(&server, "nobody6", &headers).await, 401);
    }
    let headers = [
        (H, "203.0.113.20 0 bad".to_owned()),
        ("x-forwarded-for", "198.51.100.20".to_owned()),
    ];
    assert_eq!(
        login_with(&server, "nobody6", &headers).await,
        401,
        "X-Forwarded-For's address still has its budget"
    );
    let headers = [(H, signed("203.0.113.20", EDGE_SECRET, now_secs()))];
    assert_eq!(login_with(&server, "nobody6", &headers).await, 429);
    server.stop().await;
}

#[test]
fn the_edge_secret_has_a_minimum_length() {
    use confab_origin::config::EdgeSecret;
    assert!(EdgeSecret::parse("short").is_err());
    assert!(EdgeSecret::parse(&"x".repeat(31)).is_err());
    assert!(EdgeSecret::parse(&format!(" {}\n", "x".repeat(31))).is_err());
    let secret = EdgeSecret::parse(EDGE_SECRET).unwrap();
    assert_eq!(format!("{secret:?}"), "EdgeSecret(..)", "Debug hides it");
    // Empty is unset (docker-compose passes `${CONFAB_EDGE_SECRET:-}`).
    let mut config = confab_origin::Config::for_tests("unused");
    config.edge_secret = Some(EdgeSecret::parse("").unwrap());
    assert!(config.edge_secret().is_none() && !config.behind_proxy());
    config.edge_secret = Some(secret);
    assert!(config.edge_secret().is_some() && config.behind_proxy());
}

// 8., 10. and 13. Uploads.

async fn ticket_for(c: &Client, room: &str, size: i64) -> Value {
    let res = c
        .post(
            "/api/uploads/ticket",
            json!({"room_id": room, "name": "notes.txt", "size": size, "content_type": "text/plain"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// Starts a request on a raw socket: the head and the first `body` bytes, the rest unsent.
async fn start_request(server: &TestServer, head: String, body: &[u8]) -> TcpStream {
    let mut sock = TcpStream::connect(server.addr).await.unwrap();
    sock.write_all(head.as_bytes()).await.unwrap();
    sock.write_all(body).await.unwrap();
    sock
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_is_claimed_once_even_by_concurrent_uploads() {
    let server = TestServer::start().await;
    let ann = server.register("ann").await;
    let room = ann.create_room("files").await;
    let t = ticket_for(&ann, &room.id.to_string(), 20).await;
    let ticket = t["ticket"].as_str().unwrap().to_owned();
    // The first PUT is under way (half its body sent) when the second arrives whole.
    let mut first = start_request(
        &server,
        format!(
            "PUT /api/uploads HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {ticket}\r\n\
             content-type: text/plain\r\ncontent-length: 20\r\n\r\n"
        ),
        b"first upload",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = reqwest::Client::new()
        .put(server.url("/api/uploads"))
        .bearer_auth(&ticket)
        .body("second upload!!!")
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 409, "the ticket is taken");
    first.write_all(b" bytes..").await.unwrap();
    let (answer, _) = read_until_closed(&mut first, Duration::from_secs(2)).await;
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    let body = answer.split("\r\n\r\n").nth(1).unwrap();
    let att: Value = serde_json::from_str(body).unwrap();
    let stored = ann
        .get(&format!("/api/files/{}", att["id"].as_str().unwrap()))
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(&stored[..], b"first upload bytes..", "never replaced");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tickets_take_their_declared_size_and_only_members() {
    let server = TestServer::start().await;
    let ann = server.register("ann").await;
    let room = ann.create_room("files").await;
    let t = ticket_for(&ann, &room.id.to_string(), 10).await;
    assert_eq!(t["max_bytes"], 10);
    let res = reqwest::Client::new()
        .put(server.url("/api/uploads"))
        .bearer_auth(t["ticket"].as_str().unwrap())
        .body(vec![b'a'; 5069])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413, "over the declared size");
    // A ticket stops working when its user leaves the room.
    let bob = server.register("bob").await;
    bob.join(&room).await;
    let t = ticket_for(&bob, &room.id.to_string(), 5).await;
    let res = bob
        .post(&format!("/api/rooms/{}/leave", room.id), json!({}))
        .await;
    assert!(res.status().is_success());
    let res = reqwest::Client::new()
        .put(server.url("/api/uploads"))
        .bearer_auth(t["ticket"].as_str().unwrap())
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    server.stop().await;
}

fn multipart_head(c: &Client, boundary: &str, length: usize) -> String {
    format!(
        "POST /api/uploads HTTP/1.1\r\nhost: x\r\ncookie: {}\r\n\
         content-type: multipart/form-data; boundary={boundary}\r\ncontent-length: {length}\r\n\r\n",
        c.cookie_header("/api/uploads")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_check_the_room_first_and_are_capped_per_user() {
    let server = TestServer::start().await;
    let ann = server.register("ann").await;
    let room = ann.create_room("files").await;
    // A file before its room: refused at once, without waiting for (or reading) the file.
    let mut file_first = start_request(
        &server,
        multipart_head(&ann, "XX", 1_000_000),
        b"--XX\r\ncontent-disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nsome",
    )
    .await;
    let (answer, _) = read_until_closed(&mut file_first, Duration::from_secs(3)).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer:?}");
    assert!(answer.contains("room_id must come before file"), "{answer}");

    // Two uploads in progress for one user; the third is refused, another user's goes on.
    let part = format!(
        "--XX\r\ncontent-disposition: form-data; name=\"room_id\"\r\n\r\n{}\r\n\
         --XX\r\ncontent-disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nslow",
        room.id
    );
    let mut slow = Vec::new();
    for _ in 0..2 {
        slow.push(
            start_request(
                &server,
                multipart_head(&ann, "XX", 1_000_000),
                part.as_bytes(),
            )
            .await,
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let form = reqwest::multipart::Form::new()
        .text("room_id", room.id.to_string())
        .part(
            "file",
            reqwest::multipart::Part::bytes(b"hello".to_vec()).file_name("b.txt"),
        );
    let res = ann
        .http
        .post(ann.url("/api/uploads"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_of(res).await;
    assert_eq!((status, code.as_str()), (429, "rate_limited"));
    let bob = server.register("bob").await;
    bob.join(&room).await;
    let form = reqwest::multipart::Form::new()
        .text("room_id", room.id.to_string())
        .part(
            "file",
            reqwest::multipart::Part::bytes(b"hello".to_vec()).file_name("b.txt"),
        );
    let res = bob
        .http
        .post(bob.url("/api/uploads"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    drop(slow);
    server.stop().await;
}

// 4. and 9. Link previews.

/// An HTTP fixture on loopback: `route(path)` gives the reply; each request is counted, and
/// each connection is answered after `delay`.
async fn fixture(
    delay: Duration,
    route: impl Fn(&str) -> Vec<u8> + Send + Sync + 'static,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let route = std::sync::Arc::new(route);
    let counted = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let (route, hits) = (route.clone(), counted.clone());
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).into_owned();
                let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
                hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                let _ = sock.write_all(&route(&path)).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    (addr, hits)
}

fn reply(content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

fn preview_path(url: &str) -> String {
    let link = confab_shared::preview::image_link("", url);
    format!("/api/preview?{}", link.trim_start_matches("/image?"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_cards_link_to_the_posted_url_and_images_come_from_us() {
    let (site, hits) = fixture(Duration::ZERO, |path| match path {
        "/metadata" => reply(
            "text/html",
            b"<title>M</title><meta property=og:image content='http://169.254.169.254/latest/meta-data/'>\
              <meta property=og:url content='https://elsewhere.example/'>",
        ),
        "/cat" => reply(
            "text/html",
            b"<title>Cat</title><meta property=og:image content='/cat.png'>",
        ),
        "/fake" => reply("text/html", b"<title>F</title><meta property=og:image content='/page.png'>"),
        "/page.png" => reply("image/png", b"<svg onload=alert(1)>"),
        "/cat.png" => reply("image/png", PNG),
        _ => reply("text/plain", b"no"),
    })
    .await;
    let server = TestServer::start_with(|c| c.files.preview_allowlist = site.to_string()).await;
    let ann = server.register("ann").await;

    let posted = format!("http://{site}/metadata");
    let p: Value = ann.get(&preview_path(&posted)).await.json().await.unwrap();
    assert_eq!(p["url"], posted, "the card links where the message does");
    let image = p["image"].as_str().unwrap();
    assert!(
        image.starts_with(&format!("{}/api/preview/image?url=", server.base)),
        "{image}"
    );
    // Fetching it applies the address policy to the image too.
    let res = ann.http.get(image).send().await.unwrap();
    assert_eq!(res.status(), 403);

    let p: Value = ann
        .get(&preview_path(&format!("http://{site}/cat")))
        .await
        .json()
        .await
        .unwrap();
    let image = p["image"].as_str().unwrap().to_owned();
    for _ in 0..2 {
        let res = ann.http.get(&image).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], "image/png");
        assert_eq!(&res.bytes().await.unwrap()[..], PNG);
    }
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        3,
        "two pages and one image fetch: the second view came from the cache"
    );
    // Not an image by its bytes: not served.
    let p: Value = ann
        .get(&preview_path(&format!("http://{site}/fake")))
        .await
        .json()
        .await
        .unwrap();
    let res = ann
        .http
        .get(p["image"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    // Logged-out viewers get nothing.
    assert_eq!(reqwest::get(&image).await.unwrap().status(), 401);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_user_cannot_take_every_preview_slot() {
    let (slow, _) = fixture(Duration::from_millis(1500), |_| {
        reply("text/html", b"<title>slow</title>")
    })
    .await;
    let server = TestServer::start_with(|c| {
        c.files.preview_allowlist = slow.to_string();
        c.files.previews_per_user = 2;
    })
    .await;
    let ann = std::sync::Arc::new(server.register("ann").await);
    let bob = server.register("bob").await;
    let mut pending = Vec::new();
    for i in 0..2 {
        let ann = ann.clone();
        let path = preview_path(&format!("http://{slow}/{i}"));
        pending.push(tokio::spawn(async move { ann.get(&path).await.status() }));
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    let res = ann
        .get(&preview_path(&format!("http://{slow}/third")))
        .await;
    let (status, code, _) = error_of(res).await;
    assert_eq!((status, code.as_str()), (429, "rate_limited"));
    assert_eq!(
        bob.get(&preview_path(&format!("http://{slow}/bob")))
            .await
            .status(),
        200,
        "other users still get previews"
    );
    for p in pending {
        assert_eq!(p.await.unwrap(), 200);
    }
    server.stop().await;
}

// 12. Look-alikes and invisible text.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn look_alike_names_and_invisible_text_are_refused() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let (http, _) = Client::anonymous(&server);
    let register = |username: &str, email: &str| {
        http.post(server.url("/api/auth/register"))
            .json(&json!({"username": username, "email": email, "password": password()}))
            .send()
    };
    let (status, code, message) =
        error_of(register("aIice", "x1@example.com").await.unwrap()).await;
    assert_eq!((status, code.as_str()), (409, "conflict"), "{message}");
    assert_eq!(
        error_of(register("a1ice", "x2@example.com").await.unwrap())
            .await
            .0,
        409
    );
    for email in [
        "\u{430}lice@example.com",
        "al\u{200B}ice@example.com",
        "alice2@example.com\u{202E}",
    ] {
        let res = register("someone", email).await.unwrap();
        assert_eq!(res.status(), 422, "{email:?}");
    }

    alice.create_room("general").await;
    for name in [
        "generaI",
        "GENERAL",
        "gen\u{200B}eral",
        "evil\u{202E}txt.exe",
        "\u{200B}\u{200D}",
        "\u{3164}",
    ] {
        let res = alice.post("/api/rooms", json!({"name": name})).await;
        assert!(
            res.status() == 409 || res.status() == 422,
            "{name:?}: {}",
            res.status()
        );
    }
    let room = alice.create_room("random").await;
    let mut ws = alice.ws().await;
    ws.subscribe(&room, None).await;
    ws.send(json!({"type": "send", "room": room.id, "client_msg_id": "z1", "body": "\u{200B}\u{200C}\u{2060}"}))
        .await;
    match ws
        .expect(|f| {
            matches!(
                f,
                confab_shared::protocol::ServerFrame::Ack { .. }
                    | confab_shared::protocol::ServerFrame::Error { .. }
            )
        })
        .await
    {
        confab_shared::protocol::ServerFrame::Error { code, .. } => {
            assert_eq!(code, confab_shared::ErrorCode::Validation)
        }
        other => panic!("an invisible message is refused, got {other:?}"),
    }
    ws.say(&room, "z2", "👩\u{200D}💻 visible").await;
    server.stop().await;
}

// 13. The data directory is private.

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_directory_and_database_are_private() {
    use std::os::unix::fs::PermissionsExt;
    // A data directory as `mkdir` makes it under the usual umask.
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let server = TestServer::start_in(dir, |_| {}).await;
    let ann = server.register("ann").await;
    ann.create_room("written").await;
    let mode = |p: std::path::PathBuf| std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
    let dir = server.dir.path().to_owned();
    assert_eq!(mode(dir.clone()), 0o700);
    for file in ["confab.db", "confab.db-wal", "confab.db-shm"] {
        assert_eq!(mode(dir.join(file)), 0o600, "{file}");
    }
    server.stop().await;
}

// 7. Registration by e-mail confirmation.

/// A loopback SMTP server that accepts every message; returns the raw messages it received.
async fn smtp_fixture() -> (
    std::net::SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<String>,
) {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let (read, mut write) = sock.into_split();
                let mut lines = BufReader::new(read).lines();
                let _ = write.write_all(b"220 fixture ESMTP\r\n").await;
                while let Ok(Some(line)) = lines.next_line().await {
                    let verb = line
                        .split(' ')
                        .next()
                        .unwrap_or_default()
                        .to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250 fixture\r\n",
                        "DATA" => {
                            let _ = write.write_all(b"354 go on\r\n").await;
                            let mut message = String::new();
                            while let Ok(Some(l)) = lines.next_line().await {
                                if l == "." {
                                    break;
                                }
                                message.push_str(&l);
                                message.push('\n');
                            }
                            let _ = tx.send(message);
                            b"250 queued\r\n"
                        }
                        "QUIT" => {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            return;
                        }
                        _ => b"250 ok\r\n",
                    };
                    let _ = write.write_all(reply).await;
                }
            });
        }
    });
    (addr, rx)
}

/// The text of a quoted-printable mail body, soft breaks joined.
fn unfold(message: &str) -> String {
    message.replace("=\n", "").replace("=3D", "=")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_with_confirmation_tells_nothing_about_addresses() {
    let (smtp, mut mails) = smtp_fixture().await;
    let server = TestServer::start_with(|c| c.smtp_url = Some(format!("smtp://{smtp}"))).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap();
    let register = |username: &str, email: &str| {
        http.post(server.url("/api/auth/register"))
            .json(&json!({"username": username, "email": email, "password": password()}))
            .send()
    };
    let mut next_mail = async || {
        tokio::time::timeout(common::WAIT, mails.recv())
            .await
            .expect("a mail arrives")
            .unwrap()
    };
    let fresh = register("carol", "carol@example.com").await.unwrap();
    assert_eq!(fresh.status(), 202);
    let fresh_body = fresh.text().await.unwrap();
    let first = unfold(&next_mail().await);
    assert!(first.contains("To: carol@example.com"), "{first}");
    let link = first
        .split_whitespace()
        .find(|w| w.contains("/api/auth/confirm?token="))
        .expect("a confirmation link")
        .to_owned();
    // Not signed in yet: the account exists only once the link is followed.
    assert_eq!(
        http.get(server.url("/api/me"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let res = http.get(&link).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let me: Value = http
        .get(server.url("/api/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], "carol");
    assert_eq!(
        http.get(&link).send().await.unwrap().status(),
        409,
        "used once"
    );

    // The same address again, by someone else: the very same answer.
    let taken = register("mallory", "Carol@Example.com").await.unwrap();
    assert_eq!(taken.status(), 202);
    assert_eq!(taken.text().await.unwrap(), fresh_body);
    let second = unfold(&next_mail().await);
    assert!(second.contains("already belongs"), "{second}");
    assert!(
        !second.contains("/api/auth/confirm"),
        "no link for a taken address"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websockets_outlive_the_http_deadlines() {
    let server = TestServer::start_with(|c| {
        c.header_read_timeout_secs = 1;
        c.keep_alive_timeout_secs = 1;
        c.body_read_timeout_secs = 1;
    })
    .await;
    let ann = server.register("ann").await;
    let mut ws = ann.ws().await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    ws.send(json!({"type": "ping"})).await;
    assert!(matches!(
        ws.next().await,
        confab_shared::protocol::ServerFrame::Pong
    ));
    server.stop().await;
}
