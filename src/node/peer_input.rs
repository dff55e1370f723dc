//! What a peer may ask: every request from the cluster port is checked here, in one place,
//! before it touches a group or the keyspace. The cluster port is a trust boundary like the
//! client port: a peer that passed the handshake can still be buggy, of another version,
//! or replaying garbage, and nothing it sends may panic the node or reach the state machine
//! in a form the node itself would never propose.

use cluster_proto::messages::{Args, Forward, ForwardBatch, Propose};
use cluster_proto::request;

use super::forwarding::FORWARD_HOPS_MAX;
use super::Node;
use crate::cluster::ShardId;
use crate::raft::{Entry, EntryOp};

impl Node {
    /// `Ok` when `body` may be served; else why not (the peer gets it as an error).
    pub(super) fn check_peer_request(&self, body: &request::Body) -> Result<(), String> {
        match body {
            request::Body::Forward(f) => self.check_forward(f),
            request::Body::ForwardBatch(b) => self.check_forward_batch(b),
            request::Body::Propose(p) => self.check_proposal(p).map(|_| ()),
            _ => Ok(()),
        }
    }

    fn check_db(&self, db: u32) -> Result<(), String> {
        if db >= u32::from(self.shared.keyspace.databases()) {
            return Err(format!("no database {db}"));
        }
        Ok(())
    }

    fn check_hops(hops: u32) -> Result<(), String> {
        if hops == 0 || hops > FORWARD_HOPS_MAX {
            return Err(format!(
                "a forward of {hops} hops (1 to {FORWARD_HOPS_MAX} are accepted)"
            ));
        }
        Ok(())
    }

    fn check_forward(&self, f: &Forward) -> Result<(), String> {
        self.check_db(f.db)?;
        Self::check_hops(f.hops)?;
        if f.args.is_empty() {
            return Err("a forwarded command without arguments".to_string());
        }
        Ok(())
    }

    fn check_forward_batch(&self, b: &ForwardBatch) -> Result<(), String> {
        self.check_db(b.db)?;
        Self::check_hops(b.hops)?;
        if b.commands.iter().any(|Args { args }| args.is_empty()) {
            return Err("a forwarded command without arguments".to_string());
        }
        Ok(())
    }

    /// A proposal a peer asks this node (its group's leader) to make: only the kinds nodes
    /// send that way (FLUSHALL's slot deletes and cross-shard steps), for a shard group
    /// that exists, in a database that exists. Client commands arrive as forwards, which
    /// run the handler's checks here; map changes as `MetaChange`.
    pub(super) fn check_proposal(&self, p: &Propose) -> Result<(ShardId, Entry), String> {
        let shard = self
            .shard_of_peer_group(p.group)
            .ok_or_else(|| format!("no shard group {}", p.group))?;
        let entry = Entry::decode(p.entry.clone()).map_err(|e| e.to_string())?;
        self.check_db(u32::from(entry.db))?;
        match entry.op {
            EntryOp::FlushSlots { .. } | EntryOp::CrossShard(_) => Ok((shard, entry)),
            _ => Err("only slot deletes and cross-shard steps are proposed by peers".into()),
        }
    }
}
