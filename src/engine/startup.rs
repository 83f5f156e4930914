//! Graceful start ("优雅上线"): a new container must be neither restarted nor sent traffic before
//! it can serve. A liveness probe that fails while a slow app is still starting (a Spring Boot
//! service taking 60-90 s) restarts it in a loop; Kubernetes' answer is a startupProbe, which
//! holds liveness and readiness back until it passes. Given a declared start time
//! (`startup.maxSeconds`), this module decides, per container, whether its liveness probe
//! already waits that long, adds a startupProbe when it does not (only ever where the container
//! has none: a user's startupProbe is never replaced), and names the start-side traps it sees.
//!
//! Native sidecars get no startupProbe: the kubelet starts the containers after a sidecar only
//! once its startupProbe passed, so one would change the pod's start order (and deadlock a proxy
//! whose liveness check reaches the app behind it).

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::record::{ContainerRecord, Injection};
use super::{EngineError, Pass, Position, probes, to_json};
use crate::policy::ContainerPolicy;
use crate::policy::spec::StartupHandler;

/// Kubernetes' probe defaults (`SetDefaults_Probe`), for probes that leave them out.
const DEFAULT_PERIOD: i64 = 10;
const DEFAULT_FAILURE_THRESHOLD: i64 = 3;

/// How long a probe lets a container start before the kubelet gives up on it:
/// `initialDelaySeconds + failureThreshold × periodSeconds`, the arithmetic Kubernetes'
/// documentation gives for a startupProbe's allowance, applied to any probe.
pub fn allowance(p: &Probe) -> i64 {
    let field = |v: Option<i32>, default: i64| match v {
        // Zero is what the API server defaults (a negative value is invalid anyway).
        Some(v) if v > 0 => i64::from(v),
        _ => default,
    };
    let delay = i64::from(p.initial_delay_seconds.unwrap_or(0).max(0));
    delay
        + field(p.failure_threshold, DEFAULT_FAILURE_THRESHOLD)
            * field(p.period_seconds, DEFAULT_PERIOD)
}

/// Why a container whose liveness probe restarts it before its declared start time gets no
/// startupProbe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Uncovered {
    /// The policy only declares the start time (`startup.inject: false`).
    NotInjected,
    /// The liveness probe has no handler, or several (an invalid probe podgrace will not copy).
    NoSingleHandler,
    /// A native sidecar (see the module documentation).
    NativeSidecar,
}

/// What graceful start means for one container.
#[derive(Clone, Debug, PartialEq)]
pub enum Start {
    /// No liveness probe: nothing restarts the container while it starts.
    NoLiveness,
    /// The container has its own startupProbe, kept as it is.
    OwnStartupProbe,
    /// No start time is declared (`startup.maxSeconds`); liveness allows `allows` seconds.
    Undeclared {
        /// The liveness probe's allowance ([`allowance`]).
        allows: i64,
    },
    /// The liveness probe already waits the declared start time: a startupProbe would add
    /// nothing (it cannot shorten liveness' own initial delay).
    LivenessWaits {
        /// The liveness probe's allowance.
        allows: i64,
        /// The declared start time.
        max: u32,
    },
    /// podgrace adds this startupProbe.
    Add {
        /// The probe (boxed: a `Probe` is large, the other outcomes small).
        probe: Box<Probe>,
        /// How it checks, for the record: `http:8080/actuator/health/liveness`.
        check: String,
        /// The liveness probe's allowance, shorter than `max`.
        allows: i64,
        /// The declared start time.
        max: u32,
    },
    /// Liveness restarts the container before its declared start time and podgrace adds no
    /// startupProbe.
    Uncovered {
        /// The liveness probe's allowance.
        allows: i64,
        /// The declared start time.
        max: u32,
        /// Why nothing is added.
        why: Uncovered,
    },
}

/// Decides graceful start for container `c` under its resolved policy `p`.
pub fn decide(c: &Container, p: &ContainerPolicy, native_sidecar: bool) -> Start {
    let Some(liveness) = &c.liveness_probe else {
        return Start::NoLiveness;
    };
    if c.startup_probe.is_some() {
        return Start::OwnStartupProbe;
    }
    let allows = allowance(liveness);
    let Some(startup) = &p.startup else {
        return Start::Undeclared { allows };
    };
    let max = startup.max_seconds;
    let uncovered = |why| Start::Uncovered { allows, max, why };
    if allows >= i64::from(max) {
        return Start::LivenessWaits { allows, max };
    }
    if native_sidecar {
        return uncovered(Uncovered::NativeSidecar);
    }
    if !startup.inject {
        return uncovered(Uncovered::NotInjected);
    }
    // The readiness probe podgrace injects, when asked for and when there is one; else (and
    // by default) the liveness probe's own check. Not where the liveness probe checks a server
    // on another port (Keycloak's and Quarkus's management interfaces): the app's health is
    // served there, and a startupProbe of a check that cannot pass restarts the pod in a loop,
    // where a readiness probe only keeps it unready.
    let injected = (startup.handler == StartupHandler::Readiness)
        .then(|| probes::injected_readiness(c, p))
        .flatten()
        .filter(|(readiness, _)| !checks_another_port(c, liveness, readiness));
    let (source, check) = match injected {
        Some(readiness) => readiness,
        None => (liveness.clone(), describe(liveness)),
    };
    let Some(mut probe) = handler_only(&source) else {
        return uncovered(Uncovered::NoSingleHandler);
    };
    let period = startup.period.map_or_else(
        || positive(liveness.period_seconds, DEFAULT_PERIOD),
        i64::from,
    );
    // ceil(max / period) (at least 1, as max is): failureThreshold × periodSeconds covers the
    // declared start.
    let failures = (i64::from(max) + period - 1) / period;
    probe.period_seconds = Some(period as i32);
    probe.failure_threshold = Some(failures as i32);
    // The API server accepts nothing else on a startupProbe.
    probe.success_threshold = Some(1);
    probe.timeout_seconds = source.timeout_seconds.filter(|t| *t > 0);
    Start::Add {
        check: format!("{check},{failures}x{period}s"),
        probe: Box::new(probe),
        allows,
        max,
    }
}

/// `v` when positive, else `default` (what the API server fills in for 0 or nothing).
fn positive(v: Option<i32>, default: i64) -> i64 {
    v.filter(|v| *v > 0).map_or(default, i64::from)
}

/// A probe holding only `p`'s handler, when it has exactly one (of exec, httpGet, tcpSocket,
/// grpc): the API server rejects a probe with none or several.
fn handler_only(p: &Probe) -> Option<Probe> {
    let count = [
        p.exec.is_some(),
        p.http_get.is_some(),
        p.tcp_socket.is_some(),
        p.grpc.is_some(),
    ]
    .into_iter()
    .filter(|set| *set)
    .count();
    (count == 1).then(|| Probe {
        exec: p.exec.clone(),
        http_get: p.http_get.clone(),
        tcp_socket: p.tcp_socket.clone(),
        grpc: p.grpc.clone(),
        ..Default::default()
    })
}

/// A short description of a probe's check for the record (`http:8080/healthz`, `tcp:7800`,
/// `grpc:2379`, `exec:mysqladmin`), with nothing that could break the record's `; `-separated
/// format.
fn describe(p: &Probe) -> String {
    let port = |p: &IntOrString| match p {
        IntOrString::Int(n) => n.to_string(),
        IntOrString::String(s) => s.clone(),
    };
    let text = if let Some(h) = &p.http_get {
        format!("http:{}{}", port(&h.port), h.path.as_deref().unwrap_or("/"))
    } else if let Some(t) = &p.tcp_socket {
        format!("tcp:{}", port(&t.port))
    } else if let Some(g) = &p.grpc {
        format!("grpc:{}", g.port)
    } else {
        let program = p
            .exec
            .as_ref()
            .and_then(|e| e.command.as_ref())
            .and_then(|c| c.first())
            .map(|argv0| argv0.rsplit('/').next().unwrap_or(argv0))
            .unwrap_or_default();
        format!("exec:{program}")
    };
    text.chars()
        .map(|c| {
            if c.is_whitespace() || c == ';' {
                '_'
            } else {
                c
            }
        })
        .take(60)
        .collect()
}

/// Whether the container's readiness check (its own probe, or the one podgrace injects) is
/// the same check as its liveness probe. A check that can fail on a dependency (a database, a
/// downstream service) then restarts every pod when the dependency fails, instead of only
/// taking them out of the endpoints. A TCP connect fails on no dependency, so identical TCP
/// probes are not this trap.
pub fn readiness_is_liveness(c: &Container, p: &ContainerPolicy) -> bool {
    let Some(liveness) = c.liveness_probe.as_ref().and_then(handler_only) else {
        return false;
    };
    if liveness.tcp_socket.is_some() {
        return false;
    }
    let readiness = match &c.readiness_probe {
        Some(own) => handler_only(own),
        None => probes::injected_readiness(c, p).and_then(|(probe, _)| handler_only(&probe)),
    };
    readiness.is_some_and(|r| defaulted(r) == defaulted(liveness))
}

/// A handler with the API server's defaults filled in (`path: /`, `scheme: HTTP`), so that two
/// spellings of the same check compare equal.
fn defaulted(mut handler: Probe) -> Probe {
    if let Some(get) = &mut handler.http_get {
        get.path.get_or_insert_with(|| "/".to_owned());
        get.scheme.get_or_insert_with(|| "HTTP".to_owned());
    }
    handler
}

/// Whether `liveness` checks a server (HTTP, TCP, gRPC) on another port of `c` than `readiness`.
fn checks_another_port(c: &Container, liveness: &Probe, readiness: &Probe) -> bool {
    let port = |p: &Probe| {
        let port = p
            .http_get
            .as_ref()
            .map(|h| &h.port)
            .or(p.tcp_socket.as_ref().map(|t| &t.port))
            .cloned()
            .or(p.grpc.as_ref().map(|g| IntOrString::Int(g.port)))?;
        probes::port_number(c, &port)
    };
    match (port(liveness), port(readiness)) {
        (Some(live), Some(ready)) => live != ready,
        // A liveness port podgrace cannot resolve still names a server of its own.
        (None, Some(_)) => liveness.exec.is_none(),
        _ => false,
    }
}

/// What [`readiness_is_liveness`] means for the pod (a warning, an audit finding).
pub const IDENTICAL: &str =
    "readiness and liveness run the same check: what makes the pod unready restarts it";

/// The trap of a container as `start` found it, before podgrace adds anything: its liveness
/// probe restarts it before its declared start time (whether podgrace then adds a startupProbe
/// or not). `podgrace audit` reports it on the pod as it is and on the pod podgrace would
/// create (which has the startupProbe, and so no trap, when one was added).
pub fn restarted_before_start(start: &Start) -> Option<String> {
    match start {
        Start::Add { allows, max, .. } | Start::Uncovered { allows, max, .. } => Some(format!(
            "liveness restarts it after {allows}s, before its declared {max}s start"
        )),
        _ => None,
    }
}

/// The admission warnings for a decision (each to be prefixed with the container's name).
pub fn warnings(c: &Container, p: &ContainerPolicy, start: &Start) -> Vec<String> {
    let mut out = Vec::new();
    if let Start::Uncovered {
        why: why @ (Uncovered::NotInjected | Uncovered::NoSingleHandler),
        ..
    } = start
        && let Some(trap) = restarted_before_start(start)
    {
        let fix = if *why == Uncovered::NotInjected {
            "add a startupProbe"
        } else {
            "fix its liveness probe"
        };
        out.push(format!("{trap}: {fix}"));
    }
    if readiness_is_liveness(c, p) {
        out.push(IDENTICAL.to_owned());
    }
    out
}

/// The start-side findings for `podgrace mutate --explain`, one line each.
pub fn findings(c: &Container, p: &ContainerPolicy, native_sidecar: bool) -> Vec<String> {
    let start = decide(c, p, native_sidecar);
    let mut out = Vec::new();
    match &start {
        Start::NoLiveness => {}
        Start::OwnStartupProbe => out.push("its own startupProbe is kept".to_owned()),
        Start::Undeclared { allows } => out.push(format!(
            "liveness restarts it if it is not up after {allows}s; no start time declared (startup.maxSeconds)"
        )),
        Start::LivenessWaits { allows, max } => out.push(format!(
            "liveness waits {allows}s ≥ startup.maxSeconds {max}: no startupProbe needed"
        )),
        Start::Add {
            check, allows, max, ..
        } => out.push(format!(
            "startupProbe added: {check} ≥ startup.maxSeconds {max} (liveness alone allows {allows}s)"
        )),
        Start::Uncovered { allows, max, why } => {
            let why = match why {
                Uncovered::NotInjected => "startup.inject is false",
                Uncovered::NoSingleHandler => "its liveness probe has no single handler to copy",
                Uncovered::NativeSidecar => {
                    "a native sidecar's startupProbe would hold back the containers after it"
                }
            };
            out.push(format!(
                "liveness allows {allows}s < startup.maxSeconds {max}; no startupProbe: {why}"
            ));
        }
    }
    if readiness_is_liveness(c, p) {
        out.push(IDENTICAL.to_owned());
    }
    out
}

impl Pass<'_> {
    /// Graceful start for one container: its startupProbe when one is to be added, and the
    /// warnings about its start.
    pub(super) fn start(
        &mut self,
        position: Position,
        c: &Container,
        p: &ContainerPolicy,
        rec: &mut ContainerRecord,
    ) -> Result<(), EngineError> {
        let start = decide(c, p, matches!(position, Position::Sidecar(_)));
        for w in warnings(c, p, &start) {
            self.m
                .warnings
                .push(super::warnings::container(&c.name, &w));
        }
        if let Start::Add { probe, check, .. } = &start {
            let idx = position.index().to_string();
            self.b.set(
                ["spec", position.list(), idx.as_str(), "startupProbe"],
                to_json("startup probe", probe)?,
            );
            rec.items.push(format!("startup={check}"));
            self.m.record.injections.push(Injection::Startup);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::EffectivePolicy;
    use crate::policy::parse::{Origin, load_layer};

    fn policy(yaml: &str) -> ContainerPolicy {
        let layer = load_layer(yaml, Origin::hashed("ns", yaml)).unwrap();
        let eff = EffectivePolicy::new(None, Some(&layer));
        (*eff.resolve(None, "app", "app:1", None).unwrap().policy).clone()
    }

    fn container(json: serde_json::Value) -> Container {
        let mut c = json;
        c["name"] = "app".into();
        serde_json::from_value(c).unwrap()
    }

    const SPRING: &str = "startup: {inject: true, maxSeconds: 120}\n";

    #[test]
    fn a_liveness_probe_that_gives_up_early_gets_a_startup_probe_covering_the_start() {
        let c = container(serde_json::json!({
            "ports": [{"containerPort": 8080}],
            "livenessProbe": {"httpGet": {"path": "/actuator/health/liveness", "port": 8080},
                              "initialDelaySeconds": 30, "periodSeconds": 10, "timeoutSeconds": 3}
        }));
        let Start::Add {
            probe,
            check,
            allows,
            max,
        } = decide(&c, &policy(SPRING), false)
        else {
            panic!("no startupProbe");
        };
        assert_eq!((allows, max), (60, 120));
        assert_eq!(check, "http:8080/actuator/health/liveness,12x10s");
        assert_eq!(probe.http_get, c.liveness_probe.as_ref().unwrap().http_get);
        assert_eq!(
            (
                probe.period_seconds,
                probe.failure_threshold,
                probe.success_threshold,
                probe.timeout_seconds,
                probe.initial_delay_seconds
            ),
            (Some(10), Some(12), Some(1), Some(3), None)
        );
    }

    #[test]
    fn the_failure_threshold_rounds_up_and_the_policy_may_fix_the_period() {
        let c = container(serde_json::json!({"livenessProbe": {"tcpSocket": {"port": 7800}}}));
        let p = policy("startup: {inject: true, maxSeconds: 100, periodSeconds: 15}\n");
        let Start::Add { probe, check, .. } = decide(&c, &p, false) else {
            panic!("no startupProbe");
        };
        // 7 × 15 s = 105 s ≥ 100 s; 6 × 15 s would not be.
        assert_eq!(
            (probe.period_seconds, probe.failure_threshold),
            (Some(15), Some(7))
        );
        assert_eq!(check, "tcp:7800,7x15s");
        let p = policy("startup: {inject: true, maxSeconds: 5, periodSeconds: 30}\n");
        // allows 30 s (3 × 10 s) ≥ 5 s: nothing to add.
        assert_eq!(
            decide(&c, &p, false),
            Start::LivenessWaits { allows: 30, max: 5 }
        );
    }

    #[test]
    fn liveness_that_already_waits_the_start_time_gets_nothing() {
        // Seed 003: initialDelaySeconds 600, failureThreshold 3, periodSeconds 5.
        let c = container(serde_json::json!({
            "livenessProbe": {"tcpSocket": {"port": 7800}, "initialDelaySeconds": 600,
                              "periodSeconds": 5, "failureThreshold": 3}
        }));
        assert_eq!(
            decide(&c, &policy(SPRING), false),
            Start::LivenessWaits {
                allows: 615,
                max: 120
            }
        );
        assert!(warnings(&c, &policy(SPRING), &decide(&c, &policy(SPRING), false)).is_empty());
    }

    #[test]
    fn a_users_startup_probe_is_kept_and_no_start_time_means_nothing_to_do() {
        let own = container(serde_json::json!({
            "livenessProbe": {"tcpSocket": {"port": 8080}},
            "startupProbe": {"tcpSocket": {"port": 8080}, "failureThreshold": 3}
        }));
        assert_eq!(decide(&own, &policy(SPRING), false), Start::OwnStartupProbe);
        let plain = container(serde_json::json!({"livenessProbe": {"tcpSocket": {"port": 8080}}}));
        assert_eq!(
            decide(&plain, &policy(""), false),
            Start::Undeclared { allows: 30 }
        );
        assert_eq!(
            decide(&container(serde_json::json!({})), &policy(SPRING), false),
            Start::NoLiveness
        );
    }

    #[test]
    fn a_declared_start_time_without_injection_is_warned_about() {
        let c = container(
            serde_json::json!({"livenessProbe": {"exec": {"command": ["test", "-e", "/tmp/health"]},
                                             "initialDelaySeconds": 5, "periodSeconds": 10}}),
        );
        let p = policy("startup: {inject: false, maxSeconds: 90}\n");
        let start = decide(&c, &p, false);
        assert_eq!(
            start,
            Start::Uncovered {
                allows: 35,
                max: 90,
                why: Uncovered::NotInjected
            }
        );
        assert_eq!(
            warnings(&c, &p, &start),
            vec![
                "liveness restarts it after 35s, before its declared 90s start: add a startupProbe"
            ]
        );
    }

    #[test]
    fn native_sidecars_and_invalid_liveness_probes_get_no_startup_probe() {
        let c = container(serde_json::json!({"livenessProbe": {"tcpSocket": {"port": 15021}}}));
        let start = decide(&c, &policy(SPRING), true);
        assert_eq!(
            start,
            Start::Uncovered {
                allows: 30,
                max: 120,
                why: Uncovered::NativeSidecar
            }
        );
        assert!(warnings(&c, &policy(SPRING), &start).is_empty());
        for probe in [
            serde_json::json!({"periodSeconds": 5}),
            serde_json::json!({"tcpSocket": {"port": 1}, "exec": {"command": ["true"]}}),
        ] {
            let c = container(serde_json::json!({"livenessProbe": probe}));
            let start = decide(&c, &policy(SPRING), false);
            assert!(
                matches!(
                    start,
                    Start::Uncovered {
                        why: Uncovered::NoSingleHandler,
                        ..
                    }
                ),
                "{start:?}"
            );
            assert!(warnings(&c, &policy(SPRING), &start)[0].ends_with("fix its liveness probe"));
        }
    }

    #[test]
    fn the_readiness_handler_is_the_one_podgrace_injects_never_the_users() {
        let p = policy(
            "readiness: {handler: http, path: /actuator/health/readiness, timeoutSeconds: 2}\nstartup: {inject: true, maxSeconds: 120, handler: readiness}\n",
        );
        let bare = serde_json::json!({
            "ports": [{"containerPort": 8080, "name": "http"}],
            "livenessProbe": {"httpGet": {"path": "/actuator/health/liveness", "port": 8080}}
        });
        let Start::Add { probe, check, .. } = decide(&container(bare.clone()), &p, false) else {
            panic!("no startupProbe");
        };
        let get = probe.http_get.unwrap();
        assert_eq!(get.path.as_deref(), Some("/actuator/health/readiness"));
        assert_eq!(probe.timeout_seconds, Some(2));
        assert_eq!(check, "http:8080/actuator/health/readiness,12x10s");
        // A readiness probe of the user's own (which may check dependencies): liveness's check.
        let mut own = bare;
        own["readinessProbe"] = serde_json::json!({"httpGet": {"path": "/deps", "port": 8080}});
        let Start::Add { probe, .. } = decide(&container(own), &p, false) else {
            panic!("no startupProbe");
        };
        assert_eq!(
            probe.http_get.unwrap().path.as_deref(),
            Some("/actuator/health/liveness")
        );
    }

    /// Quarkus's (and Keycloak's) management interface: health on 9000, traffic on 8080. The
    /// policy's readiness check on 8080 would never pass; as a startupProbe it would restart the
    /// pod in a loop, so the liveness probe's own check starts it.
    #[test]
    fn the_readiness_handler_gives_way_where_liveness_checks_another_port() {
        let p = policy(
            "readiness: {handler: http, port: http, path: /actuator/health/readiness}\nstartup: {inject: true, maxSeconds: 120, handler: readiness}\n",
        );
        let quarkus = serde_json::json!({
            "ports": [{"containerPort": 8080, "name": "http"}, {"containerPort": 9000, "name": "management"}],
            "livenessProbe": {"httpGet": {"path": "/q/health/live", "port": "management", "scheme": "HTTPS"}}
        });
        let Start::Add { probe, check, .. } = decide(&container(quarkus.clone()), &p, false) else {
            panic!("no startupProbe");
        };
        assert_eq!(
            probe.http_get.unwrap().path.as_deref(),
            Some("/q/health/live"),
            "{check}"
        );
        // By number, and undeclared (Keycloak's 9000 without its metrics port): the same.
        let mut keycloak = quarkus;
        keycloak["ports"] = serde_json::json!([{"containerPort": 8080, "name": "http"}]);
        keycloak["livenessProbe"]["httpGet"]["port"] = serde_json::json!(9000);
        let Start::Add { probe, .. } = decide(&container(keycloak), &p, false) else {
            panic!("no startupProbe");
        };
        assert_eq!(probe.http_get.unwrap().port, IntOrString::Int(9000));
    }

    #[test]
    fn identical_readiness_and_liveness_checks_are_a_trap_except_over_tcp() {
        let p = policy("");
        let same = container(serde_json::json!({
            "livenessProbe": {"httpGet": {"path": "/actuator/health", "port": 8080}, "initialDelaySeconds": 60},
            "readinessProbe": {"httpGet": {"path": "/actuator/health", "port": 8080}, "initialDelaySeconds": 15}
        }));
        assert!(readiness_is_liveness(&same, &p));
        assert_eq!(
            findings(&same, &p, false).last().map(String::as_str),
            Some(IDENTICAL)
        );
        let tcp = container(serde_json::json!({
            "livenessProbe": {"tcpSocket": {"port": 6379}},
            "readinessProbe": {"tcpSocket": {"port": 6379}}
        }));
        assert!(!readiness_is_liveness(&tcp, &p));
        // Podgrace's own readiness probe counts: an HTTP policy path equal to liveness's.
        let injected = container(serde_json::json!({
            "ports": [{"containerPort": 8080}],
            "livenessProbe": {"httpGet": {"path": "/health", "port": 8080}}
        }));
        assert!(readiness_is_liveness(
            &injected,
            &policy("readiness: {handler: http, path: /health}\n")
        ));
        assert!(!readiness_is_liveness(&injected, &p));
        let root = container(serde_json::json!({
            "livenessProbe": {"httpGet": {"port": "http"}},
            "readinessProbe": {"httpGet": {"path": "/", "port": "http", "scheme": "HTTP"}}
        }));
        assert!(
            readiness_is_liveness(&root, &p),
            "the defaults are the same check"
        );
    }

    #[test]
    fn checks_are_described_without_separators_of_the_record() {
        let c = container(
            serde_json::json!({"livenessProbe": {"exec": {"command": ["/usr/bin/my probe;x", "-c"]}}}),
        );
        assert_eq!(
            describe(c.liveness_probe.as_ref().unwrap()),
            "exec:my_probe_x"
        );
        let g = container(serde_json::json!({"livenessProbe": {"grpc": {"port": 2379}}}));
        assert_eq!(describe(g.liveness_probe.as_ref().unwrap()), "grpc:2379");
    }

    #[test]
    fn the_allowance_uses_the_api_servers_defaults() {
        let probe = |v: serde_json::Value| -> Probe { serde_json::from_value(v).unwrap() };
        assert_eq!(allowance(&probe(serde_json::json!({}))), 30);
        assert_eq!(
            allowance(&probe(
                serde_json::json!({"initialDelaySeconds": 90, "periodSeconds": 5})
            )),
            105
        );
        assert_eq!(
            allowance(&probe(
                serde_json::json!({"periodSeconds": 0, "failureThreshold": 0})
            )),
            30
        );
    }
}
