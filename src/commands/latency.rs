//! LATENCY: the latency monitor (`latency-monitor-threshold`: commands that took at least
//! that many milliseconds are recorded as `command` or, for fast commands, `fast-command`
//! events, 160 samples each, one per second) with LATEST, HISTORY, RESET, GRAPH and DOCTOR;
//! and the per-command latency histograms (`latency-tracking`) with HISTOGRAM and INFO
//! latencystats.
//!
//! The histograms have Redis's power-of-two buckets, so LATENCY HISTOGRAM's buckets are
//! Redis's; INFO latencystats' percentiles are the upper bound of the bucket holding them
//! (Redis interpolates within two significant digits). GRAPH draws its own sparkline.

use std::collections::BTreeMap;

use bytes::Bytes;
use parking_lot::Mutex;

use super::error::CmdError;
use super::object::help_reply;
use super::table::Command;
use super::{container, reply, ApplyFn, CmdResult, Ctx, Handler};
use crate::clock;
use crate::config::table::parse_percentiles;
use crate::metrics::histogram::{bucket_bound_ns, HistogramSnapshot, FINITE_BUCKETS};
use crate::protocol::reply::format_g;
use crate::protocol::Reply;

pub static COMMANDS: &[(&str, Handler, Option<ApplyFn>)] = &[
    ("latency", container, None),
    ("latency|latest", latest, None),
    ("latency|history", history, None),
    ("latency|reset", reset, None),
    ("latency|graph", graph, None),
    ("latency|doctor", doctor, None),
    ("latency|histogram", histogram, None),
    ("latency|help", help, None),
];

/// Samples an event keeps (Redis's `LATENCY_TS_LEN`).
const SAMPLES_MAX: usize = 160;
/// Columns of a GRAPH block.
const GRAPH_COLUMNS: usize = 80;
/// Rows of a GRAPH's bars.
const GRAPH_ROWS: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sample {
    unix_secs: u64,
    ms: u64,
}

/// One event's samples, oldest first, at most one per second (the highest of that second).
#[derive(Debug, Default)]
struct Series {
    samples: std::collections::VecDeque<Sample>,
    max_ms: u64,
}

/// The latency monitor's events by name.
#[derive(Default)]
pub struct LatencyMonitor {
    events: Mutex<BTreeMap<&'static str, Series>>,
}

impl LatencyMonitor {
    /// Records that `event` took `ms` at `unix_secs`.
    pub fn record(&self, event: &'static str, ms: u64, unix_secs: u64) {
        let mut events = self.events.lock();
        let series = events.entry(event).or_default();
        series.max_ms = series.max_ms.max(ms);
        if let Some(last) = series.samples.back_mut() {
            if last.unix_secs == unix_secs {
                last.ms = last.ms.max(ms);
                return;
            }
        }
        if series.samples.len() == SAMPLES_MAX {
            series.samples.pop_front();
        }
        series.samples.push_back(Sample { unix_secs, ms });
    }

    /// Forgets `events` (all when empty); returns how many it knew.
    fn reset(&self, events: &[String]) -> usize {
        let mut known = self.events.lock();
        if events.is_empty() {
            let n = known.len();
            known.clear();
            return n;
        }
        events
            .iter()
            .filter(|e| known.remove(e.as_str()).is_some())
            .count()
    }
}

/// The event a command that took long is recorded as.
pub fn event_of(cmd: &Command) -> &'static str {
    if cmd.spec.has_flag("fast") {
        "fast-command"
    } else {
        "command"
    }
}

pub fn latest(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    let events = ctx.shared.latency.events.lock();
    let rows = events
        .iter()
        .filter_map(|(name, series)| {
            let last = series.samples.back()?;
            Some(Reply::Array(vec![
                Reply::bulk(*name),
                Reply::Integer(last.unix_secs as i64),
                Reply::Integer(last.ms as i64),
                Reply::Integer(series.max_ms as i64),
            ]))
        })
        .collect();
    reply(Reply::Array(rows))
}

pub fn history(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let events = ctx.shared.latency.events.lock();
    let name = String::from_utf8_lossy(&args[2]);
    let rows = events
        .get(name.as_ref())
        .map(|series| {
            series
                .samples
                .iter()
                .map(|s| {
                    Reply::Array(vec![
                        Reply::Integer(s.unix_secs as i64),
                        Reply::Integer(s.ms as i64),
                    ])
                })
                .collect()
        })
        .unwrap_or_default();
    reply(Reply::Array(rows))
}

pub fn reset(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let names: Vec<String> = args[2..]
        .iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    reply(Reply::Integer(ctx.shared.latency.reset(&names) as i64))
}

pub fn graph(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let name = String::from_utf8_lossy(&args[2]).into_owned();
    let events = ctx.shared.latency.events.lock();
    let Some(series) = events.get(name.as_str()).filter(|s| !s.samples.is_empty()) else {
        return Err(CmdError::msg(format!(
            "ERR No samples available for event '{name}'"
        )));
    };
    let now = clock::now_ms() / 1000;
    let text = render_graph(&name, series, now);
    reply(Reply::Verbatim("txt", Bytes::from(text)))
}

/// How long ago, as GRAPH labels it: `12s`, `5m`, `3h`, `2d`.
fn ago(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// A header, then per block of [`GRAPH_COLUMNS`] samples: bars [`GRAPH_ROWS`] rows high
/// (`|` a full row, `_` half of one, `#` tops the highest samples), a blank row, and each
/// sample's age written downwards.
fn render_graph(name: &str, series: &Series, now: u64) -> String {
    let values: Vec<u64> = series.samples.iter().map(|s| s.ms).collect();
    let (low, high) = (
        values.iter().copied().min().unwrap_or(0),
        values.iter().copied().max().unwrap_or(0),
    );
    let mut out = format!(
        "{name} - high {high} ms, low {low} ms (all time high {} ms)\n{}\n",
        series.max_ms,
        "-".repeat(GRAPH_COLUMNS)
    );
    let labels: Vec<String> = series
        .samples
        .iter()
        .map(|s| ago(now.saturating_sub(s.unix_secs)))
        .collect();
    let steps_max = (GRAPH_ROWS * 2) as u64;
    let steps = |v: u64| {
        if high == low {
            steps_max
        } else {
            1 + (v - low) * (steps_max - 1) / (high - low)
        }
    };
    for (block, chunk) in values.chunks(GRAPH_COLUMNS).enumerate() {
        if block > 0 {
            out.push('\n');
        }
        let labels = &labels[block * GRAPH_COLUMNS..block * GRAPH_COLUMNS + chunk.len()];
        for row in (0..GRAPH_ROWS as u64).rev() {
            for &v in chunk {
                let covered = steps(v).saturating_sub(row * 2);
                out.push(match covered {
                    0 => ' ',
                    _ if v == high && row == GRAPH_ROWS as u64 - 1 => '#',
                    1 => '_',
                    _ => '|',
                });
            }
            out.push('\n');
        }
        out.push_str(&" ".repeat(chunk.len()));
        out.push('\n');
        let tallest = labels.iter().map(String::len).max().unwrap_or(0);
        for i in 0..tallest {
            for label in labels {
                out.push(label.as_bytes().get(i).map_or(' ', |b| *b as char));
            }
            out.push('\n');
        }
    }
    out
}

const DOCTOR_DISABLED: &str = "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n";
const DOCTOR_QUIET: &str = "Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. I honestly think you ought to sit down calmly, take a stress pill, and think things over.\n";

pub fn doctor(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    let text = if ctx.shared.config.latency_monitor_threshold_ms() == 0 {
        DOCTOR_DISABLED.to_string()
    } else {
        doctor_report(&ctx.shared.latency.events.lock())
    };
    reply(Reply::Verbatim("txt", Bytes::from(text)))
}

/// Per event: how many spikes, their average and mean deviation, how often, the worst;
/// then advice for the kinds of events seen.
fn doctor_report(events: &BTreeMap<&'static str, Series>) -> String {
    let seen: Vec<(&&str, &Series)> = events
        .iter()
        .filter(|(_, s)| !s.samples.is_empty())
        .collect();
    if seen.is_empty() {
        return DOCTOR_QUIET.to_string();
    }
    let mut out = String::from("Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you Dave?\n\n");
    for (i, (name, series)) in seen.iter().enumerate() {
        let n = series.samples.len() as f64;
        let avg = series.samples.iter().map(|s| s.ms as f64).sum::<f64>() / n;
        let deviation = series
            .samples
            .iter()
            .map(|s| (s.ms as f64 - avg).abs())
            .sum::<f64>()
            / n;
        let first = series.samples.front().map_or(0, |s| s.unix_secs);
        let last = series.samples.back().map_or(0, |s| s.unix_secs);
        let period = (last - first) as f64 / n;
        out.push_str(&format!(
            "{}. {name}: {} latency spikes (average {}ms, mean deviation {}ms, period {period:.2} sec). Worst all time event {}ms.\n",
            i + 1,
            series.samples.len(),
            avg as u64,
            deviation as u64,
            series.max_ms
        ));
    }
    out.push_str("\nI have a few advices for you:\n\n");
    if seen.iter().any(|(name, _)| **name == "command") {
        out.push_str("- Check your Slow Log to understand what are the commands you are running which are too slow to execute. Please check https://redis.io/commands/slowlog for more information.\n");
        out.push_str("- Deleting, expiring or evicting (because of maxmemory policy) large objects is a blocking operation. If you have very large objects that are often deleted, expired, or evicted, try to fragment those objects into multiple smaller objects.\n");
    }
    if seen.iter().any(|(name, _)| **name == "fast-command") {
        out.push_str("- Commands flagged fast (O(1) or O(log N)) took long: the machine may be overloaded, swapping, or its CPU stolen by other guests. Check the load, free memory and steal time.\n");
    }
    out
}

pub fn histogram(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut entries = Vec::new();
    let mut add = |c: &Command| {
        let calls = c.stats.calls.get();
        if calls == 0 {
            return;
        }
        let snapshot = c.stats.latency.snapshot();
        let buckets = redis_buckets(&snapshot)
            .into_iter()
            .map(|(bound, count)| (Reply::Integer(bound as i64), Reply::Integer(count as i64)))
            .collect();
        entries.push((
            Reply::bulk(c.spec.name),
            Reply::Map(vec![
                (Reply::bulk("calls"), Reply::Integer(calls as i64)),
                (Reply::bulk("histogram_usec"), Reply::Map(buckets)),
            ]),
        ));
    };
    let table = &ctx.shared.table;
    if args.len() == 2 {
        table.every_command().for_each(&mut add);
    } else {
        for name in &args[2..] {
            match table.find(name) {
                // A container's own histogram is empty; its subcommands have theirs.
                Some(cmd) if !cmd.subcommands.is_empty() => {
                    cmd.subcommands.iter().for_each(&mut add)
                }
                Some(cmd) => add(cmd),
                None => {}
            }
        }
    }
    reply(Reply::Map(entries))
}

/// LATENCY HISTOGRAM's buckets: (bound in µs as Redis prints it, cumulative count) for
/// each bucket something fell in, up to the last one.
fn redis_buckets(snapshot: &HistogramSnapshot) -> Vec<(u64, u64)> {
    let mut cumulative = 0;
    let mut out = Vec::new();
    for (i, &n) in snapshot.buckets.iter().enumerate() {
        cumulative += n;
        if n > 0 {
            let bound = if i < FINITE_BUCKETS {
                bucket_bound_ns(i) / 1000
            } else {
                bucket_bound_ns(FINITE_BUCKETS) / 1000
            };
            out.push((bound, cumulative));
        }
    }
    out
}

/// INFO latencystats: `latency_percentiles_usec_<command>:p50=…,p99=…` for each command
/// run, at the percentiles `latency-tracking-info-percentiles` names.
pub fn info_lines(ctx: &Ctx) -> Vec<(String, String)> {
    let percentiles =
        parse_percentiles(&ctx.shared.config.get("latency-tracking-info-percentiles"))
            .unwrap_or_default();
    let mut out = Vec::new();
    for c in ctx.shared.table.every_command() {
        if c.stats.calls.get() == 0 {
            continue;
        }
        let snapshot = c.stats.latency.snapshot();
        let values: Vec<String> = percentiles
            .iter()
            .map(|p| {
                let us = percentile_ns(&snapshot, *p) as f64 / 1000.0;
                format!("p{}={us:.3}", format_g(*p, 6))
            })
            .collect();
        out.push((
            format!("latency_percentiles_usec_{}", c.spec.name),
            values.join(","),
        ));
    }
    out
}

/// The upper bound (ns) of the bucket holding the `p`th percentile of `snapshot`.
fn percentile_ns(snapshot: &HistogramSnapshot, p: f64) -> u64 {
    let count = snapshot.count();
    if count == 0 {
        return 0;
    }
    let rank = ((p / 100.0) * count as f64).ceil().max(1.0) as u64;
    let mut cumulative = 0;
    for (i, &n) in snapshot.buckets.iter().enumerate() {
        cumulative += n;
        if cumulative >= rank {
            return bucket_bound_ns(i.min(FINITE_BUCKETS));
        }
    }
    bucket_bound_ns(FINITE_BUCKETS)
}

pub fn help(_: &mut Ctx, _: &[Bytes]) -> CmdResult {
    reply(help_reply(
        "LATENCY",
        &[
            "DOCTOR",
            "    Return a human readable latency analysis report.",
            "GRAPH <event>",
            "    Return an ASCII latency graph for the <event> class.",
            "HISTORY <event>",
            "    Return time-latency samples for the <event> class.",
            "LATEST",
            "    Return the latest latency samples for all events.",
            "RESET [<event> ...]",
            "    Reset latency data of one or more <event> classes.",
            "    (default: reset all data for all event classes)",
            "HISTOGRAM [COMMAND ...]",
            "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
            "    If no commands are specified then all histograms are replied.",
        ],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sample_a_second_and_at_most_160() {
        let m = LatencyMonitor::default();
        m.record("command", 100, 10);
        m.record("command", 300, 10);
        m.record("command", 200, 10);
        m.record("command", 50, 11);
        {
            let events = m.events.lock();
            let s = &events["command"];
            let got: Vec<(u64, u64)> = s.samples.iter().map(|s| (s.unix_secs, s.ms)).collect();
            assert_eq!(got, [(10, 300), (11, 50)]);
            assert_eq!(s.max_ms, 300);
        }
        for t in 12..300 {
            m.record("command", 1, t);
        }
        assert_eq!(m.events.lock()["command"].samples.len(), SAMPLES_MAX);
        assert_eq!(m.reset(&["nosuch".into()]), 0);
        assert_eq!(m.reset(&[]), 1);
    }

    #[test]
    fn graph_bars_scale_between_low_and_high() {
        let mut s = Series::default();
        for (t, ms) in [(100, 259), (101, 134)] {
            s.samples.push_back(Sample { unix_secs: t, ms });
            s.max_ms = s.max_ms.max(ms);
        }
        let text = render_graph("command", &s, 101);
        let want = "command - high 259 ms, low 134 ms (all time high 259 ms)\n".to_string()
            + &"-".repeat(80)
            + "\n# \n| \n| \n|_\n  \n10\nss\n";
        assert_eq!(text, want);
    }

    #[test]
    fn percentiles_parse_as_redis_checks_them() {
        assert_eq!(parse_percentiles("50 99 99.9"), Ok(vec![50.0, 99.0, 99.9]));
        assert_eq!(parse_percentiles(""), Ok(vec![]));
        assert!(parse_percentiles("50 abc")
            .unwrap_err()
            .starts_with("Invalid"));
        assert!(parse_percentiles("101").unwrap_err().contains("between"));
        let mut snapshot = HistogramSnapshot {
            buckets: [0; FINITE_BUCKETS + 1],
            sum_us: 0,
        };
        snapshot.buckets[4] = 99;
        snapshot.buckets[10] = 1;
        assert_eq!(percentile_ns(&snapshot, 50.0), 16_384);
        assert_eq!(percentile_ns(&snapshot, 99.0), 16_384);
        assert_eq!(percentile_ns(&snapshot, 99.9), 1_048_576);
        assert_eq!(redis_buckets(&snapshot), [(16, 99), (1048, 100)]);
    }
}
