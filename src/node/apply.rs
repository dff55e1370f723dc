//! The node as the Raft groups' state machine: applying entries to the keyspace with each
//! group's apply state in the same batch, checkpoints of the engine, snapshot install.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use bytes::Bytes;

use super::apply_run;
use super::cross_shard::{self, locked_key};
use super::{watching, Node};
use crate::cluster::{ClusterMap, ShardId, Slot, TxnId};
use crate::commands::notify::{self, Event};
use crate::commands::{CmdError, Command};
use crate::keyspace::{Keyspace, Txn};
use crate::protocol::Reply;
use crate::raft::state_machine::decode_state;
use crate::raft::{
    Applied, Applier, Checkpoint, Entry, EntryOp, GroupId, GroupState, MapEpoch, SnapshotReader,
};
use crate::storage::{self, KeyRange, WriteBatch};

/// Pairs per page of a snapshot read.
const SNAPSHOT_PAGE: usize = 1024;

/// The name of a group's apply-state system record.
pub(super) fn state_record(group: GroupId) -> String {
    format!("raft/{group}")
}

/// Writes `batch` with the group's apply state in it, atomically.
fn write_with_state(
    node: &Node,
    mut batch: WriteBatch,
    group: GroupId,
    state: &GroupState,
) -> io::Result<()> {
    batch.put(
        crate::keyspace::encoding::system_key(&state_record(group)),
        state.encode(),
    );
    node.shared
        .keyspace
        .engine()
        .write(batch)
        .map_err(storage_error)
}

pub(super) fn storage_error(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// The shard a data group serves.
pub(super) fn shard_of_group(group: GroupId) -> ShardId {
    ShardId(group.saturating_sub(1) as u16)
}

/// The system record holding the cluster map (the metadata group's data).
pub(super) const META_RECORD: &str = "meta";

/// The range holding exactly one system record.
fn record_range(name: &str) -> KeyRange {
    let key = crate::keyspace::encoding::system_key(name);
    let mut end = key.to_vec();
    end.push(0);
    KeyRange::half_open(key, end)
}

/// The key ranges of a group's data and its apply state, in key order.
pub(super) fn group_ranges(keyspace: &Keyspace, node: &Node, group: GroupId) -> Vec<KeyRange> {
    if group == 0 {
        // In key order: "meta" sorts before "raft/0".
        return vec![record_range(META_RECORD), record_range(&state_record(0))];
    }
    let (first, last) = node.shards.slot_range(shard_of_group(group));
    let mut ranges = keyspace.slot_ranges(Slot(first.0), Slot(last.0));
    ranges.push(record_range(&state_record(group)));
    // "raft/<group>" sorts before "xshard/".
    ranges.push(Keyspace::cross_shard_range(group));
    ranges
}

/// A batch deleting every record of `group` (its data and apply state).
pub(super) fn clear_group(node: &Node, group: GroupId) -> WriteBatch {
    let mut clear = WriteBatch::new();
    for range in group_ranges(&node.shared.keyspace, node, group) {
        if let (std::ops::Bound::Included(s), std::ops::Bound::Excluded(e)) =
            (range.start, range.end)
        {
            clear.delete_range(s, e);
        }
    }
    clear
}

/// Moves the key counters by the keys of `group`'s slots (see `Keyspace::count_slots`).
pub(super) fn count_group(node: &Node, group: GroupId, sign: i64) -> io::Result<()> {
    if group == 0 {
        return Ok(());
    }
    let (first, last) = node.shards.slot_range(shard_of_group(group));
    node.shared
        .keyspace
        .count_slots(None, Slot(first.0), Slot(last.0), sign)
        .map_err(storage_error)
}

/// Drops a shard's data and apply state from this node (its replica moved elsewhere).
fn drop_group_data(node: &Node, group: GroupId) -> io::Result<()> {
    count_group(node, group, -1)?;
    let engine = node.shared.keyspace.engine();
    engine
        .write(clear_group(node, group))
        .map_err(storage_error)?;
    engine.flush().map_err(storage_error)
}

/// FLUSHDB (`db`) or FLUSHALL (`None`) of one shard in a cluster: its slots' data goes,
/// with the group's apply state in the same batch.
fn flush_group_slots(
    node: &Node,
    group: GroupId,
    db: Option<u8>,
    state: &GroupState,
) -> io::Result<Reply> {
    let (first, last) = node.shards.slot_range(shard_of_group(group));
    let mut batch = WriteBatch::new();
    node.shared
        .keyspace
        .flush_slots(db, Slot(first.0), Slot(last.0), &mut batch)
        .map_err(storage_error)?;
    write_with_state(node, batch, group, state)?;
    node.shared
        .changes_since_save
        .fetch_add(1, Ordering::Relaxed);
    Ok(Reply::OK)
}

/// The cluster map as stored on this node (empty before the metadata group applied any).
pub fn load_map(keyspace: &Keyspace) -> io::Result<ClusterMap> {
    match keyspace.get_system(META_RECORD).map_err(storage_error)? {
        Some(raw) => ClusterMap::decode(raw)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
        None => Ok(ClusterMap::default()),
    }
}

/// Gives the groups access to the node without owning it (the node owns the groups).
pub struct NodeApplier(pub Weak<Node>);

impl NodeApplier {
    fn node(&self) -> io::Result<Arc<Node>> {
        self.0
            .upgrade()
            .ok_or_else(|| io::Error::other("the node is shutting down"))
    }
}

impl Applier for NodeApplier {
    fn apply(
        &self,
        group: GroupId,
        entry: &Entry,
        revision: u64,
        state: &mut GroupState,
    ) -> io::Result<Applied> {
        let node = self.node()?;
        // Entries arrive from peers: a database this node does not have changes nothing
        // (every replica refuses it the same way).
        if entry.db >= node.shared.keyspace.databases() {
            return Ok(Applied::new(no_database(entry.db).into_reply()));
        }
        let mut txn = node
            .shared
            .keyspace
            .txn(entry.now_ms, revision, state.first_version(group));
        let watched = !node.shared.watches.is_idle();
        let tracked = node.tracks_changes();
        let notify = node.notifies(group);
        let logged = node.keeps_events(group);
        if watched || tracked || notify || logged {
            txn.track_changes();
        }
        let mut events = (notify || logged).then(Vec::new);
        let mut lock_change = None;
        let reply = match &entry.op {
            EntryOp::Command(args) if locked_key(&node, entry.db, args, None) => {
                return Ok(Applied::new(Reply::error(cross_shard::LOCKED)));
            }
            EntryOp::Command(args) => match apply_command(&node, &mut txn, entry.db, args) {
                Ok(reply) => {
                    if let Some(events) = &mut events {
                        events.extend(notify::events_of(args, txn.key_changes_since(0)));
                    }
                    reply
                }
                // A failed command changes nothing; a replay fails it the same way.
                Err(e) => return Ok(Applied::new(e.into_reply())),
            },
            EntryOp::Expire(keys) => match apply_expire(&mut txn, entry.db, keys) {
                Ok(removed) => {
                    if let Some(events) = &mut events {
                        events.extend(notify::events_of(&[], txn.key_changes_since(0)));
                    }
                    node.shared.stats.expired_keys.add(removed);
                    Reply::Integer(removed as i64)
                }
                Err(e) => return Ok(Applied::new(e.into_reply())),
            },
            EntryOp::Batch(commands) => {
                let commands = commands.iter().map(|a| (entry.db, &a[..]));
                apply_each(&node, &mut txn, commands, events.as_mut(), None)
            }
            EntryOp::Transaction(commands) => {
                let commands = commands.iter().map(|(db, a)| (*db, &a[..]));
                apply_each(&node, &mut txn, commands, events.as_mut(), None)
            }
            EntryOp::CrossShard(op) => {
                match cross_shard::apply_step(&node, group, entry.now_ms, op, &mut txn) {
                    Ok(step) => {
                        lock_change = step.locks;
                        if !step.writes.is_empty() {
                            let owner = Some(op.txn());
                            let writes = step.writes.iter().copied();
                            apply_each(&node, &mut txn, writes, events.as_mut(), owner);
                        }
                        step.reply
                    }
                    // Changes nothing; a replay fails it the same way.
                    Err(e) => return Ok(Applied::new(Reply::Error(format!("ERR {e}")))),
                }
            }
            EntryOp::FlushSlots { all_dbs } => {
                drop(txn);
                let db = (!all_dbs).then_some(entry.db);
                let (first, last) = node.shards.slot_range(shard_of_group(group));
                let touched = watched.then(|| watching::before_flush(&node, db, first.0, last.0));
                let reply = flush_group_slots(&node, group, db, state)?;
                if let Some(touched) = touched {
                    watching::after_commit(&node, touched);
                }
                node.invalidate_everything();
                return Ok(Applied::new(reply));
            }
            EntryOp::Map(op) => {
                let mut meta = node.map.read().clone();
                meta.apply(op);
                txn.put_system(META_RECORD, meta.encode());
                let epoch = meta.epoch;
                state.next_version += txn.versions_taken();
                txn.put_system(&state_record(group), state.encode());
                txn.commit().map_err(storage_error)?;
                node.install_map(meta);
                return Ok(Applied::new(MapEpoch(epoch)));
            }
        };
        let kept_events = logged && events.as_ref().is_some_and(|e| !e.is_empty());
        if logged {
            let index = GroupState::index_of(revision);
            let kept = events.as_deref().unwrap_or(&[]);
            node.log_events(&mut txn, group, index, kept);
        }
        let expired = txn.expired_removed();
        state.next_version += txn.versions_taken();
        txn.put_system(&state_record(group), state.encode());
        let changes = txn.take_changes();
        let touched = watched.then(|| watching::before_commit(&node, &changes));
        txn.commit().map_err(storage_error)?;
        if let Some(change) = lock_change {
            node.cross_shard.locks.apply(change);
        }
        if let Some(touched) = touched {
            watching::after_commit(&node, touched);
        }
        if tracked {
            node.invalidate_changes(&changes, entry.origin_client_on(node.groups().node_id()));
        }
        if kept_events {
            node.shared.blocking.wake_readers(group);
        }
        if let Some(events) = events.filter(|_| notify) {
            node.send_events(events);
        }
        node.shared.stats.expired_keys.add(expired);
        node.shared
            .changes_since_save
            .fetch_add(1, Ordering::Relaxed);
        wake_blocked_by(&node, group, entry);
        Ok(Applied::new(reply))
    }

    fn batchable(&self, group: GroupId, entry: &Entry) -> bool {
        self.0
            .upgrade()
            .is_some_and(|node| apply_run::batchable(&node, group, entry))
    }

    fn apply_run(
        &self,
        group: GroupId,
        run: &[(&Entry, u64)],
        state: &mut GroupState,
    ) -> io::Result<Vec<Applied>> {
        apply_run::apply_run(&*self.node()?, group, run, state)
    }

    fn save_state(&self, group: GroupId, state: &GroupState) -> io::Result<()> {
        write_with_state(&*self.node()?, WriteBatch::new(), group, state)
    }

    fn load_state(&self, group: GroupId) -> io::Result<Option<GroupState>> {
        let node = self.node()?;
        let raw = node
            .shared
            .keyspace
            .get_system(&state_record(group))
            .map_err(storage_error)?;
        raw.map(decode_state).transpose()
    }

    fn write_stalled(&self) -> bool {
        self.0
            .upgrade()
            .is_some_and(|node| node.shared.keyspace.engine().write_stalled())
    }

    fn checkpoint(&self) -> io::Result<Arc<dyn Checkpoint>> {
        let node = self.node()?;
        let engine = node.shared.keyspace.engine();
        let snapshot = engine.snapshot();
        // Everything the snapshot sees was written before the flush starts.
        engine.flush().map_err(storage_error)?;
        Ok(Arc::new(EngineCheckpoint {
            snapshot: Arc::from(snapshot),
            node: self.0.clone(),
        }))
    }

    fn drop_group(&self, group: GroupId) -> io::Result<()> {
        let node = self.node()?;
        drop_group_data(&node, group)?;
        node.cross_shard.locks.load(Some(group), Vec::new());
        node.forget_events(group)?;
        node.invalidate_everything();
        Ok(())
    }

    fn install(&self, group: GroupId, data: &mut dyn SnapshotReader) -> io::Result<()> {
        super::install::install(&*self.node()?, group, data)
    }
}

/// A pinned, durable engine state.
struct EngineCheckpoint {
    snapshot: Arc<dyn storage::Snapshot>,
    node: Weak<Node>,
}

impl Checkpoint for EngineCheckpoint {
    fn state(&self, group: GroupId) -> io::Result<Option<GroupState>> {
        let key = crate::keyspace::encoding::system_key(&state_record(group));
        let raw = self.snapshot.get(&key).map_err(storage_error)?;
        raw.map(decode_state).transpose()
    }

    fn reader(&self, group: GroupId) -> Box<dyn SnapshotReader> {
        let mut ranges = match self.node.upgrade() {
            Some(node) => group_ranges(&node.shared.keyspace, &node, group),
            None => Vec::new(),
        };
        if group != 0 {
            // The database map goes with every shard (a lone node's SWAPDB before others
            // joined; SWAPDB is refused in a cluster, so every sender has the same map).
            // In key order: "dbmap" sorts before the apply state's "raft/<group>" (the
            // last range but one, before the cross-shard records).
            let at = ranges.len().saturating_sub(2);
            ranges.insert(at, record_range(Keyspace::db_map_record()));
        }
        Box::new(RangeReader {
            snapshot: self.snapshot.clone(),
            ranges,
            next: 0,
            after: None,
        })
    }
}

/// Reads key ranges of a pinned snapshot page by page.
struct RangeReader {
    snapshot: Arc<dyn storage::Snapshot>,
    ranges: Vec<KeyRange>,
    /// The range being read, and the last key returned from it.
    next: usize,
    after: Option<Bytes>,
}

impl SnapshotReader for RangeReader {
    fn next_page(&mut self) -> io::Result<Option<Vec<(Bytes, Bytes)>>> {
        while let Some(range) = self.ranges.get(self.next) {
            let mut from = range.clone();
            if let Some(after) = self.after.take() {
                from.start = std::ops::Bound::Excluded(after);
            }
            let page = self
                .snapshot
                .scan(&from, false, SNAPSHOT_PAGE)
                .map_err(storage_error)?;
            if page.len() == SNAPSHOT_PAGE {
                self.after = page.last().map(|(k, _)| k.clone());
            } else {
                self.next += 1;
            }
            if !page.is_empty() {
                return Ok(Some(page));
            }
        }
        Ok(None)
    }
}

/// Wakes the clients blocked on keys an applied entry wrote.
pub(super) fn wake_blocked_by(node: &Node, group: GroupId, entry: &Entry) {
    match &entry.op {
        EntryOp::Command(args) => node.wake_blocked(entry.db, args),
        EntryOp::Batch(commands) => {
            for args in commands {
                node.wake_blocked(entry.db, args);
            }
        }
        EntryOp::Transaction(commands) => {
            for (db, args) in commands {
                node.wake_blocked(*db, args);
            }
        }
        EntryOp::CrossShard(crate::cluster::CrossShardOp::Commit { writes, .. }) => {
            let shard = shard_of_group(group);
            for w in writes.iter().filter(|w| w.shard == shard) {
                node.wake_blocked(w.db, &w.args);
            }
        }
        EntryOp::Expire(_)
        | EntryOp::Map(_)
        | EntryOp::FlushSlots { .. }
        | EntryOp::CrossShard(_) => {}
    }
}

pub(super) fn apply_command(
    node: &Node,
    txn: &mut Txn,
    db: u8,
    args: &[Bytes],
) -> Result<Reply, CmdError> {
    // A transaction's commands each name their database.
    if db >= node.shared.keyspace.databases() {
        return Err(no_database(db));
    }
    // Entries arrive from peers: an empty one names no command. (The arity is not
    // checked again: handlers propose normalised forms, GEOADD's shorter than its own.)
    let name = args.first().map_or(&b""[..], |a| &a[..]);
    match node.shared.table.get(name) {
        Some(Command {
            apply: Some(apply),
            spec,
            ..
        }) => {
            // Handlers check arity and more before proposing (HSET's pairs, normalised
            // option forms), and apply functions index by what they checked. A command a
            // faulty peer put in the log unchecked must not take the node down: its panic
            // is caught, and every replica refuses the command the same way (the caller
            // rolls back what it wrote).
            let applied =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| apply(txn, db, args)));
            applied.unwrap_or_else(|_| {
                tracing::error!(
                    command = spec.name,
                    "a log entry's command could not be applied"
                );
                Err(CmdError::msg(format!(
                    "ERR malformed '{}' command in the log entry",
                    spec.name
                )))
            })
        }
        _ => Err(CmdError::msg("ERR entry names no write command")),
    }
}

pub(super) fn no_database(db: u8) -> CmdError {
    CmdError::msg(format!(
        "ERR entry names database {db}, which this node does not have"
    ))
}

/// Applies commands in order in one transaction, each atomically: one that fails leaves
/// nothing of its own and the others' effects. Their replies, as an array.
/// A write over a key a cross-shard transaction holds (other than `owner`, whose own
/// writes these are) is refused.
pub(super) fn apply_each<'a>(
    node: &Node,
    txn: &mut Txn,
    commands: impl Iterator<Item = (u8, &'a [Bytes])>,
    mut events: Option<&mut Vec<Event>>,
    owner: Option<TxnId>,
) -> Reply {
    let mut replies = Vec::new();
    for (db, args) in commands {
        if locked_key(node, db, args, owner) {
            replies.push(Reply::error(cross_shard::LOCKED));
            continue;
        }
        let point = txn.savepoint();
        let mark = txn.key_changes_len();
        replies.push(match apply_command(node, txn, db, args) {
            Ok(reply) => {
                if let Some(events) = events.as_deref_mut() {
                    events.extend(notify::events_of(args, txn.key_changes_since(mark)));
                }
                reply
            }
            Err(e) => {
                txn.rollback(point);
                txn.forget_key_changes(mark);
                e.into_reply()
            }
        });
    }
    Reply::Array(replies)
}

pub(super) fn apply_expire(txn: &mut Txn, db: u8, keys: &[Bytes]) -> Result<u64, CmdError> {
    let mut removed = 0;
    for key in keys {
        if txn.delete_if_expired(db, key)? {
            removed += 1;
        }
    }
    Ok(removed)
}

/// The client reply in what an entry's apply answered (`NodeApplier::apply` puts one in
/// every entry but a map change).
pub(super) fn reply_of(applied: Applied) -> Reply {
    applied
        .take::<Reply>()
        .unwrap_or_else(|| Reply::error("ERR the entry's apply gave no reply"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::log::{RaftLog, Votes};
    use crate::raft::log_store::LogStore;
    use crate::raft::types::TypeConfig;
    use crate::raft::ShardStateMachine;
    use openraft::testing::log::{StoreBuilder, Suite};
    use openraft::StorageError;
    use std::path::PathBuf;
    use std::sync::atomic::AtomicU64;

    /// What one store of the suite keeps alive: its node (the state machine's applier
    /// and snapshot source) and its log's directory.
    struct Held {
        _node: Arc<Node>,
        dir: PathBuf,
    }

    impl Drop for Held {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    struct Builder(AtomicU64);

    impl StoreBuilder<TypeConfig, LogStore, ShardStateMachine, Held> for Builder {
        async fn build(
            &self,
        ) -> Result<(Held, LogStore, ShardStateMachine), StorageError<TypeConfig>> {
            let n = self.0.fetch_add(1, Ordering::Relaxed);
            let dir =
                std::env::temp_dir().join(format!("basalt-conformance-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let node = super::super::apply_run::tests::node();
            let log = Arc::new(RaftLog::open(dir.join("log"), 1 << 20).expect("log"));
            let votes = Arc::new(Votes::open(dir.join("votes")).expect("votes"));
            let applier = Arc::new(NodeApplier(Arc::downgrade(&node)));
            let machine = ShardStateMachine::open(1, applier)
                .expect("state machine")
                .allow_gaps();
            Ok((
                Held { _node: node, dir },
                LogStore::new(log, votes, 1),
                machine,
            ))
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn openraft_storage_conformance_suite_passes() {
        Suite::test_all(Builder(AtomicU64::new(0)))
            .await
            .expect("openraft's storage suite");
    }
}
