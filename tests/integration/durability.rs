//! Data survives restarts: clean shutdowns, and kill -9 with `appendfsync always`.

use std::collections::HashSet;
use std::time::Duration;

use crate::support::{show, start_basalt_in, test_dir, Client};

#[test]
fn restart_keeps_keys_ttls_and_databases() {
    let dir = test_dir("restart");
    {
        let mut server = start_basalt_in(&dir, &[]);
        let mut c = server.client();
        assert_eq!(show(&c.call(&["SET", "plain", "v"])), "+OK\r\n");
        assert_eq!(
            show(&c.call(&["SET", "volatile", "v", "EX", "1000"])),
            "+OK\r\n"
        );
        assert_eq!(show(&c.call(&["SELECT", "3"])), "+OK\r\n");
        assert_eq!(show(&c.call(&["SET", "in-db3", "x"])), "+OK\r\n");
        assert_eq!(show(&c.call(&["SWAPDB", "3", "4"])), "+OK\r\n");
        c.send(&[b"SHUTDOWN"]);
        assert!(server
            .wait_exit(Duration::from_secs(20))
            .is_some_and(|s| s.success()));
    }
    let server = start_basalt_in(&dir, &[]);
    let mut c = server.client();
    assert_eq!(show(&c.call(&["GET", "plain"])), "$1\r\nv\r\n");
    let ttl = show(&c.call(&["TTL", "volatile"]));
    assert!(ttl == ":1000\r\n" || ttl == ":999\r\n", "{ttl}");
    assert_eq!(show(&c.call(&["DBSIZE"])), ":2\r\n");
    assert_eq!(show(&c.call(&["SELECT", "4"])), "+OK\r\n");
    assert_eq!(show(&c.call(&["GET", "in-db3"])), "$1\r\nx\r\n");
    let info = show(&c.call(&["INFO", "storage"]));
    assert!(info.contains("storage_engine:lsm"), "{info}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Writes from a client until the server is killed; every acknowledged write must be there
/// after a restart, and nothing that was never sent. With `everysec` a kill -9 of the process
/// (not of the machine) loses nothing either: the log reaches the OS before replies go out.
#[test]
fn kill_dash_nine_loses_no_acknowledged_write() {
    kill_cycles("always");
    kill_cycles("everysec");
}

fn kill_cycles(appendfsync: &str) {
    let dir = test_dir("kill9");
    let check = |c: &mut Client, acknowledged: &[u64], cycle: u64| {
        for n in acknowledged {
            let key = format!("k{n}");
            assert_eq!(
                show(&c.call(&["EXISTS", &key])),
                ":1\r\n",
                "cycle {cycle}: {key} lost"
            );
        }
    };
    let write = |c: &mut Client, n: u64| {
        c.send(&[b"SET", format!("k{n}").as_bytes(), b"value"]);
        matches!(c.try_read_reply(), Ok(r) if r == b"+OK\r\n")
    };
    let (acknowledged, next) =
        write_and_kill(&dir, 4, &["--appendfsync", appendfsync], write, check);
    let server = start_basalt_in(&dir, &[]);
    let mut c = server.client();
    let present: HashSet<String> = {
        let keys = show(&c.call(&["KEYS", "*"]));
        keys.split("\r\n")
            .filter(|l| l.starts_with('k'))
            .map(String::from)
            .collect()
    };
    for n in &acknowledged {
        assert!(
            present.contains(&format!("k{n}")),
            "k{n} was acknowledged and is gone"
        );
    }
    for key in &present {
        let n: u64 = key[1..].parse().unwrap();
        assert!(n < next, "{key} was never sent");
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `cycles` rounds of: start the server in `dir`, check what was acknowledged so far, write
/// numbered writes from a thread (`write` says whether each was acknowledged) until a
/// SIGKILL cuts them off. Returns the acknowledged numbers and the next unsent one.
fn write_and_kill(
    dir: &std::path::Path,
    cycles: u64,
    args: &[&str],
    write: fn(&mut Client, u64) -> bool,
    check: impl Fn(&mut Client, &[u64], u64),
) -> (Vec<u64>, u64) {
    let mut acknowledged: Vec<u64> = Vec::new();
    let mut next = 0u64;
    for cycle in 0..cycles {
        let mut server = start_basalt_in(dir, args);
        check(&mut server.client(), &acknowledged, cycle);
        let writer_port = server.port;
        let writes = std::thread::spawn(move || {
            let mut c = Client::connect(writer_port);
            c.set_timeout(Duration::from_secs(5));
            let mut acked = Vec::new();
            let mut sent = next;
            loop {
                sent += 1;
                if !write(&mut c, sent - 1) {
                    return (acked, sent);
                }
                acked.push(sent - 1);
            }
        });
        std::thread::sleep(Duration::from_millis(150 + 97 * cycle));
        let _ = server.child.kill(); // SIGKILL
        let _ = server.child.wait();
        let (acked, sent) = writes.join().unwrap();
        assert!(!acked.is_empty(), "cycle {cycle} acknowledged nothing");
        acknowledged.extend(acked);
        next = sent;
    }
    (acknowledged, next)
}

fn rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kib| kib / 1024)
}

/// A dataset 24× the block cache plus memtable budget stays fully readable, and the process
/// does not grow with it.
#[test]
fn larger_than_memory_dataset_stays_readable_with_bounded_rss() {
    let dir = test_dir("ltm");
    let server = start_basalt_in(
        &dir,
        &[
            "--block-cache-size",
            "1mb",
            "--row-cache-size",
            "1mb",
            "--memtable-size",
            "1mb",
        ],
    );
    let pid = server.child.id();
    let mut c = server.client();
    // 24,000 values of 4 KiB of incompressible bytes: 96 MiB. RSS is measured after the
    // first quarter (caches, buffers and the allocator have reached their working size)
    // and at the end: the last 72 MiB of data must not show up in memory.
    let mut before = 0;
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut value = vec![0u8; 4096];
    let mut batch = Vec::new();
    for i in 0..24_000u32 {
        if i == 6_000 {
            before = rss_mib(pid);
        }
        for b in value.iter_mut() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *b = state as u8;
        }
        batch.extend(crate::support::encode_command(&[
            b"SET",
            format!("big:{i:06}").as_bytes(),
            &value,
        ]));
        if i % 100 == 99 {
            c.send_raw(&batch);
            batch.clear();
            for _ in 0..100 {
                assert_eq!(show(&c.read_reply()), "+OK\r\n");
            }
        }
    }
    for i in (0..24_000u32).step_by(7) {
        let reply = c.call(&["STRLEN", &format!("big:{i:06}")]);
        assert_eq!(show(&reply), ":4096\r\n", "key {i}");
    }
    let after = rss_mib(pid);
    assert!(
        after.saturating_sub(before) < 36,
        "RSS grew from {before} MiB to {after} MiB while 72 MiB were written"
    );
    let info = show(&c.call(&["INFO", "storage"]));
    assert!(info.contains("level1:files="), "{info}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// FLUSHALL is one range tombstone however many keys it covers: the keys are gone at once,
/// stay gone after a kill -9, and the space comes back once compaction has run.
#[test]
fn flushall_is_one_record_and_survives_kill_dash_nine() {
    let dir = test_dir("flushall");
    let args = ["--memtable-size", "256kb", "--appendfsync", "always"];
    let mut server = start_basalt_in(&dir, &args);
    let mut c = server.client();
    let value = "v".repeat(200);
    for chunk in 0..20 {
        let mut cmd = vec!["MSET".to_string()];
        for i in 0..500 {
            cmd.push(format!("k{chunk}-{i}"));
            cmd.push(value.clone());
        }
        let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
        assert_eq!(show(&c.call(&cmd)), "+OK\r\n");
    }
    assert_eq!(show(&c.call(&["SAVE"])), "+OK\r\n");
    assert_eq!(show(&c.call(&["DBSIZE"])), ":10000\r\n");
    assert_eq!(show(&c.call(&["FLUSHALL"])), "+OK\r\n");
    assert_eq!(show(&c.call(&["SET", "after", "1"])), "+OK\r\n");
    assert_eq!(show(&c.call(&["DBSIZE"])), ":1\r\n");
    let _ = server.child.kill(); // SIGKILL
    let _ = server.child.wait();
    drop(server);

    let server = start_basalt_in(&dir, &args);
    let mut c = server.client();
    assert_eq!(show(&c.call(&["DBSIZE"])), ":1\r\n");
    assert_eq!(show(&c.call(&["GET", "k3-7"])), "$-1\r\n");
    assert_eq!(show(&c.call(&["KEYS", "*"])), "*1\r\n$5\r\nafter\r\n");
    // Compaction takes the covered data away and the tombstone with it.
    assert_eq!(show(&c.call(&["SAVE"])), "+OK\r\n");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let info = show(&c.call(&["INFO", "storage"]));
        let field = |name: &str| -> u64 {
            info.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(u64::MAX)
        };
        let stored: u64 = info
            .lines()
            .filter_map(|l| l.split_once("bytes=").map(|(_, b)| b.trim()))
            .filter_map(|b| b.parse::<u64>().ok())
            .sum();
        if field("range_tombstones:") == 0 && stored < 100_000 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{info}");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Tables written with one compression setting stay readable under another.
#[test]
fn compression_settings_apply_and_mix() {
    let dir = test_dir("compression");
    let args = [
        "--memtable-size",
        "64kb",
        "--compression",
        "none",
        "--bottom-compression",
        "lz4",
    ];
    let server = start_basalt_in(&dir, &args);
    let mut c = server.client();
    for i in 0..3000 {
        let key = format!("c{i}");
        assert_eq!(show(&c.call(&["SET", &key, &key])), "+OK\r\n");
    }
    assert_eq!(show(&c.call(&["SAVE"])), "+OK\r\n");
    assert_eq!(
        show(&c.call(&["CONFIG", "GET", "bottom-compression"])),
        "*2\r\n$18\r\nbottom-compression\r\n$3\r\nlz4\r\n"
    );
    drop(server);
    let server = start_basalt_in(&dir, &[]);
    let mut c = server.client();
    for i in (0..3000).step_by(7) {
        let key = format!("c{i}");
        assert_eq!(
            show(&c.call(&["GET", &key])),
            format!("${}\r\n{key}\r\n", key.len())
        );
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// DEL of a hash only removes its metadata record; compaction then drops the fields of the
/// old version (the keyspace's compaction filter), and a new hash under the same name never
/// sees them.
#[test]
fn compaction_drops_the_fields_of_deleted_hashes() {
    let dir = test_dir("hashfilter");
    let server = start_basalt_in(&dir, &["--memtable-size", "64kb"]);
    let mut c = server.client();
    let fill = |c: &mut Client, tag: &str| {
        for chunk in 0..30 {
            let mut cmd = vec!["HSET".to_string(), "h".to_string()];
            for i in 0..100 {
                cmd.push(format!("field-{chunk}-{i}"));
                cmd.push(format!("{tag}-{}", "x".repeat(40)));
            }
            let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
            assert_eq!(show(&c.call(&cmd)), ":100\r\n");
        }
    };
    fill(&mut c, "old");
    assert_eq!(show(&c.call(&["SAVE"])), "+OK\r\n");
    assert_eq!(show(&c.call(&["DEL", "h"])), ":1\r\n");
    assert_eq!(show(&c.call(&["HLEN", "h"])), ":0\r\n");
    assert_eq!(show(&c.call(&["HSET", "h", "extra", "new"])), ":1\r\n");
    assert_eq!(show(&c.call(&["HLEN", "h"])), ":1\r\n");
    assert_eq!(show(&c.call(&["HGET", "h", "field-0-1"])), "$-1\r\n");
    fill(&mut c, "new");
    assert_eq!(show(&c.call(&["SAVE"])), "+OK\r\n");
    wait_filter_removed(&mut c, 1000);
    assert_eq!(show(&c.call(&["HLEN", "h"])), ":3001\r\n");
    let value = show(&c.call(&["HGET", "h", "field-7-7"]));
    assert!(value.contains("new-"), "{value}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A deleted sorted set's member records and its score index both go at compaction (the
/// filter knows both record spaces); the new set under the same key is untouched.
#[test]
fn compaction_drops_the_members_and_score_index_of_deleted_sorted_sets() {
    let dir = test_dir("zsetfilter");
    let server = start_basalt_in(&dir, &["--memtable-size", "64kb"]);
    let mut c = server.client();
    let fill = |c: &mut Client, base: u64| {
        for chunk in 0..30u64 {
            let mut cmd = vec!["ZADD".to_string(), "z".to_string()];
            for i in 0..100u64 {
                cmd.push((base + chunk * 100 + i).to_string());
                cmd.push(format!("member-{chunk}-{i}-{}", "x".repeat(30)));
            }
            let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
            assert_eq!(show(&c.call(&cmd)), ":100\r\n");
        }
    };
    fill(&mut c, 0);
    assert_eq!(show(&c.call(&["SAVE"])), "+OK\r\n");
    assert_eq!(show(&c.call(&["DEL", "z"])), ":1\r\n");
    fill(&mut c, 100_000);
    assert_eq!(show(&c.call(&["SAVE"])), "+OK\r\n");
    // More than one record per old member: score-index records went too.
    wait_filter_removed(&mut c, 3001);
    assert_eq!(show(&c.call(&["ZCARD", "z"])), ":3000\r\n");
    assert_eq!(show(&c.call(&["ZCOUNT", "z", "-inf", "99999"])), ":0\r\n");
    let first = show(&c.call(&["ZRANGE", "z", "0", "0", "WITHSCORES"]));
    assert!(first.contains("100000"), "{first}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// kill -9 in the middle of sorted-set writes: every acknowledged member is there with its
/// score, and the member records and the score index agree (each write is one atomic batch).
#[test]
fn sorted_sets_survive_kill_dash_nine_with_index_and_members_in_step() {
    let dir = test_dir("zkill9");
    let write = |c: &mut Client, n: u64| {
        let (score, member) = (n.to_string(), format!("m{n}"));
        c.send(&[b"ZADD", b"z", score.as_bytes(), member.as_bytes()]);
        matches!(c.try_read_reply(), Ok(r) if r == b":1\r\n")
    };
    let (acknowledged, _) =
        write_and_kill(&dir, 3, &["--appendfsync", "always"], write, |_, _, _| {});
    let server = start_basalt_in(&dir, &[]);
    let mut c = server.client();
    for n in &acknowledged {
        assert_eq!(
            show(&c.call(&["ZSCORE", "z", &format!("m{n}")])),
            format!("${}\r\n{n}\r\n", n.to_string().len()),
            "m{n} lost"
        );
    }
    let card = show(&c.call(&["ZCARD", "z"]));
    assert_eq!(show(&c.call(&["ZCOUNT", "z", "-inf", "+inf"])), card);
    let listed = show(&c.call(&["ZRANGE", "z", "0", "-1"]));
    let members = listed.split("\r\n").filter(|l| l.starts_with('m')).count();
    assert_eq!(format!(":{members}\r\n"), card);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Waits (up to 20 s) until the compaction filter has removed at least `n` records.
fn wait_filter_removed(c: &mut Client, n: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let info = show(&c.call(&["INFO", "storage"]));
        let removed: u64 = info
            .lines()
            .find_map(|l| l.strip_prefix("compaction_filter_removed:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if removed >= n {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{info}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
