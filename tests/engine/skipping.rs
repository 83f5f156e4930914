//! What podgrace leaves alone: batch pods, opted-out pods and excluded containers, static pods'
//! mirrors, containers that serve nothing, a container its policy cannot complete, bad annotations.

use super::{APP, run};
use crate::common::{mutate_raw, paths, pod_json, policy, review_object};
use podgrace::engine::ClusterInfo;
use podgrace::policy::EffectivePolicy;
use serde_json::json;

#[test]
fn batch_pods_are_left_alone() {
    let raw = review_object("admission/pod-create-kubectl-run.json");
    let m = mutate_raw(&raw, &EffectivePolicy::builtin(), &ClusterInfo::default());
    assert!(m.patch.0.is_empty());
    assert_eq!(
        m.record.skipped.as_deref(),
        Some("restartPolicy Never (batch pod)")
    );
}

#[test]
fn containers_that_serve_nothing_get_no_drain_no_probe_no_grace_and_no_warning() {
    // Istio's curl sample: no ports, `sleep infinity`, grace 0.
    let raw = pod_json(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: curl}\nspec:\n  terminationGracePeriodSeconds: 0\n  containers:\n  - name: curl\n    image: curlimages/curl\n    command: [/bin/sleep, infinity]\n",
    );
    let (m, out) = run(&raw, &EffectivePolicy::builtin());
    let c = &out["spec"]["containers"][0];
    assert!(c.get("lifecycle").is_none() && c.get("readinessProbe").is_none());
    assert_eq!(out["spec"]["terminationGracePeriodSeconds"], 0);
    assert_eq!(
        m.warnings,
        vec![
            "podgrace: container curl: PID 1 `/bin/sleep infinity` ignores SIGTERM: each stop waits out the grace period"
        ]
    );
    // Policy can force the drain.
    let (_, out) = run(&raw, &policy("servingOnly: false\n"));
    assert_eq!(
        out["spec"]["containers"][0]["lifecycle"]["preStop"],
        json!({"sleep": {"seconds": 10}})
    );
    assert_eq!(out["spec"]["terminationGracePeriodSeconds"], 45);
}

#[test]
fn opted_out_pods_and_excluded_containers_are_untouched() {
    let mut raw = pod_json(APP);
    raw["metadata"]["labels"]["podgrace.io/inject"] = json!("disabled");
    assert!(
        mutate_raw(&raw, &EffectivePolicy::builtin(), &ClusterInfo::default())
            .patch
            .0
            .is_empty()
    );

    let mut raw = pod_json(APP);
    raw["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "istio-proxy", "image": "istio/proxyv2:1.23", "ports": [{"containerPort": 15090}]}));
    let (m, out) = run(&raw, &EffectivePolicy::builtin());
    assert_eq!(out["spec"]["containers"][1], raw["spec"]["containers"][1]);
    assert!(
        !paths(&m)
            .iter()
            .any(|p| p.starts_with("/spec/containers/1"))
    );
}

#[test]
fn bad_annotations_are_ignored_with_a_warning_and_the_rest_still_applies() {
    let mut raw = pod_json(APP);
    raw["metadata"]["annotations"] =
        json!({"podgrace.io/sleep-seconds": "ten", "podgrace.io/shutdown-seconds": "20"});
    let (m, out) = run(&raw, &EffectivePolicy::builtin());
    assert!(
        m.warnings
            .iter()
            .any(|w| w.contains("annotation podgrace.io/sleep-seconds") && w.contains("\"ten\""))
    );
    assert_eq!(
        out["spec"]["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"],
        10
    );
    assert_eq!(
        out["spec"]["terminationGracePeriodSeconds"], 35,
        "shutdown-seconds 20 was applied"
    );
}

#[test]
fn an_incomplete_policy_for_one_container_skips_it_with_a_warning() {
    let raw = pod_json(APP);
    let eff = policy("rules:\n- match: {containerName: app}\n  set: {preStop: {action: exec}}\n");
    let m = mutate_raw(&raw, &eff, &ClusterInfo::default());
    assert!(m.patch.0.is_empty());
    assert!(
        m.warnings
            .iter()
            .any(|w| w.contains("policy incomplete at preStop.exec.command")),
        "{:?}",
        m.warnings
    );
}

/// kubeadm's static pods (and any other) reach the API as mirror pods: the kubelet runs the
/// manifest on the node's disk, so a patch would only make the API copy lie, and a Secret
/// reference (Nacos credentials) would make the API server refuse the mirror.
#[test]
fn a_static_pods_mirror_is_left_alone() {
    let mut raw = pod_json(APP);
    raw["metadata"]["annotations"] =
        json!({"kubernetes.io/config.mirror": "3f2a9c", "kubernetes.io/config.source": "file"});
    let (m, out) = run(&raw, &EffectivePolicy::builtin());
    assert!(m.patch.0.is_empty(), "{:?}", m.patch);
    assert_eq!(out, raw);
    assert!(
        m.record
            .skipped
            .as_deref()
            .is_some_and(|s| s.contains("mirror"))
    );
}
