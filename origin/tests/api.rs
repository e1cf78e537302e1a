//! The HTTP API against the real server: accounts and sessions, rooms, history, errors.
#![allow(clippy::unwrap_used)]

mod common;

use common::{password, Client, TestServer};
use confab_shared::api::{Member, MessagePage, Room, RoomPage};
use serde_json::{json, Value};
use std::collections::HashSet;

async fn error_code(res: reqwest::Response) -> (u16, String) {
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap();
    (status, body["error"]["code"].as_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_login_me_and_cookie_attributes() {
    let server = TestServer::start().await;
    let (http, _jar) = Client::anonymous(&server);
    let res = http
        .post(server.url("/api/auth/register"))
        .json(&json!({"username": "Ann_1", "email": "Ann@Example.com", "password": password()}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let cookies: Vec<String> = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let access = cookies
        .iter()
        .find(|c| c.starts_with("confab_access="))
        .unwrap();
    let refresh = cookies
        .iter()
        .find(|c| c.starts_with("confab_refresh="))
        .unwrap();
    for c in [access, refresh] {
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Lax"), "{c}");
        assert!(!c.contains("Secure"), "plain http: no Secure flag: {c}");
    }
    assert!(
        access.contains("Path=/;") || access.ends_with("Path=/"),
        "{access}"
    );
    assert!(access.contains("Max-Age=900"), "{access}");
    assert!(refresh.contains("Path=/api/auth"), "{refresh}");
    // The access token is an EdDSA JWT.
    let token = access
        .trim_start_matches("confab_access=")
        .split(';')
        .next()
        .unwrap();
    use base64::Engine;
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.split('.').next().unwrap())
        .unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&header).unwrap()["alg"],
        "EdDSA"
    );

    let me: Value = http
        .get(server.url("/api/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], "Ann_1");

    // Login by username or email, case-insensitively.
    for login in ["ann_1", "ANN@example.com"] {
        let (http, _) = Client::anonymous(&server);
        let res = http
            .post(server.url("/api/auth/login"))
            .json(&json!({"login": login, "password": password()}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{login}");
        assert_eq!(
            http.get(server.url("/api/me"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    let (http, _) = Client::anonymous(&server);
    let res = http
        .post(server.url("/api/auth/login"))
        .json(&json!({"login": "ann_1", "password": "wrong password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res).await, (401, "invalid_credentials".into()));
    let res = http
        .post(server.url("/api/auth/login"))
        .json(&json!({"login": "nobody", "password": "wrong password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res).await, (401, "invalid_credentials".into()));
    assert_eq!(
        error_code(http.get(server.url("/api/me")).send().await.unwrap()).await,
        (401, "unauthorized".into())
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_cookies_when_the_public_url_is_https() {
    let server =
        TestServer::start_with(|c| c.public_url = Some("https://chat.example".into())).await;
    let (http, _) = Client::anonymous(&server);
    let res = http
        .post(server.url("/api/auth/register"))
        .json(&json!({"username": "ann", "email": "ann@example.com", "password": password()}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert!(res
        .headers()
        .get_all("set-cookie")
        .iter()
        .all(|v| v.to_str().unwrap().contains("Secure")));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_our_error_shape_and_changes_nothing() {
    let server = TestServer::start().await;
    let (http, _) = Client::anonymous(&server);
    let register = |body: Value| {
        let http = http.clone();
        let url = server.url("/api/auth/register");
        async move { http.post(url).json(&body).send().await.unwrap() }
    };
    let cases = [
        (
            json!({"username": "a", "email": "a@example.com", "password": password()}),
            422,
        ),
        (
            json!({"username": "ann", "email": "not-an-email", "password": password()}),
            422,
        ),
        (
            json!({"username": "ann", "email": "ann@example.com", "password": "short"}),
            422,
        ),
        (json!({"username": "ann", "email": "ann@example.com"}), 400),
        (
            json!({"username": "has space", "email": "ann@example.com", "password": password()}),
            422,
        ),
    ];
    for (body, status) in cases {
        let res = register(body.clone()).await;
        assert_eq!(res.status(), status, "{body}");
        let err: Value = res.json().await.unwrap();
        assert!(err["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    let res = http
        .post(server.url("/api/auth/register"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res).await, (400, "bad_request".into()));
    let res = http
        .post(server.url("/api/auth/register"))
        .header("content-type", "application/json")
        .body(format!("{{\"username\":\"{}\"}}", "x".repeat(100_000)))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res).await, (413, "payload_too_large".into()));
    assert_eq!(
        error_code(http.get(server.url("/api/nope")).send().await.unwrap())
            .await
            .0,
        404
    );
    // None of that created a user: the name is still free.
    let ann = server.register("ann").await;
    let dup =
        register(json!({"username": "ANN", "email": "other@example.com", "password": password()}))
            .await;
    assert_eq!(error_code(dup).await, (409, "conflict".into()));
    let dup =
        register(json!({"username": "ann2", "email": "Ann@Example.com", "password": password()}))
            .await;
    assert_eq!(error_code(dup).await, (409, "conflict".into()));

    let bad_id = ann.get("/api/rooms/not-a-uuid/messages").await;
    assert_eq!(error_code(bad_id).await, (400, "bad_request".into()));
    let room = ann.create_room("general").await;
    let res = ann
        .get(&format!("/api/rooms/{}/messages?limit=1000", room.id))
        .await;
    assert_eq!(error_code(res).await, (422, "validation".into()));
    let res = ann.get("/api/rooms?cursor=garbage").await;
    assert_eq!(error_code(res).await, (400, "bad_request".into()));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let server = TestServer::start().await;
    let ann = server.register("ann").await;
    let refresh_cookie = |c: &Client| c.cookie_header("/api/auth/refresh");
    let first = refresh_cookie(&ann);
    let res = ann.post("/api/auth/refresh", json!({})).await;
    assert_eq!(res.status(), 200);
    let second = refresh_cookie(&ann);
    assert_ne!(first, second, "the refresh token rotated");
    assert_eq!(ann.get("/api/me").await.status(), 200);

    // An attacker replays the first (already used) token: the whole family dies.
    let (thief, _) = Client::anonymous(&server);
    let old = first
        .split("; ")
        .find(|kv| kv.starts_with("confab_refresh="))
        .unwrap()
        .to_owned();
    let res = thief
        .post(server.url("/api/auth/refresh"))
        .header("cookie", old)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // The legitimate holder's current refresh token and access token stop working too.
    assert_eq!(ann.post("/api/auth/refresh", json!({})).await.status(), 401);
    assert_eq!(ann.get("/api/me").await.status(), 401);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_and_password_change_revoke_sessions() {
    let server = TestServer::start().await;
    let ann = server.register("ann").await;
    let phone = ann.login_again(&server).await;
    assert_eq!(
        phone.post("/api/auth/logout", json!({})).await.status(),
        204
    );
    assert_eq!(phone.get("/api/me").await.status(), 401);
    assert_eq!(
        phone.post("/api/auth/refresh", json!({})).await.status(),
        401
    );
    assert_eq!(
        ann.get("/api/me").await.status(),
        200,
        "other sessions live on"
    );

    let tablet = ann.login_again(&server).await;
    let res = ann
        .post(
            "/api/me/password",
            json!({"current_password": "wrong one!", "new_password": "new secret 123"}),
        )
        .await;
    assert_eq!(error_code(res).await, (403, "forbidden".into()));
    let res = ann
        .post(
            "/api/me/password",
            json!({"current_password": password(), "new_password": "x"}),
        )
        .await;
    assert_eq!(error_code(res).await, (422, "validation".into()));
    let res = ann
        .post(
            "/api/me/password",
            json!({"current_password": password(), "new_password": "new secret 123"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        tablet.get("/api/me").await.status(),
        401,
        "other devices are logged out"
    );
    assert_eq!(
        ann.get("/api/me").await.status(),
        200,
        "this one has a new session"
    );
    let (http, _) = Client::anonymous(&server);
    let old = http
        .post(server.url("/api/auth/login"))
        .json(&json!({"login": "ann", "password": password()}))
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), 401);
    let new = http
        .post(server.url("/api/auth/login"))
        .json(&json!({"login": "ann", "password": "new secret 123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(new.status(), 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_attempts_are_throttled_per_account() {
    let server = TestServer::start().await;
    server.register("ann").await;
    let (http, _) = Client::anonymous(&server);
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let res = http
            .post(server.url("/api/auth/login"))
            .json(&json!({"login": "ann", "password": "guess guess"}))
            .send()
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
        if res.status() == 429 {
            assert!(res.headers().get("retry-after").is_some());
        }
    }
    assert_eq!(&statuses[..10], &[401; 10]);
    assert_eq!(statuses[10], 429);
    // Even the right password is refused while throttled.
    let res = http
        .post(server.url("/api/auth/login"))
        .json(&json!({"login": "ann", "password": password()}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_create_search_paginate_join_and_leave() {
    let server = TestServer::start().await;
    let ann = server.register("ann").await;
    let bob = server.register("bob").await;
    let general = ann.create_room("General").await;
    assert!(general.joined);
    assert_eq!(general.member_count, 1);
    let res = bob.post("/api/rooms", json!({"name": "  general "})).await;
    assert_eq!(error_code(res).await, (409, "conflict".into()));
    let res = bob.post("/api/rooms", json!({"name": ""})).await;
    assert_eq!(error_code(res).await, (422, "validation".into()));
    for i in 0..7 {
        ann.create_room(&format!("topic {i}")).await;
    }
    // Bob's discover scope pages through all 8 rooms, 3 at a time, without repeats.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = "/api/rooms?scope=discover&limit=3".to_string();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page: RoomPage = bob.get(&path).await.json().await.unwrap();
        assert!(page.rooms.len() <= 3);
        seen.extend(page.rooms.iter().map(|r| r.name.clone()));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen.len(), 8);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 8);
    let mut sorted = seen.clone();
    sorted.sort_by_key(|s| s.to_lowercase());
    assert_eq!(seen, sorted);

    let page: RoomPage = bob
        .get("/api/rooms?scope=discover&q=TOPIC%203")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        page.rooms
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        ["topic 3"]
    );
    let page: RoomPage = bob
        .get("/api/rooms?scope=all&q=%25")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        page.rooms.is_empty(),
        "LIKE wildcards are matched literally"
    );
    let page: RoomPage = bob
        .get("/api/rooms?scope=joined")
        .await
        .json()
        .await
        .unwrap();
    assert!(page.rooms.is_empty());

    bob.join(&general).await;
    let page: RoomPage = bob.get("/api/rooms").await.json().await.unwrap();
    assert_eq!(page.rooms.len(), 1);
    assert_eq!(page.rooms[0].member_count, 2);
    let room: Room = bob
        .get(&format!("/api/rooms/{}", general.id))
        .await
        .json()
        .await
        .unwrap();
    assert!(room.joined);
    let members: Vec<Member> = bob
        .get(&format!("/api/rooms/{}/members", general.id))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        members
            .iter()
            .map(|m| m.user.username.as_str())
            .collect::<Vec<_>>(),
        ["ann", "bob"]
    );

    let res = bob
        .post(&format!("/api/rooms/{}/leave", general.id), json!({}))
        .await;
    assert_eq!(res.status(), 204);
    assert_eq!(
        bob.get(&format!("/api/rooms/{}/messages", general.id))
            .await
            .status(),
        403
    );
    let missing = format!("/api/rooms/{}/join", uuid::Uuid::now_v7());
    assert_eq!(
        error_code(bob.post(&missing, json!({})).await).await,
        (404, "not_found".into())
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_pages_have_no_skips_or_duplicates_while_messages_arrive() {
    let server = TestServer::start_with(|c| {
        c.send_rate = 10_000;
        c.frame_rate = 10_000;
    })
    .await;
    let ann = server.register("ann").await;
    let bob = server.register("bob").await;
    let room = ann.create_room("general").await;
    bob.join(&room).await;
    let mut a = ann.ws().await;
    for i in 1..=60 {
        a.say(&room, &format!("m{i}"), &format!("message {i}"))
            .await;
    }
    // Bob pages backwards while Ann keeps talking.
    let writer_room = room.clone();
    let writer = tokio::spawn(async move {
        for i in 61..=120 {
            a.say(&writer_room, &format!("m{i}"), &format!("message {i}"))
                .await;
        }
    });
    let first: MessagePage = bob
        .get(&format!("/api/rooms/{}/messages?limit=7", room.id))
        .await
        .json()
        .await
        .unwrap();
    let mut seqs: Vec<i64> = first.messages.iter().map(|m| m.seq).collect();
    let mut before = seqs[0];
    let mut has_more = first.has_more;
    while has_more {
        let page: MessagePage = bob
            .get(&format!(
                "/api/rooms/{}/messages?limit=7&before_seq={before}",
                room.id
            ))
            .await
            .json()
            .await
            .unwrap();
        let page_seqs: Vec<i64> = page.messages.iter().map(|m| m.seq).collect();
        assert!(
            page_seqs.windows(2).all(|w| w[0] < w[1]),
            "ascending within a page"
        );
        before = page_seqs[0];
        let mut all = page_seqs;
        all.extend(seqs);
        seqs = all;
        has_more = page.has_more;
    }
    writer.await.unwrap();
    let top = *seqs.last().unwrap();
    // Seq 1 is Bob's joining (history holds messages only).
    assert_eq!(
        seqs,
        (2..=top).collect::<Vec<_>>(),
        "every message's seq exactly once"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_markers_drive_unread_counts() {
    let server = TestServer::start().await;
    let ann = server.register("ann").await;
    let bob = server.register("bob").await;
    let room = ann.create_room("general").await;
    let mut a = ann.ws().await;
    a.say(&room, "before", "before bob joined").await;
    bob.join(&room).await;
    for i in 0..3 {
        a.say(&room, &format!("m{i}"), "hello").await;
    }
    let rooms: RoomPage = bob.get("/api/rooms").await.json().await.unwrap();
    // Seq 1 is Ann's first message, 2 Bob's joining, 3-5 the messages after it.
    assert_eq!(
        (rooms.rooms[0].unread, rooms.rooms[0].last_seq),
        (3, 5),
        "joining starts after the latest message"
    );
    let rooms: RoomPage = ann.get("/api/rooms").await.json().await.unwrap();
    assert_eq!(rooms.rooms[0].unread, 0, "your own messages are not unread");
    let res = bob
        .post(&format!("/api/rooms/{}/read", room.id), json!({"seq": 4}))
        .await;
    assert_eq!(res.status(), 204);
    let rooms: RoomPage = bob.get("/api/rooms").await.json().await.unwrap();
    assert_eq!(
        (rooms.rooms[0].unread, rooms.rooms[0].last_read_seq),
        (1, 4)
    );
    // Markers never move back.
    bob.post(&format!("/api/rooms/{}/read", room.id), json!({"seq": 1}))
        .await;
    let rooms: RoomPage = bob.get("/api/rooms").await.json().await.unwrap();
    assert_eq!(rooms.rooms[0].last_read_seq, 4);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    assert_eq!(
        http.get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        http.get(server.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let home = http.get(server.url("/")).send().await.unwrap();
    assert_eq!(home.status(), 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_keys_are_generated_only_in_the_embedded_setup() {
    let server = TestServer::start().await;
    let key = server.dir.path().join("jwt-ed25519.pem");
    assert!(key.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    server.stop().await;

    let dir = tempfile::tempdir().unwrap();
    let mut config = confab_origin::Config::for_tests(dir.path());
    config.database_url = Some("postgres://127.0.0.1/none".into());
    let err = confab_origin::Application::build(config)
        .await
        .err()
        .expect("refused");
    assert!(
        format!("{err:#}").contains("CONFAB_JWT_PRIVATE_KEY_FILE"),
        "{err:#}"
    );
    assert!(!dir.path().join("jwt-ed25519.pem").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_fails_readiness_before_closing() {
    let mut server = TestServer::start_with(|c| c.drain_secs = 2).await;
    let ann = server.register("ann").await;
    let mut ws = ann.ws().await;
    let http = reqwest::Client::new();
    let url = server.url("/readyz");
    server.signal_stop();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        http.get(&url).send().await.unwrap().status(),
        503,
        "not ready while draining"
    );
    ws.send(serde_json::json!({"type": "ping"})).await;
    assert!(
        matches!(ws.next().await, confab_shared::protocol::ServerFrame::Pong),
        "sockets still served"
    );
    let frame = ws.closed().await.expect("closed after the drain");
    assert_eq!(u16::from(frame.code), 1001);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_exported_in_prometheus_format() {
    let server = TestServer::start_with(|c| c.metrics_token = Some("metrics-token".into())).await;
    let ann = server.register("ann").await;
    let room = ann.create_room("measured").await;
    let mut ws = ann.ws().await;
    ws.subscribe(&room, None).await;
    ws.say(&room, "m1", "count me").await;
    ann.get(&format!("/api/rooms/{}/messages", room.id)).await;
    let text = reqwest::Client::new()
        .get(server.url("/metrics"))
        .bearer_auth("metrics-token")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "confab_ws_connections",
        "confab_ws_frames_in_total",
        "confab_ws_frames_out_total",
        "confab_send_ack_seconds_bucket",
        "confab_broker_publish_seconds_bucket",
        "confab_fanout_seconds_bucket",
        "confab_persist_batch_size_bucket",
        "confab_persist_lag_seconds_bucket",
        "confab_db_seconds_bucket{op=\"append\"",
        "confab_db_seconds_bucket{op=\"messages_before\"",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    server.stop().await;
}
