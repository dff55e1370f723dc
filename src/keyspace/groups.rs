//! The key groups the keyspace gives the storage engine for its prefix bloom filters: the
//! records of one version of one collection in one space (a hash's fields, a list's
//! elements, a sorted set's members or its score index) share the prefix
//! `db | tag | slot | key_len | key | version`. Reading a collection is a scan within its
//! group, so tables that hold none of it are skipped.

use super::encoding::{TAG_ELEMENT, TAG_SCORE};
use crate::storage::lsm::PrefixExtractor;

/// Groups element and score-index records by collection version.
#[derive(Debug, Default)]
pub struct CollectionGroups;

impl PrefixExtractor for CollectionGroups {
    fn id(&self) -> u32 {
        1
    }

    fn prefix_len(&self, key: &[u8]) -> Option<usize> {
        let tag = *key.get(1)?;
        if tag != TAG_ELEMENT && tag != TAG_SCORE {
            return None;
        }
        let key_len = u32::from_be_bytes(key.get(4..8)?.try_into().ok()?) as usize;
        let len = 8usize.checked_add(key_len)?.checked_add(8)?;
        (key.len() >= len).then_some(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::Slot;
    use crate::keyspace::encoding::{
        element_key, element_prefix, meta_key, space_key, space_prefix, Space,
    };

    #[test]
    fn a_collection_version_is_one_group() {
        let groups = CollectionGroups;
        let prefix = element_prefix(0, Slot(9), b"h", 7);
        for sub in [&b""[..], b"field", b"\xff\xff"] {
            let key = element_key(0, Slot(9), b"h", 7, sub);
            assert_eq!(groups.prefix_len(&key), Some(prefix.len()));
        }
        let scores = space_prefix(Space::Scores, 3, Slot(1), b"z", 2);
        let score_key = space_key(Space::Scores, 3, Slot(1), b"z", 2, b"12345678m");
        assert_eq!(groups.prefix_len(&score_key), Some(scores.len()));
        assert_eq!(groups.prefix_len(&meta_key(0, Slot(9), b"h")), None);
        assert_eq!(groups.prefix_len(&prefix[..prefix.len() - 1]), None);
        assert_eq!(groups.prefix_len(b"\xff"), None);
    }
}
