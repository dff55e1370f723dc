//! Table properties: counts, sequence-number range and key range.
//!
//! ## Format
//! `entries:u64 | tombstones:u64 | min_seqno:u64 | max_seqno:u64 | data_blocks:u64 |
//! smallest_len:u32 | smallest | largest_len:u32 | largest [| prefix_extractor:u32]`,
//! integers little-endian; keys are internal keys. `prefix_extractor` (absent in tables
//! written before it existed: 0) names the prefix grouping whose prefixes the bloom filter
//! holds (`prefix.rs`), 0 for none.

use bytes::{Buf, BufMut, Bytes};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Properties {
    pub entries: u64,
    pub tombstones: u64,
    pub min_seqno: u64,
    pub max_seqno: u64,
    pub data_blocks: u64,
    pub smallest: Bytes,
    pub largest: Bytes,
    pub prefix_extractor: u32,
}

impl Properties {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(52 + self.smallest.len() + self.largest.len());
        for v in [
            self.entries,
            self.tombstones,
            self.min_seqno,
            self.max_seqno,
            self.data_blocks,
        ] {
            out.put_u64_le(v);
        }
        for key in [&self.smallest, &self.largest] {
            out.put_u32_le(key.len() as u32);
            out.put_slice(key);
        }
        out.put_u32_le(self.prefix_extractor);
        out
    }

    pub fn decode(mut raw: Bytes) -> Option<Properties> {
        if raw.remaining() < 40 {
            return None;
        }
        let mut p = Properties {
            entries: raw.get_u64_le(),
            tombstones: raw.get_u64_le(),
            min_seqno: raw.get_u64_le(),
            max_seqno: raw.get_u64_le(),
            data_blocks: raw.get_u64_le(),
            ..Properties::default()
        };
        for slot in [&mut p.smallest, &mut p.largest] {
            if raw.remaining() < 4 {
                return None;
            }
            let len = raw.get_u32_le() as usize;
            if raw.remaining() < len {
                return None;
            }
            *slot = raw.split_to(len);
        }
        if raw.remaining() >= 4 {
            p.prefix_extractor = raw.get_u32_le();
        }
        Some(p)
    }
}
