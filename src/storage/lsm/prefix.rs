//! Prefix bloom filters: the engine's user can group keys by a prefix (the keyspace groups a
//! collection's elements), each table's bloom filter then holds every group prefix it has
//! keys of, and a scan whose whole range lies within one group skips every table whose
//! filter says the group is absent. A hash read or a sorted-set window then opens only the
//! tables that hold that collection, not every level-0 table and one table per level.
//!
//! A table records the id of the extractor it was written with (its properties); a table
//! written without one, or with another, is never skipped.

use std::ops::Bound;

use crate::storage::{prefix_successor, KeyRange};

/// Splits a user key into its group prefix and the rest.
pub trait PrefixExtractor: Send + Sync + std::fmt::Debug {
    /// Names the grouping in table properties; never 0, and never reused for another.
    fn id(&self) -> u32;

    /// The length of `user_key`'s group prefix, if it belongs to a group. Every key that
    /// starts with that prefix must belong to the same group.
    fn prefix_len(&self, user_key: &[u8]) -> Option<usize>;
}

/// The group prefix every key of `range` shares, if there is one.
pub fn shared_prefix<'a>(extractor: &dyn PrefixExtractor, range: &'a KeyRange) -> Option<&'a [u8]> {
    let start = match &range.start {
        Bound::Included(k) | Bound::Excluded(k) => k,
        Bound::Unbounded => return None,
    };
    let prefix = start.get(..extractor.prefix_len(start)?)?;
    // Keys between two keys with the prefix have it too; so do keys below its successor.
    let within = match &range.end {
        Bound::Included(end) => end.starts_with(prefix),
        Bound::Excluded(end) => {
            end.starts_with(prefix) || prefix_successor(prefix).is_some_and(|s| s == end[..])
        }
        Bound::Unbounded => false,
    };
    within.then_some(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    /// Groups keys by what comes before the first `/`.
    #[derive(Debug)]
    struct UpToSlash;

    impl PrefixExtractor for UpToSlash {
        fn id(&self) -> u32 {
            7
        }
        fn prefix_len(&self, key: &[u8]) -> Option<usize> {
            key.iter().position(|&b| b == b'/').map(|i| i + 1)
        }
    }

    #[test]
    fn a_range_within_one_group_has_its_prefix() {
        let e = UpToSlash;
        let within = KeyRange::prefix(b"user/");
        assert_eq!(shared_prefix(&e, &within), Some(&b"user/"[..]));
        let window = KeyRange::half_open(Bytes::from("user/b"), Bytes::from("user/m"));
        assert_eq!(shared_prefix(&e, &window), Some(&b"user/"[..]));
        let across = KeyRange::half_open(Bytes::from("user/b"), Bytes::from("users"));
        assert_eq!(shared_prefix(&e, &across), None);
        let ungrouped = KeyRange::prefix(b"user");
        assert_eq!(shared_prefix(&e, &ungrouped), None);
        let open = KeyRange {
            start: Bound::Included(Bytes::from("user/a")),
            end: Bound::Unbounded,
        };
        assert_eq!(shared_prefix(&e, &open), None);
    }
}
