//! Writing a memtable to a level-0 table, keeping only what some reader can still see.
//!
//! A memtable holds every version written while it was active; a hot key may have
//! thousands. At flush a version is kept when it is newer than the oldest snapshot, or is
//! the newest version at or below it; older ones no reader can see. That newest version is
//! left out too when it is a delete with nothing to hide: no older version of its key is
//! kept here and no table may hold one (the tables' bloom filters say so), which drops a key
//! created and deleted within one memtable altogether. Points covered by the memtable's own
//! range tombstones at or below the oldest snapshot are left out as well (older tombstones
//! cannot cover them: every point here is newer than any flushed tombstone).
//!
//! Only the oldest memtable is flushed, so nothing older than its contents waits in another
//! memtable. Readers stay correct: one that finds the new state reads at a sequence number
//! at least as new as the oldest snapshot seen here (`Shared::read_view`); one that finds
//! the old state still has the memtable.

use std::fs;
use std::path::Path;

use super::engine::LsmOptions;
use super::key::Kind;
use super::manifest::FileMeta;
use super::memtable::Memtable;
use super::range_del::RangeDels;
use super::sstable::TableBuilder;
use super::version::{table_path, Version};
use crate::storage::{Result, StorageError};

/// Writes what readers of `mem` can still see to SSTable `id`; returns its manifest entry
/// (level 0), or `None` when nothing is left to write. `tables` is the version holding
/// everything older than `mem`.
pub(super) fn write_memtable(
    dir: &Path,
    id: u64,
    mem: &Memtable,
    opts: &LsmOptions,
    oldest_snapshot: u64,
    tables: &Version,
) -> Result<Option<FileMeta>> {
    let path = table_path(dir, id);
    let range_dels: RangeDels = mem
        .range_dels()
        .into_iter()
        .filter(|t| t.seqno <= oldest_snapshot)
        .collect();
    let mut builder = TableBuilder::create(&path, opts.upper_compression)?
        .with_prefixes(opts.prefix_extractor.clone());
    let mut current: Option<&[u8]> = None;
    // Whether `current`'s newest version at or below the oldest snapshot was met.
    let mut settled = false;
    for entry in mem.entries() {
        let user_key = entry.user_key();
        if current != Some(user_key) {
            current = Some(user_key);
            settled = false;
        }
        if entry.seqno() <= oldest_snapshot {
            if settled {
                continue; // hidden from every reader by a newer version
            }
            settled = true;
            let covered = !range_dels.is_empty()
                && range_dels.covering_seqno(user_key, oldest_snapshot) > entry.seqno();
            if covered || entry.kind() == Kind::Delete && !may_be_in(tables, user_key) {
                continue;
            }
        }
        builder.add(&entry.encoded_key(), entry.value())?;
    }
    if builder.is_empty() {
        drop(builder);
        fs::remove_file(&path).map_err(StorageError::Io)?;
        return Ok(None);
    }
    let (props, size) = builder.finish()?;
    Ok(Some(FileMeta {
        level: 0,
        id,
        size,
        max_seqno: props.max_seqno,
        smallest: props.smallest,
        largest: props.largest,
    }))
}

/// Whether some table of `tables` may hold a version of `user_key`.
pub(super) fn may_be_in(tables: &Version, user_key: &[u8]) -> bool {
    tables
        .tables_for_key(user_key)
        .any(|f| f.table.may_contain(user_key))
}
