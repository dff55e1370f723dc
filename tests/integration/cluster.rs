//! Clusters of real `basalt` processes on loopback: every shard replicated on three nodes,
//! writes and reads through any node, kill -9 of leaders and of every node at once.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::support::{free_port, show, test_dir, try_start_basalt_at, Client, Process};

/// One node's fixed place: its data, client port and node-to-node port.
pub(crate) struct Slot {
    dir: PathBuf,
    port: u16,
    cluster_port: u16,
    /// Whether a node ran here (its peers know its address from then on).
    started: bool,
}

pub(crate) struct Cluster {
    pub(crate) slots: Vec<Slot>,
    pub(crate) nodes: Vec<Option<Process>>,
    flags: Vec<String>,
    /// Flags of one node only, by index (a TLS port of its own).
    node_flags: Vec<Vec<String>>,
}

impl Cluster {
    /// Starts `n` nodes: the first bootstraps, the others join it.
    pub(crate) fn start(tag: &str, n: usize, flags: &[&str]) -> Cluster {
        Cluster::start_each(tag, n, flags, |_| Vec::new())
    }

    /// As `start`, with flags of each node's own beside the shared ones.
    pub(crate) fn start_each(
        tag: &str,
        n: usize,
        flags: &[&str],
        node_flags: impl Fn(usize) -> Vec<String>,
    ) -> Cluster {
        let mut cluster = Cluster {
            slots: (0..n)
                .map(|i| Slot {
                    dir: test_dir(&format!("{tag}-{i}")),
                    port: free_port(),
                    cluster_port: free_port(),
                    started: false,
                })
                .collect(),
            nodes: (0..n).map(|_| None).collect(),
            flags: flags.iter().map(|s| s.to_string()).collect(),
            node_flags: (0..n).map(node_flags).collect(),
        };
        for i in 0..n {
            cluster.start_node(i);
        }
        cluster.wait_replicated(n.min(3));
        cluster
    }

    /// Adds a node's place (started with `start_node`).
    pub(crate) fn add_slot(&mut self, tag: &str) -> usize {
        let i = self.slots.len();
        self.slots.push(Slot {
            dir: test_dir(&format!("{tag}-{i}")),
            port: free_port(),
            cluster_port: free_port(),
            started: false,
        });
        self.nodes.push(None);
        i
    }

    pub(crate) fn start_node(&mut self, i: usize) {
        for _ in 0..5 {
            if let Some(node) = self.try_start_node(i) {
                self.slots[i].started = true;
                self.nodes[i] = Some(node);
                return;
            }
            // A port chosen earlier can be taken meanwhile (another test's server, or the
            // ephemeral port of some outgoing connection). A node never started takes fresh
            // ports and a fresh directory; a restarted one must keep its address and waits.
            let slot = &mut self.slots[i];
            if slot.started {
                std::thread::sleep(Duration::from_secs(1));
            } else {
                let _ = std::fs::remove_dir_all(&slot.dir);
                slot.port = free_port();
                slot.cluster_port = free_port();
            }
        }
        panic!("node {i} did not start on port {}", self.slots[i].port);
    }

    fn try_start_node(&self, i: usize) -> Option<Process> {
        let slot = &self.slots[i];
        let mut flags: Vec<String> = self.flags.clone();
        flags.extend(self.node_flags.get(i).into_iter().flatten().cloned());
        flags.extend(["--cluster-port".into(), slot.cluster_port.to_string()]);
        if i > 0 {
            flags.extend(["--join".into(), format!("127.0.0.1:{}", self.slots[0].port)]);
        }
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        try_start_basalt_at(&slot.dir, slot.port, &flags)
    }

    /// Node `i`'s node-to-node port.
    pub(crate) fn cluster_port(&self, i: usize) -> u16 {
        self.slots[i].cluster_port
    }

    /// Every node's client port, by index.
    pub(crate) fn ports(&self) -> Vec<u16> {
        self.slots.iter().map(|s| s.port).collect()
    }

    pub(crate) fn client(&self, i: usize) -> Client {
        Client::connect(self.slots[i].port)
    }

    pub(crate) fn kill(&mut self, i: usize) {
        if let Some(mut p) = self.nodes[i].take() {
            let _ = p.child.kill(); // SIGKILL
            let _ = p.child.wait();
        }
    }

    /// Kills every node at once (SIGKILL), starts them all again on their data and waits
    /// until their shards are replicated again.
    pub(crate) fn kill_all_and_restart(&mut self) {
        let n = self.nodes.len();
        for i in 0..n {
            self.kill(i);
        }
        for i in 0..n {
            self.start_node(i);
        }
        self.wait_replicated(n.min(3));
    }

    /// Freezes node `i` (SIGSTOP) for `pause`, then lets it run again (SIGCONT): its
    /// peers stop hearing from it as if it were starved of CPU.
    pub(crate) fn pause(&self, i: usize, pause: Duration) {
        let pid = self.nodes[i].as_ref().expect("node running").child.id();
        let signal = |name: &str| {
            let status = std::process::Command::new("kill")
                .args([name, &pid.to_string()])
                .status()
                .expect("kill runs");
            assert!(status.success(), "kill {name} {pid}");
        };
        signal("-STOP");
        std::thread::sleep(pause);
        signal("-CONT");
    }

    /// The keys node `i`'s keyspace holds (DBSIZE counts only its own replicas' data).
    pub(crate) fn dbsize(&self, i: usize) -> usize {
        let reply = show(&self.client(i).call(&["DBSIZE"]));
        reply.trim_start_matches(':').trim().parse().unwrap_or(0)
    }

    /// The shard lines of a node's INFO raft.
    pub(crate) fn shards(&self, i: usize) -> Vec<String> {
        let info = show(&self.client(i).call(&["INFO", "raft"]));
        info.lines()
            .filter(|l| l.starts_with("shard"))
            .map(str::to_string)
            .collect()
    }

    /// Waits until every shard's log on node `i` has been purged (a checkpoint took it).
    pub(crate) fn wait_purged(&self, i: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.shards(i).iter().any(|l| l.contains("purged=0")) {
            assert!(Instant::now() < deadline, "no purge: {:?}", self.shards(i));
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until every running node sees every shard led, with `voters` voters.
    pub(crate) fn wait_replicated(&self, voters: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = (0..self.nodes.len())
                .filter(|&i| self.nodes[i].is_some())
                .all(|i| {
                    let shards = self.shards(i);
                    !shards.is_empty()
                        && shards.iter().all(|l| {
                            !l.contains("leader=none") && l.contains(&format!("voters={voters},"))
                        })
                });
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "cluster did not form: {:?}",
                self.shards(0)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The node leading most shards.
    fn a_leader(&self) -> usize {
        for i in 0..self.nodes.len() {
            if self.nodes[i].is_some() && self.shards(i).iter().any(|l| l.contains("role=leader")) {
                return i;
            }
        }
        panic!("no node leads a shard");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
            let _ = std::fs::remove_dir_all(&self.slots[i].dir);
        }
    }
}

#[test]
fn three_nodes_take_writes_through_any_node_and_answer_reads_from_every_node() {
    let cluster = Cluster::start("cluster3", 3, &["--shards", "4"]);
    // Leaders spread: no node leads more than its share (4 shards over 3 nodes: 2).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let led: Vec<usize> = (0..3)
            .map(|i| {
                cluster
                    .shards(i)
                    .iter()
                    .filter(|l| l.contains("role=leader"))
                    .count()
            })
            .collect();
        if led.iter().all(|&n| n <= 2) && led.iter().sum::<usize>() == 4 {
            break;
        }
        assert!(Instant::now() < deadline, "leaders did not spread: {led:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut clients: Vec<Client> = (0..3).map(|i| cluster.client(i)).collect();
    for k in 0..300 {
        let c = &mut clients[k % 3];
        assert_eq!(
            show(&c.call(&["SET", &format!("key:{k}"), &format!("v{k}")])),
            "+OK\r\n"
        );
    }
    for k in 0..100 {
        assert_eq!(
            show(&clients[k % 3].call(&["INCR", "counter"])),
            format!(":{}\r\n", k + 1)
        );
    }
    for c in clients.iter_mut() {
        for k in (0..300).step_by(7) {
            let v = format!("v{k}");
            assert_eq!(
                show(&c.call(&["GET", &format!("key:{k}")])),
                format!("${}\r\n{v}\r\n", v.len())
            );
        }
        assert_eq!(show(&c.call(&["GET", "counter"])), "$3\r\n100\r\n");
        assert_eq!(show(&c.call(&["DBSIZE"])), ":301\r\n");
    }
    for k in (0..300).step_by(11) {
        assert!(exists(&mut clients[k % 3], &format!("key:{k}")), "key:{k}");
    }
    // MONITOR: a command shows on the node its client talks to, once, even when another
    // node leads its key (the leader does not show it again).
    let mut monitors: Vec<Client> = (0..3).map(|i| cluster.client(i)).collect();
    for m in monitors.iter_mut() {
        assert_eq!(show(&m.call(&["MONITOR"])), "+OK\r\n");
    }
    for k in 0..12 {
        clients[0].call(&["SET", &format!("mon:{k}"), "v"]);
    }
    for (i, c) in clients.iter_mut().enumerate() {
        c.call(&["ECHO", &format!("end{i}")]);
    }
    for (i, m) in monitors.iter_mut().enumerate() {
        let mut sets = 0;
        loop {
            let line = show(&m.read_reply());
            if line.contains(&format!("\"ECHO\" \"end{i}\"")) {
                break;
            }
            assert!(line.contains("\"SET\" \"mon:"), "node {i}: {line}");
            sets += 1;
        }
        assert_eq!(sets, if i == 0 { 12 } else { 0 }, "node {i}");
    }
    drop(monitors);
    // CLUSTER INFO: the map every node follows through group 0.
    for (i, c) in clients.iter_mut().enumerate() {
        let info = show(&c.call(&["CLUSTER", "INFO"]));
        for line in [
            "cluster_state:ok",
            "cluster_known_nodes:3",
            "cluster_size:4",
        ] {
            assert!(info.contains(line), "node {i}: {info}");
        }
        assert!(!info.contains("cluster_current_epoch:0\r\n"), "{info}");
        let id = show(&c.call(&["CLUSTER", "MYID"]));
        let raft = show(&c.call(&["INFO", "raft"]));
        let id = id.lines().nth(1).unwrap_or_default();
        assert!(raft.contains(&format!("node_id:{id}")), "{id} vs {raft}");
    }
    // Writes that span shards are refused in a cluster, as Redis Cluster does.
    let spanning = show(&clients[0].call(&["MSET", "a", "1", "b", "2", "c", "3"]));
    assert!(spanning.starts_with("-CROSSSLOT"), "{spanning}");
    // Keyless writes: each shard flushes its own slots; SWAPDB is refused as in Redis
    // Cluster.
    assert_eq!(
        show(&clients[1].call(&["SWAPDB", "0", "1"])),
        "-ERR SWAPDB is not allowed in cluster mode\r\n"
    );
    let c = &mut clients[2];
    assert_eq!(show(&c.call(&["SELECT", "1"])), "+OK\r\n");
    for k in 0..20 {
        assert_eq!(show(&c.call(&["SET", &format!("db1:{k}"), "x"])), "+OK\r\n");
    }
    assert_eq!(show(&clients[1].call(&["FLUSHDB"])), "+OK\r\n");
    wait_dbsize(&mut clients, 0, 0);
    wait_dbsize(&mut clients, 1, 20);
    assert_eq!(show(&clients[0].call(&["GET", "key:7"])), "$-1\r\n");
    assert_eq!(show(&clients[0].call(&["FLUSHALL"])), "+OK\r\n");
    wait_dbsize(&mut clients, 1, 0);
}

/// Waits until every node's DBSIZE of `db` (what it holds itself) is `want`.
fn wait_dbsize(clients: &mut [Client], db: u8, want: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(show(&c.call(&["SELECT", &db.to_string()])), "+OK\r\n");
        loop {
            let size = show(&c.call(&["DBSIZE"]));
            if size == format!(":{want}\r\n") {
                break;
            }
            assert!(Instant::now() < deadline, "node {i} db {db}: {size}");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(show(&c.call(&["SELECT", "0"])), "+OK\r\n");
    }
}

/// Whether `key` exists, asked through `c`; a reply saying a shard is between leaders is
/// asked again.
pub(crate) fn exists(c: &mut Client, key: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let reply = show(&c.call(&["EXISTS", key]));
        if !(reply.starts_with("-TRYAGAIN") || reply.starts_with("-CLUSTERDOWN"))
            || Instant::now() > deadline
        {
            return reply == ":1\r\n";
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Writes until acknowledged, through node `via`; returns when it was.
pub(crate) fn write_until_acked(c: &mut Client, key: &str, deadline: Instant) -> bool {
    loop {
        let reply = show(&c.call(&["SET", key, "1"]));
        if reply == "+OK\r\n" {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// kill -9 of a shard leader while a client writes: writes resume (the gap from the kill to
/// the first acknowledged write is printed), the node comes back with its data, and every
/// acknowledged write is on every node at the end. `BASALT_FAILOVER_CYCLES` sets the cycles
/// (20 by default; more for a long run).
#[test]
fn killing_leaders_under_writes_loses_no_acknowledged_write() {
    let cycles: usize = std::env::var("BASALT_FAILOVER_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let mut cluster = Cluster::start("failover", 3, &["--shards", "2"]);
    let mut acked: Vec<String> = Vec::new();
    let mut gaps: Vec<Duration> = Vec::new();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut n = 0u64;
    for cycle in 0..cycles {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        // A leader of some shard, or now and then any node.
        let victim = if cycle % 4 == 3 {
            (rng % 3) as usize
        } else {
            cluster.a_leader()
        };
        let survivor = (victim + 1 + (rng % 2) as usize) % 3;
        let mut c = cluster.client(survivor);
        let mut write_some = |c: &mut Client, count: usize, n: &mut u64| {
            for _ in 0..count {
                *n += 1;
                let key = format!("k{n}");
                let deadline = Instant::now() + Duration::from_secs(10);
                assert!(write_until_acked(c, &key, deadline), "{key}");
                acked.push(key);
            }
        };
        write_some(&mut c, 50, &mut n);
        cluster.kill(victim);
        let killed = Instant::now();
        n += 1;
        let key = format!("k{n}");
        assert!(
            write_until_acked(&mut c, &key, killed + Duration::from_secs(20)),
            "cycle {cycle}: writes did not resume"
        );
        gaps.push(killed.elapsed());
        write_some(&mut c, 20, &mut n);
        acked.push(key);
        cluster.start_node(victim);
        cluster.wait_replicated(3);
    }
    for i in 0..3 {
        let mut c = cluster.client(i);
        for key in &acked {
            assert!(exists(&mut c, key), "node {i}: {key} lost");
        }
    }
    gaps.sort();
    let ms: Vec<u128> = gaps.iter().map(|g| g.as_millis()).collect();
    eprintln!(
        "failover gaps over {cycles} kills (ms): min {} p50 {} p90 {} max {}",
        ms[0],
        ms[ms.len() / 2],
        ms[ms.len() * 9 / 10],
        ms[ms.len() - 1]
    );
}

/// Every node killed at once under `appendfsync always`: after a restart of all of them,
/// every acknowledged write is there.
#[test]
fn killing_every_node_at_once_loses_nothing_with_appendfsync_always() {
    let mut cluster = Cluster::start("killall", 3, &["--shards", "4", "--appendfsync", "always"]);
    let mut acked = BTreeSet::new();
    for k in 0..400 {
        let mut c = cluster.client(k % 3);
        let key = format!("key:{k}");
        // (A leader being moved answers -TRYAGAIN; the write is asked again.)
        assert!(write_until_acked(
            &mut c,
            &key,
            Instant::now() + Duration::from_secs(10)
        ));
        acked.insert(key);
    }
    cluster.kill_all_and_restart();
    for i in 0..3 {
        let mut c = cluster.client(i);
        for key in &acked {
            assert!(exists(&mut c, key), "node {i}: {key} lost");
        }
    }
}

/// A node that was down while the others wrote enough for their logs to be checkpointed
/// and purged comes back and catches up from a snapshot streamed over cluster-proto.
#[test]
fn a_node_behind_the_purged_log_catches_up_from_a_snapshot() {
    let mut cluster = Cluster::start(
        "snapshot",
        3,
        &["--shards", "2", "--raft-log-segment-size", "64kb"],
    );
    cluster.kill(2);
    let mut c = cluster.client(0);
    let value = "v".repeat(200);
    for k in 0..3000 {
        let key = format!("key:{k}");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if show(&c.call(&["SET", &key, &value])) == "+OK\r\n" {
                break;
            }
            assert!(Instant::now() < deadline, "{key} not acknowledged");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    // Both shards' logs were purged past what node 2 has.
    cluster.wait_purged(0);
    cluster.start_node(2);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // DBSIZE counts what this node holds itself.
        let here = show(&cluster.client(2).call(&["DBSIZE"]));
        if here == ":3000\r\n" {
            break;
        }
        assert!(Instant::now() < deadline, "node 2 holds {here}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let shards = cluster.shards(2);
    assert!(
        shards.iter().all(|l| !l.contains("snapshot=0")),
        "node 2 did not install snapshots: {shards:?}"
    );
    assert_eq!(
        show(&cluster.client(2).call(&["GET", "key:1234"])),
        format!("${}\r\n{value}\r\n", value.len())
    );
}

/// A lone node's SWAPDB, then nodes that join after its log was purged: the database map
/// reaches them with the shards' snapshots, so each keeps serving the swapped databases
/// once the first node is gone.
#[test]
fn a_swapped_database_map_reaches_nodes_that_join_from_snapshots() {
    let flags = ["--shards", "2", "--raft-log-segment-size", "64kb"];
    let mut cluster = Cluster::start("dbmap", 1, &flags);
    let mut c = cluster.client(0);
    for (db, value) in [("1", "one"), ("0", "zero")] {
        assert_eq!(show(&c.call(&["SELECT", db])), "+OK\r\n");
        assert_eq!(show(&c.call(&["SET", "marker", value])), "+OK\r\n");
    }
    assert_eq!(show(&c.call(&["SWAPDB", "0", "1"])), "+OK\r\n");
    let value = "v".repeat(200);
    for k in 0..3000 {
        let key = format!("key:{k}");
        assert_eq!(show(&c.call(&["SET", &key, &value])), "+OK\r\n");
    }
    cluster.wait_purged(0);
    for _ in 0..2 {
        let i = cluster.add_slot("dbmap");
        cluster.start_node(i);
    }
    cluster.wait_replicated(3);
    cluster.kill(0);
    for i in 1..3 {
        // DBSIZE counts this node's own replicas, through its own map.
        let mut c = cluster.client(i);
        assert_eq!(show(&c.call(&["DBSIZE"])), ":3001\r\n", "node {i}, db 0");
        assert_eq!(show(&c.call(&["SELECT", "1"])), "+OK\r\n");
        assert_eq!(show(&c.call(&["DBSIZE"])), ":1\r\n", "node {i}, db 1");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = show(&c.call(&["GET", "marker"]));
            if got == "$4\r\nzero\r\n" {
                break;
            }
            assert!(
                got.starts_with("-TRYAGAIN") || got.starts_with("-CLUSTERDOWN"),
                "node {i}: GET marker in db 1 gave {got:?}"
            );
            assert!(Instant::now() < deadline, "node {i}: no leader");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
