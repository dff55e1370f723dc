//! Basalt's LSM storage engine (issue 3, in progress).
//!
//! `LsmEngine` implements the storage `Engine` trait: a WAL (`wal`, `batch`, `record`),
//! memtables (`memtable`), SSTables (`sstable`, `bloom`), a manifest of version edits
//! (`manifest`, `version`), merging iterators (`iterator`) and a background worker that
//! flushes and runs leveled compaction (`worker`). Still to come: the block and row caches,
//! range tombstones (delete-range writes point deletes today) and the compaction filter
//! hook for the keyspace.

pub mod batch;
pub mod bloom;
pub mod cache;
mod engine;
pub mod iterator;
pub mod key;
pub mod manifest;
pub mod memtable;
pub mod record;
pub mod sstable;
pub mod version;
pub mod wal;
mod worker;

pub use engine::{LsmEngine, LsmOptions, LsmStats};
#[cfg(test)]
mod tests;
