//! Idle shard groups stop their timers on every member (quiesced) and wake for whatever
//! moves them: writes and reads through any node, and the loss of their leader's node. A
//! member whose node is down does not keep them awake.

use std::time::{Duration, Instant};

use crate::cluster::{exists, write_until_acked, Cluster};
use crate::support::show;

const SHARDS: usize = 8;

/// How many shard groups node `i` has asleep (INFO raft).
fn asleep(cluster: &Cluster, i: usize) -> usize {
    let info = show(&cluster.client(i).call(&["INFO", "raft"]));
    info.lines()
        .find_map(|l| l.strip_prefix("groups_asleep:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// How many shards node `i` leads.
fn leading(cluster: &Cluster, i: usize) -> usize {
    cluster
        .shards(i)
        .iter()
        .filter(|l| l.contains("role=leader"))
        .count()
}

/// Waits until every shard group is asleep on each of `nodes` and no node leads more
/// than its share (leader spreading, which wakes groups, is over).
fn wait_settled(cluster: &Cluster, nodes: &[usize]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let share = SHARDS.div_ceil(nodes.len());
    loop {
        let now: Vec<(usize, usize)> = nodes
            .iter()
            .map(|&i| (asleep(cluster, i), leading(cluster, i)))
            .collect();
        if now.iter().all(|&(a, l)| a == SHARDS && l <= share) {
            return;
        }
        if Instant::now() >= deadline {
            // What the awake groups look like on each node, for the next one who reads this.
            let awake: Vec<Vec<String>> = nodes
                .iter()
                .map(|&i| {
                    let lines = cluster.shards(i).into_iter();
                    lines.filter(|l| l.ends_with("asleep=0")).collect()
                })
                .collect();
            panic!("groups did not settle asleep: (asleep, leading) per node {now:?}; awake: {awake:#?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn idle_groups_sleep_and_wake_for_writes_reads_and_a_dead_leader() {
    let mut cluster = Cluster::start("quiesce", 3, &["--shards", "8"]);
    wait_settled(&cluster, &[0, 1, 2]);

    // Every write is taken at once by its sleeping group (a leader whose lease ran out while
    // asleep renews it first), through a node that leads only some of the shards.
    let keys: Vec<String> = (0..200).map(|i| format!("q{i}")).collect();
    let mut c = cluster.client(1);
    for key in &keys {
        assert_eq!(show(&c.call(&["SET", key, key])), "+OK\r\n", "SET {key}");
    }
    wait_settled(&cluster, &[0, 1, 2]);
    for i in 0..3 {
        let mut c = cluster.client(i);
        for key in &keys {
            let want = format!("${}\r\n{key}\r\n", key.len());
            assert_eq!(show(&c.call(&["GET", key])), want, "node {i}: GET {key}");
        }
    }

    // The node leading the most shards dies while they sleep: their members notice its
    // silence, wake and elect; writes to every shard resume through the others.
    wait_settled(&cluster, &[0, 1, 2]);
    // Past openraft's lease plus an election timeout since the last heartbeat (until then
    // a member may not elect anyway, asleep or not), so the gap below is what sleeping costs.
    std::thread::sleep(Duration::from_millis(1500));
    let victim = (0..3).max_by_key(|&i| leading(&cluster, i)).unwrap();
    let survivor = (victim + 1) % 3;
    cluster.kill(victim);
    let killed = Instant::now();
    let mut c = cluster.client(survivor);
    let after: Vec<String> = (0..100).map(|i| format!("after{i}")).collect();
    for key in &after {
        assert!(
            write_until_acked(&mut c, key, killed + Duration::from_secs(20)),
            "{key}: writes did not resume"
        );
    }
    eprintln!(
        "writes to every shard resumed {} ms after kill -9 of a node leading sleeping groups",
        killed.elapsed().as_millis()
    );

    // With it down the groups sleep again without it, leaders spread over the two left,
    // and writes still wake them.
    let others: Vec<usize> = (0..3).filter(|&i| i != victim).collect();
    wait_settled(&cluster, &others);
    let mut c = cluster.client(others[1]);
    let down: Vec<String> = (0..50).map(|i| format!("down{i}")).collect();
    for key in &down {
        assert_eq!(show(&c.call(&["SET", key, key])), "+OK\r\n", "SET {key}");
    }

    // It comes back, catches up and everything sleeps again; every node has every key.
    cluster.start_node(victim);
    cluster.wait_replicated(3);
    wait_settled(&cluster, &[0, 1, 2]);
    let mut c = cluster.client(victim);
    for key in keys.iter().chain(&after).chain(&down) {
        assert!(exists(&mut c, key), "{key} lost");
    }
    for i in 0..3 {
        assert_eq!(
            cluster.dbsize(i),
            keys.len() + after.len() + down.len(),
            "node {i}'s replicas"
        );
    }
}
