//! Pub/sub across processes: messages published on one node reach subscribers on every
//! node of a cluster, each once and in publish order; on one node, 2,000 subscribers all
//! receive while a subscriber that stops reading is cut by
//! `client-output-buffer-limit pubsub` and the publisher never waits for it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cluster::Cluster;
use crate::support::{encode_command, show, start_basalt, Client};

fn send(c: &mut Client, cmd: &[&str]) {
    let args: Vec<&[u8]> = cmd.iter().map(|a| a.as_bytes()).collect();
    c.send_raw(&encode_command(&args));
}

/// A RESP2 array of bulk strings: how a subscriber gets a message.
fn frame(parts: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", parts.len()).into_bytes();
    for p in parts {
        out.extend(format!("${}\r\n{p}\r\n", p.len()).into_bytes());
    }
    out
}

/// `message` (or `smessage`) frame.
fn message(kind: &str, channel: &str, payload: &str) -> Vec<u8> {
    frame(&[kind, channel, payload])
}

fn pmessage(pattern: &str, channel: &str, payload: &str) -> Vec<u8> {
    frame(&["pmessage", pattern, channel, payload])
}

#[test]
fn messages_reach_subscribers_on_every_node_once_and_in_order() {
    let cluster = Cluster::start("pubsub", 3, &[]);
    let ports = cluster.ports();
    let mut subscribers = Vec::new();
    for port in &ports {
        let mut c = Client::connect(*port);
        send(&mut c, &["SUBSCRIBE", "news"]);
        c.read_reply();
        send(&mut c, &["PSUBSCRIBE", "ne*"]);
        c.read_reply();
        send(&mut c, &["SSUBSCRIBE", "{s}x"]);
        c.read_reply();
        subscribers.push(c);
    }
    // A publisher on each node in turn; each message must arrive once everywhere, in the
    // order its node published it.
    for (from, port) in ports.iter().enumerate() {
        let mut publisher = Client::connect(*port);
        for i in 0..200 {
            let payload = format!("{from}-{i}");
            assert_eq!(
                publisher.call(&["PUBLISH", "news", &payload]),
                b":2\r\n",
                "the publishing node's own subscriber (channel and pattern)"
            );
        }
        publisher.call(&["SPUBLISH", "{s}x", &format!("shard-{from}")]);
        for (at, sub) in subscribers.iter_mut().enumerate() {
            for i in 0..200 {
                let payload = format!("{from}-{i}");
                let got = sub.read_reply();
                assert_eq!(
                    show(&got),
                    show(&message("message", "news", &payload)),
                    "node {at} from node {from}"
                );
                let got = sub.read_reply();
                assert_eq!(show(&got), show(&pmessage("ne*", "news", &payload)));
            }
            let got = sub.read_reply();
            let expected = message("smessage", "{s}x", &format!("shard-{from}"));
            assert_eq!(show(&got), show(&expected), "node {at}");
        }
    }
    // Nothing more arrives: no message was delivered twice.
    for sub in subscribers.iter_mut() {
        sub.set_timeout(Duration::from_millis(300));
        assert!(sub.try_read_reply().is_err(), "an extra message arrived");
    }
}

#[test]
fn a_slow_subscriber_is_cut_while_two_thousand_others_keep_receiving() {
    let node = start_basalt(&["--client-output-buffer-limit", "pubsub 1048576 0 0"]);
    let mut many = Vec::new();
    for _ in 0..2000 {
        let mut c = node.client();
        send(&mut c, &["SUBSCRIBE", "all"]);
        many.push(c);
    }
    for c in many.iter_mut() {
        assert!(show(&c.read_reply()).contains("subscribe"));
    }
    let mut slow = node.client();
    send(&mut slow, &["SUBSCRIBE", "big"]);
    slow.read_reply();
    let mut fast = node.client();
    send(&mut fast, &["SUBSCRIBE", "big"]);
    fast.read_reply();
    let received = Arc::new(AtomicUsize::new(0));
    let reader = {
        let received = received.clone();
        std::thread::spawn(move || loop {
            let frame = fast.read_reply();
            if show(&frame).contains("done") {
                return received.load(Ordering::Relaxed);
            }
            received.fetch_add(1, Ordering::Relaxed);
        })
    };
    // 16 MB to "big", kept within 200 KB of the subscriber that reads; the one that never
    // reads is cut at 1 MB pending (past what the kernel buffers), and the publisher never
    // waits for it.
    let mut publisher = node.client();
    let payload = "x".repeat(20_000);
    for sent in 0..800usize {
        let deadline = Instant::now() + Duration::from_secs(30);
        while sent > received.load(Ordering::Relaxed) + 10 {
            assert!(Instant::now() < deadline, "the reading subscriber stalled");
            std::thread::sleep(Duration::from_millis(1));
        }
        publisher.call(&["PUBLISH", "big", &payload]);
    }
    publisher.call(&["PUBLISH", "big", "done"]);
    assert_eq!(
        reader.join().unwrap(),
        800,
        "the reading subscriber got every message"
    );
    // The slow subscriber's connection is closed (after what the kernel buffered).
    slow.set_timeout(Duration::from_secs(10));
    let mut closed = false;
    for _ in 0..10_000 {
        if slow.try_read_reply().is_err() {
            closed = true;
            break;
        }
    }
    assert!(closed, "the slow subscriber was not cut");
    // The 2,000 others all receive.
    for i in 0..20 {
        publisher.call(&["PUBLISH", "all", &format!("m{i}")]);
    }
    for c in many.iter_mut() {
        for i in 0..20 {
            assert_eq!(
                show(&c.read_reply()),
                show(&message("message", "all", &format!("m{i}")))
            );
        }
    }
    let info = show(&publisher.call(&["INFO", "stats"]));
    // "big" went with its subscribers (one cut, one gone with its thread).
    assert!(info.contains("pubsub_channels:1\r\n"), "{info}");
}

/// Keyspace notifications come from the node that applies a write as its shard's leader:
/// a subscriber on one node gets every event once, whichever node leads the key's shard
/// and whichever node took the write.
#[test]
fn keyspace_events_reach_every_node_once() {
    let cluster = Cluster::start("keyspace-events", 3, &[]);
    let ports = cluster.ports();
    for port in &ports {
        let mut c = Client::connect(*port);
        assert_eq!(
            c.call(&["CONFIG", "SET", "notify-keyspace-events", "E$x"]),
            b"+OK\r\n"
        );
    }
    let mut sub = Client::connect(ports[0]);
    send(&mut sub, &["PSUBSCRIBE", "__keyevent@0__:*"]);
    sub.read_reply();
    let mut writer = Client::connect(ports[1]);
    let keys: Vec<String> = (0..100).map(|i| format!("ev{i}")).collect();
    for k in &keys {
        assert_eq!(writer.call(&["SET", k, "v"]), b"+OK\r\n");
    }
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..keys.len() {
        let frame = show(&sub.read_reply());
        assert!(frame.contains("__keyevent@0__:set"), "{frame}");
        let key = frame.trim_end().rsplit("\r\n").next().unwrap().to_string();
        assert!(seen.insert(key.clone()), "{key} twice");
    }
    assert_eq!(seen.len(), keys.len());
    sub.set_timeout(Duration::from_millis(500));
    assert!(sub.try_read_reply().is_err(), "an event arrived twice");
}
