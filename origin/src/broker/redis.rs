//! The Redis broker, for many origin instances.
//!
//! - **Publish** is one Lua script call (one round trip): check the `client_msg_id` key
//!   (idempotency across instances), take the room's next seq (`INCR`), build the frame (the
//!   instance serialized it once, with the seq spliced in by the script), add it to the room's
//!   capped recent history (a sorted set scored by seq), append it to the persistence stream
//!   (read by `confab worker`), and `PUBLISH` it to the room's channel. The ack follows the
//!   script: the message is then as durable as Redis is configured to be (see the README).
//! - **Fan-out**: each instance holds ONE pub/sub connection. It subscribes to a room's channel
//!   while the hub has the room live (reference-counted by the hub), and to a user's channel
//!   while the user has a connection here. Received frames are handed to the hub as they are:
//!   serialized once by the publisher, for every recipient everywhere.
//! - **Presence**: a hash per room of `user|instance` fields, written on local transitions by a
//!   script that publishes `presence` only on global ones. Instances heartbeat a key with a TTL;
//!   the others reap a dead instance's fields and publish the resulting departures.
//! - **Outages**: commands go through a reconnecting connection manager, so sends during an
//!   outage fail with a retryable `unavailable` (never a false ack). The pub/sub task reconnects
//!   by itself, resubscribes, and tells every subscribed connection to resync.

use super::{Accepted, Broker, BrokerError, Outgoing, Recovery};
use crate::gateway::hub::{Delivery, DeliveryKind, RoomHub, UserEvent};
use crate::store::DynStore;
use crate::time::now_ms;
use async_trait::async_trait;
use axum::extract::ws::Utf8Bytes;
use confab_shared::ids::{MessageId, RoomId, UserId};
use confab_shared::protocol::{ChatMessage, ServerFrame, UserPublic};
use futures::StreamExt;
use redis::aio::ConnectionManager;
use redis::Script;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The stream workers read.
pub const PERSIST_STREAM: &str = "confab:persist";
/// Their consumer group.
pub const PERSIST_GROUP: &str = "persisters";
/// Recent messages kept per room in Redis for recovery.
const RECENT_PER_ROOM: i64 = 256;
/// How long a `client_msg_id` is remembered for idempotency (the store's unique rule covers
/// older resends).
const CLIENT_ID_TTL_SECS: i64 = 24 * 3600;
/// Heartbeat period and TTL of an instance's liveness key.
const HEARTBEAT: Duration = Duration::from_secs(2);
const ALIVE_TTL_SECS: u64 = 6;
/// When Redis has lost a room's seq counter but the database has messages, restart the count
/// this far ahead, so seqs handed out but lost with Redis are never reused.
const SEQ_REINIT_GAP: i64 = 1000;

fn room_channel(room: RoomId) -> String {
    format!("confab:r:{room}")
}
fn user_channel(user: UserId) -> String {
    format!("confab:u:{user}")
}
fn seq_key(room: RoomId) -> String {
    format!("confab:seq:{room}")
}
fn recent_key(room: RoomId) -> String {
    format!("confab:recent:{room}")
}
fn presence_key(room: RoomId) -> String {
    format!("confab:presence:{room}")
}
fn instance_presence_key(instance: &str) -> String {
    format!("confab:ipres:{instance}")
}
fn alive_key(instance: &str) -> String {
    format!("confab:alive:{instance}")
}

static PUBLISH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
-- KEYS: 1 seq, 2 client id, 3 recent, 4 stream, 5 room channel
-- ARGV: 1 message id, 2 frame before seq, 3 frame after seq, 4 recent cap, 5 stream cap,
--       6 client id ttl, 7 "author_id author_name"
local prev = redis.call('GET', KEYS[2])
if prev then return prev end
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('NOSEQ') end
if redis.call('XLEN', KEYS[4]) >= tonumber(ARGV[5]) then return redis.error_reply('FULL') end
local seq = redis.call('INCR', KEYS[1])
local frame = ARGV[2] .. seq .. ARGV[3]
local ack = ARGV[1] .. ':' .. seq
redis.call('SET', KEYS[2], ack, 'EX', ARGV[6])
redis.call('ZADD', KEYS[3], seq, frame)
redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -(tonumber(ARGV[4]) + 1))
redis.call('XADD', KEYS[4], '*', 'f', frame)
redis.call('PUBLISH', KEYS[5], 'm ' .. seq .. ' ' .. ARGV[7] .. '\n' .. frame)
return ack
"#,
    )
});

static PRESENCE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
-- KEYS: 1 room presence hash, 2 instance presence set, 3 room channel
-- ARGV: 1 user id, 2 instance, 3 username, 4 '1' online / '0' offline, 5 payload, 6 room id
local field = ARGV[1] .. '|' .. ARGV[2]
local member = ARGV[6] .. '|' .. ARGV[1]
local prefix = ARGV[1] .. '|'
local others = 0
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  if f ~= field and string.sub(f, 1, #prefix) == prefix then others = others + 1 end
end
if ARGV[4] == '1' then
  redis.call('HSET', KEYS[1], field, ARGV[3])
  redis.call('SADD', KEYS[2], member)
else
  if redis.call('HDEL', KEYS[1], field) == 0 then return 0 end
  redis.call('SREM', KEYS[2], member)
end
if others == 0 then redis.call('PUBLISH', KEYS[3], ARGV[5]) end
return 1
"#,
    )
});

static ONLINE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
-- KEYS: 1 room presence hash. Returns user id, username pairs of users on live instances.
local out, alive, seen = {}, {}, {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local f, name = all[i], all[i + 1]
  local sep = string.find(f, '|', 1, true)
  local uid, inst = string.sub(f, 1, sep - 1), string.sub(f, sep + 1)
  if alive[inst] == nil then alive[inst] = redis.call('EXISTS', 'confab:alive:' .. inst) == 1 end
  if alive[inst] and not seen[uid] then
    seen[uid] = true
    table.insert(out, uid)
    table.insert(out, name)
  end
end
return out
"#,
    )
});

static REAP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
-- KEYS: 1 dead instance's presence set. ARGV: 1 dead instance id.
-- Usernames are [A-Za-z0-9_-] and ids are UUIDs, so the frame needs no JSON escaping.
for _, m in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local sep = string.find(m, '|', 1, true)
  local room, uid = string.sub(m, 1, sep - 1), string.sub(m, sep + 1)
  local hkey = 'confab:presence:' .. room
  local field = uid .. '|' .. ARGV[1]
  local name = redis.call('HGET', hkey, field)
  redis.call('HDEL', hkey, field)
  local prefix = uid .. '|'
  local others = 0
  for _, f in ipairs(redis.call('HKEYS', hkey)) do
    if string.sub(f, 1, #prefix) == prefix then others = others + 1 end
  end
  if others == 0 and name then
    local frame = '{"type":"presence","room":"' .. room .. '","user":{"id":"' .. uid ..
      '","username":"' .. name .. '"},"online":false}'
    redis.call('PUBLISH', 'confab:r:' .. room, 'e ' .. uid .. '\n' .. frame)
  end
end
redis.call('DEL', KEYS[1])
redis.call('SREM', 'confab:instances', ARGV[1])
return 1
"#,
    )
});

/// Reconnect quickly and give up quickly: during an outage a send must fail fast with a
/// retryable error rather than hang, and the next one tries again.
pub fn manager_config() -> redis::aio::ConnectionManagerConfig {
    redis::aio::ConnectionManagerConfig::new()
        .set_number_of_retries(2)
        .set_factor(100)
        .set_max_delay(500)
        .set_connection_timeout(Duration::from_secs(1))
        .set_response_timeout(Duration::from_secs(2))
}

fn unavailable(e: &redis::RedisError) -> BrokerError {
    tracing::warn!(error = %e, "redis command failed");
    BrokerError::Unavailable("message broker unavailable: retry shortly")
}

/// Splits a serialized `message` frame (with seq 0) around the seq, for the script to splice.
fn split_at_seq(json: &str) -> Option<(&str, &str)> {
    const MARK: &str = "\"seq\":0,";
    let at = json.find(MARK)?;
    Some((&json[..at + MARK.len() - 2], &json[at + MARK.len() - 1..]))
}

/// Parses a pub/sub payload (`m SEQ AUTHOR_ID AUTHOR_NAME CREATED_AT\n{frame}` or
/// `e FROM\n{frame}`).
fn parse_room_payload(payload: &[u8]) -> Option<Arc<Delivery>> {
    let text = std::str::from_utf8(payload).ok()?;
    let (header, frame) = text.split_once('\n')?;
    let mut parts = header.split(' ');
    let kind = match parts.next()? {
        "m" => {
            let seq = parts.next()?.parse().ok()?;
            let id = UserId(parts.next()?.parse().ok()?);
            let username = parts.next()?.to_owned();
            if let Some(created) = parts.next().and_then(|c| c.parse().ok()) {
                crate::metrics::since_accepted("confab_fanout_seconds", created);
            }
            DeliveryKind::Message {
                seq,
                author: UserPublic { id, username },
            }
        }
        "e" => DeliveryKind::Event {
            from: parts.next().and_then(|f| f.parse().ok()).map(UserId),
        },
        _ => return None,
    };
    Some(Arc::new(Delivery {
        kind,
        frame: Utf8Bytes::from(frame.to_owned()),
    }))
}

fn parse_message_frame(frame: &str) -> Option<ChatMessage> {
    match serde_json::from_str(frame) {
        Ok(ServerFrame::Message(m)) => Some(m),
        _ => None,
    }
}

/// What the pub/sub task has subscribed, and a counter bumped on every change.
struct Subscriptions {
    channels: Mutex<HashSet<String>>,
    changed: watch::Sender<u64>,
}

impl Subscriptions {
    fn channels(&self) -> MutexGuard<'_, HashSet<String>> {
        self.channels.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Settings of the Redis broker.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// Most messages waiting in the persistence stream before sends are refused.
    pub stream_max: i64,
}

/// The Redis broker.
pub struct RedisBroker {
    store: DynStore,
    conn: ConnectionManager,
    instance: String,
    subs: Arc<Subscriptions>,
    settings: RedisSettings,
    stop: CancellationToken,
    tasks: tokio::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl RedisBroker {
    /// Connects (failing when Redis cannot be reached now) and starts the pub/sub and heartbeat
    /// tasks.
    pub async fn start(
        url: &str,
        hub: Arc<RoomHub>,
        store: DynStore,
        settings: RedisSettings,
    ) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)?;
        let mut conn = ConnectionManager::new_with_config(client.clone(), manager_config()).await?;
        let instance = Uuid::new_v4().simple().to_string();
        // Registered before anything can write presence for it: an instance that dies at any
        // moment after this is reaped by the others.
        beat(&mut conn, &instance).await?;
        let subs = Arc::new(Subscriptions {
            channels: Mutex::new(HashSet::new()),
            changed: watch::channel(0).0,
        });
        let stop = CancellationToken::new();
        let fanout = tokio::spawn(fanout_task(client, hub, subs.clone(), stop.clone()));
        let heartbeat = tokio::spawn(heartbeat_task(conn.clone(), instance.clone(), stop.clone()));
        tracing::info!(%instance, "connected to Redis");
        Ok(Self {
            store,
            conn,
            instance,
            subs,
            settings,
            stop,
            tasks: tokio::sync::Mutex::new(vec![fanout, heartbeat]),
        })
    }

    /// Sets the room's seq counter from the database when Redis does not have it.
    async fn init_seq(&self, room: RoomId) -> Result<i64, BrokerError> {
        let last = self.store.last_seq(room).await?;
        let start = if last == 0 { 0 } else { last + SEQ_REINIT_GAP };
        let mut conn = self.conn.clone();
        let _set: Option<String> = redis::cmd("SET")
            .arg(seq_key(room))
            .arg(start)
            .arg("NX")
            .query_async(&mut conn)
            .await
            .map_err(|e| unavailable(&e))?;
        let now: Option<i64> = redis::cmd("GET")
            .arg(seq_key(room))
            .query_async(&mut conn)
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(now.unwrap_or(start))
    }

    async fn run_publish(
        &self,
        msg: &Outgoing,
        id: MessageId,
        created_at: i64,
        prefix: &str,
        suffix: &str,
    ) -> redis::RedisResult<String> {
        let mut conn = self.conn.clone();
        PUBLISH
            .key(seq_key(msg.room))
            .key(format!(
                "confab:cmid:{}:{}:{}",
                msg.room, msg.author.id, msg.client_msg_id
            ))
            .key(recent_key(msg.room))
            .key(PERSIST_STREAM)
            .key(room_channel(msg.room))
            .arg(id.to_string())
            .arg(prefix)
            .arg(suffix)
            .arg(RECENT_PER_ROOM)
            .arg(self.settings.stream_max)
            .arg(CLIENT_ID_TTL_SECS)
            .arg(format!(
                "{} {} {created_at}",
                msg.author.id, msg.author.username
            ))
            .invoke_async(&mut conn)
            .await
    }
}

#[async_trait]
impl Broker for RedisBroker {
    async fn publish_message(&self, msg: Outgoing) -> Result<Accepted, BrokerError> {
        let id = MessageId(Uuid::now_v7());
        let created_at = now_ms();
        let frame = ServerFrame::Message(ChatMessage {
            id,
            room: msg.room,
            seq: 0,
            author: msg.author.clone(),
            body: msg.body.as_str().to_owned(),
            client_msg_id: msg.client_msg_id.clone(),
            attachment: msg.attachment.clone(),
            created_at,
            edited_at: None,
        })
        .to_json();
        let (prefix, suffix) =
            split_at_seq(&frame).ok_or(BrokerError::Unavailable("could not encode the message"))?;
        let mut result = self.run_publish(&msg, id, created_at, prefix, suffix).await;
        if matches!(&result, Err(e) if e.to_string().contains("NOSEQ")) {
            self.init_seq(msg.room).await?;
            result = self.run_publish(&msg, id, created_at, prefix, suffix).await;
        }
        let ack = match result {
            Ok(ack) => ack,
            Err(e) if e.to_string().contains("FULL") => {
                return Err(BrokerError::Unavailable("server busy: retry shortly"))
            }
            Err(e) => return Err(unavailable(&e)),
        };
        let (id, seq) = ack
            .split_once(':')
            .and_then(|(id, seq)| Some((id.parse().ok()?, seq.parse().ok()?)))
            .ok_or(BrokerError::Unavailable("unexpected broker answer"))?;
        Ok(Accepted {
            id: MessageId(id),
            seq,
        })
    }

    async fn publish_event(&self, room: RoomId, frame: ServerFrame) -> Result<(), BrokerError> {
        let mut conn = self.conn.clone();
        // Keep the recent history true to edits and deletions.
        let edited_seq = match &frame {
            ServerFrame::Edited { seq, .. } | ServerFrame::Deleted { seq, .. } => Some(*seq),
            _ => None,
        };
        if let Some(seq) = edited_seq {
            let entries: Vec<String> = redis::cmd("ZRANGEBYSCORE")
                .arg(recent_key(room))
                .arg(seq)
                .arg(seq)
                .query_async(&mut conn)
                .await
                .map_err(|e| unavailable(&e))?;
            let mut pipe = redis::pipe();
            pipe.cmd("ZREMRANGEBYSCORE")
                .arg(recent_key(room))
                .arg(seq)
                .arg(seq)
                .ignore();
            if let (
                ServerFrame::Edited {
                    body, edited_at, ..
                },
                Some(mut m),
            ) = (&frame, entries.first().and_then(|e| parse_message_frame(e)))
            {
                m.body.clone_from(body);
                m.edited_at = Some(*edited_at);
                pipe.cmd("ZADD")
                    .arg(recent_key(room))
                    .arg(seq)
                    .arg(ServerFrame::Message(m).to_json())
                    .ignore();
            }
            let () = pipe
                .query_async(&mut conn)
                .await
                .map_err(|e| unavailable(&e))?;
        }
        let from = match &frame {
            ServerFrame::Presence { user, .. } | ServerFrame::Typing { user, .. } => {
                user.id.to_string()
            }
            _ => "-".to_owned(),
        };
        let payload = format!("e {from}\n{}", frame.to_json());
        let _receivers: i64 = redis::cmd("PUBLISH")
            .arg(room_channel(room))
            .arg(payload)
            .query_async(&mut conn)
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(())
    }

    async fn publish_user_event(&self, user: UserId, event: UserEvent) -> Result<(), BrokerError> {
        let payload = serde_json::to_string(&event)
            .map_err(|_| BrokerError::Unavailable("could not encode the event"))?;
        let mut conn = self.conn.clone();
        let _receivers: i64 = redis::cmd("PUBLISH")
            .arg(user_channel(user))
            .arg(payload)
            .query_async(&mut conn)
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(())
    }

    async fn recover(
        &self,
        room: RoomId,
        after_seq: i64,
        limit: u32,
    ) -> Result<Recovery, BrokerError> {
        let mut conn = self.conn.clone();
        let (recent, lowest): (Vec<String>, Vec<(String, i64)>) = redis::pipe()
            .cmd("ZRANGEBYSCORE")
            .arg(recent_key(room))
            .arg(format!("({after_seq}"))
            .arg("+inf")
            .arg("LIMIT")
            .arg(0)
            .arg(i64::from(limit) + 1)
            .cmd("ZRANGE")
            .arg(recent_key(room))
            .arg(0)
            .arg(0)
            .arg("WITHSCORES")
            .query_async(&mut conn)
            .await
            .map_err(|e| unavailable(&e))?;
        let mut by_seq: BTreeMap<i64, ChatMessage> = recent
            .iter()
            .filter_map(|f| parse_message_frame(f))
            .map(|m| (m.seq, m))
            .collect();
        let covered = lowest.first().is_some_and(|(_, low)| *low <= after_seq + 1);
        if !covered {
            // Older messages are in the database; the newest may still be on their way there,
            // so merge both.
            for m in self
                .store
                .messages_after(room, after_seq, limit + 1)
                .await?
            {
                by_seq.entry(m.seq).or_insert(m);
            }
        }
        let messages = by_seq.into_values().take(limit as usize + 1).collect();
        Ok(Recovery::from_page(messages, limit))
    }

    async fn last_seq(&self, room: RoomId) -> Result<i64, BrokerError> {
        let mut conn = self.conn.clone();
        let seq: Option<i64> = redis::cmd("GET")
            .arg(seq_key(room))
            .query_async(&mut conn)
            .await
            .map_err(|e| unavailable(&e))?;
        match seq {
            Some(seq) => Ok(seq),
            None => self.init_seq(room).await,
        }
    }

    async fn set_presence(
        &self,
        room: RoomId,
        user: &UserPublic,
        online: bool,
    ) -> Result<(), BrokerError> {
        let frame = ServerFrame::Presence {
            room,
            user: user.clone(),
            online,
        };
        let mut conn = self.conn.clone();
        let _changed: i64 = PRESENCE
            .key(presence_key(room))
            .key(instance_presence_key(&self.instance))
            .key(room_channel(room))
            .arg(user.id.to_string())
            .arg(&self.instance)
            .arg(&user.username)
            .arg(if online { "1" } else { "0" })
            .arg(format!("e {}\n{}", user.id, frame.to_json()))
            .arg(room.to_string())
            .invoke_async(&mut conn)
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(())
    }

    async fn await_subscribed(&self, room: RoomId) -> Result<(), BrokerError> {
        let channel = room_channel(room);
        let mut changes = self.subs.changed.subscribe();
        let wait = async {
            loop {
                if self.subs.channels().contains(&channel) {
                    return;
                }
                if changes.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(3), wait)
            .await
            .map_err(|_| BrokerError::Unavailable("message broker unavailable: retry shortly"))
    }

    async fn online(&self, room: RoomId) -> Result<Vec<UserPublic>, BrokerError> {
        let mut conn = self.conn.clone();
        let flat: Vec<String> = ONLINE
            .key(presence_key(room))
            .invoke_async(&mut conn)
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(flat
            .chunks(2)
            .filter_map(|pair| match pair {
                [id, name] => Some(UserPublic {
                    id: UserId(id.parse().ok()?),
                    username: name.clone(),
                }),
                _ => None,
            })
            .collect())
    }

    async fn shutdown(&self) {
        self.stop.cancel();
        for task in self.tasks.lock().await.drain(..) {
            if let Err(e) = task.await {
                tracing::error!(error = ?e, "broker task failed");
            }
        }
        let mut conn = self.conn.clone();
        let result: redis::RedisResult<()> = redis::pipe()
            .cmd("DEL")
            .arg(alive_key(&self.instance))
            .ignore()
            .cmd("SREM")
            .arg("confab:instances")
            .arg(&self.instance)
            .ignore()
            .query_async(&mut conn)
            .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not deregister the instance");
        }
    }
}

impl Drop for RedisBroker {
    /// Dropped without `shutdown` (a crash, in effect): the tasks stop, the instance stops
    /// heartbeating, and the other instances reap its presence.
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The one pub/sub connection of this instance: follows the hub's live rooms and users,
/// hands received events to the hub, and reconnects by itself.
async fn fanout_task(
    client: redis::Client,
    hub: Arc<RoomHub>,
    subs: Arc<Subscriptions>,
    stop: CancellationToken,
) {
    let mut backoff = Duration::from_millis(100);
    let mut connected_before = false;
    while !stop.is_cancelled() {
        let pubsub = tokio::select! {
            _ = stop.cancelled() => return,
            p = client.get_async_pubsub() => p,
        };
        let (mut sink, mut stream) = match pubsub {
            Ok(p) => p.split(),
            Err(e) => {
                tracing::warn!(error = %e, "redis pub/sub connection failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        subs.channels().clear();
        if reconcile(&hub, &subs, &mut sink).await.is_err() {
            continue;
        }
        if connected_before {
            // Events published while we were away were missed: clients recover by seq.
            tracing::info!("redis pub/sub reconnected; asking clients to resync");
            hub.resync_all();
        }
        connected_before = true;
        let mut sweep = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = hub.changed() => {
                    if reconcile(&hub, &subs, &mut sink).await.is_err() { break; }
                }
                _ = sweep.tick() => {
                    if reconcile(&hub, &subs, &mut sink).await.is_err() { break; }
                }
                msg = stream.next() => {
                    let Some(msg) = msg else { break };
                    dispatch(&hub, msg.get_channel_name(), msg.get_payload_bytes());
                }
            }
        }
        tracing::warn!("redis pub/sub connection lost; reconnecting");
        subs.channels().clear();
        subs.changed.send_modify(|n| *n += 1);
    }
}

/// Subscribes what the hub has live and unsubscribes what it no longer has.
async fn reconcile(
    hub: &RoomHub,
    subs: &Subscriptions,
    sink: &mut redis::aio::PubSubSink,
) -> redis::RedisResult<()> {
    let desired: HashSet<String> = hub
        .live_rooms()
        .into_iter()
        .map(room_channel)
        .chain(hub.live_users().into_iter().map(user_channel))
        .collect();
    let (add, remove): (Vec<String>, Vec<String>) = {
        let have = subs.channels();
        (
            desired.difference(&have).cloned().collect(),
            have.difference(&desired).cloned().collect(),
        )
    };
    if !add.is_empty() {
        sink.subscribe(&add).await?;
    }
    if !remove.is_empty() {
        sink.unsubscribe(&remove).await?;
    }
    if !add.is_empty() || !remove.is_empty() {
        {
            let mut have = subs.channels();
            have.extend(add);
            for r in &remove {
                have.remove(r);
            }
        }
        subs.changed.send_modify(|n| *n += 1);
    }
    Ok(())
}

fn dispatch(hub: &RoomHub, channel: &str, payload: &[u8]) {
    if let Some(room) = channel.strip_prefix("confab:r:") {
        let (Ok(room), Some(delivery)) = (room.parse::<Uuid>(), parse_room_payload(payload)) else {
            tracing::warn!(%channel, "unreadable room event");
            return;
        };
        hub.deliver(RoomId(room), delivery);
    } else if let Some(user) = channel.strip_prefix("confab:u:") {
        match (
            user.parse::<Uuid>(),
            serde_json::from_slice::<UserEvent>(payload),
        ) {
            (Ok(user), Ok(event)) => hub.deliver_user(UserId(user), event),
            _ => tracing::warn!(%channel, "unreadable user event"),
        }
    }
}

/// Keeps this instance's liveness key fresh and reaps instances that stopped heartbeating.
/// Marks the instance alive for `ALIVE_TTL_SECS` and registers it among the instances (so that
/// the others reap its presence if it dies).
async fn beat(conn: &mut ConnectionManager, instance: &str) -> redis::RedisResult<()> {
    redis::pipe()
        .cmd("SET")
        .arg(alive_key(instance))
        .arg(1)
        .arg("EX")
        .arg(ALIVE_TTL_SECS)
        .ignore()
        .cmd("SADD")
        .arg("confab:instances")
        .arg(instance)
        .ignore()
        .query_async(conn)
        .await
}

async fn heartbeat_task(mut conn: ConnectionManager, instance: String, stop: CancellationToken) {
    let mut every = tokio::time::interval(HEARTBEAT);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = every.tick() => {}
        }
        if let Err(e) = beat(&mut conn, &instance).await {
            tracing::warn!(error = %e, "heartbeat failed");
            continue;
        }
        let backlog: redis::RedisResult<i64> = redis::cmd("XLEN")
            .arg(PERSIST_STREAM)
            .query_async(&mut conn)
            .await;
        if let Ok(backlog) = backlog {
            metrics::gauge!("confab_stream_backlog").set(backlog as f64);
        }
        if let Err(e) = reap_dead(&mut conn, &instance).await {
            tracing::warn!(error = %e, "reaping dead instances failed");
        }
    }
}

async fn reap_dead(conn: &mut ConnectionManager, me: &str) -> redis::RedisResult<()> {
    let instances: Vec<String> = redis::cmd("SMEMBERS")
        .arg("confab:instances")
        .query_async(conn)
        .await?;
    for other in instances.iter().filter(|i| *i != me) {
        let alive: bool = redis::cmd("EXISTS")
            .arg(alive_key(other))
            .query_async(conn)
            .await?;
        if alive {
            continue;
        }
        // One reaper per dead instance.
        let claimed: Option<String> = redis::cmd("SET")
            .arg(format!("confab:reap:{other}"))
            .arg(me)
            .arg("NX")
            .arg("EX")
            .arg(30)
            .query_async(conn)
            .await?;
        if claimed.is_some() {
            tracing::info!(instance = %other, "reaping the presence of a dead instance");
            let _done: i64 = REAP
                .key(instance_presence_key(other))
                .arg(other)
                .invoke_async(conn)
                .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_around_the_seq_and_payloads_parse() {
        let author = UserPublic {
            id: UserId(Uuid::from_u128(9)),
            username: "ann".into(),
        };
        let frame = ServerFrame::Message(ChatMessage {
            id: MessageId(Uuid::from_u128(1)),
            room: RoomId(Uuid::from_u128(2)),
            seq: 0,
            author: author.clone(),
            body: "\"seq\":0, in a body".into(),
            client_msg_id: confab_shared::ids::ClientMsgId::parse("c").unwrap(),
            attachment: None,
            created_at: 5,
            edited_at: None,
        })
        .to_json();
        let (a, b) = split_at_seq(&frame).unwrap();
        let spliced = format!("{a}42{b}");
        let m = parse_message_frame(&spliced).unwrap();
        assert_eq!((m.seq, m.body.as_str()), (42, "\"seq\":0, in a body"));
        let payload = format!("m 42 {} ann 5\n{spliced}", author.id);
        let d = parse_room_payload(payload.as_bytes()).unwrap();
        assert!(matches!(&d.kind, DeliveryKind::Message { seq: 42, author: a } if *a == author));
        assert_eq!(d.frame.as_str(), spliced);
        let d = parse_room_payload(b"e -\n{\"type\":\"pong\"}").unwrap();
        assert!(matches!(d.kind, DeliveryKind::Event { from: None }));
    }
}
