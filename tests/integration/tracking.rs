//! Client-side caching on a 3-node cluster: a tracking client is invalidated whichever node
//! takes the write and whichever node leads the key's shard, in every mode (default, BCAST,
//! NOLOOP for writes it sent through another node), and still after the leader of its key's
//! shard is killed.

use std::time::{Duration, Instant};

use crate::cluster::{write_until_acked, Cluster};
use crate::support::{show, Client};
use crate::transactions::leader_and_followers;

/// A RESP3 connection with tracking on, as `options` say.
fn tracker(port: u16, options: &[&str]) -> Client {
    let mut c = Client::connect(port);
    c.call(&["HELLO", "3"]);
    let mut cmd = vec!["CLIENT", "TRACKING", "ON"];
    cmd.extend_from_slice(options);
    assert_eq!(show(&c.call(&cmd)), "+OK\r\n");
    c
}

/// The push a RESP3 tracking client gets for `keys`.
fn invalidate(keys: &[&str]) -> String {
    let mut out = format!(">2\r\n$10\r\ninvalidate\r\n*{}\r\n", keys.len());
    for k in keys {
        out.push_str(&format!("${}\r\n{k}\r\n", k.len()));
    }
    out
}

/// Nothing was pushed before: a PING's PONG is the next frame.
fn assert_nothing_pushed(c: &mut Client) {
    assert_eq!(show(&c.call(&["PING"])), "+PONG\r\n");
}

#[test]
fn invalidations_reach_tracking_clients_whichever_node_takes_the_write() {
    let cluster = Cluster::start("tracking", 3, &[]);
    let ports = cluster.ports();
    let (leader, others) = leader_and_followers(&ports, "{t}k");
    let mut writer = Client::connect(others[1]);
    // Default mode on a node that does not lead the key: the read is forwarded, the write
    // comes through a third node.
    let mut t = tracker(others[0], &[]);
    assert_eq!(show(&t.call(&["GET", "{t}k"])), "_\r\n");
    assert_eq!(show(&writer.call(&["SET", "{t}k", "1"])), "+OK\r\n");
    assert_eq!(show(&t.read_reply()), invalidate(&["{t}k"]));
    // Told once: the next write is not told until the key is read again.
    writer.call(&["SET", "{t}k", "2"]);
    assert_nothing_pushed(&mut t);
    assert_eq!(show(&t.call(&["GET", "{t}k"])), "$1\r\n2\r\n");
    writer.call(&["DEL", "{t}k"]);
    assert_eq!(show(&t.read_reply()), invalidate(&["{t}k"]));
    // BCAST on the leader, writes through a follower.
    let mut b = tracker(leader, &["BCAST", "PREFIX", "{t}"]);
    writer.call(&["MSET", "{t}a", "1", "{t}b", "2"]);
    assert_eq!(show(&b.read_reply()), invalidate(&["{t}a", "{t}b"]));
    // NOLOOP: the client's own write, forwarded to the leader, is not told to it; another
    // client's is.
    let mut n = tracker(others[0], &["NOLOOP"]);
    n.call(&["GET", "{t}n"]);
    assert_eq!(show(&n.call(&["SET", "{t}n", "mine"])), "+OK\r\n");
    assert_nothing_pushed(&mut n);
    n.call(&["GET", "{t}n"]);
    writer.call(&["SET", "{t}n", "theirs"]);
    assert_eq!(show(&n.read_reply()), invalidate(&["{t}n"]));
    // A flush tells every tracking client of every node to drop everything.
    writer.call(&["FLUSHALL"]);
    for c in [&mut t, &mut n] {
        assert_eq!(show(&c.read_reply()), ">2\r\n$10\r\ninvalidate\r\n_\r\n");
    }
    let pushed = show(&b.read_reply());
    assert!(
        pushed.contains("{t}") || pushed.ends_with("_\r\n"),
        "{pushed}"
    );
}

#[test]
fn a_tracking_client_is_invalidated_after_its_keys_leader_is_killed() {
    let mut cluster = Cluster::start("tracking-failover", 3, &[]);
    let ports = cluster.ports();
    let (leader, others) = leader_and_followers(&ports, "{f}k");
    let leader_index = ports.iter().position(|p| *p == leader).unwrap();
    let mut t = tracker(others[0], &[]);
    let mut writer = Client::connect(others[1]);
    writer.call(&["SET", "{f}k", "before"]);
    assert_eq!(show(&t.call(&["GET", "{f}k"])), "$6\r\nbefore\r\n");
    cluster.kill(leader_index);
    // A write through the other surviving node, once a new leader is elected.
    let deadline = Instant::now() + Duration::from_secs(30);
    assert!(write_until_acked(&mut writer, "{f}k", deadline));
    t.set_timeout(Duration::from_secs(10));
    assert_eq!(show(&t.read_reply()), invalidate(&["{f}k"]));
    assert_eq!(show(&t.call(&["GET", "{f}k"])), "$1\r\n1\r\n");
}

#[test]
fn a_read_of_a_shard_without_a_replica_here_tells_the_client_to_drop_everything() {
    // Four nodes, three replicas of each of four shards: the fourth node lacks one shard.
    let mut cluster = Cluster::start("tracking-unheld", 3, &["--shards", "4"]);
    let fourth = cluster.add_slot("tracking-unheld");
    cluster.start_node(fourth);
    crate::rebalance::wait_held(&cluster, &[0, 1, 2, 3], 3, "after the join");
    let ports = cluster.ports();
    let mut con = crate::cluster_protocol::connect(ports[3]);
    let slots = crate::cluster_protocol::query(&mut con, &["CLUSTER", "SLOTS"]).unwrap();
    let table = crate::cluster_protocol::slot_table(&slots);
    let here = i64::from(ports[3]);
    let (first, last) = table
        .iter()
        .find(|(_, _, master, replicas)| *master != here && !replicas.contains(&here))
        .map(|(first, last, _, _)| (*first, *last))
        .expect("a shard without a replica on node 3");
    let key = (0..100_000)
        .map(|i| format!("k{i}"))
        .find(|k| {
            let slot = crate::cluster_protocol::query(&mut con, &["CLUSTER", "KEYSLOT", k]);
            (first..=last).contains(&crate::cluster_protocol::int(&slot.unwrap()))
        })
        .expect("a key in that shard");
    let mut t = tracker(ports[3], &[]);
    assert_eq!(show(&t.call(&["GET", &key])), "_\r\n");
    assert_eq!(
        show(&t.read_reply()),
        ">2\r\n$10\r\ninvalidate\r\n_\r\n",
        "a key this node cannot follow is not left cached"
    );
    assert_nothing_pushed(&mut t);
    // BCAST follows no keys it read, but the same holds for it.
    let mut b = tracker(ports[3], &["BCAST"]);
    b.call(&["GET", &key]);
    assert_eq!(show(&b.read_reply()), ">2\r\n$10\r\ninvalidate\r\n_\r\n");
    // CLIENT LIST shows tracking until RESET turns it off.
    assert!(show(&b.call(&["CLIENT", "INFO"])).contains("flags=tB "));
    b.call(&["RESET"]);
    assert!(show(&b.call(&["CLIENT", "INFO"])).contains("flags=N "));
}
