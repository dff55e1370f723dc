//! Network faults between nodes: each node runs in its own Linux network namespace
//! (`netns.rs`); a partition is a pair of blackhole routes between two nodes' addresses
//! (clients in the root namespace still reach every node). Needs root and iproute2: without
//! them the test fails and says why.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::netns::Net;
use crate::support::{show, test_dir, Client};

struct Node {
    child: Child,
    addr: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_node(net: &Net, i: usize, dir: &std::path::Path) -> Node {
    let ip = net.ip(i);
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &net.ns(i), env!("CARGO_BIN_EXE_basalt")])
        .args(["--bind", &ip, "--port", "6379", "--cluster-port", "16379"])
        .args(["--shards", "2", "--appendfsync", "always", "--dir"])
        .arg(dir);
    if i > 0 {
        cmd.args(["--join", &format!("{}:6379", net.ip(0))]);
    }
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start basalt in a namespace");
    let addr = format!("{ip}:6379");
    let deadline = Instant::now() + Duration::from_secs(20);
    while Client::connect_to(&addr).is_err() {
        assert!(Instant::now() < deadline, "node {i} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Node { child, addr }
}

fn client(node: &Node) -> Client {
    let c = Client::connect_to(&node.addr).expect("connect");
    c.set_timeout(Duration::from_secs(10));
    c
}

fn shard_lines(node: &Node) -> Vec<String> {
    show(&client(node).call(&["INFO", "raft"]))
        .lines()
        .filter(|l| l.starts_with("shard"))
        .map(str::to_string)
        .collect()
}

fn wait_for(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The leader of shard 0 is cut off from both other nodes: it stops acknowledging writes,
/// and once its lease is over stops serving reads; the other two elect new leaders and take
/// writes. After healing it follows again and has every acknowledged write; nothing
/// acknowledged is lost.
#[test]
fn a_leader_cut_off_in_a_minority_stops_acknowledging_and_catches_up_after_healing() {
    // A missing precondition (not root, no `ip`) fails the test rather than
    // letting it pass untried.
    let net = Net::create(3).unwrap_or_else(|why| {
        panic!("the network partition test needs network namespaces (root and `ip`; scripts/setup.sh installs iproute2): {why}")
    });
    let dirs: Vec<_> = (0..3)
        .map(|i| test_dir(&format!("partition-{i}")))
        .collect();
    let nodes: Vec<Node> = (0..3).map(|i| start_node(&net, i, &dirs[i])).collect();
    wait_for("three voters per shard", Duration::from_secs(60), || {
        nodes.iter().all(|n| {
            let lines = shard_lines(n);
            !lines.is_empty()
                && lines
                    .iter()
                    .all(|l| l.contains("voters=3,") && !l.contains("leader=none"))
        })
    });
    let cut = (0..3)
        .find(|&i| shard_lines(&nodes[i])[0].contains("role=leader"))
        .expect("shard 0 has a leader");
    let (a, b) = ((cut + 1) % 3, (cut + 2) % 3);
    let mut acked = Vec::new();
    let mut c0 = client(&nodes[cut]);
    for k in 0..50 {
        let key = format!("before:{k}");
        // (A leader being moved answers -TRYAGAIN; the write is asked again.)
        wait_for(&key, Duration::from_secs(20), || {
            show(&c0.call(&["SET", &key, "1"])) == "+OK\r\n"
        });
        acked.push(key);
    }

    net.cut(cut, a);
    net.cut(cut, b);
    let cut_at = Instant::now();
    // The old leader cannot commit: a write there is never acknowledged.
    let mut c0 = client(&nodes[cut]);
    c0.set_timeout(Duration::from_secs(4));
    c0.send(&[b"SET", b"during:old-leader", b"x"]);
    // No answer at all is fine too: not acknowledged either.
    if let Ok(reply) = c0.try_read_reply() {
        assert!(
            show(&reply).starts_with('-'),
            "the cut-off leader acknowledged a write: {}",
            show(&reply)
        );
    }
    // The majority elects new leaders and takes writes.
    let mut c1 = client(&nodes[a]);
    // (A write forwarded to the cut-off leader gets -TRYAGAIN after 5 s.)
    c1.set_timeout(Duration::from_secs(15));
    wait_for(
        "a new leader in the majority",
        Duration::from_secs(20),
        || show(&c1.call(&["SET", "during:majority", "1"])) == "+OK\r\n",
    );
    acked.push("during:majority".to_string());
    for k in 0..50 {
        let key = format!("during:{k}");
        // Another shard may still be electing its leader: retried until acknowledged.
        wait_for(&key, Duration::from_secs(20), || {
            show(&c1.call(&["SET", &key, "1"])) == "+OK\r\n"
        });
        acked.push(key);
    }
    // Past its lease (an election timeout), the old leader serves no read.
    let lease_over = cut_at + Duration::from_secs(2);
    if let Some(wait) = lease_over.checked_duration_since(Instant::now()) {
        std::thread::sleep(wait);
    }
    let mut r0 = client(&nodes[cut]);
    r0.set_timeout(Duration::from_secs(6));
    r0.send(&[b"GET", b"before:7"]);
    if let Ok(reply) = r0.try_read_reply() {
        assert!(
            show(&reply).starts_with('-'),
            "the cut-off node served a read after its lease: {}",
            show(&reply)
        );
    }

    net.heal(cut, a);
    net.heal(cut, b);
    wait_for(
        "the cut-off node to rejoin",
        Duration::from_secs(30),
        || {
            shard_lines(&nodes[cut])
                .iter()
                .all(|l| !l.contains("leader=none") && !l.contains("role=candidate"))
        },
    );
    for node in &nodes {
        let mut c = client(node);
        for key in &acked {
            // A read may meet a leader change (-TRYAGAIN) and is retried.
            wait_for(
                &format!("{key} on {}", node.addr),
                Duration::from_secs(20),
                || show(&c.call(&["EXISTS", key])) == ":1\r\n",
            );
        }
    }
    drop(nodes);
    for d in dirs {
        let _ = std::fs::remove_dir_all(d);
    }
}
