//! The in-memory policy cache: the last good layer of every namespace, the cluster default, and
//! the effective policy of each, precomputed. Readers take a lock-free snapshot (`ArcSwap`);
//! writers (watch events, file reloads) are serialized and publish a new snapshot, one per
//! change: a relist of every namespace is one swap, so a reader never sees half of it.
//!
//! Every combination goes through [`EffectivePolicy::combine`]. A policy that does not parse,
//! validate or combine with the cluster default never replaces a good one: the namespace keeps
//! its last good policy (or the cluster default if it never had one), and the refusal is logged
//! and counted. A new cluster default re-checks every namespace on top of it; a namespace it
//! breaks keeps its last good combination, and is reported to the listener given to
//! [`PolicyCache::report_broken_to`] (the ConfigMap watch turns it into an Event).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use super::PolicyStore;
use crate::observability::metrics::Metrics;
use crate::policy::{EffectivePolicy, PolicyError, PolicyLayer};

/// What happened to an incoming namespace policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// It is now in effect.
    Accepted,
    /// It was refused; the previous policy (if any) stays.
    Refused(String),
}

/// A namespace policy that a new cluster default does not combine with: the namespace keeps its
/// combination with the previous default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Broken {
    /// The namespace.
    pub namespace: String,
    /// The namespace policy that was checked again (`name@version`).
    pub policy: String,
    /// The new cluster default (`name@version`).
    pub cluster: String,
    /// Why they do not combine.
    pub error: String,
}

/// Who hears of namespace policies a new cluster default broke.
type BrokenListener = Box<dyn Fn(&Broken) + Send + Sync>;

/// A namespace's last good policy: its layer and the combination in effect.
#[derive(Clone)]
struct Entry {
    layer: Arc<PolicyLayer>,
    effective: Arc<EffectivePolicy>,
}

/// What writers hold under the lock; the snapshot is derived from it.
#[derive(Default, Clone)]
struct Layers {
    cluster: Option<Arc<PolicyLayer>>,
    namespaces: BTreeMap<String, Entry>,
}

struct Snapshot {
    default: Arc<EffectivePolicy>,
    cluster: Option<Arc<PolicyLayer>>,
    namespaces: HashMap<String, Arc<EffectivePolicy>>,
}

/// The cache.
pub struct PolicyCache {
    snapshot: ArcSwap<Snapshot>,
    layers: Mutex<Layers>,
    synced: AtomicBool,
    /// Snapshots published so far (each write publishes at most one).
    generation: AtomicU64,
    metrics: Arc<Metrics>,
    on_broken: Mutex<Option<BrokenListener>>,
}

impl PolicyCache {
    /// An empty cache (built-in defaults everywhere), not yet synced.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        PolicyCache {
            snapshot: ArcSwap::from_pointee(Snapshot {
                default: Arc::new(EffectivePolicy::builtin()),
                cluster: None,
                namespaces: HashMap::new(),
            }),
            layers: Mutex::new(Layers::default()),
            synced: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            metrics,
            on_broken: Mutex::new(None),
        }
    }

    /// Calls `listener` for every namespace policy a new cluster default breaks, after the new
    /// default is published (outside the cache's lock). Replaces any previous listener.
    pub fn report_broken_to(&self, listener: impl Fn(&Broken) + Send + Sync + 'static) {
        *self.on_broken.lock().unwrap_or_else(|p| p.into_inner()) = Some(Box::new(listener));
    }

    /// Marks the initial load complete (readiness).
    pub fn mark_synced(&self) {
        self.synced.store(true, Ordering::Release);
    }

    /// Sets the cluster default policy. A refused one keeps the previous default. Every
    /// namespace policy is combined again on top of the new default; one that does not combine
    /// keeps its last good combination (refused, logged and counted).
    pub fn set_cluster(&self, result: Result<PolicyLayer, PolicyError>) -> Applied {
        let mut layers = self.lock();
        let layer = match result {
            Ok(layer) => layer,
            Err(e) => return self.refused(&layers, "cluster", &e.origin, e.to_string()),
        };
        let default = match EffectivePolicy::combine(Some(&layer), None) {
            Ok(p) => Arc::new(p),
            Err(e) => {
                let origin = layer.origin.to_string();
                return self.refused(&layers, "cluster", &origin, e.to_string());
            }
        };
        tracing::info!(policy = %layer.origin, "cluster default policy loaded");
        let cluster = Arc::new(layer);
        let mut next = layers.clone();
        next.cluster = Some(cluster.clone());
        let mut broken = Vec::new();
        for (namespace, entry) in &mut next.namespaces {
            match EffectivePolicy::combine(Some(&cluster), Some(&entry.layer)) {
                Ok(p) => entry.effective = Arc::new(p),
                Err(e) => {
                    let policy = entry.layer.origin.to_string();
                    self.refused(
                        &layers,
                        namespace,
                        &policy,
                        format!(
                            "no longer complete on cluster default {}: {e}",
                            cluster.origin
                        ),
                    );
                    broken.push(Broken {
                        namespace: namespace.clone(),
                        policy,
                        cluster: cluster.origin.to_string(),
                        error: e.to_string(),
                    });
                }
            }
        }
        *layers = next;
        self.publish(&layers, default);
        drop(layers);
        if !broken.is_empty()
            && let Some(listener) = &*self.on_broken.lock().unwrap_or_else(|p| p.into_inner())
        {
            for b in &broken {
                listener(b);
            }
        }
        Applied::Accepted
    }

    /// Applies a namespace policy (from a ConfigMap event or a file).
    pub fn apply(&self, namespace: &str, result: Result<PolicyLayer, PolicyError>) -> Applied {
        let mut layers = self.lock();
        let applied = self.stage(&mut layers, namespace, result);
        if applied == Applied::Accepted {
            self.publish_namespaces(&layers);
        }
        applied
    }

    /// Forgets a namespace's policy (its ConfigMap or file was deleted): the cluster default
    /// applies again.
    pub fn remove(&self, namespace: &str) {
        let mut layers = self.lock();
        if layers.namespaces.remove(namespace).is_some() {
            tracing::info!(
                namespace,
                "namespace policy removed; the cluster default applies"
            );
            self.publish_namespaces(&layers);
        }
    }

    /// Replaces the whole set (initial list or relist): namespaces absent from `entries` lose
    /// their policy; refused entries keep their last good one. Published as one snapshot.
    /// Returns the refused entries: their namespace and why.
    pub fn replace_all(
        &self,
        entries: Vec<(String, Result<PolicyLayer, PolicyError>)>,
    ) -> Vec<(String, String)> {
        let mut layers = self.lock();
        let present: std::collections::HashSet<&str> =
            entries.iter().map(|(ns, _)| ns.as_str()).collect();
        layers
            .namespaces
            .retain(|ns, _| present.contains(ns.as_str()));
        let mut refused = Vec::new();
        for (namespace, result) in entries {
            if let Applied::Refused(why) = self.stage(&mut layers, &namespace, result) {
                refused.push((namespace, why));
            }
        }
        self.publish_namespaces(&layers);
        refused
    }

    /// Namespaces that currently have a policy.
    pub fn namespaces(&self) -> Vec<String> {
        self.lock().namespaces.keys().cloned().collect()
    }

    /// Checks a namespace policy on top of the cluster default and records it in `layers`
    /// (not yet published).
    fn stage(
        &self,
        layers: &mut Layers,
        namespace: &str,
        result: Result<PolicyLayer, PolicyError>,
    ) -> Applied {
        let layer = match result {
            Ok(layer) => layer,
            Err(e) => return self.refused(layers, namespace, &e.origin, e.to_string()),
        };
        if layers
            .namespaces
            .get(namespace)
            .is_some_and(|e| *e.layer == layer)
        {
            return Applied::Accepted;
        }
        match EffectivePolicy::combine(layers.cluster.as_deref(), Some(&layer)) {
            Ok(effective) => {
                tracing::info!(namespace, policy = %layer.origin, "namespace policy loaded");
                layers.namespaces.insert(
                    namespace.to_owned(),
                    Entry {
                        layer: Arc::new(layer),
                        effective: Arc::new(effective),
                    },
                );
                Applied::Accepted
            }
            Err(e) => {
                let origin = layer.origin.to_string();
                self.refused(layers, namespace, &origin, e.to_string())
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Layers> {
        // Writers replace whole entries, so a panic while holding the lock cannot leave Layers
        // half-written: a poisoned lock is still consistent.
        self.layers.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn refused(&self, layers: &Layers, namespace: &str, origin: &str, error: String) -> Applied {
        self.metrics.policy_error(namespace);
        let keeping = if namespace == "cluster" {
            layers.cluster.as_ref().map(|l| l.origin.to_string())
        } else {
            layers
                .namespaces
                .get(namespace)
                .map(|e| e.layer.origin.to_string())
        };
        tracing::error!(
            namespace,
            policy = origin,
            error = %error,
            keeping = keeping.as_deref().unwrap_or("the default"),
            "policy refused"
        );
        Applied::Refused(error)
    }

    /// Publishes the namespaces with the current default.
    fn publish_namespaces(&self, layers: &Layers) {
        let default = self.snapshot.load().default.clone();
        self.publish(layers, default);
    }

    fn publish(&self, layers: &Layers, default: Arc<EffectivePolicy>) {
        let namespaces: HashMap<String, Arc<EffectivePolicy>> = layers
            .namespaces
            .iter()
            .map(|(ns, e)| (ns.clone(), e.effective.clone()))
            .collect();
        self.metrics.namespace_policies.set(namespaces.len() as i64);
        self.snapshot.store(Arc::new(Snapshot {
            default,
            cluster: layers.cluster.clone(),
            namespaces,
        }));
        self.generation.fetch_add(1, Ordering::Relaxed);
    }
}

impl PolicyStore for PolicyCache {
    fn policy_for(&self, namespace: &str) -> Arc<EffectivePolicy> {
        let snap = self.snapshot.load();
        snap.namespaces
            .get(namespace)
            .unwrap_or(&snap.default)
            .clone()
    }

    fn cluster_layer(&self) -> Option<Arc<PolicyLayer>> {
        self.snapshot.load().cluster.clone()
    }

    fn is_ready(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Origin, load_layer};

    fn layer(name: &str, version: &str, yaml: &str) -> Result<PolicyLayer, PolicyError> {
        load_layer(
            yaml,
            Origin {
                name: name.into(),
                version: version.into(),
            },
        )
    }

    fn sleep_of(cache: &PolicyCache, ns: &str) -> u32 {
        cache
            .policy_for(ns)
            .resolve(None, "app", "app:1", None)
            .unwrap()
            .policy
            .sleep
    }

    fn cache() -> PolicyCache {
        PolicyCache::new(Arc::new(Metrics::new()))
    }

    #[test]
    fn applied_policies_take_effect_and_deleted_ones_fall_back_to_the_cluster_default() {
        let c = cache();
        c.set_cluster(layer("cluster", "1", "preStop: {sleepSeconds: 20}"));
        assert_eq!(sleep_of(&c, "shop"), 20);
        assert_eq!(
            c.apply(
                "shop",
                layer("shop/podgrace-policy", "7", "preStop: {sleepSeconds: 33}")
            ),
            Applied::Accepted
        );
        assert_eq!(sleep_of(&c, "shop"), 33);
        assert_eq!(sleep_of(&c, "other"), 20);
        assert!(
            c.policy_for("shop")
                .description()
                .ends_with("shop/podgrace-policy@7")
        );
        c.remove("shop");
        assert_eq!(sleep_of(&c, "shop"), 20);
    }

    #[test]
    fn an_invalid_policy_keeps_the_last_good_one_and_is_counted() {
        let metrics = Arc::new(Metrics::new());
        let c = PolicyCache::new(metrics.clone());
        c.apply("shop", layer("shop/p", "1", "preStop: {sleepSeconds: 12}"));
        let refused = c.apply("shop", layer("shop/p", "2", "preStop: {sleepSecods: 99}"));
        assert!(
            matches!(refused, Applied::Refused(ref e) if e.contains("sleepSecods")),
            "{refused:?}"
        );
        assert_eq!(sleep_of(&c, "shop"), 12);
        assert!(
            metrics
                .render()
                .contains("podgrace_policy_errors_total{namespace=\"shop\"} 1")
        );
    }

    #[test]
    fn a_namespace_that_never_had_a_good_policy_gets_the_default() {
        let c = cache();
        c.apply("shop", layer("shop/p", "1", "shutdownSeconds: -1"));
        assert_eq!(sleep_of(&c, "shop"), 10);
        assert!(c.namespaces().is_empty());
    }

    #[test]
    fn a_policy_incomplete_on_top_of_the_cluster_default_is_refused() {
        let c = cache();
        let refused = c.apply("shop", layer("shop/p", "1", "preStop: {action: nacos}"));
        assert!(
            matches!(refused, Applied::Refused(ref e) if e.contains("preStop.nacos.server")),
            "{refused:?}"
        );
        c.set_cluster(layer(
            "cluster",
            "1",
            "preStop: {nacos: {server: 'http://nacos:8848'}}",
        ));
        assert_eq!(
            c.apply("shop", layer("shop/p", "1", "preStop: {action: nacos}")),
            Applied::Accepted
        );
    }

    #[test]
    fn a_new_cluster_default_reaches_every_namespace() {
        let c = cache();
        c.apply("shop", layer("shop/p", "1", "bufferSeconds: 1"));
        c.set_cluster(layer("cluster", "2", "preStop: {sleepSeconds: 25}"));
        assert_eq!(
            sleep_of(&c, "shop"),
            25,
            "namespace layered on the new default"
        );
        c.set_cluster(layer("cluster", "3", "preStop: {sleepSeconds: oops}"));
        assert_eq!(
            sleep_of(&c, "shop"),
            25,
            "a bad default keeps the last good one"
        );
        assert!(c.cluster_layer().unwrap().origin.version == "2");
    }

    #[test]
    fn a_cluster_default_that_breaks_a_namespace_policy_leaves_it_its_last_good_combination() {
        let metrics = Arc::new(Metrics::new());
        let c = PolicyCache::new(metrics.clone());
        c.set_cluster(layer(
            "cluster",
            "1",
            "preStop: {sleepSeconds: 20, nacos: {server: 'http://nacos:8848'}}",
        ));
        let nacos = "preStop: {action: nacos}";
        assert_eq!(
            c.apply("shop", layer("shop/p", "1", nacos)),
            Applied::Accepted
        );
        c.apply("other", layer("other/p", "1", "bufferSeconds: 1"));
        // The new default drops the server the shop policy relies on.
        c.set_cluster(layer("cluster", "2", "preStop: {sleepSeconds: 25}"));
        let shop = c.policy_for("shop");
        assert!(
            shop.description().contains("cluster@1"),
            "{}",
            shop.description()
        );
        assert!(matches!(
            shop.resolve(None, "app", "app:1", None)
                .unwrap()
                .policy
                .action,
            crate::policy::Action::Nacos(_)
        ));
        assert_eq!(sleep_of(&c, "other"), 25, "the others take the new default");
        assert!(
            metrics
                .render()
                .contains("podgrace_policy_errors_total{namespace=\"shop\"} 1")
        );
    }

    #[test]
    fn the_listener_hears_of_each_namespace_a_new_cluster_default_breaks() {
        let c = cache();
        let heard = Arc::new(Mutex::new(Vec::new()));
        let sink = heard.clone();
        c.report_broken_to(move |b| sink.lock().unwrap().push(b.clone()));
        c.set_cluster(layer(
            "cluster",
            "1",
            "preStop: {nacos: {server: 'http://nacos:8848'}}",
        ));
        c.apply("shop", layer("shop/p", "4", "preStop: {action: nacos}"));
        c.apply("other", layer("other/p", "1", "bufferSeconds: 1"));
        assert!(heard.lock().unwrap().is_empty());
        c.set_cluster(layer("cluster", "2", "preStop: {sleepSeconds: 25}"));
        let heard = heard.lock().unwrap().clone();
        assert_eq!(heard.len(), 1, "{heard:?}");
        assert_eq!(heard[0].namespace, "shop");
        assert_eq!(heard[0].policy, "shop/p@4");
        assert_eq!(heard[0].cluster, "cluster@2");
        assert!(heard[0].error.contains("preStop.nacos.server"), "{heard:?}");
        // The listener runs outside the lock, after the new default is published.
        let c = Arc::new(cache());
        let seen = Arc::new(Mutex::new(None));
        let (reader, sink) = (c.clone(), seen.clone());
        c.report_broken_to(move |_| {
            let unlocked = reader.layers.try_lock().is_ok();
            let published = reader.cluster_layer().unwrap().origin.version == "2";
            *sink.lock().unwrap() = Some((unlocked, published));
        });
        c.set_cluster(layer(
            "cluster",
            "1",
            "preStop: {nacos: {server: 'http://nacos:8848'}}",
        ));
        c.apply("shop", layer("shop/p", "1", "preStop: {action: nacos}"));
        c.set_cluster(layer("cluster", "2", "preStop: {sleepSeconds: 4}"));
        assert_eq!(*seen.lock().unwrap(), Some((true, true)));
    }

    #[test]
    fn a_relist_is_published_as_one_snapshot() {
        let c = cache();
        let before = c.generation.load(Ordering::Relaxed);
        let entries = (0..200)
            .map(|i| {
                let ns = format!("ns{i}");
                let l = layer(&format!("{ns}/p"), "1", "preStop: {sleepSeconds: 7}");
                (ns, l)
            })
            .collect();
        c.replace_all(entries);
        assert_eq!(c.generation.load(Ordering::Relaxed), before + 1);
        assert_eq!(sleep_of(&c, "ns199"), 7);
        assert_eq!(c.namespaces().len(), 200);
    }

    #[test]
    fn replace_all_drops_vanished_namespaces_and_keeps_last_good_for_refused_ones() {
        let c = cache();
        c.apply("a", layer("a/p", "1", "preStop: {sleepSeconds: 1}"));
        c.apply("b", layer("b/p", "1", "preStop: {sleepSeconds: 2}"));
        let refused = c.replace_all(vec![("b".into(), layer("b/p", "2", "nonsense: true"))]);
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].0, "b");
        assert!(refused[0].1.contains("nonsense"), "{refused:?}");
        assert_eq!(sleep_of(&c, "a"), 10, "a vanished");
        assert_eq!(sleep_of(&c, "b"), 2, "b refused, last good kept");
        assert!(!c.is_ready());
        c.mark_synced();
        assert!(c.is_ready());
    }
}
