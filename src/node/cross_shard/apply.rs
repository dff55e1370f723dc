//! Applying a cross-shard transaction's steps in one shard's group (on every replica, in
//! the entry's engine transaction): locks taken and released, the decider's outcome
//! recorded, the shard's share of the writes applied.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::super::apply::shard_of_group;
use super::super::Node;
use super::locks::LockChange;
use super::values::{encode_values, read_value};
use crate::cluster::{CrossShardOp, TxnId};
use crate::keyspace::{HeldLocks, Txn};
use crate::protocol::Reply;
use crate::raft::{Entry, EntryOp, GroupId};

/// What a refused Prepare answers when another transaction holds a key.
pub(crate) const LOCKED: &str = "TRYAGAIN a key is locked by another cross-shard transaction";
/// What a decider answers to a Commit of a transaction it aborted.
pub(crate) const ABORTED: &str = "TRYAGAIN the cross-shard transaction was aborted";

/// What a decider keeps of a settled transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Committed: the Commit step, every shard's writes in it.
    Committed(CrossShardOp),
    /// Aborted at the decider. Like `Settled`, the record refuses a late Prepare (one
    /// retried after the transaction ended) until `deadline_ms`, after which no Prepare of
    /// the transaction can be applied anywhere, so the record may go.
    Aborted { deadline_ms: u64 },
    /// Committed or aborted at a shard other than the decider.
    Settled { deadline_ms: u64 },
}

impl Outcome {
    fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        match self {
            Outcome::Committed(op) => {
                out.put_u8(1);
                out.put_slice(&Entry::new(0, 0, EntryOp::CrossShard(op.clone())).encode());
            }
            Outcome::Aborted { deadline_ms } => {
                out.put_u8(2);
                out.put_u64(*deadline_ms);
            }
            Outcome::Settled { deadline_ms } => {
                out.put_u8(3);
                out.put_u64(*deadline_ms);
            }
        }
        out.freeze()
    }

    pub fn decode(mut raw: Bytes) -> Option<Outcome> {
        match raw.first()? {
            1 => {
                raw.advance(1);
                match Entry::decode(raw).ok()?.op {
                    EntryOp::CrossShard(op @ CrossShardOp::Commit { .. }) => {
                        Some(Outcome::Committed(op))
                    }
                    _ => None,
                }
            }
            kind @ (2 | 3) if raw.len() == 9 => {
                let kind = *kind;
                raw.advance(1);
                let deadline_ms = raw.get_u64();
                Some(if kind == 2 {
                    Outcome::Aborted { deadline_ms }
                } else {
                    Outcome::Settled { deadline_ms }
                })
            }
            _ => None,
        }
    }
}

/// The effect of one step: its reply, the change to the lock table once the batch is
/// written, and this shard's writes (Commit) to apply in the same transaction.
pub(crate) struct Step<'a> {
    pub reply: Reply,
    pub locks: Option<LockChange>,
    pub writes: Vec<(u8, &'a [Bytes])>,
}

impl<'a> Step<'a> {
    fn reply(reply: Reply) -> Step<'a> {
        Step {
            reply,
            locks: None,
            writes: Vec::new(),
        }
    }
}

/// Applies `op` for `group` in `txn`. Entries come from peers: a key of another shard or
/// a database this node lacks is refused, the same way on every replica.
pub(crate) fn apply_step<'a>(
    node: &Node,
    group: GroupId,
    now_ms: u64,
    op: &'a CrossShardOp,
    txn: &mut Txn,
) -> Result<Step<'a>, String> {
    let shard = shard_of_group(group);
    let txn_id = op.txn();
    let decider = shard == op.decider();
    let outcome = || -> Result<Option<Outcome>, String> {
        let raw = node
            .shared
            .keyspace
            .outcome(group, txn_id)
            .map_err(|e| e.to_string())?;
        Ok(raw.and_then(Outcome::decode))
    };
    let held = node.cross_shard.locks.holds(group, txn_id);
    match op {
        CrossShardOp::Prepare {
            deadline_ms, keys, ..
        } => {
            if now_ms > *deadline_ms {
                return Ok(Step::reply(Reply::error(
                    "TRYAGAIN the cross-shard transaction's deadline passed",
                )));
            }
            if outcome()?.is_some() {
                return Ok(Step::reply(Reply::error(ABORTED)));
            }
            for (db, key) in keys {
                if *db >= node.shared.keyspace.databases() {
                    return Ok(Step::reply(Reply::error(format!("ERR no database {db}"))));
                }
                if node.shards.shard_of_key(key) != shard {
                    return Ok(Step::reply(Reply::error(
                        "ERR a prepared key does not belong to the shard",
                    )));
                }
                if node
                    .cross_shard
                    .locks
                    .holder(*db, key)
                    .is_some_and(|t| t != txn_id)
                {
                    return Ok(Step::reply(Reply::error(LOCKED)));
                }
            }
            let mut values = Vec::with_capacity(keys.len());
            for (db, key) in keys {
                values.push(read_value(node, &node.shared.keyspace, *db, key, now_ms)?);
            }
            let locks = HeldLocks {
                group,
                txn: txn_id,
                decider: op.decider(),
                since_ms: now_ms,
                keys: keys.clone(),
            };
            txn.put_locks(&locks);
            Ok(Step {
                reply: Reply::Bulk(encode_values(&values)),
                locks: Some(LockChange::Take(locks)),
                writes: Vec::new(),
            })
        }
        CrossShardOp::Commit {
            writes,
            deadline_ms,
            ..
        } => {
            if !held {
                // At the decider: settled before (a repeated Commit, or aborted). Elsewhere:
                // applied before (a repeated Commit): nothing is left to do.
                let committed = !decider || matches!(outcome()?, Some(Outcome::Committed(_)));
                let reply = if committed {
                    Reply::OK
                } else {
                    Reply::error(ABORTED)
                };
                return Ok(Step::reply(reply));
            }
            let settled = if decider {
                Outcome::Committed(op.clone())
            } else {
                Outcome::Settled {
                    deadline_ms: *deadline_ms,
                }
            };
            txn.put_outcome(group, txn_id, settled.encode());
            txn.delete_locks(group, txn_id);
            let mine = writes
                .iter()
                .filter(|w| w.shard == shard)
                .map(|w| (w.db, &w.args[..]))
                .collect();
            Ok(Step {
                reply: Reply::OK,
                locks: Some(LockChange::Release(group, txn_id)),
                writes: mine,
            })
        }
        CrossShardOp::Abort { deadline_ms, .. } => {
            match outcome()? {
                Some(Outcome::Committed(commit)) => {
                    // Asked too late: the answer is the commit, for the asker to apply.
                    let raw = Entry::new(0, 0, EntryOp::CrossShard(commit)).encode();
                    return Ok(Step::reply(Reply::Bulk(raw)));
                }
                Some(_) => {}
                None => {
                    let deadline_ms = *deadline_ms;
                    let settled = if decider {
                        Outcome::Aborted { deadline_ms }
                    } else {
                        Outcome::Settled { deadline_ms }
                    };
                    txn.put_outcome(group, txn_id, settled.encode());
                }
            }
            let locks = held.then(|| {
                txn.delete_locks(group, txn_id);
                LockChange::Release(group, txn_id)
            });
            Ok(Step {
                reply: Reply::Bulk(Bytes::new()),
                locks,
                writes: Vec::new(),
            })
        }
        CrossShardOp::Forget { .. } => {
            if !held {
                txn.delete_outcome(group, txn_id);
            }
            Ok(Step::reply(Reply::OK))
        }
    }
}

/// The transaction holding a key that the command `args` writes, if another than `owner`
/// holds one: apply refuses such a write (every replica holds the same locks).
pub(crate) fn locked_key(node: &Node, db: u8, args: &[Bytes], owner: Option<TxnId>) -> bool {
    let locks = &node.cross_shard.locks;
    if locks.is_empty() || args.is_empty() {
        return false;
    }
    let Some(cmd) = node.shared.table.get(&args[0]) else {
        return false;
    };
    cmd.key_positions(args)
        .any(|i| locks.holder(db, &args[i]).is_some_and(|t| Some(t) != owner))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{ShardId, ShardWrite};

    #[test]
    fn outcomes_round_trip() {
        let txn = TxnId { node: 1, seq: 2 };
        let commit = CrossShardOp::Commit {
            txn,
            decider: ShardId(1),
            deadline_ms: 10,
            writes: vec![ShardWrite {
                shard: ShardId(4),
                db: 0,
                args: vec![Bytes::from("DEL"), Bytes::from("k")],
            }],
        };
        for o in [
            Outcome::Committed(commit),
            Outcome::Aborted { deadline_ms: 77 },
            Outcome::Settled { deadline_ms: 78 },
        ] {
            assert_eq!(Outcome::decode(o.encode()), Some(o));
        }
        assert_eq!(Outcome::decode(Bytes::from_static(&[2, 1])), None);
        assert_eq!(Outcome::decode(Bytes::new()), None);
    }
}
