//! A version: the immutable set of live SSTables, by level.
//!
//! Level 0 holds flushed memtables, newest first, with overlapping key ranges; every deeper
//! level holds files with disjoint ranges, sorted by smallest key. Readers clone an
//! `Arc<Version>` under a short lock and never see a half-applied change.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::cache::BlockCache;
use super::key::{compare_internal, user_key};
use super::manifest::FileMeta;
use super::sstable::{Table, TableError};

pub const LEVELS: usize = 7;

/// An open SSTable and what the manifest says of it.
pub struct TableFile {
    pub meta: FileMeta,
    pub table: Arc<Table>,
}

impl TableFile {
    pub fn smallest_user(&self) -> &[u8] {
        user_key(&self.meta.smallest)
    }

    pub fn largest_user(&self) -> &[u8] {
        user_key(&self.meta.largest)
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
) -> Result<Arc<TableFile>, TableError> {
    let table = Table::open(&table_path(dir, meta.id), meta.id, cache.clone())?;
    Ok(Arc::new(TableFile {
        meta,
        table: Arc::new(table),
    }))
}

#[derive(Clone, Default)]
pub struct Version {
    pub levels: [Vec<Arc<TableFile>>; LEVELS],
}

impl Version {
    /// Builds a version from the manifest's files (each already opened).
    pub fn from_files(files: Vec<Arc<TableFile>>) -> Version {
        let mut v = Version::default();
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
