//! TLS, with rustls and the ring provider: the client port's acceptor (`client_port.rs`),
//! the cluster port's mutual TLS (`cluster.rs`), the material both read from the settings
//! (PEM certificate chains and keys, CA roots, the versions `tls-protocols` names), and
//! [`TlsState`], the endpoints in use, which CONFIG SET of a `tls-*` file or option
//! rebuilds: new connections use the new certificates, open ones keep theirs.

mod client_port;
mod cluster;

use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::RwLock;
use tokio_rustls::TlsAcceptor;

pub use cluster::ClusterTls;

use rustls::crypto::CryptoProvider;
use rustls::{RootCertStore, SupportedProtocolVersion};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{setting} is not set ({needed_by} needs it)")]
    Missing {
        setting: &'static str,
        needed_by: &'static str,
    },
    #[error("reading {path}: {source}")]
    Pem {
        path: PathBuf,
        source: rustls_pki_types::pem::Error,
    },
    #[error("{0} holds no certificate")]
    NoCertificate(PathBuf),
    #[error("tls-protocols: unknown protocol {0:?} (TLSv1.2 and TLSv1.3 are supported)")]
    Protocol(String),
    #[error("tls-auth-clients: {0:?} is not yes, no or optional")]
    AuthClients(String),
    #[error("certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    #[error(transparent)]
    Rustls(#[from] rustls::Error),
}

/// The crypto provider: ring. (The project builds on ring — no C toolchain for aws-lc;
/// rustls marks ring's provider deprecated because it offers no post-quantum key exchange.)
pub fn provider() -> Arc<CryptoProvider> {
    #[allow(deprecated)]
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The file a setting names; an error naming the setting and what needs it when empty.
pub fn path(
    config: &Config,
    setting: &'static str,
    needed_by: &'static str,
) -> Result<PathBuf, TlsError> {
    match config.get(setting) {
        p if p.is_empty() => Err(TlsError::Missing { setting, needed_by }),
        p => Ok(PathBuf::from(p)),
    }
}

/// The certificates of a PEM file (at least one).
pub fn certificates(file: PathBuf) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(&file)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|source| TlsError::Pem {
            path: file.clone(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(file));
    }
    Ok(certs)
}

/// The private key of a PEM file.
pub fn private_key(file: PathBuf) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(&file).map_err(|source| TlsError::Pem { path: file, source })
}

/// The CA certificates of a PEM file, as trust roots.
pub fn roots(file: PathBuf) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    for ca in certificates(file)? {
        roots.add(ca)?;
    }
    Ok(Arc::new(roots))
}

/// The versions `tls-protocols` names (TLSv1.2 and TLSv1.3 when empty).
pub fn versions(config: &Config) -> Result<Vec<&'static SupportedProtocolVersion>, TlsError> {
    let mut versions = Vec::new();
    for name in config.get("tls-protocols").split_whitespace() {
        versions.push(match name.to_ascii_lowercase().as_str() {
            "tlsv1.2" => &rustls::version::TLS12,
            "tlsv1.3" => &rustls::version::TLS13,
            _ => return Err(TlsError::Protocol(name.to_string())),
        });
    }
    if versions.is_empty() {
        versions = vec![&rustls::version::TLS12, &rustls::version::TLS13];
    }
    Ok(versions)
}

/// The TLS endpoints in use: the client port's acceptor when `tls-port` is set, the cluster
/// port's when `tls-cluster` is `yes` (both fixed at start-up; what they use is not).
#[derive(Default)]
pub struct TlsState {
    client_port: RwLock<Option<TlsAcceptor>>,
    cluster: RwLock<Option<ClusterTls>>,
}

impl TlsState {
    /// The acceptor for a new `tls-port` connection.
    pub fn client_acceptor(&self) -> Option<TlsAcceptor> {
        self.client_port.read().clone()
    }

    /// What secures a new cluster-port connection.
    pub fn cluster(&self) -> Option<ClusterTls> {
        self.cluster.read().clone()
    }

    /// Builds the endpoints the settings turn on, from the files they name (blocking file
    /// reads); on an error nothing changes.
    pub fn reload(&self, config: &Config) -> Result<(), TlsError> {
        let client_port = match config.get("tls-port").parse::<u16>() {
            Ok(port) if port != 0 => Some(client_port::acceptor(config)?),
            _ => None,
        };
        let cluster = ClusterTls::from_config(config)?;
        *self.client_port.write() = client_port;
        *self.cluster.write() = cluster;
        Ok(())
    }
}
