//! Range tombstones: one record deletes every key of `[start, end)` older than itself.
//!
//! A delete-range write (FLUSHDB, dropping a slot) costs one record however many keys it
//! covers. The tombstone lives in its memtable until that memtable is flushed, then in the
//! version (recorded in the manifest, not in SSTables: tombstones are few and every reader
//! consults all of them). Reads hide a point version when a tombstone visible to the reader
//! covers its key with a higher sequence number. Compaction drops covered points once every
//! snapshot sees the tombstone, and the tombstone itself leaves the version once no table
//! can still hold a point it covers.

use bytes::Bytes;

/// Deletes every key in `[start, end)` whose sequence number is below `seqno`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeTombstone {
    pub start: Bytes,
    pub end: Bytes,
    pub seqno: u64,
}

impl RangeTombstone {
    pub fn contains(&self, key: &[u8]) -> bool {
        key >= &self.start[..] && key < &self.end[..]
    }

    /// Whether the user-key range `[lo, hi]` (inclusive) meets `[start, end)`.
    pub fn overlaps(&self, lo: &[u8], hi: &[u8]) -> bool {
        hi >= &self.start[..] && lo < &self.end[..]
    }

    /// Approximate memory held.
    pub fn bytes(&self) -> usize {
        self.start.len() + self.end.len() + 48
    }
}

/// The highest sequence number at or below `snapshot` of the tombstones covering `key`
/// (0 when none does).
pub fn covering_seqno<'a>(
    tombstones: impl IntoIterator<Item = &'a RangeTombstone>,
    key: &[u8],
    snapshot: u64,
) -> u64 {
    tombstones
        .into_iter()
        .filter(|t| t.seqno <= snapshot && t.contains(key))
        .map(|t| t.seqno)
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_half_open_ranges_at_a_snapshot() {
        let t = |s: &'static str, e: &'static str, seqno| RangeTombstone {
            start: Bytes::from(s),
            end: Bytes::from(e),
            seqno,
        };
        let list = [t("b", "d", 5), t("c", "e", 9)];
        assert_eq!(covering_seqno(&list, b"a", 100), 0);
        assert_eq!(covering_seqno(&list, b"b", 100), 5);
        assert_eq!(covering_seqno(&list, b"c", 100), 9);
        assert_eq!(covering_seqno(&list, b"c", 8), 5);
        assert_eq!(covering_seqno(&list, b"d", 100), 9);
        assert_eq!(covering_seqno(&list, b"e", 100), 0);
        assert!(list[0].overlaps(b"a", b"b"));
        assert!(!list[0].overlaps(b"d", b"z"));
    }
}
