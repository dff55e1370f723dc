//! The server: TCP accept, connections with pipelining, background tasks, shutdown.
//!
//! It knows how to move bytes and run requests through `node::Node`; it does not know
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

use crate::node::{Loops, Node};

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
        let loops = Loops::start(&node, &stop_rx);
        let peers = tokio::spawn(crate::transport::listener::serve(
            node.clone(),
            self.peer_listener,
            stop_rx.clone(),
        ));
        let mut shutdown = node.shared.shutdown_requests();
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
        loops.join().await;
        let _ = peers.await;
        node.groups().shutdown().await;
        if let Err(e) = node.shared.keyspace.engine().flush() {
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
    if node.shared.clients.count() as u64 >= node.shared.config.maxclients() {
        node.shared
            .clients
            .rejected_connections
            .fetch_add(1, Ordering::Relaxed);
        let _ = socket
            .write_all(b"-ERR max number of clients reached\r\n")
            .await;
        return;
    }
    let _ = socket.set_nodelay(true);
    let laddr = socket.local_addr().unwrap_or(addr);
    let info = node.shared.clients.register(addr, laddr);
    let listed = Listed {
        node: node.clone(),
        id: info.id,
    };
    tokio::spawn(async move {
        connection::run(listed.node.clone(), socket, info, stop).await;
        drop(listed);
    });
}

/// A connection's entry in the client list, removed when the connection's task ends in
/// any way, a panic included (a leaked entry would count against `maxclients` for good).
struct Listed {
    node: Arc<Node>,
    id: u64,
}

impl Drop for Listed {
    fn drop(&mut self) {
        self.node.shared.clients.unregister(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_connection_task_that_panics_leaves_the_client_list() {
        let node = crate::node::test_node();
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let info = node.shared.clients.register(addr, addr);
        let listed = Listed {
            node: node.clone(),
            id: info.id,
        };
        assert_eq!(node.shared.clients.count(), 1);
        let task = tokio::spawn(async move {
            let _listed = listed;
            tokio::task::yield_now().await;
            panic!("a bug in a command");
        });
        assert!(task.await.unwrap_err().is_panic());
        assert_eq!(node.shared.clients.count(), 0);
    }
}
