//! Reads of collection elements, and the lease that hands out collection versions.
//!
//! A collection's elements live under `(key, version)` (see `encoding.rs`); a reader first
//! reads the metadata record for the version, then the elements it needs. Versions are
//! leased in blocks: the block's ceiling is written to the engine before any version from
//! it is used, so after a crash versions resume above everything handed out and a version
//! is never reused (its old elements could otherwise come back).

use std::ops::Bound;

use bytes::Bytes;

use super::cache::Elements;
use super::encoding::{self, Space};
use super::{Keyspace, Result};
use crate::cluster::key_slot;
use crate::storage::{prefix_successor, KeyRange};

/// A range of sub keys within one collection's records of one space.
#[derive(Debug, Clone)]
pub struct SubRange {
    pub start: Bound<Bytes>,
    pub end: Bound<Bytes>,
}

impl SubRange {
    pub fn all() -> SubRange {
        SubRange {
            start: Bound::Unbounded,
            end: Bound::Unbounded,
        }
    }

    /// Whether the bounds meet or cross, so no sub key lies in the range.
    pub fn is_empty(&self) -> bool {
        KeyRange {
            start: self.start.clone(),
            end: self.end.clone(),
        }
        .is_empty()
    }

    /// The engine range of these sub keys under `prefix`.
    pub(super) fn under(&self, prefix: &Bytes) -> KeyRange {
        let join = |sub: &Bytes| {
            let mut k = Vec::with_capacity(prefix.len() + sub.len());
            k.extend_from_slice(prefix);
            k.extend_from_slice(sub);
            Bytes::from(k)
        };
        let start = match &self.start {
            Bound::Unbounded => Bound::Included(prefix.clone()),
            Bound::Included(s) => Bound::Included(join(s)),
            Bound::Excluded(s) => Bound::Excluded(join(s)),
        };
        let end = match &self.end {
            Bound::Unbounded => match prefix_successor(prefix) {
                Some(e) => Bound::Excluded(Bytes::from(e)),
                None => Bound::Unbounded,
            },
            Bound::Included(s) => Bound::Included(join(s)),
            Bound::Excluded(s) => Bound::Excluded(join(s)),
        };
        KeyRange { start, end }
    }
}

/// Records counted per engine read when counting a range.
const COUNT_PAGE: usize = 4096;

impl Keyspace {
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
        let mut range = SubRange::all();
        if let Some(after) = after {
            let bound = Bound::Excluded(Bytes::copy_from_slice(after));
            if reverse {
                range.end = bound;
            } else {
                range.start = bound;
            }
        }
        self.scan_space(Space::Elements, db, key, version, &range, limit, reverse)
    }

    /// Up to `limit` records of `space` of a collection whose sub keys lie in `range`, in
    /// sub-key order (descending when `reverse`).
    #[allow(clippy::too_many_arguments)]
    pub fn scan_space(
        &self,
        space: Space,
        db: u8,
        key: &[u8],
        version: u64,
        range: &SubRange,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<(Bytes, Bytes)>> {
        let prefix =
            encoding::space_prefix(space, self.physical_db(db), key_slot(key), key, version);
        let pairs = self.engine.scan(&range.under(&prefix), reverse, limit)?;
        Ok(pairs
            .into_iter()
            .map(|(k, v)| (k.slice(prefix.len()..), v))
            .collect())
    }

    /// How many records of `space` of a collection lie in `range`, read a page at a time.
    pub fn count_space(
        &self,
        space: Space,
        db: u8,
        key: &[u8],
        version: u64,
        range: &SubRange,
    ) -> Result<u64> {
        let mut range = range.clone();
        let mut counted = 0u64;
        loop {
            let page = self.scan_space(space, db, key, version, &range, COUNT_PAGE, false)?;
            counted += page.len() as u64;
            match page.last() {
                Some((sub, _)) if page.len() == COUNT_PAGE => {
                    range.start = Bound::Excluded(sub.clone());
                }
                _ => return Ok(counted),
            }
        }
    }

    /// Every element of a collection, in sub-key order.
    pub fn all_elements(&self, db: u8, key: &[u8], version: u64) -> Result<Vec<(Bytes, Bytes)>> {
        self.scan_elements(db, key, version, None, usize::MAX, false)
    }

    /// Every element of the collection `key` whose metadata, as the caller read it, has
    /// `revision` and names `version`: from the collection cache when it holds that
    /// revision, else read and kept there if small.
    pub fn collection(&self, db: u8, key: &[u8], revision: u64, version: u64) -> Result<Elements> {
        let pdb = self.physical_db(db);
        if let Some(cached) = self.collections.get(pdb, key, revision, version) {
            return Ok(cached);
        }
        let read = self.all_elements(db, key, version)?;
        Ok(self.collections.put(pdb, key, revision, version, read))
    }
}

/// What commands read of keys and their elements, the same way at the proposer (the
/// keyspace as of now, [`LiveReads`]) and at apply (a write transaction, with its own
/// writes): code that reads collections serves both through it.
pub trait Reads {
    /// The live value of `key`.
    fn live(&mut self, db: u8, key: &[u8]) -> Result<Option<super::Meta>>;
    /// One record of `space` of a collection version.
    fn record(
        &mut self,
        space: Space,
        db: u8,
        key: &[u8],
        version: u64,
        sub: &[u8],
    ) -> Result<Option<Bytes>>;
    /// Up to `limit` records of `space` in `range`, descending when `reverse`.
    #[allow(clippy::too_many_arguments)]
    fn records(
        &mut self,
        space: Space,
        db: u8,
        key: &[u8],
        version: u64,
        range: &SubRange,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<(Bytes, Bytes)>>;
}

/// The keyspace read at `now_ms` (expired keys are absent).
#[derive(Clone, Copy)]
pub struct LiveReads<'a> {
    pub keyspace: &'a Keyspace,
    pub now_ms: u64,
}

impl Reads for LiveReads<'_> {
    fn live(&mut self, db: u8, key: &[u8]) -> Result<Option<super::Meta>> {
        self.keyspace.get(db, key, self.now_ms)
    }

    fn record(
        &mut self,
        space: Space,
        db: u8,
        key: &[u8],
        version: u64,
        sub: &[u8],
    ) -> Result<Option<Bytes>> {
        let ks = self.keyspace;
        let rk = encoding::space_key(space, ks.physical_db(db), key_slot(key), key, version, sub);
        Ok(ks.engine.get(&rk)?)
    }

    fn records(
        &mut self,
        space: Space,
        db: u8,
        key: &[u8],
        version: u64,
        range: &SubRange,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<(Bytes, Bytes)>> {
        self.keyspace
            .scan_space(space, db, key, version, range, limit, reverse)
    }
}

impl Reads for &mut super::Txn<'_> {
    fn live(&mut self, db: u8, key: &[u8]) -> Result<Option<super::Meta>> {
        self.get(db, key)
    }

    fn record(
        &mut self,
        space: Space,
        db: u8,
        key: &[u8],
        version: u64,
        sub: &[u8],
    ) -> Result<Option<Bytes>> {
        self.get_in(space, db, key, version, sub)
    }

    fn records(
        &mut self,
        space: Space,
        db: u8,
        key: &[u8],
        version: u64,
        range: &SubRange,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<(Bytes, Bytes)>> {
        self.scan_space(space, db, key, version, range, limit, reverse)
    }
}
