//! openraft's state machine for one shard group, over an [`Applier`] (the node's keyspace).
//!
//! The group's apply state ([`GroupState`]: last applied log id, membership, next
//! collection version) is written by the applier in the same atomic batch as each entry's
//! effects, so after a crash the shard knows exactly which entries its data contains. Apply
//! checks that indexes follow each other without a gap.
//!
//! Snapshots are not copies: a [`Checkpoint`] pins the engine's state (already made
//! durable) and reads a group's records from it page by page when a follower needs them,
//! so building one costs no I/O of its own and sending one never holds the shard in memory.
//! Installing replaces the group's records (delete-range, then the pages) and flushes.

use std::io;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::{FutureExt, StreamExt};
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::type_config::alias::{SnapshotMetaOf, SnapshotOf, StoredMembershipOf};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder};
use parking_lot::Mutex;

use super::types::{self, Applied, LogId, TypeConfig};
use super::Entry;
use crate::blocking_io;

/// A Raft group's id: 0 is the metadata group, shard `i` is group `i + 1`.
pub type GroupId = u32;

/// Collection versions are `group << VERSION_GROUP_SHIFT | counter`, unique across groups.
const VERSION_GROUP_SHIFT: u32 = 48;
const STATE_FORMAT_VERSION: u8 = 1;

/// What a group has applied, stored with the effects of its last applied entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupState {
    pub applied: Option<LogId>,
    /// Shared and kept encoded: every applied entry copies and writes the state, and the
    /// membership changes only with membership entries.
    membership: Arc<Membership>,
    /// The counter of the next collection version this group hands out.
    pub next_version: u64,
}

/// A group's last membership and its stored form (`membership log id? | membership`).
#[derive(Debug, PartialEq, Eq)]
struct Membership {
    stored: StoredMembershipOf<TypeConfig>,
    encoded: Bytes,
}

impl Membership {
    fn new(stored: StoredMembershipOf<TypeConfig>) -> Membership {
        let mut out = BytesMut::with_capacity(64);
        types::put_log_id(&mut out, stored.log_id().as_ref());
        types::encode_membership(&mut out, stored.membership());
        Membership {
            stored,
            encoded: out.freeze(),
        }
    }
}

impl Default for Membership {
    fn default() -> Self {
        Membership::new(StoredMembershipOf::<TypeConfig>::default())
    }
}

impl GroupState {
    /// The revision stored on keys changed by the entry at `index` of `group`: increasing
    /// within a group, unique across groups (WATCH compares revisions for equality).
    pub fn revision(group: GroupId, index: u64) -> u64 {
        (index << 16) | u64::from(group & 0xffff)
    }

    /// The log index a revision was made at (see `revision`).
    pub fn index_of(revision: u64) -> u64 {
        revision >> 16
    }

    /// The first collection version the next entry of `group` may use.
    pub fn first_version(&self, group: GroupId) -> u64 {
        (u64::from(group) << VERSION_GROUP_SHIFT) | self.next_version
    }

    pub fn new(
        applied: Option<LogId>,
        membership: StoredMembershipOf<TypeConfig>,
        next_version: u64,
    ) -> GroupState {
        GroupState {
            applied,
            membership: Arc::new(Membership::new(membership)),
            next_version,
        }
    }

    /// The group's last membership.
    pub fn membership(&self) -> &StoredMembershipOf<TypeConfig> {
        &self.membership.stored
    }

    pub fn set_membership(&mut self, membership: StoredMembershipOf<TypeConfig>) {
        self.membership = Arc::new(Membership::new(membership));
    }

    /// Format: `version:u8 | next_version:u64 | applied? | membership log id? | membership`
    /// (a log id as `present:u8 | term | leader | index`, the membership as in `types.rs`).
    pub fn encode(&self) -> Bytes {
        let encoded = &self.membership.encoded;
        let mut out = BytesMut::with_capacity(1 + 8 + 25 + encoded.len());
        out.put_u8(STATE_FORMAT_VERSION);
        out.put_u64(self.next_version);
        types::put_log_id(&mut out, self.applied.as_ref());
        out.extend_from_slice(encoded);
        out.freeze()
    }

    pub fn decode(mut raw: Bytes) -> Result<GroupState, types::CodecError> {
        types::check_version_of(&mut raw, STATE_FORMAT_VERSION)?;
        let next_version = types::get_u64(&mut raw)?;
        let applied = types::get_log_id(&mut raw)?;
        let membership_log = types::get_log_id(&mut raw)?;
        let membership = types::decode_membership(&mut raw)?;
        Ok(GroupState::new(
            applied,
            StoredMembershipOf::<TypeConfig>::new(membership_log, membership),
            next_version,
        ))
    }
}

/// Reads a group's records in key order, a page at a time.
pub trait SnapshotReader: Send {
    /// The next page of `(key, value)` pairs, `None` at the end.
    fn next_page(&mut self) -> io::Result<Option<Vec<(Bytes, Bytes)>>>;

    /// The durable file the pages come from, if any: an install interrupted by a crash
    /// is finished from it at the next start.
    fn source(&self) -> Option<&std::path::Path> {
        None
    }
}

/// The engine's state at one moment, durable, from which any group's snapshot can be read.
pub trait Checkpoint: Send + Sync {
    /// The group's apply state in this checkpoint (none if it has applied nothing).
    fn state(&self, group: GroupId) -> io::Result<Option<GroupState>>;
    /// The group's records in this checkpoint (its slots' data and its apply state).
    fn reader(&self, group: GroupId) -> Box<dyn SnapshotReader>;
}

/// What the state machines of a node apply entries to.
pub trait Applier: Send + Sync + 'static {
    /// Applies a write entry of `group` at `revision`. `state` is the group's apply state
    /// after this entry; the applier advances `next_version` by the versions it used and
    /// writes the state in the same atomic batch as the entry's effects. A command that
    /// fails leaves no effect (its reply is an error). `Err` is a storage failure.
    fn apply(
        &self,
        group: GroupId,
        entry: &Entry,
        revision: u64,
        state: &mut GroupState,
    ) -> io::Result<Applied>;
    /// Whether `entry` may be applied in a run with its neighbours ([`Applier::apply_run`]).
    fn batchable(&self, group: GroupId, entry: &Entry) -> bool;
    /// Applies consecutive batchable write entries of `group` (each with its revision) as
    /// one atomic batch with the apply state after the last: the same effects and replies
    /// as applying them one by one.
    fn apply_run(
        &self,
        group: GroupId,
        run: &[(&Entry, u64)],
        state: &mut GroupState,
    ) -> io::Result<Vec<Applied>>;
    /// Writes the group's apply state alone (blank and membership entries).
    fn save_state(&self, group: GroupId, state: &GroupState) -> io::Result<()>;
    /// The group's stored apply state.
    fn load_state(&self, group: GroupId) -> io::Result<Option<GroupState>>;
    /// Pins the current state of every group and makes it durable.
    fn checkpoint(&self) -> io::Result<Arc<dyn Checkpoint>>;
    /// Whether applying now would wait for the storage to catch up (an engine stall).
    fn write_stalled(&self) -> bool {
        false
    }
    /// Deletes the group's records (data and apply state) and makes that durable: the
    /// node no longer holds a replica of it.
    fn drop_group(&self, group: GroupId) -> io::Result<()>;
    /// Replaces the group's records with a snapshot's and makes them durable.
    fn install(&self, group: GroupId, data: &mut dyn SnapshotReader) -> io::Result<()>;
}

/// The most entries applied as one batch: each entry's rollback point copies what the
/// run has written so far.
const RUN_MAX: usize = 32;

/// A snapshot's data: a reader of the group's records.
pub struct ShardSnapshot(pub Box<dyn SnapshotReader>);

impl std::fmt::Debug for ShardSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ShardSnapshot")
    }
}

/// The snapshot a group last built: its meta and the checkpoint it reads from.
type Current = Option<(SnapshotMetaOf<TypeConfig>, Arc<dyn Checkpoint>)>;

/// One group's state machine.
pub struct ShardStateMachine {
    group: GroupId,
    applier: Arc<dyn Applier>,
    state: GroupState,
    current: Arc<Mutex<Current>>,
    /// A checkpoint the node made for every group (see `Groups::checkpoint`), used by the
    /// next snapshot build instead of making a new one.
    prepared: Arc<Mutex<Option<Arc<dyn Checkpoint>>>>,
    /// Whether apply refuses an index that does not follow the last applied one.
    contiguous: bool,
}

impl ShardStateMachine {
    pub fn open(group: GroupId, applier: Arc<dyn Applier>) -> io::Result<ShardStateMachine> {
        let state = applier.load_state(group)?.unwrap_or_default();
        Ok(ShardStateMachine {
            group,
            applier,
            state,
            current: Default::default(),
            prepared: Default::default(),
            contiguous: true,
        })
    }

    /// Lets apply skip indexes. Only openraft's storage suite needs this: it applies
    /// entries 3 and then 5 to check what a state machine reports.
    pub fn allow_gaps(mut self) -> ShardStateMachine {
        self.contiguous = false;
        self
    }

    /// Where the node leaves a checkpoint for this group's next snapshot.
    pub fn prepared(&self) -> Arc<Mutex<Option<Arc<dyn Checkpoint>>>> {
        self.prepared.clone()
    }

    pub fn state(&self) -> &GroupState {
        &self.state
    }

    /// Applies one entry (openraft's apply, and the node's replay at start-up).
    pub fn apply_one(&mut self, entry: &types::RaftEntry) -> io::Result<Applied> {
        self.check_follows(self.state.applied.map(|id| id.index), entry.log_id.index)?;
        let mut next = self.state.clone();
        next.applied = Some(entry.log_id);
        let reply = match &entry.payload {
            EntryPayload::Normal(write) => {
                let revision = GroupState::revision(self.group, entry.log_id.index);
                self.applier.apply(self.group, write, revision, &mut next)?
            }
            EntryPayload::Blank => {
                self.applier.save_state(self.group, &next)?;
                Applied::none()
            }
            EntryPayload::Membership(m) => {
                next.set_membership(StoredMembershipOf::<TypeConfig>::new(
                    Some(entry.log_id),
                    m.clone(),
                ));
                self.applier.save_state(self.group, &next)?;
                Applied::none()
            }
        };
        self.state = next;
        Ok(reply)
    }

    /// Applies `entries` in order: runs of batchable writes together, the rest one by one.
    pub fn apply_all(&mut self, entries: &[types::RaftEntry]) -> io::Result<Vec<Applied>> {
        let mut replies = Vec::with_capacity(entries.len());
        let mut rest = entries;
        while let Some(first) = rest.first() {
            let len = rest
                .iter()
                .take(RUN_MAX)
                .take_while(|e| self.batchable(e))
                .count();
            if len < 2 {
                replies.push(self.apply_one(first)?);
                rest = &rest[1..];
                continue;
            }
            let (run, after) = rest.split_at(len);
            replies.extend(self.apply_run(run)?);
            rest = after;
        }
        Ok(replies)
    }

    fn batchable(&self, entry: &types::RaftEntry) -> bool {
        match &entry.payload {
            EntryPayload::Normal(write) => self.applier.batchable(self.group, write),
            _ => false,
        }
    }

    /// Refuses an entry at `index` that does not follow the one at `after` (see
    /// `allow_gaps`).
    fn check_follows(&self, after: Option<u64>, index: u64) -> io::Result<()> {
        let expected = after.map_or(0, |i| i + 1);
        let fits = match self.contiguous {
            true => index == expected,
            false => index >= expected,
        };
        match fits {
            true => Ok(()),
            false => Err(io::Error::other(format!(
                "group {}: applying index {index} after {after:?}",
                self.group
            ))),
        }
    }

    /// Applies a run of batchable write entries as one batch.
    fn apply_run(&mut self, run: &[types::RaftEntry]) -> io::Result<Vec<Applied>> {
        let mut after = self.state.applied.map(|id| id.index);
        let mut writes = Vec::with_capacity(run.len());
        for entry in run {
            self.check_follows(after, entry.log_id.index)?;
            let EntryPayload::Normal(write) = &entry.payload else {
                return Err(io::Error::other("a run holds only write entries"));
            };
            after = Some(entry.log_id.index);
            writes.push((write, GroupState::revision(self.group, entry.log_id.index)));
        }
        let mut next = self.state.clone();
        next.applied = run.last().map(|e| e.log_id);
        let replies = self.applier.apply_run(self.group, &writes, &mut next)?;
        self.state = next;
        Ok(replies)
    }
}

impl RaftStateMachine<TypeConfig> for ShardStateMachine {
    type SnapshotData = ShardSnapshot;
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId>, StoredMembershipOf<TypeConfig>), io::Error> {
        Ok((self.state.applied, self.state.membership().clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: futures_util::Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>>
            + Unpin
            + OptionalSend,
    {
        let mut batch = Vec::new();
        let mut responders = Vec::new();
        while let Some(item) = entries.next().await {
            // The entries committed together are applied together.
            let mut next = Some(item);
            while let Some(item) = next {
                let (entry, responder) = item?;
                batch.push(entry);
                responders.push(responder);
                next = match batch.len() < RUN_MAX {
                    true => entries.next().now_or_never().flatten(),
                    false => None,
                };
            }
            let replies = if self.applier.write_stalled() {
                blocking_io::run(|| self.apply_all(&batch))?
            } else {
                self.apply_all(&batch)?
            };
            batch.clear();
            for (responder, reply) in responders.drain(..).zip(replies) {
                if let Some(responder) = responder {
                    responder.send(reply);
                }
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        SnapshotBuilder {
            group: self.group,
            applier: self.applier.clone(),
            current: self.current.clone(),
            prepared: self.prepared.lock().take(),
        }
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMetaOf<TypeConfig>,
        mut snapshot: ShardSnapshot,
    ) -> Result<(), io::Error> {
        let applier = &self.applier;
        blocking_io::run(|| applier.install(self.group, &mut *snapshot.0))?;
        let state = self.applier.load_state(self.group)?.unwrap_or_default();
        if state.applied != meta.last_log_id {
            return Err(io::Error::other(format!(
                "group {}: snapshot data holds {:?}, its meta says {:?}",
                self.group, state.applied, meta.last_log_id
            )));
        }
        self.state = state;
        // What was installed is the newest snapshot this node can serve.
        let checkpoint = blocking_io::run(|| self.applier.checkpoint())?;
        *self.current.lock() = Some((meta.clone(), checkpoint));
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<SnapshotOf<TypeConfig, ShardSnapshot>>, io::Error> {
        let current = self.current.lock().clone();
        Ok(current.map(
            |(meta, checkpoint)| SnapshotOf::<TypeConfig, ShardSnapshot> {
                meta,
                snapshot: ShardSnapshot(checkpoint.reader(self.group)),
            },
        ))
    }
}

/// Builds a group's snapshot from a checkpoint: the one the node prepared, or a new one.
pub struct SnapshotBuilder {
    group: GroupId,
    applier: Arc<dyn Applier>,
    current: Arc<Mutex<Current>>,
    prepared: Option<Arc<dyn Checkpoint>>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = ShardSnapshot;

    async fn build_snapshot(&mut self) -> Result<SnapshotOf<TypeConfig, ShardSnapshot>, io::Error> {
        let checkpoint = match self.prepared.take() {
            Some(c) => c,
            None => blocking_io::run(|| self.applier.checkpoint())?,
        };
        let state = checkpoint.state(self.group)?.unwrap_or_default();
        let meta = SnapshotMetaOf::<TypeConfig> {
            last_log_id: state.applied,
            last_membership: state.membership().clone(),
        };
        *self.current.lock() = Some((meta.clone(), checkpoint.clone()));
        Ok(SnapshotOf::<TypeConfig, ShardSnapshot> {
            meta,
            snapshot: ShardSnapshot(checkpoint.reader(self.group)),
        })
    }
}

/// Decodes a stored group state, as an I/O error when it is corrupt.
pub fn decode_state(raw: Bytes) -> io::Result<GroupState> {
    GroupState::decode(raw).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    #[test]
    fn group_state_round_trips_and_rejects_cuts() {
        let members = BTreeMap::from([(
            7u64,
            types::NodeInfo {
                client_addr: "127.0.0.1:6379".into(),
                cluster_addr: "127.0.0.1:16379".into(),
            },
        )]);
        let membership = openraft::Membership::new(vec![BTreeSet::from([7u64])], members).unwrap();
        let state = GroupState::new(
            Some(types::log_id(3, 7, 41)),
            StoredMembershipOf::<TypeConfig>::new(Some(types::log_id(1, 7, 0)), membership),
            12,
        );
        let raw = state.encode();
        assert_eq!(GroupState::decode(raw.clone()).unwrap(), state);
        for cut in 0..raw.len() {
            assert!(GroupState::decode(raw.slice(..cut)).is_err());
        }
        assert_eq!(
            GroupState::decode(GroupState::default().encode()).unwrap(),
            GroupState::default()
        );
    }

    #[test]
    fn revisions_and_versions_never_collide_across_groups() {
        assert_ne!(GroupState::revision(1, 5), GroupState::revision(2, 5));
        assert!(GroupState::revision(1, 6) > GroupState::revision(1, 5));
        let s = GroupState {
            next_version: 3,
            ..Default::default()
        };
        assert_ne!(s.first_version(1), s.first_version(2));
    }
}
