//! Policies end to end through the HTTPS server: ConfigMaps created, changed and deleted in the
//! (test) API server change the webhook's patches without a restart, and `/validate` denies
//! invalid policy ConfigMaps with the precise message.

mod common;

use std::time::{Duration, Instant};

use common::admission::{configmap_review, decoded_patch};
use common::https::TestServer;
use common::kube_api::FakeApi;
use common::policy_watch::{KEY, NAME, Watched, sleep_policy};
use common::wait::eventually;
use common::*;
use podgrace::store::PolicyStore;
use serde_json::{Value, json};

async fn review(server: &TestServer, path: &str, body: String) -> Value {
    let (status, answer) = server.post(path, body).await;
    assert_eq!(status, 200, "{answer}");
    answer
}

/// The drain sleep in the patch the webhook returns for the captured pod (namespace `probe`).
async fn sleep_in_patch(server: &TestServer) -> i64 {
    let body = read_fixture("admission/pod-create-kubectl-apply.json");
    let out = review(server, "/mutate", body.clone()).await;
    let patch = decoded_patch(&out).expect("a patch");
    let mut object = serde_json::from_str::<Value>(&body).unwrap()["request"]["object"].clone();
    json_patch::patch(&mut object, &patch.0).unwrap();
    object["spec"]["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_i64()
        .unwrap()
}

async fn until_sleep(server: &TestServer, expected: i64) -> Duration {
    let start = Instant::now();
    while sleep_in_patch(server).await != expected {
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "the patch did not change to {expected} within a second"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    start.elapsed()
}

#[tokio::test]
async fn a_configmap_created_changed_and_deleted_changes_the_patches_within_a_second() {
    let watched = Watched::start(|_| {}).await;
    let (api, cache) = (&watched.api, &watched.cache);
    let server = TestServer::start_with_cache(cache.clone(), watched.metrics.clone()).await;
    let ready = server.client().get(server.url("/readyz"));
    eventually(Duration::from_secs(5), "policies synced", || {
        cache.is_ready()
    })
    .await;
    assert_eq!(ready.send().await.unwrap().status(), 200);
    assert_eq!(sleep_in_patch(&server).await, 10);

    api.put("probe", NAME, &[(KEY, &sleep_policy(25))]);
    until_sleep(&server, 25).await;
    api.put("probe", NAME, &[(KEY, &sleep_policy(33))]);
    until_sleep(&server, 33).await;
    api.delete("probe", NAME);
    until_sleep(&server, 10).await;
    server.stop().await;
}

#[tokio::test]
async fn validate_denies_invalid_policies_with_the_field_path_and_allowed_values() {
    let server = TestServer::start(|_| {}).await;
    let ok = review(
        &server,
        "/validate",
        configmap_review("CREATE", "podgrace-policy", "preStop: {sleepSeconds: 30}"),
    )
    .await;
    assert_eq!(ok["response"]["allowed"], true);
    assert_eq!(
        ok["response"]["uid"],
        "7b0f4c1e-0000-4000-8000-000000000001"
    );

    let bad = review(
        &server,
        "/validate",
        configmap_review("UPDATE", "podgrace-policy", "preStop:\n  action: slep\n"),
    )
    .await;
    assert_eq!(bad["response"]["allowed"], false);
    let message = bad["response"]["status"]["message"].as_str().unwrap();
    assert!(message.starts_with("invalid podgrace policy: configmap shop/podgrace-policy: preStop.action: unknown variant `slep`, expected one of sleep, exec, nginx, nacos, none"), "{message}");

    let incomplete = review(
        &server,
        "/validate",
        configmap_review("CREATE", "podgrace-policy", "preStop: {action: nacos}"),
    )
    .await;
    assert_eq!(incomplete["response"]["allowed"], false);
    assert!(
        incomplete["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("preStop.nacos.server: required when preStop.action is nacos")
    );

    // With a cluster default that names the server, the same namespace policy is complete.
    server.cache.set_cluster(Ok(layer(
        "preStop: {nacos: {server: 'http://nacos.nacos:8848'}}",
    )));
    let complete = review(
        &server,
        "/validate",
        configmap_review("CREATE", "podgrace-policy", "preStop: {action: nacos}"),
    )
    .await;
    assert_eq!(complete["response"]["allowed"], true);

    let other = review(
        &server,
        "/validate",
        configmap_review("CREATE", "unrelated", "not: a policy"),
    )
    .await;
    assert_eq!(
        other["response"]["allowed"], true,
        "other ConfigMaps are not podgrace's business"
    );
    let delete = review(
        &server,
        "/validate",
        configmap_review("DELETE", "podgrace-policy", "x: 1"),
    )
    .await;
    assert_eq!(delete["response"]["allowed"], true);

    let missing_key = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u2", "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
        "resource": {"group": "", "version": "v1", "resource": "configmaps"}, "namespace": "shop",
        "operation": "CREATE", "userInfo": {},
        "object": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "podgrace-policy"}, "data": {"policy.yml": "x"}},
        "oldObject": null}});
    let out = review(&server, "/validate", missing_key.to_string()).await;
    assert_eq!(out["response"]["allowed"], false);
    assert!(
        out["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("data[\"policy.yaml\"]: missing")
    );

    let metrics = server.state.metrics.render();
    assert!(
        metrics.contains(
            r#"podgrace_admission_requests_total{endpoint="validate",outcome="denied"} 3"#
        ),
        "{metrics}"
    );
    server.stop().await;
}

/// The real binary in cluster mode, reaching the (test) API server through `--kubeconfig`:
/// ready only after the policy list, then following a ConfigMap created in the cluster.
#[tokio::test]
async fn serve_with_a_kubeconfig_watches_the_cluster() {
    let api = FakeApi::start("podgrace-policy").await;
    api.hold_lists(true);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, api.kubeconfig(None)).unwrap();
    let pki = common::https::pki();
    std::fs::write(dir.path().join("tls.crt"), &pki.cert_pem).unwrap();
    std::fs::write(dir.path().join("tls.key"), &pki.key_pem).unwrap();
    let port = free_port();
    // Killed and reaped when the test ends, whether its assertions pass or not.
    let _webhook = common::child::Guard::spawn(
        common::child::command(env!("CARGO_BIN_EXE_podgrace"))
            .args(["serve", "--log-format", "text", "--drain-seconds", "0"])
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--tls-cert-file")
            .arg(dir.path().join("tls.crt"))
            .arg("--tls-key-file")
            .arg(dir.path().join("tls.key"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null()),
    );
    let client = common::https::client(&[&pki.ca_cert_pem]);
    let url = |p: &str| format!("https://localhost:{port}{p}");
    let status = |path: &'static str| {
        let (client, u) = (client.clone(), url(path));
        async move {
            client
                .get(u)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }
    };
    let start = Instant::now();
    while status("/healthz").await != 200 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the webhook did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        status("/readyz").await,
        503,
        "not ready before the policy list"
    );
    api.hold_lists(false);
    let start = Instant::now();
    while status("/readyz").await != 200 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "not ready after the list"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    api.put(
        "probe",
        "podgrace-policy",
        &[("policy.yaml", "preStop: {sleepSeconds: 27}")],
    );
    let body = read_fixture("admission/pod-create-kubectl-apply.json");
    let start = Instant::now();
    loop {
        let out: Value = client
            .post(url("/mutate"))
            .body(body.clone())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let patch = serde_json::to_string(&decoded_patch(&out).expect("a patch")).unwrap();
        if patch.contains("\"seconds\":27") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "the ConfigMap did not reach the patch"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        api.requests()
            .iter()
            .any(|r| r.starts_with("GET /api/v1/configmaps?")),
        "{:?}",
        api.requests()
    );
}
