//! The helper (`preStop.helper: inject`): its init container, volume and mount, a shell-free
//! hook, its resources and security context, and where it cannot be injected.

use super::{APP, run};
use crate::common::{apply, foreign_operations, mutate_raw, paths, pod_json, policy};
use podgrace::engine::ClusterInfo;
use podgrace::protocols::kube_version::KubeVersion;
use serde_json::json;

const HELPER: &str = "preStop:\n  action: nacos\n  helper: inject\n  nacos: {server: 'http://nacos:8848', auth: {secretName: nacos-auth}}\nhelperImage: {image: 'registry.example/podgrace:1.2.3', pullPolicy: Always}\n";

#[test]
fn helper_injection_adds_the_init_container_volume_mount_and_a_shell_free_hook() {
    let (m, out) = run(&pod_json(APP), &policy(HELPER));
    assert!(foreign_operations(&pod_json(APP), &m).is_empty());
    let init = &out["spec"]["initContainers"][0];
    assert_eq!(init["name"], "podgrace-helper");
    assert_eq!(init["image"], "registry.example/podgrace:1.2.3");
    assert_eq!(init["imagePullPolicy"], "Always");
    assert_eq!(
        init["command"],
        json!(["/podgrace", "install-helper", "/podgrace-helper"])
    );
    assert_eq!(
        out["spec"]["volumes"][0],
        json!({"name": "podgrace-helper", "emptyDir": {"sizeLimit": "64Mi"}})
    );
    let c = &out["spec"]["containers"][0];
    assert_eq!(
        c["volumeMounts"][0],
        json!({"name": "podgrace-helper", "mountPath": "/podgrace-helper", "readOnly": true})
    );
    let argv: Vec<String> =
        serde_json::from_value(c["lifecycle"]["preStop"]["exec"]["command"].clone()).unwrap();
    assert_eq!(
        argv[..4],
        [
            "/podgrace-helper/podgrace",
            "prestop",
            "--deregister",
            "nacos"
        ]
    );
    assert!(argv.windows(2).any(|w| w == ["--budget", "6"]), "{argv:?}");
    assert!(!argv.iter().any(|a| a.contains("/bin/sh")));
    // The grace period counts the helper's deregistration budget: 2 × 3 s + 10 s + 30 s + 5 s.
    assert_eq!(out["spec"]["terminationGracePeriodSeconds"], 51);
    assert!(
        mutate_raw(&out, &policy(HELPER), &ClusterInfo::default())
            .patch
            .0
            .is_empty(),
        "idempotent"
    );
}

#[test]
fn helper_injection_appends_to_existing_init_containers_and_volumes() {
    let mut raw = pod_json(APP);
    raw["spec"]["initContainers"] = json!([{"name": "migrate", "image": "migrate:1"}]);
    raw["spec"]["volumes"] = json!([{"name": "data", "emptyDir": {}}]);
    raw["spec"]["containers"][0]["volumeMounts"] = json!([{"name": "data", "mountPath": "/data"}]);
    let (m, out) = run(&raw, &policy(HELPER));
    assert!(paths(&m).contains(&"/spec/initContainers/-".to_owned()));
    assert_eq!(out["spec"]["initContainers"][0]["name"], "migrate");
    assert_eq!(out["spec"]["initContainers"][1]["name"], "podgrace-helper");
    assert_eq!(out["spec"]["volumes"][1]["name"], "podgrace-helper");
    assert_eq!(
        out["spec"]["containers"][0]["volumeMounts"][1]["mountPath"],
        "/podgrace-helper"
    );
}

/// Pod-level resources (beta, on by default since 1.34): the API server requires the pod's
/// requests to cover every container's, the helper's init container included; inside a pod-level
/// budget the helper requests nothing of its own and runs within it.
#[test]
fn inside_a_pod_level_budget_the_helper_requests_nothing_of_its_own() {
    let mut raw = pod_json(APP);
    let (_, out) = run(&raw, &policy(HELPER));
    assert_eq!(
        out["spec"]["initContainers"][0]["resources"]["requests"]["cpu"],
        "100m"
    );
    raw["spec"]["resources"] = json!({"requests": {"cpu": "50m", "memory": "48Mi"},
        "limits": {"cpu": "100m", "memory": "96Mi"}});
    let (_, out) = run(&raw, &policy(HELPER));
    let helper = &out["spec"]["initContainers"][0];
    assert_eq!(helper["name"], "podgrace-helper");
    assert!(helper.get("resources").is_none(), "{helper}");
}

#[test]
fn a_volume_named_like_the_helpers_falls_back_to_the_shell_hook_with_a_warning() {
    let mut raw = pod_json(APP);
    raw["spec"]["volumes"] = json!([{"name": "podgrace-helper", "configMap": {"name": "x"}}]);
    let (m, out) = run(&raw, &policy(HELPER));
    assert!(out["spec"].get("initContainers").is_none());
    assert_eq!(out["spec"]["volumes"].as_array().unwrap().len(), 1);
    assert_eq!(
        out["spec"]["containers"][0]["lifecycle"]["preStop"]["exec"]["command"][0],
        "/bin/sh"
    );
    assert!(
        m.warnings
            .iter()
            .any(|w| w.contains("helper not injected (volume name taken)")),
        "{:?}",
        m.warnings
    );
}

#[test]
fn the_native_sleep_needs_no_helper() {
    let (m, out) = run(&pod_json(APP), &policy("preStop: {helper: inject}"));
    assert_eq!(
        out["spec"]["containers"][0]["lifecycle"]["preStop"],
        json!({"sleep": {"seconds": 10}})
    );
    assert!(out["spec"].get("initContainers").is_none());
    assert!(!paths(&m).iter().any(|p| p.contains("volume")));
    // On a cluster without the native handler the helper sleeps instead of /bin/sh.
    let old = ClusterInfo {
        kube_version: Some(KubeVersion::new(1, 29)),
    };
    let m = mutate_raw(&pod_json(APP), &policy("preStop: {helper: inject}"), &old);
    let out = apply(&pod_json(APP), &m);
    assert_eq!(
        out["spec"]["containers"][0]["lifecycle"]["preStop"]["exec"]["command"],
        json!(["/podgrace-helper/podgrace", "prestop", "--sleep", "10"])
    );
}

#[test]
fn the_helper_meets_the_restricted_pod_security_profile() {
    let raw = pod_json(APP);
    let (_, out) = run(&raw, &policy(HELPER));
    let helper = &out["spec"]["initContainers"][0];
    assert_eq!(
        helper["securityContext"],
        json!({
            "allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": true,
            "runAsNonRoot": true,
            "runAsUser": 65532,
            "seccompProfile": {"type": "RuntimeDefault"}
        })
    );
    assert_eq!(
        helper["resources"]["requests"],
        helper["resources"]["limits"]
    );
}
