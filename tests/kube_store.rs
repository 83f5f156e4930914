//! The ConfigMap policy store against the test API server (tests/common/kube_api.rs), which
//! speaks the documented list/watch protocol including its failure modes: initial list, events,
//! invalid policies, relist after 410 Gone, dropped connections, an API server that goes away.

mod common;

use common::sleep_of;
use common::wait::eventually;

use std::sync::Arc;
use std::time::Duration;

use common::kube_api::FakeApi;
use common::policy_watch::{KEY, NAME, Watched, sleep_policy};
use podgrace::cluster::version_discovery;
use podgrace::observability::metrics::Metrics;
use podgrace::store::PolicyStore;
use podgrace::store::cache::PolicyCache;

#[tokio::test]
async fn the_initial_list_loads_valid_policies_and_refuses_invalid_ones() {
    let s = Watched::start(|api| {
        api.put("shop", NAME, &[(KEY, &sleep_policy(21))]);
        api.put("broken", NAME, &[(KEY, "preStop: {sleepSeconds: many}")]);
        api.put("shop", "some-other-configmap", &[(KEY, &sleep_policy(99))]);
    })
    .await;
    eventually(Duration::from_secs(5), "synced", || s.cache.is_ready()).await;
    assert_eq!(sleep_of(&*s.cache, "shop"), 21);
    assert_eq!(sleep_of(&*s.cache, "broken"), 10, "the default applies");
    assert!(
        s.cache
            .policy_for("shop")
            .description()
            .contains("configmap shop/podgrace-policy@")
    );
    let m = s.metrics.render();
    assert!(
        m.contains(r#"podgrace_policy_errors_total{namespace="broken"} 1"#),
        "{m}"
    );
    assert!(m.contains("podgrace_namespace_policies 1"), "{m}");
    // Every request selected the policy name, which is what RBAC resourceNames allows.
    for r in s.api.requests() {
        assert!(
            r.contains("fieldSelector=metadata.name%3Dpodgrace-policy"),
            "{r}"
        );
    }
}

#[tokio::test]
async fn readiness_waits_for_the_first_complete_list() {
    let s = Watched::start(|api| {
        api.hold_lists(true);
        api.put("shop", NAME, &[(KEY, &sleep_policy(21))]);
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!s.cache.is_ready());
    s.api.hold_lists(false);
    eventually(Duration::from_secs(5), "synced", || s.cache.is_ready()).await;
    assert_eq!(sleep_of(&*s.cache, "shop"), 21);
}

#[tokio::test]
async fn created_changed_and_deleted_configmaps_take_effect_without_a_restart() {
    let s = Watched::start(|_| {}).await;
    eventually(Duration::from_secs(5), "synced", || s.cache.is_ready()).await;
    s.api.put("shop", NAME, &[(KEY, &sleep_policy(15))]);
    eventually(Duration::from_secs(1), "created", || {
        sleep_of(&*s.cache, "shop") == 15
    })
    .await;
    s.api.put("shop", NAME, &[(KEY, &sleep_policy(16))]);
    eventually(Duration::from_secs(1), "changed", || {
        sleep_of(&*s.cache, "shop") == 16
    })
    .await;
    // An invalid change keeps the last good policy.
    s.api
        .put("shop", NAME, &[(KEY, "preStop: {action: teleport}")]);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sleep_of(&*s.cache, "shop"), 16);
    s.api.delete("shop", NAME);
    eventually(Duration::from_secs(1), "deleted", || {
        sleep_of(&*s.cache, "shop") == 10
    })
    .await;
}

#[tokio::test]
async fn a_410_gone_relists_and_drops_what_was_deleted_meanwhile() {
    let s = Watched::start(|api| {
        api.put("a", NAME, &[(KEY, &sleep_policy(11))]);
        api.put("b", NAME, &[(KEY, &sleep_policy(12))]);
    })
    .await;
    eventually(Duration::from_secs(5), "synced", || s.cache.is_ready()).await;
    s.api.delete_silently("a", NAME);
    s.api.put("c", NAME, &[(KEY, &sleep_policy(13))]);
    s.api.compact();
    eventually(Duration::from_secs(5), "relisted", || {
        sleep_of(&*s.cache, "a") == 10 && sleep_of(&*s.cache, "c") == 13
    })
    .await;
    assert_eq!(sleep_of(&*s.cache, "b"), 12);
    let lists = s
        .api
        .requests()
        .iter()
        .filter(|r| !r.contains("watch="))
        .count();
    assert!(lists >= 2, "a second list happened: {:?}", s.api.requests());
}

#[tokio::test]
async fn a_dropped_watch_reconnects_and_resumes() {
    let s = Watched::start(|api| {
        api.put("a", NAME, &[(KEY, &sleep_policy(11))]);
    })
    .await;
    eventually(Duration::from_secs(5), "synced", || s.cache.is_ready()).await;
    s.api.drop_watches();
    s.api.put("a", NAME, &[(KEY, &sleep_policy(14))]);
    eventually(Duration::from_secs(10), "resumed", || {
        sleep_of(&*s.cache, "a") == 14
    })
    .await;
}

#[tokio::test]
async fn losing_the_api_server_keeps_the_cache_serving() {
    let mut s = Watched::start(|api| {
        api.put("a", NAME, &[(KEY, &sleep_policy(11))]);
    })
    .await;
    eventually(Duration::from_secs(5), "synced", || s.cache.is_ready()).await;
    s.api.stop();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(s.cache.is_ready());
    assert_eq!(sleep_of(&*s.cache, "a"), 11);
}

#[tokio::test]
async fn paged_lists_are_followed_to_the_end() {
    let s = Watched::start(|api| {
        for i in 0..1200 {
            api.put(&format!("ns-{i:04}"), NAME, &[(KEY, &sleep_policy(20))]);
        }
    })
    .await;
    eventually(Duration::from_secs(20), "synced", || s.cache.is_ready()).await;
    assert_eq!(s.cache.namespaces().len(), 1200);
    assert!(
        s.api.requests().iter().any(|r| r.contains("continue=")),
        "pages were requested"
    );
}

#[tokio::test]
async fn the_api_server_version_is_discovered() {
    let api = FakeApi::start_with(NAME, ("1", "29+")).await;
    let v = version_discovery::discover(&api.client()).await.unwrap();
    assert_eq!(v.to_string(), "1.29");
    assert!(!v.has_native_sleep());
}

/// `serve` follows the API server's version into the engine's cluster facts: an upgrade under a
/// running webhook switches the `auto` sleep handler to the native one.
#[tokio::test]
async fn an_upgraded_api_server_is_followed_into_the_admission_state() {
    let api = FakeApi::start_with(NAME, ("1", "29")).await;
    let state = podgrace::server::AppState::new(
        Arc::new(PolicyCache::new(Arc::new(Metrics::new()))),
        Arc::new(Metrics::new()),
        None,
        podgrace::server::PolicyConfigMap {
            name: NAME.to_owned(),
            key: KEY.to_owned(),
        },
        &podgrace::server::ServerOptions::default(),
    );
    let follower = state.clone();
    let task = version_discovery::follow(api.client(), Duration::from_millis(50), move |v| {
        follower.set_kube_version(Some(v))
    });
    let version = || state.cluster_info().kube_version.map(|v| v.to_string());
    eventually(Duration::from_secs(10), "1.29 discovered", || {
        version().as_deref() == Some("1.29")
    })
    .await;
    api.set_version("1", "33");
    eventually(Duration::from_secs(10), "1.33 followed", || {
        version().as_deref() == Some("1.33")
    })
    .await;
    assert!(
        state
            .cluster_info()
            .kube_version
            .unwrap()
            .has_native_sleep()
    );
    task.abort();
}
