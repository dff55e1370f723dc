//! The cluster map, the state of group 0 (the map group): the nodes and their state (up, or
//! down: silent past the node timeout), the replicas of every shard and a config epoch that
//! counts the changes.
//!
//! Every node follows group 0 (a voter on up to [`MAP_VOTERS`] nodes, a learner on the
//! others), so every node knows the whole map. Changes are [`MapChange`]s, carried in group 0's
//! log as argument lists (the write entry's own codec) and applied in log order; the map is
//! stored as one system record written in the same batch as group 0's apply state.
//!
//! The map also holds the ACL users (name → rules, as `commands::acl` writes them) and the
//! function libraries (name → code), so a user set or a library loaded through one node
//! exists on every node; the map stores them opaque.
//!
//! A shard's replica list is what the balancer intends: a node being added is listed before
//! it becomes a member of the shard's group, a node being removed is unlisted only after it
//! has left the group. So a node that finds itself unlisted may drop the shard's data.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use parking_lot::RwLock;

use crate::codec::{self, CodecError};

/// A node's addresses, as the membership records them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeInfo {
    /// Where clients connect (RESP).
    pub client_addr: String,
    /// Where peers connect (cluster-proto).
    pub cluster_addr: String,
}

/// Voters of group 0 at most; further nodes follow it as learners.
pub const MAP_VOTERS: usize = 5;
/// Version 2 added the nodes found down, version 3 the ACL users, version 4 the function
/// libraries; older maps are still read.
const FORMAT_VERSION: u8 = 4;

/// The cluster map.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterMap {
    /// Incremented by every change.
    pub epoch: u64,
    pub nodes: BTreeMap<u64, NodeInfo>,
    /// Per shard, the nodes holding (or being given) a replica.
    pub replicas: Vec<BTreeSet<u64>>,
    /// Nodes the balancer found silent for longer than the node timeout (their replicas
    /// are rebuilt elsewhere); a node answering again is up again.
    pub down: BTreeSet<u64>,
    /// ACL users: name → rules (empty until ACL SETUSER or an ACL file sets some).
    pub users: BTreeMap<Bytes, Vec<Bytes>>,
    /// Function libraries (FUNCTION LOAD): name → code, loaded by every node.
    pub libraries: BTreeMap<Bytes, Bytes>,
}

/// The map as the node knows it, shared by the groups and the applier.
pub type SharedMap = Arc<RwLock<ClusterMap>>;

/// A change to the map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapChange {
    /// The first node of a new cluster: it holds every shard (ignored once there are nodes).
    Bootstrap {
        node: u64,
        info: NodeInfo,
        shards: u16,
    },
    /// A node joined (or changed its addresses).
    AddNode { node: u64, info: NodeInfo },
    /// The replicas of one shard.
    SetReplicas { shard: u16, nodes: BTreeSet<u64> },
    /// A node is up, or down (silent past the node timeout).
    SetNodeState { node: u64, up: bool },
    /// Creates or replaces an ACL user.
    SetUser { name: Bytes, rules: Vec<Bytes> },
    /// Deletes ACL users.
    DelUsers { names: Vec<Bytes> },
    /// Replaces every ACL user (ACL LOAD, an ACL file at start-up).
    SetUsers { users: BTreeMap<Bytes, Vec<Bytes>> },
    /// Creates or replaces one function library: its name and code.
    SetLibrary { name: Bytes, code: Bytes },
    /// Deletes a function library.
    DelLibrary { name: Bytes },
    /// Every function library at once (FUNCTION FLUSH, FUNCTION RESTORE).
    SetLibraries { libraries: BTreeMap<Bytes, Bytes> },
}

fn parse<T: std::str::FromStr>(arg: Option<&Bytes>) -> Result<T, CodecError> {
    arg.and_then(|a| std::str::from_utf8(a).ok())
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| CodecError::Bad("metadata op argument".into()))
}

fn text(arg: Option<&Bytes>) -> Result<String, CodecError> {
    parse(arg)
}

impl MapChange {
    /// The op as an argument list (how group 0's entries carry it).
    pub fn to_args(&self) -> Vec<Bytes> {
        let b = |s: String| Bytes::from(s);
        match self {
            MapChange::Bootstrap { node, info, shards } => vec![
                b("bootstrap".into()),
                b(node.to_string()),
                b(info.client_addr.clone()),
                b(info.cluster_addr.clone()),
                b(shards.to_string()),
            ],
            MapChange::AddNode { node, info } => vec![
                b("addnode".into()),
                b(node.to_string()),
                b(info.client_addr.clone()),
                b(info.cluster_addr.clone()),
            ],
            MapChange::SetReplicas { shard, nodes } => {
                let mut args = vec![b("replicas".into()), b(shard.to_string())];
                args.extend(nodes.iter().map(|n| b(n.to_string())));
                args
            }
            MapChange::SetNodeState { node, up } => vec![
                b("nodestate".into()),
                b(node.to_string()),
                b(if *up { "up" } else { "down" }.into()),
            ],
            MapChange::SetUser { name, rules } => {
                let mut args = vec![b("setuser".into()), name.clone()];
                args.extend(rules.iter().cloned());
                args
            }
            MapChange::DelUsers { names } => {
                let mut args = vec![b("delusers".into())];
                args.extend(names.iter().cloned());
                args
            }
            MapChange::SetUsers { users } => {
                let mut args = vec![b("setusers".into())];
                for (name, rules) in users {
                    args.push(name.clone());
                    args.push(b(rules.len().to_string()));
                    args.extend(rules.iter().cloned());
                }
                args
            }
            MapChange::SetLibrary { name, code } => {
                vec![b("setlibrary".into()), name.clone(), code.clone()]
            }
            MapChange::DelLibrary { name } => vec![b("dellibrary".into()), name.clone()],
            MapChange::SetLibraries { libraries } => {
                let mut args = vec![b("setlibraries".into())];
                for (name, code) in libraries {
                    args.push(name.clone());
                    args.push(code.clone());
                }
                args
            }
        }
    }

    pub fn from_args(args: &[Bytes]) -> Result<MapChange, CodecError> {
        let name = args.first().map(|a| &a[..]).unwrap_or_default();
        let node_info = |at: usize| -> Result<NodeInfo, CodecError> {
            Ok(NodeInfo {
                client_addr: text(args.get(at))?,
                cluster_addr: text(args.get(at + 1))?,
            })
        };
        match name {
            b"bootstrap" if args.len() == 5 => Ok(MapChange::Bootstrap {
                node: parse(args.get(1))?,
                info: node_info(2)?,
                shards: parse(args.get(4))?,
            }),
            b"addnode" if args.len() == 4 => Ok(MapChange::AddNode {
                node: parse(args.get(1))?,
                info: node_info(2)?,
            }),
            b"replicas" if args.len() >= 2 => Ok(MapChange::SetReplicas {
                shard: parse(args.get(1))?,
                nodes: args[2..]
                    .iter()
                    .map(|a| parse(Some(a)))
                    .collect::<Result<_, _>>()?,
            }),
            b"nodestate" if args.len() == 3 => Ok(MapChange::SetNodeState {
                node: parse(args.get(1))?,
                up: match &args[2][..] {
                    b"up" => true,
                    b"down" => false,
                    _ => return Err(CodecError::Bad("node state is up or down".into())),
                },
            }),
            b"setuser" if args.len() >= 2 => Ok(MapChange::SetUser {
                name: args[1].clone(),
                rules: args[2..].to_vec(),
            }),
            b"delusers" => Ok(MapChange::DelUsers {
                names: args[1..].to_vec(),
            }),
            b"setusers" => {
                let mut users = BTreeMap::new();
                let mut rest = &args[1..];
                while let [name, count, tail @ ..] = rest {
                    let count: usize = parse(Some(count))?;
                    if count > tail.len() {
                        return Err(CodecError::Bad("user rules past the end".into()));
                    }
                    users.insert(name.clone(), tail[..count].to_vec());
                    rest = &tail[count..];
                }
                if !rest.is_empty() {
                    return Err(CodecError::Bad("a user without its rules".into()));
                }
                Ok(MapChange::SetUsers { users })
            }
            b"setlibrary" if args.len() == 3 => Ok(MapChange::SetLibrary {
                name: args[1].clone(),
                code: args[2].clone(),
            }),
            b"dellibrary" if args.len() == 2 => Ok(MapChange::DelLibrary {
                name: args[1].clone(),
            }),
            b"setlibraries" if args.len() % 2 == 1 => Ok(MapChange::SetLibraries {
                libraries: args[1..]
                    .chunks(2)
                    .map(|pair| (pair[0].clone(), pair[1].clone()))
                    .collect(),
            }),
            _ => Err(CodecError::Bad(format!(
                "unknown metadata op {:?}",
                String::from_utf8_lossy(name)
            ))),
        }
    }
}

impl ClusterMap {
    /// Applies a change; returns whether it changed anything.
    pub fn apply(&mut self, op: &MapChange) -> bool {
        let changed = match op {
            MapChange::Bootstrap { node, info, shards } => {
                if !self.nodes.is_empty() {
                    return false;
                }
                self.nodes.insert(*node, info.clone());
                self.replicas = vec![BTreeSet::from([*node]); usize::from(*shards)];
                true
            }
            MapChange::AddNode { node, info } => {
                self.nodes.insert(*node, info.clone()).as_ref() != Some(info)
            }
            MapChange::SetReplicas { shard, nodes } => match self.replicas.get_mut(*shard as usize)
            {
                Some(current) if current != nodes => {
                    *current = nodes.clone();
                    true
                }
                _ => false,
            },
            MapChange::SetNodeState { node, up } => {
                if !self.nodes.contains_key(node) {
                    return false;
                }
                if *up {
                    self.down.remove(node)
                } else {
                    self.down.insert(*node)
                }
            }
            MapChange::SetUser { name, rules } => {
                self.users.insert(name.clone(), rules.clone()).as_ref() != Some(rules)
            }
            MapChange::DelUsers { names } => {
                let before = self.users.len();
                self.users.retain(|name, _| !names.contains(name));
                self.users.len() != before
            }
            MapChange::SetUsers { users } => {
                let changed = self.users != *users;
                self.users = users.clone();
                changed
            }
            MapChange::SetLibrary { name, code } => {
                self.libraries.insert(name.clone(), code.clone()).as_ref() != Some(code)
            }
            MapChange::DelLibrary { name } => self.libraries.remove(name).is_some(),
            MapChange::SetLibraries { libraries } => {
                let changed = self.libraries != *libraries;
                self.libraries = libraries.clone();
                changed
            }
        };
        if changed {
            self.epoch += 1;
        }
        changed
    }

    /// How many shard replicas each known node holds.
    pub fn load(&self) -> BTreeMap<u64, usize> {
        let mut load: BTreeMap<u64, usize> = self.nodes.keys().map(|n| (*n, 0)).collect();
        for nodes in &self.replicas {
            for n in nodes {
                *load.entry(*n).or_default() += 1;
            }
        }
        load
    }

    /// Format: `version:u8 | epoch:u64 | nodes:u32 | (id:u64 | client | cluster)* |
    /// shards:u32 | (count:u32 | id:u64*)* | down:u32 | id:u64* | users:u32 | (name |
    /// rules:u32 | rule*)* | libraries:u32 | (name | code)*`, strings length-prefixed
    /// (version 1 had no `down`, version 2 no `users`, version 3 no `libraries`).
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        out.put_u8(FORMAT_VERSION);
        out.put_u64(self.epoch);
        out.put_u32(self.nodes.len() as u32);
        for (id, info) in &self.nodes {
            out.put_u64(*id);
            codec::put_bytes(&mut out, info.client_addr.as_bytes());
            codec::put_bytes(&mut out, info.cluster_addr.as_bytes());
        }
        out.put_u32(self.replicas.len() as u32);
        for nodes in &self.replicas {
            out.put_u32(nodes.len() as u32);
            for n in nodes {
                out.put_u64(*n);
            }
        }
        out.put_u32(self.down.len() as u32);
        for n in &self.down {
            out.put_u64(*n);
        }
        out.put_u32(self.users.len() as u32);
        for (name, rules) in &self.users {
            codec::put_bytes(&mut out, name);
            out.put_u32(rules.len() as u32);
            for rule in rules {
                codec::put_bytes(&mut out, rule);
            }
        }
        out.put_u32(self.libraries.len() as u32);
        for (name, code) in &self.libraries {
            codec::put_bytes(&mut out, name);
            codec::put_bytes(&mut out, code);
        }
        out.freeze()
    }

    pub fn decode(mut raw: Bytes) -> Result<ClusterMap, CodecError> {
        let version = codec::get_u8(&mut raw)?;
        if !(1..=FORMAT_VERSION).contains(&version) {
            return Err(CodecError::Version(version));
        }
        let epoch = codec::get_u64(&mut raw)?;
        let string = |raw: &mut Bytes| -> Result<String, CodecError> {
            String::from_utf8(codec::get_bytes(raw)?.to_vec())
                .map_err(|_| CodecError::Bad("address is not UTF-8".into()))
        };
        let mut nodes = BTreeMap::new();
        for _ in 0..codec::get_count(&mut raw)? {
            let id = codec::get_u64(&mut raw)?;
            let client_addr = string(&mut raw)?;
            let cluster_addr = string(&mut raw)?;
            nodes.insert(
                id,
                NodeInfo {
                    client_addr,
                    cluster_addr,
                },
            );
        }
        let mut replicas = Vec::new();
        for _ in 0..codec::get_count(&mut raw)? {
            let mut set = BTreeSet::new();
            for _ in 0..codec::get_count(&mut raw)? {
                set.insert(codec::get_u64(&mut raw)?);
            }
            replicas.push(set);
        }
        let mut down = BTreeSet::new();
        if version >= 2 {
            for _ in 0..codec::get_count(&mut raw)? {
                down.insert(codec::get_u64(&mut raw)?);
            }
        }
        let mut users = BTreeMap::new();
        if version >= 3 {
            for _ in 0..codec::get_count(&mut raw)? {
                let name = codec::get_bytes(&mut raw)?;
                let mut rules = Vec::new();
                for _ in 0..codec::get_count(&mut raw)? {
                    rules.push(codec::get_bytes(&mut raw)?);
                }
                users.insert(name, rules);
            }
        }
        let mut libraries = BTreeMap::new();
        if version >= 4 {
            for _ in 0..codec::get_count(&mut raw)? {
                let name = codec::get_bytes(&mut raw)?;
                libraries.insert(name, codec::get_bytes(&mut raw)?);
            }
        }
        Ok(ClusterMap {
            epoch,
            nodes,
            replicas,
            down,
            users,
            libraries,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(port: u16) -> NodeInfo {
        NodeInfo {
            client_addr: format!("127.0.0.1:{port}"),
            cluster_addr: format!("127.0.0.1:{}", port + 10000),
        }
    }

    #[test]
    fn ops_round_trip_and_apply() {
        let ops = [
            MapChange::Bootstrap {
                node: 7,
                info: info(7000),
                shards: 4,
            },
            MapChange::AddNode {
                node: 9,
                info: info(7001),
            },
            MapChange::SetReplicas {
                shard: 2,
                nodes: BTreeSet::from([7, 9]),
            },
            MapChange::SetNodeState { node: 9, up: false },
            MapChange::SetUser {
                name: Bytes::from("alice"),
                rules: vec![Bytes::from("on"), Bytes::from("~*")],
            },
            MapChange::SetUsers {
                users: BTreeMap::from([
                    (Bytes::from("bob"), vec![Bytes::from("off")]),
                    (Bytes::from("carol"), vec![]),
                ]),
            },
            MapChange::SetLibrary {
                name: Bytes::from_static(b"lib"),
                code: Bytes::from_static(
                    b"#!lua name=lib\nredis.register_function('f', function() end)",
                ),
            },
            MapChange::SetLibraries {
                libraries: BTreeMap::from([(
                    Bytes::from_static(b"a"),
                    Bytes::from_static(b"code"),
                )]),
            },
            MapChange::DelLibrary {
                name: Bytes::from_static(b"a"),
            },
            MapChange::DelUsers {
                names: vec![Bytes::from("carol")],
            },
        ];
        let mut meta = ClusterMap::default();
        for op in &ops {
            assert_eq!(MapChange::from_args(&op.to_args()).as_ref(), Ok(op));
            assert!(meta.apply(op));
        }
        assert!(!meta.apply(&ops[0]), "bootstrap only once");
        assert!(!meta.apply(&ops[2]), "same replicas: no change");
        assert!(!meta.apply(&ops[3]), "already down: no change");
        assert!(
            !meta.apply(&MapChange::SetNodeState { node: 5, up: false }),
            "unknown node"
        );
        assert_eq!(meta.down, BTreeSet::from([9]));
        assert_eq!(meta.epoch, 10);
        assert_eq!(meta.users.keys().collect::<Vec<_>>(), vec!["bob"]);
        assert!(meta.libraries.is_empty(), "set, replaced, deleted");
        assert_eq!(meta.replicas[2], BTreeSet::from([7, 9]));
        assert_eq!(meta.load(), BTreeMap::from([(7, 4), (9, 1)]));
        let raw = meta.encode();
        assert_eq!(ClusterMap::decode(raw.clone()), Ok(meta.clone()));
        for cut in 0..raw.len() {
            assert!(ClusterMap::decode(raw.slice(..cut)).is_err());
        }
        // A version 1 map (before node states, users and libraries) still reads, with no
        // node down.
        let users_len = 4 + 4 + 3 + 4 + 4 + 3;
        let libraries_len = 4;
        let mut v1 = BytesMut::from(&raw[..raw.len() - 12 - users_len - libraries_len]);
        v1[0] = 1;
        let old = ClusterMap::decode(v1.freeze()).unwrap();
        assert_eq!((old.down.len(), old.nodes.len()), (0, 2));
        assert!(meta.apply(&MapChange::SetNodeState { node: 9, up: true }));
        assert!(meta.down.is_empty());
    }

    #[test]
    fn bad_ops_are_refused() {
        for args in [
            vec!["bootstrap", "x", "a", "b", "4"],
            vec!["replicas"],
            vec!["addnode", "1", "a"],
            vec!["nodestate", "1", "sideways"],
            vec!["setuser"],
            vec!["setusers", "a", "2", "on"],
            vec!["setusers", "a"],
            vec!["nosuch"],
            vec![],
        ] {
            let args: Vec<Bytes> = args.into_iter().map(Bytes::from).collect();
            assert!(MapChange::from_args(&args).is_err(), "{args:?}");
        }
    }
}
