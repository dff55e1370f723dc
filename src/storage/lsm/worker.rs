//! The background worker: flushes immutable memtables to level 0 and runs leveled
//! compaction. What to compact is a pure function of the current version ([`pick`]).
//!
//! Compaction keeps every version a live snapshot may read (all versions newer than the
//! oldest snapshot, plus the newest one at or below it) and drops the rest; a delete at or
//! below the oldest snapshot is dropped too when no deeper level overlaps (nothing older can
//! resurface).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;

use super::engine::{write_memtable, LsmOptions, Shared, State};
use super::iterator::{Merge, Source};
use super::key::{InternalKey, Kind};
use super::manifest::{FileMeta, VersionEdit};
use super::sstable::TableBuilder;
use super::version::{open_table, table_path, user_range, TableFile, Version, LEVELS};
use crate::storage::{Result, StorageError};

/// One compaction: `inputs` of `level` merged with the overlapping `next` files into
/// `level + 1`.
pub struct Task {
    pub level: usize,
    pub inputs: Vec<Arc<TableFile>>,
    pub next: Vec<Arc<TableFile>>,
}

/// Byte target of a level (level 1 and deeper).
fn level_target(opts: &LsmOptions, level: usize) -> u64 {
    opts.level1_bytes
        .saturating_mul(opts.level_ratio.saturating_pow(level as u32 - 1))
}

/// Chooses the next compaction, if any: level 0 by file count, deeper levels by size.
pub fn pick(opts: &LsmOptions, v: &Version) -> Option<Task> {
    if v.levels[0].len() >= opts.l0_compaction_trigger {
        let inputs = v.levels[0].clone();
        let (lo, hi) = user_range(&inputs)?;
        return Some(Task {
            level: 0,
            next: v.overlapping(1, &lo, &hi),
            inputs,
        });
    }
    for level in 1..LEVELS - 1 {
        if v.level_bytes(level) > level_target(opts, level) {
            let file = v.levels[level]
                .iter()
                .max_by_key(|f| (f.meta.size, std::cmp::Reverse(f.meta.id)))?;
            let next = v.overlapping(level + 1, file.smallest_user(), file.largest_user());
            return Some(Task {
                level,
                inputs: vec![file.clone()],
                next,
            });
        }
    }
    None
}

pub(super) fn spawn(shared: Arc<Shared>) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name("basalt-lsm".into())
        .spawn(move || run(shared))
        .expect("spawn the LSM worker")
}

fn run(shared: Arc<Shared>) {
    loop {
        let state = shared.state.read().clone();
        let result = if let Some((mem, wal_id)) = state.imm.last().cloned() {
            flush(&shared, mem, wal_id).map(|_| true)
        } else if let Some(task) = pick(&shared.opts, &state.version) {
            compact(&shared, task).map(|_| true)
        } else {
            Ok(false)
        };
        match result {
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

/// Installs a new version (and, for a flush, drops the flushed memtable).
fn install(shared: &Shared, added: Vec<Arc<TableFile>>, removed: &[u64], flushed_wal: Option<u64>) {
    let mut guard = shared.state.write();
    let old = guard.clone();
    let imm = old
        .imm
        .iter()
        .filter(|(_, id)| Some(*id) != flushed_wal)
        .cloned()
        .collect();
    let version = Arc::new(old.version.apply(added, removed));
    *guard = Arc::new(State {
        mem: old.mem.clone(),
        wal_id: old.wal_id,
        imm,
        version,
    });
}

fn flush(shared: &Shared, mem: Arc<super::memtable::Memtable>, wal_id: u64) -> Result<()> {
    let mut added = Vec::new();
    let mut edit = VersionEdit {
        log_number: Some(wal_id + 1),
        ..VersionEdit::default()
    };
    if !mem.is_empty() {
        let id = shared.next_file_id.fetch_add(1, Ordering::Relaxed);
        let meta = write_memtable(&shared.dir, id, &mem, shared.opts.upper_compression)?;
        shared
            .stats
            .bytes_flushed
            .fetch_add(meta.size, Ordering::Relaxed);
        edit.last_seqno = Some(mem.max_seqno());
        edit.added.push(meta.clone());
        added.push(open_table(&shared.dir, meta, &shared.cache)?);
    }
    edit.next_file_id = Some(shared.next_file_id.load(Ordering::Relaxed));
    shared
        .manifest
        .lock()
        .log(&edit)
        .map_err(StorageError::Io)?;
    install(shared, added, &[], Some(wal_id));
    let _ = std::fs::remove_file(super::wal::wal_path(&shared.dir, wal_id));
    shared.stats.flushes.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Whether a delete can be dropped: no level below `output_level` overlaps `[lo, hi]`.
fn is_bottom(v: &Version, output_level: usize, lo: &[u8], hi: &[u8]) -> bool {
    (output_level + 1..LEVELS).all(|l| v.overlapping(l, lo, hi).is_empty())
}

fn compact(shared: &Shared, task: Task) -> Result<()> {
    let output_level = task.level + 1;
    let all: Vec<Arc<TableFile>> = task
        .inputs
        .iter()
        .chain(task.next.iter())
        .cloned()
        .collect();
    let Some((lo, hi)) = user_range(&all) else {
        return Ok(());
    };
    let version = shared.state.read().version.clone();
    let bottom = is_bottom(&version, output_level, &lo, &hi);
    let compression = if bottom {
        shared.opts.bottom_compression
    } else {
        shared.opts.upper_compression
    };
    let oldest_snapshot = shared.oldest_snapshot();
    let sources: Vec<Source> = all
        .iter()
        .map(|f| Box::new(f.table.iter()) as Source)
        .collect();

    let mut outputs: Vec<FileMeta> = Vec::new();
    let mut builder: Option<(u64, TableBuilder)> = None;
    let mut current: Option<Bytes> = None;
    let mut kept_at_or_below_snapshot = false;
    for entry in Merge::new(sources) {
        let (raw, value) = entry?;
        let Some(key) = InternalKey::decode(&Bytes::from(raw.clone())) else {
            continue;
        };
        let new_user_key = current.as_ref() != Some(&key.user_key);
        if new_user_key {
            current = Some(key.user_key.clone());
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
        let keep = if key.seqno > oldest_snapshot {
            true
        } else if kept_at_or_below_snapshot {
            false
        } else {
            kept_at_or_below_snapshot = true;
            !(key.kind == Kind::Delete && bottom)
        };
        if !keep {
            continue;
        }
        if builder.is_none() {
            let id = shared.next_file_id.fetch_add(1, Ordering::Relaxed);
            builder = Some((
                id,
                TableBuilder::create(&table_path(&shared.dir, id), compression)?,
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
    shared
        .manifest
        .lock()
        .log(&edit)
        .map_err(StorageError::Io)?;
    let mut added = Vec::with_capacity(outputs.len());
    for meta in outputs {
        shared
            .stats
            .bytes_compacted
            .fetch_add(meta.size, Ordering::Relaxed);
        added.push(open_table(&shared.dir, meta, &shared.cache)?);
    }
    install(shared, added, &removed, None);
    for id in removed {
        let _ = std::fs::remove_file(table_path(&shared.dir, id));
    }
    shared.stats.compactions.fetch_add(1, Ordering::Relaxed);
    Ok(())
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
