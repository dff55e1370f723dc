//! Streams end to end: blocked XREAD and XREADGROUP woken by XADD through another node of
//! a cluster, a pending entry across kill -9 of its shard's leader (still pending, with
//! its consumer, delivery count and idle time), and range reads of a 1,000,000-entry
//! stream that touch only the entries and blocks they return.

use std::time::{Duration, Instant};

use redis::Value;

use crate::cluster::Cluster;
use crate::cluster_protocol::{connect, int, query, text};
use crate::support::{show, start_basalt};
use crate::transactions::leader_and_followers;

/// Polls `op` until it gives `Some`, for up to 20 s.
fn eventually<T>(what: &str, mut op: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(found) = op() {
            return found;
        }
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The IDs of the entries in an XREAD / XREADGROUP reply (RESP2).
fn ids_read(reply: &Value) -> Vec<String> {
    let Value::Array(streams) = reply else {
        return Vec::new();
    };
    let mut ids = Vec::new();
    for stream in streams {
        if let Value::Array(pair) = stream {
            if let Some(Value::Array(entries)) = pair.get(1) {
                for entry in entries {
                    if let Value::Array(parts) = entry {
                        ids.push(text(&parts[0]));
                    }
                }
            }
        }
    }
    ids
}

#[test]
fn blocked_readers_get_entries_added_through_another_node() {
    let cluster = Cluster::start("streams-block", 3, &[]);
    let ports = cluster.ports();
    let key = "{feed}events";
    let (leader, others) = leader_and_followers(&ports, key);
    let mut admin = connect(leader);
    assert_eq!(
        query(
            &mut admin,
            &["XGROUP", "CREATE", key, "workers", "$", "MKSTREAM"]
        )
        .unwrap(),
        Value::Okay
    );
    // Two group consumers and a plain reader, blocked through nodes that do not lead the
    // stream (their commands go to the leader), and one through the leader.
    let mut readers = Vec::new();
    for (i, port) in [others[0], others[1], leader].into_iter().enumerate() {
        readers.push(std::thread::spawn(move || {
            let mut con = connect(port);
            let consumer = format!("c{i}");
            query(
                &mut con,
                &[
                    "XREADGROUP",
                    "GROUP",
                    "workers",
                    &consumer,
                    "COUNT",
                    "1",
                    "BLOCK",
                    "20000",
                    "STREAMS",
                    key,
                    ">",
                ],
            )
            .unwrap()
        }));
    }
    let plain_port = others[1];
    let plain = std::thread::spawn(move || {
        let mut con = connect(plain_port);
        query(&mut con, &["XREAD", "BLOCK", "20000", "STREAMS", key, "$"]).unwrap()
    });
    let mut watcher = connect(leader);
    eventually("four blocked readers", || {
        let info = text(&query(&mut watcher, &["INFO", "clients"]).unwrap());
        info.contains("blocked_clients:4").then_some(())
    });
    // The producer writes through a node that does not lead the stream.
    let mut producer = connect(others[0]);
    let mut added = Vec::new();
    for n in 0..3 {
        let id = query(&mut producer, &["XADD", key, "*", "n", &n.to_string()]).unwrap();
        added.push(text(&id));
    }
    // Each consumer got one entry (no entry twice); the plain reader saw the first.
    let mut got: Vec<String> = readers
        .into_iter()
        .flat_map(|r| ids_read(&r.join().unwrap()))
        .collect();
    got.sort();
    assert_eq!(got, added, "each entry to one consumer");
    assert_eq!(ids_read(&plain.join().unwrap())[0], added[0]);
    let pending = query(&mut admin, &["XPENDING", key, "workers"]).unwrap();
    assert_eq!(
        int(&match pending {
            Value::Array(parts) => parts[0].clone(),
            other => panic!("{other:?}"),
        }),
        3
    );
}

#[test]
fn a_pending_entry_survives_kill_9_of_its_leader() {
    let mut cluster = Cluster::start("streams-kill", 3, &["--appendfsync", "always"]);
    let ports = cluster.ports();
    let key = "{jobs}queue";
    let (leader, others) = leader_and_followers(&ports, key);
    let mut con = connect(others[0]);
    query(&mut con, &["XGROUP", "CREATE", key, "g", "0", "MKSTREAM"]).unwrap();
    for n in 0..5 {
        query(
            &mut con,
            &["XADD", key, &format!("{}-1", n + 1), "job", &n.to_string()],
        )
        .unwrap();
    }
    let read = query(
        &mut con,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "alice",
            "COUNT",
            "2",
            "STREAMS",
            key,
            ">",
        ],
    )
    .unwrap();
    assert_eq!(ids_read(&read), ["1-1", "2-1"]);
    query(&mut con, &["XACK", key, "g", "1-1"]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let victim = ports.iter().position(|p| *p == leader).unwrap();
    cluster.kill(victim);
    // Through a surviving node, once the shard has a new leader: 2-1 is still alice's,
    // delivered once, idle for at least the time since; the group read up to 2-1.
    let mut survivor = connect(others[1]);
    let pending = eventually("the pending entry after the failover", || {
        match query(&mut survivor, &["XPENDING", key, "g", "-", "+", "10"]) {
            Ok(Value::Array(items)) => Some(items),
            _ => None,
        }
    });
    assert_eq!(pending.len(), 1, "{pending:?}");
    let Value::Array(entry) = &pending[0] else {
        panic!("{pending:?}")
    };
    assert_eq!(text(&entry[0]), "2-1");
    assert_eq!(text(&entry[1]), "alice");
    assert!(int(&entry[2]) >= 300, "idle time kept: {entry:?}");
    assert_eq!(int(&entry[3]), 1);
    let groups = format!(
        "{:?}",
        query(&mut survivor, &["XINFO", "GROUPS", key]).unwrap()
    );
    assert!(
        groups.contains("\"2-1\""),
        "last delivered ID kept: {groups}"
    );
    // New entries go to the next consumer; alice's history still holds 2-1.
    let next = query(
        &mut survivor,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "bob",
            "COUNT",
            "1",
            "STREAMS",
            key,
            ">",
        ],
    )
    .unwrap();
    assert_eq!(ids_read(&next), ["3-1"]);
    let history = query(
        &mut survivor,
        &["XREADGROUP", "GROUP", "g", "alice", "STREAMS", key, "0"],
    )
    .unwrap();
    assert_eq!(ids_read(&history), ["2-1"]);
    assert_eq!(
        query(&mut survivor, &["XACK", key, "g", "2-1", "3-1"]).unwrap(),
        Value::Int(2)
    );
    cluster.start_node(victim);
}

/// Waits until no flush or compaction is pending and none has finished for a second.
fn wait_for_quiet_storage(c: &mut crate::support::Client) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let busy = |c: &mut crate::support::Client| {
        (
            storage_counter(c, "pending_compaction_bytes")
                + storage_counter(c, "immutable_memtables"),
            storage_counter(c, "compactions") + storage_counter(c, "flushes"),
        )
    };
    loop {
        let (pending, done) = busy(c);
        std::thread::sleep(Duration::from_secs(1));
        if pending == 0 && busy(c) == (0, done) {
            return;
        }
        assert!(Instant::now() < deadline, "the engine never went quiet");
    }
}

/// Tables a short range may read: every level-0 file (they overlap) and two files of each
/// deeper level that has any.
fn tables_a_range_may_touch(c: &mut crate::support::Client) -> u64 {
    let info = show(&c.call(&["INFO", "storage"]));
    info.lines()
        .filter_map(|l| {
            let (level, rest) = l.split_once(':')?;
            let level: u32 = level.strip_prefix("level")?.parse().ok()?;
            let files: u64 = rest
                .strip_prefix("files=")?
                .split(',')
                .next()?
                .parse()
                .ok()?;
            Some(if level == 0 { files } else { files.min(2) })
        })
        .sum()
}

/// A counter of INFO storage: `scan_entries` (entries the engine's range reads visited),
/// `block_reads` (table blocks read from files).
fn storage_counter(c: &mut crate::support::Client, name: &str) -> u64 {
    let info = show(&c.call(&["INFO", "storage"]));
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} in INFO storage"))
}

#[test]
fn a_window_of_a_long_stream_reads_only_its_entries() {
    // Small memtables: most of the stream is in table files.
    let server = start_basalt(&["--memtable-size", "4194304"]);
    let mut c = server.client();
    const ENTRIES: u64 = 1_000_000;
    const BATCH: u64 = 5_000;
    for batch in 0..ENTRIES / BATCH {
        let mut wire = Vec::new();
        for n in batch * BATCH..(batch + 1) * BATCH {
            let id = format!("{}-1", n + 1);
            wire.extend(crate::support::encode_command(&[
                b"XADD",
                b"long",
                id.as_bytes(),
                b"payload",
                b"0123456789abcdef",
            ]));
        }
        c.send_raw(&wire);
        for _ in 0..BATCH {
            let reply = show(&c.read_reply());
            assert!(reply.starts_with('$'), "{reply}");
        }
    }
    assert_eq!(show(&c.call(&["XLEN", "long"])), format!(":{ENTRIES}\r\n"));
    // `block_reads` counts compaction's reads too: measure once the engine is quiet.
    wait_for_quiet_storage(&mut c);
    // A window of 100 in the middle, forwards and backwards, and the tail a reader after
    // the last ID reads: each visits about what it returns.
    for (cmd, expect_first) in [
        (
            ["XRANGE", "long", "300000", "+", "COUNT", "100"],
            "300000-1",
        ),
        (
            ["XREVRANGE", "long", "650000", "-", "COUNT", "100"],
            "650000-1",
        ),
        (
            ["XREAD", "COUNT", "100", "STREAMS", "long", "999900-1"],
            "999901-1",
        ),
    ] {
        let entries = storage_counter(&mut c, "scan_entries");
        let blocks = storage_counter(&mut c, "block_reads");
        let tables = tables_a_range_may_touch(&mut c);
        let reply = show(&c.call(&cmd));
        let visited = storage_counter(&mut c, "scan_entries") - entries;
        let read = storage_counter(&mut c, "block_reads") - blocks;
        assert!(reply.contains(expect_first), "{cmd:?}: {reply}");
        assert!(visited <= 300, "{cmd:?} visited {visited} entries for 100");
        // 100 entries of ~60 bytes fill two or three 4 KiB blocks of each table they span
        // (plus its index block): the count follows the tables, not the stream's length.
        assert!(
            read <= 4 * tables + 4,
            "{cmd:?} read {read} blocks for 100 entries over {tables} tables"
        );
    }
}

#[test]
fn blocked_group_consumers_are_served_in_the_order_they_blocked() {
    let server = start_basalt(&[]);
    let mut admin = server.client();
    admin.call(&["XGROUP", "CREATE", "q", "g", "$", "MKSTREAM"]);
    admin.call(&["XGROUP", "CREATE", "q", "other", "$"]);
    // Three consumers of g, then one of another group, each blocked in turn.
    let mut clients = Vec::new();
    for (n, (group, consumer)) in [("g", "c1"), ("g", "c2"), ("g", "c3"), ("other", "o1")]
        .into_iter()
        .enumerate()
    {
        let mut c = server.client();
        c.send(&[
            b"XREADGROUP",
            b"GROUP",
            group.as_bytes(),
            consumer.as_bytes(),
            b"COUNT",
            b"1",
            b"BLOCK",
            b"20000",
            b"STREAMS",
            b"q",
            b">",
        ]);
        crate::blocking::wait_blocked(&mut admin, n as u64 + 1);
        clients.push(c);
    }
    // One entry at a time: the first blocked consumer of g gets it (the other group's
    // consumer gets the first entry too: it is new to its group).
    for (n, id) in ["1-1", "2-1", "3-1"].into_iter().enumerate() {
        admin.call(&["XADD", "q", id, "n", "v"]);
        let got = show(&clients[n].read_reply());
        assert!(got.contains(id), "consumer c{} got {got}", n + 1);
        if n == 0 {
            assert!(show(&clients[3].read_reply()).contains("1-1"));
        }
    }
}

#[test]
fn a_blocked_consumer_gets_its_entry_from_the_new_leader_after_a_failover() {
    let mut cluster = Cluster::start("streams-failover", 3, &["--appendfsync", "always"]);
    let ports = cluster.ports();
    let key = "{fo}queue";
    let (leader, others) = leader_and_followers(&ports, key);
    let mut admin = connect(others[0]);
    query(&mut admin, &["XGROUP", "CREATE", key, "g", "$", "MKSTREAM"]).unwrap();
    // A consumer blocked through a node that survives (its command waits at the leader).
    let through = others[1];
    let consumer = std::thread::spawn(move || {
        let started = Instant::now();
        let mut errors = Vec::new();
        loop {
            let mut con = connect(through);
            let read = query(
                &mut con,
                &[
                    "XREADGROUP",
                    "GROUP",
                    "g",
                    "c",
                    "BLOCK",
                    "30000",
                    "STREAMS",
                    key,
                    ">",
                ],
            );
            match read {
                Ok(Value::Nil) => errors.push("timed out".to_string()),
                Ok(reply) => return (ids_read(&reply), errors, started.elapsed()),
                Err(e) => {
                    errors.push(e.to_string());
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
            assert!(started.elapsed() < Duration::from_secs(60), "{errors:?}");
        }
    });
    let mut on_leader = connect(leader);
    eventually("the consumer blocked at the leader", || {
        let info = text(&query(&mut on_leader, &["INFO", "clients"]).unwrap());
        info.contains("blocked_clients:1").then_some(())
    });
    cluster.kill(ports.iter().position(|p| *p == leader).unwrap());
    // The producer writes once the shard has a new leader.
    let id = eventually("XADD after the failover", || {
        query(&mut admin, &["XADD", key, "*", "job", "1"])
            .ok()
            .map(|v| text(&v))
    });
    let (got, errors, waited) = consumer.join().unwrap();
    assert_eq!(got, [id], "errors on the way: {errors:?}");
    // It did not sit out its 30-second BLOCK waiting on the dead leader.
    assert!(waited < Duration::from_secs(25), "{waited:?}, {errors:?}");
}
