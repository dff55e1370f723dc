//! Per-connection limits read from the settings: query buffer, output buffer, idle timeout.

use std::time::{Duration, Instant};

use crate::config::table::parse_memory;
use crate::config::Config;

/// `client-output-buffer-limit` for normal clients: hard bytes, soft bytes, soft seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutputLimit {
    pub hard_bytes: u64,
    pub soft_bytes: u64,
    pub soft_secs: u64,
}

impl OutputLimit {
    /// Parses the `normal` class out of e.g. `normal 0 0 0 replica 256mb 64mb 60 …`.
    pub fn from_config(config: &Config) -> OutputLimit {
        let text = config.get("client-output-buffer-limit");
        let words: Vec<&str> = text.split_whitespace().collect();
        words
            .chunks(4)
            .find(|c| c.len() == 4 && c[0] == "normal")
            .and_then(|c| {
                Some(OutputLimit {
                    hard_bytes: parse_memory(c[1])? as u64,
                    soft_bytes: parse_memory(c[2])? as u64,
                    soft_secs: c[3].parse().ok()?,
                })
            })
            .unwrap_or_default()
    }
}

/// Tracks how long a connection's pending output has been over the soft limit.
#[derive(Default)]
pub struct OutputWatch {
    over_soft_since: Option<Instant>,
}

impl OutputWatch {
    /// Whether `pending` bytes of output break the limit (the client is then closed).
    pub fn exceeded(&mut self, limit: &OutputLimit, pending: u64) -> bool {
        if limit.hard_bytes > 0 && pending >= limit.hard_bytes {
            return true;
        }
        if limit.soft_bytes > 0 && pending >= limit.soft_bytes {
            let since = *self.over_soft_since.get_or_insert_with(Instant::now);
            return since.elapsed() >= Duration::from_secs(limit.soft_secs);
        }
        self.over_soft_since = None;
        false
    }
}

/// Idle timeout (`timeout`, seconds; 0 = none).
pub fn idle_timeout(config: &Config) -> Option<Duration> {
    config
        .get("timeout")
        .parse::<u64>()
        .ok()
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
}

/// `client-query-buffer-limit` in bytes.
pub fn query_buffer_bytes_max(config: &Config) -> usize {
    parse_memory(&config.get("client-query-buffer-limit")).map_or(1 << 30, |n| n as usize)
}
