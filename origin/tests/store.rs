//! One store test suite, run against SQLite and PostgreSQL (a fresh database per test on the
//! local server at CONFAB_TEST_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/postgres).
#![allow(clippy::unwrap_used)]

use confab_origin::store::postgres::PgStore;
use confab_origin::store::sqlite::SqliteStore;
use confab_origin::store::{
    AppendOutcome, DynStore, LogEntry, NewUser, RefreshOutcome, RoomQuery, RoomRecord, SearchQuery,
    StoreError,
};
use confab_shared::api::{RoomScope, SearchHit};
use confab_shared::conversation::{RoomKind, RoomRole, Visibility};
use confab_shared::events::{MessageDeleted, MessageEdited, RoomEvent};
use confab_shared::ids::{ClientMsgId, ClientRef, MessageId, RoomId, SessionId, UserId};
use confab_shared::protocol::{ChatMessage, UserPublic};
use sqlx::Connection;
use std::sync::Arc;
use uuid::Uuid;

fn admin_url() -> String {
    std::env::var("CONFAB_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A store plus whatever must outlive it (temp dir, database name).
struct Fixture {
    store: DynStore,
    _dir: Option<tempfile::TempDir>,
    pg_db: Option<String>,
}

impl Fixture {
    async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        Self {
            store: Arc::new(SqliteStore::connect(&url).await.unwrap()),
            _dir: Some(dir),
            pg_db: None,
        }
    }

    async fn postgres() -> Self {
        let name = format!("confab_t_{}", Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&admin_url()).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap();
        let mut url = url::Url::parse(&admin_url()).unwrap();
        url.set_path(&name);
        Self {
            store: Arc::new(PgStore::connect(url.as_str(), 5).await.unwrap()),
            _dir: None,
            pg_db: Some(name),
        }
    }

    async fn finish(self) {
        self.store.close().await;
        if let Some(name) = self.pg_db {
            let mut admin = sqlx::PgConnection::connect(&admin_url()).await.unwrap();
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut admin)
                .await
                .unwrap();
        }
    }
}

async fn user(store: &DynStore, name: &str) -> UserPublic {
    let u = store
        .create_user(NewUser {
            id: UserId(Uuid::now_v7()),
            username: name.into(),
            username_folded: name.to_lowercase(),
            email: format!("{name}@example.com"),
            email_folded: format!("{}@example.com", name.to_lowercase()),
            password_hash: "hash".into(),
            created_at: 1,
        })
        .await
        .unwrap();
    u.public()
}

async fn room(store: &DynStore, name: &str, by: &UserPublic) -> RoomId {
    let id = RoomId(Uuid::now_v7());
    store
        .create_room(RoomRecord {
            id,
            name: name.into(),
            kind: RoomKind::Room,
            visibility: Visibility::Public,
            topic: None,
            created_by: by.id,
            created_at: 2,
        })
        .await
        .unwrap();
    id
}

fn chat(room: RoomId, seq: i64, author: &UserPublic, cmid: &str) -> ChatMessage {
    ChatMessage {
        id: MessageId(Uuid::now_v7()),
        room,
        seq,
        author: author.clone(),
        bot: false,
        client_msg_id: ClientMsgId::parse(cmid).unwrap(),
        body: format!("body {seq}"),
        attachment: None,
        created_at: 10 + seq,
        edited_at: None,
        deleted_at: None,
        reply_to: None,
        mentions: Vec::new(),
        reactions: Vec::new(),
        pinned: false,
    }
}

fn msg(room: RoomId, seq: i64, author: &UserPublic, cmid: &str) -> LogEntry {
    LogEntry::message(chat(room, seq, author, cmid))
}

fn id_of(entry: &LogEntry) -> MessageId {
    entry.event.message_id().unwrap()
}

fn edit(of: &LogEntry, seq: i64, body: &str, by: &UserPublic, reference: &str) -> LogEntry {
    LogEntry {
        actor: by.id,
        reference: ClientRef::parse(reference).unwrap(),
        at: 100 + seq,
        event: RoomEvent::Edited(MessageEdited {
            room: of.event.room(),
            seq,
            id: id_of(of),
            body: body.into(),
            edited_at: 100 + seq,
        }),
    }
}

fn delete(of: &LogEntry, seq: i64, by: &UserPublic, reference: &str) -> LogEntry {
    LogEntry {
        actor: by.id,
        reference: ClientRef::parse(reference).unwrap(),
        at: 100 + seq,
        event: RoomEvent::Deleted(MessageDeleted {
            room: of.event.room(),
            seq,
            id: id_of(of),
        }),
    }
}

fn seqs(events: &[RoomEvent]) -> Vec<i64> {
    events.iter().map(RoomEvent::seq).collect()
}

async fn users_are_unique_regardless_of_case(store: DynStore) {
    user(&store, "Ann").await;
    let clash = store
        .create_user(NewUser {
            id: UserId(Uuid::now_v7()),
            username: "ANN".into(),
            username_folded: "ann".into(),
            email: "x@example.com".into(),
            email_folded: "x@example.com".into(),
            password_hash: "h".into(),
            created_at: 1,
        })
        .await;
    assert!(matches!(
        clash,
        Err(StoreError::Conflict("username is taken"))
    ));
    assert_eq!(
        store.user_by_login("ann").await.unwrap().unwrap().username,
        "Ann"
    );
    assert!(store
        .user_by_login("ann@example.com")
        .await
        .unwrap()
        .is_some());
    assert!(store.user_by_login("nobody").await.unwrap().is_none());
}

async fn refresh_tokens_rotate_and_reuse_revokes(store: DynStore) {
    let ann = user(&store, "ann").await;
    let sid = SessionId(Uuid::new_v4());
    store
        .create_session(sid, ann.id, b"t1", 1_000, 0)
        .await
        .unwrap();
    assert_eq!(
        store.rotate_refresh(b"t1", b"t2", 1_000, 1).await.unwrap(),
        RefreshOutcome::Rotated {
            user: ann.id,
            session: sid
        }
    );
    assert_eq!(
        store.rotate_refresh(b"t1", b"t3", 1_000, 2).await.unwrap(),
        RefreshOutcome::Reused {
            user: ann.id,
            session: sid
        }
    );
    assert!(!store.session_active(sid).await.unwrap());
    assert_eq!(
        store.rotate_refresh(b"t2", b"t4", 1_000, 3).await.unwrap(),
        RefreshOutcome::Invalid
    );
    let sid2 = SessionId(Uuid::new_v4());
    store
        .create_session(sid2, ann.id, b"u1", 5, 0)
        .await
        .unwrap();
    assert_eq!(
        store.rotate_refresh(b"u1", b"u2", 1_000, 6).await.unwrap(),
        RefreshOutcome::Invalid,
        "expired"
    );
    assert_eq!(
        store.revoke_user_sessions(ann.id, 7).await.unwrap(),
        vec![sid2]
    );
}

async fn sessions_are_checked_many_at_once(store: DynStore) {
    let ann = user(&store, "ann").await;
    let (live, revoked) = (SessionId(Uuid::new_v4()), SessionId(Uuid::new_v4()));
    store
        .create_session(live, ann.id, b"l1", 1_000, 0)
        .await
        .unwrap();
    store
        .create_session(revoked, ann.id, b"r1", 1_000, 0)
        .await
        .unwrap();
    store.revoke_session(revoked, 1).await.unwrap();
    // More than one statement's worth, most of them unknown.
    let mut asked: Vec<SessionId> = (0..2500).map(|_| SessionId(Uuid::new_v4())).collect();
    asked.insert(1200, revoked);
    asked.push(live);
    let active = store.sessions_active(&asked).await.unwrap();
    assert_eq!(active, std::collections::HashSet::from([live]));
    assert!(store.sessions_active(&[]).await.unwrap().is_empty());
}

async fn rooms_list_by_scope_search_and_cursor(store: DynStore) {
    let ann = user(&store, "ann").await;
    let bob = user(&store, "bob").await;
    let mut ids = Vec::new();
    for name in ["Alpha", "beta", "Gamma_1", "gamma%2", "delta"] {
        ids.push(room(&store, name, &ann).await);
    }
    assert!(matches!(
        store
            .create_room(RoomRecord {
                id: RoomId(Uuid::now_v7()),
                name: "ALPHA".into(),
                kind: RoomKind::Room,
                visibility: Visibility::Public,
                topic: None,
                created_by: bob.id,
                created_at: 3
            })
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(store
        .add_member(ids[1], bob.id, RoomRole::Member, 4)
        .await
        .unwrap());
    assert!(!store
        .add_member(ids[1], bob.id, RoomRole::Member, 4)
        .await
        .unwrap());
    let q = |scope, name: Option<&str>, limit| RoomQuery {
        user: bob.id,
        scope,
        name_contains: name.map(str::to_owned),
        after: None,
        limit,
    };
    let joined = store
        .list_rooms(&q(RoomScope::Joined, None, 10))
        .await
        .unwrap();
    assert_eq!(
        joined
            .iter()
            .map(|(r, _)| r.name.as_str())
            .collect::<Vec<_>>(),
        ["beta"]
    );
    let discover = store
        .list_rooms(&q(RoomScope::Discover, None, 10))
        .await
        .unwrap();
    assert_eq!(discover.len(), 4);
    let gamma = store
        .list_rooms(&q(RoomScope::All, Some("GAMMA"), 10))
        .await
        .unwrap();
    assert_eq!(gamma.len(), 2);
    let pct = store
        .list_rooms(&q(RoomScope::All, Some("%"), 10))
        .await
        .unwrap();
    assert_eq!(
        pct.iter().map(|(r, _)| r.name.as_str()).collect::<Vec<_>>(),
        ["gamma%2"]
    );
    // Keyset paging: two at a time, limit+1 rows tell there is more.
    let mut names = Vec::new();
    let mut after = None;
    loop {
        let mut page = store
            .list_rooms(&RoomQuery {
                after: after.clone(),
                ..q(RoomScope::All, None, 2)
            })
            .await
            .unwrap();
        let more = page.len() > 2;
        page.truncate(2);
        after = page.last().map(|(_, c)| c.clone());
        names.extend(page.into_iter().map(|(r, _)| r.name));
        if !more {
            break;
        }
    }
    assert_eq!(names.len(), 5);
    let mut unique = names.clone();
    unique.dedup();
    assert_eq!(unique.len(), 5, "no repeats across pages");
    assert_eq!(&names[..3], ["Alpha", "beta", "delta"]);
    assert!(store.remove_member(ids[1], bob.id).await.unwrap());
    assert!(!store.is_member(ids[1], bob.id).await.unwrap());
    assert!(store.is_member(ids[0], ann.id).await.unwrap());
    assert_eq!(store.members(ids[0]).await.unwrap().len(), 1);
}

async fn messages_batch_dedupe_history_and_unread(store: DynStore) {
    let ann = user(&store, "ann").await;
    let bob = user(&store, "bob").await;
    let r = room(&store, "general", &ann).await;
    store
        .add_member(r, bob.id, RoomRole::Member, 3)
        .await
        .unwrap();
    let batch: Vec<LogEntry> = (1..=5).map(|s| msg(r, s, &ann, &format!("c{s}"))).collect();
    let out = store.append(&batch).await.unwrap();
    assert!(out.iter().all(|o| *o == AppendOutcome::Appended));
    // A resend of c2 with another seq, plus a duplicate inside the same batch.
    let again = vec![
        msg(r, 6, &ann, "c2"),
        msg(r, 7, &bob, "b1"),
        msg(r, 8, &bob, "b1"),
    ];
    let out = store.append(&again).await.unwrap();
    assert_eq!(
        out[0],
        AppendOutcome::Duplicate {
            id: Some(id_of(&batch[1])),
            seq: 2
        }
    );
    assert_eq!(out[1], AppendOutcome::Appended);
    assert!(matches!(out[2], AppendOutcome::Duplicate { seq: 7, .. }));
    assert_eq!(store.last_seq(r).await.unwrap(), 7);

    let page = store.messages_before(r, None, 3, ann.id).await.unwrap();
    assert_eq!(page.iter().map(|m| m.seq).collect::<Vec<_>>(), [4, 5, 7]);
    let page = store.messages_before(r, Some(4), 10, ann.id).await.unwrap();
    assert_eq!(page.iter().map(|m| m.seq).collect::<Vec<_>>(), [1, 2, 3]);
    let after = store.events_after(r, 3, 10).await.unwrap();
    assert_eq!(seqs(&after), [4, 5, 7]);
    assert!(matches!(&after[0], RoomEvent::Message(m) if m.author.username == "ann"));

    assert_eq!(store.unread(r, bob.id).await.unwrap(), 5);
    assert_eq!(store.unread(r, ann.id).await.unwrap(), 1);
    assert_eq!(store.mark_read(r, bob.id, 4).await.unwrap(), 4);
    assert_eq!(
        store.mark_read(r, bob.id, 2).await.unwrap(),
        4,
        "never moves back"
    );
    assert_eq!(store.unread(r, bob.id).await.unwrap(), 1);
    let rooms = store.member_rooms(bob.id).await.unwrap();
    assert_eq!((rooms[0].last_read_seq, rooms[0].unread), (4, 1));

    // Edits and deletions are entries of the same log.
    let out = store
        .append(&[
            edit(&batch[4], 9, "edited", &ann, "e1"),
            delete(&batch[3], 10, &ann, "d1"),
        ])
        .await
        .unwrap();
    assert_eq!(out, [AppendOutcome::Appended, AppendOutcome::Appended]);
    let five = store.message(id_of(&batch[4])).await.unwrap().unwrap();
    assert_eq!((five.body.as_str(), five.edited_at), ("edited", Some(109)));
    let four = store.message(id_of(&batch[3])).await.unwrap().unwrap();
    assert!(four.is_deleted() && four.body.is_empty());
    let history = store.messages_before(r, None, 10, ann.id).await.unwrap();
    assert_eq!(
        history.iter().map(|m| m.seq).collect::<Vec<_>>(),
        [1, 2, 3, 5, 7],
        "history shows messages as they are now: the deleted one is gone"
    );
    assert_eq!(store.last_seq(r).await.unwrap(), 10);
    assert_eq!(
        store.unread(r, bob.id).await.unwrap(),
        1,
        "5, edited, is still unread"
    );
    // A member who joins later starts with nothing unread.
    let carl = user(&store, "carl").await;
    store
        .add_member(r, carl.id, RoomRole::Member, 5)
        .await
        .unwrap();
    assert_eq!(store.unread(r, carl.id).await.unwrap(), 0);
    let room = store.room_for(r, carl.id).await.unwrap().unwrap();
    assert_eq!(
        (room.last_seq, room.member_count, room.joined),
        (10, 3, true),
        "the room's last seq is its log's"
    );
}

async fn the_log_replays_every_change_and_keeps_deleted_text_out(store: DynStore) {
    let ann = user(&store, "ann").await;
    let r = room(&store, "log", &ann).await;
    let (one, two) = (msg(r, 1, &ann, "m1"), msg(r, 2, &ann, "m2"));
    store.append(&[one.clone(), two.clone()]).await.unwrap();
    store
        .append(&[
            edit(&one, 3, "first edit", &ann, "e1"),
            edit(&one, 4, "second edit", &ann, "e2"),
            edit(&two, 5, "doomed", &ann, "e3"),
            delete(&two, 6, &ann, "d1"),
        ])
        .await
        .unwrap();
    let log = store.events_after(r, 0, 100).await.unwrap();
    assert_eq!(seqs(&log), [1, 2, 3, 4, 5, 6], "every entry, in seq order");
    match &log[0] {
        RoomEvent::Message(m) => assert_eq!(m.body, "second edit", "messages as they are now"),
        other => panic!("{other:?}"),
    }
    match &log[1] {
        RoomEvent::Message(m) => assert!(m.is_deleted() && m.body.is_empty()),
        other => panic!("{other:?}"),
    }
    assert!(matches!(&log[2], RoomEvent::Edited(e) if e.body == "first edit"));
    assert!(
        matches!(&log[4], RoomEvent::Edited(e) if e.body.is_empty()),
        "a deleted message's edits lose their text: {:?}",
        log[4]
    );
    assert!(matches!(&log[5], RoomEvent::Deleted(d) if d.id == id_of(&two)));
    assert_eq!(seqs(&store.events_after(r, 2, 2).await.unwrap()), [3, 4]);

    // A resent change is answered with the first entry and adds nothing.
    let out = store
        .append(&[edit(&one, 7, "again", &ann, "e1")])
        .await
        .unwrap();
    assert_eq!(
        out,
        [AppendOutcome::Duplicate {
            id: Some(id_of(&one)),
            seq: 3
        }]
    );
    assert_eq!(
        store
            .entry_by_ref(r, ann.id, &ClientRef::parse("d1").unwrap())
            .await
            .unwrap(),
        Some((Some(id_of(&two)), 6))
    );
    assert_eq!(
        store
            .entry_by_ref(r, ann.id, &ClientRef::parse("none").unwrap())
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.last_seq(r).await.unwrap(), 6);
    // The namespaces of client_msg_ids and refs are separate.
    let out = store.append(&[msg(r, 8, &ann, "e1")]).await.unwrap();
    assert_eq!(out, [AppendOutcome::Appended]);
}

async fn entries_written_out_of_order_fold_the_same(store: DynStore) {
    let ann = user(&store, "ann").await;
    let r = room(&store, "order", &ann).await;
    // Two workers: the later batch (edits, a deletion) commits before the earlier one.
    let (one, two) = (msg(r, 1, &ann, "m1"), msg(r, 2, &ann, "m2"));
    store
        .append(&[
            edit(&one, 4, "newest", &ann, "e2"),
            edit(&one, 3, "older", &ann, "e1"),
            edit(&two, 5, "gone", &ann, "e3"),
            delete(&two, 6, &ann, "d1"),
        ])
        .await
        .unwrap();
    store.append(&[one.clone(), two.clone()]).await.unwrap();
    let now = store.message(id_of(&one)).await.unwrap().unwrap();
    assert_eq!(
        (now.body.as_str(), now.edited_at),
        ("newest", Some(104)),
        "the latest edit wins, whatever the order"
    );
    let gone = store.message(id_of(&two)).await.unwrap().unwrap();
    assert!(gone.is_deleted() && gone.body.is_empty());
    let log = store.events_after(r, 0, 100).await.unwrap();
    assert_eq!(seqs(&log), [1, 2, 3, 4, 5, 6]);
    assert!(matches!(&log[4], RoomEvent::Edited(e) if e.body.is_empty()));
    assert_eq!(
        store
            .messages_before(r, None, 10, UserId(Uuid::nil()))
            .await
            .unwrap()
            .iter()
            .map(|m| m.body.as_str())
            .collect::<Vec<_>>(),
        ["newest"]
    );
}

fn said(room: RoomId, seq: i64, author: &UserPublic, body: &str) -> LogEntry {
    let mut m = chat(room, seq, author, &format!("s{seq}"));
    m.body = body.into();
    LogEntry::message(m)
}

async fn search(
    store: &DynStore,
    user: &UserPublic,
    text: &str,
    room: Option<RoomId>,
) -> Vec<SearchHit> {
    store
        .search(&SearchQuery {
            user: user.id,
            text: text.into(),
            room,
            after: None,
            limit: 50,
        })
        .await
        .unwrap()
        .into_iter()
        .map(|(h, _)| h)
        .collect()
}

fn plain(hit: &SearchHit) -> String {
    hit.excerpt.iter().map(|p| p.text.as_str()).collect()
}

async fn search_is_literal_ranked_paged_and_for_members_only(store: DynStore) {
    let ann = user(&store, "ann").await;
    let bob = user(&store, "bob").await;
    let general = room(&store, "general", &ann).await;
    let secret = room(&store, "secret", &ann).await;
    store
        .add_member(general, bob.id, RoomRole::Member, 3)
        .await
        .unwrap();
    let mut entries = vec![
        said(general, 1, &ann, "the quarterly report is late"),
        said(
            general,
            2,
            &ann,
            "report report report, all about the report",
        ),
        said(general, 3, &ann, "100% sure: a_b, \"quoted\" OR NOT"),
        said(general, 4, &ann, "a report that will be deleted"),
        said(secret, 1, &ann, "the secret report"),
    ];
    for i in 0..12 {
        entries.push(said(general, 10 + i, &bob, &format!("needle number {i}")));
    }
    store.append(&entries).await.unwrap();
    store
        .append(&[delete(&entries[3], 30, &ann, "d1")])
        .await
        .unwrap();

    // Bob: his room only, the deleted one gone, the best match first, with highlights.
    let hits = search(&store, &bob, "report", None).await;
    assert_eq!(hits.iter().map(|h| h.seq).collect::<Vec<_>>(), [2, 1]);
    assert!(hits.iter().all(|h| h.room == general));
    assert!(hits[0]
        .excerpt
        .iter()
        .any(|p| p.hit && p.text.eq_ignore_ascii_case("report")));
    assert!(plain(&hits[1]).contains("quarterly report"));
    assert_eq!(hits[0].room_name, "general");
    // Ann sees both rooms; the room filter narrows.
    assert_eq!(search(&store, &ann, "report", None).await.len(), 3);
    assert_eq!(search(&store, &ann, "report", Some(secret)).await.len(), 1);
    assert!(search(&store, &bob, "report", Some(secret))
        .await
        .is_empty());
    // Literal words only: every word required, operators are words, no wildcards.
    assert_eq!(search(&store, &ann, "quarterly late", None).await.len(), 1);
    assert!(search(&store, &ann, "quarterly missing", None)
        .await
        .is_empty());
    for q in [
        "%",
        "_",
        "\"",
        "*",
        "report OR nothing",
        "repo*",
        "NEAR(report late)",
        "body:report",
    ] {
        let hits = search(&store, &ann, q, None).await;
        assert!(
            hits.is_empty(),
            "{q:?} matched {:?}",
            hits.iter().map(plain).collect::<Vec<_>>()
        );
    }
    assert_eq!(
        search(&store, &ann, "OR NOT", None)
            .await
            .iter()
            .map(|h| h.seq)
            .collect::<Vec<_>>(),
        [3],
        "the words themselves"
    );
    // Keyset paging: each once, in order.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .search(&SearchQuery {
                user: bob.id,
                text: "needle".into(),
                room: None,
                after: after.clone(),
                limit: 5,
            })
            .await
            .unwrap();
        let more = page.len() > 5;
        for (hit, cursor) in page.into_iter().take(5) {
            seen.push(hit.seq);
            after = Some(cursor);
        }
        if !more {
            break;
        }
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (12, 12), "{seen:?}");
}

/// Two workers commit a message and its edit at the same moment: whichever order the
/// transactions interleave in, the message ends edited.
async fn concurrent_batches_of_one_room_fold_the_same(store: DynStore) {
    let ann = user(&store, "ann").await;
    let r = room(&store, "race", &ann).await;
    let mut ids = Vec::new();
    for i in 0..40i64 {
        let message = msg(r, 2 * i + 1, &ann, &format!("m{i}"));
        let edited = edit(
            &message,
            2 * i + 2,
            &format!("edited {i}"),
            &ann,
            &format!("e{i}"),
        );
        ids.push((id_of(&message), format!("edited {i}")));
        let (a, b) = (store.clone(), store.clone());
        let first = tokio::spawn(async move { a.append(&[message]).await.unwrap() });
        let second = tokio::spawn(async move { b.append(&[edited]).await.unwrap() });
        first.await.unwrap();
        second.await.unwrap();
    }
    for (id, want) in ids {
        assert_eq!(store.message(id).await.unwrap().unwrap().body, want);
    }
}

async fn uploads_are_recorded_then_completed(store: DynStore) {
    let ann = user(&store, "ann").await;
    let r = room(&store, "files", &ann).await;
    let key = "0123456789abcdef0123456789abcdef".to_owned();
    let pending = confab_origin::store::UploadRecord {
        key: key.clone(),
        room: r,
        uploader: ann.id,
        name: "cat.png".into(),
        content_type: None,
        size: None,
        created_at: 5,
    };
    store.insert_upload(&pending).await.unwrap();
    assert_eq!(store.upload(&key).await.unwrap(), Some(pending.clone()));
    assert!(matches!(
        store.insert_upload(&pending).await,
        Err(confab_origin::store::StoreError::Conflict(_))
            | Err(confab_origin::store::StoreError::Database(_))
    ));
    store.complete_upload(&key, "image/png", 42).await.unwrap();
    let done = store.upload(&key).await.unwrap().unwrap();
    assert_eq!(
        (done.content_type.as_deref(), done.size),
        (Some("image/png"), Some(42))
    );
    assert_eq!(store.upload(&"f".repeat(32)).await.unwrap(), None);
}

async fn notifications_subscriptions_levels_settings_and_missed(store: DynStore) {
    use confab_origin::store::notify::PushSubscriptionRecord;
    use confab_shared::notify::NotificationLevel;
    let ann = user(&store, "ann").await;
    let bob = user(&store, "bob").await;
    let r = room(&store, "general", &ann).await;
    store
        .add_member(r, ann.id, RoomRole::Owner, 3)
        .await
        .unwrap();
    store
        .add_member(r, bob.id, RoomRole::Member, 3)
        .await
        .unwrap();

    // Subscriptions: one per endpoint (taken over by a re-subscription), by session, by user.
    let sid = SessionId(Uuid::now_v7());
    store
        .create_session(sid, bob.id, b"s", 1_000, 0)
        .await
        .unwrap();
    let sub = |endpoint: &str, user: UserId, session: Option<SessionId>| PushSubscriptionRecord {
        user,
        session,
        endpoint: endpoint.into(),
        p256dh: "p".into(),
        auth: "a".into(),
        created_at: 5,
    };
    store
        .put_push_subscription(&sub("https://e/1", bob.id, Some(sid)))
        .await
        .unwrap();
    store
        .put_push_subscription(&sub("https://e/2", ann.id, None))
        .await
        .unwrap();
    store
        .put_push_subscription(&sub("https://e/2", bob.id, None))
        .await
        .unwrap();
    assert_eq!(store.push_subscriptions(bob.id).await.unwrap().len(), 2);
    assert!(store.push_subscriptions(ann.id).await.unwrap().is_empty());
    assert_eq!(store.delete_session_push(sid).await.unwrap(), 1);
    assert!(!store
        .delete_push_subscription(ann.id, "https://e/2")
        .await
        .unwrap());
    assert!(store.delete_push_endpoint("https://e/2").await.unwrap());
    store
        .put_push_subscription(&sub("https://e/3", bob.id, None))
        .await
        .unwrap();

    // Recipients: the members with a push subscription (Ann has none left), with their
    // levels and settings; levels only for rooms one is a member of.
    let rs = store.notify_recipients(&[r]).await.unwrap();
    assert_eq!(rs.len(), 1);
    assert_eq!(
        (rs[0].room, rs[0].user, rs[0].level, rs[0].push_previews),
        (r, bob.id, None, true)
    );
    assert!(store.notify_recipients(&[]).await.unwrap().is_empty());
    store
        .set_notification_level(r, bob.id, NotificationLevel::All)
        .await
        .unwrap();
    store
        .set_notification_level(r, bob.id, NotificationLevel::None)
        .await
        .unwrap();
    store
        .set_notify_settings(bob.id, Some(false), None)
        .await
        .unwrap();
    let rs = store.notify_recipients(&[r]).await.unwrap();
    assert_eq!(
        (rs[0].level, rs[0].push_previews),
        (Some(NotificationLevel::None), false)
    );
    assert_eq!(
        store.notification_levels(bob.id).await.unwrap(),
        vec![(r, NotificationLevel::None)]
    );
    let s = store.notify_settings(bob.id).await.unwrap();
    assert_eq!((s.push_previews, s.email), (false, true));
    assert_eq!(store.delete_user_push(bob.id).await.unwrap(), 1);
    assert!(store.notify_recipients(&[r]).await.unwrap().is_empty());

    // Missed: unread mentions (not in a muted room), after the last digest; the e-mail link.
    let mut m1 = chat(r, 1, &ann, "m1");
    m1.mentions = vec![bob.id];
    let mut m2 = chat(r, 2, &ann, "m2");
    m2.mentions = vec![bob.id];
    let m3 = chat(r, 3, &ann, "m3");
    store
        .append(&[
            LogEntry::message(m1),
            LogEntry::message(m2),
            LogEntry::message(m3),
        ])
        .await
        .unwrap();
    assert!(
        store.missed_messages(0, 100, 10).await.unwrap().is_empty(),
        "muted"
    );
    store
        .set_notification_level(r, bob.id, NotificationLevel::Mentions)
        .await
        .unwrap();
    let missed = store.missed_messages(0, 100, 10).await.unwrap();
    assert_eq!(missed.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![1, 2]);
    assert!(missed
        .iter()
        .all(|m| m.user == bob.id && m.room_name == "general"));
    store.mark_read(r, bob.id, 1).await.unwrap();
    assert_eq!(
        store.missed_messages(0, 100, 10).await.unwrap().len(),
        1,
        "read ones are not missed"
    );
    store.set_digest_after(bob.id, 100).await.unwrap();
    assert!(
        store.missed_messages(0, 100, 10).await.unwrap().is_empty(),
        "sent once"
    );
    let token = store.email_token(bob.id, "fresh-token").await.unwrap();
    assert_eq!(
        store.email_token(bob.id, "other").await.unwrap(),
        token,
        "kept"
    );
    assert!(store.email_off(&token).await.unwrap());
    assert!(!store.email_off("nope").await.unwrap());
    assert!(!store.notify_settings(bob.id).await.unwrap().email);
}

/// A batch holding an entry the schema refuses (its room is not in this database) fails as a
/// whole, stores nothing, and says the data is refused (the worker sets such entries aside);
/// the same entries without it are stored.
async fn an_entry_the_schema_refuses_fails_its_batch_and_is_named_as_refused(store: DynStore) {
    let ann = user(&store, "ann").await;
    let r = room(&store, "general", &ann).await;
    let good = msg(r, 1, &ann, "c-1");
    let stray = msg(RoomId(Uuid::now_v7()), 1, &ann, "c-2");
    let later = msg(r, 2, &ann, "c-3");
    let e = store
        .append(&[good.clone(), stray, later.clone()])
        .await
        .unwrap_err();
    assert!(e.rejects_the_data(), "{e:?}");
    assert!(store.events_after(r, 0, 10).await.unwrap().is_empty());
    let outcomes = store.append(&[good, later]).await.unwrap();
    assert_eq!(outcomes.len(), 2);
    assert_eq!(seqs(&store.events_after(r, 0, 10).await.unwrap()), [1, 2]);
    // A database that is gone is not a refusal of the data: that is retried.
    store.close().await;
    let e = store.append(&[msg(r, 3, &ann, "c-4")]).await.unwrap_err();
    assert!(!e.rejects_the_data(), "{e:?}");
}

macro_rules! suite {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    let f = super::Fixture::sqlite().await;
                    super::$test(f.store.clone()).await;
                    f.finish().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    let f = super::Fixture::postgres().await;
                    super::$test(f.store.clone()).await;
                    f.finish().await;
                }
            )*
        }
    };
}

suite!(
    users_are_unique_regardless_of_case,
    refresh_tokens_rotate_and_reuse_revokes,
    sessions_are_checked_many_at_once,
    rooms_list_by_scope_search_and_cursor,
    messages_batch_dedupe_history_and_unread,
    the_log_replays_every_change_and_keeps_deleted_text_out,
    entries_written_out_of_order_fold_the_same,
    search_is_literal_ranked_paged_and_for_members_only,
    concurrent_batches_of_one_room_fold_the_same,
    uploads_are_recorded_then_completed,
    notifications_subscriptions_levels_settings_and_missed,
    an_entry_the_schema_refuses_fails_its_batch_and_is_named_as_refused,
);
