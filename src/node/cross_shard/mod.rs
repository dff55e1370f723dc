//! Transactions over keys of several shards, atomically (`cross-shard-transactions yes`):
//! a two-phase commit across the shards' Raft groups, with the node that ran EXEC as the
//! coordinator and the transaction's first shard as the decider. The steps, their log form
//! and the recovery story are in `cluster::cross_shard`; here:
//!
//! 1. **Prepare** every shard at its leader (in parallel): each locks the transaction's keys
//!    of that shard — in its log, so the locks survive any crash — and answers their values
//!    (DUMP payload, expiry, revision). A key another transaction holds refuses the prepare:
//!    everything is released and the transaction tried again with a new id.
//! 2. **Run** the commands against a speculative keyspace holding exactly those values:
//!    every reply, and the final value of each key they changed.
//! 3. **Commit** at the decider first. Its log orders that Commit against any Abort a shard
//!    tired of waiting asks for, so exactly one of them wins. Then at the other shards; each
//!    applies its share of the writes (RESTORE or DEL of each changed key) and releases.
//!
//! While a key is locked, commands over it wait (reads too: no reader sees one shard's
//! half before the other's), and apply refuses other writes to it. A coordinator that dies
//! leaves locks behind: `recovery.rs` settles them through the decider.

mod apply;
mod locks;
mod recovery;
mod values;

pub(crate) use apply::{apply_step, locked_key, LOCKED};
pub(crate) use locks::LockTable;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;

use self::values::{bulk_of, decode_values, error_text, read_value, KeyValue};
use super::apply::apply_command;
use super::dispatch::join_in_order;
use super::Node;
use crate::clock;
use crate::cluster::{CrossShardOp, ShardId, ShardSet, ShardWrite, TxnId};
use crate::commands::watches::WatchState;
use crate::commands::{Command, CrashPoint, Session};
use crate::protocol::Reply;
use crate::raft::{Entry, EntryOp};

/// How long a transaction has, from its first Prepare, before it can no longer prepare.
const DEADLINE: Duration = Duration::from_secs(10);
/// Settled transactions whose last steps may wait for after their reply at once.
const FINISHING_MAX: usize = 1024;
/// How long a command waits for a key a transaction holds.
const LOCK_WAIT: Duration = Duration::from_secs(8);
/// Collection versions of the values a transaction's speculative run starts from: a range
/// neither a shard group nor the run itself (`transaction::SPECULATIVE_VERSIONS`) uses.
const STAGED_VERSIONS: u64 = 0xfffe << 48;

/// A node's share of cross-shard transactions: the locks its replicas hold, the sequence
/// of the transactions it coordinates, and their last steps, taken after the reply.
pub struct CrossShard {
    pub(crate) locks: LockTable,
    seq: AtomicU64,
    finishing: Mutex<Vec<Finish>>,
    to_finish: Notify,
    /// Finishes queued or running (at most FINISHING_MAX).
    in_flight: AtomicUsize,
}

/// The last step of a transaction whose outcome is settled: `step` at `shards`, then, if
/// they all applied it, `then` at one shard.
pub(super) struct Finish {
    shards: Vec<ShardId>,
    step: CrossShardOp,
    then: Option<(ShardId, CrossShardOp)>,
}

impl Default for CrossShard {
    fn default() -> CrossShard {
        CrossShard {
            locks: LockTable::default(),
            // Unique across restarts: a new start begins past any earlier id.
            seq: AtomicU64::new(clock::now_us()),
            finishing: Mutex::new(Vec::new()),
            to_finish: Notify::new(),
            in_flight: AtomicUsize::new(0),
        }
    }
}

impl CrossShard {
    /// Queues `finish` for after the reply; `Some(finish)` back when FINISHING_MAX are
    /// already under way (the caller then takes the steps itself).
    fn finish(&self, finish: Finish) -> Option<Finish> {
        if self.in_flight.fetch_add(1, Ordering::AcqRel) >= FINISHING_MAX {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Some(finish);
        }
        self.finishing.lock().push(finish);
        self.to_finish.notify_one();
        None
    }
}

/// Takes the last steps of settled transactions, each in a task of its own, until the node
/// stops (`loops.rs`).
pub(super) async fn finish_settled(node: Arc<Node>) {
    loop {
        node.cross_shard.to_finish.notified().await;
        let batch = std::mem::take(&mut *node.cross_shard.finishing.lock());
        for f in batch {
            let node = node.clone();
            tokio::spawn(async move {
                node.take_steps(f).await;
                node.cross_shard.in_flight.fetch_sub(1, Ordering::AcqRel);
            });
        }
    }
}

/// The keys a transaction names, per shard, each with its database.
type KeysByShard = BTreeMap<ShardId, Vec<(u8, Bytes)>>;

/// What went wrong in one attempt.
enum Failed {
    /// Keys held by another transaction: try again.
    Locked,
    /// The reply for the client.
    Reply(Reply),
}

impl Node {
    /// Takes the locks the groups' records hold (at start-up).
    pub(super) fn cross_shard_locks_loaded(&self, locks: Vec<crate::keyspace::HeldLocks>) {
        self.cross_shard.locks.load(None, locks);
    }

    /// Whether a transaction or write over several shards runs as a cross-shard one here.
    pub(super) fn runs_across_shards(&self) -> bool {
        self.shared.config.cross_shard_transactions() && !self.groups().alone()
    }

    /// Waits while a cross-shard transaction holds one of the command's keys.
    pub(super) async fn wait_for_locks(
        &self,
        cmd: &Command,
        db: u8,
        args: &[Bytes],
    ) -> Result<(), Reply> {
        let locks = &self.cross_shard.locks;
        if locks.is_empty() {
            return Ok(());
        }
        let keys: Vec<(u8, Bytes)> = cmd
            .key_positions(args)
            .map(|i| (db, args[i].clone()))
            .collect();
        if locks.wait_unlocked(&keys, LOCK_WAIT).await {
            Ok(())
        } else {
            Err(Reply::error(apply::LOCKED))
        }
    }

    /// Runs `queued` (a MULTI/EXEC, or one write over several shards) as one transaction
    /// across `shards`: the commands' replies as an array, a null array when a watched key
    /// changed, or an error when nothing was applied (or, rarely, when the outcome is left
    /// to the shards to settle).
    pub(super) async fn exec_across_shards(
        &self,
        session: &mut Session,
        queued: &[(&Command, Vec<Bytes>)],
        watching: Option<&WatchState>,
    ) -> Reply {
        let keys = match self.keys_by_shard(session.db, queued, watching) {
            Ok(keys) => keys,
            Err(reply) => return reply,
        };
        // A key another transaction holds: wait until this node sees it released (every
        // replica holds the same locks), then try again with a new id, until LOCK_WAIT.
        let all: Vec<(u8, Bytes)> = keys.values().flatten().cloned().collect();
        let deadline = tokio::time::Instant::now() + LOCK_WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            self.cross_shard.locks.wait_unlocked(&all, left).await;
            match self.attempt(session, queued, watching, &keys).await {
                Ok(reply) => {
                    session.wrote_to(keys.keys().copied());
                    return reply;
                }
                Err(Failed::Reply(reply)) => return reply,
                Err(Failed::Locked) if tokio::time::Instant::now() < deadline => {
                    let jitter = Duration::from_micros(clock::now_us() % 2000);
                    tokio::time::sleep(jitter).await;
                }
                Err(Failed::Locked) => return Reply::error(apply::LOCKED),
            }
        }
    }

    /// Waits while a cross-shard transaction holds a key of a queued command.
    pub(super) async fn wait_for_queued_locks(
        &self,
        db: u8,
        queued: &[(&Command, Vec<Bytes>)],
    ) -> Result<(), Reply> {
        if self.cross_shard.locks.is_empty() {
            return Ok(());
        }
        let keys = self.queued_keys(db, queued);
        if self.cross_shard.locks.wait_unlocked(&keys, LOCK_WAIT).await {
            Ok(())
        } else {
            Err(Reply::error(apply::LOCKED))
        }
    }

    /// The keys of `queued` with their databases (SELECT inside moves the database).
    fn queued_keys(&self, mut db: u8, queued: &[(&Command, Vec<Bytes>)]) -> Vec<(u8, Bytes)> {
        let mut keys = Vec::new();
        for (cmd, args) in queued {
            if cmd.spec.name == "select" {
                let n = std::str::from_utf8(&args[1])
                    .ok()
                    .and_then(|t| t.parse().ok());
                if let Some(n) = n.filter(|n| *n < self.shared.keyspace.databases()) {
                    db = n;
                }
            }
            keys.extend(cmd.key_positions(args).map(|i| (db, args[i].clone())));
        }
        keys
    }

    /// The keys of `queued` and of the watch, by shard.
    fn keys_by_shard(
        &self,
        db: u8,
        queued: &[(&Command, Vec<Bytes>)],
        watching: Option<&WatchState>,
    ) -> Result<KeysByShard, Reply> {
        for (cmd, args) in queued {
            let touches_data = cmd.is_write() || cmd.spec.has_flag("readonly");
            if matches!(self.route(cmd, args), ShardSet::All) && touches_data {
                return Err(Reply::Error(format!(
                    "ERR {} cannot run in a cross-shard transaction (it reads or writes every shard)",
                    cmd.spec.name.to_ascii_uppercase()
                )));
            }
        }
        let watched = watching.map(|w| w.keys()).unwrap_or_default();
        let mut keys: BTreeMap<ShardId, BTreeSet<(u8, Bytes)>> = BTreeMap::new();
        for (db, key) in self
            .queued_keys(db, queued)
            .into_iter()
            .chain(watched.iter().cloned())
        {
            let shard = self.shards.shard_of_key(&key);
            keys.entry(shard).or_default().insert((db, key));
        }
        Ok(keys
            .into_iter()
            .map(|(shard, set)| (shard, set.into_iter().collect()))
            .collect())
    }

    /// One try: prepare, check the watch, run, commit.
    async fn attempt(
        &self,
        session: &mut Session,
        queued: &[(&Command, Vec<Bytes>)],
        watching: Option<&WatchState>,
        keys: &KeysByShard,
    ) -> Result<Reply, Failed> {
        let txn = TxnId {
            node: self.groups().node_id(),
            seq: self.cross_shard.seq.fetch_add(1, Ordering::Relaxed),
        };
        let decider = *keys.keys().next().expect("a transaction names keys");
        let now_ms = clock::now_ms();
        let deadline_ms = now_ms + DEADLINE.as_millis() as u64;
        let shards: Vec<ShardId> = keys.keys().copied().collect();
        let prepares: Vec<(ShardId, Entry)> = keys
            .iter()
            .map(|(shard, keys)| {
                let op = CrossShardOp::Prepare {
                    txn,
                    decider,
                    deadline_ms,
                    keys: keys.clone(),
                };
                (*shard, Entry::new(0, now_ms, EntryOp::CrossShard(op)))
            })
            .collect();
        let answers = join_in_order(
            prepares
                .iter()
                .map(|(shard, entry)| self.propose_at_leader(*shard, entry)),
        )
        .await;
        let mut values: Vec<((u8, Bytes), KeyValue)> = Vec::new();
        let mut failure = None;
        for ((_, keys), answer) in keys.iter().zip(answers) {
            let decoded = bulk_of(answer).and_then(|raw| {
                decode_values(raw)
                    .filter(|v| v.len() == keys.len())
                    .ok_or_else(|| "ERR malformed prepare answer".to_string())
            });
            match decoded {
                Ok(v) => values.extend(keys.iter().cloned().zip(v)),
                Err(e) => failure = Some(e),
            }
        }
        let abort = CrossShardOp::Abort {
            txn,
            decider,
            deadline_ms,
        };
        if let Some(e) = failure {
            self.send_step(&shards, &abort).await;
            return Err(if e == apply::LOCKED {
                Failed::Locked
            } else {
                Failed::Reply(Reply::Error(e))
            });
        }
        self.shared.crash_if_at(CrashPoint::CrossShardPrepared);
        if let Some(w) = watching {
            if self.watch_changed(w, &values, now_ms) {
                self.send_step(&shards, &abort).await;
                return Err(Failed::Reply(Reply::NullArray));
            }
        }
        let (replies, writes) = match self.run_on(session, queued, &values, now_ms) {
            Ok(done) => done,
            Err(e) => {
                self.send_step(&shards, &abort).await;
                return Err(Failed::Reply(Reply::Error(e)));
            }
        };
        if writes.is_empty() {
            // Nothing to write: the locks go after the reply.
            self.finish_later(Finish {
                shards,
                step: abort,
                then: None,
            })
            .await;
            return Ok(Reply::Array(replies));
        }
        let commit = CrossShardOp::Commit {
            txn,
            decider,
            deadline_ms,
            writes,
        };
        let decided = self
            .propose_at_leader(
                decider,
                &Entry::new(0, clock::now_ms(), EntryOp::CrossShard(commit.clone())),
            )
            .await;
        match error_text(&decided) {
            Some(e) if e == apply::ABORTED => {
                self.send_step(&shards, &abort).await;
                Err(Failed::Reply(Reply::Error(e)))
            }
            Some(e) => {
                tracing::warn!(%txn, error = %e, "cross-shard commit: the decider's answer is unknown");
                Err(Failed::Reply(Reply::Error(format!(
                    "TRYAGAIN the cross-shard transaction's outcome is not known yet: {e}"
                ))))
            }
            _ => {
                self.shared.crash_if_at(CrashPoint::CrossShardDecided);
                // Decided: the other shards apply it after the reply (until they do, their
                // keys stay locked, so no read misses it). The decider keeps the commit
                // until every shard has applied it; one that missed it asks the decider
                // later (`recovery.rs`).
                self.finish_later(Finish {
                    shards: shards[1..].to_vec(),
                    step: commit,
                    then: Some((decider, CrossShardOp::Forget { txn, decider })),
                })
                .await;
                Ok(Reply::Array(replies))
            }
        }
    }

    /// A settled transaction's last steps (see `Finish`).
    async fn take_steps(&self, f: Finish) {
        if self.send_step(&f.shards, &f.step).await {
            if let Some((shard, then)) = f.then {
                self.send_step(&[shard], &then).await;
            }
        }
    }

    /// Queues a transaction's last steps for after the reply, or takes them now when too
    /// many are under way.
    async fn finish_later(&self, f: Finish) {
        if let Some(f) = self.cross_shard.finish(f) {
            self.take_steps(f).await;
        }
    }

    /// Proposes `op` at each shard's leader; a shard that cannot be reached settles it
    /// later itself (`recovery.rs`). Whether every shard applied it.
    async fn send_step(&self, shards: &[ShardId], op: &CrossShardOp) -> bool {
        let entry = Entry::new(0, clock::now_ms(), EntryOp::CrossShard(op.clone()));
        let answers =
            join_in_order(shards.iter().map(|s| self.propose_at_leader(*s, &entry))).await;
        let mut all = true;
        for (shard, answer) in shards.iter().zip(answers) {
            if let Some(e) = error_text(&answer) {
                all = false;
                tracing::debug!(txn = %op.txn(), shard = shard.0, error = %e, "cross-shard step not applied");
            }
        }
        all
    }

    /// Whether a watched key changed since WATCH: by its revision at its leader (a key
    /// watched while another node led it), or by this node's marks (a key led here, where
    /// the Prepare was applied after every earlier write).
    fn watch_changed(
        &self,
        w: &WatchState,
        values: &[((u8, Bytes), KeyValue)],
        now_ms: u64,
    ) -> bool {
        if w.is_dirty() || w.is_changed_elsewhere() {
            return true;
        }
        w.keys().iter().any(|(db, key)| {
            let Some(now) = values.iter().find(|((d, k), _)| d == db && k == key) else {
                return true;
            };
            let now = &now.1;
            match w.baseline(*db, key) {
                Some(b) => b.revision != now.revision || (now.expired && !b.expired_when_watched),
                None => {
                    let led_here = self.groups().is_leader(self.shards.shard_of_key(key));
                    let expired =
                        now.expired || (now.expire_at_ms != 0 && now.expire_at_ms <= now_ms);
                    !led_here || (expired && !w.expired_at_watch(*db, key))
                }
            }
        })
    }

    /// Runs the commands against a speculative keyspace holding `values`: their replies and
    /// each changed key's final value as a write of its shard.
    fn run_on(
        &self,
        session: &mut Session,
        queued: &[(&Command, Vec<Bytes>)],
        values: &[((u8, Bytes), KeyValue)],
        now_ms: u64,
    ) -> Result<(Vec<Reply>, Vec<ShardWrite>), String> {
        let spec = self.shared.keyspace.speculate();
        {
            let mut seed = spec.txn(now_ms, u64::MAX, STAGED_VERSIONS);
            for ((db, key), value) in values {
                apply_command(self, &mut seed, *db, &value.write(key)).map_err(|e| {
                    format!("ERR cannot stage {}: {e}", String::from_utf8_lossy(key))
                })?;
            }
            seed.commit().map_err(|e| format!("ERR {e}"))?;
        }
        let mut changed = Vec::new();
        // Its speculative keyspace holds only the staged keys: a script may touch none other.
        let (replies, _) = self.speculate(&spec, session, queued, now_ms, &[], Some(&mut changed));
        let mut writes = Vec::new();
        let mut seen = BTreeSet::new();
        for (db, key) in changed {
            if !seen.insert((db, key.clone())) {
                continue;
            }
            let Some((_, before)) = values.iter().find(|((d, k), _)| *d == db && *k == key) else {
                return Err(format!(
                    "ERR the transaction writes a key it does not name ({}): not allowed across shards",
                    String::from_utf8_lossy(&key)
                ));
            };
            let after = read_value(self, &spec, db, &key, now_ms)?;
            if !after.same_value(before) {
                writes.push(ShardWrite {
                    shard: self.shards.shard_of_key(&key),
                    db,
                    args: after.write(&key),
                });
            }
        }
        Ok((replies, writes))
    }
}
