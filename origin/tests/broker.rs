//! One broker test suite, run against the in-process broker, the Redis broker on one Redis
//! (local Redis at CONFAB_TEST_REDIS_URL, default redis://127.0.0.1:6379), and the Redis broker
//! on a Redis Cluster (3 masters, 3 replicas, started here on free loopback ports), with and
//! without acks that wait for a replica; plus tests with two brokers standing for two
//! instances, and cluster-only ones (traffic stays on the room's shard).
#![allow(clippy::unwrap_used)]

use confab_origin::broker::memory::MemoryBroker;
use confab_origin::broker::redis::conn::RedisTarget;
use confab_origin::broker::redis::keys::KeySpace;
use confab_origin::broker::redis::{RedisBroker, RedisSettings};
use confab_origin::broker::{Broker, BrokerError, Change, DynBroker, Hub, Recovery, UserEvent};
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
            &RedisTarget::Single(redis_url()),
            hub,
            store,
            RedisSettings::with_stream_max(1_000_000),
        )
        .await
        .unwrap(),
    )
}

/// A broker on the shared test cluster; `wait_replicas` > 0 makes acks wait for replicas.
async fn cluster_broker(hub: Arc<Hub>, store: DynStore, wait_replicas: u32) -> DynBroker {
    let settings = RedisSettings {
        wait_replicas,
        // Generous: a loaded test machine can be slow to replicate.
        wait_timeout_ms: 2000,
        ..RedisSettings::with_stream_max(1_000_000)
    };
    Arc::new(
        RedisBroker::start(&shared_cluster().target(), hub, store, settings)
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

    async fn cluster(wait_replicas: u32) -> Self {
        let (store, room, ann, dir) = store_with_room().await;
        let hub = Arc::new(Hub::new(64));
        let broker = cluster_broker(hub.clone(), store.clone(), wait_replicas).await;
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

    /// Posts `n` messages, `c1`/`m1` to `cN`/`mN`.
    async fn post_many(&self, n: u32) {
        for i in 1..=n {
            self.broker
                .append(self.outgoing(&format!("c{i}"), &format!("m{i}")))
                .await
                .unwrap();
        }
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

/// The seqs a recovery returned, in order.
fn seqs(r: &Recovery) -> Vec<i64> {
    r.events.iter().map(RoomEvent::seq).collect()
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
    f.post_many(6).await;
    let r = f.broker.recover(f.room, 2, 10).await.unwrap();
    assert!(r.complete);
    assert_eq!(seqs(&r), [3, 4, 5, 6]);
    let r = f.broker.recover(f.room, 0, 4).await.unwrap();
    assert!(!r.complete);
    assert_eq!(seqs(&r), [1, 2, 3, 4]);
    let r = f.broker.recover(f.room, 6, 10).await.unwrap();
    assert!(r.complete && r.events.is_empty());
}

/// More entries than the recent history keeps (256), none of them stored by a worker yet:
/// recovery still finds every one (in Redis they stay in the recent history until the
/// workers have stored them; nothing here runs a worker).
async fn recovery_finds_entries_the_database_does_not_have_yet(f: Fixture) {
    f.post_many(300).await;
    let r = f.broker.recover(f.room, 0, 1000).await.unwrap();
    assert!(r.complete);
    assert_eq!(seqs(&r), (1..=300).collect::<Vec<_>>());
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
    assert_eq!(seqs(&r), [1, 2, 3, 4, 5]);
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
        mod redis_cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::Fixture::cluster(0).await).await;
                }
            )*
        }
        mod redis_cluster_replica_acks {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::Fixture::cluster(1).await).await;
                }
            )*
        }
    };
}

suite!(
    publish_assigns_seqs_delivers_once_and_is_idempotent,
    recovery_returns_exactly_what_was_missed,
    recovery_finds_entries_the_database_does_not_have_yet,
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
    instances_share_seq_idempotency_and_presence(f, hub2, other).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_instances_share_seq_idempotency_and_presence() {
    let f = Fixture::cluster(0).await;
    let hub2 = Arc::new(Hub::new(64));
    let other = cluster_broker(hub2.clone(), f.store.clone(), 0).await;
    instances_share_seq_idempotency_and_presence(f, hub2, other).await;
}

async fn instances_share_seq_idempotency_and_presence(
    f: Fixture,
    hub2: Arc<Hub>,
    other: DynBroker,
) {
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
    let doomed = redis_broker(Arc::new(Hub::new(64)), f.store.clone()).await;
    a_dead_instances_users_drop_out(f, doomed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_instances_users_drop_out_of_presence_on_a_cluster() {
    let f = Fixture::cluster(0).await;
    let doomed = cluster_broker(Arc::new(Hub::new(64)), f.store.clone(), 0).await;
    a_dead_instances_users_drop_out(f, doomed).await;
}

async fn a_dead_instances_users_drop_out(f: Fixture, doomed: DynBroker) {
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
async fn answers_are_remembered_for_the_resend_window() {
    let server = PrivateRedis::start(free_port());
    let (store, room, ann, _dir) = store_with_room().await;
    let url = format!("redis://127.0.0.1:{}", server.port);
    let settings = RedisSettings {
        resend_window_secs: 300,
        ..RedisSettings::with_stream_max(1000)
    };
    let broker = RedisBroker::start(
        &RedisTarget::Single(url.clone()),
        Arc::new(Hub::new(64)),
        store,
        settings,
    )
    .await
    .unwrap();
    let first = broker.append(post(room, &ann, "w1", "hi")).await.unwrap();
    let again = broker.append(post(room, &ann, "w1", "hi")).await.unwrap();
    assert_eq!(
        again, first,
        "a resend within the window gets the first answer"
    );
    let mut conn = ::redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let keys: Vec<String> = ::redis::cmd("KEYS")
        .arg("*:w1")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1, "one answer key: {keys:?}");
    let ttl: i64 = ::redis::cmd("TTL")
        .arg(&keys[0])
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        (250..=300).contains(&ttl),
        "kept for the window, not a day: {ttl}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_gives_retryable_errors_then_recovers() {
    let mut redis = PrivateRedis::start(free_port());
    let (store, room, ann, _dir) = store_with_room().await;
    let hub = Arc::new(Hub::new(64));
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let broker = RedisBroker::start(
        &RedisTarget::Single(url),
        hub.clone(),
        store.clone(),
        RedisSettings::with_stream_max(1000),
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

/// A Redis Cluster on loopback: 3 masters and 3 replicas of redis-server in a temporary
/// directory, without persistence. Each node runs under a small shell that kills it once this
/// test process is gone, so the cluster shared by the suite never outlives the test binary.
struct LocalCluster {
    dir: tempfile::TempDir,
    ports: Vec<u16>,
}

/// The cluster the suite's tests share (each uses rooms of its own).
fn shared_cluster() -> &'static LocalCluster {
    static SHARED: std::sync::OnceLock<LocalCluster> = std::sync::OnceLock::new();
    SHARED.get_or_init(LocalCluster::start)
}

fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = std::process::Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli is installed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A port whose cluster bus port (+10000) is free too.
fn cluster_port(taken: &[u16]) -> u16 {
    loop {
        let p = 20000 + (rand_u16() % 20000);
        if taken.contains(&p) {
            continue;
        }
        let a = std::net::TcpListener::bind(("127.0.0.1", p));
        let b = std::net::TcpListener::bind(("127.0.0.1", p + 10000));
        if a.is_ok() && b.is_ok() {
            return p;
        }
    }
}

fn rand_u16() -> u16 {
    (Uuid::new_v4().as_u128() & 0xffff) as u16
}

impl LocalCluster {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut ports = Vec::new();
        for _ in 0..6 {
            let p = cluster_port(&ports);
            ports.push(p);
        }
        for p in &ports {
            Self::spawn_node(dir.path(), *p);
        }
        for p in &ports {
            Self::wait_pong(*p);
        }
        let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let created = std::process::Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .unwrap();
        assert!(
            created.status.success(),
            "{}",
            String::from_utf8_lossy(&created.stdout)
        );
        let cluster = Self { dir, ports };
        cluster.wait_ok(Duration::from_secs(30));
        cluster
    }

    /// Starts the node on port `p` (again, after a kill: it keeps its cluster config and
    /// rejoins).
    fn spawn_node(dir: &std::path::Path, p: u16) {
        let me = std::process::id();
        let d = dir.display();
        let node = format!(
            "redis-server --port {p} --bind 127.0.0.1 --cluster-enabled yes \
             --cluster-config-file {d}/nodes-{p}.conf --cluster-node-timeout 2000 \
             --cluster-require-full-coverage no --repl-diskless-sync-delay 0 \
             --dir {d} --save '' --appendonly no --logfile {d}/{p}.log & r=$!; \
             while kill -0 {me} 2>/dev/null && kill -0 $r 2>/dev/null; do sleep 0.5; done; \
             kill -9 $r 2>/dev/null"
        );
        let mut watchdog = std::process::Command::new("sh")
            .args(["-c", &node])
            .spawn()
            .unwrap();
        // Reaped when the node ends.
        std::thread::spawn(move || watchdog.wait());
    }

    fn wait_pong(p: u16) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while redis_cli(p, &["ping"]).trim() != "PONG" {
            assert!(
                std::time::Instant::now() < deadline,
                "node {p} did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `kill -9` of the node on port `p`.
    fn kill(&self, p: u16) {
        let info = redis_cli(p, &["info", "server"]);
        let pid = info
            .lines()
            .find_map(|l| l.strip_prefix("process_id:"))
            .unwrap()
            .trim()
            .to_owned();
        assert!(std::process::Command::new("kill")
            .args(["-9", &pid])
            .status()
            .unwrap()
            .success());
    }

    /// Waits until every live node sees the cluster up, with 3 masters each with a replica.
    fn wait_ok(&self, limit: Duration) {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let ok = self.ports.iter().all(|p| {
                let info = redis_cli(*p, &["cluster", "info"]);
                info.contains("cluster_state:ok") || info.is_empty()
            }) && self.masters().len() == 3
                && self.ports.iter().all(|p| {
                    let info = redis_cli(*p, &["info", "replication"]);
                    !info.contains("role:master") || info.contains("state=online")
                });
            if ok {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the cluster did not come up"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn target(&self) -> RedisTarget {
        RedisTarget::Cluster(
            self.ports
                .iter()
                .map(|p| format!("redis://127.0.0.1:{p}"))
                .collect(),
        )
    }

    /// The masters: (port, first slot, last slot) of each slot range they own.
    fn masters(&self) -> Vec<(u16, u16, u16)> {
        let nodes = self
            .ports
            .iter()
            .map(|p| redis_cli(*p, &["cluster", "nodes"]))
            .find(|n| !n.is_empty())
            .unwrap_or_default();
        let mut out = Vec::new();
        for line in nodes.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 9 || !f[2].contains("master") || f[2].contains("fail") {
                continue;
            }
            let port: u16 = f[1]
                .split('@')
                .next()
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            for range in &f[8..] {
                let (a, b) = range.split_once('-').unwrap_or((range, range));
                if let (Ok(a), Ok(b)) = (a.parse(), b.parse()) {
                    out.push((port, a, b));
                }
            }
        }
        out
    }

    /// The master that owns a key's slot.
    fn master_of(&self, key: &str) -> u16 {
        self.owner_of(key).unwrap()
    }

    /// The live master that owns a key's slot, if one does now.
    fn owner_of(&self, key: &str) -> Option<u16> {
        let slot: u16 = self
            .ports
            .iter()
            .find_map(|p| {
                redis_cli(*p, &["cluster", "keyslot", key])
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap();
        self.masters()
            .into_iter()
            .find(|(_, a, b)| (*a..=*b).contains(&slot))
            .map(|(p, _, _)| p)
    }

    /// How many times a master ran `command` (its `INFO commandstats`, scripts' calls included).
    fn calls(&self, port: u16, command: &str) -> u64 {
        let stats = redis_cli(port, &["info", "commandstats"]);
        stats
            .lines()
            .find_map(|l| l.strip_prefix(&format!("cmdstat_{command}:calls=")))
            .and_then(|rest| rest.split(',').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for p in &self.ports {
            redis_cli(*p, &["shutdown", "nosave"]);
        }
        let _ = self.dir.path();
    }
}

/// On a cluster a room's traffic stays on its shard: its publishes run only on the master that
/// owns the room's slot, and only the instance with a listener for the room is subscribed to
/// its channel (instances without one receive none of its events).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_traffic_stays_on_the_rooms_master_and_listening_instances() {
    let cluster = tokio::task::spawn_blocking(LocalCluster::start)
        .await
        .unwrap();
    let (store, room, ann, _dir) = store_with_room().await;
    let settings = RedisSettings::with_stream_max(1_000_000);
    let (hub_a, hub_b) = (Arc::new(Hub::new(64)), Arc::new(Hub::new(64)));
    let a = RedisBroker::start(
        &cluster.target(),
        hub_a.clone(),
        store.clone(),
        settings.clone(),
    )
    .await
    .unwrap();
    let b = RedisBroker::start(&cluster.target(), hub_b.clone(), store.clone(), settings)
        .await
        .unwrap();
    let keys = KeySpace::cluster(64);
    let channel = keys.room_channel(room);
    let owner = cluster.master_of(&channel);
    assert_eq!(
        owner,
        cluster.master_of(&keys.persist_stream(room)),
        "one shard, one slot"
    );

    let mut rx = Rx::listen(&hub_a, room);
    a.await_subscribed(room).await.unwrap();
    let masters: Vec<u16> = {
        let mut m: Vec<u16> = cluster.masters().into_iter().map(|(p, _, _)| p).collect();
        m.sort_unstable();
        m.dedup();
        m
    };
    assert_eq!(masters.len(), 3);
    let before: Vec<u64> = masters
        .iter()
        .map(|m| cluster.calls(*m, "spublish"))
        .collect();
    const N: i64 = 20;
    for i in 0..N {
        // Sent through the instance that does not listen: the event still reaches the other.
        b.append(post(room, &ann, &format!("t{i}"), "traffic"))
            .await
            .unwrap();
    }
    for want in 1..=N {
        assert!(
            matches!(next(&mut rx).await.kind, DeliveryKind::Message { seq, .. } if seq == want)
        );
    }
    for (m, before) in masters.iter().zip(before) {
        let published = cluster.calls(*m, "spublish") - before;
        if *m == owner {
            assert_eq!(
                published, N as u64,
                "the room's master published every entry"
            );
        } else {
            assert_eq!(
                published, 0,
                "master {m} carried none of the room's traffic"
            );
        }
        println!("master 127.0.0.1:{m}: {published} SPUBLISH for the room");
    }
    // One subscriber to the room's channel in the whole cluster: instance A's, on the owner.
    for p in &cluster.ports {
        let reply = redis_cli(*p, &["pubsub", "shardnumsub", &channel]);
        let count: u64 = reply
            .lines()
            .nth(1)
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0);
        assert_eq!(count, u64::from(*p == owner), "node {p}: {reply:?}");
    }
    a.shutdown().await;
    b.shutdown().await;
}

/// `kill -9` of the master owning a room's shard while four senders append, with acks waiting
/// for a replica: appends fail with a retryable error (never a false ack) until the replica is
/// promoted and has a replica again (the killed node, restarted, rejoins as one), then succeed;
/// every acknowledged entry is in the room's log once, at the seq it was acked with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_master_failover_with_replica_acks_loses_no_acked_entry() {
    let lost = master_failover(1, true).await;
    assert_eq!(lost, 0);
}

/// Without replica acks, and with the killed node left dead: appends succeed again as soon as
/// the replica is promoted (the broker's cluster connection reads the new slot map). What an
/// ack covers then is what had reached the replica: the losses are printed, not asserted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_master_failover_without_replica_acks_resumes_once_the_replica_is_promoted() {
    let lost = master_failover(0, false).await;
    println!("without replica acks: {lost} acknowledged entries lost");
}

/// Runs the failover; returns how many acknowledged entries the log lost.
async fn master_failover(wait_replicas: u32, restart: bool) -> usize {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .with_test_writer()
        .try_init();
    let cluster = Arc::new(
        tokio::task::spawn_blocking(LocalCluster::start)
            .await
            .unwrap(),
    );
    let (store, room, ann, _dir) = store_with_room().await;
    let hub = Arc::new(Hub::new(1024));
    let settings = RedisSettings {
        wait_replicas,
        wait_timeout_ms: 500,
        ..RedisSettings::with_stream_max(1_000_000)
    };
    let broker: DynBroker = Arc::new(
        RedisBroker::start(&cluster.target(), hub.clone(), store.clone(), settings)
            .await
            .unwrap(),
    );
    let keys = KeySpace::cluster(64);
    let master = cluster.master_of(&keys.room_channel(room));
    let started = std::time::Instant::now();
    let acked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let errors = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut senders = Vec::new();
    for t in 0..4 {
        let (broker, ann, acked, errors) =
            (broker.clone(), ann.clone(), acked.clone(), errors.clone());
        senders.push(tokio::spawn(async move {
            for i in 0..40 {
                let cmid = format!("s{t}-{i}");
                loop {
                    match broker.append(post(room, &ann, &cmid, &cmid)).await {
                        Ok(a) => {
                            acked.lock().unwrap().push((
                                cmid.clone(),
                                a,
                                std::time::Instant::now(),
                            ));
                            break;
                        }
                        Err(BrokerError::Unavailable(_)) => {
                            errors.lock().unwrap().push(std::time::Instant::now());
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        Err(e) => panic!("{e:?}"),
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }));
    }
    while acked.lock().unwrap().len() < 30 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.kill(master);
    let killed = std::time::Instant::now();
    let watcher = {
        let cluster = cluster.clone();
        let channel = keys.room_channel(room);
        tokio::task::spawn_blocking(move || {
            while cluster.owner_of(&channel).is_none_or(|p| p == master) {
                assert!(killed.elapsed() < Duration::from_secs(30), "no promotion");
                std::thread::sleep(Duration::from_millis(50));
            }
            let promoted = killed.elapsed();
            if restart {
                LocalCluster::spawn_node(cluster.dir.path(), master);
            }
            (promoted, killed.elapsed())
        })
    };
    for s in senders {
        tokio::time::timeout(Duration::from_secs(120), s)
            .await
            .expect("the senders finished")
            .unwrap();
    }
    let (promoted, restarted) = watcher.await.unwrap();
    let acked = acked.lock().unwrap().clone();
    let errors = errors.lock().unwrap().clone();
    let first_error = errors.iter().filter(|t| **t >= killed).min().copied();
    let resumed =
        first_error.and_then(|e| acked.iter().map(|(_, _, t)| *t).filter(|t| *t > e).min());
    println!(
        "broker, kill -9 of the room's master, wait_replicas={wait_replicas}: {} acks, {} \
         retryable errors; promoted {promoted:?}, node restarted ({restart}) {restarted:?}, acks \
         again {:?} after the kill (test ran {:?})",
        acked.len(),
        errors.len(),
        resumed.map(|r| r - killed),
        started.elapsed()
    );
    assert_eq!(acked.len(), 160);
    assert!(
        first_error.is_some(),
        "appends failed while the shard had no master"
    );
    assert!(
        resumed.is_some_and(|r| r - killed < Duration::from_secs(10)),
        "service resumed within 10 s"
    );
    let log = broker.recover(room, 0, 500).await.unwrap();
    assert!(log.complete);
    let by_seq: std::collections::BTreeMap<i64, (MessageId, String)> = log
        .events
        .iter()
        .map(|e| match e {
            RoomEvent::Message(m) => (m.seq, (m.id, m.client_msg_id.as_str().to_owned())),
            other => panic!("{other:?}"),
        })
        .collect();
    let lost = acked
        .iter()
        .filter(|(cmid, a, _)| by_seq.get(&a.seq) != a.id.map(|id| (id, cmid.clone())).as_ref())
        .count();
    assert_eq!(by_seq.len(), log.events.len(), "one entry per seq");
    if wait_replicas > 0 {
        let cmids: std::collections::HashSet<&String> = by_seq.values().map(|(_, c)| c).collect();
        assert_eq!(cmids.len(), by_seq.len(), "no message twice");
    }
    broker.shutdown().await;
    lost
}

/// What waiting for a replica costs one append, measured on the test cluster: 2000 appends one
/// after another to one room, with and without `CONFAB_REDIS_WAIT_REPLICAS=1`. Run by hand:
/// `cargo test --release -p confab-origin --test broker -- --ignored --nocapture replica_wait_cost`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn replica_wait_cost() {
    for wait_replicas in [0, 1, 0, 1] {
        let f = Fixture::cluster(wait_replicas).await;
        let mut took = Vec::with_capacity(2000);
        for i in 0..2000 {
            let started = std::time::Instant::now();
            f.broker
                .append(f.outgoing(&format!("w{i}"), "cost"))
                .await
                .unwrap();
            took.push(started.elapsed());
        }
        took.sort_unstable();
        let at = |q: f64| took[((took.len() as f64 * q) as usize).min(took.len() - 1)];
        println!(
            "append, wait_replicas={wait_replicas}: p50 {:?}, p90 {:?}, p99 {:?}, max {:?}",
            at(0.5),
            at(0.9),
            at(0.99),
            took[took.len() - 1]
        );
        f.broker.shutdown().await;
    }
}

/// A Redis database of its own (`db`), emptied, so a worker reads only the calling test's
/// streams: its URL and a connection to it.
async fn private_redis(db: u8) -> (String, ::redis::aio::MultiplexedConnection) {
    let mut url = url::Url::parse(&redis_url()).unwrap();
    url.set_path(&format!("/{db}"));
    let url = url.to_string();
    let mut conn = ::redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let () = ::redis::cmd("FLUSHDB")
        .query_async(&mut conn)
        .await
        .unwrap();
    (url, conn)
}

/// A real `confab worker` named `name`, on the SQLite database in `dir` and the Redis at `url`.
fn spawn_worker(url: &str, dir: &tempfile::TempDir, name: &str) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_confab"))
        .arg("worker")
        .env(
            "CONFAB_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("t.db").display()),
        )
        .env("CONFAB_REDIS_URL", url)
        .env("CONFAB_WORKER_NAME", name)
        .env("CONFAB_PUSH", "false")
        .env("RUST_LOG", "off")
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// The recent history holds what the workers have not stored, however much that is, and lets
/// it go once they have: 300 entries with no worker running all stay; a real `confab worker`
/// stores them, and the next trim takes the history back to 256.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recent_history_lets_go_of_what_a_worker_has_stored() {
    let (url, mut conn) = private_redis(13).await;
    let (store, room, ann, dir) = store_with_room().await;
    let broker = RedisBroker::start(
        &RedisTarget::Single(url.clone()),
        Arc::new(Hub::new(64)),
        store.clone(),
        RedisSettings::with_stream_max(1000),
    )
    .await
    .unwrap();
    let recent = format!("confab:recent:{room}");
    let post_seqs = |seqs: std::ops::RangeInclusive<u32>| {
        let (broker, ann) = (&broker, &ann);
        async move {
            for i in seqs {
                broker
                    .append(post(room, ann, &format!("c{i}"), "m"))
                    .await
                    .unwrap();
            }
        }
    };
    post_seqs(1..=300).await;
    let held: i64 = ::redis::cmd("ZCARD")
        .arg(&recent)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(held, 300, "nothing is stored yet, so nothing is trimmed");

    let mut worker = spawn_worker(&url, &dir, "recent-w1");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mark = loop {
        let mark: Option<i64> = ::redis::cmd("GET")
            .arg(format!("confab:stored:{room}"))
            .query_async(&mut conn)
            .await
            .unwrap();
        if mark == Some(300) || tokio::time::Instant::now() > deadline {
            break mark;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(mark, Some(300), "the worker marked how far it stored");
    worker.kill().await.unwrap();
    assert_eq!(store.events_after(room, 0, 1000).await.unwrap().len(), 300);

    // 301..=304: 304 is a 16th seq, where the script trims to what is both stored and old.
    post_seqs(301..=304).await;
    let left: Vec<(String, i64)> = ::redis::cmd("ZRANGE")
        .arg(&recent)
        .arg(0)
        .arg(0)
        .arg("WITHSCORES")
        .query_async(&mut conn)
        .await
        .unwrap();
    let held: i64 = ::redis::cmd("ZCARD")
        .arg(&recent)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!((held, left[0].1), (256, 49));
    let r = broker.recover(room, 0, 1000).await.unwrap();
    assert_eq!(seqs(&r), (1..=304).collect::<Vec<_>>());
}

/// A real `confab worker` stores what its database takes and sets aside what it refuses: an
/// entry for a room that database does not have (another deployment's, here) and an entry that
/// cannot be read go to the dead-letter stream with the reason, are acknowledged, and the
/// messages on either side of them are stored. Retried, either would fail forever and hold up
/// every entry behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_sets_aside_what_its_database_refuses_and_an_operator_replays_it_once_fixed() {
    // Nothing another test left in a stream is read.
    let (url, mut conn) = private_redis(14).await;
    let start = |store: DynStore| {
        let target = RedisTarget::Single(url.clone());
        async move {
            RedisBroker::start(
                &target,
                Arc::new(Hub::new(64)),
                store,
                RedisSettings::with_stream_max(1000),
            )
            .await
            .unwrap()
        }
    };
    let (store, room, ann, dir) = store_with_room().await;
    let (elsewhere, stray_room, stray_author, elsewhere_dir) = store_with_room().await;
    let broker = start(store.clone()).await;
    let other = start(elsewhere).await;
    broker
        .append(post(room, &ann, "c1", "before"))
        .await
        .unwrap();
    other
        .append(post(stray_room, &stray_author, "c2", "stray"))
        .await
        .unwrap();
    let unreadable: String = ::redis::cmd("XADD")
        .arg("confab:persist")
        .arg("*")
        .arg(&["f", "{not json", "a", "someone", "r", "x", "t", "1"])
        .query_async(&mut conn)
        .await
        .unwrap();
    broker
        .append(post(room, &ann, "c3", "after"))
        .await
        .unwrap();

    let mut worker = spawn_worker(&url, &dir, "dead-letter-w1");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let left = loop {
        let left: i64 = ::redis::cmd("XLEN")
            .arg("confab:persist")
            .query_async(&mut conn)
            .await
            .unwrap();
        if left == 0 || tokio::time::Instant::now() > deadline {
            break left;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(left, 0, "every entry was acknowledged");
    let bodies: Vec<String> = store
        .events_after(room, 0, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| match e {
            RoomEvent::Message(m) => m.body,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(bodies, ["before", "after"]);

    let dead: ::redis::streams::StreamRangeReply = ::redis::cmd("XRANGE")
        .arg("confab:persist:dead")
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .unwrap();
    let field = |e: &::redis::streams::StreamId, name: &str| e.get::<String>(name).unwrap();
    let mut reasons: Vec<(String, String)> = dead
        .ids
        .iter()
        .map(|e| (field(e, "f"), field(e, "error")))
        .collect();
    reasons.sort();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert_eq!(
        reasons[1],
        (
            "{not json".to_owned(),
            "the entry cannot be read".to_owned()
        )
    );
    assert!(
        reasons[0].0.contains(&stray_room.to_string()),
        "{reasons:?}"
    );
    assert!(reasons[0].1.contains("FOREIGN KEY"), "{reasons:?}");
    let unreadable_copy = dead
        .ids
        .iter()
        .find(|e| field(e, "f") == "{not json")
        .unwrap();
    assert_eq!(field(unreadable_copy, "id"), unreadable);
    worker.kill().await.unwrap();
    worker.wait().await.unwrap();

    // The operator's view: `confab dead-letters list`, one JSON object per entry.
    let dead_letters = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_confab"))
            .arg("dead-letters")
            .args(args)
            .env("CONFAB_REDIS_URL", &url)
            .env("RUST_LOG", "off")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (ok, listed, err) = dead_letters(&["list"]);
    assert!(ok, "{err}");
    let listed: Vec<serde_json::Value> = listed
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), 2, "{listed:?}");
    let by_id = |id: &str| {
        listed
            .iter()
            .find(|e| e["id"] == id)
            .unwrap_or_else(|| panic!("{id} in {listed:?}"))
    };
    let unreadable_ref = by_id(&unreadable)["ref"].as_str().unwrap().to_owned();
    assert!(unreadable_ref.starts_with("0/"), "{unreadable_ref}");
    assert_eq!(by_id(&unreadable)["error"], "the entry cannot be read");
    let stray = listed.iter().find(|e| e["id"] != unreadable).unwrap();
    assert_eq!(stray["room"], stray_room.to_string());
    assert_eq!(stray["kind"], "message");
    assert_eq!(stray["actor"], stray_author.id.0.to_string());
    assert!(stray["error"].as_str().unwrap().contains("FOREIGN KEY"));
    let stray_ref = stray["ref"].as_str().unwrap().to_owned();

    // Names that are not entries change nothing and say so.
    let (ok, _, err) = dead_letters(&["replay", &stray_ref, "not-a-ref"]);
    assert!(!ok && err.contains("not-a-ref"), "{err}");
    let (ok, _, err) = dead_letters(&["discard", "0/1-0"]);
    assert!(!ok && err.contains("not there"), "{err}");
    let (_, listed_again, _) = dead_letters(&["list"]);
    assert_eq!(listed_again.lines().count(), 2);

    // The stray message belongs to the other deployment's database: a worker pointed at it,
    // and every entry replayed. The stray one is stored there; the unreadable one, still
    // unreadable, is set aside again with its reason.
    let (ok, replayed, err) = dead_letters(&["replay", "--all"]);
    assert!(ok, "{err}");
    assert!(replayed.contains("2 replayed"), "{replayed}");
    let mut worker = spawn_worker(&url, &elsewhere_dir, "dead-letter-w2");
    let elsewhere = confab_origin::store::open(
        &format!("sqlite://{}", elsewhere_dir.path().join("t.db").display()),
        2,
    )
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let stored = loop {
        let stored = elsewhere.events_after(stray_room, 0, 10).await.unwrap();
        if !stored.is_empty() || tokio::time::Instant::now() > deadline {
            break stored;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        matches!(&stored[..], [RoomEvent::Message(m)] if m.body == "stray"),
        "{stored:?}"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let listed = loop {
        let (_, listed, _) = dead_letters(&["list"]);
        let left: i64 = ::redis::cmd("XLEN")
            .arg("confab:persist")
            .query_async(&mut conn)
            .await
            .unwrap();
        if (left == 0 && listed.lines().count() == 1) || tokio::time::Instant::now() > deadline {
            break listed;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let again: serde_json::Value = serde_json::from_str(listed.trim()).unwrap();
    assert_eq!(again["entry"], "{not json", "{listed}");
    assert_eq!(again["error"], "the entry cannot be read");

    // Discarded for good.
    let again_ref = again["ref"].as_str().unwrap();
    assert_ne!(again_ref, unreadable_ref, "set aside anew");
    let (ok, out, err) = dead_letters(&["discard", again_ref]);
    assert!(ok && out.contains("1 discarded"), "{out}{err}");
    let (_, listed, _) = dead_letters(&["list"]);
    assert_eq!(listed, "");
    worker.kill().await.unwrap();
    broker.shutdown().await;
    other.shutdown().await;
}

#[tokio::test]
async fn an_entry_is_set_aside_once_however_often_workers_try() {
    use confab_origin::broker::redis::conn::RedisConn;
    use confab_origin::broker::redis::scripts::SET_ASIDE;
    let url = redis_url();
    let mut raw = ::redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let mut conn = RedisConn::connect(&RedisTarget::Single(url)).await.unwrap();
    let tag = Uuid::new_v4();
    let (stream, dead) = (format!("t:{tag}:persist"), format!("t:{tag}:dead"));
    let () = ::redis::cmd("XGROUP")
        .arg(&["CREATE", &stream, "g", "0", "MKSTREAM"])
        .query_async(&mut raw)
        .await
        .unwrap();
    let id: String = ::redis::cmd("XADD")
        .arg(&stream)
        .arg(&["*", "f", "{not json", "a", "someone"])
        .query_async(&mut raw)
        .await
        .unwrap();
    // Two workers hold it (one took it over from the other): both read it, both set it aside.
    let _: ::redis::Value = ::redis::cmd("XREADGROUP")
        .arg(&["GROUP", "g", "w1", "STREAMS", &stream, ">"])
        .query_async(&mut raw)
        .await
        .unwrap();
    let set_aside = || {
        SET_ASIDE
            .call()
            .key(&dead)
            .key(&stream)
            .arg("g")
            .arg(&id)
            .arg("the entry cannot be read")
            .arg(100)
            .arg("f")
            .arg("{not json")
            .arg("a")
            .arg("someone")
    };
    let first: Option<String> = set_aside().invoke(&mut conn).await.unwrap();
    let second: Option<String> = set_aside().invoke(&mut conn).await.unwrap();
    assert!(first.is_some());
    assert_eq!(second, None, "already moved");
    let copies: ::redis::streams::StreamRangeReply = ::redis::cmd("XRANGE")
        .arg(&[&dead, "-", "+"])
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(copies.ids.len(), 1);
    let copy = &copies.ids[0];
    assert_eq!(copy.get::<String>("id").unwrap(), id);
    assert_eq!(
        copy.get::<String>("error").unwrap(),
        "the entry cannot be read"
    );
    assert_eq!(copy.get::<String>("f").unwrap(), "{not json");
    assert_eq!(copy.get::<String>("a").unwrap(), "someone");
    let (left, pending): (i64, ::redis::Value) = ::redis::pipe()
        .cmd("XLEN")
        .arg(&stream)
        .cmd("XPENDING")
        .arg(&[&stream, "g"])
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(left, 0, "deleted from the stream");
    assert!(
        matches!(&pending, ::redis::Value::Array(v) if v.first() == Some(&::redis::Value::Int(0))),
        "acknowledged: {pending:?}"
    );
    let () = ::redis::cmd("DEL")
        .arg(&[&stream, &dead])
        .query_async(&mut raw)
        .await
        .unwrap();
}
