//! Writes an SSTable from internal keys given in order.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use super::block::{put_varint, BlockBuilder};
use super::{
    BlockHandle, Properties, TableError, BLOCK_BYTES, FOOTER_BYTES, FORMAT_VERSION, MAGIC,
};
use crate::storage::lsm::bloom;
use crate::storage::lsm::key::{parse, user_key, Kind};
use crate::storage::lsm::prefix::PrefixExtractor;

/// How data blocks are compressed (LZ4 on upper levels, zstd on the bottom level).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Lz4,
    Zstd,
}

impl Compression {
    /// By setting name: `none`, `lz4` or `zstd`.
    pub fn from_name(name: &str) -> Option<Compression> {
        match name {
            "none" => Some(Compression::None),
            "lz4" => Some(Compression::Lz4),
            "zstd" => Some(Compression::Zstd),
            _ => None,
        }
    }

    fn tag(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Lz4 => 1,
            Compression::Zstd => 2,
        }
    }
}

pub struct TableBuilder {
    path: PathBuf,
    out: BufWriter<File>,
    offset: u64,
    compression: Compression,
    data: BlockBuilder,
    index: BlockBuilder,
    key_hashes: Vec<u64>,
    last_user_key: Vec<u8>,
    /// Group prefixes go into the bloom filter too (`prefix.rs`).
    prefixes: Option<Arc<dyn PrefixExtractor>>,
    last_prefix: Vec<u8>,
    props: Properties,
    /// A block's compressed payload, kept between blocks.
    scratch: Vec<u8>,
    /// A zstd frame, kept between blocks.
    frame: Vec<u8>,
}

thread_local! {
    /// A zstd compression context per thread (flush and compaction threads): a context
    /// holds megabytes of tables, and making one per table cost more than the compression.
    static ZSTD: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// Compresses `raw` into `frame` (replacing it) with this thread's zstd context.
fn zstd_compress(raw: &[u8], frame: &mut Vec<u8>) -> std::io::Result<()> {
    frame.clear();
    frame.reserve(zstd::zstd_safe::compress_bound(raw.len()));
    ZSTD.with(|cell| {
        let mut slot = cell.borrow_mut();
        let ctx = match slot.as_mut() {
            Some(ctx) => ctx,
            None => slot.insert(zstd::bulk::Compressor::new(3)?),
        };
        ctx.compress_to_buffer(raw, frame).map(|_| ())
    })
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> TableError + '_ {
    move |source| TableError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl TableBuilder {
    pub fn create(path: &Path, compression: Compression) -> Result<TableBuilder, TableError> {
        let file = File::create(path).map_err(io_err(path))?;
        Ok(TableBuilder {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(64 * 1024, file),
            offset: 0,
            compression,
            data: BlockBuilder::new(),
            // Index blocks are searched on every seek: a restart at each entry makes that
            // a binary search with no entries decoded in between.
            index: BlockBuilder::with_restart_interval(1),
            key_hashes: Vec::new(),
            last_user_key: Vec::new(),
            prefixes: None,
            last_prefix: Vec::new(),
            props: Properties {
                min_seqno: u64::MAX,
                ..Properties::default()
            },
            scratch: Vec::new(),
            frame: Vec::new(),
        })
    }

    /// Puts the group prefixes `extractor` finds into the bloom filter as well.
    pub fn with_prefixes(mut self, extractor: Option<Arc<dyn PrefixExtractor>>) -> TableBuilder {
        self.props.prefix_extractor = extractor.as_ref().map_or(0, |e| e.id());
        self.prefixes = extractor;
        self
    }

    /// Adds one entry; `key` is an encoded internal key, greater than every key added before.
    pub fn add(&mut self, key: &[u8], value: &[u8]) -> Result<(), TableError> {
        let (_, seqno, kind) = parse(key).ok_or(TableError::Corrupt {
            path: self.path.clone(),
            offset: self.offset,
            what: "internal key",
        })?;
        if self.props.entries == 0 {
            self.props.smallest = Bytes::copy_from_slice(key);
        }
        self.props.largest = Bytes::copy_from_slice(key);
        self.props.entries += 1;
        if kind == Kind::Delete {
            self.props.tombstones += 1;
        }
        self.props.min_seqno = self.props.min_seqno.min(seqno);
        self.props.max_seqno = self.props.max_seqno.max(seqno);
        let user = user_key(key);
        if self.key_hashes.is_empty() || self.last_user_key != user {
            self.key_hashes.push(bloom::hash64(user));
            self.last_user_key.clear();
            self.last_user_key.extend_from_slice(user);
            let prefix = self
                .prefixes
                .as_ref()
                .and_then(|e| e.prefix_len(user))
                .and_then(|len| user.get(..len));
            if let Some(prefix) = prefix {
                if self.last_prefix != prefix {
                    self.key_hashes.push(bloom::hash64(prefix));
                    self.last_prefix.clear();
                    self.last_prefix.extend_from_slice(prefix);
                }
            }
        }
        self.data.add(key, value);
        if self.data.estimated_bytes() >= BLOCK_BYTES {
            self.finish_data_block()?;
        }
        Ok(())
    }

    /// Bytes written so far (for splitting output files at a target size).
    pub fn bytes_written(&self) -> u64 {
        self.offset + self.data.estimated_bytes() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.props.entries == 0
    }

    fn finish_data_block(&mut self) -> Result<(), TableError> {
        if self.data.is_empty() {
            return Ok(());
        }
        let last_key = self.data.last_key().to_vec();
        let raw = self.data.finish();
        let handle = self.write_block(&raw, self.compression)?;
        let mut encoded = Vec::with_capacity(10);
        put_varint(&mut encoded, handle.offset);
        put_varint(&mut encoded, handle.size);
        self.index.add(&last_key, &encoded);
        self.props.data_blocks += 1;
        Ok(())
    }

    fn write_block(
        &mut self,
        raw: &[u8],
        compression: Compression,
    ) -> Result<BlockHandle, TableError> {
        let payload: &[u8] = match compression {
            Compression::None => raw,
            Compression::Lz4 => {
                let out = &mut self.scratch;
                out.clear();
                out.extend_from_slice(&(raw.len() as u32).to_le_bytes());
                out.resize(4 + lz4_flex::block::get_maximum_output_size(raw.len()), 0);
                let n = lz4_flex::block::compress_into(raw, &mut out[4..])
                    .map_err(|e| io_err(&self.path)(std::io::Error::other(e)))?;
                out.truncate(4 + n);
                out
            }
            Compression::Zstd => {
                zstd_compress(raw, &mut self.frame).map_err(io_err(&self.path))?;
                let out = &mut self.scratch;
                out.clear();
                out.extend_from_slice(&(raw.len() as u32).to_le_bytes());
                out.extend_from_slice(&self.frame);
                out
            }
        };
        let tag = compression.tag();
        let crc = crc32c::crc32c_append(crc32c::crc32c(payload), &[tag]);
        let handle = BlockHandle {
            offset: self.offset,
            size: payload.len() as u64,
        };
        let io = io_err(&self.path);
        self.out.write_all(payload).map_err(&io)?;
        self.out.write_all(&[tag]).map_err(&io)?;
        self.out.write_all(&crc.to_le_bytes()).map_err(&io)?;
        self.offset += payload.len() as u64 + super::BLOCK_TRAILER_BYTES as u64;
        Ok(handle)
    }

    /// Writes the filter, properties, index and footer, then syncs the file.
    pub fn finish(mut self) -> Result<(Properties, u64), TableError> {
        self.finish_data_block()?;
        if self.props.entries == 0 {
            self.props.min_seqno = 0;
        }
        let filter = bloom::build(&self.key_hashes, bloom::BITS_PER_KEY);
        let filter_handle = self.write_block(&filter, Compression::None)?;
        let props = self.props.encode();
        let props_handle = self.write_block(&props, Compression::None)?;
        let index = self.index.finish();
        let index_handle = self.write_block(&index, Compression::None)?;
        let mut footer = Vec::with_capacity(FOOTER_BYTES);
        for h in [index_handle, filter_handle, props_handle] {
            footer.extend_from_slice(&h.offset.to_le_bytes());
            footer.extend_from_slice(&h.size.to_le_bytes());
        }
        footer.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        footer.extend_from_slice(&MAGIC.to_le_bytes());
        self.out.write_all(&footer).map_err(io_err(&self.path))?;
        let size = self.offset + FOOTER_BYTES as u64;
        let file = self.out.into_inner().map_err(|e| TableError::Io {
            path: self.path.clone(),
            source: e.into_error(),
        })?;
        file.sync_all().map_err(io_err(&self.path))?;
        Ok((self.props, size))
    }
}
