//! One broker test suite, run against the in-process broker and the Redis broker (local Redis
//! at CONFAB_TEST_REDIS_URL, default redis://127.0.0.1:6379), plus Redis-only tests with two
//! brokers standing for two instances.
#![allow(clippy::unwrap_used)]

use confab_origin::broker::memory::MemoryBroker;
use confab_origin::broker::redis::{RedisBroker, RedisSettings};
use confab_origin::broker::{Broker, BrokerError, Change, DynBroker, Hub, UserEvent};
use confab_origin::fanout::{Batch, Delivery, DeliveryKind, Mail, Mailbox};
use confab_origin::store::sqlite::SqliteStore;
use confab_origin::store::{DynStore, NewUser, RoomRecord};
use confab_shared::domain::MessageBody;
use confab_shared::events::RoomEvent;
use confab_shared::ids::{ClientMsgId, ClientRef, MessageId, RoomId, UserId};
use confab_shared::protocol::{ServerFrame, UserPublic};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

fn redis_url() -> String {
    std::env::var("CONFAB_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

struct Fixture {
    hub: Arc<Hub>,
    broker: DynBroker,
    store: DynStore,
    room: RoomId,
    ann: UserPublic,
    _dir: tempfile::TempDir,
}

async fn store_with_room() -> (DynStore, RoomId, UserPublic, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store: DynStore = Arc::new(
        SqliteStore::connect(&format!("sqlite://{}", dir.path().join("t.db").display()))
            .await
            .unwrap(),
    );
    let ann = store
        .create_user(NewUser {
            id: UserId(Uuid::now_v7()),
            username: "ann".into(),
            username_folded: "ann".into(),
            email: "ann@example.com".into(),
            email_folded: "ann@example.com".into(),
            password_hash: "h".into(),
            created_at: 1,
        })
        .await
        .unwrap()
        .public();
    let room = RoomId(Uuid::now_v7());
    store
        .create_room(RoomRecord {
            id: room,
            name: format!("r{room}"),
            kind: confab_shared::conversation::RoomKind::Room,
            visibility: confab_shared::conversation::Visibility::Public,
            topic: None,
            created_by: ann.id,
            created_at: 1,
        })
        .await
        .unwrap();
    (store, room, ann, dir)
}

async fn redis_broker(hub: Arc<Hub>, store: DynStore) -> DynBroker {
    Arc::new(
        RedisBroker::start(
            &redis_url(),
            hub,
            store,
            RedisSettings {
                stream_max: 1_000_000,
            },
        )
        .await
        .unwrap(),
    )
}

impl Fixture {
    async fn memory() -> Self {
        let (store, room, ann, dir) = store_with_room().await;
        let hub = Arc::new(Hub::new(64));
        let broker: DynBroker = Arc::new(MemoryBroker::start(hub.clone(), store.clone(), 64));
        Self {
            hub,
            broker,
            store,
            room,
            ann,
            _dir: dir,
        }
    }

    async fn redis() -> Self {
        let (store, room, ann, dir) = store_with_room().await;
        let hub = Arc::new(Hub::new(64));
        let broker = redis_broker(hub.clone(), store.clone()).await;
        Self {
            hub,
            broker,
            store,
            room,
            ann,
            _dir: dir,
        }
    }

    async fn listen(&self) -> Rx {
        let rx = Rx::listen(&self.hub, self.room);
        self.broker.await_subscribed(self.room).await.unwrap();
        rx
    }

    fn outgoing(&self, cmid: &str, body: &str) -> Change {
        post(self.room, &self.ann, cmid, body)
    }

    /// The message `id` as the broker has it now.
    async fn message(&self, id: Option<MessageId>) -> confab_shared::protocol::ChatMessage {
        self.broker
            .message(self.room, id.unwrap())
            .await
            .unwrap()
            .unwrap()
    }
}

fn post(room: RoomId, author: &UserPublic, cmid: &str, body: &str) -> Change {
    Change::post(
        room,
        author.clone(),
        ClientMsgId::parse(cmid).unwrap(),
        MessageBody::parse(body).unwrap(),
        None,
    )
}

fn reference(r: &str) -> ClientRef {
    ClientRef::parse(r).unwrap()
}

fn frame_text(d: &Delivery) -> &str {
    std::str::from_utf8(d.frame.bytes()).unwrap()
}

fn entry_of(d: &Delivery) -> RoomEvent {
    serde_json::from_str(frame_text(d)).unwrap()
}

/// A connection's mailbox, as a session would drain it.
struct Rx {
    mailbox: Arc<Mailbox<UserEvent>>,
    batch: Batch<UserEvent>,
    mail: Arc<MailWaker>,
}

/// The mailbox's waker: a `Notify` keeps a wake-up that comes before the wait.
#[derive(Default)]
struct MailWaker(tokio::sync::Notify);

impl std::task::Wake for MailWaker {
    fn wake(self: Arc<Self>) {
        self.0.notify_one();
    }
}

impl Rx {
    /// A mailbox (of a throwaway user) listening to `room`.
    fn listen(hub: &Hub, room: RoomId) -> Self {
        let rx = Self::user(hub, UserId(uuid::Uuid::new_v4()));
        hub.listen(room, &rx.mailbox);
        rx
    }

    /// A mailbox receiving `user`'s events.
    fn user(hub: &Hub, user: UserId) -> Self {
        let mail = Arc::new(MailWaker::default());
        Self {
            mailbox: hub.connect(user, std::task::Waker::from(mail.clone())),
            batch: Batch::default(),
            mail,
        }
    }

    async fn recv(&mut self) -> Mail<UserEvent> {
        loop {
            if let Some(mail) = self.batch.mail.pop_front() {
                return mail;
            }
            assert!(self.batch.missed_rooms.is_empty(), "nothing may be missed");
            if !self.mailbox.take(&mut self.batch) {
                self.mail.0.notified().await;
            }
        }
    }

    async fn delivery(&mut self) -> Arc<Delivery> {
        match self.recv().await {
            Mail::Room(_, delivery) => delivery,
            other => panic!("expected a room event, got {other:?}"),
        }
    }

    async fn user_event(&mut self) -> Arc<UserEvent> {
        match self.recv().await {
            Mail::User(event) => event,
            other => panic!("expected a user event, got {other:?}"),
        }
    }
}

async fn next(rx: &mut Rx) -> Arc<Delivery> {
    tokio::time::timeout(Duration::from_secs(5), rx.delivery())
        .await
        .unwrap()
}

async fn publish_assigns_seqs_delivers_once_and_is_idempotent(f: Fixture) {
    let mut rx = f.listen().await;
    let a = f.broker.append(f.outgoing("c1", "one")).await.unwrap();
    let b = f.broker.append(f.outgoing("c2", "two")).await.unwrap();
    assert_eq!((a.seq, b.seq), (1, 2));
    let again = f.broker.append(f.outgoing("c1", "one")).await.unwrap();
    assert_eq!(again, a);
    for want in [1, 2] {
        let d = next(&mut rx).await;
        match &d.kind {
            DeliveryKind::Message { seq, author, .. } => {
                assert_eq!((*seq, author.id), (want, f.ann.id))
            }
            other => panic!("{other:?}"),
        }
        let RoomEvent::Message(m) = entry_of(&d) else {
            panic!()
        };
        assert_eq!(m.seq, want);
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(300), rx.recv())
            .await
            .is_err(),
        "the resend was not delivered"
    );
    assert_eq!(f.broker.last_seq(f.room).await.unwrap(), 2);
}

async fn recovery_returns_exactly_what_was_missed(f: Fixture) {
    for i in 1..=6 {
        f.broker
            .append(f.outgoing(&format!("c{i}"), &format!("m{i}")))
            .await
            .unwrap();
    }
    let r = f.broker.recover(f.room, 2, 10).await.unwrap();
    assert!(r.complete);
    assert_eq!(
        r.events.iter().map(RoomEvent::seq).collect::<Vec<_>>(),
        [3, 4, 5, 6]
    );
    let r = f.broker.recover(f.room, 0, 4).await.unwrap();
    assert!(!r.complete);
    assert_eq!(
        r.events.iter().map(RoomEvent::seq).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    let r = f.broker.recover(f.room, 6, 10).await.unwrap();
    assert!(r.complete && r.events.is_empty());
}

async fn edits_and_deletions_are_entries_of_the_log(f: Fixture) {
    let mut rx = f.listen().await;
    let one = f.broker.append(f.outgoing("c1", "one")).await.unwrap();
    let two = f.broker.append(f.outgoing("c2", "two")).await.unwrap();
    let m1 = f.message(one.id).await;
    let edit = Change::edit(
        f.ann.clone(),
        reference("e1"),
        m1.clone(),
        MessageBody::parse("one, edited").unwrap(),
    );
    let edited = f.broker.append(edit.clone()).await.unwrap();
    assert_eq!((edited.id, edited.seq), (one.id, 3));
    assert_eq!(
        f.broker.append(edit).await.unwrap(),
        edited,
        "a resent edit gets the same answer"
    );
    assert_eq!(
        f.broker
            .answered(f.room, f.ann.id, &reference("e1"))
            .await
            .unwrap(),
        Some(edited)
    );
    assert_eq!(
        f.broker
            .answered(f.room, f.ann.id, &reference("nope"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(f.message(one.id).await.body, "one, edited");
    let m2 = f.message(two.id).await;
    let e2 = Change::edit(
        f.ann.clone(),
        reference("e2"),
        m2.clone(),
        MessageBody::parse("secret").unwrap(),
    );
    f.broker.append(e2).await.unwrap();
    let deleted = f
        .broker
        .append(Change::delete(
            f.ann.clone(),
            reference("d1"),
            f.message(two.id).await,
        ))
        .await
        .unwrap();
    assert_eq!((deleted.id, deleted.seq), (two.id, 5));
    assert!(f.message(two.id).await.is_deleted());

    // Live: every entry once, in seq order, messages and other entries told apart.
    let mut live = Vec::new();
    for _ in 0..5 {
        let d = next(&mut rx).await;
        let entry = entry_of(&d);
        assert_eq!(d.kind.seq(), Some(entry.seq()));
        assert_eq!(
            matches!(d.kind, DeliveryKind::Message { .. }),
            matches!(entry, RoomEvent::Message(_))
        );
        live.push(entry);
    }
    assert_eq!(
        live.iter().map(RoomEvent::kind).collect::<Vec<_>>(),
        ["message", "message", "edited", "edited", "deleted"]
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(300), rx.recv())
            .await
            .is_err(),
        "the resent edit was not delivered"
    );

    // Recovery replays the whole log, with the deleted message's text nowhere.
    let r = f.broker.recover(f.room, 0, 10).await.unwrap();
    assert!(r.complete);
    assert_eq!(
        r.events.iter().map(RoomEvent::seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    let text = serde_json::to_string(&r.events).unwrap();
    assert!(
        !text.contains("secret") && !text.contains("\"two\""),
        "{text}"
    );
    match &r.events[0] {
        RoomEvent::Message(m) => assert_eq!(m.body, "one, edited"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(&r.events[1], RoomEvent::Message(m) if m.is_deleted()));
    assert!(matches!(&r.events[3], RoomEvent::Edited(e) if e.body.is_empty()));
    assert_eq!(f.broker.last_seq(f.room).await.unwrap(), 5);
}

async fn events_and_presence_reach_listeners(f: Fixture) {
    let mut rx = f.listen().await;
    // As a session does: count the connection in locally, then tell the broker.
    assert!(f.hub.enter(f.room, &f.ann));
    f.broker.set_presence(f.room, &f.ann, true).await.unwrap();
    let d = next(&mut rx).await;
    assert!(matches!(d.kind, DeliveryKind::Event { from: Some(u) } if u == f.ann.id));
    assert!(frame_text(&d).contains("\"online\":true"));
    let online = f.broker.online(f.room).await.unwrap();
    assert_eq!(
        online
            .iter()
            .map(|u| u.username.as_str())
            .collect::<Vec<_>>(),
        ["ann"]
    );
    f.broker
        .publish_event(
            f.room,
            ServerFrame::Typing {
                room: f.room,
                user: f.ann.clone(),
            },
        )
        .await
        .unwrap();
    assert!(frame_text(&*next(&mut rx).await).contains("\"typing\""));
    let mut urx = Rx::user(&f.hub, f.ann.id);
    tokio::time::sleep(Duration::from_millis(200)).await; // the user channel subscription (Redis)
    f.broker
        .publish_user_event(
            f.ann.id,
            UserEvent::ReadMarker {
                room: f.room,
                seq: 3,
            },
        )
        .await
        .unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(5), urx.user_event())
        .await
        .unwrap();
    assert_eq!(
        *ev,
        UserEvent::ReadMarker {
            room: f.room,
            seq: 3
        }
    );
    assert!(f.hub.leave(f.room, f.ann.id));
    f.broker.set_presence(f.room, &f.ann, false).await.unwrap();
    assert!(frame_text(&*next(&mut rx).await).contains("\"online\":false"));
    assert!(f.broker.online(f.room).await.unwrap().is_empty());
}

macro_rules! suite {
    ($($test:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::Fixture::memory().await).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::Fixture::redis().await).await;
                }
            )*
        }
    };
}

suite!(
    publish_assigns_seqs_delivers_once_and_is_idempotent,
    recovery_returns_exactly_what_was_missed,
    edits_and_deletions_are_entries_of_the_log,
    events_and_presence_reach_listeners,
);

/// Two Redis brokers are two instances: presence transitions are global, and a resend through
/// the other instance is still recognized.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_instances_share_seq_idempotency_and_presence() {
    let f = Fixture::redis().await;
    let hub2 = Arc::new(Hub::new(64));
    let other = redis_broker(hub2.clone(), f.store.clone()).await;
    let mut rx1 = f.listen().await;
    let mut rx2 = Rx::listen(&hub2, f.room);
    other.await_subscribed(f.room).await.unwrap();

    let a = f.broker.append(f.outgoing("x1", "hello")).await.unwrap();
    let b = other.append(f.outgoing("x1", "hello")).await.unwrap();
    assert_eq!(a, b, "a resend through another instance gets the same ack");
    let c = other.append(f.outgoing("x2", "next")).await.unwrap();
    assert_eq!(c.seq, a.seq + 1);
    for rx in [&mut rx1, &mut rx2] {
        assert!(matches!(
            next(rx).await.kind,
            DeliveryKind::Message { seq: 1, .. }
        ));
        assert!(matches!(
            next(rx).await.kind,
            DeliveryKind::Message { seq: 2, .. }
        ));
    }

    // Ann enters on both instances: one `online`; leaves one: nothing; leaves both: `offline`.
    f.broker.set_presence(f.room, &f.ann, true).await.unwrap();
    other.set_presence(f.room, &f.ann, true).await.unwrap();
    f.broker.set_presence(f.room, &f.ann, false).await.unwrap();
    assert!(frame_text(&*next(&mut rx2).await).contains("\"online\":true"));
    assert_eq!(other.online(f.room).await.unwrap().len(), 1);
    other.set_presence(f.room, &f.ann, false).await.unwrap();
    assert!(frame_text(&*next(&mut rx2).await).contains("\"online\":false"));
    assert!(other.online(f.room).await.unwrap().is_empty());
    other.shutdown().await;
    f.broker.shutdown().await;
}

/// An instance that dies without leaving: its users drop out of presence within seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_instances_users_drop_out_of_presence() {
    let f = Fixture::redis().await;
    let hub2 = Arc::new(Hub::new(64));
    let doomed = redis_broker(hub2, f.store.clone()).await;
    let mut rx = f.listen().await;
    doomed.set_presence(f.room, &f.ann, true).await.unwrap();
    assert!(frame_text(&*next(&mut rx).await).contains("\"online\":true"));
    // Simulate a crash: stop its heartbeat without deregistering.
    drop(doomed);
    let started = std::time::Instant::now();
    let d = tokio::time::timeout(Duration::from_secs(15), rx.delivery())
        .await
        .unwrap();
    assert!(frame_text(&d).contains("\"online\":false"));
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "{:?}",
        started.elapsed()
    );
    f.broker.shutdown().await;
}

/// A private redis-server on a free port, restartable.
struct PrivateRedis {
    port: u16,
    child: Option<std::process::Child>,
}

impl PrivateRedis {
    fn start(port: u16) -> Self {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            port,
            child: Some(child),
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Redis goes away: sends fail with a retryable error (never a false ack). It comes back:
/// the broker resubscribes, subscribed rooms are told to resync, and sends work again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_gives_retryable_errors_then_recovers() {
    let mut redis = PrivateRedis::start(free_port());
    let (store, room, ann, _dir) = store_with_room().await;
    let hub = Arc::new(Hub::new(64));
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let broker = RedisBroker::start(
        &url,
        hub.clone(),
        store.clone(),
        RedisSettings { stream_max: 1000 },
    )
    .await
    .unwrap();
    let mut rx = Rx::listen(&hub, room);
    broker.await_subscribed(room).await.unwrap();
    let out = |cmid: &str| post(room, &ann, cmid, "hi");
    assert_eq!(broker.append(out("a")).await.unwrap().seq, 1);
    assert!(matches!(
        next(&mut rx).await.kind,
        DeliveryKind::Message { seq: 1, .. }
    ));

    let port = redis.port;
    redis.kill();
    match broker.append(out("b")).await {
        Err(BrokerError::Unavailable(_)) => {}
        other => panic!("expected a retryable error, got {other:?}"),
    }
    let _redis = PrivateRedis::start(port);
    let restarted = std::time::Instant::now();
    // Subscribed listeners are told to resync once the subscription is back.
    let d = tokio::time::timeout(Duration::from_secs(5), rx.delivery())
        .await
        .unwrap();
    assert!(matches!(d.kind, DeliveryKind::Resync));
    let accepted = loop {
        match broker.append(out("b")).await {
            Ok(a) => break a,
            Err(_) if restarted.elapsed() < Duration::from_secs(5) => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("not back within 5 s: {e:?}"),
        }
    };
    assert!(accepted.seq >= 1);
    assert!(matches!(
        next(&mut rx).await.kind,
        DeliveryKind::Message { .. }
    ));
    broker.shutdown().await;
}
