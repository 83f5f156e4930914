//! What reaches the API server: a patch that applies to the object as sent and touches
//! only what podgrace owns, runs again without changing anything, and warnings that fit.

use super::{APP, run};
use crate::common::{foreign_operations, mutate_raw, paths, pod_json, policy, review_object};
use podgrace::engine::ClusterInfo;
use podgrace::policy::EffectivePolicy;
use podgrace::protocols::kube_version::KubeVersion;
use serde_json::json;

#[test]
fn every_admission_fixture_gets_a_patch_that_applies_to_the_object_as_sent() {
    for f in [
        "admission/pod-create-kubectl-apply.json",
        "admission/pod-create-kubectl-run.json",
        "admission/pod-create-dry-run.json",
    ] {
        let raw = review_object(f);
        let (m, out) = run(&raw, &EffectivePolicy::builtin());
        assert!(
            foreign_operations(&raw, &m).is_empty(),
            "{f}: {:?}",
            foreign_operations(&raw, &m)
        );
        let _: k8s_openapi::api::core::v1::Pod = serde_json::from_value(out.clone()).unwrap();
        let again = mutate_raw(&out, &EffectivePolicy::builtin(), &ClusterInfo::default());
        assert!(
            again.patch.0.is_empty(),
            "{f}: not idempotent: {:?}",
            paths(&again)
        );
    }
}

#[test]
fn the_apply_fixture_gets_a_sleep_env_probe_and_grace() {
    let raw = review_object("admission/pod-create-kubectl-apply.json");
    let (m, out) = run(&raw, &EffectivePolicy::builtin());
    let c = &out["spec"]["containers"][0];
    assert_eq!(c["lifecycle"]["preStop"], json!({"sleep": {"seconds": 10}}));
    assert_eq!(
        c["env"][0]["valueFrom"]["fieldRef"]["fieldPath"],
        "status.podIP"
    );
    assert_eq!(c["readinessProbe"]["tcpSocket"]["port"], 8080);
    assert_eq!(out["spec"]["terminationGracePeriodSeconds"], 45);
    assert_eq!(
        out["metadata"]["annotations"]["existing"], "yes",
        "user annotations are kept"
    );
    assert_eq!(
        out["metadata"]["annotations"]["podgrace.io/grace"],
        "30 → 45: preStop 10s + shutdown 30s + buffer 5s (app)"
    );
    assert!(
        m.warnings
            .iter()
            .any(|w| w
                == "podgrace: grace period 30 → 45: preStop 10s + shutdown 30s + buffer 5s (app)"),
        "{:?}",
        m.warnings
    );
    // Fields podgrace does not own are byte-for-byte the same.
    for key in ["volumes", "tolerations", "securityContext", "dnsPolicy"] {
        assert_eq!(out["spec"][key], raw["spec"][key], "{key}");
    }
    assert_eq!(
        out["metadata"]["managedFields"],
        raw["metadata"]["managedFields"]
    );
}

#[test]
fn fields_unknown_to_k8s_openapi_survive() {
    let mut raw = pod_json(APP);
    raw["spec"]["futureField"] = json!({"x": 1});
    raw["spec"]["containers"][0]["lifecycle"] = json!({"stopSignalFromTheFuture": "SIGQUIT"});
    raw["spec"]["containers"][0]["env"] =
        json!([{"name": "A", "value": "1", "futureEnvField": true}]);
    raw["metadata"]["futureMeta"] = json!("kept");
    let (m, out) = run(&raw, &EffectivePolicy::builtin());
    assert!(foreign_operations(&raw, &m).is_empty());
    assert_eq!(out["spec"]["futureField"], json!({"x": 1}));
    assert_eq!(
        out["spec"]["containers"][0]["lifecycle"]["stopSignalFromTheFuture"],
        "SIGQUIT"
    );
    assert_eq!(
        out["spec"]["containers"][0]["env"][0]["futureEnvField"],
        true
    );
    assert!(out["spec"]["containers"][0]["lifecycle"]["preStop"].is_object());
}

#[test]
fn reinvocation_after_another_webhook_added_a_container_keeps_the_record() {
    let raw = pod_json(APP);
    let eff = EffectivePolicy::builtin();
    let (_, mut out) = run(&raw, &eff);
    out["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "late", "image": "x", "ports": [{"containerPort": 9000}]}));
    let (m, again) = run(&out, &eff);
    assert!(foreign_operations(&out, &m).is_empty());
    let injected = again["metadata"]["annotations"]["podgrace.io/injected"]
        .as_str()
        .unwrap();
    assert!(injected.starts_with("app: preStop=sleep 10s"), "{injected}");
    assert!(injected.contains("; late: preStop=sleep 10s"), "{injected}");
    assert_eq!(
        again["metadata"]["annotations"]["podgrace.io/grace"],
        "30 → 45: preStop 10s + shutdown 30s + buffer 5s (app)",
        "the first run's arithmetic is kept"
    );
    assert!(
        mutate_raw(&again, &eff, &ClusterInfo::default())
            .patch
            .0
            .is_empty()
    );
}

#[test]
fn every_warning_fits_with_63_character_names_and_keeps_its_advice() {
    let long = "a".repeat(63);
    let raw = pod_json(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: {long}
  annotations: {{podgrace.io/sleep-seconds: "a-very-long-bad-value-that-goes-on-and-on"}}
spec:
  terminationGracePeriodSeconds: 3
  volumes: [{{name: podgrace-helper, configMap: {{name: x}}}}]
  containers:
  - name: {long}
    image: registry.example/team/nginx:1.27
    command: [/bin/sh, -c, "cd /app && ./start"]
    ports: [{{containerPort: 8080}}]
    livenessProbe: {{tcpSocket: {{port: 8080}}}}
    lifecycle: {{preStop: {{exec: {{command: [sleep, "5"]}}}}}}
  - name: b{long}
    image: gcr.io/distroless/base
    command: [/docker-entrypoint-with-a-rather-long-name-for-a-script.sh]
    ports: [{{containerPort: 9090}}]
  - name: c{long}
    image: busybox
    command: [sleep, infinity]
"#,
        long = &long[..62]
    ));
    let policies = [
        "preStop: {sleepHandler: exec, helper: inject}\nreadiness: {inject: false}\n",
        "gracePeriod: keep\npreStop: {sleepSeconds: 30}\n",
        "preStop: {action: nacos, nacos: {server: 'http://nacos:8848'}}\n",
        "rules:\n- match: {image: 'busybox*'}\n  set: {preStop: {action: exec}}\n",
    ];
    let ctx = ClusterInfo {
        kube_version: Some(KubeVersion {
            major: 1,
            minor: 28,
        }),
    };
    let mut seen = 0;
    for p in policies {
        let m = mutate_raw(&raw, &policy(p), &ctx);
        for w in &m.warnings {
            seen += 1;
            assert!(w.chars().count() < 120, "{} chars: {w}", w.chars().count());
            assert!(!w.ends_with('…'), "cut: {w}");
        }
    }
    assert!(seen >= 10, "only {seen} warnings exercised");
}
