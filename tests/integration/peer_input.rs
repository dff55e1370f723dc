//! The cluster port is a trust boundary like the client port: requests this session added
//! (pub/sub fan-out, WAIT's question, CLUSTER FAILOVER's hand-over) and forwarded commands
//! naming groups, nodes or databases that do not exist, or bodies this node does not know,
//! get error responses; the node keeps serving.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use cluster_proto::messages::{
    ClusterClientHost, Forward, HandOver, Holding, Publish, Published, WatchedKey, WatchedKeys,
};
use cluster_proto::{
    decode_frame, encode_frame, request, response, Hello, Message, Request, Response,
};

use crate::support::{free_port, start_basalt};

struct Peer {
    stream: TcpStream,
    buf: BytesMut,
}

impl Peer {
    fn connect(port: u16) -> Peer {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut peer = Peer {
            stream,
            buf: BytesMut::new(),
        };
        let hello = Hello {
            protocol_version: cluster_proto::PROTOCOL_VERSION,
            node_id: 424242,
            cluster_addr: "127.0.0.1:1".into(),
        };
        peer.send(&hello.encode_to_vec());
        Hello::decode(peer.frame()).expect("the node's hello");
        peer
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
