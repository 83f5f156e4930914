//! What an adaptive drain watches, decided at admission from the pod spec and written into the
//! helper's argv: every port the pod listens on (all its containers share one network namespace,
//! and a request for the app may arrive at a sidecar in front of it: a service-mesh proxy, an
//! auth proxy) but the ports that never count (metrics, a mesh's own admin ports), and the
//! probes the kubelet keeps running while the pod terminates (readiness and liveness; a startup
//! probe is over once the container has started), so that the helper tells them from requests.
//!
//! Declared ports are not enough: Kubernetes does not require them, and an app that declares its
//! HTTP port often serves Dubbo or gRPC on another.
//!
//! Everything is sorted and deduplicated, and a probe podgrace injects is predicted the same on
//! the first run as it is read back on a reinvocation, so the argv (and with it the hook) is
//! deterministic and idempotent.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::pod_view::{PodSpecView, PodView};
use super::probes;
use crate::policy::spec::{PolicySpec, SidecarMode};
use crate::policy::{ContainerPolicy, Drain, EffectivePolicy, defaults};

/// Kubernetes' default `periodSeconds`.
const DEFAULT_PERIOD: i32 = 10;

/// Service-mesh proxies and the ports of their own that carry no request for the app: Istio's
/// pilot-agent (15020, where it also receives the kubelet's rewritten app probes), Envoy's
/// readiness (15021) and Prometheus (15090) ports; Linkerd's admin (4191) and tap (4190) ports.
/// Their inbound ports (15006, 4143) are where the pod's requests arrive, and count.
const MESH_PORTS: [(&str, &[u16]); 2] = [
    ("istio-proxy", &[15020, 15021, 15090]),
    ("linkerd-proxy", &[4190, 4191]),
];

/// The helper's view of the traffic.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrafficWatch {
    /// Ports that never count.
    pub ignored: BTreeSet<u16>,
    /// `(port, periodSeconds)` of the pod's readiness and liveness probes.
    pub probes: BTreeSet<(u16, u32)>,
}

/// The watch of `pod`'s adaptive drains under `policy` (one for every container: they share
/// the network namespace).
pub fn watch(
    pod: &PodView,
    policy: &EffectivePolicy,
    overrides: Option<&PolicySpec>,
) -> TrafficWatch {
    let mut watch = TrafficWatch::default();
    let Some(spec) = &pod.spec else {
        return watch;
    };
    let resolve = |c: &Container| {
        policy
            .resolve(
                pod.labels(),
                &c.name,
                c.image.as_deref().unwrap_or_default(),
                overrides,
            )
            .ok()
            .map(|r| r.policy)
    };
    let sidecar_inject = policy.sidecars() == SidecarMode::Inject;
    for c in all_containers(spec) {
        let sidecar = spec
            .init_containers
            .iter()
            .flatten()
            .any(|i| i.name == c.name);
        if sidecar && c.restart_policy.as_deref() != Some("Always") {
            // A plain init container has exited before the pod serves.
            continue;
        }
        for (name, ports) in MESH_PORTS {
            if c.name == name {
                watch.ignored.extend(ports.iter().copied());
            }
        }
        let resolved = resolve(c);
        let ignore_ports = resolved.as_deref().map_or_else(
            || {
                defaults::DRAIN_IGNORED_PORTS
                    .iter()
                    .map(|p| IntOrString::String(p.to_string()))
                    .collect()
            },
            ignored_ports,
        );
        watch.ignored.extend(
            ignore_ports
                .iter()
                .filter_map(|p| probes::port_number(c, p))
                .filter_map(|p| u16::try_from(p).ok()),
        );
        let mutated = policy.selects(&c.name) && (!sidecar || sidecar_inject);
        let injected = resolved
            .filter(|_| mutated)
            .and_then(|p| probes::injected_readiness(c, &p))
            .map(|(p, _)| p);
        let declared = [&c.readiness_probe, &c.liveness_probe]
            .into_iter()
            .flatten()
            .cloned();
        for probe in declared.chain(injected) {
            if let Some(port) = probe_port(c, &probe) {
                let period = probe.period_seconds.unwrap_or(DEFAULT_PERIOD).max(1);
                watch.probes.insert((port, period as u32));
            }
        }
    }
    // A probe on an ignored port is nothing to tell apart.
    let ignored = watch.ignored.clone();
    watch.probes.retain(|(port, _)| !ignored.contains(port));
    watch
}

fn ignored_ports(p: &ContainerPolicy) -> Vec<IntOrString> {
    match &p.drain {
        Drain::Adaptive(a) => a.ignore_ports.clone(),
        Drain::Fixed => defaults::DRAIN_IGNORED_PORTS
            .iter()
            .map(|p| IntOrString::String(p.to_string()))
            .collect(),
    }
}

/// What the drain of container `c` comes to, in one line for `mutate --explain`: its kind and
/// bounds, or why it has none or cannot be adaptive.
pub fn explain(
    pod: &PodView,
    c: &Container,
    policy: &ContainerPolicy,
    effective: &EffectivePolicy,
    overrides: Option<&PolicySpec>,
) -> String {
    use super::helper_injection::{PodState, container_state, pod_state};
    use crate::policy::Action;
    if policy.serving_only && !super::serves_traffic(c, policy) {
        return "none: the container declares no port and deregisters from no registry \
                (servingOnly)"
            .to_owned();
    }
    match (&policy.action, &policy.drain) {
        (Action::None, _) => "none: preStop.action is none".to_owned(),
        (Action::Exec { .. }, _) => {
            "none: preStop.action exec runs the policy's command".to_owned()
        }
        (_, Drain::Fixed) if policy.sleep == 0 => "none: sleepSeconds is 0".to_owned(),
        (_, Drain::Fixed) => format!("fixed {}s (preStop.sleepSeconds)", policy.sleep),
        (_, Drain::Adaptive(a)) => {
            let helper_usable = pod.spec.as_ref().is_some_and(|s| {
                !matches!(pod_state(s), PodState::Conflict(_)) && container_state(c).is_ok()
            });
            if let Some(why) = super::hook_plan::adaptive_blocker(pod.spec.as_ref(), helper_usable)
            {
                return format!("fixed {}s: the adaptive drain {why}", a.max);
            }
            let w = watch(pod, effective, overrides);
            let ignored: Vec<String> = w.ignored.iter().map(u16::to_string).collect();
            format!(
                "adaptive: ends {}s after the last request to the pod (ports but {}; {} probe{} \
                 not counted), between {}s and {}s; the grace period counts {}s",
                a.quiet,
                if ignored.is_empty() {
                    "none".to_owned()
                } else {
                    ignored.join(",")
                },
                w.probes.len(),
                if w.probes.len() == 1 { "" } else { "s" },
                a.min,
                a.max,
                a.max
            )
        }
    }
}

fn all_containers(spec: &PodSpecView) -> impl Iterator<Item = &Container> {
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
}

/// The port a network probe connects to, resolved against its own container's port names.
fn probe_port(owner: &Container, p: &Probe) -> Option<u16> {
    let port = if let Some(h) = &p.http_get {
        h.port.clone()
    } else if let Some(t) = &p.tcp_socket {
        t.port.clone()
    } else {
        IntOrString::Int(p.grpc.as_ref()?.port)
    };
    u16::try_from(probes::port_number(owner, &port)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::parse::{Origin, load_layer};

    fn watch_of(pod: serde_json::Value) -> TrafficWatch {
        let pod = PodView::from_value(pod).unwrap();
        let text = "preStop: {drain: {mode: adaptive}}";
        let ns = load_layer(text, Origin::hashed("ns", text)).unwrap();
        watch(&pod, &EffectivePolicy::new(None, Some(&ns)), None)
    }

    #[test]
    fn metrics_ports_are_ignored_and_probes_are_resolved_by_name() {
        let w = watch_of(serde_json::json!({"spec": {"containers": [{
            "name": "app", "image": "app",
            "ports": [{"name": "http", "containerPort": 8080},
                      {"name": "metrics", "containerPort": 9090}],
            "livenessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 15},
            "readinessProbe": {"tcpSocket": {"port": 8080}}
        }]}}));
        assert_eq!(w.ignored, BTreeSet::from([9090]));
        assert_eq!(w.probes, BTreeSet::from([(8080, 10), (8080, 15)]));
    }

    #[test]
    fn the_readiness_probes_podgrace_injects_are_counted_as_probes_in_every_container() {
        let w = watch_of(serde_json::json!({"spec": {"containers": [
            {"name": "app", "image": "app", "ports": [{"containerPort": 8080}]},
            {"name": "auth", "image": "oauth2-proxy", "ports": [{"containerPort": 4180}]}
        ]}}));
        assert_eq!(w.probes, BTreeSet::from([(4180, 5), (8080, 5)]));
    }

    #[test]
    fn a_mesh_proxys_own_ports_never_count() {
        let w = watch_of(serde_json::json!({"spec": {
            "initContainers": [{"name": "istio-proxy", "image": "istio/proxyv2",
                                "restartPolicy": "Always",
                                "readinessProbe": {"httpGet": {"path": "/healthz/ready", "port": 15021}}}],
            "containers": [{"name": "app", "image": "app", "ports": [{"containerPort": 8080}]}]
        }}));
        assert!(
            w.ignored
                .is_superset(&BTreeSet::from([15020, 15021, 15090]))
        );
        assert_eq!(w.probes, BTreeSet::from([(8080, 5)]));
    }
}
