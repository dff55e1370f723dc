//! The node's background loops: active expiry and the ops/sec sampler, Raft log
//! checkpoints, spreading shard leaders over the nodes, quiescing idle groups, the
//! replica balancer, passing published messages to the other nodes, and settling
//! cross-shard transactions left behind. They run until the server's stop signal.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::expire_cycle::ExpireCursor;
use super::Node;
use crate::clock;

/// The running loops.
pub struct Loops(Vec<JoinHandle<()>>);

impl Loops {
    /// Starts every loop; each ends when `stop` turns true.
    pub fn start(node: &Arc<Node>, stop: &watch::Receiver<bool>) -> Loops {
        Loops(vec![
            tokio::spawn(background_tasks(node.clone(), stop.clone())),
            tokio::spawn(balance_replicas(node.clone(), stop.clone())),
            tokio::spawn(quiesce_groups(node.clone(), stop.clone())),
            tokio::spawn(fan_out(node.clone(), stop.clone())),
            tokio::spawn(settle_cross_shard(node.clone(), stop.clone())),
            tokio::spawn(finish_cross_shard(node.clone(), stop.clone())),
        ])
    }

    /// Waits for every loop to end.
    pub async fn join(self) {
        for handle in self.0 {
            let _ = handle.await;
        }
    }
}

/// The replica balancer's rounds (a move may take long: a new replica catches up first,
/// so it runs apart from the other background work).
async fn balance_replicas(node: Arc<Node>, mut stop: watch::Receiver<bool>) {
    let mut balancer = super::balancer::Balancer::default();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(super::balancer::BALANCE_PERIOD) => {}
            _ = stop.changed() => return,
        }
        tokio::select! {
            _ = balancer.round(&node) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Passing published messages to the other nodes (`fanout.rs`).
async fn fan_out(node: Arc<Node>, mut stop: watch::Receiver<bool>) {
    tokio::select! {
        _ = node.fan_out() => {}
        _ = stop.changed() => {}
    }
}

/// Settling cross-shard transactions whose coordinator went quiet, and dropping what
/// deciders keep of old ones (`cross_shard/recovery.rs`), once a second.
async fn settle_cross_shard(node: Arc<Node>, mut stop: watch::Receiver<bool>) {
    let mut round = 0u64;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => return,
        }
        round += 1;
        tokio::select! {
            _ = node.settle_stale_locks(round) => {}
            _ = stop.changed() => return,
        }
    }
}

/// The last steps of cross-shard transactions, after their replies (`cross_shard/`).
async fn finish_cross_shard(node: Arc<Node>, mut stop: watch::Receiver<bool>) {
    tokio::select! {
        _ = super::cross_shard::finish_settled(node) => {}
        _ = stop.changed() => {}
    }
}

/// Quiescing idle Raft groups and waking them (`raft/quiesce.rs`), a round each
/// [`QUIET_ROUND`](crate::raft::QUIET_ROUND).
async fn quiesce_groups(node: Arc<Node>, mut stop: watch::Receiver<bool>) {
    let mut round = 0u64;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(crate::raft::QUIET_ROUND) => {}
            _ = stop.changed() => return,
        }
        round += 1;
        tokio::select! {
            _ = node.groups().quiet_round(round) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Active expiry and the ops/sec sampler at `hz` times a second, Raft log checkpoints, and
/// every 2 s a step of spreading shard leaders over the nodes.
async fn background_tasks(node: Arc<Node>, mut stop: watch::Receiver<bool>) {
    let mut cursor = ExpireCursor::new(node.shared.keyspace.databases());
    let mut last_balance = std::time::Instant::now();
    loop {
        let period = Duration::from_millis(1000 / node.shared.config.hz().max(1));
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = stop.changed() => return,
        }
        node.shared.stats.sample_ops(clock::now_ms());
        node.active_expire_pass(&mut cursor).await;
        if let Err(e) = node.groups().maybe_checkpoint().await {
            tracing::error!(error = %e, "raft checkpoint failed");
        }
        if last_balance.elapsed() >= Duration::from_secs(2) {
            last_balance = std::time::Instant::now();
            node.groups().balance_leaders().await;
        }
    }
}
