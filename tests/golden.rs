//! Golden tests: the engine's patch, warnings and record for real-world manifests
//! (tests/fixtures/manifests) and the captured AdmissionReviews, compared with reviewed outputs
//! in tests/golden. After an intended change, regenerate with `PODGRACE_BLESS=1 cargo test
//! --test golden` and review the diff.

mod common;

use common::*;
use podgrace::engine::{self, ClusterInfo};
use podgrace::manifest::documents;
use podgrace::manifest::{Document, objects, prefix_patch};
use podgrace::policy::EffectivePolicy;
use podgrace::policy::parse::layers_from_file_text;

/// Every object of every document of `text`, which must all be readable.
fn read_documents(text: &str) -> Vec<Document> {
    let mut out = Vec::new();
    for chunk in documents::split(text) {
        let d = documents::read(&chunk.unwrap(), false).unwrap();
        let (docs, failures) = objects(d.value, d.order);
        assert!(failures.is_empty(), "{:?}", failures);
        out.extend(docs);
    }
    out
}

fn render(manifest: &str, namespace_policy: Option<&str>) -> String {
    let cluster = layer(&read_fixture("policies/cluster.yaml"));
    let ns = namespace_policy.map(|p| {
        layers_from_file_text(p, &read_fixture(p), "policy.yaml")
            .remove(0)
            .unwrap()
    });
    let eff = EffectivePolicy::new(Some(&cluster), ns.as_ref());
    let mut out = String::new();
    for doc in read_documents(&read_fixture(manifest)) {
        let Some(t) = doc.target else { continue };
        let m = engine::mutation_for(&t.pod, &eff, &ClusterInfo::default()).unwrap();
        let mut applied = doc.value.clone();
        let patch = prefix_patch(&m.patch, &t.path);
        json_patch::patch(&mut applied, &patch.0).unwrap();
        out.push_str(&format!("# {}\n", t.label));
        if let Some(s) = &m.record.skipped {
            out.push_str(&format!("skipped: {s}\n"));
        }
        out.push_str("warnings:\n");
        for w in &m.warnings {
            out.push_str(&format!("  - {w}\n"));
        }
        out.push_str("patch:\n");
        out.push_str(&serde_json::to_string_pretty(&patch).unwrap());
        out.push('\n');
    }
    out
}

fn check(name: &str, manifest: &str, namespace_policy: Option<&str>) {
    let got = render(manifest, namespace_policy);
    let path = fixture("../golden").join(format!("{name}.txt"));
    if std::env::var_os("PODGRACE_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} missing: run with PODGRACE_BLESS=1", path.display()));
    if got != want {
        let diff = similar::TextDiff::from_lines(&want, &got);
        panic!(
            "{name} differs from {}:\n{}",
            path.display(),
            diff.unified_diff().header("golden", "now")
        );
    }
}

#[test]
fn spring_boot_nacos_service_with_two_replicas() {
    check(
        "spring-nacos",
        "manifests/spring-nacos.yaml",
        Some("policies/shop-nacos.yaml"),
    );
}

#[test]
fn nginx_front() {
    check("nginx-front", "manifests/nginx-front.yaml", None);
}

#[test]
fn shell_entrypoint_app() {
    check("shell-entrypoint", "manifests/shell-entrypoint.yaml", None);
}

#[test]
fn pod_that_already_has_prestop_and_probes() {
    check("existing-prestop", "manifests/existing-prestop.yaml", None);
}

#[test]
fn multi_container_pod_with_sidecars() {
    check("multi-container", "manifests/multi-container.yaml", None);
}

#[test]
fn captured_admission_reviews() {
    check(
        "admission-kubectl-apply",
        "admission/pod-create-kubectl-apply.json",
        None,
    );
    check(
        "admission-kubectl-run",
        "admission/pod-create-kubectl-run.json",
        None,
    );
    check(
        "admission-dry-run",
        "admission/pod-create-dry-run.json",
        None,
    );
}

#[test]
fn seed_000_deployment_gets_a_grace_period_that_covers_its_opaque_hook() {
    check(
        "seed-000-customer-services",
        "manifests/seed-000-customer-services.yaml",
        None,
    );
}

#[test]
fn seed_001_pod_gets_a_grace_period_that_covers_its_own_hook() {
    check(
        "seed-001-sre-yilingyi",
        "manifests/seed-001-sre-yilingyi.yaml",
        None,
    );
}

#[test]
fn spring_boot_services_with_liveness_only_get_a_startup_probe_and_a_users_own_is_kept() {
    check(
        "spring-liveness-only",
        "manifests/spring-liveness-only.yaml",
        Some("policies/spring-start.yaml"),
    );
}
