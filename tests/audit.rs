//! `podgrace audit` as users run it: the real binary on the real-world corpus (its "would inject"
//! is `podgrace mutate`'s patch, template by template) and against the test API server
//! (tests/common/kube_api.rs): every finding kind, opted-in or not, drift, the JSON schema, exit
//! codes, paging, and a namespace the user may not read.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::child::{self, SHORT};
use common::kube_api::FakeApi;
use common::{podgrace, text, tmp};
use serde_json::{Value, json};

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

// ---- manifest mode --------------------------------------------------------------------------

/// `podgrace mutate -o patch`'s answer (one entry per workload, as the README says) as (`Kind/name`,
/// patch).
fn mutate_patches(out: &Value) -> Vec<(String, Value)> {
    out.as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                format!(
                    "{}/{}",
                    e["kind"].as_str().unwrap(),
                    e["name"].as_str().unwrap()
                ),
                e["patch"].clone(),
            )
        })
        .collect()
}

/// A pod-relative patch moved under the template's place, by kind (a Kubernetes fact).
fn prefixed(kind: &str, patch: &Value) -> Value {
    let prefix = match kind {
        "Pod" => "",
        "CronJob" => "/spec/jobTemplate/spec/template",
        "PodTemplate" => "/template",
        _ => "/spec/template",
    };
    Value::Array(
        patch
            .as_array()
            .unwrap()
            .iter()
            .map(|op| {
                let mut op = op.clone();
                op["path"] = json!(format!("{prefix}{}", op["path"].as_str().unwrap()));
                op
            })
            .collect(),
    )
}

#[test]
fn would_inject_is_what_podgrace_mutate_patches_for_every_template_of_the_corpus() {
    let cluster = repo("tests/fixtures/policies/cluster.yaml");
    let mut compared = 0;
    for policy in [None, Some("nacos-helper.yaml"), Some("keep.yaml")] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(repo("tests/fixtures/realworld"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        for file in files {
            let mut common_args = vec![
                "-f".to_owned(),
                file.display().to_string(),
                "--cluster-policy".to_owned(),
                cluster.display().to_string(),
                "--kube-version".to_owned(),
                "1.36".to_owned(),
            ];
            if let Some(p) = policy {
                common_args.push("--namespace-policy".to_owned());
                common_args.push(
                    repo(&format!("tests/fixtures/policies/realworld/{p}"))
                        .display()
                        .to_string(),
                );
            }
            let args = |first: &str, output: &str| -> Vec<String> {
                let mut a = vec![first.to_owned()];
                a.extend(common_args.clone());
                a.extend(["-o".to_owned(), output.to_owned()]);
                a
            };
            let run = |a: Vec<String>| {
                let refs: Vec<&str> = a.iter().map(String::as_str).collect();
                podgrace(&refs)
            };
            let m = run(args("mutate", "patch"));
            assert!(
                m.status.success(),
                "{}: {}",
                file.display(),
                text(&m.stderr)
            );
            let a = run(args("audit", "json"));
            assert!(
                a.status.success(),
                "{}: {}",
                file.display(),
                text(&a.stderr)
            );
            let mutated = mutate_patches(&serde_json::from_slice(&m.stdout).unwrap());
            let report: Value = serde_json::from_slice(&a.stdout).unwrap();
            let mut audited: Vec<(String, Value)> = Vec::new();
            for ns in report["namespaces"].as_array().unwrap() {
                for w in ns["workloads"].as_array().unwrap() {
                    let kind = w["kind"].as_str().unwrap();
                    let patch = match &w["wouldInject"] {
                        Value::Null => json!([]),
                        inject => prefixed(kind, &inject["patch"]),
                    };
                    audited.push((format!("{kind}/{}", w["name"].as_str().unwrap()), patch));
                }
            }
            assert_eq!(
                audited.len(),
                mutated.len(),
                "{}: one audited workload per template",
                file.display()
            );
            for (key, patch) in &mutated {
                let found = audited.iter().find(|(a, _)| a == key).map(|(_, p)| p);
                assert_eq!(
                    found,
                    Some(patch),
                    "{} {key} under {policy:?}",
                    file.display()
                );
                compared += 1;
            }
        }
    }
    assert!(compared >= 150, "compared {compared} templates");
}

const SHOP_MANIFESTS: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {podgrace.io/inject: enabled}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: app
        image: eclipse-temurin:21
        command: ["/bin/sh", "-c", "java -jar app.jar"]
        ports: [{containerPort: 8080}]
---
apiVersion: v1
kind: List
items:
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: fine, namespace: shop}
  spec:
    selector: {matchLabels: {app: fine}}
    template:
      metadata: {labels: {app: fine}}
      spec:
        containers:
        - name: app
          image: eclipse-temurin:21
          ports: [{containerPort: 8080}]
"#;

#[test]
fn manifests_from_stdin_and_directories_with_exit_codes_and_formats() {
    let f = tmp(SHOP_MANIFESTS);
    let path = f.path().to_str().unwrap();
    let out = podgrace(&["audit", "-f", path, "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["schemaVersion"], 1);
    assert_eq!(report["source"]["type"], "manifests");
    let shop = &report["namespaces"][0];
    assert_eq!(shop["name"], "shop");
    assert_eq!(shop["optIn"], "enabled");
    let web = &shop["workloads"][1];
    assert_eq!(web["name"], "web");
    assert_eq!(web["status"], "risk");
    assert_eq!(web["coverage"], "applies");
    assert_eq!(web["remaining"][0]["kind"], "shell-pid1");
    assert_eq!(web["fixedByPodgrace"], json!(["no-readiness"]));
    assert_eq!(shop["workloads"][0]["status"], "ok");
    assert_eq!(report["summary"]["risk"], 1);
    assert_eq!(report["summary"]["status"], "risk");

    assert_eq!(
        podgrace(&["audit", "-f", path, "--fail-on", "risk"])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        podgrace(&["audit", "-f", path, "--fail-on", "warning"])
            .status
            .code(),
        Some(1)
    );
    let table = podgrace(&["audit", "-f", path]);
    let table_text = text(&table.stdout);
    assert!(
        !table_text.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );
    assert!(table_text.contains("RISK  Deployment/web"), "{table_text}");
    assert!(
        table_text.ends_with(
            "2 workloads in 1 namespace: 1 at risk, 0 warning, 1 ok; 2 covered by podgrace\n"
        ),
        "{table_text}"
    );
    let md = text(&podgrace(&["audit", "-f", path, "-o", "markdown"]).stdout);
    assert!(md.contains("| RISK | `Deployment/web` |"), "{md}");
    assert!(md.contains("**shell-pid1** (container `app`)"), "{md}");

    // Standard input, and a directory holding the same file (and a file without workloads).
    let stdin = child::output_within(
        child::command(env!("CARGO_BIN_EXE_podgrace")).args(["audit", "-f", "-", "-o", "json"]),
        Some(SHOP_MANIFESTS.as_bytes()),
        SHORT,
    );
    let from_stdin: Value = serde_json::from_slice(&stdin.stdout).unwrap();
    assert_eq!(from_stdin["summary"], report["summary"]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("shop.yaml"), SHOP_MANIFESTS).unwrap();
    std::fs::create_dir(dir.path().join("more")).unwrap();
    std::fs::write(
        dir.path().join("more/svc.yaml"),
        "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n",
    )
    .unwrap();
    let out = podgrace(&["audit", "-f", dir.path().to_str().unwrap(), "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let from_dir: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(from_dir["summary"], report["summary"]);

    // An audit that cannot run exits 2 with one line.
    let out = podgrace(&["audit", "-f", "/nonexistent.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr).lines().count(),
        1,
        "{}",
        text(&out.stderr)
    );
}

// ---- cluster mode ---------------------------------------------------------------------------

fn container(name: &str, extra: Value) -> Value {
    let mut c = json!({"name": name, "image": "eclipse-temurin:21"});
    c.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    c
}

fn workload(kind: &str, ns: &str, name: &str, containers: Vec<Value>, pod_extra: Value) -> Value {
    let mut spec = json!({"containers": containers});
    spec.as_object_mut()
        .unwrap()
        .extend(pod_extra.as_object().unwrap().clone());
    let template = json!({"metadata": {"labels": {"app": name}}, "spec": spec});
    let (api_version, body) = match kind {
        "CronJob" => (
            "batch/v1",
            json!({"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}}),
        ),
        _ => (
            "apps/v1",
            json!({"selector": {"matchLabels": {"app": name}}, "template": template}),
        ),
    };
    json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "namespace": ns}, "spec": body})
}

fn pod(
    ns: &str,
    name: &str,
    owner: Option<(&str, &str)>,
    annotations: Value,
    containers: Vec<Value>,
) -> Value {
    let mut meta = json!({"name": name, "namespace": ns, "annotations": annotations});
    if let Some((kind, owner)) = owner {
        meta["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": kind, "name": owner, "uid": "u", "controller": true}]);
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {"containers": containers}})
}

fn namespace(name: &str, opted_in: bool) -> Value {
    let labels = if opted_in {
        json!({"podgrace.io/inject": "enabled"})
    } else {
        json!({})
    };
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})
}

/// A cluster with one of everything: `shop` opted in (its own policy; every finding kind;
/// drift), `legacy` not opted in, `broken` opted in with an invalid policy, `secret` forbidden.
async fn cluster() -> (FakeApi, u64) {
    let api = FakeApi::start("podgrace-policy").await;
    for (ns, on) in [
        ("shop", true),
        ("legacy", false),
        ("broken", true),
        ("secret", true),
    ] {
        api.put_object(namespace(ns, on));
    }
    let rv = api.put(
        "shop",
        "podgrace-policy",
        &[("policy.yaml", "preStop: {sleepSeconds: 5}\n")],
    );
    api.put(
        "broken",
        "podgrace-policy",
        &[("policy.yaml", "preStop: {sleepSeconds: soon}\n")],
    );
    let serving = || json!({"ports": [{"containerPort": 8080}]});
    let ready = || json!({"ports": [{"containerPort": 8080}], "readinessProbe": {"tcpSocket": {"port": 8080}}});
    // web: no readiness (fixed by podgrace); two running pods, one from before the opt-in.
    api.put_object(workload(
        "Deployment",
        "shop",
        "web",
        vec![container("app", serving())],
        json!({}),
    ));
    api.put_object(json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web-1", "namespace": "shop",
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "u", "controller": true}]},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"spec": {"containers": [container("app", serving())]}}}}));
    let current = format!("builtin, configmap shop/podgrace-policy@{rv}");
    api.put_object(pod(
        "shop",
        "web-1-a",
        Some(("ReplicaSet", "web-1")),
        json!({"podgrace.io/policy": current}),
        vec![container("app", serving())],
    ));
    api.put_object(pod(
        "shop",
        "web-1-b",
        Some(("ReplicaSet", "web-1")),
        json!({}),
        vec![container("app", serving())],
    ));
    // db: a shell as PID 1; agent: PID 1 ignores SIGTERM; proxy: nginx, liveness only, no port.
    api.put_object(workload("StatefulSet", "shop", "db", vec![container("db", json!({"command": ["sh", "-c", "run-db"], "readinessProbe": {"exec": {"command": ["true"]}}}))], json!({})));
    api.put_object(workload(
        "DaemonSet",
        "shop",
        "agent",
        vec![container(
            "agent",
            json!({"command": ["sleep", "infinity"]}),
        )],
        json!({}),
    ));
    api.put_object(workload("ReplicaSet", "shop", "proxy", vec![json!({"name": "nginx", "image": "bitnami/nginx", "livenessProbe": {"tcpSocket": {"port": 80}}})], json!({})));
    // orders: a Nacos client; slow: a kept hook longer than the grace period (fixed);
    // distroless: a shell preStop in a shell-less image.
    api.put_object(workload("Deployment", "shop", "orders", vec![container("app", json!({"ports": [{"containerPort": 8080}], "readinessProbe": {"tcpSocket": {"port": 8080}}, "env": [{"name": "SPRING_CLOUD_NACOS_DISCOVERY_SERVER_ADDR", "value": "nacos:8848"}]}))], json!({"terminationGracePeriodSeconds": 90})));
    api.put_object(workload("Deployment", "shop", "slow", vec![container("app", json!({"ports": [{"containerPort": 8080}], "readinessProbe": {"tcpSocket": {"port": 8080}}, "lifecycle": {"preStop": {"exec": {"command": ["sleep", "40"]}}}}))], json!({})));
    api.put_object(workload("Deployment", "shop", "distroless", vec![json!({"name": "app", "image": "gcr.io/distroless/java21", "ports": [{"containerPort": 8080}], "readinessProbe": {"tcpSocket": {"port": 8080}}, "lifecycle": {"preStop": {"exec": {"command": ["/bin/sh", "-c", "sleep 1"]}}}})], json!({"terminationGracePeriodSeconds": 60})));
    api.put_object(workload(
        "CronJob",
        "shop",
        "report",
        vec![container("job", json!({}))],
        json!({"restartPolicy": "OnFailure"}),
    ));
    api.put_object(pod(
        "shop",
        "debug",
        None,
        json!({}),
        vec![container("sh", json!({}))],
    ));
    api.put_object(workload(
        "Deployment",
        "legacy",
        "old",
        vec![container("app", serving())],
        json!({}),
    ));
    api.put_object(workload(
        "Deployment",
        "broken",
        "app",
        vec![container("app", ready())],
        json!({}),
    ));
    api.put_object(workload(
        "Deployment",
        "secret",
        "hidden",
        vec![container("app", serving())],
        json!({}),
    ));
    api.forbid_namespace("secret");
    (api, rv)
}

async fn audit(args: Vec<String>) -> Output {
    audit_within(args, SHORT).await
}

async fn audit_within(args: Vec<String>, limit: std::time::Duration) -> Output {
    tokio::task::spawn_blocking(move || {
        child::output_within(
            child::command(env!("CARGO_BIN_EXE_podgrace")).args(&args),
            None,
            limit,
        )
    })
    .await
    .unwrap()
}

fn args(kubeconfig: &tempfile::NamedTempFile, extra: &[&str]) -> Vec<String> {
    let mut a = vec![
        "audit".to_owned(),
        "--kubeconfig".to_owned(),
        kubeconfig.path().display().to_string(),
    ];
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn workloads(report: &Value, ns: &str) -> BTreeMap<String, Value> {
    report["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == ns)
        .unwrap()["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                format!(
                    "{}/{}",
                    w["kind"].as_str().unwrap(),
                    w["name"].as_str().unwrap()
                ),
                w.clone(),
            )
        })
        .collect()
}

fn finding_kinds(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn a_cluster_audit_finds_every_trap_drift_and_the_namespaces_it_cannot_read() {
    let (api, rv) = cluster().await;
    let kc = tmp(&api.kubeconfig(Some("shop")));
    let out = audit(args(
        &kc,
        &[
            "-n", "shop", "-n", "legacy", "-n", "broken", "-n", "secret", "-o", "json",
        ],
    ))
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["schemaVersion"], 1);
    assert_eq!(
        report["source"],
        json!({"type": "cluster", "server": format!("http://{}/", api.addr)})
    );
    let shop = workloads(&report, "shop");
    let names: Vec<&str> = shop.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "CronJob/report",
            "DaemonSet/agent",
            "Deployment/distroless",
            "Deployment/orders",
            "Deployment/slow",
            "Deployment/web",
            "Pod/debug",
            "ReplicaSet/proxy",
            "StatefulSet/db"
        ]
    );
    let remaining = |w: &str| finding_kinds(&shop[w]["remaining"]);
    let today = |w: &str| finding_kinds(&shop[w]["today"]);
    assert_eq!(remaining("StatefulSet/db"), ["shell-pid1"]);
    assert_eq!(remaining("DaemonSet/agent"), ["ignores-sigterm"]);
    assert_eq!(
        today("ReplicaSet/proxy"),
        ["liveness-without-readiness", "nginx-without-quit"]
    );
    assert_eq!(
        remaining("Deployment/orders"),
        ["registry-without-deregistration"]
    );
    assert_eq!(remaining("Deployment/distroless"), ["prestop-needs-shell"]);
    assert_eq!(today("Deployment/slow"), ["grace-short"]);
    assert_eq!(
        shop["Deployment/slow"]["today"][0]["message"],
        "terminationGracePeriodSeconds 30 < 75 needed: kept preStop 40s (read from hook) + shutdown 30s + buffer 5s (app)"
    );
    assert!(remaining("Deployment/slow").is_empty());
    assert_eq!(shop["Deployment/slow"]["status"], "ok");
    assert_eq!(today("Deployment/web"), ["no-readiness"]);
    assert_eq!(shop["Deployment/web"]["coverage"], "applies");
    assert_eq!(shop["Deployment/web"]["status"], "warning");
    let drift = &shop["Deployment/web"]["drift"];
    assert_eq!(
        (drift["pods"].as_u64(), drift["of"].as_u64()),
        (Some(1), Some(2)),
        "{drift}"
    );
    assert_eq!(shop["CronJob/report"]["coverage"], "batch");
    assert_eq!(shop["Pod/debug"]["coverage"], "applies");
    let policy = &report["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "shop")
        .unwrap()["policy"];
    assert_eq!(
        policy,
        &json!(format!("builtin, configmap shop/podgrace-policy@{rv}"))
    );
    // The namespace's sleepSeconds 5 is what podgrace would inject.
    let inject = &shop["Deployment/web"]["wouldInject"]["containers"][0]["items"];
    assert!(
        inject
            .as_array()
            .unwrap()
            .contains(&json!("preStop=sleep 5s")),
        "{inject}"
    );

    let legacy = workloads(&report, "legacy");
    assert_eq!(
        legacy["Deployment/old"]["coverage"],
        "namespace-not-opted-in"
    );
    assert_eq!(legacy["Deployment/old"]["status"], "risk");
    assert_eq!(
        finding_kinds(&legacy["Deployment/old"]["remaining"]),
        ["no-readiness"]
    );
    assert!(legacy["Deployment/old"]["drift"].is_null());

    let namespaces = report["namespaces"].as_array().unwrap();
    let broken = namespaces.iter().find(|n| n["name"] == "broken").unwrap();
    assert!(
        broken["policyError"]
            .as_str()
            .unwrap()
            .contains("sleepSeconds"),
        "{broken}"
    );
    assert_eq!(
        broken["policy"], "builtin",
        "the webhook would use the cluster default"
    );
    assert_eq!(broken["workloads"][0]["status"], "ok");
    let secret = namespaces.iter().find(|n| n["name"] == "secret").unwrap();
    assert_eq!(secret["readable"], false);
    assert!(
        secret["error"].as_str().unwrap().contains("forbidden"),
        "{secret}"
    );
    assert_eq!(report["summary"]["notReadable"], 1);
    assert!(
        report["notes"][0]
            .as_str()
            .unwrap()
            .contains("podgrace-system/podgrace-cluster-policy")
    );

    // One request per kind per namespace, never a watch; nothing but GETs.
    let requests = api.requests();
    for kind in [
        "deployments",
        "statefulsets",
        "daemonsets",
        "replicasets",
        "pods",
        "cronjobs",
        "configmaps?",
    ] {
        let n = requests
            .iter()
            .filter(|r| r.contains("/namespaces/shop/") && r.contains(kind))
            .count();
        assert_eq!(n, 1, "{kind}: {requests:#?}");
    }
    assert!(
        requests
            .iter()
            .all(|r| r.starts_with("GET ") && !r.contains("watch"))
    );

    // Exit codes.
    let fail_risk = audit(args(&kc, &["-n", "shop", "--fail-on", "risk"])).await;
    assert_eq!(fail_risk.status.code(), Some(1));
    let clean = audit(args(&kc, &["-n", "broken", "--fail-on", "risk"])).await;
    assert_eq!(clean.status.code(), Some(0), "{}", text(&clean.stdout));
    let warn = audit(args(&kc, &["-n", "broken", "--fail-on", "warning"])).await;
    assert_eq!(
        warn.status.code(),
        Some(1),
        "an invalid namespace policy is a warning"
    );
    let forbidden = audit(args(&kc, &["-n", "secret", "--fail-on", "warning"])).await;
    assert_eq!(forbidden.status.code(), Some(1));
    // Its Namespace is not readable either: its opt-in is unknown.
    assert!(
        text(&forbidden.stdout)
            .contains("namespace secret (opt-in unknown): not readable: cannot list"),
        "{}",
        text(&forbidden.stdout)
    );
}

#[tokio::test]
async fn lists_are_paged_and_all_namespaces_is_one_list_per_kind() {
    let (api, _) = cluster().await;
    let kc = tmp(&api.kubeconfig(Some("shop")));
    let paged = audit(args(&kc, &["-n", "shop", "-o", "json", "--page-size", "2"])).await;
    assert!(paged.status.success(), "{}", text(&paged.stderr));
    let paged: Value = serde_json::from_slice(&paged.stdout).unwrap();
    assert_eq!(paged["summary"]["workloads"], 9);
    // Four Deployments and three Pods: two pages each.
    let continued: Vec<String> = api
        .requests()
        .into_iter()
        .filter(|r| r.contains("continue="))
        .collect();
    assert_eq!(continued.len(), 2, "{continued:#?}");
    assert!(
        continued.iter().any(|r| r.contains("/deployments?"))
            && continued.iter().any(|r| r.contains("/pods?"))
    );

    let before = api.requests().len();
    let all = audit(args(&kc, &["-A", "-o", "json"])).await;
    assert!(all.status.success(), "{}", text(&all.stderr));
    let all: Value = serde_json::from_slice(&all.stdout).unwrap();
    assert_eq!(all["summary"]["namespaces"], 4);
    assert_eq!(all["summary"]["workloads"], 9 + 1 + 1 + 1);
    let requests = &api.requests()[before..];
    assert!(
        requests
            .iter()
            .all(|r| !r.contains("/namespaces/shop/deployments")),
        "{requests:#?}"
    );
    let deployments = requests
        .iter()
        .filter(|r| r.contains("/apis/apps/v1/deployments"))
        .count();
    assert_eq!(deployments, 1, "{requests:#?}");
}

#[tokio::test]
async fn an_unreachable_api_server_is_one_line_naming_it() {
    let (mut api, _) = cluster().await;
    let kc = tmp(&api.kubeconfig(Some("shop")));
    let addr = api.addr;
    api.stop();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let out = audit(args(&kc, &["-n", "shop"])).await;
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!(
            "cannot reach the Kubernetes API server at http://{addr}/"
        )),
        "{err}"
    );
}

#[test]
fn installed_as_kubectl_podgrace_it_is_a_kubectl_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = dir.path().join("kubectl-podgrace");
    std::fs::copy(env!("CARGO_BIN_EXE_podgrace"), &plugin).unwrap();
    let f = tmp(SHOP_MANIFESTS);
    // kubectl runs the plugin with the words after `kubectl podgrace`, its flags included.
    let out = child::output_within(
        child::command(&plugin).args([
            "audit",
            "--namespace=shop",
            "-f",
            f.path().to_str().unwrap(),
            "-o",
            "json",
        ]),
        None,
        SHORT,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["summary"]["workloads"], 2);
    let help = child::output_within(
        child::command(&plugin).args(["audit", "--help"]),
        None,
        SHORT,
    );
    assert!(
        text(&help.stdout).contains("Usage: kubectl podgrace audit"),
        "{}",
        text(&help.stdout)
    );
}

#[tokio::test]
async fn a_forbidden_kind_leaves_the_rest_of_the_namespace_audited() {
    let (api, _) = cluster().await;
    api.forbid_list(Some("shop"), "pods");
    api.forbid_list(Some("shop"), "cronjobs");
    api.forbid_list(Some("broken"), "configmaps");
    let kc = tmp(&api.kubeconfig(Some("shop")));
    let out = audit(args(&kc, &["-n", "shop", "-n", "broken", "-o", "json"])).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let namespaces = report["namespaces"].as_array().unwrap();
    let ns = |name: &str| namespaces.iter().find(|n| n["name"] == name).unwrap();
    let resources = |n: &Value| -> Vec<String> {
        n["unreadable"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["resource"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ns("shop")["readable"], true);
    assert!(ns("shop")["error"].is_null());
    assert_eq!(resources(ns("shop")), ["pods", "cronjobs"]);
    assert!(
        ns("shop")["unreadable"][0]["error"]
            .as_str()
            .unwrap()
            .starts_with("cannot list pods: pods is forbidden: User \"alice\" cannot list"),
        "{}",
        ns("shop")
    );
    // Everything but the CronJob and the bare Pod is audited, findings as with full access.
    let shop = workloads(&report, "shop");
    let names: Vec<&str> = shop.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "DaemonSet/agent",
            "Deployment/distroless",
            "Deployment/orders",
            "Deployment/slow",
            "Deployment/web",
            "ReplicaSet/proxy",
            "StatefulSet/db"
        ]
    );
    assert_eq!(
        finding_kinds(&shop["StatefulSet/db"]["remaining"]),
        ["shell-pid1"]
    );
    // Without its pods, no drift can be read.
    assert!(shop["Deployment/web"]["drift"].is_null());
    // Without the ConfigMaps, the namespace's own (here invalid) policy is unknown.
    assert_eq!(resources(ns("broken")), ["configmaps"]);
    assert_eq!(ns("broken")["policy"], "builtin");
    assert!(ns("broken")["policyError"].is_null());
    assert_eq!(workloads(&report, "broken").len(), 1);
    assert_eq!(report["summary"]["partlyReadable"], 2);
    assert_eq!(report["summary"]["notReadable"], 0);

    let table = audit(args(&kc, &["-n", "shop", "-n", "broken"])).await;
    let table = text(&table.stdout);
    assert!(
        table.contains("): audited without pods, cronjobs (forbidden: cannot list pods: "),
        "{table}"
    );
    assert!(
        table.contains("its own policy unknown, the cluster default assumed"),
        "{table}"
    );
    assert!(
        table.contains("; 2 namespaces partly readable\n"),
        "{table}"
    );
    // A partly readable namespace is a warning, whatever its workloads.
    let warn = audit(args(&kc, &["-n", "broken", "--fail-on", "warning"])).await;
    assert_eq!(warn.status.code(), Some(1));
    let risk = audit(args(&kc, &["-n", "broken", "--fail-on", "risk"])).await;
    assert_eq!(risk.status.code(), Some(0), "{}", text(&risk.stdout));

    // Cluster-wide: a forbidden kind is missing from every namespace, the rest is audited.
    api.forbid_list(None, "daemonsets");
    let all = audit(args(&kc, &["-A", "-o", "json"])).await;
    assert!(all.status.success(), "{}", text(&all.stderr));
    let all: Value = serde_json::from_slice(&all.stdout).unwrap();
    assert_eq!(all["summary"]["workloads"], 9 + 1 + 1 + 1 - 1);
    assert_eq!(all["summary"]["partlyReadable"], 4);
    for n in all["namespaces"].as_array().unwrap() {
        assert_eq!(resources(n), ["daemonsets"], "{n}");
        assert!(
            n["unreadable"][0]["error"]
                .as_str()
                .unwrap()
                .contains("daemonsets.apps is forbidden"),
            "{n}"
        );
    }
}

/// 5,000 Deployments in 10 namespaces, each with a running pod, audited over the API: every
/// list paged, one list (its pages aside) per kind per namespace, nothing else.
#[tokio::test]
async fn five_thousand_workloads_are_audited_with_paged_lists_one_per_kind_and_namespace() {
    const NAMESPACES: usize = 10;
    const PER_NAMESPACE: usize = 500;
    const PAGE: usize = 200;
    let api = FakeApi::start("podgrace-policy").await;
    let serving = || json!({"ports": [{"containerPort": 8080}]});
    for n in 0..NAMESPACES {
        let ns = format!("team-{n}");
        api.put_object(namespace(&ns, n.is_multiple_of(2)));
        for i in 0..PER_NAMESPACE {
            let name = format!("svc-{i:03}");
            api.put_object(workload(
                "Deployment",
                &ns,
                &name,
                vec![container("app", serving())],
                json!({}),
            ));
        }
        // One running pod per namespace, from a ReplicaSet of the first Deployment.
        api.put_object(json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "svc-000-1", "namespace": ns,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "svc-000", "uid": "u", "controller": true}]},
            "spec": {"selector": {"matchLabels": {"app": "svc-000"}}, "template": {"spec": {"containers": [container("app", serving())]}}}}));
        api.put_object(pod(
            &ns,
            "svc-000-1-a",
            Some(("ReplicaSet", "svc-000-1")),
            json!({}),
            vec![container("app", serving())],
        ));
    }
    let kc = tmp(&api.kubeconfig(Some("shop")));
    let page = PAGE.to_string();
    let mut a = vec!["-o", "json", "--page-size", page.as_str()];
    let names: Vec<String> = (0..NAMESPACES).map(|n| format!("team-{n}")).collect();
    for ns in &names {
        a.extend(["-n", ns.as_str()]);
    }
    // A debug build on a shared machine: generous, but never a hang.
    let limit = std::time::Duration::from_secs(300);
    let out = audit_within(args(&kc, &a), limit).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["summary"]["workloads"], NAMESPACES * PER_NAMESPACE);
    assert_eq!(report["summary"]["namespaces"], NAMESPACES);
    assert_eq!(report["summary"]["covered"], NAMESPACES / 2 * PER_NAMESPACE);
    // The opted-in namespaces' first Deployment: its pod predates podgrace.
    assert_eq!(
        workloads(&report, "team-0")["Deployment/svc-000"]["drift"]["pods"],
        1
    );

    let requests = api.requests();
    let pages = PER_NAMESPACE.div_ceil(PAGE);
    for ns in &names {
        let of_ns: Vec<&String> = requests
            .iter()
            .filter(|r| {
                r.contains(&format!("/namespaces/{ns}/"))
                    || r.ends_with(&format!("/namespaces/{ns}"))
            })
            .collect();
        for kind in [
            "deployments",
            "statefulsets",
            "daemonsets",
            "replicasets",
            "pods",
            "cronjobs",
            "configmaps?",
        ] {
            let lists: Vec<&&String> = of_ns
                .iter()
                .filter(|r| r.contains(&format!("/{kind}")))
                .collect();
            let first = lists.iter().filter(|r| !r.contains("continue=")).count();
            assert_eq!(first, 1, "{ns} {kind}: {lists:#?}");
            assert!(
                lists.iter().all(|r| r.contains(&format!("limit={PAGE}"))),
                "{lists:#?}"
            );
            let expected = if kind == "deployments" { pages } else { 1 };
            assert_eq!(lists.len(), expected, "{ns} {kind}: {lists:#?}");
        }
        // The Namespace itself, and those seven lists' pages: nothing else.
        assert_eq!(of_ns.len(), 1 + 6 + pages, "{ns}: {of_ns:#?}");
    }
    let everything = 1 + NAMESPACES * (1 + 6 + pages);
    // Plus the cluster default policy's ConfigMap.
    assert_eq!(requests.len(), everything, "{requests:#?}");

    // All namespaces: one list per kind for the cluster, paged.
    let before = api.requests().len();
    let out = audit_within(
        args(&kc, &["-A", "-o", "json", "--page-size", page.as_str()]),
        limit,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["summary"]["workloads"], NAMESPACES * PER_NAMESPACE);
    let requests = &api.requests()[before..];
    let deployments: Vec<&String> = requests
        .iter()
        .filter(|r| r.contains("/apis/apps/v1/deployments"))
        .collect();
    assert_eq!(
        deployments.len(),
        (NAMESPACES * PER_NAMESPACE).div_ceil(PAGE)
    );
    assert_eq!(
        deployments
            .iter()
            .filter(|r| !r.contains("continue="))
            .count(),
        1
    );
    assert!(
        requests.iter().all(|r| !r.contains("/namespaces/team-")),
        "{requests:#?}"
    );
}

#[test]
fn a_file_of_more_than_1024_documents_is_audited_and_a_hostile_one_named() {
    let deployment = |i: usize| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: svc-{i}, namespace: shop}}\nspec:\n  selector: {{matchLabels: {{app: svc-{i}}}}}\n  template:\n    metadata: {{labels: {{app: svc-{i}}}}}\n    spec:\n      containers:\n      - {{name: app, image: eclipse-temurin:21, ports: [{{containerPort: 8080}}]}}\n"
        )
    };
    let stream: Vec<String> = (0..1_100).map(deployment).collect();
    let f = tmp(&stream.join("---\n"));
    let out = podgrace(&["audit", "-f", f.path().to_str().unwrap(), "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["summary"]["workloads"], 1_100);

    // Nesting no manifest has: the report names the file, the limit and what to do, and the
    // exit code says part of the input was not read.
    let deep = tmp(&("[".repeat(70) + &"]".repeat(70)));
    let out = podgrace(&["audit", "-f", deep.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!(
            "{}: document 1, line 1: invalid YAML: more than 64 levels of YAML nesting, the YAML reader's limit against hostile input: no Kubernetes object nests this deep: check what the file holds\n",
            deep.path().display()
        )),
        "{}",
        text(&out.stdout)
    );
}

/// Times `podgrace audit -A` against the test API server holding the manifests that
/// bench/audit_manifests.py wrote (bench/results/audit.md, "End to end, cluster"): not a test, a measurement, run by hand:
///
/// ```sh
/// python3 bench/audit_manifests.py /tmp/audit5k
/// AUDIT_MANIFESTS=/tmp/audit5k PODGRACE_BIN=/path/to/release/podgrace \
///   cargo test --test audit time_a_cluster_audit -- --ignored --nocapture
/// ```
#[tokio::test]
#[ignore = "a measurement: needs AUDIT_MANIFESTS and a release PODGRACE_BIN"]
async fn time_a_cluster_audit() {
    let dir = std::env::var("AUDIT_MANIFESTS").expect("AUDIT_MANIFESTS");
    let bin = std::env::var("PODGRACE_BIN").expect("PODGRACE_BIN");
    let api = FakeApi::start("podgrace-policy").await;
    let mut objects = 0;
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for doc in podgrace::protocols::yaml::manifests::<Value>(&text).unwrap() {
            api.put_object(doc);
            objects += 1;
        }
    }
    let kc = tmp(&api.kubeconfig(Some("shop")));
    let cluster = repo("tests/fixtures/policies/cluster.yaml");
    for run in 1..=3 {
        let a = [
            "-v".to_owned(),
            bin.clone(),
            "audit".to_owned(),
            "--kubeconfig".to_owned(),
            kc.path().display().to_string(),
            "--cluster-policy".to_owned(),
            cluster.display().to_string(),
            "-A".to_owned(),
            "-o".to_owned(),
            "json".to_owned(),
        ];
        let out = tokio::task::spawn_blocking(move || {
            child::output_within(child::command("/usr/bin/time").args(&a), None, SHORT)
        })
        .await
        .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        let stats: Vec<String> = text(&out.stderr)
            .lines()
            .filter(|l| {
                ["Elapsed", "Maximum resident", "User time", "System time"]
                    .iter()
                    .any(|k| l.contains(k))
            })
            .map(|l| l.trim().to_owned())
            .collect();
        eprintln!(
            "run {run}: {objects} objects, {} workloads: {stats:?}",
            report["summary"]["workloads"]
        );
    }
    eprintln!("requests: {}", api.requests().len());
}

/// The graceful-start findings (issue 19's, from `engine::startup`) in the three formats: a
/// liveness probe that gives up after 60 s under a declared 120 s start, fixed by podgrace's
/// startupProbe when the policy injects one and left when it only declares the time; a
/// readiness probe that is the liveness check.
#[test]
fn graceful_start_findings_in_table_markdown_and_json() {
    let manifests = tmp(r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: orders, namespace: shop}
spec:
  selector: {matchLabels: {app: orders}}
  template:
    metadata: {labels: {app: orders}}
    spec:
      containers:
      - name: app
        image: eclipse-temurin:21
        ports: [{containerPort: 8080}]
        livenessProbe: {httpGet: {path: /actuator/health, port: 8080}, initialDelaySeconds: 30, periodSeconds: 10}
        readinessProbe: {httpGet: {path: /actuator/health, port: 8080}}
"#);
    let declared = tmp("startup: {inject: false, maxSeconds: 120}\n");
    let injected = tmp("startup: {inject: true, maxSeconds: 120}\n");
    let run = |policy: &tempfile::NamedTempFile, output: &str| {
        let out = podgrace(&[
            "audit",
            "-f",
            manifests.path().to_str().unwrap(),
            "--namespace-policy",
            policy.path().to_str().unwrap(),
            "-o",
            output,
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let report: Value = serde_json::from_str(&run(&declared, "json")).unwrap();
    let w = &report["namespaces"][0]["workloads"][0];
    assert_eq!(report["schemaVersion"], 1);
    assert_eq!(
        finding_kinds(&w["today"]),
        ["liveness-before-start", "readiness-is-liveness"]
    );
    assert_eq!(
        finding_kinds(&w["remaining"]),
        ["liveness-before-start", "readiness-is-liveness"]
    );
    assert_eq!(
        w["remaining"][0]["message"],
        "liveness restarts it after 60s, before its declared 120s start"
    );
    assert_eq!(w["remaining"][0]["container"], "app");
    let table = run(&declared, "table");
    assert!(
        table.contains("at risk: liveness-before-start, readiness-is-liveness"),
        "{table}"
    );
    let md = run(&declared, "markdown");
    assert!(
        md.contains("**liveness-before-start** (container `app`): liveness restarts it after 60s, before its declared 120s start"),
        "{md}"
    );
    assert!(
        md.contains(
            "**readiness-is-liveness** (container `app`): readiness and liveness run the same check"
        ),
        "{md}"
    );

    // With the startupProbe injected, the restart trap is fixed; the identical probes remain.
    let report: Value = serde_json::from_str(&run(&injected, "json")).unwrap();
    let w = &report["namespaces"][0]["workloads"][0];
    assert_eq!(finding_kinds(&w["remaining"]), ["readiness-is-liveness"]);
    assert_eq!(w["fixedByPodgrace"], json!(["liveness-before-start"]));
    let table = run(&injected, "table");
    assert!(
        table.contains("podgrace fixes liveness-before-start"),
        "{table}"
    );
}

/// On a terminal (script(1) gives the audit one) the verdicts are coloured, and a cluster audit
/// that takes longer than a second shows its progress on stderr and erases it when done; in a
/// pipe, neither.
#[tokio::test]
async fn on_a_terminal_verdicts_are_coloured_and_a_slow_audit_shows_its_progress() {
    let (api, _) = cluster().await;
    let kubeconfig = tmp(&api.kubeconfig(Some("shop")));
    let line = format!(
        "'{}' audit --kubeconfig '{}' -n shop",
        env!("CARGO_BIN_EXE_podgrace"),
        kubeconfig.path().display()
    );
    // The lists wait until released: the audit runs for about two seconds.
    api.hold_lists(true);
    let run = tokio::task::spawn_blocking(move || {
        child::output_within(
            child::command("script").args(["-qefc", &line, "/dev/null"]),
            None,
            SHORT,
        )
    });
    tokio::time::sleep(std::time::Duration::from_millis(1800)).await;
    api.hold_lists(false);
    let out = run.await.unwrap();
    let shown = text(&out.stdout);
    assert!(out.status.success(), "{shown}{}", text(&out.stderr));
    // "reading the cluster" while the namespaces are not known yet, then "n/1 namespaces read".
    let progress = [
        "podgrace audit: reading the cluster",
        "podgrace audit: 0/1 namespaces read",
    ]
    .iter()
    .filter_map(|line| shown.find(line))
    .min()
    .unwrap_or_else(|| panic!("no progress line: {shown:?}"));
    // Erased (carriage return, clear to the end of the line) before the report.
    let report = shown.find("shop").unwrap();
    assert!(
        shown[progress..report].contains("\r\x1b[K"),
        "the progress line is not erased: {shown:?}"
    );
    assert!(
        ["\x1b[31m", "\x1b[32m", "\x1b[33m"]
            .iter()
            .any(|c| shown[report..].contains(c)),
        "no colour: {shown:?}"
    );

    let piped = audit(args(&kubeconfig, &["-n", "shop"])).await;
    assert!(piped.status.success());
    assert!(
        !text(&piped.stdout).contains('\x1b'),
        "{}",
        text(&piped.stdout)
    );
    assert!(!text(&piped.stderr).contains("namespaces read"));
}

/// A folder as users have it (tests/fixtures/manifests/folder): every readable workload is
/// audited, each file or document that is not is listed with its place and why, in every
/// format, and the exit code and `--fail-on` say so.
#[test]
fn a_folder_with_unreadable_documents_is_audited_and_each_of_them_listed() {
    let dir = tempfile::tempdir().unwrap();
    let folder = repo("tests/fixtures/manifests/folder");
    for e in std::fs::read_dir(&folder).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
    }
    // A file that is not text.
    std::fs::write(dir.path().join("zz-binary.yaml"), [0xff, 0xfe, 0x00, 0x41]).unwrap();
    let d = dir.path().display().to_string();
    let out = podgrace(&["audit", "-f", &d, "-o", "json"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = report["namespaces"][0]["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["mailer", "storefront"], "the readable workloads");
    let problems: Vec<(String, Value, Value, &str, &str)> = report["inputProblems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["file"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_owned(),
                p["document"].clone(),
                p["line"].clone(),
                p["problem"].as_str().unwrap(),
                p["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        problems,
        [
            (
                "deployment.yaml".into(),
                json!(1),
                json!(5),
                "unreadable",
                "warning"
            ),
            (
                "fluentd-daemonset.yaml".into(),
                json!(1),
                json!(2),
                "removed-api",
                "risk"
            ),
            (
                "replicas-patch.yaml".into(),
                json!(1),
                json!(2),
                "unreadable",
                "warning"
            ),
            (
                "worker.yaml".into(),
                json!(1),
                json!(22),
                "unreadable",
                "warning"
            ),
            (
                "zz-binary.yaml".into(),
                json!(null),
                json!(null),
                "unreadable",
                "warning"
            ),
        ]
    );
    let fluentd = &report["inputProblems"][1];
    assert_eq!(
        (
            &fluentd["apiVersion"],
            &fluentd["kind"],
            &fluentd["namespace"],
            &fluentd["name"]
        ),
        (
            &json!("extensions/v1beta1"),
            &json!("DaemonSet"),
            &json!("logging"),
            &json!("fluentd")
        )
    );
    assert_eq!(report["summary"]["inputProblems"], 5);
    assert_eq!(
        report["summary"]["status"], "risk",
        "a removed apiVersion is a risk"
    );

    let table = text(&podgrace(&["audit", "-f", &d]).stdout);
    for expected in [
        "not audited:\n",
        &format!(
            "  RISK  {d}/fluentd-daemonset.yaml: document 1, line 2 (DaemonSet logging/fluentd): DaemonSet extensions/v1beta1 was removed in Kubernetes 1.16"
        ),
        &format!("  WARN  {d}/deployment.yaml: document 1, line 5: invalid YAML: "),
        "5 documents not audited (1 at risk: removed apiVersion)\n",
    ] {
        assert!(table.contains(expected), "{expected} missing in\n{table}");
    }
    let md = text(&podgrace(&["audit", "-f", &d, "-o", "markdown"]).stdout);
    assert!(md.contains("### not audited\n"), "{md}");
    assert!(
        md.contains(&format!(
            "| WARN | {d}/replicas-patch.yaml: document 1, line 2 (Deployment shop/storefront) | not a valid pod: missing spec.template"
        )),
        "{md}"
    );
    // `--fail-on` takes them in: a removed apiVersion is a risk, an unreadable file a warning.
    for fail_on in ["risk", "warning"] {
        assert_eq!(
            podgrace(&["audit", "-f", &d, "--fail-on", fail_on])
                .status
                .code(),
            Some(1),
            "{fail_on}"
        );
    }
}
