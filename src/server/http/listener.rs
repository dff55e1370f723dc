//! The HTTP port's listener: at most `maxclients` HTTP connections open at once, each
//! counted from its accept until it closes. A connection past the limit is closed as soon
//! as it is accepted (counted in `rejected_connections`, as a refused RESP client is), so
//! idle keep-alive connections cannot take every descriptor the process has.
//!
//! The HTTP port's budget is its own: RESP clients keep all of `maxclients`, and the
//! process's open-files limit is raised for both (`main.rs`).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::node::Node;

/// A TCP listener that admits at most `maxclients` connections at a time.
pub struct Limited {
    inner: TcpListener,
    node: Arc<Node>,
    open: Arc<AtomicUsize>,
}

impl Limited {
    pub fn new(inner: TcpListener, node: Arc<Node>) -> Limited {
        Limited {
            inner,
            node,
            open: Arc::default(),
        }
    }
}

impl Listener for Limited {
    type Io = Counted;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Counted, SocketAddr) {
        loop {
            let (stream, addr) = match self.inner.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors, say: wait for some to close rather than spin.
                    tracing::debug!(error = %e, "HTTP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let limit = self.node.shared.config.maxclients();
            if self.open.load(Ordering::Acquire) as u64 >= limit {
                self.node
                    .shared
                    .clients
                    .rejected_connections
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!(client = %addr, "HTTP connection refused: maxclients reached");
                continue;
            }
            self.open.fetch_add(1, Ordering::AcqRel);
            let counted = Counted {
                stream,
                open: self.open.clone(),
            };
            return (counted, addr);
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// An accepted connection, counted until it is dropped.
pub struct Counted {
    stream: TcpStream,
    open: Arc<AtomicUsize>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// The client's address, as handlers take it (`ConnectInfo<PeerAddr>`).
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

impl Connected<IncomingStream<'_, Limited>> for PeerAddr {
    fn connect_info(stream: IncomingStream<'_, Limited>) -> Self {
        PeerAddr(*stream.remote_addr())
    }
}
