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

/// A set of range tombstones, indexed so that the tombstone covering a key is found by
/// binary search however many there are: repeated FLUSHDBs stack tombstones over the same
/// ranges, and every read and every flushed or compacted key asks about them.
///
/// The index cuts the ranges into disjoint fragments at every tombstone's ends; each
/// fragment lists, in ascending order, the seqnos of the tombstones covering all of it.
#[derive(Debug, Clone, Default)]
pub struct RangeDels {
    /// The tombstones, in the order they were added.
    list: Vec<RangeTombstone>,
    /// Disjoint, in key order.
    fragments: Vec<Fragment>,
}

#[derive(Debug, Clone)]
struct Fragment {
    start: Bytes,
    end: Bytes,
    /// Ascending.
    seqnos: Vec<u64>,
}

impl RangeDels {
    pub fn insert(&mut self, t: RangeTombstone) {
        if t.start < t.end {
            self.cover(&t);
        }
        self.list.push(t);
    }

    /// Adds `t`'s seqno to every fragment within its range, cutting the fragments its ends
    /// fall inside and filling the gaps between them with new ones.
    fn cover(&mut self, t: &RangeTombstone) {
        let add = |seqnos: &mut Vec<u64>| {
            let at = seqnos.partition_point(|s| *s <= t.seqno);
            seqnos.insert(at, t.seqno);
        };
        let mut out = Vec::with_capacity(self.fragments.len() + 2);
        // Where in `t`'s range the fragments seen so far end (`None`: not reached yet).
        let mut cursor: Option<Bytes> = None;
        for f in self.fragments.drain(..) {
            if f.end <= t.start || f.start >= t.end {
                if f.start >= t.end {
                    let from = cursor.take().unwrap_or_else(|| t.start.clone());
                    if from < t.end {
                        out.push(Fragment {
                            start: from,
                            end: t.end.clone(),
                            seqnos: vec![t.seqno],
                        });
                    }
                    cursor = Some(t.end.clone());
                }
                out.push(f);
                continue;
            }
            // `f` meets `t`: the parts outside keep their seqnos, the part inside gains t's.
            if f.start < t.start {
                out.push(Fragment {
                    start: f.start.clone(),
                    end: t.start.clone(),
                    seqnos: f.seqnos.clone(),
                });
            }
            let from = cursor.take().unwrap_or_else(|| t.start.clone());
            let inner_start = f.start.clone().max(t.start.clone());
            if from < inner_start {
                out.push(Fragment {
                    start: from,
                    end: inner_start.clone(),
                    seqnos: vec![t.seqno],
                });
            }
            let inner_end = f.end.clone().min(t.end.clone());
            let mut seqnos = f.seqnos.clone();
            add(&mut seqnos);
            out.push(Fragment {
                start: inner_start,
                end: inner_end.clone(),
                seqnos,
            });
            if f.end > t.end {
                out.push(Fragment {
                    start: t.end.clone(),
                    end: f.end,
                    seqnos: f.seqnos,
                });
            }
            cursor = Some(inner_end);
        }
        let from = cursor.unwrap_or_else(|| t.start.clone());
        if from < t.end {
            out.push(Fragment {
                start: from,
                end: t.end.clone(),
                seqnos: vec![t.seqno],
            });
        }
        self.fragments = out;
    }

    /// The highest sequence number at or below `snapshot` of the tombstones covering `key`
    /// (0 when none does).
    pub fn covering_seqno(&self, key: &[u8], snapshot: u64) -> u64 {
        let after = self.fragments.partition_point(|f| &f.start[..] <= key);
        let Some(f) = after.checked_sub(1).map(|i| &self.fragments[i]) else {
            return 0;
        };
        if key >= &f.end[..] {
            return 0;
        }
        let at = f.seqnos.partition_point(|s| *s <= snapshot);
        at.checked_sub(1).map_or(0, |i| f.seqnos[i])
    }

    pub fn iter(&self) -> std::slice::Iter<'_, RangeTombstone> {
        self.list.iter()
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

impl FromIterator<RangeTombstone> for RangeDels {
    fn from_iter<I: IntoIterator<Item = RangeTombstone>>(iter: I) -> Self {
        let mut set = RangeDels::default();
        for t in iter {
            set.insert(t);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str, e: &str, seqno: u64) -> RangeTombstone {
        RangeTombstone {
            start: Bytes::copy_from_slice(s.as_bytes()),
            end: Bytes::copy_from_slice(e.as_bytes()),
            seqno,
        }
    }

    #[test]
    fn covers_half_open_ranges_at_a_snapshot() {
        let list = [t("b", "d", 5), t("c", "e", 9)];
        let set: RangeDels = list.iter().cloned().collect();
        assert_eq!(set.covering_seqno(b"a", 100), 0);
        assert_eq!(set.covering_seqno(b"b", 100), 5);
        assert_eq!(set.covering_seqno(b"c", 100), 9);
        assert_eq!(set.covering_seqno(b"c", 8), 5);
        assert_eq!(set.covering_seqno(b"d", 100), 9);
        assert_eq!(set.covering_seqno(b"e", 100), 0);
        assert_eq!(set.len(), 2);
        assert!(list[0].overlaps(b"a", b"b"));
        assert!(!list[0].overlaps(b"d", b"z"));
    }

    /// The index answers as a scan of every tombstone would, for random overlapping sets
    /// added in any seqno order.
    #[test]
    fn the_index_agrees_with_a_scan_of_every_tombstone() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let key = |i: u64| format!("k{i:02}");
        for _ in 0..200 {
            let mut list = Vec::new();
            let mut set = RangeDels::default();
            for _ in 0..next(12) {
                let (a, b) = (next(20), next(20));
                let tomb = t(&key(a.min(b)), &key(a.max(b)), 1 + next(50));
                set.insert(tomb.clone());
                list.push(tomb);
            }
            for k in 0..21 {
                for snapshot in [0, 10, 25, 40, 100] {
                    let k = key(k);
                    let want = list
                        .iter()
                        .filter(|t| t.seqno <= snapshot && t.contains(k.as_bytes()))
                        .map(|t| t.seqno)
                        .max()
                        .unwrap_or(0);
                    assert_eq!(set.covering_seqno(k.as_bytes(), snapshot), want, "{list:?}");
                }
            }
            for w in set.fragments.windows(2) {
                assert!(w[0].end <= w[1].start, "fragments overlap");
            }
        }
    }

    #[test]
    fn stacked_tombstones_over_one_range_stay_one_fragment() {
        let set: RangeDels = (1..=5000).map(|s| t("a", "m", s)).collect();
        assert_eq!(set.fragments.len(), 1);
        assert_eq!(set.covering_seqno(b"b", 2500), 2500);
        assert_eq!(set.covering_seqno(b"m", 5000), 0);
    }
}
