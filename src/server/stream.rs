//! A client's byte stream: plain TCP, or TLS over TCP for connections to `tls-port`.

use std::io;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

pub enum ClientStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl ClientStream {
    /// Reads what has arrived (decrypted, for TLS) into `buf`; 0 at the end of the stream.
    /// Cancel-safe: nothing is lost when the future is dropped before it completes.
    pub async fn read_buf(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            ClientStream::Plain(s) => s.read_buf(buf).await,
            ClientStream::Tls(s) => s.read_buf(buf).await,
        }
    }

    /// Writes all of `data` (and, for TLS, the records it makes).
    pub async fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            ClientStream::Plain(s) => s.write_all(data).await,
            ClientStream::Tls(s) => {
                s.write_all(data).await?;
                s.flush().await
            }
        }
    }

    /// Writes what the socket takes now, without waiting. A TLS stream takes nothing this
    /// way (`WouldBlock`): its records must be flushed, which `write_all` does.
    pub fn try_write(&self, data: &[u8]) -> io::Result<usize> {
        match self {
            ClientStream::Plain(s) => s.try_write(data),
            ClientStream::Tls(_) => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}
