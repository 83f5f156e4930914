//! The policy file format: what operators write in the cluster default policy, in a namespace's
//! `podgrace-policy` ConfigMap and inside rules.
//!
//! Every field is optional because a policy is a *layer*: it only says what it changes. Unknown
//! fields are errors (`deny_unknown_fields`) so that a misspelt key is reported instead of being
//! silently ignored, and enums list their allowed values in the error.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::{Deserialize, Serialize};

use super::seconds::Seconds;

/// One policy layer (cluster default, namespace, or the `set` of a rule).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicySpec {
    /// What runs before SIGTERM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_stop: Option<PreStopSpec>,
    /// How long the application itself needs after SIGTERM (e.g. Spring Boot's
    /// `timeout-per-shutdown-phase`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shutdown_seconds: Option<Seconds>,
    /// Safety margin added to every container budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buffer_seconds: Option<Seconds>,
    /// Whether podgrace may raise `terminationGracePeriodSeconds` (it never lowers it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period: Option<GraceMode>,
    /// Downward-API environment variables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<EnvSpec>,
    /// Readiness probe injection for containers that have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness: Option<ReadinessSpec>,
    /// Graceful start: the app's declared start time and the startupProbe that holds its
    /// liveness probe back while it starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup: Option<StartupSpec>,
    /// Framework presets (environment variables that turn on graceful shutdown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presets: Option<Vec<Preset>>,
    /// Which containers podgrace touches at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub containers: Option<ContainerSelection>,
    /// Where the `podgrace prestop` helper binary comes from when `preStop.helper` is `inject`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helper_image: Option<HelperImageSpec>,
    /// Only containers that serve traffic (declare a port, or deregister from a registry) get a
    /// drain hook and a budget that raises the grace period (`true` by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving_only: Option<bool>,
    /// Native sidecars (`initContainers` with `restartPolicy: Always`): `skip` leaves them as
    /// they are (they outlive the app by design), `inject` treats them like containers. Their
    /// shutdown counts in the grace period either way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sidecars: Option<SidecarMode>,
    /// Overrides for containers matched by name, image or pod labels. Rules of all layers apply
    /// after all base settings, in order (cluster rules first), so the last match wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<Rule>>,
}

/// The `preStop` section.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PreStopSpec {
    /// The action: `sleep`, `exec`, `nginx`, `nacos` or `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<ActionKind>,
    /// Drain time: the whole hook for `sleep`, the wait before `nginx -s quit`, the wait after
    /// deregistration for `nacos`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sleep_seconds: Option<Seconds>,
    /// How a sleep is expressed: the native `sleep` handler, `exec` of `/bin/sh -c sleep`, or
    /// `auto` (native when the API server is known to support it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sleep_handler: Option<SleepHandler>,
    /// What to do when the container already has a preStop hook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub existing: Option<ExistingHook>,
    /// `inject` runs the hook with podgrace's own helper binary (no shell or curl needed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helper: Option<HelperMode>,
    /// How nginx is stopped gracefully by the `nginx` action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nginx_stop: Option<NginxStop>,
    /// Seconds counted for a kept user hook whose duration cannot be read from it (an opaque
    /// script, an `httpGet` or `tcpSocket` handler).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown_hook_seconds: Option<Seconds>,
    /// Parameters of the `exec` action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecSpec>,
    /// Parameters of the `nacos` action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nacos: Option<NacosSpec>,
    /// How long the drain lasts: `sleepSeconds` (`fixed`), or until the pod's traffic stops
    /// (`adaptive`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain: Option<DrainSpec>,
}

/// The drain: the wait before SIGTERM during which routers stop sending the pod traffic.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DrainSpec {
    /// `fixed`: sleep `preStop.sleepSeconds`. `adaptive`: podgrace's helper watches the pod's
    /// inbound traffic and ends the drain `quietSeconds` after it stops, between `minSeconds`
    /// and `maxSeconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<DrainMode>,
    /// Adaptive: never shorter (the time routers need at the least to stop sending).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_seconds: Option<Seconds>,
    /// Adaptive: ends this long after the last inbound traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_seconds: Option<Seconds>,
    /// Adaptive: never longer; the grace period counts this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_seconds: Option<Seconds>,
    /// Adaptive: what keeps the drain going: `all` (new connections and requests on open
    /// ones) or `newConnections`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic: Option<DrainTraffic>,
    /// Adaptive: ports (numbers or the container's port names) whose traffic never counts,
    /// such as metrics scrapes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_ports: Option<Vec<IntOrString>>,
}

/// How the drain's length is decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DrainMode {
    /// `preStop.sleepSeconds`.
    Fixed,
    /// Until the pod's inbound traffic has been quiet for `quietSeconds`.
    Adaptive,
}

impl DrainMode {
    /// The policy spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DrainMode::Fixed => "fixed",
            DrainMode::Adaptive => "adaptive",
        }
    }
}

/// What keeps an adaptive drain going.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DrainTraffic {
    /// New connections and requests on connections already open: clients that balance over
    /// their own instance list (Nacos, Ribbon, Spring Cloud LoadBalancer) reuse pooled
    /// connections, and their requests are the sign that they still route to the pod.
    All,
    /// New connections only; requests on open connections are left to the app's graceful
    /// shutdown, which closes them.
    NewConnections,
}

impl DrainTraffic {
    /// The policy spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DrainTraffic::All => "all",
            DrainTraffic::NewConnections => "newConnections",
        }
    }
}

/// The preStop actions podgrace knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionKind {
    /// Sleep for `sleepSeconds` so that routers stop sending traffic first.
    Sleep,
    /// Run a command given by the policy.
    Exec,
    /// `nginx -s quit` after the drain sleep, then wait for the master to exit.
    Nginx,
    /// Mark the instance `enabled=false` in Nacos, then sleep.
    Nacos,
    /// Add no hook.
    None,
}

impl ActionKind {
    /// The policy spelling of the action.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Sleep => "sleep",
            ActionKind::Exec => "exec",
            ActionKind::Nginx => "nginx",
            ActionKind::Nacos => "nacos",
            ActionKind::None => "none",
        }
    }
}

/// How a sleep is written into the pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SleepHandler {
    /// `lifecycle.preStop.sleep.seconds` (Kubernetes ≥ 1.30 with the feature on by default).
    Native,
    /// `exec: ["/bin/sh", "-c", "sleep N"]`: needs a shell in the image.
    Exec,
    /// Native when the API server version is unknown or ≥ 1.30, exec otherwise.
    Auto,
}

/// What happens to a preStop hook the user already wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExistingHook {
    /// Leave it alone and warn (two handlers in one hook make the pod invalid, so never merge).
    Keep,
    /// Replace it with podgrace's hook.
    Replace,
}

/// How the `nginx` action makes nginx stop gracefully.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NginxStop {
    /// `signal` for the official images (which declare `STOPSIGNAL SIGQUIT`), `quit` otherwise.
    Auto,
    /// Only the drain sleep: the image's own stop signal must be SIGQUIT (graceful). No shell,
    /// and no hook that nginx's exit could cut short.
    Signal,
    /// Drain, `nginx -s quit`, then wait for nginx to finish (needs a shell; the wait ends when
    /// nginx exits, which the kubelet may record as a failed hook).
    Quit,
}

impl NginxStop {
    /// The policy spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            NginxStop::Auto => "auto",
            NginxStop::Signal => "signal",
            NginxStop::Quit => "quit",
        }
    }
}

/// What podgrace does with native sidecars.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SidecarMode {
    /// Leave them as they are; only their shutdown is counted.
    Skip,
    /// Hooks, environment and probes as for the containers.
    Inject,
}

/// Whether the preStop runs through the injected `podgrace prestop` helper.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HelperMode {
    /// Use the native sleep handler or a shell command in the application image.
    None,
    /// Add an init container that copies the helper into a shared volume and call it.
    Inject,
}

/// Parameters of the `exec` action.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecSpec {
    /// The command, as an argv list (no shell unless you write one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// How long the command takes at most; counted in the grace period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<Seconds>,
}

/// Parameters of the `nacos` action.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NacosSpec {
    /// Base URL of the Nacos server, e.g. `http://nacos.nacos:8848`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// Which HTTP API generation the server speaks: `v1`, `v2` or `v3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<NacosApi>,
    /// Nacos namespace id (`public` when empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_id: Option<String>,
    /// Group name (`DEFAULT_GROUP` by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_name: Option<String>,
    /// Service name; defaults to the pod label `app.kubernetes.io/name`, then `app`, then the
    /// container name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// Cluster name (`DEFAULT` by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_name: Option<String>,
    /// Registered port; defaults to the container's first TCP port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Whether the instance is ephemeral (registered by a live client); `true` by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral: Option<bool>,
    /// Bound on each HTTP call (login, update), in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<Seconds>,
    /// Login credentials, read by the pod from a Secret (never copied into the pod spec).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<NacosAuthSpec>,
}

/// The Nacos HTTP API generation (the protocol's, used as the policy's field).
pub use crate::protocols::nacos::NacosApi;

/// Where the Nacos login comes from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NacosAuthSpec {
    /// Name of a Secret in the pod's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    /// Key of the user name in that Secret (`username` by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_key: Option<String>,
    /// Key of the password in that Secret (`password` by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_key: Option<String>,
}

/// Raise-only or hands-off handling of `terminationGracePeriodSeconds`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GraceMode {
    /// Raise to the largest container budget when that is longer; never lower.
    Raise,
    /// Never change it; only warn when it is too short.
    Keep,
}

/// Downward-API environment variables.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvSpec {
    /// Name of the variable set from `status.podIP`; empty to inject none (the `nacos` action
    /// still adds it because it needs the address).
    #[serde(rename = "podIP", default, skip_serializing_if = "Option::is_none")]
    pub pod_ip: Option<String>,
    /// Further downward-API variables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Vec<FieldEnv>>,
}

/// One environment variable from a pod field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FieldEnv {
    /// Variable name.
    pub name: String,
    /// Downward-API field path, e.g. `metadata.name`.
    pub field_path: String,
}

/// Readiness probe injection.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReadinessSpec {
    /// Add a readiness probe to containers that have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inject: Option<bool>,
    /// `tcp` (connect to the port) or `http` (GET `path`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handler: Option<ProbeHandler>,
    /// HTTP path; required for the `http` handler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Port number or name; defaults to the container's first TCP port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<IntOrString>,
    /// `HTTP` or `HTTPS` for the `http` handler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<ProbeScheme>,
    /// Probe timings, as in the Kubernetes Probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_delay_seconds: Option<Seconds>,
    /// See the Kubernetes Probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_seconds: Option<Seconds>,
    /// See the Kubernetes Probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<Seconds>,
    /// See the Kubernetes Probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_threshold: Option<u32>,
    /// See the Kubernetes Probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_threshold: Option<u32>,
}

/// Graceful start. A liveness probe that fails while a slow app is still starting (a Spring Boot
/// service taking 60-90 s) restarts it in a loop; a startupProbe holds liveness (and readiness)
/// back until the app is up, for at most the declared start time.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartupSpec {
    /// Add a startupProbe to containers that have a liveness probe and none (needs
    /// `maxSeconds`); when false, a liveness probe that would restart the app before
    /// `maxSeconds` is only warned about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inject: Option<bool>,
    /// The longest the app takes to start, in seconds: the startupProbe's `failureThreshold` ×
    /// `periodSeconds` covers it. Unset: no start time declared (nothing added, no warning).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_seconds: Option<Seconds>,
    /// The startupProbe's period; omitted: the liveness probe's (Kubernetes' default 10 s when
    /// it has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_seconds: Option<Seconds>,
    /// Whose check the startupProbe runs: the liveness probe's, or the readiness probe's that
    /// podgrace injects into the same container (the liveness probe's when it injects none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handler: Option<StartupHandler>,
}

/// The check a startupProbe runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartupHandler {
    /// The liveness probe's own handler: liveness takes over exactly when its check passes.
    Liveness,
    /// The readiness probe podgrace injects (never a user's own readiness probe, which may check
    /// dependencies: one that is down would restart a healthy app).
    Readiness,
}

impl StartupHandler {
    /// The policy spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            StartupHandler::Liveness => "liveness",
            StartupHandler::Readiness => "readiness",
        }
    }
}

/// Readiness probe handler.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProbeHandler {
    /// `tcpSocket`.
    Tcp,
    /// `httpGet`.
    Http,
}

/// HTTP probe scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProbeScheme {
    /// Plain HTTP.
    #[serde(rename = "HTTP")]
    Http,
    /// HTTPS without certificate verification (as the kubelet does).
    #[serde(rename = "HTTPS")]
    Https,
}

impl ProbeScheme {
    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeScheme::Http => "HTTP",
            ProbeScheme::Https => "HTTPS",
        }
    }
}

/// Framework presets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// `SERVER_SHUTDOWN=graceful` and the shutdown-phase timeout set to `shutdownSeconds`.
    SpringBoot,
}

impl Preset {
    /// The policy spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Preset::SpringBoot => "spring-boot",
        }
    }
}

/// Container selection by name (glob patterns with `*` and `?`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerSelection {
    /// Only these containers (all when empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include: Option<Vec<String>>,
    /// Never these containers (service-mesh proxies by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<Vec<String>>,
}

/// Image and pull policy of the helper init container.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HelperImageSpec {
    /// Image reference of podgrace itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// `Always`, `IfNotPresent` or `Never`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_policy: Option<PullPolicy>,
}

/// Kubernetes image pull policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PullPolicy {
    /// Always pull.
    Always,
    /// Pull when the node does not have it.
    IfNotPresent,
    /// Never pull.
    Never,
}

impl PullPolicy {
    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Always => "Always",
            PullPolicy::IfNotPresent => "IfNotPresent",
            PullPolicy::Never => "Never",
        }
    }
}

/// A rule: settings applied to the containers its `match` selects.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    /// Optional name, used in records and error messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What the rule selects; every given criterion must match.
    #[serde(rename = "match", default)]
    pub matcher: Match,
    /// The settings it applies (a policy without `rules`, `containers`, `gracePeriod` or
    /// `helperImage`).
    #[serde(default)]
    pub set: PolicySpec,
}

/// Rule selection criteria.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Match {
    /// Glob on the container name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    /// Glob on the image; a pattern without `/` is matched against the last path segment
    /// (`nginx*` matches `docker.io/library/nginx:1.27`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Pod labels that must all be present with these values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_labels: Option<BTreeMap<String, String>>,
}
