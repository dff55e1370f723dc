//! Curated command sequences in `scripts/*.txt`, run against both servers.
//!
//! One command per line with redis-cli-style quoting. Prefixes: `!sort` compares the
//! elements of an array reply as a sorted list; `!type CMD …` compares only the reply type
//! and `!error CMD …` only that both are errors (both need an allowlist entry);
//! `!reconnect` opens fresh connections; `!sleep MS` waits on both; `!other CMD …` sends
//! the command on a second connection to each server (another client), compared exactly;
//! `!words CMD …` compares the reply's words as a multiset (ACL descriptions list single
//! commands in redis-server's hash-table order, which changes from run to run).

use basalt::protocol::decode::split_inline_args;

use crate::support::show;
use crate::Pair;

enum Compare {
    Exact,
    /// Exact, through the second connection.
    Other,
    Sorted,
    Words,
    Type,
    Error,
}

/// Splits a reply into top-level element frames (for `!sort`).
fn elements(reply: &[u8]) -> Vec<Vec<u8>> {
    let text = show(reply);
    let mut lines = text.split_inclusive("\r\n");
    let _header = lines.next();
    let mut out = Vec::new();
    let mut pending: Option<String> = None;
    for line in lines {
        match pending.take() {
            Some(mut header) => {
                header.push_str(line);
                out.push(header.into_bytes());
            }
            None if line.starts_with('$') && !line.starts_with("$-1") => {
                pending = Some(line.to_string())
            }
            None => out.push(line.as_bytes().to_vec()),
        }
    }
    out.sort();
    out
}

/// A reply's words (split at spaces and line ends), sorted.
fn words(reply: &[u8]) -> Vec<String> {
    let text = show(reply);
    let mut words: Vec<String> = text
        .split([' ', '\r', '\n'])
        .filter(|w| !w.is_empty())
        .map(String::from)
        .collect();
    words.sort();
    words
}

fn command_name(args: &[bytes::Bytes]) -> String {
    let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
    let containers = [
        "client", "config", "object", "command", "memory", "slowlog", "script", "function", "xinfo",
    ];
    match args.get(1) {
        Some(sub) if containers.contains(&name.as_str()) => {
            format!(
                "{name}|{}",
                String::from_utf8_lossy(sub).to_ascii_lowercase()
            )
        }
        _ => name,
    }
}

/// Runs one script; panics with the first difference.
pub fn run(name: &str, text: &str) {
    let allow = crate::allowlist::load();
    let mut pair = Pair::start();
    for (lineno, raw_line) in text.lines().enumerate() {
        let line = raw_line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line == "!reconnect" {
            pair.reconnect();
            continue;
        }
        if let Some(ms) = line.strip_prefix("!sleep ") {
            std::thread::sleep(std::time::Duration::from_millis(ms.trim().parse().unwrap()));
            continue;
        }
        let (compare, rest) = match line.split_once(' ') {
            Some(("!sort", rest)) => (Compare::Sorted, rest),
            Some(("!type", rest)) => (Compare::Type, rest),
            Some(("!error", rest)) => (Compare::Error, rest),
            Some(("!other", rest)) => (Compare::Other, rest),
            Some(("!words", rest)) => (Compare::Words, rest),
            _ => (Compare::Exact, line),
        };
        let args = split_inline_args(rest.as_bytes()).expect("script line quoting");
        let refs: Vec<&[u8]> = args.iter().map(|a| a.as_ref()).collect();
        if matches!(compare, Compare::Type | Compare::Error) {
            let cmd = command_name(&args);
            assert!(
                allow.contains_key(&cmd),
                "{name}:{}: `{cmd}` is compared loosely but has no allowlist entry",
                lineno + 1
            );
        }
        if std::env::var_os("BASALT_COMPAT_TRACE").is_some() {
            eprintln!("{name}:{}: {line}", lineno + 1);
        }
        let (expected, actual) = match compare {
            Compare::Other => pair.both_other(&refs),
            _ => pair.both(&refs),
        };
        let same = match compare {
            Compare::Exact | Compare::Other => expected == actual,
            Compare::Sorted => {
                expected[..1] == actual[..1] && elements(&expected) == elements(&actual)
            }
            Compare::Words => words(&expected) == words(&actual),
            Compare::Type => expected[..1] == actual[..1],
            Compare::Error => expected.starts_with(b"-") && actual.starts_with(b"-"),
        };
        assert!(
            same,
            "{name}:{}: {line}\n  redis:  {:?}\n  basalt: {:?}",
            lineno + 1,
            show(&expected),
            show(&actual)
        );
    }
}

macro_rules! scripts {
    ($($test:ident => $file:literal),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                run($file, include_str!(concat!("scripts/", $file)));
            }
        )*
    };
}

scripts! {
    strings => "strings.txt",
    counters => "counters.txt",
    ranges => "ranges.txt",
    keys => "keys.txt",
    expiry => "expiry.txt",
    databases => "databases.txt",
    dump_restore => "dump_restore.txt",
    connection => "connection.txt",
    server => "server.txt",
    latency => "latency.txt",
    command_table => "command_table.txt",
    errors => "errors.txt",
    resp3 => "resp3.txt",
    hashes => "hashes.txt",
    lists => "lists.txt",
    sets => "sets.txt",
    zsets => "zsets.txt",
    bitmaps => "bitmaps.txt",
    hll => "hll.txt",
    geo => "geo.txt",
    transactions => "transactions.txt",
    watch => "watch.txt",
    orderings => "orderings.txt",
    acl => "acl.txt",
    scripting => "scripting.txt",
    scripting_libs => "scripting_libs.txt",
    functions => "functions.txt",
    streams => "streams.txt",
    stream_groups => "stream_groups.txt",
    sort => "sort.txt",
}
