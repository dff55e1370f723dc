//! One record of the node-wide Raft log: framing and the record kinds.
//!
//! ## Format
//! `len:u32 LE | crc32c(payload):u32 LE | payload`, payload = `kind:u8 | group:u32 LE |
//! index:u64 LE | term:u64 LE | leader:u64 LE | data` (`index, term, leader`: a log id).
//! Kinds:
//! - `Entry`: the log entry with that id in `group`; `data` is the entry's bytes.
//! - `Truncate`: `group` drops every entry after `index` (`term` 0: drops all of them).
//! - `Purge`: `group` drops every entry up to and including the id, which it remembers as
//!   its last purged log id.
//! - `Checkpoint`: first record of every segment: `data` lists `group:u32 | index | term |
//!   leader` for each group's last purged log id, so a segment prefix can be deleted
//!   without forgetting it.
//! - `Commit`: the id is known committed in `group` (written without an fsync of its own:
//!   a restarted node re-applies up to it before it serves).

use bytes::{BufMut, Bytes, BytesMut};

use super::LogId;

pub const HEADER_BYTES: usize = 8;
const FIXED_PAYLOAD: usize = 1 + 4 + 8 + 8 + 8;
/// No record is this large: a larger length is damage, not data.
pub const RECORD_MAX: usize = 1 << 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Entry = 1,
    Truncate = 2,
    Purge = 3,
    Checkpoint = 4,
    Commit = 5,
    /// The group starts over: no entries, nothing purged or committed (its replica left
    /// this node).
    Reset = 6,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        match b {
            1 => Some(Kind::Entry),
            2 => Some(Kind::Truncate),
            3 => Some(Kind::Purge),
            4 => Some(Kind::Checkpoint),
            5 => Some(Kind::Commit),
            6 => Some(Kind::Reset),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub kind: Kind,
    pub group: u32,
    pub index: u64,
    pub term: u64,
    pub leader: u64,
    pub data: Bytes,
}

impl Record {
    /// A record about log id `id` of `group` without data (purge, commit).
    pub fn marker(kind: Kind, group: u32, id: LogId) -> Record {
        Record {
            kind,
            group,
            index: id.index,
            term: id.term,
            leader: id.leader,
            data: Bytes::new(),
        }
    }

    /// The log id the record names.
    pub fn id(&self) -> LogId {
        LogId {
            index: self.index,
            term: self.term,
            leader: self.leader,
        }
    }

    /// Appends the framed record to `out`.
    pub fn encode_into(&self, out: &mut BytesMut) {
        let len = FIXED_PAYLOAD + self.data.len();
        let start = out.len();
        out.put_u32_le(len as u32);
        out.put_u32_le(0);
        out.put_u8(self.kind as u8);
        out.put_u32_le(self.group);
        out.put_u64_le(self.index);
        out.put_u64_le(self.term);
        out.put_u64_le(self.leader);
        out.put_slice(&self.data);
        let crc = crc32c::crc32c(&out[start + HEADER_BYTES..]);
        out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    }

    /// Bytes the framed record takes.
    pub fn framed_len(&self) -> usize {
        HEADER_BYTES + FIXED_PAYLOAD + self.data.len()
    }

    /// Where the entry data starts inside a framed record.
    pub const DATA_OFFSET: usize = HEADER_BYTES + FIXED_PAYLOAD;
}

/// What reading at a position found.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    /// A whole, intact record and its framed length.
    Record(Record, usize),
    /// The end of the data, or a torn or damaged tail from here on.
    End,
}

/// Decodes the record at the start of `buf`.
pub fn decode(buf: &[u8]) -> Read {
    if buf.len() < HEADER_BYTES {
        return Read::End;
    }
    let len = u32::from_le_bytes(buf[0..4].try_into().unwrap_or_default()) as usize;
    let crc = u32::from_le_bytes(buf[4..8].try_into().unwrap_or_default());
    if !(FIXED_PAYLOAD..=RECORD_MAX).contains(&len) || buf.len() < HEADER_BYTES + len {
        return Read::End;
    }
    let payload = &buf[HEADER_BYTES..HEADER_BYTES + len];
    if crc32c::crc32c(payload) != crc {
        return Read::End;
    }
    let Some(kind) = Kind::from_u8(payload[0]) else {
        return Read::End;
    };
    let u64_at = |i: usize| u64::from_le_bytes(payload[i..i + 8].try_into().unwrap_or_default());
    let record = Record {
        kind,
        group: u32::from_le_bytes(payload[1..5].try_into().unwrap_or_default()),
        index: u64_at(5),
        term: u64_at(13),
        leader: u64_at(21),
        data: Bytes::copy_from_slice(&payload[FIXED_PAYLOAD..]),
    };
    Read::Record(record, HEADER_BYTES + len)
}

/// A checkpoint's list of `(group, purged log id)`.
pub fn encode_checkpoint(purged: &[(u32, LogId)]) -> Bytes {
    let mut out = BytesMut::with_capacity(purged.len() * 28);
    for &(group, id) in purged {
        out.put_u32_le(group);
        out.put_u64_le(id.index);
        out.put_u64_le(id.term);
        out.put_u64_le(id.leader);
    }
    out.freeze()
}

pub fn decode_checkpoint(data: &[u8]) -> Option<Vec<(u32, LogId)>> {
    if !data.len().is_multiple_of(28) {
        return None;
    }
    let u64_at =
        |c: &[u8], i: usize| u64::from_le_bytes(c[i..i + 8].try_into().unwrap_or_default());
    Some(
        data.chunks_exact(28)
            .map(|c| {
                let group = u32::from_le_bytes(c[0..4].try_into().unwrap_or_default());
                let id = LogId {
                    index: u64_at(c, 4),
                    term: u64_at(c, 12),
                    leader: u64_at(c, 20),
                };
                (group, id)
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage_ends_the_log() {
        let r = Record {
            kind: Kind::Entry,
            group: 7,
            index: 42,
            term: 3,
            leader: 2,
            data: Bytes::from_static(b"payload"),
        };
        let mut buf = BytesMut::new();
        r.encode_into(&mut buf);
        assert_eq!(buf.len(), r.framed_len());
        assert_eq!(decode(&buf), Read::Record(r.clone(), buf.len()));
        // Every cut of the record is a torn tail, never a record.
        for cut in 0..buf.len() {
            assert_eq!(decode(&buf[..cut]), Read::End);
        }
        let mut bad = buf.to_vec();
        bad[20] ^= 1;
        assert_eq!(decode(&bad), Read::End);
        let id = |index, term, leader| LogId {
            index,
            term,
            leader,
        };
        let cp = encode_checkpoint(&[(1, id(10, 2, 1)), (3, id(0, 0, 0))]);
        assert_eq!(
            decode_checkpoint(&cp),
            Some(vec![(1, id(10, 2, 1)), (3, id(0, 0, 0))])
        );
    }
}
