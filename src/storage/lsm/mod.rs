//! Basalt's LSM storage engine (issue 3, in progress).
//!
//! Built so far, each with its own tests: checksummed log records (`record`), internal keys
//! (`key`), the memtable (`memtable`), the bloom filter (`bloom`) and SSTables (`sstable`).
//! Still to come before it can replace the in-memory engine: the WAL, the manifest and
//! versions, flush, leveled compaction, the block cache and the `Engine` implementation.

pub mod bloom;
pub mod key;
pub mod memtable;
pub mod record;
pub mod sstable;
