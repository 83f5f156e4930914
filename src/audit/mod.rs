//! `podgrace audit`'s logic, pure: for one workload's pod template and its namespace's effective
//! policy, whether podgrace applies, the traps it has today, what podgrace would inject (the
//! webhook's own engine, `engine::mutation_for`) and the traps that remain, and drift (running pods
//! that a rollout restart would change). The CLI (`cli/audit.rs`) gathers the inputs from
//! manifests or a cluster and renders the [`report`].

pub(crate) mod findings;
pub(crate) mod input;
pub(crate) mod manifests;
pub(crate) mod namespace;
pub(crate) mod ownership;
pub mod report;

use serde::Serialize;

use crate::engine::record::{self, Record};
use crate::engine::{self, ClusterInfo, EngineError, PodView};
use crate::policy::EffectivePolicy;
pub use findings::{Finding, FindingKind};
pub use report::{Report, Status, WorkloadReport};

/// The namespace label that opts a namespace in (the webhook's `namespaceSelector`).
pub const OPT_IN_LABEL: &str = "podgrace.io/inject";
/// Its value.
pub const OPT_IN_VALUE: &str = "enabled";

/// Whether the webhook sees a namespace's pods.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OptIn {
    /// Labelled `podgrace.io/inject=enabled`.
    Enabled,
    /// Not labelled.
    NotLabelled,
    /// Never mutated whatever its label: the release namespace, `kube-system`.
    Excluded,
    /// Not known (manifests without their Namespace): reported as if opted in.
    Unknown,
}

impl OptIn {
    /// From a namespace's labels; `excluded` for the namespaces the webhook never sees.
    pub fn from_labels(
        labels: Option<&std::collections::BTreeMap<String, String>>,
        excluded: bool,
    ) -> Self {
        if excluded {
            OptIn::Excluded
        } else if labels.and_then(|l| l.get(OPT_IN_LABEL)).map(String::as_str) == Some(OPT_IN_VALUE)
        {
            OptIn::Enabled
        } else {
            OptIn::NotLabelled
        }
    }
}

/// One workload to audit.
#[derive(Clone, Debug)]
pub struct Workload {
    /// `Deployment`, `Pod`, …
    pub kind: String,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// The pod template (a bare Pod is its own template).
    pub template: PodView,
    /// The pods running from it, as the API server holds them (podgrace's record annotations
    /// included): what drift is read from.
    pub running: Vec<PodView>,
}

/// Whether podgrace applies to a workload, and why not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Coverage {
    /// The namespace is opted in and the pod is mutated.
    Applies,
    /// The namespace's opt-in is unknown (manifests): what would happen once it is.
    AppliesIfOptedIn,
    /// The namespace is not labelled.
    NamespaceNotOptedIn,
    /// The webhook never sees this namespace.
    NamespaceExcluded,
    /// The pod opts out (`podgrace.io/inject: disabled`).
    PodOptedOut,
    /// A run-to-completion pod (`restartPolicy` `Never` or `OnFailure`: Jobs, CronJobs): the
    /// engine leaves it alone, and no rollout drains it, so its traps are listed (`today`)
    /// but none is a risk.
    Batch,
    /// The engine leaves it alone (a static pod's mirror, no spec).
    Skipped,
}

impl Coverage {
    /// Whether podgrace mutates (or would mutate) the workload's pods.
    pub fn mutated(self) -> bool {
        matches!(self, Coverage::Applies | Coverage::AppliesIfOptedIn)
    }
}

/// Pods of a workload that a rollout restart would change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Drift {
    /// How many running pods.
    pub pods: usize,
    /// Of how many.
    pub of: usize,
    /// Why, for the first of them.
    pub reason: String,
}

/// Errors auditing a workload (never caused by the workload: a bug in podgrace).
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The engine's patch did not apply to the template.
    #[error("the engine's patch does not apply to the template: {0}")]
    Patch(String),
}

/// Audits one workload under its namespace's `opt_in` and effective `policy`.
pub fn audit_workload(
    w: &Workload,
    opt_in: &OptIn,
    policy: &EffectivePolicy,
    cluster: &ClusterInfo,
) -> Result<WorkloadReport, AuditError> {
    let m = engine::mutation_for(&w.template, policy, cluster)?;
    let batch = w
        .template
        .spec
        .as_ref()
        .and_then(engine::batch_restart_policy)
        .is_some();
    let coverage = match (&m.record.skipped, opt_in) {
        (Some(_), _) if batch => Coverage::Batch,
        (_, OptIn::Excluded) => Coverage::NamespaceExcluded,
        (_, OptIn::NotLabelled) => Coverage::NamespaceNotOptedIn,
        (Some(why), _) if why.starts_with("opted out") => Coverage::PodOptedOut,
        (Some(_), _) => Coverage::Skipped,
        (None, OptIn::Enabled) => Coverage::Applies,
        (None, OptIn::Unknown) => Coverage::AppliesIfOptedIn,
    };
    let today = findings::today(&w.template, policy);
    let after = if m.record.skipped.is_some() {
        today.clone()
    } else {
        // The traps left are those of the pod podgrace would create: the patch applied.
        let mut value =
            serde_json::to_value(&w.template).map_err(|source| EngineError::Serialize {
                what: "pod",
                source,
            })?;
        json_patch::patch(&mut value, &m.patch).map_err(|e| AuditError::Patch(e.to_string()))?;
        let mutated = PodView::from_value(value).map_err(|e| AuditError::Patch(e.to_string()))?;
        findings::after(&mutated, policy, m.record.decision.as_ref())
    };
    let drift = (coverage == Coverage::Applies && !m.patch.0.is_empty())
        .then(|| drift(&w.running, policy.description()))
        .flatten();
    let would_inject = m
        .record
        .skipped
        .is_none()
        .then(|| WouldInject::new(&m.record, &m.patch));
    let mut report = WorkloadReport::new(
        w,
        coverage,
        m.record.skipped.clone(),
        would_inject,
        m.warnings,
        today,
        after,
        drift,
    );
    // An annotation the webhook ignores (with a warning the user may never read) is said in
    // the verdict too, where the table shows it, and is a warning of its own.
    let overrides = crate::policy::annotations::read(w.template.labels(), w.template.annotations());
    for e in &overrides.errors {
        report.verdict.push_str(&format!("; ignored {e}"));
        report.status = report.status.max(Status::Warning);
    }
    Ok(report)
}

/// The running pods whose record shows they were not created under the current policy: no
/// `podgrace.io/policy` annotation (created before the namespace opted in, or while the webhook
/// was unreachable), or another policy version.
pub fn drift(running: &[PodView], current: &str) -> Option<Drift> {
    let reasons: Vec<String> = running
        .iter()
        .filter_map(
            |p| match p.annotations().and_then(|a| a.get(record::POLICY)) {
                None => Some(format!(
                    "created without podgrace (no {} annotation)",
                    record::POLICY
                )),
                Some(v) if v != current => Some(format!("created under policy {v}, now {current}")),
                Some(_) => None,
            },
        )
        .collect();
    let first = reasons.first()?.clone();
    Some(Drift {
        pods: reasons.len(),
        of: running.len(),
        reason: first,
    })
}

/// What podgrace would inject, from the engine's record (what `podgrace mutate` prints).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WouldInject {
    /// Per container: `preStop=sleep 10s`, `env=POD_IP`, `readiness=tcp:8080`, …
    pub containers: Vec<ContainerInjection>,
    /// The grace period arithmetic (`30 → 45: preStop 10s + shutdown 30s + buffer 5s (app)`).
    pub grace: Option<String>,
    /// The policy layers (with versions) that applied.
    pub policy: String,
    /// The JSON patch, with paths from the pod (template): `podgrace mutate -o patch` prefixes
    /// them with the template's place in its object.
    pub patch: json_patch::Patch,
}

/// One container's share of [`WouldInject`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ContainerInjection {
    /// Container name.
    pub name: String,
    /// `key=value` items, in patch order.
    pub items: Vec<String>,
}

impl WouldInject {
    fn new(record: &Record, patch: &json_patch::Patch) -> Self {
        WouldInject {
            containers: record
                .containers
                .iter()
                .map(|c| ContainerInjection {
                    name: c.name.clone(),
                    items: c.items.clone(),
                })
                .collect(),
            grace: record.decision.as_ref().and_then(|d| {
                d.raised_to.map(|new| {
                    format!(
                        "{} → {new}: {}",
                        d.current,
                        d.arithmetic().unwrap_or_default()
                    )
                })
            }),
            policy: record.policy.clone(),
            patch: patch.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn pod(spec: Value) -> PodView {
        PodView::from_value(json!({"metadata": {"labels": {"app": "web"}}, "spec": spec})).unwrap()
    }

    fn workload(template: PodView) -> Workload {
        Workload {
            kind: "Deployment".into(),
            namespace: "shop".into(),
            name: "web".into(),
            template,
            running: Vec::new(),
        }
    }

    fn run(template: PodView, opt_in: OptIn) -> WorkloadReport {
        audit_workload(
            &workload(template),
            &opt_in,
            &EffectivePolicy::builtin(),
            &ClusterInfo::default(),
        )
        .unwrap()
    }

    fn kinds(f: &[Finding]) -> Vec<FindingKind> {
        f.iter().map(|f| f.kind).collect()
    }

    #[test]
    fn a_kept_hook_longer_than_the_grace_period_is_reported_with_the_arithmetic_and_fixed() {
        let r = run(
            pod(
                json!({"containers": [{"name": "app", "image": "java", "ports": [{"containerPort": 8080}],
                "readinessProbe": {"tcpSocket": {"port": 8080}},
                "lifecycle": {"preStop": {"sleep": {"seconds": 20}}}}]}),
            ),
            OptIn::Enabled,
        );
        assert_eq!(kinds(&r.today), [FindingKind::GraceShort]);
        assert_eq!(
            r.today[0].message,
            "terminationGracePeriodSeconds 30 < 55 needed: kept preStop 20s (sleep) + shutdown 30s + buffer 5s (app)"
        );
        assert!(r.remaining.is_empty(), "{:?}", r.remaining);
        assert_eq!(r.fixed_by_podgrace, [FindingKind::GraceShort]);
        assert_eq!(r.status, Status::Ok);
        assert!(
            r.would_inject
                .unwrap()
                .grace
                .unwrap()
                .starts_with("30 → 55")
        );
    }

    #[test]
    fn a_serving_container_without_readiness_gets_one_from_podgrace() {
        let template = pod(
            json!({"containers": [{"name": "app", "image": "java", "ports": [{"containerPort": 8080}]}]}),
        );
        let r = run(template.clone(), OptIn::Enabled);
        assert_eq!(kinds(&r.today), [FindingKind::NoReadiness]);
        assert!(r.remaining.is_empty());
        assert_eq!(r.coverage, Coverage::Applies);
        // Not opted in: the trap stays, and the verdict says what opting in would fix.
        let r = run(template, OptIn::NotLabelled);
        assert_eq!(r.coverage, Coverage::NamespaceNotOptedIn);
        assert_eq!(kinds(&r.remaining), [FindingKind::NoReadiness]);
        assert_eq!(r.status, Status::Risk);
        assert!(
            r.verdict.contains("opting in would fix no-readiness"),
            "{}",
            r.verdict
        );
    }

    #[test]
    fn pid_1_traps_remain_after_podgrace() {
        for (command, kind) in [
            (
                json!(["/bin/sh", "-c", "java -jar app.jar"]),
                FindingKind::ShellPid1,
            ),
            (json!(["sleep", "infinity"]), FindingKind::IgnoresSigterm),
        ] {
            let r = run(
                pod(
                    json!({"containers": [{"name": "app", "image": "debian", "command": command}]}),
                ),
                OptIn::Enabled,
            );
            assert_eq!(kinds(&r.today), [kind]);
            assert_eq!(kinds(&r.remaining), [kind]);
            assert_eq!(r.status, Status::Risk);
        }
    }

    #[test]
    fn liveness_without_readiness_and_nginx_without_quit() {
        let r = run(
            pod(
                json!({"containers": [{"name": "web", "image": "bitnami/nginx:1.27",
                "ports": [{"containerPort": 8080}],
                "livenessProbe": {"tcpSocket": {"port": 8080}}}]}),
            ),
            OptIn::Enabled,
        );
        assert_eq!(
            kinds(&r.today),
            [
                FindingKind::LivenessWithoutReadiness,
                FindingKind::NginxWithoutQuit
            ]
        );
        // podgrace adds a readiness probe on the declared port and makes nginx quit.
        assert!(r.remaining.is_empty(), "{:?}", r.remaining);
        assert_eq!(
            r.fixed_by_podgrace,
            [
                FindingKind::LivenessWithoutReadiness,
                FindingKind::NginxWithoutQuit
            ]
        );
        // Without a declared port it serves nothing podgrace can see: no probe, no drain.
        let r = run(
            pod(
                json!({"containers": [{"name": "web", "image": "bitnami/nginx:1.27",
                "livenessProbe": {"tcpSocket": {"port": 80}}}]}),
            ),
            OptIn::Enabled,
        );
        assert_eq!(
            kinds(&r.remaining),
            [
                FindingKind::LivenessWithoutReadiness,
                FindingKind::NginxWithoutQuit
            ]
        );
        // A worker checked by a command, no port: it serves nothing a Service routes to.
        let r = run(
            pod(
                json!({"containers": [{"name": "worker", "image": "apache/airflow:2.10",
                "livenessProbe": {"exec": {"command": ["celery", "inspect", "ping"]}}}]}),
            ),
            OptIn::Enabled,
        );
        assert!(r.today.is_empty(), "{:?}", r.today);
    }

    #[test]
    fn a_nacos_client_without_deregistration_stays_at_risk_under_a_sleep_policy() {
        let r = run(
            pod(json!({"containers": [{"name": "app", "image": "java",
                "readinessProbe": {"tcpSocket": {"port": 8080}},
                "env": [{"name": "SPRING_CLOUD_NACOS_DISCOVERY_SERVER_ADDR", "value": "nacos:8848"}]}]})),
            OptIn::Enabled,
        );
        assert_eq!(
            kinds(&r.today),
            [FindingKind::RegistryWithoutDeregistration]
        );
        assert!(r.today[0].message.starts_with("Nacos client"));
        assert_eq!(
            kinds(&r.remaining),
            [FindingKind::RegistryWithoutDeregistration]
        );
        // A hook that calls the registry is a deregistration.
        let r = run(
            pod(
                json!({"terminationGracePeriodSeconds": 60, "containers": [{"name": "app", "image": "java",
                "readinessProbe": {"tcpSocket": {"port": 8080}},
                "lifecycle": {"preStop": {"exec": {"command": ["curl", "-m", "3", "-X", "PUT", "http://nacos:8848/nacos/v1/ns/instance?enabled=false"]}}},
                "env": [{"name": "NACOS_SERVER_ADDR", "value": "nacos:8848"}]}]}),
            ),
            OptIn::Enabled,
        );
        assert!(r.today.is_empty(), "{:?}", r.today);
    }

    #[test]
    fn a_shell_prestop_in_a_distroless_image_is_reported() {
        let r = run(
            pod(
                json!({"terminationGracePeriodSeconds": 60, "containers": [{"name": "app", "image": "gcr.io/distroless/java21",
                "readinessProbe": {"tcpSocket": {"port": 8080}},
                "lifecycle": {"preStop": {"exec": {"command": ["/bin/sh", "-c", "sleep 5"]}}}}]}),
            ),
            OptIn::Enabled,
        );
        assert_eq!(kinds(&r.today), [FindingKind::PrestopNeedsShell]);
        assert_eq!(kinds(&r.remaining), [FindingKind::PrestopNeedsShell]);
    }

    fn with_policy(template: PodView, yaml: &str) -> WorkloadReport {
        let layer = crate::policy::parse::load_layer(
            yaml,
            crate::policy::parse::Origin::hashed("shop", yaml),
        )
        .unwrap();
        audit_workload(
            &workload(template),
            &OptIn::Enabled,
            &EffectivePolicy::new(None, Some(&layer)),
            &ClusterInfo::default(),
        )
        .unwrap()
    }

    /// A Spring Boot app whose liveness probe allows 30 s + 3 × 10 s = 60 s.
    fn slow_starter(readiness_path: &str) -> PodView {
        pod(
            json!({"containers": [{"name": "app", "image": "java", "ports": [{"containerPort": 8080}],
            "livenessProbe": {"httpGet": {"path": "/actuator/health/liveness", "port": 8080},
                              "initialDelaySeconds": 30, "periodSeconds": 10},
            "readinessProbe": {"httpGet": {"path": readiness_path, "port": 8080}}}]}),
        )
    }

    #[test]
    fn liveness_restarting_the_app_before_its_declared_start_is_fixed_by_a_startup_probe() {
        let r = with_policy(
            slow_starter("/actuator/health/readiness"),
            "startup: {inject: true, maxSeconds: 120}\n",
        );
        assert_eq!(kinds(&r.today), [FindingKind::LivenessBeforeStart]);
        assert_eq!(
            r.today[0].message,
            "liveness restarts it after 60s, before its declared 120s start"
        );
        assert!(r.remaining.is_empty(), "{:?}", r.remaining);
        assert_eq!(r.fixed_by_podgrace, [FindingKind::LivenessBeforeStart]);
        assert!(
            r.verdict.contains("podgrace fixes liveness-before-start"),
            "{}",
            r.verdict
        );
        // Declared but not injected: the trap remains, and the webhook says so too.
        let r = with_policy(
            slow_starter("/actuator/health/readiness"),
            "startup: {inject: false, maxSeconds: 120}\n",
        );
        assert_eq!(kinds(&r.remaining), [FindingKind::LivenessBeforeStart]);
        assert_eq!(r.status, Status::Risk);
        assert!(
            r.podgrace_warnings
                .iter()
                .any(|w| w.contains(&r.remaining[0].message)),
            "{:?}",
            r.podgrace_warnings
        );
        // No declared start time, or a liveness probe that waits long enough: no trap.
        assert!(with_policy(slow_starter("/ready"), "").today.is_empty());
        assert!(
            with_policy(slow_starter("/ready"), "startup: {maxSeconds: 60}\n")
                .today
                .is_empty()
        );
    }

    #[test]
    fn readiness_identical_to_liveness_is_reported_today_and_after() {
        let r = with_policy(slow_starter("/actuator/health/liveness"), "");
        assert_eq!(kinds(&r.today), [FindingKind::ReadinessIsLiveness]);
        assert_eq!(r.today[0].message, engine::startup::IDENTICAL);
        assert_eq!(kinds(&r.remaining), [FindingKind::ReadinessIsLiveness]);
        // Over TCP the same check is no trap: a connect fails on no dependency.
        let tcp = pod(
            json!({"containers": [{"name": "app", "image": "redis", "ports": [{"containerPort": 6379}],
            "livenessProbe": {"tcpSocket": {"port": 6379}}, "readinessProbe": {"tcpSocket": {"port": 6379}}}]}),
        );
        assert!(with_policy(tcp, "").today.is_empty());
        // A readiness probe that podgrace injects with liveness's check: the trap comes with it.
        let bare = pod(
            json!({"containers": [{"name": "app", "image": "java", "ports": [{"containerPort": 8080}],
            "livenessProbe": {"httpGet": {"path": "/health", "port": 8080}}}]}),
        );
        let r = with_policy(bare, "readiness: {handler: http, path: /health}\n");
        assert_eq!(kinds(&r.today), [FindingKind::LivenessWithoutReadiness]);
        assert_eq!(kinds(&r.remaining), [FindingKind::ReadinessIsLiveness]);
    }

    #[test]
    fn opted_out_batch_and_excluded_pods_are_not_covered() {
        let opted_out = PodView::from_value(
            json!({"metadata": {"labels": {"podgrace.io/inject": "disabled"}},
            "spec": {"containers": [{"name": "a", "image": "x"}]}}),
        )
        .unwrap();
        assert_eq!(
            run(opted_out, OptIn::Enabled).coverage,
            Coverage::PodOptedOut
        );
        let batch =
            pod(json!({"restartPolicy": "OnFailure", "containers": [{"name": "a", "image": "x"}]}));
        let r = run(batch, OptIn::Enabled);
        assert_eq!(r.coverage, Coverage::Batch);
        assert!(r.verdict.contains("batch pod"), "{}", r.verdict);
        assert!(r.would_inject.is_none());
        let any = pod(json!({"containers": [{"name": "a", "image": "x"}]}));
        assert_eq!(
            run(any, OptIn::Excluded).coverage,
            Coverage::NamespaceExcluded
        );
    }

    /// The official CronJob example's shape: `sh -c` without exec (which would be a shell-pid1
    /// trap on a Debian image) in a pod that runs to completion, in a namespace not opted in.
    #[test]
    fn batch_pods_list_their_traps_but_are_no_rollout_risk() {
        for opt_in in [OptIn::Unknown, OptIn::NotLabelled, OptIn::Enabled] {
            let batch = pod(json!({"restartPolicy": "OnFailure", "containers": [
                {"name": "hello", "image": "debian:bookworm",
                 "command": ["/bin/sh", "-c", "date; echo Hello"]}]}));
            let r = run(batch, opt_in.clone());
            assert_eq!(r.coverage, Coverage::Batch, "{opt_in:?}");
            assert_eq!(kinds(&r.today), [FindingKind::ShellPid1]);
            assert!(r.remaining.is_empty(), "{:?}", r.remaining);
            assert_eq!(r.status, Status::Ok, "{}", r.verdict);
        }
    }

    #[test]
    fn a_bad_annotation_is_in_the_verdict_and_a_warning() {
        let template = PodView::from_value(json!({
            "metadata": {"annotations": {"podgrace.io/sleep-seconds": "ten"}},
            "spec": {"containers": [{"name": "app", "image": "shop:1", "ports": [{"containerPort": 8080}],
                     "readinessProbe": {"tcpSocket": {"port": 8080}}}]}}))
        .unwrap();
        let r = run(template, OptIn::Enabled);
        assert!(
            r.verdict
                .contains("; ignored annotation podgrace.io/sleep-seconds: "),
            "{}",
            r.verdict
        );
        assert_eq!(r.status, Status::Warning, "{}", r.verdict);
    }

    #[test]
    fn drift_is_a_running_pod_without_the_current_policy_record() {
        let template = pod(
            json!({"containers": [{"name": "app", "image": "java", "ports": [{"containerPort": 8080}]}]}),
        );
        let policy = EffectivePolicy::builtin();
        let annotated = |v: &str| {
            PodView::from_value(json!({"metadata": {"annotations": {record::POLICY: v}},
                "spec": {"containers": []}}))
            .unwrap()
        };
        let mut w = workload(template);
        w.running = vec![
            annotated(policy.description()),
            annotated("builtin, configmap shop/podgrace-policy@1"),
            PodView::default(),
        ];
        let r = audit_workload(&w, &OptIn::Enabled, &policy, &ClusterInfo::default()).unwrap();
        let d = r.drift.unwrap();
        assert_eq!((d.pods, d.of), (2, 3));
        assert!(
            d.reason
                .contains("created under policy builtin, configmap shop/podgrace-policy@1"),
            "{}",
            d.reason
        );
        assert_eq!(r.status, Status::Warning);
        // Not opted in: no drift (nothing would change on a restart).
        let r = audit_workload(&w, &OptIn::NotLabelled, &policy, &ClusterInfo::default()).unwrap();
        assert!(r.drift.is_none());
        // Up to date.
        w.running = vec![annotated(policy.description())];
        let r = audit_workload(&w, &OptIn::Enabled, &policy, &ClusterInfo::default()).unwrap();
        assert!(r.drift.is_none());
    }
}
