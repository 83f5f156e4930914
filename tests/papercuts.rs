//! Papercuts (issue 27, section 5): help that shows how, errors in the user's terms, output
//! printed once and shortened alike. The real binary.

mod common;

use common::{free_port, podgrace, text, tmp};

const SUBCOMMANDS: [&[&str]; 9] = [
    &["serve"],
    &["certs"],
    &["mutate"],
    &["audit"],
    &["prestop"],
    &["install-helper"],
    &["policy"],
    &["policy", "check"],
    &["policy", "defaults"],
];

#[test]
fn every_subcommands_help_ends_with_examples_of_itself() {
    for sub in SUBCOMMANDS {
        let mut args = sub.to_vec();
        args.push("--help");
        let out = podgrace(&args);
        assert!(out.status.success(), "{sub:?}");
        let help = text(&out.stdout);
        let examples = help
            .split("\nExamples:\n")
            .nth(1)
            .unwrap_or_else(|| panic!("{sub:?} has no examples:\n{help}"));
        let invocation = format!("podgrace {}", sub.join(" "));
        assert!(
            examples
                .lines()
                .any(|l| l.trim_start().starts_with(&invocation)),
            "{sub:?}: {examples}"
        );
    }
}

#[test]
fn one_line_descriptions_are_under_100_characters() {
    for parent in [&["--help"][..], &["policy", "--help"][..]] {
        let help = text(&podgrace(parent).stdout);
        let commands = help
            .split("Commands:\n")
            .nth(1)
            .and_then(|rest| rest.split("\n\n").next())
            .unwrap();
        for line in commands.lines() {
            assert!(
                line.chars().count() < 100,
                "{} chars: {line}",
                line.chars().count()
            );
        }
    }
}

#[test]
fn policy_check_help_says_it_checks_every_file_as_it_does() {
    let help = text(&podgrace(&["policy", "check", "--help"]).stdout);
    assert!(
        help.contains("every policy of every file is checked"),
        "{help}"
    );
    assert!(!help.contains("first invalid"), "{help}");
    let bad = tmp("preStop: {action: teleport}\n");
    let good = tmp("bufferSeconds: 3\n");
    let out = podgrace(&[
        "policy",
        "check",
        bad.path().to_str().unwrap(),
        good.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("ok: "),
        "the file after the bad one is checked too"
    );
}

/// A namespace whose podgrace-policy ConfigMap is invalid, and a Deployment in it with a bad
/// annotation, and an nginx Deployment that opts out, whose advice quotes a command.
const SHOP: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: podgrace-policy, namespace: shop}
data:
  policy.yaml: |
    preStop: {action: teleport}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: front, namespace: shop}
spec:
  selector: {matchLabels: {app: front}}
  template:
    metadata:
      labels: {app: front}
      annotations: {podgrace.io/sleep-seconds: ten}
    spec:
      containers:
      - name: nginx
        image: registry.example/front/nginx-custom:1.27
        ports: [{containerPort: 8080}]
        readinessProbe: {tcpSocket: {port: 8080}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: legacy-front, namespace: shop}
spec:
  selector: {matchLabels: {app: legacy-front}}
  template:
    metadata:
      labels: {app: legacy-front, podgrace.io/inject: disabled}
    spec:
      containers:
      - name: nginx
        image: registry.example/front/nginx-custom:1.27
        ports: [{containerPort: 80}]
        readinessProbe: {tcpSocket: {port: 80}}
"#;

#[test]
fn the_audit_summary_counts_what_fail_on_fails_on_in_the_singular_where_one() {
    let f = tmp(SHOP);
    let file = f.path().to_str().unwrap();
    let out = podgrace(&["audit", "-f", file, "--fail-on", "warning"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    let summary = table.lines().last().unwrap();
    assert!(
        summary.starts_with("2 workloads in 1 namespace: "),
        "{summary}"
    );
    assert!(
        summary.ends_with("; 1 namespace with an invalid policy"),
        "{summary}"
    );
    // The bad annotation, not only in the JSON.
    assert!(
        table.contains("ignored annotation podgrace.io/sleep-seconds"),
        "{table}"
    );
}

#[test]
fn markdown_shows_code_as_code() {
    let f = tmp(SHOP);
    let out = podgrace(&["audit", "-f", f.path().to_str().unwrap(), "-o", "markdown"]);
    let md = text(&out.stdout);
    assert!(md.contains("`nginx -s quit`"), "{md}");
    assert!(!md.contains("\\`"), "{md}");
}

#[test]
fn each_grace_change_is_printed_once_on_stderr() {
    let file = common::fixture("manifests/spring-nacos.yaml");
    let out = podgrace(&["mutate", "-f", file.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let raises = stderr.lines().filter(|l| l.contains(" → ")).count();
    assert_eq!(raises, 1, "{stderr}");
}

/// `make run` shows stdout (logs, from another thread) and stderr on one terminal: the
/// listening line is whole there only if it is written in one `write(2)`. `eprintln!` wrote it
/// in 9 pieces (the address digit by digit), between which log lines landed. strace (`make
/// deps`) counts the writes.
#[test]
fn the_listening_line_is_written_in_one_write() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("writes");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = std::process::Command::new("strace")
        .args([
            "-f",
            "-e",
            "trace=write",
            "-e",
            "signal=none",
            "-s",
            "200",
            "-o",
        ])
        .arg(&trace)
        .arg(env!("CARGO_BIN_EXE_podgrace"))
        .args([
            "serve",
            "--standalone",
            "--log-format",
            "text",
            "--listen",
            &listen,
        ])
        .arg("--ca-out")
        .arg(dir.path().join("ca.pem"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("strace (make deps installs it)");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut writes = String::new();
    while std::time::Instant::now() < deadline {
        writes = std::fs::read_to_string(&trace).unwrap_or_default();
        if writes.contains("listening on") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Ours to stop: the traced webhook first (its pid heads each line of the trace; killing
    // strace alone would leave it running, detached), then strace.
    let traced: Vec<String> = writes
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if let Some(pid) = traced.iter().find(|pid| {
        std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
            s.lines()
                .any(|l| l.starts_with("Tgid:") && l.ends_with(&format!("\t{pid}")))
        })
    }) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", pid])
            .status();
    }
    let _ = child.kill();
    let _ = child.wait();
    let expected = format!("\"podgrace: listening on https://{listen}\\n\"");
    assert!(
        writes
            .lines()
            .any(|l| l.contains("write(2, ") && l.contains(&expected)),
        "not one write of {expected}:\n{writes}"
    );
}

#[test]
fn a_policy_configmap_among_the_manifests_is_located_by_the_files_own_line() {
    let manifests = tmp(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\n# the shop's policy\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: podgrace-policy\n  namespace: shop\ndata:\n  policy.yaml: |\n    preStop:\n      sleepSeconds: 9000\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers: [{name: web, image: registry.example/web:1, ports: [{containerPort: 8080}]}]\n",
    );
    let path = manifests.path().to_str().unwrap();
    for args in [vec!["audit", "-f", path], vec!["mutate", "-f", path]] {
        let out = podgrace(&args);
        let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
        // Line 14 of the file holds `sleepSeconds: 9000`; its value starts at column 21.
        assert!(
            said.contains("preStop.sleepSeconds: expected whole seconds between 0 and 3600, got 9000 at line 14, column 21"),
            "{args:?}: {said}"
        );
    }
}
