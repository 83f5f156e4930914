//! The engine's behaviour, one test per sentence of the spec (BRIEF.md §2, issue #2), run on raw
//! JSON pods the way the API server sends them.

mod common;

use common::*;
use podgrace::engine::ClusterInfo;
use podgrace::policy::EffectivePolicy;
use podgrace::protocols::kube_version::KubeVersion;
use serde_json::{Value, json};

const APP: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: app, namespace: shop, labels: {app: shop}}
spec:
  containers:
  - name: app
    image: registry.example/shop:1
    ports: [{containerPort: 8080}]
"#;

fn run(raw: &Value, policy: &EffectivePolicy) -> (podgrace::engine::Mutation, Value) {
    let m = mutate_raw(raw, policy, &ClusterInfo::default());
    let out = apply(raw, &m);
    (m, out)
}

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

#[test]
fn the_operators_nacos_setup_gets_seventy_one_seconds() {
    let raw = pod_json(
        read_fixture("manifests/spring-nacos.yaml")
            .split("---")
            .nth(1)
            .unwrap(),
    );
    let template = json!({"apiVersion": "v1", "kind": "Pod", "metadata": raw["spec"]["template"]["metadata"], "spec": raw["spec"]["template"]["spec"]});
    let ns = podgrace::policy::parse::layers_from_file_text(
        "ns",
        &read_fixture("policies/shop-nacos.yaml"),
        "policy.yaml",
    )
    .remove(0)
    .unwrap();
    let cluster = layer(&read_fixture("policies/cluster.yaml"));
    let eff = EffectivePolicy::new(Some(&cluster), Some(&ns));
    let (m, out) = run(&template, &eff);
    // Login 3 s + update 3 s + sleep 30 s + Spring Boot 30 s + buffer 5 s.
    assert_eq!(out["spec"]["terminationGracePeriodSeconds"], 71);
    let c = &out["spec"]["containers"][0];
    let env: Vec<&str> = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        env,
        [
            "POD_IP",
            "PODGRACE_NACOS_USERNAME",
            "PODGRACE_NACOS_PASSWORD",
            "SERVER_SHUTDOWN",
            "SPRING_LIFECYCLE_TIMEOUT_PER_SHUTDOWN_PHASE",
            // The injected readiness probe asks the actuator's readiness group.
            "MANAGEMENT_ENDPOINT_HEALTH_PROBES_ENABLED"
        ]
    );
    assert_eq!(
        c["env"][1]["valueFrom"]["secretKeyRef"],
        json!({"name": "nacos-credentials", "key": "username", "optional": true})
    );
    assert_eq!(c["env"][4]["value"], "30s");
    assert_eq!(
        c["readinessProbe"]["httpGet"]["path"],
        "/actuator/health/readiness"
    );
    assert!(
        m.record
            .policy
            .ends_with("configmap kevin/podgrace-policy@4711"),
        "{}",
        m.record.policy
    );
}

#[test]
fn credentials_never_appear_in_the_patch() {
    let eff = policy(
        "preStop:\n  action: nacos\n  nacos:\n    server: http://nacos:8848\n    auth: {secretName: nacos-auth}\n",
    );
    let m = mutate_raw(&pod_json(APP), &eff, &ClusterInfo::default());
    let text = serde_json::to_string(&m.patch).unwrap();
    assert!(text.contains("secretKeyRef"));
    assert!(
        !text.contains("\"value\":\"nacos\""),
        "no literal credentials"
    );
}

#[test]
fn existing_env_vars_are_never_duplicated() {
    let mut raw = pod_json(APP);
    raw["spec"]["containers"][0]["env"] = json!([{"name": "POD_IP", "value": "mine"}]);
    let (m, out) = run(
        &raw,
        &policy("env: {extra: [{name: POD_NAME, fieldPath: metadata.name}]}"),
    );
    let env = out["spec"]["containers"][0]["env"].as_array().unwrap();
    assert_eq!(env.len(), 2);
    assert_eq!(env[0], json!({"name": "POD_IP", "value": "mine"}));
    assert_eq!(env[1]["name"], "POD_NAME");
    assert!(paths(&m).contains(&"/spec/containers/0/env/-".to_owned()));
}

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

#[test]
fn a_namespace_nacos_action_beats_the_builtin_nginx_rule() {
    let mut raw = pod_json(APP);
    raw["spec"]["containers"][0]["image"] = json!("nginx:1.27");
    let (_, out) = run(
        &raw,
        &policy("preStop: {action: nacos, nacos: {server: 'http://nacos:8848'}}\n"),
    );
    let command = &out["spec"]["containers"][0]["lifecycle"]["preStop"]["exec"]["command"];
    assert!(command[2].as_str().unwrap().contains("nacos"), "{command}");
}

/// Nacos deregistration sends the pod's IP from the variable the policy names: a container that
/// defines it as something else (here the node's address) would deregister the wrong instance.
#[test]
fn nacos_warns_when_the_containers_own_ip_variable_is_not_the_pod_ip() {
    let nacos = policy("preStop: {action: nacos, nacos: {server: 'http://nacos:8848'}}\n");
    let with_ip = |field_path: &str| {
        let mut raw = pod_json(APP);
        raw["spec"]["containers"][0]["env"] =
            json!([{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": field_path}}}]);
        mutate_raw(&raw, &nacos, &ClusterInfo::default()).warnings
    };
    let warned = |w: &Vec<String>| w.iter().any(|w| w.contains("POD_IP is not status.podIP"));
    assert!(
        warned(&with_ip("status.hostIP")),
        "{:?}",
        with_ip("status.hostIP")
    );
    assert!(
        !warned(&with_ip("status.podIP")),
        "{:?}",
        with_ip("status.podIP")
    );
    // Absent, podgrace adds it from status.podIP.
    let (_, out) = run(&pod_json(APP), &nacos);
    assert_eq!(
        out["spec"]["containers"][0]["env"][0]["valueFrom"]["fieldRef"]["fieldPath"],
        "status.podIP"
    );
}

/// An app that pins its Nacos registration IP (iBizEHR's manifests write the node's address)
/// is not deregistered by the pod IP: podgrace says so.
#[test]
fn nacos_warns_when_the_app_registers_under_another_ip() {
    let nacos = policy("preStop: {action: nacos, nacos: {server: 'http://nacos:8848'}}\n");
    let warned = |container: Value| {
        let mut raw = pod_json(APP);
        let c = raw["spec"]["containers"][0].as_object_mut().unwrap();
        c.extend(container.as_object().unwrap().clone());
        let w = mutate_raw(&raw, &nacos, &ClusterInfo::default()).warnings;
        w.iter()
            .any(|w| w.contains("registers under an IP of its own,"))
    };
    let env = |name: &str, value: &str| json!({"env": [{"name": name, "value": value}]});
    assert!(warned(env(
        "SPRING_CLOUD_NACOS_DISCOVERY_IP",
        "172.16.180.232"
    )));
    assert!(warned(env(
        "JAVA_OPTS",
        "-Xmx1g -Dspring.cloud.nacos.discovery.ip=10.0.0.8"
    )));
    assert!(warned(
        json!({"args": ["--spring.cloud.nacos.discovery.ip=10.0.0.8"]})
    ));
    // The pod's own IP, by reference or from the downward API: nothing to say.
    assert!(!warned(env("SPRING_CLOUD_NACOS_DISCOVERY_IP", "$(POD_IP)")));
    assert!(!warned(env(
        "JAVA_OPTS",
        "-Dspring.cloud.nacos.discovery.ip=${POD_IP} -Xmx1g"
    )));
    assert!(!warned(
        json!({"env": [{"name": "SPRING_CLOUD_NACOS_DISCOVERY_IP",
        "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]})
    ));
    assert!(!warned(json!({})));
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
