//! The preStop hook: the user's kept or replaced, the sleep's handler, nginx's quit, and what
//! SIGTERM does to the container's PID 1.

use super::{APP, run};
use crate::common::{apply, mutate_raw, paths, pod_json, policy};
use podgrace::engine::ClusterInfo;
use podgrace::policy::EffectivePolicy;
use podgrace::protocols::kube_version::KubeVersion;
use serde_json::{Value, json};

#[test]
fn kept_user_prestop_is_never_merged() {
    let mut raw = pod_json(APP);
    let hook = json!({"exec": {"command": ["/bin/sh", "-c", "/opt/offline.sh; sleep 20"]}});
    raw["spec"]["containers"][0]["lifecycle"] = json!({"preStop": hook});
    let (m, out) = run(&raw, &EffectivePolicy::builtin());
    assert_eq!(out["spec"]["containers"][0]["lifecycle"]["preStop"], hook);
    assert!(!paths(&m).iter().any(|p| p.contains("lifecycle")));
    assert!(
        m.warnings
            .iter()
            .any(|w| w.contains("kept its own preStop hook"))
    );
    // Env and readiness are still added.
    assert!(out["spec"]["containers"][0]["readinessProbe"].is_object());
}

#[test]
fn replace_policy_replaces_the_user_hook_in_place() {
    let mut raw = pod_json(APP);
    raw["spec"]["containers"][0]["lifecycle"] = json!({
        "preStop": {"exec": {"command": ["sleep", "3"]}},
        "postStart": {"exec": {"command": ["touch", "/tmp/x"]}}
    });
    let (m, out) = run(
        &raw,
        &policy("preStop: {existing: replace, sleepSeconds: 7}"),
    );
    let lc = &out["spec"]["containers"][0]["lifecycle"];
    assert_eq!(
        lc["preStop"],
        json!({"sleep": {"seconds": 7}}),
        "one handler only"
    );
    assert_eq!(lc["postStart"]["exec"]["command"][0], "touch");
    assert!(paths(&m).contains(&"/spec/containers/0/lifecycle/preStop".to_owned()));
}

#[test]
fn sleep_handler_follows_the_cluster_version() {
    let raw = pod_json(APP);
    let old = ClusterInfo {
        kube_version: Some(KubeVersion::new(1, 29)),
    };
    let new = ClusterInfo {
        kube_version: Some(KubeVersion::new(1, 36)),
    };
    let auto = policy("preStop: {sleepHandler: auto}");
    let hook = |ctx: &ClusterInfo, p: &EffectivePolicy| {
        let m = mutate_raw(&raw, p, ctx);
        apply(&raw, &m)["spec"]["containers"][0]["lifecycle"]["preStop"].clone()
    };
    assert_eq!(hook(&new, &auto), json!({"sleep": {"seconds": 10}}));
    assert_eq!(
        hook(&old, &auto),
        json!({"exec": {"command": ["/bin/sh", "-c", "sleep 10"]}})
    );
    assert_eq!(
        hook(&ClusterInfo::default(), &auto),
        json!({"sleep": {"seconds": 10}}),
        "unknown version: native"
    );
    // An explicit native choice on a cluster that cannot run it falls back, with a warning.
    let m = mutate_raw(&raw, &EffectivePolicy::builtin(), &old);
    assert!(apply(&raw, &m)["spec"]["containers"][0]["lifecycle"]["preStop"]["exec"].is_object());
    assert!(
        m.warnings
            .iter()
            .any(|w| w.contains("native sleep needs Kubernetes 1.30+"))
    );
}

#[test]
fn a_zero_sleep_adds_no_hook_at_all() {
    let (m, out) = run(&pod_json(APP), &policy("preStop: {sleepSeconds: 0}"));
    assert!(out["spec"]["containers"][0].get("lifecycle").is_none());
    assert!(!paths(&m).iter().any(|p| p.contains("lifecycle")));
}

#[test]
fn exec_sleep_on_a_shell_less_image_is_warned_about() {
    let mut raw = pod_json(APP);
    raw["spec"]["containers"][0]["image"] = json!("gcr.io/distroless/java21-debian12");
    let m = mutate_raw(
        &raw,
        &policy("preStop: {sleepHandler: exec}"),
        &ClusterInfo::default(),
    );
    assert!(
        m.warnings.iter().any(|w| w.contains("needs /bin/sh")),
        "{:?}",
        m.warnings
    );
}

#[test]
fn nginx_with_a_hook_that_does_not_quit_is_warned_about() {
    let mut raw = pod_json(APP);
    raw["spec"]["containers"][0]["image"] = json!("registry.example/team/nginx:1.27");
    raw["spec"]["containers"][0]["lifecycle"] =
        json!({"preStop": {"exec": {"command": ["sleep", "5"]}}});
    let m = mutate_raw(&raw, &EffectivePolicy::builtin(), &ClusterInfo::default());
    assert!(
        m.warnings
            .iter()
            .any(|w| w.contains("nginx without `nginx -s quit`"))
    );
    // podgrace's own nginx hook quits, so no warning then.
    raw["spec"]["containers"][0]["lifecycle"] = Value::Null;
    let m = mutate_raw(&raw, &EffectivePolicy::builtin(), &ClusterInfo::default());
    assert!(
        !m.warnings.iter().any(|w| w.contains("nginx without")),
        "{:?}",
        m.warnings
    );
}

#[test]
fn official_nginx_images_get_a_drain_only_hook_and_custom_builds_the_quit_hook() {
    let mut raw = pod_json(APP);
    raw["spec"]["containers"][0]["image"] = json!("nginx:1.27");
    let (m, out) = run(&raw, &EffectivePolicy::builtin());
    assert_eq!(
        out["spec"]["containers"][0]["lifecycle"]["preStop"],
        json!({"sleep": {"seconds": 10}})
    );
    assert!(
        !m.warnings.iter().any(|w| w.contains("nginx")),
        "{:?}",
        m.warnings
    );
    raw["spec"]["containers"][0]["image"] = json!("registry.example/team/nginx:1.27");
    let (_, out) = run(&raw, &EffectivePolicy::builtin());
    let command = &out["spec"]["containers"][0]["lifecycle"]["preStop"]["exec"]["command"];
    assert!(
        command[2].as_str().unwrap().contains("nginx -s quit"),
        "{command}"
    );
    let (_, out) = run(&raw, &policy("preStop: {nginxStop: signal}\n"));
    assert_eq!(
        out["spec"]["containers"][0]["lifecycle"]["preStop"],
        json!({"sleep": {"seconds": 10}})
    );
}

/// The Kubernetes docs' process-namespace example: a debugging container idling on `sleep
/// infinity` next to the app. With `shareProcessNamespace` the pause container is PID 1, so the
/// sleep dies on SIGTERM; without it, it ignores SIGTERM and each stop waits out the grace.
#[test]
fn a_shared_process_namespace_has_no_container_as_pid_1() {
    let mut raw = pod_json(APP);
    raw["spec"]["containers"][0]["command"] = json!(["sleep", "infinity"]);
    let warned = |raw: &Value| {
        let (m, _) = run(raw, &EffectivePolicy::builtin());
        m.warnings.iter().any(|w| w.contains("ignores SIGTERM"))
    };
    assert!(warned(&raw));
    raw["spec"]["shareProcessNamespace"] = json!(true);
    assert!(!warned(&raw));
    // In the node's process namespace (`hostPID`, a node agent), the node's init is PID 1.
    raw["spec"]["shareProcessNamespace"] = json!(false);
    assert!(warned(&raw));
    raw["spec"]["hostPID"] = json!(true);
    assert!(!warned(&raw));
}
