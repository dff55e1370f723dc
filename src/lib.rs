//! Basalt: a Redis-compatible, sharded, strongly consistent cache-database.
//!
//! Layers, each knowing only those below it (docs/ARCHITECTURE.md has the whole map):
//! - [`protocol`]: RESP frames, the request decoder, reply encoding.
//! - [`storage`]: the ordered KV [`storage::Engine`] trait and its engines.
//! - [`keyspace`]: Redis databases and values encoded over the engine.
//! - [`cluster`]: hash slots and shards.
//! - [`raft`]: write entries and each shard's ordered apply sequence.
//! - [`commands`]: the command table, dispatch and command families.
//! - [`server`]: TCP, connections, pipelining, shutdown.
//! - [`config`]: settings with redis.conf names.

pub mod clock;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod glob;
pub mod keyspace;
pub mod limits;
pub mod metrics;
pub mod protocol;
pub mod raft;
pub mod server;
pub mod storage;

use std::sync::Arc;

/// Builds a node from settings: engine, keyspace, command table.
pub fn build_node(config: Arc<config::Config>, port: u16) -> anyhow::Result<Arc<commands::Node>> {
    let databases: u8 = config.get("databases").parse()?;
    let engine: Arc<dyn storage::Engine> = Arc::new(storage::MemoryEngine::new());
    let keyspace = keyspace::Keyspace::open(engine, databases)?;
    Ok(Arc::new(commands::Node::new(config, keyspace, port)))
}
