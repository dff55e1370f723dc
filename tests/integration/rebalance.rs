//! Replicas move between nodes: a fourth node joining under a write load takes its share
//! of the replicas, and the replicas of a node away for longer than the node timeout are
//! rebuilt on the others, even after a second node is lost — nothing acknowledged is lost
//! on the way, and a node keeps the data of exactly the shards it holds.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cluster::{exists, write_until_acked, Cluster};

const SHARDS: usize = 4;

/// How many shards node `i` holds a replica of (a member of a group with a leader and
/// three voters).
pub(crate) fn held(cluster: &Cluster, i: usize) -> usize {
    cluster
        .shards(i)
        .iter()
        .filter(|l| {
            (l.contains("role=leader") || l.contains("role=follower"))
                && l.contains("voters=3,")
                && !l.contains("leader=none")
        })
        .count()
}

/// Waits until each of `nodes` holds `each` replicas.
pub(crate) fn wait_held(cluster: &Cluster, nodes: &[usize], each: usize, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let now: Vec<usize> = nodes.iter().map(|&i| held(cluster, i)).collect();
        if now.iter().all(|&n| n == each) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: replicas held {now:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Waits until each of `nodes` sees `down` nodes marked down in the cluster map.
fn wait_nodes_down(cluster: &Cluster, nodes: &[usize], down: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let want = format!("nodes_down:{down}\r\n");
    loop {
        let seen: Vec<String> = nodes
            .iter()
            .map(|&i| crate::support::show(&cluster.client(i).call(&["INFO", "raft"])))
            .collect();
        if seen.iter().all(|info| info.contains(&want)) {
            return;
        }
        assert!(Instant::now() < deadline, "nodes down is not {down}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Writes keys through node 0 until told to stop; returns the acknowledged ones.
fn writer(cluster: &Cluster, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<String>> {
    let mut c = cluster.client(0);
    std::thread::spawn(move || {
        let mut acked = Vec::new();
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            n += 1;
            let key = format!("k{n}");
            if write_until_acked(&mut c, &key, Instant::now() + Duration::from_secs(20)) {
                acked.push(key);
            }
        }
        acked
    })
}

#[test]
fn a_fourth_node_takes_replicas_under_load_and_a_lost_node_is_replaced() {
    let tag = "rebalance";
    let flags = [
        "--shards",
        "4",
        "--cluster-node-timeout",
        "3000",
        "--appendfsync",
        "always",
    ];
    let mut cluster = Cluster::start(tag, 3, &flags);
    let stop = Arc::new(AtomicBool::new(false));
    let load = writer(&cluster, stop.clone());
    std::thread::sleep(Duration::from_secs(1));

    // A fourth node joins while the writes go on: 12 replicas over 4 nodes, 3 each.
    let fourth = cluster.add_slot(tag);
    cluster.start_node(fourth);
    let started = Instant::now();
    wait_held(&cluster, &[0, 1, 2, 3], SHARDS * 3 / 4, "after the join");
    eprintln!(
        "a fourth node took its replicas in {} ms",
        started.elapsed().as_millis()
    );
    stop.store(true, Ordering::Relaxed);
    let mut acked = load.join().expect("writer");
    assert!(
        acked.len() > 50,
        "too few writes went through: {}",
        acked.len()
    );
    // Each key sits on exactly three nodes: the replicas that moved were dropped.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let sizes: Vec<usize> = (0..4).map(|i| cluster.dbsize(i)).collect();
        if sizes.iter().sum::<usize>() == acked.len() * 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "keys held {sizes:?}, want {} in all",
            acked.len() * 3
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    // A node away past the node timeout: its replicas are rebuilt on the other three,
    // which then hold every shard.
    let away = 1;
    cluster.kill(away);
    let stop = Arc::new(AtomicBool::new(false));
    let load = writer(&cluster, stop.clone());
    let killed = Instant::now();
    let live = [0, 2, 3];
    wait_held(&cluster, &live, SHARDS, "after a node went away");
    wait_nodes_down(&cluster, &live, 1);
    eprintln!(
        "replicas of a lost node rebuilt {} ms after the kill (node timeout 3000 ms)",
        killed.elapsed().as_millis()
    );
    stop.store(true, Ordering::Relaxed);
    // The writer's keys start again at k1: they overwrite, the set of keys only grows.
    let more = load.join().expect("writer");
    let all: std::collections::BTreeSet<String> = acked.drain(..).chain(more).collect();
    for &i in &live {
        let mut c = cluster.client(i);
        for key in all.iter().step_by(3) {
            assert!(exists(&mut c, key), "node {i}: {key} lost");
        }
        assert_eq!(cluster.dbsize(i), all.len(), "node {i} holds every key");
    }

    // A second node fails. The map's group keeps a majority of live voters (the lost
    // node's vote went to a live node), so the balancer goes on: the first node, back
    // with its old data, gets the second one's replicas (its stale ones are dropped).
    cluster.kill(2);
    cluster.start_node(away);
    let live = [0, 1, 3];
    wait_held(&cluster, &live, SHARDS, "after a second node went away");
    // The map marks the second node down and the first up again.
    wait_nodes_down(&cluster, &live, 1);
    for &i in &live {
        assert_eq!(cluster.dbsize(i), all.len(), "node {i} holds every key");
    }
}
