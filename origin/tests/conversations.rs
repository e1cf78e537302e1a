//! Conversations from outside, on the embedded server: private rooms, roles and moderation,
//! direct messages and finding people, replies, reactions, mentions, pins, search and read
//! receipts — each one checked for who may do it, and recovered after a disconnect. (The same
//! across instances on Redis is in `cluster.rs`; search on both databases in `store.rs`.)
#![allow(clippy::unwrap_used)]

mod common;

use common::{Client, TestServer, Ws};
use confab_shared::api::{
    Ban, Member, MessagePage, Pin, Receipt, Room, RoomPage, SearchPage, UserPage,
};
use confab_shared::conversation::{RoomKind, RoomRole, Visibility};
use confab_shared::events::RoomEvent;
use confab_shared::protocol::ServerFrame;
use confab_shared::ErrorCode;
use serde_json::{json, Value};
use std::time::Duration;

async fn rooms(c: &Client, scope: &str) -> Vec<Room> {
    let page: RoomPage = c
        .get(&format!("/api/rooms?scope={scope}"))
        .await
        .json()
        .await
        .unwrap();
    page.rooms
}

async fn status(res: reqwest::Response) -> u16 {
    res.status().as_u16()
}

fn user_body(c: &Client) -> Value {
    json!({"user": c.me.id})
}

/// The next log entry of `kind` on `ws`.
async fn entry(ws: &mut Ws, kind: &str) -> RoomEvent {
    match ws
        .expect(|f| matches!(f, ServerFrame::Entry(e) if e.kind() == kind))
        .await
    {
        ServerFrame::Entry(e) => e,
        _ => unreachable!(),
    }
}

fn code_of(f: &ServerFrame) -> ErrorCode {
    match f {
        ServerFrame::Error { code, .. } => *code,
        other => panic!("expected an error, got {other:?}"),
    }
}

async fn history(c: &Client, room: &Room) -> MessagePage {
    let res = c.get(&format!("/api/rooms/{}/messages", room.id)).await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_rooms_roles_and_moderation() {
    let server = TestServer::start().await;
    let ann = server.register("ann").await; // owner
    let bob = server.register("bob").await; // admin
    let carl = server.register("carl").await; // member
    let eve = server.register("eve").await; // outsider
    let room = ann.create_private_room("secret").await;
    assert_eq!(
        (room.visibility, room.kind, room.role),
        (Visibility::Private, RoomKind::Room, Some(RoomRole::Owner))
    );

    // Outsiders never see it, cannot join or read it, and cannot add anyone.
    for scope in ["discover", "all"] {
        assert!(rooms(&eve, scope).await.iter().all(|r| r.id != room.id));
    }
    let rid = room.id;
    assert_eq!(
        status(eve.post(&format!("/api/rooms/{rid}/join"), json!({})).await).await,
        404
    );
    assert_eq!(
        status(eve.get(&format!("/api/rooms/{rid}")).await).await,
        404
    );
    assert_eq!(
        status(eve.get(&format!("/api/rooms/{rid}/messages")).await).await,
        404
    );
    assert_eq!(
        status(eve.get(&format!("/api/rooms/{rid}/members")).await).await,
        404
    );
    assert_eq!(
        status(
            eve.post(&format!("/api/rooms/{rid}/members"), user_body(&eve))
                .await
        )
        .await,
        404
    );
    let mut e = eve.ws().await;
    e.send(json!({"type": "subscribe", "room": rid})).await;
    assert_eq!(
        code_of(&e.expect(|f| matches!(f, ServerFrame::Error { .. })).await),
        ErrorCode::Forbidden
    );

    // The owner adds Bob and Carl; Bob's socket learns of it at once.
    let mut b = bob.ws().await;
    let mut a = ann.ws().await;
    a.subscribe(&room, None).await;
    let res = ann
        .post(&format!("/api/rooms/{rid}/members"), user_body(&bob))
        .await;
    assert_eq!(res.status(), 200);
    let added: Member = res.json().await.unwrap();
    assert_eq!((added.user.id, added.role), (bob.me.id, RoomRole::Member));
    assert!(matches!(
        b.expect(|f| matches!(f, ServerFrame::Membership { .. }))
            .await,
        ServerFrame::Membership { member: true, .. }
    ));
    assert!(matches!(entry(&mut a, "member_added").await,
        RoomEvent::MemberAdded(m) if m.user.id == bob.me.id && m.by.id == ann.me.id));
    ann.post(&format!("/api/rooms/{rid}/members"), user_body(&carl))
        .await;
    assert!(rooms(&carl, "joined").await.iter().any(|r| r.id == rid));

    // Only the owner changes roles.
    assert_eq!(
        status(
            carl.patch(
                &format!("/api/rooms/{rid}/members/{}", bob.me.id),
                json!({"role": "admin"})
            )
            .await
        )
        .await,
        403
    );
    let res = ann
        .patch(
            &format!("/api/rooms/{rid}/members/{}", bob.me.id),
            json!({"role": "admin"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert!(matches!(entry(&mut a, "role_changed").await,
        RoomEvent::RoleChanged(r) if r.user.id == bob.me.id && r.role == RoomRole::Admin));

    // Members cannot rename or add; admins can.
    assert_eq!(
        status(
            carl.patch(&format!("/api/rooms/{rid}"), json!({"name": "mine"}))
                .await
        )
        .await,
        403
    );
    assert_eq!(
        status(
            carl.post(&format!("/api/rooms/{rid}/members"), user_body(&eve))
                .await
        )
        .await,
        403
    );
    let res = bob
        .patch(
            &format!("/api/rooms/{rid}"),
            json!({"name": "plans", "topic": "Q3 plans"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let renamed: Room = res.json().await.unwrap();
    assert_eq!(
        (renamed.name.as_str(), renamed.topic.as_deref()),
        ("plans", Some("Q3 plans"))
    );
    assert!(matches!(entry(&mut a, "room_updated").await,
        RoomEvent::RoomUpdated(u) if u.name == "plans" && u.topic.as_deref() == Some("Q3 plans")));
    assert_eq!(
        status(
            bob.patch(&format!("/api/rooms/{rid}"), json!({"topic": "bad\nline"}))
                .await
        )
        .await,
        422
    );

    // An admin cannot remove the owner; nobody removes the owner; the owner cannot leave.
    assert_eq!(
        status(
            bob.delete(&format!("/api/rooms/{rid}/members/{}", ann.me.id))
                .await
        )
        .await,
        403
    );
    assert_eq!(
        status(
            ann.post(&format!("/api/rooms/{rid}/leave"), json!({}))
                .await
        )
        .await,
        409
    );

    // Kicking Carl: his socket stops receiving the room at once.
    let mut c = carl.ws().await;
    c.subscribe(&room, None).await;
    let res = bob
        .delete(&format!("/api/rooms/{rid}/members/{}", carl.me.id))
        .await;
    assert_eq!(res.status(), 204);
    assert!(matches!(
        c.expect(|f| matches!(f, ServerFrame::Membership { .. }))
            .await,
        ServerFrame::Membership { member: false, .. }
    ));
    assert!(matches!(entry(&mut a, "member_removed").await,
        RoomEvent::MemberRemoved(m) if m.user.id == carl.me.id && !m.banned));
    a.say(&room, "a1", "after carl left").await;
    c.quiet_for(Duration::from_millis(400)).await;
    c.send(json!({"type": "send", "room": rid, "client_msg_id": "c1", "body": "let me in"}))
        .await;
    assert_eq!(
        code_of(&c.expect(|f| matches!(f, ServerFrame::Error { .. })).await),
        ErrorCode::Forbidden
    );

    // Banning Carl: he cannot be added back until unbanned.
    let res = ann
        .post(&format!("/api/rooms/{rid}/bans"), user_body(&carl))
        .await;
    assert_eq!(res.status(), 204);
    assert_eq!(
        status(
            ann.post(&format!("/api/rooms/{rid}/members"), user_body(&carl))
                .await
        )
        .await,
        403
    );
    let bans: Vec<Ban> = bob
        .get(&format!("/api/rooms/{rid}/bans"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(bans.len(), 1);
    assert_eq!(bans[0].user.id, carl.me.id);
    assert_eq!(
        status(
            ann.delete(&format!("/api/rooms/{rid}/bans/{}", carl.me.id))
                .await
        )
        .await,
        204
    );
    assert_eq!(
        status(
            ann.post(&format!("/api/rooms/{rid}/members"), user_body(&carl))
                .await
        )
        .await,
        200
    );

    // Handing over: Bob becomes owner, Ann an admin, and Ann may leave.
    let res = ann
        .patch(
            &format!("/api/rooms/{rid}/members/{}", bob.me.id),
            json!({"role": "owner"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let members: Vec<Member> = bob
        .get(&format!("/api/rooms/{rid}/members"))
        .await
        .json()
        .await
        .unwrap();
    let role = |id| members.iter().find(|m| m.user.id == id).unwrap().role;
    assert_eq!(
        (role(ann.me.id), role(bob.me.id), role(carl.me.id)),
        (RoomRole::Admin, RoomRole::Owner, RoomRole::Member)
    );
    assert_eq!(
        status(
            ann.post(&format!("/api/rooms/{rid}/leave"), json!({}))
                .await
        )
        .await,
        204
    );

    // Recovery replays the membership story in order.
    let page: confab_shared::api::EventPage = bob
        .get(&format!("/api/rooms/{rid}/events"))
        .await
        .json()
        .await
        .unwrap();
    let story: Vec<&str> = page.events.iter().map(RoomEvent::kind).collect();
    assert_eq!(
        story,
        [
            "member_added",
            "member_added",
            "role_changed",
            "room_updated",
            "member_removed",
            "message",
            "member_added",
            "role_changed",
            "role_changed",
            "member_removed"
        ]
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_rooms_bans_and_joining() {
    let server = TestServer::start().await;
    let ann = server.register("ann").await;
    let eve = server.register("eve").await;
    let room = ann.create_room("open").await;
    assert!(rooms(&eve, "discover")
        .await
        .iter()
        .any(|r| r.id == room.id));
    eve.join(&room).await;
    assert_eq!(
        status(
            ann.post(&format!("/api/rooms/{}/bans", room.id), user_body(&eve))
                .await
        )
        .await,
        204
    );
    assert!(rooms(&eve, "joined").await.iter().all(|r| r.id != room.id));
    assert!(
        rooms(&eve, "discover")
            .await
            .iter()
            .all(|r| r.id != room.id),
        "banned: not offered"
    );
    assert_eq!(
        status(
            eve.post(&format!("/api/rooms/{}/join", room.id), json!({}))
                .await
        )
        .await,
        403
    );
    assert_eq!(
        status(
            eve.post(&format!("/api/rooms/{}/bans", room.id), user_body(&ann))
                .await
        )
        .await,
        403
    );
    assert_eq!(
        status(
            ann.post(&format!("/api/rooms/{}/bans", room.id), user_body(&ann))
                .await
        )
        .await,
        422,
        "no banning yourself"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_messages_and_finding_people() {
    let server = TestServer::start().await;
    let ann = server.register("ann").await;
    let bob = server.register("bob").await;
    let eve = server.register("eve").await;
    let found: UserPage = ann.get("/api/users?q=Bo").await.json().await.unwrap();
    assert_eq!(found.users.len(), 1);
    assert_eq!(found.users[0].id, bob.me.id);
    let text = ann.get("/api/users?q=").await.text().await.unwrap();
    assert!(
        !text.contains("@example.com"),
        "never e-mail addresses: {text}"
    );
    let (anon, _) = Client::anonymous(&server);
    assert_eq!(
        anon.get(server.url("/api/users?q=a"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );

    let mut b = bob.ws().await;
    let res = ann.post("/api/dms", json!({"users": [bob.me.id]})).await;
    assert_eq!(res.status(), 200);
    let dm: Room = res.json().await.unwrap();
    assert_eq!(
        (dm.kind, dm.visibility, dm.name.as_str()),
        (RoomKind::Dm, Visibility::Private, "")
    );
    assert_eq!(
        dm.dm_with.iter().map(|u| u.id).collect::<Vec<_>>(),
        [bob.me.id]
    );
    assert!(matches!(
        b.expect(|f| matches!(f, ServerFrame::Membership { .. }))
            .await,
        ServerFrame::Membership { member: true, .. }
    ));
    // The same conversation every time, whoever asks.
    let again: Room = bob
        .post("/api/dms", json!({"users": [ann.me.id, bob.me.id]}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again.id, dm.id);
    assert_eq!(again.dm_with[0].id, ann.me.id);
    assert!(rooms(&bob, "joined").await.iter().any(|r| r.id == dm.id));
    for scope in ["discover", "all"] {
        assert!(rooms(&eve, scope).await.iter().all(|r| r.id != dm.id));
    }
    // Bob writes; Eve can do nothing with it.
    b.subscribe(&dm, None).await;
    b.say(&dm, "b1", "hi ann").await;
    assert_eq!(
        status(eve.get(&format!("/api/rooms/{}/messages", dm.id)).await).await,
        404
    );
    assert_eq!(
        status(
            eve.post(&format!("/api/rooms/{}/join", dm.id), json!({}))
                .await
        )
        .await,
        404
    );
    // No membership changes in a direct conversation.
    assert_eq!(
        status(
            ann.post(&format!("/api/rooms/{}/members", dm.id), user_body(&eve))
                .await
        )
        .await,
        403
    );
    assert_eq!(
        status(
            ann.patch(&format!("/api/rooms/{}", dm.id), json!({"name": "x"}))
                .await
        )
        .await,
        403
    );

    // Refused: yourself only, nobody, too many, unknown people.
    let mut many = Vec::new();
    for i in 0..9 {
        many.push(server.register(&format!("user{i}")).await.me.id);
    }
    for (users, why) in [
        (json!([ann.me.id]), "only yourself"),
        (json!([]), "nobody"),
        (json!(many), "nine others"),
        (json!([uuid::Uuid::now_v7()]), "unknown"),
    ] {
        let res = ann.post("/api/dms", json!({"users": users})).await;
        assert_eq!(res.status(), 422, "{why}");
    }
    let eight: Room = ann
        .post("/api/dms", json!({"users": &many[..8]}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(eight.dm_with.len(), 8);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_reactions_mentions_and_pins() {
    let server = TestServer::start().await;
    let ann = server.register("ann").await;
    let bob = server.register("bob").await;
    let eve = server.register("eve").await;
    let room = ann.create_room("general").await;
    let elsewhere = ann.create_room("elsewhere").await;
    bob.join(&room).await;
    let mut a = ann.ws().await;
    a.subscribe(&room, None).await;
    let mut b = bob.ws().await; // Bob watches the room without subscribing

    // A mention: Bob's activity says so, and his room counts it.
    let (parent, _) = a
        .say(&room, "a1", "hello @Bob and @nobody, see `@eve`")
        .await;
    match b
        .expect(|f| matches!(f, ServerFrame::Activity { .. }))
        .await
    {
        ServerFrame::Activity { mention, .. } => assert!(mention),
        _ => unreachable!(),
    }
    let (_, plain) = a.say(&room, "a2", "no mention here").await;
    match b
        .expect(|f| matches!(f, ServerFrame::Activity { .. }))
        .await
    {
        ServerFrame::Activity { mention, seq, .. } => assert!(!mention && seq == plain),
        _ => unreachable!(),
    }
    let r = rooms(&bob, "joined")
        .await
        .into_iter()
        .find(|r| r.id == room.id)
        .unwrap();
    assert_eq!((r.unread, r.mentions), (2, 1));
    let page = history(&bob, &room).await;
    let first = page
        .messages
        .iter()
        .find(|m| m.id.to_string() == parent)
        .unwrap();
    assert_eq!(first.mentions, [bob.me.id], "only members, not in code");

    // A reply quotes its parent; one to another room's message is refused.
    b.subscribe(&room, None).await;
    b.send(json!({"type": "send", "room": room.id, "client_msg_id": "b1", "body": "answer", "reply_to": parent}))
        .await;
    let reply = match b
        .expect(|f| matches!(f, ServerFrame::Entry(RoomEvent::Message(_))))
        .await
    {
        ServerFrame::Entry(RoomEvent::Message(m)) => m,
        _ => unreachable!(),
    };
    let quote = reply.reply_to.clone().unwrap();
    assert_eq!(
        (quote.id.to_string(), quote.author.id, quote.deleted),
        (parent.clone(), ann.me.id, false)
    );
    assert!(quote.excerpt.starts_with("hello @Bob"));
    let (other_msg, _) = {
        a.subscribe(&elsewhere, None).await;
        a.say(&elsewhere, "x1", "elsewhere").await
    };
    b.send(json!({"type": "send", "room": room.id, "client_msg_id": "b2", "body": "bad", "reply_to": other_msg}))
        .await;
    assert_eq!(
        code_of(
            &b.expect(|f| matches!(f, ServerFrame::Error { reference: Some(r), .. } if r == "b2"))
                .await
        ),
        ErrorCode::Validation
    );

    // Reactions: over the socket and HTTP, one per user and emoji; not by outsiders.
    let react = |emoji: &str, on: bool, r: &str| json!({"type": "react", "room": room.id, "message": parent, "emoji": emoji, "on": on, "ref": r});
    assert!(matches!(
        b.change(react("👍", true, "r1")).await,
        ServerFrame::Ack { .. }
    ));
    assert!(
        matches!(
            b.change(react("👍", true, "r2")).await,
            ServerFrame::Ack { .. }
        ),
        "again: no change"
    );
    assert!(matches!(
        b.change(react("❤", true, "r3")).await,
        ServerFrame::Ack { .. }
    ));
    assert_eq!(
        code_of(&b.change(react("not an emoji", true, "r4")).await),
        ErrorCode::Validation
    );
    assert_eq!(
        code_of(&b.change(react("👍👍", true, "r5")).await),
        ErrorCode::Validation
    );
    let res = ann
        .put(
            &format!("/api/messages/{parent}/reactions/{}", urlencode("👍")),
            json!({}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let res = eve
        .put(
            &format!("/api/messages/{parent}/reactions/{}", urlencode("👍")),
            json!({}),
        )
        .await;
    assert_eq!(res.status(), 404, "not a member");
    let mut e = eve.ws().await;
    assert_eq!(
        code_of(&e.change(react("👍", true, "e1")).await),
        ErrorCode::Forbidden
    );
    assert!(matches!(entry(&mut a, "reaction").await, RoomEvent::Reaction(r) if r.on));
    let page = history(&ann, &room).await;
    let m = page
        .messages
        .iter()
        .find(|m| m.id.to_string() == parent)
        .unwrap();
    let thumbs = m
        .reactions
        .iter()
        .find(|r| r.emoji.as_str() == "👍")
        .unwrap();
    assert_eq!(
        (thumbs.count, thumbs.me, thumbs.users.clone()),
        (2, true, vec![bob.me.id, ann.me.id])
    );
    let heart = m
        .reactions
        .iter()
        .find(|r| r.emoji.as_str() == "❤\u{fe0f}")
        .unwrap();
    assert_eq!((heart.count, heart.me), (1, false));
    assert!(matches!(
        b.change(react("❤️", false, "r6")).await,
        ServerFrame::Ack { .. }
    ));
    let page = history(&bob, &room).await;
    let m = page
        .messages
        .iter()
        .find(|m| m.id.to_string() == parent)
        .unwrap();
    assert_eq!(
        m.reactions.len(),
        1,
        "the heart was taken back: {:?}",
        m.reactions
    );
    assert!(m.reactions[0].me, "Bob's view: he reacted 👍");

    // Pins: any member of a public room.
    let res = bob
        .put(&format!("/api/messages/{parent}/pin"), json!({}))
        .await;
    assert_eq!(res.status(), 200);
    assert!(matches!(entry(&mut a, "pinned").await, RoomEvent::Pinned(p) if p.by.id == bob.me.id));
    let pins: Vec<Pin> = ann
        .get(&format!("/api/rooms/{}/pins", room.id))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(pins.len(), 1);
    assert_eq!(
        (pins[0].message.id.to_string(), pins[0].by.id),
        (parent.clone(), bob.me.id)
    );
    assert_eq!(
        status(eve.get(&format!("/api/rooms/{}/pins", room.id)).await).await,
        403
    );
    assert_eq!(
        status(ann.delete(&format!("/api/messages/{parent}/pin")).await).await,
        200
    );
    let pins: Vec<Pin> = ann
        .get(&format!("/api/rooms/{}/pins", room.id))
        .await
        .json()
        .await
        .unwrap();
    assert!(pins.is_empty());

    // Private rooms: only the owner and admins pin.
    let private = ann.create_private_room("hush").await;
    ann.post(
        &format!("/api/rooms/{}/members", private.id),
        user_body(&bob),
    )
    .await;
    a.subscribe(&private, None).await;
    let (secret, _) = a.say(&private, "p1", "pin me").await;
    assert_eq!(
        status(
            bob.put(&format!("/api/messages/{secret}/pin"), json!({}))
                .await
        )
        .await,
        403
    );
    assert_eq!(
        status(
            ann.put(&format!("/api/messages/{secret}/pin"), json!({}))
                .await
        )
        .await,
        200
    );

    // Deleting the parent: the reply's quote shows it deleted, with no text.
    assert!(matches!(
        a.delete(&room, &parent, "d1").await,
        ServerFrame::Ack { .. }
    ));
    let page = history(&bob, &room).await;
    let answer = page.messages.iter().find(|m| m.id == reply.id).unwrap();
    let quote = answer.reply_to.as_ref().unwrap();
    assert!(quote.deleted && quote.excerpt.is_empty(), "{quote:?}");
    server.stop().await;
}

fn urlencode(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

/// Bob is away while Ann reacts, pins, renames and adds someone; Bob comes back and recovers
/// all of it in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reactions_pins_and_membership_are_recovered_after_a_disconnect() {
    let server = TestServer::start().await;
    let ann = server.register("ann").await;
    let bob = server.register("bob").await;
    let carl = server.register("carl").await;
    let room = ann.create_room("general").await;
    bob.join(&room).await;
    let mut a = ann.ws().await;
    a.subscribe(&room, None).await;
    let (id, _) = a.say(&room, "a1", "react to me").await;
    let mut b = bob.ws().await;
    let ServerFrame::Subscribed { last_seq: seen, .. } = b.subscribe(&room, None).await else {
        unreachable!()
    };
    drop(b);
    a.change(json!({"type": "react", "room": room.id, "message": id, "emoji": "🎉", "on": true, "ref": "x1"}))
        .await;
    assert_eq!(
        status(ann.put(&format!("/api/messages/{id}/pin"), json!({})).await).await,
        200
    );
    assert_eq!(
        status(
            ann.patch(&format!("/api/rooms/{}", room.id), json!({"topic": "news"}))
                .await
        )
        .await,
        200
    );
    assert_eq!(
        status(
            ann.post(&format!("/api/rooms/{}/members", room.id), user_body(&carl))
                .await
        )
        .await,
        200
    );
    let mut b = bob.ws().await;
    let (replayed, _, recovered) = b.recover(&room, seen).await;
    assert!(recovered);
    assert_eq!(
        replayed.iter().map(RoomEvent::kind).collect::<Vec<_>>(),
        ["reaction", "pinned", "room_updated", "member_added"]
    );
    match &replayed[0] {
        RoomEvent::Reaction(r) => {
            assert_eq!((r.emoji.as_str(), r.user.id, r.on), ("🎉", ann.me.id, true))
        }
        other => panic!("{other:?}"),
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_words_literally_in_your_rooms_only() {
    let server = TestServer::start_with(|c| {
        c.send_rate = 1000;
        c.frame_rate = 1000;
    })
    .await;
    let ann = server.register("ann").await;
    let bob = server.register("bob").await;
    let eve = server.register("eve").await;
    let room = ann.create_room("general").await;
    let secret = ann.create_private_room("secret").await;
    let dm: Room = ann
        .post("/api/dms", json!({"users": [bob.me.id]}))
        .await
        .json()
        .await
        .unwrap();
    bob.join(&room).await;
    let mut a = ann.ws().await;
    for r in [&room, &secret, &dm] {
        a.subscribe(r, None).await;
    }
    a.say(&room, "g1", "the quarterly report is late").await;
    a.say(&room, "g2", "report report report: all about the report")
        .await;
    a.say(&room, "g3", "100% sure, a_b and \"quoted\" OR NOT")
        .await;
    a.say(&secret, "s1", "secret report for ann only").await;
    a.say(&dm, "d1", "dm report between ann and bob").await;
    for i in 0..25 {
        a.say(
            &room,
            &format!("p{i}"),
            &format!("paging needle number {i}"),
        )
        .await;
    }
    async fn search(c: &Client, q: &str) -> SearchPage {
        let res = c.get(&format!("/api/search?q={}", urlencode(q))).await;
        assert_eq!(res.status(), 200, "{q}");
        res.json().await.unwrap()
    }
    // Bob sees the general room and the DM, not the private room.
    let found = search(&bob, "report").await;
    let rooms_found: std::collections::HashSet<_> = found.results.iter().map(|h| h.room).collect();
    assert!(rooms_found.contains(&room.id) && rooms_found.contains(&dm.id));
    assert!(!rooms_found.contains(&secret.id));
    assert!(found.results[0]
        .excerpt
        .iter()
        .any(|p| p.hit && p.text.eq_ignore_ascii_case("report")));
    assert!(found.results[0].seq > 0);
    // Ranked: the message with the word four times comes first.
    let in_room: SearchPage = bob
        .get(&format!("/api/search?q=report&room={}", room.id))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(in_room.results.len(), 2);
    assert!(in_room.results[0].excerpt.iter().filter(|p| p.hit).count() >= 2);
    // Eve finds nothing and may not search a room she is not in.
    assert!(search(&eve, "report").await.results.is_empty());
    assert_eq!(
        status(
            eve.get(&format!("/api/search?q=report&room={}", secret.id))
                .await
        )
        .await,
        404
    );
    // What is typed is never query syntax: no wildcards, operators or errors.
    for q in [
        "%",
        "_",
        "\"",
        "report OR nothing",
        "NOT report",
        "repo*",
        "NEAR(report late)",
        "body:report",
        "'",
        "a_b",
        "%report%",
    ] {
        let page = search(&ann, q).await;
        for hit in &page.results {
            let text: String = hit.excerpt.iter().map(|p| p.text.as_str()).collect();
            let words: Vec<String> = q
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
                .map(str::to_lowercase)
                .collect();
            assert!(
                words
                    .iter()
                    .all(|w| text.to_lowercase().contains(w.as_str())),
                "{q:?} found {text:?}"
            );
        }
        if q == "report OR nothing" || q == "NOT report" {
            assert!(
                page.results.is_empty(),
                "{q:?} is literal words: {:?}",
                page.results
            );
        }
    }
    assert_eq!(
        search(&ann, "repo*").await.results.len(),
        0,
        "no prefix search"
    );
    assert_eq!(
        search(&ann, "OR NOT").await.results.len(),
        1,
        "the words themselves match"
    );
    assert_eq!(status(ann.get("/api/search?q=").await).await, 422);
    // Keyset paging: 25 results in pages of 10, each once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = "/api/search?q=needle&limit=10".to_string();
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: SearchPage = ann.get(&url).await.json().await.unwrap();
        seen.extend(page.results.iter().map(|h| h.seq));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (25, 25));
    // Jump to a result: a page around its seq.
    let target = seen[12];
    let around: MessagePage = ann
        .get(&format!(
            "/api/rooms/{}/messages?around_seq={target}&limit=10",
            room.id
        ))
        .await
        .json()
        .await
        .unwrap();
    assert!(around.messages.iter().any(|m| m.seq == target));
    assert!(around.has_more && around.has_newer);
    assert_eq!(around.messages.len(), 10);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_receipts_are_shared_unless_kept_private() {
    let server = TestServer::start().await;
    let ann = server.register("ann").await;
    let bob = server.register("bob").await;
    let carl = server.register("carl").await;
    let room = ann.create_room("general").await;
    bob.join(&room).await;
    carl.join(&room).await;
    let mut a = ann.ws().await;
    a.subscribe(&room, None).await;
    let (_, seq) = a.say(&room, "a1", "read me").await;
    let mut b = bob.ws().await;
    b.subscribe(&room, None).await;
    b.send(json!({"type": "read", "room": room.id, "seq": seq}))
        .await;
    match a.expect(|f| matches!(f, ServerFrame::Read { .. })).await {
        ServerFrame::Read {
            user,
            seq: s,
            room: r,
        } => {
            assert_eq!((user.id, s, r), (bob.me.id, seq, room.id))
        }
        _ => unreachable!(),
    }
    let receipts: Vec<Receipt> = ann
        .get(&format!("/api/rooms/{}/receipts", room.id))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        receipts
            .iter()
            .find(|r| r.user.id == bob.me.id)
            .unwrap()
            .seq,
        seq
    );

    // Carl keeps his to himself: nobody hears of his reading, he still sees his own.
    let res = carl
        .patch("/api/me", json!({"share_read_receipts": false}))
        .await;
    assert_eq!(res.status(), 200);
    let res = carl
        .post(&format!("/api/rooms/{}/read", room.id), json!({"seq": seq}))
        .await;
    assert_eq!(res.status(), 204);
    a.quiet_for(Duration::from_millis(400)).await;
    let receipts: Vec<Receipt> = ann
        .get(&format!("/api/rooms/{}/receipts", room.id))
        .await
        .json()
        .await
        .unwrap();
    assert!(receipts.iter().all(|r| r.user.id != carl.me.id));
    let own: Vec<Receipt> = carl
        .get(&format!("/api/rooms/{}/receipts", room.id))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        own.iter().find(|r| r.user.id == carl.me.id).unwrap().seq,
        seq
    );
    assert_eq!(
        status(
            carl.patch("/api/me", json!({"share_read_receipts": "no"}))
                .await
        )
        .await,
        400
    );
    assert_eq!(
        status(carl.patch("/api/me", json!({"nonsense": true})).await).await,
        400
    );
    server.stop().await;
}
