//! The memtable's ordered map: a skiplist of internal keys whose nodes, keys inline, live in
//! an arena. One writer (the engine's write path, under its writer lock) inserts and
//! unlinks; any number of readers search and walk concurrently, without locks, reference
//! counts or epochs.
//!
//! ## Layout
//! A node is `value: Bytes | trailer: u64 | key_len: u32 | height: u32` followed by `height`
//! next-pointers and the user key's bytes, 8-byte aligned, in 1 MiB arena chunks (a node
//! too large for one gets a chunk of its own). `trailer = seqno << 8 | kind`, as in
//! `key.rs`: nodes order by user key ascending, then trailer descending (newest first).
//!
//! ## Why it is safe
//! - Memory: chunks are freed only when the list is dropped, and every reader borrows the
//!   list, so a node a reader holds is never freed under it, unlinked or not. Node contents
//!   are written before the node is published by a release store of a predecessor's
//!   next-pointer; readers load pointers with acquire.
//! - Order: an unlinked node keeps its next-pointers, so a reader standing on it walks on to
//!   nodes that were after it; it may miss a node inserted after the unlink, but such a node
//!   has a sequence number above every reader that could stand there (readers fix their
//!   sequence number before they start walking), and it may meet other unlinked nodes, which
//!   only ever hold versions no reader that can meet them needs (see `gc.rs`).
//! - Unlinking frees nothing: the memtable's byte budget counts what was ever inserted.

use std::alloc::Layout;
use std::cmp::Ordering as CmpOrdering;
use std::mem::{align_of, size_of};
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;

use super::key::Kind;

/// Levels at most; with a branching factor of 4 that indexes 4^12 (16 million) nodes well.
pub const MAX_HEIGHT: usize = 12;
const BRANCHING: u64 = 4;
/// The level whose predecessor starts a backward run (`Entry::run_before`): about
/// `BRANCHING^RUN_LEVEL` entries per search.
const RUN_LEVEL: usize = 2;
const CHUNK_BYTES: usize = 1 << 20;

#[repr(C)]
struct Node {
    value: Bytes,
    trailer: u64,
    key_len: u32,
    height: u32,
    // Followed by `[AtomicPtr<Node>; height]` and `key_len` key bytes.
}

const HEADER_BYTES: usize = size_of::<Node>();
const NODE_ALIGN: usize = align_of::<Node>();

impl Node {
    fn bytes_for(height: usize, key_len: usize) -> usize {
        (HEADER_BYTES + height * size_of::<AtomicPtr<Node>>() + key_len)
            .next_multiple_of(NODE_ALIGN)
    }

    /// The next-pointer of `level` (below the node's height).
    fn next(&self, level: usize) -> &AtomicPtr<Node> {
        debug_assert!(level < self.height as usize);
        // SAFETY: the tower follows the header inside the node's allocation, `height`
        // pointers long, and is aligned (the header size is a multiple of 8).
        unsafe {
            let tower =
                (self as *const Node as *const u8).add(HEADER_BYTES) as *const AtomicPtr<Node>;
            &*tower.add(level)
        }
    }

    fn user_key(&self) -> &[u8] {
        // SAFETY: the key bytes follow the tower inside the node's allocation.
        unsafe {
            let at = (self as *const Node as *const u8)
                .add(HEADER_BYTES + self.height as usize * size_of::<AtomicPtr<Node>>());
            std::slice::from_raw_parts(at, self.key_len as usize)
        }
    }

    /// How this node orders against `(user_key, trailer)`.
    fn cmp_key(&self, user_key: &[u8], trailer: u64) -> CmpOrdering {
        self.user_key()
            .cmp(user_key)
            .then_with(|| trailer.cmp(&self.trailer))
    }
}

/// One chunk of the arena: 8-byte words, so every offset that is a multiple of 8 is
/// aligned. A chunk may come from the pool with old contents: a node writes every byte it
/// reads (header, next-pointers, key).
struct Chunk {
    words: Box<[u64]>,
    used_bytes: usize,
}

/// Chunks of dropped lists, kept for the next ones: a memtable's arena then reuses memory
/// the process already has instead of faulting in (and the kernel zeroing) fresh pages,
/// which showed as ~5% of a write-heavy profile. At most `POOL_CHUNKS` (one default
/// memtable's worth) are kept, process-wide.
static CHUNK_POOL: Mutex<Vec<Box<[u64]>>> = Mutex::new(Vec::new());
const POOL_CHUNKS: usize = 64;
const CHUNK_WORDS: usize = CHUNK_BYTES / 8;

fn take_chunk(words: usize) -> Box<[u64]> {
    if words == CHUNK_WORDS {
        if let Some(chunk) = CHUNK_POOL.lock().pop() {
            return chunk;
        }
    }
    vec![0u64; words].into_boxed_slice()
}

fn give_back(chunks: Vec<Chunk>) {
    let mut pool = CHUNK_POOL.lock();
    for chunk in chunks {
        if pool.len() >= POOL_CHUNKS {
            break;
        }
        if chunk.words.len() == CHUNK_WORDS {
            pool.push(chunk.words);
        }
    }
}

/// Bump allocation of nodes; chunks never move or shrink until the arena is dropped.
#[derive(Default)]
struct Arena {
    chunks: Vec<Chunk>,
    bytes: usize,
}

impl Arena {
    /// Room for `bytes` (a multiple of 8), uninitialised.
    fn alloc(&mut self, bytes: usize) -> NonNull<u8> {
        debug_assert!(bytes.is_multiple_of(NODE_ALIGN));
        let fits = self
            .chunks
            .last()
            .is_some_and(|c| c.words.len() * 8 - c.used_bytes >= bytes);
        if !fits {
            let words = bytes.max(CHUNK_BYTES) / 8;
            self.chunks.push(Chunk {
                words: take_chunk(words),
                used_bytes: 0,
            });
            self.bytes += words * 8;
        }
        let chunk = self.chunks.last_mut().expect("a chunk was just ensured");
        // SAFETY: `used_bytes + bytes` fits in the chunk (checked above).
        let at = unsafe { (chunk.words.as_mut_ptr() as *mut u8).add(chunk.used_bytes) };
        chunk.used_bytes += bytes;
        NonNull::new(at).expect("chunk memory is not null")
    }
}

/// A skiplist of internal keys to values (see the module docs).
pub struct SkipList {
    head: NonNull<Node>,
    /// Levels in use (1..=MAX_HEIGHT).
    height: AtomicUsize,
    len: AtomicUsize,
    /// The writer's side: the arena and the height generator. Only the one writer locks it.
    writer: Mutex<(Arena, u64)>,
}

// SAFETY: nodes are immutable once published except for their next-pointers, which are
// atomics; the arena is behind a mutex; values are `Bytes` (Send + Sync).
unsafe impl Send for SkipList {}
unsafe impl Sync for SkipList {}

impl Default for SkipList {
    fn default() -> Self {
        SkipList::new()
    }
}

/// Where a search ended on each level: the last node before the key.
type Preds = [*const Node; MAX_HEIGHT];

impl SkipList {
    pub fn new() -> SkipList {
        let mut arena = Arena::default();
        let head = Self::make_node(&mut arena, MAX_HEIGHT, &[], 0, Bytes::new());
        SkipList {
            head,
            height: AtomicUsize::new(1),
            len: AtomicUsize::new(0),
            writer: Mutex::new((arena, 0x2545_f491_4f6c_dd1d)),
        }
    }

    fn make_node(
        arena: &mut Arena,
        height: usize,
        user_key: &[u8],
        trailer: u64,
        value: Bytes,
    ) -> NonNull<Node> {
        let bytes = Node::bytes_for(height, user_key.len());
        debug_assert!(Layout::from_size_align(bytes, NODE_ALIGN).is_ok());
        let at = arena.alloc(bytes).cast::<Node>();
        // SAFETY: `at` points to `bytes` fresh, aligned bytes owned by the arena; the header,
        // the null next-pointers and the key are written before anyone can see the node.
        unsafe {
            ptr::write(
                at.as_ptr(),
                Node {
                    value,
                    trailer,
                    key_len: user_key.len() as u32,
                    height: height as u32,
                },
            );
            let tower = (at.as_ptr() as *mut u8).add(HEADER_BYTES) as *mut AtomicPtr<Node>;
            for level in 0..height {
                ptr::write(tower.add(level), AtomicPtr::new(ptr::null_mut()));
            }
            let key_at =
                (at.as_ptr() as *mut u8).add(HEADER_BYTES + height * size_of::<AtomicPtr<Node>>());
            ptr::copy_nonoverlapping(user_key.as_ptr(), key_at, user_key.len());
        }
        at
    }

    fn head(&self) -> &Node {
        // SAFETY: the head lives in the arena as long as the list.
        unsafe { self.head.as_ref() }
    }

    /// Live entries (inserted and not unlinked).
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Bytes the arena holds (everything ever inserted).
    #[cfg(test)]
    fn arena_bytes(&self) -> usize {
        self.writer.lock().0.bytes
    }

    /// The first node at or after `(user_key, trailer)`, and on each level the node before
    /// it.
    fn seek(&self, user_key: &[u8], trailer: u64, mut preds: Option<&mut Preds>) -> *const Node {
        let mut x: *const Node = self.head.as_ptr();
        let mut level = self.height.load(Ordering::Acquire) - 1;
        loop {
            // SAFETY: `x` is the head or a node reached through published pointers.
            let next = unsafe { (*x).next(level).load(Ordering::Acquire) };
            // SAFETY: a non-null next-pointer points to a published node.
            if !next.is_null() && unsafe { (*next).cmp_key(user_key, trailer) } == CmpOrdering::Less
            {
                x = next;
                continue;
            }
            if let Some(p) = preds.as_deref_mut() {
                p[level] = x;
            }
            if level == 0 {
                return next;
            }
            level -= 1;
        }
    }

    /// The last node before `(user_key, trailer)`, or the head.
    fn last_before(&self, user_key: &[u8], trailer: u64) -> *const Node {
        let mut preds = [ptr::null(); MAX_HEIGHT];
        self.seek(user_key, trailer, Some(&mut preds));
        preds[0]
    }

    /// The last node, or the head when empty.
    fn last(&self) -> *const Node {
        let mut x: *const Node = self.head.as_ptr();
        let mut level = self.height.load(Ordering::Acquire) - 1;
        loop {
            // SAFETY: as in `seek`.
            let next = unsafe { (*x).next(level).load(Ordering::Acquire) };
            if !next.is_null() {
                x = next;
                continue;
            }
            if level == 0 {
                return x;
            }
            level -= 1;
        }
    }

    fn random_height(state: &mut u64) -> usize {
        let mut height = 1;
        while height < MAX_HEIGHT {
            // xorshift64
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            if !state.is_multiple_of(BRANCHING) {
                break;
            }
            height += 1;
        }
        height
    }

    /// Inserts a version; the key `(user_key, seqno, kind)` must not be present. Only the
    /// one writer calls this (and `unlink`).
    pub fn insert(&self, user_key: &[u8], seqno: u64, kind: Kind, value: Bytes) -> Entry<'_> {
        let trailer = seqno << 8 | kind as u64;
        let mut preds = [ptr::null(); MAX_HEIGHT];
        let mut writer = self.writer.lock();
        let (arena, rng) = &mut *writer;
        self.seek(user_key, trailer, Some(&mut preds));
        let height = Self::random_height(rng);
        let current = self.height.load(Ordering::Relaxed);
        for p in preds.iter_mut().take(height).skip(current) {
            *p = self.head.as_ptr();
        }
        let node = Self::make_node(arena, height, user_key, trailer, value);
        // SAFETY: `node` is ours until published; every pred is the head or a published node.
        unsafe {
            let n = node.as_ref();
            for (level, pred) in preds.iter().enumerate().take(height) {
                let after = (**pred).next(level).load(Ordering::Relaxed);
                n.next(level).store(after, Ordering::Relaxed);
            }
            // Bottom up: a reader finds the node on level 0 first.
            for (level, pred) in preds.iter().enumerate().take(height) {
                (**pred).next(level).store(node.as_ptr(), Ordering::Release);
            }
        }
        if height > current {
            self.height.store(height, Ordering::Release);
        }
        self.len.fetch_add(1, Ordering::Relaxed);
        Entry {
            list: self,
            // SAFETY: published, lives as long as the list.
            node: unsafe { &*node.as_ptr() },
        }
    }

    /// Unlinks the node of exactly this key, if present; returns its value's length. Only
    /// the one writer calls this.
    pub fn unlink(&self, user_key: &[u8], seqno: u64, kind: Kind) -> Option<(usize, Kind)> {
        let trailer = seqno << 8 | kind as u64;
        let mut preds = [ptr::null(); MAX_HEIGHT];
        let _writer = self.writer.lock();
        let found = self.seek(user_key, trailer, Some(&mut preds));
        // SAFETY: a non-null result of `seek` is a published node.
        let node = unsafe { found.as_ref() }?;
        if node.cmp_key(user_key, trailer) != CmpOrdering::Equal {
            return None;
        }
        for (level, pred) in preds.iter().enumerate().take(node.height as usize) {
            // SAFETY: preds are the head or published nodes.
            let pred = unsafe { &**pred };
            if ptr::eq(pred.next(level).load(Ordering::Relaxed), node) {
                let after = node.next(level).load(Ordering::Relaxed);
                pred.next(level).store(after, Ordering::Release);
            }
        }
        self.len.fetch_sub(1, Ordering::Relaxed);
        Some((node.value.len(), kind))
    }

    /// The first entry at or after `(user_key, seqno, kind)`.
    pub fn seek_ge(&self, user_key: &[u8], seqno: u64, kind: Kind) -> Option<Entry<'_>> {
        self.entry(self.seek(user_key, seqno << 8 | kind as u64, None))
    }

    /// The last entry at or before `(user_key, seqno, kind)`.
    pub fn seek_le(&self, user_key: &[u8], seqno: u64, kind: Kind) -> Option<Entry<'_>> {
        let trailer = seqno << 8 | kind as u64;
        let at = self.seek(user_key, trailer, None);
        // SAFETY: a non-null result of `seek` is a published node.
        match unsafe { at.as_ref() } {
            Some(n) if n.cmp_key(user_key, trailer) == CmpOrdering::Equal => self.entry(at),
            _ => self.entry(self.last_before(user_key, trailer)),
        }
    }

    pub fn first(&self) -> Option<Entry<'_>> {
        self.entry(self.head().next(0).load(Ordering::Acquire))
    }

    pub fn last_entry(&self) -> Option<Entry<'_>> {
        self.entry(self.last())
    }

    /// The entry of a node pointer; none for null or the head.
    fn entry(&self, node: *const Node) -> Option<Entry<'_>> {
        if node.is_null() || ptr::eq(node, self.head.as_ptr()) {
            return None;
        }
        // SAFETY: a published node, alive as long as the list.
        Some(Entry {
            list: self,
            node: unsafe { &*node },
        })
    }
}

impl Drop for SkipList {
    fn drop(&mut self) {
        // Every node ever made, linked or not, lies in the chunks back to back: drop each
        // one's value. The arena's memory goes with the chunks.
        let (arena, _) = &mut *self.writer.lock();
        for chunk in &arena.chunks {
            let base = chunk.words.as_ptr() as *const u8;
            let mut at = 0;
            while at < chunk.used_bytes {
                // SAFETY: nodes were written back to back from the chunk's start, each
                // `bytes_for(height, key_len)` long; each value is dropped exactly once.
                unsafe {
                    let node = base.add(at) as *mut Node;
                    at += Node::bytes_for((*node).height as usize, (*node).key_len as usize);
                    ptr::drop_in_place(ptr::addr_of_mut!((*node).value));
                }
            }
        }
        give_back(std::mem::take(&mut arena.chunks));
    }
}

/// A node of the list, borrowed from it.
#[derive(Clone, Copy)]
pub struct Entry<'a> {
    list: &'a SkipList,
    node: &'a Node,
}

impl<'a> Entry<'a> {
    pub fn user_key(&self) -> &'a [u8] {
        self.node.user_key()
    }

    pub fn seqno(&self) -> u64 {
        self.node.trailer >> 8
    }

    pub fn kind(&self) -> Kind {
        if self.node.trailer & 0xff == Kind::Put as u64 {
            Kind::Put
        } else {
            Kind::Delete
        }
    }

    pub fn value(&self) -> &'a Bytes {
        &self.node.value
    }

    /// The encoded internal key (`user_key | trailer`).
    pub fn encoded_key(&self) -> Vec<u8> {
        let key = self.user_key();
        let mut out = Vec::with_capacity(key.len() + 8);
        out.extend_from_slice(key);
        out.extend_from_slice(&self.node.trailer.to_be_bytes());
        out
    }

    pub fn next(&self) -> Option<Entry<'a>> {
        self.list.entry(self.node.next(0).load(Ordering::Acquire))
    }

    /// The entry before this one (a search: the list links forwards only).
    pub fn prev(&self) -> Option<Entry<'a>> {
        self.list
            .entry(self.list.last_before(self.user_key(), self.node.trailer))
    }

    /// Appends to `out`, in ascending order, a run of the entries just before this one:
    /// one search finds a node about `BRANCHING^RUN_LEVEL` entries back (its predecessor on
    /// a higher level) and a forward walk collects the rest, so a backward walk costs one
    /// search per run instead of one per entry. Appends nothing at the list's start.
    pub fn run_before(&self, out: &mut Vec<Entry<'a>>) {
        let list = self.list;
        let (user_key, trailer) = (self.user_key(), self.node.trailer);
        let mut preds = [ptr::null(); MAX_HEIGHT];
        list.seek(user_key, trailer, Some(&mut preds));
        let level = RUN_LEVEL.min(list.height.load(Ordering::Acquire) - 1);
        // A level the search did not visit (the list grew taller meanwhile) has no
        // predecessor recorded: start from the head then.
        let mut x = if preds[level].is_null() {
            list.head.as_ptr() as *const Node
        } else {
            preds[level]
        };
        if let Some(first) = list.entry(x) {
            out.push(first);
        }
        loop {
            // SAFETY: `x` is the head or a node reached through published pointers (an
            // unlinked node keeps pointing forward into the list).
            let next = unsafe { (*x).next(0).load(Ordering::Acquire) };
            // SAFETY: a non-null next-pointer points to a published node.
            match unsafe { next.as_ref() } {
                Some(n) if n.cmp_key(user_key, trailer) == CmpOrdering::Less => {
                    out.push(Entry { list, node: n });
                    x = next;
                }
                _ => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(list: &SkipList) -> Vec<(Vec<u8>, u64)> {
        let mut out = Vec::new();
        let mut e = list.first();
        while let Some(entry) = e {
            out.push((entry.user_key().to_vec(), entry.seqno()));
            e = entry.next();
        }
        out
    }

    #[test]
    fn ordered_newest_first_with_seeks_both_ways() {
        let list = SkipList::new();
        for (i, k) in ["b", "a", "c", "b", "a"].iter().enumerate() {
            list.insert(
                k.as_bytes(),
                i as u64 + 1,
                Kind::Put,
                Bytes::from(format!("v{i}")),
            );
        }
        assert_eq!(
            keys(&list),
            vec![
                (b"a".to_vec(), 5),
                (b"a".to_vec(), 2),
                (b"b".to_vec(), 4),
                (b"b".to_vec(), 1),
                (b"c".to_vec(), 3)
            ]
        );
        let e = list.seek_ge(b"b", u64::MAX >> 8, Kind::Put).unwrap();
        assert_eq!((e.user_key(), e.seqno()), (&b"b"[..], 4));
        let e = list.seek_ge(b"b", 3, Kind::Put).unwrap();
        assert_eq!(e.seqno(), 1);
        assert_eq!(e.value(), &Bytes::from("v0"));
        assert!(list.seek_ge(b"d", 9, Kind::Put).is_none());
        let e = list.seek_le(b"b", 0, Kind::Delete).unwrap();
        assert_eq!((e.user_key(), e.seqno()), (&b"b"[..], 1));
        let e = list.seek_le(b"b", 9, Kind::Put).unwrap();
        assert_eq!((e.user_key(), e.seqno()), (&b"a"[..], 2));
        assert_eq!(e.prev().map(|p| p.seqno()), Some(5));
        assert!(list.seek_le(b"a", 9, Kind::Put).is_none());
        assert_eq!(
            list.last_entry().map(|e| e.user_key().to_vec()),
            Some(b"c".to_vec())
        );
        assert_eq!(list.len(), 5);
    }

    /// Walking backwards by runs (`run_before`) visits every entry once, in reverse order,
    /// also with nodes unlinked along the way.
    #[test]
    fn backward_runs_visit_every_entry_in_reverse() {
        let list = SkipList::new();
        for i in 0..2_000u64 {
            let key = format!("k{:05}", (i * 7919) % 1_000);
            list.insert(key.as_bytes(), i + 1, Kind::Put, Bytes::new());
        }
        for i in (0..1_000u64).step_by(3) {
            let key = format!("k{:05}", (i * 7919) % 1_000);
            list.unlink(key.as_bytes(), i + 1, Kind::Put);
        }
        let forward = keys(&list);
        let mut backward = Vec::new();
        let mut at = list.last_entry();
        let mut run = Vec::new();
        while let Some(entry) = at {
            backward.push((entry.user_key().to_vec(), entry.seqno()));
            if run.is_empty() {
                entry.run_before(&mut run);
            }
            at = run.pop();
        }
        backward.reverse();
        assert_eq!(backward, forward);
        assert_eq!(forward.len(), 2_000 - 334);
    }

    #[test]
    fn unlinked_nodes_are_skipped_and_their_values_dropped_with_the_list() {
        let value = Bytes::from(vec![7u8; 100]);
        let list = SkipList::new();
        for i in 0..1000u64 {
            list.insert(
                format!("k{:04}", i % 100).as_bytes(),
                i + 1,
                Kind::Put,
                value.clone(),
            );
        }
        for i in 0..900u64 {
            let removed = list.unlink(format!("k{:04}", i % 100).as_bytes(), i + 1, Kind::Put);
            assert_eq!(removed, Some((100, Kind::Put)));
        }
        assert_eq!(list.unlink(b"k0000", 1, Kind::Put), None);
        assert_eq!(list.len(), 100);
        let left = keys(&list);
        assert_eq!(left.len(), 100);
        assert!(left.iter().all(|(_, seqno)| *seqno > 900));
        drop(list);
        assert!(value.is_unique(), "every node's value was dropped");
    }

    #[test]
    fn large_keys_get_chunks_of_their_own() {
        let list = SkipList::new();
        let big = vec![b'x'; 3 << 20];
        list.insert(&big, 1, Kind::Put, Bytes::new());
        list.insert(b"small", 2, Kind::Put, Bytes::new());
        assert_eq!(list.first().unwrap().user_key(), b"small");
        assert_eq!(list.last_entry().unwrap().user_key().len(), 3 << 20);
        assert!(list.arena_bytes() >= (3 << 20) + CHUNK_BYTES);
    }

    #[test]
    fn a_list_on_reused_chunks_holds_only_its_own_nodes() {
        // A few chunks of nodes with long keys, then dropped: their chunks go to the pool.
        let pad = "x".repeat(1000);
        let old = SkipList::new();
        for i in 0..3000u32 {
            let key = format!("old{i:05}{pad}");
            old.insert(key.as_bytes(), u64::from(i) + 1, Kind::Put, Bytes::new());
        }
        assert!(old.arena_bytes() > 2 * CHUNK_BYTES);
        drop(old);
        let new = SkipList::new();
        for i in (0..2000u32).rev() {
            let key = format!("new{i:05}");
            new.insert(key.as_bytes(), 1, Kind::Put, Bytes::from_static(b"v"));
        }
        let got = keys(&new);
        assert_eq!(got.len(), 2000);
        assert!(got.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(got.iter().all(|(k, _)| k.starts_with(b"new")));
        let first = new.seek_ge(b"a", u64::MAX >> 8, Kind::Put).unwrap();
        assert_eq!(first.user_key(), b"new00000");
        assert!(new
            .seek_ge(b"new01999\0", u64::MAX >> 8, Kind::Put)
            .is_none());
    }
}
