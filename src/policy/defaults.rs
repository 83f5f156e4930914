//! The built-in policy: the bottom layer under the cluster default and namespace policies.
//!
//! The values are chosen to be safe on any workload: a short native sleep (no shell needed), the
//! Spring Boot default shutdown phase, a TCP readiness probe (an HTTP path would have to be
//! guessed, and a wrong guess keeps pods unready forever), service-mesh proxies left alone,
//! nginx images told to quit gracefully, and no start time declared (it is the app's: a Go
//! binary starts in a second, a Spring Boot service in a minute or two).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::seconds::Seconds;
use super::spec::*;

/// Drain sleep before SIGTERM.
pub const SLEEP: Seconds = Seconds::new_const(10);
/// Adaptive drain: the shortest (kube-proxy and most ingress controllers stop routing to a
/// terminating pod within 1-2 s).
pub const DRAIN_MIN: Seconds = Seconds::new_const(2);
/// Adaptive drain: how long the traffic must have stopped.
pub const DRAIN_QUIET: Seconds = Seconds::new_const(3);
/// Adaptive drain: the longest (client-side registries cache instance lists for 15-30 s).
pub const DRAIN_MAX: Seconds = Seconds::new_const(30);
/// Ports whose traffic never holds an adaptive drain: the Prometheus convention's names.
pub const DRAIN_IGNORED_PORTS: [&str; 2] = ["metrics", "http-metrics"];
/// Application shutdown allowance (Spring Boot's default `timeout-per-shutdown-phase`).
pub const SHUTDOWN: Seconds = Seconds::new_const(30);
/// Margin added to every budget.
pub const BUFFER: Seconds = Seconds::new_const(5);
/// Counted for a kept user hook whose duration cannot be read (the Kubernetes default grace
/// period: an opaque hook is assumed to fit in what the pod would get anyway).
pub const UNKNOWN_HOOK: Seconds = Seconds::new_const(30);
/// Downward-API variable carrying the pod IP.
pub const POD_IP_ENV: &str = "POD_IP";
/// Bound on each Nacos HTTP call.
pub const NACOS_TIMEOUT: Seconds = Seconds::new_const(3);
/// Readiness probe period.
pub const PROBE_PERIOD: Seconds = Seconds::new_const(5);
/// Readiness probe timeout.
pub const PROBE_TIMEOUT: Seconds = Seconds::new_const(1);
/// Readiness probe failure threshold.
pub const PROBE_FAILURE_THRESHOLD: u32 = 3;
/// Readiness probe success threshold.
pub const PROBE_SUCCESS_THRESHOLD: u32 = 1;
/// Nacos group when none is given.
pub const NACOS_GROUP: &str = "DEFAULT_GROUP";
/// Nacos cluster when none is given.
pub const NACOS_CLUSTER: &str = "DEFAULT";
/// Secret keys for the Nacos login.
pub const NACOS_USERNAME_KEY: &str = "username";
/// See [`NACOS_USERNAME_KEY`].
pub const NACOS_PASSWORD_KEY: &str = "password";
/// Containers never touched unless a policy says otherwise: proxies that drain by their own
/// protocol. Knative's `queue-proxy` holds the app's preStop (`/wait-for-drain`) until it has
/// drained itself, and lets go after a second if it has not been sent SIGTERM yet: a drain sleep
/// on it would have the app stopped while it still routes requests there.
pub const EXCLUDED_CONTAINERS: [&str; 3] = ["istio-proxy", "linkerd-proxy", "queue-proxy"];
/// Default helper image (the chart overrides it with the release's own image).
pub const HELPER_IMAGE: &str = "ghcr.io/podgrace/podgrace:0.1.0";

/// The built-in policy layer, fully populated so that `podgrace policy defaults` shows every
/// effective default, except `startup.inject`, which follows `startup.maxSeconds` unless said.
pub fn builtin() -> PolicySpec {
    PolicySpec {
        pre_stop: Some(PreStopSpec {
            action: Some(ActionKind::Sleep),
            sleep_seconds: Some(SLEEP),
            sleep_handler: Some(SleepHandler::Native),
            existing: Some(ExistingHook::Keep),
            helper: Some(HelperMode::None),
            nginx_stop: Some(NginxStop::Auto),
            unknown_hook_seconds: Some(UNKNOWN_HOOK),
            exec: None,
            nacos: Some(NacosSpec {
                server: None,
                api_version: Some(NacosApi::V1),
                namespace_id: None,
                group_name: Some(NACOS_GROUP.to_owned()),
                service_name: None,
                cluster_name: Some(NACOS_CLUSTER.to_owned()),
                port: None,
                ephemeral: Some(true),
                timeout_seconds: Some(NACOS_TIMEOUT),
                auth: None,
            }),
            drain: Some(DrainSpec {
                mode: Some(DrainMode::Fixed),
                min_seconds: Some(DRAIN_MIN),
                quiet_seconds: Some(DRAIN_QUIET),
                max_seconds: Some(DRAIN_MAX),
                traffic: Some(DrainTraffic::All),
                ignore_ports: Some(
                    DRAIN_IGNORED_PORTS
                        .iter()
                        .map(|p| IntOrString::String(p.to_string()))
                        .collect(),
                ),
            }),
        }),
        shutdown_seconds: Some(SHUTDOWN),
        buffer_seconds: Some(BUFFER),
        grace_period: Some(GraceMode::Raise),
        env: Some(EnvSpec {
            pod_ip: Some(POD_IP_ENV.to_owned()),
            extra: Some(Vec::new()),
        }),
        readiness: Some(ReadinessSpec {
            inject: Some(true),
            handler: Some(ProbeHandler::Tcp),
            path: None,
            port: None,
            scheme: Some(ProbeScheme::Http),
            initial_delay_seconds: Some(Seconds::new_const(0)),
            period_seconds: Some(PROBE_PERIOD),
            timeout_seconds: Some(PROBE_TIMEOUT),
            failure_threshold: Some(PROBE_FAILURE_THRESHOLD),
            success_threshold: Some(PROBE_SUCCESS_THRESHOLD),
        }),
        // `inject` is left unsaid: it follows `maxSeconds` (declaring a start time opts in),
        // which a fixed `false` here would override in every layer above.
        startup: Some(StartupSpec {
            inject: None,
            max_seconds: None,
            period_seconds: None,
            handler: Some(StartupHandler::Liveness),
        }),
        presets: Some(Vec::new()),
        containers: Some(ContainerSelection {
            include: Some(Vec::new()),
            exclude: Some(EXCLUDED_CONTAINERS.iter().map(|s| s.to_string()).collect()),
        }),
        serving_only: Some(true),
        sidecars: Some(SidecarMode::Skip),
        helper_image: Some(HelperImageSpec {
            image: Some(HELPER_IMAGE.to_owned()),
            pull_policy: Some(PullPolicy::IfNotPresent),
        }),
        rules: Some(vec![Rule {
            name: Some("nginx".to_owned()),
            matcher: Match {
                container_name: None,
                image: Some("nginx*".to_owned()),
                pod_labels: None::<BTreeMap<String, String>>,
            },
            set: PolicySpec {
                pre_stop: Some(PreStopSpec {
                    action: Some(ActionKind::Nginx),
                    ..Default::default()
                }),
                ..Default::default()
            },
        }]),
    }
}
