//! The room log from outside, on the embedded server: edits and deletions over the WebSocket
//! (acked like sends, applied once per `ref`), replayed by `subscribe {after_seq}` and by
//! `GET /api/rooms/{id}/events`, before and after a restart; and everything a client may not
//! do to it. (The same over Redis and several instances is in `cluster.rs`.)
#![allow(clippy::unwrap_used)]

mod common;

use common::{Client, TestServer, Ws};
use confab_shared::api::EventPage;
use confab_shared::events::RoomEvent;
use confab_shared::protocol::ServerFrame;
use confab_shared::ErrorCode;
use serde_json::json;
use std::time::Duration;

/// Waits for the live entry with `seq`; returns it.
async fn entry(ws: &mut Ws, seq: i64) -> RoomEvent {
    match ws
        .expect(|f| matches!(f, ServerFrame::Entry(e) if e.seq() == seq))
        .await
    {
        ServerFrame::Entry(e) => e,
        _ => unreachable!(),
    }
}

fn ack_seq(f: &ServerFrame) -> i64 {
    match f {
        ServerFrame::Ack { seq, .. } => *seq,
        other => panic!("expected an ack, got {other:?}"),
    }
}

fn error_code(f: &ServerFrame) -> ErrorCode {
    match f {
        ServerFrame::Error { code, .. } => *code,
        other => panic!("expected an error, got {other:?}"),
    }
}

async fn events(client: &Client, room: &confab_shared::api::Room, query: &str) -> EventPage {
    let res = client
        .get(&format!("/api/rooms/{}/events{query}", room.id))
        .await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

fn kinds(events: &[RoomEvent]) -> Vec<&'static str> {
    events.iter().map(RoomEvent::kind).collect()
}

/// The issue's scenario: Bob is away while Ann posts, edits and deletes; Bob resubscribes with
/// `after_seq` and receives `message`, `edited`, `deleted` in seq order, `recovered: true`;
/// the HTTP catch-up returns the same entries; a server restart changes nothing of that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_was_away_receives_every_change_in_seq_order() {
    let server = TestServer::start().await;
    let dir = server.dir.clone();
    let ann = server.register("ann").await;
    let bob = server.register("bob").await;
    let room = ann.create_room("general").await;
    bob.join(&room).await;
    let mut a = ann.ws().await;
    a.subscribe(&room, None).await;
    let (kept, _) = a.say(&room, "m1", "first").await;
    let (doomed, seen) = a.say(&room, "m2", "second").await;

    // Bob has seen up to `seen`, then goes away.
    let mut b = bob.ws().await;
    b.subscribe(&room, None).await;
    drop(b);

    let (later, _) = a.say(&room, "m3", "third").await;
    let edit = a.edit(&room, &kept, "first, edited", "e-1").await;
    let edited_seq = ack_seq(&edit);
    assert!(
        matches!(&edit, ServerFrame::Ack { client_msg_id: None, id, .. } if id.to_string() == kept)
    );
    // A resend with the same ref: the same ack, no second entry.
    assert_eq!(
        a.edit(&room, &kept, "first, edited", "e-1").await,
        edit,
        "a resent edit is answered the same"
    );
    let deleted_seq = ack_seq(&a.delete(&room, &doomed, "d-1").await);
    assert_eq!(
        ack_seq(&a.delete(&room, &doomed, "d-1").await),
        deleted_seq,
        "a resent delete is answered the same, though the message is gone now"
    );
    let edit_later = ack_seq(&a.edit(&room, &later, "third, edited", "e-2").await);
    assert!(seen < edited_seq && edited_seq < deleted_seq && deleted_seq < edit_later);

    let mut b = bob.ws().await;
    let (replayed, last_seq, recovered) = b.recover(&room, seen).await;
    assert!(recovered);
    assert_eq!(last_seq, edit_later);
    assert_eq!(kinds(&replayed), ["message", "edited", "deleted", "edited"]);
    let seqs: Vec<i64> = replayed.iter().map(RoomEvent::seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "strictly increasing: {seqs:?}"
    );
    assert_eq!(seqs.last(), Some(&edit_later));
    match &replayed[0] {
        RoomEvent::Message(m) => {
            assert_eq!(
                (m.id.to_string(), m.body.as_str()),
                (later.clone(), "third, edited")
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(&replayed[1], RoomEvent::Edited(e) if e.body == "first, edited"));
    assert!(matches!(&replayed[2], RoomEvent::Deleted(d) if d.id.to_string() == doomed));

    // The HTTP catch-up gives the same entries.
    let page = events(&bob, &room, &format!("?after_seq={seen}")).await;
    assert!(page.complete);
    assert_eq!(page.last_seq, edit_later);
    assert_eq!(page.events, replayed);
    let all = events(&bob, &room, "").await;
    assert_eq!(
        kinds(&all.events[..3]),
        ["member_added", "message", "message"],
        "Bob's joining, then Ann's first two messages"
    );
    let first_two = events(&bob, &room, "?after_seq=1&limit=2").await;
    assert!(!first_two.complete);
    assert_eq!(first_two.events.len(), 2);
    assert!(
        matches!(&first_two.events[1], RoomEvent::Message(m) if m.is_deleted() && m.body.is_empty()),
        "a deleted message's entry is a tombstone: {:?}",
        first_two.events[1]
    );

    // Live entries continue after the replayed ones, with no duplicates.
    let next = ack_seq(&a.edit(&room, &later, "third, again", "e-3").await);
    assert!(matches!(entry(&mut b, next).await, RoomEvent::Edited(_)));
    drop((a, b));

    // After a restart, the same log from the database.
    server.stop().await;
    let server = TestServer::start_in(dir, |_| {}).await;
    let bob = bob.login_again(&server).await;
    let mut b = bob.ws().await;
    let (after_restart, last, recovered) = b.recover(&room, seen).await;
    assert!(recovered);
    assert_eq!(last, next);
    assert_eq!(
        kinds(&after_restart),
        ["message", "edited", "deleted", "edited", "edited"]
    );
    assert_eq!(&after_restart[1..4], &replayed[1..4]);
    match &after_restart[0] {
        RoomEvent::Message(m) => assert_eq!(m.body, "third, again", "as it is now"),
        other => panic!("{other:?}"),
    }
    let ann = ann.login_again(&server).await;
    let mut a = ann.ws().await;
    a.subscribe(&room, None).await;
    let (_, seq) = a.say(&room, "m4", "after the restart").await;
    assert_eq!(seq, next + 1, "seqs continue where they were");
    server.stop().await;
}

/// Changing someone else's message, a deleted one, one of another room, or with bad input is
/// refused with an error carrying the `ref`, and adds nothing to the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_changes_get_errors_and_change_nothing() {
    let server = TestServer::start().await;
    let ann = server.register("ann").await;
    let bob = server.register("bob").await;
    let eve = server.register("eve").await;
    let room = ann.create_room("general").await;
    let elsewhere = ann.create_room("elsewhere").await;
    bob.join(&room).await;
    let mut a = ann.ws().await;
    a.subscribe(&room, None).await;
    let (id, _) = a.say(&room, "m1", "ann's words").await;
    let (gone, _) = a.say(&room, "m2", "soon gone").await;
    let (other_room, _) = {
        a.subscribe(&elsewhere, None).await;
        a.say(&elsewhere, "x1", "in another room").await
    };
    ack_seq(&a.delete(&room, &gone, "d-0").await);
    let before = events(&ann, &room, "").await;

    let mut b = bob.ws().await;
    b.subscribe(&room, None).await;
    let cases = [
        (
            b.edit(&room, &id, "bob's words", "b-1").await,
            ErrorCode::Forbidden,
        ),
        (b.delete(&room, &id, "b-2").await, ErrorCode::Forbidden),
        (
            a.edit(&room, &gone, "back from the dead", "a-1").await,
            ErrorCode::NotFound,
        ),
        (a.delete(&room, &gone, "a-2").await, ErrorCode::NotFound),
        (
            a.edit(&room, &other_room, "wrong room", "a-3").await,
            ErrorCode::NotFound,
        ),
        (
            a.edit(&room, &uuid::Uuid::nil().to_string(), "nothing", "a-4")
                .await,
            ErrorCode::NotFound,
        ),
        (
            a.edit(&room, &id, "   ", "a-5").await,
            ErrorCode::Validation,
        ),
        (
            a.edit(&room, &id, &"x".repeat(4001), "a-6").await,
            ErrorCode::Validation,
        ),
    ];
    for (i, (frame, want)) in cases.iter().enumerate() {
        assert_eq!(error_code(frame), *want, "case {i}: {frame:?}");
    }
    // Eve is no member: she may not change anything, and learns nothing about the message.
    let mut e = eve.ws().await;
    assert_eq!(
        error_code(&e.edit(&room, &id, "eve's words", "e-1").await),
        ErrorCode::Forbidden
    );
    assert_eq!(
        error_code(&e.delete(&room, &id, "e-2").await),
        ErrorCode::Forbidden
    );
    // Frames that cannot be read: bad_request, no ref to answer.
    for bad in [
        json!({"type": "edit", "room": room.id, "id": id, "body": "x", "ref": "has space"}),
        json!({"type": "edit", "room": room.id, "id": "not-a-uuid", "body": "x", "ref": "r"}),
        json!({"type": "delete", "room": room.id, "id": id}),
        json!({"type": "edit", "room": room.id, "id": id, "ref": "r"}),
        json!({"type": "delete", "room": room.id, "id": id, "ref": "r", "extra": 1}),
    ] {
        a.send(bad.clone()).await;
        match a.expect(|f| matches!(f, ServerFrame::Error { .. })).await {
            ServerFrame::Error { code, .. } => assert_eq!(code, ErrorCode::BadRequest, "{bad}"),
            _ => unreachable!(),
        }
    }
    // Over HTTP too.
    let res = bob
        .http
        .patch(bob.url(&format!("/api/messages/{id}")))
        .json(&json!({"body": "bob again"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = eve
        .http
        .delete(eve.url(&format!("/api/messages/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        404,
        "a non-member cannot tell the message exists"
    );

    // Nothing changed: the log is what it was, and nobody saw a new entry.
    b.quiet_for(Duration::from_millis(300)).await;
    assert_eq!(events(&ann, &room, "").await, before);
    // The connection still works.
    let (_, seq) = a.say(&room, "m3", "still here").await;
    assert_eq!(seq, before.last_seq + 1);
    server.stop().await;
}

/// Only members read a room's log; unknown rooms are 404; bad parameters are 422.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_catch_up_is_for_members_only() {
    let server = TestServer::start().await;
    let ann = server.register("ann").await;
    let eve = server.register("eve").await;
    let room = ann.create_room("general").await;
    let mut a = ann.ws().await;
    a.subscribe(&room, None).await;
    a.say(&room, "m1", "hello").await;
    let res = eve.get(&format!("/api/rooms/{}/events", room.id)).await;
    assert_eq!(res.status(), 403);
    let res = eve
        .get(&format!("/api/rooms/{}/events", uuid::Uuid::nil()))
        .await;
    assert_eq!(res.status(), 404);
    for bad in ["?after_seq=-1", "?limit=0", "?limit=501", "?after_seq=x"] {
        let res = ann
            .get(&format!("/api/rooms/{}/events{bad}", room.id))
            .await;
        assert!(
            matches!(res.status().as_u16(), 400 | 422),
            "{bad}: {}",
            res.status()
        );
    }
    let (anon, _) = Client::anonymous(&server);
    let res = anon
        .get(server.url(&format!("/api/rooms/{}/events", room.id)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let page = events(&ann, &room, "").await;
    assert_eq!(kinds(&page.events), ["message"]);
    assert_eq!((page.last_seq, page.complete), (1, true));
    server.stop().await;
}
