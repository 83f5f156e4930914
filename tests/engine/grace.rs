//! The grace period: what it counts (kept hooks, declared times), never lowered, `gracePeriod:
//! keep`, and a probe's own grace period.

use super::{APP, run};
use crate::common::{paths, pod_json, policy, read_fixture};
use podgrace::policy::EffectivePolicy;
use serde_json::json;

#[test]
fn the_grace_period_covers_a_kept_hook_the_seeds_case() {
    let raw = pod_json(&read_fixture("manifests/existing-prestop.yaml"));
    let template = json!({"apiVersion": "v1", "kind": "Pod", "metadata": raw["spec"]["template"]["metadata"], "spec": raw["spec"]["template"]["spec"]});
    let (m, out) = run(&template, &EffectivePolicy::builtin());
    // Its own hook: curl -m 20 + sleep 35; Spring Boot's 30 s shutdown; 60 s was not enough.
    assert_eq!(out["spec"]["terminationGracePeriodSeconds"], 90);
    assert_eq!(
        out["metadata"]["annotations"]["podgrace.io/grace"],
        "60 → 90: kept preStop 55s (read from hook) + shutdown 30s + buffer 5s (customer-services)"
    );
    assert!(
        m.warnings
            .iter()
            .any(|w| w.contains("grace period 60 → 90: kept preStop 55s")),
        "{:#?}",
        m.warnings
    );
}

#[test]
fn an_unreadable_kept_hook_counts_the_policy_allowance_or_the_pods_declared_time() {
    let mut raw = pod_json(APP);
    raw["spec"]["containers"][0]["lifecycle"] =
        json!({"preStop": {"exec": {"command": ["sh", "/opt/offline.sh"]}}});
    let (_, out) = run(&raw, &policy("preStop: {unknownHookSeconds: 40}\n"));
    assert_eq!(out["spec"]["terminationGracePeriodSeconds"], 75);
    raw["metadata"]["annotations"] = json!({"podgrace.io/prestop-seconds": "100"});
    let (_, out) = run(&raw, &policy("preStop: {unknownHookSeconds: 40}\n"));
    assert_eq!(out["spec"]["terminationGracePeriodSeconds"], 135);
    assert!(
        out["metadata"]["annotations"]["podgrace.io/grace"]
            .as_str()
            .unwrap()
            .contains("kept preStop 100s (annotation)")
    );
    let http_hook = json!({"preStop": {"httpGet": {"path": "/drain", "port": 8080}}});
    raw["spec"]["containers"][0]["lifecycle"] = http_hook;
    raw["metadata"]["annotations"] = json!({});
    let (_, out) = run(&raw, &EffectivePolicy::builtin());
    assert_eq!(out["spec"]["terminationGracePeriodSeconds"], 65);
}

#[test]
fn under_grace_keep_the_drain_is_fitted_into_the_grace_period() {
    let keep = policy("gracePeriod: keep\n");
    let mut raw = pod_json(APP);
    raw["spec"]["terminationGracePeriodSeconds"] = json!(5);
    let (m, out) = run(&raw, &keep);
    assert_eq!(
        out["spec"]["containers"][0]["lifecycle"]["preStop"],
        json!({"sleep": {"seconds": 5}})
    );
    assert_eq!(out["spec"]["terminationGracePeriodSeconds"], 5);
    assert!(
        m.warnings.iter().any(|w| w.contains("drain cut to 5s")),
        "{:?}",
        m.warnings
    );
    raw["spec"]["terminationGracePeriodSeconds"] = json!(0);
    let (m, out) = run(&raw, &keep);
    assert!(out["spec"]["containers"][0].get("lifecycle").is_none());
    assert!(
        m.warnings.iter().any(|w| w.contains("no drain")),
        "{:?}",
        m.warnings
    );
    // A pod annotation asking for more than the grace period is fitted too.
    raw["spec"]["terminationGracePeriodSeconds"] = json!(8);
    raw["metadata"]["annotations"] = json!({"podgrace.io/sleep-seconds": "20"});
    let (_, out) = run(&raw, &keep);
    assert_eq!(
        out["spec"]["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"],
        8
    );
}

/// cilium's agent: grace 1 and a preStop of its own, which the policy keeps: no drain is
/// injected, so none is said to be cut.
#[test]
fn a_kept_hook_of_the_containers_own_is_not_a_cut_drain() {
    let keep = policy("gracePeriod: keep\n");
    let mut raw = pod_json(APP);
    raw["spec"]["terminationGracePeriodSeconds"] = json!(1);
    raw["spec"]["containers"][0]["lifecycle"] =
        json!({"preStop": {"exec": {"command": ["/cni-uninstall.sh"]}}});
    let (m, out) = run(&raw, &keep);
    assert_eq!(
        out["spec"]["containers"][0]["lifecycle"],
        raw["spec"]["containers"][0]["lifecycle"]
    );
    assert!(
        !m.warnings
            .iter()
            .any(|w| w.contains("drain cut") || w.contains("no drain")),
        "{:?}",
        m.warnings
    );
    assert!(
        m.warnings
            .iter()
            .any(|w| w.contains("terminationGracePeriodSeconds 1 <")),
        "{:?}",
        m.warnings
    );
}

#[test]
fn grace_never_decreases() {
    let mut raw = pod_json(APP);
    raw["spec"]["terminationGracePeriodSeconds"] = json!(600);
    let (m, out) = run(&raw, &EffectivePolicy::builtin());
    assert_eq!(out["spec"]["terminationGracePeriodSeconds"], 600);
    assert!(!paths(&m).contains(&"/spec/terminationGracePeriodSeconds".to_owned()));
    assert_eq!(
        out["metadata"]["annotations"]["podgrace.io/grace"],
        "600 ≥ 45: preStop 10s + shutdown 30s + buffer 5s (app)"
    );
}

#[test]
fn grace_mode_keep_never_raises_and_says_so() {
    let (m, out) = run(&pod_json(APP), &policy("gracePeriod: keep"));
    assert!(out["spec"].get("terminationGracePeriodSeconds").is_none());
    assert!(
        m.warnings
            .iter()
            .any(|w| w.contains("30 < 45 needed by app (gracePeriod: keep)"))
    );
}

/// The OpenTelemetry collector's chart: a liveness probe with `terminationGracePeriodSeconds:
/// 10` of its own, which a failed check's restart spends on podgrace's drain first.
#[test]
fn a_probes_own_grace_period_shorter_than_the_stop_is_pointed_out() {
    let warned = |probe_grace: i64| {
        let mut raw = pod_json(APP);
        raw["spec"]["containers"][0]["livenessProbe"] = json!({
            "httpGet": {"path": "/", "port": 8080},
            "terminationGracePeriodSeconds": probe_grace,
        });
        let (m, _) = run(&raw, &EffectivePolicy::builtin());
        m.warnings.iter().any(|w| {
            w.contains(&format!(
                "terminationGracePeriodSeconds {probe_grace} < preStop"
            ))
        })
    };
    assert!(warned(10));
    assert!(!warned(600));
}
