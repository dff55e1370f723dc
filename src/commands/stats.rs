//! Counters behind INFO (stats, commandstats, errorstats) and the SLOWLOG.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;

use crate::limits::{SLOWLOG_ARGS_MAX, SLOWLOG_ARG_BYTES_MAX};
use crate::metrics::histogram::Histogram;
use crate::metrics::Counter;

/// Calls, time and failures of one command.
#[derive(Default)]
pub struct CommandStats {
    pub calls: Counter,
    pub usec: Counter,
    pub rejected_calls: Counter,
    pub failed_calls: Counter,
    /// How long calls took (what `usec` sums), for the Prometheus exposition.
    pub latency: Histogram,
}

impl CommandStats {
    /// Records one call that took `elapsed_us` (in the histogram too when `track`).
    pub fn record_call(&self, elapsed_us: u64, track: bool) {
        self.calls.add(1);
        self.usec.add(elapsed_us);
        if track {
            self.latency.observe_us(elapsed_us);
        }
    }

    pub fn reset(&self) {
        self.latency.reset();
        for c in [
            &self.calls,
            &self.usec,
            &self.rejected_calls,
            &self.failed_calls,
        ] {
            c.reset();
        }
    }
}

#[derive(Default)]
pub struct Stats {
    pub commands_processed: Counter,
    pub net_input_bytes: Counter,
    pub net_output_bytes: Counter,
    pub expired_keys: Counter,
    pub keyspace_hits: Counter,
    pub keyspace_misses: Counter,
    pub error_replies: Counter,
    /// Commands sent to the node leading their shard (INFO `forwarded_commands`).
    pub forwarded_commands: Counter,
    /// Published messages not passed to the other nodes because too many were waiting
    /// (INFO `pubsub_fanout_dropped`).
    pub pubsub_fanout_dropped: Counter,
    pub errors_by_prefix: Mutex<BTreeMap<String, u64>>,
    /// (unix ms, commands processed) at the last two samples, for instantaneous ops/sec.
    pub ops_samples: Mutex<VecDeque<(u64, u64)>>,
}

impl Stats {
    pub fn count_error(&self, prefix: &str) {
        self.error_replies.incr();
        *self
            .errors_by_prefix
            .lock()
            .entry(prefix.to_string())
            .or_default() += 1;
    }

    pub fn hit(&self, hit: bool) {
        if hit {
            self.keyspace_hits.incr();
        } else {
            self.keyspace_misses.incr();
        }
    }

    /// Records a sample for the ops/sec estimate (called by the periodic task).
    pub fn sample_ops(&self, now_ms: u64) {
        let mut samples = self.ops_samples.lock();
        samples.push_back((now_ms, self.commands_processed.get()));
        while samples.len() > 16 {
            samples.pop_front();
        }
    }

    pub fn ops_per_sec(&self) -> u64 {
        let samples = self.ops_samples.lock();
        match (samples.front(), samples.back()) {
            (Some(a), Some(b)) if b.0 > a.0 => (b.1 - a.1) * 1000 / (b.0 - a.0),
            _ => 0,
        }
    }

    pub fn reset(&self) {
        for c in [
            &self.commands_processed,
            &self.net_input_bytes,
            &self.net_output_bytes,
            &self.expired_keys,
            &self.keyspace_hits,
            &self.keyspace_misses,
            &self.error_replies,
            &self.forwarded_commands,
            &self.pubsub_fanout_dropped,
        ] {
            c.reset();
        }
        self.errors_by_prefix.lock().clear();
    }
}

pub struct SlowEntry {
    pub id: u64,
    pub unix_secs: u64,
    pub duration_us: u64,
    pub args: Vec<Bytes>,
    pub client_addr: String,
    pub client_name: String,
}

#[derive(Default)]
pub struct SlowLog {
    next_id: AtomicU64,
    entries: Mutex<VecDeque<SlowEntry>>,
}

impl SlowLog {
    /// Records a slow command, trimming arguments as Redis does.
    pub fn record(&self, args: &[Bytes], duration_us: u64, client: (String, String), max_len: u64) {
        if max_len == 0 {
            return;
        }
        let mut kept: Vec<Bytes> = Vec::new();
        for (i, a) in args.iter().enumerate() {
            if i == SLOWLOG_ARGS_MAX - 1 && args.len() > SLOWLOG_ARGS_MAX {
                let more = args.len() - SLOWLOG_ARGS_MAX + 1;
                kept.push(Bytes::from(format!("... ({more} more arguments)")));
                break;
            }
            if a.len() > SLOWLOG_ARG_BYTES_MAX {
                let mut s = a.slice(..SLOWLOG_ARG_BYTES_MAX).to_vec();
                s.extend_from_slice(
                    format!("... ({} more bytes)", a.len() - SLOWLOG_ARG_BYTES_MAX).as_bytes(),
                );
                kept.push(Bytes::from(s));
            } else {
                kept.push(a.clone());
            }
        }
        let entry = SlowEntry {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            unix_secs: crate::clock::now_ms() / 1000,
            duration_us,
            args: kept,
            client_addr: client.0,
            client_name: client.1,
        };
        let mut entries = self.entries.lock();
        entries.push_front(entry);
        while entries.len() as u64 > max_len {
            entries.pop_back();
        }
    }

    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn reset(&self) {
        self.entries.lock().clear();
    }

    /// The newest `count` entries, newest first, mapped by `f`.
    pub fn newest<T>(&self, count: usize, f: impl Fn(&SlowEntry) -> T) -> Vec<T> {
        self.entries.lock().iter().take(count).map(f).collect()
    }
}
