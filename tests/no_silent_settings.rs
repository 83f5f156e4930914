//! No setting silently does nothing (issue 27, section 3): a declared start time opts in,
//! `policy check` notes what a valid policy leaves unused, `mutate --explain` says why a value
//! does not reach a container, and an `exec` action without a duration is counted like a hook
//! podgrace cannot read. The real binary on fixtures in the shape of public manifests.

mod common;

use common::fixture;
use common::{podgrace, text, tmp};
use serde_json::Value;

fn orders() -> String {
    fixture("manifests/orders-with-worker.yaml")
        .to_str()
        .unwrap()
        .to_owned()
}

/// The patch operations of a `mutate -o patch` answer, whatever its shape.
fn operations(out: &[u8]) -> Vec<Value> {
    let v: Value = serde_json::from_slice(out).unwrap();
    let mut ops = Vec::new();
    let mut walk = vec![v];
    while let Some(v) = walk.pop() {
        match v {
            Value::Array(items) => walk.extend(items),
            Value::Object(ref o) if o.contains_key("op") => ops.push(v),
            Value::Object(mut o) => walk.extend(o.remove("patch")),
            _ => {}
        }
    }
    ops
}

#[test]
fn declaring_a_start_time_adds_a_startup_probe_unless_inject_false_is_said() {
    let declared = tmp("startup: {maxSeconds: 120}\n");
    let out = podgrace(&[
        "mutate",
        "-f",
        &orders(),
        "--namespace-policy",
        declared.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let added = operations(&out.stdout)
        .into_iter()
        .any(|op| op["path"].as_str().unwrap().ends_with("/startupProbe"));
    assert!(added, "{}", text(&out.stdout));

    let refused = tmp("startup: {maxSeconds: 120, inject: false}\n");
    let out = podgrace(&[
        "mutate",
        "-f",
        &orders(),
        "--namespace-policy",
        refused.path().to_str().unwrap(),
    ]);
    assert!(
        !text(&out.stdout).contains("startupProbe"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stderr).contains("before its declared 120s start: add a startupProbe"),
        "{}",
        text(&out.stderr)
    );
    let check = podgrace(&["policy", "check", refused.path().to_str().unwrap()]);
    assert_eq!(check.status.code(), Some(0));
    assert!(
        text(&check.stdout).contains(
            ": startup.inject: is false: startup.maxSeconds 120 only warns about a liveness probe"
        ),
        "{}",
        text(&check.stdout)
    );
}

#[test]
fn policy_check_notes_values_that_never_reach_a_pod() {
    let policy = tmp(
        "preStop: {action: exec, exec: {command: [/app/bin/drain]}}\n\
         rules:\n- name: nacos-apps\n  match: {podLabels: {registry: nacos}}\n  set:\n    env: {podIP: ''}\n    preStop: {action: nacos, nacos: {server: 'http://nacos.nacos:8848'}}\n",
    );
    let out = podgrace(&["policy", "check", policy.path().to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    let notes: Vec<&str> = stdout.lines().filter(|l| l.starts_with("note: ")).collect();
    assert_eq!(notes.len(), 2, "{stdout}");
    assert!(
        notes[0].contains(": preStop.exec.durationSeconds: not set: the command is counted as preStop.unknownHookSeconds (30s)"),
        "{stdout}"
    );
    assert!(
        notes[1].contains(": rules[0].set.env.podIP: is \"\" (none), but the nacos hook needs"),
        "{stdout}"
    );
}

#[test]
fn an_exec_action_without_a_duration_counts_unknown_hook_seconds() {
    let policy =
        tmp("preStop: {action: exec, unknownHookSeconds: 40, exec: {command: [/app/bin/drain]}}\n");
    let out = podgrace(&[
        "mutate",
        "-f",
        &orders(),
        "--namespace-policy",
        policy.path().to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // 40 s counted for the command, not 0: 40 + shutdown 30 + buffer 5.
    assert!(
        stderr.contains("grace period 30 → 75: preStop 40s + shutdown 30s + buffer 5s"),
        "{stderr}"
    );
}

#[test]
fn explain_says_why_a_value_does_not_reach_a_container() {
    let policy = tmp("readiness: {port: 9090}\n");
    let out = podgrace(&[
        "mutate",
        "-f",
        &orders(),
        "--namespace-policy",
        policy.path().to_str().unwrap(),
        "--explain",
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let block = |name: &str| {
        stderr
            .split("Deployment shop/orders: container ")
            .find(|b| b.starts_with(&format!("{name}:")))
            .unwrap_or_else(|| panic!("{name} missing in\n{stderr}"))
            .to_owned()
    };
    assert!(
        block("orders")
            .contains("  not applied: readiness.port 9090: not a port the container declares"),
        "{stderr}"
    );
    assert!(
        block("worker").contains(
            "  not applied: preStop.action sleep: no drain: the container declares no port"
        ),
        "{stderr}"
    );
    assert!(
        block("ledger-sync").contains(
            "  not applied: preStop (its own, kept): its preStop runs sh, which this image may lack"
        ),
        "{stderr}"
    );
}

#[test]
fn a_misspelled_pod_field_is_named_by_mutate_and_audit_instead_of_worked_around() {
    let file = fixture("refused/typo-readiness.yaml");
    let file = file.to_str().unwrap();
    let expected = "document 1, line 4 (Deployment shop/storefront): unknown fields spec.template.spec.containers[0].imagePullPolcy, spec.template.spec.containers[0].readinesProbe";
    let mutate = podgrace(&["mutate", "-f", file]);
    assert_ne!(mutate.status.code(), Some(0));
    let stderr = text(&mutate.stderr);
    assert!(
        stderr.contains(file) && stderr.contains(expected),
        "{stderr}"
    );
    assert!(
        !text(&mutate.stdout).contains("readinessProbe"),
        "no probe beside the typo: {}",
        text(&mutate.stdout)
    );
    let audit = podgrace(&["audit", "-f", file]);
    let said = format!("{}{}", text(&audit.stdout), text(&audit.stderr));
    assert!(said.contains(file) && said.contains(expected), "{said}");
}
