//! Transport: the connections between nodes on the cluster port. Framing (`frame.rs`), the
//! multiplexed connection this node keeps to each peer (`peers.rs`) and the listener that
//! accepts peers' connections and hands each request to a service (`listener.rs`), and
//! the list of both kinds of connection (`links.rs`); connections run over mutual TLS when
//! `tls-cluster` is on (`crate::tls::ClusterTls`; `stream.rs` holds either kind). It knows
//! cluster-proto's messages but nothing of what they mean.

mod frame;
pub mod handshake;
pub mod links;
pub mod listener;
pub mod peers;
mod stream;

pub use frame::{read_frame, write_message};
pub use peers::{PeerError, Peers};
pub use stream::{PeerIo, PeerStream};

use std::sync::atomic::{AtomicU64, Ordering};

/// Messages this node sent and received on the cluster port (requests and responses, both
/// directions), and requests refused because a peer's queue was full (CLUSTER INFO).
#[derive(Debug, Default)]
pub struct Traffic {
    sent: AtomicU64,
    received: AtomicU64,
    queue_full: AtomicU64,
}

impl Traffic {
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    pub fn queue_full(&self) -> u64 {
        self.queue_full.load(Ordering::Relaxed)
    }

    fn count_sent(&self, n: u64) {
        self.sent.fetch_add(n, Ordering::Relaxed);
    }

    fn count_received(&self) {
        self.received.fetch_add(1, Ordering::Relaxed);
    }
}
