//! The node's Prometheus exposition (`GET /metrics` on the HTTP port): everything read at
//! scrape time from the counters the node keeps anyway — commands (calls, failures and a
//! latency histogram each), errors, connections, keyspace sizes, memory, the storage
//! engine, Raft per node and per group, the node-wide log's fsyncs, and peers.
//!
//! Nothing here runs on the request path: a scrape reads atomics and a few locks.

use std::sync::atomic::Ordering;

use super::Node;
use crate::metrics::exposition::Exposition;
use crate::metrics::process;

/// How INFO storage fields (`name`, numeric) are exposed: metric name, counter or gauge,
/// help. Fields not listed (text, or per level) are exposed otherwise or not at all.
const STORAGE_FIELDS: &[(&str, &str, bool, &str)] = &[
    (
        "memtable_bytes",
        "basalt_memtable_bytes",
        false,
        "Bytes held by memtables.",
    ),
    (
        "memtable_entries",
        "basalt_memtable_entries",
        false,
        "Entries in memtables.",
    ),
    (
        "immutable_memtables",
        "basalt_memtables_immutable",
        false,
        "Memtables waiting for their flush.",
    ),
    (
        "pending_compaction_bytes",
        "basalt_lsm_pending_compaction_bytes",
        false,
        "Bytes of the next compaction's inputs.",
    ),
    (
        "range_tombstones",
        "basalt_lsm_range_tombstones",
        false,
        "Range tombstones held.",
    ),
    (
        "flushes",
        "basalt_lsm_flushes_total",
        true,
        "Memtables flushed to level 0.",
    ),
    (
        "compactions",
        "basalt_lsm_compactions_total",
        true,
        "Compactions run.",
    ),
    (
        "write_stalls",
        "basalt_lsm_write_stalls_total",
        true,
        "Writes that waited for flushes or compactions.",
    ),
    (
        "bytes_flushed",
        "basalt_lsm_flushed_bytes_total",
        true,
        "Bytes written by flushes.",
    ),
    (
        "bytes_compacted",
        "basalt_lsm_compacted_bytes_total",
        true,
        "Bytes written by compactions.",
    ),
    (
        "compaction_filter_removed",
        "basalt_lsm_compaction_filter_removed_total",
        true,
        "Values the compaction filter removed.",
    ),
    (
        "memtable_gc_removed",
        "basalt_lsm_memtable_gc_removed_total",
        true,
        "Versions removed from the active memtable once no reader could see them.",
    ),
    ("scans", "basalt_lsm_scans_total", true, "Range reads."),
    (
        "scan_entries",
        "basalt_lsm_scan_entries_total",
        true,
        "Entries range reads took from memtables and tables.",
    ),
    (
        "block_cache_bytes",
        "basalt_block_cache_bytes",
        false,
        "Bytes in the block cache.",
    ),
    (
        "block_reads",
        "basalt_lsm_block_reads_total",
        true,
        "Table blocks read from files.",
    ),
    (
        "block_cache_hit_ratio",
        "basalt_block_cache_hit_ratio",
        false,
        "Block cache hits per lookup.",
    ),
    (
        "row_cache_bytes",
        "basalt_row_cache_bytes",
        false,
        "Bytes in the row cache.",
    ),
    (
        "row_cache_hit_ratio",
        "basalt_row_cache_hit_ratio",
        false,
        "Row cache hits per lookup.",
    ),
    (
        "bloom_checks",
        "basalt_lsm_bloom_checks_total",
        true,
        "Bloom filter checks of point reads.",
    ),
    (
        "bloom_useful",
        "basalt_lsm_bloom_negatives_total",
        true,
        "Bloom filter checks that spared a table read.",
    ),
    (
        "prefix_bloom_checks",
        "basalt_lsm_prefix_bloom_checks_total",
        true,
        "Prefix bloom filter checks of range reads.",
    ),
    (
        "prefix_bloom_useful",
        "basalt_lsm_prefix_bloom_negatives_total",
        true,
        "Prefix bloom filter checks that spared a table.",
    ),
    (
        "collection_cache_bytes",
        "basalt_collection_cache_bytes",
        false,
        "Bytes of decoded collections cached.",
    ),
    (
        "collection_cache_hit_ratio",
        "basalt_collection_cache_hit_ratio",
        false,
        "Collection cache hits per lookup.",
    ),
];

impl Node {
    /// The Prometheus text exposition of this node.
    pub fn metrics(&self) -> String {
        let mut e = Exposition::default();
        self.command_metrics(&mut e);
        self.server_metrics(&mut e);
        self.storage_metrics(&mut e);
        self.raft_metrics(&mut e);
        e.encode()
    }

    fn command_metrics(&self, e: &mut Exposition) {
        let table = &self.shared.table;
        for c in table.every_command() {
            let calls = c.stats.calls.get();
            let rejected = c.stats.rejected_calls.get();
            if calls == 0 && rejected == 0 {
                continue;
            }
            let label = [("cmd", c.spec.name)];
            e.counter(
                "basalt_commands_total",
                "Commands run, by name.",
                &label,
                calls as f64,
            );
            e.counter(
                "basalt_command_errors_total",
                "Commands that ran and replied with an error, by name.",
                &label,
                c.stats.failed_calls.get() as f64,
            );
            e.counter(
                "basalt_commands_rejected_total",
                "Commands refused before running (arity, ACL, OOM, ...), by name.",
                &label,
                rejected as f64,
            );
            e.histogram(
                "basalt_command_duration_seconds",
                "How long commands took on this node, by name.",
                &label,
                &c.stats.latency.snapshot(),
            );
        }
        for (prefix, count) in self.shared.stats.errors_by_prefix.lock().iter() {
            e.counter(
                "basalt_error_replies_total",
                "Error replies, by error prefix (MOVED and ASK are redirections).",
                &[("prefix", prefix)],
                *count as f64,
            );
        }
    }

    fn server_metrics(&self, e: &mut Exposition) {
        let shared = &self.shared;
        let stats = &shared.stats;
        let clients = &shared.clients;
        e.gauge(
            "basalt_connected_clients",
            "Client connections open.",
            &[],
            clients.count() as f64,
        );
        e.gauge(
            "basalt_blocked_clients",
            "Clients waiting in a blocking command.",
            &[],
            shared.blocking.blocked_clients() as f64,
        );
        e.gauge(
            "basalt_max_clients",
            "The maxclients setting.",
            &[],
            shared.config.maxclients() as f64,
        );
        let counters: [(&str, &str, u64); 9] = [
            (
                "basalt_connections_received_total",
                "Client connections accepted.",
                clients.total_connections.load(Ordering::Relaxed),
            ),
            (
                "basalt_connections_rejected_total",
                "Client connections refused (maxclients).",
                clients.rejected_connections.load(Ordering::Relaxed),
            ),
            (
                "basalt_commands_processed_total",
                "Commands processed.",
                stats.commands_processed.get(),
            ),
            (
                "basalt_net_input_bytes_total",
                "Bytes read from clients.",
                stats.net_input_bytes.get(),
            ),
            (
                "basalt_net_output_bytes_total",
                "Bytes written to clients.",
                stats.net_output_bytes.get(),
            ),
            (
                "basalt_expired_keys_total",
                "Keys removed by expiry.",
                stats.expired_keys.get(),
            ),
            (
                "basalt_keyspace_hits_total",
                "Key lookups that found the key.",
                stats.keyspace_hits.get(),
            ),
            (
                "basalt_keyspace_misses_total",
                "Key lookups that did not.",
                stats.keyspace_misses.get(),
            ),
            (
                "basalt_forwarded_commands_total",
                "Commands forwarded to the node leading their shard.",
                stats.forwarded_commands.get(),
            ),
        ];
        for (name, help, value) in counters {
            e.counter(name, help, &[], value as f64);
        }
        for db in 0..shared.keyspace.databases() {
            let keys = shared.keyspace.dbsize(db);
            if keys == 0 {
                continue;
            }
            let volatile = shared.keyspace.volatile_count(db);
            let db = db.to_string();
            let label = [("db", db.as_str())];
            e.gauge(
                "basalt_keys",
                "Keys held (this node's replicas), by database.",
                &label,
                keys as f64,
            );
            e.gauge(
                "basalt_keys_volatile",
                "Keys with a time to live, by database.",
                &label,
                volatile as f64,
            );
        }
        e.gauge(
            "basalt_resident_memory_bytes",
            "Resident set size of the process.",
            &[],
            process::rss_bytes() as f64,
        );
        e.gauge(
            "basalt_lua_memory_bytes",
            "Memory of the Lua VM.",
            &[],
            shared.scripts.lua_memory() as f64,
        );
        let (user, system) = process::cpu_secs();
        e.counter(
            "basalt_cpu_seconds_total",
            "CPU time of the process, by mode.",
            &[("mode", "user")],
            user,
        );
        e.counter(
            "basalt_cpu_seconds_total",
            "CPU time of the process, by mode.",
            &[("mode", "system")],
            system,
        );
        e.gauge(
            "basalt_uptime_seconds",
            "Seconds since the node started.",
            &[],
            shared.started.elapsed().as_secs_f64(),
        );
    }

    fn storage_metrics(&self, e: &mut Exposition) {
        let keyspace = &self.shared.keyspace;
        let fields = keyspace
            .engine()
            .info()
            .into_iter()
            .chain(keyspace.cache_info());
        for (key, value) in fields {
            if let Some(level) = key.strip_prefix("level") {
                // `files=N,bytes=M`
                for part in value.split(',') {
                    let Some((what, n)) = part.split_once('=') else {
                        continue;
                    };
                    let Ok(n) = n.parse::<f64>() else { continue };
                    let (name, help) = match what {
                        "files" => ("basalt_lsm_level_files", "Tables in an LSM level."),
                        "bytes" => (
                            "basalt_lsm_level_bytes",
                            "Bytes of the tables in an LSM level.",
                        ),
                        _ => continue,
                    };
                    e.gauge(name, help, &[("level", level)], n);
                }
                continue;
            }
            let Some(&(_, name, counter, help)) = STORAGE_FIELDS.iter().find(|f| f.0 == key) else {
                continue;
            };
            let Ok(n) = value.parse::<f64>() else {
                continue;
            };
            if counter {
                e.counter(name, help, &[], n);
            } else {
                e.gauge(name, help, &[], n);
            }
        }
    }

    fn raft_metrics(&self, e: &mut Exposition) {
        let groups = self.groups();
        let status = groups.group_status();
        let leading = status.iter().filter(|g| g.role == "leader").count();
        e.gauge(
            "basalt_raft_groups",
            "Raft groups this node holds (the map group included).",
            &[],
            status.len() as f64,
        );
        e.gauge(
            "basalt_raft_groups_leading",
            "Raft groups this node leads.",
            &[],
            leading as f64,
        );
        e.gauge(
            "basalt_raft_groups_asleep",
            "Raft groups quiesced on this node.",
            &[],
            status.iter().filter(|g| g.asleep).count() as f64,
        );
        for g in &status {
            let label = [("group", g.name.as_str())];
            e.gauge(
                "basalt_raft_leader",
                "1 where this node leads the group.",
                &label,
                f64::from(u8::from(g.role == "leader")),
            );
            e.gauge(
                "basalt_raft_term",
                "The group's current term.",
                &label,
                g.term as f64,
            );
            e.counter(
                "basalt_raft_elections_total",
                "Terms the group went through since it was created here.",
                &label,
                g.elections as f64,
            );
            e.gauge(
                "basalt_raft_commit_lag_entries",
                "Entries in the log not yet known committed.",
                &label,
                g.last_log.saturating_sub(g.commit) as f64,
            );
            e.gauge(
                "basalt_raft_apply_lag_entries",
                "Committed entries not yet applied.",
                &label,
                g.commit.saturating_sub(g.applied) as f64,
            );
            e.gauge(
                "basalt_raft_log_bytes",
                "Bytes of the group's live log entries.",
                &label,
                g.log_bytes as f64,
            );
            e.gauge(
                "basalt_raft_asleep",
                "1 where the group is quiesced.",
                &label,
                f64::from(u8::from(g.asleep)),
            );
        }
        let log = groups.log();
        e.gauge(
            "basalt_raft_log_segments",
            "Segment files of the node-wide Raft log.",
            &[],
            log.segment_count() as f64,
        );
        e.gauge(
            "basalt_raft_log_total_bytes",
            "Bytes of the node-wide Raft log's segments.",
            &[],
            log.bytes() as f64,
        );
        e.histogram(
            "basalt_raft_log_fsync_duration_seconds",
            "How long the Raft log's fsyncs took.",
            &[],
            &log.sync_latency(),
        );
        let peers = groups.peers();
        let traffic = peers.traffic();
        e.counter(
            "basalt_peer_sent_bytes_total",
            "Bytes sent to other nodes.",
            &[],
            traffic.sent() as f64,
        );
        e.counter(
            "basalt_peer_received_bytes_total",
            "Bytes received from other nodes.",
            &[],
            traffic.received() as f64,
        );
        e.counter(
            "basalt_peer_queue_full_total",
            "Requests to a peer refused because its queue was full.",
            &[],
            traffic.queue_full() as f64,
        );
        let links = peers.links();
        for (direction, outbound) in [("outbound", true), ("inbound", false)] {
            let n = links.iter().filter(|l| l.outbound == outbound).count();
            e.gauge(
                "basalt_peer_links",
                "Open cluster-port connections, by direction.",
                &[("direction", direction)],
                n as f64,
            );
        }
        let nodes: Vec<u64> = groups.map().read().nodes.keys().copied().collect();
        for node in nodes.iter().filter(|n| **n != groups.node_id()) {
            let name = crate::cluster::node_name(*node);
            if let Some(silence) = peers.silence(*node) {
                e.gauge(
                    "basalt_peer_silence_seconds",
                    "Seconds since the peer last answered this node.",
                    &[("peer", name.as_str())],
                    silence.as_secs_f64(),
                );
            }
            if let Some(round_trips) = peers.round_trips(*node) {
                e.histogram(
                    "basalt_peer_round_trip_seconds",
                    "How long the peer took to answer this node's pings (one a second).",
                    &[("peer", name.as_str())],
                    &round_trips,
                );
            }
        }
    }
}
