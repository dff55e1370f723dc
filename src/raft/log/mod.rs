//! The node-wide Raft log: one append-only log shared by every Raft group on the node.
//!
//! Entries of all groups go to the active segment in arrival order, so one fsync makes
//! every group's pending appends durable. Truncation and purging are records too; an
//! in-memory index per group maps each live entry to its place. A new segment starts with
//! a checkpoint of every group's last purged log id, so segments are deleted from the front
//! once no live entry remains in them (truncate and purge records only ever concern entries
//! written before them, so a deleted prefix takes nothing live with it). Opening replays the
//! segments and cuts a torn tail off the last one. See `record.rs` for the format.

pub(crate) mod record;
mod segment;
mod votes;

pub use votes::Votes;

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;

use crate::metrics::histogram::{Histogram, HistogramSnapshot};

use record::{Kind, Record};
use segment::Segment;

/// A log id: the entry's index, and the term and node id of the leader that wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct LogId {
    pub index: u64,
    pub term: u64,
    pub leader: u64,
}

/// One entry of a group's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub id: LogId,
    pub data: Bytes,
}

/// Segments are sealed once they pass this size.
pub const SEGMENT_BYTES_DEFAULT: u64 = 64 << 20;

/// Where one entry is.
#[derive(Debug, Clone, Copy)]
struct Loc {
    segment: u64,
    /// Offset of the entry's data in the segment.
    offset: u64,
    len: u32,
    term: u64,
    leader: u64,
}

#[derive(Debug, Default)]
struct Group {
    entries: BTreeMap<u64, Loc>,
    /// Bytes of the live entries' data.
    bytes: u64,
    purged: Option<LogId>,
    committed: Option<LogId>,
    /// The newest entries' data, so applying and replicating them reads no file.
    recent: BTreeMap<u64, Bytes>,
    recent_bytes: usize,
}

/// Bounds on each group's cache of recent entries.
const RECENT_ENTRIES_MAX: usize = 1024;
const RECENT_BYTES_MAX: usize = 512 << 10;

impl Group {
    fn remember(&mut self, index: u64, data: Bytes) {
        self.recent_bytes += data.len();
        if let Some(old) = self.recent.insert(index, data) {
            self.recent_bytes -= old.len();
        }
        while self.recent.len() > RECENT_ENTRIES_MAX || self.recent_bytes > RECENT_BYTES_MAX {
            match self.recent.pop_first() {
                Some((_, d)) => self.recent_bytes -= d.len(),
                None => break,
            }
        }
    }

    /// Forgets cached entries outside what the index keeps.
    fn trim_recent(&mut self) {
        let (first, last) = match (self.entries.keys().next(), self.entries.keys().next_back()) {
            (Some(&f), Some(&l)) => (f, l),
            _ => {
                self.recent.clear();
                self.recent_bytes = 0;
                return;
            }
        };
        let mut kept = self.recent.split_off(&first);
        kept.split_off(&(last + 1));
        self.recent = kept;
        self.recent_bytes = self.recent.values().map(Bytes::len).sum();
    }
}

struct Inner {
    segments: BTreeMap<u64, Segment>,
    groups: HashMap<u32, Group>,
    /// Writes so far (a sync covers every write counted before it started).
    written: u64,
    /// Whether appended entries are cached (not while replaying segments at open: their
    /// records are slices of whole-segment buffers).
    caching: bool,
}

#[derive(Debug, Default)]
struct SyncState {
    /// Writes known durable.
    synced: u64,
    running: bool,
}

/// A group's view of its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogState {
    pub last_purged: Option<LogId>,
    /// The last entry, or the last purged one if none is left.
    pub last: Option<LogId>,
}

pub struct RaftLog {
    dir: PathBuf,
    segment_bytes: u64,
    inner: Mutex<Inner>,
    /// Group commit: what is durable and whether an fsync is running.
    sync_state: Mutex<SyncState>,
    /// Signalled when an fsync ends: every waiter it covered returns at once.
    sync_done: parking_lot::Condvar,
    /// fsyncs issued by `sync` (INFO and benchmarks).
    syncs: std::sync::atomic::AtomicU64,
    /// How long those fsyncs took.
    sync_latency: Histogram,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

impl Loc {
    fn id(&self, index: u64) -> LogId {
        LogId {
            index,
            term: self.term,
            leader: self.leader,
        }
    }
}

/// Moves `slot` forward to `id` (never back).
fn advance(slot: &mut Option<LogId>, id: LogId) {
    if slot.is_none_or(|s| s.index < id.index) {
        *slot = Some(id);
    }
}

impl Inner {
    fn active(&mut self) -> &mut Segment {
        self.segments
            .values_mut()
            .next_back()
            .expect("the log always has an active segment")
    }

    fn forget(&mut self, loc: Loc) {
        if let Some(s) = self.segments.get_mut(&loc.segment) {
            s.live = s.live.saturating_sub(1);
        }
    }

    /// Applies a record to the in-memory index (at open, and after writing it).
    fn apply(&mut self, r: &Record, segment: u64, offset: u64) {
        let group = self.groups.entry(r.group).or_default();
        let mut dropped = Vec::new();
        match r.kind {
            Kind::Entry => {
                if group.purged.is_some_and(|p| r.index <= p.index) {
                    return;
                }
                let loc = Loc {
                    segment,
                    offset: offset + Record::DATA_OFFSET as u64,
                    len: r.data.len() as u32,
                    term: r.term,
                    leader: r.leader,
                };
                dropped.extend(group.entries.insert(r.index, loc));
                group.bytes += u64::from(loc.len);
                if self.caching {
                    group.remember(r.index, r.data.clone());
                }
                if let Some(s) = self.segments.get_mut(&segment) {
                    s.live += 1;
                }
            }
            Kind::Truncate => {
                let from = if r.term == 0 { 0 } else { r.index + 1 };
                dropped.extend(group.entries.split_off(&from).into_values());
                group.trim_recent();
            }
            Kind::Purge => {
                let kept = group.entries.split_off(&(r.index + 1));
                dropped.extend(std::mem::replace(&mut group.entries, kept).into_values());
                group.trim_recent();
                advance(&mut group.purged, r.id());
            }
            Kind::Commit => advance(&mut group.committed, r.id()),
            Kind::Reset => {
                dropped.extend(std::mem::take(&mut group.entries).into_values());
                group.trim_recent();
                group.purged = None;
                group.committed = None;
            }
            Kind::Checkpoint => {
                for (g, id) in record::decode_checkpoint(&r.data).unwrap_or_default() {
                    advance(&mut self.groups.entry(g).or_default().purged, id);
                }
            }
        }
        if let Some(group) = self.groups.get_mut(&r.group) {
            let gone: u64 = dropped.iter().map(|loc| u64::from(loc.len)).sum();
            group.bytes = group.bytes.saturating_sub(gone);
        }
        for loc in dropped {
            self.forget(loc);
        }
    }

    fn checkpoint(&self) -> Record {
        let mut purged: Vec<(u32, LogId)> = self
            .groups
            .iter()
            .filter_map(|(&g, group)| group.purged.map(|id| (g, id)))
            .collect();
        purged.sort_unstable();
        Record {
            kind: Kind::Checkpoint,
            group: 0,
            index: 0,
            term: 0,
            leader: 0,
            data: record::encode_checkpoint(&purged),
        }
    }
}

impl RaftLog {
    /// Opens (or creates) the log in `dir`.
    pub fn open(dir: impl AsRef<Path>, segment_bytes: u64) -> io::Result<RaftLog> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir)?;
        let mut inner = Inner {
            segments: BTreeMap::new(),
            groups: HashMap::new(),
            written: 0,
            caching: false,
        };
        for id in segment::list(&dir)? {
            let (seg, records) = Segment::open(&dir, id)?;
            inner.segments.insert(id, seg);
            for (r, offset) in records {
                inner.apply(&r, id, offset);
            }
        }
        inner.caching = true;
        let log = RaftLog {
            dir,
            segment_bytes,
            inner: Mutex::new(inner),
            sync_state: Mutex::new(SyncState::default()),
            sync_done: parking_lot::Condvar::new(),
            syncs: Default::default(),
            sync_latency: Histogram::default(),
        };
        {
            let mut inner = log.inner.lock();
            if inner.segments.is_empty() {
                log.start_segment(&mut inner, 1)?;
            }
        }
        Ok(log)
    }

    /// Starts segment `id` with a checkpoint, durably (the directory entry included).
    fn start_segment(&self, inner: &mut Inner, id: u64) -> io::Result<()> {
        let mut seg = Segment::create(&self.dir, id)?;
        let mut buf = BytesMut::new();
        inner.checkpoint().encode_into(&mut buf);
        // Each group's committed id too, so deleting older segments does not forget it.
        let mut committed: Vec<(u32, LogId)> = inner
            .groups
            .iter()
            .filter_map(|(&g, group)| group.committed.map(|id| (g, id)))
            .collect();
        committed.sort_unstable();
        for (group, id) in committed {
            Record::marker(Kind::Commit, group, id).encode_into(&mut buf);
        }
        seg.append(&buf)?;
        seg.file.sync_data()?;
        std::fs::File::open(&self.dir)?.sync_all()?;
        inner.segments.insert(id, seg);
        Ok(())
    }

    /// Writes records, sealing the active segment first if it is full.
    /// Returns the write's sequence number (see [`RaftLog::sync_to`]).
    fn write(&self, inner: &mut Inner, records: &[Record]) -> io::Result<u64> {
        let mut buf = BytesMut::with_capacity(records.iter().map(Record::framed_len).sum());
        for r in records {
            r.encode_into(&mut buf);
        }
        let active = inner.active();
        if active.len > 0 && active.len + buf.len() as u64 > self.segment_bytes {
            active.file.sync_data()?;
            let next = active.id + 1;
            self.start_segment(inner, next)?;
        }
        let active = inner.active();
        let id = active.id;
        let mut offset = active.append(&buf)?;
        inner.written += 1;
        for r in records {
            inner.apply(r, id, offset);
            offset += r.framed_len() as u64;
        }
        Ok(inner.written)
    }

    /// Appends entries to `group`; indexes must follow the last one. Returns the write's
    /// sequence number: `sync_to` it to make the entries durable.
    pub fn append(&self, group: u32, entries: &[LogEntry]) -> io::Result<u64> {
        let mut inner = self.inner.lock();
        let state = Self::state_of(&inner, group);
        let mut expected = state.last.map(|id| id.index + 1);
        for index in entries.iter().map(|e| e.id.index) {
            if expected.is_some_and(|e| e != index) {
                return Err(invalid(format!(
                    "raft log: group {group} appends index {index}, expected {expected:?}"
                )));
            }
            expected = Some(index + 1);
        }
        let records: Vec<Record> = entries
            .iter()
            .map(|e| Record {
                kind: Kind::Entry,
                group,
                index: e.id.index,
                term: e.id.term,
                leader: e.id.leader,
                data: e.data.clone(),
            })
            .collect();
        self.write(&mut inner, &records)
    }

    /// Drops `group`'s entries after `last` (all of them for None).
    pub fn truncate_after(&self, group: u32, last: Option<u64>) -> io::Result<()> {
        let mut inner = self.inner.lock();
        let record = Record {
            kind: Kind::Truncate,
            group,
            index: last.unwrap_or(0),
            term: last.is_some() as u64,
            leader: 0,
            data: Bytes::new(),
        };
        self.write(&mut inner, &[record])?;
        self.delete_dead_segments(&mut inner)
    }

    /// Forgets `group`'s log: its entries, what it purged and committed (the node no longer
    /// holds a replica of it; a later one starts from a snapshot).
    pub fn reset(&self, group: u32) -> io::Result<()> {
        let mut inner = self.inner.lock();
        let record = Record::marker(Kind::Reset, group, LogId::default());
        self.write(&mut inner, &[record])?;
        self.delete_dead_segments(&mut inner)
    }

    /// Records that `group` has committed up to `id` (no fsync: see `record.rs`).
    pub fn save_committed(&self, group: u32, id: LogId) -> io::Result<()> {
        let mut inner = self.inner.lock();
        let record = Record::marker(Kind::Commit, group, id);
        self.write(&mut inner, &[record]).map(|_| ())
    }

    /// The last id `group` recorded as committed.
    pub fn committed(&self, group: u32) -> Option<LogId> {
        self.inner
            .lock()
            .groups
            .get(&group)
            .and_then(|g| g.committed)
    }

    /// Drops `group`'s entries up to and including `upto`, remembering it as purged.
    pub fn purge(&self, group: u32, upto: LogId) -> io::Result<()> {
        let mut inner = self.inner.lock();
        let record = Record::marker(Kind::Purge, group, upto);
        self.write(&mut inner, &[record])?;
        self.delete_dead_segments(&mut inner)
    }

    /// Deletes sealed segments from the front while they hold no live entry.
    fn delete_dead_segments(&self, inner: &mut Inner) -> io::Result<()> {
        while inner.segments.len() > 1 {
            let Some((&id, seg)) = inner.segments.iter().next() else {
                break;
            };
            if seg.live > 0 {
                break;
            }
            std::fs::remove_file(segment::path(&self.dir, id))?;
            inner.segments.remove(&id);
        }
        Ok(())
    }

    fn state_of(inner: &Inner, group: u32) -> LogState {
        let Some(g) = inner.groups.get(&group) else {
            return LogState {
                last_purged: None,
                last: None,
            };
        };
        let last = g
            .entries
            .iter()
            .next_back()
            .map(|(&index, loc)| loc.id(index))
            .or(g.purged);
        LogState {
            last_purged: g.purged,
            last,
        }
    }

    pub fn state(&self, group: u32) -> LogState {
        Self::state_of(&self.inner.lock(), group)
    }

    /// The live entries of each `(group, first index)` from that index on, as
    /// `(group, index)` in the order they were written (start-up replays single-voter
    /// groups in this order, so an entry spanning groups sees what came before it).
    pub fn written_order(&self, from: &[(u32, u64)]) -> Vec<(u32, u64)> {
        let inner = self.inner.lock();
        let mut all = Vec::new();
        for &(g, first) in from {
            if let Some(group) = inner.groups.get(&g) {
                for (&index, loc) in group.entries.range(first..) {
                    all.push(((loc.segment, loc.offset), g, index));
                }
            }
        }
        all.sort_unstable();
        all.into_iter().map(|(_, g, index)| (g, index)).collect()
    }

    /// `group`'s entries with indexes in `range`.
    pub fn entries(
        &self,
        group: u32,
        range: impl std::ops::RangeBounds<u64>,
    ) -> io::Result<Vec<LogEntry>> {
        type Wanted = (u64, Loc, Result<Bytes, std::sync::Arc<std::fs::File>>);
        let wanted: Vec<Wanted> = {
            let inner = self.inner.lock();
            let Some(g) = inner.groups.get(&group) else {
                return Ok(Vec::new());
            };
            g.entries
                .range(range)
                .filter_map(|(&i, loc)| {
                    let data = match g.recent.get(&i) {
                        Some(d) => Ok(d.clone()),
                        None => Err(inner.segments.get(&loc.segment)?.file.clone()),
                    };
                    Some((i, *loc, data))
                })
                .collect()
        };
        wanted
            .into_iter()
            .map(|(i, loc, data)| {
                let data = match data {
                    Ok(d) => d,
                    Err(file) => {
                        Bytes::from(segment::read_at(&file, loc.offset, loc.len as usize)?)
                    }
                };
                Ok(LogEntry {
                    id: loc.id(i),
                    data,
                })
            })
            .collect()
    }

    /// Makes everything written before the call durable.
    pub fn sync(&self) -> io::Result<()> {
        let wanted = self.inner.lock().written;
        self.sync_to(wanted)
    }

    /// Makes write `wanted` (and all before it) durable. Group commit: while one fsync
    /// runs, other callers wait; when it ends they all wake, those it covered return, and
    /// one of the rest starts the next fsync, which covers everything written meanwhile.
    pub fn sync_to(&self, wanted: u64) -> io::Result<()> {
        let mut state = self.sync_state.lock();
        loop {
            if state.synced >= wanted {
                return Ok(());
            }
            if !state.running {
                break;
            }
            self.sync_done.wait(&mut state);
        }
        state.running = true;
        drop(state);
        let (file, upto) = {
            let mut inner = self.inner.lock();
            let upto = inner.written;
            (inner.active().file.clone(), upto)
        };
        let started = std::time::Instant::now();
        let result = file.sync_data();
        self.sync_latency
            .observe_us(started.elapsed().as_micros() as u64);
        let mut state = self.sync_state.lock();
        state.running = false;
        if result.is_ok() {
            state.synced = state.synced.max(upto);
            self.syncs
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        self.sync_done.notify_all();
        result
    }

    /// fsyncs `sync` has issued so far.
    pub fn syncs(&self) -> u64 {
        self.syncs.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How long the fsyncs `sync` issued took.
    pub fn sync_latency(&self) -> HistogramSnapshot {
        self.sync_latency.snapshot()
    }

    /// Segment files on disk (for tests and INFO).
    pub fn segment_count(&self) -> usize {
        self.inner.lock().segments.len()
    }

    /// Bytes of records in the log's segments (every group's).
    pub fn bytes(&self) -> u64 {
        self.inner.lock().segments.values().map(|s| s.len).sum()
    }

    /// Bytes of `group`'s live entries (their data, without record headers).
    pub fn group_bytes(&self, group: u32) -> u64 {
        self.inner.lock().groups.get(&group).map_or(0, |g| g.bytes)
    }
}

#[cfg(test)]
mod tests;
