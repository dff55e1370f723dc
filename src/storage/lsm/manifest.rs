//! The manifest: a log of version edits, so the set of live SSTables survives any crash
//! atomically.
//!
//! ## Format
//! File `MANIFEST` holds `record.rs` records, each one version edit: a sequence of tagged
//! fields — `1 add: level:u8 | id:u64 | size:u64 | max_seqno:u64 | smallest_len:u32 |
//! smallest | largest_len:u32 | largest`, `2 delete: level:u8 | id:u64`,
//! `3 log_number:u64` (WALs below it are flushed), `4 next_file_id:u64`, `5 last_seqno:u64`,
//! `6 add range tombstone: seqno:u64 | start_len:u32 | start | end_len:u32 | end`,
//! `7 drop range tombstone: seqno:u64`; integers little-endian. On open the edits are replayed (a torn tail is truncated), and the
//! result is written back as one edit to a fresh file (temp + fsync + rename).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use bytes::{Buf, BufMut, Bytes};

use super::range_del::RangeTombstone;
use super::record;

/// What the manifest knows about one SSTable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    pub level: u8,
    pub id: u64,
    pub size: u64,
    pub max_seqno: u64,
    /// Smallest and largest internal keys.
    pub smallest: Bytes,
    pub largest: Bytes,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionEdit {
    pub added: Vec<FileMeta>,
    pub deleted: Vec<(u8, u64)>,
    pub log_number: Option<u64>,
    pub next_file_id: Option<u64>,
    pub last_seqno: Option<u64>,
    pub range_dels_added: Vec<RangeTombstone>,
    /// Sequence numbers of range tombstones no longer needed.
    pub range_dels_dropped: Vec<u64>,
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.put_u32_le(bytes.len() as u32);
    out.put_slice(bytes);
}

fn get_bytes(buf: &mut &[u8]) -> Option<Bytes> {
    if buf.remaining() < 4 {
        return None;
    }
    let len = buf.get_u32_le() as usize;
    if buf.remaining() < len {
        return None;
    }
    let bytes = Bytes::copy_from_slice(&buf[..len]);
    buf.advance(len);
    Some(bytes)
}

impl VersionEdit {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for f in &self.added {
            out.put_u8(1);
            out.put_u8(f.level);
            out.put_u64_le(f.id);
            out.put_u64_le(f.size);
            out.put_u64_le(f.max_seqno);
            put_bytes(&mut out, &f.smallest);
            put_bytes(&mut out, &f.largest);
        }
        for (level, id) in &self.deleted {
            out.put_u8(2);
            out.put_u8(*level);
            out.put_u64_le(*id);
        }
        for (tag, value) in [
            (3u8, self.log_number),
            (4, self.next_file_id),
            (5, self.last_seqno),
        ] {
            if let Some(v) = value {
                out.put_u8(tag);
                out.put_u64_le(v);
            }
        }
        for t in &self.range_dels_added {
            out.put_u8(6);
            out.put_u64_le(t.seqno);
            put_bytes(&mut out, &t.start);
            put_bytes(&mut out, &t.end);
        }
        for seqno in &self.range_dels_dropped {
            out.put_u8(7);
            out.put_u64_le(*seqno);
        }
        out
    }

    pub fn decode(raw: &[u8]) -> Option<VersionEdit> {
        let mut buf = raw;
        let mut edit = VersionEdit::default();
        while buf.has_remaining() {
            let tag = buf.get_u8();
            match tag {
                1 => {
                    if buf.remaining() < 25 {
                        return None;
                    }
                    let (level, id, size, max_seqno) = (
                        buf.get_u8(),
                        buf.get_u64_le(),
                        buf.get_u64_le(),
                        buf.get_u64_le(),
                    );
                    let smallest = get_bytes(&mut buf)?;
                    let largest = get_bytes(&mut buf)?;
                    edit.added.push(FileMeta {
                        level,
                        id,
                        size,
                        max_seqno,
                        smallest,
                        largest,
                    });
                }
                2 if buf.remaining() >= 9 => edit.deleted.push((buf.get_u8(), buf.get_u64_le())),
                3..=5 if buf.remaining() >= 8 => {
                    let v = Some(buf.get_u64_le());
                    match tag {
                        3 => edit.log_number = v,
                        4 => edit.next_file_id = v,
                        _ => edit.last_seqno = v,
                    }
                }
                6 if buf.remaining() >= 8 => {
                    let seqno = buf.get_u64_le();
                    let start = get_bytes(&mut buf)?;
                    let end = get_bytes(&mut buf)?;
                    edit.range_dels_added
                        .push(RangeTombstone { start, end, seqno });
                }
                7 if buf.remaining() >= 8 => edit.range_dels_dropped.push(buf.get_u64_le()),
                _ => return None,
            }
        }
        Some(edit)
    }
}

/// The state the manifest describes, built by applying edits in order.
#[derive(Debug, Clone, Default)]
pub struct ManifestState {
    /// Live files by id.
    pub files: BTreeMap<u64, FileMeta>,
    pub log_number: u64,
    pub next_file_id: u64,
    pub last_seqno: u64,
    /// Live range tombstones by sequence number.
    pub range_dels: BTreeMap<u64, RangeTombstone>,
}

impl ManifestState {
    pub fn apply(&mut self, edit: &VersionEdit) {
        for (_, id) in &edit.deleted {
            self.files.remove(id);
        }
        for f in &edit.added {
            self.files.insert(f.id, f.clone());
        }
        for t in &edit.range_dels_added {
            self.range_dels.insert(t.seqno, t.clone());
        }
        for seqno in &edit.range_dels_dropped {
            self.range_dels.remove(seqno);
        }
        if let Some(v) = edit.log_number {
            self.log_number = self.log_number.max(v);
        }
        if let Some(v) = edit.next_file_id {
            self.next_file_id = self.next_file_id.max(v);
        }
        if let Some(v) = edit.last_seqno {
            self.last_seqno = self.last_seqno.max(v);
        }
    }

    /// The whole state as one edit.
    pub fn as_edit(&self) -> VersionEdit {
        VersionEdit {
            added: self.files.values().cloned().collect(),
            deleted: Vec::new(),
            log_number: Some(self.log_number),
            next_file_id: Some(self.next_file_id),
            last_seqno: Some(self.last_seqno),
            range_dels_added: self.range_dels.values().cloned().collect(),
            range_dels_dropped: Vec::new(),
        }
    }
}

pub struct Manifest {
    file: File,
}

impl Manifest {
    /// Opens (or creates) the manifest in `dir`, returning its state; rewrites it compactly.
    pub fn open(dir: &Path) -> io::Result<(Manifest, ManifestState)> {
        let path = dir.join("MANIFEST");
        let mut state = ManifestState {
            next_file_id: 1,
            ..ManifestState::default()
        };
        if path.exists() {
            let mut file = OpenOptions::new().read(true).write(true).open(&path)?;
            let contents = record::read_log_truncating(&mut file)?;
            for raw in contents.records {
                match VersionEdit::decode(&raw) {
                    Some(edit) => state.apply(&edit),
                    None => break,
                }
            }
        }
        let tmp = dir.join("MANIFEST.tmp");
        let mut bytes = Vec::new();
        record::encode_record(&state.as_edit().encode(), &mut bytes);
        let mut file = File::create(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        File::open(dir)?.sync_all()?;
        let file = OpenOptions::new().append(true).open(&path)?;
        Ok((Manifest { file }, state))
    }

    /// Appends an edit durably.
    pub fn log(&mut self, edit: &VersionEdit) -> io::Result<()> {
        let mut bytes = Vec::new();
        record::encode_record(&edit.encode(), &mut bytes);
        record::append(&mut self.file, &bytes, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_round_trip_and_replay() {
        let f = |id| FileMeta {
            level: 0,
            id,
            size: 100,
            max_seqno: 9,
            smallest: Bytes::from("a"),
            largest: Bytes::from("z"),
        };
        let edit = VersionEdit {
            added: vec![f(3), f(4)],
            deleted: vec![(0, 2)],
            log_number: Some(5),
            next_file_id: Some(6),
            last_seqno: Some(77),
            range_dels_added: vec![RangeTombstone {
                start: Bytes::from("b"),
                end: Bytes::from("c"),
                seqno: 70,
            }],
            range_dels_dropped: vec![12],
        };
        assert_eq!(VersionEdit::decode(&edit.encode()), Some(edit.clone()));
        let dir = std::env::temp_dir().join(format!("basalt-manifest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (mut m, state) = Manifest::open(&dir).unwrap();
        assert!(state.files.is_empty());
        m.log(&edit).unwrap();
        m.log(&VersionEdit {
            deleted: vec![(0, 3)],
            ..VersionEdit::default()
        })
        .unwrap();
        // A torn append at the end is dropped on open.
        m.file.write_all(&[9, 0, 0, 0, 1]).unwrap();
        drop(m);
        let (_, state) = Manifest::open(&dir).unwrap();
        assert_eq!(state.files.keys().copied().collect::<Vec<_>>(), vec![4]);
        assert_eq!(
            (state.log_number, state.next_file_id, state.last_seqno),
            (5, 6, 77)
        );
        assert_eq!(
            state.range_dels.keys().copied().collect::<Vec<_>>(),
            vec![70]
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
