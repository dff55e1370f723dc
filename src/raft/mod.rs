//! Replication: every write is an [`Entry`] in the log of its shard's openraft group.
//!
//! Entries are normalised at the proposer (absolute times, explicit choices, `now_ms`
//! stamped) and applied in log order by each group's [`ShardStateMachine`] through the
//! node's [`Applier`]. `groups.rs` runs the groups; `log/` is the node-wide log they share;
//! `types.rs` maps openraft's types to our own byte layouts, so an openraft upgrade touches
//! this module only. This layer knows nothing of RESP or of command semantics.

mod entry;
mod failover;
mod flusher;
pub mod groups;
pub mod incoming;
pub mod log;
pub mod log_store;
mod membership;
mod network;
mod quiesce;
mod serve;
pub mod state_machine;
pub mod types;
pub mod wire;

pub use entry::{Entry, EntryDecodeError, EntryOp, Origin};
pub use failover::FailoverMode;
pub use groups::{group_of, Groups, GroupsOptions, ProposeError};
pub use quiesce::ROUND as QUIET_ROUND;
pub use state_machine::{
    Applier, Checkpoint, GroupId, GroupState, ShardSnapshot, ShardStateMachine, SnapshotReader,
};
pub use types::{Applied, MapEpoch};
