//! Reads of a window of a large collection touch only the blocks that hold the window,
//! counted by the engine's `block_reads` (block-cache misses) with a tiny block cache.

use crate::support::{show, start_basalt_in, test_dir, Client};

fn block_reads(c: &mut Client) -> u64 {
    show(&c.call(&["INFO", "storage"]))
        .lines()
        .find_map(|l| l.strip_prefix("block_reads:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("block_reads in INFO storage")
}

/// Block reads one command costs.
fn cost(c: &mut Client, cmd: &[&str]) -> u64 {
    let before = block_reads(c);
    c.call(cmd);
    block_reads(c) - before
}

#[test]
fn windows_of_large_collections_read_only_their_blocks() {
    let dir = test_dir("windows");
    let server = start_basalt_in(&dir, &["--block-cache-size", "64kb"]);
    let mut c = server.client();
    const N: usize = 100_000;
    for base in (0..N).step_by(1000) {
        let mut zadd = vec!["ZADD".to_string(), "z".to_string()];
        let mut rpush = vec!["RPUSH".to_string(), "l".to_string()];
        for i in base..base + 1000 {
            zadd.extend([i.to_string(), format!("member-{i:06}")]);
            rpush.push(format!("element-{i:06}"));
        }
        let zadd: Vec<&str> = zadd.iter().map(String::as_str).collect();
        assert_eq!(show(&c.call(&zadd)), ":1000\r\n");
        let rpush: Vec<&str> = rpush.iter().map(String::as_str).collect();
        assert_eq!(show(&c.call(&rpush)), format!(":{}\r\n", base + 1000));
    }
    assert_eq!(show(&c.call(&["SAVE"])), "+OK\r\n");
    let whole = cost(&mut c, &["ZCOUNT", "z", "-inf", "+inf"]);
    assert!(whole > 200, "counting everything read only {whole} blocks");
    for cmd in [
        vec!["ZRANGEBYSCORE", "z", "50000", "+inf", "LIMIT", "0", "10"],
        vec!["ZREVRANGEBYSCORE", "z", "50000", "-inf", "LIMIT", "0", "10"],
        vec!["ZRANGE", "z", "-10", "-1"],
        vec!["ZRANGE", "z", "0", "9"],
        vec!["ZSCORE", "z", "member-050000"],
        vec!["LRANGE", "l", "50000", "50009"],
        vec!["LINDEX", "l", "77777"],
        vec!["ZRANK", "z", "member-000005"],
        vec!["ZREVRANK", "z", "member-099990"],
        vec!["ZRANK", "z", "member-099990"],
    ] {
        let n = cost(&mut c, &cmd);
        eprintln!("{cmd:?}: {n} block reads (whole set: {whole})");
        assert!(n <= 12, "{cmd:?} read {n} blocks (everything: {whole})");
    }
    // Ranks are right from either end and across pages of the walk.
    for (cmd, member, rank) in [
        ("ZRANK", "member-000005", 5),
        ("ZRANK", "member-099990", 99_990),
        ("ZREVRANK", "member-099990", 9),
        ("ZRANK", "member-050000", 50_000),
        ("ZREVRANK", "member-050000", 49_999),
        ("ZRANK", "member-001024", 1024),
        ("ZREVRANK", "member-097951", 2048),
    ] {
        assert_eq!(
            show(&c.call(&[cmd, "z", member])),
            format!(":{rank}\r\n"),
            "{cmd} {member}"
        );
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
