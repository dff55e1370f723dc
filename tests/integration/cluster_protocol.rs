//! The Redis Cluster protocol on a 3-node Basalt: CLUSTER SLOTS / SHARDS / NODES agree,
//! cluster clients get MOVED and CROSSSLOT as from Redis Cluster (a real one is the
//! oracle for texts and shapes), plain clients keep transparent forwarding, and real
//! cluster clients (redis-py's RedisCluster, redis-cli -c, redis-benchmark --cluster) work
//! unmodified.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use redis::Value;

use crate::cluster::Cluster;
use crate::support::{show, start_redis_with, Process};

pub(crate) fn connect(port: u16) -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .and_then(|c| c.get_connection())
        .unwrap_or_else(|e| panic!("connect to {port}: {e}"))
}

pub(crate) fn query(con: &mut redis::Connection, args: &[&str]) -> redis::RedisResult<Value> {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(con)
}

pub(crate) fn int(v: &Value) -> i64 {
    match v {
        Value::Int(n) => *n,
        other => panic!("not an integer: {other:?}"),
    }
}

pub(crate) fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::VerbatimString { text, .. } => text.clone(),
        other => panic!("not a string: {other:?}"),
    }
}

pub(crate) fn items(v: &Value) -> &[Value] {
    match v {
        Value::Array(items) => items,
        other => panic!("not an array: {other:?}"),
    }
}

/// An error reply's full text (`MOVED 3999 127.0.0.1:7002`).
pub(crate) fn error_text(result: redis::RedisResult<Value>) -> String {
    let e = result.expect_err("an error reply");
    match (e.code(), e.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        (Some(code), None) => code.to_string(),
        _ => e.to_string(),
    }
}

/// CLUSTER SLOTS as (first, last, master port, replica ports), checking each node entry's
/// shape: host, port, 40-hex id, metadata.
pub(crate) fn slot_table(reply: &Value) -> Vec<(i64, i64, i64, Vec<i64>)> {
    items(reply)
        .iter()
        .map(|range| {
            let range = items(range);
            let nodes: Vec<i64> = range[2..]
                .iter()
                .map(|node| {
                    let node = items(node);
                    assert_eq!(node.len(), 4, "host, port, id, metadata: {node:?}");
                    assert_eq!(text(&node[0]), "127.0.0.1");
                    let id = text(&node[2]);
                    assert!(id.len() == 40 && id.bytes().all(|b| b.is_ascii_hexdigit()));
                    int(&node[1])
                })
                .collect();
            (
                int(&range[0]),
                int(&range[1]),
                nodes[0],
                nodes[1..].to_vec(),
            )
        })
        .collect()
}

/// The port whose node masters `slot` in a CLUSTER SLOTS table.
pub(crate) fn master_of(table: &[(i64, i64, i64, Vec<i64>)], slot: i64) -> i64 {
    table
        .iter()
        .find(|(first, last, _, _)| (*first..=*last).contains(&slot))
        .map(|(_, _, master, _)| *master)
        .unwrap_or_else(|| panic!("slot {slot} is not covered"))
}

/// CLUSTER SLOTS once shard leaders have settled: a new cluster's first node leads every
/// shard until the leader balancer hands some over, a few at a time. Settled is when no
/// node masters more than its share of the 16 shards and two reads a second apart agree.
pub(crate) fn spread_slot_table(con: &mut redis::Connection) -> Vec<(i64, i64, i64, Vec<i64>)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = Vec::new();
    loop {
        let table = slot_table(&query(con, &["CLUSTER", "SLOTS"]).unwrap());
        let mut slots_of: BTreeMap<i64, i64> = BTreeMap::new();
        for (first, end, master, _) in &table {
            *slots_of.entry(*master).or_default() += end - first + 1;
        }
        let share = (16 + 2) / 3 * 1024;
        if slots_of.len() > 1 && slots_of.values().all(|n| *n <= share) && table == last {
            return table;
        }
        assert!(
            Instant::now() < deadline,
            "leaders never settled: {table:?}"
        );
        last = table;
        std::thread::sleep(Duration::from_secs(1));
    }
}

pub(crate) fn forwarded(port: u16) -> u64 {
    let info = text(&query(&mut connect(port), &["INFO", "stats"]).unwrap());
    info.lines()
        .find_map(|l| l.strip_prefix("forwarded_commands:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("INFO stats has forwarded_commands")
}

#[test]
fn cluster_clients_get_the_layout_and_moved_plain_clients_are_forwarded() {
    let cluster = Cluster::start("cluster-protocol", 3, &[]);
    let ports: Vec<i64> = cluster.ports().iter().map(|p| i64::from(*p)).collect();
    let mut con = connect(cluster.ports()[0]);

    // The three layouts agree: every slot once, masters and replicas among the nodes.
    let table = spread_slot_table(&mut con);
    let mut next = 0;
    for (first, last, master, replicas) in &table {
        assert_eq!(*first, next, "ranges are contiguous: {table:?}");
        next = last + 1;
        assert!(ports.contains(master));
        assert_eq!(replicas.len(), 2, "three replicas per shard");
        assert!(replicas.iter().all(|r| ports.contains(r) && r != master));
    }
    assert_eq!(next, 16384);
    let nodes = text(&query(&mut con, &["CLUSTER", "NODES"]).unwrap());
    let lines: Vec<&str> = nodes.lines().collect();
    assert_eq!(lines.len(), 3, "{nodes}");
    assert_eq!(lines.iter().filter(|l| l.contains("myself")).count(), 1);
    let myid = text(&query(&mut con, &["CLUSTER", "MYID"]).unwrap());
    let mut mastered: BTreeMap<i64, i64> = BTreeMap::new();
    for line in &lines {
        let fields: Vec<&str> = line.split(' ').collect();
        assert!(fields.len() >= 8, "{line}");
        assert_eq!(fields[0].len(), 40);
        assert_eq!(fields[2].contains("myself"), fields[0] == myid, "{line}");
        assert_eq!(fields[7], "connected");
        let port: i64 = fields[1].split([':', '@']).nth(1).unwrap().parse().unwrap();
        for range in &fields[8..] {
            let (a, b) = range.split_once('-').unwrap_or((range, range));
            let (a, b): (i64, i64) = (a.parse().unwrap(), b.parse().unwrap());
            assert_eq!(
                master_of(&table, a),
                port,
                "NODES and SLOTS agree on {range}"
            );
            mastered.insert(a, b);
        }
    }
    let covered: i64 = mastered.iter().map(|(a, b)| b - a + 1).sum();
    assert_eq!(covered, 16384, "CLUSTER NODES masters every slot once");
    let shards = items(&query(&mut con, &["CLUSTER", "SHARDS"]).unwrap()).len();
    assert_eq!(shards, 16, "one entry per shard");

    // This connection asked for the layout: a key mastered elsewhere gets MOVED to the
    // master CLUSTER SLOTS names, keys of two slots get CROSSSLOT.
    let here = i64::from(cluster.ports()[0]);
    let (key, slot) = (0..)
        .map(|i| format!("key:{i}"))
        .map(|k| {
            let slot = i64::from(basalt::cluster::key_slot(k.as_bytes()).0);
            (k, slot)
        })
        .find(|(_, slot)| master_of(&table, *slot) != here)
        .unwrap();
    let moved = error_text(query(&mut con, &["SET", &key, "v"]));
    assert_eq!(
        moved,
        format!("MOVED {slot} 127.0.0.1:{}", master_of(&table, slot))
    );
    let cross = error_text(query(&mut con, &["MSET", "a", "1", "b", "2"]));
    assert_eq!(
        cross,
        "CROSSSLOT Keys in request don't hash to the same slot"
    );
    let mut at_master = connect(master_of(&table, slot) as u16);
    assert_eq!(
        query(&mut at_master, &["SET", &key, "v"]).unwrap(),
        Value::Okay
    );
    // READONLY: reads of a shard this node replicates are served here, after the node has
    // applied what the leader says a linearizable read must see: every write acknowledged
    // before the read is in it, and nothing is forwarded.
    query(&mut con, &["READONLY"]).unwrap();
    let forwarded_before = forwarded(cluster.ports()[0]);
    for i in 0..50 {
        let value = format!("v{i}");
        let set = query(&mut at_master, &["SET", &key, &value]).unwrap();
        assert_eq!(set, Value::Okay);
        assert_eq!(text(&query(&mut con, &["GET", &key]).unwrap()), value);
    }
    assert_eq!(forwarded(cluster.ports()[0]), forwarded_before);
    assert!(error_text(query(&mut con, &["SET", &key, "w"])).starts_with("MOVED "));

    // A plain connection is served through forwarding, and INFO counts it.
    let before = forwarded(cluster.ports()[0]);
    let mut plain = connect(cluster.ports()[0]);
    assert_eq!(query(&mut plain, &["SET", &key, "w"]).unwrap(), Value::Okay);
    assert_eq!(text(&query(&mut plain, &["GET", &key]).unwrap()), "w");
    assert!(forwarded(cluster.ports()[0]) > before);
    // A read over keys of several shards sees every write acknowledged before it, whoever
    // leads those shards.
    let other = (0..)
        .map(|i| format!("other:{i}"))
        .find(|k| {
            let s = i64::from(basalt::cluster::key_slot(k.as_bytes()).0);
            master_of(&table, s) != master_of(&table, slot)
        })
        .unwrap();
    let other_slot = i64::from(basalt::cluster::key_slot(other.as_bytes()).0);
    let mut at_other = connect(master_of(&table, other_slot) as u16);
    for i in 0..30 {
        let (a, b) = (format!("a{i}"), format!("b{i}"));
        assert_eq!(
            query(&mut at_master, &["SET", &key, &a]).unwrap(),
            Value::Okay
        );
        assert_eq!(
            query(&mut at_other, &["SET", &other, &b]).unwrap(),
            Value::Okay
        );
        let both = query(&mut plain, &["MGET", &key, &other]).unwrap();
        assert_eq!(items(&both).iter().map(text).collect::<Vec<_>>(), [a, b]);
    }

    // The keys of a slot, as the node holding them sees them.
    let counted = query(
        &mut at_master,
        &["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()],
    );
    assert_eq!(int(&counted.unwrap()), 1);
    let listed = query(
        &mut at_master,
        &["CLUSTER", "GETKEYSINSLOT", &slot.to_string(), "10"],
    );
    assert_eq!(text(&items(&listed.unwrap())[0]), key);
    let info = text(&query(&mut con, &["INFO", "cluster"]).unwrap());
    assert!(info.contains("cluster_enabled:1"), "{info}");
    let cluster_info = text(&query(&mut con, &["CLUSTER", "INFO"]).unwrap());
    let stat = |name: &str| -> u64 {
        cluster_info
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in {cluster_info}"))
    };
    assert!(stat("cluster_stats_messages_sent") > 0);
    assert!(stat("cluster_stats_messages_received") > 0);
    assert_eq!(stat("total_cluster_links_buffer_limit_exceeded"), 0);

    // Hand edits of the layout say what Basalt does instead; no failure reports are kept.
    for (args, says) in [
        (&["CLUSTER", "ADDSLOTS", "1"][..], "slots"),
        (&["CLUSTER", "MEET", "127.0.0.1", "7000"], "--join"),
        (&["CLUSTER", "FORGET", &myid], "balancer"),
    ] {
        let error = error_text(query(&mut con, args));
        let sub = args[1].to_string();
        assert!(
            error.starts_with(&format!("ERR CLUSTER {sub} is not used by Basalt")),
            "{error}"
        );
        assert!(error.contains(says), "{error}");
    }
    let reports = query(&mut con, &["CLUSTER", "COUNT-FAILURE-REPORTS", &myid]);
    assert_eq!(int(&reports.unwrap()), 0);
}

/// Three redis-servers in cluster mode, slots spread by `redis-cli --cluster create`.
struct RedisCluster {
    nodes: Vec<Process>,
}

impl RedisCluster {
    fn start() -> RedisCluster {
        let nodes: Vec<Process> = (0..3)
            .map(|_| start_redis_with(&["--cluster-enabled", "yes"]))
            .collect();
        let mut create = Command::new("redis-cli");
        create.args(["--cluster", "create"]);
        for n in &nodes {
            create.arg(format!("127.0.0.1:{}", n.port));
        }
        let out = create
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli is missing: scripts/setup.sh installs redis-tools");
        assert!(out.status.success(), "{}", show(&out.stdout));
        let deadline = Instant::now() + Duration::from_secs(30);
        let cluster = RedisCluster { nodes };
        while !(0..3).all(|i| {
            let info = query(&mut cluster.connect(i), &["CLUSTER", "INFO"]).unwrap();
            text(&info).contains("cluster_state:ok")
        }) {
            assert!(Instant::now() < deadline, "the redis cluster did not form");
            std::thread::sleep(Duration::from_millis(100));
        }
        cluster
    }

    fn connect(&self, i: usize) -> redis::Connection {
        connect(self.nodes[i].port)
    }
}

/// The shape of a reply: types and lengths, not ids, ports or counts.
fn shape(v: &Value) -> String {
    match v {
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(shape).collect::<Vec<_>>().join(",")
        ),
        Value::Map(pairs) => format!(
            "{{{}}}",
            pairs
                .iter()
                .map(|(k, v)| format!("{}:{}", text(k), shape(v)))
                .collect::<Vec<_>>()
                .join(",")
        ),
        Value::Int(_) => "int".into(),
        Value::BulkString(_) | Value::SimpleString(_) => "str".into(),
        Value::VerbatimString { .. } => "verbatim".into(),
        Value::Nil => "nil".into(),
        Value::Okay => "ok".into(),
        other => format!("{other:?}"),
    }
}

#[test]
fn replies_match_a_real_redis_cluster() {
    let redis = RedisCluster::start();
    let basalt = Cluster::start("cluster-oracle", 3, &[]);
    let mut r = redis.connect(0);
    let mut b = connect(basalt.ports()[0]);
    let same = |r: &mut redis::Connection, b: &mut redis::Connection, args: &[&str]| {
        let (want, got) = (query(r, args), query(b, args));
        match (want, got) {
            (Ok(w), Ok(g)) => assert_eq!(w, g, "{args:?}"),
            (w, g) => assert_eq!(error_text(w), error_text(g), "{args:?}"),
        }
    };
    for args in [
        &["CLUSTER", "KEYSLOT", "foo"][..],
        &["CLUSTER", "KEYSLOT", "{user1000}.following"],
        &["CLUSTER", "KEYSLOT", "{}x"],
        &["CLUSTER", "KEYSLOT"],
        &["CLUSTER", "COUNTKEYSINSLOT", "16384"],
        &["CLUSTER", "COUNTKEYSINSLOT", "-1"],
        &["CLUSTER", "COUNTKEYSINSLOT", "x"],
        &["CLUSTER", "COUNTKEYSINSLOT", "7"],
        &["CLUSTER", "GETKEYSINSLOT", "1", "-1"],
        &["CLUSTER", "GETKEYSINSLOT", "16384", "1"],
        &["CLUSTER", "GETKEYSINSLOT", "x", "1"],
        &["CLUSTER", "GETKEYSINSLOT", "7", "0"],
        &["CLUSTER", "REPLICAS", "nosuchnode"],
        &["CLUSTER", "COUNT-FAILURE-REPORTS", "nosuchnode"],
        &["READONLY"],
        &["READWRITE"],
        &["ASKING"],
    ] {
        same(&mut r, &mut b, args);
    }
    // Shapes: CLUSTER SLOTS entries, CLUSTER SHARDS fields, CLUSTER NODES fields, the
    // fields of CLUSTER INFO that Basalt reports.
    // (Redis's cluster here has no replicas: compare the range and its master.)
    let first_slot_entry = |c: &mut redis::Connection| {
        let slots = query(c, &["CLUSTER", "SLOTS"]).unwrap();
        shape(&Value::Array(items(&items(&slots)[0])[..3].to_vec()))
    };
    assert_eq!(first_slot_entry(&mut r), first_slot_entry(&mut b));
    // ROLE: a node leading shards is a master with an offset (Redis's replicas list is empty
    // here, Basalt's names the other two nodes).
    let role_head = |c: &mut redis::Connection| {
        let role = query(c, &["ROLE"]).unwrap();
        shape(&Value::Array(items(&role)[..2].to_vec()))
    };
    assert_eq!(role_head(&mut r), role_head(&mut b));
    let shard_fields = |c: &mut redis::Connection| {
        let shards = query(c, &["CLUSTER", "SHARDS"]).unwrap();
        let first = &items(&shards)[0];
        // RESP2: a flat list of names and values.
        let fields = items(first);
        let nodes = items(&fields[3]);
        let node = items(&nodes[0]);
        (
            text(&fields[0]),
            text(&fields[2]),
            node.iter().step_by(2).map(text).collect::<Vec<_>>(),
        )
    };
    assert_eq!(shard_fields(&mut r), shard_fields(&mut b));
    let node_fields = |c: &mut redis::Connection| {
        let nodes = text(&query(c, &["CLUSTER", "NODES"]).unwrap());
        let line = nodes
            .lines()
            .find(|l| l.contains("myself"))
            .unwrap()
            .to_string();
        let fields: Vec<String> = line.split(' ').map(str::to_string).collect();
        (
            fields.len(),
            fields[2].clone(),
            fields[3].clone(),
            fields[7].clone(),
        )
    };
    let (rn, bn) = (node_fields(&mut r), node_fields(&mut b));
    assert_eq!(
        (rn.1, rn.2, rn.3),
        (bn.1, bn.2, bn.3),
        "flags, master, link"
    );
    let info_fields = |c: &mut redis::Connection| {
        let info = text(&query(c, &["CLUSTER", "INFO"]).unwrap());
        info.lines()
            .filter_map(|l| l.split_once(':'))
            .filter(|(k, _)| !k.starts_with("cluster_stats") && !k.starts_with("total_"))
            .map(|(k, v)| (k.to_string(), v.parse::<i64>().is_ok()))
            .collect::<Vec<_>>()
    };
    assert_eq!(info_fields(&mut r), info_fields(&mut b));
    // CLUSTER LINKS: one link each way with each other node, in Redis's fields.
    let links = |c: &mut redis::Connection| {
        let reply = query(c, &["CLUSTER", "LINKS"]).unwrap();
        let mut shapes: Vec<String> = items(&reply).iter().map(shape).collect();
        shapes.dedup();
        (items(&reply).len(), shapes)
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let want = links(&mut r);
    while links(&mut b) != want {
        assert!(
            Instant::now() < deadline,
            "CLUSTER LINKS: {:?} against Redis's {want:?}",
            links(&mut b)
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // MOVED and CROSSSLOT: the same texts for the same key, once each side's client
    // asked for the layout.
    let r_table = slot_table(&query(&mut r, &["CLUSTER", "SLOTS"]).unwrap());
    let b_table = spread_slot_table(&mut b);
    let (r_here, b_here) = (i64::from(redis.nodes[0].port), i64::from(basalt.ports()[0]));
    let key = (0..)
        .map(|i| format!("k{i}"))
        .find(|k| {
            let slot = i64::from(basalt::cluster::key_slot(k.as_bytes()).0);
            master_of(&r_table, slot) != r_here && master_of(&b_table, slot) != b_here
        })
        .unwrap();
    let slot = i64::from(basalt::cluster::key_slot(key.as_bytes()).0);
    let mask = |text: String, table: &[(i64, i64, i64, Vec<i64>)]| {
        text.replace(&format!(":{}", master_of(table, slot)), ":<port>")
    };
    let want = mask(error_text(query(&mut r, &["GET", &key])), &r_table);
    let got = mask(error_text(query(&mut b, &["GET", &key])), &b_table);
    assert_eq!(want, got);
    assert_eq!(want, format!("MOVED {slot} 127.0.0.1:<port>"));
    same(&mut r, &mut b, &["MGET", "a", "b"]);
}

fn have_redis_py() -> bool {
    Command::new("python3")
        .args(["-c", "import redis"])
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn cluster_client_libraries_work_unmodified() {
    assert!(
        have_redis_py(),
        "redis-py is missing: scripts/setup.sh installs it (pip install redis)"
    );
    let cluster = Cluster::start("cluster-clients", 3, &[]);
    let ports: Vec<String> = cluster.ports().iter().map(|p| p.to_string()).collect();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/redis-compat/clients/redis_py_cluster_check.py"
    );
    let out = Command::new("python3")
        .arg(script)
        .args(&ports)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "redis-py RedisCluster failed:\n{}\n{}",
        show(&out.stdout),
        show(&out.stderr)
    );

    // redis-cli -c follows redirects (it is served by forwarding, having never asked for
    // the layout); every key written through one node reads back through another.
    for i in 0..20 {
        let key = format!("cli:{i}");
        let set = Command::new("redis-cli")
            .args(["-c", "-p", &ports[0], "SET", &key, &i.to_string()])
            .output()
            .expect("redis-cli is missing: scripts/setup.sh installs redis-tools");
        assert_eq!(show(&set.stdout).trim(), "OK");
        let get = Command::new("redis-cli")
            .args(["-c", "-p", &ports[1], "GET", &key])
            .output()
            .unwrap();
        assert_eq!(show(&get.stdout).trim(), i.to_string());
    }

    let bench = Command::new("redis-benchmark")
        .args(["--cluster", "-p", &ports[0], "-t", "set,get", "-n", "5000"])
        .args(["-c", "10", "-q"])
        .output()
        .expect("redis-benchmark is missing: scripts/setup.sh installs redis-tools");
    let text = show(&bench.stdout) + &show(&bench.stderr);
    assert!(bench.status.success(), "{text}");
    assert!(
        text.contains("SET:") && text.contains("GET:") && !text.contains("rror"),
        "{text}"
    );
}

#[test]
fn a_cluster_client_loses_no_acknowledged_write_when_a_node_is_killed() {
    assert!(
        have_redis_py(),
        "redis-py is missing: scripts/setup.sh installs it (pip install redis)"
    );
    let mut cluster = Cluster::start("cluster-client-kill", 3, &["--appendfsync", "always"]);
    let ports: Vec<String> = cluster.ports().iter().map(|p| p.to_string()).collect();
    let acked_file = crate::support::test_dir("cluster-client-kill-acked").join("acked");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/redis-compat/clients/redis_py_cluster_writer.py"
    );
    let writer = Command::new("python3")
        .arg(script)
        .arg("12")
        .arg(&acked_file)
        .args(&ports)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    cluster.kill(1);
    let out = writer.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "writer failed:\n{}\n{}",
        show(&out.stdout),
        show(&out.stderr)
    );
    let acked: Vec<u64> = std::fs::read_to_string(&acked_file)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert!(acked.len() > 100, "too few writes: {}", show(&out.stdout));
    // Every acknowledged write reads back through a surviving node (forwarded to the
    // shards' leaders, two of three replicas left).
    let mut con = connect(cluster.ports()[0]);
    for i in &acked {
        let got = query(&mut con, &["GET", &format!("w:{i}")]).unwrap();
        assert_eq!(text(&got), format!("v{i}"), "acknowledged write w:{i} lost");
    }
    if let Some(dir) = acked_file.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
}
