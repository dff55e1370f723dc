//! The node's Raft groups: one openraft group per shard over the node-wide log.
//!
//! Opening loads each group's apply state, replays the log tails of groups whose only voter
//! is this node in the order the entries were written (so an entry that spans shards —
//! possible only while the node is alone — sees exactly what preceded it), then starts the
//! openraft groups, initialising new ones with this node as their single voter.
//!
//! Checkpoints keep the log short: when it holds more than [`CHECKPOINT_SEGMENTS`]
//! segments, the engine's state is pinned and made durable, every group builds its
//! snapshot from it and openraft purges the entries the snapshot holds, so an entry is
//! dropped from the log only once the engine has its effects on disk.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::error::{ClientWriteError, ForwardReason, RaftError};
use openraft::{Instant as _, Raft, ServerState, SnapshotPolicy};
use parking_lot::{Mutex, RwLock};

use super::flusher::Flusher;
use super::incoming::Incoming;
#[cfg(doc)]
use super::log::SEGMENT_BYTES_DEFAULT;
use super::log::{RaftLog, Votes};
use super::log_store::LogStore;
use super::network::ClusterNetwork;
use super::quiesce::{Quiet, Watch};
use super::state_machine::{Applier, Checkpoint, GroupId, ShardStateMachine};
use super::types::{self, Applied, MapEpoch, NodeInfo, TypeConfig};
use super::{Entry, EntryOp};
use crate::cluster::ShardId;
use crate::cluster::{MapChange, SharedMap};
use crate::storage::SyncPolicy;
use crate::transport::handshake::Credentials;
use crate::transport::Peers;

/// A checkpoint is taken once the log holds more segments than this.
pub const CHECKPOINT_SEGMENTS: usize = 4;
/// How long after a quorum's last acknowledgement a leader serves reads on its own: less
/// than the lease openraft keeps followers from electing another leader in (the longest
/// election timeout), with room for the metrics' delay and clock drift.
const READ_LEASE: Duration = Duration::from_millis(450);
/// How long a proposal waits for its group to have a leader.
const LEADER_WAIT: Duration = Duration::from_secs(2);

/// Why a proposal got no reply from its group.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProposeError {
    #[error("CLUSTERDOWN The cluster is down")]
    NoLeader,
    #[error("TRYAGAIN shard leader is node {0}")]
    NotLeader(u64),
    #[error("ERR raft: {0}")]
    Fatal(String),
}

/// How to open the node's groups.
pub struct GroupsOptions<'a> {
    pub dir: &'a Path,
    pub shard_count: u16,
    pub client_addr: String,
    /// Where peers reach this node (cluster-proto).
    pub cluster_addr: String,
    /// Joining an existing cluster: the groups wait to be given members instead of
    /// starting with this node as their only voter.
    pub join: bool,
    /// How many voters each shard group should have (fewer while there are fewer nodes).
    pub replicas: usize,
    /// Reads confirm leadership with a quorum (ReadIndex) instead of the leader's lease.
    pub linearizable_reads: bool,
    pub sync: SyncPolicy,
    /// Size at which a log segment is sealed ([`SEGMENT_BYTES_DEFAULT`] unless tuned).
    pub segment_bytes: u64,
    /// The cluster map the node loaded (group 0 keeps it current).
    pub map: SharedMap,
    /// What this node and its peers prove themselves with on the cluster port.
    pub credentials: Credentials,
}

pub(super) type ShardRaft = Raft<TypeConfig, ShardStateMachine>;

/// A running group: its Raft, the checkpoint its next snapshot is built from and whether
/// its timers run (`quiesce.rs`).
#[derive(Clone)]
pub(super) struct ShardGroup {
    pub(super) id: GroupId,
    pub(super) raft: ShardRaft,
    /// The term when the group started here (INFO counts elections from it).
    first_term: u64,
    prepared: Arc<Mutex<Option<Arc<dyn Checkpoint>>>>,
    pub(super) quiet: Arc<Quiet>,
}

pub struct Groups {
    pub(super) node_id: u64,
    me: NodeInfo,
    pub(super) replicas: usize,
    linearizable_reads: bool,
    pub(super) dir: std::path::PathBuf,
    peers: Arc<Peers>,
    /// Snapshots being received, by transfer id (`serve.rs`).
    pub(super) incoming: Mutex<std::collections::HashMap<u64, Incoming>>,
    pub(super) log: Arc<RaftLog>,
    votes: Arc<Votes>,
    flusher: Arc<Flusher>,
    config: Arc<openraft::Config>,
    pub(super) applier: Arc<dyn Applier>,
    /// The cluster map, as group 0 last applied it.
    pub(super) map: SharedMap,
    /// Group 0: the cluster map.
    pub(super) map_group: ShardGroup,
    /// One group per shard; a group is replaced by a fresh one when its replica leaves
    /// this node (`membership.rs`).
    pub(super) shards: Vec<RwLock<ShardGroup>>,
    /// When asleep groups wake for want of their leader.
    pub(super) watch: Watch,
    /// Leaderships this node is handing over: group → (target, when last asked).
    pub(super) transfers: Mutex<std::collections::HashMap<GroupId, (u64, std::time::Instant)>>,
    /// Leaderships CLUSTER FAILOVER took here: the leader spreading keeps them, and asks
    /// back one an election took elsewhere (`failover.rs`).
    pub(super) pinned: Mutex<std::collections::BTreeSet<GroupId>>,
    /// Pinned groups being asked back now.
    pub(super) reclaiming: Arc<Mutex<std::collections::BTreeSet<GroupId>>>,
}

/// The group of shard `shard`.
pub fn group_of(shard: ShardId) -> GroupId {
    GroupId::from(shard.0) + 1
}

fn raft_config() -> io::Result<Arc<openraft::Config>> {
    let config = openraft::Config {
        cluster_name: "basalt".into(),
        // A dead leader is replaced within about a second (followers refuse votes for the
        // longest timeout after the last heartbeat: openraft's leader lease); a 2-core
        // machine running three nodes under a write load still heartbeats well inside it
        // (no new term in 40 s of redis-benchmark with appendfsync always).
        heartbeat_interval: 100,
        election_timeout_min: 300,
        election_timeout_max: 600,
        snapshot_policy: SnapshotPolicy::Never,
        // Entries are purged up to each snapshot: a lagging follower gets the snapshot.
        max_in_snapshot_log_to_keep: 0,
        ..Default::default()
    };
    config
        .validate()
        .map(Arc::new)
        .map_err(|e| io::Error::other(e.to_string()))
}

/// The leader of a group as this node knows it, with its addresses (none if the group's
/// members, as this node has them, do not include it: a group this node left may remember
/// a leader it has no address of). Reads the metrics in place (this is on the routing path).
pub(super) fn known_leader(raft: &ShardRaft) -> Option<(u64, NodeInfo)> {
    let m = raft.metrics();
    let m = m.borrow_watched();
    let leader = m.current_leader?;
    let info = m
        .membership_config
        .membership()
        .get_node(&leader)
        .cloned()?;
    Some((leader, info))
}

/// The leader this node's saved vote for `group` is a committed vote for, if it is.
fn saved_leader(votes: &Votes, group: GroupId) -> Option<u64> {
    votes
        .get(group)
        .and_then(|raw| types::decode_vote(raw).ok())
        .filter(|v| v.committed)
        .map(|v| v.leader_id.node_id)
}

/// This node's id, kept in the data dir (a new node draws one).
fn node_identity(dir: &Path) -> io::Result<u64> {
    let identity = Votes::open(dir.join("identity"))?;
    if let Some(raw) = identity.get(0) {
        if let Ok(id) = <[u8; 8]>::try_from(&raw[..]) {
            return Ok(u64::from_be_bytes(id));
        }
    }
    let id = loop {
        let id: u64 = rand::random::<u64>() >> 1;
        if id != 0 {
            break id;
        }
    };
    identity.save(0, Bytes::copy_from_slice(&id.to_be_bytes()))?;
    Ok(id)
}

/// What starting one group needs.
struct GroupParts<'a> {
    node_id: u64,
    config: &'a Arc<openraft::Config>,
    log: &'a Arc<RaftLog>,
    votes: &'a Arc<Votes>,
    flusher: &'a Arc<Flusher>,
    peers: &'a Arc<Peers>,
}

impl GroupParts<'_> {
    async fn start(&self, group: GroupId, machine: ShardStateMachine) -> io::Result<ShardGroup> {
        let prepared = machine.prepared();
        let store = LogStore::new(self.log.clone(), self.votes.clone(), group)
            .with_flusher(self.flusher.clone());
        let network = ClusterNetwork {
            peers: self.peers.clone(),
            group,
        };
        let raft = Raft::new(self.node_id, self.config.clone(), network, store, machine)
            .await
            .map_err(fatal)?;
        let first_term = raft.metrics().borrow_watched().current_term;
        Ok(ShardGroup {
            id: group,
            first_term,
            raft,
            prepared,
            quiet: Arc::default(),
        })
    }
}

fn fatal(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// Brings up a started group: a new one gets this node as its only voter (unless the
/// node is joining: then it waits to be given members); one this node is alone in, or
/// led before a restart, is elected again at once.
async fn begin(
    raft: &ShardRaft,
    group: GroupId,
    me: &NodeInfo,
    join: bool,
    votes: &Votes,
) -> io::Result<()> {
    let node_id = raft.metrics().borrow_watched().id;
    if !raft.is_initialized().await.map_err(fatal)? {
        if !join {
            let members = BTreeMap::from([(node_id, me.clone())]);
            raft.initialize(members).await.map_err(fatal)?;
        }
    } else if raft.voter_ids().eq([node_id]) || saved_leader(votes, group) == Some(node_id) {
        // Alone: no need to sit out an election timeout after a restart. A leader that
        // restarts must not resume its old term: its engine may hold less than was
        // committed, and only a new term's first entry makes reads wait for the re-apply
        // of everything committed before.
        raft.trigger().elect(false).await.map_err(fatal)?;
    }
    Ok(())
}

impl Groups {
    pub async fn open(options: GroupsOptions<'_>, applier: Arc<dyn Applier>) -> io::Result<Groups> {
        std::fs::create_dir_all(options.dir)?;
        let node_id = node_identity(options.dir)?;
        let log = Arc::new(RaftLog::open(
            options.dir.join("log"),
            options.segment_bytes,
        )?);
        let votes = Arc::new(Votes::open(options.dir.join("votes"))?);
        let flusher = Flusher::start(log.clone(), options.sync);
        let meta_machine = ShardStateMachine::open(0, applier.clone())?;
        let mut machines = Vec::new();
        for shard in 0..options.shard_count {
            let group = group_of(ShardId(shard));
            machines.push(ShardStateMachine::open(group, applier.clone())?);
        }
        replay_alone(&log, node_id, &mut machines)?;
        let config = raft_config()?;
        let me = NodeInfo {
            client_addr: options.client_addr.clone(),
            cluster_addr: options.cluster_addr.clone(),
        };
        let peers = Peers::new(
            node_id,
            options.cluster_addr.clone(),
            options.credentials.clone(),
        );
        let parts = GroupParts {
            node_id,
            config: &config,
            log: &log,
            votes: &votes,
            flusher: &flusher,
            peers: &peers,
        };
        let map_group = parts.start(0, meta_machine).await?;
        begin(&map_group.raft, 0, &me, options.join, &votes).await?;
        let mut shards = Vec::new();
        for (i, machine) in machines.into_iter().enumerate() {
            let group = group_of(ShardId(i as u16));
            let started = parts.start(group, machine).await?;
            begin(&started.raft, group, &me, options.join, &votes).await?;
            // A member of a group led elsewhere starts asleep: its leader may be asleep
            // too (and send nothing); it wakes on the leader's first message, or when the
            // leader's node stays silent.
            if saved_leader(&votes, group).is_some_and(|l| l != node_id) {
                started.sleep();
            }
            shards.push(started);
        }
        // A lone node leads all of its groups within moments; serve once it does.
        for group in std::iter::once(&map_group).chain(&shards) {
            let members = group.raft.voter_ids().collect::<Vec<_>>();
            if (members.is_empty() && !options.join) || members == [node_id] {
                group
                    .raft
                    .wait(Some(Duration::from_secs(10)))
                    .state(ServerState::Leader, "a lone node leads its group")
                    .await
                    .map_err(fatal)?;
                // Quiesced: with no one to heartbeat and no one to replace it, a lone
                // group's timers only cost CPU (they start again when a node joins).
                group.sleep();
            }
        }
        let groups = Groups {
            node_id,
            me,
            replicas: options.replicas.max(1),
            linearizable_reads: options.linearizable_reads,
            dir: options.dir.to_path_buf(),
            peers,
            incoming: Mutex::new(Default::default()),
            log,
            votes,
            flusher,
            config,
            applier,
            map: options.map,
            map_group,
            shards: shards.into_iter().map(RwLock::new).collect(),
            watch: Watch::default(),
            transfers: Mutex::default(),
            pinned: Mutex::default(),
            reclaiming: Arc::default(),
        };
        if !options.join && groups.map.read().nodes.is_empty() {
            let op = MapChange::Bootstrap {
                node: node_id,
                info: groups.me.clone(),
                shards: options.shard_count,
            };
            groups.propose_map_change(op).await.map_err(fatal)?;
        }
        Ok(groups)
    }

    /// A fresh group in place of `shard`'s, which this node no longer holds a replica of:
    /// the old one is stopped, its log, data and apply state dropped. The new one waits to
    /// be given members (a later replica starts from a snapshot).
    pub async fn reset(&self, shard: ShardId) -> io::Result<()> {
        let group = group_of(shard);
        let old = self.shard(shard);
        old.raft.shutdown().await.map_err(fatal)?;
        self.log.reset(group)?;
        let applier = self.applier.clone();
        tokio::task::spawn_blocking(move || applier.drop_group(group))
            .await
            .map_err(fatal)??;
        let machine = ShardStateMachine::open(group, self.applier.clone())?;
        let parts = GroupParts {
            node_id: self.node_id,
            config: &self.config,
            log: &self.log,
            votes: &self.votes,
            flusher: &self.flusher,
            peers: &self.peers,
        };
        let fresh = parts.start(group, machine).await?;
        *self.shards[usize::from(shard.0)].write() = fresh;
        tracing::info!(group, "dropped a replica this node no longer holds");
        Ok(())
    }

    /// Proposes a change to the cluster map (this node must lead group 0); returns the
    /// map's new epoch.
    pub async fn propose_map_change(&self, op: MapChange) -> Result<u64, ProposeError> {
        let entry = Entry::new(0, crate::clock::now_ms(), EntryOp::Map(op));
        self.propose_to(&self.map_group, &entry)
            .await?
            .take::<MapEpoch>()
            .map(|epoch| epoch.0)
            .ok_or_else(|| ProposeError::Fatal("a map change applied without an epoch".into()))
    }

    /// The cluster map as this node knows it.
    pub fn map(&self) -> &SharedMap {
        &self.map
    }

    /// The current group of `shard`.
    pub(super) fn shard(&self, shard: ShardId) -> ShardGroup {
        self.shards[usize::from(shard.0)].read().clone()
    }

    pub fn node_id(&self) -> u64 {
        self.node_id
    }

    pub fn set_sync_policy(&self, policy: SyncPolicy) {
        self.flusher.set_policy(policy);
    }

    /// Why this node cannot serve a group whose leader is `leader` as it knows it.
    pub(super) fn elsewhere(&self, leader: Option<u64>) -> ProposeError {
        match leader {
            Some(l) if l != self.node_id => ProposeError::NotLeader(l),
            _ => ProposeError::NoLeader,
        }
    }

    /// Appends `entry` to the log of `shard`'s group and returns its reply once applied.
    /// While the group has no leader it waits up to [`LEADER_WAIT`].
    pub async fn propose(&self, shard: ShardId, entry: &Entry) -> Result<Applied, ProposeError> {
        self.propose_to(&self.shard(shard), entry).await
    }

    async fn propose_to(&self, group: &ShardGroup, entry: &Entry) -> Result<Applied, ProposeError> {
        let raft = &group.raft;
        let deadline = tokio::time::Instant::now() + LEADER_WAIT;
        loop {
            // Each try: the group may have gone to sleep while this write waited.
            group.wake();
            match raft.client_write(entry.clone()).await {
                Ok(response) => return Ok(response.data),
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward))) => {
                    match forward.leader_id {
                        Some(leader) if leader != self.node_id => {
                            return Err(ProposeError::NotLeader(leader))
                        }
                        _ if tokio::time::Instant::now() >= deadline => {
                            tracing::debug!(group = group.id, reason = ?forward.reason, "no leader to propose to");
                            return Err(ProposeError::NoLeader);
                        }
                        _ => {
                            // A leader whose lease ran out (asleep, or its quorum slow to
                            // answer) takes writes again once a quorum acknowledges it.
                            if forward.reason == ForwardReason::LeaseExpired {
                                let _ = raft.trigger().heartbeat().await;
                            }
                            tokio::time::sleep(Duration::from_millis(10)).await
                        }
                    }
                }
                Err(e) => return Err(ProposeError::Fatal(e.to_string())),
            }
        }
    }

    pub fn me(&self) -> &NodeInfo {
        &self.me
    }

    pub fn peers(&self) -> &Arc<Peers> {
        &self.peers
    }

    pub(super) fn group(&self, group: GroupId) -> Result<ShardGroup, String> {
        if group == 0 {
            return Ok(self.map_group.clone());
        }
        (group as usize)
            .checked_sub(1)
            .and_then(|i| self.shards.get(i))
            .map(|s| s.read().clone())
            .ok_or_else(|| format!("no group {group}"))
    }

    /// The leader of `shard`'s group as this node knows it: its id and addresses (none if
    /// the group's members, as this node has them, do not include it).
    pub fn leader_of(&self, shard: ShardId) -> Option<(u64, NodeInfo)> {
        known_leader(&self.shard(shard).raft)
    }

    /// The log index a linearizable read of `shard` must see, confirmed by this leader
    /// with a quorum (ReadIndex). A replica serving a READONLY read applies up to it first.
    pub async fn read_index(&self, shard: ShardId) -> Result<u64, ProposeError> {
        self.read_index_of(&self.shard(shard)).await
    }

    /// The same for group 0 (the cluster map), which this node must lead.
    pub async fn map_read_index(&self) -> Result<u64, ProposeError> {
        self.read_index_of(&self.map_group).await
    }

    async fn read_index_of(&self, group: &ShardGroup) -> Result<u64, ProposeError> {
        group.wake();
        match group
            .raft
            .get_read_log_id(openraft::ReadPolicy::ReadIndex)
            .await
        {
            Ok((read, _)) => Ok(read.index()),
            Err(RaftError::APIError(openraft::error::LinearizableReadError::ForwardToLeader(
                f,
            ))) => Err(self.elsewhere(f.leader_id)),
            Err(e) => Err(ProposeError::Fatal(e.to_string())),
        }
    }

    /// Waits until this node has applied `shard`'s log through `index`; false if that
    /// takes longer than `timeout`.
    pub async fn wait_applied(&self, shard: ShardId, index: u64, timeout: Duration) -> bool {
        let group = self.shard(shard);
        group
            .raft
            .wait(Some(timeout))
            .applied_index_at_least(Some(index), "read index")
            .await
            .is_ok()
    }

    /// Waits until this node may serve a read of `shard`: it leads the group (under its
    /// lease, or confirmed by a quorum with `read-consistency linearizable`) and has applied
    /// everything committed before the read. A group whose only voter is this node needs
    /// neither. A deposed leader gets `NotLeader`.
    pub async fn read_barrier(&self, shard: ShardId) -> Result<(), ProposeError> {
        let group = self.shard(shard);
        let raft = &group.raft;
        {
            let m = raft.metrics();
            let m = m.borrow_watched();
            let mut voters = m.membership_config.membership().voter_ids();
            if m.state == ServerState::Leader
                && voters.next() == Some(self.node_id)
                && voters.next().is_none()
            {
                return Ok(());
            }
        }
        // An asleep leader's lease ran out long ago: it confirms leadership with a quorum
        // (its timers running again keep the lease for the reads after).
        let woke = group.wake();
        let policy = if self.linearizable_reads || woke {
            openraft::ReadPolicy::ReadIndex
        } else {
            openraft::ReadPolicy::LeaseRead
        };
        let deadline = tokio::time::Instant::now() + LEADER_WAIT;
        loop {
            let err = match raft.ensure_linearizable(policy.clone()).await {
                Ok(_) => return Ok(()),
                Err(RaftError::APIError(
                    openraft::error::LinearizableReadError::ForwardToLeader(f),
                )) => return Err(self.elsewhere(f.leader_id)),
                // A new leader without a quorum's acknowledgement yet: wait for it.
                Err(RaftError::APIError(e)) => ProposeError::Fatal(e.to_string()),
                Err(e) => return Err(ProposeError::Fatal(e.to_string())),
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(err);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Whether a command of `shard` can run here with no further check: this node leads the
    /// group and, for a read, is its only voter (one look at the group's state).
    pub fn serves_locally(&self, shard: ShardId, write: bool) -> bool {
        let m = self.shards[usize::from(shard.0)].read().raft.metrics();
        let m = m.borrow_watched();
        if m.state != ServerState::Leader {
            return false;
        }
        if write {
            return true;
        }
        let mut voters = m.membership_config.membership().voter_ids();
        (voters.next() == Some(self.node_id) && voters.next().is_none()) || self.lease_holds(&m)
    }

    /// Whether this leader may serve a read from what it has applied, by its metrics alone
    /// (no trip through the Raft core): reads are lease-based, a quorum acknowledged it
    /// within [`READ_LEASE`], and it has applied an entry of its own term — so everything
    /// committed before it was elected, and every write it acknowledged (a write is
    /// answered once applied here), is in its state.
    fn lease_holds(&self, m: &openraft::RaftMetrics<TypeConfig>) -> bool {
        !self.linearizable_reads
            && m.current_leader == Some(self.node_id)
            && m.last_quorum_acked
                .as_ref()
                .is_some_and(|at| at.elapsed() < READ_LEASE)
            && m.last_applied.is_some_and(|applied| {
                applied.leader_id.term == m.current_term
                    && applied.leader_id.node_id == self.node_id
            })
    }

    /// How far each replica of `shard` is known to have come, as log indexes: this node's
    /// last log index, and while it leads, each follower's matched index. (Not this node's
    /// applied index: a write's reply leaves the state machine before openraft's metrics
    /// count it applied, so a client asking right after could be given an older index.)
    pub fn replication_offsets(&self, shard: ShardId) -> Vec<(u64, u64)> {
        let m = self.shard(shard).raft.metrics().borrow_watched().clone();
        let mut out = vec![(self.node_id, m.last_log_index.unwrap_or(0))];
        if let Some(replication) = &m.replication {
            for (id, matched) in replication.iter() {
                if *id != self.node_id {
                    out.push((*id, matched.as_ref().map_or(0, |l| l.index)));
                }
            }
        }
        out
    }

    /// Whether this node leads `shard`'s group.
    pub fn is_leader(&self, shard: ShardId) -> bool {
        self.shards[usize::from(shard.0)].read().raft.is_leader()
    }

    /// The groups, as `(group id, shard)`.
    pub fn group_ids(&self) -> impl Iterator<Item = (GroupId, ShardId)> + '_ {
        (0..self.shards.len()).map(|i| (group_of(ShardId(i as u16)), ShardId(i as u16)))
    }

    /// Whether every group's only voter is this node (entries may then span shards).
    pub fn alone(&self) -> bool {
        self.shards
            .iter()
            .all(|s| s.read().raft.voter_ids().eq([self.node_id]))
    }

    /// Pins and makes durable the engine's state, has every group snapshot from it and
    /// purge its log up to there.
    pub async fn checkpoint(&self) -> io::Result<()> {
        let applier = self.applier.clone();
        let checkpoint = tokio::task::spawn_blocking(move || applier.checkpoint())
            .await
            .map_err(io::Error::other)??;
        for shard in std::iter::once(self.map_group.clone())
            .chain(self.shards.iter().map(|s| s.read().clone()))
        {
            *shard.prepared.lock() = Some(checkpoint.clone());
            shard
                .raft
                .trigger()
                .snapshot()
                .await
                .map_err(|e| io::Error::other(e.to_string()))?;
        }
        Ok(())
    }

    /// Takes a checkpoint when the log has grown past [`CHECKPOINT_SEGMENTS`].
    pub async fn maybe_checkpoint(&self) -> io::Result<()> {
        if self.log.segment_count() > CHECKPOINT_SEGMENTS {
            self.checkpoint().await?;
        }
        Ok(())
    }

    /// Stops every group (no more applies).
    pub async fn shutdown(&self) {
        let _ = self.map_group.raft.shutdown().await;
        for shard in &self.shards {
            let raft = shard.read().raft.clone();
            let _ = raft.shutdown().await;
        }
    }

    /// Where each group stands on this node: the map group (`meta`), then every shard.
    pub fn group_status(&self) -> Vec<GroupStatus> {
        let all = std::iter::once(("meta".to_string(), self.map_group.clone())).chain(
            self.shards
                .iter()
                .enumerate()
                .map(|(i, s)| (format!("shard{i}"), s.read().clone())),
        );
        all.map(|(name, group)| {
            let m = group.raft.metrics().borrow_watched().clone();
            let role = match m.state {
                ServerState::Leader => "leader",
                ServerState::Follower => "follower",
                ServerState::Candidate => "candidate",
                ServerState::Learner => "learner",
                ServerState::Shutdown => "shutdown",
            };
            let index = |id: Option<types::LogId>| id.map_or(0, |id| id.index);
            GroupStatus {
                name,
                group: group.id,
                role,
                voters: m.membership_config.membership().voter_ids().count(),
                term: m.current_term,
                elections: m.current_term.saturating_sub(group.first_term),
                leader: m.current_leader,
                last_log: m.last_log_index.unwrap_or(0),
                commit: index(m.cluster_committed),
                applied: index(m.last_applied),
                snapshot: index(m.snapshot),
                purged: index(m.purged),
                log_bytes: self.log.group_bytes(group.id),
                asleep: group.is_asleep(),
            }
        })
        .collect()
    }

    /// The node-wide log: its bytes, segments and fsyncs.
    pub fn log(&self) -> &RaftLog {
        &self.log
    }

    /// INFO `raft`: the node and one line per shard group.
    pub fn info(&self) -> Vec<(String, String)> {
        let mut out = vec![
            (
                "node_id".to_string(),
                crate::cluster::node_name(self.node_id),
            ),
            ("cluster_addr".to_string(), self.me.cluster_addr.clone()),
            ("groups".to_string(), self.shards.len().to_string()),
            (
                "groups_asleep".to_string(),
                self.groups_asleep().to_string(),
            ),
            (
                "log_segments".to_string(),
                self.log.segment_count().to_string(),
            ),
            ("log_bytes".to_string(), self.log.bytes().to_string()),
            ("log_fsyncs".to_string(), self.log.syncs().to_string()),
            (
                "config_epoch".to_string(),
                self.map.read().epoch.to_string(),
            ),
            ("nodes".to_string(), self.map.read().nodes.len().to_string()),
            (
                "nodes_down".to_string(),
                self.map.read().down.len().to_string(),
            ),
        ];
        for g in self.group_status() {
            out.push((
                g.name.clone(),
                format!(
                    "group={},role={},voters={},term={},elections={},leader={},last_log={},commit={},applied={},snapshot={},purged={},log_bytes={},asleep={}",
                    g.group,
                    g.role,
                    g.voters,
                    g.term,
                    g.elections,
                    g.leader.map_or("none".into(), crate::cluster::node_name),
                    g.last_log,
                    g.commit,
                    g.applied,
                    g.snapshot,
                    g.purged,
                    g.log_bytes,
                    u8::from(g.asleep),
                ),
            ));
        }
        out
    }
}

/// One group's state on this node (INFO raft, the metrics).
#[derive(Debug, Clone)]
pub struct GroupStatus {
    /// `meta` or `shard<i>`.
    pub name: String,
    pub group: GroupId,
    pub role: &'static str,
    pub voters: usize,
    pub term: u64,
    /// Elections since the group was created here.
    pub elections: u64,
    pub leader: Option<u64>,
    pub last_log: u64,
    pub commit: u64,
    pub applied: u64,
    pub snapshot: u64,
    pub purged: u64,
    pub log_bytes: u64,
    pub asleep: bool,
}

/// Applies, in the order they were written, the log entries beyond each group's applied
/// index of the groups whose only voter is this node: all of them are committed (a lone
/// voter commits its whole log when it is elected again).
fn replay_alone(log: &RaftLog, node_id: u64, machines: &mut [ShardStateMachine]) -> io::Result<()> {
    let alone = BTreeSet::from([node_id]);
    let mut from = Vec::new();
    let mut by_group: BTreeMap<GroupId, usize> = BTreeMap::new();
    for (i, m) in machines.iter().enumerate() {
        let voters: BTreeSet<u64> = m.state().membership().membership().voter_ids().collect();
        // No membership applied yet: the log's first entry (the group's initial membership)
        // decides below.
        if voters == alone || voters.is_empty() {
            let group = group_of(ShardId(i as u16));
            from.push((group, m.state().applied.map_or(0, |id| id.index + 1)));
            by_group.insert(group, i);
        }
    }
    let mut replayed = 0u64;
    for (group, index) in log.written_order(&from) {
        let Some(&i) = by_group.get(&group) else {
            continue;
        };
        let Some(raw) = log.entries(group, index..=index)?.pop() else {
            continue;
        };
        let entry = types::decode_entry(raw.data)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        let members_known = machines[i]
            .state()
            .membership()
            .membership()
            .voter_ids()
            .next()
            .is_some();
        let lone_membership = match &entry.payload {
            openraft::EntryPayload::Membership(m) => Some(m.voter_ids().eq([node_id])),
            _ => None,
        };
        if lone_membership == Some(false) || (!members_known && lone_membership.is_none()) {
            // Not (or not known to be) this node's alone: openraft replays the rest.
            by_group.remove(&group);
            continue;
        }
        machines[i].apply_one(&entry)?;
        replayed += 1;
    }
    if replayed > 0 {
        tracing::info!(entries = replayed, "replayed the raft log");
    }
    Ok(())
}
