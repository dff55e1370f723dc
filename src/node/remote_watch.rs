//! WATCH on a connection whose transactions run at another node (the leader of the watched
//! keys' shard): the watch goes with the transaction as the keys' revisions at WATCH time.
//!
//! The revisions are read **at the leader** when WATCH runs (a `Revisions` request, answered
//! after a read barrier): the reads the client makes between WATCH and EXEC are served by
//! the leader too, so they see those revisions or later ones. EXEC sends them with the
//! transaction (`ForwardBatch::watched`); the leader, holding the shard's gate, aborts if a
//! key's revision differs now or it has expired since — any write after WATCH. (The
//! forwarding node's own applied state cannot serve as the baseline: a follower may have
//! applied a write its leader has not yet, and a read at the leader would not see it.)

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use cluster_proto::messages::{WatchedKey, WatchedKeys};
use cluster_proto::{request, response};

use super::Node;
use crate::cluster::ShardId;
use crate::commands::watches::{WatchState, WatchedRevision};
use crate::commands::Session;
use crate::protocol::Reply;

/// How long WATCH waits for the leader's answer (past it the watch counts as changed).
const REVISIONS_TIMEOUT: Duration = Duration::from_secs(2);

impl Node {
    /// After WATCH on `session`: the baselines of the watched keys whose shard another node
    /// leads, asked of that node. A key whose baseline cannot be had marks the watch
    /// changed (EXEC then aborts and the client retries, as after any conflict).
    pub(super) async fn watch_at_leaders(&self, session: &mut Session, keys: &[Bytes]) {
        if self.redirects(session) {
            return;
        }
        let db = session.db;
        let mut by_leader: BTreeMap<u64, (crate::raft::types::NodeInfo, Vec<WatchedKey>)> =
            BTreeMap::new();
        for key in keys {
            let shard = self.shards.shard_of_key(key);
            if let Some((id, info)) = self.leader_elsewhere(shard) {
                let asked = WatchedKey {
                    db: u32::from(db),
                    key: key.clone(),
                    ..WatchedKey::default()
                };
                by_leader
                    .entry(id)
                    .or_insert((info, Vec::new()))
                    .1
                    .push(asked);
            }
        }
        for (id, (info, keys)) in by_leader {
            let asked = keys.len();
            let body = request::Body::Revisions(WatchedKeys { keys });
            let answer = self
                .groups()
                .peers()
                .call(id, &info.cluster_addr, body, REVISIONS_TIMEOUT)
                .await;
            let Some(watch) = session.watching.as_mut() else {
                return;
            };
            let baselines = match answer {
                Ok(response::Body::Watched(WatchedKeys { keys })) if keys.len() == asked => keys
                    .into_iter()
                    .map(|k| self.watched_revision(k))
                    .collect::<Result<Vec<_>, _>>(),
                other => Err(format!("unexpected answer {:?}", other.err())),
            };
            match baselines {
                Ok(baselines) => baselines.into_iter().for_each(|b| watch.set_baseline(b)),
                Err(e) => {
                    tracing::debug!(peer = id, error = %e, "no WATCH baseline from the leader");
                    watch.mark_changed();
                }
            }
        }
    }

    /// Answers a `Revisions` request: each key's revision (0: none) and whether it has
    /// expired, read after a read barrier on its shard, which this node must lead.
    pub(super) async fn revisions_here(
        &self,
        asked: WatchedKeys,
    ) -> Result<response::Body, String> {
        let mut shards: Vec<ShardId> = asked
            .keys
            .iter()
            .map(|k| self.shards.shard_of_key(&k.key))
            .collect();
        shards.sort_unstable();
        shards.dedup();
        for shard in shards {
            self.groups()
                .read_barrier(shard)
                .await
                .map_err(|e| e.to_string())?;
        }
        let now_ms = crate::clock::now_ms();
        let mut keys = Vec::with_capacity(asked.keys.len());
        for k in asked.keys {
            let w = self.watched_revision(k)?;
            let meta = self
                .shared
                .keyspace
                .get_stored(w.db, &w.key)
                .map_err(|e| e.to_string())?;
            keys.push(WatchedKey {
                db: u32::from(w.db),
                key: w.key,
                revision: meta.as_ref().map_or(0, |m| m.revision),
                expired_when_watched: meta.is_some_and(|m| m.is_expired(now_ms)),
            });
        }
        Ok(response::Body::Watched(WatchedKeys { keys }))
    }

    /// A watched key as a peer sent it, its database checked.
    pub(super) fn watched_revision(&self, k: WatchedKey) -> Result<WatchedRevision, String> {
        let db = u8::try_from(k.db)
            .ok()
            .filter(|db| *db < self.shared.keyspace.databases())
            .ok_or_else(|| format!("no database {}", k.db))?;
        Ok(WatchedRevision {
            db,
            key: k.key,
            revision: k.revision,
            expired_when_watched: k.expired_when_watched,
        })
    }

    /// The watched keys of a transaction sent to another node, as the leader's baselines;
    /// `Err(reply)` when the transaction must not run (a key changed, or has no baseline
    /// because its shard was led here when watched and the leadership has moved since).
    pub(super) fn watched_for_leader(
        &self,
        watch: Option<WatchState>,
    ) -> Result<Vec<WatchedKey>, Reply> {
        let Some(watch) = watch.filter(|w| !w.keys().is_empty()) else {
            return Ok(Vec::new());
        };
        if watch.is_changed_elsewhere() {
            return Err(Reply::NullArray);
        }
        let mut out = Vec::with_capacity(watch.keys().len());
        for (db, key) in watch.keys() {
            let Some(b) = watch.baseline(*db, key) else {
                return Err(Reply::NullArray);
            };
            out.push(WatchedKey {
                db: u32::from(b.db),
                key: b.key.clone(),
                revision: b.revision,
                expired_when_watched: b.expired_when_watched,
            });
        }
        Ok(out)
    }

    /// Whether a key another node watched (`Session::watched_elsewhere`) has changed since:
    /// another revision now, or expired since.
    pub(super) fn watched_elsewhere_changed(
        &self,
        watched: &[WatchedRevision],
        now_ms: u64,
    ) -> bool {
        watched.iter().any(|w| {
            let Ok(meta) = self.shared.keyspace.get_stored(w.db, &w.key) else {
                return true;
            };
            let revision = meta.as_ref().map_or(0, |m| m.revision);
            let expired = meta.is_some_and(|m| m.is_expired(now_ms));
            revision != w.revision || (expired && !w.expired_when_watched)
        })
    }
}
