//! Settings: redis.conf directive names, given as flags (`--port 7000`) or in a
//! redis.conf-style file (`basalt basalt.conf --port 7001`), readable and partly changeable
//! at run time through CONFIG GET/SET/REWRITE.
//!
//! Values are kept as their canonical text (what CONFIG GET returns); the few that the hot
//! path reads are mirrored in atomics.

pub mod events;
pub mod params;
pub mod table;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicU8, Ordering};

use parking_lot::RwLock;

use crate::glob::glob_match;
use crate::protocol::decode::split_inline_args;
use table::Param;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("Bad directive or wrong number of arguments: '{0}'")]
    UnknownDirective(String),
    #[error("Invalid argument for '{name}': {reason}")]
    Invalid { name: String, reason: String },
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Usage(String),
}

pub struct Config {
    values: RwLock<BTreeMap<&'static str, String>>,
    config_file: Option<PathBuf>,
    bulk_len_bytes_max: AtomicU64,
    maxclients: AtomicU64,
    slowlog_slower_than_us: AtomicI64,
    slowlog_max_len: AtomicU64,
    latency_monitor_threshold_ms: AtomicU64,
    latency_tracking: AtomicBool,
    tracking_table_max_keys: AtomicU64,
    keyspace_events_log: AtomicU64,
    hz: AtomicU64,
    query_buffer_bytes_max: AtomicU64,
    idle_timeout_secs: AtomicU64,
    /// `client-output-buffer-limit` for normal clients: hard, soft bytes and soft seconds.
    output_limit: [AtomicU64; 3],
    pubsub_output_limit: [AtomicU64; 3],
    /// `notify-keyspace-events` as flags (`events.rs`).
    keyspace_events: AtomicU32,
    lfu_policy: AtomicBool,
    password_set: AtomicBool,
    cluster_redirects: AtomicU8,
    stale_replica_reads: AtomicBool,
    cross_shard_transactions: AtomicBool,
    /// The `user` directives: each line's arguments after `user`.
    user_lines: Vec<Vec<String>>,
}

impl Config {
    /// Defaults for every setting.
    pub fn defaults() -> Config {
        let values = table::all()
            .map(|p| (p.name, p.default.to_string()))
            .collect();
        let config = Config {
            values: RwLock::new(values),
            config_file: None,
            bulk_len_bytes_max: AtomicU64::new(0),
            maxclients: AtomicU64::new(0),
            slowlog_slower_than_us: AtomicI64::new(0),
            slowlog_max_len: AtomicU64::new(0),
            latency_monitor_threshold_ms: AtomicU64::new(0),
            latency_tracking: AtomicBool::new(true),
            tracking_table_max_keys: AtomicU64::new(0),
            keyspace_events_log: AtomicU64::new(0),
            hz: AtomicU64::new(0),
            query_buffer_bytes_max: AtomicU64::new(0),
            idle_timeout_secs: AtomicU64::new(0),
            output_limit: Default::default(),
            pubsub_output_limit: Default::default(),
            keyspace_events: AtomicU32::new(0),
            lfu_policy: AtomicBool::new(false),
            cluster_redirects: AtomicU8::new(Redirects::Auto as u8),
            stale_replica_reads: AtomicBool::new(false),
            cross_shard_transactions: AtomicBool::new(false),
            password_set: AtomicBool::new(false),
            user_lines: Vec::new(),
        };
        config.refresh_hot();
        config
    }

    /// Parses `basalt [config-file] [--name value...]...`, as redis-server takes them.
    pub fn from_args(args: &[String]) -> Result<Config, ConfigError> {
        let mut config = Config::defaults();
        let mut rest = args;
        if let Some(first) = args.first() {
            if !first.starts_with("--") {
                let path = PathBuf::from(first);
                let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                config.load_text(&text)?;
                config.config_file = Some(std::fs::canonicalize(&path).unwrap_or(path));
                rest = &args[1..];
            }
        }
        let mut i = 0;
        while i < rest.len() {
            let flag = rest[i]
                .strip_prefix("--")
                .ok_or_else(|| ConfigError::Usage(format!("unexpected argument '{}'", rest[i])))?;
            let mut values = Vec::new();
            i += 1;
            while i < rest.len() && !rest[i].starts_with("--") {
                values.push(rest[i].clone());
                i += 1;
            }
            config.set_directive(flag, &values)?;
        }
        config.refresh_hot();
        Ok(config)
    }

    fn load_text(&mut self, text: &str) -> Result<(), ConfigError> {
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let args = split_inline_args(line.as_bytes())
                .ok_or_else(|| ConfigError::UnknownDirective(line.to_string()))?;
            let args: Vec<String> = args
                .iter()
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            if let Some((name, values)) = args.split_first() {
                self.set_directive(name, values)?;
            }
        }
        Ok(())
    }

    fn set_directive(&mut self, name: &str, values: &[String]) -> Result<(), ConfigError> {
        let lower = name.to_ascii_lowercase();
        if lower == "user" {
            // ACL users, read by the node at start-up (`node::users`).
            self.user_lines.push(values.to_vec());
            return Ok(());
        }
        let param = table::find(&lower).ok_or(ConfigError::UnknownDirective(lower.clone()))?;
        let joined = values.join(" ");
        let value = table::validate(param, &joined).map_err(|reason| ConfigError::Invalid {
            name: lower.clone(),
            reason,
        })?;
        let databases_ok =
            param.name != "databases" || value.parse::<u16>().is_ok_and(|n| (1..=254).contains(&n));
        if !databases_ok {
            return Err(ConfigError::Invalid {
                name: lower,
                reason: "Basalt supports 1 to 254 databases".into(),
            });
        }
        let values = self.values.get_mut();
        if let Some(twin) = table::twin(param.name) {
            values.insert(twin, value.clone());
        }
        values.insert(param.name, value);
        Ok(())
    }

    fn refresh_hot(&self) {
        let num = |name: &str| self.get(name).parse::<i64>().unwrap_or(0);
        self.bulk_len_bytes_max
            .store(num("proto-max-bulk-len") as u64, Ordering::Relaxed);
        self.maxclients
            .store(num("maxclients") as u64, Ordering::Relaxed);
        self.slowlog_slower_than_us
            .store(num("slowlog-log-slower-than"), Ordering::Relaxed);
        self.slowlog_max_len
            .store(num("slowlog-max-len") as u64, Ordering::Relaxed);
        self.latency_monitor_threshold_ms.store(
            num("latency-monitor-threshold").max(0) as u64,
            Ordering::Relaxed,
        );
        self.latency_tracking
            .store(self.get("latency-tracking") == "yes", Ordering::Relaxed);
        self.tracking_table_max_keys
            .store(num("tracking-table-max-keys") as u64, Ordering::Relaxed);
        self.keyspace_events_log
            .store(num("keyspace-events-log") as u64, Ordering::Relaxed);
        self.hz
            .store(num("hz").clamp(1, 500) as u64, Ordering::Relaxed);
        let query_max =
            table::parse_memory(&self.get("client-query-buffer-limit")).unwrap_or(1 << 30);
        self.query_buffer_bytes_max
            .store(query_max as u64, Ordering::Relaxed);
        self.idle_timeout_secs
            .store(num("timeout").max(0) as u64, Ordering::Relaxed);
        let events = events::parse(&self.get("notify-keyspace-events")).unwrap_or(0);
        self.keyspace_events.store(events, Ordering::Relaxed);
        let limits = self.get("client-output-buffer-limit");
        for (class, slots) in [
            ("normal", &self.output_limit),
            ("pubsub", &self.pubsub_output_limit),
        ] {
            for (slot, value) in slots.iter().zip(class_output_limit(&limits, class)) {
                slot.store(value, Ordering::Relaxed);
            }
        }
        self.lfu_policy.store(
            self.get("maxmemory-policy").contains("lfu"),
            Ordering::Relaxed,
        );
        self.password_set
            .store(!self.get("requirepass").is_empty(), Ordering::Relaxed);
        let redirects = match self.get("cluster-redirects").as_str() {
            "always" => Redirects::Always,
            "never" => Redirects::Never,
            _ => Redirects::Auto,
        };
        self.cluster_redirects
            .store(redirects as u8, Ordering::Relaxed);
        self.stale_replica_reads
            .store(self.get("replica-reads") == "stale", Ordering::Relaxed);
        self.cross_shard_transactions.store(
            self.get("cross-shard-transactions") == "yes",
            Ordering::Relaxed,
        );
    }

    pub fn get(&self, name: &str) -> String {
        self.values.read().get(name).cloned().unwrap_or_default()
    }

    pub fn config_file(&self) -> Option<&Path> {
        self.config_file.as_deref()
    }

    /// `(name, value)` of every setting matching one of the glob `patterns`, in name order.
    pub fn matching(&self, patterns: &[String]) -> Vec<(&'static str, String)> {
        let values = self.values.read();
        let mut out = Vec::new();
        for (name, value) in values.iter() {
            if patterns
                .iter()
                .any(|p| glob_match(p.as_bytes(), name.as_bytes(), true))
            {
                out.push((*name, displayed(name, value)));
            }
        }
        out
    }

    /// CONFIG SET of several pairs: all are checked first, then all applied.
    pub fn set_many(&self, pairs: &[(String, String)]) -> Result<(), String> {
        let mut checked: Vec<(&'static Param, String)> = Vec::new();
        for (name, value) in pairs {
            let lower = name.to_ascii_lowercase();
            let Some(param) = table::find(&lower) else {
                return Err(format!(
                    "ERR Unknown option or number of arguments for CONFIG SET - '{name}'"
                ));
            };
            if checked.iter().any(|(p, _)| p.name == param.name) {
                return Err(format!(
                    "ERR CONFIG SET failed (possibly related to argument '{lower}') - duplicate parameter"
                ));
            }
            if !table::settable(param) {
                return Err(format!(
                    "ERR CONFIG SET failed (possibly related to argument '{lower}') - can't set immutable config"
                ));
            }
            let value = table::validate(param, value).map_err(|reason| {
                format!("ERR CONFIG SET failed (possibly related to argument '{lower}') - {reason}")
            })?;
            checked.push((param, value));
        }
        let mut values = self.values.write();
        for (param, value) in checked {
            if let Some(twin) = table::twin(param.name) {
                values.insert(twin, value.clone());
            }
            values.insert(param.name, value);
        }
        drop(values);
        self.refresh_hot();
        Ok(())
    }

    /// CONFIG REWRITE: writes every setting that differs from its default to the config file.
    pub fn rewrite(&self) -> Result<(), String> {
        let Some(path) = &self.config_file else {
            return Err("ERR The server is running without a config file".into());
        };
        let values = self.values.read();
        let mut text = String::from("# Written by Basalt's CONFIG REWRITE\n");
        for param in table::all() {
            let value = values
                .get(param.name)
                .map(String::as_str)
                .unwrap_or(param.default);
            if value != param.default {
                text.push_str(&format!("{} {}\n", param.name, quote(value)));
            }
        }
        for line in &self.user_lines {
            let args: Vec<String> = line.iter().map(|a| quote(a)).collect();
            text.push_str(&format!("user {}\n", args.join(" ")));
        }
        let tmp = path.with_extension("tmp-rewrite");
        std::fs::write(&tmp, text)
            .and_then(|_| std::fs::rename(&tmp, path))
            .map_err(|e| format!("ERR Rewriting config file: {e}"))
    }

    pub fn bulk_len_bytes_max(&self) -> usize {
        self.bulk_len_bytes_max.load(Ordering::Relaxed) as usize
    }
    pub fn maxclients(&self) -> u64 {
        self.maxclients.load(Ordering::Relaxed)
    }
    pub fn slowlog_slower_than_us(&self) -> i64 {
        self.slowlog_slower_than_us.load(Ordering::Relaxed)
    }
    /// `latency-monitor-threshold` in milliseconds (0: the monitor is off).
    pub fn latency_monitor_threshold_ms(&self) -> u64 {
        self.latency_monitor_threshold_ms.load(Ordering::Relaxed)
    }
    /// `latency-tracking`: whether commands' latency histograms are kept.
    pub fn latency_tracking(&self) -> bool {
        self.latency_tracking.load(Ordering::Relaxed)
    }
    pub fn slowlog_max_len(&self) -> u64 {
        self.slowlog_max_len.load(Ordering::Relaxed)
    }
    /// `tracking-table-max-keys`: keys the tracking table holds at most (0: no limit).
    pub fn tracking_table_max_keys(&self) -> usize {
        self.tracking_table_max_keys.load(Ordering::Relaxed) as usize
    }
    /// `keyspace-events-log`: entries of each shard whose keyspace events are kept for
    /// KEYEVENTS (0: none).
    pub fn keyspace_events_log(&self) -> u64 {
        self.keyspace_events_log.load(Ordering::Relaxed)
    }
    pub fn hz(&self) -> u64 {
        self.hz.load(Ordering::Relaxed)
    }
    /// `client-query-buffer-limit` in bytes.
    pub fn query_buffer_bytes_max(&self) -> usize {
        self.query_buffer_bytes_max.load(Ordering::Relaxed) as usize
    }
    /// `timeout`: seconds a client may stay idle (0 = forever).
    pub fn idle_timeout_secs(&self) -> u64 {
        self.idle_timeout_secs.load(Ordering::Relaxed)
    }
    /// `client-output-buffer-limit normal`: (hard bytes, soft bytes, soft seconds).
    pub fn output_limit(&self) -> (u64, u64, u64) {
        load_limit(&self.output_limit)
    }
    /// `client-output-buffer-limit pubsub`: (hard bytes, soft bytes, soft seconds), for
    /// subscribed clients.
    pub fn pubsub_output_limit(&self) -> (u64, u64, u64) {
        load_limit(&self.pubsub_output_limit)
    }
    /// `notify-keyspace-events` as flags (`events.rs`); 0 when none are sent.
    pub fn keyspace_events(&self) -> u32 {
        self.keyspace_events.load(Ordering::Relaxed)
    }
    /// The normal class of output limit, or the pubsub class for a subscribed client.
    pub fn output_limit_for(&self, subscribed: bool) -> (u64, u64, u64) {
        if subscribed {
            self.pubsub_output_limit()
        } else {
            self.output_limit()
        }
    }
    /// Whether `maxmemory-policy` is an LFU policy.
    pub fn lfu_policy(&self) -> bool {
        self.lfu_policy.load(Ordering::Relaxed)
    }
    /// The config file's (and command line's) `user` directives.
    pub fn user_lines(&self) -> &[Vec<String>] {
        &self.user_lines
    }
    /// Whether `requirepass` is set.
    pub fn password_set(&self) -> bool {
        self.password_set.load(Ordering::Relaxed)
    }
    /// `replica-reads stale`: READONLY reads on a replica skip the leader's read index.
    pub fn stale_replica_reads(&self) -> bool {
        self.stale_replica_reads.load(Ordering::Relaxed)
    }
    /// `cross-shard-transactions yes`: a transaction (or write) over keys of several shards
    /// runs as a two-phase commit across their groups instead of getting CROSSSLOT.
    pub fn cross_shard_transactions(&self) -> bool {
        self.cross_shard_transactions.load(Ordering::Relaxed)
    }
    /// `cluster-redirects`: which connections get MOVED for a slot led elsewhere.
    pub fn cluster_redirects(&self) -> Redirects {
        match self.cluster_redirects.load(Ordering::Relaxed) {
            x if x == Redirects::Always as u8 => Redirects::Always,
            x if x == Redirects::Never as u8 => Redirects::Never,
            _ => Redirects::Auto,
        }
    }
}

/// `cluster-redirects`: which connections get `MOVED` for a key whose shard another node
/// leads; the others have the command forwarded there and relayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redirects {
    /// Connections that asked for the cluster's layout (CLUSTER SLOTS, SHARDS, NODES) or
    /// sent READONLY: cluster clients.
    Auto,
    Always,
    Never,
}

/// One class of `client-output-buffer-limit` (`normal 0 0 0 replica 256mb 64mb 60 …`):
/// hard bytes, soft bytes, soft seconds.
fn class_output_limit(text: &str, class: &str) -> [u64; 3] {
    let words: Vec<&str> = text.split_whitespace().collect();
    words
        .chunks(4)
        .find(|c| c.len() == 4 && c[0] == class)
        .and_then(|c| {
            let hard = table::parse_memory(c[1])?;
            let soft = table::parse_memory(c[2])?;
            Some([hard.max(0) as u64, soft.max(0) as u64, c[3].parse().ok()?])
        })
        .unwrap_or([0, 0, 0])
}

/// A setting's value as CONFIG GET shows it: `notify-keyspace-events` is kept with every
/// flag (`An`) but shown as Redis shows it (`A`).
fn displayed(name: &str, value: &str) -> String {
    match name {
        "notify-keyspace-events" => events::display(value),
        _ => value.to_string(),
    }
}

fn load_limit([h, s, t]: &[AtomicU64; 3]) -> (u64, u64, u64) {
    (
        h.load(Ordering::Relaxed),
        s.load(Ordering::Relaxed),
        t.load(Ordering::Relaxed),
    )
}

/// Values are written unquoted (multi-word ones such as `save 3600 1` included), empty
/// ones as `""`.
fn quote(value: &str) -> String {
    if value.is_empty() {
        "\"\"".into()
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn flags_and_file() {
        let dir = std::env::temp_dir().join(format!("basalt-conf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("b.conf");
        std::fs::write(&file, "# comment\nport 7000\nmaxclients 50\nsave \"\"\n").unwrap();
        let mut a = vec![file.to_string_lossy().into_owned()];
        a.extend(args("--port 7001 --appendfsync always --save 900 1"));
        let c = Config::from_args(&a).unwrap();
        assert_eq!(c.get("port"), "7001");
        assert_eq!(c.get("maxclients"), "50");
        assert_eq!(c.get("appendfsync"), "always");
        assert_eq!(c.get("save"), "900 1");
        assert!(Config::from_args(&args("--nonsense 1")).is_err());
        assert!(Config::from_args(&args("--appendfsync sometimes")).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn set_many_is_all_or_nothing() {
        let c = Config::defaults();
        let pairs = |p: &[(&str, &str)]| {
            p.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<Vec<_>>()
        };
        assert!(c
            .set_many(&pairs(&[("maxclients", "5"), ("hz", "x")]))
            .is_err());
        assert_eq!(c.maxclients(), 10000);
        c.set_many(&pairs(&[
            ("maxclients", "5"),
            ("proto-max-bulk-len", "1mb"),
        ]))
        .unwrap();
        assert_eq!((c.maxclients(), c.bulk_len_bytes_max()), (5, 1 << 20));
        let err = c.set_many(&pairs(&[("databases", "3")])).unwrap_err();
        assert!(err.contains("can't set immutable config"), "{err}");
        // Two names of one setting move together.
        c.set_many(&pairs(&[("lua-time-limit", "1234")])).unwrap();
        assert_eq!(c.get("busy-reply-threshold"), "1234");
        let flags = ["--busy-reply-threshold", "77"].map(String::from);
        assert_eq!(
            Config::from_args(&flags).unwrap().get("lua-time-limit"),
            "77"
        );
    }
}
