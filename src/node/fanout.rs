//! Passing published messages (PUBLISH, SPUBLISH) to the other nodes of the cluster.
//!
//! Publishing queues the message here and returns at once: a publisher is never slowed by
//! a slow node or subscriber. One loop sends the queue, in batches, to every other node in
//! the cluster map and waits for all of them (or a timeout) before the next batch, so each
//! node delivers the messages in the order they were published here, each once. A node
//! that does not answer in time misses the batch (as a disconnected subscriber would).
//! `tell_all` is that sending, for any message every other node should get.

use std::collections::VecDeque;
use std::time::Duration;

use cluster_proto::messages::{Publish, Published};
use cluster_proto::{request, response};
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::dispatch::join_in_order;
use super::Node;
use crate::transport::Peers;

/// Messages waiting at most; past it the oldest are dropped (and counted).
const QUEUE_MAX: usize = 100_000;
/// Messages in one batch at most.
const BATCH_MAX: usize = 512;
/// How long a batch waits for a node.
const PEER_TIMEOUT: Duration = Duration::from_secs(1);

/// The queue of messages for the other nodes.
#[derive(Default)]
pub(super) struct Fanout {
    queue: Mutex<VecDeque<Published>>,
    ready: Notify,
}

impl Fanout {
    /// Queues a message; false if the queue was full and its oldest message was dropped.
    pub(super) fn push(&self, message: Published) -> bool {
        let mut queue = self.queue.lock();
        let full = queue.len() >= QUEUE_MAX;
        if full {
            queue.pop_front();
        }
        queue.push_back(message);
        drop(queue);
        self.ready.notify_one();
        !full
    }

    async fn next_batch(&self) -> Vec<Published> {
        loop {
            {
                let mut queue = self.queue.lock();
                if !queue.is_empty() {
                    let n = queue.len().min(BATCH_MAX);
                    return queue.drain(..n).collect();
                }
            }
            self.ready.notified().await;
        }
    }
}

impl Node {
    /// Sends queued messages to the other nodes, batch after batch, until the node stops.
    pub(super) async fn fan_out(&self) {
        loop {
            let messages = self.fanout.next_batch().await;
            let peers = self.other_nodes();
            if peers.is_empty() {
                continue;
            }
            let body = request::Body::Publish(Publish { messages });
            tell_all(self.groups().peers(), &peers, body, "published messages").await;
        }
    }

    /// The other nodes of the cluster map, with their cluster-port addresses.
    pub(super) fn other_nodes(&self) -> Vec<(u64, String)> {
        let me = self.groups().node_id();
        self.map
            .read()
            .nodes
            .iter()
            .filter(|(id, _)| **id != me)
            .map(|(id, info)| (*id, info.cluster_addr.clone()))
            .collect()
    }

    /// Delivers messages another node passed on to this node's subscribers, in order.
    pub(super) fn deliver_published(&self, publish: Publish) -> response::Body {
        let limit = self.shared.config.pubsub_output_limit();
        let hub = &self.shared.pubsub;
        for m in publish.messages {
            if m.sharded {
                hub.spublish(&m.channel, &m.payload, limit);
            } else {
                hub.publish(&m.channel, &m.payload, limit);
            }
        }
        response::Body::Done(true)
    }
}

/// Sends `body` to every node of `peers` at once and waits for all of them (or
/// `PEER_TIMEOUT`); a node that does not take it is logged (as `what`) and skipped.
pub(super) async fn tell_all(
    transport: &Peers,
    peers: &[(u64, String)],
    body: request::Body,
    what: &'static str,
) {
    let sends = peers.iter().map(|(id, addr)| {
        let body = body.clone();
        async move {
            if let Err(e) = transport.call(*id, addr, body, PEER_TIMEOUT).await {
                tracing::debug!(peer = id, error = %e, "{what} not delivered");
            }
        }
    });
    join_in_order(sends).await;
}
