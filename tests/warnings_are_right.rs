//! Warnings that are right (issue 27, section 4): what `sh` is depends on the image, batch pods
//! are no rollout risk, and `mutate` says what `audit` says. The real binary on fixtures in the
//! shape of public manifests.

mod common;

use common::fixture;
use common::{podgrace, text};
use serde_json::Value;

fn path(rel: &str) -> String {
    fixture(rel).to_str().unwrap().to_owned()
}

#[test]
fn the_official_cronjob_example_passes_audit_fail_on_risk() {
    let file = path("manifests/cronjob-hello.yaml");
    let out = podgrace(&["audit", "-f", &file, "--fail-on", "risk"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("CronJob/hello"), "{stdout}");
    assert!(!stdout.contains("RISK"), "{stdout}");
    assert!(!stdout.contains("dash"), "busybox's sh is ash: {stdout}");
    let json = podgrace(&["audit", "-f", &file, "-o", "json"]);
    let report: Value = serde_json::from_slice(&json.stdout).unwrap();
    let w = &report["namespaces"][0]["workloads"][0];
    assert_eq!(w["coverage"], "batch", "{w}");
    assert_eq!(w["status"], "ok", "{w}");
}

#[test]
fn mutate_warns_about_a_shell_hook_in_a_shell_less_image_as_audit_reports_it() {
    let file = path("manifests/distroless-shell-hook.yaml");
    let mutate = podgrace(&["mutate", "-f", &file]);
    assert_eq!(mutate.status.code(), Some(0), "{}", text(&mutate.stderr));
    let stderr = text(&mutate.stderr);
    let warning = stderr
        .lines()
        .find(|l| l.contains("warning:") && l.contains("may lack"))
        .unwrap_or_else(|| panic!("no warning in\n{stderr}"));
    let audit = podgrace(&["audit", "-f", &file, "-o", "json"]);
    let report: Value = serde_json::from_slice(&audit.stdout).unwrap();
    let w = &report["namespaces"][0]["workloads"][0];
    let finding = w["today"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "prestop-needs-shell")
        .unwrap_or_else(|| panic!("{w}"));
    assert!(
        warning.ends_with(finding["message"].as_str().unwrap()),
        "one message for one trap:\n{warning}\n{finding}"
    );
    assert!(
        w["podgraceWarnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m.as_str().unwrap().contains("may lack")),
        "the webhook's warnings: {w}"
    );
}
