//! The WebSocket gateway against the real server: chat, membership, recovery, idempotency,
//! presence, typing, activity, slow consumers, bad input, Origin checks, revocation, shutdown.
#![allow(clippy::unwrap_used)]

mod common;

use common::{TestServer, Ws};
use confab_shared::api::{ChangeAck, MessagePage};
use confab_shared::events::RoomEvent;
use confab_shared::protocol::ServerFrame;
use confab_shared::ErrorCode;
use futures::SinkExt;
use serde_json::json;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

fn is_message(f: &ServerFrame) -> bool {
    matches!(f, ServerFrame::Entry(RoomEvent::Message(_)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_members_chat_both_ways() {
    let server = TestServer::start().await;
    let ann = server.register("ann").await;
    let bob = server.register("bob").await;
    let room = ann.create_room("general").await;
    bob.join(&room).await;

    let mut a = ann.ws().await;
    let mut b = bob.ws().await;
    let sub = a.subscribe(&room, None).await;
    // Bob's joining is the log's first entry.
    assert!(matches!(
        sub,
        ServerFrame::Subscribed {
            last_seq: 1,
            recovered: true,
            ..
        }
    ));
    b.subscribe(&room, None).await;

    let (_, seq1) = a.say(&room, "a-1", "  hello bob  ").await;
    assert_eq!(seq1, 2);
    let ServerFrame::Entry(RoomEvent::Message(m)) = b.expect(is_message).await else {
        unreachable!()
    };
    assert_eq!(
        (m.seq, m.body.as_str(), m.author.username.as_str()),
        (2, "hello bob", "ann")
    );

    let (_, seq2) = b.say(&room, "b-1", "hi ann").await;
    assert_eq!(seq2, 3);
    let ServerFrame::Entry(RoomEvent::Message(m)) = a
        .expect(|f| matches!(f, ServerFrame::Entry(RoomEvent::Message(m)) if m.seq == 3))
        .await
    else {
        unreachable!()
    };
    assert_eq!(m.body, "hi ann");

    // History holds both, oldest first.
    let page: MessagePage = ann
        .get(&format!("/api/rooms/{}/messages", room.id))
        .await
        .json()
        .await
        .unwrap();
    let bodies: Vec<_> = page.messages.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["hello bob", "hi ann"]);
    assert!(!page.has_more);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_members_cannot_read_send_subscribe_or_list_members() {
    let server = TestServer::start().await;
    let ann = server.register("ann").await;
    let eve = server.register("eve").await;
    let room = ann.create_room("private-ish").await;
    let mut a = ann.ws().await;
    a.subscribe(&room, None).await;
    a.say(&room, "a-1", "secret").await;

    for path in ["messages", "members"] {
        let res = eve.get(&format!("/api/rooms/{}/{path}", room.id)).await;
        assert_eq!(res.status(), 403, "{path}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "forbidden");
    }
    let res = eve
        .post(&format!("/api/rooms/{}/read", room.id), json!({"seq": 1}))
        .await;
    assert_eq!(res.status(), 403);

    let mut e = eve.ws().await;
    e.send(json!({"type": "subscribe", "room": room.id})).await;
    assert!(matches!(
        e.next().await,
        ServerFrame::Error {
            code: ErrorCode::Forbidden,
            ..
        }
    ));
    e.send(json!({"type": "send", "room": room.id, "client_msg_id": "e-1", "body": "let me in"}))
        .await;
    match e.next().await {
        ServerFrame::Error {
            code: ErrorCode::Forbidden,
            reference,
            ..
        } => {
            assert_eq!(reference.as_deref(), Some("e-1"))
        }
        other => panic!("{other:?}"),
    }
    e.send(json!({"type": "typing", "room": room.id})).await;
    assert!(matches!(
        e.next().await,
        ServerFrame::Error {
            code: ErrorCode::Forbidden,
            ..
        }
    ));

    // Nothing leaked to the member, nothing was stored.
    a.send(json!({"type": "ping"})).await;
    loop {
        match a.next().await {
            ServerFrame::Pong => break,
            ServerFrame::Entry(RoomEvent::Message(m)) => assert_eq!(m.body, "secret"),
            other => panic!("unexpected {other:?}"),
        }
    }
    let page: MessagePage = ann
        .get(&format!("/api/rooms/{}/messages", room.id))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page.messages.len(), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resubscribing_with_after_seq_delivers_exactly_the_missed_messages() {
    let server = TestServer::start().await;
    let ann = server.register("ann").await;
    let bob = server.register("bob").await;
    let room = ann.create_room("general").await;
    bob.join(&room).await;
    let mut a = ann.ws().await;
    a.subscribe(&room, None).await;
    let mut b = bob.ws().await;
    b.subscribe(&room, None).await;
    for i in 1..=3 {
        a.say(&room, &format!("m{i}"), &format!("before {i}")).await;
    }
    // Seq 1 is Bob's joining; the messages are 2, 3, 4.
    let mut last = 0;
    while last < 4 {
        if let ServerFrame::Entry(RoomEvent::Message(m)) = b.expect(is_message).await {
            last = m.seq;
        }
    }
    drop(b); // Bob goes away.
    for i in 4..=8 {
        a.say(&room, &format!("m{i}"), &format!("missed {i}")).await;
    }
    let mut b = bob.ws().await;
    b.send(json!({"type": "subscribe", "room": room.id, "after_seq": last}))
        .await;
    let mut seqs = Vec::new();
    loop {
        match b.next().await {
            ServerFrame::Entry(RoomEvent::Message(m)) => seqs.push(m.seq),
            ServerFrame::Subscribed {
                last_seq,
                recovered,
                ..
            } => {
                assert_eq!(last_seq, 9);
                assert!(recovered);
                break;
            }
            _ => {}
        }
    }
    assert_eq!(seqs, [5, 6, 7, 8, 9]);
    // Live messages continue after the recovered ones, with no duplicates.
    a.say(&room, "m9", "live").await;
    let ServerFrame::Entry(RoomEvent::Message(m)) = b.expect(is_message).await else {
        unreachable!()
    };
    assert_eq!(m.seq, 10);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_after_a_restart_comes_from_the_database() {
    let server = TestServer::start().await;
    let dir = server.dir.clone();
    let ann = server.register("ann").await;
    let room = ann.create_room("general").await;
    let mut a = ann.ws().await;
    a.subscribe(&room, None).await;
    for i in 1..=4 {
        a.say(&room, &format!("m{i}"), &format!("msg {i}")).await;
    }
    drop(a);
    server.stop().await;
    let server = TestServer::start_in(dir, |_| {}).await;
    let ann = ann.login_again(&server).await;
    let mut a = ann.ws().await;
    a.send(json!({"type": "subscribe", "room": room.id, "after_seq": 1}))
        .await;
    let mut seqs = Vec::new();
    loop {
        match a.next().await {
            ServerFrame::Entry(RoomEvent::Message(m)) => seqs.push(m.seq),
            ServerFrame::Subscribed {
                recovered,
                last_seq,
                ..
            } => {
                assert!(recovered);
                assert_eq!(last_seq, 4);
                break;
            }
            _ => {}
        }
    }
    assert_eq!(seqs, [2, 3, 4]);
    // Seqs continue where they were.
    let (_, seq) = a.say(&room, "m5", "after restart").await;
    assert_eq!(seq, 5);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resend_gets_the_same_ack_and_is_delivered_once() {
    let server = TestServer::start().await;
    let ann = server.register("ann").await;
    let bob = server.register("bob").await;
    let room = ann.create_room("general").await;
    bob.join(&room).await;
    let mut a = ann.ws().await;
    let mut b = bob.ws().await;
    a.subscribe(&room, None).await;
    b.subscribe(&room, None).await;
    let first = a.say(&room, "same-id", "once").await;
    let again = a.say(&room, "same-id", "once").await;
    assert_eq!(first, again);
    // From another connection of the same user, too.
    let mut a2 = ann.ws().await;
    assert_eq!(a2.say(&room, "same-id", "once").await, first);

    a.say(&room, "next-id", "twice?").await;
    let mut seen = Vec::new();
    while seen.len() < 2 {
        if let ServerFrame::Entry(RoomEvent::Message(m)) = b.expect(is_message).await {
            seen.push((m.seq, m.body));
        }
    }
    // Seq 1 is Bob's joining.
    assert_eq!(seen, [(2, "once".to_string()), (3, "twice?".to_string())]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_and_typing_are_stamped_by_the_server() {
    let server = TestServer::start().await;
    let ann = server.register("ann").await;
    let bob = server.register("bob").await;
    let room = ann.create_room("general").await;
    bob.join(&room).await;
    let mut a = ann.ws().await;
    a.subscribe(&room, None).await;
    let mut b = bob.ws().await;
    let ServerFrame::Subscribed { online, .. } = b.subscribe(&room, None).await else {
        unreachable!()
    };
    let mut names: Vec<_> = online.iter().map(|u| u.username.as_str()).collect();
    names.sort();
    assert_eq!(names, ["ann", "bob"]);
    match a
        .expect(|f| matches!(f, ServerFrame::Presence { .. }))
        .await
    {
        ServerFrame::Presence { user, online, .. } => assert!(online && user.username == "bob"),
        _ => unreachable!(),
    }
    // A second connection of Bob's is no transition; closing one of two is none either.
    let mut b2 = bob.ws().await;
    b2.subscribe(&room, None).await;
    drop(b2);

    // Typing carries the server's idea of who types; a forged user field is refused.
    b.send(json!({"type": "typing", "room": room.id, "user": ann.me.id}))
        .await;
    assert!(matches!(
        b.next().await,
        ServerFrame::Error {
            code: ErrorCode::BadRequest,
            ..
        }
    ));
    b.send(json!({"type": "typing", "room": room.id})).await;
    match a
        .expect(|f| matches!(f, ServerFrame::Typing { .. } | ServerFrame::Presence { .. }))
        .await
    {
        ServerFrame::Typing { user, .. } => assert_eq!(user.username, "bob"),
        other => panic!("expected typing first, got {other:?}"),
    }
    // Throttled: an immediate second typing is not relayed.
    b.send(json!({"type": "typing", "room": room.id})).await;
    a.quiet_for(Duration::from_millis(300)).await;

    let members: Vec<confab_shared::api::Member> = ann
        .get(&format!("/api/rooms/{}/members", room.id))
        .await
        .json()
        .await
        .unwrap();
    assert!(members.iter().all(|m| m.online));
    drop(b);
    match a
        .expect(|f| matches!(f, ServerFrame::Presence { .. }))
        .await
    {
        ServerFrame::Presence { user, online, .. } => assert!(!online && user.username == "bob"),
        _ => unreachable!(),
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribed_member_rooms_get_activity_not_content() {
    let server = TestServer::start().await;
    let ann = server.register("ann").await;
    let bob = server.register("bob").await;
    let eve = server.register("eve").await;
    let room = ann.create_room("general").await;
    let other = ann.create_room("other").await;
    let mut b = bob.ws().await;
    let mut e = eve.ws().await;
    // Bob joins after connecting: his socket learns of the membership.
    bob.join(&room).await;
    assert!(matches!(
        b.next().await,
        ServerFrame::Membership { member: true, .. }
    ));
    let mut a = ann.ws().await;
    a.subscribe(&room, None).await;
    let (_, first) = a.say(&room, "a-1", "ping bob").await;
    a.say(&room, "a-2", "again").await;
    for (unread_now, expected) in [(1, first), (2, first + 1)] {
        match b.next().await {
            ServerFrame::Activity {
                room: r,
                seq,
                unread,
                author,
                mention,
            } => {
                assert!(!mention);
                assert_eq!(
                    (r, seq, unread, author.username.as_str()),
                    (room.id, expected, unread_now, "ann")
                );
            }
            other => panic!("{other:?}"),
        }
    }
    // The room list agrees; marking read clears it.
    let rooms: confab_shared::api::RoomPage = bob
        .get("/api/rooms?scope=joined")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rooms.rooms[0].unread, 2);
    b.send(json!({"type": "read", "room": room.id, "seq": first + 1}))
        .await;
    b.send(json!({"type": "ping"})).await;
    assert!(matches!(b.next().await, ServerFrame::Pong));
    let (_, third) = a.say(&room, "a-3", "third").await;
    match b.next().await {
        ServerFrame::Activity { unread, seq, .. } => assert_eq!((seq, unread), (third, 1)),
        other => panic!("{other:?}"),
    }
    // Eve, not a member, hears nothing; messages in a room Bob is not in reach nobody.
    a.say(&other, "a-4", "elsewhere").await;
    e.quiet_for(Duration::from_millis(300)).await;
    b.quiet_for(Duration::from_millis(300)).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_and_deletes_by_the_author_reach_the_room() {
    let server = TestServer::start().await;
    let ann = server.register("ann").await;
    let bob = server.register("bob").await;
    let room = ann.create_room("general").await;
    bob.join(&room).await;
    let mut a = ann.ws().await;
    a.subscribe(&room, None).await;
    let mut b = bob.ws().await;
    b.subscribe(&room, None).await;
    let (id, posted) = a.say(&room, "a-1", "tpyo").await;

    let res = bob
        .http
        .patch(bob.url(&format!("/api/messages/{id}")))
        .json(&json!({"body": "hijack"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = bob
        .http
        .delete(bob.url(&format!("/api/messages/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = ann
        .http
        .patch(ann.url(&format!("/api/messages/{id}")))
        .json(&json!({"body": "  "}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);

    let res = ann
        .http
        .patch(ann.url(&format!("/api/messages/{id}")))
        .json(&json!({"body": "typo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let ack: ChangeAck = res.json().await.unwrap();
    assert_eq!((ack.id.to_string(), ack.seq), (id.clone(), posted + 1));
    match b
        .expect(|f| matches!(f, ServerFrame::Entry(RoomEvent::Edited(_))))
        .await
    {
        ServerFrame::Entry(RoomEvent::Edited(e)) => {
            assert_eq!((e.body.as_str(), e.seq), ("typo", posted + 1))
        }
        _ => unreachable!(),
    }
    let res = ann
        .http
        .delete(ann.url(&format!("/api/messages/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let ack: ChangeAck = res.json().await.unwrap();
    assert_eq!(ack.seq, posted + 2);
    assert!(matches!(
        b.expect(|f| matches!(f, ServerFrame::Entry(RoomEvent::Deleted(_)))).await,
        ServerFrame::Entry(RoomEvent::Deleted(d)) if d.seq == posted + 2
    ));
    let page: MessagePage = bob
        .get(&format!("/api/rooms/{}/messages", room.id))
        .await
        .json()
        .await
        .unwrap();
    assert!(page.messages.is_empty());
    let res = ann
        .http
        .delete(ann.url(&format!("/api/messages/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_get_errors_and_the_connection_stays() {
    let server = TestServer::start().await;
    let ann = server.register("ann").await;
    let room = ann.create_room("general").await;
    let mut a = ann.ws().await;
    a.subscribe(&room, None).await;
    let cases = [
        ("not json".to_string(), ErrorCode::BadRequest),
        (json!({"type": "shout"}).to_string(), ErrorCode::BadRequest),
        (json!({"type": "send", "room": room.id}).to_string(), ErrorCode::BadRequest),
        (json!({"type": "subscribe", "room": "not-a-uuid"}).to_string(), ErrorCode::BadRequest),
        (json!({"type": "send", "room": room.id, "client_msg_id": "x", "body": "   "}).to_string(), ErrorCode::Validation),
        (json!({"type": "send", "room": room.id, "client_msg_id": "y", "body": "a".repeat(4001)}).to_string(), ErrorCode::Validation),
        (json!({"type": "send", "room": room.id, "client_msg_id": "z", "body": "bell\u{7}"}).to_string(), ErrorCode::Validation),
        (json!({"type": "send", "room": room.id, "client_msg_id": "bad id!", "body": "hi"}).to_string(), ErrorCode::BadRequest),
        (json!({"type": "read", "room": room.id, "seq": -1}).to_string(), ErrorCode::Validation),
    ];
    for (text, code) in cases {
        a.send_raw(text.clone()).await;
        match a.next().await {
            ServerFrame::Error { code: got, .. } => assert_eq!(got, code, "{text}"),
            other => panic!("{text}: {other:?}"),
        }
    }
    a.stream
        .send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    assert!(matches!(
        a.next().await,
        ServerFrame::Error {
            code: ErrorCode::BadRequest,
            ..
        }
    ));
    // Still connected, and nothing was stored.
    a.send(json!({"type": "ping"})).await;
    assert!(matches!(a.next().await, ServerFrame::Pong));
    let page: MessagePage = ann
        .get(&format!("/api/rooms/{}/messages", room.id))
        .await
        .json()
        .await
        .unwrap();
    assert!(page.messages.is_empty());
    let (_, seq) = a.say(&room, "ok", "fine").await;
    assert_eq!(seq, 1, "failed sends used no seq");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_frames_close_with_1009() {
    let server = TestServer::start().await;
    let ann = server.register("ann").await;
    // Just over the limit: read whole, refused with 1009.
    let mut a = ann.ws().await;
    let pad = "x".repeat(64 * 1024 + 1);
    a.send_raw(format!("{{\"type\":\"ping\",\"pad\":\"{pad}\"}}"))
        .await;
    let frame = a.closed().await.expect("a close frame");
    assert_eq!(u16::from(frame.code), 1009);
    // Far over it: refused from the frame header, before the payload is read; the server
    // closes with 1009 while the client may still be writing, so the client may see a reset.
    let mut a = ann.ws().await;
    let pad = "x".repeat(1024 * 1024);
    let big = format!("{{\"type\":\"ping\",\"pad\":\"{pad}\"}}");
    let _maybe_reset = a.stream.send(Message::Text(big.into())).await;
    if let Some(frame) = a.closed().await {
        assert_eq!(u16::from(frame.code), 1009);
    }
    // Either way that socket is gone and the server is fine.
    let mut b = ann.ws().await;
    b.send(json!({"type": "ping"})).await;
    assert!(matches!(b.next().await, ServerFrame::Pong));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flooding_gets_rate_limited_then_closed() {
    let server = TestServer::start().await;
    let ann = server.register("ann").await;
    let room = ann.create_room("general").await;
    let mut a = ann.ws().await;
    for i in 0..200 {
        let frame = json!({"type": "send", "room": room.id, "client_msg_id": format!("f{i}"), "body": "spam"});
        if a.stream
            .send(Message::Text(frame.to_string().into()))
            .await
            .is_err()
        {
            break;
        }
    }
    let mut limited = 0;
    let close = loop {
        match tokio::time::timeout(common::WAIT, futures::StreamExt::next(&mut a.stream))
            .await
            .unwrap()
        {
            Some(Ok(Message::Text(t))) => {
                if let ServerFrame::Error {
                    code: ErrorCode::RateLimited,
                    ..
                } = serde_json::from_str(&t).unwrap()
                {
                    limited += 1;
                }
            }
            Some(Ok(Message::Close(f))) => break f,
            Some(Ok(_)) => {}
            None | Some(Err(_)) => break None,
        }
    };
    assert!(
        limited > 0,
        "some sends were refused with rate_limited first"
    );
    assert_eq!(u16::from(close.expect("close frame").code), 1008);
    // The other sends were accepted and stored exactly once each.
    let page: MessagePage = ann
        .get(&format!("/api/rooms/{}/messages?limit=100", room.id))
        .await
        .json()
        .await
        .unwrap();
    assert!(!page.messages.is_empty() && page.messages.len() < 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_origin_is_refused() {
    let server = TestServer::start().await;
    let ann = server.register("ann").await;
    let err = ann
        .ws_with_origin(Some("https://evil.example"))
        .await
        .err()
        .expect("refused");
    match err {
        tokio_tungstenite::tungstenite::Error::Http(res) => assert_eq!(res.status(), 403),
        other => panic!("{other:?}"),
    }
    let own = format!("http://localhost:{}", server.addr.port());
    assert!(ann.ws_with_origin(Some(&own)).await.is_ok());
    assert!(ann.ws_with_origin(Some(&server.base)).await.is_ok());
    // No cookie, no socket.
    let req = format!("ws://{}/ws", server.addr);
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => assert_eq!(res.status(), 401),
        other => panic!("{other:?}"),
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_is_told_to_resync_without_hurting_the_room() {
    const N: usize = 1200;
    let server = TestServer::start_with(|c| {
        c.room_buffer = 16;
        c.send_rate = 100_000;
        c.frame_rate = 100_000;
    })
    .await;
    let ann = server.register("ann").await;
    let bob = server.register("bob").await;
    let carl = server.register("carl").await;
    let room = ann.create_room("busy").await;
    bob.join(&room).await;
    carl.join(&room).await;
    let mut b = bob.ws().await;
    b.subscribe(&room, None).await;
    // Carl subscribes, then stops reading.
    let mut c = carl.ws().await;
    c.subscribe(&room, None).await;

    let body = "x".repeat(3900);
    let reader = tokio::spawn(async move {
        let mut seqs = Vec::with_capacity(N);
        while seqs.len() < N {
            if let ServerFrame::Entry(RoomEvent::Message(m)) = b.expect(is_message).await {
                seqs.push(m.seq);
            }
        }
        seqs
    });
    // Ann pipelines her sends on three sockets, then collects the acks.
    let mut senders: Vec<Ws> = Vec::new();
    for _ in 0..3 {
        senders.push(ann.ws().await);
    }
    for i in 0..N {
        let frame = json!({"type": "send", "room": room.id, "client_msg_id": format!("s{i}"), "body": body});
        senders[i % 3].send(frame).await;
    }
    for (i, s) in senders.iter_mut().enumerate() {
        let expected = (i..N).step_by(3).count();
        for _ in 0..expected {
            match tokio::time::timeout(Duration::from_secs(60), s.next())
                .await
                .unwrap()
            {
                ServerFrame::Ack { .. } => {}
                other => panic!("{other:?}"),
            }
        }
    }
    // Bob, reading normally, got every message in order while Carl stalled.
    let seqs = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .unwrap()
        .unwrap();
    // Seqs 1 and 2 are Bob's and Carl's joining.
    assert_eq!(seqs, (3..=N as i64 + 2).collect::<Vec<_>>());

    // Carl finally reads: among the backlog is a resync for the room.
    let mut got_resync = false;
    for _ in 0..N + 10 {
        match c.next().await {
            ServerFrame::Resync { room: r } => {
                assert_eq!(r, room.id);
                got_resync = true;
                break;
            }
            ServerFrame::Entry(RoomEvent::Message(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(got_resync, "the slow consumer was told to resync");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_revoked_with_no_event_loses_its_sockets_at_the_next_check() {
    // The periodic check is the safety net for revocations no event announced (`confab
    // admin`, a dropped user event); the sockets due together share one query, and each
    // gets its own session's answer.
    let server = TestServer::start_with(|c| c.revalidate_secs = 1).await;
    let ann = server.register("ann").await;
    let bob = server.register("bob").await;
    let phone = ann.login_again(&server).await;
    let mut laptop_ws = ann.ws().await;
    let mut phone_ws = phone.ws().await;
    let mut bob_ws = bob.ws().await;
    let db = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        server.dir.path().join("confab.db").display()
    ))
    .await
    .unwrap();
    // The phone's session, revoked behind the server's back: only the newest of ann's two.
    let revoked = sqlx::query(
        "UPDATE sessions SET revoked_at = 1 WHERE id = (SELECT s.id FROM sessions s \
         JOIN users u ON u.id = s.user_id WHERE u.username = 'ann' \
         ORDER BY s.created_at DESC, s.rowid DESC LIMIT 1)",
    )
    .execute(&db)
    .await
    .unwrap();
    assert_eq!(revoked.rows_affected(), 1);
    let frame = phone_ws.closed().await.expect("close frame");
    assert_eq!(u16::from(frame.code), 1008);
    assert_eq!(frame.reason.as_str(), "session ended");
    // The others were checked in the same rounds and stay open.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for ws in [&mut laptop_ws, &mut bob_ws] {
        ws.send(json!({"type": "ping"})).await;
        assert!(matches!(ws.next().await, ServerFrame::Pong));
    }
    db.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_sessions_lose_their_sockets() {
    let server = TestServer::start().await;
    let ann = server.register("ann").await;
    let phone = ann.login_again(&server).await;
    let mut laptop_ws = ann.ws().await;
    let mut phone_ws = phone.ws().await;
    // Logging out on the phone closes the phone's socket only.
    let res = phone.post("/api/auth/logout", json!({})).await;
    assert_eq!(res.status(), 204);
    let frame = phone_ws.closed().await.expect("close frame");
    assert_eq!(u16::from(frame.code), 1008);
    laptop_ws.send(json!({"type": "ping"})).await;
    assert!(matches!(laptop_ws.next().await, ServerFrame::Pong));
    assert_eq!(phone.get("/api/me").await.status(), 401);

    // Changing the password ends every session, this socket included.
    let res = ann
        .post(
            "/api/me/password",
            json!({"current_password": common::password(), "new_password": "a brand new secret"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let frame = laptop_ws.closed().await.expect("close frame");
    assert_eq!(u16::from(frame.code), 1008);
    // The changing client got a fresh session.
    assert_eq!(ann.get("/api/me").await.status(), 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_are_closed() {
    let server = TestServer::start_with(|c| c.idle_timeout_secs = 1).await;
    let ann = server.register("ann").await;
    let mut a = ann.ws().await;
    // The client answers pings automatically only while it reads; a silent client is dropped.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let frame = a.closed().await.expect("close frame");
    assert_eq!(u16::from(frame.code), 1000);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_sockets_with_1001() {
    let server = TestServer::start().await;
    let ann = server.register("ann").await;
    let mut a = ann.ws().await;
    let stopping = tokio::spawn(server.stop());
    let frame = a.closed().await.expect("close frame");
    assert_eq!(u16::from(frame.code), 1001);
    stopping.await.unwrap();
}

/// A deflate client of the real server: our own client, offering permessage-deflate.
async fn deflate_client(
    user: &common::Client,
    offer: bool,
) -> confab_ws::WebSocket<tokio::net::TcpStream> {
    let stream = tokio::net::TcpStream::connect(user.addr).await.unwrap();
    let cookie = user.cookie_header("/");
    let options = confab_ws::Options {
        deflate: offer,
        ..confab_ws::Options::new(confab_ws::Role::Client)
    };
    let headers = [("Cookie", cookie.as_str())];
    let host = user.addr.to_string();
    confab_ws::handshake::connect(stream, &host, "/ws", &headers, options)
        .await
        .unwrap()
}

async fn next_text(ws: &mut confab_ws::WebSocket<tokio::net::TcpStream>) -> ServerFrame {
    use futures::StreamExt;
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .unwrap();
        if let confab_ws::Message::Text(t) = m {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permessage_deflate_is_agreed_when_offered_and_can_be_turned_off() {
    let server = TestServer::start().await;
    let ann = server.register("ann").await;
    let bob = server.register("bob").await;
    let room = ann.create_room("general").await;
    bob.join(&room).await;

    // Ann compresses, Bob does not (tungstenite's client offers nothing): one room, the same
    // message to both, ann's compressed send read by the server.
    let mut a = deflate_client(&ann, true).await;
    assert!(a.compresses(), "agreed");
    assert!(matches!(next_text(&mut a).await, ServerFrame::Ready { .. }));
    let mut b = bob.ws().await;
    let subscribe = json!({"type": "subscribe", "room": room.id}).to_string();
    a.send(confab_ws::Message::Text(subscribe.into()))
        .await
        .unwrap();
    b.subscribe(&room, None).await;
    let body = "a long message that compresses well, ".repeat(40);
    let send = json!({"type": "send", "room": room.id, "client_msg_id": "d-1", "body": body});
    a.send(confab_ws::Message::Text(send.to_string().into()))
        .await
        .unwrap();
    let ServerFrame::Entry(RoomEvent::Message(m)) = b.expect(is_message).await else {
        unreachable!()
    };
    assert_eq!(m.body, body.trim());
    let mut echoed = false;
    while !echoed {
        match next_text(&mut a).await {
            ServerFrame::Entry(RoomEvent::Message(m)) => {
                assert_eq!(m.body, body.trim());
                echoed = true;
            }
            ServerFrame::Error { message, .. } => panic!("{message}"),
            _ => {}
        }
    }
    // A client that does not offer it gets plain frames from the same server.
    assert!(!deflate_client(&bob, false).await.compresses());
    server.stop().await;

    let server = TestServer::start_with(|c| c.ws_deflate = false).await;
    let carl = server.register("carl").await;
    let mut c = deflate_client(&carl, true).await;
    assert!(!c.compresses(), "turned off by CONFAB_WS_DEFLATE=false");
    assert!(matches!(next_text(&mut c).await, ServerFrame::Ready { .. }));
    server.stop().await;
}

/// A proxy on the same host reaches the server on its Unix socket (`CONFAB_LISTEN_UNIX`):
/// HTTP and WebSockets there are the same server as on TCP (one hub, the same rooms), and a
/// stale socket file left by an earlier run is replaced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unix_socket_serves_http_and_websockets_beside_tcp() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::UnixStream;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let socket = dir.path().join("confab.sock");
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let path = socket.clone();
    let server = TestServer::start_in(dir.clone(), move |c| c.listen_unix = Some(path)).await;
    let ann = server.register("ann").await;
    let bob = server.register("bob").await;
    let room = ann.create_room("general").await;
    bob.join(&room).await;

    let mut http = UnixStream::connect(&socket).await.unwrap();
    http.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    http.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("ok"), "{response}");

    // Bob over the socket, Ann over TCP, in one room.
    let mut req = "ws://localhost/ws".into_client_request().unwrap();
    req.headers_mut()
        .insert("cookie", bob.cookie_header("/").parse().unwrap());
    let stream = UnixStream::connect(&socket).await.unwrap();
    let (mut b, _) = tokio_tungstenite::client_async(req, stream).await.unwrap();
    frame_where(&mut b, |f| matches!(f, ServerFrame::Ready { .. })).await;
    let subscribe = json!({"type": "subscribe", "room": room.id}).to_string();
    b.send(Message::Text(subscribe.into())).await.unwrap();
    frame_where(&mut b, |f| matches!(f, ServerFrame::Subscribed { .. })).await;
    let mut a = ann.ws().await;
    let (_, seq) = a.say(&room, "a-1", "over the socket").await;
    let ServerFrame::Entry(RoomEvent::Message(m)) = frame_where(&mut b, is_message).await else {
        unreachable!()
    };
    assert_eq!((m.seq, m.body.as_str()), (seq, "over the socket"));
    server.stop().await;
}

/// The next text frame of `ws` that `pred` accepts, within the harness's wait.
async fn frame_where<S>(
    ws: &mut tokio_tungstenite::WebSocketStream<S>,
    pred: fn(&ServerFrame) -> bool,
) -> ServerFrame
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use futures::StreamExt;
    loop {
        let msg = tokio::time::timeout(common::WAIT, ws.next())
            .await
            .expect("a frame arrives in time")
            .expect("the socket is open")
            .expect("the socket works");
        if let Message::Text(t) = msg {
            let frame = serde_json::from_str::<ServerFrame>(&t).unwrap();
            if pred(&frame) {
                return frame;
            }
        }
    }
}
