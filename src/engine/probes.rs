//! Readiness probes for containers that have none, so that a new pod joins Service endpoints only
//! once it accepts connections. Liveness is never injected: a wrong liveness probe restarts
//! healthy pods.

use k8s_openapi::api::core::v1::{Container, HTTPGetAction, Probe, TCPSocketAction};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::policy::spec::{ProbeHandler, ProbeScheme};
use crate::policy::{ContainerPolicy, Readiness};

/// The container's first TCP port (protocol unset means TCP).
pub fn first_tcp_port(c: &Container) -> Option<i32> {
    c.ports
        .iter()
        .flatten()
        .find(|p| p.protocol.as_deref().is_none_or(|proto| proto == "TCP"))
        .map(|p| p.container_port)
}

/// Why no probe was built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoProbe {
    /// The container declares no TCP port: it serves nothing a probe could check.
    NoPort,
    /// The policy's port is not one the container declares (a sidecar next to the app, say):
    /// a probe there could never pass.
    NotOwned,
    /// The container's own probes check an address of their own (`host`): the app is not
    /// reachable at the pod IP, where a probe podgrace adds would look (node-local DNS on the
    /// host network listens on a link-local address only, and would never become ready).
    OwnAddress,
}

/// Whether one of the container's own probes names the address it checks: the app is not
/// reachable at the pod IP, so no probe podgrace adds (nor a warning asking for one) fits it.
pub fn checks_own_address(c: &Container) -> bool {
    let named = |host: Option<&String>| host.is_some_and(|h| !h.is_empty());
    [&c.liveness_probe, &c.readiness_probe, &c.startup_probe]
        .into_iter()
        .flatten()
        .any(|p| {
            named(p.http_get.as_ref().and_then(|h| h.host.as_ref()))
                || named(p.tcp_socket.as_ref().and_then(|t| t.host.as_ref()))
        })
}

/// The scheme a port's name announces (`https`, `https-web`, `web-https` → HTTPS; `http`,
/// `http-metrics` → HTTP), if any.
fn named_scheme(name: &str) -> Option<ProbeScheme> {
    let name = name.to_ascii_lowercase();
    let has = |word: &str| {
        name == word || name.starts_with(&format!("{word}-")) || name.ends_with(&format!("-{word}"))
    };
    if has("https") || has("tls") {
        Some(ProbeScheme::Https)
    } else if has("http") {
        Some(ProbeScheme::Http)
    } else {
        None
    }
}

/// Builds the readiness probe for `c`: only on a TCP port the container itself declares, only
/// where its own probes do not name another address to check, and over HTTP only where the
/// port's name does not announce the other scheme (an `https` port gets a TCP probe instead,
/// which passes once the server listens).
pub fn readiness(c: &Container, r: &Readiness) -> Result<(Probe, String), NoProbe> {
    let tcp_ports = || {
        c.ports
            .iter()
            .flatten()
            .filter(|p| p.protocol.as_deref().is_none_or(|proto| proto == "TCP"))
    };
    if tcp_ports().next().is_none() {
        return Err(NoProbe::NoPort);
    }
    if checks_own_address(c) {
        return Err(NoProbe::OwnAddress);
    }
    let declared = match &r.port {
        Some(IntOrString::String(name)) => tcp_ports().find(|p| p.name.as_deref() == Some(name)),
        Some(IntOrString::Int(n)) => tcp_ports().find(|p| p.container_port == *n),
        None => tcp_ports().next(),
    }
    .ok_or(NoProbe::NotOwned)?;
    let port = match &r.port {
        Some(p) => p.clone(),
        None => IntOrString::Int(declared.container_port),
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
    let scheme_clash = declared
        .name
        .as_deref()
        .and_then(named_scheme)
        .is_some_and(|s| s != r.scheme);
    let label = match r.handler {
        ProbeHandler::Http if !scheme_clash => {
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
        ProbeHandler::Tcp | ProbeHandler::Http => {
            probe.tcp_socket = Some(TCPSocketAction { host: None, port });
            format!("tcp:{port_text}")
        }
    };
    Ok((probe, label))
}

/// The readiness probe podgrace injects into `c` under `p` (with its record label): only where
/// the container has none and the policy asks for one that can pass.
pub fn injected_readiness(c: &Container, p: &ContainerPolicy) -> Option<(Probe, String)> {
    if c.readiness_probe.is_some() {
        return None;
    }
    readiness(c, p.readiness.as_ref()?).ok()
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
    fn probes_only_target_ports_the_container_declares() {
        let mut r = default_readiness();
        r.port = Some(IntOrString::String("admin".into()));
        let c = container(&[(8080, Some("http"), None)]);
        assert_eq!(readiness(&c, &r), Err(NoProbe::NotOwned));
        r.port = Some(IntOrString::Int(9115));
        assert_eq!(readiness(&c, &r), Err(NoProbe::NotOwned));
        let udp_only = container(&[(53, Some("dns"), Some("UDP"))]);
        assert_eq!(
            readiness(&udp_only, &default_readiness()),
            Err(NoProbe::NoPort)
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

    /// node-local-dns: host network, its own probes on a link-local address, port 53 declared
    /// but not listened on at the pod's (the node's) IP.
    #[test]
    fn no_probe_where_the_containers_own_probes_name_the_address() {
        let mut c = container(&[(53, Some("dns-tcp"), None), (8080, None, None)]);
        for own in [
            Probe {
                http_get: Some(HTTPGetAction {
                    host: Some("169.254.20.10".into()),
                    port: IntOrString::Int(8080),
                    ..Default::default()
                }),
                ..Default::default()
            },
            Probe {
                tcp_socket: Some(TCPSocketAction {
                    host: Some("127.0.0.1".into()),
                    port: IntOrString::Int(53),
                }),
                ..Default::default()
            },
        ] {
            c.liveness_probe = Some(own);
            assert_eq!(
                readiness(&c, &default_readiness()),
                Err(NoProbe::OwnAddress)
            );
        }
        // An empty host is the pod IP, as when it is absent.
        c.liveness_probe
            .as_mut()
            .unwrap()
            .tcp_socket
            .as_mut()
            .unwrap()
            .host = Some(String::new());
        assert!(readiness(&c, &default_readiness()).is_ok());
    }

    #[test]
    fn an_https_port_is_never_probed_over_http() {
        let mut r = default_readiness();
        r.handler = ProbeHandler::Http;
        r.path = Some("/ready".into());
        let c = container(&[(8443, Some("https"), None)]);
        let (probe, label) = readiness(&c, &r).unwrap();
        assert_eq!(label, "tcp:8443");
        assert!(probe.http_get.is_none());
        r.scheme = ProbeScheme::Https;
        let (probe, _) = readiness(&c, &r).unwrap();
        assert_eq!(probe.http_get.unwrap().scheme.as_deref(), Some("HTTPS"));
        let plain = container(&[(8080, Some("http-metrics"), None)]);
        assert!(readiness(&plain, &r).unwrap().0.http_get.is_none());
    }
}
