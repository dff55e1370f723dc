//! The cluster-port listener: cluster-proto connections from peers. Each connection starts
//! with an exchange of `Hello`s; its requests are then handed to the service concurrently
//! (at most [`IN_FLIGHT_MAX`] at a time per connection: past that the connection is not
//! read) and answered in whatever order they finish, matched by id.

use std::future::Future;
use std::sync::Arc;

use cluster_proto::{request, response, Hello, Message, Request, Response};
use std::net::SocketAddr;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};

use super::frame::{read_frame, write_message};
use super::handshake::{self, Credentials, HandshakeError, RefusalLog};
use super::links::Inbound;
use super::Traffic;

/// Requests one peer connection may have being served at once.
const IN_FLIGHT_MAX: usize = 4096;

/// What answers the requests arriving on the cluster port.
pub trait Service: Send + Sync + 'static {
    /// The `Hello` this node answers a peer's with.
    fn hello(&self) -> &Hello;
    /// Where the messages this listener receives and sends are counted.
    fn traffic(&self) -> &Traffic;
    /// Where this listener lists the connections it holds.
    fn inbound(&self) -> &Arc<Inbound>;
    /// What peers must prove themselves with, and this node proves itself with.
    fn credentials(&self) -> &Credentials;
    /// Where refused peers are logged.
    fn refusals(&self) -> &RefusalLog;
    /// Serves one request (`None`: a body this node's protocol version does not know).
    fn serve(
        self: Arc<Self>,
        body: Option<request::Body>,
    ) -> impl Future<Output = response::Body> + Send;
}

/// Accepts peers until `stop` turns true.
pub async fn serve<S: Service>(
    node: Arc<S>,
    listener: TcpListener,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, addr)) => {
                    let node = node.clone();
                    let stop = stop.clone();
                    tokio::spawn(async move {
                        if let Err(e) = connection(node, socket, addr, stop).await {
                            tracing::debug!(peer = %addr, error = %e, "peer connection ended");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "peer accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            },
            _ = stop.changed() => return,
        }
    }
}

async fn connection<S: Service>(
    node: Arc<S>,
    tcp: TcpStream,
    addr: SocketAddr,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    tcp.set_nodelay(true)?;
    let mut socket = match node.credentials().secure_accepted(tcp).await {
        Ok(socket) => socket,
        Err(e) => {
            node.refusals().refused(addr.ip(), &HandshakeError::Io(e));
            return Ok(());
        }
    };
    let (hello, mut buf) =
        match handshake::accept(&mut socket, node.hello(), node.credentials()).await {
            Ok(accepted) => accepted,
            Err(e) => {
                node.refusals().refused(addr.ip(), &e);
                return Ok(());
            }
        };
    tracing::debug!(peer = hello.node_id, addr = %hello.cluster_addr, "peer connected");
    let _listed = node.inbound().open(hello.node_id);
    let (mut reader, mut writer) = socket.split();
    let (tx, mut rx) = mpsc::channel::<Response>(IN_FLIGHT_MAX);
    let in_flight = Arc::new(Semaphore::new(IN_FLIGHT_MAX));
    let counted = node.clone();
    let writing = async move {
        while let Some(resp) = rx.recv().await {
            write_message(&mut writer, &resp).await?;
            counted.traffic().count_sent(1);
        }
        Ok::<(), std::io::Error>(())
    };
    let reading = async move {
        loop {
            let raw = read_frame(&mut reader, &mut buf).await?;
            node.traffic().count_received();
            let req = Request::decode(raw)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
            let Ok(permit) = in_flight.clone().acquire_owned().await else {
                break;
            };
            let node = node.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let body = node.serve(req.body).await;
                let _ = tx
                    .send(Response {
                        id: req.id,
                        body: Some(body),
                    })
                    .await;
                drop(permit);
            });
        }
        #[allow(unreachable_code)]
        Ok::<(), std::io::Error>(())
    };
    tokio::select! {
        r = reading => r,
        w = writing => w,
        _ = stop.changed() => Ok(()),
    }
}
