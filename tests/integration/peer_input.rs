//! The cluster port is a trust boundary like the client port: requests this session added
//! (pub/sub fan-out, WAIT's question, CLUSTER FAILOVER's hand-over) and forwarded commands
//! naming groups, nodes or databases that do not exist, or bodies this node does not know,
//! get error responses; the node keeps serving.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use basalt::raft::{Entry, EntryOp};
use basalt::transport::handshake::Credentials;
use bytes::{Bytes, BytesMut};
use cluster_proto::messages::{Args, ForwardBatch, Propose};
use cluster_proto::messages::{
    ClusterClientHost, Forward, HandOver, Holding, Publish, Published, WatchedKey, WatchedKeys,
};
use cluster_proto::{
    decode_frame, encode_frame, request, response, Admitted, Hello, Message, Proof, Request,
    Response,
};

use crate::cluster::Cluster;
use crate::support::{free_port, start_basalt};

struct Peer {
    stream: TcpStream,
    buf: BytesMut,
}

impl Peer {
    /// A peer through the handshake of a node without a cluster secret.
    fn connect(port: u16) -> Peer {
        let (peer, admitted) = Peer::handshake(port, "");
        assert!(admitted.refusal.is_empty(), "{}", admitted.refusal);
        peer
    }

    /// Opens a connection and goes through the handshake proving `secret` (or nothing);
    /// the peer and the node's last word.
    fn handshake(port: u16, secret: &str) -> (Peer, Admitted) {
        let mut peer = Peer::open(port);
        let nonce = Bytes::from_static(b"0123456789abcdef");
        let hello = Hello {
            protocol_version: cluster_proto::PROTOCOL_VERSION,
            node_id: 424242,
            cluster_addr: "127.0.0.1:1".into(),
            nonce: nonce.clone(),
            proof: Bytes::new(),
        };
        peer.send(&hello.encode_to_vec());
        let theirs = Hello::decode(peer.frame()).expect("the node's hello");
        // The node proves itself first (an HMAC-SHA256; empty without a secret).
        assert!(matches!(theirs.proof.len(), 0 | 32), "{theirs:?}");
        let proof = Credentials::new(secret).dialler_proof(&theirs, &nonce, hello.node_id);
        peer.send(&Proof { proof }.encode_to_vec());
        let admitted = Admitted::decode(peer.frame()).expect("the node's answer");
        (peer, admitted)
    }

    fn open(port: u16) -> Peer {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Peer {
            stream,
            buf: BytesMut::new(),
        }
    }

    /// Whether the node closed the connection (EOF or reset).
    fn closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.stream.read(&mut byte), Ok(0) | Err(_))
    }

    fn send(&mut self, payload: &[u8]) {
        let mut out = BytesMut::new();
        encode_frame(payload, &mut out).unwrap();
        self.stream.write_all(&out).unwrap();
    }

    fn frame(&mut self) -> Bytes {
        loop {
            if let Some(frame) = decode_frame(&mut self.buf).unwrap() {
                return frame;
            }
            let mut chunk = [0u8; 65536];
            let n = self.stream.read(&mut chunk).expect("a response");
            assert!(n > 0, "the node closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Sends `body` as request `id` and returns the response's body.
    fn ask(&mut self, id: u64, body: Option<request::Body>) -> response::Body {
        self.send(&Request { id, body }.encode_to_vec());
        let resp = Response::decode(self.frame()).unwrap();
        assert_eq!(resp.id, id);
        resp.body.expect("a response body")
    }
}

fn is_error(body: &response::Body, containing: &str) -> bool {
    matches!(body, response::Body::Error(e) if e.contains(containing))
}

#[test]
fn bad_requests_on_the_cluster_port_get_errors_and_the_node_serves_on() {
    let cluster_port = free_port();
    let node = start_basalt(&["--cluster-port", &cluster_port.to_string()]);
    let mut peer = Peer::connect(cluster_port);
    let hand_over = |group, to| {
        Some(request::Body::HandOver(HandOver {
            group,
            to,
            reclaim: false,
        }))
    };
    let got = peer.ask(1, hand_over(9999, 5));
    assert!(is_error(&got, "no group 9999"), "{got:?}");
    // 65537 would be group 1 if cut to 16 bits.
    let got = peer.ask(20, hand_over(65537, 5));
    assert!(is_error(&got, "no group 65537"), "{got:?}");
    let got = peer.ask(2, hand_over(0, 5));
    assert!(is_error(&got, "no group 0"), "{got:?}");
    let got = peer.ask(3, hand_over(1, 123456));
    assert!(is_error(&got, "not a voter"), "{got:?}");
    let holding = |group| {
        Some(request::Body::Holding(Holding {
            group,
            index: 0,
            replicas: 0,
        }))
    };
    let got = peer.ask(4, holding(u32::MAX));
    assert!(is_error(&got, "no group"), "{got:?}");
    // A lone node leads group 1 and has no other replica.
    let got = peer.ask(5, holding(1));
    assert!(
        matches!(&got, response::Body::Holding(h) if h.replicas == 0),
        "{got:?}"
    );
    let got = peer.ask(6, None);
    assert!(is_error(&got, "unknown request"), "{got:?}");
    // Revisions of keys in a database this node lacks: refused; of a key it has: answered.
    let asked = |db| {
        Some(request::Body::Revisions(WatchedKeys {
            keys: vec![WatchedKey {
                db,
                key: Bytes::from_static(b"k"),
                ..WatchedKey::default()
            }],
        }))
    };
    let got = peer.ask(11, asked(u32::MAX));
    assert!(is_error(&got, "no database"), "{got:?}");
    let got = peer.ask(12, asked(0));
    assert!(
        matches!(&got, response::Body::Watched(w) if w.keys.len() == 1 && w.keys[0].revision == 0),
        "{got:?}"
    );
    // Many messages for subscribers nobody has: delivered to no one, answered.
    let messages = (0..2000)
        .map(|i| Published {
            sharded: i % 2 == 0,
            channel: Bytes::from(format!("c{i}")),
            payload: Bytes::from(vec![b'x'; 1024]),
        })
        .collect();
    let got = peer.ask(7, Some(request::Body::Publish(Publish { messages })));
    assert!(matches!(&got, response::Body::Done(true)), "{got:?}");
    // Commands forwarded into a database this node does not have (255 is past the map).
    for (id, db) in [(8, 16), (9, 255), (10, u32::MAX)] {
        let forward = Forward {
            db,
            args: vec![
                Bytes::from_static(b"SET"),
                Bytes::from_static(b"k"),
                Bytes::from_static(b"v"),
            ],
            resp3: false,
            // Any origin is only a name: it cannot make a refused command run.
            origin_node: u64::MAX,
            origin_client: 7,
            hops: 1,
        };
        let got = peer.ask(id, Some(request::Body::Forward(forward)));
        assert!(is_error(&got, "no database"), "{got:?}");
    }
    // A cluster client's host: 4 or 16 bytes; any other length is refused.
    let host = |raw: &'static [u8]| {
        Some(request::Body::ClusterClientHost(ClusterClientHost {
            host: Bytes::from_static(raw),
        }))
    };
    for (id, raw) in [(13, &b""[..]), (14, &[1, 2, 3][..]), (15, &[0; 17][..])] {
        let got = peer.ask(id, host(raw));
        assert!(is_error(&got, "4 or 16 bytes"), "{got:?}");
    }
    let got = peer.ask(16, host(&[10, 0, 0, 9]));
    assert!(matches!(&got, response::Body::Done(true)), "{got:?}");
    let mut c = node.client();
    assert_eq!(c.call(&["PING"]), b"+PONG\r\n");
}

#[test]
fn malformed_forwards_and_proposals_are_refused_in_one_place() {
    let cluster_port = free_port();
    let node = start_basalt(&["--cluster-port", &cluster_port.to_string()]);
    let mut peer = Peer::connect(cluster_port);
    let forward = |args: Vec<&'static [u8]>, hops| {
        Some(request::Body::Forward(Forward {
            db: 0,
            args: args.into_iter().map(Bytes::from_static).collect(),
            resp3: false,
            origin_node: 0,
            origin_client: 0,
            hops,
        }))
    };
    // No arguments: refused before it reaches the command table.
    let got = peer.ask(1, forward(vec![], 1));
    assert!(is_error(&got, "without arguments"), "{got:?}");
    // Hop counts outside 1..=2: a command bounced between nodes stops.
    for (id, hops) in [(2, 0), (3, 3), (4, u32::MAX)] {
        let got = peer.ask(id, forward(vec![b"SET", b"k", b"v"], hops));
        assert!(is_error(&got, "hops"), "{got:?}");
    }
    let got = peer.ask(5, forward(vec![b"SET", b"k", b"v"], 2));
    assert!(
        matches!(&got, response::Body::Reply(r) if &r[..] == b"+OK\r\n"),
        "{got:?}"
    );
    let batch = Some(request::Body::ForwardBatch(ForwardBatch {
        db: 0,
        resp3: false,
        commands: vec![
            Args {
                args: vec![Bytes::from_static(b"PING")],
            },
            Args { args: vec![] },
        ],
        hops: 1,
        ..ForwardBatch::default()
    }));
    let got = peer.ask(6, batch);
    assert!(is_error(&got, "without arguments"), "{got:?}");
    // Proposals: only slot deletes and cross-shard steps, of a shard group that exists.
    let propose = |group, entry: Entry| {
        Some(request::Body::Propose(Propose {
            group,
            entry: entry.encode(),
        }))
    };
    let set = Entry::new(
        0,
        1,
        EntryOp::Command(vec![Bytes::from_static(b"SET"), Bytes::from_static(b"k")]),
    );
    let got = peer.ask(7, propose(1, set));
    assert!(is_error(&got, "only slot deletes"), "{got:?}");
    let flush = Entry::new(0, 1, EntryOp::FlushSlots { all_dbs: true });
    // 65537 would be group 1 if cut to 16 bits; 0 is the map group.
    for (id, group) in [(8, 65537), (9, 0), (10, u32::MAX)] {
        let got = peer.ask(id, propose(group, flush.clone()));
        assert!(is_error(&got, "no shard group"), "{got:?}");
    }
    let in_db = |db| Entry::new(db, 1, EntryOp::FlushSlots { all_dbs: false });
    let got = peer.ask(11, propose(1, in_db(200)));
    assert!(is_error(&got, "no database"), "{got:?}");
    let mut raw = Request {
        id: 12,
        body: propose(1, flush.clone()),
    };
    if let Some(request::Body::Propose(p)) = &mut raw.body {
        p.entry = Bytes::from_static(&[0xff, 0x01]);
    }
    peer.send(&raw.encode_to_vec());
    let resp = Response::decode(peer.frame()).unwrap();
    assert!(
        matches!(resp.body, Some(response::Body::Error(_))),
        "{resp:?}"
    );
    let mut c = node.client();
    assert_eq!(c.call(&["GET", "k"]), b"$1\r\nv\r\n");
}

#[test]
fn a_peer_without_the_cluster_secret_is_refused_and_changes_nothing() {
    let cluster_port = free_port();
    let node = start_basalt(&[
        "--cluster-port",
        &cluster_port.to_string(),
        "--cluster-secret",
        "correct horse",
    ]);
    let mut c = node.client();
    assert_eq!(c.call(&["SET", "k", "v"]), b"+OK\r\n");
    // No secret, or the wrong one: told so, and the connection closes.
    for secret in ["", "battery staple"] {
        let (mut peer, admitted) = Peer::handshake(cluster_port, secret);
        assert!(
            admitted.refusal.contains("authentication failed"),
            "{secret:?}: {admitted:?}"
        );
        assert!(peer.closed(), "{secret:?}");
    }
    // A request in place of a Hello: the connection closes, nothing runs.
    let mut peer = Peer::open(cluster_port);
    let del = Request {
        id: 1,
        body: Some(request::Body::Forward(Forward {
            db: 0,
            args: vec![Bytes::from_static(b"DEL"), Bytes::from_static(b"k")],
            resp3: false,
            origin_node: 0,
            origin_client: 0,
            hops: 1,
        })),
    };
    peer.send(&del.encode_to_vec());
    assert!(peer.closed());
    // A frame header claiming 64 MiB before the handshake: refused from the header.
    let mut peer = Peer::open(cluster_port);
    peer.stream.write_all(&[0x04, 0, 0, 0, 0, 0, 0, 0]).unwrap();
    assert!(peer.closed());
    // The same secret: admitted and served.
    let (mut peer, admitted) = Peer::handshake(cluster_port, "correct horse");
    assert!(admitted.refusal.is_empty(), "{admitted:?}");
    let got = peer.ask(2, Some(request::Body::Ping(Default::default())));
    assert!(matches!(got, response::Body::Done(true)), "{got:?}");
    assert_eq!(c.call(&["GET", "k"]), b"$1\r\nv\r\n");
}

#[test]
fn nodes_with_the_same_secret_form_a_cluster_and_a_node_without_it_cannot_join() {
    let secret = ["--cluster-secret", "s3cret"];
    let cluster = crate::cluster::Cluster::start("secret", 3, &secret);
    // Writes through every node: the two not leading a key's shard forward it, over
    // authenticated connections.
    for (i, port) in cluster.ports().into_iter().enumerate() {
        let mut c = crate::support::Client::connect(port);
        for k in 0..20 {
            let key = format!("k{i}-{k}");
            assert_eq!(
                c.call(&["SET", &key, "v"]),
                b"+OK\r\n",
                "{key} via node {i}"
            );
        }
    }
    let nodes = |port| {
        let mut c = crate::support::Client::connect(port);
        let text = crate::support::show(&c.call(&["CLUSTER", "NODES"]));
        // The bulk's header line, then one line per node.
        text.lines()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .count()
    };
    let first = cluster.ports()[0];
    assert_eq!(nodes(first), 3);
    // A fourth node with another secret asks to join: refused at every connection.
    let join = format!("127.0.0.1:{first}");
    let intruder = start_basalt(&[
        "--cluster-port",
        &free_port().to_string(),
        "--cluster-secret",
        "guess",
        "--join",
        &join,
    ]);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(nodes(first), 3, "the intruder joined");
    let mut c = crate::support::Client::connect(first);
    assert_eq!(c.call(&["GET", "k2-19"]), b"$1\r\nv\r\n");
    drop(intruder);
}

/// A command that arrives already forwarded once, at a node that does not lead its shard,
/// is answered TRYAGAIN instead of travelling a third time; forwarded once less, the node
/// passes it on to the leader and it runs.
#[test]
fn a_forward_at_its_hop_limit_stops_at_a_node_that_does_not_lead() {
    let cluster = Cluster::start("hops", 2, &["--shards", "4"]);
    let ports = cluster.ports();
    let mut leader = crate::support::Client::connect(ports[1]);
    assert_eq!(
        crate::support::show(&leader.call(&["CLUSTER", "FAILOVER"])),
        "+OK\r\n"
    );
    let mut peer = Peer::connect(cluster.cluster_port(0));
    let forward = |key: String, hops| {
        Some(request::Body::Forward(Forward {
            db: 0,
            args: vec![
                Bytes::from_static(b"SET"),
                Bytes::from(key),
                Bytes::from_static(b"v"),
            ],
            resp3: false,
            origin_node: 0,
            origin_client: 0,
            hops,
        }))
    };
    // Node 1 takes every leadership (the failover above); until then node 0 may still lead
    // some shards and run the command itself.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut id = 1;
    for k in 0..16 {
        let key = format!("hop:{k}");
        loop {
            id += 1;
            let got = peer.ask(id, forward(key.clone(), 2));
            if matches!(&got, response::Body::Reply(r) if r.starts_with(b"-TRYAGAIN")) {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{key}: {got:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
        id += 1;
        let got = peer.ask(id, forward(key.clone(), 1));
        assert!(
            matches!(&got, response::Body::Reply(r) if &r[..] == b"+OK\r\n"),
            "{key}: {got:?}"
        );
    }
}
