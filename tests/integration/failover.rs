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
    // Frozen past the election timeout, it loses its leaderships to elections; running
    // again, it asks them back.
    cluster.pause(1, Duration::from_secs(2));
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

/// A cluster client whose map went stale (every leader moved by CLUSTER FAILOVER) converges:
/// its per-node connections get MOVED, it follows them (or reloads the layout), nothing is
/// forwarded, and every read is right. With `cluster-redirects always` every connection is
/// redirected; in `auto` (the default) those connections never asked for the layout, but
/// their host did and each sent only keys this node led (`RouteHistory`).
#[test]
fn a_stale_cluster_client_converges_after_a_failover() {
    stale_client_after_failover("always");
}

#[test]
fn a_stale_cluster_client_converges_in_auto_mode() {
    stale_client_after_failover("auto");
}

fn stale_client_after_failover(mode: &str) {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};
    {
        let cluster = Cluster::start("failover-stale", 3, &["--cluster-redirects", mode]);
        let ports = cluster.ports();
        let mut layout = connect(ports[0]);
        spread_slot_table(&mut layout);
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/redis-compat/clients/redis_py_cluster_stale.py"
        );
        let mut client = Command::new("python3")
            .arg(script)
            .arg("300")
            .args(ports.iter().map(|p| p.to_string()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 with redis-py (scripts/setup.sh installs it)");
        let mut out = BufReader::new(client.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready");
        let forwarded_before: u64 = ports
            .iter()
            .map(|p| crate::cluster_protocol::forwarded(*p))
            .sum();
        // Every shard's leadership moves to node 1.
        assert_eq!(
            query(&mut connect(ports[1]), &["CLUSTER", "FAILOVER"]).unwrap(),
            Value::Okay
        );
        wait_masters_all(&mut layout, ports[1]);
        writeln!(client.stdin.take().unwrap()).unwrap();
        line.clear();
        out.read_line(&mut line).unwrap();
        assert!(
            client.wait().unwrap().success(),
            "the client failed: {line}"
        );
        let moved: u64 = line
            .trim()
            .strip_prefix("done moved=")
            .unwrap()
            .parse()
            .unwrap();
        let forwarded: u64 = ports
            .iter()
            .map(|p| crate::cluster_protocol::forwarded(*p))
            .sum::<u64>()
            - forwarded_before;
        // It learns of the move through MOVED (or, if a connection broke under load, by
        // reloading the whole layout); either way nothing reaches a non-leader.
        assert_eq!(
            forwarded, 0,
            "cluster-redirects {mode}: a converged client's commands go to the leaders \
             (it followed {moved} MOVED)"
        );
    }
}
