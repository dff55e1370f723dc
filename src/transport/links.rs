//! The cluster-port connections this node holds, both ways, for CLUSTER LINKS: the one it
//! keeps to each peer (`peers.rs`) and those peers opened to it (`listener.rs`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

/// One connection with a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerLink {
    pub node: u64,
    /// This node opened it (Redis's `to`); else the peer did (`from`).
    pub outbound: bool,
    pub created_unix_ms: u64,
    /// Requests waiting to be sent, and room for them (outbound only).
    pub queued: usize,
    pub capacity: usize,
}

/// The connections peers have open to this node.
#[derive(Default)]
pub struct Inbound {
    next: AtomicU64,
    open: Mutex<HashMap<u64, (u64, u64)>>,
}

impl Inbound {
    /// Lists a connection from `node` until the guard is dropped.
    pub fn open(self: &Arc<Self>, node: u64) -> InboundGuard {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.open.lock().insert(id, (node, crate::clock::now_ms()));
        InboundGuard {
            links: self.clone(),
            id,
        }
    }

    pub fn list(&self) -> Vec<PeerLink> {
        self.open
            .lock()
            .values()
            .map(|&(node, created_unix_ms)| PeerLink {
                node,
                outbound: false,
                created_unix_ms,
                queued: 0,
                capacity: 0,
            })
            .collect()
    }
}

/// An open inbound connection; dropping it unlists it.
pub struct InboundGuard {
    links: Arc<Inbound>,
    id: u64,
}

impl Drop for InboundGuard {
    fn drop(&mut self) {
        self.links.open.lock().remove(&self.id);
    }
}
