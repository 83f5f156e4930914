//! The injected preStop helper: an init container copies podgrace's own binary into a shared
//! `emptyDir`, each hooked container mounts it read-only, and its preStop becomes
//! `exec [/podgrace-helper/podgrace, prestop, ...]`: no shell, no curl, works in distroless and
//! buildpack images.
//!
//! Everything is recognised on a second run (same names, same values), so a reinvocation adds
//! nothing twice; a volume or mount path of the same name that is *not* podgrace's is a conflict,
//! and the pod falls back to shell hooks with a warning rather than becoming invalid.

use k8s_openapi::api::core::v1::{
    Capabilities, Container, EmptyDirVolumeSource, ResourceRequirements, SeccompProfile,
    SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::drain_watch::TrafficWatch;
use super::pod_view::PodSpecView;
use crate::policy::spec::{DrainTraffic, PullPolicy};
use crate::policy::{AdaptiveDrain, NacosAction};
use crate::protocols::nacos::Instance;
use crate::protocols::nacos::{PASSWORD_ENV, USERNAME_ENV};

/// Name of the shared volume and of the init container.
pub const NAME: &str = "podgrace-helper";
/// Where the helper directory is mounted.
pub const DIR: &str = "/podgrace-helper";
/// The helper binary inside that directory.
pub const BINARY: &str = "/podgrace-helper/podgrace";

/// Whether the pod can take the helper.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PodState {
    /// Nothing there yet: add the init container and the volume.
    Absent,
    /// Already injected (a reinvocation).
    Present,
    /// A volume or init container of that name belongs to someone else.
    Conflict(String),
}

/// Inspects the pod for podgrace's init container and volume.
pub fn pod_state(spec: &PodSpecView) -> PodState {
    if spec.is_windows() {
        // A Linux binary, and a securityContext the API forbids on Windows pods.
        return PodState::Conflict("Windows pod".to_owned());
    }
    let volume = spec.volumes.iter().flatten().find(|v| v.name == NAME);
    let init = spec
        .init_containers
        .iter()
        .flatten()
        .find(|c| c.name == NAME);
    match (volume, init) {
        (None, None) => PodState::Absent,
        (Some(v), Some(_)) if v.empty_dir.is_some() => PodState::Present,
        (Some(_), _) => PodState::Conflict("volume name taken".to_owned()),
        (None, Some(_)) => PodState::Conflict("init container name taken".to_owned()),
    }
}

/// For one container: `Ok(true)` when the helper is already mounted, `Ok(false)` when it can be,
/// `Err` when the mount path is taken by another volume.
pub fn container_state(c: &Container) -> Result<bool, String> {
    for m in c.volume_mounts.iter().flatten() {
        match (m.name == NAME, m.mount_path.trim_end_matches('/') == DIR) {
            (true, true) => return Ok(true),
            (false, true) => return Err(format!("{DIR} is taken")),
            (true, false) => return Err(format!("{NAME} is mounted elsewhere")),
            _ => {}
        }
    }
    Ok(false)
}

/// The init container that installs the helper. Its securityContext meets the Pod Security
/// `restricted` profile in full (so it never lowers a pod's level, whatever the pod's own
/// settings), and its resources are small and bounded (a copy of one file), except in a pod
/// with a pod-level budget (`pod_budget`): the API server requires that budget to cover every
/// container's requests, which a fixed request of the helper's could exceed, and a container
/// without requests runs within it.
pub fn init_container(image: &str, pull_policy: PullPolicy, pod_budget: bool) -> Container {
    Container {
        name: NAME.to_owned(),
        image: Some(image.to_owned()),
        image_pull_policy: Some(pull_policy.as_str().to_owned()),
        command: Some(vec![
            "/podgrace".to_owned(),
            "install-helper".to_owned(),
            DIR.to_owned(),
        ]),
        volume_mounts: Some(vec![VolumeMount {
            name: NAME.to_owned(),
            mount_path: DIR.to_owned(),
            ..Default::default()
        }]),
        // Requests equal to limits: a Guaranteed pod stays Guaranteed (QoS counts init
        // containers too).
        resources: (!pod_budget).then(|| ResourceRequirements {
            requests: Some(helper_resources()),
            limits: Some(helper_resources()),
            ..Default::default()
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            run_as_user: Some(65532),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_owned()]),
                add: None,
            }),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".to_owned(),
                localhost_profile: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn helper_resources() -> std::collections::BTreeMap<String, Quantity> {
    [
        ("cpu".to_owned(), Quantity("100m".to_owned())),
        ("memory".to_owned(), Quantity("64Mi".to_owned())),
    ]
    .into()
}

/// The shared volume.
pub fn volume() -> Volume {
    Volume {
        name: NAME.to_owned(),
        empty_dir: Some(EmptyDirVolumeSource {
            size_limit: Some(Quantity("64Mi".to_owned())),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The read-only mount in a hooked container.
pub fn mount() -> VolumeMount {
    VolumeMount {
        name: NAME.to_owned(),
        mount_path: DIR.to_owned(),
        read_only: Some(true),
        ..Default::default()
    }
}

/// How the helper drains.
#[derive(Clone, Copy, Debug)]
pub enum DrainFlags<'a> {
    /// `--sleep N`.
    Sleep(u32),
    /// `--drain adaptive` with its bounds and what it watches.
    Adaptive(&'a AdaptiveDrain, &'a TrafficWatch),
}

impl DrainFlags<'_> {
    fn args(&self) -> Vec<String> {
        match self {
            DrainFlags::Sleep(n) => vec!["--sleep".to_owned(), n.to_string()],
            DrainFlags::Adaptive(d, w) => {
                let mut args: Vec<String> = [
                    ("--drain", "adaptive".to_owned()),
                    ("--drain-min", d.min.to_string()),
                    ("--drain-quiet", d.quiet.to_string()),
                    ("--drain-max", d.max.to_string()),
                    ("--drain-traffic", traffic_flag(d.traffic).to_owned()),
                ]
                .into_iter()
                .flat_map(|(flag, value)| [flag.to_owned(), value])
                .collect();
                let each = |flag: &str, values: Vec<String>| {
                    values
                        .into_iter()
                        .flat_map(move |v| [flag.to_owned(), v])
                        .collect::<Vec<_>>()
                };
                args.extend(each(
                    "--ignore-port",
                    w.ignored.iter().map(u16::to_string).collect(),
                ));
                args.extend(each(
                    "--probe",
                    w.probes.iter().map(|(p, s)| format!("{p}:{s}")).collect(),
                ));
                args
            }
        }
    }
}

fn traffic_flag(t: DrainTraffic) -> &'static str {
    match t {
        DrainTraffic::All => "all",
        DrainTraffic::NewConnections => "new-connections",
    }
}

/// `podgrace prestop --sleep N`, or the adaptive drain.
pub fn drain_argv(drain: DrainFlags<'_>) -> Vec<String> {
    let mut argv = vec![BINARY.to_owned(), "prestop".to_owned()];
    argv.extend(drain.args());
    argv
}

/// `podgrace prestop --sleep N --signal-nginx --nginx-wait W`.
pub fn nginx_argv(drain: DrainFlags<'_>, wait: u32) -> Vec<String> {
    let mut argv = drain_argv(drain);
    argv.extend([
        "--signal-nginx".to_owned(),
        "--nginx-wait".to_owned(),
        wait.to_string(),
    ]);
    argv
}

/// `podgrace prestop --deregister nacos ... --sleep N`.
pub fn nacos_argv(
    action: &NacosAction,
    instance: &Instance,
    ip_env: &str,
    drain: DrainFlags<'_>,
) -> Vec<String> {
    let mut argv = vec![
        BINARY.to_owned(),
        "prestop".to_owned(),
        "--deregister".to_owned(),
        "nacos".to_owned(),
    ];
    for (flag, value) in nacos_flags(action, instance, ip_env) {
        argv.push(format!("--{flag}"));
        argv.push(value);
    }
    argv.extend(drain.args());
    argv
}

/// The `podgrace prestop` flags that deregister `instance` (the engine writes them into the hook;
/// the CLI parses them: a test keeps both sides in step). Credentials are never flags, only the
/// names of the variables that hold them.
fn nacos_flags(
    action: &NacosAction,
    instance: &Instance,
    ip_env: &str,
) -> Vec<(&'static str, String)> {
    let mut flags = vec![
        ("nacos-server", action.server.clone()),
        ("nacos-api", action.api.as_str().to_owned()),
    ];
    if let Some(ns) = &instance.namespace_id {
        flags.push(("nacos-namespace", ns.clone()));
    }
    flags.extend([
        ("nacos-group", instance.group.clone()),
        ("nacos-service", instance.service.clone()),
        ("nacos-cluster", instance.cluster.clone()),
        ("nacos-port", instance.port.to_string()),
        ("nacos-ephemeral", instance.ephemeral.to_string()),
        ("ip-env", ip_env.to_owned()),
        ("timeout", action.timeout.to_string()),
        ("budget", action.deregistration_seconds().to_string()),
    ]);
    if action.auth.is_some() {
        flags.push(("username-env", USERNAME_ENV.to_owned()));
        flags.push(("password-env", PASSWORD_ENV.to_owned()));
    }
    flags
}
