//! The pub/sub side of an instance on a Redis Cluster: sharded channels (`SSUBSCRIBE`, Redis 7).
//!
//! A room's channel carries its shard's hash tag, so it lives in one slot and `SPUBLISH`
//! reaches only the master (and replicas) owning that slot, and from there only the instances
//! subscribed to that room. This task holds one cluster pub/sub connection (the `redis`
//! crate's `cluster_async` over RESP3: one connection per node, each subscription on the node
//! that owns its slot) and follows the hub: it subscribes a room's channel while some local
//! connection listens to the room, a user's while the user has a connection here, one
//! `SSUBSCRIBE` per shard (every channel of one command must share a slot).
//!
//! Received pushes are handled where they arrive, on the connection's reader (no queue in
//! between): messages go to the hub unchanged; confirmations are recorded for
//! `await_subscribed`. A subscription can be lost two ways: the node's connection drops (a
//! crash, a failover: the library reports a disconnection, without saying which node) or the
//! node stops owning the slot (a slot move or a failover seen from the old master: the server
//! unsubscribes the channel itself). Either way the channels are subscribed again, on whichever
//! node owns them now, and once a lost room channel is confirmed again its local listeners are
//! told to resync: whatever was published meanwhile is recovered by seq.

use super::conn::{cluster_builder, ClusterLink, RedisConn};
use super::keys::{Channel, KeySpace};
use super::subscriber::{desired_channels, dispatch, Subscriptions};
use crate::broker::Hub;
use crate::fanout::{Delivery, DeliveryKind, Frame};
use redis::aio::{AsyncPushSender, SendError};
use redis::{PushInfo, PushKind, Value};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Room channels whose subscription was lost: their listeners resync once it is back. A tiny
/// critical section (set insert/remove), never held across an await.
#[derive(Default)]
struct Lost(Mutex<HashSet<String>>);

impl Lost {
    fn set(&self) -> MutexGuard<'_, HashSet<String>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Handles the pushes of every node connection (see the module docs).
struct Pushes {
    keys: KeySpace,
    hub: Arc<Hub>,
    subs: Arc<Subscriptions>,
    lost: Arc<Lost>,
    wake: Arc<Notify>,
}

fn text(v: Option<&Value>) -> Option<&[u8]> {
    match v? {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

impl AsyncPushSender for Pushes {
    fn send(&self, info: PushInfo) -> Result<(), SendError> {
        let channel = text(info.data.first()).and_then(|c| std::str::from_utf8(c).ok());
        match (info.kind, channel) {
            (PushKind::SMessage | PushKind::Message, Some(channel)) => {
                if let Some(payload) = text(info.data.get(1)) {
                    dispatch(self.keys, &self.hub, channel, payload);
                }
            }
            (PushKind::SSubscribe, Some(channel)) => {
                self.subs.confirm([channel]);
                resync_if_lost(self.keys, &self.hub, &self.lost, channel);
            }
            (PushKind::SUnsubscribe, Some(channel)) => {
                self.subs.drop_channels([channel]);
                // Not ours (we only drop rooms no longer live here): the slot moved away.
                if let Some(Channel::Room(room)) = self.keys.parse_channel(channel) {
                    if self.hub.is_local(room) {
                        tracing::info!(%channel, "sharded channel unsubscribed by the server");
                        self.lost.set().insert(channel.to_owned());
                        self.wake.notify_one();
                    }
                }
            }
            (PushKind::Disconnection, _) => {
                let dropped = self.subs.drop_all();
                tracing::warn!(
                    channels = dropped.len(),
                    "a redis cluster pub/sub connection dropped; subscribing again"
                );
                self.lost.set().extend(dropped);
                self.wake.notify_one();
            }
            _ => {}
        }
        Ok(())
    }
}

/// Tells a room's local listeners to resync if its channel had been lost.
fn resync_if_lost(keys: KeySpace, hub: &Hub, lost: &Lost, channel: &str) {
    if !lost.set().remove(channel) {
        return;
    }
    if let Some(Channel::Room(room)) = keys.parse_channel(channel) {
        let told = hub.deliver(
            room,
            Arc::new(Delivery {
                kind: DeliveryKind::Resync,
                frame: Frame::default(),
            }),
        );
        tracing::info!(%room, listeners = told, "room channel back; listeners resync");
    }
}

/// The shard of a channel built by [`KeySpace`], to group one `SSUBSCRIBE` per slot.
fn shard_of(keys: KeySpace, channel: &str) -> u32 {
    match keys.parse_channel(channel) {
        Some(Channel::Room(r)) => keys.room_shard(r).index(),
        Some(Channel::User(u)) => keys.user_shard(u).index(),
        None => u32::MAX,
    }
}

fn by_shard(keys: KeySpace, channels: Vec<String>) -> BTreeMap<u32, Vec<String>> {
    let mut groups: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for c in channels {
        groups.entry(shard_of(keys, &c)).or_default().push(c);
    }
    groups
}

/// Runs the cluster pub/sub connection until `stop`.
pub async fn run(
    nodes: Vec<String>,
    keys: KeySpace,
    hub: Arc<Hub>,
    subs: Arc<Subscriptions>,
    stop: CancellationToken,
) {
    let lost = Arc::new(Lost::default());
    let wake = Arc::new(Notify::new());
    let pushes = Arc::new(Pushes {
        keys,
        hub: hub.clone(),
        subs: subs.clone(),
        lost: lost.clone(),
        wake: wake.clone(),
    });
    let mut backoff = Duration::from_millis(100);
    let link = loop {
        let builder = {
            let (nodes, pushes) = (nodes.clone(), pushes.clone());
            move || {
                cluster_builder(&nodes)
                    .use_protocol(redis::ProtocolVersion::RESP3)
                    .push_sender(pushes.clone())
            }
        };
        let connected = tokio::select! {
            _ = stop.cancelled() => return,
            c = ClusterLink::connect(builder) => c,
        };
        match connected {
            Ok(link) => break link,
            Err(e) => {
                tracing::warn!(error = %e, "redis cluster pub/sub connection failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    };
    let mut generation = link.generation();
    let conn = RedisConn::Cluster(link.clone());
    let mut sweep = tokio::time::interval(Duration::from_secs(1));
    loop {
        if link.generation() != generation {
            // A new connection holds none of the old one's subscriptions.
            generation = link.generation();
            let dropped = subs.drop_all();
            lost.set().extend(dropped);
        }
        reconcile(keys, &hub, &subs, &lost, &conn).await;
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = hub.changed() => {}
            _ = wake.notified() => {}
            _ = sweep.tick() => {}
        }
    }
}

/// Subscribes what the hub has live and unsubscribes what it no longer has, one command per
/// shard, all shards at once. What fails is retried on the next sweep.
async fn reconcile(keys: KeySpace, hub: &Hub, subs: &Subscriptions, lost: &Lost, conn: &RedisConn) {
    let desired = desired_channels(keys, hub);
    let held = subs.held();
    let add: Vec<String> = desired.difference(&held).cloned().collect();
    let remove: Vec<String> = held.difference(&desired).cloned().collect();
    // A lost room that nobody here listens to any more needs no resync.
    lost.set().retain(|c| desired.contains(c));
    let subscribing = by_shard(keys, add).into_values().map(|group| {
        let mut conn = conn.clone();
        async move {
            let subscribed: redis::RedisResult<()> = redis::cmd("SSUBSCRIBE")
                .arg(&group)
                .exec_async(&mut conn)
                .await;
            match subscribed {
                Ok(()) => {
                    subs.confirm(group.iter().map(String::as_str));
                    for c in &group {
                        resync_if_lost(keys, hub, lost, c);
                    }
                }
                Err(e) => tracing::warn!(error = %e, channels = group.len(), "SSUBSCRIBE failed"),
            }
        }
    });
    let unsubscribing = by_shard(keys, remove).into_values().map(|group| {
        let mut conn = conn.clone();
        async move {
            // Forgotten first, so the server's confirmation is not taken for a lost channel.
            subs.drop_channels(group.iter().map(String::as_str));
            let unsubscribed: redis::RedisResult<()> = redis::cmd("SUNSUBSCRIBE")
                .arg(&group)
                .exec_async(&mut conn)
                .await;
            if let Err(e) = unsubscribed {
                tracing::warn!(error = %e, channels = group.len(), "SUNSUBSCRIBE failed");
            }
        }
    });
    futures::future::join(
        futures::future::join_all(subscribing),
        futures::future::join_all(unsubscribing),
    )
    .await;
}
