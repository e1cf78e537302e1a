//! The one pub/sub connection of an instance on one Redis: it follows the hub's live rooms and
//! users (subscribing a room's channel while some local connection listens to the room, a
//! user's while the user has a connection here), hands what arrives to the hub unchanged
//! (serialized once by the publisher, for every recipient everywhere), and reconnects by
//! itself, telling every subscribed connection to resync since events may have been missed
//! meanwhile. On a cluster, [`super::sharded`] does the same with sharded channels.

use super::keys::{Channel, KeySpace};
use super::wire;
use crate::broker::Hub;
use futures::StreamExt;
use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// What the pub/sub task has subscribed, and a counter bumped on every change.
pub struct Subscriptions {
    channels: Mutex<HashSet<String>>,
    changed: watch::Sender<u64>,
}

impl Subscriptions {
    /// Records confirmed subscriptions; returns which of them were not confirmed before.
    pub(super) fn confirm<'a>(&self, channels: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        let fresh: Vec<String> = {
            let mut have = self.channels();
            channels
                .into_iter()
                .filter(|c| have.insert((*c).to_owned()))
                .map(str::to_owned)
                .collect()
        };
        if !fresh.is_empty() {
            self.changed.send_modify(|n| *n += 1);
        }
        fresh
    }

    /// Forgets subscriptions (ended, or lost with a connection); returns those that were held.
    pub(super) fn drop_channels<'a>(
        &self,
        channels: impl IntoIterator<Item = &'a str>,
    ) -> Vec<String> {
        let mut have = self.channels();
        channels
            .into_iter()
            .filter(|c| have.remove(*c))
            .map(str::to_owned)
            .collect()
    }

    /// Forgets every subscription; returns them.
    pub(super) fn drop_all(&self) -> Vec<String> {
        let dropped: Vec<String> = self.channels().drain().collect();
        self.changed.send_modify(|n| *n += 1);
        dropped
    }

    /// The channels subscribed now.
    pub(super) fn held(&self) -> HashSet<String> {
        self.channels().clone()
    }
}

impl Default for Subscriptions {
    fn default() -> Self {
        Self {
            channels: Mutex::new(HashSet::new()),
            changed: watch::channel(0).0,
        }
    }
}

impl Subscriptions {
    fn channels(&self) -> MutexGuard<'_, HashSet<String>> {
        self.channels.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits (at most `limit`) until `channel` is subscribed.
    pub async fn wait_for(&self, channel: &str, limit: Duration) -> bool {
        let mut changes = self.changed.subscribe();
        let wait = async {
            loop {
                if self.channels().contains(channel) {
                    return;
                }
                if changes.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::time::timeout(limit, wait).await.is_ok()
    }
}

/// The one pub/sub connection of this instance: follows the hub's live rooms and users,
/// hands received events to the hub, and reconnects by itself.
pub async fn run(
    client: redis::Client,
    keys: KeySpace,
    hub: Arc<Hub>,
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
        if reconcile(keys, &hub, &subs, &mut sink).await.is_err() {
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
                    if reconcile(keys, &hub, &subs, &mut sink).await.is_err() { break; }
                }
                _ = sweep.tick() => {
                    if reconcile(keys, &hub, &subs, &mut sink).await.is_err() { break; }
                }
                msg = stream.next() => {
                    let Some(msg) = msg else { break };
                    dispatch(keys, &hub, msg.get_channel_name(), msg.get_payload_bytes());
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
    keys: KeySpace,
    hub: &Hub,
    subs: &Subscriptions,
    sink: &mut redis::aio::PubSubSink,
) -> redis::RedisResult<()> {
    let desired = desired_channels(keys, hub);
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

/// The channels this instance should hear: its live rooms' and users'.
pub(super) fn desired_channels(keys: KeySpace, hub: &Hub) -> HashSet<String> {
    hub.live_rooms()
        .into_iter()
        .map(|r| keys.room_channel(r))
        .chain(hub.live_users().into_iter().map(|u| keys.user_channel(u)))
        .collect()
}

/// Hands a received payload to the hub.
pub(super) fn dispatch(keys: KeySpace, hub: &Hub, channel: &str, payload: &[u8]) {
    match keys.parse_channel(channel) {
        Some(Channel::Room(room)) => match wire::parse_room_payload(payload) {
            Some(delivery) => {
                hub.deliver(room, delivery);
            }
            None => tracing::warn!(%channel, "unreadable room event"),
        },
        Some(Channel::User(user)) => match wire::parse_user_payload(payload) {
            Some(event) => hub.deliver_user(user, event),
            None => tracing::warn!(%channel, "unreadable user event"),
        },
        None => tracing::warn!(%channel, "message on an unknown channel"),
    }
}
