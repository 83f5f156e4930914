//! The command line as users run it: the real binary, real files, exit codes and messages.

mod common;

use common::*;
use serde_json::json;

fn path(f: &tempfile::NamedTempFile) -> &str {
    f.path().to_str().unwrap()
}

#[test]
fn mutate_prints_the_patch_and_warnings_for_a_workload() {
    let f = fixture("manifests/nginx-front.yaml");
    let out = podgrace(&["mutate", "-f", f.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let patch: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let first = &patch[0]["patch"][0];
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
    let docs: Vec<serde_json::Value> =
        podgrace::protocols::yaml::documents(&text(&out.stdout)).unwrap();
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
        patch[0]["patch"][0]["path"], "/spec/containers/0/lifecycle",
        "pod-relative, as the webhook answers"
    );
}

#[test]
fn bad_inputs_fail_with_one_line_naming_the_problem() {
    let service = tmp("apiVersion: v1\nkind: Service\nmetadata: {name: s}\n");
    let pod = tmp(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: x}]}\n",
    );
    let unknown_field = tmp("preStop:\n  sleepSecs: 10\n");
    let absurd = tmp("shutdownSeconds: 86400\n");
    let negative = tmp("preStop: {sleepSeconds: -5}\n");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["mutate", "-f", path(&service)], "documents: Service"),
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
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
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
    let docs: Vec<serde_json::Value> =
        podgrace::protocols::yaml::documents(&text(&out.stdout)).unwrap();
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
    assert_eq!(
        (
            &entries[0]["kind"],
            &entries[0]["namespace"],
            &entries[0]["name"]
        ),
        (&json!("Deployment"), &json!("shop"), &json!("web"))
    );
    assert_eq!(entries[0]["document"], 1);
    assert_eq!(entries[0]["item"], 1);
    assert_eq!(
        entries[0]["patch"][0]["path"], "/spec/template/spec/containers/0/lifecycle",
        "relative to the item"
    );
}

#[test]
fn mutate_names_a_removed_api_version_and_the_one_to_use() {
    let cron = tmp(
        "apiVersion: batch/v1beta1\nkind: CronJob\nmetadata: {name: nightly, namespace: shop}\nspec:\n  schedule: '0 3 * * *'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: Never\n          containers: [{name: job, image: busybox}]\n",
    );
    let out = podgrace(&["mutate", "-f", path(&cron)]);
    assert_eq!(out.status.code(), Some(3));
    let err = text(&out.stderr);
    assert!(
        err.contains(
            "document 1, line 1 (CronJob shop/nightly): CronJob batch/v1beta1 was removed in Kubernetes 1.25: the API server refuses this manifest; use batch/v1"
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

// ---- issue 27: input as users have it -------------------------------------------------------

/// Deployment `name` in namespace `shop`, serving on 8080.
fn shop_deployment(name: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: shop\nspec:\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n      - name: app\n        image: registry.example/shop/{name}:1\n        ports:\n        - containerPort: 8080\n"
    )
}

#[test]
fn mutate_processes_every_good_document_and_names_every_bad_one_with_its_line() {
    let folder = fixture("manifests/folder");
    let read = |f: &str| std::fs::read_to_string(folder.join(f)).unwrap();
    // A good workload, a Helm template, a good one, a removed apiVersion, a Kustomize patch, a
    // broken document, a good one: as one stream.
    let stream = [
        shop_deployment("first"),
        read("deployment.yaml"),
        shop_deployment("second"),
        read("fluentd-daemonset.yaml"),
        read("replicas-patch.yaml"),
        read("worker.yaml"),
    ]
    .join("---\n");
    let f = tmp(&stream);
    let out = podgrace(&["mutate", "-f", path(&f)]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let entries: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["first", "second", "mailer"]);
    let err = text(&out.stderr);
    let file = path(&f);
    // Lines counted in the whole stream.
    let line = |needle: &str| stream.lines().position(|l| l.contains(needle)).unwrap() + 1;
    for expected in [
        format!(
            "{file}: document 2, line {}: invalid YAML: ",
            line("name: {{ include")
        ),
        "(a Helm template? render it first: `helm template`)".to_owned(),
        format!(
            "{file}: document 4, line {} (DaemonSet logging/fluentd): DaemonSet extensions/v1beta1 was removed in Kubernetes 1.16",
            line("apiVersion: extensions/v1beta1")
        ),
        format!(
            "{file}: document 5, line {} (Deployment shop/storefront): not a valid pod: missing spec.template (a Kustomize patch?",
            line("# overlays/production") + 1
        ),
        format!(
            "{file}: document 6, line {}: invalid YAML: ",
            line("- name: CONCURRENCY")
        ),
        format!("podgrace: 4 of the documents of {file} could not be read or mutated"),
    ] {
        assert!(err.contains(&expected), "{expected} missing in\n{err}");
    }

    // `-o pod`: the good documents mutated, the bad ones as they were, none lost.
    let out = podgrace(&["mutate", "-f", path(&f), "-o", "pod"]);
    assert_eq!(out.status.code(), Some(3));
    let yaml = text(&out.stdout);
    assert_eq!(yaml.matches("\n---\n").count(), 6, "{yaml}");
    assert_eq!(yaml.matches("preStop:").count(), 3, "{yaml}");
    assert!(yaml.contains("  name: {{ include \"orders.fullname\" . }}\n"));
    assert!(yaml.contains("apiVersion: extensions/v1beta1\n"));
    assert!(yaml.contains("       - name: CONCURRENCY\n"));
}

#[test]
fn a_key_written_twice_is_read_as_kubectl_reads_it_with_a_warning() {
    let f = fixture("manifests/petclinic-duplicate-resources.yaml");
    let out = podgrace(&["mutate", "-f", f.to_str().unwrap(), "-o", "pod"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "warning: {}: document 2, line 56: key \"resources\" is written twice in one mapping: the last one is used, as kubectl does",
            f.display()
        )),
        "{err}"
    );
    let docs: Vec<serde_json::Value> =
        podgrace::protocols::yaml::documents(&text(&out.stdout)).unwrap();
    let container = &docs[1]["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["resources"],
        json!({"requests": {"cpu": "500m", "memory": "768Mi"}, "limits": {"memory": "768Mi"}})
    );
    // The audit reads it the same way, and says so.
    let out = podgrace(&["audit", "-f", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("document 2, line 56: key \"resources\" is written twice"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn concatenated_json_objects_are_read_as_kubectl_reads_them() {
    let objects: Vec<String> = ["first", "second", "third"]
        .iter()
        .map(|n| {
            let v: serde_json::Value = podgrace::protocols::yaml::documents(&shop_deployment(n))
                .unwrap()
                .remove(0);
            v.to_string()
        })
        .collect();
    // Two on one line, one on the next: what `kubectl get -o json` loops and `jq -c` write.
    let f = tmp(&format!("{}{}\n{}\n", objects[0], objects[1], objects[2]));
    let out = podgrace(&["mutate", "-f", path(&f)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let entries: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(entries.as_array().unwrap().len(), 3, "{entries}");
    assert_eq!(entries[2]["document"], 3);
    let out = podgrace(&["audit", "-f", path(&f), "-o", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["summary"]["workloads"], 3);
}

#[test]
fn patch_output_has_one_shape_for_one_workload_several_and_a_list() {
    let one = tmp(&shop_deployment("web"));
    let two = tmp(&format!(
        "{}---\n{}",
        shop_deployment("web"),
        shop_deployment("api")
    ));
    let list = tmp(LIST);
    for f in [&one, &two, &list] {
        let out = podgrace(&["mutate", "-f", path(f), "-o", "patch"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let entries: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        for e in entries.as_array().unwrap() {
            let mut keys: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
            keys.sort();
            assert_eq!(
                keys,
                ["document", "item", "kind", "name", "namespace", "patch"],
                "{e}"
            );
            assert!(e["patch"].is_array(), "{e}");
        }
    }
}

#[test]
fn mutate_applies_a_policy_configmap_of_its_input_as_audit_does() {
    let policy = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: podgrace-policy\n  namespace: shop\ndata:\n  policy.yaml: |\n    preStop:\n      sleepSeconds: 25\n";
    // The ConfigMap after the workload: `kubectl apply` creates both before any pod.
    let f = tmp(&format!("{}---\n{policy}", shop_deployment("web")));
    let out = podgrace(&["mutate", "-f", path(&f)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let entries: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let patch = &entries[0]["patch"];
    assert!(
        patch.to_string().contains("\"seconds\":25"),
        "the namespace's policy applies: {patch}"
    );
    let out = podgrace(&["audit", "-f", path(&f), "-o", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let would = &report["namespaces"][0]["workloads"][0]["wouldInject"]["patch"];
    let prefixed: Vec<serde_json::Value> = would
        .as_array()
        .unwrap()
        .iter()
        .map(|op| {
            let mut op = op.clone();
            op["path"] = json!(format!("/spec/template{}", op["path"].as_str().unwrap()));
            op
        })
        .collect();
    assert_eq!(patch, &json!(prefixed), "mutate and audit agree");

    // An invalid one: both say so and use the cluster default, as the webhook does.
    let invalid = tmp(&format!(
        "{}---\n{}",
        shop_deployment("web"),
        policy.replace("sleepSeconds: 25", "sleepSeconds: soon")
    ));
    let out = podgrace(&["mutate", "-f", path(&invalid)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr)
            .contains("invalid namespace policy, the cluster default applies to namespace shop"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("\"seconds\": 10"),
        "{}",
        text(&out.stdout)
    );
    let out = podgrace(&["audit", "-f", path(&invalid), "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        report["namespaces"][0]["policyError"].is_string(),
        "{report}"
    );

    // A namespace policy ConfigMap given for another namespace is a what-if, and said so.
    let kevin = fixture("policies/shop-nacos.yaml");
    let only_web = tmp(&shop_deployment("web"));
    for command in ["mutate", "audit"] {
        let out = podgrace(&[
            command,
            "-f",
            path(&only_web),
            "--namespace-policy",
            kevin.to_str().unwrap(),
        ]);
        let all = text(&out.stderr) + &text(&out.stdout);
        assert!(
            all.contains("note: --namespace-policy is the ConfigMap of namespace kevin (configmap kevin/podgrace-policy), applied here to the pods of namespace shop"),
            "{command}: {all}"
        );
    }
}

#[test]
fn exit_codes_are_the_same_across_commands_and_documented_in_help() {
    for args in [
        vec!["mutate", "--help"],
        vec!["audit", "--help"],
        vec!["policy", "check", "--help"],
    ] {
        let help = text(&podgrace(&args).stdout);
        assert!(
            help.contains("Exit codes (the same for mutate, audit and policy check):")
                && help.contains("  3  part of the input could not be read"),
            "{args:?}: {help}"
        );
    }
    // Input that cannot be read at all: 2, whatever the command.
    for args in [
        vec!["mutate", "-f", "/nonexistent.yaml"],
        vec!["audit", "-f", "/nonexistent.yaml"],
        vec!["policy", "check", "/nonexistent.yaml"],
    ] {
        assert_eq!(podgrace(&args).status.code(), Some(2), "{args:?}");
    }
    // No input is an error, not an empty report.
    for command in ["mutate", "audit"] {
        let out = podgrace_with_input(&[command, "-f", "-"], Some(b""));
        assert_eq!(out.status.code(), Some(2), "{command}");
        assert!(
            text(&out.stderr).contains("no documents"),
            "{command}: {}",
            text(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "{command}");
    }
    // An invalid policy: 1 (what policy check looks for).
    let bad = tmp("preStop: {sleepSeconds: -5}\n");
    assert_eq!(
        podgrace(&["policy", "check", path(&bad)]).status.code(),
        Some(1)
    );
}

#[test]
fn operator_workloads_with_a_pod_template_are_read_and_a_skipped_kind_is_named() {
    let f = fixture("manifests/operator-workloads.yaml");
    let out = podgrace(&["mutate", "-f", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let entries: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let kinds: Vec<(&str, &str)> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["kind"].as_str().unwrap(), e["name"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("Rollout", "checkout"),
            ("CloneSet", "search"),
            ("StatefulSet", "cache")
        ]
    );
    for e in entries.as_array().unwrap() {
        assert!(
            e["patch"]
                .to_string()
                .contains("/spec/template/spec/containers/0/lifecycle"),
            "{e}"
        );
    }
    let skipped = "document 4, line 86 (Service shop/thumbnails): skipped: serving.knative.dev/v1 Service is not a kind podgrace reads";
    assert!(text(&out.stderr).contains(skipped), "{}", text(&out.stderr));
    let out = podgrace(&["audit", "-f", f.to_str().unwrap(), "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let audited: Vec<&str> = report["namespaces"][0]["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["kind"].as_str().unwrap())
        .collect();
    assert_eq!(audited, ["CloneSet", "Rollout", "StatefulSet"]);
    assert_eq!(report["inputProblems"][0]["problem"], "skipped-kind");
    assert_eq!(report["inputProblems"][0]["kind"], "Service");
}

#[test]
fn a_large_diff_is_made_per_document_in_time_linear_in_the_input_with_lines_counted_in_the_whole_stream()
 {
    // One diff of the whole stream grew with the square of its size (1 MB 1.8 s, 4 MB 25.6 s);
    // per document it grows with the stream: four times the documents, about four times the
    // time (process start included), never sixteen.
    let stream = |n: usize| -> String {
        let docs: Vec<String> = (0..n)
            .map(|i| shop_deployment(&format!("svc-{i}")))
            .collect();
        docs.join("---\n")
    };
    let best_of_two = |f: &tempfile::NamedTempFile| {
        (0..2)
            .map(|_| {
                let started = std::time::Instant::now();
                let out = podgrace(&["mutate", "-f", path(f), "-o", "diff"]);
                assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
                started.elapsed()
            })
            .min()
            .unwrap()
    };
    let small = tmp(&stream(500));
    let n = 2_000;
    let f = tmp(&stream(n));
    let (t_small, t_large) = (best_of_two(&small), best_of_two(&f));
    assert!(
        t_large < t_small * 8,
        "{t_large:?} for {n} documents, {t_small:?} for 500"
    );

    let diff = text(&podgrace(&["mutate", "-f", path(&f), "-o", "diff"]).stdout);
    assert_eq!(diff.matches("\n@@ ").count(), n, "one hunk a document");
    // The last hunk's lines are where `-o pod` writes them in the whole stream.
    let pod = text(&podgrace(&["mutate", "-f", path(&f), "-o", "pod"]).stdout);
    let pod: Vec<&str> = pod.lines().collect();
    let last = diff.rsplit("\n@@ ").next().unwrap();
    let new_start: usize = last
        .split_once(" +")
        .and_then(|(_, r)| r.split([',', ' ']).next())
        .unwrap()
        .parse()
        .unwrap();
    let new_side: Vec<&str> = last
        .lines()
        .skip(1)
        .filter(|l| !l.starts_with('-'))
        .map(|l| &l[1..])
        .collect();
    assert!(new_start > 17 * (n - 1), "{new_start}");
    assert_eq!(
        &pod[new_start - 1..new_start - 1 + new_side.len()],
        new_side.as_slice()
    );
}
