//! The background worker: flushes immutable memtables to level 0 and runs leveled
//! compaction. What to compact is a pure function of the current version ([`pick`]).
//!
//! Compaction keeps every version a live snapshot may read (all versions newer than the
//! oldest snapshot, plus the newest one at or below it) and drops the rest; a delete at or
//! below the oldest snapshot is dropped too when no deeper level overlaps (nothing older can
//! resurface), and so is every point covered by a range tombstone all snapshots see. Tables
//! that may still hold points a tombstone covers are compacted until none does, and then the
//! tombstone leaves the version.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;

use super::cursor::BoxCursor;
use super::engine::{LsmOptions, Shared, State, DELETES_FLUSH_MIN};
use super::flush::write_memtable;
use super::iterator::Merge;
use super::key::{parse, InternalKey, Kind};
use super::manifest::{FileMeta, VersionEdit};
use super::range_del::{RangeDels, RangeTombstone};
use super::sstable::TableBuilder;
use super::version::{open_table, table_path, user_range, TableFile, Version, LEVELS};
use crate::storage::{Result, StorageError};

/// One compaction: `inputs` of `level` merged with the overlapping `next` files of
/// `output_level` (`level + 1`, or `level` itself to rewrite a bottom table in place).
pub struct Task {
    pub level: usize,
    pub output_level: usize,
    pub inputs: Vec<Arc<TableFile>>,
    pub next: Vec<Arc<TableFile>>,
}

/// Level 0 merged into level 1.
fn level0_task(v: &Version) -> Option<Task> {
    let inputs = v.levels[0].clone();
    let (lo, hi) = user_range(&inputs)?;
    Some(Task {
        level: 0,
        output_level: 1,
        next: v.overlapping(1, &lo, &hi),
        inputs,
    })
}

/// `file` of `level` merged into the next level, or rewritten in place when nothing deeper
/// overlaps it.
fn file_task(v: &Version, level: usize, file: &Arc<TableFile>, in_place_if_bottom: bool) -> Task {
    let (lo, hi) = (file.smallest_user(), file.largest_user());
    let deeper = (level + 1..LEVELS).any(|l| !v.overlapping(l, lo, hi).is_empty());
    let output_level = if level + 1 < LEVELS && (deeper || !in_place_if_bottom) {
        level + 1
    } else {
        level
    };
    let next = if output_level == level {
        Vec::new()
    } else {
        v.overlapping(output_level, lo, hi)
    };
    Task {
        level,
        output_level,
        inputs: vec![file.clone()],
        next,
    }
}

/// Byte target of a level (level 1 and deeper).
fn level_target(opts: &LsmOptions, level: usize) -> u64 {
    opts.level1_bytes
        .saturating_mul(opts.level_ratio.saturating_pow(level as u32 - 1))
}

/// Chooses the next compaction, if any: level 0 by file count, deeper levels by size, then
/// tables mostly of deletes, then tables that may hold points covered by a range tombstone
/// every snapshot sees.
pub fn pick(opts: &LsmOptions, v: &Version, oldest_snapshot: u64) -> Option<Task> {
    if v.levels[0].len() >= opts.l0_compaction_trigger {
        return level0_task(v);
    }
    for level in 1..LEVELS - 1 {
        if v.level_bytes(level) > level_target(opts, level) {
            let file = v.levels[level]
                .iter()
                .max_by_key(|f| (f.meta.size, std::cmp::Reverse(f.meta.id)))?;
            return Some(file_task(v, level, file, false));
        }
    }
    // Tables mostly of deletes: compaction drops them where they meet what they delete (at
    // the bottom, where nothing older can lie), which keeps scans from stepping over them.
    // Only once every snapshot sees them all, so a rewrite at the bottom always drops them.
    let deletes_heavy = |f: &&Arc<TableFile>| {
        let p = f.table.properties();
        p.tombstones >= DELETES_FLUSH_MIN as u64
            && p.tombstones * 2 >= p.entries
            && p.max_seqno <= oldest_snapshot
    };
    if v.levels[0].iter().any(|f| deletes_heavy(&f)) {
        return level0_task(v);
    }
    for level in 1..LEVELS {
        if let Some(file) = v.levels[level].iter().find(deletes_heavy) {
            return Some(file_task(v, level, file, true));
        }
    }
    for t in v.range_dels.iter().filter(|t| t.seqno <= oldest_snapshot) {
        for (level, files) in v.levels.iter().enumerate() {
            if let Some(file) = files.iter().find(|f| f.may_hold_covered(t)) {
                return if level == 0 {
                    level0_task(v)
                } else {
                    Some(file_task(v, level, file, true))
                };
            }
        }
    }
    None
}

/// Range tombstones no table can hold a covered point for any more.
pub fn spent_range_dels(v: &Version, oldest_snapshot: u64) -> Vec<u64> {
    v.range_dels
        .iter()
        .filter(|t| t.seqno <= oldest_snapshot && !v.files().any(|f| f.may_hold_covered(t)))
        .map(|t| t.seqno)
        .collect()
}

/// Starts the background threads: one flushes memtables, one compacts, so a long
/// compaction never holds up a flush (and the writers waiting on it).
pub(super) fn spawn(shared: Arc<Shared>) -> Vec<JoinHandle<()>> {
    let start = |name: &str, job: fn(&Shared) -> Result<bool>| {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || run(&shared, job))
            .expect("spawn an LSM worker")
    };
    vec![
        start("basalt-flush", flush_next),
        start("basalt-compact", compact_next),
    ]
}

/// Flushes the oldest immutable memtable, if any; otherwise collects the active memtable's
/// garbage the last writes left.
fn flush_next(shared: &Shared) -> Result<bool> {
    let state = shared.state.read().clone();
    match state.imm.last().cloned() {
        Some((mem, wal_id)) => flush(shared, mem, wal_id).map(|_| true),
        None => Ok(shared.collect_garbage_when_idle()),
    }
}

/// Runs the next compaction, or drops spent range tombstones, if there is work.
fn compact_next(shared: &Shared) -> Result<bool> {
    let state = shared.state.read().clone();
    let oldest = shared.oldest_snapshot();
    if let Some(task) = pick(&shared.opts, &state.version, oldest) {
        compact(shared, task).map(|_| true)
    } else if !spent_range_dels(&state.version, oldest).is_empty() {
        // Tombstones whose last snapshot went away since the last flush or compaction.
        drop_spent_range_dels(shared).map(|_| true)
    } else {
        Ok(false)
    }
}

/// Runs `job` until shutdown, sleeping while it finds nothing to do.
fn run(shared: &Shared, job: fn(&Shared) -> Result<bool>) {
    loop {
        match job(shared) {
            Ok(true) => {
                shared.notify();
                continue;
            }
            Ok(false) => {}
            Err(e) => {
                shared.poison(format!("background flush or compaction failed: {e}"));
                return;
            }
        }
        if shared.shutting_down() {
            return;
        }
        let guard = shared.signal.0.lock().unwrap_or_else(|e| e.into_inner());
        if *guard {
            return;
        }
        let _ = shared
            .signal
            .1
            .wait_timeout(guard, Duration::from_millis(200));
    }
}

/// What a flush or compaction changes in the version.
#[derive(Default)]
struct Change {
    added: Vec<Arc<TableFile>>,
    removed: Vec<u64>,
    range_dels_added: Vec<RangeTombstone>,
    range_dels_dropped: Vec<u64>,
    /// The WAL id of the memtable a flush wrote.
    flushed_wal: Option<u64>,
}

/// Installs a new version (and, for a flush, drops the flushed memtable).
fn install(shared: &Shared, change: Change) {
    let flushed_wal = change.flushed_wal;
    let mut guard = shared.state.write();
    let old = guard.clone();
    let imm = old
        .imm
        .iter()
        .filter(|(_, id)| Some(*id) != flushed_wal)
        .cloned()
        .collect();
    let version = Arc::new(
        old.version
            .apply(change.added, &change.removed)
            .with_range_dels(change.range_dels_added, &change.range_dels_dropped),
    );
    *guard = Arc::new(State {
        mem: old.mem.clone(),
        wal_id: old.wal_id,
        imm,
        version,
    });
}

fn flush(shared: &Shared, mem: Arc<super::memtable::Memtable>, wal_id: u64) -> Result<()> {
    // Every table that holds data older than `mem`; a concurrent compaction only moves it.
    let state_version = shared.state.read().version.clone();
    let mut change = Change {
        flushed_wal: Some(wal_id),
        range_dels_added: mem.range_dels(),
        ..Change::default()
    };
    let mut edit = VersionEdit {
        log_number: Some(wal_id + 1),
        range_dels_added: change.range_dels_added.clone(),
        ..VersionEdit::default()
    };
    if !mem.is_empty() {
        edit.last_seqno = Some(mem.max_seqno());
        let id = shared.next_file_id.fetch_add(1, Ordering::Relaxed);
        let oldest = shared.oldest_snapshot();
        let written = write_memtable(&shared.dir, id, &mem, &shared.opts, oldest, &state_version)?;
        // Newer memtables may hold tombstones below `oldest` that were not applied.
        let cleaned_through = oldest.min(mem.max_seqno());
        if let Some(meta) = written {
            shared
                .stats
                .bytes_flushed
                .fetch_add(meta.size, Ordering::Relaxed);
            edit.added.push(meta.clone());
            change.added.push(open_table(
                &shared.dir,
                meta,
                &shared.cache,
                cleaned_through,
            )?);
        }
    }
    edit.next_file_id = Some(shared.next_file_id.load(Ordering::Relaxed));
    log_edit(shared, &edit)?;
    install(shared, change);
    shared
        .flushed_seqno
        .fetch_max(mem.max_seqno(), Ordering::Release);
    let _ = std::fs::remove_file(super::wal::wal_path(&shared.dir, wal_id));
    shared.stats.flushes.fetch_add(1, Ordering::Relaxed);
    drop_spent_range_dels(shared)
}

/// Appends a version edit to the manifest, durably.
fn log_edit(shared: &Shared, edit: &VersionEdit) -> Result<()> {
    shared.manifest.lock().log(edit).map_err(StorageError::Io)
}

/// Drops the range tombstones no table needs any more from the version and the manifest.
fn drop_spent_range_dels(shared: &Shared) -> Result<()> {
    let version = shared.state.read().version.clone();
    let spent = spent_range_dels(&version, shared.oldest_snapshot());
    if spent.is_empty() {
        return Ok(());
    }
    let edit = VersionEdit {
        range_dels_dropped: spent.clone(),
        ..VersionEdit::default()
    };
    log_edit(shared, &edit)?;
    install(
        shared,
        Change {
            range_dels_dropped: spent,
            ..Change::default()
        },
    );
    Ok(())
}

/// Whether a delete can be dropped: no level below `output_level` overlaps `[lo, hi]`.
fn is_bottom(v: &Version, output_level: usize, lo: &[u8], hi: &[u8]) -> bool {
    (output_level + 1..LEVELS).all(|l| v.overlapping(l, lo, hi).is_empty())
}

fn compact(shared: &Shared, task: Task) -> Result<()> {
    let output_level = task.output_level;
    tracing::debug!(
        level = task.level,
        output_level,
        inputs = task.inputs.len(),
        next = task.next.len(),
        "compaction"
    );
    let all: Vec<Arc<TableFile>> = task
        .inputs
        .iter()
        .chain(task.next.iter())
        .cloned()
        .collect();
    let Some((lo, hi)) = user_range(&all) else {
        return Ok(());
    };
    // Read before the version: every tombstone at or below it is in that version (a flush
    // installs its version before advancing it).
    let flushed_seqno = shared.flushed_seqno.load(Ordering::Acquire);
    let version = shared.state.read().version.clone();
    let bottom = is_bottom(&version, output_level, &lo, &hi);
    let compression = if bottom {
        shared.opts.bottom_compression
    } else {
        shared.opts.upper_compression
    };
    // Registered while the compaction runs: the filter's lookups read at it, in the active
    // memtable too, whose garbage collector must keep what it sees.
    let pin = shared.pin_oldest();
    let oldest_snapshot = pin.seqno;
    // Tombstones still in memtables are not applied here: outputs are clean only up to the
    // tables' newest data.
    let cleaned_through = oldest_snapshot.min(flushed_seqno);
    let range_dels: RangeDels = version
        .range_dels
        .iter()
        .filter(|t| t.seqno <= oldest_snapshot && t.overlaps(&lo, &hi))
        .cloned()
        .collect();
    let sources: Vec<BoxCursor> = all
        .iter()
        .map(|f| Box::new(f.table.iter_uncached()) as BoxCursor)
        .collect();

    let mut outputs: Vec<FileMeta> = Vec::new();
    let mut builder: Option<(u64, TableBuilder)> = None;
    let mut current: Option<Vec<u8>> = None;
    let mut kept_at_or_below_snapshot = false;
    let filter = shared.opts.compaction_filter.as_deref();
    if let Some(f) = filter {
        f.begin();
    }
    let read_state = shared.state.read().clone();
    let lookup = |key: &[u8]| shared.point_get(&read_state, key, oldest_snapshot);
    let mut filtered = 0u64;
    for entry in Merge::new(sources) {
        let (raw, value) = entry?;
        let Some((user_key, seqno, stored_kind)) = parse(&raw) else {
            continue;
        };
        let new_user_key = current.as_deref() != Some(user_key);
        if new_user_key {
            current = Some(user_key.to_vec());
            kept_at_or_below_snapshot = false;
            // Split output files only between user keys, so levels stay disjoint.
            if builder
                .as_ref()
                .is_some_and(|(_, b)| b.bytes_written() >= shared.opts.target_file_bytes)
            {
                let (id, b) = builder.take().unwrap_or_else(|| unreachable!());
                outputs.push(finish_output(b, id, output_level)?);
            }
        }
        let covered =
            !range_dels.is_empty() && range_dels.covering_seqno(user_key, oldest_snapshot) > seqno;
        let mut kind = stored_kind;
        let keep = if covered {
            false
        } else if seqno > oldest_snapshot {
            true
        } else if kept_at_or_below_snapshot {
            false
        } else {
            kept_at_or_below_snapshot = true;
            if kind == Kind::Put && filter.is_some_and(|f| f.remove(user_key, &value, &lookup)) {
                // Older versions below must stay hidden: a delete replaces the value unless
                // nothing older can lie deeper.
                filtered += 1;
                kind = Kind::Delete;
            }
            !(kind == Kind::Delete && bottom)
        };
        if !keep {
            continue;
        }
        let (raw, value) = if kind == stored_kind {
            (raw, value)
        } else {
            let tombstone = InternalKey::new(Bytes::copy_from_slice(user_key), seqno, kind);
            (tombstone.encode_vec(), Bytes::new())
        };
        if builder.is_none() {
            let id = shared.next_file_id.fetch_add(1, Ordering::Relaxed);
            builder = Some((
                id,
                TableBuilder::create(&table_path(&shared.dir, id), compression)?
                    .with_prefixes(shared.opts.prefix_extractor.clone()),
            ));
        }
        if let Some((_, b)) = builder.as_mut() {
            b.add(&raw, &value)?;
        }
    }
    if let Some((id, b)) = builder.take() {
        outputs.push(finish_output(b, id, output_level)?);
    }
    let removed: Vec<u64> = all.iter().map(|f| f.meta.id).collect();
    let edit = VersionEdit {
        added: outputs.clone(),
        deleted: all.iter().map(|f| (f.meta.level, f.meta.id)).collect(),
        next_file_id: Some(shared.next_file_id.load(Ordering::Relaxed)),
        ..VersionEdit::default()
    };
    log_edit(shared, &edit)?;
    let mut added = Vec::with_capacity(outputs.len());
    for meta in outputs {
        shared
            .stats
            .bytes_compacted
            .fetch_add(meta.size, Ordering::Relaxed);
        added.push(open_table(
            &shared.dir,
            meta,
            &shared.cache,
            cleaned_through,
        )?);
    }
    install(
        shared,
        Change {
            added,
            removed: removed.clone(),
            ..Change::default()
        },
    );
    for id in removed {
        let _ = std::fs::remove_file(table_path(&shared.dir, id));
    }
    shared.stats.compactions.fetch_add(1, Ordering::Relaxed);
    shared
        .stats
        .filtered_values
        .fetch_add(filtered, Ordering::Relaxed);
    drop_spent_range_dels(shared)
}

fn finish_output(builder: TableBuilder, id: u64, level: usize) -> Result<FileMeta> {
    let (props, size) = builder.finish()?;
    Ok(FileMeta {
        level: level as u8,
        id,
        size,
        max_seqno: props.max_seqno,
        smallest: props.smallest,
        largest: props.largest,
    })
}
