//! Node-to-node messages: protobuf via prost structs annotated by hand (no protoc).
//!
//! Tags are never reused: a newer node adds fields and variants with new tags, an older node
//! skips what it does not know, so nodes of neighbouring versions talk during a rolling
//! upgrade. Raft payloads travel as opaque bytes in Basalt's own layout (see the `raft`
//! module of the server), so the wire format does not follow openraft's types.
//!
//! A connection starts with a handshake: the dialling side sends a [`Hello`] with a fresh
//! nonce; the other answers with its own `Hello`, whose proof shows it holds the cluster
//! secret (an HMAC over both nonces); the dialling side sends its [`Proof`] in turn, and the
//! other answers [`Admitted`] (with a refusal's reason, or none). Then the dialling side
//! sends [`Request`]s and the other answers each with a [`Response`] of the same `id`, in
//! any order (requests are served concurrently).

use bytes::Bytes;

/// The first message each side sends.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Hello {
    #[prost(uint32, tag = "1")]
    pub protocol_version: u32,
    #[prost(uint64, tag = "2")]
    pub node_id: u64,
    /// Where this node accepts node-to-node connections.
    #[prost(string, tag = "3")]
    pub cluster_addr: String,
    /// Random bytes the other side's proof must cover (fresh for every connection).
    #[prost(bytes = "bytes", tag = "4")]
    pub nonce: Bytes,
    /// In the answering side's `Hello`: its proof over both nonces (empty without a
    /// cluster secret).
    #[prost(bytes = "bytes", tag = "5")]
    pub proof: Bytes,
}

/// The dialling side's proof over both nonces (empty without a cluster secret).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Proof {
    #[prost(bytes = "bytes", tag = "1")]
    pub proof: Bytes,
}

/// The end of the handshake: admitted when `refusal` is empty; else why not (the
/// connection then closes).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Admitted {
    #[prost(string, tag = "1")]
    pub refusal: String,
}

/// Which Raft RPC a [`RaftRpc`] carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, prost::Enumeration)]
#[repr(i32)]
pub enum RaftKind {
    Unknown = 0,
    AppendEntries = 1,
    Vote = 2,
    PreVote = 3,
    TransferLeader = 4,
    /// One chunk of a streamed snapshot (see `SnapshotChunk`).
    Snapshot = 5,
}

/// A Raft RPC for one group.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RaftRpc {
    #[prost(uint32, tag = "1")]
    pub group: u32,
    #[prost(enumeration = "RaftKind", tag = "2")]
    pub kind: i32,
    #[prost(bytes = "bytes", tag = "3")]
    pub payload: Bytes,
}

/// A piece of a snapshot being sent to a follower. The first chunk of a transfer carries
/// the snapshot's meta; the last has `done` set, after which the follower installs it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SnapshotChunk {
    /// Identifies one transfer (chosen by the sender).
    #[prost(uint64, tag = "1")]
    pub transfer: u64,
    /// The leader's vote, in Basalt's vote layout.
    #[prost(bytes = "bytes", tag = "2")]
    pub vote: Bytes,
    /// The snapshot's meta (first chunk only).
    #[prost(bytes = "bytes", tag = "3")]
    pub meta: Bytes,
    /// Records: `(key_len:u32 | key | value_len:u32 | value)*`.
    #[prost(bytes = "bytes", tag = "4")]
    pub records: Bytes,
    #[prost(bool, tag = "5")]
    pub done: bool,
    /// The group the snapshot is of.
    #[prost(uint32, tag = "6")]
    pub group: u32,
}

/// Asks the leader of a group for the log index a linearizable read must see (ReadIndex,
/// confirmed with a quorum): a replica serving a READONLY read applies up to it first; a
/// node about to drop a replica its map no longer lists applies group 0's first.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReadIndex {
    #[prost(uint32, tag = "1")]
    pub group: u32,
}

/// A client command to run on the receiving node (the leader of its shard), as argv.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Forward {
    #[prost(uint32, tag = "1")]
    pub db: u32,
    #[prost(bytes = "bytes", repeated, tag = "2")]
    pub args: Vec<Bytes>,
    /// The client speaks RESP3 (the reply is encoded for it).
    #[prost(bool, tag = "3")]
    pub resp3: bool,
    /// The forwarding node and its client, when the client's writes must name it (0: not).
    #[prost(uint64, tag = "4")]
    pub origin_node: u64,
    #[prost(uint64, tag = "5")]
    pub origin_client: u64,
    /// How many nodes have forwarded the command so far (1 from the client's node): a
    /// node passes a command on only while this is below the limit.
    #[prost(uint32, tag = "6")]
    pub hops: u32,
}

/// One command's arguments.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Args {
    #[prost(bytes = "bytes", repeated, tag = "1")]
    pub args: Vec<Bytes>,
}

/// Consecutive commands of one client pipeline for shards the receiving node leads, run
/// there in order (as that node runs a pipeline of its own clients).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ForwardBatch {
    #[prost(uint32, tag = "1")]
    pub db: u32,
    #[prost(bool, tag = "2")]
    pub resp3: bool,
    #[prost(message, repeated, tag = "3")]
    pub commands: Vec<Args>,
    /// As `Forward`'s.
    #[prost(uint64, tag = "4")]
    pub origin_node: u64,
    #[prost(uint64, tag = "5")]
    pub origin_client: u64,
    /// A forwarded MULTI/EXEC's watched keys as the forwarding node saw them: EXEC aborts
    /// if one has changed since.
    #[prost(message, repeated, tag = "6")]
    pub watched: Vec<WatchedKey>,
    /// As [`Forward::hops`].
    #[prost(uint32, tag = "7")]
    pub hops: u32,
}

/// Watched keys (see `Revisions`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct WatchedKeys {
    #[prost(message, repeated, tag = "1")]
    pub keys: Vec<WatchedKey>,
}

/// A watched key's state where it was watched.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WatchedKey {
    #[prost(uint32, tag = "1")]
    pub db: u32,
    #[prost(bytes = "bytes", tag = "2")]
    pub key: Bytes,
    /// The key's revision (0: no such key).
    #[prost(uint64, tag = "3")]
    pub revision: u64,
    /// The key had already expired when watched (its expiry then does not count).
    #[prost(bool, tag = "4")]
    pub expired_when_watched: bool,
}

/// The replies to a forwarded batch, in order, each RESP-encoded for the client.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Replies {
    #[prost(bytes = "bytes", repeated, tag = "1")]
    pub replies: Vec<Bytes>,
}

/// A write entry (Basalt's entry layout) for the receiving node to propose to `group`,
/// which it leads.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Propose {
    #[prost(uint32, tag = "1")]
    pub group: u32,
    #[prost(bytes = "bytes", tag = "2")]
    pub entry: Bytes,
}

/// Node ids (a group's voters after a membership change).
#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeIds {
    #[prost(uint64, repeated, tag = "1")]
    pub ids: Vec<u64>,
}

/// A node asks to join the cluster.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Join {
    #[prost(uint64, tag = "1")]
    pub node_id: u64,
    #[prost(string, tag = "2")]
    pub client_addr: String,
    #[prost(string, tag = "3")]
    pub cluster_addr: String,
}

/// Asks the leader of `group` to change its members: `add` becomes a voter (learner,
/// catch up, promote), then `remove` (a node id, 0 for none) leaves the group. The answer
/// is the group's voters (with neither, a question about them).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ChangeReplicas {
    #[prost(uint32, tag = "1")]
    pub group: u32,
    #[prost(message, optional, tag = "2")]
    pub add: Option<Join>,
    #[prost(uint64, tag = "3")]
    pub remove: u64,
}

/// A change to the cluster map, for the leader of the metadata group to propose: the
/// change as an argument list (Basalt's metadata op layout).
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetaChange {
    #[prost(bytes = "bytes", repeated, tag = "1")]
    pub args: Vec<Bytes>,
}

/// A leader's word that its group is idle: every member holds and has committed the log up
/// to `index`, so no timer needs to run until something changes. A member that follows
/// `leader` in `term` and is at `index` stops its timers and answers `Done(true)`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Quiesce {
    #[prost(uint32, tag = "1")]
    pub group: u32,
    #[prost(uint64, tag = "2")]
    pub leader: u64,
    #[prost(uint64, tag = "3")]
    pub term: u64,
    #[prost(uint64, tag = "4")]
    pub index: u64,
}

/// Whether the receiving node is up (answered `Done(true)`): members of quiesced groups
/// watch their leaders' nodes this way instead of through each group's heartbeats.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Ping {}

/// A message published on a node (PUBLISH, or SPUBLISH when `sharded`), for the
/// receiving node's subscribers.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Published {
    #[prost(bool, tag = "1")]
    pub sharded: bool,
    #[prost(bytes = "bytes", tag = "2")]
    pub channel: Bytes,
    #[prost(bytes = "bytes", tag = "3")]
    pub payload: Bytes,
}

/// Published messages, in the order they were published on the sending node.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Publish {
    #[prost(message, repeated, tag = "1")]
    pub messages: Vec<Published>,
}

/// WAIT's question to a shard's leader, and its answer: the log index to hold (0 in a
/// question: the leader's applied index) and how many replicas other than the leader hold
/// it (0 in a question).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Holding {
    #[prost(uint32, tag = "1")]
    pub group: u32,
    #[prost(uint64, tag = "2")]
    pub index: u64,
    #[prost(uint32, tag = "3")]
    pub replicas: u32,
}

/// CLUSTER FAILOVER on node `to`: the receiving node drops its own failover pin of
/// `group` and, if it leads the group, hands its leadership to `to` (one of the group's
/// voters). With `reclaim`, `to` is asking back a leadership an election took from it
/// after its own failover: a receiver whose failover pinned the group since refuses.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HandOver {
    #[prost(uint32, tag = "1")]
    pub group: u32,
    #[prost(uint64, tag = "2")]
    pub to: u64,
    #[prost(bool, tag = "3")]
    pub reclaim: bool,
}

/// A connection from `host` (4 bytes for IPv4, 16 for IPv6) asked the sending node for the
/// cluster's layout: that host runs a cluster client.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ClusterClientHost {
    #[prost(bytes = "bytes", tag = "1")]
    pub host: Bytes,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Request {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(
        oneof = "request::Body",
        tags = "2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17"
    )]
    pub body: Option<request::Body>,
}

pub mod request {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Body {
        #[prost(message, tag = "2")]
        Raft(super::RaftRpc),
        #[prost(message, tag = "3")]
        Forward(super::Forward),
        #[prost(message, tag = "4")]
        Join(super::Join),
        #[prost(message, tag = "5")]
        ChangeReplicas(super::ChangeReplicas),
        #[prost(message, tag = "6")]
        Snapshot(super::SnapshotChunk),
        #[prost(message, tag = "7")]
        MetaChange(super::MetaChange),
        #[prost(message, tag = "8")]
        ForwardBatch(super::ForwardBatch),
        #[prost(message, tag = "9")]
        Propose(super::Propose),
        #[prost(message, tag = "10")]
        Quiesce(super::Quiesce),
        #[prost(message, tag = "11")]
        Ping(super::Ping),
        #[prost(message, tag = "12")]
        ReadIndex(super::ReadIndex),
        #[prost(message, tag = "13")]
        Publish(super::Publish),
        #[prost(message, tag = "14")]
        Holding(super::Holding),
        #[prost(message, tag = "15")]
        HandOver(super::HandOver),
        /// The revisions of keys of shards the receiving node leads (WATCH on a node that
        /// forwards its transactions there): answered with `Watched`.
        #[prost(message, tag = "16")]
        Revisions(super::WatchedKeys),
        #[prost(message, tag = "17")]
        ClusterClientHost(super::ClusterClientHost),
    }
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Response {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(oneof = "response::Body", tags = "2, 3, 4, 5, 6, 7, 8, 9, 10")]
    pub body: Option<response::Body>,
}

pub mod response {
    use bytes::Bytes;

    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Body {
        /// A Raft RPC's reply, in Basalt's layout.
        #[prost(bytes = "bytes", tag = "2")]
        Raft(Bytes),
        /// A forwarded command's reply, RESP-encoded as the client will receive it.
        #[prost(bytes = "bytes", tag = "3")]
        Reply(Bytes),
        /// The request was carried out (join, add replica, a snapshot chunk stored).
        #[prost(bool, tag = "4")]
        Done(bool),
        /// The request failed; the text says why.
        #[prost(string, tag = "5")]
        Error(String),
        /// A forwarded batch's replies.
        #[prost(message, tag = "6")]
        Replies(super::Replies),
        /// A group's voters after a membership change.
        #[prost(message, tag = "7")]
        Voters(super::NodeIds),
        /// A log index (the answer to a ReadIndex).
        #[prost(uint64, tag = "8")]
        Index(u64),
        /// The answer to a `Holding` question.
        #[prost(message, tag = "9")]
        Holding(super::Holding),
        /// The keys asked about (`Revisions`), with their revisions and expiry now.
        #[prost(message, tag = "10")]
        Watched(super::WatchedKeys),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn requests_round_trip_and_unknown_fields_are_skipped() {
        let req = Request {
            id: 7,
            body: Some(request::Body::Raft(RaftRpc {
                group: 3,
                kind: RaftKind::Vote as i32,
                payload: Bytes::from_static(b"\x01\x02"),
            })),
        };
        let raw = req.encode_to_vec();
        assert_eq!(Request::decode(&raw[..]).unwrap(), req);
        // A newer sender's extra field (tag 30, varint) is ignored by this reader.
        let mut newer = raw.clone();
        newer.extend_from_slice(&[0xf0, 0x01, 42]);
        assert_eq!(Request::decode(&newer[..]).unwrap(), req);
        // An unknown body variant decodes as no body rather than failing.
        let unknown = [8, 9, 0xf2, 0x01, 0]; // id 9, tag 30 length-delimited, empty
        assert_eq!(Request::decode(&unknown[..]).unwrap().body, None);
    }

    #[test]
    fn every_body_kind_round_trips() {
        // A variant missing from the oneof's tag list decodes as no body: each must come back.
        let bodies = [
            request::Body::Ping(Ping {}),
            request::Body::ReadIndex(ReadIndex { group: 2 }),
            request::Body::Publish(Publish {
                messages: vec![Published {
                    sharded: true,
                    channel: Bytes::from_static(b"c"),
                    payload: Bytes::from_static(b"p"),
                }],
            }),
            request::Body::Holding(Holding {
                group: 3,
                index: 9,
                replicas: 0,
            }),
            request::Body::HandOver(HandOver {
                group: 4,
                to: 5,
                reclaim: true,
            }),
            request::Body::ClusterClientHost(ClusterClientHost {
                host: Bytes::from_static(&[127, 0, 0, 1]),
            }),
        ];
        for body in bodies {
            let req = Request {
                id: 1,
                body: Some(body),
            };
            assert_eq!(Request::decode(&req.encode_to_vec()[..]).unwrap(), req);
        }
        let answers = [
            response::Body::Index(3),
            response::Body::Holding(Holding {
                group: 1,
                index: 2,
                replicas: 3,
            }),
        ];
        for body in answers {
            let resp = Response {
                id: 1,
                body: Some(body),
            };
            assert_eq!(Response::decode(&resp.encode_to_vec()[..]).unwrap(), resp);
        }
    }
}
