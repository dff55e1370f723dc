//! openraft's type configuration for Basalt, and the mapping of openraft's types to our
//! own byte layouts (never openraft's serde layout), so the log, the vote file and the wire
//! keep a format we own across openraft upgrades.
//!
//! ## Format
//! A log entry: `version:u8 (1) | term:u64 | leader:u64 | index:u64 | kind:u8 | body`,
//! integers big-endian; kind 0 = blank, 1 = normal (body: the write entry, `entry.rs`),
//! 2 = membership (body: `configs:u32 | (ids:u32 | id:u64*)* | nodes:u32 |
//! (id:u64 | client_len:u32 | client | cluster_len:u32 | cluster)*`).
//! A vote: `version:u8 (1) | term:u64 | node:u64 | committed:u8`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use openraft::{EntryPayload, Membership};

use super::Entry as WriteEntry;
pub use crate::cluster::NodeInfo;
pub use crate::codec::CodecError;
pub(super) use crate::codec::{
    get_bytes, get_count, get_string, get_u32, get_u64, get_u8, need, put_bytes, put_string,
};

/// What applying an entry answers its proposer. The raft layer carries it and never looks
/// inside: the [`Applier`](super::Applier) decides what it holds (the node puts a client's
/// reply there, or the cluster map's new epoch).
pub struct Applied(Box<dyn std::any::Any + Send + Sync>);

impl Applied {
    pub fn new<T: std::any::Any + Send + Sync>(value: T) -> Applied {
        Applied(Box::new(value))
    }

    /// No answer (blank and membership entries).
    pub fn none() -> Applied {
        Applied::new(())
    }

    /// The answer, if it is a `T`.
    pub fn take<T: std::any::Any>(self) -> Option<T> {
        self.0.downcast::<T>().ok().map(|b| *b)
    }
}

/// What applying a change to the cluster map answers: the map's new epoch.
pub struct MapEpoch(pub u64);

impl fmt::Debug for Applied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Applied")
    }
}

impl fmt::Display for WriteEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.op {
            super::EntryOp::Command(args) => {
                let name = args
                    .first()
                    .map(|a| String::from_utf8_lossy(a))
                    .unwrap_or_default();
                write!(f, "db{} {} ({} args)", self.db, name, args.len())
            }
            super::EntryOp::Expire(keys) => write!(f, "db{} expire {} keys", self.db, keys.len()),
            super::EntryOp::Batch(commands) => {
                write!(f, "db{} batch of {} commands", self.db, commands.len())
            }
            super::EntryOp::Transaction(commands) => {
                write!(f, "db{} transaction of {} writes", self.db, commands.len())
            }
            super::EntryOp::CrossShard(op) => {
                write!(f, "cross-shard transaction {} step", op.txn())
            }
            super::EntryOp::Map(op) => write!(f, "metadata {op:?}"),
            super::EntryOp::FlushSlots { all_dbs } => {
                write!(f, "db{} flush slots (all databases: {all_dbs})", self.db)
            }
        }
    }
}

openraft::declare_raft_types!(
    /// Basalt's openraft types: write entries in, what their apply answered out, u64 node ids.
    pub TypeConfig:
        D = WriteEntry,
        R = Applied,
        NodeId = u64,
        Node = NodeInfo,
);

pub type RaftEntry = openraft::Entry<
    <<TypeConfig as openraft::RaftTypeConfig>::LeaderId as openraft::vote::RaftLeaderId>::Committed,
    <TypeConfig as openraft::RaftTypeConfig>::Payload,
>;
pub type Vote = <TypeConfig as openraft::RaftTypeConfig>::Vote;
pub type LogId = openraft::LogId<
    <<TypeConfig as openraft::RaftTypeConfig>::LeaderId as openraft::vote::RaftLeaderId>::Committed,
>;

const FORMAT_VERSION: u8 = 1;

/// Reads and checks a record's leading format version.
fn check_version(raw: &mut Bytes) -> Result<(), CodecError> {
    check_version_of(raw, FORMAT_VERSION)
}

/// Reads a leading format version and checks it is `version`.
pub(super) fn check_version_of(raw: &mut Bytes, version: u8) -> Result<(), CodecError> {
    need(raw, 1)?;
    match raw.get_u8() {
        v if v == version => Ok(()),
        other => Err(CodecError::Version(other)),
    }
}

pub(super) fn encode_membership(out: &mut BytesMut, m: &Membership<u64, NodeInfo>) {
    let configs = m.get_joint_config();
    out.put_u32(configs.len() as u32);
    for config in configs {
        out.put_u32(config.len() as u32);
        for id in config {
            out.put_u64(*id);
        }
    }
    let nodes: Vec<(&u64, &NodeInfo)> = m.nodes().collect();
    out.put_u32(nodes.len() as u32);
    for (id, node) in nodes {
        out.put_u64(*id);
        put_string(out, &node.client_addr);
        put_string(out, &node.cluster_addr);
    }
}

pub(super) fn decode_membership(raw: &mut Bytes) -> Result<Membership<u64, NodeInfo>, CodecError> {
    let mut configs = Vec::new();
    for _ in 0..get_count(raw)? {
        let mut ids = BTreeSet::new();
        for _ in 0..get_count(raw)? {
            ids.insert(get_u64(raw)?);
        }
        configs.push(ids);
    }
    let mut nodes = BTreeMap::new();
    for _ in 0..get_count(raw)? {
        let id = get_u64(raw)?;
        let client_addr = get_string(raw)?;
        let cluster_addr = get_string(raw)?;
        nodes.insert(
            id,
            NodeInfo {
                client_addr,
                cluster_addr,
            },
        );
    }
    Membership::new(configs, nodes).map_err(|e| CodecError::Bad(e.to_string()))
}

/// A log entry in our layout.
pub fn encode_entry(e: &RaftEntry) -> Bytes {
    let mut out = BytesMut::with_capacity(64);
    out.put_u8(FORMAT_VERSION);
    out.put_u64(e.log_id.leader_id.term);
    out.put_u64(e.log_id.leader_id.node_id);
    out.put_u64(e.log_id.index);
    match &e.payload {
        EntryPayload::Blank => out.put_u8(0),
        EntryPayload::Normal(w) => {
            out.put_u8(1);
            out.put_slice(&w.encode());
        }
        EntryPayload::Membership(m) => {
            out.put_u8(2);
            encode_membership(&mut out, m);
        }
    }
    out.freeze()
}

pub fn decode_entry(mut raw: Bytes) -> Result<RaftEntry, CodecError> {
    check_version(&mut raw)?;
    let term = get_u64(&mut raw)?;
    let node_id = get_u64(&mut raw)?;
    let index = get_u64(&mut raw)?;
    let payload = match get_u8(&mut raw)? {
        0 => EntryPayload::Blank,
        1 => EntryPayload::Normal(
            WriteEntry::decode(raw.clone()).map_err(|e| CodecError::Bad(e.to_string()))?,
        ),
        2 => EntryPayload::Membership(decode_membership(&mut raw)?),
        k => return Err(CodecError::Kind(k)),
    };
    Ok(openraft::Entry {
        log_id: log_id(term, node_id, index),
        payload,
    })
}

/// An optional log id: `present:u8 | term:u64 | leader:u64 | index:u64`.
pub(super) fn put_log_id(out: &mut BytesMut, id: Option<&LogId>) {
    match id {
        None => out.put_u8(0),
        Some(id) => {
            out.put_u8(1);
            out.put_u64(id.leader_id.term);
            out.put_u64(id.leader_id.node_id);
            out.put_u64(id.index);
        }
    }
}

pub(super) fn get_log_id(raw: &mut Bytes) -> Result<Option<LogId>, CodecError> {
    if get_u8(raw)? == 0 {
        return Ok(None);
    }
    let term = get_u64(raw)?;
    let leader = get_u64(raw)?;
    let index = get_u64(raw)?;
    Ok(Some(log_id(term, leader, index)))
}

/// A length-prefixed byte string: `len:u32 | bytes`.
pub fn log_id(term: u64, node_id: u64, index: u64) -> LogId {
    openraft::LogId::new(
        openraft::vote::leader_id_adv::LeaderId { term, node_id },
        index,
    )
}

pub fn encode_vote(v: &Vote) -> Bytes {
    let mut out = BytesMut::with_capacity(18);
    out.put_u8(FORMAT_VERSION);
    out.put_u64(v.leader_id.term);
    out.put_u64(v.leader_id.node_id);
    out.put_u8(v.committed as u8);
    out.freeze()
}

pub fn decode_vote(mut raw: Bytes) -> Result<Vote, CodecError> {
    check_version(&mut raw)?;
    let term = get_u64(&mut raw)?;
    let node_id = get_u64(&mut raw)?;
    let committed = get_u8(&mut raw)? != 0;
    let mut vote = Vote::new(term, node_id);
    vote.committed = committed;
    Ok(vote)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_and_votes_round_trip_in_our_layout() {
        let write = WriteEntry {
            db: 3,
            now_ms: 1_700_000_000_000,
            op: super::super::EntryOp::Command(vec![Bytes::from("SET"), Bytes::from("k")]),
            // An origin trailer may be cut off whole (see `entry.rs`'s round trip).
            origin: None,
        };
        let nodes = BTreeMap::from([
            (
                1,
                NodeInfo {
                    client_addr: "127.0.0.1:6379".into(),
                    cluster_addr: "127.0.0.1:16379".into(),
                },
            ),
            (
                2,
                NodeInfo {
                    client_addr: "127.0.0.1:6380".into(),
                    cluster_addr: "127.0.0.1:16380".into(),
                },
            ),
        ]);
        let membership =
            Membership::new(vec![BTreeSet::from([1]), BTreeSet::from([1, 2])], nodes).unwrap();
        for payload in [
            EntryPayload::Blank,
            EntryPayload::Normal(write),
            EntryPayload::Membership(membership),
        ] {
            let e = openraft::Entry {
                log_id: log_id(7, 2, 42),
                payload,
            };
            let raw = encode_entry(&e);
            assert_eq!(decode_entry(raw.clone()).unwrap(), e);
            for cut in 0..raw.len() {
                assert!(decode_entry(raw.slice(..cut)).is_err(), "prefix {cut}");
            }
        }
        let mut vote = Vote::new(9, 3);
        vote.committed = true;
        assert_eq!(decode_vote(encode_vote(&vote)).unwrap(), vote);
        assert_eq!(
            decode_vote(Bytes::from_static(b"\x02")),
            Err(CodecError::Version(2))
        );
    }
}
