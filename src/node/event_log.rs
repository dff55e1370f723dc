//! Keeping keyspace events at apply for KEYEVENTS (`keyspace::event_log`): with
//! `keyspace-events-log` set, every replica records the events of each entry it applies,
//! in the entry's own write batch, and trims those older than the last
//! `keyspace-events-log` entries of the shard. A replica whose state is replaced wholesale
//! (snapshot install, replica dropped) forgets the shard's events and starts again from
//! the next entry, so the kept events of a shard never have a hole.

use ahash::AHashMap;
use parking_lot::Mutex;

use super::Node;
use crate::commands::notify::Event;
use crate::keyspace::Txn;
use crate::raft::GroupId;

/// Trims run when an entry's index is a multiple of this.
const TRIM_EVERY: u64 = 128;

/// Per group, the first index whose events are all kept (`None`: nothing kept yet), as
/// last read or written.
#[derive(Default)]
pub(super) struct EventLog {
    since: Mutex<AHashMap<GroupId, Option<u64>>>,
}

impl Node {
    /// Whether applied entries' events are kept.
    pub(super) fn keeps_events(&self, group: GroupId) -> bool {
        group != 0 && self.shared.config.keyspace_events_log() > 0
    }

    /// Records `events` of the entry at `index` of `group` in `txn` (before it commits),
    /// trimming old ones now and then.
    pub(super) fn log_events(&self, txn: &mut Txn, group: GroupId, index: u64, events: &[Event]) {
        let keep = self.shared.config.keyspace_events_log();
        let mut since = self.event_log.since.lock();
        let kept_from = match since.get(&group) {
            Some(s) => *s,
            None => {
                let stored = self.shared.keyspace.events_since(group).unwrap_or(None);
                since.insert(group, stored);
                stored
            }
        };
        if kept_from.is_none() {
            txn.keep_events_from(group, index);
            since.insert(group, Some(index));
        }
        txn.log_events(
            group,
            index,
            events.iter().map(|e| (e.db, e.name, &e.key[..])),
        );
        if index.is_multiple_of(TRIM_EVERY) && index > keep {
            let floor = index - keep;
            if kept_from.is_some_and(|s| floor > s) {
                txn.keep_events_from(group, floor);
                since.insert(group, Some(floor));
            }
        }
    }

    /// Forgets `group`'s kept events (its replica was replaced or dropped).
    pub(super) fn forget_events(&self, group: GroupId) -> std::io::Result<()> {
        if !self.keeps_events(group) {
            return Ok(());
        }
        self.event_log.since.lock().insert(group, None);
        self.shared
            .keyspace
            .forget_events(Some(group))
            .map_err(std::io::Error::other)
    }
}
