//! The settings table: every redis.conf 7.0 parameter plus Basalt's own, and value checks
//! with redis-server's error texts.

use super::params::PARAMS;

/// What values a parameter takes.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Bool,
    Int {
        min: i64,
        max: i64,
    },
    /// An integer that may carry a unit (`1gb`, `100mb`, `64k`).
    Memory {
        min: i64,
        max: i64,
    },
    Enum(&'static [&'static str]),
    Text,
    /// `notify-keyspace-events` flags (`events.rs`), kept in Redis's canonical order.
    KeyspaceEvents,
    /// Percentiles between 0 and 100, separated by spaces
    /// (`latency-tracking-info-percentiles`).
    Percentiles,
}

#[derive(Debug)]
pub struct Param {
    pub name: &'static str,
    pub default: &'static str,
    pub kind: Kind,
    pub mutable: bool,
}

/// Basalt's own settings, beside Redis's.
pub static BASALT_PARAMS: &[Param] = &[
    Param {
        // Keyspace events of the last this-many entries of each shard are kept for
        // KEYEVENTS READ (0: none are kept).
        name: "keyspace-events-log",
        default: "0",
        kind: Kind::Int {
            min: 0,
            max: 1 << 40,
        },
        mutable: false,
    },
    Param {
        name: "shards",
        default: "16",
        // Each shard is a Raft group with its own tasks and timers.
        kind: Kind::Int { min: 1, max: 1024 },
        mutable: false,
    },
    Param {
        name: "block-cache-size",
        // 0: a quarter of the machine's memory (see node/build.rs).
        default: "0",
        kind: Kind::Memory {
            min: 0,
            max: i64::MAX,
        },
        mutable: false,
    },
    Param {
        name: "row-cache-size",
        default: "16777216",
        kind: Kind::Memory {
            min: 0,
            max: i64::MAX,
        },
        mutable: false,
    },
    Param {
        name: "collection-cache-size",
        // 0: a sixteenth of the machine's memory (see node/build.rs).
        default: "0",
        kind: Kind::Memory {
            min: 0,
            max: i64::MAX,
        },
        mutable: false,
    },
    Param {
        name: "memtable-size",
        default: "67108864",
        kind: Kind::Memory {
            min: 65536,
            max: i64::MAX,
        },
        mutable: false,
    },
    Param {
        name: "compression",
        default: "lz4",
        kind: Kind::Enum(&["lz4", "zstd", "none"]),
        mutable: false,
    },
    Param {
        name: "bottom-compression",
        default: "zstd",
        kind: Kind::Enum(&["zstd", "lz4", "none"]),
        mutable: false,
    },
    Param {
        name: "join",
        default: "",
        kind: Kind::Text,
        mutable: false,
    },
    Param {
        name: "cluster-port",
        default: "0",
        kind: Kind::Int { min: 0, max: 65535 },
        mutable: false,
    },
    Param {
        name: "tls-auth-clients",
        default: "yes",
        kind: Kind::Enum(&["yes", "no", "optional"]),
        mutable: true,
    },
    Param {
        // The HTTP port (metrics, health, the cluster map, the key API); 0: closed.
        name: "http-port",
        default: "0",
        kind: Kind::Int { min: 0, max: 65535 },
        mutable: false,
    },
    Param {
        name: "cluster-secret",
        default: "",
        kind: Kind::Text,
        mutable: false,
    },
    Param {
        name: "cluster-redirects",
        default: "auto",
        kind: Kind::Enum(&["auto", "always", "never"]),
        mutable: true,
    },
    Param {
        name: "replica-reads",
        default: "linearizable",
        kind: Kind::Enum(&["linearizable", "stale"]),
        mutable: true,
    },
    Param {
        name: "cross-shard-transactions",
        default: "no",
        kind: Kind::Bool,
        mutable: true,
    },
    Param {
        name: "read-consistency",
        default: "lease",
        kind: Kind::Enum(&["lease", "linearizable"]),
        mutable: false,
    },
    Param {
        name: "replicas",
        default: "3",
        kind: Kind::Int { min: 1, max: 7 },
        mutable: false,
    },
    Param {
        name: "raft-log-segment-size",
        default: "67108864",
        kind: Kind::Memory {
            min: 65536,
            max: 1 << 40,
        },
        mutable: false,
    },
    Param {
        name: "notify-keyspace-events",
        default: "",
        kind: Kind::KeyspaceEvents,
        mutable: true,
    },
    Param {
        name: "engine",
        default: "lsm",
        kind: Kind::Enum(&["lsm", "memory"]),
        mutable: false,
    },
];

/// Parameters Basalt acts on; every other one is accepted, stored and reported but changes
/// nothing (encoding thresholds, RDB/AOF tuning, replication…). docs/CONFIG.md lists both.
pub static EFFECTIVE: &[&str] = &[
    "bind",
    "port",
    "dir",
    "databases",
    "maxclients",
    "proto-max-bulk-len",
    "requirepass",
    "aclfile",
    "acllog-max-len",
    "acl-pubsub-default",
    "protected-mode",
    "hz",
    "slowlog-log-slower-than",
    "slowlog-max-len",
    "client-output-buffer-limit",
    "client-query-buffer-limit",
    "timeout",
    "loglevel",
    "enable-debug-command",
    "maxmemory-policy",
    "appendfsync",
    "block-cache-size",
    "row-cache-size",
    "collection-cache-size",
    "memtable-size",
    "compression",
    "bottom-compression",
    "shards",
    "engine",
    "raft-log-segment-size",
    "join",
    "cluster-port",
    "cluster-secret",
    "http-port",
    "cluster-node-timeout",
    "replicas",
    "read-consistency",
    "cluster-redirects",
    "replica-reads",
    "cross-shard-transactions",
    "cluster-announce-ip",
    "cluster-announce-port",
    "cluster-announce-bus-port",
    "notify-keyspace-events",
    "tracking-table-max-keys",
    "keyspace-events-log",
    "busy-reply-threshold",
    "lua-time-limit",
    "latency-monitor-threshold",
    "latency-tracking",
    "latency-tracking-info-percentiles",
];

/// Two names of one setting (Redis 7 renamed `lua-time-limit`; both stay, always equal).
pub fn twin(name: &str) -> Option<&'static str> {
    match name {
        "busy-reply-threshold" => Some("lua-time-limit"),
        "lua-time-limit" => Some("busy-reply-threshold"),
        _ => None,
    }
}

/// The TLS settings Basalt acts on. Which ports use TLS is fixed at start-up; the
/// certificates, keys and options ([`TLS_RELOADABLE`]) change with CONFIG SET.
pub static TLS_AT_STARTUP: &[&str] = &["tls-port", "tls-cluster"];

/// TLS settings CONFIG SET changes at run time: the endpoints are rebuilt from them (new
/// connections use them).
pub static TLS_RELOADABLE: &[&str] = &[
    "tls-cert-file",
    "tls-key-file",
    "tls-ca-cert-file",
    "tls-auth-clients",
    "tls-protocols",
    "tls-client-cert-file",
    "tls-client-key-file",
];

/// Settings Redis can change at run time but Basalt reads only at start-up (the listener
/// and the data directory are not re-opened).
const STARTUP_ONLY: &[&str] = &[
    "port",
    "bind",
    "dir",
    "cluster-announce-ip",
    "cluster-announce-port",
    "cluster-announce-bus-port",
];

/// Whether CONFIG SET may change `param`.
pub fn settable(param: &Param) -> bool {
    param.mutable && !STARTUP_ONLY.contains(&param.name) && !TLS_AT_STARTUP.contains(&param.name)
}

/// Basalt's definition wins where Redis has a parameter of the same name (`cluster-port`:
/// Basalt validates it as a port).
pub fn find(name: &str) -> Option<&'static Param> {
    BASALT_PARAMS
        .iter()
        .chain(PARAMS)
        .find(|p| p.name == name)
        .or_else(|| {
            let canonical = alias(name)?;
            PARAMS.iter().find(|p| p.name == canonical)
        })
}

pub fn all() -> impl Iterator<Item = &'static Param> {
    PARAMS
        .iter()
        .filter(|p| !BASALT_PARAMS.iter().any(|b| b.name == p.name))
        .chain(BASALT_PARAMS)
}

/// Redis's old names that still work in CONFIG and redis.conf.
fn alias(name: &str) -> Option<&'static str> {
    Some(match name {
        "slaveof" => "replicaof",
        "slave-serve-stale-data" => "replica-serve-stale-data",
        "slave-read-only" => "replica-read-only",
        "slave-priority" => "replica-priority",
        "hash-max-ziplist-entries" => "hash-max-listpack-entries",
        "hash-max-ziplist-value" => "hash-max-listpack-value",
        "zset-max-ziplist-entries" => "zset-max-listpack-entries",
        "zset-max-ziplist-value" => "zset-max-listpack-value",
        _ => return None,
    })
}

/// Parses a memory value the way redis.conf does: `1gb`, `10mb`, `64k`, plain bytes.
pub fn parse_memory(text: &str) -> Option<i64> {
    let lower = text.to_ascii_lowercase();
    let units: [(&str, i64); 8] = [
        ("gb", 1 << 30),
        ("mb", 1 << 20),
        ("kb", 1 << 10),
        ("g", 1_000_000_000),
        ("m", 1_000_000),
        ("k", 1000),
        ("b", 1),
        ("", 1),
    ];
    for (suffix, mul) in units {
        if let Some(num) = lower.strip_suffix(suffix) {
            if num.is_empty()
                || !num
                    .trim_start_matches('-')
                    .bytes()
                    .all(|b| b.is_ascii_digit())
            {
                continue;
            }
            return num.parse::<i64>().ok()?.checked_mul(mul);
        }
    }
    None
}

/// `latency-tracking-info-percentiles`: numbers between 0 and 100, with redis-server's
/// error texts.
pub fn parse_percentiles(text: &str) -> Result<Vec<f64>, &'static str> {
    text.split_whitespace()
        .map(|w| {
            let p: f64 = w
                .parse()
                .map_err(|_| "Invalid latency-tracking-info-percentiles parameters")?;
            if !(0.0..=100.0).contains(&p) {
                return Err(
                    "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]",
                );
            }
            Ok(p)
        })
        .collect()
}

/// Checks `value` for `param`; the error is the text after Redis's "CONFIG SET failed … - ".
pub fn validate(param: &Param, value: &str) -> Result<String, String> {
    match param.kind {
        Kind::Bool => match value.to_ascii_lowercase().as_str() {
            v @ ("yes" | "no") => Ok(v.to_string()),
            _ => Err("argument must be 'yes' or 'no'".into()),
        },
        Kind::Int { min, max } => {
            let n: i64 = value
                .parse()
                .map_err(|_| "argument couldn't be parsed into an integer".to_string())?;
            check_range(n, min, max)?;
            Ok(n.to_string())
        }
        Kind::Memory { min, max } => {
            let n =
                parse_memory(value).ok_or_else(|| "argument must be a memory value".to_string())?;
            check_range(n, min, max)?;
            Ok(n.to_string())
        }
        Kind::Enum(choices) => {
            let lower = value.to_ascii_lowercase();
            if choices.contains(&lower.as_str()) {
                Ok(lower)
            } else {
                Err(format!(
                    "argument(s) must be one of the following: {}",
                    choices.join(", ")
                ))
            }
        }
        Kind::Text => Ok(value.to_string()),
        Kind::KeyspaceEvents => super::events::parse(value)
            .map(super::events::format)
            .ok_or_else(|| super::events::INVALID.to_string()),
        Kind::Percentiles => parse_percentiles(value)
            .map(|_| value.split_whitespace().collect::<Vec<_>>().join(" "))
            .map_err(str::to_string),
    }
}

fn check_range(n: i64, min: i64, max: i64) -> Result<(), String> {
    if n < min || n > max {
        Err(format!(
            "argument must be between {min} and {max} inclusive"
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("1gb"), Some(1 << 30));
        assert_eq!(parse_memory("64K"), Some(64_000));
        assert_eq!(parse_memory("512mb"), Some(512 << 20));
        assert_eq!(parse_memory("100"), Some(100));
        assert_eq!(parse_memory("x"), None);
        assert_eq!(parse_memory(""), None);
    }

    #[test]
    fn a_name_is_listed_once_and_basalt_defines_its_own() {
        let names: Vec<&str> = all().map(|p| p.name).collect();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(names.len(), unique.len(), "a parameter is listed twice");
        let port = find("cluster-port").unwrap();
        assert!(validate(port, "70000").is_err() && validate(port, "17000").is_ok());
    }

    #[test]
    fn every_default_is_valid() {
        for p in all() {
            assert!(
                validate(p, p.default).is_ok(),
                "{} default {:?}",
                p.name,
                p.default
            );
        }
    }
}
