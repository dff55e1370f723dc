//! Redis's DUMP payload: an RDB-serialised value, the RDB version and a CRC64.
//!
//! ## Format
//! `value | rdb_version:u16 LE | crc64:u64 LE`, the CRC (Jones polynomial, reflected, as in
//! redis-server) over everything before it. A string value is type byte 0 and an RDB string:
//! a length-prefixed run of bytes, an integer encoding (`0xC0`–`0xC2`), or LZF (`0xC3`).
//! DUMP writes plain or integer encodings; RESTORE reads all of them, so payloads move both
//! ways between Redis and Basalt.

use bytes::{BufMut, Bytes, BytesMut};

mod stream;

pub use stream::{dump_stream, ConsumerDump, GroupDump, StreamDump};

/// RDB version of redis-server 7.0.
pub const RDB_VERSION: u16 = 10;
/// Newest payload version RESTORE accepts (Redis 7.2 writes 11; its string format is the same).
const RDB_VERSION_READ_MAX: u16 = 11;
const RDB_TYPE_STRING: u8 = 0;
const RDB_TYPE_LIST: u8 = 1;
const RDB_TYPE_SET: u8 = 2;
const RDB_TYPE_ZSET: u8 = 3;
const RDB_TYPE_HASH: u8 = 4;
const RDB_TYPE_ZSET_2: u8 = 5;
const RDB_TYPE_ZSET_LISTPACK: u8 = 17;
const RDB_TYPE_SET_INTSET: u8 = 11;
const RDB_TYPE_LIST_QUICKLIST_2: u8 = 18;
/// Quicklist node containers.
const QUICKLIST_NODE_PLAIN: usize = 1;
const QUICKLIST_NODE_PACKED: usize = 2;
const RDB_TYPE_HASH_LISTPACK: u8 = 16;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("ERR DUMP payload version or checksum are wrong")]
    VersionOrChecksum,
    #[error("ERR Bad data format")]
    BadFormat,
}

/// The value a payload carries.
#[derive(Debug, PartialEq)]
pub enum DumpValue {
    String(Bytes),
    /// Field-value pairs.
    Hash(Vec<(Bytes, Bytes)>),
    List(Vec<Bytes>),
    Set(Vec<Bytes>),
    /// Members with their scores.
    ZSet(Vec<(Bytes, f64)>),
    Stream(StreamDump),
}

pub fn dump_string(value: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(value.len() + 20);
    out.put_u8(RDB_TYPE_STRING);
    write_rdb_string(&mut out, value);
    finish(out)
}

/// A hash as `RDB_TYPE_HASH`: a length, then field and value strings.
pub fn dump_hash(pairs: &[(Bytes, Bytes)]) -> Bytes {
    let mut out = BytesMut::new();
    out.put_u8(RDB_TYPE_HASH);
    write_length(&mut out, pairs.len() as u64);
    for (field, value) in pairs {
        write_rdb_string(&mut out, field);
        write_rdb_string(&mut out, value);
    }
    finish(out)
}

/// A list as `RDB_TYPE_LIST`: a length, then the elements.
pub fn dump_list(items: &[Bytes]) -> Bytes {
    let mut out = BytesMut::new();
    out.put_u8(RDB_TYPE_LIST);
    write_length(&mut out, items.len() as u64);
    for item in items {
        write_rdb_string(&mut out, item);
    }
    finish(out)
}

/// A set as `RDB_TYPE_SET`: a length, then the members.
pub fn dump_set(members: &[Bytes]) -> Bytes {
    let mut out = BytesMut::new();
    out.put_u8(RDB_TYPE_SET);
    write_length(&mut out, members.len() as u64);
    for member in members {
        write_rdb_string(&mut out, member);
    }
    finish(out)
}

/// A sorted set as `RDB_TYPE_ZSET_2`: a length, then each member and its score as a
/// binary double (LE).
pub fn dump_zset(items: &[(Bytes, f64)]) -> Bytes {
    let mut out = BytesMut::new();
    out.put_u8(RDB_TYPE_ZSET_2);
    write_length(&mut out, items.len() as u64);
    for (member, score) in items {
        write_rdb_string(&mut out, member);
        out.put_f64_le(*score);
    }
    finish(out)
}

/// Appends the RDB version and the CRC.
fn finish(mut out: BytesMut) -> Bytes {
    out.put_u16_le(RDB_VERSION);
    let crc = crc64(0, &out);
    out.put_u64_le(crc);
    out.freeze()
}

/// Redis stores decimal integers that fit 32 bits in integer form.
fn write_rdb_string(out: &mut BytesMut, value: &[u8]) {
    if value.len() <= 11 {
        if let Some(n) = crate::protocol::decode::parse_i64(value) {
            if n.to_string().as_bytes() == value {
                if let Ok(v) = i8::try_from(n) {
                    out.put_u8(0xc0);
                    out.put_i8(v);
                    return;
                } else if let Ok(v) = i16::try_from(n) {
                    out.put_u8(0xc1);
                    out.put_i16_le(v);
                    return;
                } else if let Ok(v) = i32::try_from(n) {
                    out.put_u8(0xc2);
                    out.put_i32_le(v);
                    return;
                }
            }
        }
    }
    write_length(out, value.len() as u64);
    out.put_slice(value);
}

fn write_length(out: &mut BytesMut, len: u64) {
    if len < 1 << 6 {
        out.put_u8(len as u8);
    } else if len < 1 << 14 {
        out.put_u8(0x40 | (len >> 8) as u8);
        out.put_u8(len as u8);
    } else if len <= u64::from(u32::MAX) {
        out.put_u8(0x80);
        out.put_u32(len as u32);
    } else {
        out.put_u8(0x81);
        out.put_u64(len);
    }
}

/// The RDB opcode of a function library (its code follows as a string).
const RDB_OPCODE_FUNCTION2: u8 = 0xf5;

/// FUNCTION DUMP's payload: each library's code after the function opcode, then the RDB
/// version and the CRC, as redis-server writes it.
pub fn dump_libraries(codes: &[Bytes]) -> Bytes {
    let mut out = BytesMut::new();
    for code in codes {
        out.put_u8(RDB_OPCODE_FUNCTION2);
        write_rdb_string(&mut out, code);
    }
    finish(out)
}

/// FUNCTION RESTORE: the libraries' code in a payload. `BadFormat` for anything but
/// function records.
pub fn restore_libraries(payload: &[u8]) -> Result<Vec<Bytes>, PayloadError> {
    let body = checked_body(payload)?;
    let mut reader = Reader { data: body, pos: 0 };
    let mut codes = Vec::new();
    while reader.pos < body.len() {
        if reader.byte()? != RDB_OPCODE_FUNCTION2 {
            return Err(PayloadError::BadFormat);
        }
        codes.push(reader.rdb_string()?);
    }
    Ok(codes)
}

/// A payload's body once its version and CRC check out.
fn checked_body(payload: &[u8]) -> Result<&[u8], PayloadError> {
    if payload.len() < 10 {
        return Err(PayloadError::VersionOrChecksum);
    }
    let (body, footer) = payload.split_at(payload.len() - 10);
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    let crc = u64::from_le_bytes(
        footer[2..10]
            .try_into()
            .map_err(|_| PayloadError::BadFormat)?,
    );
    // A zero CRC means "not computed" in Redis (rdbchecksum no).
    if version > RDB_VERSION_READ_MAX
        || (crc != 0 && crc64(0, &payload[..payload.len() - 8]) != crc)
    {
        return Err(PayloadError::VersionOrChecksum);
    }
    Ok(body)
}

/// Checks version and CRC, then decodes the value.
pub fn restore(payload: &[u8]) -> Result<DumpValue, PayloadError> {
    let body = checked_body(payload)?;
    let mut reader = Reader { data: body, pos: 0 };
    let kind = reader.byte()?;
    let value = match kind {
        RDB_TYPE_STRING => DumpValue::String(reader.rdb_string()?),
        RDB_TYPE_HASH => {
            let n = reader.plain_length()?;
            let mut pairs = Vec::with_capacity(n.min(1 << 16));
            for _ in 0..n {
                pairs.push((reader.rdb_string()?, reader.rdb_string()?));
            }
            DumpValue::Hash(unique_fields(pairs)?)
        }
        RDB_TYPE_HASH_LISTPACK => {
            let lp = reader.rdb_string()?;
            let items = super::listpack::entries(&lp).ok_or(PayloadError::BadFormat)?;
            if !items.len().is_multiple_of(2) {
                return Err(PayloadError::BadFormat);
            }
            let pairs = items
                .chunks(2)
                .map(|p| (p[0].clone(), p[1].clone()))
                .collect();
            DumpValue::Hash(unique_fields(pairs)?)
        }
        RDB_TYPE_LIST => {
            let n = reader.plain_length()?;
            let mut items = Vec::with_capacity(n.min(1 << 16));
            for _ in 0..n {
                items.push(reader.rdb_string()?);
            }
            non_empty(items)?
        }
        RDB_TYPE_SET => {
            let n = reader.plain_length()?;
            let mut items = Vec::with_capacity(n.min(1 << 16));
            for _ in 0..n {
                items.push(reader.rdb_string()?);
            }
            unique_members(items)?
        }
        RDB_TYPE_ZSET_2 | RDB_TYPE_ZSET => {
            let n = reader.plain_length()?;
            let mut items = Vec::with_capacity(n.min(1 << 16));
            for _ in 0..n {
                let member = reader.rdb_string()?;
                let score = if kind == RDB_TYPE_ZSET_2 {
                    f64::from_le_bytes(
                        reader
                            .take(8)?
                            .try_into()
                            .map_err(|_| PayloadError::BadFormat)?,
                    )
                } else {
                    reader.text_double()?
                };
                items.push((member, score));
            }
            unique_scored(items)?
        }
        RDB_TYPE_ZSET_LISTPACK => {
            let lp = reader.rdb_string()?;
            let items = super::listpack::entries(&lp).ok_or(PayloadError::BadFormat)?;
            if !items.len().is_multiple_of(2) {
                return Err(PayloadError::BadFormat);
            }
            let scored = items
                .chunks(2)
                .map(|p| {
                    let score = super::args::parse_float(&p[1]).ok_or(PayloadError::BadFormat)?;
                    Ok((p[0].clone(), score))
                })
                .collect::<Result<_, PayloadError>>()?;
            unique_scored(scored)?
        }
        RDB_TYPE_SET_INTSET => unique_members(intset_members(&reader.rdb_string()?)?)?,
        stream::RDB_TYPE_STREAM_LISTPACKS
        | stream::RDB_TYPE_STREAM_LISTPACKS_2
        | stream::RDB_TYPE_STREAM_LISTPACKS_3 => {
            DumpValue::Stream(stream::read_stream(&mut reader, kind)?)
        }
        RDB_TYPE_LIST_QUICKLIST_2 => {
            let nodes = reader.plain_length()?;
            let mut items = Vec::new();
            for _ in 0..nodes {
                let container = reader.plain_length()?;
                let data = reader.rdb_string()?;
                match container {
                    QUICKLIST_NODE_PLAIN => items.push(data),
                    QUICKLIST_NODE_PACKED => items
                        .extend(super::listpack::entries(&data).ok_or(PayloadError::BadFormat)?),
                    _ => return Err(PayloadError::BadFormat),
                }
            }
            non_empty(items)?
        }
        _ => return Err(PayloadError::BadFormat),
    };
    if reader.pos != body.len() {
        return Err(PayloadError::BadFormat);
    }
    Ok(value)
}

/// The integers of a Redis intset: `encoding:u32 LE (bytes per int: 2, 4, 8) |
/// length:u32 LE | ints LE`, in decimal.
fn intset_members(raw: &[u8]) -> Result<Vec<Bytes>, PayloadError> {
    let header = |i: usize| -> Option<usize> {
        Some(u32::from_le_bytes(raw.get(i..i + 4)?.try_into().ok()?) as usize)
    };
    let (width, len) = header(0).zip(header(4)).ok_or(PayloadError::BadFormat)?;
    if ![2, 4, 8].contains(&width) || raw.len() != 8 + width * len {
        return Err(PayloadError::BadFormat);
    }
    Ok(raw[8..]
        .chunks(width)
        .map(|c| {
            let n = match width {
                2 => i64::from(i16::from_le_bytes([c[0], c[1]])),
                4 => i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                _ => i64::from_le_bytes(c.try_into().unwrap_or_default()),
            };
            Bytes::from(n.to_string())
        })
        .collect())
}

/// Redis rejects a set payload that repeats a member (and empty sets).
fn unique_members(items: Vec<Bytes>) -> Result<DumpValue, PayloadError> {
    let mut seen = std::collections::HashSet::with_capacity(items.len());
    if items.is_empty() || !items.iter().all(|m| seen.insert(m.clone())) {
        return Err(PayloadError::BadFormat);
    }
    Ok(DumpValue::Set(items))
}

/// Redis rejects a sorted-set payload that repeats a member, has a NaN score, or is empty.
fn unique_scored(items: Vec<(Bytes, f64)>) -> Result<DumpValue, PayloadError> {
    let mut seen = std::collections::HashSet::with_capacity(items.len());
    if items.is_empty()
        || !items
            .iter()
            .all(|(m, s)| !s.is_nan() && seen.insert(m.clone()))
    {
        return Err(PayloadError::BadFormat);
    }
    Ok(DumpValue::ZSet(items))
}

fn non_empty(items: Vec<Bytes>) -> Result<DumpValue, PayloadError> {
    if items.is_empty() {
        return Err(PayloadError::BadFormat);
    }
    Ok(DumpValue::List(items))
}

/// Redis rejects a payload that repeats a hash field (and empty hashes).
fn unique_fields(pairs: Vec<(Bytes, Bytes)>) -> Result<Vec<(Bytes, Bytes)>, PayloadError> {
    let mut seen = std::collections::HashSet::with_capacity(pairs.len());
    if pairs.is_empty() || !pairs.iter().all(|(f, _)| seen.insert(f.clone())) {
        return Err(PayloadError::BadFormat);
    }
    Ok(pairs)
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

enum Length {
    Plain(u64),
    Encoded(u8),
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, PayloadError> {
        let b = *self.data.get(self.pos).ok_or(PayloadError::BadFormat)?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&[u8], PayloadError> {
        let end = self.pos.checked_add(n).ok_or(PayloadError::BadFormat)?;
        let s = self
            .data
            .get(self.pos..end)
            .ok_or(PayloadError::BadFormat)?;
        self.pos = end;
        Ok(s)
    }

    fn length(&mut self) -> Result<Length, PayloadError> {
        let first = self.byte()?;
        Ok(match first >> 6 {
            0 => Length::Plain(u64::from(first & 0x3f)),
            1 => Length::Plain((u64::from(first & 0x3f) << 8) | u64::from(self.byte()?)),
            2 => match first {
                0x80 => Length::Plain(u64::from(u32::from_be_bytes(
                    self.take(4)?
                        .try_into()
                        .map_err(|_| PayloadError::BadFormat)?,
                ))),
                0x81 => Length::Plain(u64::from_be_bytes(
                    self.take(8)?
                        .try_into()
                        .map_err(|_| PayloadError::BadFormat)?,
                )),
                _ => return Err(PayloadError::BadFormat),
            },
            _ => Length::Encoded(first & 0x3f),
        })
    }

    /// A length that may use all 64 bits (a stream's IDs and counters).
    fn length_u64(&mut self) -> Result<u64, PayloadError> {
        match self.length()? {
            Length::Plain(n) => Ok(n),
            Length::Encoded(_) => Err(PayloadError::BadFormat),
        }
    }

    fn plain_length(&mut self) -> Result<usize, PayloadError> {
        match self.length()? {
            Length::Plain(n) => usize::try_from(n).map_err(|_| PayloadError::BadFormat),
            Length::Encoded(_) => Err(PayloadError::BadFormat),
        }
    }

    /// An old-style RDB double: a length byte then its text; 253/254/255 for nan/inf/-inf.
    fn text_double(&mut self) -> Result<f64, PayloadError> {
        match self.byte()? {
            253 => Err(PayloadError::BadFormat),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            len => {
                let text = self.take(usize::from(len))?;
                super::args::parse_float(text).ok_or(PayloadError::BadFormat)
            }
        }
    }

    fn rdb_string(&mut self) -> Result<Bytes, PayloadError> {
        match self.length()? {
            Length::Plain(n) => {
                let n = usize::try_from(n).map_err(|_| PayloadError::BadFormat)?;
                Ok(Bytes::copy_from_slice(self.take(n)?))
            }
            Length::Encoded(0) => Ok(Bytes::from((self.byte()? as i8).to_string())),
            Length::Encoded(1) => {
                let b = self.take(2)?;
                Ok(Bytes::from(i16::from_le_bytes([b[0], b[1]]).to_string()))
            }
            Length::Encoded(2) => {
                let b = self.take(4)?;
                Ok(Bytes::from(
                    i32::from_le_bytes([b[0], b[1], b[2], b[3]]).to_string(),
                ))
            }
            Length::Encoded(3) => {
                let compressed_len = self.plain_length()?;
                let len = self.plain_length()?;
                let compressed = self.take(compressed_len)?;
                lzf_decompress(compressed, len).map(Bytes::from)
            }
            Length::Encoded(_) => Err(PayloadError::BadFormat),
        }
    }
}

/// LZF decompression (the format of liblzf, which Redis uses for RDB strings).
fn lzf_decompress(input: &[u8], out_len: usize) -> Result<Vec<u8>, PayloadError> {
    if out_len > 512 * 1024 * 1024 {
        return Err(PayloadError::BadFormat);
    }
    let mut out = Vec::with_capacity(out_len);
    let mut i = 0;
    while i < input.len() {
        let ctrl = usize::from(input[i]);
        i += 1;
        if ctrl < 32 {
            let run = ctrl + 1;
            let literal = input.get(i..i + run).ok_or(PayloadError::BadFormat)?;
            out.extend_from_slice(literal);
            i += run;
        } else {
            let mut len = ctrl >> 5;
            if len == 7 {
                len += usize::from(*input.get(i).ok_or(PayloadError::BadFormat)?);
                i += 1;
            }
            let low = usize::from(*input.get(i).ok_or(PayloadError::BadFormat)?);
            i += 1;
            let back = ((ctrl & 0x1f) << 8) + low + 1;
            if back > out.len() {
                return Err(PayloadError::BadFormat);
            }
            let start = out.len() - back;
            for k in 0..len + 2 {
                out.push(out[start + k]);
            }
        }
        if out.len() > out_len {
            return Err(PayloadError::BadFormat);
        }
    }
    if out.len() != out_len {
        return Err(PayloadError::BadFormat);
    }
    Ok(out)
}

/// CRC-64/Jones as redis-server computes it (reflected, init 0, no final xor).
pub fn crc64(mut crc: u64, data: &[u8]) -> u64 {
    const POLY_REFLECTED: u64 = 0x95ac_9329_ac4b_c9b5;
    static TABLE: std::sync::OnceLock<[u64; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u64; 256];
        for (i, slot) in t.iter_mut().enumerate() {
            let mut c = i as u64;
            for _ in 0..8 {
                c = if c & 1 == 1 {
                    (c >> 1) ^ POLY_REFLECTED
                } else {
                    c >> 1
                };
            }
            *slot = c;
        }
        t
    });
    for &b in data {
        crc = table[((crc ^ u64::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc64_redis_test_vector() {
        assert_eq!(crc64(0, b"123456789"), 0xe9c6_d914_c4b8_d9ca);
    }

    #[test]
    fn round_trips_and_rejects_damage() {
        for v in [
            &b"hello"[..],
            b"12",
            b"-300",
            b"70000",
            b"007",
            &[b'x'; 20_000],
        ] {
            let payload = dump_string(v);
            assert_eq!(
                restore(&payload),
                Ok(DumpValue::String(Bytes::copy_from_slice(v)))
            );
            let mut bad = payload.to_vec();
            bad[1] ^= 1;
            assert_eq!(restore(&bad), Err(PayloadError::VersionOrChecksum));
        }
        // redis-server 7.0: DUMP of "hello".
        assert_eq!(&dump_string(b"hello")[..8], b"\x00\x05hello\x0a");
    }

    #[test]
    fn lzf_back_references() {
        // literal "abc", then a back reference of length 3+... copying "abcabc".
        let compressed = [2u8, b'a', b'b', b'c', 0x40, 2];
        assert_eq!(lzf_decompress(&compressed, 7).unwrap(), b"abcabca");
    }
}
