//! The webhook started as a library, from a typed configuration, the way `podgrace serve` starts
//! it: `Webhook::start` (certificate, policies, state), `bind`, `run` until the stop future
//! resolves. Real TLS on loopback with a client that verifies against the CA it wrote.

mod common;

use std::sync::Arc;
use std::time::Duration;

use podgrace::{
    CertificateConfig, Metrics, NamespacePolicies, PolicyConfig, PolicyConfigMap, ServerOptions,
    Webhook, WebhookConfig,
};

use common::https::client;
use common::{fixture, read_fixture};

fn config(dir: &std::path::Path) -> WebhookConfig {
    WebhookConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        certificates: CertificateConfig::Generated {
            sans: vec!["localhost".into(), "127.0.0.1".into()],
            ca_out: dir.join("ca.pem"),
        },
        policies: PolicyConfig {
            cluster_policy: Some(fixture("policies/cluster.yaml")),
            namespaces: NamespacePolicies::None,
            configmap: PolicyConfigMap::default(),
        },
        metrics_listen: Some("127.0.0.1:0".parse().unwrap()),
        kubeconfig: None,
        kube_version: None,
        server: ServerOptions {
            drain: Duration::ZERO,
            ..ServerOptions::default()
        },
        reload_poll: Duration::from_secs(60),
        summary_every: None,
    }
}

#[tokio::test]
async fn a_webhook_built_from_a_typed_config_serves_admissions_and_stops_when_told() {
    let dir = tempfile::tempdir().unwrap();
    let webhook = Webhook::start(config(dir.path()), Arc::new(Metrics::new()))
        .await
        .unwrap();
    let ca_file = webhook.ca_written().expect("the CA is written").to_owned();
    let metrics_addr = webhook.metrics_addr().expect("the metrics port is bound");
    let bound = webhook.bind().await.unwrap();
    let addr = bound.local_addr();
    assert_ne!(addr.port(), 0);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(bound.run(async {
        let _ = stopped.await;
    }));

    let ca = std::fs::read_to_string(ca_file).unwrap();
    let http = client(&[&ca]);
    let url = |path: &str| format!("https://localhost:{}{path}", addr.port());
    let answer = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(r) = http.get(url("/readyz")).send().await
                && r.status() == 200
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        http.post(url("/mutate"))
            .body(read_fixture("admission/pod-create-kubectl-apply.json"))
            .send()
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap()
    })
    .await
    .expect("the webhook did not answer within 10 s");
    assert_eq!(answer["response"]["allowed"], true);
    assert_eq!(answer["response"]["patchType"], "JSONPatch", "{answer}");
    let scraped = http
        .get(format!("http://{metrics_addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        scraped.contains(
            r#"podgrace_admission_requests_total{endpoint="mutate",outcome="patched"} 1"#
        ),
        "{scraped}"
    );

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("the webhook did not stop within 30 s")
        .unwrap()
        .unwrap();
    assert!(
        http.get(url("/healthz")).send().await.is_err(),
        "still serving after run returned"
    );
}

#[tokio::test]
async fn a_config_that_needs_a_cluster_without_one_fails_to_start_with_the_hint() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.policies.namespaces = NamespacePolicies::Cluster {
        events: false,
        instance: None,
    };
    config.kubeconfig = Some(dir.path().join("missing-kubeconfig"));
    let Err(e) = Webhook::start(config, Arc::new(Metrics::new())).await else {
        panic!("started without a cluster");
    };
    let e = format!("{e:#}");
    assert!(e.contains("missing-kubeconfig"), "{e}");
}
