//! Applying a run of committed write entries as one keyspace transaction and one engine
//! write: the group's apply state is written once for the run instead of once per entry,
//! and the entries share the transaction's reads. Each entry still applies atomically, at
//! its own time and revision, with the reply it would have alone.

use std::io;
use std::sync::atomic::Ordering;

use super::apply::{
    apply_command, apply_each, apply_expire, no_database, state_record, storage_error,
    wake_blocked_by,
};
use super::cross_shard::{self, locked_key};
use super::Node;
use crate::keyspace::Txn;
use crate::protocol::Reply;
use crate::raft::{Applied, Entry, EntryOp, GroupId, GroupState};

/// Whether `entry` may be applied in a run: a plain write, while nothing needs each
/// entry's own key changes (no WATCH, client tracking, keyspace notifications or key
/// event log on this group).
pub(super) fn batchable(node: &Node, group: GroupId, entry: &Entry) -> bool {
    matches!(
        entry.op,
        EntryOp::Command(_) | EntryOp::Batch(_) | EntryOp::Transaction(_) | EntryOp::Expire(_)
    ) && node.shared.watches.is_idle()
        && !node.tracks_changes()
        && !node.notifies(group)
        && !node.keeps_events(group)
}

/// Applies a run of batchable entries (each with its revision) in one transaction, with
/// `state` (the apply state after the last) in the same engine write.
pub(super) fn apply_run(
    node: &Node,
    group: GroupId,
    run: &[(&Entry, u64)],
    state: &mut GroupState,
) -> io::Result<Vec<Applied>> {
    let Some(&(first, revision)) = run.first() else {
        return Ok(Vec::new());
    };
    let keyspace = &node.shared.keyspace;
    let mut txn = keyspace.txn(first.now_ms, revision, state.first_version(group));
    let mut replies = Vec::with_capacity(run.len());
    for (i, &(entry, revision)) in run.iter().enumerate() {
        if i > 0 {
            txn.next_entry(entry.now_ms, revision)
                .map_err(storage_error)?;
        }
        replies.push(apply_plain(node, &mut txn, entry));
    }
    let expired = txn.expired_removed();
    state.next_version += txn.versions_taken();
    txn.put_system(&state_record(group), state.encode());
    txn.commit().map_err(storage_error)?;
    node.shared.stats.expired_keys.add(expired);
    node.shared
        .changes_since_save
        .fetch_add(run.len() as u64, Ordering::Relaxed);
    for &(entry, _) in run {
        wake_blocked_by(node, group, entry);
    }
    Ok(replies.into_iter().map(Applied::new).collect())
}

/// Applies one entry of a run (a plain write, see `NodeApplier::batchable`) within the
/// run's transaction: an entry that fails leaves nothing, as alone it would leave its
/// transaction uncommitted.
fn apply_plain(node: &Node, txn: &mut Txn, entry: &Entry) -> Reply {
    if entry.db >= node.shared.keyspace.databases() {
        return no_database(entry.db).into_reply();
    }
    match &entry.op {
        EntryOp::Command(args) if locked_key(node, entry.db, args, None) => {
            Reply::error(cross_shard::LOCKED)
        }
        EntryOp::Command(args) => {
            let point = txn.savepoint();
            apply_command(node, txn, entry.db, args).unwrap_or_else(|e| {
                txn.rollback(point);
                e.into_reply()
            })
        }
        EntryOp::Expire(keys) => {
            let point = txn.savepoint();
            match apply_expire(txn, entry.db, keys) {
                Ok(removed) => {
                    node.shared.stats.expired_keys.add(removed);
                    Reply::Integer(removed as i64)
                }
                Err(e) => {
                    txn.rollback(point);
                    e.into_reply()
                }
            }
        }
        EntryOp::Batch(commands) => {
            let commands = commands.iter().map(|a| (entry.db, &a[..]));
            apply_each(node, txn, commands, None, None)
        }
        EntryOp::Transaction(commands) => {
            let commands = commands.iter().map(|(db, a)| (*db, &a[..]));
            apply_each(node, txn, commands, None, None)
        }
        EntryOp::Map(_) | EntryOp::FlushSlots { .. } | EntryOp::CrossShard(_) => {
            Reply::error("ERR entry cannot be applied in a run")
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::sync::Arc;

    use bytes::Bytes;

    use super::super::apply::NodeApplier;
    use super::*;
    use crate::config::Config;
    use crate::keyspace::Keyspace;
    use crate::raft::types::{self, RaftEntry};
    use crate::raft::ShardStateMachine;
    use crate::storage::{self, KeyRange};

    /// A node over a memory engine, with 4 shards (for apply tests).
    pub(crate) fn node() -> Arc<Node> {
        let args: Vec<String> = ["--engine", "memory", "--shards", "4"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let config = Arc::new(Config::from_args(&args).expect("config"));
        let engine: Arc<dyn storage::Engine> = Arc::new(storage::MemoryEngine::new());
        let keyspace = Keyspace::open(engine, 16).expect("keyspace");
        Arc::new(Node::new(crate::commands::Shared::new(config, keyspace, 0)))
    }

    /// A small deterministic generator (xorshift).
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    fn argv(words: &[&str]) -> Vec<Bytes> {
        words.iter().map(|w| Bytes::from(w.to_string())).collect()
    }

    /// A write over a few keys of every type, many of them failing (wrong type, overflow,
    /// out of range) so rollbacks inside a run are exercised.
    fn command(rng: &mut Rng) -> Vec<Bytes> {
        let key = format!("k{}", rng.below(6));
        let other = format!("k{}", rng.below(6));
        let n = rng.below(4).to_string();
        let px = (1 + rng.below(6)).to_string();
        let k = key.as_str();
        match rng.below(22) {
            0 => argv(&["set", k, &n]),
            1 => argv(&["set", k, &n, "px", &px]),
            2 => argv(&["incr", k]),
            3 => argv(&["incrby", k, "9223372036854775807"]),
            4 => argv(&["append", k, "x"]),
            5 => argv(&["hset", k, &n, "v", "f9", &px]),
            6 => argv(&["hdel", k, &n]),
            7 => argv(&["hincrby", k, &n, "1"]),
            8 => argv(&["lpush", k, &n, "a"]),
            9 => argv(&["rpop", k]),
            10 => argv(&["lset", k, if n == "0" { "5" } else { "0" }, "x"]),
            11 => argv(&["sadd", k, &n]),
            12 => argv(&["srem", k, &n]),
            13 => argv(&["zadd", k, &px, &n]),
            14 => argv(&["zincrby", k, "1", &n]),
            15 => argv(&["del", k]),
            16 => argv(&["pexpire", k, &px]),
            17 => argv(&["persist", k]),
            18 => argv(&["rename", k, &other]),
            19 => argv(&["lmove", k, &other, "left", "right"]),
            20 => argv(&["smove", k, &other, &n]),
            _ => argv(&["copy", k, &other, "replace"]),
        }
    }

    fn entries(seed: u64, count: u64) -> Vec<RaftEntry> {
        let mut rng = Rng(seed);
        let mut now_ms = 1_000_000u64;
        (0..count)
            .map(|index| {
                // The proposers' clocks: mostly forward, sometimes behind the last entry.
                now_ms = now_ms + rng.below(4) - rng.below(2);
                let op = match rng.below(10) {
                    0 => EntryOp::Expire(argv(&["k0", "k1", "k2", "k3"])),
                    1 => EntryOp::Batch((0..3).map(|_| command(&mut rng)).collect()),
                    2 => EntryOp::Transaction((0..2).map(|_| (0, command(&mut rng))).collect()),
                    _ => EntryOp::Command(command(&mut rng)),
                };
                let db = if rng.below(50) == 0 { 200 } else { 0 };
                RaftEntry {
                    log_id: types::log_id(1, 1, index),
                    payload: openraft::EntryPayload::Normal(Entry {
                        db,
                        now_ms,
                        op,
                        origin: None,
                    }),
                }
            })
            .collect()
    }

    /// Every record but the apply state (an entry that fails alone writes none, so a
    /// run can store a later one).
    pub(crate) fn everything(node: &Node) -> Vec<(Bytes, Bytes)> {
        let state = crate::keyspace::encoding::system_key(&state_record(1));
        let mut records = node
            .shared
            .keyspace
            .engine()
            .scan(&KeyRange::prefix(b""), false, usize::MAX)
            .expect("scan");
        records.retain(|(k, _)| *k != state);
        records
    }

    #[test]
    fn a_run_leaves_what_its_entries_leave_one_by_one() {
        for seed in 1..=20u64 {
            let log = entries(seed * 7919, 400);
            let (alone, together) = (node(), node());
            let machine = |node: &Arc<Node>| {
                let applier = Arc::new(NodeApplier(Arc::downgrade(node)));
                ShardStateMachine::open(1, applier).expect("state machine")
            };
            let (mut one_by_one, mut in_runs) = (machine(&alone), machine(&together));
            let expected: Vec<Reply> = log
                .iter()
                .map(|e| super::super::apply::reply_of(one_by_one.apply_one(e).expect("apply")))
                .collect();
            let mut rng = Rng(seed);
            let mut replies = Vec::new();
            let mut rest = &log[..];
            while !rest.is_empty() {
                let (run, after) = rest.split_at((1 + rng.below(40) as usize).min(rest.len()));
                let applied = in_runs.apply_all(run).expect("apply");
                replies.extend(applied.into_iter().map(super::super::apply::reply_of));
                rest = after;
            }
            assert_eq!(replies, expected, "seed {seed}");
            assert!(
                expected.iter().any(|r| matches!(r, Reply::Error(_))),
                "seed {seed}: no command failed"
            );
            assert_eq!(everything(&together), everything(&alone), "seed {seed}");
            assert_eq!(in_runs.state(), one_by_one.state(), "seed {seed}");
        }
    }
}
