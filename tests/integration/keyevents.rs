//! KEYEVENTS on a 3-node cluster with `keyspace-events-log`: a consumer reads a shard's
//! events in pages on one node, loses its connection, and resumes from the last id on
//! another node — every event once, in write order; the kept events survive kill -9 of a
//! node; once trimmed, a resume from a trimmed id is refused instead of skipping events.

use std::time::{Duration, Instant};

use crate::blocking::wait_blocked;
use crate::cluster::Cluster;
use crate::cluster_protocol::{connect, error_text, int, items, query, text};
use crate::support::{show, Client};

/// (event, key) pairs in order, and the id of the last one.
type Page = (Vec<(String, String)>, String);

fn read(con: &mut redis::Connection, shard: i64, after: &str, count: usize) -> Page {
    let reply = query(
        con,
        &[
            "KEYEVENTS",
            "READ",
            &shard.to_string(),
            after,
            "COUNT",
            &count.to_string(),
        ],
    )
    .unwrap();
    let parts = items(&reply);
    let events = items(&parts[1])
        .iter()
        .map(|e| {
            let e = items(e);
            assert_eq!(int(&e[1]), 0, "database");
            (text(&e[2]), text(&e[3]))
        })
        .collect();
    (events, text(&parts[0]))
}

/// Reads pages of `page` events after `after` until `want` events came (or a deadline).
fn read_until(
    con: &mut redis::Connection,
    shard: i64,
    after: &str,
    page: usize,
    want: usize,
) -> Page {
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut all, mut last) = (Vec::new(), after.to_string());
    while all.len() < want {
        let (events, next) = read(con, shard, &last, page.min(want - all.len()));
        if events.is_empty() {
            assert!(
                Instant::now() < deadline,
                "only {} of {want} events",
                all.len()
            );
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        all.extend(events);
        last = next;
    }
    (all, last)
}

/// The shard holding `key`'s slot, from KEYEVENTS SHARDS.
fn shard_of(con: &mut redis::Connection, key: &str) -> i64 {
    let slot = int(&query(con, &["CLUSTER", "KEYSLOT", key]).unwrap());
    let shards = query(con, &["KEYEVENTS", "SHARDS"]).unwrap();
    items(&shards)
        .iter()
        .map(items)
        .find(|s| (int(&s[1])..=int(&s[2])).contains(&slot))
        .map(|s| int(&s[0]))
        .expect("a shard holds every slot")
}

fn pair(event: &str, key: &str) -> (String, String) {
    (event.to_string(), key.to_string())
}

#[test]
fn a_consumer_resumes_keyspace_events_on_another_node_without_gaps_or_repeats() {
    let mut cluster = Cluster::start("keyevents", 3, &["--keyspace-events-log", "300"]);
    let ports = cluster.ports();
    let mut writer = connect(ports[0]);
    let shard = shard_of(&mut writer, "{e}k");
    let mut expected = Vec::new();
    for i in 0..40 {
        let key = format!("{{e}}k{i}");
        query(&mut writer, &["SET", &key, "v"]).unwrap();
        expected.extend([pair("new", &key), pair("set", &key)]);
    }
    query(&mut writer, &["DEL", "{e}k0", "{e}k1"]).unwrap();
    expected.extend([pair("del", "{e}k0"), pair("del", "{e}k1")]);
    // Half of them in pages of 7 on node 1, then the connection is gone.
    let mut first = connect(ports[1]);
    let (mut got, last) = read_until(&mut first, shard, "0", 7, 41);
    drop(first);
    // More writes (through node 2), and the rest read on node 2 from the last id.
    let mut writer2 = connect(ports[2]);
    for i in 0..10 {
        let key = format!("{{e}}k{i}");
        query(&mut writer2, &["APPEND", &key, "x"]).unwrap();
        if i >= 2 {
            expected.push(pair("append", &key));
        } else {
            expected.extend([pair("new", &key), pair("append", &key)]);
        }
    }
    let mut second = connect(ports[2]);
    let rest = expected.len() - got.len();
    let (more, last) = read_until(&mut second, shard, &last, 5, rest);
    got.extend(more);
    assert_eq!(got, expected);
    // Nothing after the last id yet.
    assert!(read(&mut second, shard, &last, 10).0.is_empty());
    // The kept events are durable: node 1, killed and restarted, has them all.
    cluster.kill(1);
    cluster.start_node(1);
    cluster.wait_replicated(3);
    let mut again = connect(ports[1]);
    let (all, _) = read_until(&mut again, shard, "0", 1000, expected.len());
    assert_eq!(all, expected);
    // Past the kept entries, the oldest ones are trimmed: resuming from one of them is
    // refused; reading from 0 starts at the oldest kept.
    for i in 0..700 {
        query(&mut writer, &["SET", "{e}trim", &i.to_string()]).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let refused = query(
            &mut again,
            &["KEYEVENTS", "READ", &shard.to_string(), "1-0"],
        );
        if refused.is_err() {
            assert!(error_text(refused).contains("no longer kept"));
            break;
        }
        assert!(Instant::now() < deadline, "nothing was trimmed");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (oldest, _) = read(&mut again, shard, "0", 1);
    assert_eq!(oldest, vec![pair("set", "{e}trim")]);
    let unknown = query(&mut again, &["KEYEVENTS", "READ", "9999", "0"]);
    assert!(error_text(unknown).contains("no replica"));
    // COUNT's bounds and the id's form.
    let shard = shard.to_string();
    for (count, refused) in [
        ("0", true),
        ("100001", true),
        ("100000", false),
        ("x", true),
    ] {
        let got = query(
            &mut again,
            &["KEYEVENTS", "READ", &shard, "0", "COUNT", count],
        );
        assert_eq!(got.is_err(), refused, "COUNT {count}: {got:?}");
    }
    let bad_id = query(&mut again, &["KEYEVENTS", "READ", &shard, "1-x"]);
    assert!(error_text(bad_id).contains("Invalid event ID"));
    let syntax = query(
        &mut again,
        &["KEYEVENTS", "READ", &shard, "0", "LIMIT", "1"],
    );
    assert!(error_text(syntax).contains("syntax error"));
}

#[test]
fn keyevents_without_keyspace_events_log_says_nothing_is_kept() {
    let node = crate::support::start_basalt(&[]);
    let mut con = connect(node.port);
    let refused = query(&mut con, &["KEYEVENTS", "READ", "0", "0"]);
    assert!(error_text(refused).contains("keyspace-events-log is 0"));
    let refused = query(&mut con, &["KEYEVENTS", "SHARDS"]);
    assert!(error_text(refused).contains("keyspace-events-log is 0"));
}

#[test]
fn a_blocked_reader_wakes_on_a_write_through_another_node() {
    let cluster = Cluster::start("keyevents-block", 3, &["--keyspace-events-log", "100"]);
    let ports = cluster.ports();
    let mut admin = Client::connect(ports[1]);
    let mut writer = connect(ports[2]);
    let shard = shard_of(&mut writer, "{b}k");
    query(&mut writer, &["SET", "{b}k", "1"]).unwrap();
    let mut reader = connect(ports[1]);
    let (_, last) = read_until(&mut reader, shard, "0", 100, 2);
    let read_args = |last: &str, block: &str| {
        [
            "KEYEVENTS",
            "READ",
            &shard.to_string(),
            last,
            "BLOCK",
            block,
        ]
        .map(str::to_string)
    };
    // BLOCK 0 waits (forever) until a write through another node is applied here.
    let args = read_args(&last, "0");
    let waiting = std::thread::spawn(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        query(&mut reader, &args).unwrap()
    });
    wait_blocked(&mut admin, 1);
    assert!(!waiting.is_finished());
    query(&mut writer, &["INCR", "{b}k"]).unwrap();
    let woken = waiting.join().unwrap();
    let events = items(&items(&woken)[1]);
    assert_eq!(text(&items(&events[0])[2]), "incrby");
    assert_eq!(text(&items(&events[0])[3]), "{b}k");
    // Events already kept answer at once, BLOCK or not.
    let mut reader = connect(ports[1]);
    let args = read_args(&last, "0");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(
        items(&items(&query(&mut reader, &args).unwrap())[1]).len(),
        1
    );
    // Nothing within the time: a null array after it.
    let last = text(&items(&woken)[0]);
    let args = read_args(&last, "300");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let started = Instant::now();
    assert_eq!(query(&mut reader, &args).unwrap(), redis::Value::Nil);
    assert!(started.elapsed() >= Duration::from_millis(300));
    // CLIENT UNBLOCK ends the wait (as a timeout, or with an error).
    for (how, unblocked) in [("TIMEOUT", "nil"), ("ERROR", "UNBLOCKED")] {
        let mut blocked = connect(ports[1]);
        let id = int(&query(&mut blocked, &["CLIENT", "ID"]).unwrap()).to_string();
        let args = read_args(&last, "0");
        let waiting = std::thread::spawn(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            match query(&mut blocked, &args) {
                Ok(redis::Value::Nil) => "nil".to_string(),
                other => error_text(other),
            }
        });
        wait_blocked(&mut admin, 1);
        assert_eq!(
            show(&admin.call(&["CLIENT", "UNBLOCK", &id, how])),
            ":1\r\n"
        );
        assert!(waiting.join().unwrap().starts_with(unblocked), "{how}");
    }
    // Inside MULTI it never waits.
    query(&mut reader, &["MULTI"]).unwrap();
    query(&mut reader, &args).unwrap();
    let exec = query(&mut reader, &["EXEC"]).unwrap();
    assert_eq!(items(&exec), &[redis::Value::Nil]);
    // A reader that disconnects while blocked is no longer counted.
    let mut gone = Client::connect(ports[1]);
    let raw = read_args(&last, "0");
    gone.send(&raw.each_ref().map(|a| a.as_bytes()));
    wait_blocked(&mut admin, 1);
    drop(gone);
    wait_blocked(&mut admin, 0);
    // BLOCK's value.
    for (block, refused) in [("-1", "timeout is negative"), ("x", "not an integer")] {
        let args = read_args(&last, block);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert!(error_text(query(&mut reader, &args)).contains(refused));
    }
}
