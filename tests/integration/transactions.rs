//! MULTI/EXEC and WATCH on a 3-node cluster: a plain client's transaction runs at its
//! shard's leader through any node, a WATCH is aborted by a write that came through another
//! node, and a transaction survives kill -9 of the leader whole or not at all on every
//! replica.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::Value;

use crate::cluster::Cluster;
use crate::cluster_protocol::{connect, int, master_of, query, spread_slot_table, text};

/// MULTI, the commands, EXEC on one connection; EXEC's reply.
pub(crate) fn transaction(
    con: &mut redis::Connection,
    commands: &[&[&str]],
) -> redis::RedisResult<Value> {
    let multi = query(con, &["MULTI"])?;
    if multi != Value::Okay {
        return Ok(multi);
    }
    for cmd in commands {
        let queued = query(con, cmd);
        if !matches!(&queued, Ok(Value::SimpleString(s)) if s == "QUEUED") {
            let _ = query(con, &["DISCARD"]);
            return queued;
        }
    }
    query(con, &["EXEC"])
}

/// The client port of the node leading `key`'s shard, and of the others, once leaders
/// have settled.
pub(crate) fn leader_and_followers(ports: &[u16], key: &str) -> (u16, Vec<u16>) {
    let mut con = connect(ports[0]);
    let slot = int(&query(&mut con, &["CLUSTER", "KEYSLOT", key]).unwrap());
    let table = spread_slot_table(&mut con);
    let leader = master_of(&table, slot) as u16;
    let others = ports.iter().copied().filter(|p| *p != leader).collect();
    (leader, others)
}

#[test]
fn transactions_and_watch_work_through_any_node() {
    let cluster = Cluster::start("transactions", 3, &[]);
    let ports = cluster.ports();
    // Through every node: here or sent whole to the leader.
    for (i, port) in ports.iter().enumerate() {
        let mut con = connect(*port);
        let a = format!("{{t{i}}}a");
        let b = format!("{{t{i}}}b");
        let reply = transaction(
            &mut con,
            &[
                &["SET", &a, "1"],
                &["INCR", &a],
                &["SET", &b, "x"],
                &["GET", &a],
            ],
        )
        .unwrap();
        assert_eq!(
            format!("{reply:?}"),
            format!(
                "{:?}",
                Value::Array(vec![
                    Value::Okay,
                    Value::Int(2),
                    Value::Okay,
                    Value::BulkString(b"2".to_vec())
                ])
            ),
            "through node {i}"
        );
    }
    // Keys of several shards in one transaction: CROSSSLOT, nothing written.
    let mut con = connect(ports[0]);
    let keys: Vec<String> = (0..64).map(|i| format!("spread{i}")).collect();
    let commands: Vec<Vec<&str>> = keys.iter().map(|k| vec!["SET", k.as_str(), "v"]).collect();
    let refs: Vec<&[&str]> = commands.iter().map(|c| c.as_slice()).collect();
    let err = transaction(&mut con, &refs).unwrap_err();
    assert!(
        err.to_string().to_uppercase().contains("CROSSSLOT"),
        "{err}"
    );
    for k in &keys {
        assert_eq!(query(&mut con, &["EXISTS", k]).unwrap(), Value::Int(0));
    }

    // WATCH at the leader, a write through another node: EXEC aborts (a null reply).
    let (leader, others) = leader_and_followers(&ports, "{w}k");
    let mut watcher = connect(leader);
    let mut writer = connect(others[0]);
    query(&mut watcher, &["SET", "{w}k", "1"]).unwrap();
    assert_eq!(
        query(&mut watcher, &["WATCH", "{w}k"]).unwrap(),
        Value::Okay
    );
    assert_eq!(
        query(&mut writer, &["SET", "{w}k", "2"]).unwrap(),
        Value::Okay
    );
    let reply = transaction(&mut watcher, &[&["INCR", "{w}k"]]).unwrap();
    assert_eq!(
        reply,
        Value::Nil,
        "a write through another node aborts EXEC"
    );
    // Without the write it runs.
    query(&mut watcher, &["WATCH", "{w}k"]).unwrap();
    let reply = transaction(&mut watcher, &[&["INCR", "{w}k"]]).unwrap();
    assert_eq!(reply, Value::Array(vec![Value::Int(3)]));
    // A watch on a follower's connection goes with the transaction to the leader: a write
    // through the leader or the other follower aborts it, none lets it run.
    let mut follower = connect(others[0]);
    let mut at_leader = connect(leader);
    for writer in [&mut at_leader, &mut writer] {
        query(&mut follower, &["WATCH", "{w}k"]).unwrap();
        query(writer, &["INCR", "{w}k"]).unwrap();
        let reply = transaction(&mut follower, &[&["INCR", "{w}k"]]).unwrap();
        assert_eq!(
            reply,
            Value::Nil,
            "a write since WATCH aborts the forwarded EXEC"
        );
    }
    query(&mut follower, &["WATCH", "{w}k", "{w}absent"]).unwrap();
    let reply = transaction(&mut follower, &[&["INCR", "{w}k"]]).unwrap();
    assert_eq!(reply, Value::Array(vec![Value::Int(6)]));
    // Created after WATCH (it did not exist): aborts too.
    query(&mut follower, &["WATCH", "{w}absent"]).unwrap();
    query(&mut writer, &["SET", "{w}absent", "1"]).unwrap();
    let reply = transaction(&mut follower, &[&["INCR", "{w}k"]]).unwrap();
    assert_eq!(reply, Value::Nil);
    // An optimistic increment loop through a follower while others write through the
    // leader: no increment is lost.
    let stop = Arc::new(AtomicBool::new(false));
    let noise = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut c = connect(leader);
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                query(&mut c, &["INCR", "{w}counter"]).unwrap();
                n += 1;
                // Paced, so the loop below gets its turns (each of its aborts is a retry).
                std::thread::sleep(Duration::from_millis(2));
            }
            n
        })
    };
    let mut done = 0;
    while done < 20 {
        query(&mut follower, &["WATCH", "{w}counter"]).unwrap();
        let now = query(&mut follower, &["GET", "{w}counter"]).unwrap();
        let now: i64 = match now {
            Value::BulkString(b) => String::from_utf8_lossy(&b).parse().unwrap(),
            _ => 0,
        };
        let next = (now + 1).to_string();
        let reply = transaction(&mut follower, &[&["SET", "{w}counter", &next]]).unwrap();
        if reply != Value::Nil {
            done += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let others_did = noise.join().unwrap();
    let total = query(&mut at_leader, &["GET", "{w}counter"]).unwrap();
    assert_eq!(
        total,
        Value::BulkString((others_did + 20).to_string().into_bytes()),
        "a lost increment means a stale WATCH let EXEC run"
    );
}

/// Transactions `INCR a; INCR b` on one shard while its leader is killed: on every
/// replica afterwards, `a == b` (a crash never keeps half a transaction), and every
/// acknowledged transaction is there.
#[test]
fn a_transaction_survives_kill_9_of_the_leader_whole_or_not_at_all() {
    let mut cluster = Cluster::start("transactions-kill", 3, &["--appendfsync", "always"]);
    let ports = cluster.ports();
    let (leader, others) = leader_and_followers(&ports, "{atom}a");
    let leader_index = ports.iter().position(|p| *p == leader).unwrap();
    let acked = acknowledged_across_kill(&mut cluster, leader_index, others[0], |con| {
        let reply = transaction(con, &[&["INCR", "{atom}a"], &["INCR", "{atom}b"]]);
        matches!(reply, Ok(Value::Array(items)) if items.len() == 2)
    });
    assert!(acked > 20, "too few transactions: {acked}");
    // Both counters equal and holding every acknowledged transaction.
    converged_counters(&cluster, ("{atom}a", "{atom}b"), acked, |a, b, port| {
        assert_eq!(a, b, "half a transaction on the node at {port}");
    });
}

/// Runs `step` over and over through the node at `port`, killing node `victim` (kill -9)
/// two seconds in and starting it again four seconds later; how many steps `step` saw
/// acknowledged (a refused one, while the shard elects a new leader, wrote nothing).
pub(crate) fn acknowledged_across_kill(
    cluster: &mut Cluster,
    victim: usize,
    port: u16,
    step: impl Fn(&mut redis::Connection) -> bool + Send + 'static,
) -> u64 {
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, acked) = (stop.clone(), acked.clone());
        std::thread::spawn(move || {
            let mut con = connect(port);
            while !stop.load(Ordering::Relaxed) {
                if step(&mut con) {
                    acked.fetch_add(1, Ordering::Relaxed);
                } else {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        })
    };
    std::thread::sleep(Duration::from_secs(2));
    cluster.kill(victim);
    std::thread::sleep(Duration::from_secs(4));
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    cluster.start_node(victim);
    acked.load(Ordering::Relaxed)
}

/// Waits until every node, read on its own (READONLY, stale: no leader asked), holds at
/// least `at_least` in the first of two counters, then hands both to `check`.
pub(crate) fn converged_counters(
    cluster: &Cluster,
    keys: (&str, &str),
    at_least: u64,
    check: impl Fn(u64, u64, u16),
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    for port in cluster.ports() {
        let mut con = connect(port);
        query(&mut con, &["READONLY"]).unwrap();
        loop {
            let a = query(&mut con, &["GET", keys.0]);
            let b = query(&mut con, &["GET", keys.1]);
            if let (Ok(a), Ok(b)) = (a, b) {
                let a: u64 = text(&a).parse().unwrap_or(0);
                let b: u64 = text(&b).parse().unwrap_or(0);
                if a >= at_least {
                    check(a, b, port);
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "node at {port} never caught up to {at_least}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
