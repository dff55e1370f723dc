//! The write-ahead log: every batch is appended (and, under `appendfsync always`, synced)
//! before it reaches the memtable, so a crash loses nothing acknowledged.
//!
//! One WAL file per memtable, `NNNNNN.wal`; records are `record.rs`'s `len | crc | payload`
//! with a `batch.rs` payload. A torn tail is truncated on open. An fsync failure poisons the
//! engine (the caller's job): the WAL never retries one.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use super::batch::{self, Op};
use super::record;
pub use crate::storage::SyncPolicy;

pub struct Wal {
    pub id: u64,
    path: PathBuf,
    file: File,
    /// Records appended but not yet written to the file (group commit).
    pending: Vec<u8>,
    /// Bytes written since the last sync.
    unsynced: bool,
}

/// Pending bytes at which an append writes through without waiting for a barrier.
const PENDING_BYTES_MAX: usize = 1 << 20;

pub fn wal_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:06}.wal"))
}

impl Wal {
    /// Creates a new, empty WAL.
    pub fn create(dir: &Path, id: u64) -> io::Result<Wal> {
        let path = wal_path(dir, id);
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        // Make the new file's directory entry durable too.
        File::open(dir)?.sync_all()?;
        Ok(Wal {
            id,
            path,
            file,
            pending: Vec::new(),
            unsynced: false,
        })
    }

    /// Appends a batch. With `sync` it is written and synced before returning; otherwise it
    /// waits in memory for [`Wal::write_pending`] (the engine's barrier before replies), so
    /// many batches share one write.
    pub fn append(&mut self, first_seqno: u64, ops: &[Op], sync: bool) -> io::Result<()> {
        record::encode_record(&batch::encode(first_seqno, ops), &mut self.pending);
        if sync {
            self.write_pending()?;
            self.sync()
        } else if self.pending.len() >= PENDING_BYTES_MAX {
            self.write_pending()
        } else {
            Ok(())
        }
    }

    /// Hands every appended record to the operating system (it then survives a crash of
    /// this process, though not of the machine until [`Wal::sync`]).
    pub fn write_pending(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            record::append(&mut self.file, &self.pending, false)?;
            self.pending.clear();
            self.unsynced = true;
        }
        Ok(())
    }

    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Writes what is pending and makes it durable.
    pub fn sync(&mut self) -> io::Result<()> {
        self.write_pending()?;
        if self.unsynced {
            self.file.sync_data()?;
            self.unsynced = false;
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Replays a WAL file: every complete batch in order. A torn tail is cut off the file.
pub fn replay(path: &Path) -> io::Result<Vec<(u64, Vec<Op>)>> {
    let mut file = OpenOptions::new().read(true).write(true).open(path)?;
    let contents = record::read_log_truncating(&mut file)?;
    let mut batches = Vec::with_capacity(contents.records.len());
    for raw in contents.records {
        match batch::decode(&raw) {
            Some(b) => batches.push(b),
            // A record with a valid CRC but a malformed batch: stop here, as at a torn tail.
            None => break,
        }
    }
    Ok(batches)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::lsm::batch::OpKind;
    use bytes::Bytes;

    #[test]
    fn replay_after_a_torn_append() {
        let dir = std::env::temp_dir().join(format!("basalt-wal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut wal = Wal::create(&dir, 1).unwrap();
        let op = |k: &str| Op {
            kind: OpKind::Put,
            key: Bytes::from(k.to_string()),
            value: Bytes::from("v"),
        };
        wal.append(1, &[op("a"), op("b")], true).unwrap();
        wal.append(3, &[op("c")], false).unwrap();
        wal.write_pending().unwrap();
        let path = wal.path().to_path_buf();
        drop(wal);
        let len = std::fs::metadata(&path).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        let batches = replay(&path).unwrap();
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].0, 1);
        assert!(
            std::fs::metadata(&path).unwrap().len() < len - 3,
            "torn tail truncated"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
