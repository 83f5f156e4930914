//! Readiness probes for containers that have none, so that a new pod joins Service endpoints only
//! once it accepts connections. Liveness is never injected: a wrong liveness probe restarts
//! healthy pods.

use k8s_openapi::api::core::v1::{Container, HTTPGetAction, Probe, TCPSocketAction};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::spring_property::{self, Setting};
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

/// Where the app serves the policy's HTTP path, as far as the container says.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Served {
    /// On the policy's port (nothing says otherwise).
    Here,
    /// On another port, with this scheme: the container's own probe of the same path base, or
    /// Spring Boot's management port.
    At(IntOrString, ProbeScheme),
    /// Not on the policy's port, and nowhere podgrace could probe it.
    Elsewhere,
}

/// The first segment of a URL path (`/actuator/health/readiness` → `actuator`).
fn path_base(path: &str) -> &str {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    path.trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default()
}

/// The number of the container's port `port` (a number, or a declared name).
pub fn port_number(c: &Container, port: &IntOrString) -> Option<i32> {
    match port {
        IntOrString::Int(n) => Some(*n),
        IntOrString::String(name) => c
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name))
            .map(|p| p.container_port),
    }
}

/// Spring Boot's management server port, when the container sets it (`management.server.port`,
/// Boot 1's `management.port`, in any spelling Spring reads): `Some(None)` when it is set to
/// something else than a port number (`-1` turns the HTTP endpoints off; a `$(VAR)` or a
/// variable from a ConfigMap cannot be read here).
fn management_port(c: &Container) -> Option<Option<i32>> {
    let setting = spring_property::find(c, "management.server.port")
        .or_else(|| spring_property::find(c, "management.port"))?;
    Some(match setting {
        Setting::Value(v) => v
            .trim()
            .parse::<i32>()
            .ok()
            .filter(|n| (1..=65535).contains(n)),
        Setting::From(_) => None,
    })
}

/// Where `c` serves the HTTP `path` that the policy would probe on port number `port`. The
/// container's own HTTP probes are the best evidence: one whose path has the same first segment
/// (`/actuator/health/liveness` for `/actuator/health/readiness`) checks the same server, so the
/// readiness probe goes where it goes. Spring Boot serves `/actuator` only on its management
/// port once one is set: a probe of the application port would never pass.
fn served(c: &Container, path: &str, port: i32) -> Served {
    let base = path_base(path);
    if base.is_empty() {
        return Served::Here;
    }
    let own = [&c.liveness_probe, &c.startup_probe, &c.readiness_probe]
        .into_iter()
        .flatten()
        .filter_map(|p| p.http_get.as_ref())
        .find(|get| path_base(get.path.as_deref().unwrap_or("/")) == base);
    if let Some(get) = own {
        if port_number(c, &get.port) == Some(port) {
            return Served::Here;
        }
        let scheme = match get.scheme.as_deref() {
            Some("HTTPS") => ProbeScheme::Https,
            _ => ProbeScheme::Http,
        };
        return Served::At(get.port.clone(), scheme);
    }
    if base != "actuator" {
        return Served::Here;
    }
    match management_port(c) {
        None => Served::Here,
        Some(Some(m)) if m == port => Served::Here,
        Some(Some(m)) => c
            .ports
            .iter()
            .flatten()
            .find(|p| p.container_port == m && p.protocol.as_deref().is_none_or(|x| x == "TCP"))
            .map_or(Served::Elsewhere, |p| {
                let port = p
                    .name
                    .clone()
                    .map_or(IntOrString::Int(m), IntOrString::String);
                // `server.ssl` applies to the management port too; its name may say so.
                let scheme = p.name.as_deref().and_then(named_scheme);
                Served::At(port, scheme.unwrap_or(ProbeScheme::Http))
            }),
        Some(None) => Served::Elsewhere,
    }
}

/// Builds the readiness probe for `c`: only on a TCP port the container itself declares, only
/// where its own probes do not name another address to check, and over HTTP only where the
/// port's name does not announce the other scheme (an `https` port gets a TCP probe instead,
/// which passes once the server listens). An HTTP check goes where the container serves its path
/// ([`served`]), or becomes a TCP check of the policy's port when that is nowhere podgrace can
/// probe.
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
    let mut port = match &r.port {
        Some(p) => p.clone(),
        None => IntOrString::Int(declared.container_port),
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
    let path = r.path.clone().unwrap_or_else(|| "/".to_owned());
    let http = match r.handler {
        ProbeHandler::Http if !scheme_clash => match served(c, &path, declared.container_port) {
            Served::Here => Some(r.scheme),
            Served::At(own, scheme) => {
                port = own;
                Some(scheme)
            }
            Served::Elsewhere => None,
        },
        ProbeHandler::Tcp | ProbeHandler::Http => None,
    };
    let port_text = match &port {
        IntOrString::Int(n) => n.to_string(),
        IntOrString::String(s) => s.clone(),
    };
    let label = match http {
        Some(scheme) => {
            let label = format!("http:{port_text}{path}");
            probe.http_get = Some(HTTPGetAction {
                path: Some(path),
                port,
                scheme: Some(scheme.as_str().to_owned()),
                ..Default::default()
            });
            label
        }
        None => {
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
    use k8s_openapi::api::core::v1::{ContainerPort, EnvVar};

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

    fn actuator_readiness() -> Readiness {
        let mut r = default_readiness();
        r.handler = ProbeHandler::Http;
        r.port = Some(IntOrString::String("http".into()));
        r.path = Some("/actuator/health/readiness".into());
        r
    }

    /// The container's own liveness `httpGet`, to change between cases.
    fn own_get(c: &mut Container) -> &mut HTTPGetAction {
        let probe = c.liveness_probe.as_mut().expect("a liveness probe");
        probe.http_get.as_mut().expect("an HTTP liveness probe")
    }

    fn http_get(probe: &Probe) -> (&IntOrString, Option<&str>) {
        let get = probe.http_get.as_ref().expect("an HTTP probe");
        (&get.port, get.scheme.as_deref())
    }

    /// Spring Boot with `management.server.port` split off: the actuator answers on 8081 only,
    /// which the container's own liveness probe shows.
    #[test]
    fn an_http_check_goes_where_the_containers_own_probe_of_that_path_goes() {
        let mut c = container(&[(8080, Some("http"), None), (8081, Some("management"), None)]);
        c.liveness_probe = Some(Probe {
            http_get: Some(HTTPGetAction {
                path: Some("/actuator/health/liveness".into()),
                port: IntOrString::String("management".into()),
                ..Default::default()
            }),
            ..Default::default()
        });
        let (probe, label) = readiness(&c, &actuator_readiness()).unwrap();
        assert_eq!(label, "http:management/actuator/health/readiness");
        assert_eq!(
            http_get(&probe),
            (&IntOrString::String("management".into()), Some("HTTP"))
        );
        // Its scheme comes along, and a port by number as well.
        let get = own_get(&mut c);
        get.port = IntOrString::Int(8443);
        get.scheme = Some("HTTPS".into());
        let (probe, _) = readiness(&c, &actuator_readiness()).unwrap();
        assert_eq!(http_get(&probe), (&IntOrString::Int(8443), Some("HTTPS")));
        // Its own probe on the policy's port (by number): nothing moves.
        let get = own_get(&mut c);
        get.port = IntOrString::Int(8080);
        let (probe, _) = readiness(&c, &actuator_readiness()).unwrap();
        assert_eq!(
            http_get(&probe),
            (&IntOrString::String("http".into()), Some("HTTP"))
        );
        // Another path base is another server's business.
        let get = own_get(&mut c);
        get.port = IntOrString::Int(8081);
        get.path = Some("/healthz".into());
        let (probe, _) = readiness(&c, &actuator_readiness()).unwrap();
        assert_eq!(http_get(&probe).0, &IntOrString::String("http".into()));
    }

    #[test]
    fn the_actuator_is_probed_on_spring_boots_management_port() {
        let with_env = |name: &str, value: &str, ports: &[(i32, Option<&str>, Option<&str>)]| {
            let mut c = container(ports);
            c.env = Some(vec![EnvVar {
                name: name.into(),
                value: Some(value.into()),
                ..Default::default()
            }]);
            readiness(&c, &actuator_readiness()).unwrap()
        };
        let both = [(8080, Some("http"), None), (8081, Some("management"), None)];
        let (probe, label) = with_env("MANAGEMENT_SERVER_PORT", "8081", &both);
        assert_eq!(label, "http:management/actuator/health/readiness");
        assert_eq!(
            http_get(&probe).0,
            &IntOrString::String("management".into())
        );
        let (probe, _) = with_env(
            "JAVA_TOOL_OPTIONS",
            "-Xmx1g -Dmanagement.server.port=8081",
            &both,
        );
        assert_eq!(
            http_get(&probe).0,
            &IntOrString::String("management".into())
        );
        let tls = [(8443, Some("http"), None), (9443, Some("https-mgmt"), None)];
        let (probe, _) = with_env("MANAGEMENT_SERVER_PORT", "9443", &tls);
        assert_eq!(
            http_get(&probe),
            (&IntOrString::String("https-mgmt".into()), Some("HTTPS"))
        );
        let unnamed = [(8080, Some("http"), None), (9090, None, None)];
        let (probe, _) = with_env("MANAGEMENT_PORT", "9090", &unnamed);
        assert_eq!(http_get(&probe).0, &IntOrString::Int(9090));
        // The same port as the application's: nothing moves.
        let (probe, _) = with_env("MANAGEMENT_SERVER_PORT", "8080", &both);
        assert_eq!(http_get(&probe).0, &IntOrString::String("http".into()));
        // A port the container does not declare, the endpoints turned off (-1), a value podgrace
        // cannot read: the actuator is not on the application port, so a TCP check of it.
        let http = [(8080, Some("http"), None)];
        for value in ["9090", "-1", "$(MGMT_PORT)"] {
            let (probe, label) = with_env("MANAGEMENT_SERVER_PORT", value, &http);
            assert_eq!(label, "tcp:http", "{value}");
            assert!(probe.http_get.is_none());
        }
        // Only the actuator lives on the management port.
        let mut c = container(&both);
        c.args = Some(vec!["--management.server.port=8081".into()]);
        let (_, label) = readiness(&c, &actuator_readiness()).unwrap();
        assert_eq!(label, "http:management/actuator/health/readiness");
        let mut other = actuator_readiness();
        other.path = Some("/ready".into());
        let (_, label) = readiness(&c, &other).unwrap();
        assert_eq!(label, "http:http/ready");
    }
}
