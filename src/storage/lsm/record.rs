//! Checksummed records for append-only logs (the WAL and the manifest).
//!
//! ## Format
//! `len:u32 LE | crc32c(payload):u32 LE | payload`. A reader stops at the first record that
//! is incomplete or fails its checksum: that is a torn tail from a crash mid-append, and the
//! log is truncated there on open. Records are bounded by [`RECORD_BYTES_MAX`].

use std::fs::File;
use std::io::{self, Read, Write};

/// Largest payload of one record (a write batch or a version edit).
pub const RECORD_BYTES_MAX: usize = 1 << 30;
const HEADER_BYTES: usize = 8;

/// Appends one record to `out`.
pub fn encode_record(payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// The records of a log and the byte length of its valid prefix.
pub struct LogContents {
    pub records: Vec<Vec<u8>>,
    pub valid_bytes: u64,
    /// True when bytes after the valid prefix were dropped (a torn or corrupt tail).
    pub torn_tail: bool,
}

/// Splits `data` into records, stopping at the first incomplete or corrupt one.
pub fn parse_records(data: &[u8]) -> LogContents {
    let mut records = Vec::new();
    let mut pos = 0usize;
    while data.len() - pos >= HEADER_BYTES {
        let len = u32::from_le_bytes(data[pos..pos + 4].try_into().unwrap_or_default()) as usize;
        let crc = u32::from_le_bytes(data[pos + 4..pos + 8].try_into().unwrap_or_default());
        let start = pos + HEADER_BYTES;
        if len > RECORD_BYTES_MAX || data.len() - start < len {
            break;
        }
        let payload = &data[start..start + len];
        if crc32c::crc32c(payload) != crc {
            break;
        }
        records.push(payload.to_vec());
        pos = start + len;
    }
    LogContents {
        records,
        valid_bytes: pos as u64,
        torn_tail: pos != data.len(),
    }
}

/// Reads a whole log file and truncates a torn tail in place.
pub fn read_log_truncating(file: &mut File) -> io::Result<LogContents> {
    let mut data = Vec::new();
    file.read_to_end(&mut data)?;
    let contents = parse_records(&data);
    if contents.torn_tail {
        file.set_len(contents.valid_bytes)?;
        file.sync_all()?;
    }
    Ok(contents)
}

/// Appends encoded records and, when asked, makes them durable.
pub fn append(file: &mut File, bytes: &[u8], sync: bool) -> io::Result<()> {
    file.write_all(bytes)?;
    if sync {
        file.sync_data()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torn_and_corrupt_tails_are_cut() {
        let mut log = Vec::new();
        encode_record(b"first", &mut log);
        encode_record(b"second", &mut log);
        let whole = parse_records(&log);
        assert_eq!(whole.records, vec![b"first".to_vec(), b"second".to_vec()]);
        assert!(!whole.torn_tail);
        for cut in 0..log.len() {
            let part = parse_records(&log[..cut]);
            let expected = if cut >= 13 { 1 } else { 0 };
            assert_eq!(part.records.len(), expected, "cut {cut}");
            assert_eq!(part.torn_tail, cut != 0 && cut != 13);
        }
        let mut flipped = log.clone();
        flipped[20] ^= 1;
        let damaged = parse_records(&flipped);
        assert_eq!(damaged.records.len(), 1);
        assert_eq!(damaged.valid_bytes, 13);
    }
}
