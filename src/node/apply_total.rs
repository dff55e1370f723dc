//! Apply is total: whatever entry reaches a shard's state machine (a command of any name
//! with any arguments, in any database, at any time, a batch, a transaction, expiry, a map
//! change in the wrong group, cross-shard steps naming any shard), applying it never
//! panics, and two replicas applying the same entries give the same replies and hold the
//! same records afterwards.

use std::sync::Arc;

use bytes::Bytes;
use proptest::prelude::*;

use super::apply::reply_of;
use super::apply_run::tests::{everything, node};
use super::{Node, NodeApplier};
use crate::cluster::{CrossShardOp, MapChange, ShardId, ShardWrite, TxnId};
use crate::commands::specs::SPECS;
use crate::raft::types::{self, RaftEntry};
use crate::raft::{Entry, EntryOp, ShardStateMachine};

/// Arguments drawn from values that reach edge cases: integer extremes, floats Redis
/// refuses or reads loosely, empty and odd strings, a few keys so commands meet each other.
const WORDS: &[&str] = &[
    "k0",
    "k1",
    "{k}2",
    "",
    "0",
    "1",
    "-1",
    "2",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551616",
    "nan",
    "inf",
    "-inf",
    "1e400",
    "0x10",
    "1.5",
    "(1",
    "[a",
    "+",
    "-",
    "*",
    "LEFT",
    "RIGHT",
    "WITHSCORES",
    "LIMIT",
    "NX",
    "XX",
    "GT",
    "LT",
    "CH",
    "INCR",
    "KEEPTTL",
    "PX",
    "EX",
    "EXAT",
    "GET",
    "REPLACE",
    "COUNT",
    "MATCH",
    "BEFORE",
    "AFTER",
    "\u{0}",
    "é",
];

fn args() -> impl Strategy<Value = Vec<Bytes>> {
    let write_commands: Vec<&'static str> = SPECS
        .iter()
        .filter(|s| s.flags.contains(&"write"))
        .map(|s| s.name.split('|').next().unwrap_or(s.name))
        .collect();
    let name = prop_oneof![
        8 => proptest::sample::select(write_commands).prop_map(|n| Bytes::from(n.to_string())),
        1 => proptest::collection::vec(any::<u8>(), 0..6).prop_map(Bytes::from),
    ];
    let word = prop_oneof![
        6 => proptest::sample::select(WORDS).prop_map(|w| Bytes::from(w.to_string())),
        1 => proptest::collection::vec(any::<u8>(), 0..12).prop_map(Bytes::from),
    ];
    (
        proptest::option::weighted(0.97, name),
        proptest::collection::vec(word, 0..7),
    )
        .prop_map(|(name, rest)| name.into_iter().chain(rest).collect())
}

fn txn_id() -> impl Strategy<Value = TxnId> {
    (0..3u64, 0..3u64).prop_map(|(node, seq)| TxnId { node, seq })
}

fn cross_shard() -> impl Strategy<Value = CrossShardOp> {
    let shard = any::<u16>().prop_map(ShardId);
    let keys = proptest::collection::vec((any::<u8>(), args()), 0..3).prop_map(|keys| {
        keys.into_iter()
            .filter_map(|(db, a)| Some((db % 17, a.first()?.clone())))
            .collect::<Vec<_>>()
    });
    let writes =
        proptest::collection::vec((any::<u16>(), any::<u8>(), args()), 0..3).prop_map(|w| {
            w.into_iter()
                .map(|(shard, db, args)| ShardWrite {
                    shard: ShardId(shard % 5),
                    db: db % 17,
                    args,
                })
                .collect::<Vec<_>>()
        });
    prop_oneof![
        (txn_id(), shard.clone(), any::<u64>(), keys).prop_map(
            |(txn, decider, deadline_ms, keys)| CrossShardOp::Prepare {
                txn,
                decider,
                deadline_ms,
                keys,
            }
        ),
        (txn_id(), shard.clone(), any::<u64>(), writes).prop_map(
            |(txn, decider, deadline_ms, writes)| CrossShardOp::Commit {
                txn,
                decider,
                deadline_ms,
                writes,
            }
        ),
        (txn_id(), shard.clone(), any::<u64>()).prop_map(|(txn, decider, deadline_ms)| {
            CrossShardOp::Abort {
                txn,
                decider,
                deadline_ms,
            }
        }),
        (txn_id(), shard).prop_map(|(txn, decider)| CrossShardOp::Forget { txn, decider }),
    ]
}

fn op() -> impl Strategy<Value = EntryOp> {
    prop_oneof![
        10 => args().prop_map(EntryOp::Command),
        2 => proptest::collection::vec(args(), 0..4).prop_map(EntryOp::Batch),
        2 => proptest::collection::vec((any::<u8>(), args()), 0..4)
            .prop_map(|c| EntryOp::Transaction(c.into_iter().map(|(db, a)| (db % 18, a)).collect())),
        1 => args().prop_map(EntryOp::Expire),
        1 => any::<bool>().prop_map(|all_dbs| EntryOp::FlushSlots { all_dbs }),
        1 => (any::<u64>(), any::<bool>())
            .prop_map(|(node, up)| EntryOp::Map(MapChange::SetNodeState { node, up })),
        2 => cross_shard().prop_map(EntryOp::CrossShard),
    ]
}

fn entry() -> impl Strategy<Value = Entry> {
    let db = prop_oneof![8 => 0..2u8, 1 => any::<u8>()];
    let now_ms = prop_oneof![8 => 1_000_000..1_000_100u64, 1 => any::<u64>()];
    (db, now_ms, op()).prop_map(|(db, now_ms, op)| Entry {
        db,
        now_ms,
        op,
        origin: None,
    })
}

fn machine(node: &Arc<Node>) -> ShardStateMachine {
    ShardStateMachine::open(1, Arc::new(NodeApplier(Arc::downgrade(node)))).expect("open")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn any_entries_apply_without_panicking_and_alike_on_two_replicas(
        entries in proptest::collection::vec(entry(), 1..12),
    ) {
        let log: Vec<RaftEntry> = entries
            .into_iter()
            .enumerate()
            .map(|(i, entry)| RaftEntry {
                log_id: types::log_id(1, 1, i as u64),
                payload: openraft::EntryPayload::Normal(entry),
            })
            .collect();
        let (first, second) = (node(), node());
        let (mut a, mut b) = (machine(&first), machine(&second));
        let replies_a: Vec<_> = log.iter().map(|e| reply_of(a.apply_one(e).expect("apply"))).collect();
        let replies_b: Vec<_> = log.iter().map(|e| reply_of(b.apply_one(e).expect("apply"))).collect();
        prop_assert_eq!(replies_a, replies_b);
        prop_assert_eq!(everything(&first), everything(&second));
    }
}
