//! What an adaptive drain watches in a container, decided at admission from the pod spec and
//! written into the helper's argv: the ports that serve traffic, the ports whose traffic never
//! counts, and the probes the kubelet keeps running while the pod terminates (readiness and
//! liveness; a startup probe is over once the container has started), so that the helper can
//! tell them from requests.
//!
//! Everything is sorted and deduplicated, and a probe podgrace injects is predicted the same on
//! the first run as it is read back on a reinvocation, so the argv (and with it the hook) is
//! deterministic and idempotent.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::pod_view::PodSpecView;
use super::probes;
use crate::policy::{AdaptiveDrain, ContainerPolicy};

/// Kubernetes' default `periodSeconds`.
const DEFAULT_PERIOD: i32 = 10;

/// The helper's view of the traffic.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Watch {
    /// Serving ports; empty: every listening port of the pod but `ignored`.
    pub ports: BTreeSet<u16>,
    /// Ports that never count.
    pub ignored: BTreeSet<u16>,
    /// `(port, periodSeconds)` of the probes on watched ports.
    pub probes: BTreeSet<(u16, u32)>,
}

/// The watch of container `c`, whose Nacos registration (if any) is on `registered`.
pub fn watch(
    spec: &PodSpecView,
    c: &Container,
    policy: &ContainerPolicy,
    drain: &AdaptiveDrain,
    registered: Option<u16>,
) -> Watch {
    let ignored: BTreeSet<u16> = drain
        .ignore_ports
        .iter()
        .filter_map(|p| probes::port_number(c, p))
        .filter_map(|p| u16::try_from(p).ok())
        .collect();
    let mut ports: BTreeSet<u16> = tcp_ports(c)
        .chain(registered)
        .filter(|p| !ignored.contains(p))
        .collect();
    let mut watch = Watch {
        ignored,
        ..Watch::default()
    };
    if ports.is_empty() {
        // No port of its own: every listening port, but those other containers declare.
        watch.ignored.extend(
            all_containers(spec)
                .filter(|other| other.name != c.name)
                .flat_map(tcp_ports),
        );
    }
    let counts = |port: u16, ports: &BTreeSet<u16>, ignored: &BTreeSet<u16>| {
        if ports.is_empty() {
            !ignored.contains(&port)
        } else {
            ports.contains(&port)
        }
    };
    let injected = probes::injected_readiness(c, policy).map(|(p, _)| (c, p));
    let declared = all_containers(spec).flat_map(|owner| {
        [&owner.readiness_probe, &owner.liveness_probe]
            .into_iter()
            .flatten()
            .map(move |p| (owner, p.clone()))
    });
    for (owner, probe) in declared.chain(injected) {
        if let Some(port) = probe_port(owner, &probe)
            && counts(port, &ports, &watch.ignored)
        {
            let period = probe.period_seconds.unwrap_or(DEFAULT_PERIOD).max(1);
            watch.probes.insert((port, period as u32));
        }
    }
    watch.ports = std::mem::take(&mut ports);
    watch
}

/// What the drain of container `c` comes to, in one line for `mutate --explain`: its kind and
/// bounds, or why it has none or cannot be adaptive.
pub fn explain(spec: &PodSpecView, c: &Container, policy: &ContainerPolicy) -> String {
    use crate::policy::{Action, Drain};
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
            use super::helper_injection::{PodState, container_state, pod_state};
            let helper_usable =
                !matches!(pod_state(spec), PodState::Conflict(_)) && container_state(c).is_ok();
            if let Some(why) = super::hook_plan::adaptive_blocker(Some(spec), helper_usable) {
                return format!("fixed {}s: the adaptive drain {why}", a.max);
            }
            let registered = match &policy.action {
                Action::Nacos(n) => n.port,
                _ => None,
            };
            let w = watch(spec, c, policy, a, registered);
            let ports = if w.ports.is_empty() {
                "every listening port".to_owned()
            } else {
                let list: Vec<String> = w.ports.iter().map(u16::to_string).collect();
                format!("port {}", list.join(","))
            };
            format!(
                "adaptive: ends {}s after the last request on {ports} ({} probe{} not counted), \
                 between {}s and {}s; the grace period counts {}s",
                a.quiet,
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

fn tcp_ports(c: &Container) -> impl Iterator<Item = u16> + '_ {
    c.ports
        .iter()
        .flatten()
        .filter(|p| p.protocol.as_deref().is_none_or(|proto| proto == "TCP"))
        .filter_map(|p| u16::try_from(p.container_port).ok())
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
    use crate::engine::PodView;
    use crate::policy::{Drain, EffectivePolicy};

    fn adaptive(policy: &ContainerPolicy) -> AdaptiveDrain {
        match &policy.drain {
            Drain::Adaptive(a) => a.clone(),
            Drain::Fixed => AdaptiveDrain {
                min: 2,
                quiet: 3,
                max: 30,
                traffic: crate::policy::spec::DrainTraffic::All,
                ignore_ports: vec![IntOrString::String("metrics".into())],
            },
        }
    }

    fn watch_of(pod: serde_json::Value, container: usize) -> Watch {
        let pod = PodView::from_value(pod).unwrap();
        let spec = pod.spec.as_ref().unwrap();
        let policy = EffectivePolicy::new(None, None);
        let c = &spec.containers[container];
        let p = policy
            .resolve(None, &c.name, c.image.as_deref().unwrap_or_default(), None)
            .unwrap()
            .policy;
        watch(spec, c, &p, &adaptive(&p), None)
    }

    #[test]
    fn serving_ports_exclude_metrics_and_probes_are_resolved_by_name() {
        let w = watch_of(
            serde_json::json!({"spec": {"containers": [{
                "name": "app", "image": "app",
                "ports": [{"name": "http", "containerPort": 8080},
                          {"name": "metrics", "containerPort": 9090},
                          {"name": "dns", "containerPort": 53, "protocol": "UDP"}],
                "livenessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 15},
                "readinessProbe": {"tcpSocket": {"port": 8080}}
            }]}}),
            0,
        );
        assert_eq!(w.ports, BTreeSet::from([8080]));
        assert_eq!(w.ignored, BTreeSet::from([9090]));
        assert_eq!(w.probes, BTreeSet::from([(8080, 10), (8080, 15)]));
    }

    #[test]
    fn the_readiness_probe_podgrace_injects_is_counted_as_a_probe() {
        let w = watch_of(
            serde_json::json!({"spec": {"containers": [{
                "name": "app", "image": "app", "ports": [{"containerPort": 8080}]
            }]}}),
            0,
        );
        assert_eq!(w.probes, BTreeSet::from([(8080, 5)]));
    }

    #[test]
    fn a_container_without_ports_watches_all_but_its_neighbours_ports() {
        let w = watch_of(
            serde_json::json!({"spec": {"containers": [
                {"name": "worker", "image": "w"},
                {"name": "web", "image": "nginx", "ports": [{"containerPort": 80}],
                 "readinessProbe": {"httpGet": {"path": "/", "port": 80}}}
            ]}}),
            0,
        );
        assert!(w.ports.is_empty());
        assert_eq!(w.ignored, BTreeSet::from([80]));
        assert!(w.probes.is_empty());
    }
}
