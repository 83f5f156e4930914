//! Why a value of a container's policy does not reach its pod: a readiness port the container
//! does not declare, a container that serves no traffic (so no drain), a kept hook that needs a
//! shell the image lacks. (What is knowable without a pod, such as `env.podIP: ""` under a
//! `nacos` action, is a note of the policy: `policy::notes`.) Each reason
//! comes from the decision the engine itself makes (`probes::readiness`, `serves_traffic`,
//! `warnings::hook_needs_shell`), so `podgrace mutate --explain` cannot tell another story than
//! the webhook acts on. Pure.

use k8s_openapi::api::core::v1::Container;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::probes::{self, NoProbe};
use super::{serves_traffic, warnings};
use crate::policy::resolved::{Action, ContainerPolicy};
use crate::policy::spec::ExistingHook;

/// One line per value of `p` that does not reach the container `c`, naming the setting and why.
pub fn reasons(c: &Container, p: &ContainerPolicy) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(r) = &p.readiness {
        if c.readiness_probe.is_some() {
            out.push("readiness: its own readinessProbe is kept; none is added".to_owned());
        } else if let Err(why) = probes::readiness(c, r) {
            out.push(match why {
                NoProbe::NoPort => {
                    "readiness: none added: the container declares no TCP port to check".to_owned()
                }
                NoProbe::NotOwned => {
                    let port = match &r.port {
                        Some(IntOrString::Int(n)) => n.to_string(),
                        Some(IntOrString::String(s)) => s.clone(),
                        None => "(first)".to_owned(),
                    };
                    format!(
                        "readiness.port {port}: not a port the container declares: no readiness probe (it could never pass)"
                    )
                }
                NoProbe::OwnAddress => {
                    "readiness: none added: its own probes check another address than the pod IP"
                        .to_owned()
                }
            });
        }
    }
    if p.action != Action::None && p.serving_only && !serves_traffic(c, p) {
        out.push(format!(
            "preStop.action {}: no drain: the container declares no port, so it serves no traffic (servingOnly: true)",
            p.action.kind().as_str()
        ));
    }
    if let Some(hook) = c.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref())
        && (p.existing == ExistingHook::Keep || p.action == Action::None)
        && let Some(w) = warnings::hook_needs_shell(hook, c.image.as_deref().unwrap_or_default())
    {
        out.push(format!("preStop (its own, kept): {w}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::EffectivePolicy;
    use crate::policy::parse::{Origin, load_layer};

    fn policy_of(yaml: &str, c: &Container) -> ContainerPolicy {
        let layer = load_layer(yaml, Origin::hashed("ns", yaml)).unwrap();
        let eff = EffectivePolicy::new(None, Some(&layer));
        (*eff
            .resolve(None, &c.name, c.image.as_deref().unwrap_or_default(), None)
            .unwrap()
            .policy)
            .clone()
    }

    fn container(json: serde_json::Value) -> Container {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn readiness_on_a_port_the_container_does_not_declare_is_said() {
        let c = container(serde_json::json!({"name": "app", "image": "shop:1",
            "ports": [{"containerPort": 8080}]}));
        let p = policy_of("readiness: {port: 9090}", &c);
        assert_eq!(
            reasons(&c, &p),
            [
                "readiness.port 9090: not a port the container declares: no readiness probe (it could never pass)"
            ]
        );
    }

    #[test]
    fn a_container_that_serves_no_traffic_gets_no_drain_and_says_so() {
        let c = container(serde_json::json!({"name": "worker", "image": "worker:1"}));
        let r = reasons(&c, &policy_of("preStop: {sleepSeconds: 20}", &c));
        assert!(
            r.iter()
                .any(|l| l
                    .starts_with("preStop.action sleep: no drain: the container declares no port")),
            "{r:?}"
        );
    }

    #[test]
    fn a_kept_shell_hook_in_a_shell_less_image_is_said() {
        let c = container(serde_json::json!({"name": "ledger",
            "image": "gcr.io/distroless/java21-debian12", "ports": [{"containerPort": 8080}],
            "readinessProbe": {"tcpSocket": {"port": 8080}},
            "lifecycle": {"preStop": {"exec": {"command": ["/bin/sh", "-c", "sleep 20"]}}}}));
        let r = reasons(&c, &policy_of("bufferSeconds: 5", &c));
        assert!(
            r.iter().any(|l| l.starts_with(
                "preStop (its own, kept): its preStop runs sh, which this image may lack"
            )),
            "{r:?}"
        );
    }
}
