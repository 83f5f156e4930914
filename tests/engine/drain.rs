//! The engine's adaptive drain (`preStop.drain.mode: adaptive`): where it runs, what it watches,
//! what the grace period counts, and where it cannot run.

use super::run;
use crate::common::{self, foreign_operations, mutate_raw, paths, pod_json, policy};
use clap::Parser as _;
use podgrace::engine::ClusterInfo;
use podgrace::policy::EffectivePolicy;
use serde_json::{Value, json};

const APP: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: app, namespace: shop, labels: {app: shop}}
spec:
  containers:
  - name: app
    image: registry.example/shop:1
    ports:
    - {name: http, containerPort: 8080}
    - {name: metrics, containerPort: 9090}
    livenessProbe: {httpGet: {path: /live, port: http}, periodSeconds: 20}
"#;

const ADAPTIVE: &str = "preStop: {drain: {mode: adaptive}}";

fn hook_argv(out: &Value, container: usize) -> Vec<String> {
    serde_json::from_value(
        out["spec"]["containers"][container]["lifecycle"]["preStop"]["exec"]["command"].clone(),
    )
    .unwrap_or_default()
}

/// The values of `flag` in `argv`.
fn values<'a>(argv: &'a [String], flag: &str) -> Vec<&'a str> {
    argv.windows(2)
        .filter(|w| w[0] == flag)
        .map(|w| w[1].as_str())
        .collect()
}

#[test]
fn an_adaptive_drain_runs_in_the_helper_and_watches_the_serving_port_and_its_probes() {
    let (m, out) = run(&pod_json(APP), &policy(ADAPTIVE));
    let argv = hook_argv(&out, 0);
    assert_eq!(
        &argv[..4],
        [
            "/podgrace-helper/podgrace",
            "prestop",
            "--drain",
            "adaptive"
        ]
    );
    assert_eq!(values(&argv, "--drain-min"), ["2"]);
    assert_eq!(values(&argv, "--drain-quiet"), ["3"]);
    assert_eq!(values(&argv, "--drain-max"), ["30"]);
    assert_eq!(values(&argv, "--drain-traffic"), ["all"]);
    // Every port the pod listens on but the metrics port counts; the liveness probe and the
    // readiness probe podgrace adds are the kubelet's, not requests.
    assert!(values(&argv, "--port").is_empty());
    assert_eq!(values(&argv, "--ignore-port"), ["9090"]);
    assert_eq!(values(&argv, "--probe"), ["8080:5", "8080:20"]);
    assert!(values(&argv, "--sleep").is_empty());
    // The helper's init container and volume come with it, with helper: none in the policy.
    assert_eq!(out["spec"]["initContainers"][0]["name"], "podgrace-helper");
    assert!(
        m.warnings.iter().all(|w| !w.contains("fixed")),
        "{:?}",
        m.warnings
    );
    // What the engine writes, the helper's command line reads.
    podgrace::cli::Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn the_grace_period_counts_the_ceiling_and_says_it_is_one() {
    let (m, out) = run(&pod_json(APP), &policy(ADAPTIVE));
    // 30 s ceiling + 30 s shutdown + 5 s buffer.
    assert_eq!(out["spec"]["terminationGracePeriodSeconds"], 65);
    let grace = out["metadata"]["annotations"]["podgrace.io/grace"]
        .as_str()
        .unwrap();
    assert!(grace.contains("preStop ≤30s (adaptive drain)"), "{grace}");
    let injected = out["metadata"]["annotations"]["podgrace.io/injected"]
        .as_str()
        .unwrap();
    assert!(injected.contains("adaptive drain ≤30s"), "{injected}");
    assert!(
        m.warnings
            .iter()
            .any(|w| w.contains("≤30s (adaptive drain)")),
        "{:?}",
        m.warnings
    );
}

#[test]
fn an_adaptive_drain_is_idempotent() {
    for policy_text in [
        ADAPTIVE,
        "preStop: {action: nginx, drain: {mode: adaptive, maxSeconds: 20}}",
        "preStop: {action: nacos, nacos: {server: 'http://nacos:8848'}, drain: {mode: adaptive}}",
    ] {
        let p = policy(policy_text);
        let raw = pod_json(APP);
        let (_, out) = run(&raw, &p);
        let again = mutate_raw(&out, &p, &ClusterInfo::default());
        assert!(
            again.patch.0.is_empty(),
            "{policy_text}: {:?}",
            paths(&again)
        );
        assert!(
            foreign_operations(&raw, &mutate_raw(&raw, &p, &ClusterInfo::default())).is_empty()
        );
    }
}

#[test]
fn nacos_deregisters_before_the_adaptive_drain_and_nginx_quits_after_it() {
    let p = policy(
        "preStop: {action: nacos, nacos: {server: 'http://nacos:8848'}, drain: {mode: adaptive}}",
    );
    let (_, out) = run(&pod_json(APP), &p);
    let argv = hook_argv(&out, 0);
    assert_eq!(values(&argv, "--deregister"), ["nacos"]);
    assert_eq!(values(&argv, "--drain"), ["adaptive"]);
    // Login-less deregistration (3 s) + the ceiling + shutdown + buffer.
    assert_eq!(out["spec"]["terminationGracePeriodSeconds"], 68);

    let nginx = pod_json(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers:\n  - {name: web, image: registry.example/team/nginx:1.27, ports: [{containerPort: 80}]}\n",
    );
    let (_, out) = run(&nginx, &policy(ADAPTIVE));
    let nginx_argv = hook_argv(&out, 0);
    assert_eq!(values(&nginx_argv, "--drain"), ["adaptive"]);
    assert!(
        nginx_argv.contains(&"--signal-nginx".to_owned()),
        "{nginx_argv:?}"
    );
}

#[test]
fn a_host_network_pod_gets_the_ceiling_as_a_fixed_drain_and_a_warning() {
    let mut raw = pod_json(APP);
    raw["spec"]["hostNetwork"] = json!(true);
    let (m, out) = run(&raw, &policy(ADAPTIVE));
    assert_eq!(
        out["spec"]["containers"][0]["lifecycle"]["preStop"],
        json!({"sleep": {"seconds": 30}})
    );
    assert!(
        m.warnings
            .iter()
            .any(|w| w.contains("hostNetwork") && w.contains("fixed 30s drain")),
        "{:?}",
        m.warnings
    );
    assert_eq!(out["spec"]["terminationGracePeriodSeconds"], 65);
}

#[test]
fn a_pod_that_cannot_take_the_helper_gets_the_ceiling_as_a_fixed_drain() {
    let mut raw = pod_json(APP);
    raw["spec"]["volumes"] = json!([{"name": "podgrace-helper", "configMap": {"name": "x"}}]);
    let (m, out) = run(&raw, &policy(ADAPTIVE));
    assert_eq!(
        out["spec"]["containers"][0]["lifecycle"]["preStop"],
        json!({"sleep": {"seconds": 30}})
    );
    assert!(
        m.warnings.iter().any(|w| w.contains("needs the helper")),
        "{:?}",
        m.warnings
    );
}

#[test]
fn under_grace_period_keep_the_ceiling_fits_the_pod() {
    let mut raw = pod_json(APP);
    raw["spec"]["terminationGracePeriodSeconds"] = json!(12);
    let p = policy("gracePeriod: keep\npreStop: {drain: {mode: adaptive, minSeconds: 15}}");
    let (_, out) = run(&raw, &p);
    let argv = hook_argv(&out, 0);
    assert_eq!(values(&argv, "--drain-max"), ["12"]);
    assert_eq!(values(&argv, "--drain-min"), ["12"]);
    assert_eq!(out["spec"]["terminationGracePeriodSeconds"], 12);
}

#[test]
fn the_drain_is_set_by_annotation_too() {
    let mut raw = pod_json(APP);
    raw["metadata"]["annotations"] = json!({
        "podgrace.io/drain": "adaptive",
        "podgrace.io/drain-max-seconds": "45"
    });
    let (_, out) = run(&raw, &EffectivePolicy::builtin());
    assert_eq!(values(&hook_argv(&out, 0), "--drain-max"), ["45"]);
    assert_eq!(out["spec"]["terminationGracePeriodSeconds"], 80);
}

#[test]
fn a_container_that_serves_nothing_gets_no_drain_of_either_kind() {
    let raw = pod_json(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: w}\nspec:\n  containers:\n  - {name: worker, image: registry.example/worker:1}\n",
    );
    let (m, out) = run(&raw, &policy(ADAPTIVE));
    assert!(out["spec"]["containers"][0].get("lifecycle").is_none());
    assert!(out["spec"].get("initContainers").is_none());
    assert!(!paths(&m).iter().any(|p| p.contains("terminationGrace")));
}

#[test]
fn an_inconsistent_drain_is_refused_with_its_field() {
    for (text, field) in [
        (
            "preStop: {drain: {mode: adaptive, minSeconds: 40, maxSeconds: 30}}",
            "minSeconds",
        ),
        (
            "preStop: {drain: {mode: adaptive, maxSeconds: 0}}",
            "maxSeconds",
        ),
        (
            "preStop: {drain: {mode: adaptive, quietSeconds: 0}}",
            "quietSeconds",
        ),
    ] {
        let errors = policy(text).check();
        assert!(
            errors
                .iter()
                .any(|e| e.path == format!("preStop.drain.{field}")),
            "{text}: {errors:?}"
        );
    }
    let bad = podgrace::policy::load_layer(
        "preStop: {drain: {ignorePorts: [0]}}",
        podgrace::policy::Origin::hashed("t", "x"),
    );
    assert!(bad.is_err());
}

#[test]
fn explain_audit_and_the_record_show_the_adaptive_drain_and_its_ceiling() {
    let dir = tempfile::tempdir().unwrap();
    let pod = dir.path().join("pod.yaml");
    std::fs::write(&pod, APP).unwrap();
    let ns = dir.path().join("policy.yaml");
    std::fs::write(&ns, ADAPTIVE).unwrap();
    let podgrace = env!("CARGO_BIN_EXE_podgrace");
    let run = |args: &[&str]| {
        let out = common::child::output_within(
            std::process::Command::new(podgrace).args(args),
            None,
            common::child::SHORT,
        );
        // The explanation goes to stderr, the output to stdout.
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let (pod, ns) = (pod.to_str().unwrap(), ns.to_str().unwrap());
    let explain = run(&["mutate", "-f", pod, "--namespace-policy", ns, "--explain"]);
    assert!(
        explain.contains(
            "drain: adaptive: ends 3s after the last request to the pod (ports but 9090; 2 probes"
        ) && explain.contains("between 2s and 30s; the grace period counts 30s"),
        "{explain}"
    );
    let audit = run(&["audit", "-f", pod, "--namespace-policy", ns, "-o", "json"]);
    assert!(
        audit.contains("preStop=adaptive drain ≤30s (helper)"),
        "{audit}"
    );
    assert!(audit.contains("preStop ≤30s (adaptive drain)"), "{audit}");
}

#[test]
fn a_kept_hook_of_the_containers_own_gets_no_fallback_warning() {
    let mut raw = pod_json(APP);
    raw["spec"]["hostNetwork"] = json!(true);
    raw["spec"]["containers"][0]["lifecycle"] =
        json!({"preStop": {"exec": {"command": ["/bin/agent", "shutdown"]}}});
    let (m, out) = run(&raw, &policy(ADAPTIVE));
    assert_eq!(
        out["spec"]["containers"][0]["lifecycle"]["preStop"]["exec"]["command"][0],
        "/bin/agent"
    );
    assert!(
        m.warnings.iter().all(|w| !w.contains("fixed 30s drain")),
        "{:?}",
        m.warnings
    );
}
