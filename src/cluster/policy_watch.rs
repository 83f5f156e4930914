//! Namespace policies from the cluster: one cluster-wide watch (kube-runtime watcher) of the
//! ConfigMaps named like the policy, selected by `fieldSelector=metadata.name=NAME` so that RBAC
//! can restrict podgrace to exactly those ConfigMaps with `resourceNames`. Every event is parsed
//! and validated on arrival and applied to the [`PolicyCache`]; the admission path never calls
//! the API server.
//!
//! A refused ConfigMap is reported on itself as a Warning Event when a [`PolicyEvents`] is given,
//! and so is one whose policy a new cluster default breaks (the cache re-checks every namespace):
//! the Event names the ConfigMap as this watch last saw it.
//!
//! Relists (the initial list, and after a `410 Gone` or a lost watch) replace the whole set at
//! once, so a ConfigMap deleted while the watch was down disappears too. Watch errors back off
//! (kube-runtime's default: 0.8 s growing to 30 s) while admission keeps serving from the cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use tokio::task::JoinHandle;

use super::policy_events::{self, PolicyEvents};
use crate::policy::parse::layer_from_configmap;
use crate::policy::{PolicyError, PolicyLayer};
use crate::store::cache::{Applied, PolicyCache};

/// Starts the watch; the cache is marked synced after the first complete list.
pub fn watch_policies(
    client: Client,
    cache: Arc<PolicyCache>,
    name: String,
    key: String,
) -> JoinHandle<()> {
    watch_policies_reporting(client, cache, name, key, None)
}

/// [`watch_policies`], reporting every refused ConfigMap to `events` (a Warning Event on it).
pub fn watch_policies_reporting(
    client: Client,
    cache: Arc<PolicyCache>,
    name: String,
    key: String,
    events: Option<PolicyEvents>,
) -> JoinHandle<()> {
    // The ConfigMaps as last seen, by namespace: what an Event on a policy the cluster default
    // broke names.
    let seen: Arc<Mutex<HashMap<String, ObjectReference>>> = Arc::default();
    if let Some(events) = &events {
        let (events, seen) = (events.clone(), seen.clone());
        cache.report_broken_to(move |broken| {
            let regarding = lock(&seen).get(&broken.namespace).cloned();
            if let Some(regarding) = regarding {
                events.broken_by_cluster_default(regarding, broken);
            }
        });
    }
    let remember = events.is_some();
    tokio::spawn(async move {
        let api: Api<ConfigMap> = Api::all(client);
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let mut stream = watcher::watcher(api, config).default_backoff().boxed();
        let mut relist: Vec<(String, Result<PolicyLayer, PolicyError>)> = Vec::new();
        // The listed ConfigMaps by namespace, to report the refused ones once the list is in.
        let mut listed: HashMap<String, ObjectReference> = HashMap::new();
        while let Some(event) = stream.next().await {
            match event {
                Ok(Event::Init) => {
                    relist.clear();
                    listed.clear();
                }
                Ok(Event::InitApply(cm)) => {
                    if let Some(entry) = entry(&cm, &key) {
                        if remember {
                            listed.insert(entry.0.clone(), policy_events::reference(&cm));
                        }
                        relist.push(entry);
                    }
                }
                Ok(Event::InitDone) => {
                    let count = relist.len();
                    // Seen before the cache has them, so that a cluster default arriving
                    // meanwhile finds every namespace it may break.
                    if remember {
                        *lock(&seen) = listed.clone();
                    }
                    let refused = cache.replace_all(std::mem::take(&mut relist));
                    cache.mark_synced();
                    tracing::info!(configmaps = count, name, "policy ConfigMaps listed");
                    if let Some(events) = &events {
                        for (namespace, why) in refused {
                            if let Some(regarding) = listed.remove(&namespace) {
                                events.refused(regarding, &why);
                            }
                        }
                    }
                    listed.clear();
                }
                Ok(Event::Apply(cm)) => {
                    if let Some((namespace, result)) = entry(&cm, &key) {
                        if remember {
                            lock(&seen).insert(namespace.clone(), policy_events::reference(&cm));
                        }
                        if let Applied::Refused(why) = cache.apply(&namespace, result)
                            && let Some(events) = &events
                        {
                            events.refused(policy_events::reference(&cm), &why);
                        }
                    }
                }
                Ok(Event::Delete(cm)) => {
                    if let Some(namespace) = cm.metadata.namespace.as_deref() {
                        cache.remove(namespace);
                        lock(&seen).remove(namespace);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "policy watch failed; retrying, admission serves from the cache")
                }
            }
        }
    })
}

/// The map of ConfigMaps seen; a panic elsewhere cannot leave it half-written (whole entries).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
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
