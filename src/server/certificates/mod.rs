//! Certificates for the webhook's serving endpoint, generated with rcgen: a private CA and a
//! serving certificate signed by it, for `podgrace certs` (files for the chart's existing-Secret
//! mode), for `serve --standalone` (in memory, CA written out for `curl --cacert`), and for the
//! self-managed mode ([`self_managed`]), which keeps a CA and serving pair in a Secret.

pub(crate) mod self_managed;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

/// A CA and a serving certificate, PEM-encoded.
#[derive(Clone)]
pub struct Generated {
    /// The CA certificate (the webhook configuration's `caBundle`).
    pub ca_cert_pem: String,
    /// The CA key (keep it to sign renewals; never mount it into the webhook).
    pub ca_key_pem: String,
    /// The serving certificate.
    pub cert_pem: String,
    /// The serving certificate's key.
    pub key_pem: String,
}

impl std::fmt::Debug for Generated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generated").finish_non_exhaustive()
    }
}

/// Certificate generation failures.
#[derive(Debug, thiserror::Error)]
#[error("certificate generation failed: {0}")]
pub struct CertError(#[from] rcgen::Error);

/// DNS names a Service is reached by: `name`, `name.ns`, `name.ns.svc`, `name.ns.svc.cluster.local`.
pub fn service_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        service.to_owned(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ]
}

/// Generates a CA valid for `days` and a serving certificate for `sans` (DNS names or IP
/// addresses), valid for the same period. The first SAN is also the subject CN.
pub fn generate(sans: &[String], days: u32) -> Result<Generated, CertError> {
    let validity = std::time::Duration::from_secs(u64::from(days) * 86_400);
    let ca = generate_ca(validity)?;
    let serving = issue_serving(&ca, sans, validity)?;
    Ok(Generated {
        ca_cert_pem: ca.cert_pem,
        ca_key_pem: ca.key_pem,
        cert_pem: serving.cert_pem,
        key_pem: serving.key_pem,
    })
}

/// A certificate and its key, PEM-encoded.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyedCert {
    /// The certificate.
    pub cert_pem: String,
    /// Its private key.
    pub key_pem: String,
}

impl std::fmt::Debug for KeyedCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedCert").finish_non_exhaustive()
    }
}

/// The backdating of `notBefore`: clocks of the API server and of podgrace may disagree a little.
const BACKDATE: Duration = Duration::hours(1);

/// Generates a self-signed CA valid for `validity` from now (path length 0: it signs serving
/// certificates only).
pub fn generate_ca(validity: std::time::Duration) -> Result<KeyedCert, CertError> {
    let now = OffsetDateTime::now_utc();
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    // The creation time in the name tells two CAs apart (`openssl x509 -subject`, a CA roll).
    ca.distinguished_name = dn(&format!("podgrace webhook CA {}", now.unix_timestamp()));
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.not_before = now - BACKDATE;
    ca.not_after = now + validity;
    let ca_cert = ca.self_signed(&ca_key)?;
    Ok(KeyedCert {
        cert_pem: ca_cert.pem(),
        key_pem: ca_key.serialize_pem(),
    })
}

/// Issues a serving certificate for `sans` signed by `ca`, valid for `validity` from now but
/// never beyond the CA's own `notAfter` (a certificate outliving its issuer is not trusted).
pub fn issue_serving(
    ca: &KeyedCert,
    sans: &[String],
    validity: std::time::Duration,
) -> Result<KeyedCert, CertError> {
    let now = OffsetDateTime::now_utc();
    let ca_key = KeyPair::from_pem(&ca.key_pem)?;
    let ca_not_after = ca_not_after(&ca.cert_pem)?;
    let issuer = Issuer::from_ca_cert_pem(&ca.cert_pem, ca_key)?;
    let key = KeyPair::generate()?;
    let mut leaf = CertificateParams::new(sans.to_vec())?;
    leaf.distinguished_name = dn(sans.first().map_or("podgrace", String::as_str));
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.not_before = now - BACKDATE;
    leaf.not_after = (now + validity).min(ca_not_after);
    let cert = leaf.signed_by(&key, &issuer)?;
    Ok(KeyedCert {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// `notAfter` of the first certificate in `pem`.
fn ca_not_after(pem: &str) -> Result<OffsetDateTime, CertError> {
    let parsed = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .ok()
        .and_then(|(_, p)| {
            let cert = p.parse_x509().ok()?;
            Some(cert.validity().not_after.to_datetime())
        });
    parsed.ok_or(CertError(rcgen::Error::CouldNotParseCertificate))
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn.push(DnType::OrganizationName, "podgrace");
    dn
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_serving_certificate_names_the_service_and_is_issued_by_the_ca() {
        let g = generate(&service_names("podgrace", "podgrace-system"), 30).unwrap();
        let (_, ca) = x509_parser::pem::parse_x509_pem(g.ca_cert_pem.as_bytes()).unwrap();
        let ca = ca.parse_x509().unwrap();
        let (_, leaf) = x509_parser::pem::parse_x509_pem(g.cert_pem.as_bytes()).unwrap();
        let leaf = leaf.parse_x509().unwrap();
        assert!(ca.is_ca());
        assert_eq!(leaf.issuer(), ca.subject());
        let sans = leaf
            .subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names
            .len();
        assert_eq!(sans, 4);
        let days = (leaf.validity().not_after.timestamp() - leaf.validity().not_before.timestamp())
            / 86400;
        assert_eq!(days, 30);
    }
}
