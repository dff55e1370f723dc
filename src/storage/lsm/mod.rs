//! Basalt's LSM storage engine.
//!
//! `LsmEngine` implements the storage `Engine` trait: a WAL (`wal`, `batch`, `record`),
//! memtables (`memtable`), SSTables (`sstable`, `bloom`), block and row caches (`cache`), a
//! manifest of version edits (`manifest`, `version`), range tombstones (`range_del`),
//! cursors over memtables and tables (`cursor`), merging iterators (`iterator`), prefix
//! bloom filters (`prefix`) and a background worker that flushes and runs leveled
//! compaction with a compaction filter hook (`worker`); its counters and INFO fields
//! (`stats`).

pub mod batch;
pub mod bloom;
pub mod cache;
pub mod cursor;
mod engine;
mod epochs;
mod flush;
mod gc;
pub mod iterator;
pub mod key;
pub mod manifest;
mod mem_filter;
pub mod memtable;
mod point_index;
pub mod prefix;
pub mod range_del;
mod read;
pub mod record;
mod skiplist;
pub mod sstable;
mod stats;
pub mod version;
pub mod wal;
mod worker;

pub use engine::{CompactionFilter, FilterLookup, LsmEngine, LsmOptions};
pub use prefix::PrefixExtractor;
pub use stats::LsmStats;
#[cfg(test)]
mod tests;
