//! Segment files of the node-wide Raft log: `<id:020>.seg` in the log directory, written at
//! their end with positional writes, read with positional reads, scanned whole at open.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::record::{self, Read, Record};

/// An open segment.
pub struct Segment {
    pub id: u64,
    pub file: Arc<File>,
    /// Bytes of intact records.
    pub len: u64,
    /// Live entries (not truncated or purged) it holds.
    pub live: u64,
}

pub fn path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.seg"))
}

/// Segment ids in `dir`, ascending.
pub fn list(dir: &Path) -> io::Result<Vec<u64>> {
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if let Some(id) = name.strip_suffix(".seg").and_then(|s| s.parse().ok()) {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

impl Segment {
    /// Creates an empty segment file.
    pub fn create(dir: &Path, id: u64) -> io::Result<Segment> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path(dir, id))?;
        Ok(Segment {
            id,
            file: Arc::new(file),
            len: 0,
            live: 0,
        })
    }

    /// Opens a segment and reads its records with their offsets; a torn or damaged tail is
    /// cut off (the file is truncated to its intact records).
    pub fn open(dir: &Path, id: u64) -> io::Result<(Segment, Vec<(Record, u64)>)> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path(dir, id))?;
        let data = std::fs::read(path(dir, id))?;
        let mut records = Vec::new();
        let mut pos = 0usize;
        while let Read::Record(r, len) = record::decode(&data[pos..]) {
            records.push((r, pos as u64));
            pos += len;
        }
        if pos < data.len() {
            tracing::warn!(
                segment = id,
                kept = pos,
                dropped = data.len() - pos,
                "raft log: cutting a torn tail"
            );
            file.set_len(pos as u64)?;
            file.sync_data()?;
        }
        let segment = Segment {
            id,
            file: Arc::new(file),
            len: pos as u64,
            live: 0,
        };
        Ok((segment, records))
    }

    /// Appends framed records at the end.
    pub fn append(&mut self, bytes: &[u8]) -> io::Result<u64> {
        let at = self.len;
        self.file.write_all_at(bytes, at)?;
        self.len += bytes.len() as u64;
        Ok(at)
    }
}

/// Reads `len` bytes at `offset` of a segment file.
pub fn read_at(file: &File, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    // Called from openraft's tasks: an entry the page cache lacks is read off the worker.
    crate::blocking_io::read_exact_at(file, &mut buf, offset)?;
    Ok(buf)
}
