//! TLS for the webhook: rustls only, TLS 1.2 and 1.3, HTTP/1.1 over ALPN, and a certificate that
//! can be replaced while serving. The resolver hands each new handshake the current pair, so a
//! rotation reaches the next connection without touching established ones; a bad new pair is
//! refused and the old one stays.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::observability::metrics::{Metrics, ReloadResult};
use crate::store::dir_watch::{DirWatch, watch_dir};

/// Why a certificate pair cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// No certificate in the PEM data.
    #[error("no certificate found in {0}")]
    NoCertificate(String),
    /// The PEM data is not a certificate chain.
    #[error("invalid certificate PEM in {what}: {why}")]
    BadCertificate {
        /// Where.
        what: String,
        /// Cause.
        why: String,
    },
    /// The key is missing, unsupported, or does not match the certificate.
    #[error("unusable private key in {what}: {why}")]
    BadKey {
        /// Where.
        what: String,
        /// Cause.
        why: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// The crypto provider podgrace uses everywhere (ring: no C toolchain beyond cc needed).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A certificate and key, checked to belong together, with the leaf's expiry.
#[derive(Debug, Clone)]
pub struct Pair {
    /// The pair for rustls.
    pub key: Arc<CertifiedKey>,
    /// `notAfter` of the leaf, Unix seconds.
    pub not_after: i64,
}

impl Pair {
    /// Parses PEM data. `what` names the source in errors.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8], what: &str) -> Result<Self, TlsError> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<_, _>>()
            .map_err(|e| TlsError::BadCertificate {
                what: what.to_owned(),
                why: e.to_string(),
            })?;
        let leaf = certs
            .first()
            .ok_or_else(|| TlsError::NoCertificate(what.to_owned()))?;
        let not_after = x509_parser::parse_x509_certificate(leaf)
            .map_err(|e| TlsError::BadCertificate {
                what: what.to_owned(),
                why: e.to_string(),
            })?
            .1
            .validity()
            .not_after
            .timestamp();
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::BadKey {
            what: what.to_owned(),
            why: e.to_string(),
        })?;
        let certified =
            CertifiedKey::from_der(certs, key, &provider()).map_err(|e| TlsError::BadKey {
                what: what.to_owned(),
                why: e.to_string(),
            })?;
        Ok(Pair {
            key: Arc::new(certified),
            not_after,
        })
    }

    /// Reads a certificate chain file and a key file.
    pub fn from_files(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|source| TlsError::Read {
                path: p.to_owned(),
                source,
            })
        };
        Pair::from_pem(&read(cert)?, &read(key)?, &cert.display().to_string())
    }
}

/// The current serving pair, swappable at any time.
#[derive(Debug)]
pub struct ReloadingCert {
    current: ArcSwap<Pair>,
}

impl ReloadingCert {
    /// Starts with `pair`.
    pub fn new(pair: Pair) -> Arc<Self> {
        Arc::new(ReloadingCert {
            current: ArcSwap::from_pointee(pair),
        })
    }

    /// The pair new handshakes get.
    pub fn current(&self) -> Arc<Pair> {
        self.current.load_full()
    }

    /// Installs `pair` if it differs from the current one; returns whether it did.
    pub fn replace(&self, pair: Pair) -> bool {
        if self.current.load().key.cert == pair.key.cert {
            return false;
        }
        self.current.store(Arc::new(pair));
        true
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load().key.clone())
    }
}

/// The rustls server configuration: TLS 1.3 and 1.2, HTTP/1.1.
pub fn server_config(cert: Arc<ReloadingCert>) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(cert);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Reloads `cert` from files when they change (kubelet Secret swaps included), keeping the old
/// pair when the new files do not form a valid pair. Returns the watch handle.
pub fn reload_on_change(
    cert: Arc<ReloadingCert>,
    cert_file: PathBuf,
    key_file: PathBuf,
    metrics: Arc<Metrics>,
    poll: Duration,
) -> DirWatch {
    let dir = cert_file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_owned();
    metrics.cert_expiry.set(cert.current().not_after);
    watch_dir(&dir, poll, move || {
        match Pair::from_files(&cert_file, &key_file) {
            Ok(pair) => {
                let not_after = pair.not_after;
                if cert.replace(pair) {
                    metrics.cert_reload(ReloadResult::Success);
                    metrics.cert_expiry.set(not_after);
                    tracing::info!(cert = %cert_file.display(), not_after, "serving certificate reloaded");
                }
            }
            Err(e) => {
                // Mid-rotation the files can briefly disagree; the next event or poll retries.
                metrics.cert_reload(ReloadResult::Failure);
                tracing::error!(error = %e, "new serving certificate refused; keeping the current one");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::certificates;

    #[test]
    fn a_key_from_another_pair_is_refused() {
        let a = certificates::generate(&["a.example".into()], 1).unwrap();
        let b = certificates::generate(&["b.example".into()], 1).unwrap();
        assert!(Pair::from_pem(a.cert_pem.as_bytes(), a.key_pem.as_bytes(), "a").is_ok());
        let err = Pair::from_pem(a.cert_pem.as_bytes(), b.key_pem.as_bytes(), "a+b").unwrap_err();
        assert!(
            err.to_string().contains("unusable private key in a+b"),
            "{err}"
        );
        let err = Pair::from_pem(b"", a.key_pem.as_bytes(), "empty").unwrap_err();
        assert!(
            err.to_string().contains("no certificate found in empty"),
            "{err}"
        );
        let err = Pair::from_pem(a.cert_pem.as_bytes(), b"garbage", "k").unwrap_err();
        assert!(err.to_string().contains("unusable private key"), "{err}");
    }

    #[test]
    fn replacing_with_the_same_pair_is_not_a_reload() {
        let a = certificates::generate(&["a.example".into()], 1).unwrap();
        let pair = Pair::from_pem(a.cert_pem.as_bytes(), a.key_pem.as_bytes(), "a").unwrap();
        let store = ReloadingCert::new(pair.clone());
        assert!(!store.replace(pair));
        let b = certificates::generate(&["b.example".into()], 1).unwrap();
        assert!(
            store
                .replace(Pair::from_pem(b.cert_pem.as_bytes(), b.key_pem.as_bytes(), "b").unwrap())
        );
    }
}
