//! Client-side caching at the node (`commands::tracking`): the keys a tracking client reads
//! are remembered before the read runs, and the keys an applied entry changed are
//! invalidated once it is written.
//!
//! Every node holding a replica of a shard applies its entries in log order, so each node
//! tells its own clients, whichever node took the write or leads the shard, and across a
//! failover (the log goes on). A read remembered before it runs cannot miss a write: a write
//! the read does not see is applied here after the key was remembered. A key of a shard
//! this node holds no replica of cannot be followed here: the client is told to drop
//! everything right after such a read. When a replica's state is replaced wholesale
//! (snapshot install, flush, replica dropped) every tracking client is told to drop
//! everything, as Redis does on FLUSHALL.

use bytes::Bytes;

use super::forwarding::ForwardFor;
use super::Node;
use crate::commands::tracking::table::{Limits, Sink};
use crate::commands::{Command, Session};
use crate::keyspace::{ChangeKind, Changes};
use crate::raft::Origin;

impl Node {
    fn tracking_sink(&self) -> Sink<'_> {
        let config = &self.shared.config;
        Sink {
            clients: &self.shared.clients,
            limits: Limits {
                normal: config.output_limit(),
                pubsub: config.pubsub_output_limit(),
            },
        }
    }

    /// Before a command runs for `session`: a read-only command's keys are remembered if
    /// the client tracks them. A key of a shard this node does not apply (in any mode,
    /// BCAST too) is followed by a drop-everything invalidation.
    pub(super) fn remember_reads(&self, cmd: &Command, session: &Session, args: &[Bytes]) {
        let Some(tracking) = &session.tracking else {
            return;
        };
        if !cmd.spec.has_flag("readonly") {
            return;
        }
        let table = &self.shared.tracking;
        let sink = self.tracking_sink();
        if tracking.remembers_reads() {
            let keys = cmd.key_positions(args).map(|i| &args[i][..]);
            let max = self.shared.config.tracking_table_max_keys();
            table.remember(session.id(), keys, max, &sink);
        } else if !tracking.bcast() {
            return; // OPTIN / OPTOUT leaving this read out: it is not cached
        }
        let unfollowed = cmd
            .key_positions(args)
            .any(|i| !self.groups().is_voter(self.shards.shard_of_key(&args[i])));
        if unfollowed {
            table.flush_client(session.id(), &sink);
        }
    }

    /// The client an entry proposed for `session` names: a NOLOOP tracking client of this
    /// node, or the one another node forwarded the command for.
    pub(super) fn write_origin(&self, session: &Session) -> Option<Origin> {
        if let Some((node, client)) = session.forwarded_for {
            return Some(Origin { node, client });
        }
        let noloop = session.tracking.as_ref().is_some_and(|t| t.noloop());
        noloop.then(|| Origin {
            node: self.groups().node_id(),
            client: session.id(),
        })
    }

    /// How a command of `session` is forwarded to another node.
    pub(super) fn forward_for(&self, session: &Session) -> ForwardFor {
        ForwardFor {
            db: session.db,
            resp3: session.resp3,
            origin: self.write_origin(session),
            hops: session.forward_hops.saturating_add(1),
        }
    }

    /// Whether applying entries must collect the keys they change for tracking clients.
    pub(super) fn tracks_changes(&self) -> bool {
        !self.shared.tracking.is_idle()
    }

    /// After an entry is written: its changed keys are invalidated; a database-wide change
    /// (FLUSHDB, FLUSHALL, SWAPDB) tells every tracking client to drop everything.
    /// `origin`: the client of this node whose command it was (NOLOOP leaves it out).
    pub(super) fn invalidate_changes(&self, changes: &Changes, origin: Option<u64>) {
        let sink = self.tracking_sink();
        if !changes.dbs.is_empty() {
            self.shared.tracking.flush(&sink);
            return;
        }
        let mut seen = ahash::AHashSet::with_capacity(changes.keys.len());
        let keys: Vec<Bytes> = changes
            .keys
            .iter()
            .filter(|c| !matches!(c.kind, ChangeKind::Event(_)) && seen.insert(&c.key[..]))
            .map(|c| c.key.clone())
            .collect();
        self.shared.tracking.invalidate(&keys, origin, &sink);
    }

    /// A replica's state was replaced or dropped wholesale: every tracking client drops
    /// everything.
    pub(super) fn invalidate_everything(&self) {
        if self.tracks_changes() {
            self.shared.tracking.flush(&self.tracking_sink());
        }
    }
}
