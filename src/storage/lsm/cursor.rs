//! Cursors: the sorted runs a read merges — a memtable, one table, or the tables of a deeper
//! level in a row — each walking one way and able to jump to any internal key.
//!
//! Jumping is what keeps a range read's cost independent of how often its keys were
//! overwritten: the merge moves a run past the remaining versions of a key with one seek
//! instead of stepping through each (see `iterator.rs`). A cursor's position after a seek
//! does not depend on where it was before.

use std::sync::Arc;

use bytes::Bytes;

use super::key::{compare_internal, InternalKey, Kind};
use super::memtable::{self, Found, Lookup, Memtable};
use super::sstable::{TableError, TableIter, TableRevIter};
use super::version::TableFile;

/// An encoded internal key and its value.
pub type Entry = (Vec<u8>, Bytes);

/// Which way a cursor walks: forwards in internal-key order (newest version of a key
/// first), or backwards (oldest version first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Backward,
}

/// A sorted run of internal keys, walked in one direction.
pub trait Cursor: Iterator<Item = Result<Entry, TableError>> {
    /// Repositions at the first entry at or after `target` (forward cursors), or at the last
    /// entry at or before it (backward cursors).
    fn seek(&mut self, target: &InternalKey) -> Result<(), TableError>;

    /// The newest version of `user_key` at or below `snapshot` anywhere in the run, whatever
    /// the position (which stays as it was).
    fn newest(&self, user_key: &[u8], snapshot: u64) -> Result<Option<Entry>, TableError>;
}

/// A boxed cursor, as merges hold them.
pub type BoxCursor<'a> = Box<dyn Cursor + 'a>;

fn found_entry(user_key: &[u8], (lookup, seqno): Found) -> Entry {
    let (kind, value) = match lookup {
        Lookup::Value(v) => (Kind::Put, v),
        Lookup::Deleted => (Kind::Delete, Bytes::new()),
    };
    let key = InternalKey::new(Bytes::copy_from_slice(user_key), seqno, kind);
    (key.encode_vec(), value)
}

/// A cursor over one memtable.
pub struct MemCursor<'a> {
    mem: &'a Memtable,
    direction: Direction,
    /// The entry `next` yields.
    at: Option<memtable::Entry<'a>>,
    /// Walking backwards: entries before `at`, ascending (the next one is the last).
    before: Vec<memtable::Entry<'a>>,
}

impl<'a> MemCursor<'a> {
    /// A cursor at the start of `mem` in `direction` (its first entry, or its last).
    pub fn new(mem: &'a Memtable, direction: Direction) -> MemCursor<'a> {
        let at = match direction {
            Direction::Forward => mem.first(),
            Direction::Backward => mem.last(),
        };
        MemCursor {
            mem,
            direction,
            at,
            before: Vec::new(),
        }
    }
}

impl Iterator for MemCursor<'_> {
    type Item = Result<Entry, TableError>;

    fn next(&mut self) -> Option<Self::Item> {
        let entry = self.at?;
        self.at = match self.direction {
            Direction::Forward => entry.next(),
            Direction::Backward => {
                if self.before.is_empty() {
                    entry.run_before(&mut self.before);
                }
                self.before.pop()
            }
        };
        Some(Ok((entry.encoded_key(), entry.value().clone())))
    }
}

impl Cursor for MemCursor<'_> {
    fn seek(&mut self, target: &InternalKey) -> Result<(), TableError> {
        self.before.clear();
        self.at = match self.direction {
            Direction::Forward => self.mem.seek(target),
            Direction::Backward => self.mem.seek_for_prev(target),
        };
        Ok(())
    }

    fn newest(&self, user_key: &[u8], snapshot: u64) -> Result<Option<Entry>, TableError> {
        Ok(self
            .mem
            .get(user_key, snapshot)
            .map(|found| found_entry(user_key, found)))
    }
}

impl Cursor for TableIter {
    fn seek(&mut self, target: &InternalKey) -> Result<(), TableError> {
        TableIter::seek(self, &target.encode())
    }

    fn newest(&self, user_key: &[u8], snapshot: u64) -> Result<Option<Entry>, TableError> {
        Ok(self
            .table()
            .get(user_key, snapshot)?
            .map(|found| found_entry(user_key, found)))
    }
}

impl Cursor for TableRevIter {
    fn seek(&mut self, target: &InternalKey) -> Result<(), TableError> {
        self.seek_for_prev(&target.encode())
    }

    fn newest(&self, user_key: &[u8], snapshot: u64) -> Result<Option<Entry>, TableError> {
        Ok(self
            .table()
            .get(user_key, snapshot)?
            .map(|found| found_entry(user_key, found)))
    }
}

/// A cursor over one table, at its start in `direction`.
pub fn table_cursor(file: &TableFile, direction: Direction) -> BoxCursor<'static> {
    match direction {
        Direction::Forward => Box::new(file.table.iter()),
        Direction::Backward => Box::new(file.table.rev_iter()),
    }
}

/// A cursor over the tables of a level below 0: disjoint, sorted by key, so they form one
/// run. Tables are opened one at a time as the cursor reaches them.
pub struct LevelCursor {
    files: Vec<Arc<TableFile>>,
    direction: Direction,
    /// Forwards: the next table to open is `files[next]`; backwards: `files[next - 1]`.
    next: usize,
    current: Option<BoxCursor<'static>>,
}

impl LevelCursor {
    /// A cursor at the start of `files` (sorted, disjoint) in `direction`.
    pub fn new(files: Vec<Arc<TableFile>>, direction: Direction) -> LevelCursor {
        let next = match direction {
            Direction::Forward => 0,
            Direction::Backward => files.len(),
        };
        LevelCursor {
            files,
            direction,
            next,
            current: None,
        }
    }
}

impl Iterator for LevelCursor {
    type Item = Result<Entry, TableError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(current) = &mut self.current {
                match current.next() {
                    Some(entry) => return Some(entry),
                    None => self.current = None,
                }
            }
            let file = match self.direction {
                Direction::Forward => {
                    let file = self.files.get(self.next)?;
                    self.next += 1;
                    file
                }
                Direction::Backward => {
                    self.next = self.next.checked_sub(1)?;
                    &self.files[self.next]
                }
            };
            self.current = Some(table_cursor(file, self.direction));
        }
    }
}

impl Cursor for LevelCursor {
    fn seek(&mut self, target: &InternalKey) -> Result<(), TableError> {
        let encoded = target.encode();
        self.current = None;
        match self.direction {
            Direction::Forward => {
                // The first table whose last key is at or after the target.
                let i = self.files.partition_point(|f| {
                    compare_internal(&f.meta.largest, &encoded) == std::cmp::Ordering::Less
                });
                self.next = i;
                if let Some(file) = self.files.get(i) {
                    let mut cursor = table_cursor(file, self.direction);
                    cursor.seek(target)?;
                    self.current = Some(cursor);
                    self.next = i + 1;
                }
            }
            Direction::Backward => {
                // The last table whose first key is at or before the target.
                let i = self.files.partition_point(|f| {
                    compare_internal(&f.meta.smallest, &encoded) != std::cmp::Ordering::Greater
                });
                self.next = i;
                if i > 0 {
                    let mut cursor = table_cursor(&self.files[i - 1], self.direction);
                    cursor.seek(target)?;
                    self.current = Some(cursor);
                    self.next = i - 1;
                }
            }
        }
        Ok(())
    }

    fn newest(&self, user_key: &[u8], snapshot: u64) -> Result<Option<Entry>, TableError> {
        let i = self.files.partition_point(|f| f.largest_user() < user_key);
        match self.files.get(i) {
            Some(file) if file.smallest_user() <= user_key => Ok(file
                .table
                .get(user_key, snapshot)?
                .map(|found| found_entry(user_key, found))),
            _ => Ok(None),
        }
    }
}
