//! The binary records Basalt owns (Raft log entries, votes, the cluster map): big-endian
//! integers, length-prefixed bytes, and readers that check every length against what is
//! left, so a short or hostile record is an error, never a panic.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Bound on counts read from a record (membership configs, ids, nodes).
const COUNT_MAX: u32 = 1 << 16;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    #[error("record truncated")]
    Truncated,
    #[error("unknown record version {0}")]
    Version(u8),
    #[error("unknown entry kind {0}")]
    Kind(u8),
    #[error("bad record: {0}")]
    Bad(String),
}

pub fn need(raw: &Bytes, n: usize) -> Result<(), CodecError> {
    if raw.remaining() < n {
        Err(CodecError::Truncated)
    } else {
        Ok(())
    }
}

pub fn get_u8(raw: &mut Bytes) -> Result<u8, CodecError> {
    need(raw, 1)?;
    Ok(raw.get_u8())
}

pub fn get_u16(raw: &mut Bytes) -> Result<u16, CodecError> {
    need(raw, 2)?;
    Ok(raw.get_u16())
}

pub fn get_u64(raw: &mut Bytes) -> Result<u64, CodecError> {
    need(raw, 8)?;
    Ok(raw.get_u64())
}

pub fn get_u32(raw: &mut Bytes) -> Result<u32, CodecError> {
    need(raw, 4)?;
    Ok(raw.get_u32())
}

pub fn get_count(raw: &mut Bytes) -> Result<u32, CodecError> {
    let n = get_u32(raw)?;
    if n > COUNT_MAX {
        return Err(CodecError::Bad(format!("count {n}")));
    }
    Ok(n)
}

pub fn get_string(raw: &mut Bytes) -> Result<String, CodecError> {
    let len = get_u32(raw)? as usize;
    need(raw, len)?;
    String::from_utf8(raw.split_to(len).to_vec()).map_err(|e| CodecError::Bad(e.to_string()))
}

pub fn put_string(out: &mut BytesMut, s: &str) {
    out.put_u32(s.len() as u32);
    out.put_slice(s.as_bytes());
}

pub fn put_bytes(out: &mut BytesMut, b: &[u8]) {
    out.put_u32(b.len() as u32);
    out.put_slice(b);
}

pub fn get_bytes(raw: &mut Bytes) -> Result<Bytes, CodecError> {
    let len = get_u32(raw)? as usize;
    need(raw, len)?;
    Ok(raw.split_to(len))
}
