//! Reads an SSTable: point lookups through the bloom filter and index, ordered iteration.
//! Every block is checked against its CRC before use; a mismatch reports file and offset.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use super::block::{get_varint, Block, BlockIter, BlockRevIter, MalformedBlock};
use super::{
    BlockHandle, Properties, TableError, BLOCK_TRAILER_BYTES, FOOTER_BYTES, FORMAT_VERSION, MAGIC,
};
use crate::storage::lsm::bloom;
use crate::storage::lsm::cache::BlockCache;
use crate::storage::lsm::key::{seek_key, user_key, InternalKey, Kind};
use crate::storage::lsm::memtable::{Found, Lookup};

pub struct Table {
    id: u64,
    cache: Arc<BlockCache>,
    path: PathBuf,
    file: File,
    size: u64,
    index: Block,
    filter: Vec<u8>,
    props: Properties,
}

impl Table {
    /// Opens table `id` at `path`; its data blocks go through `cache`.
    pub fn open(path: &Path, id: u64, cache: Arc<BlockCache>) -> Result<Table, TableError> {
        let io = |source| TableError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let size = file.metadata().map_err(io)?.len();
        let corrupt = |offset, what| TableError::Corrupt {
            path: path.to_path_buf(),
            offset,
            what,
        };
        if size < FOOTER_BYTES as u64 {
            return Err(corrupt(0, "footer (file too short)"));
        }
        let mut footer = [0u8; FOOTER_BYTES];
        let footer_at = size - FOOTER_BYTES as u64;
        file.read_exact_at(&mut footer, footer_at).map_err(io)?;
        let u64_at = |i: usize| u64::from_le_bytes(footer[i..i + 8].try_into().unwrap_or_default());
        let version = u32::from_le_bytes(footer[48..52].try_into().unwrap_or_default());
        if u64_at(52) != MAGIC || version != FORMAT_VERSION {
            return Err(corrupt(footer_at, "footer magic or version"));
        }
        let handle = |i| BlockHandle {
            offset: u64_at(i),
            size: u64_at(i + 8),
        };
        let (index_h, filter_h, props_h) = (handle(0), handle(16), handle(32));
        let mut table = Table {
            id,
            cache,
            path: path.to_path_buf(),
            file,
            size,
            index: empty_block(),
            filter: Vec::new(),
            props: Properties::default(),
        };
        let index = table.read_block(index_h)?;
        table.index = Block::parse(index).map_err(|_| corrupt(index_h.offset, "index block"))?;
        table.filter = table.read_block(filter_h)?.to_vec();
        let props = table.read_block(props_h)?;
        table.props =
            Properties::decode(props).ok_or(corrupt(props_h.offset, "properties block"))?;
        Ok(table)
    }

    pub fn properties(&self) -> &Properties {
        &self.props
    }

    pub fn file_size(&self) -> u64 {
        self.size
    }

    /// Reads, checks and decompresses one block.
    fn read_block(&self, h: BlockHandle) -> Result<Bytes, TableError> {
        let corrupt = |what| TableError::Corrupt {
            path: self.path.clone(),
            offset: h.offset,
            what,
        };
        let end = h
            .size
            .checked_add(BLOCK_TRAILER_BYTES as u64)
            .and_then(|len| h.offset.checked_add(len))
            .ok_or(corrupt("block handle"))?;
        if end > self.size {
            return Err(corrupt("block handle"));
        }
        let mut buf = vec![0u8; (h.size as usize) + BLOCK_TRAILER_BYTES];
        // Handler reads run on async workers: a block the page cache lacks is read off them.
        crate::blocking_io::read_exact_at(&self.file, &mut buf, h.offset).map_err(|source| {
            TableError::Io {
                path: self.path.clone(),
                source,
            }
        })?;
        let crc_at = buf.len() - 4;
        let stored = u32::from_le_bytes(buf[crc_at..].try_into().unwrap_or_default());
        if crc32c::crc32c(&buf[..crc_at]) != stored {
            return Err(TableError::Checksum {
                path: self.path.clone(),
                offset: h.offset,
            });
        }
        let tag = buf[crc_at - 1];
        let payload = &buf[..crc_at - 1];
        let raw = match tag {
            0 => payload.to_vec(),
            1 => lz4_flex::block::decompress_size_prepended(payload)
                .map_err(|_| corrupt("lz4 block"))?,
            2 => {
                let (len, frame) = payload.split_at_checked(4).ok_or(corrupt("zstd block"))?;
                let len = u32::from_le_bytes(len.try_into().unwrap_or_default()) as usize;
                zstd_decompress(frame, len).map_err(|_| corrupt("zstd block"))?
            }
            _ => return Err(corrupt("compression type")),
        };
        Ok(Bytes::from(raw))
    }

    /// A data block, from the block cache or the file; read from the file, it is cached
    /// when `fill` (compaction's reads are not: its inputs are about to be deleted).
    fn data_block(
        &self,
        handle_value: &[u8],
        offset_hint: u64,
        fill: bool,
    ) -> Result<Block, TableError> {
        let corrupt = |what| TableError::Corrupt {
            path: self.path.clone(),
            offset: offset_hint,
            what,
        };
        let mut pos = 0;
        let offset = get_varint(handle_value, &mut pos).ok_or(corrupt("index entry"))?;
        let size = get_varint(handle_value, &mut pos).ok_or(corrupt("index entry"))?;
        if let Some(block) = self.cache.get(self.id, offset) {
            return Ok(block);
        }
        let raw = self.read_block(BlockHandle { offset, size })?;
        let bytes = raw.len();
        let block = Block::parse(raw).map_err(|_| corrupt("data block"))?;
        if fill {
            self.cache.insert(self.id, offset, block.clone(), bytes);
        }
        Ok(block)
    }

    /// Whether the bloom filter allows `user_key` (false: certainly absent).
    pub fn may_contain(&self, user_key: &[u8]) -> bool {
        bloom::may_contain(&self.filter, bloom::hash64(user_key))
    }

    /// Whether keys of the group whose prefix has this hash (under the grouping named
    /// `extractor`) may be here; always true for a table whose filter holds no prefixes of
    /// that grouping.
    pub fn may_contain_group(&self, extractor: u32, prefix_hash: u64) -> bool {
        if extractor == 0 || self.props.prefix_extractor != extractor {
            return true;
        }
        self.cache.prefix_checks.fetch_add(1, Ordering::Relaxed);
        let present = bloom::may_contain(&self.filter, prefix_hash);
        if !present {
            self.cache.prefix_negatives.fetch_add(1, Ordering::Relaxed);
        }
        present
    }

    /// The newest version of `key` at `snapshot` in this table.
    pub fn get(&self, key: &[u8], snapshot: u64) -> Result<Option<Found>, TableError> {
        self.get_hashed(key, bloom::hash64(key), snapshot)
    }

    /// [`Table::get`] with the key's `bloom::hash64` already computed.
    pub fn get_hashed(
        &self,
        key: &[u8],
        hash: u64,
        snapshot: u64,
    ) -> Result<Option<Found>, TableError> {
        self.cache.bloom_checks.fetch_add(1, Ordering::Relaxed);
        if !bloom::may_contain(&self.filter, hash) {
            self.cache.bloom_negatives.fetch_add(1, Ordering::Relaxed);
            return Ok(None);
        }
        // A row cached for this table is its newest version of the key: valid for readers
        // that see everything in the table.
        let cacheable = snapshot >= self.props.max_seqno;
        if cacheable {
            if let Some(found) = self.cache.get_row(self.id, key, hash) {
                return Ok(Some(found));
            }
        }
        let found = self.get_uncached(key, snapshot)?;
        if let (true, Some(found)) = (cacheable, &found) {
            self.cache.insert_row(self.id, key, hash, found);
        }
        Ok(found)
    }

    fn get_uncached(&self, key: &[u8], snapshot: u64) -> Result<Option<Found>, TableError> {
        let corrupt = |what| TableError::Corrupt {
            path: self.path.clone(),
            offset: 0,
            what,
        };
        let target = seek_key(key, snapshot);
        let mut index = self.index.iter();
        index.seek(&target).map_err(|_| corrupt("index block"))?;
        let Some(entry) = index.next() else {
            return Ok(None);
        };
        let (_, handle) = entry.map_err(|_| corrupt("index block"))?;
        let mut block = self.data_block(&handle, 0, true)?.iter();
        block.seek(&target).map_err(|_| corrupt("data block"))?;
        match block
            .next()
            .transpose()
            .map_err(|_| corrupt("data block"))?
        {
            Some((k, v)) if user_key(&k) == key => {
                let decoded =
                    InternalKey::decode(&Bytes::from(k)).ok_or(corrupt("internal key"))?;
                let lookup = match decoded.kind {
                    Kind::Put => Lookup::Value(v),
                    Kind::Delete => Lookup::Deleted,
                };
                Ok(Some((lookup, decoded.seqno)))
            }
            _ => Ok(None),
        }
    }

    /// An iterator over every entry, positioned at the start.
    pub fn iter(self: &Arc<Self>) -> TableIter {
        TableCursor {
            index: self.index.iter(),
            table: self.clone(),
            block: None,
            open: Block::iter,
            fill_cache: true,
        }
    }

    /// As `iter`, for compaction: blocks it reads from the file do not enter the block
    /// cache (its inputs are deleted once it ends; caching them only pushes out the blocks
    /// readers use).
    pub fn iter_uncached(self: &Arc<Self>) -> TableIter {
        TableCursor {
            fill_cache: false,
            ..self.iter()
        }
    }
}

impl Table {
    /// An iterator over every entry from the last one backwards.
    pub fn rev_iter(self: &Arc<Self>) -> TableRevIter {
        TableCursor {
            index: self.index.rev_iter(),
            table: self.clone(),
            block: None,
            open: Block::rev_iter,
            fill_cache: true,
        }
    }
}

thread_local! {
    /// A zstd decompression context per thread: creating one per block cost as much as
    /// the decompression itself.
    static ZSTD: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// Decompresses a zstd frame of `len` bytes with this thread's context.
fn zstd_decompress(frame: &[u8], len: usize) -> std::io::Result<Vec<u8>> {
    ZSTD.with(|cell| {
        let mut slot = cell.borrow_mut();
        let ctx = match slot.as_mut() {
            Some(ctx) => ctx,
            None => slot.insert(zstd::bulk::Decompressor::new()?),
        };
        ctx.decompress(frame, len)
    })
}

fn empty_block() -> Block {
    Block::parse(Bytes::from_static(&[0, 0, 0, 0])).expect("an empty block parses")
}

/// Walks a table's entries one data block at a time, in the direction of its block
/// iterator `B` (forwards: [`TableIter`], backwards: [`TableRevIter`]), reading blocks as it
/// goes.
pub struct TableCursor<B> {
    table: Arc<Table>,
    /// Over the index block, in the same direction.
    index: B,
    block: Option<B>,
    open: fn(&Block) -> B,
    /// Whether blocks read from the file go into the block cache.
    fill_cache: bool,
}

pub type TableIter = TableCursor<BlockIter>;
pub type TableRevIter = TableCursor<BlockRevIter>;

impl<B> TableCursor<B> {
    /// The table walked.
    pub fn table(&self) -> &Arc<Table> {
        &self.table
    }
}

impl TableCursor<BlockIter> {
    /// Positions the iterator at the first entry at or after internal key `target`.
    pub fn seek(&mut self, target: &[u8]) -> Result<(), TableError> {
        let corrupt = |what| TableError::Corrupt {
            path: self.table.path.clone(),
            offset: 0,
            what,
        };
        self.index
            .seek(target)
            .map_err(|_| corrupt("index block"))?;
        self.block = None;
        if let Some(entry) = self.index.next() {
            let (_, handle) = entry.map_err(|_| corrupt("index block"))?;
            let mut block = self.table.data_block(&handle, 0, self.fill_cache)?.iter();
            block.seek(target).map_err(|_| corrupt("data block"))?;
            self.block = Some(block);
        }
        Ok(())
    }
}

impl TableCursor<BlockRevIter> {
    /// Positions the iterator at the last entry at or before internal key `target`.
    pub fn seek_for_prev(&mut self, target: &[u8]) -> Result<(), TableError> {
        let corrupt = |what| TableError::Corrupt {
            path: self.table.path.clone(),
            offset: 0,
            what,
        };
        self.block = None;
        // Index keys are each block's last key: the first one at or after `target` names the
        // block that may hold it; every block before it is wholly before `target`.
        let mut forward = self.table.index.iter();
        forward.seek(target).map_err(|_| corrupt("index block"))?;
        let Some(entry) = forward.next() else {
            self.index = self.table.index.rev_iter();
            return Ok(());
        };
        let (last_key, handle) = entry.map_err(|_| corrupt("index block"))?;
        self.index = self.table.index.rev_iter();
        self.index
            .seek_for_prev(&last_key)
            .map_err(|_| corrupt("index block"))?;
        self.index.next(); // the block itself, loaded here
        let mut block = self
            .table
            .data_block(&handle, 0, self.fill_cache)?
            .rev_iter();
        block
            .seek_for_prev(target)
            .map_err(|_| corrupt("data block"))?;
        self.block = Some(block);
        Ok(())
    }
}

impl<B> Iterator for TableCursor<B>
where
    B: Iterator<Item = Result<(Vec<u8>, Bytes), MalformedBlock>>,
{
    type Item = Result<(Vec<u8>, Bytes), TableError>;

    fn next(&mut self) -> Option<Self::Item> {
        let corrupt = |what| TableError::Corrupt {
            path: self.table.path.clone(),
            offset: 0,
            what,
        };
        loop {
            if let Some(block) = &mut self.block {
                match block.next() {
                    Some(Ok(entry)) => return Some(Ok(entry)),
                    Some(Err(_)) => return Some(Err(corrupt("data block"))),
                    None => self.block = None,
                }
            }
            let (_, handle) = match self.index.next()? {
                Ok(entry) => entry,
                Err(_) => return Some(Err(corrupt("index block"))),
            };
            match self.table.data_block(&handle, 0, self.fill_cache) {
                Ok(block) => self.block = Some((self.open)(&block)),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}
