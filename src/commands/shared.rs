//! What command handlers share across connections: the keyspace, the command table, the
//! settings, the client registry, statistics, and the node's identity. It holds nothing of
//! Raft or of the cluster; handlers learn about those through [`ClusterView`].

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::watch;

use super::access::AccessTracker;
use super::acl::Acl;
use super::blocking::BlockRegistry;
use super::clients::ClientRegistry;
use super::cursors::CursorTable;
use super::error::CmdError;
use super::pubsub::hub::PubSubHub;
use super::stats::{SlowLog, Stats};
use super::table::Table;
use super::tracking::table::TrackingTable;
use super::watches::WatchRegistry;
use crate::clock;
use crate::cluster::Topology;
use crate::config::Config;
use crate::keyspace::Keyspace;
use crate::storage::SyncPolicy;

/// Where `DEBUG CRASH-AT` makes the process abort, as a kill -9 would stop it there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// A cross-shard transaction's coordinator, once every shard is prepared.
    CrossShardPrepared,
    /// A cross-shard transaction's coordinator, once the decider has committed and before
    /// any other shard is told.
    CrossShardDecided,
}

impl CrashPoint {
    pub fn parse(name: &[u8]) -> Option<CrashPoint> {
        match name.to_ascii_lowercase().as_slice() {
            b"cross-shard-prepared" => Some(CrashPoint::CrossShardPrepared),
            b"cross-shard-decided" => Some(CrashPoint::CrossShardDecided),
            _ => None,
        }
    }
}

/// How SHUTDOWN asked the server to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownRequest {
    pub save: bool,
}

pub struct Shared {
    pub config: Arc<Config>,
    pub keyspace: Keyspace,
    pub table: Table,
    pub clients: ClientRegistry,
    pub stats: Stats,
    pub slowlog: SlowLog,
    /// LATENCY's monitor (`latency-monitor-threshold`).
    pub latency: super::latency::LatencyMonitor,
    /// CLIENT PAUSE: this node's clients wait while it holds.
    pub client_pause: super::client_pause::ClientPause,
    /// What the allocator had committed when the node was built (MEMORY STATS).
    pub startup_allocated_bytes: u64,
    pub cursors: CursorTable,
    pub blocking: BlockRegistry,
    pub watches: Arc<WatchRegistry>,
    pub pubsub: Arc<PubSubHub>,
    /// MONITOR's connections.
    pub monitors: Arc<super::monitor::Monitors>,
    pub tracking: Arc<TrackingTable>,
    pub access: AccessTracker,
    /// ACL users (from the cluster map) and the ACL log.
    pub acl: Acl,
    /// The Lua state and this node's script cache.
    pub scripts: crate::scripting::Scripts,
    /// The TLS endpoints in use (CONFIG SET of `tls-*` rebuilds them).
    pub tls: Arc<crate::tls::TlsState>,
    pub started: Instant,
    pub run_id: String,
    pub tcp_port: u16,
    pub last_save_unix_secs: AtomicU64,
    pub changes_since_save: AtomicU64,
    /// `DEBUG CRASH-AT`: a point in the node's work where the process aborts (tests of
    /// crashes at an exact moment), `None` normally.
    pub crash_point: parking_lot::Mutex<Option<CrashPoint>>,
    shutdown_tx: watch::Sender<Option<ShutdownRequest>>,
}

impl Shared {
    pub fn new(config: Arc<Config>, keyspace: Keyspace, tcp_port: u16) -> Shared {
        let (shutdown_tx, _) = watch::channel(None);
        let requirepass = config.get("requirepass");
        Shared {
            config,
            keyspace,
            table: Table::build(),
            clients: ClientRegistry::default(),
            stats: Stats::default(),
            slowlog: SlowLog::default(),
            latency: Default::default(),
            client_pause: Default::default(),
            startup_allocated_bytes: crate::metrics::allocator::memory().committed,
            cursors: CursorTable::default(),
            blocking: BlockRegistry::default(),
            watches: Arc::default(),
            pubsub: Arc::default(),
            monitors: Arc::default(),
            tracking: Arc::default(),
            access: AccessTracker::default(),
            acl: Acl::new(&requirepass),
            scripts: crate::scripting::Scripts::new(),
            tls: Arc::default(),
            started: Instant::now(),
            run_id: random_hex(40),
            tcp_port,
            last_save_unix_secs: AtomicU64::new(clock::now_ms() / 1000),
            changes_since_save: AtomicU64::new(0),
            crash_point: parking_lot::Mutex::new(None),
            shutdown_tx,
        }
    }

    /// Aborts the process if `DEBUG CRASH-AT` named `point`.
    pub fn crash_if_at(&self, point: CrashPoint) {
        if *self.crash_point.lock() == Some(point) {
            tracing::error!(?point, "DEBUG CRASH-AT: aborting");
            std::process::abort();
        }
    }

    pub fn shutdown_requests(&self) -> watch::Receiver<Option<ShutdownRequest>> {
        self.shutdown_tx.subscribe()
    }

    pub fn request_shutdown(&self, request: ShutdownRequest) {
        self.shutdown_tx.send_replace(Some(request));
    }

    /// Called by a connection before it sends replies: writes applied so far reach the
    /// operating system first (group commit of the engine's log).
    pub fn before_reply(&self) -> Result<(), CmdError> {
        self.keyspace
            .engine()
            .commit_barrier()
            .map_err(|e| CmdError::Internal(e.to_string()))
    }

    /// Whether a new client must authenticate (the default user has a password or is off).
    pub fn auth_required(&self) -> bool {
        self.acl.default_needs_auth()
    }
}

/// The cluster as this node sees it, for CLUSTER INFO.
pub struct ClusterState {
    /// Slots of shards this node holds a replica of that have no leader.
    pub slots_failed: u32,
    pub known_nodes: usize,
    pub shard_count: u16,
    pub epoch: u64,
    /// Messages sent and received on the cluster port, both directions.
    pub messages_sent: u64,
    pub messages_received: u64,
    /// Requests refused because a peer's send queue was full.
    pub queue_full: u64,
}

/// One connection with another node on the cluster port (CLUSTER LINKS).
pub struct ClusterLink {
    /// `to` (this node opened it) or `from`.
    pub direction: &'static str,
    pub node: u64,
    pub created_unix_ms: u64,
    /// Requests waiting to be sent, and room for them.
    pub queued: usize,
    pub capacity: usize,
}

/// What handlers may learn of, or ask of, the layers the node runs them over: the
/// replication groups and the cluster map (INFO, CLUSTER, CONFIG SET appendfsync).
pub trait ClusterView: Send + Sync {
    /// This node's id (kept in its data dir).
    fn node_id(&self) -> u64;
    /// The `raft` section of INFO.
    fn replication_info(&self) -> Vec<(String, String)>;
    fn cluster_state(&self) -> ClusterState;
    /// Which node masters which slots and where clients reach each node.
    fn topology(&self) -> Topology;
    /// Applies a new `appendfsync` to the replication log.
    fn set_sync_policy(&self, policy: SyncPolicy);
    /// The connections with other nodes, both ways.
    fn links(&self) -> Vec<ClusterLink>;
    /// CLUSTER FAILOVER: starts taking over the leadership of the shards this node
    /// replicates (asking their leaders, or by election when `force`); how many.
    fn fail_over(&self, force: bool) -> usize;
    /// Passes a message published here (SPUBLISH when `sharded`) to the other nodes'
    /// subscribers, in publish order; returns at once.
    fn publish_to_peers(&self, sharded: bool, channel: Bytes, payload: Bytes);
    /// The shards this node holds a replica of, in order.
    fn shards_held(&self) -> Vec<HeldShard>;
    /// Whether this node is the only replica of every shard (any key may be read here).
    fn alone(&self) -> bool;
    /// Which shard holds which slots.
    fn shard_map(&self) -> crate::cluster::ShardMap;
}

/// A shard this node holds a replica of: its number, its replication group and its slots.
#[derive(Debug, Clone, Copy)]
pub struct HeldShard {
    pub shard: u16,
    pub group: u32,
    pub first_slot: u16,
    pub last_slot: u16,
}

fn random_hex(len: usize) -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| char::from_digit(rng.gen_range(0..16), 16).unwrap_or('0'))
        .collect()
}
