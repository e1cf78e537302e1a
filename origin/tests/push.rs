//! Web Push end to end: the real server, real WebSockets, and a loopback push-service fixture
//! that decrypts what it receives with the subscription's private keys (as a browser would,
//! RFC 8291 via the `ece` crate) and checks the VAPID JWT's signature with the server's
//! public key (RFC 8292). Also: who gets what (levels, attention), coalescing, the close on
//! read, 410, refused endpoints, and the e-mail digest with a loopback SMTP sink.
#![allow(clippy::unwrap_used)]

mod common;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::{Client, TestServer, Ws, WAIT};
use confab_shared::api::Room;
use confab_shared::notify::PushPayload;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Mutex};

/// One push as the fixture received it, decrypted and checked.
#[derive(Debug)]
struct Received {
    /// The subscription it was for (the endpoint's last path segment).
    name: String,
    payload: PushPayload,
    ttl: Option<String>,
    urgency: Option<String>,
}

/// A browser's side of a subscription: the keys the push service's client decrypts with.
struct BrowserKeys {
    pair: Box<dyn ece::crypto::LocalKeyPair>,
    auth: Vec<u8>,
}

#[derive(Clone)]
struct Fixture {
    keys: Arc<Mutex<std::collections::HashMap<String, Arc<BrowserKeys>>>>,
    /// Subscriptions whose pushes the fixture answers with 410.
    gone: Arc<Mutex<std::collections::HashSet<String>>>,
    /// Subscriptions whose pushes the fixture never answers (it reports `hung:NAME`).
    hang: Arc<Mutex<std::collections::HashSet<String>>>,
    /// The server's VAPID public key (base64url), once known.
    vapid: Arc<Mutex<Option<String>>>,
    origin: String,
    out: mpsc::Sender<Received>,
}

/// The loopback push service; returns its address and the pushes it decrypted.
async fn push_service() -> (Fixture, mpsc::Receiver<Received>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel(256);
    let fixture = Fixture {
        keys: Arc::default(),
        gone: Arc::default(),
        hang: Arc::default(),
        vapid: Arc::default(),
        origin: format!("http://{addr}"),
        out: tx,
    };
    let app = axum::Router::new()
        .route("/push/{name}", axum::routing::post(receive))
        .with_state(fixture.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (fixture, rx)
}

async fn receive(
    State(f): State<Fixture>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let header = |n: &str| headers.get(n).map(|v| v.to_str().unwrap().to_owned());
    // VAPID: `vapid t=JWT, k=PUBLIC KEY`, signed by the key the server publishes.
    let auth = header("authorization").expect("an Authorization header");
    let rest = auth.strip_prefix("vapid ").expect("vapid scheme");
    let mut t = None;
    let mut k = None;
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("t=") {
            t = Some(v.to_owned());
        } else if let Some(v) = part.strip_prefix("k=") {
            k = Some(v.to_owned());
        }
    }
    let (t, k) = (t.expect("t="), k.expect("k="));
    let published = f
        .vapid
        .lock()
        .await
        .clone()
        .expect("the test fetched the key");
    assert_eq!(k, published, "k is the server's published VAPID key");
    let point = URL_SAFE_NO_PAD.decode(&k).unwrap();
    assert_eq!(point.len(), 65);
    let key = jsonwebtoken::DecodingKey::from_ec_components(
        &URL_SAFE_NO_PAD.encode(&point[1..33]),
        &URL_SAFE_NO_PAD.encode(&point[33..65]),
    )
    .unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&[f.origin.as_str()]);
    validation.set_required_spec_claims(&["exp", "aud", "sub"]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(&t, &key, &validation)
        .expect("the VAPID JWT verifies with the published key");
    assert!(
        claims.claims["sub"]
            .as_str()
            .unwrap()
            .starts_with("mailto:"),
        "{:?}",
        claims.claims
    );
    assert_eq!(header("content-encoding").as_deref(), Some("aes128gcm"));

    if f.hang.lock().await.contains(&name) {
        let _ = f
            .out
            .send(Received {
                name: format!("hung:{name}"),
                payload: PushPayload::Close {
                    id: "hung".into(),
                    tag: "hung".into(),
                    room: confab_shared::ids::RoomId(uuid::Uuid::nil()),
                },
                ttl: None,
                urgency: None,
            })
            .await;
        std::future::pending::<()>().await;
    }
    if f.gone.lock().await.contains(&name) {
        let _ = f
            .out
            .send(Received {
                name,
                payload: PushPayload::Close {
                    id: "gone".into(),
                    tag: "gone".into(),
                    room: confab_shared::ids::RoomId(uuid::Uuid::nil()),
                },
                ttl: None,
                urgency: None,
            })
            .await;
        return StatusCode::GONE;
    }
    let keys = f
        .keys
        .lock()
        .await
        .get(&name)
        .cloned()
        .expect("known subscription");
    let components = keys.pair.raw_components().unwrap();
    let plain = ece::decrypt(&components, &keys.auth, &body).expect("decrypts as a browser would");
    let payload: PushPayload = serde_json::from_slice(&plain).unwrap();
    let _ = f
        .out
        .send(Received {
            name,
            payload,
            ttl: header("ttl"),
            urgency: header("urgency"),
        })
        .await;
    StatusCode::CREATED
}

impl Fixture {
    /// Makes a browser subscription `name` for `client`; returns its endpoint.
    async fn subscribe(&self, client: &Client, name: &str) -> String {
        let key: serde_json::Value = client.get("/api/push/key").await.json().await.unwrap();
        *self.vapid.lock().await = Some(key["key"].as_str().unwrap().to_owned());
        let (pair, auth) = ece::generate_keypair_and_auth_secret().unwrap();
        let p256dh = URL_SAFE_NO_PAD.encode(pair.pub_as_raw().unwrap());
        let endpoint = format!("{}/push/{name}", self.origin);
        self.keys.lock().await.insert(
            name.to_owned(),
            Arc::new(BrowserKeys {
                pair,
                auth: auth.to_vec(),
            }),
        );
        let res = client
            .post(
                "/api/push/subscriptions",
                json!({"endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": URL_SAFE_NO_PAD.encode(auth)}}),
            )
            .await;
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
        endpoint
    }

    fn host_port(&self) -> String {
        self.origin.trim_start_matches("http://").to_owned()
    }
}

async fn next_push(rx: &mut mpsc::Receiver<Received>) -> Received {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("a push arrives")
        .unwrap()
}

/// Asserts no push arrives for `d` (used only after an ordering check made sure that what
/// should have come before has been handled).
async fn no_push_for(rx: &mut mpsc::Receiver<Received>, d: Duration) {
    if let Ok(Some(p)) = tokio::time::timeout(d, rx.recv()).await {
        panic!("expected no push, got {p:?}");
    }
}

async fn server_with(fixture: &Fixture, coalesce_ms: u64) -> TestServer {
    let allow = fixture.host_port();
    TestServer::start_with(move |c| {
        c.push.allowlist = allow;
        c.push.coalesce_ms = coalesce_ms;
        c.push.backoff_ms = 50;
    })
    .await
}

async fn dm(from: &Client, to: &Client) -> Room {
    let res = from.post("/api/dms", json!({"users": [to.me.id]})).await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

fn message(p: &Received) -> (&str, Option<&str>, u32, &confab_shared::ids::RoomId) {
    match &p.payload {
        PushPayload::Message {
            author,
            excerpt,
            count,
            room,
            ..
        } => (author.as_str(), excerpt.as_deref(), *count, room),
        other => panic!("expected a message push, got {other:?}"),
    }
}

async fn subscriptions_stored(server: &TestServer) -> i64 {
    let url = format!("sqlite://{}", server.dir.path().join("confab.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM push_subscriptions")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    n
}

/// The tab of this socket is hidden, and the server has read that (the pong to a later ping
/// says so).
async fn hide_tab(ws: &mut Ws) {
    ws.send(json!({"type": "visibility", "visible": false}))
        .await;
    ws.send(json!({"type": "ping"})).await;
    ws.expect(|f| matches!(f, confab_shared::protocol::ServerFrame::Pong))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dm_to_someone_with_no_tab_arrives_encrypted_and_signed() {
    let (fixture, mut pushes) = push_service().await;
    let server = server_with(&fixture, 300).await;
    let ann = server.register("ann").await;
    let bob = server.register("bob").await;
    fixture.subscribe(&bob, "bob-laptop").await;
    let room = dm(&ann, &bob).await;
    let mut ws = ann.ws().await;
    ws.say(&room, "m1", "hello bob, lunch at noon?").await;

    let push = next_push(&mut pushes).await;
    assert_eq!(push.name, "bob-laptop");
    let (author, excerpt, count, push_room) = message(&push);
    assert_eq!(author, "ann");
    assert_eq!(excerpt, Some("hello bob, lunch at noon?"));
    assert_eq!(count, 1);
    assert_eq!(*push_room, room.id);
    assert_eq!(push.urgency.as_deref(), Some("high"));
    assert_eq!(push.ttl.as_deref(), Some("86400"));

    // Previews off: the room and the author, no text.
    let res = bob.patch("/api/me", json!({"push_previews": false})).await;
    assert_eq!(res.status(), 200);
    let me: serde_json::Value = res.json().await.unwrap();
    assert_eq!(me["push_previews"], false);
    tokio::time::sleep(Duration::from_millis(350)).await;
    ws.say(&room, "m2", "the secret plan").await;
    let push = next_push(&mut pushes).await;
    let (author, excerpt, _, _) = message(&push);
    assert_eq!((author, excerpt), ("ann", None));
    server.stop().await;
}

/// Waits until every job queued before now has been decided on: carl (a member with a
/// subscription, not looking) is mentioned, and the jobs are handled in order.
async fn settle(ws: &mut common::Ws, room: &Room, pushes: &mut mpsc::Receiver<Received>, n: u32) {
    ws.say(room, &format!("marker-{n}"), &format!("@carl marker {n}"))
        .await;
    let push = next_push(pushes).await;
    assert_eq!(
        push.name, "carl",
        "nothing for bob before the marker: {push:?}"
    );
    assert_eq!(message(&push).1, Some(format!("@carl marker {n}").as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_open_and_visible_is_not_notified_and_a_hidden_one_is() {
    let (fixture, mut pushes) = push_service().await;
    let server = server_with(&fixture, 0).await;
    let ann = server.register("ann").await;
    let bob = server.register("bob").await;
    let carl = server.register("carl").await;
    fixture.subscribe(&bob, "bob").await;
    fixture.subscribe(&carl, "carl").await;
    let room = ann.create_room("plans").await;
    bob.join(&room).await;
    carl.join(&room).await;
    let mut bob_ws = bob.ws().await;
    bob_ws.subscribe(&room, None).await;
    let mut ws = ann.ws().await;
    ws.say(&room, "m1", "@bob are you looking?").await;
    settle(&mut ws, &room, &mut pushes, 1).await;
    // Bob hides the tab: now he gets it.
    hide_tab(&mut bob_ws).await;
    ws.say(&room, "m2", "@bob now you are not").await;
    let push = next_push(&mut pushes).await;
    assert_eq!(push.name, "bob");
    assert_eq!(message(&push).1, Some("@bob now you are not"));
    // Visible again, and then the socket closes: closing ends the looking too.
    bob_ws
        .send(json!({"type": "visibility", "visible": true}))
        .await;
    bob_ws.send(json!({"type": "ping"})).await;
    bob_ws
        .expect(|f| matches!(f, confab_shared::protocol::ServerFrame::Pong))
        .await;
    ws.say(&room, "m3", "@bob looking again").await;
    settle(&mut ws, &room, &mut pushes, 2).await;
    drop(bob_ws);
    // The server notices the closed socket at once; until then mentions are (rightly) skipped.
    let mut n = 3;
    'gone: loop {
        assert!(n < 40, "a closed socket stops counting as looking");
        ws.say(&room, &format!("m{n}"), &format!("@bob @carl gone {n}"))
            .await;
        for _ in 0..2 {
            match tokio::time::timeout(Duration::from_millis(500), pushes.recv()).await {
                Ok(Some(p)) if p.name == "bob" => break 'gone,
                _ => {}
            }
        }
        n += 1;
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn levels_decide_none_gets_nothing_mentions_only_mentions() {
    let (fixture, mut pushes) = push_service().await;
    let server = server_with(&fixture, 0).await;
    let ann = server.register("ann").await;
    let bob = server.register("bob").await;
    let carl = server.register("carl").await;
    fixture.subscribe(&bob, "bob").await;
    fixture.subscribe(&carl, "carl").await;
    let room = ann.create_room("general").await;
    bob.join(&room).await;
    carl.join(&room).await;
    let mut ws = ann.ws().await;

    // A room's default is `mentions`.
    ws.say(&room, "m1", "plain chatter").await;
    settle(&mut ws, &room, &mut pushes, 1).await;
    ws.say(&room, "m2", "@bob a mention").await;
    let push = next_push(&mut pushes).await;
    assert_eq!(
        (push.name.as_str(), message(&push).1),
        ("bob", Some("@bob a mention"))
    );

    let level = |l: &'static str| {
        let bob = &bob;
        let path = format!("/api/rooms/{}/notifications", room.id);
        async move {
            let res = bob.patch(&path, json!({"level": l})).await;
            assert_eq!(res.status(), 200);
        }
    };
    level("none").await;
    ws.say(&room, "m3", "@bob muted mention").await;
    settle(&mut ws, &room, &mut pushes, 2).await;
    level("all").await;
    ws.say(&room, "m4", "plain but all").await;
    let push = next_push(&mut pushes).await;
    assert_eq!(
        (push.name.as_str(), message(&push).1),
        ("bob", Some("plain but all"))
    );

    let settings: serde_json::Value = bob.get("/api/me/notifications").await.json().await.unwrap();
    assert_eq!(settings["levels"][0]["level"], "all");
    assert_eq!(settings["push_enabled"], true);

    // A non-member cannot set a level; a level that is not one is refused.
    let dan = server.register("dan").await;
    let res = dan
        .patch(
            &format!("/api/rooms/{}/notifications", room.id),
            json!({"level": "all"}),
        )
        .await;
    assert_eq!(res.status(), 403);
    let res = bob
        .patch(
            &format!("/api/rooms/{}/notifications", room.id),
            json!({"level": "loud"}),
        )
        .await;
    assert_eq!(res.status(), 400, "not a level: our bad-request answer");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_quick_messages_give_one_or_two_pushes_and_reading_closes() {
    let (fixture, mut pushes) = push_service().await;
    let server = server_with(&fixture, 3000).await;
    let ann = server.register("ann").await;
    let bob = server.register("bob").await;
    fixture.subscribe(&bob, "bob").await;
    let room = dm(&ann, &bob).await;
    let mut ws = ann.ws().await;
    let mut last_seq = 0;
    for i in 1..=10 {
        last_seq = ws
            .say(&room, &format!("m{i}"), &format!("message {i}"))
            .await
            .1;
    }
    let mut got = vec![next_push(&mut pushes).await];
    // The window's end brings the merged push (with the newest message and the count).
    while message(got.last().unwrap()).2 < 10 {
        got.push(next_push(&mut pushes).await);
        assert!(
            got.len() <= 2,
            "at most two pushes for ten messages: {got:?}"
        );
    }
    let (_, excerpt, count, _) = message(got.last().unwrap());
    assert_eq!((excerpt, count), (Some("message 10"), 10));
    no_push_for(&mut pushes, Duration::from_millis(3300)).await;

    // Bob reads the room on another device: the notification is closed.
    let res = bob
        .post(
            &format!("/api/rooms/{}/read", room.id),
            json!({"seq": last_seq}),
        )
        .await;
    assert_eq!(res.status(), 204);
    match next_push(&mut pushes).await.payload {
        PushPayload::Close { room: r, tag, .. } => {
            assert_eq!(r, room.id);
            assert_eq!(tag, confab_shared::notify::room_tag(room.id));
        }
        other => panic!("expected a close, got {other:?}"),
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_410_removes_the_subscription() {
    let (fixture, mut pushes) = push_service().await;
    let server = server_with(&fixture, 0).await;
    let ann = server.register("ann").await;
    let bob = server.register("bob").await;
    fixture.subscribe(&bob, "old-phone").await;
    fixture.gone.lock().await.insert("old-phone".into());
    fixture.subscribe(&bob, "laptop").await;
    assert_eq!(subscriptions_stored(&server).await, 2);
    let room = dm(&ann, &bob).await;
    let mut ws = ann.ws().await;
    ws.say(&room, "m1", "one").await;
    let mut names = vec![
        next_push(&mut pushes).await.name,
        next_push(&mut pushes).await.name,
    ];
    names.sort();
    assert_eq!(names, ["laptop", "old-phone"]);
    let deadline = tokio::time::Instant::now() + WAIT;
    while subscriptions_stored(&server).await != 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the gone one is removed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ws.say(&room, "m2", "two").await;
    let push = next_push(&mut pushes).await;
    assert_eq!(push.name, "laptop");
    no_push_for(&mut pushes, Duration::from_millis(300)).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_that_are_not_push_services_are_refused_and_nothing_is_stored() {
    let (fixture, _pushes) = push_service().await;
    let server = server_with(&fixture, 0).await;
    let bob = server.register("bob").await;
    let (pair, auth) = ece::generate_keypair_and_auth_secret().unwrap();
    let keys = json!({"p256dh": URL_SAFE_NO_PAD.encode(pair.pub_as_raw().unwrap()), "auth": URL_SAFE_NO_PAD.encode(auth)});
    for endpoint in [
        "https://evil.example.com/push/1",
        "http://fcm.googleapis.com/fcm/send/1",
        "https://10.0.0.7/push",
        "https://127.0.0.1/push",
        "https://localhost/push",
        "https://169.254.169.254/latest/meta-data",
        "https://[::ffff:127.0.0.1]/push",
        // Loopback, but not the allowlisted port.
        "http://127.0.0.1:1/push",
        "file:///etc/passwd",
    ] {
        let res = bob
            .post(
                "/api/push/subscriptions",
                json!({"endpoint": endpoint, "keys": keys}),
            )
            .await;
        assert_eq!(res.status(), 422, "{endpoint}");
    }
    let res = bob
        .post(
            "/api/push/subscriptions",
            json!({"endpoint": format!("{}/push/x", fixture.origin), "keys": {"p256dh": "AAAA", "auth": "AAAA"}}),
        )
        .await;
    assert_eq!(res.status(), 422, "bad keys");
    assert_eq!(subscriptions_stored(&server).await, 0);

    // A good one is stored; logging out of that browser removes it.
    fixture.subscribe(&bob, "bob").await;
    assert_eq!(subscriptions_stored(&server).await, 1);
    let res = bob.post("/api/auth/logout", json!({})).await;
    assert_eq!(res.status(), 204);
    assert_eq!(subscriptions_stored(&server).await, 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_pushes() {
    let (fixture, mut pushes) = push_service().await;
    let allow = fixture.host_port();
    let server = TestServer::start_with(move |c| {
        c.push.allowlist = allow;
        c.push.coalesce_ms = 0;
        c.metrics_token = Some("metrics-token-for-tests".into());
    })
    .await;
    let ann = server.register("ann").await;
    let bob = server.register("bob").await;
    fixture.subscribe(&bob, "bob").await;
    let room = dm(&ann, &bob).await;
    let mut ws = ann.ws().await;
    ws.say(&room, "m1", "count me").await;
    next_push(&mut pushes).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let text = reqwest::Client::new()
            .get(server.url("/metrics"))
            .bearer_auth("metrics-token-for-tests")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if text.contains("confab_push_sent_total") && text.contains("confab_push_queue_lag_seconds")
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop().await;
}

/// A loopback SMTP server that accepts every message; gives the raw messages it received.
async fn smtp_sink() -> (SocketAddr, mpsc::Receiver<String>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let (read, mut write) = sock.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 sink ESMTP\r\n").await.unwrap();
                while let Ok(Some(line)) = lines.next_line().await {
                    let verb = line
                        .split(' ')
                        .next()
                        .unwrap_or_default()
                        .to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250 sink\r\n",
                        "DATA" => {
                            write.write_all(b"354 go on\r\n").await.unwrap();
                            let mut message = String::new();
                            while let Ok(Some(l)) = lines.next_line().await {
                                if l == "." {
                                    break;
                                }
                                message.push_str(&l);
                                message.push('\n');
                            }
                            tx.send(message).await.unwrap();
                            b"250 queued\r\n"
                        }
                        "QUIT" => {
                            write.write_all(b"221 bye\r\n").await.unwrap();
                            return;
                        }
                        _ => b"250 ok\r\n",
                    };
                    write.write_all(reply).await.unwrap();
                }
            });
        }
    });
    (addr, rx)
}

/// A quoted-printable body with its soft breaks joined.
fn unfold(message: &str) -> String {
    message.replace("=\n", "").replace("=3D", "=")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_digest_for_two_unread_mentions_and_none_for_a_read_one() {
    // The accounts first, without mail (with SMTP, registration goes by confirmation).
    let first = TestServer::start().await;
    let dir = first.dir.clone();
    let ann = first.register("ann").await;
    first.register("bob").await;
    first.register("carl").await;
    let room = ann.create_room("general").await;
    Client::login_at(&first.base, "bob").await.join(&room).await;
    Client::login_at(&first.base, "carl")
        .await
        .join(&room)
        .await;
    first.stop().await;

    let (smtp, mut mails) = smtp_sink().await;
    let server = TestServer::start_in(dir, |c| {
        c.smtp_url = Some(format!("smtp://{smtp}"));
        c.digest_delay_secs = 1;
    })
    .await;
    let ann = Client::login_at(&server.base, "ann").await;
    let bob = Client::login_at(&server.base, "bob").await;
    let carl = Client::login_at(&server.base, "carl").await;
    let mut ws = ann.ws().await;
    ws.say(&room, "m1", "@bob first question").await;
    ws.say(&room, "m2", "@bob second question").await;
    let (_, seq) = ws.say(&room, "m3", "@carl read this soon").await;
    // Carl reads it at once, well before the delay: it is never mailed.
    let res = carl
        .post(&format!("/api/rooms/{}/read", room.id), json!({"seq": seq}))
        .await;
    assert_eq!(res.status(), 204);

    let mail = unfold(
        &tokio::time::timeout(WAIT, mails.recv())
            .await
            .expect("a digest arrives")
            .unwrap(),
    );
    assert!(mail.contains("To: bob@example.com"), "{mail}");
    assert!(
        mail.contains("first question") && mail.contains("second question"),
        "{mail}"
    );
    assert!(!mail.contains("read this soon"), "{mail}");
    let link = mail
        .split_whitespace()
        .find(|w| w.contains("/api/notifications/email/off?token="))
        .expect("a one-click link to stop these e-mails")
        .to_owned();
    // Rounds run every second: two more pass with nothing for carl, nor again for bob.
    if let Ok(Some(more)) = tokio::time::timeout(Duration::from_millis(2500), mails.recv()).await {
        panic!("one digest only, none for what was read: {more}");
    }
    let res = reqwest::get(&link).await.unwrap();
    assert_eq!(res.status(), 200);
    let me: serde_json::Value = bob.get("/api/me").await.json().await.unwrap();
    assert_eq!(me["email_notifications"], false);
    server.stop().await;
}

// ---- The scaled-out shape: two instances, Redis, PostgreSQL, `confab worker` processes ----

fn redis_url() -> String {
    std::env::var("CONFAB_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

async fn fresh_postgres() -> String {
    use sqlx::Connection;
    let admin = std::env::var("CONFAB_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = format!("confab_push_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let mut url = url::Url::parse(&admin).unwrap();
    url.set_path(&name);
    url.to_string()
}

/// A Redis database of its own (emptied first), so that nothing another test left in the
/// persistence stream (entries of rooms this test's database does not have) is in the way of
/// this test's workers.
async fn own_redis(index: u8) -> String {
    let mut url = url::Url::parse(&redis_url()).unwrap();
    url.set_path(&format!("/{index}"));
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let () = redis::cmd("FLUSHDB").query_async(&mut conn).await.unwrap();
    url.to_string()
}

struct Scaled {
    db: String,
    redis: String,
    dir: tempfile::TempDir,
    stream: String,
    allow: String,
}

impl Scaled {
    /// Everything the scaled-out shape needs, on Redis database `redis_index` (one per test).
    async fn new(fixture: &Fixture, redis_index: u8) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("jwt.pem"),
            confab_origin::auth::tokens::generate_pem().unwrap(),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("vapid.pem"),
            confab_origin::notify::vapid::generate_pem().unwrap(),
        )
        .unwrap();
        Self {
            db: fresh_postgres().await,
            redis: own_redis(redis_index).await,
            stream: format!("confab:test-notify:{}", uuid::Uuid::new_v4().simple()),
            allow: fixture.host_port(),
            dir,
        }
    }

    async fn instance(&self) -> TestServer {
        let (db, redis, dir, stream, allow) = (
            self.db.clone(),
            self.redis.clone(),
            self.dir.path().to_owned(),
            self.stream.clone(),
            self.allow.clone(),
        );
        TestServer::start_with(move |c| {
            c.database_url = Some(db);
            c.redis_url = Some(redis);
            c.jwt_private_key_file = Some(dir.join("jwt.pem"));
            c.push.vapid_private_key_file = Some(dir.join("vapid.pem"));
            c.push.allowlist = allow;
            c.push.stream = stream;
        })
        .await
    }

    /// A real `confab worker` process.
    fn worker(&self, name: &str) -> tokio::process::Child {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_confab"))
            .arg("worker")
            .env("CONFAB_DATABASE_URL", &self.db)
            .env("CONFAB_REDIS_URL", &self.redis)
            .env("CONFAB_WORKER_NAME", name)
            .env("CONFAB_WORKER_CLAIM_IDLE_MS", "1000")
            .env(
                "CONFAB_VAPID_PRIVATE_KEY_FILE",
                self.dir.path().join("vapid.pem"),
            )
            .env("CONFAB_PUSH_ALLOWLIST", &self.allow)
            .env("CONFAB_PUSH_STREAM", &self.stream)
            .env("CONFAB_PUSH_COALESCE_MS", "0")
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn across_instances_with_workers_and_a_worker_killed_mid_send() {
    let (fixture, mut pushes) = push_service().await;
    let scaled = Scaled::new(&fixture, 11).await;
    let a = scaled.instance().await;
    let b = scaled.instance().await;
    let mut w1 = scaled.worker("push-w1");
    let ann = a.register("ann").await;
    let bob = b.register("bob").await;
    let carl = a.register("carl").await;
    fixture.subscribe(&bob, "bob").await;
    fixture.subscribe(&carl, "carl").await;
    let room = ann.create_room("plans").await;
    bob.join(&room).await;
    carl.join(&room).await;

    // Bob looks at the room on instance B: a mention posted on A is not pushed to him.
    let mut bob_ws = bob.ws().await;
    bob_ws.subscribe(&room, None).await;
    let mut ws = ann.ws().await;
    ws.say(&room, "m1", "@bob are you there").await;
    settle(&mut ws, &room, &mut pushes, 1).await;
    hide_tab(&mut bob_ws).await;
    ws.say(&room, "m2", "@bob hidden now").await;
    let push = next_push(&mut pushes).await;
    assert_eq!(
        (push.name.as_str(), message(&push).1),
        ("bob", Some("@bob hidden now"))
    );

    // The worker is killed (SIGKILL) while its push hangs at the push service; another
    // worker takes the entry over and sends it: nothing queued is lost.
    fixture.hang.lock().await.insert("bob".into());
    let (_, _) = ws.say(&room, "m3", "@bob survive this").await;
    let hung = next_push(&mut pushes).await;
    assert_eq!(hung.name, "hung:bob");
    w1.kill().await.unwrap();
    fixture.hang.lock().await.clear();
    let _w2 = scaled.worker("push-w2");
    let push = next_push(&mut pushes).await;
    assert_eq!(
        (push.name.as_str(), message(&push).1),
        ("bob", Some("@bob survive this"))
    );
    drop(bob_ws);
    a.stop().await;
    b.stop().await;
}

/// Entries ever added to the stream (Redis counts them past the workers' deletions).
async fn entries_added(redis: &str, stream: &str) -> i64 {
    let client = redis::Client::open(redis).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let info: std::collections::HashMap<String, redis::Value> = redis::cmd("XINFO")
        .arg("STREAM")
        .arg(stream)
        .query_async(&mut conn)
        .await
        .unwrap();
    redis::from_redis_value(&info["entries-added"]).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaled_out_a_message_is_queued_once_by_its_worker_and_only_where_someone_can_be_pushed() {
    let (fixture, mut pushes) = push_service().await;
    let scaled = Scaled::new(&fixture, 12).await;
    let a = scaled.instance().await;
    let _w = scaled.worker("push-queue-w1");
    let ann = a.register("ann").await;
    let bob = a.register("bob").await;
    let dave = a.register("dave").await;
    fixture.subscribe(&bob, "bob").await;
    let quiet = ann.create_room("quiet").await;
    dave.join(&quiet).await;
    let plans = ann.create_room("plans").await;
    bob.join(&plans).await;

    // Nobody in "quiet" has a push subscription: its message is stored and queues nothing.
    // The one in "plans" is queued once, by the worker that stored it (stored in order, so
    // the first message's decision is made before the second's job is queued).
    let mut ws = ann.ws().await;
    ws.say(&quiet, "q1", "@dave nobody can be pushed here")
        .await;
    ws.say(&plans, "p1", "@bob this one is pushed").await;
    let push = next_push(&mut pushes).await;
    assert_eq!(
        (push.name.as_str(), message(&push).1),
        ("bob", Some("@bob this one is pushed"))
    );
    assert_eq!(entries_added(&scaled.redis, &scaled.stream).await, 1);
    let pool = sqlx::PgPool::connect(&scaled.db).await.unwrap();
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, 2, "both messages are stored");
    pool.close().await;
    a.stop().await;
}
