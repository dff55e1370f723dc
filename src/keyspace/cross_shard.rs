//! The records a shard keeps of cross-shard transactions: the locks it holds for prepared
//! ones, and — at a transaction's decider shard — the outcome it settled.
//!
//! Both are system records of the shard's group, written in the same batch as the entry
//! that makes them, so they are exactly as durable as that entry, every replica holds the
//! same ones, and they travel with the group's snapshots (`range`):
//! `xshard/<group>/lock/<txn>` (decider, since when, the keys) and
//! `xshard/<group>/outcome/<txn>` (opaque to the keyspace: the node encodes it).

use bytes::{BufMut, Bytes, BytesMut};

use super::{encoding, Keyspace, Result, Txn};
use crate::cluster::{ShardId, TxnId};
use crate::codec;
use crate::storage::KeyRange;

/// The locks a shard holds for one prepared transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldLocks {
    pub group: u32,
    pub txn: TxnId,
    pub decider: ShardId,
    /// The clock of the entry that took them.
    pub since_ms: u64,
    pub keys: Vec<(u8, Bytes)>,
}

fn group_prefix(group: u32) -> String {
    format!("xshard/{group:05}/")
}

fn lock_name(group: u32, txn: TxnId) -> String {
    format!("{}lock/{txn}", group_prefix(group))
}

fn outcome_name(group: u32, txn: TxnId) -> String {
    format!("{}outcome/{txn}", group_prefix(group))
}

/// The records of one kind (`lock`, `outcome`) of `group`, or every record of every group.
fn records(group: Option<u32>, kind: &str) -> KeyRange {
    let prefix = match group {
        Some(g) => format!("{}{kind}/", group_prefix(g)),
        None => "xshard/".to_string(),
    };
    KeyRange::prefix(&encoding::system_key(&prefix))
}

/// The id a record's name ends with.
fn txn_of(name: &[u8]) -> Option<TxnId> {
    let text = std::str::from_utf8(name).ok()?;
    let (node, seq) = text.rsplit('/').next()?.split_once('-')?;
    Some(TxnId {
        node: u64::from_str_radix(node, 16).ok()?,
        seq: u64::from_str_radix(seq, 16).ok()?,
    })
}

fn group_of(name: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(name).ok()?;
    text.strip_prefix("xshard/")?
        .split('/')
        .next()?
        .parse()
        .ok()
}

fn encode_locks(locks: &HeldLocks) -> Bytes {
    let mut out = BytesMut::new();
    out.put_u16(locks.decider.0);
    out.put_u64(locks.since_ms);
    out.put_u32(locks.keys.len() as u32);
    for (db, key) in &locks.keys {
        out.put_u8(*db);
        codec::put_bytes(&mut out, key);
    }
    out.freeze()
}

fn decode_locks(group: u32, txn: TxnId, mut raw: Bytes) -> Option<HeldLocks> {
    let raw = &mut raw;
    let decider = ShardId(codec::get_u16(raw).ok()?);
    let since_ms = codec::get_u64(raw).ok()?;
    let count = codec::get_u32(raw).ok()?;
    let mut keys = Vec::with_capacity(count.min(1024) as usize);
    for _ in 0..count {
        let db = codec::get_u8(raw).ok()?;
        keys.push((db, codec::get_bytes(raw).ok()?));
    }
    Some(HeldLocks {
        group,
        txn,
        decider,
        since_ms,
        keys,
    })
}

impl Txn<'_> {
    pub fn put_locks(&mut self, locks: &HeldLocks) {
        self.put_system(&lock_name(locks.group, locks.txn), encode_locks(locks));
    }

    pub fn delete_locks(&mut self, group: u32, txn: TxnId) {
        let name = lock_name(group, txn);
        self.delete_system_range(&name, &format!("{name}\0"));
    }

    pub fn put_outcome(&mut self, group: u32, txn: TxnId, outcome: Bytes) {
        self.put_system(&outcome_name(group, txn), outcome);
    }

    pub fn delete_outcome(&mut self, group: u32, txn: TxnId) {
        let name = outcome_name(group, txn);
        self.delete_system_range(&name, &format!("{name}\0"));
    }
}

impl Keyspace {
    /// The locks held for prepared transactions by `group`, or by every group.
    pub fn held_locks(&self, group: Option<u32>) -> Result<Vec<HeldLocks>> {
        let range = records(group, "lock");
        let rows = self.engine.scan(&range, false, usize::MAX)?;
        Ok(rows
            .into_iter()
            .filter(|(k, _)| k[1..].windows(6).any(|w| w == b"/lock/"))
            .filter_map(|(k, v)| decode_locks(group_of(&k[1..])?, txn_of(&k[1..])?, v))
            .collect())
    }

    /// The outcome `group` recorded for `txn`, as the node encoded it.
    pub fn outcome(&self, group: u32, txn: TxnId) -> Result<Option<Bytes>> {
        self.get_system(&outcome_name(group, txn))
    }

    /// Every outcome `group` keeps, with its transaction.
    pub fn outcomes(&self, group: u32) -> Result<Vec<(TxnId, Bytes)>> {
        let rows = self
            .engine
            .scan(&records(Some(group), "outcome"), false, usize::MAX)?;
        Ok(rows
            .into_iter()
            .filter_map(|(k, v)| Some((txn_of(&k[1..])?, v)))
            .collect())
    }

    /// The range of `group`'s cross-shard records (part of its snapshots).
    pub fn cross_shard_range(group: u32) -> KeyRange {
        KeyRange::prefix(&encoding::system_key(&group_prefix(group)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_name_their_group_and_transaction_and_round_trip() {
        let txn = TxnId {
            node: 0xabc,
            seq: 42,
        };
        let locks = HeldLocks {
            group: 7,
            txn,
            decider: ShardId(2),
            since_ms: 99,
            keys: vec![(0, Bytes::from("a")), (3, Bytes::from("bb"))],
        };
        let name = lock_name(7, txn);
        assert_eq!(txn_of(name.as_bytes()), Some(txn));
        assert_eq!(group_of(name.as_bytes()), Some(7));
        assert_eq!(
            decode_locks(7, txn, encode_locks(&locks)),
            Some(locks.clone())
        );
        let raw = encode_locks(&locks);
        for cut in 0..raw.len() {
            assert_eq!(decode_locks(7, txn, raw.slice(..cut)), None);
        }
        // A group's records sort inside its range, apart from its neighbours'.
        let prefix = encoding::system_key(&group_prefix(7));
        assert!(encoding::system_key(&name).starts_with(&prefix));
        assert!(!encoding::system_key(&lock_name(70, txn)).starts_with(&prefix));
        assert!(!encoding::system_key(&outcome_name(700, txn)).starts_with(&prefix));
    }
}
