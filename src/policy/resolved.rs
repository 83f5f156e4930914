//! The policy for one container after every layer, rule and annotation has been applied: plain
//! values, no `Option`s left to interpret. This is what the engine reads.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::defaults;
use super::error::FieldError;
use super::spec::*;

/// The resolved policy of one container.
#[derive(Clone, Debug, PartialEq)]
pub struct ContainerPolicy {
    /// The preStop action with its parameters.
    pub action: Action,
    /// Drain sleep, in seconds (the fixed drain).
    pub sleep: u32,
    /// How the drain's length is decided.
    pub drain: Drain,
    /// How sleeps are written.
    pub sleep_handler: SleepHandler,
    /// What to do with a user's own preStop hook.
    pub existing: ExistingHook,
    /// Whether the hook runs through the injected helper binary.
    pub helper: HelperMode,
    /// How the `nginx` action stops nginx.
    pub nginx_stop: NginxStop,
    /// Seconds counted for a kept hook whose duration cannot be read.
    pub unknown_hook: u32,
    /// Only containers that serve traffic get a drain and raise the grace period.
    pub serving_only: bool,
    /// Application shutdown allowance, in seconds.
    pub shutdown: u32,
    /// Safety margin, in seconds.
    pub buffer: u32,
    /// Name of the pod-IP variable, if one is injected.
    pub pod_ip_env: Option<String>,
    /// Further downward-API variables.
    pub extra_env: Vec<FieldEnv>,
    /// The readiness probe to add where missing, if any.
    pub readiness: Option<Readiness>,
    /// The declared start time and what to do about it; `None` when no start time is declared.
    pub startup: Option<Startup>,
    /// Framework presets.
    pub presets: Vec<Preset>,
}

/// How long the drain lasts.
#[derive(Clone, Debug, PartialEq)]
pub enum Drain {
    /// [`ContainerPolicy::sleep`] seconds.
    Fixed,
    /// Until the pod's traffic stops.
    Adaptive(AdaptiveDrain),
}

/// An adaptive drain's bounds and what it ignores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdaptiveDrain {
    /// Never shorter, in seconds (at most `max`).
    pub min: u32,
    /// Ends this long after the last traffic.
    pub quiet: u32,
    /// Never longer: what the grace period counts.
    pub max: u32,
    /// What keeps it going.
    pub traffic: DrainTraffic,
    /// Ports (numbers or names) whose traffic never counts.
    pub ignore_ports: Vec<IntOrString>,
}

impl ContainerPolicy {
    /// The drain's length as the grace period counts it: the sleep, or the adaptive ceiling.
    pub fn drain_seconds(&self) -> u32 {
        match &self.drain {
            Drain::Fixed => self.sleep,
            Drain::Adaptive(a) => a.max,
        }
    }

    /// This policy with a fixed drain of `seconds` (an adaptive drain that cannot run, or cut
    /// to fit a grace period).
    pub fn with_fixed_drain(&self, seconds: u32) -> ContainerPolicy {
        ContainerPolicy {
            sleep: seconds,
            drain: Drain::Fixed,
            ..self.clone()
        }
    }
}

/// A preStop action with everything it needs.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Sleep [`ContainerPolicy::sleep`] seconds.
    Sleep,
    /// Run a command.
    Exec {
        /// argv.
        command: Vec<String>,
        /// Declared duration, in seconds.
        duration: u32,
    },
    /// Drain, `nginx -s quit`, wait for the master to exit.
    Nginx,
    /// Deregister from Nacos, then drain.
    Nacos(NacosAction),
    /// No hook.
    None,
}

impl Action {
    /// The policy name of the action.
    pub fn kind(&self) -> ActionKind {
        match self {
            Action::Sleep => ActionKind::Sleep,
            Action::Exec { .. } => ActionKind::Exec,
            Action::Nginx => ActionKind::Nginx,
            Action::Nacos(_) => ActionKind::Nacos,
            Action::None => ActionKind::None,
        }
    }
}

/// Resolved Nacos parameters. Service name and port may still come from the pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NacosAction {
    /// Base URL without a trailing slash.
    pub server: String,
    /// API generation.
    pub api: NacosApi,
    /// Nacos namespace id, if not the public one.
    pub namespace_id: Option<String>,
    /// Group.
    pub group: String,
    /// Service name, when fixed by policy.
    pub service: Option<String>,
    /// Cluster.
    pub cluster: String,
    /// Port, when fixed by policy.
    pub port: Option<u16>,
    /// Ephemeral instance flag.
    pub ephemeral: bool,
    /// Bound on each HTTP call, in seconds.
    pub timeout: u32,
    /// Login credentials reference.
    pub auth: Option<NacosAuth>,
}

impl NacosAction {
    /// Worst-case time of the deregistration calls: login (when configured) plus the update.
    pub fn deregistration_seconds(&self) -> u32 {
        let calls = if self.auth.is_some() { 2 } else { 1 };
        calls * self.timeout
    }
}

/// Where the Nacos user name and password are read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NacosAuth {
    /// Secret name in the pod's namespace.
    pub secret: String,
    /// Key of the user name.
    pub username_key: String,
    /// Key of the password.
    pub password_key: String,
}

/// A readiness probe to inject.
#[derive(Clone, Debug, PartialEq)]
pub struct Readiness {
    /// HTTP GET of `path`, or TCP connect.
    pub handler: ProbeHandler,
    /// Path for HTTP.
    pub path: Option<String>,
    /// Port; the container's first TCP port when `None`.
    pub port: Option<IntOrString>,
    /// HTTP scheme.
    pub scheme: ProbeScheme,
    /// Timings.
    pub initial_delay: u32,
    /// See the Kubernetes Probe.
    pub period: u32,
    /// See the Kubernetes Probe.
    pub timeout: u32,
    /// See the Kubernetes Probe.
    pub failure_threshold: u32,
    /// See the Kubernetes Probe.
    pub success_threshold: u32,
}

/// Graceful start, with a declared start time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Startup {
    /// Add a startupProbe where a liveness probe has none (else only warn).
    pub inject: bool,
    /// The longest the app takes to start, in seconds (at least 1).
    pub max_seconds: u32,
    /// The startupProbe's period, when the policy fixes it (else the liveness probe's).
    pub period: Option<u32>,
    /// Whose check the startupProbe runs.
    pub handler: StartupHandler,
}

impl ContainerPolicy {
    /// Resolves a merged spec; fails when a chosen option lacks a required parameter.
    pub fn from_spec(spec: &PolicySpec) -> Result<Self, FieldError> {
        let ps = spec.pre_stop.clone().unwrap_or_default();
        let secs =
            |s: Option<super::seconds::Seconds>, d: super::seconds::Seconds| s.unwrap_or(d).get();
        let action = match ps.action.unwrap_or(ActionKind::Sleep) {
            ActionKind::Sleep => Action::Sleep,
            ActionKind::None => Action::None,
            ActionKind::Nginx => Action::Nginx,
            ActionKind::Exec => {
                let exec = ps.exec.clone().unwrap_or_default();
                let command = exec.command.filter(|c| !c.is_empty()).ok_or_else(|| {
                    FieldError::new(
                        "preStop.exec.command",
                        "required when preStop.action is exec",
                    )
                })?;
                // A command podgrace cannot time is counted as a user's hook it cannot read:
                // counting 0 s would have the kubelet SIGKILL it mid-run.
                Action::Exec {
                    command,
                    duration: exec.duration_seconds.map_or_else(
                        || secs(ps.unknown_hook_seconds, defaults::UNKNOWN_HOOK),
                        |d| d.get(),
                    ),
                }
            }
            ActionKind::Nacos => Action::Nacos(resolve_nacos(ps.nacos.as_ref())?),
        };
        let env = spec.env.clone().unwrap_or_default();
        let readiness = resolve_readiness(spec.readiness.as_ref())?;
        let startup = resolve_startup(spec.startup.as_ref())?;
        Ok(ContainerPolicy {
            action,
            sleep: secs(ps.sleep_seconds, defaults::SLEEP),
            drain: resolve_drain(ps.drain.as_ref())?,
            sleep_handler: ps.sleep_handler.unwrap_or(SleepHandler::Native),
            existing: ps.existing.unwrap_or(ExistingHook::Keep),
            helper: ps.helper.unwrap_or(HelperMode::None),
            nginx_stop: ps.nginx_stop.unwrap_or(NginxStop::Auto),
            unknown_hook: secs(ps.unknown_hook_seconds, defaults::UNKNOWN_HOOK),
            serving_only: spec.serving_only.unwrap_or(true),
            shutdown: secs(spec.shutdown_seconds, defaults::SHUTDOWN),
            buffer: secs(spec.buffer_seconds, defaults::BUFFER),
            pod_ip_env: match env.pod_ip {
                Some(name) if name.is_empty() => None,
                Some(name) => Some(name),
                None => Some(defaults::POD_IP_ENV.to_owned()),
            },
            extra_env: env.extra.unwrap_or_default(),
            readiness,
            startup,
            presets: spec.presets.clone().unwrap_or_default(),
        })
    }
}

fn resolve_drain(spec: Option<&DrainSpec>) -> Result<Drain, FieldError> {
    let Some(d) = spec else {
        return Ok(Drain::Fixed);
    };
    if d.mode != Some(DrainMode::Adaptive) {
        return Ok(Drain::Fixed);
    }
    let secs = |s: Option<super::seconds::Seconds>, default: super::seconds::Seconds| {
        s.unwrap_or(default).get()
    };
    let (min, quiet, max) = (
        secs(d.min_seconds, defaults::DRAIN_MIN),
        secs(d.quiet_seconds, defaults::DRAIN_QUIET),
        secs(d.max_seconds, defaults::DRAIN_MAX),
    );
    if max == 0 {
        return Err(FieldError::new(
            "preStop.drain.maxSeconds",
            "must be at least 1 for an adaptive drain (mode: fixed with sleepSeconds: 0 adds none)",
        ));
    }
    if quiet == 0 {
        return Err(FieldError::new(
            "preStop.drain.quietSeconds",
            "must be at least 1: the drain ends this long after the last request",
        ));
    }
    if min > max {
        return Err(FieldError::new(
            "preStop.drain.minSeconds",
            format!("{min} is more than maxSeconds {max}"),
        ));
    }
    Ok(Drain::Adaptive(AdaptiveDrain {
        min,
        quiet,
        max,
        traffic: d.traffic.unwrap_or(DrainTraffic::All),
        ignore_ports: d.ignore_ports.clone().unwrap_or_else(|| {
            defaults::DRAIN_IGNORED_PORTS
                .iter()
                .map(|p| IntOrString::String(p.to_string()))
                .collect()
        }),
    }))
}

fn resolve_nacos(spec: Option<&NacosSpec>) -> Result<NacosAction, FieldError> {
    let spec = spec.cloned().unwrap_or_default();
    let server = spec.server.ok_or_else(|| {
        FieldError::new(
            "preStop.nacos.server",
            "required when preStop.action is nacos",
        )
    })?;
    let auth = match spec.auth {
        Some(auth) => {
            let secret = auth.secret_name.ok_or_else(|| {
                FieldError::new(
                    "preStop.nacos.auth.secretName",
                    "required when preStop.nacos.auth is set",
                )
            })?;
            Some(NacosAuth {
                secret,
                username_key: auth
                    .username_key
                    .unwrap_or_else(|| defaults::NACOS_USERNAME_KEY.to_owned()),
                password_key: auth
                    .password_key
                    .unwrap_or_else(|| defaults::NACOS_PASSWORD_KEY.to_owned()),
            })
        }
        None => None,
    };
    Ok(NacosAction {
        server: server.trim_end_matches('/').to_owned(),
        api: spec.api_version.unwrap_or(NacosApi::V1),
        namespace_id: spec.namespace_id,
        group: spec
            .group_name
            .unwrap_or_else(|| defaults::NACOS_GROUP.to_owned()),
        service: spec.service_name,
        cluster: spec
            .cluster_name
            .unwrap_or_else(|| defaults::NACOS_CLUSTER.to_owned()),
        port: spec.port,
        ephemeral: spec.ephemeral.unwrap_or(true),
        timeout: spec
            .timeout_seconds
            .unwrap_or(defaults::NACOS_TIMEOUT)
            .get(),
        auth,
    })
}

fn resolve_readiness(spec: Option<&ReadinessSpec>) -> Result<Option<Readiness>, FieldError> {
    let Some(r) = spec else { return Ok(None) };
    if r.inject != Some(true) {
        return Ok(None);
    }
    let handler = r.handler.unwrap_or(ProbeHandler::Tcp);
    if handler == ProbeHandler::Http && r.path.is_none() {
        return Err(FieldError::new(
            "readiness.path",
            "required when readiness.handler is http (a guessed path would keep pods unready)",
        ));
    }
    Ok(Some(Readiness {
        handler,
        path: r.path.clone(),
        port: r.port.clone(),
        scheme: r.scheme.unwrap_or(ProbeScheme::Http),
        initial_delay: r.initial_delay_seconds.map_or(0, |s| s.get()),
        period: r.period_seconds.unwrap_or(defaults::PROBE_PERIOD).get(),
        timeout: r.timeout_seconds.unwrap_or(defaults::PROBE_TIMEOUT).get(),
        failure_threshold: r
            .failure_threshold
            .unwrap_or(defaults::PROBE_FAILURE_THRESHOLD),
        success_threshold: r
            .success_threshold
            .unwrap_or(defaults::PROBE_SUCCESS_THRESHOLD),
    }))
}

/// Declaring a start time opts in: `inject` unsaid in every layer follows `maxSeconds`, so
/// `startup: {maxSeconds: 120}` adds a startupProbe; only an explicit `inject: false` (in any
/// layer, the highest that says it wins) keeps it to a warning.
fn resolve_startup(spec: Option<&StartupSpec>) -> Result<Option<Startup>, FieldError> {
    let Some(s) = spec else { return Ok(None) };
    let inject = s.inject.unwrap_or(s.max_seconds.is_some());
    let Some(max) = s.max_seconds else {
        return if inject {
            Err(FieldError::new(
                "startup.maxSeconds",
                "required when startup.inject is true (the startupProbe's failureThreshold is derived from it)",
            ))
        } else {
            Ok(None)
        };
    };
    Ok(Some(Startup {
        inject,
        max_seconds: max.get(),
        period: s.period_seconds.map(|p| p.get()),
        handler: s.handler.unwrap_or(StartupHandler::Liveness),
    }))
}
