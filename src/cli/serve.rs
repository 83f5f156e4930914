//! `podgrace serve`: the flags turned into a [`WebhookConfig`], the signal handlers installed, and
//! the library's [`Webhook`] started and run until SIGTERM starts its drain.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use super::{CertificateSource, ServeArgs};
use crate::observability::metrics::Metrics;
use crate::server::certificates::self_managed;
use crate::server::webhook::{
    CertificateConfig, NamespacePolicies, PolicyConfig, Webhook, WebhookConfig,
};
use crate::server::{PolicyConfigMap, ServerOptions};

/// How often the admission summary is logged at `info`.
const SUMMARY_EVERY: Duration = Duration::from_secs(60);

pub(super) fn run(args: ServeArgs, metrics: Arc<Metrics>) -> anyhow::Result<ExitCode> {
    let config = config(&args)?;
    let runtime = Webhook::runtime().context("starting the async runtime")?;
    runtime.block_on(serve(config, args.standalone, metrics))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(
    config: WebhookConfig,
    standalone: bool,
    metrics: Arc<Metrics>,
) -> anyhow::Result<()> {
    let webhook = Webhook::start(config, metrics).await?;
    if let Some(ca) = webhook.ca_written() {
        say(&format!(
            "podgrace: standalone mode; CA certificate written to {} (curl --cacert {})",
            ca.display(),
            ca.display()
        ));
    }
    if let (Some(addr), true) = (webhook.metrics_addr(), standalone) {
        say(&format!("podgrace: metrics on http://{addr}/metrics"));
    }
    // Handlers first: a SIGTERM that arrives once the port is open must start the drain, never
    // be lost (inherited as ignored) or kill the process outright (the default action).
    let stop = stop_signal()?;
    let bound = webhook.bind().await?;
    if standalone {
        say(&format!(
            "podgrace: listening on https://{}",
            bound.local_addr()
        ));
    }
    bound.run(stop).await
}

/// The library's configuration from the flags.
fn config(args: &ServeArgs) -> anyhow::Result<WebhookConfig> {
    let secs = Duration::from_secs;
    let certificates = match (args.standalone, args.certificates) {
        (true, CertificateSource::SelfManaged) => anyhow::bail!(
            "--certificates self keeps a certificate in the cluster; --standalone generates its own without one: use one or the other"
        ),
        (true, CertificateSource::Files) => {
            let mut sans = vec![
                "localhost".to_owned(),
                "127.0.0.1".to_owned(),
                "::1".to_owned(),
            ];
            sans.extend(args.san.iter().cloned());
            CertificateConfig::Generated {
                sans,
                ca_out: args.ca_out.clone(),
            }
        }
        (false, CertificateSource::SelfManaged) => {
            CertificateConfig::SelfManaged(self_managed_settings(args))
        }
        (false, CertificateSource::Files) => CertificateConfig::Files {
            cert: args.tls_cert_file.clone(),
            key: args.tls_key_file.clone(),
        },
    };
    let namespaces = match (&args.policy_dir, args.standalone) {
        (Some(dir), _) => NamespacePolicies::Dir(dir.clone()),
        (None, true) => NamespacePolicies::None,
        (None, false) => NamespacePolicies::Cluster {
            events: args.policy_events,
            instance: args.pod_name.clone(),
        },
    };
    Ok(WebhookConfig {
        listen: args.listen,
        certificates,
        policies: PolicyConfig {
            cluster_policy: args.cluster_policy.clone(),
            namespaces,
            configmap: PolicyConfigMap {
                name: args.policy_name.clone(),
                key: args.policy_key.clone(),
            },
        },
        metrics_listen: args.metrics_listen,
        kubeconfig: args.kubeconfig.clone(),
        kube_version: args.kube_version,
        server: ServerOptions {
            max_body_bytes: args.max_body_bytes,
            body_budget_bytes: args.body_budget_bytes,
            request_timeout: secs(args.request_timeout_seconds),
            header_timeout: secs(args.header_timeout_seconds),
            handshake_timeout: secs(args.header_timeout_seconds),
            idle_timeout: secs(args.idle_timeout_seconds),
            max_connections: args.max_connections,
            drain: secs(args.drain_seconds),
            shutdown_timeout: secs(args.shutdown_timeout_seconds),
            ..ServerOptions::default()
        },
        reload_poll: secs(args.reload_poll_seconds.max(1)),
        summary_every: Some(SUMMARY_EVERY),
    })
}

/// `--certificates self`: the Secret, names, lifetimes; the namespace, when not given, is the
/// client's (the pod's own in a cluster).
fn self_managed_settings(args: &ServeArgs) -> self_managed::Settings {
    let secs = Duration::from_secs;
    self_managed::Settings {
        namespace: args.namespace.clone().unwrap_or_default(),
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
