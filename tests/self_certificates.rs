//! `certificates.mode: self` end to end: the real binary (`serve --certificates self`) against
//! the test API server (tests/common/kube_api.rs, kube_objects.rs), limited to the RBAC rules the
//! chart binds to podgrace's ServiceAccount (tests/fixtures/rbac, checked against the chart by
//! tests/chart/test_certificates_self.py). A caller plays the API server calling the webhook: for
//! every call it trusts exactly the caBundle stored in the MutatingWebhookConfiguration at that
//! moment, dials `podgrace.podgrace-system.svc`, verifies the certificate and sends a request.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::child::Guard;
use common::free_port;
use common::https::client_config;
use common::kube_api::FakeApi;
use common::kube_objects::{Objects, Rule};
use common::wait::eventually;
use rustls::pki_types::ServerName;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const NS: &str = "podgrace-system";
const SECRET: &str = "podgrace-certs";
const SERVER_NAME: &str = "podgrace.podgrace-system.svc";
const MWC: &str = "mutatingwebhookconfigurations";
const VWC: &str = "validatingwebhookconfigurations";

/// The rules the chart binds to podgrace's ServiceAccount.
fn chart_rules() -> Vec<Rule> {
    let text = std::fs::read_to_string(common::fixture(
        "rbac/serviceaccount-self-certificates.json",
    ))
    .unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    serde_json::from_value(doc["rules"].clone()).unwrap()
}

/// The two webhook configurations in the shape the chart renders them in mode self: no
/// caBundle.
fn mutating() -> Value {
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "podgrace", "labels": {"app.kubernetes.io/name": "podgrace"}},
        "webhooks": [{
            "name": "pods.podgrace.io",
            "clientConfig": {"service": {"name": "podgrace", "namespace": NS, "path": "/mutate", "port": 443}},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"], "scope": "Namespaced"}],
            "failurePolicy": "Ignore", "sideEffects": "None", "admissionReviewVersions": ["v1"], "timeoutSeconds": 5
        }]
    })
}

fn validating() -> Value {
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "podgrace", "labels": {"app.kubernetes.io/name": "podgrace"}},
        "webhooks": [{
            "name": "policies.podgrace.io",
            "clientConfig": {"service": {"name": "podgrace", "namespace": NS, "path": "/validate", "port": 443}},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["configmaps"], "scope": "Namespaced"}],
            "failurePolicy": "Fail", "sideEffects": "None", "admissionReviewVersions": ["v1"], "timeoutSeconds": 5
        }]
    })
}

/// A test API server with both configurations installed and the chart's RBAC in force.
async fn api() -> FakeApi {
    let api = FakeApi::start("podgrace-policy").await;
    api.objects.put(MWC, mutating(), "helm");
    api.objects.put(VWC, validating(), "helm");
    api.objects.set_rbac(Some(chart_rules()));
    api
}

/// A running replica.
struct Replica {
    _guard: Guard,
    addr: SocketAddr,
    metrics: SocketAddr,
    dir: tempfile::TempDir,
}

impl Replica {
    /// Starts `podgrace serve --certificates self` as pod `name`, with `extra` flags; returns
    /// once it listens.
    async fn start(api: &FakeApi, name: &str, extra: &[&str]) -> Replica {
        let mut args: Vec<String> = [
            "--certificates",
            "self",
            "--namespace",
            NS,
            "--service",
            "podgrace",
        ]
        .into_iter()
        .chain([
            "--mutating-webhook",
            "podgrace",
            "--validating-webhook",
            "podgrace",
        ])
        .map(str::to_owned)
        .collect();
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        Self::start_with(api, name, &args).await
    }

    /// Starts `podgrace serve` as pod `name` with `args` after the common ones.
    async fn start_with(api: &FakeApi, name: &str, args: &[String]) -> Replica {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, api.kubeconfig(Some(NS))).unwrap();
        let policies = dir.path().join("policies");
        std::fs::create_dir(&policies).unwrap();
        let (port, metrics) = (free_port(), free_port());
        let _ = rustls::crypto::ring::default_provider().install_default();
        let log = std::fs::File::create(dir.path().join("log")).unwrap();
        let mut cmd = common::child::command(env!("CARGO_BIN_EXE_podgrace"));
        cmd.args(["serve", "--kubeconfig"])
            .arg(&kubeconfig)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--metrics-listen")
            .arg(format!("127.0.0.1:{metrics}"))
            .arg("--policy-dir")
            .arg(&policies)
            .args([
                "--pod-name",
                name,
                "--log-format",
                "text",
                "--log",
                "info,podgrace=debug",
            ])
            .args(args)
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let guard = Guard::spawn(&mut cmd);
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "replica {name} did not start:\n{}",
                std::fs::read_to_string(dir.path().join("log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Replica {
            _guard: guard,
            addr,
            metrics: SocketAddr::from(([127, 0, 0, 1], metrics)),
            dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// The value of the metric line starting with `series` (name and labels).
    async fn metric(&self, series: &str) -> f64 {
        let text = reqwest::get(format!("http://{}/metrics", self.metrics))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
            .trim()
            .parse()
            .unwrap()
    }
}

/// The caBundle of the first webhook of configuration `resource`, decoded.
fn ca_bundle(objects: &Objects, resource: &str) -> String {
    let config = objects.get(resource, "", "podgrace").unwrap();
    let b64 = config["webhooks"][0]["clientConfig"]["caBundle"]
        .as_str()
        .unwrap_or("");
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
    )
    .unwrap()
}

fn secret_data(objects: &Objects, key: &str) -> Option<String> {
    let secret = objects.get("secrets", NS, SECRET)?;
    let b64 = secret["data"][key].as_str()?;
    Some(
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap(),
        )
        .unwrap(),
    )
}

/// One call as the API server makes it: trust `ca_pem`, dial the service name, verify, ask.
/// The leaf served, or why the call failed.
async fn call(addr: SocketAddr, ca_pem: &str) -> Result<Vec<u8>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(ca_pem.as_bytes()) {
        roots
            .add(cert.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let config = if roots.is_empty() {
        // An empty caBundle: the API server would use its system roots, which never hold
        // podgrace's CA.
        client_config(&[])
    } else {
        rustls::ClientConfig::builder_with_provider(podgrace::server::tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth()
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let exchange = async {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        let mut tls = connector
            .connect(ServerName::try_from(SERVER_NAME).unwrap(), tcp)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
        tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: podgrace\r\nConnection: close\r\n\r\n")
            .await
            .map_err(|e| e.to_string())?;
        let mut answer = Vec::new();
        let _ = tls.read_to_end(&mut answer).await;
        if !answer.starts_with(b"HTTP/1.1 200") {
            return Err(format!("answer: {}", String::from_utf8_lossy(&answer)));
        }
        Ok(leaf)
    };
    tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .map_err(|_| "timed out".to_owned())?
}

/// What the caller saw.
#[derive(Debug, Default)]
struct Seen {
    calls: usize,
    failures: Vec<String>,
    /// Distinct leaves served, in order of first appearance.
    leaves: Vec<Vec<u8>>,
}

/// Calls every replica in turn, every 20 ms, until stopped.
struct Caller {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Seen>,
}

impl Caller {
    fn start(objects: Arc<Objects>, addrs: Vec<SocketAddr>) -> Caller {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let mut seen = Seen::default();
            while !flag.load(Ordering::Relaxed) {
                for &addr in &addrs {
                    let ca = ca_bundle(&objects, MWC);
                    seen.calls += 1;
                    match call(addr, &ca).await {
                        Ok(leaf) => {
                            if !seen.leaves.contains(&leaf) {
                                seen.leaves.push(leaf);
                            }
                        }
                        Err(e) => seen.failures.push(format!("{addr}: {e}")),
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            seen
        });
        Caller { stop, task }
    }

    async fn finish(self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap()
    }
}

fn events_with_reason(api: &FakeApi, reason: &str) -> Vec<Value> {
    api.events()
        .into_iter()
        .filter(|e| e["reason"] == reason)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_starting_at_once_create_one_pair_and_both_serve_it() {
    let api = api().await;
    let (a, b) = tokio::join!(
        Replica::start(&api, "podgrace-a", &[]),
        Replica::start(&api, "podgrace-b", &[])
    );
    let objects = api.objects.clone();
    eventually(Duration::from_secs(10), "caBundle written", || {
        !ca_bundle(&objects, MWC).is_empty() && !ca_bundle(&objects, VWC).is_empty()
    })
    .await;
    let ca = secret_data(&objects, "ca.crt").unwrap();
    let served = secret_data(&objects, "tls.crt").unwrap();
    assert_eq!(ca_bundle(&objects, MWC), ca_bundle(&objects, VWC));
    assert!(ca_bundle(&objects, MWC).contains(ca.trim()));
    for replica in [&a, &b] {
        let leaf = call(replica.addr, &ca_bundle(&objects, MWC)).await.unwrap();
        assert_eq!(leaf, common::https::der(&served), "{}", replica.log());
    }
    let creates: Vec<String> = objects
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("POST /api/v1/namespaces/podgrace-system/secrets"))
        .collect();
    assert!(!creates.is_empty() && creates.len() <= 2, "{creates:?}");
    assert!(objects.forbidden().is_empty(), "{:?}", objects.forbidden());
    // The loser (if both tried) says it took the winner's pair.
    let logs = format!("{}{}", a.log(), b.log());
    assert_eq!(
        logs.matches("created the CA and serving pair").count(),
        1,
        "{logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_bundle_reset_by_an_apply_is_put_back_within_two_seconds() {
    let api = api().await;
    let replica = Replica::start(&api, "podgrace-a", &[]).await;
    let objects = api.objects.clone();
    eventually(Duration::from_secs(10), "caBundle written", || {
        !ca_bundle(&objects, MWC).is_empty() && !ca_bundle(&objects, VWC).is_empty()
    })
    .await;
    let ours = ca_bundle(&objects, MWC);

    // `kubectl replace` (or Argo CD's Replace=true) of the chart's render: no caBundle.
    // (No look at the emptied caBundle here: the watch may have put it back already.)
    objects.put(MWC, mutating(), "kubectl-replace");
    let took = eventually(Duration::from_secs(2), "mutating caBundle put back", || {
        ca_bundle(&objects, MWC) == ours
    })
    .await;
    eprintln!("mutating caBundle put back after {took:?}");

    // An apply of another installation's render, with a CA of its own, on the validating one.
    let other = podgrace::server::certificates::generate_ca(Duration::from_secs(3600)).unwrap();
    let mut foreign = validating();
    foreign["webhooks"][0]["clientConfig"]["caBundle"] =
        json!(base64::engine::general_purpose::STANDARD.encode(&other.cert_pem));
    objects
        .apply(VWC, foreign, "argocd-controller", true)
        .unwrap();
    assert_ne!(ca_bundle(&objects, VWC), ours);
    let took = eventually(
        Duration::from_secs(2),
        "validating caBundle put back",
        || ca_bundle(&objects, VWC) == ours,
    )
    .await;
    eprintln!("validating caBundle put back after {took:?}");

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(replica.metric("podgrace_ca_bundle_restores_total").await >= 2.0);
    eventually(Duration::from_secs(5), "CABundleRestored Event", || {
        !events_with_reason(&api, "CABundleRestored").is_empty()
    })
    .await;
    assert!(objects.forbidden().is_empty(), "{:?}", objects.forbidden());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_patches_are_retried_and_said_while_serving_goes_on() {
    let api = api().await;
    let replica = Replica::start(&api, "podgrace-a", &[]).await;
    let objects = api.objects.clone();
    eventually(Duration::from_secs(10), "caBundle written", || {
        !ca_bundle(&objects, MWC).is_empty() && !ca_bundle(&objects, VWC).is_empty()
    })
    .await;
    let ours = ca_bundle(&objects, MWC);
    // The validating configuration keeps calling with its (untouched) caBundle meanwhile.
    let served_before = call(replica.addr, &ours).await.unwrap();
    objects.conflict_next_patches(2);
    objects.put(MWC, mutating(), "kubectl-replace");
    let took = eventually(
        Duration::from_secs(5),
        "caBundle put back after the conflicts",
        || ca_bundle(&objects, MWC) == ours,
    )
    .await;
    eprintln!("put back {took:?} after a reset, through 2 conflicting patches");
    assert_eq!(call(replica.addr, &ours).await.unwrap(), served_before);
    assert!(
        replica
            .metric("podgrace_certificate_sync_errors_total{operation=\"patch_ca_bundle\"}")
            .await
            >= 2.0
    );
    eventually(
        Duration::from_secs(5),
        "CertificateSyncFailed Event",
        || {
            events_with_reason(&api, "CertificateSyncFailed")
                .iter()
                .any(|e| {
                    e["note"]
                        .as_str()
                        .unwrap_or("")
                        .starts_with("patch_ca_bundle")
                })
        },
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while replica.metric("podgrace_certificate_sync_failing").await != 0.0 {
        assert!(Instant::now() < deadline, "{}", replica.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_serving_certificate_and_the_ca_renew_with_no_failed_handshake() {
    // Serving certificates live 4 s and are renewed 2 s before they expire; the CA lives 12 s
    // and starts rolling 6 s before it expires: in 20 s, several serving certificates and at
    // least one new CA, on two replicas.
    let short = [
        "--cert-validity-seconds",
        "4",
        "--cert-renew-before-seconds",
        "2",
        "--ca-validity-seconds",
        "12",
        "--ca-renew-before-seconds",
        "6",
        "--cert-check-seconds",
        "1",
    ];
    let api = api().await;
    let (a, b) = tokio::join!(
        Replica::start(&api, "podgrace-a", &short),
        Replica::start(&api, "podgrace-b", &short)
    );
    let objects = api.objects.clone();
    eventually(Duration::from_secs(10), "caBundle written", || {
        !ca_bundle(&objects, MWC).is_empty() && !ca_bundle(&objects, VWC).is_empty()
    })
    .await;
    let first_ca = secret_data(&objects, "ca.crt").unwrap();
    let caller = Caller::start(objects.clone(), vec![a.addr, b.addr]);
    tokio::time::sleep(Duration::from_secs(20)).await;
    let seen = caller.finish().await;
    eprintln!(
        "{} calls, {} failures, {} certificates served",
        seen.calls,
        seen.failures.len(),
        seen.leaves.len()
    );
    assert!(
        seen.failures.is_empty(),
        "{} of {} calls failed: {:?}\n{}\n{}",
        seen.failures.len(),
        seen.calls,
        &seen.failures[..seen.failures.len().min(5)],
        a.log(),
        b.log()
    );
    assert!(seen.calls > 200, "{}", seen.calls);
    assert!(
        seen.leaves.len() >= 5,
        "only {} certificates served",
        seen.leaves.len()
    );
    // Each CA's subject carries its creation time.
    let issuers: std::collections::HashSet<Vec<u8>> = seen
        .leaves
        .iter()
        .map(|l| {
            let (_, c) = x509_parser::parse_x509_certificate(l).unwrap();
            c.issuer().as_raw().to_vec()
        })
        .collect();
    assert_ne!(
        secret_data(&objects, "ca.crt").unwrap(),
        first_ca,
        "the CA never rolled"
    );
    assert!(
        issuers.len() >= 2,
        "certificates of only {} CA served",
        issuers.len()
    );
    assert!(objects.forbidden().is_empty(), "{:?}", objects.forbidden());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_secret_is_re_created_with_the_same_ca_while_serving_goes_on() {
    let api = api().await;
    let replica = Replica::start(&api, "podgrace-a", &["--cert-check-seconds", "1"]).await;
    let objects = api.objects.clone();
    eventually(Duration::from_secs(10), "caBundle written", || {
        !ca_bundle(&objects, MWC).is_empty()
    })
    .await;
    let ca = secret_data(&objects, "ca.crt").unwrap();
    let caller = Caller::start(objects.clone(), vec![replica.addr]);
    objects.delete("secrets", NS, SECRET);
    eventually(Duration::from_secs(5), "Secret re-created", || {
        secret_data(&objects, "ca.crt").is_some()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let seen = caller.finish().await;
    assert!(seen.failures.is_empty(), "{:?}", seen.failures);
    assert_eq!(seen.leaves.len(), 1, "the served certificate changed");
    assert_eq!(secret_data(&objects, "ca.crt").unwrap(), ca);
    assert_eq!(
        replica
            .metric("podgrace_certificate_secret_recreations_total")
            .await,
        1.0
    );
    eventually(
        Duration::from_secs(5),
        "CertificateSecretRecreated Event",
        || !events_with_reason(&api, "CertificateSecretRecreated").is_empty(),
    )
    .await;
    assert!(objects.forbidden().is_empty(), "{:?}", objects.forbidden());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_api_server_down_at_renewal_time_a_replica_keeps_serving_a_trusted_certificate() {
    // The API server goes away right after the first caBundle write, possibly before the
    // replica has seen both configurations confirmed: it renews from the CA it holds anyway.
    let short = [
        "--cert-validity-seconds",
        "5",
        "--cert-renew-before-seconds",
        "3",
        "--cert-check-seconds",
        "1",
    ];
    let mut api = api().await;
    let replica = Replica::start(&api, "podgrace-a", &short).await;
    let objects = api.objects.clone();
    eventually(Duration::from_secs(10), "caBundle written", || {
        !ca_bundle(&objects, MWC).is_empty()
    })
    .await;
    // The API server's stored caBundle still calls the webhook; podgrace cannot reach it.
    api.stop();
    let first = secret_data(&objects, "tls.crt").unwrap();
    let caller = Caller::start(objects.clone(), vec![replica.addr]);
    // Past the expiry of the certificate served when the API server went away.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let seen = caller.finish().await;
    assert!(
        seen.failures.is_empty(),
        "{:?}\n{}",
        &seen.failures[..seen.failures.len().min(5)],
        replica.log()
    );
    assert!(
        seen.leaves.len() >= 2,
        "never renewed while the API server was away"
    );
    assert!(!seen.leaves.contains(&common::https::der(&first)) || seen.leaves.len() >= 2);
    assert_eq!(
        replica.metric("podgrace_certificate_sync_failing").await,
        1.0
    );
    assert!(
        replica
            .metric("podgrace_certificate_sync_errors_total{operation=\"read_secret\"}")
            .await
            >= 1.0
    );
    // Back: the failure and the recovery are told, and the replica follows the Secret again.
    api.restart().await;
    eventually(
        Duration::from_secs(10),
        "CertificateSyncFailed Event",
        || !events_with_reason(&api, "CertificateSyncFailed").is_empty(),
    )
    .await;
    let caller = Caller::start(objects.clone(), vec![replica.addr]);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let seen = caller.finish().await;
    assert!(seen.failures.is_empty(), "{:?}", seen.failures);
    // The watch of the webhook configurations reconnects after its backoff (up to 30 s).
    let deadline = Instant::now() + Duration::from_secs(40);
    while replica.metric("podgrace_certificate_sync_failing").await != 0.0 {
        assert!(
            Instant::now() < deadline,
            "still failing:\n{}\n{:#?}",
            replica.log(),
            objects.requests().iter().rev().take(30).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eventually(
        Duration::from_secs(10),
        "CertificateSyncRecovered Event",
        || !events_with_reason(&api, "CertificateSyncRecovered").is_empty(),
    )
    .await;
    let served = call(replica.addr, &ca_bundle(&objects, MWC)).await.unwrap();
    let stored = common::https::der(&secret_data(&objects, "tls.crt").unwrap());
    assert_eq!(served, stored, "the replica serves the Secret's pair again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chart_rules_allow_the_named_secret_and_configurations_and_nothing_else() {
    use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
    use k8s_openapi::api::core::v1::Secret;
    use kube::api::{Api, Patch, PatchParams, PostParams};
    let api = api().await;
    api.objects.put(MWC, json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration", "metadata": {"name": "istio-sidecar-injector"}, "webhooks": []}), "istio");
    api.objects.put("secrets", json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "database", "namespace": NS}, "data": {"password": "c2VjcmV0"}}), "someone");
    let client = api.client();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
    let configs: Api<MutatingWebhookConfiguration> = Api::all(client);
    let forbidden =
        |r: Result<_, kube::Error>| matches!(r, Err(kube::Error::Api(s)) if s.code == 403);
    assert!(forbidden(secrets.get("database").await.map(|_| ())));
    assert!(forbidden(
        secrets.list(&Default::default()).await.map(|_| ())
    ));
    assert!(forbidden(
        secrets
            .delete(SECRET, &Default::default())
            .await
            .map(|_| ())
    ));
    let empty = Patch::Merge(json!({}));
    assert!(forbidden(
        configs
            .patch("istio-sidecar-injector", &PatchParams::default(), &empty)
            .await
            .map(|_| ())
    ));
    assert!(forbidden(
        configs
            .delete("podgrace", &Default::default())
            .await
            .map(|_| ())
    ));
    assert!(configs.get("podgrace").await.is_ok());
    assert!(matches!(secrets.get(SECRET).await, Err(kube::Error::Api(s)) if s.code == 404));
    // Kubernetes cannot limit create by name: any Secret of the namespace may be created (the
    // limitation docs/INSTALL.md states), none elsewhere.
    let other = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("anything".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    assert!(secrets.create(&PostParams::default(), &other).await.is_ok());
    let elsewhere: Api<Secret> = Api::namespaced(api.client(), "kube-system");
    assert!(forbidden(
        elsewhere
            .create(&PostParams::default(), &other)
            .await
            .map(|_| ())
    ));
}

/// Renders of the chart to apply, from tests/chart/test_certificates_self.py (a directory with
/// `first.json` and `second.json`, each a list of objects); skipped otherwise.
fn renders() -> Option<(Vec<Value>, Vec<Value>)> {
    let dir = PathBuf::from(std::env::var_os("PODGRACE_CHART_RENDERS")?);
    let read =
        |f: &str| serde_json::from_str(&std::fs::read_to_string(dir.join(f)).unwrap()).unwrap();
    Some((read("first.json"), read("second.json")))
}

/// Server-side apply, as Argo CD and Flux do, of the objects the test API server stores.
fn apply_render(objects: &Objects, render: &[Value]) -> usize {
    let mut applied = 0;
    for o in render {
        let resource = match o["kind"].as_str() {
            Some("MutatingWebhookConfiguration") => MWC,
            Some("ValidatingWebhookConfiguration") => VWC,
            Some("Secret") => "secrets",
            _ => continue,
        };
        objects
            .apply(resource, o.clone(), "argocd-controller", true)
            .unwrap();
        applied += 1;
    }
    applied
}

/// The files of the Secret in `render` (a render of mode helm), written to `dir`.
fn write_rendered_secret(render: &[Value], dir: &std::path::Path) -> bool {
    let Some(secret) = render.iter().find(|o| o["kind"] == "Secret") else {
        return false;
    };
    for key in ["tls.crt", "tls.key"] {
        let b64 = secret["data"][key].as_str().unwrap();
        std::fs::write(
            dir.join(key),
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap(),
        )
        .unwrap();
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by tests/chart/test_certificates_self.py with PODGRACE_CHART_RENDERS"]
async fn applying_two_renders_of_the_chart_fails_no_handshake() {
    let (first, second) =
        renders().expect("PODGRACE_CHART_RENDERS: a directory with first.json and second.json");
    let api = FakeApi::start("podgrace-policy").await;
    let objects = api.objects.clone();
    assert!(apply_render(&objects, &first) >= 2);
    objects.set_rbac(Some(chart_rules()));
    // A render of mode helm (the control): the replicas serve the mounted files of the first
    // render's Secret, as the kubelet mounts them.
    let files = tempfile::tempdir().unwrap();
    let helm_mode = write_rendered_secret(&first, files.path());
    let (a, b) = if helm_mode {
        let args: Vec<String> = vec![
            "--tls-cert-file".into(),
            files.path().join("tls.crt").display().to_string(),
            "--tls-key-file".into(),
            files.path().join("tls.key").display().to_string(),
        ];
        tokio::join!(
            Replica::start_with(&api, "podgrace-a", &args),
            Replica::start_with(&api, "podgrace-b", &args)
        )
    } else {
        tokio::join!(
            Replica::start(&api, "podgrace-a", &[]),
            Replica::start(&api, "podgrace-b", &[])
        )
    };
    eventually(Duration::from_secs(10), "caBundle written", || {
        !ca_bundle(&objects, MWC).is_empty() && !ca_bundle(&objects, VWC).is_empty()
    })
    .await;
    let ours = ca_bundle(&objects, MWC);
    let caller = Caller::start(objects.clone(), vec![a.addr, b.addr]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    for render in [&second, &first, &second] {
        apply_render(&objects, render);
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    let seen = caller.finish().await;
    eprintln!("{} calls, {} failures", seen.calls, seen.failures.len());
    assert!(seen.calls > 50);
    if helm_mode {
        assert!(
            !seen.failures.is_empty(),
            "mode helm: the second render's CA should have broken the calls"
        );
        return;
    }
    assert!(
        seen.failures.is_empty(),
        "{} of {} calls failed: {:?}",
        seen.failures.len(),
        seen.calls,
        &seen.failures[..seen.failures.len().min(5)]
    );
    assert_eq!(ca_bundle(&objects, MWC), ours);
    assert_eq!(ca_bundle(&objects, VWC), ours);
}
