//! TLS on the client port (`tls-port`), with rustls and the ring provider: the server's
//! certificate chain and key (`tls-cert-file`, `tls-key-file`), client certificates
//! checked against `tls-ca-cert-file` as `tls-auth-clients` says (`yes`: required,
//! `optional`: checked when one is sent, `no`: not asked for), and the protocol versions
//! `tls-protocols` names (`TLSv1.2 TLSv1.3` when empty).

use std::path::PathBuf;
use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{setting} is not set (tls-port needs it)")]
    Missing { setting: &'static str },
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
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    #[error(transparent)]
    Rustls(#[from] rustls::Error),
}

fn path(config: &Config, setting: &'static str) -> Result<PathBuf, TlsError> {
    match config.get(setting) {
        p if p.is_empty() => Err(TlsError::Missing { setting }),
        p => Ok(PathBuf::from(p)),
    }
}

fn certificates(file: PathBuf) -> Result<Vec<CertificateDer<'static>>, TlsError> {
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

/// The acceptor for `tls-port` connections, from the current settings.
pub fn acceptor(config: &Config) -> Result<TlsAcceptor, TlsError> {
    // The project builds on ring (no C toolchain for aws-lc); rustls marks ring's provider
    // deprecated because it offers no post-quantum key exchange.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certificates(path(config, "tls-cert-file")?)?;
    let key_file = path(config, "tls-key-file")?;
    let key = PrivateKeyDer::from_pem_file(&key_file).map_err(|source| TlsError::Pem {
        path: key_file,
        source,
    })?;
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
    let builder =
        ServerConfig::builder_with_provider(provider.clone()).with_protocol_versions(&versions)?;
    let auth = config.get("tls-auth-clients").to_ascii_lowercase();
    let builder = if auth == "no" {
        builder.with_no_client_auth()
    } else {
        let mut roots = RootCertStore::empty();
        for ca in certificates(path(config, "tls-ca-cert-file")?)? {
            roots.add(ca)?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
        let verifier = match auth.as_str() {
            "yes" => verifier.build()?,
            "optional" => verifier.allow_unauthenticated().build()?,
            other => return Err(TlsError::AuthClients(other.to_string())),
        };
        builder.with_client_cert_verifier(verifier)
    };
    let server = builder.with_single_cert(chain, key)?;
    Ok(TlsAcceptor::from(Arc::new(server)))
}
