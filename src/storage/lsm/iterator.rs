//! Merging iteration over memtables and SSTables, and the user-visible view of it.
//!
//! Sources yield encoded internal keys in order; the merge yields them in global internal-key
//! order (newest version of a key first), or all in reverse for backward scans. `Visible`
//! (forward) and `VisibleRev` (backward) turn that into user entries at a snapshot: the
//! newest version at or below the snapshot's sequence number, deletes and versions covered
//! by a newer range tombstone hidden.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use bytes::Bytes;

use super::key::{compare_internal, parse, Kind, TRAILER_BYTES};
use super::range_del::{covering_seqno, RangeTombstone};
use super::sstable::TableError;

pub type Entry = (Vec<u8>, Bytes);
pub type Source<'a> = Box<dyn Iterator<Item = Result<Entry, TableError>> + 'a>;

struct Head {
    key: Vec<u8>,
    value: Bytes,
    source: usize,
    reverse: bool,
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Head {
    /// `BinaryHeap` is a max-heap: forwards the smallest key must compare greatest; on equal
    /// keys the lower source index (newer data) wins either way.
    fn cmp(&self, other: &Self) -> Ordering {
        let keys = compare_internal(&other.key, &self.key);
        let keys = if self.reverse { keys.reverse() } else { keys };
        keys.then_with(|| other.source.cmp(&self.source))
    }
}

/// K-way merge of sources, each already in internal-key order (or each in reverse order,
/// for a reverse merge).
pub struct Merge<'a> {
    sources: Vec<Source<'a>>,
    heap: BinaryHeap<Head>,
    error: Option<TableError>,
    reverse: bool,
}

impl<'a> Merge<'a> {
    pub fn new(sources: Vec<Source<'a>>) -> Merge<'a> {
        Merge::with_direction(sources, false)
    }

    /// A merge of sources that each yield descending internal keys.
    pub fn reverse(sources: Vec<Source<'a>>) -> Merge<'a> {
        Merge::with_direction(sources, true)
    }

    fn with_direction(mut sources: Vec<Source<'a>>, reverse: bool) -> Merge<'a> {
        let mut heap = BinaryHeap::with_capacity(sources.len());
        let mut error = None;
        for (i, s) in sources.iter_mut().enumerate() {
            match s.next() {
                Some(Ok((key, value))) => heap.push(Head {
                    key,
                    value,
                    source: i,
                    reverse,
                }),
                Some(Err(e)) => error = Some(e),
                None => {}
            }
        }
        Merge {
            sources,
            heap,
            error,
            reverse,
        }
    }
}

impl Iterator for Merge<'_> {
    type Item = Result<Entry, TableError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.error.take() {
            return Some(Err(e));
        }
        let head = self.heap.pop()?;
        match self.sources[head.source].next() {
            Some(Ok((key, value))) => self.heap.push(Head {
                key,
                value,
                source: head.source,
                reverse: self.reverse,
            }),
            Some(Err(e)) => self.error = Some(e),
            None => {}
        }
        Some(Ok((head.key, head.value)))
    }
}

/// User entries visible at `snapshot`, from a merge.
pub struct Visible<'a> {
    merge: Merge<'a>,
    snapshot: u64,
    /// The user key of the last version looked at (older versions of it are skipped).
    last_user_key: Option<Vec<u8>>,
    /// Range tombstones at or below the snapshot.
    range_dels: Vec<RangeTombstone>,
}

impl<'a> Visible<'a> {
    pub fn new(merge: Merge<'a>, snapshot: u64, mut range_dels: Vec<RangeTombstone>) -> Self {
        range_dels.retain(|t| t.seqno <= snapshot);
        Visible {
            merge,
            snapshot,
            last_user_key: None,
            range_dels,
        }
    }
}

impl Iterator for Visible<'_> {
    type Item = Result<(Bytes, Bytes), TableError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (mut raw, value) = match self.merge.next()? {
                Ok(entry) => entry,
                Err(e) => return Some(Err(e)),
            };
            let Some((user_key, seqno, kind)) = parse(&raw) else {
                continue;
            };
            if seqno > self.snapshot {
                continue;
            }
            match &mut self.last_user_key {
                Some(last) if last[..] == *user_key => continue,
                Some(last) => {
                    last.clear();
                    last.extend_from_slice(user_key);
                }
                None => self.last_user_key = Some(user_key.to_vec()),
            }
            let covered = !self.range_dels.is_empty()
                && covering_seqno(&self.range_dels, user_key, self.snapshot) > seqno;
            if kind == Kind::Put && !covered {
                raw.truncate(raw.len() - TRAILER_BYTES);
                return Some(Ok((Bytes::from(raw), value)));
            }
        }
    }
}

/// The newest version of one user key seen so far by [`VisibleRev`].
struct Candidate {
    raw: Vec<u8>,
    value: Bytes,
    seqno: u64,
    kind: Kind,
}

/// User entries visible at `snapshot`, from a reverse merge, in descending key order.
/// Versions of a key arrive oldest first, so a key is decided when the next key begins.
pub struct VisibleRev<'a> {
    merge: Merge<'a>,
    snapshot: u64,
    group: Option<Vec<u8>>,
    candidate: Option<Candidate>,
    range_dels: Vec<RangeTombstone>,
}

impl<'a> VisibleRev<'a> {
    pub fn new(merge: Merge<'a>, snapshot: u64, mut range_dels: Vec<RangeTombstone>) -> Self {
        range_dels.retain(|t| t.seqno <= snapshot);
        VisibleRev {
            merge,
            snapshot,
            group: None,
            candidate: None,
            range_dels,
        }
    }

    /// The user entry of a finished key, if it is visible.
    fn emit(&self, c: Candidate) -> Option<(Bytes, Bytes)> {
        let mut raw = c.raw;
        raw.truncate(raw.len() - TRAILER_BYTES);
        let covered = !self.range_dels.is_empty()
            && covering_seqno(&self.range_dels, &raw, self.snapshot) > c.seqno;
        (c.kind == Kind::Put && !covered).then(|| (Bytes::from(raw), c.value))
    }
}

impl Iterator for VisibleRev<'_> {
    type Item = Result<(Bytes, Bytes), TableError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let Some(entry) = self.merge.next() else {
                let last = self.candidate.take()?;
                match self.emit(last) {
                    Some(found) => return Some(Ok(found)),
                    None => continue,
                }
            };
            let (raw, value) = match entry {
                Ok(entry) => entry,
                Err(e) => return Some(Err(e)),
            };
            let Some((user_key, seqno, kind)) = parse(&raw) else {
                continue;
            };
            let same_key = self.group.as_deref() == Some(user_key);
            let finished = if same_key {
                None
            } else {
                self.group = Some(user_key.to_vec());
                self.candidate.take()
            };
            if seqno <= self.snapshot {
                self.candidate = Some(Candidate {
                    raw,
                    value,
                    seqno,
                    kind,
                });
            }
            if let Some(found) = finished.and_then(|c| self.emit(c)) {
                return Some(Ok(found));
            }
        }
    }
}
