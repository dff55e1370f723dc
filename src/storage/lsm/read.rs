//! The read path: point lookups and bounded scans, forwards and backwards, at a sequence
//! number over one `State` (memtables and version).
//!
//! A scan opens one source per memtable and level-0 table and one per deeper level (its
//! tables are disjoint, so they chain), each positioned at the scan's near bound: a seek for
//! forward scans, a seek-for-prev for backward ones. Sources are merged and filtered to the
//! visible version of each key; the scan stops at the far bound or after `limit` entries,
//! so a small window of a large range reads only about what it returns.

use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;

use super::engine::{Shared, State};
use super::iterator::{Merge, Source, Visible, VisibleRev};
use super::key::{InternalKey, Kind, SEQNO_MAX};
use super::memtable::Lookup;
use super::version::TableFile;
use crate::storage::{KeyRange, Result};

impl Shared {
    /// The value of `key` visible at `seqno`.
    pub(super) fn point_get(&self, state: &State, key: &[u8], seqno: u64) -> Result<Option<Bytes>> {
        let covered = state.covering_seqno(key, seqno);
        let found = state.memtables().find_map(|m| m.get(key, seqno));
        let found = match found {
            Some(found) => Some(found),
            None => {
                let mut hit = None;
                for file in state.version.tables_for_key(key) {
                    if file.meta.max_seqno < covered {
                        continue; // every version in this table is deleted
                    }
                    if let Some(l) = file.table.get(key, seqno)? {
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
        let range_dels = state
            .range_dels()
            .filter(|t| match (lo, hi) {
                (Some(lo), Some(hi)) => t.overlaps(lo, hi),
                (Some(lo), None) => t.end[..] > *lo,
                (None, Some(hi)) => t.start[..] <= *hi,
                (None, None) => true,
            })
            .collect();
        let levels: Vec<Vec<Arc<TableFile>>> = state
            .version
            .levels
            .iter()
            .map(|files| {
                files
                    .iter()
                    .filter(|f| f.overlaps(lo, hi))
                    .cloned()
                    .collect()
            })
            .collect();
        let mut out = Vec::new();
        if reverse {
            let sources = backward_sources(state, levels, &range.end);
            let entries = VisibleRev::new(Merge::reverse(sources), seqno, range_dels);
            for entry in entries {
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
        } else {
            let sources = forward_sources(state, levels, &range.start);
            let entries = Visible::new(Merge::new(sources), seqno, range_dels);
            for entry in entries {
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
        }
        Ok(out)
    }
}

fn bound_key(bound: &Bound<Bytes>) -> Option<&[u8]> {
    match bound {
        Bound::Included(k) | Bound::Excluded(k) => Some(k),
        Bound::Unbounded => None,
    }
}

/// Sources positioned at the first version of the first key at or after `start`.
fn forward_sources<'a>(
    state: &'a State,
    levels: Vec<Vec<Arc<TableFile>>>,
    start: &Bound<Bytes>,
) -> Vec<Source<'a>> {
    let seek =
        bound_key(start).map(|k| InternalKey::new(Bytes::copy_from_slice(k), SEQNO_MAX, Kind::Put));
    let seek_encoded = seek.as_ref().map(|k| k.encode());
    let mut sources: Vec<Source> = Vec::new();
    for mem in state.memtables() {
        let from = seek.clone().map_or(Bound::Unbounded, Bound::Included);
        sources.push(Box::new(
            mem.entries_from(from).map(|(k, v)| Ok((k.encode_vec(), v))),
        ));
    }
    for (level, files) in levels.into_iter().enumerate() {
        if level == 0 {
            for f in files {
                sources.push(table_source(f, seek_encoded.clone()));
            }
        } else if !files.is_empty() {
            let seek = seek_encoded.clone();
            sources.push(Box::new(
                files
                    .into_iter()
                    .flat_map(move |f| table_source(f, seek.clone())),
            ));
        }
    }
    sources
}

/// Sources positioned at the last version of the last key at or before `end`, walking back.
fn backward_sources<'a>(
    state: &'a State,
    levels: Vec<Vec<Arc<TableFile>>>,
    end: &Bound<Bytes>,
) -> Vec<Source<'a>> {
    // The last internal key of the end key: its oldest possible version.
    let target =
        bound_key(end).map(|k| InternalKey::new(Bytes::copy_from_slice(k), 0, Kind::Delete));
    let target_encoded = target.as_ref().map(|k| k.encode());
    let mut sources: Vec<Source> = Vec::new();
    for mem in state.memtables() {
        let until = target.clone().map_or(Bound::Unbounded, Bound::Included);
        sources.push(Box::new(
            mem.entries_until_rev(until)
                .map(|(k, v)| Ok((k.encode_vec(), v))),
        ));
    }
    for (level, files) in levels.into_iter().enumerate() {
        if level == 0 {
            for f in files {
                sources.push(table_rev_source(f, target_encoded.clone()));
            }
        } else if !files.is_empty() {
            let target = target_encoded.clone();
            sources.push(Box::new(
                files
                    .into_iter()
                    .rev()
                    .flat_map(move |f| table_rev_source(f, target.clone())),
            ));
        }
    }
    sources
}

/// A table's entries from `seek` on, as a merge source.
fn table_source(file: Arc<TableFile>, seek: Option<Bytes>) -> Source<'static> {
    let mut iter = file.table.iter();
    match seek.map(|s| iter.seek(&s)) {
        Some(Err(e)) => Box::new(std::iter::once(Err(e))),
        _ => Box::new(iter),
    }
}

/// A table's entries from `target` backwards, as a merge source.
fn table_rev_source(file: Arc<TableFile>, target: Option<Bytes>) -> Source<'static> {
    let mut iter = file.table.rev_iter();
    match target.map(|t| iter.seek_for_prev(&t)) {
        Some(Err(e)) => Box::new(std::iter::once(Err(e))),
        _ => Box::new(iter),
    }
}
