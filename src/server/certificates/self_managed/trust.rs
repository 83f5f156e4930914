//! Would the API server trust this serving certificate? The same check a TLS client makes:
//! the chain to one of the CAs of a caBundle, the validity period at a given time, the server
//! name the API server dials (`<service>.<namespace>.svc`) and the serverAuth usage, done by
//! rustls's WebPKI verifier. podgrace only ever serves a pair that passes it against the caBundle
//! its webhook configurations hold.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::RootCertStore;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

/// A bundle of CA certificates: the DER of each, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bundle(pub Vec<Vec<u8>>);

impl Bundle {
    /// Parses PEM data with any number of certificates; anything else in it is ignored (a
    /// caBundle is "PEM encoded CA bundle"): data without a certificate is an empty bundle.
    pub fn from_pem(pem_data: &[u8]) -> Bundle {
        Bundle(
            pem::parse_many(pem_data)
                .unwrap_or_default()
                .into_iter()
                .filter(|p| p.tag() == "CERTIFICATE")
                .map(|p| p.into_contents())
                .collect(),
        )
    }

    /// The PEM text, one certificate after another.
    pub fn to_pem(&self) -> String {
        let pems: Vec<pem::Pem> = self
            .0
            .iter()
            .map(|der| pem::Pem::new("CERTIFICATE", der.clone()))
            .collect();
        pem::encode_many_config(
            &pems,
            pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
        )
    }

    /// Whether every certificate of `other` is in this bundle.
    pub fn contains_all(&self, other: &Bundle) -> bool {
        other.0.iter().all(|c| self.0.contains(c))
    }

    /// The certificates still valid at `now` (an expired CA vouches for nothing: replicas that
    /// read the Secret at different times then still agree on the caBundle).
    pub fn unexpired(&self, now: SystemTime) -> Bundle {
        let valid = |der: &Vec<u8>| {
            x509_parser::parse_x509_certificate(der).is_ok_and(|(_, c)| {
                let secs = c.validity().not_after.timestamp();
                u64::try_from(secs)
                    .is_ok_and(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s) > now)
            })
        };
        Bundle(self.0.iter().filter(|d| valid(d)).cloned().collect())
    }

    /// Whether the bundle holds no certificate.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Whether a client trusting exactly `trusted` accepts `cert_pem` (leaf first, as served) for
/// `server_name` at `now`.
pub fn trusted(cert_pem: &str, trusted: &Bundle, server_name: &str, now: SystemTime) -> bool {
    trusted_chain(
        &Bundle::from_pem(cert_pem.as_bytes()).0,
        trusted,
        server_name,
        now,
    )
}

/// [`trusted`] for a chain of DER certificates, leaf first.
pub fn trusted_chain(
    chain: &[Vec<u8>],
    trusted: &Bundle,
    server_name: &str,
    now: SystemTime,
) -> bool {
    let mut roots = RootCertStore::empty();
    for der in &trusted.0 {
        // A CA that rustls cannot use is simply not a trust anchor.
        let _ = roots.add(CertificateDer::from(der.clone()));
    }
    if roots.is_empty() {
        return false;
    }
    let Ok(verifier) = WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        crate::server::tls::provider(),
    )
    .build() else {
        return false;
    };
    let Some((leaf, intermediates)) = chain.split_first() else {
        return false;
    };
    let intermediates: Vec<CertificateDer<'_>> = intermediates
        .iter()
        .map(|d| CertificateDer::from(d.as_slice()))
        .collect();
    let Ok(name) = ServerName::try_from(server_name.to_owned()) else {
        return false;
    };
    let since_epoch = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    verifier
        .verify_server_cert(
            &CertificateDer::from(leaf.as_slice()),
            &intermediates,
            &name,
            &[],
            UnixTime::since_unix_epoch(since_epoch),
        )
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::certificates;

    const NAME: &str = "podgrace.podgrace-system.svc";

    fn sans() -> Vec<String> {
        certificates::service_names("podgrace", "podgrace-system")
    }

    #[test]
    fn a_certificate_is_trusted_only_by_a_bundle_with_its_ca_for_the_service_name_while_valid() {
        let ca = certificates::generate_ca(Duration::from_secs(3600)).unwrap();
        let other = certificates::generate_ca(Duration::from_secs(3600)).unwrap();
        let leaf = certificates::issue_serving(&ca, &sans(), Duration::from_secs(600)).unwrap();
        let own = Bundle::from_pem(ca.cert_pem.as_bytes());
        let foreign = Bundle::from_pem(other.cert_pem.as_bytes());
        let both = Bundle::from_pem(format!("{}{}", other.cert_pem, ca.cert_pem).as_bytes());
        let now = SystemTime::now();
        assert!(trusted(&leaf.cert_pem, &own, NAME, now));
        assert!(trusted(&leaf.cert_pem, &both, NAME, now));
        assert!(!trusted(&leaf.cert_pem, &foreign, NAME, now));
        assert!(!trusted(&leaf.cert_pem, &Bundle::default(), NAME, now));
        assert!(!trusted(
            &leaf.cert_pem,
            &own,
            "other.podgrace-system.svc",
            now
        ));
        assert!(!trusted(
            &leaf.cert_pem,
            &own,
            NAME,
            now + Duration::from_secs(601)
        ));
    }

    #[test]
    fn expired_cas_are_not_published() {
        let short = certificates::generate_ca(Duration::from_secs(60)).unwrap();
        let long = certificates::generate_ca(Duration::from_secs(3600)).unwrap();
        let bundle = Bundle::from_pem(format!("{}{}", short.cert_pem, long.cert_pem).as_bytes());
        assert_eq!(bundle.unexpired(SystemTime::now()), bundle);
        let later = SystemTime::now() + Duration::from_secs(120);
        assert_eq!(
            bundle.unexpired(later),
            Bundle::from_pem(long.cert_pem.as_bytes())
        );
    }

    #[test]
    fn a_bundle_round_trips_through_pem_and_ignores_other_blocks() {
        let a = certificates::generate_ca(Duration::from_secs(60)).unwrap();
        let b = certificates::generate_ca(Duration::from_secs(60)).unwrap();
        let text = format!("{}{}{}", a.cert_pem, a.key_pem, b.cert_pem);
        let bundle = Bundle::from_pem(text.as_bytes());
        assert_eq!(bundle.0.len(), 2);
        assert_eq!(Bundle::from_pem(bundle.to_pem().as_bytes()), bundle);
        assert!(bundle.contains_all(&Bundle::from_pem(b.cert_pem.as_bytes())));
        assert!(!Bundle::from_pem(a.cert_pem.as_bytes()).contains_all(&bundle));
    }
}
