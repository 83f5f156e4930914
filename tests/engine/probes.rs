//! Readiness and startup probes: added only where missing, on the port the container owns, never
//! a liveness probe, a startup probe for a declared start time, and the warnings about probes.

use super::{APP, run};
use crate::common::{mutate_raw, ops, paths, pod_json, policy, review_object};
use podgrace::engine::ClusterInfo;
use podgrace::policy::EffectivePolicy;
use serde_json::json;

#[test]
fn readiness_is_added_only_where_missing_and_liveness_never() {
    let mut raw = pod_json(APP);
    raw["spec"]["containers"][0]["readinessProbe"] =
        json!({"httpGet": {"path": "/mine", "port": 8080}});
    let (m, out) = run(&raw, &EffectivePolicy::builtin());
    assert_eq!(
        out["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"],
        "/mine"
    );
    assert!(out["spec"]["containers"][0].get("livenessProbe").is_none());
    assert!(!paths(&m).iter().any(|p| p.contains("Probe")));
}

#[test]
fn no_port_means_no_probe_and_no_warning() {
    let raw = review_object("admission/pod-create-dry-run.json");
    let (m, out) = run(&raw, &EffectivePolicy::builtin());
    assert!(out["spec"]["containers"][0].get("readinessProbe").is_none());
    assert!(
        !m.warnings.iter().any(|w| w.contains("probe")),
        "{:?}",
        m.warnings
    );
}

#[test]
fn an_http_readiness_policy_only_probes_the_container_that_owns_the_port() {
    // kube-rbac-proxy next to the app serves HTTPS on its own port.
    let raw = pod_json(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: app\n    image: app\n    ports: [{containerPort: 9115, name: http}]\n  - name: kube-rbac-proxy\n    image: quay.io/brancz/kube-rbac-proxy:v0.18.0\n    ports: [{containerPort: 9443, name: https}]\n",
    );
    let (_, out) = run(
        &raw,
        &policy("readiness: {handler: http, port: 9115, path: /actuator/health/readiness}\n"),
    );
    assert_eq!(
        out["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"],
        9115
    );
    assert!(out["spec"]["containers"][1].get("readinessProbe").is_none());
    // Without a fixed port each gets its own first port, and `https` is never probed over HTTP.
    let (_, out) = run(&raw, &policy("readiness: {handler: http, path: /ready}\n"));
    assert_eq!(
        out["spec"]["containers"][1]["readinessProbe"],
        json!({"tcpSocket": {"port": 9443}, "periodSeconds": 5, "timeoutSeconds": 1, "failureThreshold": 3, "successThreshold": 1})
    );
}

#[test]
fn liveness_without_readiness_is_warned_about_when_no_probe_can_be_added() {
    let warned = |liveness: &str| {
        let raw = pod_json(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  containers:\n  - name: c\n    image: x\n    livenessProbe: {liveness}\n"
        ));
        let m = mutate_raw(&raw, &EffectivePolicy::builtin(), &ClusterInfo::default());
        m.warnings
            .iter()
            .any(|w| w.contains("liveness probe without readiness probe"))
    };
    // A server on a port the container does not declare: a Service may route to it.
    assert!(warned("{tcpSocket: {port: 80}}"));
    // A worker checked by a command serves nothing.
    assert!(!warned("{exec: {command: [\"true\"]}}"));
}

/// node-local-dns checks itself on its link-local address: podgrace adds no readiness probe at
/// the pod IP, and does not ask for one either.
#[test]
fn no_readiness_warning_where_the_containers_own_probes_check_another_address() {
    let mut raw = pod_json(APP);
    raw["spec"]["containers"][0]["livenessProbe"] =
        json!({"httpGet": {"host": "169.254.20.10", "path": "/health", "port": 8080}});
    let (m, out) = run(&raw, &EffectivePolicy::builtin());
    assert!(out["spec"]["containers"][0].get("readinessProbe").is_none());
    assert!(
        !m.warnings.iter().any(|w| w.contains("without readiness")),
        "{:?}",
        m.warnings
    );
    // At the pod IP, the trap stands and podgrace fixes it.
    raw["spec"]["containers"][0]["livenessProbe"] =
        json!({"httpGet": {"path": "/health", "port": 8080}});
    let (m, out) = run(&raw, &EffectivePolicy::builtin());
    assert!(out["spec"]["containers"][0].get("readinessProbe").is_some());
    assert!(!m.warnings.iter().any(|w| w.contains("without readiness")));
}

/// A Spring Boot service as the operators' seed 000 writes it, minus the readiness probe: a
/// liveness probe that gives up after 30 + 3 × 10 = 60 s.
const LIVENESS_ONLY: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: orders, namespace: shop, labels: {app: orders}}
spec:
  containers:
  - name: orders
    image: registry.example/shop/orders:2
    ports: [{containerPort: 8080, name: http}]
    livenessProbe:
      httpGet: {path: /actuator/health/liveness, port: http}
      initialDelaySeconds: 30
      periodSeconds: 10
"#;

const START_120: &str = "startup: {inject: true, maxSeconds: 120}\n";

#[test]
fn a_declared_start_time_adds_a_startup_probe_that_only_adds_and_is_idempotent() {
    let raw = pod_json(LIVENESS_ONLY);
    let eff = policy(START_120);
    let (m, out) = run(&raw, &eff);
    let c = &out["spec"]["containers"][0];
    assert_eq!(
        c["startupProbe"],
        json!({"httpGet": {"path": "/actuator/health/liveness", "port": "http"},
               "periodSeconds": 10, "failureThreshold": 12, "successThreshold": 1})
    );
    // The liveness probe itself is never changed, the readiness probe still added.
    assert_eq!(
        c["livenessProbe"],
        raw["spec"]["containers"][0]["livenessProbe"]
    );
    assert_eq!(c["readinessProbe"]["tcpSocket"]["port"], 8080);
    assert!(paths(&m).contains(&"/spec/containers/0/startupProbe".to_owned()));
    assert!(
        out["metadata"]["annotations"]["podgrace.io/injected"]
            .as_str()
            .unwrap()
            .ends_with(" startup=http:http/actuator/health/liveness,12x10s")
    );
    assert!(
        m.record
            .injections
            .contains(&podgrace::engine::record::Injection::Startup)
    );
    // The engine on its own output: nothing more.
    let again = mutate_raw(&out, &eff, &ClusterInfo::default());
    assert!(again.patch.0.is_empty(), "{:?}", ops(&again));
    assert!(
        !again.warnings.iter().any(|w| w.contains("declared")),
        "{:?}",
        again.warnings
    );
}

#[test]
fn a_users_startup_probe_is_never_replaced_whatever_its_threshold() {
    let mut raw = pod_json(LIVENESS_ONLY);
    // Shorter than the declared 120 s, yet the user's own.
    raw["spec"]["containers"][0]["startupProbe"] =
        json!({"tcpSocket": {"port": 8080}, "failureThreshold": 3});
    let (m, out) = run(&raw, &policy(START_120));
    assert_eq!(
        out["spec"]["containers"][0]["startupProbe"],
        raw["spec"]["containers"][0]["startupProbe"]
    );
    assert!(!paths(&m).iter().any(|p| p.contains("startupProbe")));
    assert!(
        !m.warnings.iter().any(|w| w.contains("declared")),
        "{:?}",
        m.warnings
    );
}

#[test]
fn a_declared_start_time_without_injection_warns_and_adds_nothing() {
    let raw = pod_json(LIVENESS_ONLY);
    let (m, out) = run(&raw, &policy("startup: {inject: false, maxSeconds: 120}\n"));
    assert!(out["spec"]["containers"][0].get("startupProbe").is_none());
    assert_eq!(
        m.warnings
            .iter()
            .filter(|w| w.contains("startupProbe"))
            .collect::<Vec<_>>(),
        vec![
            "podgrace: container orders: liveness restarts it after 60s, before its declared 120s start: add a startupProbe"
        ]
    );
    // Without a declared start time: neither.
    let (m, out) = run(&raw, &EffectivePolicy::builtin());
    assert!(out["spec"]["containers"][0].get("startupProbe").is_none());
    assert!(!m.warnings.iter().any(|w| w.contains("declared")));
}

#[test]
fn native_sidecars_get_no_startup_probe_even_when_injected() {
    let raw = pod_json(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  initContainers:
  - name: proxy
    image: registry.example/proxy:1
    restartPolicy: Always
    ports: [{containerPort: 15001}]
    livenessProbe: {tcpSocket: {port: 15001}}
  containers:
  - name: app
    image: registry.example/app:1
    ports: [{containerPort: 8080}]
    livenessProbe: {tcpSocket: {port: 8080}}
"#,
    );
    let (_, out) = run(&raw, &policy(&format!("sidecars: inject\n{START_120}")));
    assert!(
        out["spec"]["initContainers"][0]
            .get("startupProbe")
            .is_none()
    );
    assert_eq!(
        out["spec"]["initContainers"][0]["readinessProbe"]["tcpSocket"]["port"],
        15001
    );
    assert_eq!(
        out["spec"]["containers"][0]["startupProbe"]["failureThreshold"],
        12
    );
}

#[test]
fn readiness_identical_to_liveness_is_warned_about() {
    let mut raw = pod_json(LIVENESS_ONLY);
    raw["spec"]["containers"][0]["readinessProbe"] = json!({"httpGet": {"path": "/actuator/health/liveness", "port": "http"}, "periodSeconds": 5});
    let m = mutate_raw(&raw, &EffectivePolicy::builtin(), &ClusterInfo::default());
    assert!(
        m.warnings.contains(
            &"podgrace: container orders: readiness and liveness run the same check: what makes the pod unready restarts it"
                .to_owned()
        ),
        "{:?}",
        m.warnings
    );
}

#[test]
fn a_rule_holds_readiness_back_for_warm_up() {
    let raw = pod_json(LIVENESS_ONLY);
    let (_, out) = run(
        &raw,
        &policy(
            "rules:\n- match: {podLabels: {app: orders}}\n  set: {readiness: {initialDelaySeconds: 25}}\n",
        ),
    );
    assert_eq!(
        out["spec"]["containers"][0]["readinessProbe"]["initialDelaySeconds"],
        25
    );
    let (_, out) = run(&raw, &EffectivePolicy::builtin());
    assert!(
        out["spec"]["containers"][0]["readinessProbe"]
            .get("initialDelaySeconds")
            .is_none()
    );
}
