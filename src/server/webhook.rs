//! The webhook as a library: a typed configuration ([`WebhookConfig`], apart from any command
//! line), started in named steps ([`Webhook::start`]: connect, certificate, policies, metrics
//! port, state, version; then [`Webhook::bind`]) and run until a stop future resolves
//! ([`Bound::run`]). `podgrace serve` only turns its flags into a [`WebhookConfig`] and installs
//! the signal handlers; tests build one directly.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::certificates::{self, self_managed};
use super::tls::{self, Pair, ReloadingCert};
use super::{AppState, PolicyConfigMap, ServerOptions, metrics_listener};
use crate::cluster::client::{self, Connected};
use crate::cluster::policy_events::PolicyEvents;
use crate::cluster::{policy_watch, version_discovery};
use crate::observability::metrics::Metrics;
use crate::observability::summary;
use crate::protocols::kube_version::KubeVersion;
use crate::store::PolicyStore;
use crate::store::cache::PolicyCache;
use crate::store::dir_watch::DirWatch;
use crate::store::files;

/// Everything the webhook is started with.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    /// The HTTPS address.
    pub listen: SocketAddr,
    /// Where the serving certificate comes from.
    pub certificates: CertificateConfig,
    /// Where policies come from.
    pub policies: PolicyConfig,
    /// Plain-HTTP `/metrics` address, besides the HTTPS port's.
    pub metrics_listen: Option<SocketAddr>,
    /// The cluster to talk to: `None` infers it (in-cluster, `$KUBECONFIG`, `~/.kube/config`).
    pub kubeconfig: Option<PathBuf>,
    /// The API server version; `None` discovers it (and follows upgrades).
    pub kube_version: Option<KubeVersion>,
    /// Limits and timings.
    pub server: ServerOptions,
    /// How often mounted files (certificates, policies) are checked besides their watch.
    pub reload_poll: Duration,
    /// How often the admission summary is logged (`None`: never).
    pub summary_every: Option<Duration>,
}

/// The serving certificate's source.
#[derive(Clone, Debug)]
pub enum CertificateConfig {
    /// Generated in memory for these names (standalone, no cluster); the CA certificate is
    /// written to `ca_out` for `curl --cacert`.
    Generated {
        /// DNS names and IPs of the certificate.
        sans: Vec<String>,
        /// Where the CA certificate is written.
        ca_out: PathBuf,
    },
    /// PEM files, reloaded when they change.
    Files {
        /// The certificate chain.
        cert: PathBuf,
        /// The private key.
        key: PathBuf,
    },
    /// Kept by podgrace in a Secret of the cluster; an empty `namespace` is the client's.
    SelfManaged(self_managed::Settings),
}

/// Where policies come from.
#[derive(Clone, Debug)]
pub struct PolicyConfig {
    /// The cluster default, a file reloaded when it changes.
    pub cluster_policy: Option<PathBuf>,
    /// The namespace policies.
    pub namespaces: NamespacePolicies,
    /// The ConfigMaps (or files) holding namespace policies: name and key.
    pub configmap: PolicyConfigMap,
}

/// Where namespace policies come from.
#[derive(Clone, Debug)]
pub enum NamespacePolicies {
    /// A directory, one file per namespace.
    Dir(PathBuf),
    /// The cluster's ConfigMaps, watched; refused ones reported as Events when `events`, under
    /// `instance` (the host name when `None`).
    Cluster {
        /// Whether refused ConfigMaps get a Warning Event.
        events: bool,
        /// This replica's name in the Events.
        instance: Option<String>,
    },
    /// None: every namespace gets the cluster default.
    None,
}

/// A started webhook, not yet listening: its state and the tasks that keep it current.
pub struct Webhook {
    startup: Startup,
    state: Arc<AppState>,
    cert: Arc<ReloadingCert>,
}

/// What the start-up steps build up: the configuration, and what must live as long as the
/// webhook.
struct Startup {
    config: WebhookConfig,
    metrics: Arc<Metrics>,
    ca_written: Option<PathBuf>,
    metrics_addr: Option<SocketAddr>,
    watches: Vec<DirWatch>,
    tasks: Vec<JoinHandle<()>>,
}

impl Webhook {
    /// The async runtime `serve` runs on: a few workers (each decodes one ordinary review at a
    /// time, so their number bounds that memory too), I/O looked for often, and large reviews'
    /// memory given back to the OS once the workers are idle again.
    pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(worker_threads())
            .event_interval(EVENT_INTERVAL)
            .on_thread_park(super::memory::collect_if_due)
            .enable_all()
            .build()
    }

    /// Starts everything but the HTTPS port, in order: the cluster client when one is needed,
    /// the serving certificate, the policy store, the plain metrics port, the handlers' state,
    /// the following of the API server's version and the admission summary.
    pub async fn start(config: WebhookConfig, metrics: Arc<Metrics>) -> anyhow::Result<Webhook> {
        let mut startup = Startup {
            config,
            metrics,
            ca_written: None,
            metrics_addr: None,
            watches: Vec::new(),
            tasks: Vec::new(),
        };
        let client = connect(&startup.config).await?;
        let cert = startup.serving_certificate(client.as_ref()).await?;
        let store = startup.policy_store(client.as_ref());
        startup.metrics_port().await?;
        let config = &startup.config;
        let state = AppState::new(
            store,
            startup.metrics.clone(),
            config.kube_version,
            config.policies.configmap.clone(),
            &config.server,
        );
        startup.follow_version(client.as_ref(), &state);
        startup.summarize();
        Ok(Webhook {
            startup,
            state,
            cert,
        })
    }

    /// Where the generated CA certificate was written, in the `Generated` mode.
    pub fn ca_written(&self) -> Option<&std::path::Path> {
        self.startup.ca_written.as_deref()
    }

    /// The plain metrics port's address, when asked for.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.startup.metrics_addr
    }

    /// Opens the HTTPS port.
    pub async fn bind(self) -> anyhow::Result<Bound> {
        let listen = self.startup.config.listen;
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        let addr = listener.local_addr()?;
        tracing::info!(%addr, "serving");
        Ok(Bound {
            webhook: self,
            listener,
            addr,
        })
    }
}

impl Startup {
    /// The serving certificate: generated, kept by podgrace itself, or files reloaded on change.
    async fn serving_certificate(
        &mut self,
        client: Option<&Connected>,
    ) -> anyhow::Result<Arc<ReloadingCert>> {
        match &self.config.certificates {
            CertificateConfig::Generated { sans, ca_out } => {
                let generated = certificates::generate(sans, 30)?;
                write_ca(ca_out, &generated.ca_cert_pem)?;
                self.ca_written = Some(ca_out.clone());
                let pair = Pair::from_pem(
                    generated.cert_pem.as_bytes(),
                    generated.key_pem.as_bytes(),
                    "generated",
                )?;
                self.metrics.cert_expiry.set(pair.not_after);
                Ok(ReloadingCert::new(pair))
            }
            CertificateConfig::SelfManaged(settings) => {
                let client = client.context("--certificates self needs a cluster")?;
                let mut settings = settings.clone();
                if settings.namespace.is_empty() {
                    settings.namespace = client.default_namespace.clone();
                }
                tracing::info!(secret = %settings.secret, namespace = %settings.namespace, "certificates: self-managed");
                let running =
                    self_managed::start(client.client.clone(), settings, self.metrics.clone())
                        .await?;
                self.tasks.extend(running.tasks);
                Ok(running.cert)
            }
            CertificateConfig::Files { cert, key } => {
                let pair = Pair::from_files(cert, key).context(
                    "loading the serving certificate (use --standalone to generate one)",
                )?;
                let reloading = ReloadingCert::new(pair);
                self.watches.push(tls::reload_on_change(
                    reloading.clone(),
                    cert.clone(),
                    key.clone(),
                    self.metrics.clone(),
                    self.config.reload_poll,
                ));
                Ok(reloading)
            }
        }
    }

    /// The policy cache, fed by the cluster default file and by a directory or the cluster's
    /// ConfigMaps.
    fn policy_store(&mut self, client: Option<&Connected>) -> Arc<dyn PolicyStore> {
        let policies = &self.config.policies;
        let (name, key) = (&policies.configmap.name, &policies.configmap.key);
        let poll = self.config.reload_poll;
        let cache = Arc::new(PolicyCache::new(self.metrics.clone()));
        if let Some(path) = &policies.cluster_policy {
            let watch = files::watch_cluster_policy(cache.clone(), path.clone(), key.clone(), poll);
            self.watches.push(watch);
        }
        match (&policies.namespaces, client) {
            (NamespacePolicies::Dir(dir), _) => {
                let watch =
                    files::watch_namespace_dir(cache.clone(), dir.clone(), key.clone(), poll);
                self.watches.push(watch);
                cache.mark_synced();
            }
            (NamespacePolicies::Cluster { events, instance }, Some(client)) => {
                let events = events.then(|| {
                    let (events, task) =
                        PolicyEvents::start(client.client.clone(), instance.clone());
                    self.tasks.push(task);
                    events
                });
                self.tasks.push(policy_watch::watch_policies_reporting(
                    client.client.clone(),
                    cache.clone(),
                    name.clone(),
                    key.clone(),
                    events,
                ));
            }
            (NamespacePolicies::Cluster { .. } | NamespacePolicies::None, _) => cache.mark_synced(),
        }
        cache
    }

    /// The plain metrics port, when asked for: bound before the webhook's, so that a bad
    /// address stops the start-up before anything is served.
    async fn metrics_port(&mut self) -> anyhow::Result<()> {
        let Some(addr) = self.config.metrics_listen else {
            return Ok(());
        };
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening for metrics on {addr}"))?;
        let bound = listener.local_addr()?;
        tracing::info!(addr = %bound, "serving /metrics over plain HTTP");
        self.metrics_addr = Some(bound);
        let task = tokio::spawn(metrics_listener::serve(listener, self.metrics.clone()));
        self.tasks.push(task);
        Ok(())
    }

    /// Follows the API server's version, unless it was given.
    fn follow_version(&mut self, client: Option<&Connected>, state: &Arc<AppState>) {
        if let (Some(client), None) = (client, self.config.kube_version) {
            let state = state.clone();
            self.tasks.push(version_discovery::follow(
                client.client.clone(),
                VERSION_REFRESH,
                move |v| state.set_kube_version(Some(v)),
            ));
        }
    }

    /// Logs the admission summary periodically.
    fn summarize(&mut self) {
        if let Some(every) = self.config.summary_every {
            self.tasks.push(summary::every(every, self.metrics.clone()));
        }
    }
}

/// A webhook listening on its HTTPS port.
pub struct Bound {
    webhook: Webhook,
    listener: TcpListener,
    addr: SocketAddr,
}

impl Bound {
    /// The HTTPS port's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `stop` resolves, then drains ([`super::listener`]) and stops every task.
    pub async fn run(self, stop: impl Future<Output = ()>) -> anyhow::Result<()> {
        let Bound {
            webhook, listener, ..
        } = self;
        let Webhook {
            startup,
            state,
            cert,
        } = webhook;
        let tls = tls::server_config(cert)?;
        let opts = startup.config.server.clone();
        super::listener::serve(listener, tls, state, opts, stop).await;
        drop(startup.watches);
        for t in startup.tasks {
            t.abort();
        }
        if startup.config.summary_every.is_some() {
            summary::log_totals(&startup.metrics);
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// How many task polls a busy worker runs between two looks for new I/O events (tokio's default
/// is 61). During a flood of large reviews the workers are never idle: each poll decrypts up to
/// 64 KiB of a body or lets a refused client's bytes go, and a small review that had arrived
/// waited for up to 61 of them before its connection was even woken. Measured (bench/results/stress.md, "I/O events looked for every 8 polls"):
/// small reviews' p99 with 200 attackers, median of nine rounds 11.4 → 9.0 ms; CPU per request
/// unchanged.
const EVENT_INTERVAL: u32 = 8;

/// Async workers at most: each decodes one ordinary review at a time, so their number bounds
/// that memory too (docs/ARCHITECTURE.md); four answer far more reviews than an API server sends
/// (two serve over 20,000 a second, docs/PERFORMANCE.md).
const MAX_WORKERS: usize = 4;

fn worker_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_WORKERS))
}

/// How often the API server version is re-read.
const VERSION_REFRESH: Duration = Duration::from_secs(600);

/// A client when the configuration needs the cluster: self-managed certificates, or namespace
/// policies from ConfigMaps.
async fn connect(config: &WebhookConfig) -> anyhow::Result<Option<Connected>> {
    let needs_cluster = matches!(config.certificates, CertificateConfig::SelfManaged(_))
        || matches!(
            config.policies.namespaces,
            NamespacePolicies::Cluster { .. }
        );
    if !needs_cluster {
        return Ok(None);
    }
    let hint = "use --standalone, --kubeconfig or --policy-dir";
    client::connect(config.kubeconfig.as_deref(), None, hint)
        .await
        .map(Some)
}

fn write_ca(path: &PathBuf, pem: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, pem).with_context(|| format!("writing {}", path.display()))
}
