//! The traps of a pod (template) that lose requests on a rollout, found with the engine's own
//! checks: the grace period arithmetic (`engine::grace`, `engine::hook_estimate`), PID 1
//! (`engine::warnings`), probes, graceful start (`engine::startup`: liveness restarting the app
//! before its declared start time, readiness identical to liveness), nginx, registry clients
//! without deregistration, and a preStop that needs a shell in an image that may have none. Run on the pod as it is ("today") and on
//! the pod as podgrace would create it ("after"). Pure.

use k8s_openapi::api::core::v1::{Container, LifecycleHandler};
use serde::Serialize;

use crate::engine::grace::{self, Budget, Decision, HookKind};
use crate::engine::warnings::{self, Trap};
use crate::engine::{PodView, hook_estimate, serves_traffic, startup};
use crate::policy::EffectivePolicy;
use crate::policy::annotations;
use crate::policy::spec::GraceMode;

/// A kind of trap. The JSON names (`grace-short`, …) are part of the audit's stable schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    /// The grace period is shorter than preStop + shutdown + buffer: SIGKILL mid-shutdown.
    GraceShort,
    /// A shell is PID 1 and does not pass SIGTERM on.
    ShellPid1,
    /// PID 1 has no SIGTERM handler: every stop waits out the grace period, then SIGKILL.
    IgnoresSigterm,
    /// A container that serves traffic has no readiness probe.
    NoReadiness,
    /// A liveness probe and no readiness probe.
    LivenessWithoutReadiness,
    /// The liveness probe restarts the container before the start time its policy declares
    /// (`startup.maxSeconds`), and it has no startupProbe.
    LivenessBeforeStart,
    /// The readiness probe is the liveness probe's check (not over TCP): a failing dependency
    /// restarts every pod instead of taking it out of the endpoints.
    ReadinessIsLiveness,
    /// nginx stopped by SIGTERM, which drops requests.
    NginxWithoutQuit,
    /// A service-registry client (Nacos, Eureka, Consul) and no deregistration in preStop.
    RegistryWithoutDeregistration,
    /// The preStop hook runs a shell in an image that commonly has none.
    PrestopNeedsShell,
}

impl FindingKind {
    /// Every kind, in report order.
    pub const ALL: [FindingKind; 10] = [
        FindingKind::GraceShort,
        FindingKind::ShellPid1,
        FindingKind::IgnoresSigterm,
        FindingKind::NoReadiness,
        FindingKind::LivenessWithoutReadiness,
        FindingKind::LivenessBeforeStart,
        FindingKind::ReadinessIsLiveness,
        FindingKind::NginxWithoutQuit,
        FindingKind::RegistryWithoutDeregistration,
        FindingKind::PrestopNeedsShell,
    ];

    /// The name used in the table, markdown and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::GraceShort => "grace-short",
            FindingKind::ShellPid1 => "shell-pid1",
            FindingKind::IgnoresSigterm => "ignores-sigterm",
            FindingKind::NoReadiness => "no-readiness",
            FindingKind::LivenessWithoutReadiness => "liveness-without-readiness",
            FindingKind::LivenessBeforeStart => "liveness-before-start",
            FindingKind::ReadinessIsLiveness => "readiness-is-liveness",
            FindingKind::NginxWithoutQuit => "nginx-without-quit",
            FindingKind::RegistryWithoutDeregistration => "registry-without-deregistration",
            FindingKind::PrestopNeedsShell => "prestop-needs-shell",
        }
    }
}

impl From<Trap> for FindingKind {
    fn from(t: Trap) -> Self {
        match t {
            Trap::IgnoresSigterm => FindingKind::IgnoresSigterm,
            Trap::ShellPid1 => FindingKind::ShellPid1,
            Trap::LivenessWithoutReadiness => FindingKind::LivenessWithoutReadiness,
            Trap::NginxWithoutQuit => FindingKind::NginxWithoutQuit,
            Trap::PrestopNeedsShell => FindingKind::PrestopNeedsShell,
        }
    }
}

/// One trap of one workload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What kind.
    pub kind: FindingKind,
    /// The container it concerns (`null` for the pod's grace period when no container leads).
    pub container: Option<String>,
    /// What is wrong, with the arithmetic for `grace-short`.
    pub message: String,
}

/// The traps of `pod` as it is, without podgrace. The grace period counts the containers that
/// have a preStop hook today (hook + shutdown + buffer, as the engine counts a kept hook): a
/// container without a hook gets SIGTERM at once and the whole grace period to stop.
pub fn today(pod: &PodView, policy: &EffectivePolicy) -> Vec<Finding> {
    let mut out = containers(pod, policy);
    let Some(spec) = &pod.spec else { return out };
    let overrides = annotations::read(pod.labels(), pod.annotations());
    let budgets: Vec<Budget> = selected(pod, policy)
        .filter_map(|c| {
            let hook = pre_stop(c)?;
            let p = policy
                .resolve(
                    pod.labels(),
                    &c.name,
                    c.image.as_deref().unwrap_or_default(),
                    overrides.layer(),
                )
                .ok()?
                .policy;
            let e = hook_estimate::estimate(hook, p.unknown_hook, overrides.prestop_seconds);
            Some(Budget {
                container: c.name.clone(),
                pre_stop: e.seconds,
                hook: HookKind::Kept(e.source),
                shutdown: p.shutdown,
                buffer: p.buffer,
            })
        })
        .collect();
    let decision = grace::decide(
        spec.termination_grace_period_seconds,
        &budgets,
        Vec::new(),
        GraceMode::Keep,
    );
    out.extend(grace_short(&decision));
    out
}

/// The traps of `mutated` (the pod as podgrace would create it), with the grace period as the
/// engine decided it (`decision`, from its record).
pub fn after(
    mutated: &PodView,
    policy: &EffectivePolicy,
    decision: Option<&Decision>,
) -> Vec<Finding> {
    let mut out = containers(mutated, policy);
    out.extend(decision.and_then(grace_short));
    out
}

/// The grace trap of a decision: the pod's grace period (as it will be) below what it needs.
fn grace_short(decision: &Decision) -> Option<Finding> {
    let needed = decision.needed()?;
    let effective = decision.effective();
    (needed > effective).then(|| Finding {
        kind: FindingKind::GraceShort,
        container: decision.lead().map(str::to_owned),
        message: format!(
            "terminationGracePeriodSeconds {effective} < {needed} needed: {}",
            decision.arithmetic().unwrap_or_default()
        ),
    })
}

/// The main containers podgrace would look at (a service-mesh proxy it leaves alone is not the
/// workload's trap).
fn selected<'a>(
    pod: &'a PodView,
    policy: &'a EffectivePolicy,
) -> impl Iterator<Item = &'a Container> + 'a {
    pod.spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .filter(|c| policy.selects(&c.name))
}

fn pre_stop(c: &Container) -> Option<&LifecycleHandler> {
    c.lifecycle.as_ref()?.pre_stop.as_ref()
}

/// The per-container traps.
fn containers(pod: &PodView, policy: &EffectivePolicy) -> Vec<Finding> {
    let overrides = annotations::read(pod.labels(), pod.annotations());
    let mut out = Vec::new();
    for c in selected(pod, policy) {
        let mut push = |kind: FindingKind, message: String| {
            out.push(Finding {
                kind,
                container: Some(c.name.clone()),
                message,
            })
        };
        let hook = pre_stop(c);
        let has_readiness = c.readiness_probe.is_some();
        let pid1 = pod.spec.as_ref().is_none_or(|s| s.containers_are_pid1());
        for (trap, message) in warnings::container_traps(c, hook, has_readiness, pid1) {
            push(trap.into(), message);
        }
        let image = c.image.as_deref().unwrap_or_default();
        let resolved = policy
            .resolve(pod.labels(), &c.name, image, overrides.layer())
            .ok();
        let serving = match &resolved {
            Some(r) => serves_traffic(c, &r.policy),
            None => c.ports.as_ref().is_some_and(|p| !p.is_empty()),
        };
        if let Some(r) = &resolved {
            // The webhook's own decision; on the pod podgrace would create, a startupProbe it
            // added makes it `OwnStartupProbe` and the trap is gone. Main containers only, never
            // a native sidecar.
            let start = startup::decide(c, &r.policy, false);
            if let Some(message) = startup::restarted_before_start(&start) {
                push(FindingKind::LivenessBeforeStart, message);
            }
            // Today, only a readiness probe of the container's own counts (the engine's check
            // would also compare the one podgrace injects); after, podgrace's is its own.
            if has_readiness && startup::readiness_is_liveness(c, &r.policy) {
                push(
                    FindingKind::ReadinessIsLiveness,
                    startup::IDENTICAL.to_owned(),
                );
            }
        }
        // With a liveness probe, `liveness-without-readiness` already says it.
        if serving && !has_readiness && c.liveness_probe.is_none() {
            push(
                FindingKind::NoReadiness,
                "serves traffic without a readiness probe: new pods get requests before they are ready"
                    .to_owned(),
            );
        }
        if let Some(client) = registry_client(pod, c)
            && !hook.is_some_and(deregisters)
        {
            push(
                FindingKind::RegistryWithoutDeregistration,
                format!(
                    "{client} client and no deregistration in preStop: callers keep sending to a stopping pod"
                ),
            );
        }
    }
    out
}

/// The service registry a container registers with, from what its configuration names: the
/// environment (Spring Cloud's relaxed binding `SPRING_CLOUD_NACOS_DISCOVERY_SERVER_ADDR`,
/// `NACOS_SERVER_ADDR`, `EUREKA_CLIENT_SERVICEURL_DEFAULTZONE`, `CONSUL_HTTP_ADDR`, …), its
/// ConfigMaps and Secrets (`envFrom`), system properties on the command line
/// (`-Dspring.cloud.nacos.discovery.server-addr=…`) and the pod's labels; never for the
/// registry's own image.
pub fn registry_client(pod: &PodView, c: &Container) -> Option<&'static str> {
    const REGISTRIES: [(&str, &str); 3] = [
        ("nacos", "Nacos"),
        ("eureka", "Eureka"),
        ("consul", "Consul"),
    ];
    let mut words: Vec<String> = Vec::new();
    for e in c.env.iter().flatten() {
        words.push(e.name.to_ascii_lowercase());
    }
    for source in c.env_from.iter().flatten() {
        let name = source
            .config_map_ref
            .as_ref()
            .map(|r| r.name.as_str())
            .or(source.secret_ref.as_ref().map(|r| r.name.as_str()));
        words.extend(name.map(str::to_ascii_lowercase));
    }
    for arg in c.command.iter().chain(c.args.iter()).flatten() {
        words.push(arg.to_ascii_lowercase());
    }
    for (k, v) in pod.labels().into_iter().flatten() {
        words.push(k.to_ascii_lowercase());
        words.push(v.to_ascii_lowercase());
    }
    // The registry's own server (`nacos/nacos-server`, `consul`) is no client of itself.
    let image = c.image.as_deref().unwrap_or_default().to_ascii_lowercase();
    REGISTRIES
        .iter()
        .filter(|(marker, _)| !image.contains(marker))
        .find(|(marker, _)| words.iter().any(|w| w.contains(marker)))
        .map(|(_, name)| *name)
}

/// Whether a preStop hook deregisters: it calls a registry's API (podgrace's own Nacos hook
/// does, by URL path), runs `podgrace prestop --deregister`, or hits Spring Cloud's
/// `service-registry` actuator endpoint.
fn deregisters(h: &LifecycleHandler) -> bool {
    let mut text = String::new();
    if let Some(argv) = h.exec.as_ref().and_then(|e| e.command.as_ref()) {
        text = argv.join(" ");
    }
    if let Some(get) = &h.http_get {
        text.push_str(get.path.as_deref().unwrap_or_default());
    }
    let text = text.to_ascii_lowercase();
    [
        "deregister",
        "/nacos/",
        "nacos",
        "eureka",
        "consul",
        "service-registry",
    ]
    .iter()
    .any(|m| text.contains(m))
}
