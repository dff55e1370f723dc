//! Settling what a coordinator left behind: a shard whose leader is here and that has held
//! a transaction's locks for long asks the transaction's decider to abort it. The decider's
//! log answers once and for all — aborted (recorded, so the transaction can never commit
//! afterwards) or committed (with every shard's writes, which this shard then applies).
//! Deciders also drop, after a while, what they keep of transactions that can no longer
//! be prepared anywhere.

use super::super::apply::shard_of_group;
use super::apply::Outcome;
use super::values::{bulk_of, error_text};
use super::{Node, DEADLINE};
use crate::clock;
use crate::cluster::{CrossShardOp, ShardId};
use crate::keyspace::HeldLocks;
use crate::raft::{group_of, Entry, EntryOp};

/// Locks held this long (by the clock of the entry that took them) are settled.
const STALE_AFTER_MS: u64 = 5_000;
/// A settled transaction's record goes this long after its deadline (a margin for clocks).
const FORGET_AFTER_MS: u64 = 60_000;
/// Rounds (seconds) between looks for records to drop.
const FORGET_EVERY: u64 = 30;

impl Node {
    /// One round: settles stale locks of shards led here; now and then drops old records.
    pub(in crate::node) async fn settle_stale_locks(&self, round: u64) {
        let now = clock::now_ms();
        for held in self.cross_shard.locks.all() {
            if now.saturating_sub(held.since_ms) < STALE_AFTER_MS {
                continue;
            }
            let shard = shard_of_group(held.group);
            if self.groups().is_leader(shard) {
                self.settle_locks(&held, shard).await;
            }
        }
        if round.is_multiple_of(FORGET_EVERY) {
            self.forget_settled(now).await;
        }
    }

    /// Asks the decider to abort `held`'s transaction and applies its answer at `shard`.
    async fn settle_locks(&self, held: &HeldLocks, shard: ShardId) {
        let abort = CrossShardOp::Abort {
            txn: held.txn,
            decider: held.decider,
            deadline_ms: held.since_ms + DEADLINE.as_millis() as u64,
        };
        let entry = Entry::new(0, clock::now_ms(), EntryOp::CrossShard(abort));
        let answer = bulk_of(self.propose_at_leader(held.decider, &entry).await);
        let (step, outcome) = match answer {
            // Aborted: the decider released its own locks with that answer.
            Ok(raw) if raw.is_empty() => ((held.decider != shard).then_some(entry), "aborted"),
            Ok(raw) => match Entry::decode(raw) {
                Ok(Entry {
                    op: op @ EntryOp::CrossShard(CrossShardOp::Commit { .. }),
                    ..
                }) => (Some(Entry::new(0, clock::now_ms(), op)), "committed"),
                _ => {
                    tracing::warn!(txn = %held.txn, "the decider's answer is malformed");
                    return;
                }
            },
            Err(e) => {
                tracing::debug!(txn = %held.txn, error = %e, "the decider cannot settle yet");
                return;
            }
        };
        if let Some(step) = step {
            let reply = self.propose_at_leader(shard, &step).await;
            if let Some(e) = error_text(&reply) {
                tracing::debug!(txn = %held.txn, error = %e, "settling at the shard failed");
                return;
            }
        }
        tracing::info!(txn = %held.txn, shard = shard.0, outcome, "settled a cross-shard transaction its coordinator left");
    }

    /// Drops the records of aborted and settled transactions past their deadline, in the
    /// shards led here. (A decider's commit record goes when its coordinator has seen every
    /// shard apply it.)
    async fn forget_settled(&self, now: u64) {
        for shard in (0..self.shards.shard_count()).map(ShardId) {
            if !self.groups().is_leader(shard) {
                continue;
            }
            let Ok(outcomes) = self.shared.keyspace.outcomes(group_of(shard)) else {
                continue;
            };
            for (txn, raw) in outcomes {
                let deadline_ms = match Outcome::decode(raw) {
                    Some(Outcome::Aborted { deadline_ms } | Outcome::Settled { deadline_ms }) => {
                        deadline_ms
                    }
                    _ => continue,
                };
                if now < deadline_ms.saturating_add(FORGET_AFTER_MS) {
                    continue;
                }
                let forget = CrossShardOp::Forget {
                    txn,
                    decider: shard,
                };
                let entry = Entry::new(0, now, EntryOp::CrossShard(forget));
                self.propose_at_leader(shard, &entry).await;
            }
        }
    }
}
