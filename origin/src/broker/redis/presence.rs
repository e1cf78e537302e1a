//! Presence across instances. A room's presence is a hash of `user|instance` fields (valued by
//! username), changed on each instance's local transitions by a script that publishes
//! `presence` only on global ones. Every instance refreshes a liveness key with a short TTL;
//! the others reap a dead instance's fields (one reaper, by `SET NX`) through the same script,
//! so its users leave within seconds and the departures are published.

use super::keys;
use super::scripts::PRESENCE;
use super::wire;
use confab_shared::ids::{RoomId, UserId};
use confab_shared::protocol::{ServerFrame, UserPublic};
use redis::aio::ConnectionManager;
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
    conn: &mut ConnectionManager,
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
        .key(keys::presence(room))
        .key(keys::instance_presence(instance))
        .arg(user.id.to_string())
        .arg(instance)
        .arg(&user.username)
        .arg(if online { "1" } else { "0" })
        .arg(wire::event_payload(&frame))
        .arg(room.to_string())
        .arg(keys::room_channel(room))
        .invoke_async(conn)
        .await?;
    Ok(())
}

/// Who is in the room: users with a field of a live instance.
pub async fn online(
    conn: &mut ConnectionManager,
    room: RoomId,
) -> redis::RedisResult<Vec<UserPublic>> {
    let fields: HashMap<String, String> = redis::cmd("HGETALL")
        .arg(keys::presence(room))
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
        pipe.cmd("EXISTS").arg(keys::alive(i));
    }
    let alive: Vec<bool> = pipe.query_async(conn).await?;
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
pub async fn beat(conn: &mut ConnectionManager, instance: &str) -> redis::RedisResult<()> {
    redis::pipe()
        .cmd("SET")
        .arg(keys::alive(instance))
        .arg(1)
        .arg("EX")
        .arg(ALIVE_TTL_SECS)
        .ignore()
        .cmd("SADD")
        .arg(keys::INSTANCES)
        .arg(instance)
        .ignore()
        .query_async(conn)
        .await
}

/// Deregisters a stopping instance.
pub async fn deregister(conn: &mut ConnectionManager, instance: &str) -> redis::RedisResult<()> {
    redis::pipe()
        .cmd("DEL")
        .arg(keys::alive(instance))
        .ignore()
        .cmd("SREM")
        .arg(keys::INSTANCES)
        .arg(instance)
        .ignore()
        .query_async(conn)
        .await
}

/// Keeps this instance's liveness key fresh, reports the persistence backlog, and reaps
/// instances that stopped heartbeating.
pub async fn heartbeat(mut conn: ConnectionManager, instance: String, stop: CancellationToken) {
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
            .arg(keys::PERSIST_STREAM)
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
        .arg(keys::INSTANCES)
        .query_async(conn)
        .await?;
    for dead in instances.iter().filter(|i| *i != me) {
        let alive: bool = redis::cmd("EXISTS")
            .arg(keys::alive(dead))
            .query_async(conn)
            .await?;
        if alive {
            continue;
        }
        let claimed: Option<String> = redis::cmd("SET")
            .arg(keys::reaper(dead))
            .arg(me)
            .arg("NX")
            .arg("EX")
            .arg(REAP_CLAIM_SECS)
            .query_async(conn)
            .await?;
        if claimed.is_some() {
            tracing::info!(instance = %dead, "reaping the presence of a dead instance");
            reap(conn, dead).await?;
        }
    }
    Ok(())
}

/// Takes every user of a dead instance out of its rooms, publishing the departures that are
/// global, then forgets the instance.
async fn reap(conn: &mut ConnectionManager, dead: &str) -> redis::RedisResult<()> {
    let members: Vec<String> = redis::cmd("SMEMBERS")
        .arg(keys::instance_presence(dead))
        .query_async(conn)
        .await?;
    for member in members {
        let Some((room, user)) = member.split_once('|') else {
            continue;
        };
        let (Ok(room), Ok(user)) = (room.parse(), user.parse()) else {
            continue;
        };
        let (room, user) = (RoomId(room), UserId(user));
        let username: Option<String> = redis::cmd("HGET")
            .arg(keys::presence(room))
            .arg(format!("{user}|{dead}"))
            .query_async(conn)
            .await?;
        let user = UserPublic {
            id: user,
            username: username.unwrap_or_default(),
        };
        set(conn, dead, room, &user, false).await?;
    }
    redis::pipe()
        .cmd("DEL")
        .arg(keys::instance_presence(dead))
        .ignore()
        .cmd("SREM")
        .arg(keys::INSTANCES)
        .arg(dead)
        .ignore()
        .query_async(conn)
        .await
}
