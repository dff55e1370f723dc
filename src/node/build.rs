//! Building a node from its settings: the storage engine, the keyspace over it, the node
//! and its shards' Raft groups; and the addresses the node tells others to use.

use std::sync::Arc;

use super::{Node, NodeApplier};
use crate::commands::Shared;
use crate::{config, keyspace, raft, storage};

/// Opens the storage engine the settings name: the LSM engine in `dir` (the default) or the
/// in-memory one.
pub fn open_engine(config: &config::Config) -> anyhow::Result<Arc<dyn storage::Engine>> {
    use storage::lsm::sstable::Compression;
    Ok(match config.get("engine").as_str() {
        "memory" => Arc::new(storage::MemoryEngine::new()),
        _ => {
            let bytes = |name: &str, default: i64| {
                config::table::parse_memory(&config.get(name))
                    .unwrap_or(default)
                    .max(0) as usize
            };
            let options = storage::lsm::LsmOptions {
                sync: storage::SyncPolicy::from_appendfsync(&config.get("appendfsync")),
                block_cache_bytes: match bytes("block-cache-size", 0) {
                    0 => physical_memory_bytes() / 4,
                    set => set,
                },
                row_cache_bytes: bytes("row-cache-size", 16 << 20),
                upper_compression: Compression::from_name(&config.get("compression"))
                    .unwrap_or(Compression::Lz4),
                bottom_compression: Compression::from_name(&config.get("bottom-compression"))
                    .unwrap_or(Compression::Zstd),
                compaction_filter: Some(Arc::new(keyspace::ElementFilter::default())),
                prefix_extractor: Some(Arc::new(keyspace::CollectionGroups)),
                // The Raft log is the write-ahead log.
                wal: false,
                memtable_bytes: config::table::parse_memory(&config.get("memtable-size"))
                    .map_or(64 << 20, |n| n.max(1 << 16) as usize),
                ..storage::lsm::LsmOptions::default()
            };
            let dir = std::path::Path::new(&config.get("dir")).join("lsm");
            Arc::new(storage::lsm::LsmEngine::open(&dir, options)?)
        }
    })
}

/// The machine's memory, for settings that default to a share of it (256 MiB if unknown).
fn physical_memory_bytes() -> usize {
    // SAFETY: sysconf only reads system configuration.
    let (pages, page) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    if pages > 0 && page > 0 {
        (pages as usize).saturating_mul(page as usize)
    } else {
        256 << 20
    }
}

/// The address other nodes and clients are told to use: the first `bind` address that is
/// not a wildcard, else loopback.
pub fn announce_host(config: &config::Config) -> String {
    config
        .get("bind")
        .split_whitespace()
        .map(|a| a.trim_start_matches('-'))
        .find(|a| *a != "*" && *a != "0.0.0.0" && *a != "::")
        .unwrap_or("127.0.0.1")
        .to_string()
}

/// The host other nodes and clients are told to reach this node at:
/// `cluster-announce-ip` where set (a name that resolves, as a pod's stable DNS name in a
/// StatefulSet, will do), else `host`.
fn announced_host<'a>(config: &config::Config, host: &'a str) -> std::borrow::Cow<'a, str> {
    let ip = config.get("cluster-announce-ip");
    if ip.is_empty() {
        host.into()
    } else {
        ip.into()
    }
}

/// `setting` as a port where set (non-zero), else `port`.
fn announced_port(config: &config::Config, setting: &str, port: u16) -> u16 {
    match config.get(setting).parse::<u16>() {
        Ok(p) if p != 0 => p,
        _ => port,
    }
}

/// Where clients are told to reach this node (MOVED, CLUSTER SLOTS…):
/// `cluster-announce-ip` and `cluster-announce-port` where set, else `host` and `port`.
fn client_addr(config: &config::Config, host: &str, port: u16) -> String {
    let host = announced_host(config, host);
    let port = announced_port(config, "cluster-announce-port", port);
    format!("{host}:{port}")
}

/// Where peers reach this node's cluster port: `cluster-announce-ip` and
/// `cluster-announce-bus-port` where set (as Redis Cluster announces its bus), else `host`
/// and `cluster_port`.
fn peer_addr(config: &config::Config, host: &str, cluster_port: u16) -> String {
    let host = announced_host(config, host);
    let port = announced_port(config, "cluster-announce-bus-port", cluster_port);
    format!("{host}:{port}")
}

/// The node-to-node port: `cluster-port`, or the client port + 10000.
pub fn cluster_port(config: &config::Config, port: u16) -> u16 {
    match config.get("cluster-port").parse::<u16>() {
        Ok(p) if p != 0 => p,
        _ => port.wrapping_add(10000),
    }
}

/// Builds a node from settings: engine, keyspace, command table, and its shards' Raft
/// groups (their logs in `<dir>/raft`; with the in-memory engine, which keeps nothing, the
/// log starts empty too).
pub async fn build_node(config: Arc<config::Config>, port: u16) -> anyhow::Result<Arc<Node>> {
    let databases: u8 = config.get("databases").parse()?;
    let engine = open_engine(&config)?;
    // Hot collections are read whole from here without touching the engine (a zipfian
    // YCSB read hit 80% with 64 MiB, 88% with 1 GiB over 100,000 records of 1 KiB).
    let collection_cache = match config::table::parse_memory(&config.get("collection-cache-size"))
        .unwrap_or(0)
        .max(0)
    {
        0 => physical_memory_bytes() / 16,
        set => set as usize,
    };
    let keyspace =
        keyspace::Keyspace::open(engine, databases)?.with_collection_cache(collection_cache);
    let node = Arc::new(Node::new(Shared::new(config.clone(), keyspace, port)));
    let raft_dir = std::path::Path::new(&config.get("dir")).join("raft");
    if config.get("engine") == "memory" && raft_dir.exists() {
        std::fs::remove_dir_all(&raft_dir)?;
    }
    // A whole snapshot may be installed here: off the async worker.
    let incoming = raft_dir.join("incoming");
    crate::blocking_io::run(|| super::install::finish_interrupted(&node, &incoming))?;
    node.install_map(super::load_map(&node.shared.keyspace)?);
    let joining = !config.get("join").is_empty();
    let configured_users = crate::blocking_io::run(|| {
        super::users::configured_users(&config.get("aclfile"), config.user_lines())
    })
    .map_err(std::io::Error::other)?;
    // Locks of prepared cross-shard transactions, as of the applied entries.
    let locks = node.shared.keyspace.held_locks(None)?;
    node.cross_shard_locks_loaded(locks);
    // Events kept by an earlier run would have a hole from this run's entries.
    if config.keyspace_events_log() == 0 && node.shared.keyspace.keeps_events()? {
        node.shared.keyspace.forget_events(None)?;
    }
    if config.get("cluster-secret").is_empty() && node.shared.auth_required() {
        tracing::warn!(
            "requirepass is set but cluster-secret is not: the cluster port admits any peer, \
             and commands forwarded through it do not need the password"
        );
    }
    crate::blocking_io::run(|| node.shared.tls.reload(&config))
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
    let applier = Arc::new(NodeApplier(Arc::downgrade(&node)));
    let host = announce_host(&config);
    let options = raft::GroupsOptions {
        dir: &raft_dir,
        shard_count: node.shards.shard_count(),
        client_addr: client_addr(&config, &host, port),
        cluster_addr: peer_addr(&config, &host, cluster_port(&config, port)),
        join: joining,
        replicas: config.get("replicas").parse().unwrap_or(3),
        linearizable_reads: config.get("read-consistency") == "linearizable",
        sync: storage::SyncPolicy::from_appendfsync(&config.get("appendfsync")),
        segment_bytes: config::table::parse_memory(&config.get("raft-log-segment-size"))
            .map_or(raft::log::SEGMENT_BYTES_DEFAULT, |n| n.max(1 << 16) as u64),
        map: node.map.clone(),
        credentials: crate::transport::handshake::Credentials::new(&config.get("cluster-secret"))
            .with_tls(node.shared.tls.clone()),
    };
    let groups = raft::Groups::open(options, applier).await?;
    node.set_groups(groups);
    if joining && configured_users.is_some() {
        tracing::warn!("joining a cluster: its users come from its map, not this node's ACL file or user lines");
    } else {
        node.seed_users(configured_users)
            .await
            .map_err(std::io::Error::other)?;
    }
    Ok(node)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> config::Config {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        config::Config::from_args(&args).unwrap()
    }

    #[test]
    fn announced_addresses_replace_the_bound_ones_where_set() {
        let plain = config(&[]);
        assert_eq!(client_addr(&plain, "10.0.0.5", 6379), "10.0.0.5:6379");
        assert_eq!(peer_addr(&plain, "10.0.0.5", 16379), "10.0.0.5:16379");
        let announced = config(&[
            "--cluster-announce-ip",
            "basalt-1.basalt",
            "--cluster-announce-port",
            "7000",
            "--cluster-announce-bus-port",
            "17000",
        ]);
        assert_eq!(
            client_addr(&announced, "0.0.0.0", 6379),
            "basalt-1.basalt:7000"
        );
        assert_eq!(
            peer_addr(&announced, "0.0.0.0", 16379),
            "basalt-1.basalt:17000"
        );
        let name_only = config(&["--cluster-announce-ip", "basalt-2.basalt"]);
        assert_eq!(
            peer_addr(&name_only, "127.0.0.1", 16379),
            "basalt-2.basalt:16379"
        );
    }
}
