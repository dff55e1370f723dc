//! `LsmEngine`: the `Engine` trait over WAL, memtables and leveled SSTables.
//!
//! Writes are serialised by the writer lock: each batch gets consecutive sequence numbers,
//! is appended to the WAL (synced per `appendfsync`), inserted into the memtable, and then
//! published by advancing the visible sequence number, so readers see whole batches. A full
//! memtable becomes immutable and a background worker flushes it to level 0 and compacts
//! levels (`worker.rs`). Readers clone the current `State` under a short read lock and read at
//! a sequence number. An I/O failure on the write path poisons the engine: later writes fail.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex as StdMutex};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};

use super::batch::{Op, OpKind};
use super::cache::BlockCache;
use super::epochs::{ReadEpochs, ReadGuard};
use super::flush::write_memtable;
use super::gc::MemtableGc;
use super::key::Kind;
use super::manifest::{Manifest, VersionEdit};
use super::memtable::{Hidden, Memtable};
use super::prefix::PrefixExtractor;
use super::range_del::{RangeDels, RangeTombstone};
use super::sstable::Compression;
use super::stats::{self, LsmStats};
use super::version::{open_table, Version};
use super::wal::{self, SyncPolicy, Wal};
use super::worker;
use crate::storage::{Engine, KeyRange, Result, Snapshot, StorageError, WriteBatch, WriteOp};

/// Tuning; the defaults suit a server, tests use small sizes to exercise flush and compaction.
#[derive(Debug, Clone)]
pub struct LsmOptions {
    pub memtable_bytes: usize,
    /// Immutable memtables allowed before writes stall.
    pub max_immutable: usize,
    pub l0_compaction_trigger: usize,
    /// Level-0 files at which writes stall until compaction catches up.
    pub l0_stall_files: usize,
    pub level1_bytes: u64,
    pub level_ratio: u64,
    pub target_file_bytes: u64,
    pub sync: SyncPolicy,
    pub upper_compression: Compression,
    pub bottom_compression: Compression,
    /// Bytes of decompressed data blocks kept in memory.
    pub block_cache_bytes: usize,
    /// Bytes of rows (a key's newest version in a table) kept for hot point reads; 0 = off.
    pub row_cache_bytes: usize,
    /// Log writes ahead (the default). Off when another log makes writes durable (the Raft
    /// log, in a replicated server): a crash then loses what was written since the last
    /// flush, and [`LsmEngine::flushed_seqno`] says up to where data survived.
    pub wal: bool,
    /// Asked during compaction whether a value may go (the keyspace's dead records).
    pub compaction_filter: Option<Arc<dyn CompactionFilter>>,
    /// Groups keys for prefix bloom filters (`prefix.rs`): scans within a group skip the
    /// tables that hold none of it.
    pub prefix_extractor: Option<Arc<dyn PrefixExtractor>>,
}

/// Decides during compaction whether a stored value is dead to its owner (an element of a
/// deleted collection, say) and may be removed. It is asked only about the newest version
/// of a key that every snapshot sees, and may read other keys with `lookup`, which reads at
/// the oldest live snapshot: a value dead there is dead to every reader. It must answer
/// `true` only for values its owner already treats as absent, and keep a value when a
/// lookup fails.
pub trait CompactionFilter: Send + Sync + std::fmt::Debug {
    /// Called before each compaction: what a filter remembered from lookups is stale now.
    fn begin(&self) {}
    fn remove(&self, key: &[u8], value: &[u8], lookup: &FilterLookup) -> bool;
}

/// Reads a key for a [`CompactionFilter`] (at the oldest live snapshot).
pub type FilterLookup<'a> = dyn Fn(&[u8]) -> Result<Option<Bytes>> + 'a;

impl LsmOptions {
    /// A new active memtable, its bloom filter sized by its budget (a bit per 8 bytes:
    /// well over 10 bits a key for entries of typical size).
    pub(super) fn new_memtable(&self) -> Memtable {
        Memtable::with_filter(self.memtable_bytes / 8, self.prefix_extractor.clone())
    }
}

/// Point deletes that make a memtable worth flushing early (see `wants_rotation`), at the
/// least; tables holding as many are compacted early (`worker::pick`).
pub const DELETES_FLUSH_MIN: usize = 1024;

impl LsmOptions {
    /// Whether the active memtable should become immutable and be flushed: when full, or
    /// when most of what it holds is deletes of keys stored in tables (the garbage collector
    /// removes the others) and they pass an eighth of its budget. Scans step over deletes
    /// until compaction meets them with what they delete, which flushing starts early.
    fn wants_rotation(&self, mem: &Memtable) -> bool {
        let deletes = mem.deletes();
        mem.approximate_bytes() >= self.memtable_bytes
            || deletes >= DELETES_FLUSH_MIN
                && deletes * 2 >= mem.len()
                && deletes * MEMTABLE_DELETE_BYTES >= self.memtable_bytes / 8
    }
}

/// What a delete of a typical key costs a memtable, to weigh deletes against its budget.
const MEMTABLE_DELETE_BYTES: usize = 96;

impl Default for LsmOptions {
    fn default() -> Self {
        LsmOptions {
            memtable_bytes: 64 << 20,
            max_immutable: 2,
            l0_compaction_trigger: 4,
            l0_stall_files: 20,
            level1_bytes: 256 << 20,
            level_ratio: 10,
            target_file_bytes: 64 << 20,
            sync: SyncPolicy::EverySec,
            upper_compression: Compression::Lz4,
            bottom_compression: Compression::Zstd,
            block_cache_bytes: 64 << 20,
            row_cache_bytes: 16 << 20,
            wal: true,
            compaction_filter: None,
            prefix_extractor: None,
        }
    }
}

/// What readers see: the memtables and the live tables.
pub(super) struct State {
    pub mem: Arc<Memtable>,
    pub wal_id: u64,
    /// Immutable memtables waiting for flush, newest first, with their WAL ids.
    pub imm: Vec<(Arc<Memtable>, u64)>,
    pub version: Arc<Version>,
}

impl State {
    /// The memtables, newest first.
    pub(super) fn memtables(&self) -> impl Iterator<Item = &Arc<Memtable>> {
        std::iter::once(&self.mem).chain(self.imm.iter().map(|(m, _)| m))
    }

    /// The highest sequence number at or below `snapshot` of a range tombstone covering `key`.
    pub(super) fn covering_seqno(&self, key: &[u8], snapshot: u64) -> u64 {
        let flushed = self.version.range_dels.covering_seqno(key, snapshot);
        self.memtables()
            .map(|m| m.covering_seqno(key, snapshot))
            .fold(flushed, u64::max)
    }

    /// Every set of range tombstones (the flushed ones, then each memtable's), indexed.
    pub(super) fn range_del_sets(&self) -> Vec<Arc<RangeDels>> {
        let unflushed = self
            .memtables()
            .filter(|m| m.has_range_dels())
            .map(|m| m.range_del_index());
        std::iter::once(self.version.range_dels.clone())
            .chain(unflushed)
            .filter(|set| !set.is_empty())
            .collect()
    }

    /// Every range tombstone, flushed or not.
    pub(super) fn range_dels(&self) -> impl Iterator<Item = RangeTombstone> + '_ {
        let unflushed = self
            .memtables()
            .filter(|m| m.has_range_dels())
            .flat_map(|m| m.range_dels());
        self.version.range_dels.iter().cloned().chain(unflushed)
    }
}

/// Versions the idle collection removes per pass (the writer lock is held meanwhile).
const IDLE_GC_BUDGET: usize = 4096;

struct Writer {
    wal: Wal,
    next_seqno: u64,
    /// Versions in the active memtable waiting until no reader can see them.
    gc: MemtableGc,
}

pub(super) struct Shared {
    pub dir: PathBuf,
    pub opts: LsmOptions,
    /// The current `SyncPolicy` (changeable by CONFIG SET appendfsync).
    sync: std::sync::atomic::AtomicU8,
    pub state: RwLock<Arc<State>>,
    writer: Mutex<Writer>,
    pub visible: AtomicU64,
    /// The highest sequence number written to tables: every range tombstone at or below it
    /// is in the version (only the worker advances it).
    pub flushed_seqno: AtomicU64,
    /// Set while the WAL holds records not yet written to the file.
    wal_pending: std::sync::atomic::AtomicBool,
    pub manifest: Mutex<Manifest>,
    pub next_file_id: AtomicU64,
    poison: Mutex<Option<String>>,
    /// Wakes the worker (work to do) and stalled writers (work done); holds "shutting down".
    pub signal: (StdMutex<bool>, Condvar),
    pub snapshots: Mutex<BTreeMap<u64, usize>>,
    /// Where readers without a registered snapshot announce themselves (`epochs.rs`).
    pub epochs: ReadEpochs,
    pub cache: Arc<BlockCache>,
    pub stats: LsmStats,
    _lock: File,
}

pub struct LsmEngine {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

fn io(e: std::io::Error) -> StorageError {
    StorageError::Io(e)
}

/// Takes an exclusive lock on the data directory, so two processes never share it. A lock
/// briefly held by a child process between fork and exec (it inherits descriptors) is waited
/// out for up to a second.
fn lock_dir(dir: &Path) -> Result<File> {
    let file = File::create(dir.join("LOCK")).map_err(io)?;
    for _ in 0..100 {
        // SAFETY: flock only reads the descriptor, which `file` keeps open.
        let rc = unsafe {
            libc::flock(
                std::os::fd::AsRawFd::as_raw_fd(&file),
                libc::LOCK_EX | libc::LOCK_NB,
            )
        };
        if rc == 0 {
            return Ok(file);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err(StorageError::Poisoned(format!(
        "data directory {} is in use by another process",
        dir.display()
    )))
}

impl LsmEngine {
    pub fn open(dir: &Path, opts: LsmOptions) -> Result<LsmEngine> {
        fs::create_dir_all(dir).map_err(io)?;
        let lock = lock_dir(dir)?;
        let (mut manifest, mstate) = Manifest::open(dir).map_err(io)?;
        let cache = Arc::new(BlockCache::new(
            opts.block_cache_bytes,
            opts.row_cache_bytes,
        ));
        let mut tables = Vec::new();
        for meta in mstate.files.values() {
            tables.push(open_table(dir, meta.clone(), &cache, 0)?);
        }
        let mut version =
            Version::from_files(tables, mstate.range_dels.values().cloned().collect());
        let next_file_id = AtomicU64::new(mstate.next_file_id.max(1));
        remove_orphans(dir, &mstate.files, mstate.log_number)?;

        // Replay WALs that were not flushed, into one memtable written straight to level 0.
        let mut last_seqno = mstate.last_seqno;
        let recovered = Memtable::new();
        let mut replayed = Vec::new();
        for (id, path) in wal_files(dir)? {
            if id < mstate.log_number {
                continue;
            }
            for (first, ops) in wal::replay(&path).map_err(io)? {
                for (i, op) in ops.into_iter().enumerate() {
                    let seqno = first + i as u64;
                    let _ = apply_op(&recovered, op, seqno);
                    last_seqno = last_seqno.max(seqno);
                }
            }
            replayed.push(path);
            next_file_id.fetch_max(id + 1, Ordering::Relaxed);
        }
        let wal_id = next_file_id.fetch_add(1, Ordering::Relaxed);
        if !recovered.is_empty() {
            let id = next_file_id.fetch_add(1, Ordering::Relaxed);
            let meta = write_memtable(dir, id, &recovered, &opts, last_seqno, &version)?;
            let edit = VersionEdit {
                added: meta.iter().cloned().collect(),
                log_number: Some(wal_id),
                next_file_id: Some(next_file_id.load(Ordering::Relaxed)),
                last_seqno: Some(last_seqno),
                range_dels_added: recovered.range_dels(),
                ..VersionEdit::default()
            };
            manifest.log(&edit).map_err(io)?;
            let mut added = Vec::new();
            if let Some(meta) = meta {
                added.push(open_table(dir, meta, &cache, last_seqno)?);
            }
            version = version
                .apply(added, &[])
                .with_range_dels(recovered.range_dels(), &[]);
        } else {
            let edit = VersionEdit {
                log_number: Some(wal_id),
                next_file_id: Some(next_file_id.load(Ordering::Relaxed)),
                ..VersionEdit::default()
            };
            manifest.log(&edit).map_err(io)?;
        }
        for path in replayed {
            fs::remove_file(path).map_err(io)?;
        }
        let wal = Wal::create(dir, wal_id).map_err(io)?;
        let state = State {
            mem: Arc::new(opts.new_memtable()),
            wal_id,
            imm: Vec::new(),
            version: Arc::new(version),
        };
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            opts: opts.clone(),
            sync: std::sync::atomic::AtomicU8::new(opts.sync as u8),
            state: RwLock::new(Arc::new(state)),
            writer: Mutex::new(Writer {
                wal,
                next_seqno: last_seqno + 1,
                gc: MemtableGc::default(),
            }),
            epochs: ReadEpochs::default(),
            visible: AtomicU64::new(last_seqno),
            flushed_seqno: AtomicU64::new(last_seqno),
            wal_pending: std::sync::atomic::AtomicBool::new(false),
            manifest: Mutex::new(manifest),
            next_file_id,
            poison: Mutex::new(None),
            signal: (StdMutex::new(false), Condvar::new()),
            snapshots: Mutex::new(BTreeMap::new()),
            cache,
            stats: LsmStats::default(),
            _lock: lock,
        });
        let mut threads = worker::spawn(shared.clone());
        threads.push(spawn_syncer(shared.clone()));
        Ok(LsmEngine {
            shared,
            threads: Mutex::new(threads),
        })
    }

    pub fn stats(&self) -> &LsmStats {
        &self.shared.stats
    }

    /// Files and bytes per level, memtable bytes.
    pub fn level_summary(&self) -> (Vec<(usize, u64)>, usize) {
        let state = self.shared.state.read().clone();
        let levels = state
            .version
            .levels
            .iter()
            .map(|l| (l.len(), l.iter().map(|f| f.meta.size).sum()))
            .collect();
        let mem = state.mem.approximate_bytes()
            + state
                .imm
                .iter()
                .map(|(m, _)| m.approximate_bytes())
                .sum::<usize>();
        (levels, mem)
    }

    /// Entries the memtables hold (versions the garbage collector removed not counted).
    pub fn memtable_entries(&self) -> usize {
        self.shared
            .state
            .read()
            .clone()
            .memtables()
            .map(|m| m.len())
            .sum()
    }

    /// Every write at or below this sequence number is in tables (survives a crash even
    /// without the WAL).
    pub fn flushed_seqno(&self) -> u64 {
        self.shared.flushed_seqno.load(Ordering::Acquire)
    }

    /// The sequence number of the newest write.
    pub fn last_seqno(&self) -> u64 {
        self.shared.visible.load(Ordering::Acquire)
    }

    /// Data blocks read from files so far (block cache misses).
    pub fn block_reads(&self) -> u64 {
        self.shared.cache.block_reads()
    }

    /// Live range tombstones, flushed or not.
    pub fn range_tombstones(&self) -> usize {
        self.shared.state.read().clone().range_dels().count()
    }

    /// Waits until the worker has nothing to flush or compact (tests, benchmarks).
    pub fn wait_idle(&self) {
        loop {
            let state = self.shared.state.read().clone();
            let oldest = self.shared.oldest_snapshot();
            if state.imm.is_empty()
                && worker::pick(&self.shared.opts, &state.version, oldest).is_none()
                && worker::spent_range_dels(&state.version, oldest).is_empty()
            {
                return;
            }
            self.shared.notify();
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Stops the background threads (the data stays as written).
    pub fn close(&self) {
        let _ = self.shared.write_pending_wal();
        *self
            .shared
            .signal
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = true;
        self.shared.signal.1.notify_all();
        for t in self.threads.lock().drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for LsmEngine {
    fn drop(&mut self) {
        self.close();
    }
}

impl Shared {
    /// Removes up to `budget` versions of the active memtable that no reader can see any
    /// more (`gc.rs`); returns how many.
    fn collect_garbage(&self, w: &mut Writer, state: &State, visible: u64, budget: usize) -> u64 {
        let oldest_registered = || self.snapshots.lock().keys().next().copied();
        let removed =
            w.gc.collect(state, &self.epochs, visible, oldest_registered, budget);
        self.stats.gc_removed.fetch_add(removed, Ordering::Relaxed);
        removed
    }

    /// Collects what the last writes left queued for the garbage collector (readers still
    /// in flight held it back then) when no write is under way: once a burst of writes
    /// stops, no later write would. The flush worker calls this when it is idle. Returns
    /// whether anything was removed.
    pub fn collect_garbage_when_idle(&self) -> bool {
        let Some(mut w) = self.writer.try_lock() else {
            return false;
        };
        if w.gc.is_empty() {
            return false;
        }
        let state = self.state.read().clone();
        let visible = self.visible.load(Ordering::Acquire);
        self.collect_garbage(&mut w, &state, visible, IDLE_GC_BUDGET) > 0
    }

    pub fn notify(&self) {
        let _guard = self.signal.0.lock();
        self.signal.1.notify_all();
    }

    pub fn shutting_down(&self) -> bool {
        *self.signal.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn poison(&self, what: String) {
        tracing::error!(error = %what, "storage poisoned");
        self.poison.lock().get_or_insert(what);
    }

    pub(super) fn check_poison(&self) -> Result<()> {
        match &*self.poison.lock() {
            Some(why) => Err(StorageError::Poisoned(why.clone())),
            None => Ok(()),
        }
    }

    pub fn sync_policy(&self) -> SyncPolicy {
        match self.sync.load(Ordering::Relaxed) {
            0 => SyncPolicy::Always,
            1 => SyncPolicy::EverySec,
            _ => SyncPolicy::No,
        }
    }

    /// What a read without a registered snapshot uses: its place in the read epochs (hold it
    /// until done), the state and the sequence number. The epoch comes first, so the memtable
    /// garbage collector keeps every version this reader may need. The state comes before
    /// the sequence number: a flush or compaction drops versions below the oldest snapshot it
    /// saw, and a reader that finds the new state then reads at a sequence number at least as
    /// new as that (one that finds the old state still has every version).
    pub fn read_view(&self) -> (ReadGuard<'_>, Arc<State>, u64) {
        let guard = self.epochs.enter();
        let state = self.state.read().clone();
        (guard, state, self.visible.load(Ordering::Acquire))
    }

    /// Registers the oldest snapshot (see [`Shared::oldest_snapshot`]) until the pin is
    /// dropped, so the versions it sees stay readable, in the active memtable included.
    pub fn pin_oldest(&self) -> SnapshotPin<'_> {
        let mut snaps = self.snapshots.lock();
        let visible = self.visible.load(Ordering::Acquire);
        let seqno = snaps.keys().next().copied().unwrap_or(visible).min(visible);
        *snaps.entry(seqno).or_default() += 1;
        SnapshotPin {
            shared: self,
            seqno,
        }
    }

    /// Takes back one registration of a snapshot at `seqno`.
    fn unregister(&self, seqno: u64) {
        let mut snaps = self.snapshots.lock();
        if let Some(n) = snaps.get_mut(&seqno) {
            *n -= 1;
            if *n == 0 {
                snaps.remove(&seqno);
            }
        }
    }

    /// The oldest sequence number some reader may still read at.
    pub fn oldest_snapshot(&self) -> u64 {
        let visible = self.visible.load(Ordering::Acquire);
        self.snapshots
            .lock()
            .keys()
            .next()
            .copied()
            .unwrap_or(visible)
            .min(visible)
    }

    /// Swaps the full memtable for a new one with a new WAL, and wakes the worker.
    fn rotate(&self, w: &mut Writer) -> Result<()> {
        let id = self.next_file_id.fetch_add(1, Ordering::Relaxed);
        let new_wal = Wal::create(&self.dir, id).map_err(io)?;
        let mut old_wal = std::mem::replace(&mut w.wal, new_wal);
        w.gc.reset();
        if let Err(e) = old_wal.sync() {
            self.poison(format!("WAL fsync failed: {e}"));
            return Err(io(e));
        }
        let mut guard = self.state.write();
        let old = guard.clone();
        let mut imm = vec![(old.mem.clone(), old.wal_id)];
        imm.extend(old.imm.iter().cloned());
        *guard = Arc::new(State {
            mem: Arc::new(self.opts.new_memtable()),
            wal_id: id,
            imm,
            version: old.version.clone(),
        });
        drop(guard);
        self.notify();
        Ok(())
    }

    /// Blocks the writer while flushes or level 0 fall too far behind.
    /// Whether writes must wait: too many memtables await their flush, or too many L0
    /// files their compaction.
    fn behind(&self) -> bool {
        let state = self.state.read();
        state.imm.len() > self.opts.max_immutable
            || state.version.levels[0].len() >= self.opts.l0_stall_files
    }

    fn stall_if_needed(&self) {
        let mut counted = false;
        loop {
            if !self.behind() || self.poison.lock().is_some() {
                return;
            }
            if !counted {
                self.stats.write_stalls.fetch_add(1, Ordering::Relaxed);
                counted = true;
            }
            self.notify();
            let guard = self.signal.0.lock().unwrap_or_else(|e| e.into_inner());
            let _ = self.signal.1.wait_timeout(guard, Duration::from_millis(20));
        }
    }

    fn sync_wal(&self) -> Result<()> {
        let mut w = self.writer.lock();
        self.wal_pending.store(false, Ordering::Release);
        w.wal.sync().map_err(|e| {
            self.poison(format!("WAL fsync failed: {e}"));
            io(e)
        })
    }

    /// Writes pending WAL records to the file (group commit), before replies go out.
    fn write_pending_wal(&self) -> Result<()> {
        if !self.wal_pending.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let mut w = self.writer.lock();
        w.wal.write_pending().map_err(|e| {
            self.poison(format!("WAL write failed: {e}"));
            io(e)
        })
    }
}

/// A write batch as logged operations.
fn batch_ops(mut batch: WriteBatch) -> Vec<Op> {
    batch.drop_superseded();
    batch
        .into_ops()
        .into_iter()
        .map(|op| match op {
            WriteOp::Put(key, value) => Op {
                kind: OpKind::Put,
                key,
                value,
            },
            WriteOp::Delete(key) => Op {
                kind: OpKind::Delete,
                key,
                value: Bytes::new(),
            },
            WriteOp::DeleteRange(start, end) => Op {
                kind: OpKind::DeleteRange,
                key: start,
                value: end,
            },
        })
        .collect()
}

/// Applies one logged operation to a memtable; says what older version written there it
/// hid, if any.
fn apply_op(mem: &Memtable, op: Op, seqno: u64) -> Option<Hidden> {
    match op.kind {
        OpKind::Put => mem.insert(op.key, seqno, Kind::Put, op.value),
        OpKind::Delete => mem.insert(op.key, seqno, Kind::Delete, op.value),
        OpKind::DeleteRange => {
            mem.insert_range_delete(op.key, op.value, seqno);
            None
        }
    }
}

/// WAL files in `dir`, by id.
fn wal_files(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().is_some_and(|e| e == "wal") {
            if let Some(id) = path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse().ok())
            {
                out.push((id, path));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Removes SSTables the manifest does not know and WALs already flushed.
fn remove_orphans(
    dir: &Path,
    live: &BTreeMap<u64, super::manifest::FileMeta>,
    log_number: u64,
) -> Result<()> {
    for entry in fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let id: Option<u64> = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse().ok());
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let orphan = match (ext, id) {
            ("sst", Some(id)) => !live.contains_key(&id),
            ("wal", Some(id)) => id < log_number,
            _ => false,
        };
        if orphan {
            fs::remove_file(&path).map_err(io)?;
        }
    }
    Ok(())
}

fn spawn_syncer(shared: Arc<Shared>) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name("basalt-wal-sync".into())
        .spawn(move || {
            while !shared.shutting_down() {
                let guard = shared.signal.0.lock().unwrap_or_else(|e| e.into_inner());
                let _ = shared.signal.1.wait_timeout(guard, Duration::from_secs(1));
                if shared.sync_policy() == SyncPolicy::EverySec {
                    let _ = shared.sync_wal();
                }
            }
            if shared.sync_policy() != SyncPolicy::No {
                let _ = shared.sync_wal();
            }
        })
        .expect("spawn the WAL sync thread")
}

struct LsmSnapshot {
    shared: Arc<Shared>,
    state: Arc<State>,
    seqno: u64,
}

impl Snapshot for LsmSnapshot {
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        self.shared.point_get(&self.state, key, self.seqno)
    }
    fn scan(&self, range: &KeyRange, reverse: bool, limit: usize) -> Result<Vec<(Bytes, Bytes)>> {
        self.shared
            .scan_at(&self.state, range, self.seqno, reverse, limit)
    }
}

impl Drop for LsmSnapshot {
    fn drop(&mut self) {
        self.shared.unregister(self.seqno);
    }
}

/// The oldest snapshot, registered while this lives (compaction reads at it).
pub(super) struct SnapshotPin<'a> {
    shared: &'a Shared,
    pub seqno: u64,
}

impl Drop for SnapshotPin<'_> {
    fn drop(&mut self) {
        self.shared.unregister(self.seqno);
    }
}

impl Engine for LsmEngine {
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        let (_reading, state, seqno) = self.shared.read_view();
        self.shared.point_get(&state, key, seqno)
    }

    fn multi_get(&self, keys: &[Bytes]) -> Result<Vec<Option<Bytes>>> {
        let (_reading, state, seqno) = self.shared.read_view();
        keys.iter()
            .map(|k| self.shared.point_get(&state, k, seqno))
            .collect()
    }

    fn write(&self, batch: WriteBatch) -> Result<()> {
        let shared = &self.shared;
        shared.check_poison()?;
        shared.stall_if_needed();
        let mut w = shared.writer.lock();
        shared.check_poison()?;
        let ops = batch_ops(batch);
        if ops.is_empty() {
            return Ok(());
        }
        let first = w.next_seqno;
        let sync = shared.sync_policy() == SyncPolicy::Always;
        if let Err(e) = shared
            .opts
            .wal
            .then(|| w.wal.append(first, &ops, sync))
            .transpose()
        {
            shared.poison(format!("WAL append failed: {e}"));
            return Err(io(e));
        }
        if w.wal.has_pending() {
            shared.wal_pending.store(true, Ordering::Release);
        }
        let state = shared.state.read().clone();
        let count = ops.len() as u64;
        for (i, op) in ops.into_iter().enumerate() {
            if let Some(hidden) = apply_op(&state.mem, op, first + i as u64) {
                w.gc.note(hidden);
            }
        }
        w.next_seqno = first + count;
        let visible = first + count - 1;
        shared.visible.store(visible, Ordering::Release);
        shared.collect_garbage(&mut w, &state, visible, 2 * count as usize + 16);
        if shared.opts.wants_rotation(&state.mem) {
            shared.rotate(&mut w)?;
        }
        Ok(())
    }

    fn write_stalled(&self) -> bool {
        self.shared.behind()
    }

    fn snapshot(&self) -> Box<dyn Snapshot> {
        let mut snaps = self.shared.snapshots.lock();
        let seqno = self.shared.visible.load(Ordering::Acquire);
        *snaps.entry(seqno).or_default() += 1;
        drop(snaps);
        let state = self.shared.state.read().clone();
        Box::new(LsmSnapshot {
            shared: self.shared.clone(),
            state,
            seqno,
        })
    }

    fn scan(&self, range: &KeyRange, reverse: bool, limit: usize) -> Result<Vec<(Bytes, Bytes)>> {
        let (_reading, state, seqno) = self.shared.read_view();
        self.shared.scan_at(&state, range, seqno, reverse, limit)
    }

    /// Makes everything written durable: the memtable is flushed to an SSTable.
    fn flush(&self) -> Result<()> {
        self.shared.check_poison()?;
        {
            let mut w = self.shared.writer.lock();
            if !self.shared.state.read().mem.is_empty() {
                self.shared.rotate(&mut w)?;
            }
        }
        loop {
            self.shared.check_poison()?;
            if self.shared.state.read().imm.is_empty() {
                return Ok(());
            }
            self.shared.notify();
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn memory_bytes(&self) -> u64 {
        self.level_summary().1 as u64
    }

    fn commit_barrier(&self) -> Result<()> {
        self.shared.write_pending_wal()
    }

    fn set_sync_policy(&self, policy: SyncPolicy) {
        self.shared.sync.store(policy as u8, Ordering::Relaxed);
    }

    fn info(&self) -> Vec<(String, String)> {
        stats::report(self, &self.shared)
    }
}
