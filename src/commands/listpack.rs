//! Redis's listpack, the compact encoding inside RDB payloads: read (RESTORE of a hash
//! Redis dumped as `RDB_TYPE_HASH_LISTPACK`, of a stream's nodes) and written (DUMP of a
//! stream).
//!
//! ## Format
//! `total_bytes:u32 LE | count:u16 LE | entry* | 0xFF`. An entry is an encoding byte with
//! its data, then a back-length (1–5 bytes) of the encoding+data size: `0xxxxxxx` a 7-bit
//! unsigned int; `10xxxxxx` a string of up to 63 bytes; `110xxxxx` + 1 byte a 13-bit signed
//! int; `1110xxxx` + 1 byte a string of up to 4095 bytes; `0xF0` + u32 LE a longer string;
//! `0xF1`–`0xF4` 16/24/32/64-bit signed ints (LE).

use bytes::Bytes;

/// The entries of a listpack as Redis would print them (integers in decimal), or `None` if
/// it is malformed.
pub fn entries(lp: &[u8]) -> Option<Vec<Bytes>> {
    let total = u32::from_le_bytes(lp.get(..4)?.try_into().ok()?) as usize;
    if total != lp.len() || *lp.last()? != 0xff {
        return None;
    }
    let mut pos = 6;
    let mut out = Vec::new();
    while *lp.get(pos)? != 0xff {
        let start = pos;
        let b = lp[pos];
        let int = |bytes: &[u8]| -> i64 {
            let mut v = [0u8; 8];
            v[..bytes.len()].copy_from_slice(bytes);
            let shift = 64 - 8 * bytes.len() as u32;
            (i64::from_le_bytes(v) << shift) >> shift
        };
        let (entry, len) = match b {
            0x00..=0x7f => (Bytes::from(b.to_string()), 1),
            0x80..=0xbf => {
                let n = usize::from(b & 0x3f);
                (Bytes::copy_from_slice(lp.get(pos + 1..pos + 1 + n)?), 1 + n)
            }
            0xc0..=0xdf => {
                let raw = (u16::from(b & 0x1f) << 8) | u16::from(*lp.get(pos + 1)?);
                let v = ((raw << 3) as i16) >> 3;
                (Bytes::from(v.to_string()), 2)
            }
            0xe0..=0xef => {
                let n = (usize::from(b & 0x0f) << 8) | usize::from(*lp.get(pos + 1)?);
                (Bytes::copy_from_slice(lp.get(pos + 2..pos + 2 + n)?), 2 + n)
            }
            0xf0 => {
                let n = u32::from_le_bytes(lp.get(pos + 1..pos + 5)?.try_into().ok()?) as usize;
                (Bytes::copy_from_slice(lp.get(pos + 5..pos + 5 + n)?), 5 + n)
            }
            0xf1..=0xf4 => {
                let n = [2, 3, 4, 8][usize::from(b - 0xf1)];
                let v = int(lp.get(pos + 1..pos + 1 + n)?);
                (Bytes::from(v.to_string()), 1 + n)
            }
            _ => return None,
        };
        pos = start + len + backlen_bytes(len);
        out.push(entry);
    }
    // Redis writes 65535 as the count when it does not know it.
    let count = usize::from(u16::from_le_bytes([lp[4], lp[5]]));
    (pos + 1 == lp.len() && (out.len() == count || count == 0xffff)).then_some(out)
}

/// Bytes the back-length of an entry of `len` bytes takes.
fn backlen_bytes(len: usize) -> usize {
    match len {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    }
}

/// A listpack of `items` as Redis lays one out: an item that is an integer as Redis
/// writes one (canonical decimal, 64-bit) in the smallest integer encoding, any other in
/// the shortest string encoding, each followed by its back-length.
pub fn build(items: &[&[u8]]) -> Vec<u8> {
    let mut body = Vec::new();
    for item in items {
        let start = body.len();
        match canonical_int(item) {
            Some(v) if (0..=127).contains(&v) => body.push(v as u8),
            Some(v) if (-4096..=4095).contains(&v) => {
                let raw = (v as u16) & 0x1fff;
                body.push(0xc0 | (raw >> 8) as u8);
                body.push(raw as u8);
            }
            Some(v) => {
                let (tag, width) = match v {
                    -32_768..=32_767 => (0xf1, 2),
                    -8_388_608..=8_388_607 => (0xf2, 3),
                    -2_147_483_648..=2_147_483_647 => (0xf3, 4),
                    _ => (0xf4, 8),
                };
                body.push(tag);
                body.extend_from_slice(&v.to_le_bytes()[..width]);
            }
            None if item.len() < 64 => {
                body.push(0x80 | item.len() as u8);
                body.extend_from_slice(item);
            }
            None if item.len() < 4096 => {
                body.push(0xe0 | (item.len() >> 8) as u8);
                body.push(item.len() as u8);
                body.extend_from_slice(item);
            }
            None => {
                body.push(0xf0);
                body.extend_from_slice(&(item.len() as u32).to_le_bytes());
                body.extend_from_slice(item);
            }
        }
        let len = body.len() - start;
        push_backlen(&mut body, len);
    }
    let mut lp = Vec::with_capacity(body.len() + 7);
    lp.extend_from_slice(&((body.len() + 7) as u32).to_le_bytes());
    lp.extend_from_slice(&(items.len().min(0xffff) as u16).to_le_bytes());
    lp.extend_from_slice(&body);
    lp.push(0xff);
    lp
}

/// The integer an item stands for, if Redis's `lpStringToInt64` would store it as one.
fn canonical_int(item: &[u8]) -> Option<i64> {
    if item.is_empty() || item.len() > 20 {
        return None;
    }
    let v = crate::protocol::decode::parse_i64(item)?;
    (v.to_string().as_bytes() == item).then_some(v)
}

/// An entry's back-length: its size in 7-bit groups, most significant first, every group
/// but the first flagged with the high bit (so it reads right to left).
fn push_backlen(out: &mut Vec<u8>, len: usize) {
    let groups = backlen_bytes(len);
    for i in (0..groups).rev() {
        let part = ((len >> (7 * i)) & 0x7f) as u8;
        out.push(if i + 1 == groups { part } else { part | 0x80 });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_entry_kind_it_builds() {
        let long = vec![b'x'; 300];
        let items: Vec<&[u8]> = vec![b"f", b"7", b"-100", b"123456789012", b"hello", &long];
        let lp = build(&items);
        let got = entries(&lp).unwrap();
        let expected: Vec<Bytes> = items.iter().map(|i| Bytes::copy_from_slice(i)).collect();
        assert_eq!(got, expected);
        // Back-lengths as Redis writes them: one byte up to 127, then 7-bit groups.
        assert_eq!(&lp[6..9], &[0x81, b'f', 2]);
        let mut two = Vec::new();
        push_backlen(&mut two, 303);
        assert_eq!(two, [2, 0x80 | 47]);
        for v in [i64::MIN, -70_000, -5_000, 40_000, 9_000_000, 3_000_000_000] {
            let text = v.to_string();
            assert_eq!(
                entries(&build(&[text.as_bytes()])).unwrap(),
                [Bytes::from(text)]
            );
        }
        assert_eq!(entries(&build(&[b"007"])).unwrap(), [Bytes::from("007")]);
        assert_eq!(entries(&lp[..lp.len() - 1]), None);
        let mut bad = lp.clone();
        bad[6] = 0xf5;
        assert_eq!(entries(&bad), None);
    }
}
