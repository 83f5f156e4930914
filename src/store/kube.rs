//! Namespace policies from the cluster: one cluster-wide watch (kube-runtime watcher) of the
//! ConfigMaps named like the policy, selected by `fieldSelector=metadata.name=NAME` so that RBAC
//! can restrict podgrace to exactly those ConfigMaps with `resourceNames`. Every event is parsed
//! and validated on arrival and applied to the [`PolicyCache`]; the admission path never calls
//! the API server.
//!
//! Relists (the initial list, and after a `410 Gone` or a lost watch) replace the whole set at
//! once, so a ConfigMap deleted while the watch was down disappears too. Watch errors back off
//! (kube-runtime's default: 0.8 s growing to 30 s) while admission keeps serving from the cache.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use tokio::task::JoinHandle;

use super::cache::PolicyCache;
use crate::policy::parse::layer_from_configmap;
use crate::policy::{PolicyError, PolicyLayer};

/// Starts the watch; the cache is marked synced after the first complete list.
pub fn watch_policies(
    client: Client,
    cache: Arc<PolicyCache>,
    name: String,
    key: String,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let api: Api<ConfigMap> = Api::all(client);
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let mut events = watcher::watcher(api, config).default_backoff().boxed();
        let mut relist: Vec<(String, Result<PolicyLayer, PolicyError>)> = Vec::new();
        while let Some(event) = events.next().await {
            match event {
                Ok(Event::Init) => relist.clear(),
                Ok(Event::InitApply(cm)) => {
                    if let Some(entry) = entry(&cm, &key) {
                        relist.push(entry);
                    }
                }
                Ok(Event::InitDone) => {
                    let count = relist.len();
                    cache.replace_all(std::mem::take(&mut relist));
                    cache.mark_synced();
                    tracing::info!(configmaps = count, name, "policy ConfigMaps listed");
                }
                Ok(Event::Apply(cm)) => {
                    if let Some((namespace, result)) = entry(&cm, &key) {
                        cache.apply(&namespace, result);
                    }
                }
                Ok(Event::Delete(cm)) => {
                    if let Some(namespace) = cm.metadata.namespace.as_deref() {
                        cache.remove(namespace);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "policy watch failed; retrying, admission serves from the cache")
                }
            }
        }
    })
}

/// A ConfigMap as a cache entry: its namespace and its parsed policy (errors name the
/// ConfigMap and its resourceVersion).
fn entry(cm: &ConfigMap, key: &str) -> Option<(String, Result<PolicyLayer, PolicyError>)> {
    let namespace = cm.metadata.namespace.clone()?;
    let rv = cm
        .metadata
        .resource_version
        .as_deref()
        .unwrap_or("?")
        .to_owned();
    let result = layer_from_configmap(cm, key).map_err(|mut e| {
        e.origin = format!("{}@{rv}", e.origin);
        e
    });
    Some((namespace, result))
}
