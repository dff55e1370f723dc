//! Installing a snapshot a leader sent, so that a crash at any moment leaves the group at
//! its old state or at the snapshot's, never between.
//!
//! A snapshot arrives as a file (`raft/incoming.rs`), synced before it is installed. The
//! install deletes the group's records in one engine write together with a journal record
//! (`install/<group>`) naming that file, then writes the snapshot's pages (the group's
//! apply state among them), then deletes the journal record. The engine recovers a prefix
//! of its writes, so after a crash either the first write is lost (the old state, whole) or
//! the journal record is there: at start-up [`finish_interrupted`] installs the file again
//! from the beginning (installing is idempotent), before anything reads the group.

use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::apply::{clear_group, count_group, load_map, storage_error};
use super::Node;
use crate::keyspace::encoding::system_key;
use crate::raft::incoming::FileSnapshot;
use crate::raft::state_machine::SnapshotReader;
use crate::raft::GroupId;
use crate::storage::{KeyRange, WriteBatch};

const JOURNAL_PREFIX: &str = "install/";

fn journal_key(group: GroupId) -> Bytes {
    system_key(&format!("{JOURNAL_PREFIX}{group}"))
}

/// Replaces `group`'s records with the snapshot `data` holds.
pub(super) fn install(
    node: &Node,
    group: GroupId,
    data: &mut dyn SnapshotReader,
) -> io::Result<()> {
    let engine = node.shared.keyspace.engine();
    step();
    count_group(node, group, -1)?;
    let mut clear = clear_group(node, group);
    let journal = data.source().map(Path::to_path_buf);
    if let Some(path) = &journal {
        clear.put(
            journal_key(group),
            Bytes::from(path.to_string_lossy().into_owned()),
        );
    }
    engine.write(clear).map_err(storage_error)?;
    step();
    while let Some(page) = data.next_page()? {
        let mut batch = WriteBatch::new();
        for (k, v) in page {
            batch.put(k, v);
        }
        engine.write(batch).map_err(storage_error)?;
        step();
    }
    if journal.is_some() {
        let mut done = WriteBatch::new();
        done.delete(journal_key(group));
        engine.write(done).map_err(storage_error)?;
    }
    engine.flush().map_err(storage_error)?;
    step();
    if group == 0 {
        node.install_map(load_map(&node.shared.keyspace)?);
    } else {
        node.shared
            .keyspace
            .reload_db_map()
            .map_err(storage_error)?;
    }
    count_group(node, group, 1)?;
    if group != 0 {
        let locks = node
            .shared
            .keyspace
            .held_locks(Some(group))
            .map_err(storage_error)?;
        node.cross_shard.locks.load(Some(group), locks);
    }
    node.forget_events(group)?;
    node.invalidate_everything();
    Ok(())
}

/// Installs again every snapshot whose install a crash interrupted (at start-up, before
/// the groups open), then removes what is left in `incoming` (files of transfers or
/// installs cut short before their first write). A journal whose file is gone (removed by
/// hand) leaves the group without records: it is sent a snapshot again once it runs.
pub fn finish_interrupted(node: &Node, incoming: &Path) -> io::Result<()> {
    let engine = node.shared.keyspace.engine();
    let prefix = system_key(JOURNAL_PREFIX);
    let journals = engine
        .scan(&KeyRange::prefix(&prefix), false, usize::MAX)
        .map_err(storage_error)?;
    for (key, path) in journals {
        let Some(group) = std::str::from_utf8(&key[prefix.len()..])
            .ok()
            .and_then(|g| g.parse::<GroupId>().ok())
        else {
            continue;
        };
        let path = PathBuf::from(String::from_utf8_lossy(&path).into_owned());
        match FileSnapshot::open(&path) {
            Ok(mut snapshot) => {
                tracing::warn!(group, file = %path.display(), "finishing an interrupted snapshot install");
                install(node, group, &mut snapshot)?;
            }
            Err(e) => {
                tracing::error!(group, file = %path.display(), error = %e,
                    "an interrupted snapshot install's file is gone: the group starts empty");
                let mut clear = clear_group(node, group);
                clear.delete(key);
                engine.write(clear).map_err(storage_error)?;
            }
        }
    }
    if let Ok(leftovers) = std::fs::read_dir(incoming) {
        for file in leftovers.flatten() {
            tracing::info!(file = %file.path().display(), "removing an unfinished snapshot transfer");
            std::fs::remove_file(file.path())?;
        }
    }
    Ok(())
}

/// A step of an install: the crash test's child process dies at the step it is told.
#[cfg(test)]
fn step() {
    tests::step();
}

#[cfg(not(test))]
fn step() {}

#[cfg(test)]
mod tests {
    use std::process::Command;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;
    use crate::config::Config;
    use crate::keyspace::Keyspace;
    use crate::node::NodeApplier;
    use crate::raft::incoming::Incoming;
    use crate::raft::state_machine::Applier;
    use crate::storage::lsm::{LsmEngine, LsmOptions};
    use crate::storage::SyncPolicy;

    /// The step at which this process aborts (none unless the test's child sets it).
    static ABORT_AT: AtomicUsize = AtomicUsize::new(usize::MAX);
    static STEPS: AtomicUsize = AtomicUsize::new(0);

    pub(super) fn step() {
        if STEPS.fetch_add(1, Ordering::SeqCst) == ABORT_AT.load(Ordering::SeqCst) {
            std::process::abort();
        }
    }

    fn node_at(dir: Option<&Path>) -> Arc<Node> {
        let args: Vec<String> = ["--engine", "memory", "--shards", "4"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let config = Arc::new(Config::from_args(&args).expect("config"));
        let engine: Arc<dyn crate::storage::Engine> = match dir {
            Some(dir) => {
                let options = LsmOptions {
                    sync: SyncPolicy::Always,
                    ..LsmOptions::default()
                };
                Arc::new(LsmEngine::open(dir, options).expect("engine"))
            }
            None => Arc::new(crate::storage::MemoryEngine::new()),
        };
        let keyspace = Keyspace::open(engine, 16).expect("keyspace");
        Arc::new(Node::new(crate::commands::Shared::new(config, keyspace, 0)))
    }

    /// Applies `count` SETs with values tagged `tag` to group 1 of `node`.
    fn fill(node: &Arc<Node>, tag: &str, count: usize) {
        use crate::raft::types::{self, RaftEntry};
        use crate::raft::{Entry, EntryOp, ShardStateMachine};
        let applier = Arc::new(NodeApplier(Arc::downgrade(node)));
        let mut machine = ShardStateMachine::open(1, applier).expect("state machine");
        let shard = crate::cluster::ShardId(0);
        let keys = (0..)
            .map(|i| format!("{tag}{i}"))
            .filter(|k| node.shards.shard_of_key(k.as_bytes()) == shard);
        let entries: Vec<RaftEntry> = keys
            .take(count)
            .enumerate()
            .map(|(i, key)| RaftEntry {
                log_id: types::log_id(1, 1, i as u64),
                payload: openraft::EntryPayload::Normal(Entry::new(
                    0,
                    1,
                    EntryOp::Command(vec!["set".into(), key.into(), tag.to_string().into()]),
                )),
            })
            .collect();
        for run in entries.chunks(32) {
            machine.apply_all(run).expect("apply");
        }
    }

    /// Group 1's records, its apply state included.
    fn group_records(node: &Node) -> Vec<(Bytes, Bytes)> {
        let engine = node.shared.keyspace.engine();
        super::super::apply::group_ranges(&node.shared.keyspace, node, 1)
            .iter()
            .flat_map(|r| engine.scan(r, false, usize::MAX).expect("scan"))
            .collect()
    }

    #[test]
    fn a_crash_at_any_step_of_an_install_leaves_the_old_state_or_the_snapshots() {
        if let Ok(dir) = std::env::var("BASALT_INSTALL_CHILD_DIR") {
            let at: usize = std::env::var("BASALT_INSTALL_ABORT_AT")
                .unwrap()
                .parse()
                .unwrap();
            ABORT_AT.store(at, Ordering::SeqCst);
            let node = node_at(Some(Path::new(&dir)));
            let file = PathBuf::from(std::env::var("BASALT_INSTALL_FILE").unwrap());
            let mut snapshot = FileSnapshot::open(&file).unwrap();
            NodeApplier(Arc::downgrade(&node))
                .install(1, &mut snapshot)
                .unwrap();
            return;
        }
        // The snapshot: another replica's group 1, 2,500 keys (three pages), as a file.
        let source = node_at(None);
        fill(&source, "new", 2500);
        let new = group_records(&source);
        let base = std::env::temp_dir().join(format!("basalt-install-{}", std::process::id()));
        let mut incoming = Incoming::create(&base, 1, Bytes::from_static(b"meta")).unwrap();
        let applier = NodeApplier(Arc::downgrade(&source));
        let mut reader = applier.checkpoint().unwrap().reader(1);
        while let Some(page) = reader.next_page().unwrap() {
            incoming
                .append(&crate::raft::wire::encode_records(&page))
                .unwrap();
        }
        let received = incoming.finish().unwrap();
        let master = base.join("master");
        std::fs::copy(received.source().unwrap(), &master).unwrap();
        drop(received);
        let mut outcomes = (0, 0);
        // Steps: before, after the clear, after each of 3 pages, after the flush; and past
        // the end (no crash).
        for at in 0..8 {
            let dir = base.join(format!("cycle-{at}"));
            let old = {
                let node = node_at(Some(&dir));
                fill(&node, "old", 300);
                group_records(&node)
            };
            let incoming = dir.join("incoming");
            std::fs::create_dir_all(&incoming).unwrap();
            let file = incoming.join("snapshot");
            std::fs::copy(&master, &file).unwrap();
            let status = Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "node::install::tests::a_crash_at_any_step_of_an_install_leaves_the_old_state_or_the_snapshots",
                    "--nocapture",
                ])
                .env("BASALT_INSTALL_CHILD_DIR", &dir)
                .env("BASALT_INSTALL_ABORT_AT", at.to_string())
                .env("BASALT_INSTALL_FILE", &file)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .unwrap();
            assert_eq!(status.success(), at >= 6, "step {at}: {status:?}");
            let node = node_at(Some(&dir));
            finish_interrupted(&node, &incoming).unwrap();
            let after = group_records(&node);
            if after == old {
                outcomes.0 += 1;
            } else {
                let differ = after.iter().zip(&new).position(|(a, b)| a != b);
                assert!(
                    after == new,
                    "step {at}: neither the old state nor the snapshot's ({} records, {} old, {} new; first difference at {differ:?}: {:?})",
                    after.len(),
                    old.len(),
                    new.len(),
                    differ.map(|i| (&after[i], &new[i]))
                );
                outcomes.1 += 1;
            }
            assert!(
                !file.exists(),
                "step {at}: the snapshot file was left behind"
            );
        }
        // Only a crash before the first write keeps the old state.
        assert_eq!(outcomes, (1, 7));
        let _ = std::fs::remove_dir_all(&base);
    }
}
