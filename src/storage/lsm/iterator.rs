//! Merging iteration over cursors, and the user-visible view of it.
//!
//! Cursors (`cursor.rs`) yield encoded internal keys in order; the merge yields them in
//! global internal-key order (newest version of a key first), or all in reverse for backward
//! scans. `Visible` (forward) and `VisibleRev` (backward) turn that into user entries at a
//! snapshot: the newest version at or below the snapshot's sequence number, deletes and
//! versions covered by a newer range tombstone hidden.
//!
//! A key overwritten many times has many versions in a memtable (and in tables while a
//! snapshot pins them). After [`SKIP_BEFORE_SEEK`] versions of one key that a reader does not
//! need, the view seeks the cursors still on that key past its versions (RocksDB's
//! `max_sequential_skip_in_iterations`), so a range read costs about the same however often
//! its keys were overwritten. Backwards, where a key's versions arrive oldest first, the view
//! asks each of those cursors for the key's newest visible version by a point lookup and
//! then seeks them before the key.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::Arc;

use bytes::Bytes;

use super::cursor::{BoxCursor, Entry};
use super::key::{compare_internal, parse, InternalKey, Kind, SEQNO_MAX, TRAILER_BYTES};
use super::range_del::RangeDels;
use super::sstable::TableError;

/// Versions of one key stepped over before the cursors still on it seek past them.
pub const SKIP_BEFORE_SEEK: usize = 8;

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

/// K-way merge of cursors, each already positioned and walking the merge's direction.
pub struct Merge<'a> {
    sources: Vec<BoxCursor<'a>>,
    heap: BinaryHeap<Head>,
    error: Option<TableError>,
    reverse: bool,
    /// Entries taken from the cursors so far (what a read cost, for INFO and tests).
    pulled: u64,
}

impl<'a> Merge<'a> {
    pub fn new(sources: Vec<BoxCursor<'a>>) -> Merge<'a> {
        Merge::with_direction(sources, false)
    }

    /// A merge of cursors that each walk backwards (descending internal keys).
    pub fn reverse(sources: Vec<BoxCursor<'a>>) -> Merge<'a> {
        Merge::with_direction(sources, true)
    }

    fn with_direction(sources: Vec<BoxCursor<'a>>, reverse: bool) -> Merge<'a> {
        let mut merge = Merge {
            heap: BinaryHeap::with_capacity(sources.len()),
            sources,
            error: None,
            reverse,
            pulled: 0,
        };
        for i in 0..merge.sources.len() {
            merge.pull(i);
        }
        merge
    }

    /// Entries taken from the cursors so far.
    pub fn pulled(&self) -> u64 {
        self.pulled
    }

    /// Takes the next entry of cursor `source` into the heap.
    fn pull(&mut self, source: usize) {
        match self.sources[source].next() {
            Some(Ok((key, value))) => {
                self.pulled += 1;
                self.heap.push(Head {
                    key,
                    value,
                    source,
                    reverse: self.reverse,
                })
            }
            Some(Err(e)) => self.error = Some(e),
            None => {}
        }
    }

    /// Moves every cursor whose next entry comes before `target` in the merge's direction
    /// to `target` (the first entry at or after it forwards, at or before it backwards).
    pub fn seek_heads(&mut self, target: &InternalKey) {
        let encoded = target.encode_vec();
        let before = if self.reverse {
            Ordering::Greater
        } else {
            Ordering::Less
        };
        while self
            .heap
            .peek()
            .is_some_and(|top| compare_internal(&top.key, &encoded) == before)
        {
            let Some(head) = self.heap.pop() else { break };
            match self.sources[head.source].seek(target) {
                Ok(()) => self.pull(head.source),
                Err(e) => self.error = Some(e),
            }
        }
    }

    /// Backwards: the newest version of `user_key` at or below `snapshot` among the cursors
    /// whose next entry is a version of it, which then move before every version of it.
    fn newest_then_pass(&mut self, user_key: &[u8], snapshot: u64) -> Option<Entry> {
        let mut best: Option<(u64, Entry)> = None;
        let before_key = InternalKey::new(Bytes::copy_from_slice(user_key), SEQNO_MAX, Kind::Put);
        while self
            .heap
            .peek()
            .is_some_and(|top| parse(&top.key).is_some_and(|(k, _, _)| k == user_key))
        {
            let Some(head) = self.heap.pop() else { break };
            let source = &mut self.sources[head.source];
            let found = source.newest(user_key, snapshot);
            let moved = source.seek(&before_key);
            match (found, moved) {
                (Ok(found), Ok(())) => {
                    if let Some(entry) = found {
                        let seqno = parse(&entry.0).map_or(0, |(_, s, _)| s);
                        if best.as_ref().is_none_or(|(b, _)| seqno > *b) {
                            best = Some((seqno, entry));
                        }
                    }
                    self.pull(head.source);
                }
                (Err(e), _) | (_, Err(e)) => self.error = Some(e),
            }
        }
        best.map(|(_, entry)| entry)
    }
}

impl Iterator for Merge<'_> {
    type Item = Result<Entry, TableError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.error.take() {
            return Some(Err(e));
        }
        let head = self.heap.pop()?;
        self.pull(head.source);
        Some(Ok((head.key, head.value)))
    }
}

/// The highest seqno at or below `snapshot` of a tombstone in `sets` covering `key`.
fn covering_seqno(sets: &[Arc<RangeDels>], key: &[u8], snapshot: u64) -> u64 {
    sets.iter()
        .map(|set| set.covering_seqno(key, snapshot))
        .max()
        .unwrap_or(0)
}

/// User entries visible at `snapshot`, from a merge.
pub struct Visible<'a> {
    merge: Merge<'a>,
    snapshot: u64,
    /// The user key of the last version looked at.
    current: Option<Vec<u8>>,
    /// Whether `current`'s visible version was decided (older versions are skipped).
    decided: bool,
    /// Versions of `current` skipped in a row since the last seek.
    skipped: usize,
    /// The range tombstones (those above the snapshot are ignored).
    range_dels: Vec<Arc<RangeDels>>,
}

impl<'a> Visible<'a> {
    pub fn new(merge: Merge<'a>, snapshot: u64, range_dels: Vec<Arc<RangeDels>>) -> Self {
        Visible {
            merge,
            snapshot,
            current: None,
            decided: false,
            skipped: 0,
            range_dels,
        }
    }

    /// Entries taken from the cursors so far.
    pub fn pulled(&self) -> u64 {
        self.merge.pulled()
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
            if self.current.as_deref() != Some(user_key) {
                let current = self.current.get_or_insert_with(Vec::new);
                current.clear();
                current.extend_from_slice(user_key);
                self.decided = false;
                self.skipped = 0;
            }
            if seqno > self.snapshot || self.decided {
                // Too new for this reader, or older than the version it gets.
                self.skipped += 1;
                if self.skipped >= SKIP_BEFORE_SEEK {
                    self.skipped = 0;
                    let key = Bytes::copy_from_slice(user_key);
                    let target = if self.decided {
                        InternalKey::new(key, 0, Kind::Delete) // past its oldest version
                    } else {
                        InternalKey::new(key, self.snapshot, Kind::Put)
                    };
                    self.merge.seek_heads(&target);
                }
                continue;
            }
            self.decided = true;
            let covered = covering_seqno(&self.range_dels, user_key, self.snapshot) > seqno;
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

impl Candidate {
    fn from_entry((raw, value): Entry) -> Option<Candidate> {
        let (_, seqno, kind) = parse(&raw)?;
        Some(Candidate {
            raw,
            value,
            seqno,
            kind,
        })
    }
}

/// User entries visible at `snapshot`, from a reverse merge, in descending key order.
/// Versions of a key arrive oldest first, so a key is decided when the next key begins.
pub struct VisibleRev<'a> {
    merge: Merge<'a>,
    snapshot: u64,
    group: Option<Vec<u8>>,
    /// Versions of `group` looked at in a row since the last jump.
    seen: usize,
    candidate: Option<Candidate>,
    range_dels: Vec<Arc<RangeDels>>,
}

impl<'a> VisibleRev<'a> {
    pub fn new(merge: Merge<'a>, snapshot: u64, range_dels: Vec<Arc<RangeDels>>) -> Self {
        VisibleRev {
            merge,
            snapshot,
            group: None,
            seen: 0,
            candidate: None,
            range_dels,
        }
    }

    /// Entries taken from the cursors so far.
    pub fn pulled(&self) -> u64 {
        self.merge.pulled()
    }

    /// The user entry of a finished key, if it is visible.
    fn emit(&self, c: Candidate) -> Option<(Bytes, Bytes)> {
        let mut raw = c.raw;
        raw.truncate(raw.len() - TRAILER_BYTES);
        let covered = covering_seqno(&self.range_dels, &raw, self.snapshot) > c.seqno;
        (c.kind == Kind::Put && !covered).then(|| (Bytes::from(raw), c.value))
    }

    /// Makes `found` the candidate if it is newer than the one held.
    fn offer(&mut self, found: Candidate) {
        if self
            .candidate
            .as_ref()
            .is_none_or(|c| found.seqno > c.seqno)
        {
            self.candidate = Some(found);
        }
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
                self.seen += 1;
                None
            } else {
                self.group = Some(user_key.to_vec());
                self.seen = 1;
                self.candidate.take()
            };
            if self.seen >= SKIP_BEFORE_SEEK {
                // Many versions: look the newest visible one up and jump before the key.
                self.seen = 0;
                let user_key = user_key.to_vec();
                if let Some(found) = self
                    .merge
                    .newest_then_pass(&user_key, self.snapshot)
                    .and_then(Candidate::from_entry)
                {
                    self.offer(found);
                }
            }
            if seqno <= self.snapshot {
                self.offer(Candidate {
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
