//! Storage: an ordered key-value engine behind a small trait.
//!
//! The keyspace stores every Redis value as sorted KV pairs through [`Engine`]: Basalt's LSM
//! engine (`lsm`, the default) or the in-memory one (`--engine memory`). This layer knows
//! nothing of Redis types.

pub mod lsm;
mod memory;
mod overlay;

pub use memory::MemoryEngine;
pub use overlay::OverlayEngine;

use bytes::Bytes;
use std::ops::Bound;

/// Errors an engine reports.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("storage is poisoned after an earlier failure: {0}")]
    Poisoned(String),
    #[error(transparent)]
    Table(#[from] lsm::sstable::TableError),
}

pub type Result<T> = std::result::Result<T, StorageError>;

/// When an engine makes writes durable, with Redis's `appendfsync` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum SyncPolicy {
    /// fsync before acknowledging each write.
    Always = 0,
    /// fsync from a background thread about once a second.
    EverySec = 1,
    /// Leave it to the operating system.
    No = 2,
}

impl SyncPolicy {
    pub fn from_appendfsync(value: &str) -> SyncPolicy {
        match value {
            "always" => SyncPolicy::Always,
            "no" => SyncPolicy::No,
            _ => SyncPolicy::EverySec,
        }
    }
}

/// One change in a write batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    Put(Bytes, Bytes),
    Delete(Bytes),
    /// Deletes every key in `[start, end)`.
    DeleteRange(Bytes, Bytes),
}

/// Changes applied atomically and in order.
#[derive(Debug, Default, Clone)]
pub struct WriteBatch {
    ops: Vec<WriteOp>,
}

impl WriteBatch {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn put(&mut self, key: impl Into<Bytes>, value: impl Into<Bytes>) {
        self.ops.push(WriteOp::Put(key.into(), value.into()));
    }
    pub fn delete(&mut self, key: impl Into<Bytes>) {
        self.ops.push(WriteOp::Delete(key.into()));
    }
    pub fn delete_range(&mut self, start: impl Into<Bytes>, end: impl Into<Bytes>) {
        self.ops
            .push(WriteOp::DeleteRange(start.into(), end.into()));
    }
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Drops every change after the first `len`.
    pub fn truncate(&mut self, len: usize) {
        self.ops.truncate(len);
    }
    pub fn len(&self) -> usize {
        self.ops.len()
    }
    pub fn ops(&self) -> &[WriteOp] {
        &self.ops
    }
    pub fn into_ops(self) -> Vec<WriteOp> {
        self.ops
    }

    /// Drops every put or delete that a later put or delete of the same key in this batch
    /// replaces. A batch becomes visible all at once, so no reader could see them; a
    /// transaction that rewrites one record per command (a list's header under a pipeline
    /// of LPUSHes) leaves one write of it instead of hundreds. Range deletes stay where
    /// they are: a point write after one still lands after it.
    pub fn drop_superseded(&mut self) {
        if self.ops.len() < SUPERSEDE_CHECK_MIN {
            return;
        }
        let keep: Vec<bool> = {
            let mut seen = ahash::AHashSet::with_capacity(self.ops.len());
            self.ops
                .iter()
                .rev()
                .map(|op| match op {
                    WriteOp::Put(key, _) | WriteOp::Delete(key) => seen.insert(&key[..]),
                    WriteOp::DeleteRange(..) => true,
                })
                .collect()
        };
        if keep.iter().all(|k| *k) {
            return;
        }
        let mut kept = keep.into_iter().rev();
        self.ops.retain(|_| kept.next().unwrap_or(true));
    }
}

/// Batches shorter than this are written as they are (a lone command's few records).
const SUPERSEDE_CHECK_MIN: usize = 8;

/// Key range for iteration.
#[derive(Debug, Clone)]
pub struct KeyRange {
    pub start: Bound<Bytes>,
    pub end: Bound<Bytes>,
}

impl KeyRange {
    /// Every key that starts with `prefix`.
    pub fn prefix(prefix: &[u8]) -> KeyRange {
        let start = Bound::Included(Bytes::copy_from_slice(prefix));
        let end = match prefix_successor(prefix) {
            Some(end) => Bound::Excluded(Bytes::from(end)),
            None => Bound::Unbounded,
        };
        KeyRange { start, end }
    }

    /// Whether no key can lie in the range (its bounds meet or cross), which ordered maps
    /// refuse to be asked about.
    pub fn is_empty(&self) -> bool {
        match (&self.start, &self.end) {
            (Bound::Included(a), Bound::Included(b)) => a > b,
            (Bound::Included(a), Bound::Excluded(b))
            | (Bound::Excluded(a), Bound::Included(b))
            | (Bound::Excluded(a), Bound::Excluded(b)) => a >= b,
            _ => false,
        }
    }

    /// `[start, end)`.
    pub fn half_open(start: impl Into<Bytes>, end: impl Into<Bytes>) -> KeyRange {
        KeyRange {
            start: Bound::Included(start.into()),
            end: Bound::Excluded(end.into()),
        }
    }
}

/// The smallest key greater than every key with this prefix, if any.
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// A consistent, read-only view of the engine at one moment.
pub trait Snapshot: Send + Sync {
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>>;
    /// Up to `limit` pairs of `range` in key order (reverse order when `reverse`).
    fn scan(&self, range: &KeyRange, reverse: bool, limit: usize) -> Result<Vec<(Bytes, Bytes)>>;
}

/// The ordered KV engine the keyspace runs on.
pub trait Engine: Send + Sync {
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>>;
    /// Point reads of several keys, all from one consistent state.
    fn multi_get(&self, keys: &[Bytes]) -> Result<Vec<Option<Bytes>>>;
    fn write(&self, batch: WriteBatch) -> Result<()>;
    fn snapshot(&self) -> Box<dyn Snapshot>;
    /// Up to `limit` pairs of `range` in key order, read from the current state.
    fn scan(&self, range: &KeyRange, reverse: bool, limit: usize) -> Result<Vec<(Bytes, Bytes)>> {
        self.snapshot().scan(range, reverse, limit)
    }
    /// Makes everything written so far durable (a no-op for the memory engine).
    fn flush(&self) -> Result<()>;
    /// Whether a write now would wait for background work (flushes, compactions) to catch
    /// up (a caller on an async thread may then move the write off it).
    fn write_stalled(&self) -> bool {
        false
    }
    /// Approximate bytes held in memory by keys and values.
    fn memory_bytes(&self) -> u64;
    /// Hands every acknowledged-to-be write to the operating system; called before replies
    /// are sent, so a crash of the process never loses a write a client saw acknowledged.
    fn commit_barrier(&self) -> Result<()> {
        Ok(())
    }
    /// Changes when writes are made durable (`appendfsync always|everysec|no`).
    fn set_sync_policy(&self, _policy: SyncPolicy) {}
    /// `name:value` lines for INFO's storage section.
    fn info(&self) -> Vec<(String, String)> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_keeps_only_the_last_write_of_each_key_and_every_range_delete() {
        let mut batch = WriteBatch::new();
        for i in 0..10u8 {
            batch.put(Bytes::from_static(b"header"), Bytes::from(vec![i]));
            batch.put(Bytes::from(vec![b'e', i]), Bytes::from_static(b"x"));
        }
        batch.delete(Bytes::from_static(b"gone"));
        batch.delete_range(Bytes::from_static(b"a"), Bytes::from_static(b"z"));
        batch.put(Bytes::from_static(b"gone"), Bytes::from_static(b"back"));
        batch.delete(Bytes::from_static(b"e\x03"));
        batch.drop_superseded();
        let ops = batch.into_ops();
        let key = |op: &WriteOp| match op {
            WriteOp::Put(k, _) | WriteOp::Delete(k) | WriteOp::DeleteRange(k, _) => k.clone(),
        };
        let headers: Vec<&WriteOp> = ops.iter().filter(|op| key(op) == "header").collect();
        assert!(matches!(headers[..], [WriteOp::Put(_, v)] if v[..] == [9]));
        // Order kept: the range delete between the two writes of "gone" stays before the put.
        let order: Vec<Bytes> = ops.iter().map(key).collect();
        let range_at = order.iter().position(|k| k == "a").unwrap();
        let gone_at = order.iter().position(|k| k == "gone").unwrap();
        assert!(range_at < gone_at);
        assert_eq!(order.iter().filter(|k| *k == "gone").count(), 1);
        assert!(matches!(ops.last(), Some(WriteOp::Delete(k)) if k[..] == *b"e\x03"));
        assert_eq!(ops.len(), 1 + 10 + 1 + 1);
    }
}
