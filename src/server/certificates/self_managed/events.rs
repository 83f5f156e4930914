//! How the self-managed certificates tell people what happened: a metric for every failure and
//! restore, and a Kubernetes Event on the certificate Secret (`kubectl describe secret`) when an
//! operation starts failing, when it works again, when a caBundle was put back, when the Secret
//! was re-created, and when a certificate changed. Events go out from one task, never from the
//! loops that keep the certificates: an API server that is down delays nothing (its Events are
//! published when it is back, within about five minutes; the metrics carry the record anyway).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use tokio::sync::mpsc;

use crate::observability::metrics::{CertSyncOperation, Metrics};

/// Event reasons.
pub mod reason {
    /// An operation failed; the current pair keeps being served.
    pub const SYNC_FAILED: &str = "CertificateSyncFailed";
    /// It works again.
    pub const SYNC_RECOVERED: &str = "CertificateSyncRecovered";
    /// A caBundle was different from podgrace's CAs and was put back.
    pub const CA_BUNDLE_RESTORED: &str = "CABundleRestored";
    /// The Secret was deleted and re-created from a replica's pair.
    pub const SECRET_RECREATED: &str = "CertificateSecretRecreated";
    /// A certificate was renewed or the CA rolled.
    pub const ROTATED: &str = "CertificateRotated";
}

/// Attempts to publish one Event, [`PUBLISH_RETRY`] apart (about five minutes).
const PUBLISH_ATTEMPTS: u32 = 150;
/// Pause between attempts.
const PUBLISH_RETRY: std::time::Duration = std::time::Duration::from_secs(2);

/// Events waiting to be published at most (beyond: dropped and logged).
const QUEUE: usize = 64;

/// The reporter the certificate tasks share. Cheap to clone.
#[derive(Clone)]
pub struct CertificateReporter {
    metrics: Arc<Metrics>,
    tx: mpsc::Sender<(EventType, &'static str, String)>,
    failing: Arc<Mutex<HashSet<CertSyncOperation>>>,
    regarding: Arc<Mutex<ObjectReference>>,
}

impl CertificateReporter {
    /// Starts the publishing task; Events are about `regarding` (the Secret).
    pub fn start(
        client: Client,
        instance: Option<String>,
        metrics: Arc<Metrics>,
        regarding: ObjectReference,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let reporter = Reporter {
            controller: crate::cluster::policy_events::CONTROLLER.to_owned(),
            instance: instance.or_else(|| Reporter::from("podgrace").instance),
        };
        let (tx, rx) = mpsc::channel(QUEUE);
        let regarding = Arc::new(Mutex::new(regarding));
        let task = tokio::spawn(publish(client, reporter, regarding.clone(), rx));
        (
            CertificateReporter {
                metrics,
                tx,
                failing: Arc::default(),
                regarding,
            },
            task,
        )
    }

    /// The Secret as last seen (its uid changes when it is re-created).
    pub fn set_regarding(&self, reference: ObjectReference) {
        *self.regarding.lock().unwrap_or_else(|e| e.into_inner()) = reference;
    }

    /// `operation` failed with `error`: counted, logged, and an Event when it was working.
    pub fn failed(&self, operation: CertSyncOperation, error: &dyn std::fmt::Display) {
        self.metrics
            .cert_sync_errors
            .get_or_create(&crate::observability::metrics::OperationLabel { operation })
            .inc();
        tracing::warn!(operation = operation.as_str(), error = %error, "certificate sync failed; serving the current pair");
        let first = {
            let mut failing = self.failing.lock().unwrap_or_else(|e| e.into_inner());
            let first = failing.insert(operation);
            self.metrics.cert_sync_failing.set(1);
            first
        };
        if first {
            self.event(
                EventType::Warning,
                reason::SYNC_FAILED,
                format!(
                    "{}: {error}. podgrace keeps serving its current certificate and retries.",
                    operation.as_str()
                ),
            );
        }
    }

    /// `operation` worked: an Event when it had been failing.
    pub fn ok(&self, operation: CertSyncOperation) {
        let recovered = {
            let mut failing = self.failing.lock().unwrap_or_else(|e| e.into_inner());
            let recovered = failing.remove(&operation);
            self.metrics
                .cert_sync_failing
                .set(i64::from(!failing.is_empty()));
            recovered
        };
        if recovered {
            tracing::info!(
                operation = operation.as_str(),
                "certificate sync works again"
            );
            self.event(
                EventType::Normal,
                reason::SYNC_RECOVERED,
                format!("{} works again.", operation.as_str()),
            );
        }
    }

    /// The caBundle of `config` was `found` and is put back.
    pub fn ca_bundle_restored(&self, config: &str, found: &str) {
        self.metrics.ca_bundle_restores.inc();
        tracing::info!(webhook_configuration = config, found, "caBundle put back");
        self.event(
            EventType::Normal,
            reason::CA_BUNDLE_RESTORED,
            format!("The caBundle of {config} was {found} (an apply or another installation?); podgrace put its CAs back."),
        );
    }

    /// The Secret was found deleted and is re-created from this replica's pair.
    pub fn secret_recreated(&self, name: &str) {
        self.metrics.cert_secret_recreations.inc();
        tracing::warn!(
            secret = name,
            "certificate Secret deleted; re-creating it from the pair served"
        );
        self.event(
            EventType::Warning,
            reason::SECRET_RECREATED,
            format!("The Secret {name} was deleted; podgrace re-created it from the CA and pair it serves (delete it while podgrace is stopped to start over with a new CA)."),
        );
    }

    /// A certificate changed.
    pub fn rotated(&self, what: &str) {
        tracing::info!(change = what, "certificates changed");
        self.event(EventType::Normal, reason::ROTATED, format!("{what}."));
    }

    fn event(&self, type_: EventType, reason: &'static str, note: String) {
        if self.tx.try_send((type_, reason, note)).is_err() {
            tracing::warn!(reason, "certificate Event dropped: the queue is full");
        }
    }
}

async fn publish(
    client: Client,
    reporter: Reporter,
    regarding: Arc<Mutex<ObjectReference>>,
    mut rx: mpsc::Receiver<(EventType, &'static str, String)>,
) {
    let recorder = Recorder::new(client, reporter);
    while let Some((type_, reason, mut note)) = rx.recv().await {
        // The API server refuses notes over 1 kB.
        if note.len() > crate::cluster::policy_events::NOTE_LIMIT {
            let mut end = crate::cluster::policy_events::NOTE_LIMIT - 3;
            while !note.is_char_boundary(end) {
                end -= 1;
            }
            note.truncate(end);
            note.push_str("...");
        }
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(note),
            action: "ManageCertificates".to_owned(),
            secondary: None,
        };
        // An Event about an unreachable API server can only be published once it is back:
        // tried again for a while, in order.
        for attempt in 1..=PUBLISH_ATTEMPTS {
            let reference = regarding.lock().unwrap_or_else(|e| e.into_inner()).clone();
            match recorder.publish(&event, &reference).await {
                Ok(()) => break,
                Err(e) if attempt == PUBLISH_ATTEMPTS => {
                    tracing::warn!(reason, error = %e, "certificate Event not published; giving up");
                }
                Err(e) => {
                    tracing::debug!(reason, error = %e, "cannot publish the certificate Event yet");
                    tokio::time::sleep(PUBLISH_RETRY).await;
                }
            }
        }
    }
}
