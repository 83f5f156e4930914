//! Readiness probes for containers that have none, so that a new pod joins Service endpoints only
//! once it accepts connections. Liveness is never injected: a wrong liveness probe restarts
//! healthy pods.

use k8s_openapi::api::core::v1::{Container, HTTPGetAction, Probe, TCPSocketAction};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::policy::Readiness;
use crate::policy::spec::ProbeHandler;

/// The container's first TCP port (protocol unset means TCP).
pub fn first_tcp_port(c: &Container) -> Option<i32> {
    c.ports
        .iter()
        .flatten()
        .find(|p| p.protocol.as_deref().is_none_or(|proto| proto == "TCP"))
        .map(|p| p.container_port)
}

/// Why no probe could be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoProbe {
    /// The container declares no TCP port and the policy names none.
    NoPort,
    /// The policy names a port the container does not declare.
    UnknownPortName(String),
}

/// Builds the readiness probe for `c`.
pub fn readiness(c: &Container, r: &Readiness) -> Result<(Probe, String), NoProbe> {
    let port = match &r.port {
        Some(IntOrString::String(name)) => {
            let declared = c
                .ports
                .iter()
                .flatten()
                .any(|p| p.name.as_deref() == Some(name));
            if !declared {
                return Err(NoProbe::UnknownPortName(name.clone()));
            }
            IntOrString::String(name.clone())
        }
        Some(port) => port.clone(),
        None => IntOrString::Int(first_tcp_port(c).ok_or(NoProbe::NoPort)?),
    };
    let port_text = match &port {
        IntOrString::Int(n) => n.to_string(),
        IntOrString::String(s) => s.clone(),
    };
    let mut probe = Probe {
        initial_delay_seconds: (r.initial_delay > 0).then_some(r.initial_delay as i32),
        period_seconds: Some(r.period as i32),
        timeout_seconds: Some(r.timeout as i32),
        failure_threshold: Some(r.failure_threshold as i32),
        success_threshold: Some(r.success_threshold as i32),
        ..Default::default()
    };
    let label = match r.handler {
        ProbeHandler::Tcp => {
            probe.tcp_socket = Some(TCPSocketAction { host: None, port });
            format!("tcp:{port_text}")
        }
        ProbeHandler::Http => {
            let path = r.path.clone().unwrap_or_else(|| "/".to_owned());
            let label = format!("http:{port_text}{path}");
            probe.http_get = Some(HTTPGetAction {
                path: Some(path),
                port,
                scheme: Some(r.scheme.as_str().to_owned()),
                ..Default::default()
            });
            label
        }
    };
    Ok((probe, label))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::EffectivePolicy;
    use k8s_openapi::api::core::v1::ContainerPort;

    fn container(ports: &[(i32, Option<&str>, Option<&str>)]) -> Container {
        Container {
            name: "app".into(),
            ports: Some(
                ports
                    .iter()
                    .map(|(n, name, proto)| ContainerPort {
                        container_port: *n,
                        name: name.map(str::to_owned),
                        protocol: proto.map(str::to_owned),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }
    }

    fn default_readiness() -> Readiness {
        EffectivePolicy::builtin()
            .resolve(None, "app", "app", None)
            .unwrap()
            .policy
            .readiness
            .clone()
            .unwrap()
    }

    #[test]
    fn tcp_probe_uses_the_first_tcp_port() {
        let c = container(&[(53, None, Some("UDP")), (8080, Some("http"), None)]);
        let (probe, label) = readiness(&c, &default_readiness()).unwrap();
        assert_eq!(probe.tcp_socket.unwrap().port, IntOrString::Int(8080));
        assert_eq!(label, "tcp:8080");
        assert_eq!(probe.period_seconds, Some(5));
    }

    #[test]
    fn no_port_means_no_probe() {
        assert_eq!(
            readiness(&container(&[]), &default_readiness()),
            Err(NoProbe::NoPort)
        );
    }

    #[test]
    fn named_ports_must_exist_on_the_container() {
        let mut r = default_readiness();
        r.port = Some(IntOrString::String("admin".into()));
        let c = container(&[(8080, Some("http"), None)]);
        assert_eq!(
            readiness(&c, &r),
            Err(NoProbe::UnknownPortName("admin".into()))
        );
        r.port = Some(IntOrString::String("http".into()));
        r.handler = ProbeHandler::Http;
        r.path = Some("/ready".into());
        let (probe, label) = readiness(&c, &r).unwrap();
        assert_eq!(label, "http:http/ready");
        let get = probe.http_get.unwrap();
        assert_eq!(get.path.as_deref(), Some("/ready"));
        assert_eq!(get.scheme.as_deref(), Some("HTTP"));
    }
}
