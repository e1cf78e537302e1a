//! Uploads, file serving and link previews on the origin, end to end with the real server. The
//! cross-tier contract (origin on disk and on S3, the edge worker) is contract/contract.test.mjs;
//! this file covers what only the origin does: attachments cited by `send` over the WebSocket,
//! and the preview fetcher against loopback fixtures.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Client, TestServer};
use confab_shared::events::RoomEvent;
use confab_shared::protocol::{Attachment, ServerFrame};
use confab_shared::ErrorCode;
use serde_json::json;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

async fn upload(c: &Client, room: &str, name: &str, bytes: &[u8]) -> reqwest::Response {
    let form = reqwest::multipart::Form::new()
        .text("room_id", room.to_owned())
        .part(
            "file",
            reqwest::multipart::Part::bytes(bytes.to_vec()).file_name(name.to_owned()),
        );
    c.http
        .post(c.url("/api/uploads"))
        .multipart(form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn attachments_are_verified_and_delivered_whole() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let room = alice.create_room("pics").await;
    let other = bob.create_room("elsewhere").await;
    bob.join(&room).await;

    let res = upload(&alice, &room.id.to_string(), "cat.png", PNG).await;
    assert_eq!(res.status(), 201);
    let att: Attachment = res.json().await.unwrap();
    assert!(att.inline);
    assert_eq!(att.content_type, "image/png");

    let mut bob_ws = bob.ws().await;
    bob_ws.subscribe(&room, None).await;
    let mut ws = alice.ws().await;
    ws.subscribe(&room, None).await;

    // An attachment with an empty caption is a message.
    ws.send(json!({"type": "send", "room": room.id, "client_msg_id": "a1", "body": "", "attachment": att.id}))
        .await;
    match ws
        .expect(|f| matches!(f, ServerFrame::Ack { .. } | ServerFrame::Error { .. }))
        .await
    {
        ServerFrame::Ack { .. } => {}
        other => panic!("expected ack, got {other:?}"),
    }
    match bob_ws
        .expect(|f| matches!(f, ServerFrame::Entry(RoomEvent::Message(_))))
        .await
    {
        ServerFrame::Entry(RoomEvent::Message(message)) => {
            assert_eq!(message.body, "");
            assert_eq!(message.attachment.as_ref(), Some(&att));
        }
        other => panic!("{other:?}"),
    }
    // History carries it too.
    let page: serde_json::Value = alice
        .get(&format!("/api/rooms/{}/messages", room.id))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["messages"][0]["attachment"]["id"], json!(att.id));

    // Someone else's upload, an upload into another room, an unknown key: all refused.
    let mut bob_send = bob.ws().await;
    let attempts = [
        (true, "b1", att.id.0.clone()),
        (false, "a2", "0".repeat(32)),
        (false, "a3", "../../etc/passwd".to_owned()),
    ];
    for (as_bob, id, key) in attempts {
        let who = if as_bob { &mut bob_send } else { &mut ws };
        who.send(json!({"type": "send", "room": room.id, "client_msg_id": id, "body": "x", "attachment": key}))
            .await;
        match who
            .expect(|f| matches!(f, ServerFrame::Ack { .. } | ServerFrame::Error { .. }))
            .await
        {
            ServerFrame::Error { code, .. } => assert_eq!(code, ErrorCode::Validation),
            other => panic!("expected an error, got {other:?}"),
        }
    }
    let res = upload(&bob, &other.id.to_string(), "b.png", PNG).await;
    let bobs: Attachment = res.json().await.unwrap();
    bob_send
        .send(json!({"type": "send", "room": room.id, "client_msg_id": "b2", "body": "x", "attachment": bobs.id}))
        .await;
    assert!(matches!(
        bob_send
            .expect(|f| matches!(f, ServerFrame::Ack { .. } | ServerFrame::Error { .. }))
            .await,
        ServerFrame::Error {
            code: ErrorCode::Validation,
            ..
        }
    ));
    // Without an attachment an empty body is still refused.
    ws.send(json!({"type": "send", "room": room.id, "client_msg_id": "a4", "body": " "}))
        .await;
    assert!(matches!(
        ws.expect(|f| matches!(f, ServerFrame::Ack { .. } | ServerFrame::Error { .. }))
            .await,
        ServerFrame::Error {
            code: ErrorCode::Validation,
            ..
        }
    ));
    server.stop().await;
}

#[tokio::test]
async fn files_are_for_members_of_their_room_now() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let room = alice.create_room("private-ish").await;
    let res = upload(&alice, &room.id.to_string(), "notes.bin", b"\0members only").await;
    assert_eq!(res.status(), 201);
    let att: Attachment = res.json().await.unwrap();
    let file = format!("/api/files/{}", att.id.0);
    let access = format!("{file}/access");
    let status = |c: &Client, p: String| {
        let req = c.http.get(c.url(&p));
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status(&alice, file.clone()).await, 200);
    assert_eq!(status(&alice, access.clone()).await, 204);
    // Not a member: 403; not logged in: 401; no such key: 404.
    assert_eq!(status(&bob, file.clone()).await, 403);
    assert_eq!(status(&bob, access.clone()).await, 403);
    let anonymous = reqwest::Client::new();
    for p in [&file, &access] {
        let res = anonymous.get(server.url(p)).send().await.unwrap();
        assert_eq!(res.status(), 401);
    }
    let missing = format!("/api/files/{}", "0".repeat(32));
    assert_eq!(status(&alice, missing.clone()).await, 404);
    assert_eq!(status(&alice, format!("{missing}/access")).await, 404);
    assert_eq!(
        status(&alice, "/api/files/not-a-key/access".into()).await,
        404
    );
    // A member now: in. Gone again: out at once.
    bob.join(&room).await;
    assert_eq!(status(&bob, file.clone()).await, 200);
    assert_eq!(status(&bob, access.clone()).await, 204);
    let res = bob
        .post(&format!("/api/rooms/{}/leave", room.id), json!({}))
        .await;
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(status(&bob, file).await, 403);
    assert_eq!(status(&bob, access).await, 403);
    server.stop().await;
}

/// A one-connection-at-a-time HTTP fixture on loopback that answers every request with `reply`.
async fn fixture(reply: String) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = sock.read(&mut buf).await;
            let _ = sock.write_all(reply.as_bytes()).await;
            let _ = sock.shutdown().await;
        }
    });
    addr
}

fn html_reply(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test]
async fn previews_fetch_allowed_fixtures_and_refuse_private_addresses() {
    let page = fixture(html_reply(
        "<html><head><title>Fixture</title><meta property=og:description content='A page'>\
         <meta property=og:image content=/i.png></head></html>",
    ))
    .await;
    let unlisted = fixture(html_reply("<title>secret</title>")).await;
    let redirect = fixture(format!(
        "HTTP/1.1 302 Found\r\nlocation: http://{unlisted}/\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    ))
    .await;
    let not_html = fixture(
        "HTTP/1.1 200 OK\r\ncontent-type: image/png\r\ncontent-length: 3\r\nconnection: close\r\n\r\nabc"
            .to_owned(),
    )
    .await;
    let server = TestServer::start_with(|c| {
        c.files.preview_allowlist = format!("{page},{redirect},{not_html}");
    })
    .await;
    let alice = server.register("alice").await;
    let q = |u: &str| format!("/api/preview?url={}", url_escape(u));

    let res = alice.get(&q(&format!("http://{page}/x"))).await;
    assert_eq!(res.status(), 200);
    let p: serde_json::Value = res.json().await.unwrap();
    assert_eq!(p["title"], "Fixture");
    assert_eq!(p["description"], "A page");
    // The image is ours to serve, never the page's own address.
    assert_eq!(
        p["image"],
        confab_shared::preview::image_link(
            &format!("{}/api/preview", server.base),
            &format!("http://{page}/x")
        )
    );

    // The unlisted fixture is loopback: refused directly and through the redirect.
    assert_eq!(
        alice.get(&q(&format!("http://{unlisted}/"))).await.status(),
        403
    );
    assert_eq!(
        alice.get(&q(&format!("http://{redirect}/"))).await.status(),
        403
    );
    assert_eq!(
        alice.get(&q(&format!("http://{not_html}/"))).await.status(),
        422
    );
    for bad in [
        "http://2130706433/",
        "http://127.1/",
        "http://[::1]/",
        "http://10.0.0.1/",
    ] {
        assert_eq!(alice.get(&q(bad)).await.status(), 403, "{bad}");
    }
    assert_eq!(alice.get(&q("file:///etc/passwd")).await.status(), 400);
    // Logged-out callers get nothing.
    let (anon, _) = Client::anonymous(&server);
    let res = anon
        .get(server.url(&q(&format!("http://{page}/x"))))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    server.stop().await;
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// With Redis configured, a preview fetched by one instance is served by another from the
/// shared cache: here the fixture answers once, and the second instance never reaches it.
#[tokio::test]
async fn previews_are_shared_through_redis_between_instances() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let page = listener.local_addr().unwrap();
    tokio::spawn(async move {
        if let Ok((mut sock, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = sock.read(&mut buf).await;
            let reply = html_reply("<title>Shared once</title>");
            let _ = sock.write_all(reply.as_bytes()).await;
            let _ = sock.shutdown().await;
        }
        // Dropping the listener: later connections are refused.
    });
    let redis =
        std::env::var("CONFAB_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let allow = || confab_shared::preview::Allowlist::parse(&page.to_string());
    let first = confab_origin::preview::PreviewFetcher::new(allow(), 4)
        .with_redis(&redis)
        .await
        .unwrap();
    let second = confab_origin::preview::PreviewFetcher::new(allow(), 4)
        .with_redis(&redis)
        .await
        .unwrap();
    let nobody = confab_shared::ids::UserId(uuid::Uuid::nil());
    // A unique path, so an earlier run's cache entry cannot answer.
    let url = format!("http://{page}/{}", uuid::Uuid::new_v4());
    assert_eq!(
        first.preview(&url, nobody).await.unwrap().title.as_deref(),
        Some("Shared once")
    );
    assert_eq!(
        second.preview(&url, nobody).await.unwrap().title.as_deref(),
        Some("Shared once")
    );
    // Without the shared cache the second instance would have had to fetch (and failed).
    let alone = confab_origin::preview::PreviewFetcher::new(allow(), 4);
    assert!(alone.preview(&url, nobody).await.is_err());
}
