//! Refused namespace policy ConfigMaps become Warning Events on them, against the test API server
//! (tests/common/kube_api.rs), which validates each Event as the API server validates an
//! `events.k8s.io/v1` Event: one Event per refused resourceVersion, naming the ConfigMap, its
//! resourceVersion and the validation message; nothing for accepted policies; the policy watch
//! unaffected when Events are forbidden. A cluster default that breaks a namespace policy gets an
//! Event on that namespace's ConfigMap, once per resourceVersion and cluster default. And the
//! real binary, `serve --kubeconfig` against the test API server: Events on by default with the
//! pod name as reporting instance (two replicas: one Event each, told apart by it), none with
//! `--policy-events=false`, and one when its `--cluster-policy` file changes to a default that
//! breaks a namespace policy.

mod common;

use common::sleep_of;
use common::wait::eventually;

use std::sync::Arc;
use std::time::Duration;

use common::kube_api::FakeApi;
use common::policy_watch::{KEY, NAME, Watched, sleep_policy};
use podgrace::cluster::policy_events::{self, PolicyEvents};
use podgrace::cluster::policy_watch::watch_policies_reporting;
use podgrace::observability::metrics::Metrics;
use podgrace::store::PolicyStore;
use podgrace::store::cache::PolicyCache;
use podgrace::store::files::watch_cluster_policy;
use serde_json::Value;

const INSTANCE: &str = "podgrace-7d9f8b6c5-x2x9q";

/// Compacts the API server's history, so that the watch is told its resource version is gone,
/// and waits for the relist that follows (a list request, not a watch).
async fn compact_and_await_relist(api: &FakeApi) {
    api.compact();
    let lists_before = api.requests().len();
    eventually(Duration::from_secs(10), "relisted", || {
        api.requests()[lists_before..]
            .iter()
            .any(|r| r.starts_with("GET") && !r.contains("watch="))
    })
    .await;
}

const BAD: &str = "preStop: {sleepSecods: 99}";

fn events_for(api: &FakeApi, namespace: &str) -> Vec<Value> {
    api.events()
        .into_iter()
        .filter(|e| e["metadata"]["namespace"] == namespace)
        .collect()
}

/// What `kubectl describe configmap` shows of a podgrace Warning Event on the policy ConfigMap
/// of `namespace` at `rv`, checked field by field; its note, for the caller to check further.
fn assert_policy_event<'a>(
    event: &'a Value,
    (reason, action): (&str, &str),
    namespace: &str,
    rv: u64,
) -> &'a str {
    assert_eq!(event["apiVersion"], "events.k8s.io/v1", "{event:#}");
    assert_eq!(event["type"], "Warning");
    assert_eq!(event["reason"], reason);
    assert_eq!(event["action"], action);
    assert_eq!(event["reportingController"], "podgrace");
    assert_eq!(event["reportingInstance"], INSTANCE);
    let regarding = &event["regarding"];
    assert_eq!(regarding["apiVersion"], "v1");
    assert_eq!(regarding["kind"], "ConfigMap");
    assert_eq!(regarding["name"], NAME);
    assert_eq!(regarding["namespace"], namespace);
    assert_eq!(regarding["uid"], format!("uid-{namespace}-{NAME}"));
    assert_eq!(regarding["resourceVersion"], rv.to_string());
    let note = event["note"].as_str().unwrap();
    assert!(note.contains(&format!("resourceVersion {rv}")), "{note}");
    note
}

/// The Event on a refused policy ConfigMap.
fn assert_refusal_event(event: &Value, namespace: &str, rv: u64, message_part: &str) {
    let reason = (policy_events::REASON, policy_events::ACTION);
    let note = assert_policy_event(event, reason, namespace, rv);
    assert!(
        note.contains(&format!("configmap {namespace}/{NAME}@{rv}")),
        "{note}"
    );
    assert!(note.contains(message_part), "{note}");
}

#[tokio::test]
async fn a_configmap_refused_in_the_initial_list_gets_a_warning_event_with_the_validation_message()
{
    let mut rvs = Vec::new();
    let s = Watched::reporting(INSTANCE, |api| {
        api.put("shop", NAME, &[(KEY, &sleep_policy(21))]);
        rvs.push(api.put("broken", NAME, &[(KEY, BAD)]));
    })
    .await;
    eventually(Duration::from_secs(5), "an Event", || {
        !s.api.events().is_empty()
    })
    .await;
    // Time for a wrong second one to arrive.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let events = s.api.events();
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_refusal_event(&events[0], "broken", rvs[0], "sleepSecods");
    assert_eq!(sleep_of(&*s.cache, "shop"), 21);
}

#[tokio::test]
async fn each_refused_resource_version_gets_one_event_and_accepted_ones_none() {
    let s = Watched::reporting(INSTANCE, |api| {
        api.put("shop", NAME, &[(KEY, &sleep_policy(15))]);
    })
    .await;
    let first = s.api.put("shop", NAME, &[(KEY, BAD)]);
    eventually(Duration::from_secs(5), "the first Event", || {
        events_for(&s.api, "shop").len() == 1
    })
    .await;
    let second = s
        .api
        .put("shop", NAME, &[(KEY, "preStop: {action: teleport}")]);
    eventually(Duration::from_secs(5), "the second Event", || {
        events_for(&s.api, "shop").len() == 2
    })
    .await;
    // An accepted version, then a relist that delivers every ConfigMap again (410 Gone): the
    // refused version delivered again is not reported again.
    s.api.put("shop", NAME, &[(KEY, &sleep_policy(16))]);
    let third = s.api.put("other", NAME, &[(KEY, BAD)]);
    eventually(Duration::from_secs(5), "the third Event", || {
        events_for(&s.api, "other").len() == 1
    })
    .await;
    compact_and_await_relist(&s.api).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sleep_of(&*s.cache, "shop"), 16);

    let shop = events_for(&s.api, "shop");
    assert_eq!(shop.len(), 2, "{shop:#?}");
    let by_rv = |rv: u64| {
        let rv = rv.to_string();
        shop.iter()
            .find(|e| e["regarding"]["resourceVersion"].as_str() == Some(rv.as_str()))
            .unwrap_or_else(|| panic!("no Event for {rv}: {shop:#?}"))
    };
    assert_refusal_event(by_rv(first), "shop", first, "sleepSecods");
    assert_refusal_event(by_rv(second), "shop", second, "teleport");
    let other = events_for(&s.api, "other");
    assert_eq!(other.len(), 1, "{other:#?}");
    assert_refusal_event(&other[0], "other", third, "sleepSecods");
    // Each is a new Event, never a patch of the previous one.
    assert!(
        !s.api.requests().iter().any(|r| r.starts_with("PATCH")),
        "{:?}",
        s.api.requests()
    );
}

#[tokio::test]
async fn forbidden_events_leave_the_policy_watch_working_and_are_tried_again_on_the_next_delivery()
{
    let s = Watched::reporting(INSTANCE, |api| api.allow_events(false)).await;
    let refused = s.api.put("shop", NAME, &[(KEY, BAD)]);
    eventually(Duration::from_secs(5), "the refused POST", || {
        s.api
            .requests()
            .iter()
            .any(|r| r.starts_with("POST /apis/events.k8s.io/v1/namespaces/shop/events"))
    })
    .await;
    assert!(s.api.events().is_empty());
    // Policies still flow.
    s.api.put("cafe", NAME, &[(KEY, &sleep_policy(17))]);
    eventually(Duration::from_secs(5), "cafe loaded", || {
        sleep_of(&*s.cache, "cafe") == 17
    })
    .await;
    // Granted again, the same version delivered again by a relist is reported this time.
    s.api.allow_events(true);
    s.api.compact();
    eventually(
        Duration::from_secs(10),
        "the Event after the relist",
        || events_for(&s.api, "shop").len() == 1,
    )
    .await;
    assert_refusal_event(
        &events_for(&s.api, "shop")[0],
        "shop",
        refused,
        "sleepSecods",
    );
}

#[tokio::test]
async fn a_huge_validation_message_still_makes_an_event_the_api_server_accepts() {
    // An unknown key of 1,000 characters (YAML's limit for a plain key): the message names it
    // twice, far over 1 kB.
    let key = format!("unknownKey{}", "x".repeat(990));
    let s = Watched::reporting(INSTANCE, |_| {}).await;
    s.api.put("shop", NAME, &[(KEY, &format!("{key}: 1\n"))]);
    eventually(Duration::from_secs(5), "the Event", || {
        events_for(&s.api, "shop").len() == 1
    })
    .await;
    let note = events_for(&s.api, "shop")[0]["note"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        note.len() <= 1024 && note.len() > 1000,
        "{} {note}",
        note.len()
    );
    assert!(
        note.contains("configmap shop/podgrace-policy@") && note.contains("unknownKeyxxx"),
        "{note}"
    );
}

/// A cluster default with the Nacos server a namespace policy relies on, and two that drop it.
const NACOS_DEFAULT: &str = "preStop: {nacos: {server: 'http://nacos:8848'}}\n";
const PLAIN_DEFAULT: &str = "preStop: {sleepSeconds: 25}\n";
const OTHER_PLAIN_DEFAULT: &str = "preStop: {sleepSeconds: 26}\n";
const NACOS_POLICY: &str = "preStop: {action: nacos}\n";

/// The Event on a ConfigMap whose policy the cluster default `cluster` (its file) broke.
fn assert_cluster_default_event(event: &Value, namespace: &str, rv: u64, cluster: &str) {
    let reason = (
        policy_events::REASON_CLUSTER_DEFAULT,
        policy_events::ACTION_CLUSTER_DEFAULT,
    );
    let note = assert_policy_event(event, reason, namespace, rv);
    assert!(
        note.contains(&format!("new cluster default {cluster}@")),
        "{note}"
    );
    assert!(note.contains("preStop.nacos.server"), "{note}");
}

fn uses_nacos(cache: &PolicyCache, namespace: &str) -> bool {
    matches!(
        cache
            .policy_for(namespace)
            .resolve(None, "app", "app:1", None)
            .unwrap()
            .policy
            .action,
        podgrace::policy::Action::Nacos(_)
    )
}

#[tokio::test]
async fn a_cluster_default_that_breaks_a_namespace_policy_gets_one_event_per_version_and_default() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = dir.path().join("cluster.yaml");
    std::fs::write(&cluster, NACOS_DEFAULT).unwrap();
    let api = FakeApi::start(NAME).await;
    let shop = api.put("shop", NAME, &[(KEY, NACOS_POLICY)]);
    api.put("cafe", NAME, &[(KEY, &sleep_policy(12))]);
    let metrics = Arc::new(Metrics::new());
    let cache = Arc::new(PolicyCache::new(metrics.clone()));
    let _cluster_watch = watch_cluster_policy(
        cache.clone(),
        cluster.clone(),
        KEY.into(),
        Duration::from_millis(50),
    );
    let (events, publisher) = PolicyEvents::start(api.client(), Some(INSTANCE.into()));
    let watch = watch_policies_reporting(
        api.client(),
        cache.clone(),
        NAME.into(),
        KEY.into(),
        Some(events),
    );
    let s = Watched {
        api,
        cache,
        metrics,
        tasks: vec![publisher, watch],
    };
    eventually(Duration::from_secs(5), "synced", || s.cache.is_ready()).await;
    assert!(uses_nacos(&s.cache, "shop"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(s.api.events().is_empty(), "{:#?}", s.api.events());

    // The new default drops the Nacos server: shop keeps its combination with the old one, and
    // its ConfigMap gets an Event naming the new default; cafe takes the new default, silently.
    std::fs::write(&cluster, PLAIN_DEFAULT).unwrap();
    eventually(Duration::from_secs(5), "cafe on the new default", || {
        sleep_of(&*s.cache, "cafe") == 12 && sleep_of(&*s.cache, "other") == 25
    })
    .await;
    eventually(Duration::from_secs(5), "the Event on shop", || {
        events_for(&s.api, "shop").len() == 1
    })
    .await;
    let cluster_name = cluster.display().to_string();
    assert_cluster_default_event(&events_for(&s.api, "shop")[0], "shop", shop, &cluster_name);
    assert!(
        uses_nacos(&s.cache, "shop"),
        "shop keeps its last good combination"
    );

    // A relist delivers shop's ConfigMap again, unchanged: no second Event.
    compact_and_await_relist(&s.api).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(events_for(&s.api, "shop").len(), 1);

    // Another default that breaks it too: another cause, another Event (posted, not folded into
    // the first one's count); back to the first breaking default: that cause was reported.
    std::fs::write(&cluster, OTHER_PLAIN_DEFAULT).unwrap();
    eventually(Duration::from_secs(5), "the second Event on shop", || {
        events_for(&s.api, "shop").len() == 2
    })
    .await;
    let notes: Vec<String> = events_for(&s.api, "shop")
        .iter()
        .map(|e| e["note"].as_str().unwrap().to_owned())
        .collect();
    assert_ne!(notes[0], notes[1], "each names its own cluster default");
    std::fs::write(&cluster, PLAIN_DEFAULT).unwrap();
    eventually(Duration::from_secs(5), "back on the first default", || {
        sleep_of(&*s.cache, "other") == 25
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let shop_events = events_for(&s.api, "shop");
    assert_eq!(shop_events.len(), 2, "{shop_events:#?}");
    for event in &shop_events {
        assert_cluster_default_event(event, "shop", shop, &cluster_name);
    }
    assert!(events_for(&s.api, "cafe").is_empty());
    assert!(
        !s.api.requests().iter().any(|r| r.starts_with("PATCH")),
        "{:?}",
        s.api.requests()
    );

    // A new version of shop's ConfigMap, still relying on Nacos, is refused on arrival under
    // this default: its own Event, the validation kind, for the new version.
    let next = s.api.put(
        "shop",
        NAME,
        &[(KEY, "preStop: {action: nacos}\nbufferSeconds: 1\n")],
    );
    let next_rv = next.to_string();
    eventually(
        Duration::from_secs(5),
        "the refusal of the new version",
        || events_for(&s.api, "shop").len() == 3,
    )
    .await;
    let refused = events_for(&s.api, "shop")
        .into_iter()
        .find(|e| e["regarding"]["resourceVersion"] == next_rv.as_str())
        .unwrap();
    assert_eq!(refused["reason"], policy_events::REASON);
    // Under the next breaking default, the Event names that version, as last seen.
    std::fs::write(&cluster, OTHER_PLAIN_DEFAULT).unwrap();
    eventually(
        Duration::from_secs(5),
        "the Event on the new version",
        || events_for(&s.api, "shop").len() == 4,
    )
    .await;
    let latest = events_for(&s.api, "shop")
        .into_iter()
        .filter(|e| e["reason"] == policy_events::REASON_CLUSTER_DEFAULT)
        .find(|e| e["regarding"]["resourceVersion"] == next_rv.as_str())
        .unwrap();
    assert_cluster_default_event(&latest, "shop", next, &cluster_name);
}

/// `podgrace serve` against the test API server, with a kubeconfig and a serving pair on disk.
fn serve_against(api: &FakeApi, dir: &std::path::Path, extra: &[&str]) -> common::child::Guard {
    serve_against_as(api, dir, extra, None)
}

/// [`serve_against`], with `PODGRACE_POD_NAME` set to `pod` (as the chart sets it) or unset.
fn serve_against_as(
    api: &FakeApi,
    dir: &std::path::Path,
    extra: &[&str],
    pod: Option<&str>,
) -> common::child::Guard {
    let pki = common::https::pki();
    std::fs::write(dir.join("tls.crt"), &pki.cert_pem).unwrap();
    std::fs::write(dir.join("tls.key"), &pki.key_pem).unwrap();
    std::fs::write(dir.join("kubeconfig"), api.kubeconfig(None)).unwrap();
    let mut cmd = common::child::command(env!("CARGO_BIN_EXE_podgrace"));
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--kube-version", "1.36"])
        .arg("--kubeconfig")
        .arg(dir.join("kubeconfig"))
        .arg("--tls-cert-file")
        .arg(dir.join("tls.crt"))
        .arg("--tls-key-file")
        .arg(dir.join("tls.key"))
        .args(extra)
        .env_remove("PODGRACE_POD_NAME")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    if let Some(pod) = pod {
        cmd.env("PODGRACE_POD_NAME", pod);
    }
    common::child::Guard::spawn(&mut cmd)
}

#[tokio::test]
async fn the_binary_reports_refused_configmaps_as_events_named_after_its_pod() {
    let api = FakeApi::start(NAME).await;
    let refused = api.put("shop", NAME, &[(KEY, BAD)]);
    api.put("cafe", NAME, &[(KEY, &sleep_policy(12))]);
    let dir = tempfile::tempdir().unwrap();
    let _podgrace = serve_against(&api, dir.path(), &["--pod-name", INSTANCE]);
    eventually(Duration::from_secs(20), "the Event from the binary", || {
        !api.events().is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let events = api.events();
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_refusal_event(&events[0], "shop", refused, "sleepSecods");
}

#[tokio::test]
async fn the_binary_reports_no_event_when_told_not_to() {
    let api = FakeApi::start(NAME).await;
    api.put("shop", NAME, &[(KEY, BAD)]);
    let dir = tempfile::tempdir().unwrap();
    let _podgrace = serve_against(&api, dir.path(), &["--policy-events=false"]);
    eventually(Duration::from_secs(20), "the policy list", || {
        api.requests().iter().any(|r| r.contains("watch=true"))
    })
    .await;
    // The list is in (the watch follows it); time for an Event to be posted, were it to be.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(api.events().is_empty(), "{:#?}", api.events());
    assert!(
        !api.requests().iter().any(|r| r.contains("events")),
        "{:?}",
        api.requests()
    );
}

/// Each replica reports what it refused: two replicas, two Events for one refused version, told
/// apart by their reporting instance (the pod name, from PODGRACE_POD_NAME as the chart sets it).
#[tokio::test]
async fn each_replica_reports_its_own_event_under_its_pod_name() {
    let api = FakeApi::start(NAME).await;
    let refused = api.put("shop", NAME, &[(KEY, BAD)]);
    let replicas = ["podgrace-7d9f8b6c5-aaaaa", "podgrace-7d9f8b6c5-bbbbb"];
    let dirs: Vec<_> = replicas
        .iter()
        .map(|_| tempfile::tempdir().unwrap())
        .collect();
    let _podgraces: Vec<_> = replicas
        .iter()
        .zip(&dirs)
        .map(|(pod, dir)| serve_against_as(&api, dir.path(), &[], Some(pod)))
        .collect();
    eventually(
        Duration::from_secs(20),
        "an Event from each replica",
        || api.events().len() == 2,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let events = api.events();
    assert_eq!(events.len(), 2, "{events:#?}");
    let mut instances: Vec<&str> = events
        .iter()
        .map(|e| e["reportingInstance"].as_str().unwrap())
        .collect();
    instances.sort();
    assert_eq!(instances, replicas);
    for event in &events {
        assert_eq!(event["reportingController"], policy_events::CONTROLLER);
        assert_eq!(event["regarding"]["resourceVersion"], refused.to_string());
        assert_eq!(event["reason"], policy_events::REASON);
    }
    // Two Events, not one named twice: the recorder names each after the ConfigMap and a
    // timestamp, so the replicas never collide.
    assert_ne!(events[0]["metadata"]["name"], events[1]["metadata"]["name"]);
}

#[tokio::test]
async fn the_binary_reports_a_namespace_policy_its_new_cluster_default_breaks() {
    let api = FakeApi::start(NAME).await;
    let shop = api.put("shop", NAME, &[(KEY, NACOS_POLICY)]);
    let dir = tempfile::tempdir().unwrap();
    let cluster = dir.path().join("cluster").join("policy.yaml");
    std::fs::create_dir(cluster.parent().unwrap()).unwrap();
    std::fs::write(&cluster, NACOS_DEFAULT).unwrap();
    let cluster_arg = cluster.display().to_string();
    let _podgrace = serve_against(
        &api,
        dir.path(),
        &[
            "--pod-name",
            INSTANCE,
            "--cluster-policy",
            &cluster_arg,
            "--reload-poll-seconds",
            "1",
        ],
    );
    eventually(Duration::from_secs(20), "the policy list", || {
        api.requests().iter().any(|r| r.contains("watch=true"))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(api.events().is_empty(), "{:#?}", api.events());
    std::fs::write(&cluster, PLAIN_DEFAULT).unwrap();
    eventually(Duration::from_secs(20), "the Event on shop", || {
        !api.events().is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let events = api.events();
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_cluster_default_event(&events[0], "shop", shop, &cluster_arg);
}
