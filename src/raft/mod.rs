//! The replication seam: write entries and the ordered apply sequence of each shard.
//!
//! Every write becomes an [`Entry`] (normalised at the proposer: absolute times, explicit
//! choices, `now_ms` stamped) that is appended to its shards' logs and applied in log order by
//! a [`StateMachine`]. Today the log is local ([`LocalLog`]): proposing appends and applies at
//! once. The Raft issue replaces `LocalLog` with openraft groups behind the same `propose`.
//! This layer knows nothing of RESP or of command semantics.

mod entry;
mod local;
pub mod log;
pub mod log_store;
pub mod types;

pub use entry::{Entry, EntryDecodeError, EntryOp};
pub use local::{LocalLog, ShardSet};

/// Applies committed entries. `revision` is a node-wide, strictly increasing number of the
/// applied entry; keys record it as the revision of their last change.
pub trait StateMachine: Send + Sync {
    type Output;
    fn apply(&self, entry: &Entry, revision: u64) -> Self::Output;
}
