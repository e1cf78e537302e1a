//! `confab dead-letters`: what the workers set aside, and putting it back.
//!
//! A worker sets an entry aside (see [`crate::worker`]) when the database refuses its data or
//! it cannot be read: the entry was acknowledged to its client, so it must not be lost, but
//! written again as it is it would fail the same way. Once the cause is fixed (the room or
//! author restored, a migration applied, the worker pointed at the right database), `replay`
//! puts the entry back on its persistence stream for the workers to write; one the database
//! still refuses is set aside again, with the new reason. An entry already stored is skipped
//! by the store's (room, actor, reference) rule, so replaying one twice stores it once.
//!
//! Entries are named `SHARD/ID`: the shard's number (0 on one Redis) and the entry's id in
//! that shard's dead-letter stream, as `list` prints them.

use crate::broker::redis::conn::{RedisConn, RedisTarget};
use crate::broker::redis::keys::{KeySpace, Shard};
use crate::broker::redis::scripts::REPLAY_DEAD_LETTER;
use crate::broker::redis::wire;
use crate::config::RedisClusterConfig;
use anyhow::Context;
use clap::{Args, Subcommand};
use redis::streams::{StreamId, StreamRangeReply};
use redis::AsyncCommands;
use std::io::Write;

/// Entries read from a dead-letter stream per command.
const PAGE: usize = 500;

#[derive(Debug, Args)]
pub struct DeadLettersCommand {
    /// Redis URL (one Redis); or set CONFAB_REDIS_CLUSTER.
    #[arg(long, env = "CONFAB_REDIS_URL")]
    pub redis_url: Option<String>,

    #[command(flatten)]
    pub redis_cluster: RedisClusterConfig,

    #[command(subcommand)]
    pub action: DeadLettersAction,
}

#[derive(Debug, Subcommand)]
pub enum DeadLettersAction {
    /// Print every set-aside entry, oldest first in each shard, one JSON object per line: its
    /// name (`ref`), its id in the persistence stream, the database's reason, and the entry.
    List,
    /// Put entries back on their persistence stream, for the workers to write again.
    Replay {
        /// The entries (`SHARD/ID`, as `list` names them).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        refs: Vec<String>,
        /// Every set-aside entry of every shard.
        #[arg(long)]
        all: bool,
    },
    /// Delete entries for good (their messages are then lost).
    Discard {
        /// The entries (`SHARD/ID`, as `list` names them).
        #[arg(required = true)]
        refs: Vec<String>,
    },
}

/// An entry's name: its shard and its id in the shard's dead-letter stream.
#[derive(Debug, Clone, PartialEq, Eq)]
struct EntryRef {
    shard: Shard,
    id: String,
}

impl EntryRef {
    fn parse(keys: KeySpace, s: &str) -> anyhow::Result<Self> {
        let (shard, id) = s
            .split_once('/')
            .with_context(|| format!("{s:?} is not SHARD/ID (as `list` prints it)"))?;
        let shard = shard
            .parse::<usize>()
            .ok()
            .and_then(|n| keys.shards().nth(n))
            .with_context(|| {
                format!(
                    "{s:?}: the shard is not a number below {}",
                    keys.shard_count()
                )
            })?;
        let (ms, seq) = id
            .split_once('-')
            .with_context(|| format!("{s:?}: the id is not a stream id (MS-SEQ)"))?;
        if ms.parse::<u64>().is_err() || seq.parse::<u64>().is_err() {
            anyhow::bail!("{s:?}: the id is not a stream id (MS-SEQ)");
        }
        Ok(Self {
            shard,
            id: id.to_owned(),
        })
    }
}

impl std::fmt::Display for EntryRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.shard.index(), self.id)
    }
}

/// A field of a stream entry as text (`None` when absent or not text).
fn text(entry: &StreamId, field: &str) -> Option<String> {
    entry.get::<String>(field)
}

/// One `list` line.
fn describe(shard: Shard, entry: &StreamId) -> serde_json::Value {
    let decoded = wire::decode_stream_entry(entry);
    serde_json::json!({
        "ref": EntryRef { shard, id: entry.id.clone() }.to_string(),
        "id": text(entry, "id"),
        "error": text(entry, "error"),
        "room": decoded.as_ref().map(|e| e.event.room().0.to_string()),
        "seq": decoded.as_ref().map(|e| e.event.seq()),
        "kind": decoded.as_ref().map(|e| e.event.kind()),
        "actor": text(entry, wire::FIELD_ACTOR),
        "reference": text(entry, wire::FIELD_REFERENCE),
        "accepted_at": text(entry, wire::FIELD_ACCEPTED).and_then(|t| t.parse::<i64>().ok()),
        "entry": text(entry, wire::FIELD_ENTRY),
    })
}

/// Reads a shard's dead-letter stream, `PAGE` entries at a time, oldest first.
async fn each_entry(
    conn: &mut RedisConn,
    shard: Shard,
    mut visit: impl FnMut(&StreamId) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let stream = shard.dead_letter_stream();
    let mut start = "-".to_owned();
    loop {
        let page: StreamRangeReply = conn.xrange_count(&stream, &start, "+", PAGE).await?;
        for entry in &page.ids {
            visit(entry)?;
        }
        match page.ids.last() {
            Some(last) if page.ids.len() == PAGE => start = format!("({}", last.id),
            _ => return Ok(()),
        }
    }
}

/// Moves one entry back onto its persistence stream; its new id there, or `None` when the
/// dead-letter stream has no such entry.
async fn replay(conn: &mut RedisConn, entry: &EntryRef) -> anyhow::Result<Option<String>> {
    Ok(REPLAY_DEAD_LETTER
        .call()
        .key(entry.shard.dead_letter_stream())
        .key(entry.shard.persist_stream())
        .arg(&entry.id)
        .invoke(conn)
        .await?)
}

pub async fn run(cmd: DeadLettersCommand) -> anyhow::Result<()> {
    let target = RedisTarget::from_settings(cmd.redis_url.as_deref(), &cmd.redis_cluster.nodes)?
        .context("set CONFAB_REDIS_URL or CONFAB_REDIS_CLUSTER")?;
    let keys = target.key_space(cmd.redis_cluster.shards);
    let mut conn = RedisConn::connect(&target)
        .await
        .context("connecting to Redis")?;
    let mut out = std::io::stdout().lock();
    match cmd.action {
        DeadLettersAction::List => {
            for shard in keys.shards() {
                each_entry(&mut conn, shard, |entry| {
                    writeln!(out, "{}", describe(shard, entry))?;
                    Ok(())
                })
                .await?;
            }
        }
        DeadLettersAction::Replay { refs, all } => {
            let refs = if all {
                let mut every = Vec::new();
                for shard in keys.shards() {
                    each_entry(&mut conn, shard, |entry| {
                        every.push(EntryRef {
                            shard,
                            id: entry.id.clone(),
                        });
                        Ok(())
                    })
                    .await?;
                }
                every
            } else {
                parse_all(keys, &refs)?
            };
            let mut missing = 0;
            for entry in &refs {
                match replay(&mut conn, entry).await? {
                    Some(id) => writeln!(out, "replayed {entry} as {id}")?,
                    None => {
                        missing += 1;
                        eprintln!("{entry}: no such set-aside entry");
                    }
                }
            }
            writeln!(out, "{} replayed", refs.len() - missing)?;
            if missing > 0 {
                anyhow::bail!("{missing} of the entries named were not there");
            }
        }
        DeadLettersAction::Discard { refs } => {
            let refs = parse_all(keys, &refs)?;
            let mut missing = 0;
            for entry in &refs {
                let deleted: i64 = conn
                    .xdel(entry.shard.dead_letter_stream(), &[&entry.id])
                    .await?;
                if deleted == 0 {
                    missing += 1;
                    eprintln!("{entry}: no such set-aside entry");
                }
            }
            writeln!(out, "{} discarded", refs.len() - missing)?;
            if missing > 0 {
                anyhow::bail!("{missing} of the entries named were not there");
            }
        }
    }
    Ok(())
}

/// Every name parsed before anything is changed: a typo changes nothing.
fn parse_all(keys: KeySpace, refs: &[String]) -> anyhow::Result<Vec<EntryRef>> {
    refs.iter().map(|r| EntryRef::parse(keys, r)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_shard_slash_stream_id_and_anything_else_is_refused() {
        let one = KeySpace::single();
        let parsed = EntryRef::parse(one, "0/1764000000000-3").unwrap();
        assert_eq!(parsed.shard.dead_letter_stream(), "confab:persist:dead");
        assert_eq!(parsed.id, "1764000000000-3");
        assert_eq!(
            EntryRef::parse(one, "0/1764000000000-3")
                .unwrap()
                .to_string(),
            "0/1764000000000-3"
        );
        for bad in [
            "1764000000000-3",
            "1/1764000000000-3",
            "x/1-0",
            "0/1",
            "0/a-b",
            "0/",
        ] {
            assert!(EntryRef::parse(one, bad).is_err(), "{bad}");
        }
        let cluster = KeySpace::cluster(64);
        assert!(EntryRef::parse(cluster, "63/1-0").is_ok());
        assert!(EntryRef::parse(cluster, "64/1-0").is_err());
        assert_eq!(
            EntryRef::parse(cluster, "7/1-0")
                .unwrap()
                .shard
                .dead_letter_stream(),
            "confab:{7}:persist:dead"
        );
    }
}
