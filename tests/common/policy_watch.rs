//! The namespace policy watch against the test API server ([`FakeApi`]): the ConfigMap name and
//! key podgrace watches, a policy setting one drain sleep, and the watch started on a new cache.

use std::sync::Arc;
use std::time::Duration;

use podgrace::cluster::policy_events::PolicyEvents;
use podgrace::cluster::policy_watch::{watch_policies, watch_policies_reporting};
use podgrace::observability::metrics::Metrics;
use podgrace::store::PolicyStore;
use podgrace::store::cache::PolicyCache;
use tokio::task::JoinHandle;

use super::kube_api::FakeApi;
use super::wait::eventually;

/// The name of the policy ConfigMaps.
pub const NAME: &str = "podgrace-policy";
/// The key of the policy in them.
pub const KEY: &str = "policy.yaml";

/// A namespace policy setting the drain sleep only, which [`super::sleep_of`] reads back.
pub fn sleep_policy(sleep: u32) -> String {
    format!("preStop:\n  sleepSeconds: {sleep}\n")
}

/// A test API server, a new policy cache and the tasks that fill it from the server; the tasks
/// are aborted when this is dropped.
pub struct Watched {
    /// The API server.
    pub api: FakeApi,
    /// The cache the watch fills.
    pub cache: Arc<PolicyCache>,
    /// The cache's metrics.
    pub metrics: Arc<Metrics>,
    /// The watch and what goes with it, aborted on drop.
    pub tasks: Vec<JoinHandle<()>>,
}

impl Drop for Watched {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Watched {
    /// The API server holding what `before` put in it, watched by [`watch_policies`]. Returns at
    /// once: the caller sees the first list arrive (or not).
    pub async fn start(before: impl FnOnce(&FakeApi)) -> Self {
        let api = FakeApi::start(NAME).await;
        before(&api);
        let metrics = Arc::new(Metrics::new());
        let cache = Arc::new(PolicyCache::new(metrics.clone()));
        let watch = watch_policies(api.client(), cache.clone(), NAME.into(), KEY.into());
        Watched {
            api,
            cache,
            metrics,
            tasks: vec![watch],
        }
    }

    /// The API server holding what `before` put in it, watched by [`watch_policies_reporting`]
    /// with Events published as reporting instance `instance`; returns once the first list is in.
    pub async fn reporting(instance: &str, before: impl FnOnce(&FakeApi)) -> Self {
        let api = FakeApi::start(NAME).await;
        before(&api);
        let metrics = Arc::new(Metrics::new());
        let cache = Arc::new(PolicyCache::new(metrics.clone()));
        let (events, publisher) = PolicyEvents::start(api.client(), Some(instance.into()));
        let watch = watch_policies_reporting(
            api.client(),
            cache.clone(),
            NAME.into(),
            KEY.into(),
            Some(events),
        );
        eventually(Duration::from_secs(5), "synced", || cache.is_ready()).await;
        Watched {
            api,
            cache,
            metrics,
            tasks: vec![publisher, watch],
        }
    }
}
