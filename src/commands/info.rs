//! INFO: Redis's sections (server, clients, memory, persistence, stats, replication, cpu,
//! modules, errorstats, cluster, keyspace, commandstats) plus Basalt's version.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::args;
use super::connection::REDIS_VERSION;
use super::{reply, CmdResult, Ctx};
use crate::clock;
use crate::metrics::process;
use crate::protocol::Reply;

const DEFAULT_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "errorstats",
    "cluster",
    "keyspace",
    "storage",
    "raft",
];
const ALL_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "commandstats",
    "errorstats",
    "latencystats",
    "cluster",
    "keyspace",
    "storage",
    "raft",
];

pub fn info(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut wanted: Vec<&str> = Vec::new();
    let requested: Vec<String> = args[1..].iter().map(|a| args::lower(a)).collect();
    if requested.is_empty() || requested.iter().any(|r| r == "default") {
        wanted.extend(DEFAULT_SECTIONS);
    }
    if requested.iter().any(|r| r == "all" || r == "everything") {
        wanted.extend(ALL_SECTIONS);
    }
    for r in &requested {
        if let Some(s) = ALL_SECTIONS.iter().find(|s| *s == r) {
            wanted.push(s);
        }
    }
    let mut text = String::new();
    for section in ALL_SECTIONS.iter().filter(|s| wanted.contains(s)) {
        if !text.is_empty() {
            text.push_str("\r\n");
        }
        render(ctx, section, &mut text);
    }
    reply(Reply::Verbatim("txt", Bytes::from(text)))
}

fn human_bytes(n: u64) -> String {
    let units = [("G", 1u64 << 30), ("M", 1 << 20), ("K", 1 << 10)];
    for (unit, size) in units {
        if n >= size {
            return format!("{:.2}{unit}", n as f64 / size as f64);
        }
    }
    format!("{n}B")
}

fn render(ctx: &Ctx, section: &str, out: &mut String) {
    let shared = ctx.shared;
    let stats = &shared.stats;
    // A key starting with '#' is a section header and has no value.
    let mut line = |k: &str, v: &dyn std::fmt::Display| {
        let _ = if k.starts_with('#') {
            write!(out, "{k}\r\n")
        } else {
            write!(out, "{k}:{v}\r\n")
        };
    };
    match section {
        "server" => {
            let uptime = shared.started.elapsed().as_secs();
            line("# Server", &"");
            line("redis_version", &REDIS_VERSION);
            line("basalt_version", &env!("CARGO_PKG_VERSION"));
            line("redis_git_sha1", &"00000000");
            line("redis_git_dirty", &0);
            line("redis_mode", &"standalone");
            line("os", &std::env::consts::OS);
            line("arch_bits", &64);
            line("multiplexing_api", &"epoll");
            line("process_id", &std::process::id());
            line("process_supervised", &"no");
            line("run_id", &shared.run_id);
            line("tcp_port", &shared.tcp_port);
            line("server_time_usec", &clock::now_us());
            line("uptime_in_seconds", &uptime);
            line("uptime_in_days", &(uptime / 86400));
            line("hz", &shared.config.hz());
            line("configured_hz", &shared.config.hz());
            line("lru_clock", &((clock::now_ms() / 1000) & ((1 << 24) - 1)));
            let exe = std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            line("executable", &exe);
            let file = shared
                .config
                .config_file()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            line("config_file", &file);
            line("io_threads_active", &0);
        }
        "clients" => {
            line("# Clients", &"");
            line("connected_clients", &shared.clients.count());
            line("cluster_connections", &0);
            line("maxclients", &shared.config.maxclients());
            line("client_recent_max_input_buffer", &0);
            line("client_recent_max_output_buffer", &0);
            line("blocked_clients", &shared.blocking.blocked_clients());
            line("tracking_clients", &shared.tracking.tracking_clients());
            line("clients_in_timeout_table", &0);
        }
        "memory" => {
            let used = shared.keyspace.engine().memory_bytes();
            let rss = process::rss_bytes();
            line("# Memory", &"");
            line("used_memory", &used);
            line("used_memory_human", &human_bytes(used));
            line("used_memory_rss", &rss);
            line("used_memory_rss_human", &human_bytes(rss));
            let maxmemory: u64 = shared.config.get("maxmemory").parse().unwrap_or(0);
            line("maxmemory", &maxmemory);
            line("maxmemory_human", &human_bytes(maxmemory));
            line("maxmemory_policy", &shared.config.get("maxmemory-policy"));
            let ratio = if used > 0 {
                rss as f64 / used as f64
            } else {
                0.0
            };
            line("mem_fragmentation_ratio", &format!("{ratio:.2}"));
            let lua = shared.scripts.lua_memory();
            line("used_memory_lua", &lua);
            line("used_memory_lua_human", &human_bytes(lua as u64));
            let (cached, eval_bytes) = shared.scripts.cached();
            let library_bytes: usize = shared
                .scripts
                .libraries()
                .values()
                .map(|l| l.code.len())
                .sum();
            line("used_memory_scripts_eval", &eval_bytes);
            line("number_of_cached_scripts", &cached);
            let scripts = eval_bytes + library_bytes;
            line("used_memory_scripts", &scripts);
            line("used_memory_scripts_human", &human_bytes(scripts as u64));
        }
        "persistence" => {
            line("# Persistence", &"");
            line("loading", &0);
            line("async_loading", &0);
            line(
                "rdb_changes_since_last_save",
                &shared.changes_since_save.load(Ordering::Relaxed),
            );
            line("rdb_bgsave_in_progress", &0);
            line(
                "rdb_last_save_time",
                &shared.last_save_unix_secs.load(Ordering::Relaxed),
            );
            line("rdb_last_bgsave_status", &"ok");
            line("aof_enabled", &0);
            line("aof_rewrite_in_progress", &0);
            line("aof_last_write_status", &"ok");
        }
        "stats" => {
            line("# Stats", &"");
            line(
                "total_connections_received",
                &shared.clients.total_connections.load(Ordering::Relaxed),
            );
            line("total_commands_processed", &stats.commands_processed.get());
            line("instantaneous_ops_per_sec", &stats.ops_per_sec());
            line("total_net_input_bytes", &stats.net_input_bytes.get());
            line("total_net_output_bytes", &stats.net_output_bytes.get());
            line(
                "rejected_connections",
                &shared.clients.rejected_connections.load(Ordering::Relaxed),
            );
            line("expired_keys", &stats.expired_keys.get());
            line("forwarded_commands", &stats.forwarded_commands.get());
            use crate::commands::pubsub::hub::Kind;
            line(
                "pubsub_channels",
                &shared.pubsub.active(Kind::Channel, None).len(),
            );
            line("pubsub_patterns", &shared.pubsub.patterns());
            line(
                "pubsubshard_channels",
                &shared.pubsub.active(Kind::Shard, None).len(),
            );
            line("pubsub_fanout_dropped", &stats.pubsub_fanout_dropped.get());
            line("evicted_keys", &0);
            let (keys, items, prefixes) = shared.tracking.totals();
            line("tracking_total_keys", &keys);
            line("tracking_total_items", &items);
            line("tracking_total_prefixes", &prefixes);
            line("keyspace_hits", &stats.keyspace_hits.get());
            line("keyspace_misses", &stats.keyspace_misses.get());
            line("total_error_replies", &stats.error_replies.get());
        }
        "replication" => {
            line("# Replication", &"");
            line("role", &"master");
            line("connected_slaves", &0);
            line("master_replid", &shared.run_id);
            line("master_repl_offset", &0);
        }
        "cpu" => {
            let (user, sys) = process::cpu_secs();
            line("# CPU", &"");
            line("used_cpu_sys", &format!("{sys:.6}"));
            line("used_cpu_user", &format!("{user:.6}"));
            line("used_cpu_sys_children", &"0.000000");
            line("used_cpu_user_children", &"0.000000");
        }
        "modules" => line("# Modules", &""),
        "latencystats" => {
            line("# Latencystats", &"");
            for (k, v) in super::latency::info_lines(ctx) {
                line(&k, &v);
            }
        }
        "errorstats" => {
            line("# Errorstats", &"");
            for (prefix, count) in stats.errors_by_prefix.lock().iter() {
                line(&format!("errorstat_{prefix}"), &format!("count={count}"));
            }
        }
        "cluster" => {
            line("# Cluster", &"");
            // A lone node answers CLUSTER commands too, but is not a cluster.
            let in_cluster = ctx.cluster.cluster_state().known_nodes > 1;
            line("cluster_enabled", &u8::from(in_cluster));
        }
        "keyspace" => {
            line("# Keyspace", &"");
            for db in 0..shared.keyspace.databases() {
                let keys = shared.keyspace.dbsize(db);
                if keys > 0 {
                    let expires = shared.keyspace.volatile_count(db);
                    line(
                        &format!("db{db}"),
                        &format!("keys={keys},expires={expires},avg_ttl=0"),
                    );
                }
            }
        }
        "raft" => {
            line("# Raft", &"");
            for (k, v) in ctx.cluster.replication_info() {
                line(&k, &v);
            }
        }
        "storage" => {
            line("# Storage", &"");
            for (k, v) in shared
                .keyspace
                .engine()
                .info()
                .into_iter()
                .chain(shared.keyspace.cache_info())
            {
                line(&k, &v);
            }
        }
        "commandstats" => {
            line("# Commandstats", &"");
            for c in shared.table.every_command() {
                let calls = c.stats.calls.get();
                let rejected = c.stats.rejected_calls.get();
                if calls == 0 && rejected == 0 {
                    continue;
                }
                let usec = c.stats.usec.get();
                let per_call = if calls > 0 {
                    usec as f64 / calls as f64
                } else {
                    0.0
                };
                let failed = c.stats.failed_calls.get();
                line(
                    &format!("cmdstat_{}", c.spec.name),
                    &format!("calls={calls},usec={usec},usec_per_call={per_call:.2},rejected_calls={rejected},failed_calls={failed}"),
                );
            }
        }
        _ => {}
    }
}
