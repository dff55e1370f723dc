//! The handshake that opens every cluster-port connection, both sides of it.
//!
//! The dialling side sends a `Hello` with a fresh nonce; the accepting side answers with its
//! own `Hello` and nonce and a proof over both; the dialling side checks that proof and sends
//! its own; the accepting side checks it and answers `Admitted`. A proof is an HMAC-SHA256,
//! keyed by the cluster secret, over a label naming the side, both nonces (the prover's
//! peer's first) and the prover's node id: it shows the prover holds the secret without
//! revealing it, and a proof recorded from one connection is worth nothing on another.
//! Without a secret on either side, proofs are empty and every peer is admitted (as Redis
//! Cluster's bus admits every peer): a node with a secret admits only nodes with the same.
//!
//! Until the handshake ends, frames are limited to [`HANDSHAKE_FRAME_BYTES_MAX`] and the whole
//! exchange to [`HANDSHAKE_TIMEOUT`]; each side refuses a peer whose protocol version is
//! older than `PROTOCOL_VERSION_MIN`.

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use cluster_proto::{Admitted, Hello, Message, Proof, PROTOCOL_VERSION, PROTOCOL_VERSION_MIN};
use parking_lot::Mutex;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::frame::{read_frame_within, write_message};
use super::PeerStream;
use crate::tls::TlsState;

/// How long a handshake may take, each side.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest frame accepted before the handshake ends (a `Hello` is well under it).
pub const HANDSHAKE_FRAME_BYTES_MAX: usize = 4096;
/// Bytes of each side's nonce.
const NONCE_BYTES: usize = 16;
/// Addresses whose refusals are remembered so each is logged once (then at debug level).
const REFUSED_LOGGED_MAX: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("the handshake took longer than {HANDSHAKE_TIMEOUT:?}")]
    TimedOut,
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("malformed handshake message: {0}")]
    Malformed(#[from] cluster_proto::DecodeError),
    #[error(
        "the peer speaks protocol version {0}; this node speaks {PROTOCOL_VERSION} and \
         accepts {PROTOCOL_VERSION_MIN} or newer"
    )]
    Version(u32),
    #[error("the peer's nonce has {0} bytes, not {NONCE_BYTES}")]
    Nonce(usize),
    #[error("the peer did not prove it holds this node's cluster-secret")]
    BadProof,
    #[error("refused by the peer: {0}")]
    Refused(String),
}

/// What this node proves itself with: the cluster secret, if one is set, and mutual TLS
/// when `tls-cluster` is on (`transport::tls`).
#[derive(Clone)]
pub struct Credentials {
    key: Option<hmac::Key>,
    tls: Option<std::sync::Arc<TlsState>>,
}

impl Credentials {
    /// From the `cluster-secret` setting (empty: none).
    pub fn new(secret: &str) -> Credentials {
        Credentials {
            key: (!secret.is_empty()).then(|| hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes())),
            tls: None,
        }
    }

    /// Connections run over mutual TLS when the state has the cluster port's.
    pub fn with_tls(mut self, tls: std::sync::Arc<TlsState>) -> Credentials {
        self.tls = Some(tls);
        self
    }

    /// A dialled connection to `addr`, secured when TLS is on (within the handshake's time).
    pub async fn secure_dialled(&self, addr: &str, tcp: TcpStream) -> std::io::Result<PeerStream> {
        match self.tls.as_ref().and_then(|t| t.cluster()) {
            None => Ok(PeerStream::Plain(tcp)),
            Some(tls) => within_time(tls.connect(addr, tcp)).await,
        }
    }

    /// An accepted connection, secured when TLS is on (within the handshake's time).
    pub async fn secure_accepted(&self, tcp: TcpStream) -> std::io::Result<PeerStream> {
        match self.tls.as_ref().and_then(|t| t.cluster()) {
            None => Ok(PeerStream::Plain(tcp)),
            Some(tls) => within_time(tls.accept(tcp)).await,
        }
    }

    /// The dialling side's proof, for the acceptor's `Hello` `peer`, after sending `nonce`
    /// as node `node_id`.
    pub fn dialler_proof(&self, peer: &Hello, nonce: &[u8], node_id: u64) -> Bytes {
        self.proof(DIALLER, &peer.nonce, nonce, node_id)
    }

    fn proof(&self, label: &[u8], theirs: &[u8], ours: &[u8], prover: u64) -> Bytes {
        let Some(key) = &self.key else {
            return Bytes::new();
        };
        let tag = hmac::sign(key, &proof_input(label, theirs, ours, prover));
        Bytes::copy_from_slice(tag.as_ref())
    }

    fn verify(&self, label: &[u8], theirs: &[u8], ours: &[u8], prover: u64, proof: &[u8]) -> bool {
        match &self.key {
            None => proof.is_empty(),
            Some(key) => {
                hmac::verify(key, &proof_input(label, theirs, ours, prover), proof).is_ok()
            }
        }
    }
}

/// The text a proof covers: `label`, the nonce the prover was sent, its own, its node id.
fn proof_input(label: &[u8], theirs: &[u8], ours: &[u8], prover: u64) -> Vec<u8> {
    [label, theirs, ours, &prover.to_le_bytes()].concat()
}

const DIALLER: &[u8] = b"basalt-cluster-dialler\0";
const ACCEPTOR: &[u8] = b"basalt-cluster-acceptor\0";

fn nonce() -> Bytes {
    let mut bytes = [0u8; NONCE_BYTES];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system's random source");
    Bytes::copy_from_slice(&bytes)
}

fn check_peer(hello: &Hello) -> Result<(), HandshakeError> {
    if hello.protocol_version < PROTOCOL_VERSION_MIN {
        return Err(HandshakeError::Version(hello.protocol_version));
    }
    if hello.nonce.len() != NONCE_BYTES {
        return Err(HandshakeError::Nonce(hello.nonce.len()));
    }
    Ok(())
}

async fn read<M: Message + Default>(
    stream: &mut (impl AsyncRead + Unpin),
    buf: &mut BytesMut,
) -> Result<M, HandshakeError> {
    let raw = read_frame_within(stream, buf, HANDSHAKE_FRAME_BYTES_MAX).await?;
    Ok(M::decode(raw)?)
}

/// This node's `Hello` for one connection.
fn with_nonce(me: &Hello, nonce: &Bytes, proof: Bytes) -> Hello {
    Hello {
        nonce: nonce.clone(),
        proof,
        ..me.clone()
    }
}

async fn within_time<T>(
    work: impl std::future::Future<Output = std::io::Result<T>>,
) -> std::io::Result<T> {
    tokio::time::timeout(HANDSHAKE_TIMEOUT, work)
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
}

async fn within_deadline<T>(
    exchange: impl std::future::Future<Output = Result<T, HandshakeError>>,
) -> Result<T, HandshakeError> {
    tokio::time::timeout(HANDSHAKE_TIMEOUT, exchange)
        .await
        .map_err(|_| HandshakeError::TimedOut)?
}

/// The dialling side: returns the peer's `Hello` and what was read past the handshake.
pub async fn dial<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    me: &Hello,
    credentials: &Credentials,
) -> Result<(Hello, BytesMut), HandshakeError> {
    within_deadline(async {
        let mut buf = BytesMut::with_capacity(HANDSHAKE_FRAME_BYTES_MAX);
        let ours = nonce();
        write_message(stream, &with_nonce(me, &ours, Bytes::new())).await?;
        let peer: Hello = read(stream, &mut buf).await?;
        check_peer(&peer)?;
        if !credentials.verify(ACCEPTOR, &ours, &peer.nonce, peer.node_id, &peer.proof) {
            return Err(HandshakeError::BadProof);
        }
        let proof = credentials.dialler_proof(&peer, &ours, me.node_id);
        write_message(stream, &Proof { proof }).await?;
        let admitted: Admitted = read(stream, &mut buf).await?;
        if !admitted.refusal.is_empty() {
            return Err(HandshakeError::Refused(admitted.refusal));
        }
        Ok((peer, buf))
    })
    .await
}

/// The accepting side: returns the peer's `Hello` and what was read past the handshake. A
/// peer that fails is told why (when it got as far as sending its proof).
pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    me: &Hello,
    credentials: &Credentials,
) -> Result<(Hello, BytesMut), HandshakeError> {
    within_deadline(async {
        let mut buf = BytesMut::with_capacity(HANDSHAKE_FRAME_BYTES_MAX);
        let peer: Hello = read(stream, &mut buf).await?;
        check_peer(&peer)?;
        let ours = nonce();
        let proof = credentials.proof(ACCEPTOR, &peer.nonce, &ours, me.node_id);
        write_message(stream, &with_nonce(me, &ours, proof)).await?;
        let proof: Proof = read(stream, &mut buf).await?;
        if !credentials.verify(DIALLER, &ours, &peer.nonce, peer.node_id, &proof.proof) {
            let refusal = "authentication failed (cluster-secret)".to_string();
            write_message(stream, &Admitted { refusal }).await?;
            return Err(HandshakeError::BadProof);
        }
        write_message(stream, &Admitted::default()).await?;
        Ok((peer, buf))
    })
    .await
}

/// Logs each refused address once at warning level, later refusals at debug level.
#[derive(Default)]
pub struct RefusalLog {
    logged: Mutex<HashSet<IpAddr>>,
}

impl RefusalLog {
    pub fn refused(&self, addr: IpAddr, error: &HandshakeError) {
        let first = {
            let mut logged = self.logged.lock();
            if logged.len() >= REFUSED_LOGGED_MAX {
                logged.clear();
            }
            logged.insert(addr)
        };
        if first {
            tracing::warn!(peer = %addr, %error, "cluster-port connection refused");
        } else {
            tracing::debug!(peer = %addr, %error, "cluster-port connection refused");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(node_id: u64) -> Hello {
        Hello {
            protocol_version: PROTOCOL_VERSION,
            node_id,
            cluster_addr: format!("127.0.0.1:{node_id}"),
            nonce: Bytes::new(),
            proof: Bytes::new(),
        }
    }

    /// Runs both sides over an in-memory pipe; (dialler's result, acceptor's result).
    async fn handshake(
        dialler: &str,
        acceptor: &str,
    ) -> (
        Result<(Hello, BytesMut), HandshakeError>,
        Result<(Hello, BytesMut), HandshakeError>,
    ) {
        let (mut a, mut b) = tokio::io::duplex(64 * 1024);
        let (d, c) = (Credentials::new(dialler), Credentials::new(acceptor));
        let (one, two) = (hello(1), hello(2));
        // A side that fails closes its end, as a connection's task would.
        let dialler = async move {
            let result = dial(&mut a, &one, &d).await;
            drop(a);
            result
        };
        let acceptor = async move {
            let result = accept(&mut b, &two, &c).await;
            drop(b);
            result
        };
        tokio::join!(dialler, acceptor)
    }

    #[tokio::test]
    async fn the_same_secret_or_none_on_both_sides_is_admitted() {
        for secret in ["", "s3cret"] {
            let (dialled, accepted) = handshake(secret, secret).await;
            assert_eq!(dialled.unwrap().0.node_id, 2);
            assert_eq!(accepted.unwrap().0.node_id, 1);
        }
    }

    #[tokio::test]
    async fn a_different_or_missing_secret_is_refused_on_both_sides() {
        // The acceptor's proof fails at the dialler, which then stops.
        for (dialler, acceptor) in [("a", "b"), ("a", ""), ("", "b")] {
            let (dialled, accepted) = handshake(dialler, acceptor).await;
            assert!(
                matches!(dialled, Err(HandshakeError::BadProof)),
                "{dialler}/{acceptor}: {:?}",
                dialled.err()
            );
            assert!(accepted.is_err(), "{dialler}/{acceptor}");
        }
    }

    #[tokio::test]
    async fn a_dialler_without_the_secret_is_told_it_was_refused() {
        // A dialler that ignores the acceptor's proof still cannot prove itself.
        let (mut a, mut b) = tokio::io::duplex(64 * 1024);
        let acceptor =
            tokio::spawn(
                async move { accept(&mut b, &hello(2), &Credentials::new("secret")).await },
            );
        let mut buf = BytesMut::new();
        let mine = Hello {
            nonce: nonce(),
            ..hello(1)
        };
        write_message(&mut a, &mine).await.unwrap();
        let _theirs: Hello = read(&mut a, &mut buf).await.unwrap();
        let forged = Proof {
            proof: Bytes::from_static(&[0u8; 32]),
        };
        write_message(&mut a, &forged).await.unwrap();
        let admitted: Admitted = read(&mut a, &mut buf).await.unwrap();
        assert!(admitted.refusal.contains("authentication failed"));
        assert!(matches!(
            acceptor.await.unwrap(),
            Err(HandshakeError::BadProof)
        ));
    }

    #[tokio::test]
    async fn old_versions_bad_nonces_and_big_frames_are_refused() {
        let old = Hello {
            protocol_version: 1,
            nonce: nonce(),
            ..hello(1)
        };
        let without_nonce = hello(1);
        for (sent, want) in [(old, "Version(1)"), (without_nonce, "Nonce(0)")] {
            let (mut a, mut b) = tokio::io::duplex(64 * 1024);
            write_message(&mut a, &sent).await.unwrap();
            let err = accept(&mut b, &hello(2), &Credentials::new(""))
                .await
                .unwrap_err();
            assert_eq!(format!("{err:?}"), want);
        }
        // A header claiming more than the handshake's limit is refused from the header.
        let (mut a, mut b) = tokio::io::duplex(64 * 1024);
        use tokio::io::AsyncWriteExt;
        a.write_all(&[0, 0x10, 0, 0, 0, 0, 0, 0]).await.unwrap();
        let err = accept(&mut b, &hello(2), &Credentials::new(""))
            .await
            .unwrap_err();
        assert!(matches!(err, HandshakeError::Io(_)), "{err:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_peer_times_out() {
        let (_a, mut b) = tokio::io::duplex(64 * 1024);
        let err = accept(&mut b, &hello(2), &Credentials::new(""))
            .await
            .unwrap_err();
        assert!(matches!(err, HandshakeError::TimedOut), "{err:?}");
    }
}
