//! The scaled-out shape on the real services: origin instances, workers, a private Redis (or a
//! Redis Cluster of 3 masters and 3 replicas) and HAProxy started by `scripts/cluster`, on the
//! local PostgreSQL. Needs `haproxy` installed (scripts/test installs it). Each test brings up
//! its own cluster; they run one at a time. Measured recovery times are printed (run with
//! --nocapture to see them).
#![allow(clippy::unwrap_used)]

mod common;

use common::{Client, Ws};
use confab_origin::broker::redis::conn::{RedisConn, RedisTarget};
use confab_origin::broker::redis::keys::KeySpace;
use confab_shared::api::{EventPage, Room, RoomPage};
use confab_shared::events::RoomEvent;
use confab_shared::protocol::ServerFrame;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

struct Cluster {
    dir: tempfile::TempDir,
    lb: String,
    instances: Vec<String>,
    /// One Redis: its URL; a Redis Cluster: its nodes (host:port), masters first.
    redis: Vec<String>,
    redis_cluster: bool,
    database: String,
}

impl Cluster {
    fn up(instances: usize, workers: usize) -> Self {
        Self::launch(instances, workers, &[], &[])
    }

    /// The single-host deployment over Unix sockets (`--unix`): HAProxy reaches the
    /// instances, and the instances and workers reach Redis and PostgreSQL, on theirs.
    fn up_over_unix_sockets(instances: usize, workers: usize) -> Self {
        Self::launch(instances, workers, &["--unix"], &[])
    }

    /// On a Redis Cluster (3 masters, 3 replicas); `env` reaches every instance and worker.
    fn up_on_redis_cluster(instances: usize, workers: usize, env: &[(&str, &str)]) -> Self {
        Self::launch(instances, workers, &["--redis-cluster"], env)
    }

    fn launch(instances: usize, workers: usize, flags: &[&str], env: &[(&str, &str)]) -> Self {
        let redis_cluster = flags.contains(&"--redis-cluster");
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let out = Command::new(repo().join("scripts/cluster"))
            .args([
                "up",
                "--instances",
                &instances.to_string(),
                "--workers",
                &workers.to_string(),
            ])
            .args(flags)
            .args(["--port", &port.to_string(), "--dir"])
            .arg(dir.path())
            .envs(env.iter().copied())
            .env("CONFAB_CLUSTER_BUILD", "0")
            .env("CONFAB_SEND_RATE", "1000")
            .env("CONFAB_FRAME_RATE", "1000")
            .env("CONFAB_AUTH_BURST_PER_ADDRESS", "1000")
            .env("CARGO_TARGET_DIR", target_dir())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "cluster up failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut c = Self {
            dir,
            lb: String::new(),
            instances: Vec::new(),
            redis: Vec::new(),
            redis_cluster,
            database: String::new(),
        };
        for line in stdout.lines() {
            if let Some(v) = line.strip_prefix("lb=") {
                c.lb = v.into();
            } else if let Some(v) = line.strip_prefix("instance=") {
                c.instances.push(v.into());
            } else if let Some(v) = line.strip_prefix("redis=") {
                c.redis.push(v.into());
            } else if let Some(v) = line.strip_prefix("database=") {
                c.database = v.into();
            }
        }
        assert_eq!(c.instances.len(), instances);
        c
    }

    fn run(&self, args: &[&str]) {
        let ok = Command::new(repo().join("scripts/cluster"))
            .args(args)
            .arg("--dir")
            .arg(self.dir.path())
            .status()
            .unwrap()
            .success();
        assert!(ok, "scripts/cluster {args:?}");
    }

    fn kill(&self, name: &str) {
        self.run(&["kill", name]);
    }

    fn start(&self, name: &str) {
        self.run(&["start", name]);
    }

    async fn pg(&self) -> sqlx::PgPool {
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect(&self.database)
            .await
            .unwrap()
    }

    /// Where Redis is, and its key layout.
    fn redis_target(&self) -> (RedisTarget, KeySpace) {
        if self.redis_cluster {
            let nodes = self.redis.iter().map(|n| format!("redis://{n}")).collect();
            (RedisTarget::Cluster(nodes), KeySpace::cluster(64))
        } else {
            (
                RedisTarget::Single(self.redis[0].clone()),
                KeySpace::single(),
            )
        }
    }

    /// Entries waiting in the persistence streams (every shard's).
    async fn backlog(&self) -> redis::RedisResult<i64> {
        let (target, keys) = self.redis_target();
        let mut conn = RedisConn::connect(&target).await?;
        confab_origin::broker::redis::presence::backlog(&mut conn, keys).await
    }

    /// Waits until the workers have drained the persistence streams.
    async fn drained(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let len = self.backlog().await;
            if len == Ok(0) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "stream not drained: {len:?} left"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The port of the Redis Cluster master that owns `key`'s slot, and its process name.
    fn master_of(&self, key: &str) -> (u16, String) {
        let ports: Vec<u16> = self
            .redis
            .iter()
            .map(|n| n.rsplit(':').next().unwrap().parse().unwrap())
            .collect();
        let slot: u16 = ports
            .iter()
            .find_map(|p| {
                redis_cli(*p, &["cluster", "keyslot", key])
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap();
        let port = cluster_masters(&ports)
            .into_iter()
            .find(|(_, a, b)| (*a..=*b).contains(&slot))
            .map(|(p, _, _)| p)
            .unwrap();
        // scripts/cluster prints redis-master-1..3, then redis-replica-1..3.
        let i = ports.iter().position(|p| *p == port).unwrap();
        let name = if i < 3 {
            format!("redis-master-{}", i + 1)
        } else {
            format!("redis-replica-{}", i - 2)
        };
        (port, name)
    }
}

fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The masters that are up, as a live node sees them: (port, first slot, last slot) of each
/// slot range they own.
fn cluster_masters(ports: &[u16]) -> Vec<(u16, u16, u16)> {
    let nodes = ports
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

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(repo().join("scripts/cluster"))
            .args(["down", "--dir"])
            .arg(self.dir.path())
            .status();
    }
}

fn target_dir() -> String {
    std::env::var("CARGO_TARGET_DIR")
        .unwrap_or_else(|_| repo().join("target").display().to_string())
}

/// Registers through `base` (an instance or the load balancer).
async fn register(base: &str, name: &str) -> Client {
    Client::register_at(base, name).await
}

/// The same user's cookies, pointed at another URL (another instance).
fn via(c: &Client, base: &str) -> Client {
    c.via(base)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_on_different_instances_chat_see_presence_typing_and_activity() {
    let _one = ONE_AT_A_TIME.lock().await;
    chat_across_instances(Cluster::up(3, 1)).await;
}

/// The same scenario on the single-host deployment over Unix sockets, with a WebSocket through
/// HAProxy (whose servers are the instances' sockets) as well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_unix_sockets_users_chat_through_haproxy_and_across_instances() {
    let _one = ONE_AT_A_TIME.lock().await;
    let cluster = Cluster::up_over_unix_sockets(3, 1);
    let haproxy_cfg = std::fs::read_to_string(cluster.dir.path().join("haproxy.cfg")).unwrap();
    assert!(haproxy_cfg.contains("unix@"), "{haproxy_cfg}");
    let ann = register(&cluster.lb, "uma").await;
    let bob = register(&cluster.lb, "ugo").await;
    let room = ann.create_room("sockets").await;
    bob.join(&room).await;
    let mut a = ann.ws().await;
    let mut b = via(&bob, &cluster.instances[1]).ws().await;
    a.subscribe(&room, None).await;
    b.subscribe(&room, None).await;
    let (_, seq) = a.say(&room, "u-1", "through the socket").await;
    let ServerFrame::Entry(RoomEvent::Message(m)) = b
        .expect(|f| matches!(f, ServerFrame::Entry(RoomEvent::Message(_))))
        .await
    else {
        unreachable!()
    };
    assert_eq!((m.seq, m.body.as_str()), (seq, "through the socket"));
    drop((a, b));
    chat_across_instances(cluster).await;
}

/// The same on a Redis Cluster (acks waiting for a replica), in rooms whose shards live on
/// each of the three masters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_redis_cluster_users_on_different_instances_chat_in_rooms_on_every_master() {
    let _one = ONE_AT_A_TIME.lock().await;
    let cluster = Cluster::up_on_redis_cluster(3, 2, &[]);
    let keys = KeySpace::cluster(64);
    let ann = register(&cluster.lb, "eve").await;
    let bob = register(&cluster.lb, "fay").await;
    // Rooms until each master owns one.
    let mut by_master: BTreeMap<u16, Room> = BTreeMap::new();
    let mut n = 0;
    while by_master.len() < 3 {
        n += 1;
        assert!(n < 100, "rooms never reached every master");
        let room = ann.create_room(&format!("shard-{n}")).await;
        let (master, _) = cluster.master_of(&keys.room_channel(room.id));
        by_master.entry(master).or_insert(room);
    }
    let mut a = via(&ann, &cluster.instances[0]).ws().await;
    let mut b = via(&bob, &cluster.instances[1]).ws().await;
    for (master, room) in &by_master {
        via(&bob, &cluster.instances[2]).join(room).await;
        a.subscribe(room, None).await;
        b.subscribe(room, None).await;
        let (_, seq) = a
            .say(room, &format!("a-{master}"), &format!("to {master}"))
            .await;
        let ServerFrame::Entry(RoomEvent::Message(m)) = b
            .expect(|f| matches!(f, ServerFrame::Entry(RoomEvent::Message(m)) if m.room == room.id))
            .await
        else {
            unreachable!()
        };
        assert_eq!((m.seq, m.body), (seq, format!("to {master}")));
        let (_, seq) = b.say(room, &format!("b-{master}"), "back").await;
        let ServerFrame::Entry(RoomEvent::Message(m)) = a
            .expect(|f| matches!(f, ServerFrame::Entry(RoomEvent::Message(m)) if m.room == room.id && m.author.username == "fay"))
            .await
        else {
            unreachable!()
        };
        assert_eq!(m.seq, seq);
    }
    drop((a, b));
    // And the whole scenario (presence, typing, activity, the log, recovery) on the cluster.
    chat_across_instances(cluster).await;
}

async fn chat_across_instances(cluster: Cluster) {
    let ann = register(&cluster.lb, "ann").await;
    let bob = register(&cluster.lb, "bob").await;
    let carl = register(&cluster.lb, "carl").await;
    // A room created through instance 3 is visible through instance 1.
    let room = via(&ann, &cluster.instances[2])
        .create_room("everywhere")
        .await;
    let page: RoomPage = via(&bob, &cluster.instances[0])
        .get("/api/rooms?scope=discover")
        .await
        .json()
        .await
        .unwrap();
    assert!(page.rooms.iter().any(|r| r.id == room.id));
    via(&bob, &cluster.instances[0]).join(&room).await;
    via(&carl, &cluster.instances[1]).join(&room).await;

    let mut a = via(&ann, &cluster.instances[0]).ws().await;
    let mut b = via(&bob, &cluster.instances[1]).ws().await;
    let mut c = via(&carl, &cluster.instances[2]).ws().await; // member, not subscribed
    a.subscribe(&room, None).await;
    let ServerFrame::Subscribed { online, .. } = b.subscribe(&room, None).await else {
        unreachable!()
    };
    assert_eq!(online.len(), 2, "{online:?}");
    match a
        .expect(|f| matches!(f, ServerFrame::Presence { .. }))
        .await
    {
        ServerFrame::Presence { user, online, .. } => assert!(online && user.username == "bob"),
        _ => unreachable!(),
    }
    b.send(json!({"type": "typing", "room": room.id})).await;
    match a.expect(|f| matches!(f, ServerFrame::Typing { .. })).await {
        ServerFrame::Typing { user, .. } => assert_eq!(user.username, "bob"),
        _ => unreachable!(),
    }
    let (_, seq) = a.say(&room, "a1", "hello from instance 1").await;
    let ServerFrame::Entry(RoomEvent::Message(m)) = b
        .expect(|f| matches!(f, ServerFrame::Entry(RoomEvent::Message(_))))
        .await
    else {
        unreachable!()
    };
    assert_eq!((m.seq, m.body.as_str()), (seq, "hello from instance 1"));
    let (_, seq2) = b.say(&room, "b1", "hello from instance 2").await;
    let ServerFrame::Entry(RoomEvent::Message(m)) = a
        .expect(|f| matches!(f, ServerFrame::Entry(RoomEvent::Message(m)) if m.author.username == "bob"))
        .await
    else {
        unreachable!()
    };
    assert_eq!(m.seq, seq2);
    for want in [seq, seq2] {
        match c
            .expect(|f| matches!(f, ServerFrame::Activity { .. }))
            .await
        {
            ServerFrame::Activity { seq, room: r, .. } => assert_eq!((r, seq), (room.id, want)),
            _ => unreachable!(),
        }
    }
    drop(b);
    match a
        .expect(|f| matches!(f, ServerFrame::Presence { .. }))
        .await
    {
        ServerFrame::Presence { user, online, .. } => assert!(!online && user.username == "bob"),
        _ => unreachable!(),
    }

    // The room log across instances: while Bob is away, Ann posts, edits and deletes through
    // instance 1; Bob comes back through instance 3 and recovers every change in seq order.
    let (posted, _) = a.say(&room, "a2", "posted while bob is away").await;
    let (first, _) = a.say(&room, "a3", "to be deleted").await;
    let edited = a
        .edit(&room, &posted, "edited while bob is away", "e-1")
        .await;
    assert!(matches!(edited, ServerFrame::Ack { .. }), "{edited:?}");
    let deleted = a.delete(&room, &first, "d-1").await;
    assert!(matches!(deleted, ServerFrame::Ack { .. }), "{deleted:?}");
    let mut b = via(&bob, &cluster.instances[2]).ws().await;
    let (replayed, _, recovered) = b.recover(&room, seq2).await;
    assert!(recovered);
    assert_eq!(
        replayed.iter().map(RoomEvent::kind).collect::<Vec<_>>(),
        ["message", "message", "edited", "deleted"]
    );
    let seqs: Vec<i64> = replayed.iter().map(RoomEvent::seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert!(matches!(&replayed[0], RoomEvent::Message(m) if m.body == "edited while bob is away"));
    assert!(matches!(&replayed[1], RoomEvent::Message(m) if m.is_deleted() && m.body.is_empty()));
    // The HTTP catch-up, through the load balancer, gives the same entries, before and after
    // the workers have written them to PostgreSQL.
    let page: EventPage = via(&bob, &cluster.lb)
        .get(&format!("/api/rooms/{}/events?after_seq={seq2}", room.id))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page.events, replayed);
    cluster.drained().await;
    let dave = register(&cluster.lb, "dave").await;
    let res = dave.get(&format!("/api/rooms/{}/events", room.id)).await;
    assert_eq!(res.status(), 403, "non-members do not read the log");
    let pg = cluster.pg().await;
    let (body, deleted_at): (String, Option<i64>) =
        sqlx::query_as("SELECT body, deleted_at FROM messages WHERE id = $1")
            .bind(uuid::Uuid::parse_str(&first).unwrap())
            .fetch_one(&pg)
            .await
            .unwrap();
    assert!(
        body.is_empty() && deleted_at.is_some(),
        "deleted in PostgreSQL"
    );
    let body: String = sqlx::query_scalar("SELECT body FROM messages WHERE id = $1")
        .bind(uuid::Uuid::parse_str(&posted).unwrap())
        .fetch_one(&pg)
        .await
        .unwrap();
    assert_eq!(body, "edited while bob is away", "edited in PostgreSQL");
}

/// A client that reconnects through the load balancer, recovers with `after_seq`, and resends
/// unacknowledged messages with the same `client_msg_id`.
struct Chatter {
    client: Client,
    room: Room,
    ws: Option<Ws>,
    /// seq -> message id, as this client has seen them.
    seen: BTreeMap<i64, String>,
    duplicates: usize,
    /// client_msg_id or ref -> (message id, seq) once acked.
    acked: HashMap<String, (String, i64)>,
    /// message id -> its text, as this client's view shows it.
    bodies: HashMap<String, String>,
    reconnects: usize,
    /// When acks and retryable errors arrived.
    acks_at: Vec<Instant>,
    errors_at: Vec<Instant>,
}

impl Chatter {
    /// Registers a member of `room` through the load balancer and connects it.
    async fn join(lb: &str, name: &str, room: &Room) -> Self {
        let client = register(lb, name).await;
        client.join(room).await;
        let mut c = Chatter {
            client,
            room: room.clone(),
            ws: None,
            seen: BTreeMap::new(),
            duplicates: 0,
            acked: HashMap::new(),
            bodies: HashMap::new(),
            reconnects: 0,
            acks_at: Vec::new(),
            errors_at: Vec::new(),
        };
        c.connect().await;
        // In the room before anyone speaks: a first subscribe has no `after_seq`, so what is
        // sent before it is answered would be in history only, not in this client's view.
        c.ws.as_mut()
            .unwrap()
            .expect(|f| matches!(f, ServerFrame::Subscribed { .. }))
            .await;
        c
    }

    async fn connect(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match self.client.ws_with_origin(None).await {
                Ok(mut ws) => {
                    let after = self.seen.keys().next_back().copied();
                    let mut frame = json!({"type": "subscribe", "room": self.room.id});
                    if let Some(a) = after {
                        frame["after_seq"] = json!(a);
                    }
                    ws.send(frame).await;
                    self.ws = Some(ws);
                    return;
                }
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Err(e) => panic!("could not reconnect: {e}"),
            }
        }
    }

    fn record(&mut self, f: &ServerFrame) {
        let ServerFrame::Entry(entry) = f else { return };
        let Some(id) = entry.message_id().map(|m| m.to_string()) else {
            return;
        };
        if self.seen.insert(entry.seq(), id.clone()).is_some() {
            self.duplicates += 1;
        }
        match entry {
            RoomEvent::Message(m) => {
                self.bodies.insert(id, m.body.clone());
            }
            RoomEvent::Edited(e) => {
                self.bodies.insert(id, e.body.clone());
            }
            RoomEvent::Deleted(_) => {
                self.bodies.remove(&id);
            }
            _ => {}
        }
    }

    /// Sends (or resends) a message until acked, reconnecting as needed.
    async fn say(&mut self, cmid: &str) {
        let frame = json!({"type": "send", "room": self.room.id, "client_msg_id": cmid, "body": format!("msg {cmid}")});
        self.request(frame, cmid).await;
    }

    /// Edits (or re-edits, with the same ref) a message until acked.
    async fn edit(&mut self, id: &str, body: &str, reference: &str) {
        let frame =
            json!({"type": "edit", "room": self.room.id, "id": id, "body": body, "ref": reference});
        self.request(frame, reference).await;
    }

    /// Sends (or resends) `frame` until the ack for `reference`, reconnecting as needed.
    async fn request(&mut self, frame: serde_json::Value, reference: &str) {
        loop {
            if self.ws.is_none() {
                self.reconnects += 1;
                self.connect().await;
            }
            let ws = self.ws.as_mut().unwrap();
            if futures::SinkExt::send(
                &mut ws.stream,
                tokio_tungstenite::tungstenite::Message::Text(frame.to_string().into()),
            )
            .await
            .is_err()
            {
                self.ws = None;
                continue;
            }
            match self.until_ack(reference).await {
                Some(true) => return,
                Some(false) => tokio::time::sleep(Duration::from_millis(100)).await, // retryable error
                None => self.ws = None,
            }
        }
    }

    /// Reads until the ack for `cmid` (Some(true)), a retryable error for it (Some(false)), or a
    /// broken socket (None).
    async fn until_ack(&mut self, cmid: &str) -> Option<bool> {
        loop {
            let msg = tokio::time::timeout(
                Duration::from_secs(10),
                futures::StreamExt::next(&mut self.ws.as_mut()?.stream),
            )
            .await;
            let text = match msg {
                Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t)))) => t,
                Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_)) | Err(_)) | None)
                | Err(_) => return None,
                Ok(Some(Ok(_))) => continue,
            };
            let f: ServerFrame = serde_json::from_str(&text).unwrap();
            self.record(&f);
            match f {
                ServerFrame::Ack {
                    reference, id, seq, ..
                } if reference.as_str() == cmid => {
                    self.acked.insert(cmid.into(), (id.to_string(), seq));
                    self.acks_at.push(Instant::now());
                    return Some(true);
                }
                ServerFrame::Error {
                    reference: Some(r),
                    code,
                    ..
                } if r == cmid => {
                    assert!(code.is_retryable(), "{code:?}");
                    self.errors_at.push(Instant::now());
                    return Some(false);
                }
                ServerFrame::Resync { .. } => {
                    let after = self.seen.keys().next_back().copied().unwrap_or(0);
                    self.ws
                        .as_mut()?
                        .send(
                            json!({"type": "subscribe", "room": self.room.id, "after_seq": after}),
                        )
                        .await;
                }
                _ => {}
            }
        }
    }

    /// Reads until every one of `ids` has been seen.
    async fn catch_up(&mut self, ids: &[(String, i64)]) {
        self.catch_up_within(ids, Duration::from_secs(30)).await;
        let missing: Vec<&i64> = ids
            .iter()
            .filter(|(id, seq)| self.seen.get(seq) != Some(id))
            .map(|(_, seq)| seq)
            .collect();
        assert!(
            missing.is_empty(),
            "client {} never saw seqs {missing:?} (it saw up to {:?}, {} entries)",
            self.client.me.username,
            self.seen.keys().next_back(),
            self.seen.len()
        );
    }

    /// Reads until every one of `ids` has been seen, or `limit` has passed.
    async fn catch_up_within(&mut self, ids: &[(String, i64)], limit: Duration) {
        let deadline = Instant::now() + limit;
        while !ids.iter().all(|(id, seq)| self.seen.get(seq) == Some(id)) {
            if Instant::now() >= deadline {
                return;
            }
            if self.ws.is_none() {
                self.connect().await;
            }
            if self.until_ack("--never--").await.is_none() {
                self.ws = None;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_an_instance_loses_no_acked_message_and_duplicates_none() {
    let _one = ONE_AT_A_TIME.lock().await;
    let cluster = Cluster::up(3, 2);
    let owner = register(&cluster.lb, "owner").await;
    let room = owner.create_room("chaos").await;
    let mut chatters = Vec::new();
    for i in 0..6 {
        chatters.push(Chatter::join(&cluster.lb, &format!("user{i}"), &room).await);
    }
    let mut killed_at = None;
    for round in 0..16 {
        if round == 6 {
            cluster.kill("instance-1");
            killed_at = Some(Instant::now());
        }
        for (i, c) in chatters.iter_mut().enumerate() {
            c.say(&format!("u{i}-r{round}")).await;
            // Each one also edits its message of the round before: edits flow during the kill.
            if round > 0 {
                let previous = format!("u{i}-r{}", round - 1);
                let id = c.acked[&previous].0.clone();
                c.edit(&id, &format!("edited {previous}"), &format!("e-{previous}"))
                    .await;
            }
        }
    }
    let recovered_in = killed_at.unwrap().elapsed();
    let all: Vec<(String, i64)> = chatters
        .iter()
        .flat_map(|c| c.acked.values().cloned())
        .collect();
    assert_eq!(all.len(), 6 * 16 + 6 * 15, "messages and edits");
    // What every client must show: each message edited but the last round's.
    let mut want: HashMap<String, String> = HashMap::new();
    for (i, c) in chatters.iter().enumerate() {
        for round in 0..16 {
            let cmid = format!("u{i}-r{round}");
            let body = if round < 15 {
                format!("edited {cmid}")
            } else {
                format!("msg {cmid}")
            };
            want.insert(c.acked[&cmid].0.clone(), body);
        }
    }
    for c in chatters.iter_mut() {
        c.catch_up(&all).await;
        assert_eq!(c.duplicates, 0, "{} saw duplicates", c.client.me.username);
        assert_eq!(
            c.seen.len(),
            all.len(),
            "{} saw exactly the acked messages and edits",
            c.client.me.username
        );
        assert_eq!(
            c.bodies, want,
            "{} shows every acked edit",
            c.client.me.username
        );
    }
    let reconnected: usize = chatters.iter().map(|c| c.reconnects).sum();
    assert!(reconnected > 0, "some clients were on the killed instance");
    println!("kill -9 of 1 of 3 instances: {reconnected} clients reconnected through HAProxy; 10 more rounds of 6 acked sends done {recovered_in:?} after the kill");
    cluster.drained().await;
    let pg = cluster.pg().await;
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages")
        .fetch_one(&pg)
        .await
        .unwrap();
    assert_eq!(
        stored,
        6 * 16,
        "every acked message is in PostgreSQL exactly once"
    );
    let edits: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM room_events WHERE kind = 'edited'")
        .fetch_one(&pg)
        .await
        .unwrap();
    assert_eq!(
        edits,
        6 * 15,
        "every acked edit is in PostgreSQL exactly once"
    );
    let rows: Vec<(uuid::Uuid, String)> = sqlx::query_as("SELECT id, body FROM messages")
        .fetch_all(&pg)
        .await
        .unwrap();
    let stored: HashMap<String, String> = rows
        .into_iter()
        .map(|(id, b)| (id.to_string(), b))
        .collect();
    assert_eq!(
        stored, want,
        "PostgreSQL holds every message as last edited"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_batch_loses_and_duplicates_nothing() {
    let _one = ONE_AT_A_TIME.lock().await;
    worker_killed_mid_batch(Cluster::up(1, 1)).await;
}

/// On a Redis Cluster the room's entries are on its shard's stream: the worker killed while
/// writing them, restarted, drains that shard's backlog, each message once in PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_redis_cluster_a_worker_killed_mid_batch_on_one_shard_loses_and_duplicates_nothing() {
    let _one = ONE_AT_A_TIME.lock().await;
    worker_killed_mid_batch(Cluster::up_on_redis_cluster(1, 1, &[])).await;
}

async fn worker_killed_mid_batch(cluster: Cluster) {
    let ann = register(&cluster.lb, "ann").await;
    let room = ann.create_room("bulk").await;
    let mut senders = Vec::new();
    for _ in 0..4 {
        senders.push(via(&ann, &cluster.instances[0]).ws().await);
    }
    const N: usize = 2000;
    for i in 0..N {
        senders[i % 4].send(json!({"type": "send", "room": room.id, "client_msg_id": format!("m{i}"), "body": format!("bulk {i}")})).await;
        if i == N / 2 {
            cluster.kill("worker-1");
        }
    }
    let mut acked = 0;
    for (i, s) in senders.iter_mut().enumerate() {
        let expected = (i..N).step_by(4).count();
        let mut got = 0;
        while got < expected {
            match s.next().await {
                ServerFrame::Ack { .. } => got += 1,
                ServerFrame::Error { code, message, .. } => panic!("{code:?}: {message}"),
                _ => {}
            }
        }
        acked += got;
    }
    let backlog = cluster.backlog().await.unwrap();
    if cluster.redis_cluster {
        // All of it on the room's shard.
        let (target, keys) = cluster.redis_target();
        let mut conn = RedisConn::connect(&target).await.unwrap();
        let len: i64 = redis::cmd("XLEN")
            .arg(keys.persist_stream(room.id))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(len, backlog, "the backlog is the room's shard's");
    }
    println!("worker killed: {backlog} entries waiting");
    let restarted = Instant::now();
    cluster.start("worker-1");
    cluster.drained().await;
    println!(
        "worker restarted after kill -9: stream of {N} drained {:?} after restart",
        restarted.elapsed()
    );
    let pg = cluster.pg().await;
    let (rows, distinct): (i64, i64) =
        sqlx::query_as("SELECT COUNT(*), COUNT(DISTINCT client_msg_id) FROM messages")
            .fetch_one(&pg)
            .await
            .unwrap();
    assert_eq!((rows, distinct), (acked as i64, acked as i64));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_gives_retryable_errors_and_rooms_recover_within_seconds() {
    let _one = ONE_AT_A_TIME.lock().await;
    let cluster = Cluster::up(2, 1);
    let ann = register(&cluster.lb, "ann").await;
    let bob = register(&cluster.lb, "bob").await;
    let room = ann.create_room("flaky").await;
    bob.join(&room).await;
    // Both through HAProxy (leastconn puts them on different instances).
    let mut a = ann.ws().await;
    let mut b = bob.ws().await;
    a.subscribe(&room, None).await;
    b.subscribe(&room, None).await;
    a.say(&room, "before", "before the outage").await;

    cluster.kill("redis");
    a.send(json!({"type": "send", "room": room.id, "client_msg_id": "during", "body": "during"}))
        .await;
    match a
        .expect(|f| matches!(f, ServerFrame::Ack { .. } | ServerFrame::Error { .. }))
        .await
    {
        ServerFrame::Error {
            code, reference, ..
        } => {
            assert!(code.is_retryable());
            assert_eq!(reference.as_deref(), Some("during"));
        }
        other => panic!("no false ack during the outage: {other:?}"),
    }
    cluster.start("redis");
    let back = Instant::now();
    // Retry the same message until it is accepted; then Bob, on the other instance, gets it.
    let seq = loop {
        a.send(
            json!({"type": "send", "room": room.id, "client_msg_id": "during", "body": "during"}),
        )
        .await;
        match a
            .expect(|f| matches!(f, ServerFrame::Ack { .. } | ServerFrame::Error { .. }))
            .await
        {
            ServerFrame::Ack { seq, .. } => break seq,
            _ => {
                assert!(
                    back.elapsed() < Duration::from_secs(5),
                    "not back within 5 s"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    // Bob's instance tells him to resync, or delivers the message if it resubscribed first.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = false;
    while !seen && Instant::now() < deadline {
        match b.next().await {
            ServerFrame::Entry(RoomEvent::Message(m)) if m.seq == seq => seen = true,
            ServerFrame::Resync { .. } => {
                b.send(json!({"type": "subscribe", "room": room.id, "after_seq": 1}))
                    .await;
            }
            _ => {}
        }
    }
    assert!(seen, "bob got the message after the restart");
    println!("redis restart: sends accepted again {:?} after redis came back; cross-instance delivery within {:?}", back.elapsed(), back.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_continues_while_postgres_is_away_and_the_stream_drains_after() {
    let _one = ONE_AT_A_TIME.lock().await;
    let cluster = Cluster::up(2, 1);
    let ann = register(&cluster.lb, "ann").await;
    let bob = register(&cluster.lb, "bob").await;
    let room = ann.create_room("no-db").await;
    bob.join(&room).await;
    let mut a = ann.ws().await;
    let mut b = bob.ws().await;
    a.subscribe(&room, None).await;
    b.subscribe(&room, None).await;
    a.say(&room, "warm", "warm up").await;

    // "Stop" PostgreSQL for this cluster's database: no new connections, existing ones cut.
    let db = cluster.database.rsplit('/').next().unwrap().to_owned();
    let admin = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect("postgres://postgres@127.0.0.1:5432/postgres")
        .await
        .unwrap();
    sqlx::query(&format!("ALTER DATABASE {db} ALLOW_CONNECTIONS false"))
        .execute(&admin)
        .await
        .unwrap();
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
        .bind(&db)
        .execute(&admin)
        .await
        .unwrap();
    let mut during = Vec::new();
    for i in 0..20 {
        let (id, seq) = a
            .say(
                &room,
                &format!("d{i}"),
                &format!("while the database is away {i}"),
            )
            .await;
        during.push((id, seq));
    }
    let mut got = 0;
    while got < during.len() {
        if let ServerFrame::Entry(RoomEvent::Message(m)) = b.next().await {
            if m.body.starts_with("while the database") {
                got += 1;
            }
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let back = Instant::now();
    sqlx::query(&format!("ALTER DATABASE {db} ALLOW_CONNECTIONS true"))
        .execute(&admin)
        .await
        .unwrap();
    cluster.drained().await;
    println!("postgres back: stream drained {:?} later", back.elapsed());
    let pg = cluster.pg().await;
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages")
        .fetch_one(&pg)
        .await
        .unwrap();
    assert_eq!(stored, 21);
}

/// Conversations across instances on Redis: a private room whose owner is on one instance
/// kicks a member connected to another, whose socket stops receiving the room at once;
/// reactions, pins and membership entries reach every instance and are recovered from the
/// Redis history and, once the workers have written them, from PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversations_across_instances() {
    let _one = ONE_AT_A_TIME.lock().await;
    let cluster = Cluster::up(2, 1);
    let ann = register(&cluster.lb, "ann").await;
    let bob = register(&cluster.lb, "bob").await;
    let carl = register(&cluster.lb, "carl").await;
    let ann1 = via(&ann, &cluster.instances[0]);
    let room = ann1.create_private_room("crew").await;
    for who in [&bob, &carl] {
        let res = ann1
            .post(
                &format!("/api/rooms/{}/members", room.id),
                json!({"user": who.me.id}),
            )
            .await;
        assert_eq!(res.status(), 200);
    }
    let mut a = ann1.ws().await;
    a.subscribe(&room, None).await;
    let mut b = via(&bob, &cluster.instances[1]).ws().await;
    let ServerFrame::Subscribed { last_seq: seen, .. } = b.subscribe(&room, None).await else {
        unreachable!()
    };
    let mut c = via(&carl, &cluster.instances[1]).ws().await;
    c.subscribe(&room, None).await;

    // A reply with a mention, across instances.
    let (parent, _) = a.say(&room, "a1", "plans for @carl").await;
    b.send(json!({"type": "send", "room": room.id, "client_msg_id": "b1", "body": "sounds good", "reply_to": parent}))
        .await;
    match a
        .expect(
            |f| matches!(f, ServerFrame::Entry(RoomEvent::Message(m)) if m.author.id == bob.me.id),
        )
        .await
    {
        ServerFrame::Entry(RoomEvent::Message(m)) => {
            assert_eq!(m.reply_to.unwrap().id.to_string(), parent)
        }
        _ => unreachable!(),
    }
    // A reaction from instance 2 reaches instance 1.
    let ack = b
        .change(json!({"type": "react", "room": room.id, "message": parent, "emoji": "👍", "on": true, "ref": "r1"}))
        .await;
    assert!(matches!(ack, ServerFrame::Ack { .. }), "{ack:?}");
    a.expect(|f| matches!(f, ServerFrame::Entry(RoomEvent::Reaction(_))))
        .await;

    // Kicked on instance 1, Carl's socket on instance 2 stops receiving at once.
    let res = ann1
        .delete(&format!("/api/rooms/{}/members/{}", room.id, carl.me.id))
        .await;
    assert_eq!(res.status(), 204);
    c.expect(|f| matches!(f, ServerFrame::Membership { member: false, .. }))
        .await;
    a.say(&room, "a2", "carl is gone").await;
    c.quiet_for(Duration::from_millis(500)).await;
    let pinned = ann1
        .put(&format!("/api/messages/{parent}/pin"), json!({}))
        .await;
    assert_eq!(pinned.status(), 200);

    // Bob recovers every kind through the other instance, before and after the workers ran.
    drop(b);
    let bob0 = via(&bob, &cluster.instances[0]);
    let mut b = bob0.ws().await;
    let (from_redis, _, recovered) = b.recover(&room, seen).await;
    assert!(recovered);
    let kinds: Vec<&str> = from_redis.iter().map(RoomEvent::kind).collect();
    assert_eq!(
        kinds,
        [
            "message",
            "message",
            "reaction",
            "member_removed",
            "message",
            "pinned"
        ]
    );
    cluster.drained().await;
    let page: EventPage = bob0
        .get(&format!("/api/rooms/{}/events?after_seq={seen}", room.id))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        page.events.iter().map(RoomEvent::kind).collect::<Vec<_>>(),
        kinds
    );
    let history: confab_shared::api::MessagePage = bob0
        .get(&format!("/api/rooms/{}/messages", room.id))
        .await
        .json()
        .await
        .unwrap();
    let first = history
        .messages
        .iter()
        .find(|m| m.id.to_string() == parent)
        .unwrap();
    assert!(first.pinned, "the workers folded the pin into PostgreSQL");
    assert_eq!(first.mentions, [carl.me.id]);
    assert_eq!(first.reactions[0].users, [bob.me.id]);
}

/// What a master failover did to a busy room, as its clients and PostgreSQL saw it.
struct Failover {
    acked: usize,
    lost: usize,
    duplicates: usize,
    errors: usize,
    first_error: Duration,
    promoted: Duration,
    restarted: Duration,
    resumed: Duration,
}

/// `kill -9` of the Redis master owning a busy room's shard while 6 clients on 3 instances
/// send and edit through HAProxy; once a replica is promoted the node is started again (it
/// rejoins as a replica, as its supervisor would restart it). Returns what was lost.
async fn kill_the_rooms_master(cluster: &Cluster) -> Failover {
    let keys = KeySpace::cluster(64);
    let owner = register(&cluster.lb, "owner").await;
    let room = owner.create_room("failover").await;
    let (master, name) = cluster.master_of(&keys.room_channel(room.id));
    let slot_key = keys.room_channel(room.id);
    let mut chatters = Vec::new();
    for i in 0..6 {
        chatters.push(Chatter::join(&cluster.lb, &format!("user{i}"), &room).await);
    }
    const ROUNDS: usize = 16;
    let mut killed_at = None;
    let mut watcher = None;
    for round in 0..ROUNDS {
        if round == 6 {
            cluster.kill(&name);
            let at = Instant::now();
            killed_at = Some(at);
            // Watch for the promotion, then restart the killed node.
            let ports: Vec<u16> = cluster
                .redis
                .iter()
                .map(|n| n.rsplit(':').next().unwrap().parse().unwrap())
                .collect();
            let dir = cluster.dir.path().to_owned();
            let name = name.clone();
            let slot_key = slot_key.clone();
            watcher = Some(tokio::task::spawn_blocking(move || {
                let live: Vec<u16> = ports.iter().copied().filter(|p| *p != master).collect();
                let slot: u16 = redis_cli(live[0], &["cluster", "keyslot", &slot_key])
                    .trim()
                    .parse()
                    .unwrap();
                loop {
                    let owner = cluster_masters(&live)
                        .into_iter()
                        .find(|(_, a, b)| (*a..=*b).contains(&slot))
                        .map(|(p, _, _)| p);
                    if owner.is_some_and(|p| p != master) {
                        break;
                    }
                    assert!(
                        at.elapsed() < Duration::from_secs(30),
                        "no replica was promoted"
                    );
                    std::thread::sleep(Duration::from_millis(50));
                }
                let promoted = at.elapsed();
                let ok = Command::new(repo().join("scripts/cluster"))
                    .args(["start", &name, "--dir"])
                    .arg(&dir)
                    .status()
                    .unwrap()
                    .success();
                assert!(ok);
                (promoted, at.elapsed())
            }));
        }
        for (i, c) in chatters.iter_mut().enumerate() {
            c.say(&format!("u{i}-r{round}")).await;
            if round > 0 {
                let previous = format!("u{i}-r{}", round - 1);
                let id = c.acked[&previous].0.clone();
                c.edit(&id, &format!("edited {previous}"), &format!("e-{previous}"))
                    .await;
            }
        }
    }
    let killed_at = killed_at.unwrap();
    let (promoted, restarted) = watcher.unwrap().await.unwrap();
    let first_error = chatters
        .iter()
        .flat_map(|c| c.errors_at.iter())
        .filter(|t| **t >= killed_at)
        .min()
        .copied()
        .unwrap_or(killed_at);
    let resumed = chatters
        .iter()
        .flat_map(|c| c.acks_at.iter())
        .filter(|t| **t > first_error)
        .min()
        .copied()
        .unwrap_or(first_error);
    let errors = chatters
        .iter()
        .map(|c| c.errors_at.iter().filter(|t| **t >= killed_at).count())
        .sum();
    let all: Vec<(String, i64)> = chatters
        .iter()
        .flat_map(|c| c.acked.values().cloned())
        .collect();
    let mut want: HashMap<String, String> = HashMap::new();
    for (i, c) in chatters.iter().enumerate() {
        for round in 0..ROUNDS {
            let cmid = format!("u{i}-r{round}");
            let body = if round < ROUNDS - 1 {
                format!("edited {cmid}")
            } else {
                format!("msg {cmid}")
            };
            want.insert(c.acked[&cmid].0.clone(), body);
        }
    }
    let mut lost = 0;
    let mut duplicates = 0;
    for c in chatters.iter_mut() {
        c.catch_up_within(&all, Duration::from_secs(30)).await;
        duplicates += c.duplicates + c.seen.len().saturating_sub(all.len());
        lost += all
            .iter()
            .filter(|(id, seq)| c.seen.get(seq) != Some(id))
            .count();
        lost += want
            .iter()
            .filter(|(id, b)| c.bodies.get(*id) != Some(b))
            .count();
    }
    cluster.drained().await;
    let pg = cluster.pg().await;
    let rows: Vec<(uuid::Uuid, String)> = sqlx::query_as("SELECT id, body FROM messages")
        .fetch_all(&pg)
        .await
        .unwrap();
    let stored: HashMap<String, String> = rows
        .into_iter()
        .map(|(id, b)| (id.to_string(), b))
        .collect();
    lost += want
        .iter()
        .filter(|(id, b)| stored.get(*id) != Some(b))
        .count();
    duplicates += stored.len().saturating_sub(want.len());
    let edits: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM room_events WHERE kind = 'edited'")
        .fetch_one(&pg)
        .await
        .unwrap();
    duplicates += (edits as usize).saturating_sub(6 * (ROUNDS - 1));
    lost += (6 * (ROUNDS - 1)).saturating_sub(edits as usize);
    Failover {
        acked: all.len(),
        lost,
        duplicates,
        errors,
        first_error: first_error - killed_at,
        promoted,
        restarted,
        resumed: resumed - killed_at,
    }
}

impl Failover {
    fn print(&self, what: &str) {
        println!(
            "{what}: {} acked messages and edits, {} lost, {} duplicated; {} retryable errors \
             (first {:?} after the kill); replica promoted {:?} after the kill, killed node \
             restarted {:?}; acks resumed {:?} after the kill",
            self.acked,
            self.lost,
            self.duplicates,
            self.errors,
            self.first_error,
            self.promoted,
            self.restarted,
            self.resumed
        );
    }
}

/// With acks waiting for a replica (CONFAB_REDIS_WAIT_REPLICAS=1, scripts/cluster's default):
/// sends that land while the shard has no master fail with retryable errors (never a false ack), and
/// once the replica is promoted and has a replica again they succeed; no acknowledged message
/// or edit is lost or duplicated, in the clients' views or in PostgreSQL, and service resumes
/// within 10 s of the kill.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_redis_cluster_killing_a_busy_rooms_master_loses_no_acked_message() {
    let _one = ONE_AT_A_TIME.lock().await;
    let cluster = Cluster::up_on_redis_cluster(3, 2, &[]);
    let f = kill_the_rooms_master(&cluster).await;
    f.print("kill -9 of the room's Redis master, acks waiting for a replica");
    // Whether a send lands in the shard's masterless moment is timing: on a fast box the
    // promotion (1.4 s) can pass between two rounds of sends, with no error to see. What must
    // hold either way: no false ack (nothing acked is lost or doubled) and service resumes.
    assert_eq!((f.lost, f.duplicates), (0, 0));
    assert!(f.resumed < Duration::from_secs(10), "{:?}", f.resumed);
}

/// The same without replica acks (CONFAB_REDIS_WAIT_REPLICAS=0): measures what a failover
/// loses when an ack means only "on the master". Run by hand:
/// `cargo test -p confab-origin --test cluster -- --ignored --nocapture without_replica_acks`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement (loss is possible by design), not a check"]
async fn on_a_redis_cluster_without_replica_acks_measure_what_a_failover_loses() {
    let _one = ONE_AT_A_TIME.lock().await;
    let cluster = Cluster::up_on_redis_cluster(3, 2, &[("CONFAB_REDIS_WAIT_REPLICAS", "0")]);
    let f = kill_the_rooms_master(&cluster).await;
    f.print("kill -9 of the room's Redis master, acks not waiting for replicas");
}
