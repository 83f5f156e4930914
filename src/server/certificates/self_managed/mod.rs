//! `certificates.mode: self`: podgrace owns its webhook's TLS. No render-time secret, no
//! cert-manager: the chart renders the same bytes every time, and the replicas
//!
//! - create the CA and serving pair in one Secret if it does not exist, agreeing through the
//!   API server's optimistic concurrency ([`secret_store`]);
//! - keep the `caBundle` of their two webhook configurations equal to the CAs in that Secret,
//!   watching them and putting it back after an apply resets it ([`ca_bundle`]);
//! - renew the serving pair and roll the CA without a moment in which the API server sees a
//!   certificate it does not trust ([`material`], [`rotation`], [`trust`]);
//! - keep serving the pair they have through any failure, and say so ([`report`]).
//!
//! Roles in the cluster: get, create and update of the one Secret; get, list, watch and patch
//! of the two named webhook configurations (see the chart's rbac.yaml).

pub(crate) mod ca_bundle;
pub(crate) mod events;
pub(crate) mod material;
pub(crate) mod rotation;
pub(crate) mod secret_store;
pub(crate) mod trust;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

pub use ca_bundle::WebhookNames;
pub use material::Lifetimes;

use self::events::CertificateReporter;
use self::material::Material;
use self::rotation::Rotation;
use self::secret_store::{SecretStore, Written};
use crate::observability::metrics::{CertSyncOperation, Metrics};
use crate::server::tls::{Pair, ReloadingCert};

/// Everything the mode is configured with.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Namespace of the Secret (podgrace's own).
    pub namespace: String,
    /// Name of the Secret.
    pub secret: String,
    /// The Service the API server calls (the certificate's names).
    pub service: String,
    /// Extra names for the certificate.
    pub extra_sans: Vec<String>,
    /// The webhook configurations to keep.
    pub webhooks: WebhookNames,
    /// Certificate lifetimes.
    pub lifetimes: Lifetimes,
    /// How often the Secret is read again.
    pub check: Duration,
    /// This replica's name in Events.
    pub instance: Option<String>,
}

impl Settings {
    /// The certificate's DNS names: the Service's, then the extra ones.
    pub fn sans(&self) -> Vec<String> {
        let mut sans = crate::server::certificates::service_names(&self.service, &self.namespace);
        sans.extend(self.extra_sans.iter().cloned());
        sans
    }

    /// The name the API server dials: `<service>.<namespace>.svc`.
    pub fn server_name(&self) -> String {
        format!("{}.{}.svc", self.service, self.namespace)
    }
}

/// The running mode: the served pair, and the tasks that keep it.
pub struct Running {
    /// The pair new handshakes get.
    pub cert: Arc<ReloadingCert>,
    /// The tasks (abort them on shutdown).
    pub tasks: Vec<JoinHandle<()>>,
}

/// Time allowed for one request about the Secret.
const API_TIMEOUT: Duration = Duration::from_secs(10);

/// Backoff between start-up attempts while the API server cannot be reached.
const START_RETRY: Duration = Duration::from_secs(2);

/// Reads or creates the Secret (waiting for the API server: without a pair there is nothing to
/// serve), then starts the caBundle keeper and the rotation.
pub async fn start(
    client: Client,
    settings: Settings,
    metrics: Arc<Metrics>,
) -> anyhow::Result<Running> {
    settings.lifetimes.validate().map_err(anyhow::Error::msg)?;
    // Half the renewal margin at most: a hung request leaves time to renew from the CA held.
    let timeout = API_TIMEOUT.min(settings.lifetimes.serving_renew_before / 2);
    let store = SecretStore::new(
        client.clone(),
        &settings.namespace,
        &settings.secret,
        timeout,
    );
    let placeholder = ObjectReference {
        api_version: Some("v1".to_owned()),
        kind: Some("Secret".to_owned()),
        namespace: Some(settings.namespace.clone()),
        name: Some(settings.secret.clone()),
        ..ObjectReference::default()
    };
    let (report, report_task) = CertificateReporter::start(
        client.clone(),
        settings.instance.clone(),
        metrics.clone(),
        placeholder,
    );
    let (material, resource_version) = loop {
        match first_material(&store, &settings, &report).await {
            Ok(found) => break found,
            Err(e) => {
                tracing::warn!(error = %e, secret = %settings.secret, "waiting for the API server to read or create the certificate Secret");
                tokio::time::sleep(START_RETRY).await;
            }
        }
    };
    let pair = Pair::from_pem(
        material.serving.cert_pem.as_bytes(),
        material.serving.key_pem.as_bytes(),
        "the certificate Secret",
    )
    .context("the serving pair of the certificate Secret")?;
    metrics.cert_expiry.set(pair.not_after);
    let cert = ReloadingCert::new(pair);

    let (desired_tx, desired_rx) = watch::channel(Some(material.bundle.clone()));
    let (published_tx, published_rx) = watch::channel(None);
    let refresh = Arc::new(Notify::new());
    let keeper = tokio::spawn(ca_bundle::keep(
        client,
        settings.webhooks.clone(),
        desired_rx,
        published_tx,
        refresh.clone(),
        report.clone(),
    ));
    let rotation = Rotation {
        store,
        lifetimes: settings.lifetimes.clone(),
        sans: settings.sans(),
        server_name: settings.server_name(),
        cert: cert.clone(),
        material,
        resource_version: Some(resource_version),
        check: settings.check,
        desired: desired_tx,
        published: published_rx,
        refresh,
        report,
        metrics,
    };
    let rotation = tokio::spawn(rotation.run());
    Ok(Running {
        cert,
        tasks: vec![report_task, keeper, rotation],
    })
}

/// The Secret's material, creating the Secret if it is absent: of two replicas creating it at
/// once, one wins (`409 AlreadyExists` for the other), and the loser reads the winner's.
async fn first_material(
    store: &SecretStore,
    settings: &Settings,
    report: &CertificateReporter,
) -> anyhow::Result<(Material, String)> {
    loop {
        let read = store.get().await;
        match read {
            Err(e) => {
                report.failed(CertSyncOperation::ReadSecret, &e);
                return Err(e.into());
            }
            Ok(Some(stored)) => {
                report.ok(CertSyncOperation::ReadSecret);
                report.set_regarding(stored.reference);
                let material = stored.material.with_context(|| {
                    format!(
                        "the Secret {}/{} is not podgrace's certificate Secret (delete it to have podgrace create one)",
                        settings.namespace, settings.secret
                    )
                })?;
                return Ok((material, stored.resource_version));
            }
            Ok(None) => {
                let material = Material::generate(&settings.sans(), &settings.lifetimes)?;
                match store.create(&material).await {
                    Ok(Written::Stored(rv, reference)) => {
                        report.set_regarding(reference);
                        tracing::info!(secret = %settings.secret, "created the CA and serving pair");
                        return Ok((material, rv));
                    }
                    Ok(Written::Lost) => {
                        tracing::info!(secret = %settings.secret, "another replica created the certificate Secret first; using its pair");
                    }
                    Err(e) => {
                        report.failed(CertSyncOperation::WriteSecret, &e);
                        return Err(e.into());
                    }
                }
            }
        }
    }
}
