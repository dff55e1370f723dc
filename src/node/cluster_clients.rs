//! Telling a cluster client's per-node connections from plain clients in
//! `cluster-redirects auto`: the hosts that asked any node for the layout (told to every
//! node, `cluster::LayoutHosts`) and each connection's route history
//! (`commands::session::RouteHistory`). A connection from such a host whose keyed commands
//! all ran here, on several shards, gets MOVED for a slot led elsewhere instead of being
//! forwarded, so the client's stale map converges after leaders move.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use cluster_proto::messages::ClusterClientHost;
use cluster_proto::{request, response};

use super::fanout::tell_all;
use super::Node;
use crate::cluster::{key_slot, layout_hosts};
use crate::commands::{Command, Session};
use crate::config::Redirects;

impl Node {
    /// After a command ran here: if it asked for the layout, its host is marked (and told to
    /// the other nodes when new).
    pub(super) fn note_layout_asked(&self, cmd: &Command, session: &Session) {
        if session.cluster_client && cmd.spec.name.starts_with("cluster|") {
            self.layout_asked(session.info.addr.ip());
        }
    }

    /// A keyed command runs here: it extends the connection's route history.
    pub(super) fn note_route(&self, cmd: &Command, session: &mut Session, args: &[Bytes]) {
        if session.cluster_client
            || session.routes.settled()
            || session.readonly
            || self.shared.config.cluster_redirects() != Redirects::Auto
        {
            return;
        }
        let Some(first) = cmd.key_positions(args).next() else {
            return;
        };
        if self.map.read().nodes.len() < 2 {
            // Asked once per connection on a lone node, not per command.
            session.routes.rule_out();
            return;
        }
        let shard = self.shards.shard_of_key(&args[first]);
        let groups = self.groups();
        session.routes.ran_here(shard, || {
            groups.group_ids().all(|(_, shard)| groups.is_leader(shard))
        });
    }

    /// Whether a command from this plain-looking connection, for a slot another node leads,
    /// gets MOVED: its host runs a cluster client, every keyed command it sent ran here
    /// (see `RouteHistory`) and this one names a single slot.
    pub(super) fn stale_cluster_client(
        &self,
        cmd: &Command,
        session: &Session,
        args: &[Bytes],
    ) -> bool {
        if !session.routes.looks_clustered()
            || self.shared.config.cluster_redirects() != Redirects::Auto
            || !self.layout_hosts.contains(session.info.addr.ip())
        {
            return false;
        }
        let mut slots = cmd.key_positions(args).map(|i| key_slot(&args[i]));
        let first = slots.next();
        first.is_some() && slots.all(|s| Some(s) == first)
    }

    /// A connection from `host` asked for the layout here: every node learns of the host.
    fn layout_asked(&self, host: IpAddr) {
        if !self.layout_hosts.asked_here(host) {
            return;
        }
        let peers = self.other_nodes();
        if peers.is_empty() {
            return;
        }
        let transport = Arc::clone(self.groups().peers());
        let body = request::Body::ClusterClientHost(ClusterClientHost {
            host: Bytes::from(layout_hosts::encode_host(host)),
        });
        tokio::spawn(async move {
            tell_all(&transport, &peers, body, "a cluster client's host").await;
        });
    }

    /// Another node tells of a host running a cluster client.
    pub(super) fn heard_of_cluster_client(&self, told: ClusterClientHost) -> response::Body {
        match layout_hosts::decode_host(&told.host) {
            Some(host) => {
                self.layout_hosts.heard_of(host);
                response::Body::Done(true)
            }
            None => {
                response::Body::Error(format!("a host is 4 or 16 bytes, not {}", told.host.len()))
            }
        }
    }
}
