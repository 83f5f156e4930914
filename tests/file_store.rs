//! Policies from files: the cluster default mounted from a ConfigMap (updated by the kubelet's
//! `..data` symlink swap) and the standalone mode's directory of namespace policies.

mod common;

use common::wait::eventually;
use common::{kubelet_write, sleep_of};

use std::sync::Arc;
use std::time::Duration;

use podgrace::observability::metrics::Metrics;
use podgrace::store::cache::PolicyCache;
use podgrace::store::files::{watch_cluster_policy, watch_namespace_dir};

#[tokio::test]
async fn the_cluster_default_follows_its_mounted_configmap_and_keeps_the_last_good_one() {
    let dir = tempfile::tempdir().unwrap();
    kubelet_write(
        dir.path(),
        "..rev1",
        &[("policy.yaml", "preStop: {sleepSeconds: 17}")],
    );
    let metrics = Arc::new(Metrics::new());
    let cache = Arc::new(PolicyCache::new(metrics.clone()));
    // A poll of an hour: only the directory watch can see the swap in time.
    let _w = watch_cluster_policy(
        cache.clone(),
        dir.path().join("policy.yaml"),
        "policy.yaml".into(),
        Duration::from_secs(3600),
    );
    assert_eq!(sleep_of(&*cache, "any"), 17, "loaded at start");
    kubelet_write(
        dir.path(),
        "..rev2",
        &[("policy.yaml", "preStop: {sleepSeconds: 18}")],
    );
    eventually(Duration::from_secs(3), "reloaded", || {
        sleep_of(&*cache, "any") == 18
    })
    .await;
    kubelet_write(
        dir.path(),
        "..rev3",
        &[("policy.yaml", "preStop: {sleepSeconds: eighteen}")],
    );
    eventually(Duration::from_secs(3), "refusal counted", || {
        metrics
            .render()
            .contains(r#"podgrace_policy_errors_total{namespace="cluster"} 1"#)
    })
    .await;
    assert_eq!(sleep_of(&*cache, "any"), 18, "last good kept");
}

#[tokio::test]
async fn a_directory_of_namespace_policies_is_followed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("shop.yaml"), "preStop: {sleepSeconds: 21}").unwrap();
    std::fs::write(dir.path().join("README.md"), "not a policy").unwrap();
    let cache = Arc::new(PolicyCache::new(Arc::new(Metrics::new())));
    let _w = watch_namespace_dir(
        cache.clone(),
        dir.path().to_owned(),
        "policy.yaml".into(),
        Duration::from_secs(3600),
    );
    assert_eq!(sleep_of(&*cache, "shop"), 21);
    assert_eq!(cache.namespaces(), ["shop"]);
    std::fs::write(dir.path().join("web.yaml"), "preStop: {sleepSeconds: 22}").unwrap();
    eventually(Duration::from_secs(3), "added", || {
        sleep_of(&*cache, "web") == 22
    })
    .await;
    std::fs::remove_file(dir.path().join("shop.yaml")).unwrap();
    eventually(Duration::from_secs(3), "removed", || {
        sleep_of(&*cache, "shop") == 10
    })
    .await;
}
