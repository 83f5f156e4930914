//! What the certificate Secret holds, and the one next step of its life. Pure: no I/O, the
//! clock and what the webhook configurations trust are passed in.
//!
//! The Secret's keys:
//! - `ca.crt`, `ca.key`: the CA that signs serving certificates;
//! - `tls.crt`, `tls.key`: the serving pair every replica serves, signed by that CA;
//! - `ca-bundle.crt`: every CA the webhook configurations' `caBundle` must hold: the current
//!   one, the next one while it is being introduced, the previous one until it expires;
//! - `next-ca.crt`, `next-ca.key`: while the CA rolls, the next CA, already in the bundle but not
//!   yet signing.
//!
//! A CA roll never shows the API server a certificate it does not trust: (1) the next CA joins
//! the bundle; (2) only once both webhook configurations hold it does it sign a serving pair
//! and become the current CA; (3) the previous CA leaves the bundle when it expires, when no
//! certificate it signed can be valid any more, whichever replica still serves one.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use k8s_openapi::ByteString;

use super::trust::{self, Bundle};
use crate::server::certificates::{self, CertError, KeyedCert};

/// Key of the CA certificate.
pub const CA_CERT: &str = "ca.crt";
/// Key of the CA's private key.
pub const CA_KEY: &str = "ca.key";
/// Key of the serving certificate.
pub const TLS_CERT: &str = "tls.crt";
/// Key of the serving key.
pub const TLS_KEY: &str = "tls.key";
/// Key of the CAs the webhook configurations must trust.
pub const BUNDLE: &str = "ca-bundle.crt";
/// Key of the next CA's certificate, during a roll.
pub const NEXT_CA_CERT: &str = "next-ca.crt";
/// Key of the next CA's key, during a roll.
pub const NEXT_CA_KEY: &str = "next-ca.key";

/// Lifetimes: how long certificates live and how early they are replaced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lifetimes {
    /// Validity of a serving certificate.
    pub serving: Duration,
    /// A serving certificate is replaced this long before it expires.
    pub serving_renew_before: Duration,
    /// Validity of a CA.
    pub ca: Duration,
    /// The CA starts rolling this long before it expires.
    pub ca_renew_before: Duration,
}

impl Lifetimes {
    /// Checks that every certificate is replaced before it expires, and that a serving
    /// certificate is not due again the moment it is issued.
    pub fn validate(&self) -> Result<(), String> {
        if self.serving_renew_before >= self.serving {
            return Err(format!(
                "--cert-renew-before-seconds ({}) must be less than --cert-validity-seconds ({})",
                self.serving_renew_before.as_secs(),
                self.serving.as_secs()
            ));
        }
        if self.ca_renew_before >= self.ca {
            return Err(format!(
                "--ca-renew-before-seconds ({}) must be less than --ca-validity-seconds ({})",
                self.ca_renew_before.as_secs(),
                self.ca.as_secs()
            ));
        }
        Ok(())
    }
}

/// The contents of the certificate Secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Material {
    /// The signing CA.
    pub ca: KeyedCert,
    /// The serving pair.
    pub serving: KeyedCert,
    /// The CAs the webhook configurations must trust.
    pub bundle: Bundle,
    /// The next CA, during a roll.
    pub next_ca: Option<KeyedCert>,
}

/// Why the Secret's contents are not usable.
#[derive(Debug, thiserror::Error)]
pub enum MaterialError {
    /// A key is missing.
    #[error("key {0} is missing")]
    Missing(&'static str),
    /// A key is not UTF-8 PEM.
    #[error("key {0} is not PEM text")]
    NotText(&'static str),
    /// The serving pair does not parse or the key does not match.
    #[error("{0}")]
    Pair(#[from] crate::server::tls::TlsError),
}

/// What a step did, for logs, Events and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// A new serving pair signed by the current CA.
    ServingRenewed,
    /// A next CA joined the bundle.
    CaStaged,
    /// The next CA became the signing CA, with a serving pair of its own.
    CaPromoted,
    /// Expired CAs left the bundle.
    ExpiredCaDropped,
}

impl Change {
    /// A short description.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::ServingRenewed => "serving certificate renewed",
            Change::CaStaged => "next CA added to the caBundle",
            Change::CaPromoted => "next CA now signs the serving certificate",
            Change::ExpiredCaDropped => "expired CA removed from the caBundle",
        }
    }
}

impl Material {
    /// A new CA and a serving pair for `sans`, the bundle holding that CA.
    pub fn generate(sans: &[String], lifetimes: &Lifetimes) -> Result<Self, CertError> {
        let ca = certificates::generate_ca(lifetimes.ca)?;
        let serving = certificates::issue_serving(&ca, sans, lifetimes.serving)?;
        let bundle = Bundle::from_pem(ca.cert_pem.as_bytes());
        Ok(Material {
            ca,
            serving,
            bundle,
            next_ca: None,
        })
    }

    /// Reads a Secret's `data`. The serving pair must parse and belong together.
    pub fn from_data(data: &BTreeMap<String, ByteString>) -> Result<Self, MaterialError> {
        let text = |key: &'static str| -> Result<String, MaterialError> {
            let bytes = data.get(key).ok_or(MaterialError::Missing(key))?;
            String::from_utf8(bytes.0.clone()).map_err(|_| MaterialError::NotText(key))
        };
        let optional = |key: &'static str| -> Result<Option<String>, MaterialError> {
            data.contains_key(key).then(|| text(key)).transpose()
        };
        let ca = KeyedCert {
            cert_pem: text(CA_CERT)?,
            key_pem: text(CA_KEY)?,
        };
        let serving = KeyedCert {
            cert_pem: text(TLS_CERT)?,
            key_pem: text(TLS_KEY)?,
        };
        crate::server::tls::Pair::from_pem(
            serving.cert_pem.as_bytes(),
            serving.key_pem.as_bytes(),
            "the Secret's tls.crt and tls.key",
        )?;
        let mut bundle = match optional(BUNDLE)? {
            Some(pem) => Bundle::from_pem(pem.as_bytes()),
            None => Bundle::default(),
        };
        // The current CA is always trusted, whatever the bundle key says.
        let current = Bundle::from_pem(ca.cert_pem.as_bytes());
        if !bundle.contains_all(&current) {
            bundle.0.splice(0..0, current.0);
        }
        let next_ca = match (optional(NEXT_CA_CERT)?, optional(NEXT_CA_KEY)?) {
            (Some(cert_pem), Some(key_pem)) => Some(KeyedCert { cert_pem, key_pem }),
            _ => None,
        };
        Ok(Material {
            ca,
            serving,
            bundle,
            next_ca,
        })
    }

    /// The Secret's `data`.
    pub fn to_data(&self) -> BTreeMap<String, ByteString> {
        let mut data = BTreeMap::new();
        let mut put = |k: &str, v: &str| {
            data.insert(k.to_owned(), ByteString(v.as_bytes().to_vec()));
        };
        put(CA_CERT, &self.ca.cert_pem);
        put(CA_KEY, &self.ca.key_pem);
        put(TLS_CERT, &self.serving.cert_pem);
        put(TLS_KEY, &self.serving.key_pem);
        put(BUNDLE, &self.bundle.to_pem());
        if let Some(next) = &self.next_ca {
            put(NEXT_CA_CERT, &next.cert_pem);
            put(NEXT_CA_KEY, &next.key_pem);
        }
        data
    }

    /// The next step at `now`, if one is due: at most one change, so that each write is
    /// small and every replica can follow. `published` is what both webhook configurations
    /// trust right now (`None`: not known yet); `server_name` is the name the API server
    /// dials.
    pub fn next_step(
        &self,
        now: SystemTime,
        lifetimes: &Lifetimes,
        sans: &[String],
        server_name: &str,
        published: Option<&Bundle>,
    ) -> Result<Option<(Material, Change)>, CertError> {
        // (2) The next CA is in every webhook configuration: it may sign.
        if let Some(next) = &self.next_ca {
            let next_bundle = Bundle::from_pem(next.cert_pem.as_bytes());
            if published.is_some_and(|p| p.contains_all(&next_bundle)) {
                let serving = certificates::issue_serving(next, sans, lifetimes.serving)?;
                let mut bundle = next_bundle;
                bundle.0.extend(
                    self.bundle
                        .0
                        .iter()
                        .filter(|c| !bundle_has(next, c))
                        .cloned(),
                );
                return Ok(Some((
                    Material {
                        ca: next.clone(),
                        serving,
                        bundle,
                        next_ca: None,
                    },
                    Change::CaPromoted,
                )));
            }
        }
        // (1) The CA is due: a next one joins the bundle.
        if self.next_ca.is_none() && due(&self.ca.cert_pem, lifetimes.ca_renew_before, now) {
            let next = certificates::generate_ca(lifetimes.ca)?;
            let mut bundle = self.bundle.clone();
            bundle
                .0
                .extend(Bundle::from_pem(next.cert_pem.as_bytes()).0);
            return Ok(Some((
                Material {
                    bundle,
                    next_ca: Some(next),
                    ..self.clone()
                },
                Change::CaStaged,
            )));
        }
        // (3) CAs that expired leave the bundle (never the current or the next one).
        let kept: Vec<Vec<u8>> = self
            .bundle
            .0
            .iter()
            .filter(|c| {
                bundle_has(&self.ca, c)
                    || self.next_ca.as_ref().is_some_and(|n| bundle_has(n, c))
                    || not_after_der(c).is_none_or(|t| t > now)
            })
            .cloned()
            .collect();
        if kept.len() != self.bundle.0.len() {
            return Ok(Some((
                Material {
                    bundle: Bundle(kept),
                    ..self.clone()
                },
                Change::ExpiredCaDropped,
            )));
        }
        // The serving pair is due, or no longer trusted through the current CA (another
        // service name, a CA replaced by hand).
        let own = Bundle::from_pem(self.ca.cert_pem.as_bytes());
        if due(&self.serving.cert_pem, lifetimes.serving_renew_before, now)
            || !trust::trusted(&self.serving.cert_pem, &own, server_name, now)
        {
            let serving = certificates::issue_serving(&self.ca, sans, lifetimes.serving)?;
            return Ok(Some((
                Material {
                    serving,
                    ..self.clone()
                },
                Change::ServingRenewed,
            )));
        }
        Ok(None)
    }
}

fn bundle_has(ca: &KeyedCert, der: &[u8]) -> bool {
    Bundle::from_pem(ca.cert_pem.as_bytes())
        .0
        .iter()
        .any(|c| c == der)
}

/// `notAfter` of the first certificate of `pem`.
pub fn not_after(pem: &str) -> Option<SystemTime> {
    Bundle::from_pem(pem.as_bytes())
        .0
        .first()
        .and_then(|d| not_after_der(d))
}

fn not_after_der(der: &[u8]) -> Option<SystemTime> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let secs = u64::try_from(cert.validity().not_after.timestamp()).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

/// Whether the certificate of `pem` expires within `before` of `now` (or cannot be read).
fn due(pem: &str, before: Duration, now: SystemTime) -> bool {
    not_after(pem).is_none_or(|t| now + before >= t)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: &str = "podgrace.podgrace-system.svc";

    fn sans() -> Vec<String> {
        certificates::service_names("podgrace", "podgrace-system")
    }

    fn lifetimes() -> Lifetimes {
        Lifetimes {
            serving: Duration::from_secs(600),
            serving_renew_before: Duration::from_secs(200),
            ca: Duration::from_secs(3600),
            ca_renew_before: Duration::from_secs(1200),
        }
    }

    #[test]
    fn fresh_material_round_trips_through_the_secret_and_needs_nothing() {
        let m = Material::generate(&sans(), &lifetimes()).unwrap();
        let back = Material::from_data(&m.to_data()).unwrap();
        assert_eq!(back, m);
        let now = SystemTime::now();
        let step = m
            .next_step(now, &lifetimes(), &sans(), NAME, Some(&m.bundle))
            .unwrap();
        assert!(step.is_none());
    }

    #[test]
    fn a_serving_certificate_within_renew_before_of_its_expiry_is_renewed_by_the_same_ca() {
        let m = Material::generate(&sans(), &lifetimes()).unwrap();
        let later = SystemTime::now() + Duration::from_secs(401);
        let (next, change) = m
            .next_step(later, &lifetimes(), &sans(), NAME, Some(&m.bundle))
            .unwrap()
            .unwrap();
        assert_eq!(change, Change::ServingRenewed);
        assert_eq!(next.ca, m.ca);
        assert_ne!(next.serving, m.serving);
        assert!(trust::trusted(
            &next.serving.cert_pem,
            &m.bundle,
            NAME,
            SystemTime::now()
        ));
    }

    #[test]
    fn the_ca_rolls_in_three_steps_and_signs_only_once_both_configurations_trust_it() {
        let lt = lifetimes();
        let m = Material::generate(&sans(), &lt).unwrap();
        let due = SystemTime::now() + Duration::from_secs(2401);
        // The next CA lives longer than the first one, so that it is not due itself when the
        // first one has expired.
        let lt = Lifetimes {
            ca: Duration::from_secs(7200),
            ..lt
        };
        // (1) staged: in the bundle, not signing.
        let (staged, change) = m
            .next_step(due, &lt, &sans(), NAME, Some(&m.bundle))
            .unwrap()
            .unwrap();
        assert_eq!(change, Change::CaStaged);
        assert_eq!(staged.serving, m.serving);
        assert_eq!(staged.bundle.0.len(), 2);
        // Not promoted while the configurations hold only the old bundle (or are unknown)…
        let waiting = staged
            .next_step(due, &lt, &sans(), NAME, Some(&m.bundle))
            .unwrap();
        assert!(waiting.is_none_or(|(_, c)| c == Change::ServingRenewed));
        assert!(
            staged
                .next_step(due, &lt, &sans(), NAME, None)
                .unwrap()
                .is_none_or(|(_, c)| c != Change::CaPromoted)
        );
        // (2) …and promoted once they hold the new bundle.
        let (promoted, change) = staged
            .next_step(due, &lt, &sans(), NAME, Some(&staged.bundle))
            .unwrap()
            .unwrap();
        assert_eq!(change, Change::CaPromoted);
        assert_eq!(Some(&promoted.ca), staged.next_ca.as_ref());
        assert!(
            promoted.bundle.contains_all(&m.bundle),
            "old CA still trusted"
        );
        assert!(trust::trusted(
            &promoted.serving.cert_pem,
            &staged.bundle,
            NAME,
            SystemTime::now()
        ));
        // (3) the old CA leaves once it has expired.
        let after_old = SystemTime::now() + Duration::from_secs(3601);
        let (dropped, change) = promoted
            .next_step(after_old, &lt, &sans(), NAME, Some(&promoted.bundle))
            .unwrap()
            .unwrap();
        assert_eq!(change, Change::ExpiredCaDropped);
        assert_eq!(
            dropped.bundle,
            Bundle::from_pem(promoted.ca.cert_pem.as_bytes())
        );
    }

    #[test]
    fn a_secret_without_a_key_or_with_a_foreign_key_is_refused_by_name() {
        let m = Material::generate(&sans(), &lifetimes()).unwrap();
        let mut data = m.to_data();
        data.remove(CA_KEY);
        let err = Material::from_data(&data).unwrap_err();
        assert_eq!(err.to_string(), "key ca.key is missing");
        let other = Material::generate(&sans(), &lifetimes()).unwrap();
        let mut data = m.to_data();
        data.insert(
            TLS_KEY.into(),
            ByteString(other.serving.key_pem.into_bytes()),
        );
        let err = Material::from_data(&data).unwrap_err();
        assert!(err.to_string().contains("tls.crt and tls.key"), "{err}");
    }

    #[test]
    fn lifetimes_that_would_renew_continuously_are_refused() {
        let mut lt = lifetimes();
        lt.serving_renew_before = lt.serving;
        assert!(
            lt.validate()
                .unwrap_err()
                .contains("--cert-renew-before-seconds")
        );
    }
}
