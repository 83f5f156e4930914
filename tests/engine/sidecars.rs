//! Sidecars: native ones stop after the app and count in the grace period; a classic Istio proxy
//! that exits before the app's drain ends is warned about.

use super::{APP, run};
use crate::common::{foreign_operations, layer, mutate_raw, paths, pod_json, read_fixture};
use podgrace::engine::ClusterInfo;
use podgrace::policy::EffectivePolicy;
use serde_json::{Value, json};

#[test]
fn native_sidecars_stop_after_the_app_and_their_shutdown_is_in_the_budget() {
    // Istio's native sidecar mode and a log shipper: initContainers with restartPolicy Always.
    let raw = pod_json(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  initContainers:
  - name: istio-proxy
    image: docker.io/istio/proxyv2:1.27.0
    restartPolicy: Always
    ports: [{containerPort: 15090, name: http-envoy-prom}]
    readinessProbe: {httpGet: {path: /healthz/ready, port: 15021}}
  - name: fluent-bit
    image: fluent/fluent-bit:3.2
    restartPolicy: Always
  - name: migrate
    image: app-migrations:1
  containers:
  - name: app
    image: registry.example/web:1
    ports: [{containerPort: 8080}]
"#,
    );
    let cluster = layer(&read_fixture("policies/cluster.yaml"));
    let eff = EffectivePolicy::new(Some(&cluster), None);
    let (m, out) = run(&raw, &eff);
    // app 10 + 30 + 5, then fluent-bit (its rule: shutdown 5), then istio-proxy (30).
    assert_eq!(out["spec"]["terminationGracePeriodSeconds"], 80);
    assert!(
        out["metadata"]["annotations"]["podgrace.io/grace"]
            .as_str()
            .unwrap()
            .ends_with("(app) + sidecars 35s (fluent-bit, istio-proxy)"),
        "{}",
        out["metadata"]["annotations"]["podgrace.io/grace"]
    );
    // By default sidecars get nothing: they outlive the app by design.
    assert_eq!(out["spec"]["initContainers"], raw["spec"]["initContainers"]);
    assert!(foreign_operations(&raw, &m).is_empty());

    // `sidecars: inject` treats them like containers (never the plain init container).
    let ns = layer("sidecars: inject\ncontainers: {exclude: [istio-proxy]}\n");
    let (m, out) = run(&raw, &EffectivePolicy::new(Some(&cluster), Some(&ns)));
    let shipper = &out["spec"]["initContainers"][1];
    assert_eq!(shipper["env"][0]["name"], "POD_IP");
    assert!(shipper.get("lifecycle").is_none(), "no port: no drain");
    assert_eq!(
        out["spec"]["initContainers"][0],
        raw["spec"]["initContainers"][0]
    );
    assert_eq!(
        out["spec"]["initContainers"][2],
        raw["spec"]["initContainers"][2]
    );
    let again = mutate_raw(
        &out,
        &EffectivePolicy::new(Some(&cluster), Some(&ns)),
        &ClusterInfo::default(),
    );
    assert!(again.patch.0.is_empty(), "{:?}", paths(&again));
    assert!(
        !paths(&m)
            .iter()
            .any(|p| p.starts_with("/spec/initContainers/2"))
    );
}

/// Istio's classic injection: istio-proxy is a regular container, gets SIGTERM at once and exits
/// after its 5 s drain while the app still sleeps in its preStop.
#[test]
fn a_classic_istio_proxy_that_exits_before_the_drain_ends_is_warned_about() {
    let warned = |raw: &Value| {
        mutate_raw(raw, &EffectivePolicy::builtin(), &ClusterInfo::default())
            .warnings
            .into_iter()
            .any(|w| w.contains("istio-proxy exits 5s after SIGTERM, app drains 10s"))
    };
    let mut classic = pod_json(APP);
    classic["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.27"}));
    assert!(warned(&classic));
    // The pod sets the proxy's drain itself.
    let mut own_drain = classic.clone();
    own_drain["metadata"]["annotations"] =
        json!({"proxy.istio.io/config": "terminationDrainDuration: 30s\n"});
    assert!(!warned(&own_drain));
    // Exiting once no connection is left, after MINIMUM_DRAIN_DURATION (5 s by default).
    let mut exit_on_zero = classic.clone();
    exit_on_zero["metadata"]["annotations"] = json!({"proxy.istio.io/config":
        "proxyMetadata:\n  EXIT_ON_ZERO_ACTIVE_CONNECTIONS: 'true'\n"});
    let m = mutate_raw(
        &exit_on_zero,
        &EffectivePolicy::builtin(),
        &ClusterInfo::default(),
    );
    assert!(
        m.warnings.iter().any(|w| w.contains(
            "istio-proxy can exit 5s after SIGTERM, app drains 10s: set its MINIMUM_DRAIN_DURATION"
        )),
        "{:?}",
        m.warnings
    );
    // Set to false, in the annotation or on the proxy, it changes nothing.
    let mut off = classic.clone();
    off["metadata"]["annotations"] = json!({"proxy.istio.io/config":
        "proxyMetadata: {EXIT_ON_ZERO_ACTIVE_CONNECTIONS: \"false\"}\n"});
    off["spec"]["containers"][1]["env"] =
        json!([{"name": "EXIT_ON_ZERO_ACTIVE_CONNECTIONS", "value": "false"}]);
    assert!(warned(&off));
    off["spec"]["containers"][1]["env"][0]["value"] = json!("true");
    assert!(!warned(&off));
    // A native sidecar stops after the app.
    let mut native = pod_json(APP);
    native["spec"]["initContainers"] = json!([{"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.27", "restartPolicy": "Always"}]);
    assert!(!warned(&native));
    assert!(!warned(&pod_json(APP)));
}
