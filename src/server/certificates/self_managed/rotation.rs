//! The rotation loop of one replica: reads the certificate Secret every check interval (and at
//! once when asked), takes the next step of its life when one is due (one update guarded by
//! the resourceVersion; a lost race is read again), tells the caBundle keeper which CAs to
//! publish, and swaps the served pair when the Secret holds a new one that the webhook
//! configurations trust.
//!
//! Failures leave the served pair in place: an unreachable API server, a lost update or an
//! unusable Secret are reported and retried. A deleted Secret is re-created from this replica's
//! material, so the CA stays the same. When the served certificate comes due and the API server
//! cannot be reached, the replica issues itself a new one from the CA it holds (already trusted
//! by the webhook configurations) instead of letting it expire.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{Notify, watch};

use super::events::CertificateReporter;
use super::material::{Lifetimes, Material};
use super::secret_store::{SecretStore, Written};
use super::trust::{self, Bundle};
use crate::observability::metrics::{CertSyncOperation, Metrics, ReloadResult};
use crate::server::certificates;
use crate::server::tls::{Pair, ReloadingCert};

/// What the loop needs besides the Secret.
pub struct Rotation {
    /// The Secret.
    pub store: SecretStore,
    /// Lifetimes of the certificates.
    pub lifetimes: Lifetimes,
    /// The serving certificate's names.
    pub sans: Vec<String>,
    /// The name the API server dials.
    pub server_name: String,
    /// The served pair.
    pub cert: Arc<ReloadingCert>,
    /// The material last read or written.
    pub material: Material,
    /// Its resourceVersion (`None`: not stored yet).
    pub resource_version: Option<String>,
    /// How often the Secret is read.
    pub check: Duration,
    /// The CAs the keeper publishes.
    pub desired: watch::Sender<Option<Bundle>>,
    /// What the webhook configurations trust.
    pub published: watch::Receiver<Option<Bundle>>,
    /// Asks for a read now.
    pub refresh: Arc<Notify>,
    /// Events and metrics.
    pub report: CertificateReporter,
    /// Metrics of the served pair.
    pub metrics: Arc<Metrics>,
}

impl Rotation {
    /// Runs forever.
    pub async fn run(mut self) {
        self.desired.send_replace(Some(self.publishable()));
        loop {
            tokio::select! {
                () = tokio::time::sleep(self.check) => {}
                () = self.refresh.notified() => {}
                changed = self.published.changed() => {
                    if changed.is_err() { return; }
                }
            }
            self.tick().await;
        }
    }

    /// One round: read, step, publish, serve.
    pub async fn tick(&mut self) {
        if self.read().await {
            self.step().await;
            // Only what was read (or written) just now is published as fresh: the keeper
            // removes a CA from a caBundle only on a fresh read.
            self.desired.send_replace(Some(self.publishable()));
        } else {
            self.renew_locally();
        }
        self.serve_current();
    }

    /// The CAs to publish: the bundle without expired CAs (never empty: should the current CA
    /// itself have expired, it stays, so that a caBundle is never emptied).
    fn publishable(&self) -> Bundle {
        let valid = self.material.bundle.unexpired(SystemTime::now());
        if valid.is_empty() {
            self.material.bundle.clone()
        } else {
            valid
        }
    }

    /// Reads the Secret; whether the API server answered (re-creates a deleted Secret, and
    /// repairs an unusable one, from this replica's material).
    async fn read(&mut self) -> bool {
        match self.store.get().await {
            Err(e) => {
                self.report.failed(CertSyncOperation::ReadSecret, &e);
                false
            }
            Ok(None) => {
                self.report.ok(CertSyncOperation::ReadSecret);
                self.report.secret_recreated(self.store.name());
                match self.store.create(&self.material).await {
                    Ok(Written::Stored(rv, reference)) => {
                        self.report.ok(CertSyncOperation::WriteSecret);
                        self.report.set_regarding(reference);
                        self.resource_version = Some(rv);
                    }
                    // Another replica re-created it first: read it next round.
                    Ok(Written::Lost) => self.refresh.notify_one(),
                    Err(e) => self.report.failed(CertSyncOperation::WriteSecret, &e),
                }
                true
            }
            Ok(Some(stored)) => {
                self.report.ok(CertSyncOperation::ReadSecret);
                self.report.set_regarding(stored.reference.clone());
                match stored.material {
                    Ok(m) => {
                        self.material = m;
                        self.resource_version = Some(stored.resource_version);
                    }
                    Err(e) => {
                        self.report.failed(
                            CertSyncOperation::ReadSecret,
                            &format!(
                                "the Secret {} is unusable ({e}); writing back the pair served",
                                self.store.name()
                            ),
                        );
                        self.write(self.material.clone(), &stored.resource_version)
                            .await;
                    }
                }
                true
            }
        }
    }

    /// Takes the next step if one is due.
    async fn step(&mut self) {
        let Some(rv) = self.resource_version.clone() else {
            return;
        };
        let published = self.published.borrow().clone();
        match self.material.next_step(
            SystemTime::now(),
            &self.lifetimes,
            &self.sans,
            &self.server_name,
            published.as_ref(),
        ) {
            Ok(Some((next, change))) => {
                if self.write(next, &rv).await {
                    self.report.rotated(change.as_str());
                }
            }
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "cannot issue a certificate"),
        }
    }

    /// Writes `material` at `rv`; whether it was stored.
    async fn write(&mut self, material: Material, rv: &str) -> bool {
        match self.store.update(&material, rv).await {
            Ok(Written::Stored(rv, _)) => {
                self.report.ok(CertSyncOperation::WriteSecret);
                self.material = material;
                self.resource_version = Some(rv);
                true
            }
            Ok(Written::Lost) => {
                // Another replica wrote first: its Secret is read at once.
                tracing::debug!("certificate Secret changed meanwhile; reading it again");
                self.refresh.notify_one();
                false
            }
            Err(e) => {
                self.report.failed(CertSyncOperation::WriteSecret, &e);
                false
            }
        }
    }

    /// The API server is out of reach: if the served certificate is due, issue one from the CA
    /// held (trusted already) rather than let it expire.
    fn renew_locally(&mut self) {
        let served = self.cert.current();
        let due_at = SystemTime::UNIX_EPOCH
            + Duration::from_secs(u64::try_from(served.not_after).unwrap_or(0));
        if SystemTime::now() + self.lifetimes.serving_renew_before < due_at {
            return;
        }
        match certificates::issue_serving(&self.material.ca, &self.sans, self.lifetimes.serving) {
            Ok(serving) => {
                tracing::warn!(
                    "API server out of reach and the certificate is due: issued one from the CA held"
                );
                self.material.serving = serving;
            }
            Err(e) => tracing::error!(error = %e, "cannot issue a certificate"),
        }
    }

    /// Whether `candidate` comes from the CA that signed the pair being served, and so is
    /// trusted wherever that pair is: a replica that renews from the CA it holds while the API
    /// server is out of reach (and so before it has seen the caBundle confirmed) never lets its
    /// pair expire for want of a confirmation.
    fn same_ca_as_served(&self, candidate_pem: &str, current: &Pair, now: SystemTime) -> bool {
        let ca = Bundle::from_pem(self.material.ca.cert_pem.as_bytes());
        let served: Vec<Vec<u8>> = current.key.cert.iter().map(|c| c.to_vec()).collect();
        // The served pair is checked at a moment it was valid: it may have expired by now.
        let while_valid = SystemTime::UNIX_EPOCH
            + Duration::from_secs(u64::try_from(current.not_after - 1).unwrap_or(0));
        trust::trusted_chain(&served, &ca, &self.server_name, while_valid)
            && trust::trusted(candidate_pem, &ca, &self.server_name, now)
    }

    /// Serves the material's pair if it is new and trusted by the webhook configurations, or
    /// signed by the same CA as the pair served.
    fn serve_current(&self) {
        let candidate = &self.material.serving;
        let current = self.cert.current();
        let Ok(pair) = Pair::from_pem(
            candidate.cert_pem.as_bytes(),
            candidate.key_pem.as_bytes(),
            "the certificate Secret",
        ) else {
            return;
        };
        if pair.key.cert == current.key.cert {
            return;
        }
        let published = self.published.borrow().clone();
        let now = SystemTime::now();
        let by_published = published.as_ref().is_some_and(|trusted_now| {
            trust::trusted(&candidate.cert_pem, trusted_now, &self.server_name, now)
        });
        if !by_published && !self.same_ca_as_served(&candidate.cert_pem, &current, now) {
            tracing::debug!(
                "new serving certificate not trusted by the webhook configurations yet; keeping the current one"
            );
            return;
        }
        let not_after = pair.not_after;
        if self.cert.replace(pair) {
            self.metrics.cert_reload(ReloadResult::Success);
            self.metrics.cert_expiry.set(not_after);
            tracing::info!(not_after, "serving certificate replaced");
        }
    }
}
