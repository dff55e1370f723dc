//! `GET /cluster` (the nodes and shards as this node sees them) and `GET /health/ready`
//! (every shard has a leader this node can reach), both from the node's [`Topology`]: the
//! same view CLUSTER SHARDS and CLUSTER NODES render.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::cluster::{node_name, Topology};
use crate::commands::ClusterView;
use crate::node::Node;

/// A leader this node has not heard from for this long is not one it can reach (peers
/// ping each other every few hundred milliseconds).
const LEADER_SILENCE_MAX: Duration = Duration::from_secs(5);

/// The shards (by their first slot) without a leader this node can reach.
fn unreachable_shards(node: &Node, topology: &Topology) -> Vec<Value> {
    let peers = node.groups().peers();
    topology
        .shards
        .iter()
        .filter(|shard| match shard.master {
            None => true,
            Some(leader) if leader == topology.myself => false,
            Some(leader) => {
                let up = topology.node(leader).is_some_and(|n| n.up);
                !up || !peers.answered_within(leader, LEADER_SILENCE_MAX)
            }
        })
        .map(|shard| json!({ "slots": [shard.first.0, shard.last.0], "leader": shard.master.map(node_name) }))
        .collect()
}

pub(super) async fn ready(State(node): State<Arc<Node>>) -> Response {
    let topology = node.topology();
    let missing = unreachable_shards(&node, &topology);
    if missing.is_empty() {
        Json(json!({ "status": "ready" })).into_response()
    } else {
        let body = json!({ "status": "not ready", "shards_without_reachable_leader": missing });
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
}

pub(super) async fn map(State(node): State<Arc<Node>>) -> Response {
    let t = node.topology();
    let nodes: Vec<Value> = t
        .nodes
        .iter()
        .map(|n| {
            json!({
                "id": node_name(n.id),
                "host": n.host,
                "port": n.port,
                "cluster_port": n.cluster_port,
                "up": n.up,
                "myself": n.id == t.myself,
            })
        })
        .collect();
    let shards: Vec<Value> = t
        .shards
        .iter()
        .map(|s| {
            json!({
                "slots": [s.first.0, s.last.0],
                "leader": s.master.map(node_name),
                "replicas": s.replicas.iter().copied().map(node_name).collect::<Vec<_>>(),
            })
        })
        .collect();
    Json(json!({
        "myself": node_name(t.myself),
        "epoch": t.epoch,
        "nodes": nodes,
        "shards": shards,
    }))
    .into_response()
}
