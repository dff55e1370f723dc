//! Entry points for the fuzzers (`fuzz/`, run with cargo-fuzz) and for the unit test that
//! replays their checked-in corpus: each takes arbitrary bytes, feeds them to the decoders
//! of one kind of untrusted input, and must return without panicking or allocating beyond
//! the decoder's limits (errors are the expected outcome).
//!
//! Untrusted input comes from clients (RESP requests, RESTORE payloads), from peers
//! (cluster-proto frames and messages, Raft RPC payloads, snapshot records, log entries),
//! and from disk after a crash or corruption (WAL, manifest and Raft log records, SSTable
//! blocks).

use bytes::{Bytes, BytesMut};
use cluster_proto::{request, Admitted, Hello, Message, Proof, Request, Response};

use crate::protocol::decode::{DecodeLimits, RequestDecoder};
use crate::raft::{wire, Entry};

/// A fuzz target: arbitrary bytes in, no panic out.
pub type Target = fn(&[u8]);

/// Every target by name (the names of `fuzz/fuzz_targets/*.rs` and `fuzz/corpus/*`).
pub const TARGETS: &[(&str, Target)] = &[
    ("resp_request", resp_request),
    ("cluster_message", cluster_message),
    ("raft_entry", raft_entry),
    ("storage_records", storage_records),
    ("sstable_block", sstable_block),
    ("sstable_file", sstable_file),
    ("dump_payload", dump_payload),
    ("peer_request", peer_request),
];

/// RESP requests, the input split in two where its first byte says (as reads arrive),
/// with a small bulk limit and, when the second byte is odd, as an unauthenticated client.
pub fn resp_request(data: &[u8]) {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let limits = DecodeLimits {
        bulk_len_bytes_max: 1 << 20,
        unauthenticated: rest.first().is_some_and(|b| b & 1 == 1),
    };
    let cut = usize::from(split).min(rest.len());
    let mut decoder = RequestDecoder::new();
    let mut buf = BytesMut::new();
    for part in [&rest[..cut], &rest[cut..]] {
        buf.extend_from_slice(part);
        loop {
            match decoder.decode(&mut buf, &limits) {
                Ok(Some(_)) => continue,
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
}

/// Cluster-port frames, and the bytes as each message a peer may send, with the Raft and
/// snapshot payloads they carry decoded too.
pub fn cluster_message(data: &[u8]) {
    let mut buf = BytesMut::from(data);
    while let Ok(Some(payload)) = cluster_proto::decode_frame_within(&mut buf, 1 << 20) {
        request_message(payload);
    }
    let raw = Bytes::copy_from_slice(data);
    request_message(raw.clone());
    let _ = Response::decode(raw.clone());
    let _ = Hello::decode(raw.clone());
    let _ = Proof::decode(raw.clone());
    let _ = Admitted::decode(raw);
}

fn request_message(raw: Bytes) {
    let Ok(req) = Request::decode(raw) else {
        return;
    };
    match req.body {
        Some(request::Body::Raft(rpc)) => raft_payloads(rpc.payload),
        Some(request::Body::Snapshot(chunk)) => {
            let _ = wire::decode_snapshot_meta(chunk.meta);
            let _ = wire::decode_records(chunk.records);
            let _ = crate::raft::types::decode_vote(chunk.vote);
        }
        Some(request::Body::Propose(p)) => {
            let _ = Entry::decode(p.entry);
        }
        Some(request::Body::MetaChange(change)) => {
            let _ = crate::cluster::MapChange::from_args(&change.args);
        }
        _ => {}
    }
}

/// A Raft RPC payload read as each kind of RPC and response.
fn raft_payloads(raw: Bytes) {
    let _ = wire::decode_append(raw.clone());
    let _ = wire::decode_append_response(raw.clone());
    let _ = wire::decode_vote_request(raw.clone());
    let _ = wire::decode_vote_response(raw.clone());
    let _ = wire::decode_transfer(raw.clone());
    let _ = wire::decode_snapshot_meta(raw.clone());
    let _ = wire::decode_snapshot_response(raw);
}

/// A Raft log entry and the Raft RPC payloads (which carry entries).
pub fn raft_entry(data: &[u8]) {
    let raw = Bytes::copy_from_slice(data);
    let _ = Entry::decode(raw.clone());
    raft_payloads(raw);
}

/// What is read back from disk after a crash: WAL and manifest records and the batches and
/// edits inside them, Raft log segment records and checkpoints.
pub fn storage_records(data: &[u8]) {
    use crate::storage::lsm::{batch, manifest, record};
    let contents = record::parse_records(data);
    for raw in &contents.records {
        let _ = batch::decode(raw);
        let _ = manifest::VersionEdit::decode(raw);
    }
    let _ = batch::decode(data);
    let _ = manifest::VersionEdit::decode(data);
    let mut at = 0;
    while let crate::raft::log::record::Read::Record(_, len) =
        crate::raft::log::record::decode(&data[at..])
    {
        at += len;
    }
    let _ = crate::raft::log::record::decode_checkpoint(data);
}

/// An SSTable data block: parsed, listed, and searched.
pub fn sstable_block(data: &[u8]) {
    use crate::storage::lsm::sstable::block::Block;
    let Ok(block) = Block::parse(Bytes::copy_from_slice(data)) else {
        return;
    };
    let _ = block.entries();
    let mut iter = block.iter();
    let _ = iter.seek(data.get(..8).unwrap_or(data));
}

/// A whole SSTable file: opened, iterated both ways, searched. Most changed bytes would
/// only fail a block's checksum, so the blocks the footer names (index, filter,
/// properties) get their checksums restamped first when the first byte is odd: the
/// footer's handles, the index and the properties are then parsed from whatever the bytes
/// say. (Data blocks are fuzzed on their own by `sstable_block`.)
pub fn sstable_file(data: &[u8]) {
    use crate::storage::lsm::cache::BlockCache;
    use crate::storage::lsm::sstable::{Table, BLOCK_TRAILER_BYTES, FOOTER_BYTES};
    let mut file = data.to_vec();
    if data.first().is_some_and(|b| b & 1 == 1) && file.len() >= FOOTER_BYTES {
        let footer = file.len() - FOOTER_BYTES;
        for at in [0, 16, 32] {
            let field = |i: usize| {
                let bytes: [u8; 8] = file[footer + i..footer + i + 8]
                    .try_into()
                    .unwrap_or_default();
                u64::from_le_bytes(bytes) as usize
            };
            let (offset, size) = (field(at), field(at + 8));
            let crc_at = offset
                .checked_add(size)
                .and_then(|n| n.checked_add(BLOCK_TRAILER_BYTES - 4));
            if let Some(crc_at) =
                crc_at.filter(|c| c.checked_add(4).is_some_and(|end| end <= footer))
            {
                let crc = crc32c::crc32c(&file[offset..crc_at]);
                file[crc_at..crc_at + 4].copy_from_slice(&crc.to_le_bytes());
            }
        }
    }
    thread_local! {
        static PATH: std::path::PathBuf = std::env::temp_dir()
            .join(format!("basalt-fuzz-{}-{:?}.sst", std::process::id(), std::thread::current().id()));
    }
    PATH.with(|path| {
        if std::fs::write(path, &file).is_err() {
            return;
        }
        let cache = std::sync::Arc::new(BlockCache::new(1 << 16, 1 << 16));
        if let Ok(table) = Table::open(path, 1, cache) {
            let table = std::sync::Arc::new(table);
            let _ = table.iter().take(1000).count();
            let _ = table.rev_iter().take(1000).count();
            let _ = table.get(data.get(1..9).unwrap_or_default(), u64::MAX);
            let mut cursor = table.iter();
            let _ = cursor.seek(data.get(..16).unwrap_or_default());
            let _ = cursor.take(10).count();
        }
        let _ = std::fs::remove_file(path);
    });
}

/// A request a peer sends, served by a live node: one node (memory engine, 4 shards, no
/// listeners, no background loops) built once per process, each request given 20 ms
/// (forwarded blocking commands and membership changes towards nodes that do not exist
/// wait). Drives the one-place checks of `node/peer_input.rs` and every handler behind
/// them, Raft RPCs and snapshot chunks included: whatever an authenticated peer sends,
/// the node must answer or refuse without panicking.
pub fn peer_request(data: &[u8]) {
    let Ok(request) = Request::decode(Bytes::copy_from_slice(data)) else {
        return;
    };
    let (runtime, node) = live_node();
    runtime.block_on(async {
        let served = node.serve_peer(request.body);
        let _ = tokio::time::timeout(std::time::Duration::from_millis(20), served).await;
    });
}

fn live_node() -> &'static (tokio::runtime::Runtime, std::sync::Arc<crate::node::Node>) {
    static NODE: std::sync::OnceLock<(tokio::runtime::Runtime, std::sync::Arc<crate::node::Node>)> =
        std::sync::OnceLock::new();
    NODE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let dir = std::env::temp_dir().join(format!("basalt-fuzz-node-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let args: Vec<String> = [
            "--engine",
            "memory",
            "--shards",
            "4",
            "--dir",
            dir.to_str().unwrap_or("."),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let config =
            std::sync::Arc::new(crate::config::Config::from_args(&args).expect("settings"));
        let node = runtime
            .block_on(crate::node::build_node(config, 1))
            .expect("a node");
        (runtime, node)
    })
}

/// A DUMP payload given to RESTORE.
pub fn dump_payload(data: &[u8]) {
    let _ = crate::commands::dump::restore(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every input of the checked-in corpus (`fuzz/corpus/<target>/`) runs through its
    /// target: crashes the fuzzers found stay fixed, and CI replays in seconds what the
    /// fuzzers took millions of runs to find.
    #[test]
    fn the_fuzz_corpus_replays_without_panics() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
        for (name, target) in TARGETS {
            let dir = root.join(name);
            let inputs: Vec<_> = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .flatten()
                .collect();
            assert!(!inputs.is_empty(), "no corpus for {name}");
            for input in inputs {
                let data = std::fs::read(input.path()).unwrap();
                target(&data);
            }
        }
    }
}
