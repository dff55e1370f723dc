//! An adversarial sweep of the command table: every command, its arguments made from its
//! COMMAND DOCS tree over keys of every type, then with one argument at a time replaced by
//! a hostile value of its kind (i64 and u64 extremes, negative counts and offsets, NaN and
//! infinities, empty and long strings, patterns that make naive matchers backtrack, wrong
//! tokens), and with one argument too few and one too many.
//!
//! Basalt must answer every line (an error or a reply) without closing the connection and,
//! unless the command blocks, within seconds; afterwards it still serves. Each line also
//! goes to redis-server 7.0.15, and the two must agree on whether it is an error and on the
//! error's kind (its first word), except for the commands `allowlist.txt` lists, those
//! redis-server 7.0 lacks, and lines redis-server cannot take (it builds any number of
//! random picks: `SRANDMEMBER s -4611686018427387903` takes all memory), which are not sent
//! to it. A line that crashes redis-server anyway is printed and skipped.

use std::time::Duration;

use basalt::commands::spec::CommandSpec;
use basalt::commands::specs::SPECS;

use crate::samples::{sample, Fill, Slot};
use crate::support::{encode_command, show, start_redis, Client};
use crate::Pair;

/// Commands never sent: they stop the server, reach for other hosts, pause every client,
/// or (DEBUG) are Basalt's test hooks.
const NOT_SENT: &[&str] = &[
    "shutdown",
    "debug",
    "client|pause",
    "migrate",
    "replicaof",
    "slaveof",
    "failover",
    "sync",
    "psync",
    "cluster|meet",
];

/// Commands after which the server may close the connection.
const MAY_CLOSE: &[&str] = &["quit", "client|kill"];

/// Commands that make the connection a cluster client's (multi-key commands across slots
/// then get CROSSSLOT) for good: a fresh connection follows them.
const MARK_CLUSTER_CLIENT: &[&str] = &["cluster|slots", "cluster|shards", "cluster|nodes"];

/// The keys every line runs against, one of each type.
const FIXTURES: &[&[&str]] = &[
    &["SET", "str", "hello"],
    &["SET", "int", "10"],
    &["HSET", "hash", "f1", "v1", "f2", "2"],
    &["RPUSH", "list", "a", "b", "c", "1"],
    &["SADD", "set", "a", "b", "1"],
    &["ZADD", "zset", "1", "a", "2", "b", "2.5", "c"],
    &[
        "GEOADD",
        "geo",
        "13.361389",
        "38.115556",
        "palermo",
        "15.087269",
        "37.502669",
        "catania",
    ],
    &["PFADD", "hll", "a", "b"],
];

const KEYS: &[&str] = &[
    "str", "int", "hash", "list", "set", "zset", "geo", "hll", "missing",
];

const INTEGERS: &[&str] = &[
    "0",
    "-1",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "18446744073709551615",
    "4294967296",
    "-4294967297",
    "1.5",
    "abc",
    "",
];

const DOUBLES: &[&str] = &[
    "nan", "inf", "-inf", "+inf", "1e400", "-1e400", "0", "-0", "abc", "", "0x10",
];

const PATTERNS: &[&str] = &[
    "",
    "[",
    "[a-",
    "\\",
    "[^]*",
    "*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b",
];

const STRINGS: &[&str] = &["", "-1", "9223372036854775808", "nan", "*"];

/// Values for the first sample of a command: keys of the type its group works on.
struct Typical {
    key: &'static str,
}

impl Fill for Typical {
    fn value(&mut self, kind: &'static str) -> String {
        match kind {
            "key" => self.key.into(),
            "integer" => "2".into(),
            "double" => "1.5".into(),
            "unix-time" => "100".into(),
            "pattern" => "*".into(),
            _ => "a".into(),
        }
    }
}

fn typical_key(spec: &CommandSpec) -> &'static str {
    match spec.doc.group {
        "hash" => "hash",
        "list" => "list",
        "set" => "set",
        "sorted-set" => "zset",
        "geo" => "geo",
        "hyperloglog" => "hll",
        _ => "str",
    }
}

/// The hostile values for an argument of `kind`.
fn hostile(kind: &str) -> Vec<String> {
    let fixed: &[&str] = match kind {
        "integer" | "unix-time" => INTEGERS,
        "double" => DOUBLES,
        "key" => KEYS,
        "pattern" => PATTERNS,
        "token" => &["BOGUS", ""],
        _ => STRINGS,
    };
    let mut values: Vec<String> = fixed.iter().map(|v| v.to_string()).collect();
    if !matches!(kind, "key" | "token") {
        values.push("a".repeat(10_000));
    }
    values
}

/// Every line the sweep sends for `spec`.
fn lines(spec: &CommandSpec) -> Vec<Vec<String>> {
    let head: Vec<String> = spec.name.split('|').map(str::to_string).collect();
    let mut out = Vec::new();
    for optional in [false, true] {
        let mut slots: Vec<Slot> = Vec::new();
        let mut fill = Typical {
            key: typical_key(spec),
        };
        sample(spec.doc.arguments, optional, &mut fill, &mut slots);
        let base: Vec<String> = slots.iter().map(|s| s.text.clone()).collect();
        let line = |args: Vec<String>| head.iter().cloned().chain(args).collect::<Vec<_>>();
        out.push(line(base.clone()));
        if !base.is_empty() {
            out.push(line(base[..base.len() - 1].to_vec()));
        }
        out.push(line(
            base.iter().cloned().chain(["a".to_string()]).collect(),
        ));
        for (i, slot) in slots.iter().enumerate() {
            for value in hostile(slot.kind) {
                let mut args = base.clone();
                args[i] = value;
                out.push(line(args));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// What a line got back, as far as the sweep compares.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Reply,
    /// The error's text.
    Error(String),
    /// No reply before the timeout (a blocking command waiting).
    Blocked,
    /// The connection closed.
    Closed,
    /// Not sent (to redis-server, which cannot take it).
    NotSent,
}

/// Whether redis-server 7.0 survives `line`: it builds a reply of any number of random
/// picks (SRANDMEMBER s -4611686018427387903 takes all memory, then forever), where Basalt
/// bounds them.
fn redis_can_take(name: &str, line: &[String]) -> bool {
    let random = ["srandmember", "hrandfield", "zrandmember"].contains(&name);
    let huge_negative = |a: &String| a.parse::<i64>().is_ok_and(|n| n < -(1 << 24));
    !(random && line.iter().any(huge_negative))
}

/// The end of one line's replies: RESET undoes whatever state the line left (MULTI,
/// SELECT, RESP3, subscriptions, CLIENT REPLY), and the echo of a marker ends the replies.
fn send_line(client: &mut Client, args: &[String], marker: &str) -> std::io::Result<()> {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    let mut wire = encode_command(&args);
    wire.extend(encode_command(&[b"RESET"]));
    wire.extend(encode_command(&[b"ECHO", marker.as_bytes()]));
    client.try_send(&wire)
}

fn read_outcome(client: &mut Client, marker: &str) -> Outcome {
    let end = format!("${}\r\n{marker}\r\n", marker.len()).into_bytes();
    let mut first: Option<Vec<u8>> = None;
    loop {
        match client.try_read_reply() {
            Ok(reply) if reply == end => break,
            Ok(reply) => {
                first.get_or_insert(reply);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Outcome::Blocked
            }
            Err(_) => return Outcome::Closed,
        }
    }
    match first {
        Some(r) if r.starts_with(b"-") || r.starts_with(b"!") => {
            Outcome::Error(show(&r).trim_end().to_string())
        }
        _ => Outcome::Reply,
    }
}

fn reset_fixtures(client: &mut Client) {
    let mut wire = encode_command(&[b"FLUSHALL"]);
    for f in FIXTURES {
        let args: Vec<&[u8]> = f.iter().map(|a| a.as_bytes()).collect();
        wire.extend(encode_command(&args));
    }
    client.send_raw(&wire);
    for _ in 0..=FIXTURES.len() {
        let reply = client.read_reply();
        assert!(!reply.starts_with(b"-"), "fixture: {}", show(&reply));
    }
}

#[test]
fn every_command_answers_hostile_arguments_without_panicking_or_hanging() {
    let mut pair = Pair::start();
    let allowlist = crate::allowlist::load();
    let in_oracle = |since: &str| !since.starts_with("7.2") && !since.starts_with("basalt");
    reset_fixtures(&mut pair.basalt_client);
    reset_fixtures(&mut pair.redis_client);
    let (mut sent, mut compared, mut redis_crashes) = (0usize, 0usize, Vec::new());
    let mut failures = Vec::new();
    let mut differences = Vec::new();
    for spec in SPECS.iter().filter(|s| !NOT_SENT.contains(&s.name)) {
        let blocks = spec.flags.contains(&"blocking") || spec.name == "wait";
        let wait = if blocks {
            Duration::from_millis(300)
        } else {
            Duration::from_secs(10)
        };
        let writes = spec.flags.contains(&"write") || spec.flags.contains(&"admin");
        let container = spec.name.split('|').next().unwrap_or_default();
        let compare = in_oracle(spec.doc.since)
            && !allowlist.contains_key(spec.name)
            && !allowlist.contains_key(container);
        let started = std::time::Instant::now();
        for line in lines(spec) {
            sent += 1;
            let marker = format!("end-of-line-{sent}");
            pair.basalt_client.set_timeout(wait);
            pair.redis_client.set_timeout(wait);
            let basalt = match send_line(&mut pair.basalt_client, &line, &marker) {
                Ok(()) => read_outcome(&mut pair.basalt_client, &marker),
                Err(_) => Outcome::Closed,
            };
            let redis = if redis_can_take(spec.name, &line) {
                match send_line(&mut pair.redis_client, &line, &marker) {
                    Ok(()) => read_outcome(&mut pair.redis_client, &marker),
                    Err(_) => Outcome::Closed,
                }
            } else {
                Outcome::NotSent
            };
            let shown = line
                .iter()
                .map(|a| shorten(a))
                .collect::<Vec<_>>()
                .join(" ");
            match basalt {
                Outcome::Closed if !MAY_CLOSE.contains(&spec.name) => {
                    failures.push(format!("closed the connection: {shown}"));
                }
                Outcome::Blocked if !blocks => failures.push(format!("no reply: {shown}")),
                _ => {}
            }
            let redis_crashed = redis == Outcome::Closed && has_exited(&mut pair.redis);
            if redis_crashed {
                redis_crashes.push(shown.clone());
                pair.redis = start_redis();
            } else if compare && redis != Outcome::NotSent && !alike(&basalt, &redis) {
                differences.push(format!("basalt {basalt:?}, redis {redis:?}: {shown}"));
            } else if compare {
                compared += 1;
            }
            let lost = |o: &Outcome| matches!(o, Outcome::Closed | Outcome::Blocked);
            if lost(&basalt) || lost(&redis) || MARK_CLUSTER_CLIENT.contains(&spec.name) {
                pair.reconnect();
            }
            if redis_crashed {
                reset_fixtures(&mut pair.redis_client);
            }
            if writes {
                pair.basalt_client.set_timeout(Duration::from_secs(10));
                pair.redis_client.set_timeout(Duration::from_secs(10));
                reset_fixtures(&mut pair.basalt_client);
                reset_fixtures(&mut pair.redis_client);
            }
        }
        if std::env::var_os("BASALT_HOSTILE_TRACE").is_some() {
            eprintln!("{} {:?}", spec.name, started.elapsed());
        }
    }
    for crash in &redis_crashes {
        eprintln!("redis-server crashed on: {crash}");
    }
    eprintln!(
        "{sent} lines sent, {compared} compared with redis-server, {} differences",
        differences.len()
    );
    let mut c = pair.basalt.client();
    assert_eq!(show(&c.call(&["PING"])), "+PONG\r\n");
    assert!(
        failures.is_empty() && differences.is_empty(),
        "failures:\n{}\ndifferences from redis-server:\n{}",
        failures.join("\n"),
        differences.join("\n")
    );
    assert!(sent > 5000, "{sent} lines sent");
}

/// Whether two outcomes agree: both replies, both errors (of any text), both blocked.
fn alike(a: &Outcome, b: &Outcome) -> bool {
    match (a, b) {
        (Outcome::Error(a), Outcome::Error(b)) => a.split(' ').next() == b.split(' ').next(),
        _ => std::mem::discriminant(a) == std::mem::discriminant(b),
    }
}

/// Whether `process` exits within a second.
fn has_exited(process: &mut crate::support::Process) -> bool {
    for _ in 0..100 {
        if !process.is_running() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

fn shorten(arg: &str) -> String {
    if arg.len() > 40 {
        format!("<{} bytes>", arg.len())
    } else {
        format!("{arg:?}")
    }
}
