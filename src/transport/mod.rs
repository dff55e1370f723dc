//! Transport: the connections between nodes on the cluster port. Framing (`frame.rs`), the
//! multiplexed connection this node keeps to each peer (`peers.rs`) and the listener that
//! accepts peers' connections and hands each request to a service (`listener.rs`). It knows
//! cluster-proto's messages but nothing of what they mean.

mod frame;
pub mod listener;
pub mod peers;

pub use frame::{read_frame, write_message};
pub use peers::{PeerError, Peers};
