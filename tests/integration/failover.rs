//! CLUSTER FAILOVER on a 3-node cluster: the node takes over the leadership of every shard
//! it replicates (asked of the leaders, or by election with FORCE), keeps it through the
//! leader spreading's rounds, and no acknowledged write is lost.

use std::time::{Duration, Instant};

use redis::Value;

use crate::cluster::Cluster;
use crate::cluster_protocol::{connect, error_text, query, slot_table, spread_slot_table, text};

/// Waits until the node at `port` masters every slot.
fn wait_masters_all(con: &mut redis::Connection, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let table = slot_table(&query(con, &["CLUSTER", "SLOTS"]).unwrap());
        if table
            .iter()
            .all(|(_, _, master, _)| *master == i64::from(port))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "node {port} did not take over: {table:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_failover_moves_every_shard_it_replicates_here_and_keeps_it() {
    let cluster = Cluster::start("failover", 3, &[]);
    let ports = cluster.ports();
    let mut con = connect(ports[0]);
    spread_slot_table(&mut con);
    // A plain connection for the data (the one that asked for the layout gets MOVED).
    let mut data = connect(ports[0]);
    for i in 0..100 {
        query(&mut data, &["SET", &format!("f{i}"), &i.to_string()]).unwrap();
    }
    let mut target = connect(ports[1]);
    assert_eq!(
        query(&mut target, &["CLUSTER", "FAILOVER"]).unwrap(),
        Value::Okay
    );
    wait_masters_all(&mut con, ports[1]);
    // The leader spreading (every 2 s) leaves the leaderships where the failover put them.
    std::thread::sleep(Duration::from_secs(5));
    wait_masters_all(&mut con, ports[1]);
    assert_eq!(
        error_text(query(&mut target, &["CLUSTER", "FAILOVER"])),
        "ERR You should send CLUSTER FAILOVER to a replica"
    );
    assert!(error_text(query(&mut target, &["CLUSTER", "FAILOVER", "NOW"])).contains("syntax"));
    // FORCE: an election from another node.
    let mut other = connect(ports[2]);
    assert_eq!(
        query(&mut other, &["CLUSTER", "FAILOVER", "FORCE"]).unwrap(),
        Value::Okay
    );
    wait_masters_all(&mut con, ports[2]);
    for i in 0..100 {
        let got = query(&mut data, &["GET", &format!("f{i}")]).unwrap();
        assert_eq!(text(&got), i.to_string());
    }
}
