//! Writes go through each shard's Raft group: the node-wide log is the write-ahead log,
//! checkpoints keep it short, and a kill -9 replays it in the order it was written.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::support::{show, start_basalt_in, test_dir, Client, Process};

fn info_field(c: &mut Client, section: &str, name: &str) -> String {
    let info = show(&c.call(&["INFO", section]));
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn kill(mut server: Process) {
    let _ = server.child.kill(); // SIGKILL
    let _ = server.child.wait();
}

#[test]
fn info_raft_shows_every_shard_and_the_metadata_group_led_by_this_node() {
    let dir = test_dir("raft-info");
    let server = start_basalt_in(&dir, &["--shards", "4"]);
    let mut c = server.client();
    assert_eq!(show(&c.call(&["SET", "a", "1"])), "+OK\r\n");
    let node = info_field(&mut c, "raft", "node_id");
    assert_eq!(node.len(), 40, "{node}");
    assert_eq!(info_field(&mut c, "raft", "groups"), "4");
    let mut shard_log_bytes = 0;
    for shard in 0..4 {
        let line = info_field(&mut c, "raft", &format!("shard{shard}"));
        assert!(line.contains("role=leader"), "{line}");
        assert!(line.contains(&format!("leader={node}")), "{line}");
        // Each group elected this node once since it started.
        assert!(line.contains(",elections=1,"), "{line}");
        let bytes = line.split(',').find_map(|f| f.strip_prefix("log_bytes="));
        shard_log_bytes += bytes.and_then(|b| b.parse::<u64>().ok()).expect(&line);
    }
    // The SET's entry is in its shard's log.
    assert!(shard_log_bytes > 0, "no shard has log bytes");
    // The metadata group, the cluster map and the shared log.
    let meta = info_field(&mut c, "raft", "meta");
    assert!(meta.contains("group=0,role=leader,voters=1,"), "{meta}");
    assert_eq!(info_field(&mut c, "raft", "nodes"), "1");
    assert_ne!(info_field(&mut c, "raft", "config_epoch"), "0");
    let bytes: u64 = info_field(&mut c, "raft", "log_bytes").parse().unwrap();
    assert!(bytes > 0, "log_bytes {bytes}");
    let cluster = show(&c.call(&["CLUSTER", "INFO"]));
    assert!(
        cluster.contains("cluster_state:ok") && cluster.contains("cluster_known_nodes:1"),
        "{cluster}"
    );
    drop(server);
    // The node keeps its identity across restarts.
    let server = start_basalt_in(&dir, &["--shards", "4"]);
    let mut c = server.client();
    assert_eq!(info_field(&mut c, "raft", "node_id"), node);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A model of the keys the test writes: plain strings only.
#[derive(Default)]
struct Model(BTreeMap<String, String>);

impl Model {
    fn apply(&mut self, cmd: &[String]) {
        match cmd[0].as_str() {
            "SET" => {
                self.0.insert(cmd[1].clone(), cmd[2].clone());
            }
            "MSET" => {
                for pair in cmd[1..].chunks(2) {
                    self.0.insert(pair[0].clone(), pair[1].clone());
                }
            }
            "RENAME" => {
                if let Some(v) = self.0.remove(&cmd[1]) {
                    self.0.insert(cmd[2].clone(), v);
                }
            }
            "DEL" => {
                for k in &cmd[1..] {
                    self.0.remove(k);
                }
            }
            "APPEND" => {
                self.0.entry(cmd[1].clone()).or_default().push_str(&cmd[2]);
            }
            "FLUSHALL" => self.0.clear(),
            other => panic!("model lacks {other}"),
        }
    }
}

/// Single-shard writes interleaved with writes spanning shards (MSET, RENAME, DEL of keys
/// in several shards, FLUSHALL): after kill -9 the replay of the log must give exactly the
/// state the acknowledged replies described, even though the engine kept nothing.
#[test]
fn spanning_writes_replay_in_written_order_after_kill_dash_nine() {
    let dir = test_dir("raft-replay");
    let args = ["--appendfsync", "always", "--shards", "8"];
    let server = start_basalt_in(&dir, &args);
    let mut c = server.client();
    let mut model = Model::default();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    for i in 0..1500u64 {
        let key = |n: u64| format!("k{n}");
        let cmd: Vec<String> = match next(20) {
            0 => vec!["RENAME".into(), key(next(40)), key(next(40))],
            1 => vec![
                "MSET".into(),
                key(next(40)),
                format!("m{i}"),
                key(next(40)),
                format!("n{i}"),
            ],
            2 => vec!["DEL".into(), key(next(40)), key(next(40)), key(next(40))],
            3 if i % 500 == 3 => vec!["FLUSHALL".into()],
            4..=9 => vec!["APPEND".into(), key(next(40)), format!("+{i}")],
            _ => vec!["SET".into(), key(next(40)), format!("v{i}")],
        };
        let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
        let reply = show(&c.call(&args));
        if reply.starts_with("-ERR no such key") {
            continue; // RENAME of a missing key changes nothing
        }
        assert!(!reply.starts_with('-'), "{cmd:?}: {reply}");
        model.apply(&cmd);
    }
    kill(server);
    let server = start_basalt_in(&dir, &args);
    let mut c = server.client();
    assert_eq!(
        show(&c.call(&["DBSIZE"])),
        format!(":{}\r\n", model.0.len())
    );
    for (k, v) in &model.0 {
        assert_eq!(
            show(&c.call(&["GET", k])),
            format!("${}\r\n{v}\r\n", v.len()),
            "{k}"
        );
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// With small log segments, checkpoints (engine flush, then snapshot and purge per group)
/// keep the log to a few segments under a steady write load, and a kill -9 afterwards
/// loses nothing: entries leave the log only once the engine holds their effects on disk.
#[test]
fn checkpoints_bound_the_log_and_lose_nothing_on_kill_dash_nine() {
    let dir = test_dir("raft-checkpoint");
    let args = [
        "--appendfsync",
        "always",
        "--raft-log-segment-size",
        "64kb",
        "--memtable-size",
        "1mb",
        "--shards",
        "4",
    ];
    let server = start_basalt_in(&dir, &args);
    let mut c = server.client();
    let value = "x".repeat(100);
    let mut max_segments = 0u64;
    for i in 0..6000u64 {
        assert_eq!(
            show(&c.call(&["SET", &format!("key:{i}"), &value])),
            "+OK\r\n"
        );
        if i % 10 == 0 {
            assert_eq!(
                show(&c.call(&["INCR", "counter"])),
                format!(":{}\r\n", i / 10 + 1)
            );
        }
        if i % 500 == 0 {
            let segments: u64 = info_field(&mut c, "raft", "log_segments").parse().unwrap();
            max_segments = max_segments.max(segments);
        }
    }
    // A checkpoint runs at most every background tick: give the last one time to finish.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut segments: u64;
    loop {
        segments = info_field(&mut c, "raft", "log_segments").parse().unwrap();
        if segments <= 6 || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // 6,600 entries of ~150 bytes are ~15 segments of 64 KiB without purging.
    assert!(segments <= 6, "log_segments {segments}");
    assert!(max_segments <= 12, "log grew to {max_segments} segments");
    let shard0 = info_field(&mut c, "raft", "shard0");
    assert!(!shard0.contains("purged=0"), "{shard0}");
    kill(server);
    let server = start_basalt_in(&dir, &args);
    let mut c = server.client();
    assert_eq!(show(&c.call(&["DBSIZE"])), ":6001\r\n");
    assert_eq!(show(&c.call(&["GET", "counter"])), "$3\r\n600\r\n");
    for i in (0..6000u64).step_by(97) {
        assert_eq!(show(&c.call(&["STRLEN", &format!("key:{i}")])), ":100\r\n");
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Consecutive writes of a pipeline for one shard travel as one entry; a command of it that
/// fails at apply is undone alone, the others keep their effects, replies keep their order.
#[test]
fn a_failing_write_in_a_pipelined_batch_is_undone_alone() {
    let dir = test_dir("raft-batch");
    let server = start_basalt_in(&dir, &["--shards", "1"]);
    let mut c = server.client();
    let script: &[&[&str]] = &[
        &["SET", "a", "1"],
        &["INCR", "a"],
        &["RPUSH", "a", "x"],
        &["HSET", "h", "f", "v"],
        &["INCR", "a"],
        &["SADD", "h", "m"],
        &["HSET", "h", "g", "w"],
        &["GET", "a"],
        &["HLEN", "h"],
    ];
    for cmd in script {
        let args: Vec<&[u8]> = cmd.iter().map(|a| a.as_bytes()).collect();
        c.send(&args);
    }
    let replies: Vec<String> = script.iter().map(|_| show(&c.read_reply())).collect();
    let wrongtype = "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
    assert_eq!(
        replies,
        [
            "+OK\r\n",
            ":2\r\n",
            wrongtype,
            ":1\r\n",
            ":3\r\n",
            wrongtype,
            ":1\r\n",
            "$1\r\n3\r\n",
            ":2\r\n"
        ]
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
