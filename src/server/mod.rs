//! The server: TCP accept, connections with pipelining, background tasks, shutdown.
//!
//! It knows how to move bytes and run requests through `node::Node`; it does not know
//! what any command does.

mod connection;
pub mod http;
mod limits;
mod stream;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use tokio_rustls::TlsAcceptor;

use self::stream::ClientStream;
use crate::commands::clients::ClientInfo;
use crate::node::{Loops, Node};

/// A running server's handle: its address and a way to stop it.
pub struct Server {
    node: Arc<Node>,
    listener: TcpListener,
    /// Node-to-node connections (cluster-proto).
    peer_listener: TcpListener,
    /// `tls-port`, if set: its listener (each connection's handshake uses the acceptor
    /// `Shared::tls` holds when it arrives).
    tls: Option<TcpListener>,
    /// `http-port`, if set: metrics, health, the cluster map and the key API (`http/`).
    http: Option<TcpListener>,
}

impl Server {
    /// Binds the client port, the node-to-node port and, if `tls-port` and `http-port` are
    /// set, the TLS client port and the HTTP port (on the client port's address).
    pub async fn bind(
        node: Arc<Node>,
        addr: SocketAddr,
        peer_addr: SocketAddr,
    ) -> std::io::Result<Server> {
        let listener = TcpListener::bind(addr).await?;
        let peer_listener = TcpListener::bind(peer_addr).await?;
        let tls = match node.shared.config.get("tls-port").parse::<u16>() {
            Ok(port) if port != 0 => {
                Some(TcpListener::bind(SocketAddr::new(addr.ip(), port)).await?)
            }
            _ => None,
        };
        let http = http::bind(&node, addr.ip()).await?;
        Ok(Server {
            node,
            listener,
            peer_listener,
            tls,
            http,
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
        let http = self
            .http
            .map(|listener| tokio::spawn(http::serve(node.clone(), listener, stop_rx.clone())));
        let mut shutdown = node.shared.shutdown_requests();
        tokio::pin!(external_stop);
        loop {
            tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((socket, addr)) => accept(&node, socket, addr, None, stop_rx.clone()).await,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                },
                accepted = accept_tls(&node, self.tls.as_ref()) => match accepted {
                    Ok((socket, addr, acceptor)) => {
                        accept(&node, socket, addr, Some(acceptor), stop_rx.clone()).await
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "TLS accept failed");
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
        if let Some(http) = http {
            let _ = http.await;
        }
        node.groups().shutdown().await;
        if let Err(e) = node.shared.keyspace.engine().flush() {
            tracing::error!(error = %e, "final flush failed");
        }
    }
}

/// The next connection to `tls-port` (never, when it is not set).
async fn accept_tls(
    node: &Node,
    tls: Option<&TcpListener>,
) -> std::io::Result<(TcpStream, SocketAddr, TlsAcceptor)> {
    match tls {
        Some(listener) => {
            let (socket, addr) = listener.accept().await?;
            let acceptor = node.shared.tls.client_acceptor().ok_or_else(|| {
                std::io::Error::other("tls-port is open but no TLS acceptor is set up")
            })?;
            Ok((socket, addr, acceptor))
        }
        None => std::future::pending().await,
    }
}

async fn accept(
    node: &Arc<Node>,
    mut socket: TcpStream,
    addr: SocketAddr,
    tls: Option<TlsAcceptor>,
    stop: watch::Receiver<bool>,
) {
    let _ = socket.set_nodelay(true);
    let laddr = socket.local_addr().unwrap_or(addr);
    let Some(acceptor) = tls else {
        if let Err(refusal) = admit(node, addr) {
            let _ = socket.write_all(refusal.as_bytes()).await;
            return;
        }
        // Listed before the next accept is admitted, so maxclients holds exactly.
        let listed = Listed::new(node, addr, laddr);
        tokio::spawn(serve(listed, ClientStream::Plain(socket), stop));
        return;
    };
    // The handshake runs in the connection's task: a slow client holds up no one.
    let node = node.clone();
    tokio::spawn(async move {
        let handshake = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(socket));
        let mut stream = match handshake.await {
            Ok(Ok(tls)) => ClientStream::Tls(Box::new(tls)),
            Ok(Err(e)) => {
                tracing::debug!(client = %addr, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(client = %addr, "TLS handshake timed out");
                return;
            }
        };
        if let Err(refusal) = admit(&node, addr) {
            let _ = stream.write_all(refusal.as_bytes()).await;
            return;
        }
        serve(Listed::new(&node, addr, laddr), stream, stop).await;
    });
}

/// How long a client has for its TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether a new client may be served (`maxclients`, protected mode); if not, what it is
/// told before the connection closes. A refusal is counted in `rejected_connections`.
fn admit(node: &Node, addr: SocketAddr) -> Result<(), &'static str> {
    let refusal = if node.shared.clients.count() as u64 >= node.shared.config.maxclients() {
        "-ERR max number of clients reached\r\n"
    } else if protected_mode_denies(node, addr.ip()) {
        PROTECTED_MODE_DENIED
    } else {
        return Ok(());
    };
    node.shared
        .clients
        .rejected_connections
        .fetch_add(1, Ordering::Relaxed);
    Err(refusal)
}

/// Serves one admitted client until its connection ends.
async fn serve(listed: Listed, stream: ClientStream, stop: watch::Receiver<bool>) {
    connection::run(listed.node.clone(), stream, listed.info.clone(), stop).await;
    drop(listed);
}

/// What a client gets, before the connection closes, when protected mode refuses it
/// (redis-server 7.0.15's text, to the letter).
const PROTECTED_MODE_DENIED: &str = "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

/// Protected mode (`protected-mode yes`, off by default in Basalt, which serves cluster
/// clients from other hosts): with no password set, only loopback clients are served.
fn protected_mode_denies(node: &Node, peer: std::net::IpAddr) -> bool {
    let loopback = match peer {
        std::net::IpAddr::V4(v4) => v4.is_loopback(),
        std::net::IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    };
    !loopback && !node.shared.auth_required() && node.shared.config.get("protected-mode") == "yes"
}

/// A connection's entry in the client list, removed when the connection's task ends in
/// any way, a panic included (a leaked entry would count against `maxclients` for good).
struct Listed {
    node: Arc<Node>,
    info: Arc<ClientInfo>,
}

impl Listed {
    fn new(node: &Arc<Node>, addr: SocketAddr, laddr: SocketAddr) -> Listed {
        Listed {
            node: node.clone(),
            info: node.shared.clients.register(addr, laddr),
        }
    }
}

impl Drop for Listed {
    fn drop(&mut self) {
        self.node.shared.clients.unregister(self.info.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_connection_task_that_panics_leaves_the_client_list() {
        let node = crate::node::test_node();
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let listed = Listed::new(&node, addr, addr);
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
