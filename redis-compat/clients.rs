//! Real client tools against Basalt: redis-py (plain and pipelined), redis-benchmark.

use std::process::Command;

use crate::support::start_basalt;

fn have(cmd: &str, arg: &str) -> bool {
    Command::new(cmd)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn redis_py_strings_keys_and_pipelines() {
    if !have("python3", "--version")
        || !Command::new("python3")
            .args(["-c", "import redis"])
            .status()
            .is_ok_and(|s| s.success())
    {
        panic!("redis-py is missing: scripts/setup.sh installs it (pip install redis)");
    }
    let server = start_basalt(&[]);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/redis-compat/clients/redis_py_check.py"
    );
    let out = Command::new("python3")
        .arg(script)
        .arg(server.port.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "redis-py check failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn redis_benchmark_completes_without_errors() {
    assert!(
        have("redis-benchmark", "--version"),
        "redis-benchmark is missing: scripts/setup.sh installs redis-tools"
    );
    let server = start_basalt(&[]);
    let out = Command::new("redis-benchmark")
        .args([
            "-p",
            &server.port.to_string(),
            "-q",
            "-n",
            "20000",
            "-c",
            "20",
        ])
        .args([
            "-t",
            "ping_inline,ping_mbulk,set,get,incr,mset,lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,zpopmin,lrange_100,lrange_600",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}\n{stderr}");
    let tests = [
        "PING_INLINE",
        "PING_MBULK",
        "SET",
        "GET",
        "INCR",
        "MSET",
        "LPUSH",
        "RPUSH",
        "LPOP",
        "RPOP",
        "SADD",
        "HSET",
        "SPOP",
        "ZADD",
        "ZPOPMIN",
        "LRANGE_100",
        "LRANGE_600",
    ];
    for test in tests {
        assert!(
            text.lines()
                .any(|l| l.starts_with(test) && l.contains(" requests per second")),
            "{test} missing from:\n{text}"
        );
    }
    assert!(
        !text.contains("ERR") && !stderr.contains("ERR"),
        "{text}\n{stderr}"
    );
}

#[test]
fn redis_cli_runs_commands() {
    assert!(
        have("redis-cli", "--version"),
        "redis-cli is missing: scripts/setup.sh installs redis-tools"
    );
    let server = start_basalt(&[]);
    let port = server.port.to_string();
    let cli = |args: &[&str]| {
        let out = Command::new("redis-cli")
            .args(["-p", &port])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(cli(&["SET", "greeting", "hello world"]), "OK");
    assert_eq!(cli(&["GET", "greeting"]), "hello world");
    assert_eq!(cli(&["INCRBY", "n", "5"]), "5");
    assert_eq!(
        cli(&["--no-raw", "MGET", "greeting", "missing"]),
        "1) \"hello world\"\n2) (nil)"
    );
    assert_eq!(
        cli(&["--no-raw", "-3", "HELLO", "3"]).lines().next(),
        Some("1# \"server\" => \"redis\"")
    );
    // redis-cli 7.2+ builds its command hints from COMMAND DOCS.
    assert!(cli(&["COMMAND", "DOCS", "set"]).contains("Set the string value of a key"));
}

/// DUMP payloads move keys between redis-server and Basalt in both directions, including
/// Redis's LZF-compressed and integer-encoded strings.
#[test]
fn dump_restore_moves_keys_both_ways() {
    use crate::support::{show, start_redis};
    let redis = start_redis();
    let basalt = start_basalt(&[]);
    let (mut r, mut b) = (redis.client(), basalt.client());
    let values: Vec<Vec<u8>> = vec![
        b"short".to_vec(),
        b"12345".to_vec(),
        b"-7".to_vec(),
        vec![b'z'; 5000],
        (0..=255u8).cycle().take(3000).collect(),
    ];
    for (i, value) in values.iter().enumerate() {
        let key = format!("k{i}");
        // Redis → Basalt
        r.call_bytes(&[b"SET", key.as_bytes(), value]);
        let payload = strip_bulk(&r.call(&["DUMP", &key]));
        assert_eq!(
            show(&b.call_bytes(&[b"RESTORE", key.as_bytes(), b"0", &payload])),
            "+OK\r\n"
        );
        assert_eq!(b.call(&["GET", &key]), r.call(&["GET", &key]));
        // Basalt → Redis
        let payload = strip_bulk(&b.call(&["DUMP", &key]));
        let copy = format!("{key}-back");
        assert_eq!(
            show(&r.call_bytes(&[b"RESTORE", copy.as_bytes(), b"0", &payload])),
            "+OK\r\n"
        );
        assert_eq!(r.call(&["GET", &copy]), r.call(&["GET", &key]));
    }
}

/// Hashes move both ways too: Redis dumps small ones as listpacks and large ones as plain
/// RDB hashes; Basalt dumps plain RDB hashes, which Redis restores.
#[test]
fn dump_restore_moves_hashes_both_ways() {
    use crate::support::{show, start_redis};
    let redis = start_redis();
    let basalt = start_basalt(&[]);
    let (mut r, mut b) = (redis.client(), basalt.client());
    let long = "v".repeat(300);
    let sizes = [1usize, 5, 200];
    for (i, size) in sizes.iter().enumerate() {
        let key = format!("h{i}");
        for f in 0..*size {
            let field = format!("field{f}");
            let value = match f % 4 {
                0 => f.to_string(),
                1 => format!("-{}", f * 100_000),
                2 => long.clone(),
                _ => format!("value{f}"),
            };
            r.call(&["HSET", &key, &field, &value]);
        }
        let sorted = |reply: Vec<u8>| {
            let mut lines: Vec<String> = show(&reply).split("\r\n").map(String::from).collect();
            lines.sort();
            lines
        };
        // Redis → Basalt
        let payload = strip_bulk(&r.call(&["DUMP", &key]));
        assert_eq!(
            show(&b.call_bytes(&[b"RESTORE", key.as_bytes(), b"0", &payload])),
            "+OK\r\n"
        );
        assert_eq!(
            sorted(b.call(&["HGETALL", &key])),
            sorted(r.call(&["HGETALL", &key]))
        );
        assert_eq!(b.call(&["HLEN", &key]), r.call(&["HLEN", &key]));
        // Basalt → Redis
        let payload = strip_bulk(&b.call(&["DUMP", &key]));
        let copy = format!("{key}-back");
        assert_eq!(
            show(&r.call_bytes(&[b"RESTORE", copy.as_bytes(), b"0", &payload])),
            "+OK\r\n"
        );
        assert_eq!(
            sorted(r.call(&["HGETALL", &copy])),
            sorted(r.call(&["HGETALL", &key]))
        );
    }
}

/// Lists move both ways: Redis 7.0 dumps quicklists of listpack nodes, Basalt plain RDB
/// lists.
#[test]
fn dump_restore_moves_lists_both_ways() {
    use crate::support::start_redis;
    let redis = start_redis();
    let basalt = start_basalt(&[]);
    let (mut r, mut b) = (redis.client(), basalt.client());
    let long = "w".repeat(9000);
    for (i, size) in [1usize, 7, 600].iter().enumerate() {
        let key = format!("l{i}");
        for n in 0..*size {
            let item = match n % 3 {
                0 => n.to_string(),
                1 => format!("item{n}"),
                _ if n % 300 == 2 => long.clone(),
                _ => format!("-{}", n * 1000),
            };
            r.call(&["RPUSH", &key, &item]);
        }
        let payload = strip_bulk(&r.call(&["DUMP", &key]));
        b.call_bytes(&[b"RESTORE", key.as_bytes(), b"0", &payload]);
        assert_eq!(
            b.call(&["LRANGE", &key, "0", "-1"]),
            r.call(&["LRANGE", &key, "0", "-1"])
        );
        let payload = strip_bulk(&b.call(&["DUMP", &key]));
        let copy = format!("{key}-back");
        r.call_bytes(&[b"RESTORE", copy.as_bytes(), b"0", &payload]);
        assert_eq!(
            r.call(&["LRANGE", &copy, "0", "-1"]),
            r.call(&["LRANGE", &key, "0", "-1"])
        );
    }
}

/// Sets move both ways: Redis dumps integer sets as intsets, others as plain RDB sets.
#[test]
fn dump_restore_moves_sets_both_ways() {
    use crate::support::start_redis;
    let redis = start_redis();
    let basalt = start_basalt(&[]);
    let (mut r, mut b) = (redis.client(), basalt.client());
    let members: [Vec<String>; 3] = [
        vec!["1".into(), "-40000".into(), "5000000000".into()],
        (0..20).map(|i| format!("m{i}")).collect(),
        (0..700).map(|i| i.to_string()).collect(),
    ];
    for (i, set) in members.iter().enumerate() {
        let key = format!("s{i}");
        let mut cmd = vec!["SADD", key.as_str()];
        cmd.extend(set.iter().map(String::as_str));
        r.call(&cmd);
        let sorted = |c: &mut crate::support::Client, k: &str| {
            let mut lines: Vec<String> = crate::support::show(&c.call(&["SMEMBERS", k]))
                .split("\r\n")
                .map(String::from)
                .collect();
            lines.sort();
            lines
        };
        let payload = strip_bulk(&r.call(&["DUMP", &key]));
        b.call_bytes(&[b"RESTORE", key.as_bytes(), b"0", &payload]);
        assert_eq!(sorted(&mut b, &key), sorted(&mut r, &key));
        assert_eq!(
            b.call(&["OBJECT", "ENCODING", &key]),
            r.call(&["OBJECT", "ENCODING", &key])
        );
        let payload = strip_bulk(&b.call(&["DUMP", &key]));
        let copy = format!("{key}-back");
        r.call_bytes(&[b"RESTORE", copy.as_bytes(), b"0", &payload]);
        assert_eq!(sorted(&mut r, &copy), sorted(&mut r, &key));
    }
}

/// Sorted sets move both ways: Redis dumps small ones as listpacks and large ones as
/// ZSET_2 (binary doubles); Basalt dumps ZSET_2. Scores survive to the last bit.
#[test]
fn dump_restore_moves_sorted_sets_both_ways() {
    use crate::support::start_redis;
    let redis = start_redis();
    let basalt = start_basalt(&[]);
    let (mut r, mut b) = (redis.client(), basalt.client());
    let sets: [Vec<(String, String)>; 3] = [
        vec![
            ("1.1".into(), "a".into()),
            ("-inf".into(), "b".into()),
            ("inf".into(), "c".into()),
            ("7".into(), "d".into()),
        ],
        (0..20)
            .map(|i| (format!("{}", i * 3), format!("m{i}")))
            .collect(),
        (0..300)
            .map(|i| (format!("{}.25", i % 17), i.to_string()))
            .collect(),
    ];
    for (i, set) in sets.iter().enumerate() {
        let key = format!("z{i}");
        let mut cmd = vec!["ZADD", key.as_str()];
        for (score, member) in set {
            cmd.extend([score.as_str(), member.as_str()]);
        }
        r.call(&cmd);
        let all = |c: &mut crate::support::Client, k: &str| {
            c.call(&["ZRANGE", k, "0", "-1", "WITHSCORES"])
        };
        let payload = strip_bulk(&r.call(&["DUMP", &key]));
        b.call_bytes(&[b"RESTORE", key.as_bytes(), b"0", &payload]);
        assert_eq!(all(&mut b, &key), all(&mut r, &key));
        assert_eq!(
            b.call(&["OBJECT", "ENCODING", &key]),
            r.call(&["OBJECT", "ENCODING", &key])
        );
        let payload = strip_bulk(&b.call(&["DUMP", &key]));
        let copy = format!("{key}-back");
        r.call_bytes(&[b"RESTORE", copy.as_bytes(), b"0", &payload]);
        assert_eq!(all(&mut r, &copy), all(&mut r, &key));
    }
}

/// HSCAN, SSCAN and ZSCAN of large collections page through every element exactly as SCAN does:
/// each element present for the whole scan is returned.
#[test]
fn scans_of_large_collections_visit_every_element() {
    let basalt = start_basalt(&[]);
    let mut c = basalt.client();
    for i in 0..1500 {
        let (f, m) = (format!("f{i}"), format!("m{i}"));
        c.call(&["HSET", "h", &f, "v"]);
        c.call(&["SADD", "s", &m]);
        c.call(&["ZADD", "z", &i.to_string(), &m]);
    }
    for (cmd, key, step) in [("HSCAN", "h", 2), ("SSCAN", "s", 1), ("ZSCAN", "z", 2)] {
        let mut seen = std::collections::HashSet::new();
        let mut cursor = "0".to_string();
        let mut rounds = 0;
        loop {
            let text = crate::support::show(&c.call(&[cmd, key, &cursor, "COUNT", "100"]));
            let lines: Vec<&str> = text.split("\r\n").collect();
            cursor = lines[2].to_string();
            let items: Vec<&str> = lines[5..].iter().step_by(2).copied().collect();
            for item in items.iter().step_by(step) {
                if !item.is_empty() {
                    seen.insert(item.to_string());
                }
            }
            rounds += 1;
            if cursor == "0" {
                break;
            }
        }
        assert_eq!(seen.len(), 1500, "{cmd}");
        assert!(rounds >= 15, "{cmd} paged {rounds} times");
    }
}

/// The payload of a bulk-string reply.
/// Streams move both ways with their groups: entries in several listpack nodes (Redis
/// starts a node every 100 entries or 4 KiB), entries of different fields, deleted entries
/// (kept flagged in Redis's nodes), the stream's IDs and counters, consumer groups with
/// pending entries, delivery times and counts, and consumers. XINFO STREAM FULL matches
/// field for field (delivery and seen times are carried, not taken anew), except Redis's
/// radix-tree sizes.
#[test]
fn dump_restore_moves_streams_both_ways() {
    use crate::support::{show, start_redis, Client};
    let redis = start_redis();
    let basalt = start_basalt(&[]);
    let (mut r, mut b) = (redis.client(), basalt.client());
    let big = "v".repeat(5000);
    let mut script: Vec<Vec<String>> = Vec::new();
    let mut add = |args: &[&str]| script.push(args.iter().map(|a| a.to_string()).collect());
    add(&["XADD", "s0", "1-1", "a", "1"]);
    add(&["XADD", "s0", "2-1", "a", "2", "b", "x"]);
    for i in 1..=250 {
        let id = format!("{i}-{}", i % 3);
        let value = if i % 7 == 0 { big.as_str() } else { "small" };
        add(&["XADD", "s1", &id, "f", value, "n", &i.to_string()]);
    }
    add(&["XDEL", "s1", "5-2", "100-1", "250-1"]);
    add(&["XGROUP", "CREATE", "s1", "g1", "0"]);
    add(&["XGROUP", "CREATE", "s1", "g2", "$", "ENTRIESREAD", "3"]);
    add(&[
        "XREADGROUP",
        "GROUP",
        "g1",
        "alice",
        "COUNT",
        "10",
        "STREAMS",
        "s1",
        ">",
    ]);
    add(&[
        "XREADGROUP",
        "GROUP",
        "g1",
        "bob",
        "COUNT",
        "5",
        "STREAMS",
        "s1",
        ">",
    ]);
    add(&["XREADGROUP", "GROUP", "g1", "bob", "STREAMS", "s1", "0"]);
    add(&["XACK", "s1", "g1", "3-0"]);
    add(&["XGROUP", "CREATECONSUMER", "s1", "g2", "idle"]);
    add(&[
        "XSETID",
        "s1",
        "300-0",
        "ENTRIESADDED",
        "400",
        "MAXDELETEDID",
        "260-0",
    ]);
    add(&["XADD", "s2", "1-1", "only", "one"]);
    add(&["XDEL", "s2", "1-1"]);
    add(&["XGROUP", "CREATE", "s3", "g", "$", "MKSTREAM"]);
    for cmd in &script {
        let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
        r.call(&args);
    }
    // Everything XINFO STREAM FULL shows but Redis's radix-tree sizes.
    let full = |c: &mut Client, key: &str| -> String {
        let text = show(&c.call(&["XINFO", "STREAM", key, "FULL", "COUNT", "0"]));
        let mut lines: Vec<&str> = text.split("\r\n").collect();
        for field in ["radix-tree-keys", "radix-tree-nodes"] {
            let at = lines.iter().position(|l| *l == field).unwrap();
            lines.drain(at - 1..at + 2);
        }
        lines.join("\n")
    };
    for key in ["s0", "s1", "s2", "s3"] {
        let payload = strip_bulk(&r.call(&["DUMP", key]));
        assert_eq!(
            show(&b.call_bytes(&[b"RESTORE", key.as_bytes(), b"0", &payload])),
            "+OK\r\n",
            "{key} into Basalt"
        );
        assert_eq!(full(&mut b, key), full(&mut r, key), "{key} in Basalt");
        let payload = strip_bulk(&b.call(&["DUMP", key]));
        let copy = format!("{key}-back");
        assert_eq!(
            show(&r.call_bytes(&[b"RESTORE", copy.as_bytes(), b"0", &payload])),
            "+OK\r\n",
            "{key} back into Redis"
        );
        assert_eq!(
            full(&mut r, &copy),
            full(&mut r, key),
            "{key} back in Redis"
        );
        // The copies take new entries after what they carried.
        r.call(&["XADD", &copy, "*", "after", "restore"]);
        b.call(&["XADD", key, "*", "after", "restore"]);
        let last = |c: &mut Client, k: &str| show(&c.call(&["XLEN", k]));
        assert_eq!(last(&mut b, key), last(&mut r, &copy));
    }
}

fn strip_bulk(reply: &[u8]) -> Vec<u8> {
    let header_end = reply.iter().position(|&c| c == b'\n').unwrap() + 1;
    reply[header_end..reply.len() - 2].to_vec()
}

/// HyperLogLog sketches stay byte-identical with Redis's through thousands of updates
/// (sparse opcode splits and merges, the turn to dense, merges and cached counts).
#[test]
fn hyperloglog_sketches_stay_byte_identical() {
    use crate::support::start_redis;
    let redis = start_redis();
    let basalt = start_basalt(&[]);
    let (mut r, mut b) = (redis.client(), basalt.client());
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..60 {
        let key = format!("h{}", round % 3);
        let n = 1 + next() % 200;
        let items: Vec<String> = (0..n).map(|_| format!("e{}", next() % 50000)).collect();
        let mut cmd = vec!["PFADD", key.as_str()];
        cmd.extend(items.iter().map(String::as_str));
        assert_eq!(r.call(&cmd), b.call(&cmd), "round {round}");
        for c in [
            vec!["GET", key.as_str()],
            vec!["PFCOUNT", key.as_str()],
            vec!["GET", key.as_str()],
        ] {
            assert_eq!(r.call(&c), b.call(&c), "round {round}: {c:?}");
        }
        if round % 10 == 9 {
            let merge = ["PFMERGE", "m", "h0", "h1", "h2"];
            assert_eq!(r.call(&merge), b.call(&merge));
            assert_eq!(r.call(&["GET", "m"]), b.call(&["GET", "m"]));
            assert_eq!(
                r.call(&["PFCOUNT", "h0", "h2"]),
                b.call(&["PFCOUNT", "h0", "h2"])
            );
        }
    }
    // The sketches went dense on the way (12,304 bytes).
    assert_eq!(
        crate::support::show(&b.call(&["STRLEN", "h0"])),
        ":12304\r\n"
    );
}
