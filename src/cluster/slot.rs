//! Hash slots (CRC16-XMODEM of the key or its `{hash tag}`, mod 16384) and the shard map.

/// Number of hash slots, as in Redis Cluster.
pub const SLOT_COUNT: u16 = 16384;

/// A hash slot, `0..16384`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slot(pub u16);

/// A shard: a group of slots with one ordered apply sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShardId(pub u16);

/// CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0, as the Redis Cluster spec says.
const CRC16_TABLE: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

pub fn crc16(data: &[u8]) -> u16 {
    data.iter().fold(0u16, |crc, &b| {
        (crc << 8) ^ CRC16_TABLE[(((crc >> 8) as u8) ^ b) as usize]
    })
}

/// The part of the key that is hashed: the first `{…}` with something inside, else the key.
pub fn hash_tag(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&b| b == b'{') {
        if let Some(len) = key[open + 1..].iter().position(|&b| b == b'}') {
            if len > 0 {
                return &key[open + 1..open + 1 + len];
            }
        }
    }
    key
}

pub fn key_slot(key: &[u8]) -> Slot {
    Slot(crc16(hash_tag(key)) & (SLOT_COUNT - 1))
}

/// Slots grouped into contiguous, equal ranges of shards.
#[derive(Debug, Clone, Copy)]
pub struct ShardMap {
    shard_count: u16,
}

impl ShardMap {
    /// `shard_count` must be within `1..=SLOT_COUNT`.
    pub fn new(shard_count: u16) -> ShardMap {
        assert!(
            (1..=SLOT_COUNT).contains(&shard_count),
            "shard count out of range"
        );
        ShardMap { shard_count }
    }

    pub fn shard_count(&self) -> u16 {
        self.shard_count
    }

    pub fn shard_of(&self, slot: Slot) -> ShardId {
        ShardId((u32::from(slot.0) * u32::from(self.shard_count) / u32::from(SLOT_COUNT)) as u16)
    }

    pub fn shard_of_key(&self, key: &[u8]) -> ShardId {
        self.shard_of(key_slot(key))
    }

    /// The slots a shard owns, as `[first, last]`.
    pub fn slot_range(&self, shard: ShardId) -> (Slot, Slot) {
        let n = u32::from(self.shard_count);
        let slots = u32::from(SLOT_COUNT);
        let first = (u32::from(shard.0) * slots).div_ceil(n);
        let next = ((u32::from(shard.0) + 1) * slots).div_ceil(n);
        (Slot(first as u16), Slot((next - 1) as u16))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_vectors() {
        // The Redis Cluster specification: crc16("123456789") = 0x31C3.
        assert_eq!(crc16(b"123456789"), 0x31c3);
        assert_eq!(key_slot(b"foo").0, 12182);
        assert_eq!(key_slot(b"bar").0, 5061);
        assert_eq!(
            key_slot(b"{user1000}.following"),
            key_slot(b"{user1000}.followers")
        );
        assert_eq!(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}"));
        assert_eq!(hash_tag(b"foo{}{bar}"), b"foo{}{bar}");
        assert_eq!(hash_tag(b"foo{{bar}}zap"), b"{bar");
        assert_eq!(hash_tag(b"foo{bar}{zap}"), b"bar");
        assert_eq!(key_slot(b"").0, 0);
    }

    #[test]
    fn shard_ranges_cover_every_slot_once() {
        for n in [1u16, 3, 16, 64, 16384] {
            let map = ShardMap::new(n);
            let mut next = 0u32;
            for s in 0..n {
                let (first, last) = map.slot_range(ShardId(s));
                assert_eq!(u32::from(first.0), next);
                assert_eq!(map.shard_of(first), ShardId(s));
                assert_eq!(map.shard_of(last), ShardId(s));
                next = u32::from(last.0) + 1;
            }
            assert_eq!(next, 16384);
        }
    }
}
