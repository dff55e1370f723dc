//! WATCH at apply: the keys an applied entry changed mark their watchers (see
//! `commands::watches`). Keys a database-wide change (FLUSHDB, FLUSHALL, SWAPDB) affected
//! are found before the entry is written, while the old state can still be read.

use bytes::Bytes;

use super::Node;
use crate::keyspace::{ChangeKind, Changes};

/// The watched keys an entry changed, found before it is written.
pub(super) struct Touched {
    keys: Vec<(u8, Bytes)>,
}

/// What `changes` (a transaction's, taken just before committing it) touched that someone
/// watches.
pub(super) fn before_commit(node: &Node, changes: &Changes) -> Touched {
    // An event a command names beside its store (a stream consumer created) is no change
    // of the key's value: Redis does not signal it to watchers either.
    let mut keys: Vec<(u8, Bytes)> = changes
        .keys
        .iter()
        .filter(|c| !matches!(c.kind, ChangeKind::Event(_)))
        .map(|c| (c.db, c.key.clone()))
        .collect();
    let watches = &node.shared.watches;
    let keyspace = &node.shared.keyspace;
    let exists = |db: u8, key: &[u8]| matches!(keyspace.get_stored(db, key), Ok(Some(_)));
    for &(db, partner) in &changes.dbs {
        for key in watches.keys_in_db(db) {
            // As Redis: a watched key counts if the change found it (in either database).
            if exists(db, &key) || partner.is_some_and(|p| exists(p, &key)) {
                keys.push((db, key));
            }
        }
    }
    Touched { keys }
}

/// The watched keys of `dbs` (`None`: every database) in slots `first..=last` that exist
/// now; call before a shard's data is flushed.
pub(super) fn before_flush(node: &Node, db: Option<u8>, first: u16, last: u16) -> Touched {
    let keyspace = &node.shared.keyspace;
    let dbs: Vec<u8> = match db {
        Some(db) => vec![db],
        None => (0..keyspace.databases()).collect(),
    };
    let mut keys = Vec::new();
    for db in dbs {
        for key in node.shared.watches.keys_in_db(db) {
            let slot = crate::cluster::key_slot(&key).0;
            let stored = matches!(keyspace.get_stored(db, &key), Ok(Some(_)));
            if (first..=last).contains(&slot) && stored {
                keys.push((db, key));
            }
        }
    }
    Touched { keys }
}

/// Marks the watchers of the changed keys; call once the entry is written.
pub(super) fn after_commit(node: &Node, touched: Touched) {
    let keyspace = &node.shared.keyspace;
    for (db, key) in touched.keys {
        let exists = || matches!(keyspace.get_stored(db, &key), Ok(Some(_)));
        node.shared.watches.touch(db, &key, exists);
    }
}
