//! Data and index blocks: sorted entries with prefix compression and restart points.
//!
//! ## Format
//! Entries, each `shared:varint | unshared:varint | value_len:varint | key[shared..] |
//! value`, where `shared` is the length of the prefix shared with the previous key (0 at a
//! restart point); then `restarts: [u32 LE; n]` (offsets of restart entries) and `n: u32 LE`.
//! A restart point every [`RESTART_INTERVAL`] entries lets a reader binary-search the block.
//! Keys are internal keys, compared with [`compare_internal`].

use std::cmp::Ordering;

use bytes::Bytes;

use crate::storage::lsm::key::compare_internal;

/// Entries between restart points in data blocks: a seek binary-searches the restart
/// points and then decodes at most this many entries.
pub const RESTART_INTERVAL: usize = 8;

pub struct BlockBuilder {
    buf: Vec<u8>,
    restarts: Vec<u32>,
    last_key: Vec<u8>,
    since_restart: usize,
    entries: usize,
    restart_interval: usize,
}

impl Default for BlockBuilder {
    fn default() -> Self {
        BlockBuilder::with_restart_interval(RESTART_INTERVAL)
    }
}

pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a varint at `*pos`, advancing it; `None` if malformed or truncated.
pub fn get_varint(data: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *data.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

impl BlockBuilder {
    pub fn new() -> BlockBuilder {
        BlockBuilder::default()
    }

    /// A builder with a restart point every `entries` entries (readers need not know).
    pub fn with_restart_interval(entries: usize) -> BlockBuilder {
        BlockBuilder {
            buf: Vec::new(),
            restarts: Vec::new(),
            last_key: Vec::new(),
            since_restart: 0,
            entries: 0,
            restart_interval: entries.max(1),
        }
    }

    /// Adds an entry; keys must arrive in increasing internal-key order.
    pub fn add(&mut self, key: &[u8], value: &[u8]) {
        debug_assert!(self.entries == 0 || compare_internal(&self.last_key, key) == Ordering::Less);
        let shared = if self.since_restart == self.restart_interval || self.entries == 0 {
            self.restarts.push(self.buf.len() as u32);
            self.since_restart = 0;
            0
        } else {
            self.last_key
                .iter()
                .zip(key)
                .take_while(|(a, b)| a == b)
                .count()
        };
        put_varint(&mut self.buf, shared as u64);
        put_varint(&mut self.buf, (key.len() - shared) as u64);
        put_varint(&mut self.buf, value.len() as u64);
        self.buf.extend_from_slice(&key[shared..]);
        self.buf.extend_from_slice(value);
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        self.since_restart += 1;
        self.entries += 1;
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Bytes the finished block will take.
    pub fn estimated_bytes(&self) -> usize {
        self.buf.len() + 4 * self.restarts.len() + 4
    }

    pub fn last_key(&self) -> &[u8] {
        &self.last_key
    }

    /// Finishes the block and resets the builder.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.buf);
        for r in &self.restarts {
            out.extend_from_slice(&r.to_le_bytes());
        }
        out.extend_from_slice(&(self.restarts.len() as u32).to_le_bytes());
        *self = BlockBuilder::with_restart_interval(self.restart_interval);
        out
    }
}

/// A parsed block; entries are decoded on iteration.
#[derive(Clone)]
pub struct Block {
    data: Bytes,
    restarts_at: usize,
    restart_count: usize,
}

/// A block that does not parse.
#[derive(Debug)]
pub struct MalformedBlock;

impl Block {
    pub fn parse(data: Bytes) -> Result<Block, MalformedBlock> {
        if data.len() < 4 {
            return Err(MalformedBlock);
        }
        let count = u32::from_le_bytes(
            data[data.len() - 4..]
                .try_into()
                .map_err(|_| MalformedBlock)?,
        ) as usize;
        let restarts_at = data
            .len()
            .checked_sub(4 + 4 * count)
            .ok_or(MalformedBlock)?;
        Ok(Block {
            data,
            restarts_at,
            restart_count: count,
        })
    }

    fn restart(&self, i: usize) -> usize {
        let at = self.restarts_at + 4 * i;
        u32::from_le_bytes(self.data[at..at + 4].try_into().unwrap_or_default()) as usize
    }

    /// Decodes the header of the entry at `pos` without copying anything.
    fn header(&self, pos: usize) -> Result<EntryHeader, MalformedBlock> {
        let mut p = pos;
        let (shared, unshared, value_len) = match self.data.get(p..p + 3) {
            // The common case: three one-byte varints.
            Some(&[a, b, c]) if (a | b | c) < 0x80 => {
                p += 3;
                (usize::from(a), usize::from(b), usize::from(c))
            }
            _ => (
                get_varint(&self.data, &mut p).ok_or(MalformedBlock)? as usize,
                get_varint(&self.data, &mut p).ok_or(MalformedBlock)? as usize,
                get_varint(&self.data, &mut p).ok_or(MalformedBlock)? as usize,
            ),
        };
        let key_end = p.checked_add(unshared).ok_or(MalformedBlock)?;
        let value_end = key_end.checked_add(value_len).ok_or(MalformedBlock)?;
        if value_end > self.restarts_at {
            return Err(MalformedBlock);
        }
        Ok(EntryHeader {
            shared,
            key_start: p,
            key_end,
            value_end,
        })
    }

    /// The full key stored at restart point `i` (restart entries share nothing).
    fn restart_key(&self, i: usize) -> Result<&[u8], MalformedBlock> {
        let h = self.header(self.restart(i))?;
        if h.shared != 0 {
            return Err(MalformedBlock);
        }
        Ok(&self.data[h.key_start..h.key_end])
    }

    /// An iterator positioned before the first entry.
    pub fn iter(&self) -> BlockIter {
        BlockIter {
            block: self.clone(),
            pos: 0,
            key: Vec::new(),
        }
    }

    /// Every entry in order.
    pub fn entries(&self) -> Result<Vec<(Vec<u8>, Bytes)>, MalformedBlock> {
        self.iter().collect()
    }

    /// An iterator from the last entry backwards.
    pub fn rev_iter(&self) -> BlockRevIter {
        BlockRevIter {
            block: self.clone(),
            next_interval: self.restart_count,
            buffered: Vec::new(),
        }
    }

    /// The entries of restart interval `i`, in order.
    fn interval(&self, i: usize) -> Result<Vec<(Vec<u8>, Bytes)>, MalformedBlock> {
        let end = if i + 1 < self.restart_count {
            self.restart(i + 1)
        } else {
            self.restarts_at
        };
        let mut it = self.iter();
        it.pos = self.restart(i);
        let mut out = Vec::with_capacity(RESTART_INTERVAL);
        while it.pos < end {
            out.push(it.advance()?);
        }
        Ok(out)
    }
}

/// Walks a block's entries backwards, one restart interval (decoded forwards) at a time.
pub struct BlockRevIter {
    block: Block,
    /// Restart intervals below this index are still to be decoded.
    next_interval: usize,
    /// The rest of the current interval, in order (yielded from the back).
    buffered: Vec<(Vec<u8>, Bytes)>,
}

impl BlockRevIter {
    /// Positions the iterator so that `next` yields the last entry at or before `target`.
    pub fn seek_for_prev(&mut self, target: &[u8]) -> Result<(), MalformedBlock> {
        let block = &self.block;
        self.buffered.clear();
        self.next_interval = 0;
        if block.restart_count == 0
            || compare_internal(block.restart_key(0)?, target) == Ordering::Greater
        {
            return Ok(());
        }
        // The last restart point at or before `target`.
        let (mut lo, mut hi) = (0usize, block.restart_count);
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            if compare_internal(block.restart_key(mid)?, target) == Ordering::Greater {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        let mut entries = block.interval(lo)?;
        entries.retain(|(k, _)| compare_internal(k, target) != Ordering::Greater);
        self.buffered = entries;
        self.next_interval = lo;
        Ok(())
    }
}

impl Iterator for BlockRevIter {
    type Item = Result<(Vec<u8>, Bytes), MalformedBlock>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.buffered.is_empty() {
            if self.next_interval == 0 {
                return None;
            }
            self.next_interval -= 1;
            match self.block.interval(self.next_interval) {
                Ok(entries) => self.buffered = entries,
                Err(e) => {
                    self.next_interval = 0;
                    return Some(Err(e));
                }
            }
        }
        self.buffered.pop().map(Ok)
    }
}

struct EntryHeader {
    shared: usize,
    key_start: usize,
    key_end: usize,
    value_end: usize,
}

/// Walks a block's entries in order.
pub struct BlockIter {
    block: Block,
    pos: usize,
    key: Vec<u8>,
}

impl BlockIter {
    /// Positions the iterator so that `next` yields the first entry at or after `target`.
    pub fn seek(&mut self, target: &[u8]) -> Result<(), MalformedBlock> {
        let block = &self.block;
        // Binary search for the last restart point whose key is before `target`.
        let (mut lo, mut hi) = (0usize, block.restart_count);
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            if compare_internal(block.restart_key(mid)?, target) == Ordering::Less {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        self.pos = if block.restart_count == 0 {
            block.restarts_at
        } else {
            block.restart(lo)
        };
        self.key.clear();
        // Step over the entries before `target`; the key buffer is rebuilt in place. It ends
        // holding the key of the entry `next` will yield, which shares the same prefix with
        // it as the previous key did, so decoding that entry again gives the same key.
        while self.pos < self.block.restarts_at {
            let h = self.load_key()?;
            if compare_internal(&self.key, target) != Ordering::Less {
                return Ok(());
            }
            self.pos = h.value_end;
        }
        Ok(())
    }

    /// Rebuilds the key buffer from the entry at `pos` (without moving past it).
    fn load_key(&mut self) -> Result<EntryHeader, MalformedBlock> {
        let h = self.block.header(self.pos)?;
        if h.shared > self.key.len() {
            return Err(MalformedBlock);
        }
        self.key.truncate(h.shared);
        self.key
            .extend_from_slice(&self.block.data[h.key_start..h.key_end]);
        Ok(h)
    }

    fn advance(&mut self) -> Result<(Vec<u8>, Bytes), MalformedBlock> {
        let h = self.load_key()?;
        self.pos = h.value_end;
        Ok((
            self.key.clone(),
            self.block.data.slice(h.key_end..h.value_end),
        ))
    }
}

impl Iterator for BlockIter {
    type Item = Result<(Vec<u8>, Bytes), MalformedBlock>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.block.restarts_at {
            return None;
        }
        let entry = self.advance();
        if entry.is_err() {
            self.pos = self.block.restarts_at;
        }
        Some(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::lsm::key::{InternalKey, Kind};

    #[test]
    fn build_read_and_seek() {
        let mut b = BlockBuilder::new();
        let keys: Vec<Bytes> = (0..100u32)
            .map(|i| InternalKey::new(format!("key{i:04}"), 1, Kind::Put).encode())
            .collect();
        for (i, k) in keys.iter().enumerate() {
            b.add(k, format!("v{i}").as_bytes());
        }
        let block = Block::parse(Bytes::from(b.finish())).unwrap();
        let all = block.entries().unwrap();
        assert_eq!(all.len(), 100);
        assert_eq!(all[42].0, keys[42].to_vec());
        assert_eq!(&all[42].1[..], b"v42");
        let mut it = block.iter();
        it.seek(&InternalKey::new("key0050", 5, Kind::Put).encode())
            .unwrap();
        assert_eq!(it.next().unwrap().unwrap().0, keys[50].to_vec());
        assert_eq!(it.next().unwrap().unwrap().0, keys[51].to_vec());
        let mut it = block.iter();
        it.seek(&InternalKey::new("zzz", 1, Kind::Put).encode())
            .unwrap();
        assert!(it.next().is_none());
        assert!(Block::parse(Bytes::from_static(b"\x01")).is_err());

        let backwards: Vec<_> = block.rev_iter().map(|e| e.unwrap().0).collect();
        let mut expected: Vec<_> = keys.iter().map(|k| k.to_vec()).collect();
        expected.reverse();
        assert_eq!(backwards, expected);
        for (target, first) in [("key0050", Some(49)), ("key0000", None), ("zzz", Some(99))] {
            let mut it = block.rev_iter();
            // Seqno 5 sorts before the stored seqno 1: the key itself is after the target.
            it.seek_for_prev(&InternalKey::new(target, 5, Kind::Put).encode())
                .unwrap();
            let got = it.next().map(|e| e.unwrap().0);
            assert_eq!(got, first.map(|i: usize| keys[i].to_vec()), "{target}");
        }
        let mut it = block.rev_iter();
        it.seek_for_prev(&keys[16]).unwrap();
        let got: Vec<_> = it.map(|e| e.unwrap().0).collect();
        assert_eq!(got.len(), 17);
        assert_eq!(got[0], keys[16].to_vec());
    }
}
