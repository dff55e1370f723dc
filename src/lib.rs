//! Basalt: a Redis-compatible, sharded, strongly consistent cache-database.
//!
//! Layers, top down, each knowing only those below it (docs/ARCHITECTURE.md has the whole
//! map and the exceptions):
//! - [`server`]: TCP, client connections, pipelining, shutdown.
//! - [`node`]: the running node: building it, dispatch, proposing, forwarding, the apply
//!   glue, serving peers, background loops.
//! - [`commands`]: the command table and the command families.
//! - [`raft`]: write entries and each shard's openraft group (log, state machine, network).
//! - [`transport`]: connections between nodes on the cluster port.
//! - [`cluster`]: hash slots and shards.
//! - [`keyspace`]: Redis databases and values encoded over the engine.
//! - [`storage`]: the ordered KV [`storage::Engine`] trait and its engines.
//! - [`protocol`]: RESP frames, the request decoder, reply encoding.
//! - [`config`]: settings with redis.conf names; [`tls`]: certificates and keys for both TLS ports.

pub mod blocking_io;
pub mod clock;
pub mod cluster;
pub mod codec;
pub mod commands;
pub mod config;
pub mod fuzz_targets;
pub mod glob;
pub mod keyspace;
pub mod limits;
pub mod metrics;
pub mod node;
pub mod protocol;
pub mod raft;
pub mod scripting;
pub mod server;
pub mod storage;
pub mod tls;
pub mod transport;
