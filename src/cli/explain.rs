//! `podgrace mutate --explain`: for every container podgrace would look at, each value of its
//! resolved policy and the layer, rule or pod annotation that set it, so that "why did this
//! container get that?" has an answer without reading four policy files; then what graceful
//! start comes to for it (`start:` lines: its startupProbe, or why it needs none, and the
//! start-side traps); then every value that does not reach the container and why (`not
//! applied:`, [`unreached`]), and the settings that do less than they seem to (`note:`,
//! [`crate::policy::notes`]).

use std::fmt::Write as _;

use crate::engine::{PodView, drain_watch, startup, unreached};
use crate::policy::annotations;
use crate::policy::effective::EffectivePolicy;

/// The explanation for one pod (template), one block per container, in spec order (native
/// sidecars after the containers). `label` names the object (`Deployment shop/web`).
pub fn render(label: &str, pod: &PodView, policy: &EffectivePolicy) -> String {
    let overrides = annotations::read(pod.labels(), pod.annotations());
    let mut out = String::new();
    let Some(spec) = &pod.spec else {
        return out;
    };
    let sidecars = spec
        .init_containers
        .iter()
        .flatten()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"));
    for (kind, c) in spec
        .containers
        .iter()
        .map(|c| ("container", c))
        .chain(sidecars.map(|c| ("native sidecar", c)))
    {
        let _ = write!(out, "{label}: {kind} {}", c.name);
        if !policy.selects(&c.name) {
            let _ = writeln!(out, ": not selected (containers.include/exclude)");
            continue;
        }
        let _ = writeln!(out, ":");
        let image = c.image.as_deref().unwrap_or_default();
        let rows = policy.explain(pod.labels(), &c.name, image, overrides.layer());
        let width = rows
            .iter()
            .map(|r| r.path.len() + r.value.to_string().len())
            .max()
            .unwrap_or(0);
        for r in rows {
            let setting = format!("{} = {}", r.path, r.value);
            let _ = writeln!(out, "  {setting:<w$}  {}", r.source, w = width + 3);
        }
        // An incomplete policy is reported by the engine's own warning.
        if let Ok(resolved) = policy.resolve(pod.labels(), &c.name, image, overrides.layer()) {
            let drain = drain_watch::explain(pod, c, &resolved.policy, policy, overrides.layer());
            let _ = writeln!(out, "  drain: {drain}");
            for finding in startup::findings(c, &resolved.policy, kind == "native sidecar") {
                let _ = writeln!(out, "  start: {finding}");
            }
            if let Some(s) = &resolved.policy.startup
                && c.liveness_probe.is_none()
            {
                let _ = writeln!(
                    out,
                    "  start: no liveness probe, nothing restarts it while it starts: startup.maxSeconds {} adds nothing",
                    s.max_seconds
                );
            }
            for reason in unreached::reasons(c, &resolved.policy) {
                let _ = writeln!(out, "  not applied: {reason}");
            }
        }
        for note in policy.container_notes(pod.labels(), &c.name, image, overrides.layer()) {
            let _ = writeln!(out, "  note: {note}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::parse::{Origin, load_layer};

    #[test]
    fn every_value_names_its_layer_or_rule() {
        let text = "preStop: {action: nacos, nacos: {server: 'http://nacos:8848'}}\n";
        let ns = load_layer(text, Origin::hashed("ns.yaml", text)).unwrap();
        let policy = EffectivePolicy::new(None, Some(&ns));
        let pod = PodView::from_value(serde_json::json!({
            "metadata": {"name": "p", "annotations": {"podgrace.io/shutdown-seconds": "45"}},
            "spec": {"containers": [
                {"name": "web", "image": "nginx:1.27"},
                {"name": "istio-proxy", "image": "istio/proxyv2"}
            ]}
        }))
        .unwrap();
        let text = render("Pod p", &pod, &policy);
        let line = |needle: &str| {
            text.lines()
                .find(|l| l.trim_start().starts_with(needle))
                .unwrap_or_else(|| panic!("{needle} missing in\n{text}"))
                .to_owned()
        };
        assert!(
            line("preStop.action = \"nacos\"").ends_with(&format!("ns.yaml@{}", ns.origin.version)),
            "{text}"
        );
        assert!(
            line("shutdownSeconds = 45").ends_with("pod annotations"),
            "{text}"
        );
        assert!(line("bufferSeconds = 5").ends_with("builtin"), "{text}");
        assert!(
            text.contains("Pod p: container istio-proxy: not selected"),
            "{text}"
        );
    }

    #[test]
    fn start_side_findings_follow_each_containers_values() {
        let text = "rules:\n- match: {podLabels: {framework: spring-boot}}\n  set: {startup: {inject: true, maxSeconds: 120}}\n";
        let ns = load_layer(text, Origin::hashed("ns.yaml", text)).unwrap();
        let policy = EffectivePolicy::new(None, Some(&ns));
        let pod = PodView::from_value(serde_json::json!({
            "metadata": {"name": "p", "labels": {"framework": "spring-boot"}},
            "spec": {"containers": [
                {"name": "app", "image": "shop:1", "ports": [{"containerPort": 8080}],
                 "livenessProbe": {"httpGet": {"path": "/actuator/health", "port": 8080}, "initialDelaySeconds": 30},
                 "readinessProbe": {"httpGet": {"path": "/actuator/health", "port": 8080}}},
                {"name": "legacy", "image": "legacy:1",
                 "livenessProbe": {"tcpSocket": {"port": 7800}, "initialDelaySeconds": 600}},
                {"name": "worker", "image": "worker:1"}
            ]}
        }))
        .unwrap();
        let text = render("Pod p", &pod, &policy);
        let block = |name: &str| {
            text.split("Pod p: container ")
                .find(|b| b.starts_with(&format!("{name}:")))
                .unwrap_or_else(|| panic!("{name} missing in\n{text}"))
                .to_owned()
        };
        let app = block("app");
        assert!(
            app.contains("  startup.maxSeconds = 120"),
            "the value and its rule: {text}"
        );
        assert!(
            app.contains("  start: startupProbe added: http:8080/actuator/health,12x10s ≥ startup.maxSeconds 120 (liveness alone allows 60s)\n"),
            "{text}"
        );
        assert!(
            app.contains("  start: readiness and liveness run the same check"),
            "{text}"
        );
        assert!(
            block("legacy").contains(
                "  start: liveness waits 630s ≥ startup.maxSeconds 120: no startupProbe needed\n"
            ),
            "{text}"
        );
        // No liveness probe: the declared start time has nothing to do there, and says so.
        assert!(
            block("worker").contains(
                "  start: no liveness probe, nothing restarts it while it starts: startup.maxSeconds 120 adds nothing\n"
            ),
            "{text}"
        );
    }
}
