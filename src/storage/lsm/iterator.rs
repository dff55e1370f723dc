//! Merging iteration over memtables and SSTables, and the user-visible view of it.
//!
//! Sources yield encoded internal keys in order; the merge yields them in global internal-key
//! order (newest version of a key first). `Visible` turns that into user entries at a
//! snapshot: the newest version at or below the snapshot's sequence number, deletes hidden.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use bytes::Bytes;

use super::key::{compare_internal, InternalKey, Kind};
use super::sstable::TableError;

pub type Entry = (Vec<u8>, Bytes);
pub type Source<'a> = Box<dyn Iterator<Item = Result<Entry, TableError>> + 'a>;

struct Head {
    key: Vec<u8>,
    value: Bytes,
    source: usize,
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
    /// Reversed: `BinaryHeap` is a max-heap and we want the smallest key first; on equal
    /// keys the lower source index (newer data) wins.
    fn cmp(&self, other: &Self) -> Ordering {
        compare_internal(&other.key, &self.key).then_with(|| other.source.cmp(&self.source))
    }
}

/// K-way merge of sources, each already in internal-key order.
pub struct Merge<'a> {
    sources: Vec<Source<'a>>,
    heap: BinaryHeap<Head>,
    error: Option<TableError>,
}

impl<'a> Merge<'a> {
    pub fn new(mut sources: Vec<Source<'a>>) -> Merge<'a> {
        let mut heap = BinaryHeap::with_capacity(sources.len());
        let mut error = None;
        for (i, s) in sources.iter_mut().enumerate() {
            match s.next() {
                Some(Ok((key, value))) => heap.push(Head {
                    key,
                    value,
                    source: i,
                }),
                Some(Err(e)) => error = Some(e),
                None => {}
            }
        }
        Merge {
            sources,
            heap,
            error,
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
    last_user_key: Option<Bytes>,
}

impl<'a> Visible<'a> {
    pub fn new(merge: Merge<'a>, snapshot: u64) -> Visible<'a> {
        Visible {
            merge,
            snapshot,
            last_user_key: None,
        }
    }
}

impl Iterator for Visible<'_> {
    type Item = Result<(Bytes, Bytes), TableError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (raw, value) = match self.merge.next()? {
                Ok(entry) => entry,
                Err(e) => return Some(Err(e)),
            };
            let Some(key) = InternalKey::decode(&Bytes::from(raw)) else {
                continue;
            };
            if key.seqno > self.snapshot {
                continue;
            }
            if self.last_user_key.as_ref() == Some(&key.user_key) {
                continue;
            }
            self.last_user_key = Some(key.user_key.clone());
            if key.kind == Kind::Put {
                return Some(Ok((key.user_key, value)));
            }
        }
    }
}
