//! TLS on the client port (`tls-port`), with rustls and the ring provider: the server's
//! certificate chain and key (`tls-cert-file`, `tls-key-file`), client certificates
//! checked against `tls-ca-cert-file` as `tls-auth-clients` says (`yes`: required,
//! `optional`: checked when one is sent, `no`: not asked for), and the protocol versions
//! `tls-protocols` names (`TLSv1.2 TLSv1.3` when empty).

use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

use super::{self as tls, TlsError};
use crate::config::Config;

/// The acceptor for `tls-port` connections, from the current settings (blocking file
/// reads).
pub fn acceptor(config: &Config) -> Result<TlsAcceptor, TlsError> {
    const BY: &str = "tls-port";
    let provider = tls::provider();
    let chain = tls::certificates(tls::path(config, "tls-cert-file", BY)?)?;
    let key = tls::private_key(tls::path(config, "tls-key-file", BY)?)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&tls::versions(config)?)?;
    let auth = config.get("tls-auth-clients").to_ascii_lowercase();
    let builder = if auth == "no" {
        builder.with_no_client_auth()
    } else {
        let roots = tls::roots(tls::path(config, "tls-ca-cert-file", BY)?)?;
        let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider);
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
