//! Certificates for the webhook's serving endpoint, generated with rcgen: a private CA and a
//! serving certificate signed by it, for `podgrace certs` (files for the chart's existing-Secret
//! mode) and for `serve --standalone` (in memory, CA written out for `curl --cacert`).

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
    let now = OffsetDateTime::now_utc();
    let not_before = now - Duration::hours(1);
    let not_after = now + Duration::days(i64::from(days));

    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name = dn("podgrace webhook CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.not_before = not_before;
    ca.not_after = not_after;
    let ca_cert = ca.self_signed(&ca_key)?;
    let ca_key_pem = ca_key.serialize_pem();
    let issuer = Issuer::new(ca, ca_key);

    let key = KeyPair::generate()?;
    let mut leaf = CertificateParams::new(sans.to_vec())?;
    leaf.distinguished_name = dn(sans.first().map_or("podgrace", String::as_str));
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.not_before = not_before;
    leaf.not_after = not_after;
    let cert = leaf.signed_by(&key, &issuer)?;
    Ok(Generated {
        ca_cert_pem: ca_cert.pem(),
        ca_key_pem,
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
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
