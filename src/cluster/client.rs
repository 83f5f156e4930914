//! The Kubernetes client, from a kubeconfig named on the command line, a context of the default
//! kubeconfig, or the usual inference (in-cluster service account, `$KUBECONFIG`,
//! `~/.kube/config`); and the one-line error for an API server that cannot be reached.

use std::path::Path;

use anyhow::Context as _;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// A client, and what the user should know of where it points.
pub struct Connected {
    /// The client.
    pub client: Client,
    /// The API server's URL.
    pub server: String,
    /// The namespace of the kubeconfig's context (or the pod's, in a cluster).
    pub default_namespace: String,
}

/// A client from `kubeconfig` (a file) and `context` when given, inferred otherwise; `hint`
/// ends the error when no configuration is found at all.
pub async fn connect(
    kubeconfig: Option<&Path>,
    context: Option<String>,
    hint: &str,
) -> anyhow::Result<Connected> {
    let options = KubeConfigOptions {
        context: context.clone(),
        ..Default::default()
    };
    let config = match kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .with_context(|| format!("using kubeconfig {}", path.display()))?
        }
        None if context.is_some() => Config::from_kubeconfig(&options)
            .await
            .context("reading the kubeconfig")?,
        None => Config::infer()
            .await
            .with_context(|| format!("no cluster configuration found ({hint})"))?,
    };
    let server = config.cluster_url.to_string();
    let default_namespace = config.default_namespace.clone();
    let client = Client::try_from(config).context("creating the Kubernetes client")?;
    Ok(Connected {
        client,
        server,
        default_namespace,
    })
}

/// One line naming the server and the root cause.
pub fn unreachable(server: &str, e: &(dyn std::error::Error + 'static)) -> anyhow::Error {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    anyhow::anyhow!("cannot reach the Kubernetes API server at {server}: {cause}")
}
