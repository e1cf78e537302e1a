//! Presence across instances. A room's presence is a hash of `user|instance` fields (valued by
//! username), changed on each instance's local transitions by a script that publishes
//! `presence` only on global ones. Every instance refreshes a liveness key with a short TTL;
//! the others reap a dead instance's fields (one reaper, by `SET NX`) through the same script,
//! so its users leave within seconds and the departures are published.
//!
//! On a cluster, a room's presence hash lives in the room's shard and is published on the
//! room's sharded channel; an instance keeps one entry set per shard (so the script touches
//! one slot), and a reaper walks every shard's set of a dead instance.

use super::conn::RedisConn;
use super::keys::KeySpace;
use super::scripts::PRESENCE;
use super::wire;
use confab_shared::ids::{RoomId, UserId};
use confab_shared::protocol::{ServerFrame, UserPublic};
use std::collections::HashMap;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Heartbeat period and TTL of an instance's liveness key.
const HEARTBEAT: Duration = Duration::from_secs(2);
const ALIVE_TTL_SECS: u64 = 6;
/// How long one instance holds the claim to reap a dead one.
const REAP_CLAIM_SECS: u64 = 30;

/// Records `instance`'s transition for the user in the room (see `presence.lua`).
pub async fn set(
    conn: &mut RedisConn,
    keys: KeySpace,
    instance: &str,
    room: RoomId,
    user: &UserPublic,
    online: bool,
) -> redis::RedisResult<()> {
    let frame = ServerFrame::Presence {
        room,
        user: user.clone(),
        online,
    };
    let _changed: i64 = PRESENCE
        .call()
        .key(keys.presence(room))
        .key(keys.instance_presence(room, instance))
        .arg(user.id.to_string())
        .arg(instance)
        .arg(&user.username)
        .arg(if online { "1" } else { "0" })
        .arg(wire::event_payload(&frame))
        .arg(room.to_string())
        .arg(keys.room_channel(room))
        .arg(super::publish_command(keys))
        .invoke(conn)
        .await?;
    Ok(())
}

/// Who is in the room: users with a field of a live instance.
pub async fn online(
    conn: &mut RedisConn,
    keys: KeySpace,
    room: RoomId,
) -> redis::RedisResult<Vec<UserPublic>> {
    let fields: HashMap<String, String> = redis::cmd("HGETALL")
        .arg(keys.presence(room))
        .query_async(conn)
        .await?;
    let mut instances: Vec<&str> = fields
        .keys()
        .filter_map(|f| f.split_once('|').map(|(_, i)| i))
        .collect();
    instances.sort_unstable();
    instances.dedup();
    let mut pipe = redis::pipe();
    for i in &instances {
        pipe.cmd("EXISTS").arg(keys.alive(i));
    }
    // One pipeline: every liveness key shares the `{i}` tag on a cluster.
    let alive: Vec<bool> = if instances.is_empty() {
        Vec::new()
    } else {
        pipe.query_async(conn).await?
    };
    let alive: HashMap<&str, bool> = instances.into_iter().zip(alive).collect();
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (field, name) in &fields {
        let Some((uid, inst)) = field.split_once('|') else {
            continue;
        };
        let Ok(id) = uid.parse() else { continue };
        if alive.get(inst).copied().unwrap_or(false) && seen.insert(uid) {
            out.push(UserPublic {
                id: UserId(id),
                username: name.clone(),
            });
        }
    }
    Ok(out)
}

/// Marks the instance alive for `ALIVE_TTL_SECS` and registers it among the instances (so that
/// the others reap its presence if it dies).
pub async fn beat(conn: &mut RedisConn, keys: KeySpace, instance: &str) -> redis::RedisResult<()> {
    redis::pipe()
        .cmd("SET")
        .arg(keys.alive(instance))
        .arg(1)
        .arg("EX")
        .arg(ALIVE_TTL_SECS)
        .ignore()
        .cmd("SADD")
        .arg(keys.instances())
        .arg(instance)
        .ignore()
        .query_async(conn)
        .await
}

/// Deregisters a stopping instance.
pub async fn deregister(
    conn: &mut RedisConn,
    keys: KeySpace,
    instance: &str,
) -> redis::RedisResult<()> {
    redis::pipe()
        .cmd("DEL")
        .arg(keys.alive(instance))
        .ignore()
        .cmd("SREM")
        .arg(keys.instances())
        .arg(instance)
        .ignore()
        .query_async(conn)
        .await
}

/// Keeps this instance's liveness key fresh, reports the persistence backlog, and reaps
/// instances that stopped heartbeating.
pub async fn heartbeat(
    mut conn: RedisConn,
    keys: KeySpace,
    instance: String,
    stop: CancellationToken,
) {
    let mut every = tokio::time::interval(HEARTBEAT);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = every.tick() => {}
        }
        if let Err(e) = beat(&mut conn, keys, &instance).await {
            tracing::warn!(error = %e, "heartbeat failed");
            continue;
        }
        if let Ok(backlog) = backlog(&mut conn, keys).await {
            metrics::gauge!("confab_stream_backlog").set(backlog as f64);
        }
        if let Err(e) = reap_dead(&mut conn, keys, &instance).await {
            tracing::warn!(error = %e, "reaping dead instances failed");
        }
    }
}

/// Entries waiting in the persistence streams, every shard's.
pub async fn backlog(conn: &mut RedisConn, keys: KeySpace) -> redis::RedisResult<i64> {
    let lengths = futures::future::try_join_all(keys.shards().map(|shard| {
        let mut conn = conn.clone();
        async move {
            redis::cmd("XLEN")
                .arg(shard.persist_stream())
                .query_async::<i64>(&mut conn)
                .await
        }
    }))
    .await?;
    Ok(lengths.into_iter().sum())
}

async fn reap_dead(conn: &mut RedisConn, keys: KeySpace, me: &str) -> redis::RedisResult<()> {
    let instances: Vec<String> = redis::cmd("SMEMBERS")
        .arg(keys.instances())
        .query_async(conn)
        .await?;
    for dead in instances.iter().filter(|i| *i != me) {
        let alive: bool = redis::cmd("EXISTS")
            .arg(keys.alive(dead))
            .query_async(conn)
            .await?;
        if alive {
            continue;
        }
        let claimed: Option<String> = redis::cmd("SET")
            .arg(keys.reaper(dead))
            .arg(me)
            .arg("NX")
            .arg("EX")
            .arg(REAP_CLAIM_SECS)
            .query_async(conn)
            .await?;
        if claimed.is_some() {
            tracing::info!(instance = %dead, "reaping the presence of a dead instance");
            reap(conn, keys, dead).await?;
        }
    }
    Ok(())
}

/// Takes every user of a dead instance out of its rooms, publishing the departures that are
/// global, then forgets the instance.
async fn reap(conn: &mut RedisConn, keys: KeySpace, dead: &str) -> redis::RedisResult<()> {
    for shard in keys.shards() {
        let members: Vec<String> = redis::cmd("SMEMBERS")
            .arg(shard.instance_presence(dead))
            .query_async(conn)
            .await?;
        reap_shard(conn, keys, dead, members).await?;
        let _removed: i64 = redis::cmd("DEL")
            .arg(shard.instance_presence(dead))
            .query_async(conn)
            .await?;
    }
    let _removed: i64 = redis::cmd("SREM")
        .arg(keys.instances())
        .arg(dead)
        .query_async(conn)
        .await?;
    Ok(())
}

/// Takes the dead instance's users (`room|user` entries of one shard) out of their rooms.
async fn reap_shard(
    conn: &mut RedisConn,
    keys: KeySpace,
    dead: &str,
    members: Vec<String>,
) -> redis::RedisResult<()> {
    for member in members {
        let Some((room, user)) = member.split_once('|') else {
            continue;
        };
        let (Ok(room), Ok(user)) = (room.parse(), user.parse()) else {
            continue;
        };
        let (room, user) = (RoomId(room), UserId(user));
        let username: Option<String> = redis::cmd("HGET")
            .arg(keys.presence(room))
            .arg(format!("{user}|{dead}"))
            .query_async(conn)
            .await?;
        let user = UserPublic {
            id: user,
            username: username.unwrap_or_default(),
        };
        set(conn, keys, dead, room, &user, false).await?;
    }
    Ok(())
}
