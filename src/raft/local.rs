//! The local log: one ordered apply sequence per shard, on this node only.
//!
//! Proposing locks the entry's shards in ascending id order (so entries that span shards,
//! such as FLUSHALL or a multi-key write over several slots, cannot deadlock), appends the
//! entry to each shard's sequence and applies it once. This is the seam where Raft goes.

use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Entry, StateMachine};
use crate::cluster::ShardId;

/// The shards an entry touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardSet {
    /// One shard (the common case: a single-key command).
    One(ShardId),
    /// These shards (sorted, no duplicates).
    Some(Vec<ShardId>),
    /// Every shard (FLUSHALL, SWAPDB, FLUSHDB…).
    All,
}

impl ShardSet {
    pub fn from_unsorted(mut shards: Vec<ShardId>) -> ShardSet {
        shards.sort_unstable();
        shards.dedup();
        match shards.as_slice() {
            [one] => ShardSet::One(*one),
            _ => ShardSet::Some(shards),
        }
    }
}

/// Per-shard log position.
#[derive(Debug, Default)]
struct ShardLogState {
    last_index: u64,
}

pub struct LocalLog {
    shards: Vec<Mutex<ShardLogState>>,
    revision: AtomicU64,
}

impl LocalLog {
    pub fn new(shard_count: u16) -> LocalLog {
        LocalLog {
            shards: (0..shard_count)
                .map(|_| Mutex::new(ShardLogState::default()))
                .collect(),
            revision: AtomicU64::new(0),
        }
    }

    /// Last applied index of a shard.
    pub fn last_index(&self, shard: ShardId) -> u64 {
        self.shards[usize::from(shard.0)].lock().last_index
    }

    /// Appends several entries, in order, holding the union of their shards once (the writes
    /// of one pipeline); returns what each apply returned.
    pub async fn propose_batch<M: StateMachine>(
        &self,
        proposals: &[(ShardSet, Entry)],
        machine: &M,
    ) -> Vec<M::Output> {
        if let [(shards, entry)] = proposals {
            return vec![self.propose(shards, entry, machine).await];
        }
        let mut ids: Vec<usize> = Vec::new();
        for (shards, entry) in proposals {
            debug_assert_eq!(Entry::decode(entry.encode()).as_ref(), Ok(entry));
            match shards {
                ShardSet::One(s) => ids.push(usize::from(s.0)),
                ShardSet::Some(list) => ids.extend(list.iter().map(|s| usize::from(s.0))),
                ShardSet::All => ids.extend(0..self.shards.len()),
            }
        }
        ids.sort_unstable();
        ids.dedup();
        let mut guards: Vec<_> = ids.iter().map(|&i| (i, self.shards[i].lock())).collect();
        let mut outputs = Vec::with_capacity(proposals.len());
        for (shards, entry) in proposals {
            for (id, guard) in guards.iter_mut() {
                let touched = match shards {
                    ShardSet::One(s) => usize::from(s.0) == *id,
                    ShardSet::Some(list) => list.iter().any(|s| usize::from(s.0) == *id),
                    ShardSet::All => true,
                };
                if touched {
                    guard.last_index += 1;
                }
            }
            let revision = self.revision.fetch_add(1, Ordering::Relaxed) + 1;
            outputs.push(machine.apply(entry, revision));
        }
        outputs
    }

    /// Appends `entry` to the logs of `shards` and applies it; returns what apply returned.
    pub async fn propose<M: StateMachine>(
        &self,
        shards: &ShardSet,
        entry: &Entry,
        machine: &M,
    ) -> M::Output {
        // Entries must survive the trip through a real log; tests check every one.
        debug_assert_eq!(Entry::decode(entry.encode()).as_ref(), Ok(entry));
        if let ShardSet::One(shard) = shards {
            let mut guard = self.shards[usize::from(shard.0)].lock();
            guard.last_index += 1;
            let revision = self.revision.fetch_add(1, Ordering::Relaxed) + 1;
            return machine.apply(entry, revision);
        }
        let ids: Vec<usize> = match shards {
            ShardSet::One(shard) => vec![usize::from(shard.0)],
            ShardSet::Some(ids) => ids.iter().map(|s| usize::from(s.0)).collect(),
            ShardSet::All => (0..self.shards.len()).collect(),
        };
        let mut guards: Vec<_> = ids.iter().map(|&i| self.shards[i].lock()).collect();
        for guard in guards.iter_mut() {
            guard.last_index += 1;
        }
        let revision = self.revision.fetch_add(1, Ordering::Relaxed) + 1;
        machine.apply(entry, revision)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::EntryOp;
    use std::sync::Arc;

    struct Recorder(Mutex<Vec<(u64, Vec<bytes::Bytes>)>>);
    impl StateMachine for Recorder {
        type Output = u64;
        fn apply(&self, entry: &Entry, revision: u64) -> u64 {
            if let EntryOp::Command(args) = &entry.op {
                self.0.lock().push((revision, args.clone()));
            }
            revision
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_proposals_apply_once_each_in_order() {
        let log = Arc::new(LocalLog::new(4));
        let machine = Arc::new(Recorder(Mutex::new(Vec::new())));
        let mut tasks = Vec::new();
        for t in 0..4u16 {
            let (log, machine) = (log.clone(), machine.clone());
            tasks.push(tokio::spawn(async move {
                for i in 0..100u16 {
                    let shards = if i % 10 == 0 {
                        ShardSet::All
                    } else {
                        ShardSet::from_unsorted(vec![ShardId(t), ShardId((t + i) % 4)])
                    };
                    let op = EntryOp::Command(vec![bytes::Bytes::from(format!("{t}-{i}"))]);
                    log.propose(
                        &shards,
                        &Entry {
                            db: 0,
                            now_ms: 0,
                            op,
                        },
                        &*machine,
                    )
                    .await;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let applied = machine.0.lock();
        assert_eq!(applied.len(), 400);
        let mut revisions: Vec<u64> = applied.iter().map(|a| a.0).collect();
        revisions.sort_unstable();
        assert_eq!(revisions, (1..=400).collect::<Vec<_>>());
        let total: u64 = (0..4).map(|s| log.last_index(ShardId(s))).sum();
        assert!(total >= 400);
    }
}
