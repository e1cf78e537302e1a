//! The Redis broker, for many origin instances.
//!
//! - **Append** is one Lua script call, one round trip ([`scripts::APPEND`]): the request's
//!   answer key (idempotency across instances), the room's next seq (`INCR`), the entry (the
//!   instance serialized it once; the script splices the seq in), the room's capped recent
//!   history (a sorted set scored by seq, kept true to edits and deletions), the persistence
//!   stream read by `confab worker`, and the `PUBLISH` to the room's channel. The ack follows
//!   the script: the entry is then as durable as Redis is configured to be (see the README).
//! - **Fan-out** ([`subscriber`]): each instance holds ONE pub/sub connection, subscribed to a
//!   room's channel while the hub has the room live, and to a user's while the user has a
//!   connection here. Received frames go to the hub as they are.
//! - **Presence** ([`presence`]): per-room hashes written by a script on local transitions,
//!   instance heartbeats, and reaping of dead instances.
//! - [`keys`] names every key and channel; [`wire`] is the format of what is stored and
//!   published.
//! - **Outages**: commands go through a reconnecting connection, so changes during an outage
//!   fail with a retryable `unavailable` (never a false ack). The pub/sub task reconnects by
//!   itself, resubscribes, and tells every subscribed connection to resync.
//!
//! **Redis Cluster** ([`conn::RedisTarget::Cluster`]): the same broker over the `redis`
//! crate's cluster connection. Every key of a room carries its shard's hash tag ([`keys`]), so
//! the append script still runs in one round trip on the master owning the shard; it publishes
//! with `SPUBLISH` on the room's sharded channel, and [`sharded`] subscribes only the rooms
//! (and users) with local connections, on the nodes that own them. After a failover the
//! promoted replica may lack the last seqs the dead master handed out; the script notices
//! (the counter's last writer is another node) and jumps the counter past them.
//!
//! **Acks that wait for replicas** (`CONFAB_REDIS_WAIT_REPLICAS=N`): once the shard's master
//! is known to have N replicas in sync ([`scripts::REPLICAS`]), the script puts the entry's
//! payload in the room's outbox instead of publishing it, and is followed, in the same
//! pipeline, by `WAIT N`. Only when N replicas have the entry is the outbox published (in seq
//! order, [`scripts::PUBLISH`]) and the sender acked; otherwise the sender gets `unavailable`
//! and its resend (same reference: the first answer) waits again. So no one is told of, or
//! shown, an entry that a master failover could still lose.

pub mod conn;
pub mod keys;
pub mod presence;
pub mod scripts;
pub mod sharded;
pub mod subscriber;
pub mod wire;

use super::{Accepted, Broker, BrokerError, Change, ChangeKind, Hub, Recovery, UserEvent};
use crate::store::DynStore;
use crate::time::now_ms;
use async_trait::async_trait;
use confab_shared::conversation::ReplyTo;
use confab_shared::events::RoomEvent;
use confab_shared::ids::{ClientRef, MessageId, RoomId, UserId};
use confab_shared::protocol::{ChatMessage, ServerFrame, UserPublic};
use conn::{RedisConn, RedisTarget};
use keys::KeySpace;
use scripts::{errors, APPEND, FIND_MESSAGE, INIT_SEQ, PUBLISH, REPLICAS};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use subscriber::Subscriptions;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Recent entries kept per room in Redis for recovery (at least: the script trims at every
/// 16th entry), and every entry above the room's [`KeySpace::stored`] mark besides.
const RECENT_PER_ROOM: i64 = 256;
/// When Redis has lost a room's seq counter but the database has entries, restart the count
/// this far ahead, so seqs handed out but lost with Redis are never reused.
const SEQ_REINIT_GAP: i64 = 1000;
/// Connections appends that wait for replicas are spread over (see [`conn::WaitLanes`]).
const WAIT_LANES: usize = 4;
/// How long `subscribe` waits for the room's channel subscription.
const SUBSCRIBE_WAIT: Duration = Duration::from_secs(3);

pub use conn::manager_config;

/// The publish command of the layout: sharded channels on a cluster.
pub fn publish_command(keys: KeySpace) -> &'static str {
    if keys.is_cluster() {
        "SPUBLISH"
    } else {
        "PUBLISH"
    }
}

fn unavailable(e: &redis::RedisError) -> BrokerError {
    tracing::warn!(error = %e, "redis command failed");
    BrokerError::Unavailable("message broker unavailable: retry shortly")
}

/// An answer's message id as the script stores it (`-` for entries about no message).
fn answer_id(id: Option<MessageId>) -> String {
    id.map_or_else(|| "-".to_owned(), |id| id.to_string())
}

/// Reads a script's `MESSAGE_ID:SEQ` answer.
fn parse_answer(answer: &str) -> Option<Accepted> {
    let (id, seq) = answer.split_once(':')?;
    let id = match id {
        "-" => None,
        id => Some(MessageId(id.parse().ok()?)),
    };
    Some(Accepted {
        id,
        seq: seq.parse().ok()?,
    })
}

/// Settings of the Redis broker.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// Most entries waiting in a persistence stream (each shard's, on a cluster) before
    /// changes are refused.
    pub stream_max: i64,
    /// Shards of a cluster's key space (a power of two); ignored on one Redis.
    pub shards: u32,
    /// Replicas an entry must reach before it is published and acknowledged (0: none).
    pub wait_replicas: u32,
    /// How long to wait for them before answering `unavailable`.
    pub wait_timeout_ms: u64,
    /// How long a change's answer is remembered, so a resend gets it again (seconds; the
    /// store's unique rules keep an older resend of a post out of the database).
    pub resend_window_secs: u32,
}

impl RedisSettings {
    /// The defaults of `confab serve`, with this stream limit.
    pub fn with_stream_max(stream_max: i64) -> Self {
        Self {
            stream_max,
            shards: 64,
            wait_replicas: 0,
            wait_timeout_ms: 500,
            resend_window_secs: 86_400,
        }
    }
}

/// The Redis broker.
pub struct RedisBroker {
    store: DynStore,
    conn: RedisConn,
    /// With acks waiting for replicas: the connections the appends and their `WAIT`s go on, so
    /// that a `WAIT` held up by a lagging replica never delays other commands (a connection's
    /// commands run in order, and `WAIT` blocks the connection it is sent on).
    wait_lanes: Option<conn::WaitLanes>,
    keys: KeySpace,
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
        target: &RedisTarget,
        hub: Arc<Hub>,
        store: DynStore,
        settings: RedisSettings,
    ) -> anyhow::Result<Self> {
        let keys = target.key_space(settings.shards);
        let mut conn = RedisConn::connect(target).await?;
        let wait_lanes = if settings.wait_replicas > 0 {
            Some(
                conn::WaitLanes::connect(
                    target,
                    WAIT_LANES,
                    Duration::from_millis(settings.wait_timeout_ms),
                )
                .await?,
            )
        } else {
            None
        };
        let instance = Uuid::new_v4().simple().to_string();
        // Registered before anything can write presence for it: an instance that dies at any
        // moment after this is reaped by the others.
        presence::beat(&mut conn, keys, &instance).await?;
        let subs = Arc::new(Subscriptions::default());
        let stop = CancellationToken::new();
        let fanout = match target {
            RedisTarget::Single(url) => tokio::spawn(subscriber::run(
                redis::Client::open(url.as_str())?,
                keys,
                hub,
                subs.clone(),
                stop.clone(),
            )),
            RedisTarget::Cluster(nodes) => tokio::spawn(sharded::run(
                nodes.clone(),
                keys,
                hub,
                subs.clone(),
                stop.clone(),
            )),
        };
        let heartbeat = tokio::spawn(presence::heartbeat(
            conn.clone(),
            keys,
            instance.clone(),
            stop.clone(),
        ));
        tracing::info!(%instance, cluster = keys.is_cluster(), shards = keys.shard_count(), wait_replicas = settings.wait_replicas, "connected to Redis");
        Ok(Self {
            store,
            conn,
            wait_lanes,
            keys,
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
        INIT_SEQ
            .call()
            .key(self.keys.seq(room))
            .key(self.keys.seq_writer(room))
            .arg(start)
            .arg(if self.keys.is_cluster() { "1" } else { "" })
            .invoke(&mut conn)
            .await
            .map_err(|e| unavailable(&e))
    }

    /// Whether acks wait for replicas (entries are then published from the outbox).
    fn waits(&self) -> bool {
        self.settings.wait_replicas > 0
    }

    /// Whether the master of the room's shard has enough replicas in sync to wait for.
    async fn replicas_in_sync(&self, room: RoomId) -> Result<bool, BrokerError> {
        let mut conn = self.conn.clone();
        let n: u32 = REPLICAS
            .call()
            .key(self.keys.seq(room))
            .invoke(&mut conn)
            .await
            .map_err(|e| unavailable(&e))?;
        if n < self.settings.wait_replicas {
            tracing::warn!(%room, replicas = n, "the shard's master has too few replicas in sync");
        }
        Ok(n >= self.settings.wait_replicas)
    }

    /// Makes sure an earlier answer (its entry `accepted`, its answer key `key`) is on enough
    /// replicas and published before it is given again: a write on a wait connection (the
    /// answer key's TTL renewed), `WAIT` behind it, then the outbox up to its seq.
    async fn settle(&self, room: RoomId, key: &str, accepted: Accepted) -> Result<(), BrokerError> {
        let Some(lanes) = &self.wait_lanes else {
            return Ok(());
        };
        if !self.replicas_in_sync(room).await? {
            return Err(BrokerError::Unavailable(
                "message broker replicas unavailable: retry shortly",
            ));
        }
        let (_renewed, replicas): (i64, u32) = redis::pipe()
            .cmd("EXPIRE")
            .arg(key)
            .arg(self.settings.resend_window_secs)
            .cmd("WAIT")
            .arg(self.settings.wait_replicas)
            .arg(self.settings.wait_timeout_ms)
            .query_async(&mut lanes.pick())
            .await
            .map_err(|e| unavailable(&e))?;
        if replicas < self.settings.wait_replicas {
            return Err(BrokerError::Unavailable(
                "message broker replicas lagging: retry shortly",
            ));
        }
        self.publish_outbox(room, accepted.seq).await
    }

    /// Publishes the room's outbox up to `seq`, now that it is on enough replicas.
    async fn publish_outbox(&self, room: RoomId, seq: i64) -> Result<(), BrokerError> {
        let mut conn = self.conn.clone();
        let _published: i64 = PUBLISH
            .call()
            .key(self.keys.outbox(room))
            .arg(seq)
            .arg(self.keys.room_channel(room))
            .arg(publish_command(self.keys))
            .invoke(&mut conn)
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(())
    }

    /// One call of the append script for `change`; `Ok(None)` when the room's seq counter is
    /// missing.
    async fn run_append(
        &self,
        change: &Change,
        event: &RoomEvent,
        accepted_at: i64,
    ) -> Result<Option<String>, BrokerError> {
        let json = event.to_json();
        let (before, after) = wire::split_at_seq(&json)
            .ok_or(BrokerError::Unavailable("could not encode the change"))?;
        let (head, tail) = wire::entry_header(event, accepted_at);
        let (room, actor) = (change.room, change.actor.id);
        let keys = self.keys;
        let answer_key = match &change.kind {
            ChangeKind::Post { client_msg_id, .. } => keys.posted(room, actor, client_msg_id),
            _ => keys.changed(room, actor, &change.reference),
        };
        let target = change.target_after(accepted_at);
        let (target_seq, target_json) = match &target {
            Some(m) => (m.seq.to_string(), RoomEvent::Message(m.clone()).to_json()),
            None => (String::new(), String::new()),
        };
        let redact = match &change.kind {
            ChangeKind::Delete { message } => message.id.to_string(),
            _ => String::new(),
        };
        let publish = if self.waits() {
            "DEFER"
        } else {
            publish_command(keys)
        };
        let call = APPEND
            .call()
            .key(keys.seq(room))
            .key(answer_key)
            .key(keys.recent(room))
            .key(keys.persist_stream(room))
            .key(keys.outbox(room))
            .key(keys.seq_writer(room))
            .key(keys.stored(room))
            .arg(answer_id(event.message_id()))
            .arg(before)
            .arg(after)
            .arg(RECENT_PER_ROOM)
            .arg(self.settings.stream_max)
            .arg(self.settings.resend_window_secs)
            .arg(keys.room_channel(room))
            .arg(head)
            .arg(tail)
            .arg(actor.to_string())
            .arg(change.reference.as_str())
            .arg(accepted_at)
            .arg(target_seq)
            .arg(target_json)
            .arg(redact)
            .arg(publish)
            .arg(if keys.is_cluster() { "1" } else { "" })
            .arg(SEQ_REINIT_GAP);
        let answer: redis::RedisResult<String> = if let Some(lanes) = &self.wait_lanes {
            if !self.replicas_in_sync(room).await? {
                // Refused before anything is written: waiting could only time out.
                metrics::counter!("confab_replica_wait_timeouts_total").increment(1);
                return Err(BrokerError::Unavailable(
                    "message broker replicas unavailable: retry shortly",
                ));
            }
            let mut conn = lanes.pick();
            match call
                .invoke_and_wait::<String>(
                    &mut conn,
                    self.settings.wait_replicas,
                    self.settings.wait_timeout_ms,
                )
                .await
            {
                Ok((answer, replicas)) if replicas >= self.settings.wait_replicas => Ok(answer),
                Ok((_, replicas)) => {
                    // Accepted by the master but not yet on enough replicas: not published,
                    // not acked. The resend gets this answer and waits again.
                    tracing::warn!(%room, replicas, wanted = self.settings.wait_replicas, "entry not on enough replicas in time");
                    metrics::counter!("confab_replica_wait_timeouts_total").increment(1);
                    return Err(BrokerError::Unavailable(
                        "message broker replicas lagging: retry shortly",
                    ));
                }
                Err(e) => Err(e),
            }
        } else {
            call.invoke(&mut self.conn.clone()).await
        };
        match answer {
            Ok(answer) => Ok(Some(answer)),
            Err(e) => match e.code() {
                Some(errors::NO_SEQ) => Ok(None),
                Some(errors::FULL) => Err(BrokerError::Unavailable("server busy: retry shortly")),
                _ => Err(unavailable(&e)),
            },
        }
    }
}

impl RedisBroker {
    /// Replies quote their parent as it is now: the recent history holds each reply as it was
    /// posted, so a parent edited or deleted since is looked up again (from the same replay
    /// when it is in it).
    async fn refresh_replies(
        &self,
        room: RoomId,
        events: &mut [RoomEvent],
    ) -> Result<(), BrokerError> {
        let mut parents: std::collections::HashMap<MessageId, Option<ChatMessage>> = events
            .iter()
            .filter_map(|e| match e {
                RoomEvent::Message(m) => Some((m.id, Some(m.clone()))),
                _ => None,
            })
            .collect();
        for event in events.iter_mut() {
            let RoomEvent::Message(m) = event else {
                continue;
            };
            let Some(reply) = &mut m.reply_to else {
                continue;
            };
            let parent = match parents.entry(reply.id) {
                std::collections::hash_map::Entry::Occupied(known) => known.into_mut(),
                std::collections::hash_map::Entry::Vacant(unknown) => {
                    unknown.insert(self.message(room, reply.id).await?)
                }
            };
            if let Some(parent) = parent {
                *reply = ReplyTo::of(parent);
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Broker for RedisBroker {
    async fn append(&self, change: Change) -> Result<Accepted, BrokerError> {
        let accepted_at = now_ms();
        let event = change.entry(accepted_at).event;
        let mut answer = self.run_append(&change, &event, accepted_at).await?;
        if answer.is_none() {
            self.init_seq(change.room).await?;
            answer = self.run_append(&change, &event, accepted_at).await?;
        }
        let answer = answer.ok_or(BrokerError::Unavailable(
            "message broker unavailable: retry shortly",
        ))?;
        let accepted =
            parse_answer(&answer).ok_or(BrokerError::Unavailable("unexpected broker answer"))?;
        if self.waits() {
            self.publish_outbox(change.room, accepted.seq).await?;
        }
        Ok(accepted)
    }

    async fn answered(
        &self,
        room: RoomId,
        actor: UserId,
        reference: &ClientRef,
    ) -> Result<Option<Accepted>, BrokerError> {
        let mut conn = self.conn.clone();
        let answer: Option<String> = redis::cmd("GET")
            .arg(self.keys.changed(room, actor, reference))
            .query_async(&mut conn)
            .await
            .map_err(|e| unavailable(&e))?;
        if let Some(accepted) = answer.as_deref().and_then(parse_answer) {
            if self.waits() {
                // The first attempt may have timed out waiting for replicas: wait as `append`
                // would before answering the resend with it.
                self.settle(room, &self.keys.changed(room, actor, reference), accepted)
                    .await?;
            }
            return Ok(Some(accepted));
        }
        super::stored_answer(&self.store, room, actor, reference).await
    }

    async fn message(
        &self,
        room: RoomId,
        id: MessageId,
    ) -> Result<Option<ChatMessage>, BrokerError> {
        // The recent history is ahead of the database (workers lag behind the script).
        let mut conn = self.conn.clone();
        let recent: Option<String> = FIND_MESSAGE
            .call()
            .key(self.keys.recent(room))
            .arg(format!(r#"{{"type":"message","id":"{id}","#))
            .invoke(&mut conn)
            .await
            .map_err(|e| unavailable(&e))?;
        if let Some(RoomEvent::Message(m)) = recent.as_deref().and_then(wire::parse_entry) {
            return Ok(Some(m));
        }
        super::stored_message(&self.store, room, id).await
    }

    async fn publish_event(&self, room: RoomId, frame: ServerFrame) -> Result<(), BrokerError> {
        let mut conn = self.conn.clone();
        let _receivers: i64 = redis::cmd(publish_command(self.keys))
            .arg(self.keys.room_channel(room))
            .arg(wire::event_payload(&frame))
            .query_async(&mut conn)
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(())
    }

    async fn publish_user_event(&self, user: UserId, event: UserEvent) -> Result<(), BrokerError> {
        let payload = wire::user_payload(&event)
            .ok_or(BrokerError::Unavailable("could not encode the event"))?;
        let mut conn = self.conn.clone();
        let _receivers: i64 = redis::cmd(publish_command(self.keys))
            .arg(self.keys.user_channel(user))
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
            .arg(self.keys.recent(room))
            .arg(format!("({after_seq}"))
            .arg("+inf")
            .arg("LIMIT")
            .arg(0)
            .arg(i64::from(limit) + 1)
            .cmd("ZRANGE")
            .arg(self.keys.recent(room))
            .arg(0)
            .arg(0)
            .arg("WITHSCORES")
            .query_async(&mut conn)
            .await
            .map_err(|e| unavailable(&e))?;
        let mut by_seq: BTreeMap<i64, RoomEvent> = recent
            .iter()
            .filter_map(|e| wire::parse_entry(e))
            .map(|e| (e.seq(), e))
            .collect();
        let covered = lowest.first().is_some_and(|(_, low)| *low <= after_seq + 1);
        if !covered {
            // Older entries are in the database; the newest may still be on their way there,
            // and the recent history's are the fresher state, so merge both, Redis first.
            for e in self.store.events_after(room, after_seq, limit + 1).await? {
                by_seq.entry(e.seq()).or_insert(e);
            }
        }
        let mut events: Vec<RoomEvent> = by_seq.into_values().take(limit as usize + 1).collect();
        self.refresh_replies(room, &mut events).await?;
        Ok(Recovery::from_page(events, limit))
    }

    async fn last_seq(&self, room: RoomId) -> Result<i64, BrokerError> {
        let mut conn = self.conn.clone();
        let seq: Option<i64> = redis::cmd("GET")
            .arg(self.keys.seq(room))
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
        let mut conn = self.conn.clone();
        presence::set(&mut conn, self.keys, &self.instance, room, user, online)
            .await
            .map_err(|e| unavailable(&e))
    }

    async fn await_subscribed(&self, room: RoomId) -> Result<(), BrokerError> {
        if self
            .subs
            .wait_for(&self.keys.room_channel(room), SUBSCRIBE_WAIT)
            .await
        {
            Ok(())
        } else {
            Err(BrokerError::Unavailable(
                "message broker unavailable: retry shortly",
            ))
        }
    }

    async fn online(&self, room: RoomId) -> Result<Vec<UserPublic>, BrokerError> {
        let mut conn = self.conn.clone();
        presence::online(&mut conn, self.keys, room)
            .await
            .map_err(|e| unavailable(&e))
    }

    async fn shutdown(&self) {
        self.stop.cancel();
        for task in self.tasks.lock().await.drain(..) {
            if let Err(e) = task.await {
                tracing::error!(error = ?e, "broker task failed");
            }
        }
        let mut conn = self.conn.clone();
        if let Err(e) = presence::deregister(&mut conn, self.keys, &self.instance).await {
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
