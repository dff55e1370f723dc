//! The server: TCP accept, connections with pipelining, background tasks, shutdown.
//!
//! It knows how to move bytes and run requests through `commands::Node`; it does not know
//! what any command does.

mod connection;
mod limits;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::clock;
use crate::commands::{ExpireCursor, Node};

/// A running server's handle: its address and a way to stop it.
pub struct Server {
    node: Arc<Node>,
    listener: TcpListener,
    /// Node-to-node connections (cluster-proto).
    peer_listener: TcpListener,
}

impl Server {
    /// Binds the client port and the node-to-node port.
    pub async fn bind(
        node: Arc<Node>,
        addr: SocketAddr,
        peer_addr: SocketAddr,
    ) -> std::io::Result<Server> {
        let listener = TcpListener::bind(addr).await?;
        let peer_listener = TcpListener::bind(peer_addr).await?;
        Ok(Server {
            node,
            listener,
            peer_listener,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until SHUTDOWN or `external_stop` resolves; then closes every connection and
    /// makes the data durable.
    pub async fn run(self, external_stop: impl std::future::Future<Output = ()>) {
        let node = self.node;
        let (stop_tx, stop_rx) = watch::channel(false);
        let background = tokio::spawn(background_tasks(node.clone(), stop_rx.clone()));
        let balancer = tokio::spawn(balance_replicas(node.clone(), stop_rx.clone()));
        let quiet = tokio::spawn(quiesce_groups(node.clone(), stop_rx.clone()));
        let peers = tokio::spawn(crate::transport::listener::serve(
            node.clone(),
            self.peer_listener,
            stop_rx.clone(),
        ));
        let mut shutdown = node.shutdown_requests();
        tokio::pin!(external_stop);
        loop {
            tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((socket, addr)) => accept(&node, socket, addr, stop_rx.clone()).await,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                },
                _ = shutdown.changed() => break,
                _ = &mut external_stop => break,
            }
        }
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
        let _ = background.await;
        let _ = balancer.await;
        let _ = quiet.await;
        let _ = peers.await;
        node.groups().shutdown().await;
        if let Err(e) = node.keyspace.engine().flush() {
            tracing::error!(error = %e, "final flush failed");
        }
    }
}

async fn accept(
    node: &Arc<Node>,
    mut socket: TcpStream,
    addr: SocketAddr,
    stop: watch::Receiver<bool>,
) {
    if node.clients.count() as u64 >= node.config.maxclients() {
        node.clients
            .rejected_connections
            .fetch_add(1, Ordering::Relaxed);
        let _ = socket
            .write_all(b"-ERR max number of clients reached\r\n")
            .await;
        return;
    }
    let _ = socket.set_nodelay(true);
    let laddr = socket.local_addr().unwrap_or(addr);
    let info = node.clients.register(addr, laddr);
    let node = node.clone();
    tokio::spawn(async move {
        let id = info.id;
        connection::run(node.clone(), socket, info, stop).await;
        node.clients.unregister(id);
    });
}

/// The replica balancer's rounds (a move may take long: a new replica catches up first,
/// so it runs apart from the other background work).
async fn balance_replicas(node: Arc<Node>, mut stop: watch::Receiver<bool>) {
    let mut balancer = crate::commands::Balancer::default();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(crate::commands::BALANCE_PERIOD) => {}
            _ = stop.changed() => return,
        }
        tokio::select! {
            _ = balancer.round(&node) => {}
            _ = stop.changed() => return,
        }
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
    let mut cursor = ExpireCursor::new(node.keyspace.databases());
    let mut last_balance = std::time::Instant::now();
    loop {
        let period = Duration::from_millis(1000 / node.config.hz().max(1));
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = stop.changed() => return,
        }
        node.stats.sample_ops(clock::now_ms());
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
