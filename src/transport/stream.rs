//! A peer connection: plain TCP, or TLS over it (`tls-cluster`). The handshake reads and
//! writes it whole; afterwards it splits into a reader and a writer — a plain socket into
//! its owned halves, with no lock between them (the replication hot path), a TLS stream
//! through `tokio::io::split`, whose halves share the session.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A TLS session over a peer socket, either side.
pub trait PeerIo: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> PeerIo for T {}

pub enum PeerStream {
    Plain(TcpStream),
    Tls(Box<dyn PeerIo>),
}

pub type PeerReader = Box<dyn AsyncRead + Send + Unpin>;
pub type PeerWriter = Box<dyn AsyncWrite + Send + Unpin>;

impl PeerStream {
    pub fn split(self) -> (PeerReader, PeerWriter) {
        match self {
            PeerStream::Plain(tcp) => {
                let (r, w) = tcp.into_split();
                (Box::new(r), Box::new(w))
            }
            PeerStream::Tls(tls) => {
                let (r, w) = tokio::io::split(tls);
                (Box::new(r), Box::new(w))
            }
        }
    }

    fn io(self: Pin<&mut Self>) -> Pin<&mut dyn PeerIo> {
        match self.get_mut() {
            PeerStream::Plain(tcp) => Pin::new(tcp),
            PeerStream::Tls(tls) => Pin::new(tls.as_mut()),
        }
    }
}

impl AsyncRead for PeerStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.io().poll_read(cx, buf)
    }
}

impl AsyncWrite for PeerStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.io().poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io().poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io().poll_shutdown(cx)
    }
}
