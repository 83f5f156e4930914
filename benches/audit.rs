//! `podgrace audit` over 5,000 Deployments of realistic shapes (an application container with
//! ports, probes, env, resources and on half of them a preStop; a log shipper; an Istio proxy on
//! every third; shells as PID 1, Nacos clients, nginx and Spring Boot labels here and there, as
//! bench/audit_manifests.py writes them for the end-to-end timing): the pure audit
//! (`audit::audit_workload`, the engine included), the report built and written as JSON, and
//! reading the manifests' YAML document by document, as the audit reads them (values) and as
//! `podgrace mutate` reads them (values and key order, in one pass).

use criterion::{Criterion, criterion_group, criterion_main};
use podgrace::audit::report::{NamespaceReport, Report, Source};
use podgrace::audit::{self, OptIn, Workload};
use podgrace::engine::{ClusterInfo, PodView};
use podgrace::policy::{EffectivePolicy, Origin, load_layer};
use serde_json::{Value, json};
use std::hint::black_box;
use std::time::Duration;

// As in the podgrace binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CLUSTER: &str = include_str!("../tests/fixtures/policies/cluster.yaml");
const WORKLOADS: usize = 5_000;
/// Documents per manifest file (serde-saphyr's default budget allows 1,024 per stream).
const PER_FILE: usize = 100;

/// Deployment `i`, shaped as bench/audit_manifests.py shapes it.
fn deployment(i: usize) -> Value {
    let name = format!("svc-{i:05}");
    let images = [
        "eclipse-temurin:21",
        "nginx:1.27",
        "python:3.12-slim",
        "gcr.io/distroless/java21",
    ];
    let mut app = json!({
        "name": "app",
        "image": images[i % 4],
        "ports": [{"containerPort": 8080, "name": "http"}, {"containerPort": 9090, "name": "metrics"}],
        "env": [
            {"name": "JAVA_OPTS", "value": "-Xms512m -Xmx512m"},
            {"name": "SPRING_PROFILES_ACTIVE", "value": "prod"},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": format!("{name}-db"), "key": "password"}}},
        ],
        "resources": {"requests": {"cpu": "250m", "memory": "768Mi"}, "limits": {"memory": "1Gi"}},
        "livenessProbe": {"httpGet": {"path": "/actuator/health/liveness", "port": 8080},
                          "initialDelaySeconds": 30, "periodSeconds": 10},
        "volumeMounts": [{"name": "config", "mountPath": "/etc/app"}],
    });
    if !i.is_multiple_of(3) {
        app["readinessProbe"] = json!({"httpGet": {"path": "/actuator/health/readiness", "port": 8080}, "periodSeconds": 5});
    }
    if i.is_multiple_of(2) {
        app["lifecycle"] =
            json!({"preStop": {"exec": {"command": ["sleep", (5 + i % 30).to_string()]}}});
    }
    if i.is_multiple_of(7) {
        app["command"] = json!(["/bin/sh", "-c", "exec java $JAVA_OPTS -jar /app.jar"]);
    }
    if i.is_multiple_of(11) {
        app["env"].as_array_mut().unwrap().push(
            json!({"name": "SPRING_CLOUD_NACOS_DISCOVERY_SERVER_ADDR", "value": "nacos:8848"}),
        );
    }
    let mut containers = vec![
        app,
        json!({"name": "fluent-bit", "image": "fluent/fluent-bit:3.1",
               "resources": {"requests": {"cpu": "20m", "memory": "32Mi"}},
               "volumeMounts": [{"name": "logs", "mountPath": "/var/log/app"}]}),
    ];
    if i.is_multiple_of(3) {
        containers.push(
            json!({"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.23.0",
            "ports": [{"containerPort": 15090, "name": "http-envoy-prom"}],
            "readinessProbe": {"httpGet": {"path": "/healthz/ready", "port": 15021}}}),
        );
    }
    let grace = [30, 60, 20][i % 3];
    let mut labels = json!({"app": name, "version": "v1"});
    if i.is_multiple_of(4) {
        labels["framework"] = json!("spring-boot");
    }
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": format!("team-{:03}", i / 250),
                     "labels": {"app": name, "team": format!("team-{}", i % 17)}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": labels, "annotations": {"prometheus.io/scrape": "true"}},
                "spec": {"terminationGracePeriodSeconds": grace, "containers": containers,
                    "volumes": [{"name": "config", "configMap": {"name": format!("{name}-config")}},
                                {"name": "logs", "emptyDir": {}}]}}}
    })
}

fn workloads() -> Vec<Workload> {
    (0..WORKLOADS)
        .map(|i| {
            let d = deployment(i);
            Workload {
                kind: "Deployment".into(),
                namespace: d["metadata"]["namespace"].as_str().unwrap().into(),
                name: d["metadata"]["name"].as_str().unwrap().into(),
                template: PodView::from_value(d["spec"]["template"].clone()).unwrap(),
                running: Vec::new(),
            }
        })
        .collect()
}

/// The manifests as YAML files of [`PER_FILE`] documents each.
fn files() -> Vec<String> {
    (0..WORKLOADS)
        .collect::<Vec<_>>()
        .chunks(PER_FILE)
        .map(|chunk| {
            chunk
                .iter()
                .map(|i| podgrace::protocols::yaml::to_string(&deployment(*i)).unwrap())
                .collect::<Vec<_>>()
                .join("---\n")
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let cluster = load_layer(CLUSTER, Origin::hashed("cluster", CLUSTER)).unwrap();
    let policy = EffectivePolicy::new(Some(&cluster), None);
    let info = ClusterInfo::default();
    let workloads = workloads();
    let audit_all = || {
        workloads
            .iter()
            .map(|w| audit::audit_workload(w, &OptIn::Enabled, &policy, &info).unwrap())
            .collect::<Vec<_>>()
    };
    let reports = audit_all();
    // The shapes do what they should: traps found, some fixed, some left.
    assert!(reports.iter().any(|r| !r.remaining.is_empty()));
    assert!(reports.iter().any(|r| !r.fixed_by_podgrace.is_empty()));

    let mut g = c.benchmark_group("audit");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.bench_function("audit_5000_deployments", |b| {
        b.iter(|| black_box(audit_all()))
    });
    g.bench_function("audit_report_json_5000_deployments", |b| {
        b.iter(|| {
            let namespace = NamespaceReport {
                name: "all".into(),
                opt_in: OptIn::Enabled,
                readable: true,
                error: None,
                unreadable: Vec::new(),
                policy: policy.description().to_owned(),
                policy_error: None,
                workloads: audit_all(),
            };
            let report = Report::new(
                Source::Manifests {
                    paths: vec!["bench".into()],
                },
                vec![namespace],
            );
            serde_json::to_string_pretty(&report).unwrap()
        })
    });

    let files = files();
    let bytes: usize = files.iter().map(String::len).sum();
    eprintln!("{WORKLOADS} Deployments: {bytes} bytes of YAML");
    // Each file split into its documents, each read once (values, and for `mutate` the key
    // order in the same pass), then its objects found.
    let read_all = |with_order: bool| {
        for text in &files {
            for chunk in podgrace::manifest::documents::split(black_box(text)) {
                let d = podgrace::manifest::documents::read(&chunk.unwrap(), with_order).unwrap();
                black_box(podgrace::manifest::objects(d.value, d.order));
            }
        }
    };
    g.bench_function("read_yaml_once_5000_deployments", |b| {
        b.iter(|| read_all(false))
    });
    g.bench_function("read_yaml_as_mutate_5000_deployments", |b| {
        b.iter(|| read_all(true))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
