//! SSTables: immutable sorted files of internal keys.
//!
//! ## Format
//! ```text
//! data block 0 | … | data block n | filter block | properties block | index block | footer
//! ```
//! Every block is stored as `payload | compression:u8 | crc32c:u32 LE`, the CRC covering the
//! payload and the compression byte. Compression: 0 none, 1 LZ4 (`lz4_flex`, size-prefixed),
//! 2 zstd (`raw_len:u32 LE | zstd frame`). Data blocks hold internal keys and values (see
//! `block.rs`), ~4 KiB before compression. The index block maps each data block's last key to
//! its handle (`offset:varint | size:varint`). The filter block is a bloom filter over user
//! keys (`bloom.rs`). The properties block is described in `properties.rs`.
//! The footer is 60 bytes: `index | filter | properties` handles as `offset:u64 LE |
//! size:u64 LE`, `format_version:u32 LE`, `magic:u64 LE`.

pub mod block;
mod builder;
mod properties;
mod reader;

pub use builder::{Compression, TableBuilder};
pub use properties::Properties;
pub use reader::{Table, TableIter, TableRevIter};

use std::path::PathBuf;

pub const MAGIC: u64 = 0x6261_7361_6c74_5353; // "basaltSS"
pub const FORMAT_VERSION: u32 = 1;
pub const FOOTER_BYTES: usize = 60;
/// Target size of a data block before compression.
pub const BLOCK_BYTES: usize = 4096;
pub const BLOCK_TRAILER_BYTES: usize = 5;

/// Where a block lives in its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BlockHandle {
    pub offset: u64,
    pub size: u64,
}

/// An SSTable that cannot be read as written: never returns wrong data.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("checksum mismatch in {path} at offset {offset}")]
    Checksum { path: PathBuf, offset: u64 },
    #[error("corrupt {what} in {path} at offset {offset}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        what: &'static str,
    },
}
#[cfg(test)]
mod tests;
