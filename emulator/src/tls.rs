//! The HTTPS listener's certificate: self-signed for `127.0.0.1`,
//! `localhost` and `::1`, made at build time, served with rustls on the
//! aws-lc-rs provider given explicitly (no process-wide default).

use std::fmt;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::ServerConfig;

/// A self-signed certificate and the TLS settings that serve it.
#[derive(Clone)]
pub(crate) struct SelfSigned {
    /// The certificate, PEM-encoded (no private key).
    pub(crate) pem: String,
    pub(crate) config: Arc<ServerConfig>,
}

impl fmt::Debug for SelfSigned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SelfSigned").finish_non_exhaustive()
    }
}

impl SelfSigned {
    /// A fresh certificate; `Err` says why the crypto or TLS set-up failed.
    pub(crate) fn generate() -> Result<Self, String> {
        let names = vec![
            "127.0.0.1".to_owned(),
            "localhost".to_owned(),
            "::1".to_owned(),
        ];
        let certified = rcgen::generate_simple_self_signed(names).map_err(|e| e.to_string())?;
        let pem = certified.cert.pem();
        let cert = CertificateDer::from(certified.cert.der().to_vec());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            certified.signing_key.serialize_der(),
        ));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .map_err(|e| e.to_string())?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            pem,
            config: Arc::new(config),
        })
    }
}
