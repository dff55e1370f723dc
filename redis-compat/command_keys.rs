//! COMMAND GETKEYS and GETKEYSANDFLAGS for every command of Basalt's table, against
//! redis-server: cluster clients ask the server for the keys of commands whose key
//! positions move (ZUNIONSTORE, LMPOP, SINTERCARD …) and route by the answer.
//!
//! Each command's arguments are made from its COMMAND DOCS argument tree: once with the
//! required arguments only, once with every optional one (the first choice of each
//! `oneof`), repeated arguments given twice and integers as 2, so a `numkeys` matches the
//! keys that follow it.

use basalt::commands::specs::SPECS;

use crate::samples::{sample, Fill, Slot};
use crate::support::show;
use crate::Pair;

/// Keys numbered in order, integers as 2 (so a `numkeys` matches the keys that follow).
struct Plain {
    keys: usize,
}

impl Fill for Plain {
    fn value(&mut self, kind: &'static str) -> String {
        match kind {
            "key" => {
                self.keys += 1;
                format!("key{}", self.keys)
            }
            "integer" => "2".into(),
            "double" => "1.5".into(),
            "unix-time" => "100".into(),
            _ => "x".into(),
        }
    }
}

/// Every command of the table as sample lines (name and, for a subcommand, its name).
fn sample_lines() -> Vec<Vec<String>> {
    let mut lines = Vec::new();
    // CLIENT SETINFO and NO-TOUCH came with Redis 7.2 (the oracle is 7.0); KEYEVENTS is
    // Basalt's own.
    let in_oracle = |since: &str| !since.starts_with("7.2") && !since.starts_with("basalt");
    for spec in SPECS.iter().filter(|s| in_oracle(s.doc.since)) {
        let mut head: Vec<String> = spec.name.split('|').map(str::to_string).collect();
        if spec.name == "debug" {
            head.push("sleep".into());
        }
        for optional in [false, true] {
            let mut slots: Vec<Slot> = Vec::new();
            sample(
                spec.doc.arguments,
                optional,
                &mut Plain { keys: 0 },
                &mut slots,
            );
            let mut line = head.clone();
            line.extend(slots.into_iter().map(|s| s.text));
            lines.push(line);
        }
    }
    lines
}

#[test]
fn getkeys_and_getkeysandflags_match_redis_for_every_command() {
    let mut pair = Pair::start();
    let mut compared = 0;
    for line in sample_lines() {
        for sub in ["GETKEYS", "GETKEYSANDFLAGS"] {
            let mut args: Vec<&[u8]> = vec![b"COMMAND", sub.as_bytes()];
            args.extend(line.iter().map(|a| a.as_bytes()));
            let (want, got) = pair.both(&args);
            assert_eq!(show(&got), show(&want), "COMMAND {sub} {}", line.join(" "));
            compared += 1;
        }
    }
    // And the lines cluster clients depend on, written out.
    for line in [
        "ZUNIONSTORE t 3 a b c",
        "ZINTERSTORE t 2 a b WEIGHTS 1 2",
        "LMPOP 2 la lb LEFT",
        "BLMPOP 0 2 la lb LEFT",
        "ZMPOP 2 za zb MIN",
        "SINTERCARD 2 a b LIMIT 1",
        "GEORADIUS g 0 0 1 km STORE dst",
        "GEORADIUSBYMEMBER g m 1 km STOREDIST dst",
        "ZUNIONSTORE t 0 a",
        "ZUNIONSTORE t x a",
        "ZUNIONSTORE t 5 a",
        "ZUNIONSTORE t 9223372036854775807 a",
        "LMPOP -9223372036854775808 a LEFT",
        "SET k v GET",
        "BITFIELD k GET u8 0",
        "BITFIELD k SET u8 0 1",
    ] {
        for sub in ["GETKEYS", "GETKEYSANDFLAGS"] {
            let mut args: Vec<&[u8]> = vec![b"COMMAND", sub.as_bytes()];
            args.extend(line.split(' ').map(str::as_bytes));
            let (want, got) = pair.both(&args);
            assert_eq!(show(&got), show(&want), "COMMAND {sub} {line}");
        }
    }
    assert!(compared > 400, "{compared} lines compared");
}
