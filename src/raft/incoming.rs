//! Snapshots arriving from a leader: chunks are appended to a file as they come, so a
//! follower never holds a whole shard in memory, and the finished file (synced) is read
//! back in pages when the snapshot is installed, or again at start-up if a crash
//! interrupted the install (`node/install.rs`).

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::state_machine::SnapshotReader;

/// Records per page read back.
const PAGE: usize = 1024;

/// A snapshot being received: where its records go.
pub struct Incoming {
    path: PathBuf,
    file: BufWriter<File>,
    /// The snapshot's meta (`wire.rs` layout), from the first chunk.
    meta: Bytes,
}

impl Incoming {
    pub fn create(dir: &Path, transfer: u64, meta: Bytes) -> io::Result<Incoming> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("snapshot-{transfer:016x}"));
        let file = BufWriter::new(File::create(&path)?);
        Ok(Incoming { path, file, meta })
    }

    pub fn meta(&self) -> &Bytes {
        &self.meta
    }

    /// Appends encoded records (`(key_len:u32 | key | value_len:u32 | value)*`).
    pub fn append(&mut self, records: &[u8]) -> io::Result<()> {
        self.file.write_all(records)
    }

    /// The received records, to install; the file is removed when the reader is dropped.
    pub fn finish(mut self) -> io::Result<FileSnapshot> {
        self.file.flush()?;
        self.file.get_ref().sync_all()?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)?.sync_all()?;
        }
        FileSnapshot::open(&self.path)
    }
}

/// Reads a received snapshot file page by page.
pub struct FileSnapshot {
    path: PathBuf,
    file: BufReader<File>,
}

impl Drop for FileSnapshot {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl FileSnapshot {
    /// Reads the received snapshot at `path` (removed once the reader is dropped).
    pub fn open(path: &Path) -> io::Result<FileSnapshot> {
        Ok(FileSnapshot {
            path: path.to_path_buf(),
            file: BufReader::new(File::open(path)?),
        })
    }

    fn read_part(&mut self) -> io::Result<Option<Bytes>> {
        let mut len = [0u8; 4];
        match self.file.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        // The length came from the leader: the buffer grows with what the file holds, not
        // with what the length claims.
        let len = u64::from(u32::from_be_bytes(len));
        let mut data = Vec::new();
        (&mut self.file).take(len).read_to_end(&mut data)?;
        if data.len() as u64 != len {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "snapshot cut"));
        }
        Ok(Some(Bytes::from(data)))
    }
}

impl SnapshotReader for FileSnapshot {
    fn next_page(&mut self) -> io::Result<Option<Vec<(Bytes, Bytes)>>> {
        let mut page = Vec::new();
        while page.len() < PAGE {
            let Some(key) = self.read_part()? else {
                break;
            };
            let value = self
                .read_part()?
                .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "snapshot cut"))?;
            page.push((key, value));
        }
        Ok((!page.is_empty()).then_some(page))
    }

    fn source(&self) -> Option<&Path> {
        Some(&self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_records_read_back_in_pages() {
        let dir = std::env::temp_dir().join(format!("basalt-incoming-{}", std::process::id()));
        let mut incoming = Incoming::create(&dir, 1, Bytes::from_static(b"meta")).unwrap();
        assert_eq!(incoming.meta(), &Bytes::from_static(b"meta"));
        let records: Vec<(Bytes, Bytes)> = (0..2500)
            .map(|i| (Bytes::from(format!("k{i}")), Bytes::from(format!("v{i}"))))
            .collect();
        for chunk in records.chunks(700) {
            incoming
                .append(&super::super::wire::encode_records(chunk))
                .unwrap();
        }
        let mut reader = incoming.finish().unwrap();
        let mut back = Vec::new();
        while let Some(page) = reader.next_page().unwrap() {
            assert!(page.len() <= PAGE);
            back.extend(page);
        }
        assert_eq!(back, records);
        drop(reader);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        // A record claiming 4 GiB in a short file is an error, read without that buffer.
        let mut incoming = Incoming::create(&dir, 2, Bytes::new()).unwrap();
        incoming.append(&[0xff, 0xff, 0xff, 0xff, b'k']).unwrap();
        let mut reader = incoming.finish().unwrap();
        let err = reader.next_page().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        drop(reader);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
