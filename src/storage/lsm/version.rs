//! A version: the immutable set of live SSTables, by level.
//!
//! Level 0 holds flushed memtables, newest first, with overlapping key ranges; every deeper
//! level holds files with disjoint ranges, sorted by smallest key. The version also holds the
//! flushed range tombstones (`range_del.rs`). Readers clone an `Arc<Version>` under a short
//! lock and never see a half-applied change.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::cache::BlockCache;
use super::key::{compare_internal, user_key};
use super::manifest::FileMeta;
use super::range_del::{RangeDels, RangeTombstone};
use super::sstable::{Table, TableError};

pub const LEVELS: usize = 7;

/// An open SSTable and what the manifest says of it.
pub struct TableFile {
    pub meta: FileMeta,
    pub table: Arc<Table>,
    /// Every range tombstone at or below this sequence number was applied when the table
    /// was written: it holds no point they cover (0 when unknown, e.g. after a restart).
    pub cleaned_through: u64,
}

impl TableFile {
    pub fn smallest_user(&self) -> &[u8] {
        user_key(&self.meta.smallest)
    }

    pub fn largest_user(&self) -> &[u8] {
        user_key(&self.meta.largest)
    }

    /// Whether `t` may still cover a point in this table.
    pub fn may_hold_covered(&self, t: &RangeTombstone) -> bool {
        self.cleaned_through < t.seqno
            && self.table.properties().min_seqno < t.seqno
            && t.overlaps(self.smallest_user(), self.largest_user())
    }

    /// Whether this file's user-key range meets `[start, end]` (None = unbounded).
    pub fn overlaps(&self, start: Option<&[u8]>, end: Option<&[u8]>) -> bool {
        start.is_none_or(|s| self.largest_user() >= s)
            && end.is_none_or(|e| self.smallest_user() <= e)
    }
}

pub fn table_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:06}.sst"))
}

pub fn open_table(
    dir: &Path,
    meta: FileMeta,
    cache: &Arc<BlockCache>,
    cleaned_through: u64,
) -> Result<Arc<TableFile>, TableError> {
    let table = Table::open(&table_path(dir, meta.id), meta.id, cache.clone())?;
    Ok(Arc::new(TableFile {
        meta,
        table: Arc::new(table),
        cleaned_through,
    }))
}

#[derive(Clone, Default)]
pub struct Version {
    pub levels: [Vec<Arc<TableFile>>; LEVELS],
    /// Flushed range tombstones, oldest first.
    pub range_dels: Arc<RangeDels>,
}

impl Version {
    /// Builds a version from the manifest's files (each already opened) and tombstones.
    pub fn from_files(files: Vec<Arc<TableFile>>, range_dels: Vec<RangeTombstone>) -> Version {
        let mut v = Version {
            range_dels: Arc::new(range_dels.into_iter().collect()),
            ..Version::default()
        };
        for f in files {
            v.levels[usize::from(f.meta.level).min(LEVELS - 1)].push(f);
        }
        v.sort();
        v
    }

    fn sort(&mut self) {
        self.levels[0].sort_by_key(|f| std::cmp::Reverse(f.meta.id));
        for level in self.levels.iter_mut().skip(1) {
            level.sort_by(|a, b| compare_internal(&a.meta.smallest, &b.meta.smallest));
        }
    }

    /// A new version with `added` files and without `removed` ids.
    pub fn apply(&self, added: Vec<Arc<TableFile>>, removed: &[u64]) -> Version {
        let mut v = self.clone();
        for level in v.levels.iter_mut() {
            level.retain(|f| !removed.contains(&f.meta.id));
        }
        for f in added {
            v.levels[usize::from(f.meta.level)].push(f);
        }
        v.sort();
        v
    }

    /// A new version with range tombstones `added` and those with seqnos in `dropped` gone.
    pub fn with_range_dels(&self, added: Vec<RangeTombstone>, dropped: &[u64]) -> Version {
        if added.is_empty() && dropped.is_empty() {
            return self.clone();
        }
        let mut list: Vec<RangeTombstone> = self
            .range_dels
            .iter()
            .filter(|t| !dropped.contains(&t.seqno))
            .cloned()
            .collect();
        list.extend(added);
        list.sort_by_key(|t| t.seqno);
        Version {
            levels: self.levels.clone(),
            range_dels: Arc::new(list.into_iter().collect()),
        }
    }

    /// Every table in the version.
    pub fn files(&self) -> impl Iterator<Item = &Arc<TableFile>> {
        self.levels.iter().flatten()
    }

    /// Tables that may hold `key`, in the order to consult them (newest data first).
    pub fn tables_for_key<'a>(
        &'a self,
        key: &'a [u8],
    ) -> impl Iterator<Item = &'a Arc<TableFile>> + 'a {
        let l0 = self.levels[0]
            .iter()
            .filter(move |f| f.overlaps(Some(key), Some(key)));
        let deeper = self.levels[1..].iter().filter_map(move |level| {
            let i = level.partition_point(|f| f.largest_user() < key);
            level.get(i).filter(|f| f.smallest_user() <= key)
        });
        l0.chain(deeper)
    }

    pub fn level_bytes(&self, level: usize) -> u64 {
        self.levels[level].iter().map(|f| f.meta.size).sum()
    }

    /// Level-1+ files of `level` overlapping the user-key range `[start, end]`.
    pub fn overlapping(&self, level: usize, start: &[u8], end: &[u8]) -> Vec<Arc<TableFile>> {
        self.levels[level]
            .iter()
            .filter(|f| f.overlaps(Some(start), Some(end)))
            .cloned()
            .collect()
    }
}

/// The smallest and largest user keys across `files`.
pub fn user_range(files: &[Arc<TableFile>]) -> Option<(Vec<u8>, Vec<u8>)> {
    let smallest = files
        .iter()
        .map(|f| f.smallest_user())
        .min_by(|a, b| a.cmp(b))?;
    let largest = files
        .iter()
        .map(|f| f.largest_user())
        .max_by(|a, b| a.cmp(b))?;
    Some((smallest.to_vec(), largest.to_vec()))
}
