//! Integration tests: real `basalt` processes on loopback ports, spoken to with raw RESP.

#[path = "../support/mod.rs"]
mod support;

mod acl;
mod announce;
mod bad_input;
mod blocking;
mod cluster;
mod cluster_protocol;
mod cross_shard;
mod deploy;
mod docs;
mod durability;
mod failover;
mod http;
mod introspection;
mod keyevents;
mod lifecycle;
mod limits;
mod netns;
mod partition;
mod peer_input;
mod pipelining;
mod protected_mode;
mod pubsub;
mod quiesce;
mod raft;
mod rebalance;
mod scripting;
mod sort;
mod streams;
mod tls;
mod tracking;
mod transactions;
mod wait;
mod windows;
