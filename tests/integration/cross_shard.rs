//! Transactions over keys of shards led by different nodes (`cross-shard-transactions
//! yes`): atomic for readers and writers through any node, WATCH honoured, plain multi-key
//! writes (MSET, RENAME) across shards, and a coordinator killed after preparing or after
//! deciding: the shards settle the transaction all or nothing by themselves.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::Value;

use crate::cluster::Cluster;
use crate::cluster_protocol::{connect, int, master_of, query, spread_slot_table, text};
use crate::transactions::transaction;

/// Two keys (with a common prefix) whose shards different nodes lead, with those nodes'
/// client ports.
fn keys_led_apart(ports: &[u16], prefix: &str) -> ((String, u16), (String, u16)) {
    let mut con = connect(ports[0]);
    let table = spread_slot_table(&mut con);
    let leader = |con: &mut redis::Connection, key: &str| {
        let slot = int(&query(con, &["CLUSTER", "KEYSLOT", key]).unwrap());
        master_of(&table, slot) as u16
    };
    let a = format!("{prefix}0");
    let la = leader(&mut con, &a);
    for i in 1..1000 {
        let b = format!("{prefix}{i}");
        let lb = leader(&mut con, &b);
        if lb != la {
            return ((a, la), (b, lb));
        }
    }
    panic!("no two keys led by different nodes");
}

fn number(v: &Value) -> i64 {
    match v {
        Value::Nil => 0,
        other => text(other).parse().unwrap(),
    }
}

#[test]
fn cross_shard_transactions_are_atomic_through_any_node() {
    let cluster = Cluster::start("cross-shard", 3, &["--cross-shard-transactions", "yes"]);
    let ports = cluster.ports();
    let ((a, la), (b, lb)) = keys_led_apart(&ports, "acct");
    let third = ports
        .iter()
        .copied()
        .find(|p| *p != la && *p != lb)
        .unwrap();
    // Through a node that leads neither key.
    let mut con = connect(third);
    let reply = transaction(
        &mut con,
        &[
            &["SET", &a, "100"],
            &["SET", &b, "100"],
            &["INCRBY", &a, "5"],
            &["GET", &b],
        ],
    )
    .unwrap();
    assert_eq!(
        reply,
        Value::Array(vec![
            Value::Okay,
            Value::Okay,
            Value::Int(105),
            Value::BulkString(b"100".to_vec())
        ])
    );
    for port in &ports {
        let mut c = connect(*port);
        assert_eq!(number(&query(&mut c, &["GET", &a]).unwrap()), 105);
        assert_eq!(number(&query(&mut c, &["GET", &b]).unwrap()), 100);
    }
    // Collections move whole.
    let reply = transaction(
        &mut con,
        &[
            &["RPUSH", "acct-list0", "x", "y"],
            &["HSET", "acct-hash1", "f", "v"],
            &["SADD", "acct-list1", "m"],
        ],
    )
    .unwrap();
    assert_eq!(
        reply,
        Value::Array(vec![Value::Int(2), Value::Int(1), Value::Int(1)])
    );
    assert_eq!(
        query(&mut con, &["LRANGE", "acct-list0", "0", "-1"]).unwrap(),
        Value::Array(vec![
            Value::BulkString(b"x".to_vec()),
            Value::BulkString(b"y".to_vec())
        ])
    );
    // Plain writes over several shards: MSET, RENAME.
    assert_eq!(
        query(&mut con, &["MSET", &a, "1", &b, "2"]).unwrap(),
        Value::Okay
    );
    assert_eq!(
        query(&mut con, &["RENAME", &a, "acct-renamed"]).unwrap(),
        Value::Okay
    );
    assert_eq!(query(&mut con, &["EXISTS", &a]).unwrap(), Value::Int(0));
    assert_eq!(
        number(&query(&mut con, &["GET", "acct-renamed"]).unwrap()),
        1
    );
    query(&mut con, &["SET", &a, "100"]).unwrap();
    query(&mut con, &["SET", &b, "100"]).unwrap();
    // WATCH: a write through another node since aborts; without one it runs.
    let mut other = connect(ports[0]);
    query(&mut con, &["WATCH", &a, &b]).unwrap();
    query(&mut other, &["INCR", &b]).unwrap();
    let reply = transaction(&mut con, &[&["DECR", &a], &["INCR", &b]]).unwrap();
    assert_eq!(reply, Value::Nil, "a watched key changed: EXEC aborts");
    query(&mut con, &["WATCH", &a, &b]).unwrap();
    let reply = transaction(&mut con, &[&["DECR", &a], &["INCR", &b]]).unwrap();
    assert_eq!(reply, Value::Array(vec![Value::Int(99), Value::Int(102)]));
    query(&mut con, &["SET", &a, "100"]).unwrap();
    query(&mut con, &["SET", &b, "100"]).unwrap();

    // Transfers through every node while readers check the total in transactions: no
    // reader ever sees money missing or made. (A plain MGET over two shards reads each key
    // at its own leader, one after the other: no snapshot, as in Redis Cluster, which
    // refuses it.)
    let stop = Arc::new(AtomicBool::new(false));
    let moved = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for (i, port) in ports.iter().copied().enumerate() {
        let (stop, moved, a, b) = (stop.clone(), moved.clone(), a.clone(), b.clone());
        workers.push(std::thread::spawn(move || {
            let mut c = connect(port);
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let (from, to) = if (n + i as u64).is_multiple_of(2) {
                    (&a, &b)
                } else {
                    (&b, &a)
                };
                let amount = (n % 7 + 1).to_string();
                let reply = transaction(
                    &mut c,
                    &[&["DECRBY", from, &amount], &["INCRBY", to, &amount]],
                );
                match reply {
                    Ok(Value::Array(items)) if items.len() == 2 => {
                        moved.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(other) => panic!("transfer answered {other:?}"),
                    // Locked by another transfer too long: nothing was applied.
                    Err(e) if e.code() == Some("TRYAGAIN") => {}
                    Err(e) => panic!("transfer failed: {e}"),
                }
            }
        }));
    }
    let mut checks = 0;
    let started = Instant::now();
    let mut readers: Vec<redis::Connection> = ports.iter().map(|p| connect(*p)).collect();
    while started.elapsed() < Duration::from_secs(4) {
        for r in readers.iter_mut() {
            let reply = transaction(r, &[&["GET", &a], &["GET", &b]]).unwrap();
            let Value::Array(items) = reply else {
                panic!("not an array")
            };
            assert_eq!(number(&items[0]) + number(&items[1]), 200, "a torn read");
            checks += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let moved = moved.load(Ordering::Relaxed);
    assert!(moved > 20, "too few transfers: {moved}");
    eprintln!("{moved} cross-shard transfers, {checks} consistent reads");
    for port in &ports {
        let mut c = connect(*port);
        let total = number(&query(&mut c, &["GET", &a]).unwrap())
            + number(&query(&mut c, &["GET", &b]).unwrap());
        assert_eq!(total, 200);
    }

    // Switched off: CROSSSLOT again, nothing written.
    query(
        &mut con,
        &["CONFIG", "SET", "cross-shard-transactions", "no"],
    )
    .unwrap();
    let err = transaction(&mut con, &[&["SET", &a, "0"], &["SET", &b, "0"]]).unwrap_err();
    assert_eq!(err.code(), Some("CROSSSLOT"), "{err}");
    let total = number(&query(&mut con, &["GET", &a]).unwrap())
        + number(&query(&mut con, &["GET", &b]).unwrap());
    assert_eq!(total, 200, "the refused transaction wrote nothing");
}

/// The coordinator dies (DEBUG CRASH-AT: it aborts exactly there, as kill -9 would stop it)
/// after every shard is prepared: nothing was decided, so the shards abort it — the keys
/// keep their values and take writes again. Then after the decider committed and before
/// the other shard heard: the other shard learns the commit from the decider and applies
/// it — both keys change.
#[test]
fn a_coordinator_killed_mid_transaction_is_settled_all_or_nothing() {
    let mut cluster = Cluster::start(
        "cross-shard-kill",
        3,
        &[
            "--cross-shard-transactions",
            "yes",
            "--enable-debug-command",
            "yes",
            "--appendfsync",
            "always",
        ],
    );
    let ports = cluster.ports();
    for (point, prefix, committed) in [
        ("cross-shard-prepared", "pre", false),
        ("cross-shard-decided", "dec", true),
    ] {
        let ports_now = cluster.ports();
        let ((a, la), (b, lb)) = keys_led_apart(&ports_now, prefix);
        // The coordinator: the node leading neither key (its death loses no leader the
        // transaction needs).
        let coordinator = ports.iter().position(|p| *p != la && *p != lb).unwrap();
        let mut setup = connect(la);
        query(&mut setup, &["MSET", &a, "10", &b, "10"]).unwrap();
        let mut con = connect(ports[coordinator]);
        query(&mut con, &["DEBUG", "CRASH-AT", point]).unwrap();
        let reply = transaction(&mut con, &[&["INCR", &a], &["INCR", &b]]);
        assert!(reply.is_err(), "the coordinator answered: {reply:?}");
        cluster.kill(coordinator);
        let want = if committed { 11 } else { 10 };
        // Reads of a locked key wait for the settling (a few seconds), then see the
        // transaction all or nothing.
        let deadline = Instant::now() + Duration::from_secs(40);
        let (mut ra, mut rb) = (connect(la), connect(lb));
        loop {
            let (va, vb) = (query(&mut ra, &["GET", &a]), query(&mut rb, &["GET", &b]));
            if let (Ok(va), Ok(vb)) = (&va, &vb) {
                assert_eq!(
                    (number(va), number(vb)),
                    (want, want),
                    "{point}: not all or nothing"
                );
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{point}: never settled: {va:?} {vb:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        // The keys take writes again, through any live node.
        let live = ports
            .iter()
            .enumerate()
            .find(|(i, _)| *i != coordinator)
            .unwrap()
            .1;
        let mut c = connect(*live);
        assert_eq!(query(&mut c, &["INCR", &a]).unwrap(), Value::Int(want + 1));
        assert_eq!(query(&mut c, &["INCR", &b]).unwrap(), Value::Int(want + 1));
        cluster.start_node(coordinator);
    }
}

/// Transfers between two shards run through one node while the leader of one of the
/// shards is killed: afterwards every node holds the same total (no transfer applied to one
/// shard only), no lock is left behind, and both keys take writes.
#[test]
fn a_participant_leader_killed_under_transfers_loses_no_money() {
    let mut cluster = Cluster::start(
        "cross-shard-participant",
        3,
        &[
            "--cross-shard-transactions",
            "yes",
            "--appendfsync",
            "always",
        ],
    );
    let ports = cluster.ports();
    let ((a, la), (b, lb)) = keys_led_apart(&ports, "part");
    let coordinator = ports
        .iter()
        .copied()
        .find(|p| *p != la && *p != lb)
        .unwrap();
    let victim = ports.iter().position(|p| *p == lb).unwrap();
    query(&mut connect(coordinator), &["MSET", &a, "100", &b, "100"]).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let worker = {
        let (stop, acked, a, b) = (stop.clone(), acked.clone(), a.clone(), b.clone());
        std::thread::spawn(move || {
            let mut c = connect(coordinator);
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let (from, to) = if n.is_multiple_of(2) {
                    (&a, &b)
                } else {
                    (&b, &a)
                };
                let amount = (n % 5 + 1).to_string();
                match transaction(
                    &mut c,
                    &[&["DECRBY", from, &amount], &["INCRBY", to, &amount]],
                ) {
                    Ok(Value::Array(items)) if items.len() == 2 => {
                        acked.fetch_add(1, Ordering::Relaxed);
                    }
                    // Refused or left to the shards while one has no leader.
                    _ => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        })
    };
    std::thread::sleep(Duration::from_secs(2));
    cluster.kill(victim);
    std::thread::sleep(Duration::from_secs(6));
    stop.store(true, Ordering::Relaxed);
    worker.join().unwrap();
    let acked = acked.load(Ordering::Relaxed);
    assert!(acked > 10, "too few transfers: {acked}");
    cluster.start_node(victim);
    // Reads through each node (at the leaders; waiting out any lock still being settled)
    // see the whole total.
    let deadline = Instant::now() + Duration::from_secs(40);
    for port in cluster.ports() {
        let mut c = connect(port);
        loop {
            if let Ok(Value::Array(items)) = transaction(&mut c, &[&["GET", &a], &["GET", &b]]) {
                assert_eq!(
                    number(&items[0]) + number(&items[1]),
                    200,
                    "money lost at {port}"
                );
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no consistent read through {port}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let mut c = connect(coordinator);
    query(&mut c, &["INCR", &a]).unwrap();
    query(&mut c, &["INCR", &b]).unwrap();
    eprintln!("{acked} transfers acknowledged around the kill");
}
