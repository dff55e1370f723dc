//! Mutual TLS on the cluster port (`tls-cluster yes`): every peer connection is TLS, each
//! side presents a certificate (`tls-cert-file` and `tls-key-file`; a dialling node uses
//! `tls-client-cert-file` and `tls-client-key-file` when set) and checks the other's
//! against `tls-ca-cert-file`. A node without a certificate of that CA cannot join, dial
//! or be dialled. As on Redis's cluster bus, the chain is what is checked, not the name in
//! the certificate (nodes are dialled by the addresses they announce).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, ServerConfig, SignatureScheme,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::{self as tls, TlsError};
use crate::config::Config;
use crate::transport::PeerStream;

/// Both ends of the cluster port's TLS.
#[derive(Clone)]
pub struct ClusterTls {
    acceptor: TlsAcceptor,
    connector: TlsConnector,
}

impl std::fmt::Debug for ClusterTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterTls")
    }
}

impl ClusterTls {
    /// From the settings when `tls-cluster` is `yes` (blocking file reads, at start-up).
    pub fn from_config(config: &Config) -> Result<Option<ClusterTls>, TlsError> {
        if config.get("tls-cluster") != "yes" {
            return Ok(None);
        }
        const BY: &str = "tls-cluster";
        let provider = tls::provider();
        let versions = tls::versions(config)?;
        let roots = tls::roots(tls::path(config, "tls-ca-cert-file", BY)?)?;
        let chain = tls::certificates(tls::path(config, "tls-cert-file", BY)?)?;
        let key = tls::private_key(tls::path(config, "tls-key-file", BY)?)?;
        let (client_chain, client_key) = match config.get("tls-client-cert-file").as_str() {
            "" => (chain.clone(), key.clone_key()),
            _ => (
                tls::certificates(tls::path(config, "tls-client-cert-file", BY)?)?,
                tls::private_key(tls::path(config, "tls-client-key-file", BY)?)?,
            ),
        };
        let client_verifier =
            WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone()).build()?;
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)?
            .with_client_cert_verifier(client_verifier)
            .with_single_cert(chain, key)?;
        let chain_only = ChainOnly(
            WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| TlsError::Rustls(rustls::Error::General(e.to_string())))?,
        );
        let client = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&versions)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(chain_only))
            .with_client_auth_cert(client_chain, client_key)?;
        Ok(Some(ClusterTls {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(Arc::new(client)),
        }))
    }

    /// TLS over a dialled connection to `addr` (`host:port`).
    pub async fn connect(&self, addr: &str, tcp: TcpStream) -> std::io::Result<PeerStream> {
        let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        Ok(PeerStream::Tls(Box::new(
            self.connector.connect(name, tcp).await?,
        )))
    }

    /// TLS over an accepted connection.
    pub async fn accept(&self, tcp: TcpStream) -> std::io::Result<PeerStream> {
        Ok(PeerStream::Tls(Box::new(self.acceptor.accept(tcp).await?)))
    }
}

/// Checks a peer's certificate chain against the CA and nothing of its name.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
