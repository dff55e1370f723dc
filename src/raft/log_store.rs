//! openraft's log storage for one group, over the node-wide [`RaftLog`] and [`Votes`]:
//! entries are kept in our own layout (`types.rs`), every append is made durable by one
//! shared fsync before openraft is told it is flushed.
//!
//! Appends are written on the calling task (a write to the page cache); with a
//! [`Flusher`] the fsync happens on its thread, shared by every group, and openraft hears
//! of the flush from there. Without one (tests), the append syncs before it returns.

use std::fmt::Debug;
use std::io;
use std::ops::RangeBounds;
use std::sync::Arc;

use openraft::storage::{IOFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader};

use super::flusher::Flusher;
use super::log::{self as node_log, LogEntry, RaftLog, Votes};
use super::types::{self, LogId, RaftEntry, TypeConfig, Vote};

/// One group's view of the node's log.
#[derive(Clone)]
pub struct LogStore {
    log: Arc<RaftLog>,
    votes: Arc<Votes>,
    group: u32,
    flusher: Option<Arc<Flusher>>,
}

fn io_error(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

fn to_openraft(id: node_log::LogId) -> LogId {
    types::log_id(id.term, id.leader, id.index)
}

fn from_openraft(id: &LogId) -> node_log::LogId {
    node_log::LogId {
        index: id.index,
        term: id.leader_id.term,
        leader: id.leader_id.node_id,
    }
}

impl LogStore {
    pub fn new(log: Arc<RaftLog>, votes: Arc<Votes>, group: u32) -> LogStore {
        LogStore {
            log,
            votes,
            group,
            flusher: None,
        }
    }

    /// Leaves durability of appends to `flusher` (the node's `appendfsync`).
    pub fn with_flusher(mut self, flusher: Arc<Flusher>) -> LogStore {
        self.flusher = Some(flusher);
        self
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<RaftEntry>, io::Error> {
        self.log
            .entries(self.group, range)?
            .into_iter()
            .map(|e| types::decode_entry(e.data).map_err(io_error))
            .collect()
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        self.votes
            .get(self.group)
            .map(|raw| types::decode_vote(raw).map_err(io_error))
            .transpose()
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let state = self.log.state(self.group);
        Ok(LogState {
            last_purged_log_id: state.last_purged.map(to_openraft),
            last_log_id: state.last.map(to_openraft),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        self.votes.save(self.group, types::encode_vote(vote))
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<TypeConfig>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = RaftEntry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<LogEntry> = entries
            .into_iter()
            .map(|e| LogEntry {
                id: from_openraft(&e.log_id),
                data: types::encode_entry(&e),
            })
            .collect();
        let seq = self.log.append(self.group, &entries)?;
        if let Some(flusher) = &self.flusher {
            flusher.appended(seq, callback);
            return Ok(());
        }
        let written = self.log.sync_to(seq);
        let failed = written
            .as_ref()
            .err()
            .map(|e| io::Error::new(e.kind(), e.to_string()));
        callback.io_completed(written);
        failed.map_or(Ok(()), Err)
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        self.log
            .truncate_after(self.group, last_log_id.map(|id| id.index))
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        match committed {
            Some(id) => self.log.save_committed(self.group, from_openraft(&id)),
            None => Ok(()),
        }
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(self.log.committed(self.group).map(to_openraft))
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        self.log.purge(self.group, from_openraft(&log_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::EntryPayload;

    fn blank(term: u64, index: u64) -> RaftEntry {
        openraft::Entry {
            log_id: types::log_id(term, 1, index),
            payload: EntryPayload::Blank,
        }
    }

    #[tokio::test]
    async fn a_group_reads_back_its_log_state_and_vote_after_reopen() {
        let dir = std::env::temp_dir().join(format!("basalt-logstore-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let open = || {
            let log = Arc::new(RaftLog::open(dir.join("log"), 4096).unwrap());
            let votes = Arc::new(Votes::open(dir.join("votes")).unwrap());
            (
                LogStore::new(log.clone(), votes.clone(), 1),
                LogStore::new(log, votes, 2),
            )
        };
        {
            let (mut a, mut b) = open();
            a.append((0..10).map(|i| blank(1, i)), IOFlushed::noop())
                .await
                .unwrap();
            b.append((0..3).map(|i| blank(2, i)), IOFlushed::noop())
                .await
                .unwrap();
            a.truncate_after(Some(types::log_id(1, 1, 6)))
                .await
                .unwrap();
            a.append((7..9).map(|i| blank(3, i)), IOFlushed::noop())
                .await
                .unwrap();
            a.purge(types::log_id(1, 1, 2)).await.unwrap();
            a.save_vote(&Vote::new(3, 1)).await.unwrap();
        }
        let (mut a, mut b) = open();
        let state = a.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(types::log_id(1, 1, 2)));
        assert_eq!(state.last_log_id, Some(types::log_id(3, 1, 8)));
        let got = a.try_get_log_entries(3..9).await.unwrap();
        let want: Vec<RaftEntry> = (3..7)
            .map(|i| blank(1, i))
            .chain((7..9).map(|i| blank(3, i)))
            .collect();
        assert_eq!(got, want);
        assert_eq!(a.read_vote().await.unwrap(), Some(Vote::new(3, 1)));
        assert_eq!(b.read_vote().await.unwrap(), None);
        assert_eq!(
            b.get_log_state().await.unwrap().last_log_id,
            Some(types::log_id(2, 1, 2))
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
