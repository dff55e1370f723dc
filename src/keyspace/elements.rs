//! Reads of collection elements, and the lease that hands out collection versions.
//!
//! A collection's elements live under `(key, version)` (see `encoding.rs`); a reader first
//! reads the metadata record for the version, then the elements it needs. Versions are
//! leased in blocks: the block's ceiling is written to the engine before any version from
//! it is used, so after a crash versions resume above everything handed out and a version
//! is never reused (its old elements could otherwise come back).

use std::ops::Bound;

use bytes::Bytes;

use super::{encoding, Keyspace, Result};
use crate::cluster::key_slot;
use crate::storage::{KeyRange, WriteBatch};

/// Versions leased per write of the ceiling.
const VERSION_BLOCK: u64 = 1 << 20;
pub(super) const VERSION_RECORD: &str = "version";

/// The next version to hand out and the ceiling persisted for it.
#[derive(Debug, Default)]
pub(super) struct VersionLease {
    next: u64,
    ceiling: u64,
}

impl VersionLease {
    /// Resumes at the persisted ceiling (versions 1 and up).
    pub(super) fn resume(ceiling: u64) -> VersionLease {
        let start = ceiling.max(1);
        VersionLease {
            next: start,
            ceiling: start,
        }
    }
}

impl Keyspace {
    /// A version no collection has used, durable before it is returned.
    pub(super) fn allocate_version(&self) -> Result<u64> {
        let mut lease = self.versions.lock();
        if lease.next >= lease.ceiling {
            let ceiling = lease.next + VERSION_BLOCK;
            let mut batch = WriteBatch::new();
            batch.put(
                encoding::system_key(VERSION_RECORD),
                Bytes::copy_from_slice(&ceiling.to_be_bytes()),
            );
            self.engine.write(batch)?;
            self.engine.commit_barrier()?;
            lease.ceiling = ceiling;
        }
        lease.next += 1;
        Ok(lease.next - 1)
    }

    /// One element of version `version` of collection `key`.
    pub fn get_element(
        &self,
        db: u8,
        key: &[u8],
        version: u64,
        sub: &[u8],
    ) -> Result<Option<Bytes>> {
        let ek = encoding::element_key(self.physical_db(db), key_slot(key), key, version, sub);
        Ok(self.engine.get(&ek)?)
    }

    /// Several elements of one collection, read from one consistent state.
    pub fn multi_get_elements(
        &self,
        db: u8,
        key: &[u8],
        version: u64,
        subs: &[Bytes],
    ) -> Result<Vec<Option<Bytes>>> {
        let (pdb, slot) = (self.physical_db(db), key_slot(key));
        let eks: Vec<Bytes> = subs
            .iter()
            .map(|s| encoding::element_key(pdb, slot, key, version, s))
            .collect();
        Ok(self.engine.multi_get(&eks)?)
    }

    /// Up to `limit` elements of a collection in sub-key order (descending when `reverse`),
    /// after `after` (before it, when reversed) or from the start.
    pub fn scan_elements(
        &self,
        db: u8,
        key: &[u8],
        version: u64,
        after: Option<&[u8]>,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<(Bytes, Bytes)>> {
        let prefix = encoding::element_prefix(self.physical_db(db), key_slot(key), key, version);
        let mut range = KeyRange::prefix(&prefix);
        if let Some(after) = after {
            let mut bound = prefix.to_vec();
            bound.extend_from_slice(after);
            if reverse {
                range.end = Bound::Excluded(Bytes::from(bound));
            } else {
                range.start = Bound::Excluded(Bytes::from(bound));
            }
        }
        let pairs = self.engine.scan(&range, reverse, limit)?;
        Ok(pairs
            .into_iter()
            .map(|(k, v)| (k.slice(prefix.len()..), v))
            .collect())
    }

    /// Every element of a collection, in sub-key order.
    pub fn all_elements(&self, db: u8, key: &[u8], version: u64) -> Result<Vec<(Bytes, Bytes)>> {
        self.scan_elements(db, key, version, None, usize::MAX, false)
    }
}
