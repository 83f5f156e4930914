//! `podgrace serve`: wires the stores, TLS, metrics and the server together, and turns SIGTERM
//! into the drain sequence.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;

use super::{CertificateSource, ServeArgs};
use crate::certs::{self, self_managed};
use crate::metrics::Metrics;
use crate::metrics_listener;
use crate::server::{self, AppState, PolicyConfigMap, ServerOptions};
use crate::store::PolicyStore;
use crate::store::cache::PolicyCache;
use crate::store::policy_events::PolicyEvents;
use crate::store::{files, kube};
use crate::tls::{self, Pair, ReloadingCert};
use crate::version_discovery;

pub(super) fn run(args: ServeArgs, metrics: Arc<Metrics>) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads())
        .event_interval(EVENT_INTERVAL)
        // Large reviews' memory goes back to the OS once the workers are idle again.
        .on_thread_park(crate::server::memory::collect_if_due)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(args, metrics))?;
    Ok(ExitCode::SUCCESS)
}

/// How many task polls a busy worker runs between two looks for new I/O events (tokio's default
/// is 61). During a flood of large reviews the workers are never idle: each poll decrypts up to
/// 64 KiB of a body or lets a refused client's bytes go, and a small review that had arrived
/// waited for up to 61 of them before its connection was even woken. Measured in
/// docs/PERFORMANCE.md ("I/O events looked for every 8 polls"): small reviews' p99 with 200
/// attackers, median of nine rounds 11.4 → 9.0 ms; CPU per request unchanged.
const EVENT_INTERVAL: u32 = 8;

/// Async workers at most: each decodes one ordinary review at a time, so their number bounds
/// that memory too (docs/ARCHITECTURE.md); four answer far more reviews than an API server sends
/// (two serve 31,000 a second).
const MAX_WORKERS: usize = 4;

fn worker_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_WORKERS))
}

async fn serve(args: ServeArgs, metrics: Arc<Metrics>) -> anyhow::Result<()> {
    let poll = Duration::from_secs(args.reload_poll_seconds.max(1));
    let mut watches = Vec::new();

    let needs_cluster = args.certificates == CertificateSource::SelfManaged
        || (!args.standalone && args.policy_dir.is_none());
    let client = if needs_cluster && !args.standalone {
        Some(kube_client(&args).await?)
    } else {
        None
    };
    let mut tasks = Vec::new();
    let cert =
        serving_certificate(&args, client.as_ref(), &metrics, &mut watches, &mut tasks).await?;

    // Policies: the cluster default from a file; namespace policies from a directory, or from
    // ConfigMaps watched in the cluster.
    let cache = Arc::new(PolicyCache::new(metrics.clone()));
    if let Some(path) = &args.cluster_policy {
        watches.push(files::watch_cluster_policy(
            cache.clone(),
            path.clone(),
            args.policy_key.clone(),
            poll,
        ));
    }
    let policy_client = client.as_ref().filter(|_| args.policy_dir.is_none());
    match (&args.policy_dir, policy_client) {
        (Some(dir), _) => {
            watches.push(files::watch_namespace_dir(
                cache.clone(),
                dir.clone(),
                args.policy_key.clone(),
                poll,
            ));
            cache.mark_synced();
        }
        (None, Some(client)) => {
            let events = args.policy_events.then(|| {
                let (events, task) = PolicyEvents::start(client.clone(), args.pod_name.clone());
                tasks.push(task);
                events
            });
            tasks.push(kube::watch_policies_reporting(
                client.clone(),
                cache.clone(),
                args.policy_name.clone(),
                args.policy_key.clone(),
                events,
            ));
        }
        (None, None) => cache.mark_synced(),
    }
    let store: Arc<dyn PolicyStore> = cache.clone();

    let opts = ServerOptions {
        max_body_bytes: args.max_body_bytes,
        body_budget_bytes: args.body_budget_bytes,
        request_timeout: Duration::from_secs(args.request_timeout_seconds),
        header_timeout: Duration::from_secs(args.header_timeout_seconds),
        handshake_timeout: Duration::from_secs(args.header_timeout_seconds),
        idle_timeout: Duration::from_secs(args.idle_timeout_seconds),
        max_connections: args.max_connections,
        drain: Duration::from_secs(args.drain_seconds),
        shutdown_timeout: Duration::from_secs(args.shutdown_timeout_seconds),
        ..ServerOptions::default()
    };
    // The plain metrics port, when asked for: bound before the webhook's, so that a bad address
    // stops the start-up before anything is served.
    if let Some(addr) = args.metrics_listen {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening for metrics on {addr}"))?;
        let bound = listener.local_addr()?;
        tracing::info!(addr = %bound, "serving /metrics over plain HTTP");
        if args.standalone {
            say(&format!("podgrace: metrics on http://{bound}/metrics"));
        }
        tasks.push(tokio::spawn(metrics_listener::serve(
            listener,
            metrics.clone(),
        )));
    }
    let state = AppState::new(
        store,
        metrics,
        args.kube_version,
        PolicyConfigMap {
            name: args.policy_name.clone(),
            key: args.policy_key.clone(),
        },
        &opts,
    );
    if let (Some(client), None) = (&client, args.kube_version) {
        let state = state.clone();
        tasks.push(version_discovery::follow(
            client.clone(),
            VERSION_REFRESH,
            move |v| state.set_kube_version(Some(v)),
        ));
    }
    // Handlers first: a SIGTERM that arrives once the port is open must start the drain, never
    // be lost (inherited as ignored) or kill the process outright (the default action).
    let stop = stop_signal()?;
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, standalone = args.standalone, "serving");
    if args.standalone {
        say(&format!("podgrace: listening on https://{addr}"));
    }
    server::listener::serve(listener, tls::server_config(cert)?, state, opts, stop).await;
    drop(watches);
    for t in tasks {
        t.abort();
    }
    tracing::info!("stopped");
    Ok(())
}

/// The serving certificate: generated in standalone mode, kept by podgrace itself in
/// `--certificates self`, otherwise files reloaded on change.
async fn serving_certificate(
    args: &ServeArgs,
    client: Option<&::kube::Client>,
    metrics: &Arc<Metrics>,
    watches: &mut Vec<crate::watch::DirWatch>,
    tasks: &mut Vec<tokio::task::JoinHandle<()>>,
) -> anyhow::Result<Arc<ReloadingCert>> {
    if args.standalone && args.certificates == CertificateSource::SelfManaged {
        anyhow::bail!(
            "--certificates self keeps a certificate in the cluster; --standalone generates its own without one: use one or the other"
        );
    }
    if args.standalone {
        let mut sans = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ];
        sans.extend(args.san.iter().cloned());
        let generated = certs::generate(&sans, 30)?;
        write_ca(&args.ca_out, &generated.ca_cert_pem)?;
        let pair = Pair::from_pem(
            generated.cert_pem.as_bytes(),
            generated.key_pem.as_bytes(),
            "generated",
        )?;
        metrics.cert_expiry.set(pair.not_after);
        say(&format!(
            "podgrace: standalone mode; CA certificate written to {} (curl --cacert {})",
            args.ca_out.display(),
            args.ca_out.display()
        ));
        return Ok(ReloadingCert::new(pair));
    }
    if let (CertificateSource::SelfManaged, Some(client)) = (args.certificates, client) {
        let settings = self_managed_settings(args, client);
        tracing::info!(secret = %settings.secret, namespace = %settings.namespace, "certificates: self-managed");
        let running = self_managed::start(client.clone(), settings, metrics.clone()).await?;
        tasks.extend(running.tasks);
        return Ok(running.cert);
    }
    let pair = Pair::from_files(&args.tls_cert_file, &args.tls_key_file)
        .context("loading the serving certificate (use --standalone to generate one)")?;
    let cert = ReloadingCert::new(pair);
    watches.push(tls::reload_on_change(
        cert.clone(),
        args.tls_cert_file.clone(),
        args.tls_key_file.clone(),
        metrics.clone(),
        Duration::from_secs(args.reload_poll_seconds.max(1)),
    ));
    Ok(cert)
}

fn self_managed_settings(args: &ServeArgs, client: &::kube::Client) -> self_managed::Settings {
    let secs = Duration::from_secs;
    self_managed::Settings {
        namespace: args
            .namespace
            .clone()
            .unwrap_or_else(|| client.default_namespace().to_owned()),
        secret: args.cert_secret.clone(),
        service: args.service.clone(),
        extra_sans: args.san.clone(),
        webhooks: self_managed::WebhookNames {
            mutating: args.mutating_webhook.clone(),
            validating: args.validating_webhook.clone().filter(|n| !n.is_empty()),
        },
        lifetimes: self_managed::Lifetimes {
            serving: secs(args.cert_validity_seconds),
            serving_renew_before: secs(args.cert_renew_before_seconds),
            ca: secs(args.ca_validity_seconds),
            ca_renew_before: secs(args.ca_renew_before_seconds),
        },
        check: secs(args.cert_check_seconds.max(1)),
        instance: args.pod_name.clone(),
    }
}

/// How often the API server version is re-read.
const VERSION_REFRESH: Duration = Duration::from_secs(600);

/// A client from `--kubeconfig`, or the usual inference (in-cluster service account,
/// `$KUBECONFIG`, `~/.kube/config`).
async fn kube_client(args: &ServeArgs) -> anyhow::Result<::kube::Client> {
    let config = match &args.kubeconfig {
        Some(path) => {
            let kubeconfig = ::kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            ::kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                .await
                .with_context(|| format!("using kubeconfig {}", path.display()))?
        }
        None => ::kube::Config::infer().await.context(
            "no cluster configuration found (use --standalone, --kubeconfig or --policy-dir)",
        )?,
    };
    ::kube::Client::try_from(config).context("creating the Kubernetes client")
}

fn write_ca(path: &PathBuf, pem: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, pem).with_context(|| format!("writing {}", path.display()))
}

/// Installs the SIGTERM (the kubelet) and SIGINT (a terminal) handlers now; the future resolves
/// on the first of them.
fn stop_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
    })
}

/// Writes one line to stderr in a single write: `eprintln!` writes the pieces of its format one
/// by one (measured with strace: 9 writes for the listening line), and the log lines, on stdout
/// from another thread, land between them on a terminal that shows both (`make run`).
fn say(line: &str) {
    let line = format!("{line}\n");
    let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), line.as_bytes());
}
