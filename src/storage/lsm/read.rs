//! The read path: point lookups and bounded scans, forwards and backwards, at a sequence
//! number over one `State` (memtables and version).
//!
//! A scan opens one cursor per memtable and level-0 table and one per deeper level (its
//! tables are disjoint, so they chain), each positioned at the scan's near bound: a seek for
//! forward scans, a seek-for-prev for backward ones. Cursors are merged and filtered to the
//! visible version of each key (seeking past the versions of keys overwritten many times);
//! the scan stops at the far bound or after `limit` entries, so a small window of a large
//! range reads only about what it returns. Entries taken from the cursors are counted
//! (`scan_entries` in INFO storage).

use std::ops::Bound;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use super::bloom;
use super::cursor::{table_cursor, BoxCursor, Direction, LevelCursor, MemCursor};
use super::engine::{Shared, State};
use super::iterator::{Merge, Visible, VisibleRev};
use super::key::{InternalKey, Kind, SEQNO_MAX};
use super::memtable::{Lookup, Memtable};
use super::prefix::shared_prefix;
use super::version::TableFile;
use crate::storage::{KeyRange, Result};

impl Shared {
    /// The value of `key` visible at `seqno`.
    pub(super) fn point_get(&self, state: &State, key: &[u8], seqno: u64) -> Result<Option<Bytes>> {
        let covered = state.covering_seqno(key, seqno);
        let hash = bloom::hash64(key);
        let found = state
            .memtables()
            .filter(|m| m.may_contain(hash))
            .find_map(|m| m.get(key, seqno));
        let found = match found {
            Some(found) => Some(found),
            None => {
                let mut hit = None;
                for file in state.version.tables_for_key(key) {
                    if file.meta.max_seqno < covered {
                        continue; // every version in this table is deleted
                    }
                    if let Some(l) = file.table.get_hashed(key, hash, seqno)? {
                        hit = Some(l);
                        break;
                    }
                }
                hit
            }
        };
        Ok(match found {
            Some((Lookup::Value(v), found_at)) if found_at > covered => Some(v),
            _ => None,
        })
    }

    /// Up to `limit` visible pairs of `range` at `seqno`, in key order (descending when
    /// `reverse`).
    pub(super) fn scan_at(
        &self,
        state: &State,
        range: &KeyRange,
        seqno: u64,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<(Bytes, Bytes)>> {
        let (lo, hi) = (bound_key(&range.start), bound_key(&range.end));
        let range_dels = state.range_del_sets();
        // A scan within one key group opens only the tables whose filter has the group.
        let extractor = self.opts.prefix_extractor.as_deref();
        let group = extractor.and_then(|e| Some((e.id(), bloom::hash64(shared_prefix(e, range)?))));
        let levels: Vec<Vec<Arc<TableFile>>> = state
            .version
            .levels
            .iter()
            .map(|files| {
                files
                    .iter()
                    .filter(|f| f.overlaps(lo, hi))
                    .filter(|f| group.is_none_or(|(id, h)| f.table.may_contain_group(id, h)))
                    .cloned()
                    .collect()
            })
            .collect();
        let mut out = Vec::new();
        if reverse {
            let sources = cursors(state, levels, group, &range.end, Direction::Backward)?;
            let mut entries = VisibleRev::new(Merge::reverse(sources), seqno, range_dels);
            for entry in entries.by_ref() {
                let (k, v) = entry?;
                if matches!(&range.end, Bound::Excluded(e) if k == *e) {
                    continue;
                }
                let past_start = match &range.start {
                    Bound::Included(s) => k < *s,
                    Bound::Excluded(s) => k <= *s,
                    Bound::Unbounded => false,
                };
                if past_start || out.len() >= limit {
                    break;
                }
                out.push((k, v));
            }
            self.count_scan(entries.pulled());
        } else {
            let sources = cursors(state, levels, group, &range.start, Direction::Forward)?;
            let mut entries = Visible::new(Merge::new(sources), seqno, range_dels);
            for entry in entries.by_ref() {
                let (k, v) = entry?;
                if matches!(&range.start, Bound::Excluded(s) if k == *s) {
                    continue;
                }
                let past_end = match &range.end {
                    Bound::Included(e) => k > *e,
                    Bound::Excluded(e) => k >= *e,
                    Bound::Unbounded => false,
                };
                if past_end || out.len() >= limit {
                    break;
                }
                out.push((k, v));
            }
            self.count_scan(entries.pulled());
        }
        Ok(out)
    }

    fn count_scan(&self, pulled: u64) {
        self.stats.scans.fetch_add(1, Ordering::Relaxed);
        self.stats.scan_entries.fetch_add(pulled, Ordering::Relaxed);
    }
}

fn bound_key(bound: &Bound<Bytes>) -> Option<&[u8]> {
    match bound {
        Bound::Included(k) | Bound::Excluded(k) => Some(k),
        Bound::Unbounded => None,
    }
}

/// Cursors over every memtable and table that may hold keys of the scan (`group`: the
/// grouping and prefix hash all its keys share, if any), positioned at
/// `near` (the range bound the scan starts from) in `direction`: the first version of the
/// first key at or after it forwards, the last version of the last key at or before it
/// backwards.
fn cursors<'a>(
    state: &'a State,
    levels: Vec<Vec<Arc<TableFile>>>,
    group: Option<(u32, u64)>,
    near: &Bound<Bytes>,
    direction: Direction,
) -> Result<Vec<BoxCursor<'a>>> {
    let target = bound_key(near).map(|k| {
        let k = Bytes::copy_from_slice(k);
        match direction {
            Direction::Forward => InternalKey::new(k, SEQNO_MAX, Kind::Put),
            // The last internal key of the bound: its oldest possible version.
            Direction::Backward => InternalKey::new(k, 0, Kind::Delete),
        }
    });
    let mut cursors: Vec<BoxCursor> = Vec::new();
    let may_hold = |m: &Memtable| group.is_none_or(|(id, h)| m.may_contain_group(id, h));
    for mem in state.memtables().filter(|m| may_hold(m)) {
        cursors.push(Box::new(MemCursor::new(mem, direction)));
    }
    for (level, files) in levels.into_iter().enumerate() {
        if level == 0 {
            cursors.extend(files.iter().map(|f| table_cursor(f, direction)));
        } else if !files.is_empty() {
            cursors.push(Box::new(LevelCursor::new(files, direction)));
        }
    }
    if let Some(target) = &target {
        for cursor in &mut cursors {
            cursor.seek(target)?;
        }
    }
    Ok(cursors)
}
