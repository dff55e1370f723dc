//! What a cross-shard transaction asks of each shard it touches: the log operations of its
//! two-phase commit, and their form inside a shard's log entry.
//!
//! A transaction whose keys span shards (`cross-shard-transactions yes`) is run by the node
//! the client sent EXEC to, the coordinator: it **prepares** every shard (locks the keys
//! there and learns their values), runs the commands against those values, and then
//! **commits** at the *decider* — the first shard, whose log records the outcome — and at the
//! others. A shard's lock outlives a crash of the coordinator (it is in the shard's log and
//! state); a shard holding one too long asks the decider, whose log settles it: committed
//! (the decider kept every shard's writes) or aborted (the decider records that, so the
//! transaction can never commit afterwards). See `node/cross_shard/`.
//!
//! ## Format (inside a log entry, as lists of byte strings)
//! The first list is the header `kind:u8 | txn:16 bytes | decider:u16 | deadline_ms:u64`
//! (one argument each, integers big-endian); then, for `Prepare`, one list `db:u8 | key` per
//! key; for `Commit`, one list `shard:u16 | db:u8 | argv…` per write.

use bytes::Bytes;

use super::ShardId;

/// A cross-shard transaction's id: the coordinating node and its sequence there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxnId {
    pub node: u64,
    pub seq: u64,
}

impl TxnId {
    fn encode(&self) -> Bytes {
        let mut out = Vec::with_capacity(16);
        out.extend_from_slice(&self.node.to_be_bytes());
        out.extend_from_slice(&self.seq.to_be_bytes());
        Bytes::from(out)
    }

    fn decode(raw: &[u8]) -> Option<TxnId> {
        let raw: &[u8; 16] = raw.try_into().ok()?;
        Some(TxnId {
            node: u64::from_be_bytes(raw[..8].try_into().ok()?),
            seq: u64::from_be_bytes(raw[8..].try_into().ok()?),
        })
    }
}

impl std::fmt::Display for TxnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}-{:016x}", self.node, self.seq)
    }
}

/// One write of a committed transaction: the shard it belongs to, its database and its
/// normalised argv (`RESTORE … ABSTTL REPLACE` or `DEL`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardWrite {
    pub shard: ShardId,
    pub db: u8,
    pub args: Vec<Bytes>,
}

/// A step of a cross-shard transaction in one shard's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrossShardOp {
    /// Lock `keys` (this shard's) for `txn` and answer their values; refused after
    /// `deadline_ms` (by the entry's clock), when a key is locked by another transaction,
    /// or, at the decider, once the transaction was settled.
    Prepare {
        txn: TxnId,
        decider: ShardId,
        deadline_ms: u64,
        keys: Vec<(u8, Bytes)>,
    },
    /// Apply this shard's `writes` and release its locks. At the decider this is the
    /// decision: refused unless the decider still holds the transaction's locks, and kept
    /// (every shard's writes) for shards that ask later.
    Commit {
        txn: TxnId,
        decider: ShardId,
        deadline_ms: u64,
        writes: Vec<ShardWrite>,
    },
    /// Release the transaction's locks without writing. At the decider: unless it has
    /// committed (then the answer is the commit), it is recorded as aborted.
    Abort {
        txn: TxnId,
        decider: ShardId,
        deadline_ms: u64,
    },
    /// At the decider: drop what it keeps of the settled transaction (every shard has
    /// applied the outcome, or its deadline is long past).
    Forget { txn: TxnId, decider: ShardId },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed cross-shard transaction step")]
pub struct Malformed;

impl CrossShardOp {
    pub fn txn(&self) -> TxnId {
        match self {
            CrossShardOp::Prepare { txn, .. }
            | CrossShardOp::Commit { txn, .. }
            | CrossShardOp::Abort { txn, .. }
            | CrossShardOp::Forget { txn, .. } => *txn,
        }
    }

    pub fn decider(&self) -> ShardId {
        match self {
            CrossShardOp::Prepare { decider, .. }
            | CrossShardOp::Commit { decider, .. }
            | CrossShardOp::Abort { decider, .. }
            | CrossShardOp::Forget { decider, .. } => *decider,
        }
    }

    fn kind(&self) -> u8 {
        match self {
            CrossShardOp::Prepare { .. } => 1,
            CrossShardOp::Commit { .. } => 2,
            CrossShardOp::Abort { .. } => 3,
            CrossShardOp::Forget { .. } => 4,
        }
    }

    fn deadline_ms(&self) -> u64 {
        match self {
            CrossShardOp::Prepare { deadline_ms, .. }
            | CrossShardOp::Commit { deadline_ms, .. }
            | CrossShardOp::Abort { deadline_ms, .. } => *deadline_ms,
            CrossShardOp::Forget { .. } => 0,
        }
    }

    /// The op as lists of byte strings (see the module doc).
    pub fn to_lists(&self) -> Vec<Vec<Bytes>> {
        let header = vec![
            Bytes::copy_from_slice(&[self.kind()]),
            self.txn().encode(),
            Bytes::copy_from_slice(&self.decider().0.to_be_bytes()),
            Bytes::copy_from_slice(&self.deadline_ms().to_be_bytes()),
        ];
        let mut lists = vec![header];
        match self {
            CrossShardOp::Prepare { keys, .. } => {
                for (db, key) in keys {
                    lists.push(vec![Bytes::copy_from_slice(&[*db]), key.clone()]);
                }
            }
            CrossShardOp::Commit { writes, .. } => {
                for w in writes {
                    let mut list = Vec::with_capacity(w.args.len() + 2);
                    list.push(Bytes::copy_from_slice(&w.shard.0.to_be_bytes()));
                    list.push(Bytes::copy_from_slice(&[w.db]));
                    list.extend(w.args.iter().cloned());
                    lists.push(list);
                }
            }
            CrossShardOp::Abort { .. } | CrossShardOp::Forget { .. } => {}
        }
        lists
    }

    /// Reads an op back from its lists; anything malformed is refused.
    pub fn from_lists(lists: Vec<Vec<Bytes>>) -> Result<CrossShardOp, Malformed> {
        let mut lists = lists.into_iter();
        let header = lists.next().ok_or(Malformed)?;
        let [kind, txn, decider, deadline] = &header[..] else {
            return Err(Malformed);
        };
        let txn = TxnId::decode(txn).ok_or(Malformed)?;
        let decider = ShardId(u16::from_be_bytes(
            decider[..].try_into().map_err(|_| Malformed)?,
        ));
        let deadline_ms = u64::from_be_bytes(deadline[..].try_into().map_err(|_| Malformed)?);
        let one_byte = |b: &Bytes| -> Result<u8, Malformed> {
            match b[..] {
                [x] => Ok(x),
                _ => Err(Malformed),
            }
        };
        match one_byte(kind)? {
            1 => {
                let keys = lists
                    .map(|list| match &list[..] {
                        [db, key] => Ok((one_byte(db)?, key.clone())),
                        _ => Err(Malformed),
                    })
                    .collect::<Result<_, _>>()?;
                Ok(CrossShardOp::Prepare {
                    txn,
                    decider,
                    deadline_ms,
                    keys,
                })
            }
            2 => {
                let writes = lists
                    .map(|list| {
                        if list.len() < 3 {
                            return Err(Malformed);
                        }
                        let shard =
                            u16::from_be_bytes(list[0][..].try_into().map_err(|_| Malformed)?);
                        Ok(ShardWrite {
                            shard: ShardId(shard),
                            db: one_byte(&list[1])?,
                            args: list[2..].to_vec(),
                        })
                    })
                    .collect::<Result<_, _>>()?;
                Ok(CrossShardOp::Commit {
                    txn,
                    decider,
                    deadline_ms,
                    writes,
                })
            }
            3 if lists.len() == 0 => Ok(CrossShardOp::Abort {
                txn,
                decider,
                deadline_ms,
            }),
            4 if lists.len() == 0 => Ok(CrossShardOp::Forget { txn, decider }),
            _ => Err(Malformed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_round_trip_and_malformed_ones_are_refused() {
        let txn = TxnId { node: 7, seq: 99 };
        let decider = ShardId(3);
        let ops = [
            CrossShardOp::Prepare {
                txn,
                decider,
                deadline_ms: 12,
                keys: vec![(0, Bytes::from("a")), (5, Bytes::new())],
            },
            CrossShardOp::Commit {
                txn,
                decider,
                deadline_ms: 12,
                writes: vec![ShardWrite {
                    shard: ShardId(9),
                    db: 1,
                    args: vec![Bytes::from("DEL"), Bytes::from("k")],
                }],
            },
            CrossShardOp::Abort {
                txn,
                decider,
                deadline_ms: 12,
            },
            CrossShardOp::Forget { txn, decider },
        ];
        for op in ops {
            let lists = op.to_lists();
            assert_eq!(CrossShardOp::from_lists(lists.clone()), Ok(op.clone()));
            let mut bad = lists.clone();
            bad[0][1] = Bytes::from("short");
            assert_eq!(CrossShardOp::from_lists(bad), Err(Malformed));
            let mut bad = lists.clone();
            bad[0].pop();
            assert_eq!(CrossShardOp::from_lists(bad), Err(Malformed));
            let mut bad = lists;
            bad.push(vec![Bytes::from("x")]);
            assert_eq!(CrossShardOp::from_lists(bad), Err(Malformed));
        }
        assert_eq!(CrossShardOp::from_lists(vec![]), Err(Malformed));
        assert_eq!(txn.to_string(), "0000000000000007-0000000000000063");
    }
}
