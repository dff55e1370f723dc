//! ROLE, told from the shards' leaders: a node that leads at least one shard is a `master`
//! (its offset the sum of its log indexes over the shards it leads, its replicas the nodes
//! holding replicas of those shards, each with the indexes this node knows they reached); a
//! node that leads none is a `slave` of the leader of the first shard it holds a replica
//! of, `connected`, with the sum of its own indexes on that leader's shards. A node alone
//! is a master with offset 0 and no replicas, as a lone redis-server.

use bytes::Bytes;

use crate::cluster::{ShardLayout, Topology};
use crate::commands::{reply, CmdResult, Ctx};
use crate::protocol::Reply;

/// The log indexes `node` is known to have reached on `shards`, summed.
fn offset_on<'a>(shards: impl Iterator<Item = &'a ShardLayout>, node: u64) -> i64 {
    shards
        .flat_map(|s| s.offsets.iter())
        .filter(|(n, _)| *n == node)
        .map(|(_, index)| *index as i64)
        .sum()
}

fn role_of(t: &Topology) -> Reply {
    let me = t.myself;
    let led = || t.shards.iter().filter(move |s| s.master == Some(me));
    if led().next().is_some() || t.nodes.len() <= 1 {
        let replicas = t
            .replicas_of(me)
            .into_iter()
            .filter_map(|id| t.node(id))
            .map(|n| {
                Reply::Array(vec![
                    Reply::bulk(n.host.clone()),
                    Reply::bulk(n.port.to_string()),
                    Reply::bulk(offset_on(led(), n.id).to_string()),
                ])
            })
            .collect();
        let offset = if t.nodes.len() <= 1 {
            0
        } else {
            offset_on(led(), me)
        };
        return Reply::Array(vec![
            Reply::bulk("master"),
            Reply::Integer(offset),
            Reply::Array(replicas),
        ]);
    }
    let master = t.master_of_replica(me).and_then(|id| t.node(id));
    let (host, port) = master.map_or((String::new(), 0), |n| (n.host.clone(), n.port));
    let state = if master.is_some_and(|n| n.up) {
        "connected"
    } else {
        "connect"
    };
    let of_master = t
        .shards
        .iter()
        .filter(|s| master.is_some_and(|m| s.master == Some(m.id)));
    Reply::Array(vec![
        Reply::bulk("slave"),
        Reply::bulk(host),
        Reply::Integer(i64::from(port)),
        Reply::bulk(state),
        Reply::Integer(offset_on(of_master, me)),
    ])
}

pub fn role(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    reply(role_of(&ctx.cluster.topology()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{NodeEntry, Slot};

    fn node(id: u64, port: u16) -> NodeEntry {
        NodeEntry {
            id,
            host: "127.0.0.1".into(),
            port,
            cluster_port: port + 10000,
            up: true,
            pong_ms: 0,
        }
    }

    fn shard(first: u16, master: u64, replicas: Vec<u64>, offsets: Vec<(u64, u64)>) -> ShardLayout {
        ShardLayout {
            first: Slot(first),
            last: Slot(first + 1),
            master: Some(master),
            replicas,
            offsets,
        }
    }

    #[test]
    fn masters_and_replicas_of_a_three_node_cluster() {
        let mut t = Topology {
            myself: 1,
            epoch: 3,
            nodes: vec![node(1, 7001), node(2, 7002), node(3, 7003)],
            shards: vec![
                shard(0, 1, vec![2, 3], vec![(1, 10), (2, 9), (3, 10)]),
                shard(2, 1, vec![2], vec![(1, 5), (2, 5)]),
                shard(4, 2, vec![1], vec![(1, 7)]),
            ],
        };
        let want = Reply::Array(vec![
            Reply::bulk("master"),
            Reply::Integer(15),
            Reply::Array(vec![
                Reply::Array(vec![
                    Reply::bulk("127.0.0.1"),
                    Reply::bulk("7002"),
                    Reply::bulk("14"),
                ]),
                Reply::Array(vec![
                    Reply::bulk("127.0.0.1"),
                    Reply::bulk("7003"),
                    Reply::bulk("10"),
                ]),
            ]),
        ]);
        assert_eq!(role_of(&t), want);
        t.myself = 3;
        t.shards[0].offsets = vec![(3, 10)];
        let want = Reply::Array(vec![
            Reply::bulk("slave"),
            Reply::bulk("127.0.0.1"),
            Reply::Integer(7001),
            Reply::bulk("connected"),
            Reply::Integer(10),
        ]);
        assert_eq!(role_of(&t), want);
        let alone = Topology {
            myself: 1,
            epoch: 1,
            nodes: vec![node(1, 6379)],
            shards: vec![shard(0, 1, vec![], vec![(1, 42)])],
        };
        let want = Reply::Array(vec![
            Reply::bulk("master"),
            Reply::Integer(0),
            Reply::Array(vec![]),
        ]);
        assert_eq!(role_of(&alone), want);
    }
}
