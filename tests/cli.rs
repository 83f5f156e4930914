//! The command line as users run it: the real binary, real files, exit codes and messages.

mod common;

use std::io::Write;
use std::process::Output;

use common::child::{self, SHORT};
use common::*;

fn podgrace(args: &[&str]) -> Output {
    podgrace_with_input(args, None)
}

fn podgrace_with_input(args: &[&str], input: Option<&[u8]>) -> Output {
    child::output_within(
        child::command(env!("CARGO_BIN_EXE_podgrace")).args(args),
        input,
        SHORT,
    )
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn tmp(content: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
    f.write_all(content.as_bytes()).unwrap();
    f
}

fn path(f: &tempfile::NamedTempFile) -> &str {
    f.path().to_str().unwrap()
}

#[test]
fn mutate_prints_the_patch_and_warnings_for_a_workload() {
    let f = fixture("manifests/nginx-front.yaml");
    let out = podgrace(&["mutate", "-f", f.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let patch: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let first = &patch[0];
    assert_eq!(first["path"], "/spec/template/spec/containers/0/lifecycle");
    assert!(
        text(&out.stderr).contains("nginx: preStop=sleep 10s (nginx stops on SIGQUIT)"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn mutate_shows_the_mutated_manifest_and_a_diff() {
    let f = fixture("manifests/spring-nacos.yaml");
    let ns = fixture("policies/shop-nacos.yaml");
    let out = podgrace(&[
        "mutate",
        "-f",
        f.to_str().unwrap(),
        "--namespace-policy",
        ns.to_str().unwrap(),
        "-o",
        "pod",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let docs: Vec<serde_json::Value> = podgrace::yaml::documents(&text(&out.stdout)).unwrap();
    assert_eq!(docs[0]["kind"], "Service", "other documents pass through");
    assert_eq!(
        docs[1]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"],
        71
    );

    let out = podgrace(&["mutate", "-f", f.to_str().unwrap(), "-o", "diff"]);
    let diff = text(&out.stdout);
    assert!(
        diff.contains("+      terminationGracePeriodSeconds: 45"),
        "{diff}"
    );
    assert!(diff.starts_with("--- "), "{diff}");
}

#[test]
fn mutate_reads_standard_input_and_admission_reviews() {
    let review = read_fixture("admission/pod-create-kubectl-apply.json");
    let out = podgrace_with_input(&["mutate", "-f", "-"], Some(review.as_bytes()));
    assert!(out.status.success());
    let patch: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        patch[0]["path"], "/spec/containers/0/lifecycle",
        "pod-relative, as the webhook answers"
    );
}

#[test]
fn bad_inputs_fail_with_one_line_naming_the_problem() {
    let garbage = tmp("kind: [unclosed\n");
    let service = tmp("apiVersion: v1\nkind: Service\nmetadata: {name: s}\n");
    let bad_annotation = tmp(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p, annotations: {podgrace.io/sleep-seconds: soon}}\nspec: {containers: [{name: c, image: x}]}\n",
    );
    let pod = tmp(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: x}]}\n",
    );
    let unknown_field = tmp("preStop:\n  sleepSecs: 10\n");
    let absurd = tmp("shutdownSeconds: 86400\n");
    let negative = tmp("preStop: {sleepSeconds: -5}\n");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["mutate", "-f", path(&garbage)], "invalid YAML/JSON"),
        (vec!["mutate", "-f", path(&service)], "documents: Service"),
        (
            vec!["mutate", "-f", path(&bad_annotation)],
            "annotation podgrace.io/sleep-seconds: \"soon\" is not a number of seconds (0-3600)",
        ),
        (
            vec!["mutate", "-f", "/nonexistent.yaml"],
            "reading /nonexistent.yaml",
        ),
        (
            vec![
                "mutate",
                "-f",
                path(&pod),
                "--namespace-policy",
                path(&unknown_field),
            ],
            "preStop.sleepSecs: unknown field `sleepSecs`, expected one of",
        ),
        (
            vec![
                "mutate",
                "-f",
                path(&pod),
                "--cluster-policy",
                path(&absurd),
            ],
            "shutdownSeconds: expected whole seconds between 0 and 3600, got 86400",
        ),
        (
            vec![
                "mutate",
                "-f",
                path(&pod),
                "--cluster-policy",
                path(&negative),
            ],
            "preStop.sleepSeconds: expected whole seconds between 0 and 3600, got -5",
        ),
        (
            vec!["mutate", "-f", path(&pod), "--kube-version", "latest"],
            "expected a Kubernetes version",
        ),
    ];
    for (args, expected) in cases {
        let out = podgrace(&args);
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout");
    }
}

#[test]
fn policy_check_accepts_good_files_and_names_the_field_of_bad_ones() {
    let good = fixture("policies/shop-nacos.yaml");
    let out = podgrace(&[
        "policy",
        "check",
        good.to_str().unwrap(),
        fixture("policies/cluster.yaml").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("ok: configmap kevin/podgrace-policy@4711"));

    let bad = tmp("preStop:\n  action: nacos\nreadiness: {handler: http}\n");
    let out = podgrace(&["policy", "check", path(&bad)]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("preStop.nacos.server: required when preStop.action is nacos"),
        "{err}"
    );

    let wrong_enum = tmp("preStop: {existing: merge}\n");
    let err = text(&podgrace(&["policy", "check", path(&wrong_enum)]).stderr);
    assert!(
        err.contains("preStop.existing: unknown variant `merge`, expected one of keep, replace"),
        "{err}"
    );
}

#[test]
fn policy_defaults_are_a_valid_policy() {
    let out = podgrace(&["policy", "defaults"]);
    assert!(out.status.success());
    let f = tmp(&text(&out.stdout));
    assert!(podgrace(&["policy", "check", path(&f)]).status.success());
}

#[test]
fn mutate_explain_names_the_layer_or_rule_behind_each_value() {
    let f = fixture("manifests/nginx-front.yaml");
    let ns = tmp("preStop: {sleepSeconds: 20}\n");
    let out = podgrace(&[
        "mutate",
        "-f",
        f.to_str().unwrap(),
        "--namespace-policy",
        path(&ns),
        "--explain",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    let line = |needle: &str| {
        err.lines()
            .find(|l| l.trim_start().starts_with(needle))
            .unwrap_or_else(|| panic!("{needle} missing in\n{err}"))
            .to_owned()
    };
    assert!(
        err.contains("Deployment web/front: container nginx:"),
        "{err}"
    );
    assert!(line("preStop.action = \"nginx\"").ends_with("builtin rules[0] (nginx)"));
    assert!(line("preStop.sleepSeconds = 20").contains(path(&ns)));
    assert!(line("shutdownSeconds = 30").ends_with("builtin"));
}

#[test]
fn mutate_explain_shows_the_start_side_findings() {
    let f = fixture("manifests/spring-liveness-only.yaml");
    let cluster = fixture("policies/cluster.yaml");
    let out = podgrace(&[
        "mutate",
        "-f",
        f.to_str().unwrap(),
        "--cluster-policy",
        cluster.to_str().unwrap(),
        "--explain",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    for expected in [
        "  startup.maxSeconds = 120",
        "  start: startupProbe added: http:http/actuator/health/liveness,12x10s ≥ startup.maxSeconds 120 (liveness alone allows 60s)",
        "  start: its own startupProbe is kept",
    ] {
        assert!(err.contains(expected), "{expected} missing in\n{err}");
    }
    assert!(
        err.contains("startup=http:8080/actuator/health/liveness,8x15s"),
        "{err}"
    );
}

/// What `kubectl get deploy -o yaml` prints: one `kind: List` document whose items are objects.
const LIST: &str = "apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata:
    name: web
  spec:
    ports:
    - port: 80
- apiVersion: apps/v1
  kind: Deployment
  metadata:
    name: web
    namespace: shop
  spec:
    selector:
      matchLabels:
        app: web
    template:
      metadata:
        labels:
          app: web
      spec:
        containers:
        - name: web
          image: registry.example/web:1
          ports:
          - containerPort: 8080
metadata:
  resourceVersion: \"\"
";

#[test]
fn mutate_keeps_a_list_a_list_and_patches_each_item() {
    let list = tmp(LIST);
    let out = podgrace(&["mutate", "-f", path(&list), "-o", "pod"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let docs: Vec<serde_json::Value> = podgrace::yaml::documents(&text(&out.stdout)).unwrap();
    assert_eq!(docs.len(), 1, "still one document");
    assert_eq!(docs[0]["kind"], "List");
    assert_eq!(docs[0]["items"][0]["kind"], "Service", "passed through");
    let web = &docs[0]["items"][1]["spec"]["template"]["spec"];
    assert!(
        web["containers"][0]["lifecycle"]["preStop"].is_object(),
        "{web}"
    );
    assert!(
        text(&out.stdout).ends_with("metadata:\n  resourceVersion: \"\"\n"),
        "the List's own keys where they were: {}",
        text(&out.stdout)
    );

    let out = podgrace(&["mutate", "-f", path(&list), "-o", "patch"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let patches: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let entries = patches.as_array().unwrap();
    assert_eq!(entries.len(), 1, "{patches}");
    assert_eq!(entries[0]["object"], "Deployment shop/web");
    assert_eq!(entries[0]["item"], 1);
    assert_eq!(
        entries[0]["patch"][0]["path"], "/spec/template/spec/containers/0/lifecycle",
        "relative to the item"
    );
    assert!(
        text(&out.stderr).contains("start at the item"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn mutate_names_a_removed_api_version_and_the_one_to_use() {
    let cron = tmp(
        "apiVersion: batch/v1beta1\nkind: CronJob\nmetadata: {name: nightly, namespace: shop}\nspec:\n  schedule: '0 3 * * *'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: Never\n          containers: [{name: job, image: busybox}]\n",
    );
    let out = podgrace(&["mutate", "-f", path(&cron)]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains(
            "document 1 (CronJob shop/nightly): CronJob batch/v1beta1 was removed in Kubernetes 1.25: use batch/v1"
        ),
        "{err}"
    );
    assert!(!err.contains("expected a Pod"), "{err}");
}

#[test]
fn mutate_writes_keys_as_written_and_quotes_what_yaml_1_1_would_misread() {
    let pod = tmp(
        "kind: Pod\napiVersion: v1\nmetadata:\n  name: p\n  annotations:\n    example.com/mode: \"0755\"\nspec:\n  containers:\n  - name: app\n    image: registry.example/app:1\n    args: [--save, \"no\", \"on\", \"y\"]\n    ports: [{containerPort: 8080}]\n",
    );
    let out = podgrace(&["mutate", "-f", path(&pod), "-o", "pod"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let yaml = text(&out.stdout);
    assert!(
        yaml.starts_with("kind: Pod\napiVersion: v1\nmetadata:\n  name: p\n  annotations:\n    example.com/mode: \"0755\"\n"),
        "{yaml}"
    );
    assert!(
        yaml.contains("  - name: app\n    image: registry.example/app:1\n    args:\n    - --save\n    - \"no\"\n    - \"on\"\n    - \"y\"\n    ports:\n"),
        "{yaml}"
    );
}

#[test]
fn output_is_the_same_in_separate_processes() {
    // Each process seeds its hash maps differently: an answer that depended on iteration order
    // would differ between runs (and between the webhook's replicas).
    let f = fixture("manifests/multi-container.yaml");
    let cluster = fixture("policies/cluster.yaml");
    let run = || {
        let out = podgrace(&[
            "mutate",
            "-f",
            f.to_str().unwrap(),
            "--cluster-policy",
            cluster.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        (out.stdout, out.stderr)
    };
    let first = run();
    for _ in 0..4 {
        assert_eq!(run(), first);
    }
}
