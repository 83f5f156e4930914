//! The API server's version, discovered (`GET /version`) at start and followed while podgrace
//! runs: clusters are upgraded under running webhooks, and the engine's `auto` sleep handler
//! depends on the version (native `sleep` from Kubernetes 1.30). Failures are logged and the
//! last known version kept; admission never waits for this.

use std::time::Duration;

use kube::Client;
use tokio::task::JoinHandle;

use crate::protocols::kube_version::KubeVersion;

/// Asks the API server for its version (`GET /version`).
pub async fn discover(client: &Client) -> Option<KubeVersion> {
    match client.apiserver_version().await {
        Ok(info) => {
            let v = KubeVersion::from_parts(&info.major, &info.minor);
            if v.is_none() {
                tracing::warn!(
                    major = info.major,
                    minor = info.minor,
                    "unparsable API server version"
                );
            }
            v
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the API server version");
            None
        }
    }
}

/// Re-discovers the version now and then (clusters are upgraded under running webhooks) and
/// hands each answer to `set`.
pub fn follow(
    client: Client,
    every: Duration,
    set: impl Fn(KubeVersion) + Send + 'static,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = None;
        loop {
            if let Some(v) = discover(&client).await {
                if last != Some(v) {
                    tracing::info!(version = %v, "API server version");
                    last = Some(v);
                }
                set(v);
            }
            tokio::time::sleep(every).await;
        }
    })
}
