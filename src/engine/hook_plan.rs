//! The preStop hook podgrace wants on a container, and what it can tell about hooks users wrote.

use k8s_openapi::api::core::v1::{Container, EnvVar, ExecAction, LifecycleHandler, SleepAction};

use super::drain_watch::TrafficWatch;
use super::env;
use super::helper_injection::{self as helper, DrainFlags};
use super::nacos_script as nacos_hook;
use super::pod_view::{PodSpecView, PodView};
use super::shell;
use super::spring_property::{self, Setting};
use crate::policy::spec::{ExistingHook, HelperMode, NginxStop, SleepHandler};
use crate::policy::{Action, ContainerPolicy, Drain, NacosAction, defaults};
use crate::protocols::kube_version::KubeVersion;
use crate::protocols::nacos::Instance;
use crate::protocols::nacos::{PASSWORD_ENV, USERNAME_ENV};

/// A hook podgrace would install.
#[derive(Clone, Debug, PartialEq)]
pub struct Hook {
    /// The handler for `lifecycle.preStop`.
    pub handler: LifecycleHandler,
    /// Time the hook takes at most, counted in the grace budget.
    pub seconds: u32,
    /// Short description for the record (`sleep 10s`, `nacos v1 + sleep 30s`).
    pub label: String,
    /// The hook runs `/bin/sh` inside the application image.
    pub uses_shell: bool,
    /// Environment variables the hook reads.
    pub env: Vec<EnvVar>,
    /// The hook runs the injected helper binary.
    pub needs_helper: bool,
    /// Its drain is adaptive: `seconds` is a ceiling.
    pub adaptive: bool,
}

impl Hook {
    /// Whose time the grace period counts, and how.
    pub fn kind(&self) -> super::grace::HookKind {
        if self.adaptive {
            super::grace::HookKind::Adaptive
        } else {
            super::grace::HookKind::Injected
        }
    }
}

/// The desired hook (if any) and notes for the user.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HookPlan {
    /// The hook, or `None` when the policy adds none.
    pub hook: Option<Hook>,
    /// Warnings about choices made.
    pub warnings: Vec<String>,
}

/// Why an adaptive drain cannot run in this pod, if it cannot: it runs in the helper, and
/// reads the pod's own network namespace.
pub fn adaptive_blocker(spec: Option<&PodSpecView>, helper_usable: bool) -> Option<&'static str> {
    if spec.is_some_and(|s| s.host_network == Some(true)) {
        Some("cannot see the pod's own traffic under hostNetwork")
    } else if !helper_usable {
        Some("needs the helper, which cannot be injected")
    } else {
        None
    }
}

/// Plans the hook for container `c` of `pod`. `helper_usable` says whether the helper can be
/// injected into this pod and container (no name or path conflicts); `watch` is what an
/// adaptive drain watches in the pod ([`drain_watch::watch`]).
pub fn plan(
    pod: &PodView,
    c: &Container,
    policy: &ContainerPolicy,
    version: Option<KubeVersion>,
    helper_usable: bool,
    watch: Option<&TrafficWatch>,
) -> HookPlan {
    let mut plan = HookPlan::default();
    // An adaptive drain that cannot run here is its ceiling, as a fixed drain: never shorter
    // than what the user allowed for, and covered by the same grace period.
    let fixed;
    let (policy, adaptive) = match &policy.drain {
        Drain::Adaptive(a) if drains(&policy.action) => {
            match adaptive_blocker(pod.spec.as_ref(), helper_usable) {
                None => (policy, Some(a)),
                Some(why) => {
                    // A hook of the container's own that the policy keeps runs instead.
                    let own_hook_kept = policy.existing == ExistingHook::Keep
                        && c.lifecycle.as_ref().is_some_and(|l| l.pre_stop.is_some());
                    if !own_hook_kept {
                        plan.warnings
                            .push(format!("adaptive drain {why}: fixed {}s drain", a.max));
                    }
                    fixed = policy.with_fixed_drain(a.max);
                    (&fixed, None)
                }
            }
        }
        _ => (policy, None),
    };
    let no_watch = TrafficWatch::default();
    let flags = match adaptive {
        Some(a) => DrainFlags::Adaptive(a, watch.unwrap_or(&no_watch)),
        None => DrainFlags::Sleep(policy.sleep),
    };
    let drain_label = match adaptive {
        Some(a) => Some(format!("adaptive drain ≤{}s", a.max)),
        None => (policy.sleep > 0).then(|| format!("sleep {}s", policy.sleep)),
    };
    let drain_seconds = policy.drain_seconds();
    let helper = (policy.helper == HelperMode::Inject || adaptive.is_some()) && helper_usable;
    let adaptive_hook = |label: String| {
        helper_hook(
            helper::drain_argv(flags),
            drain_seconds,
            label,
            Vec::new(),
            true,
        )
    };
    plan.hook = match &policy.action {
        Action::None => None,
        Action::Sleep if adaptive.is_some() => drain_label.clone().map(adaptive_hook),
        Action::Sleep => {
            sleep_hook(policy, version, &mut plan.warnings).map(|h| match (helper, h.uses_shell) {
                // A native sleep needs nothing; an exec sleep is what the helper replaces.
                (true, true) => helper_hook(
                    helper::drain_argv(flags),
                    h.seconds,
                    h.label,
                    Vec::new(),
                    false,
                ),
                _ => h,
            })
        }
        Action::Exec { command, duration } => Some(Hook {
            handler: exec(command.clone()),
            seconds: *duration,
            label: format!("exec {}", command[0]),
            uses_shell: shell::is_shell(&command[0]),
            env: Vec::new(),
            needs_helper: false,
            adaptive: false,
        }),
        Action::Nginx if nginx_stop(policy.nginx_stop, c) == NginxStop::Signal => {
            // The image stops nginx with SIGQUIT (graceful) itself: the drain is all it needs.
            let hook = match &drain_label {
                Some(label) if adaptive.is_some() => Some(adaptive_hook(label.clone())),
                _ => sleep_hook(policy, version, &mut plan.warnings),
            };
            hook.map(|mut h| {
                h.label = format!("{} (nginx stops on SIGQUIT)", h.label);
                h
            })
        }
        Action::Nginx if helper => Some(helper_hook(
            helper::nginx_argv(flags, policy.shutdown),
            drain_seconds,
            nginx_label(drain_label.as_deref()),
            Vec::new(),
            adaptive.is_some(),
        )),
        Action::Nginx => Some(nginx_hook(policy)),
        Action::Nacos(nacos) => match nacos_instance(pod, c, nacos) {
            Some(instance) => {
                let ip_env = policy.pod_ip_env.as_deref().unwrap_or(defaults::POD_IP_ENV);
                plan.warnings.extend(ip_not_the_pods(c, ip_env));
                plan.warnings.extend(registers_another_ip(c, ip_env));
                let label = format!(
                    "nacos {} + {}",
                    nacos.api.as_str(),
                    drain_label.as_deref().unwrap_or("sleep 0s")
                );
                Some(if helper {
                    helper_hook(
                        helper::nacos_argv(nacos, &instance, ip_env, flags),
                        nacos.deregistration_seconds() + drain_seconds,
                        label,
                        nacos_env(nacos, ip_env),
                        adaptive.is_some(),
                    )
                } else {
                    nacos_shell_hook(policy, nacos, &instance, ip_env)
                })
            }
            None => {
                plan.warnings.push(
                    "nacos: no port to deregister (set preStop.nacos.port); only the drain is added"
                        .to_owned(),
                );
                match drain_label {
                    Some(label) if adaptive.is_some() => Some(adaptive_hook(label)),
                    _ => sleep_hook(policy, version, &mut plan.warnings),
                }
            }
        },
    };
    plan
}

/// Whether the action has a drain (an `exec` runs the policy's command instead).
fn drains(action: &Action) -> bool {
    matches!(action, Action::Sleep | Action::Nginx | Action::Nacos(_))
}

fn helper_hook(
    argv: Vec<String>,
    seconds: u32,
    label: String,
    env: Vec<EnvVar>,
    adaptive: bool,
) -> Hook {
    Hook {
        handler: exec(argv),
        seconds,
        label: format!("{label} (helper)"),
        uses_shell: false,
        env,
        needs_helper: true,
        adaptive,
    }
}

fn nginx_label(drain: Option<&str>) -> String {
    match drain {
        Some(d) => format!("{d} + nginx quit"),
        None => "nginx quit".to_owned(),
    }
}

/// A plain drain sleep, native or exec depending on the policy and the cluster.
fn sleep_hook(
    policy: &ContainerPolicy,
    version: Option<KubeVersion>,
    warnings: &mut Vec<String>,
) -> Option<Hook> {
    let seconds = policy.sleep;
    if seconds == 0 {
        // No hook at all: valid on every release, unlike `sleep.seconds: 0` (1.33+).
        return None;
    }
    let native = match (policy.sleep_handler, version) {
        (SleepHandler::Exec, _) => false,
        (SleepHandler::Auto, v) => v.is_none_or(KubeVersion::has_native_sleep),
        (SleepHandler::Native, Some(v)) if !v.has_native_sleep() => {
            warnings.push(format!(
                "native sleep needs Kubernetes 1.30+ and the cluster is {v}: used exec sleep instead"
            ));
            false
        }
        (SleepHandler::Native, _) => true,
    };
    Some(if native {
        Hook {
            handler: LifecycleHandler {
                sleep: Some(SleepAction {
                    seconds: i64::from(seconds),
                }),
                ..Default::default()
            },
            seconds,
            label: format!("sleep {seconds}s"),
            uses_shell: false,
            env: Vec::new(),
            needs_helper: false,
            adaptive: false,
        }
    } else {
        Hook {
            handler: shell_handler(format!("sleep {seconds}")),
            seconds,
            label: format!("exec sleep {seconds}s"),
            uses_shell: true,
            env: Vec::new(),
            needs_helper: false,
            adaptive: false,
        }
    })
}

/// Drain, then `nginx -s quit` (graceful: finish in-flight requests, close keep-alives), then
/// wait for the master (PID 1) to exit, bounded by the shutdown allowance: returning earlier
/// would let the kubelet's SIGTERM turn the graceful quit into a fast shutdown.
fn nginx_hook(policy: &ContainerPolicy) -> Hook {
    let mut script = String::new();
    if policy.sleep > 0 {
        script.push_str(&format!("sleep {}; ", policy.sleep));
    }
    script.push_str(&format!(
        "nginx -s quit; i=0; while [ \"$i\" -lt {} ] && kill -0 1 2>/dev/null; do sleep 1; i=$((i+1)); done",
        policy.shutdown
    ));
    Hook {
        handler: shell_handler(script),
        seconds: policy.sleep,
        label: nginx_label(
            (policy.sleep > 0)
                .then(|| format!("sleep {}s", policy.sleep))
                .as_deref(),
        ),
        uses_shell: true,
        env: Vec::new(),
        needs_helper: false,
        adaptive: false,
    }
}

/// A warning when the container defines `ip_env` itself, as something other than the pod's IP:
/// the deregistration sends whatever it holds (a `status.hostIP` under that name would take the
/// node's address out of Nacos, and leave the pod's in).
fn ip_not_the_pods(c: &Container, ip_env: &str) -> Option<String> {
    let own = c.env.iter().flatten().find(|v| v.name == ip_env)?;
    let field = own.value_from.as_ref().and_then(|v| v.field_ref.as_ref());
    if field.is_some_and(|f| f.field_path == "status.podIP") {
        return None;
    }
    Some(format!(
        "nacos: its {ip_env} is not status.podIP, and deregistration sends it (set env.podIP)"
    ))
}

/// Spring Cloud Alibaba's setting of the address an app registers in Nacos under.
const DISCOVERY_IP: &str = "spring.cloud.nacos.discovery.ip";

/// A warning when the app pins the address it registers in Nacos under to something other than
/// the pod's IP (a node's address written into the manifest, say): deregistration sends the pod
/// IP, which Nacos does not know, and the registered instance keeps its traffic.
fn registers_another_ip(c: &Container, ip_env: &str) -> Option<String> {
    let pods = match spring_property::find(c, DISCOVERY_IP)? {
        Setting::From(source) => source
            .field_ref
            .as_ref()
            .is_some_and(|f| f.field_path == "status.podIP"),
        Setting::Value(value) => [
            format!("$({ip_env})"),
            format!("${{{ip_env}}}"),
            format!("${ip_env}"),
        ]
        .contains(&value.to_owned()),
    };
    (!pods).then(|| {
        "nacos: registers under an IP of its own, not the pod IP deregistration sends".to_owned()
    })
}

fn nacos_shell_hook(
    policy: &ContainerPolicy,
    nacos: &NacosAction,
    instance: &Instance,
    ip_env: &str,
) -> Hook {
    Hook {
        handler: shell_handler(nacos_hook::script(nacos, instance, ip_env, policy.sleep)),
        seconds: nacos.deregistration_seconds() + policy.sleep,
        label: format!("nacos {} + sleep {}s", nacos.api.as_str(), policy.sleep),
        uses_shell: true,
        env: nacos_env(nacos, ip_env),
        needs_helper: false,
        adaptive: false,
    }
}

/// The variables a Nacos deregistration reads: the pod IP and, with a login, the credentials
/// from the Secret (optional, so that a missing Secret never keeps the pod from starting).
pub fn nacos_env(nacos: &NacosAction, ip_env: &str) -> Vec<EnvVar> {
    let mut vars = vec![env::field(ip_env, "status.podIP")];
    if let Some(auth) = &nacos.auth {
        vars.push(env::secret(USERNAME_ENV, &auth.secret, &auth.username_key));
        vars.push(env::secret(PASSWORD_ENV, &auth.secret, &auth.password_key));
    }
    vars
}

/// The instance a container registers as: service name from policy, else the pod's
/// `app.kubernetes.io/name` or `app` label, else the container name; port from policy, else the
/// container's first TCP port.
pub fn nacos_instance(pod: &PodView, c: &Container, nacos: &NacosAction) -> Option<Instance> {
    let labels = pod.labels();
    let label = |k: &str| labels.and_then(|l| l.get(k)).cloned();
    let service = nacos
        .service
        .clone()
        .or_else(|| label("app.kubernetes.io/name"))
        .or_else(|| label("app"))
        .unwrap_or_else(|| c.name.clone());
    let port = nacos
        .port
        .or_else(|| super::probes::first_tcp_port(c).and_then(|p| u16::try_from(p).ok()))?;
    Some(Instance {
        namespace_id: nacos.namespace_id.clone(),
        group: nacos.group.clone(),
        service,
        cluster: nacos.cluster.clone(),
        port,
        ephemeral: nacos.ephemeral,
    })
}

fn exec(command: Vec<String>) -> LifecycleHandler {
    LifecycleHandler {
        exec: Some(ExecAction {
            command: Some(command),
        }),
        ..Default::default()
    }
}

fn shell_handler(script: String) -> LifecycleHandler {
    exec(vec!["/bin/sh".to_owned(), "-c".to_owned(), script])
}

/// How the `nginx` action stops container `c`: `auto` means `signal` where the kubelet's stop
/// is already nginx's graceful quit (SIGQUIT): the container's own `lifecycle.stopSignal`
/// (ContainerStopSignals) when it sets one, else the image's STOPSIGNAL, which the official
/// images' Dockerfiles declare; `quit` for any other, which may stop with SIGTERM (fast
/// shutdown) or a signal that does not stop nginx at all.
pub fn nginx_stop(policy: NginxStop, c: &Container) -> NginxStop {
    let sigquit = match c.lifecycle.as_ref().and_then(|l| l.stop_signal.as_deref()) {
        Some(signal) => signal == "SIGQUIT",
        None => stops_with_sigquit(c.image.as_deref().unwrap_or_default()),
    };
    match policy {
        NginxStop::Auto if sigquit => NginxStop::Signal,
        NginxStop::Auto => NginxStop::Quit,
        chosen => chosen,
    }
}

/// Whether `image` is an official nginx image (Docker Hub's `nginx`, also through a mirror's
/// `library/` path, the nginx team's `nginx-unprivileged` and their ECR repository), which all
/// declare `STOPSIGNAL SIGQUIT`. Tags older than 1.19 predate that and are excluded.
pub fn stops_with_sigquit(image: &str) -> bool {
    let without_digest = image.split('@').next().unwrap_or(image);
    let (path, tag) = match without_digest.rsplit_once(':') {
        Some((p, t)) if !t.contains('/') => (p, Some(t)),
        _ => (without_digest, None),
    };
    let segments: Vec<&str> = path.split('/').collect();
    let official = matches!(
        segments.as_slice(),
        ["nginx"]
            | [.., "library" | "nginx", "nginx"]
            | [.., "nginxinc" | "nginx", "nginx-unprivileged"]
    );
    official && tag.is_none_or(|t| !predates_sigquit(t))
}

/// `1.17.10-alpine` and other tags of releases before 1.19.
fn predates_sigquit(tag: &str) -> bool {
    let mut parts = tag.split(['.', '-']);
    match (
        parts.next().and_then(|m| m.parse::<u32>().ok()),
        parts.next().and_then(|m| m.parse::<u32>().ok()),
    ) {
        (Some(major), Some(minor)) => major < 1 || (major == 1 && minor < 19),
        _ => false,
    }
}

/// Whether a hook sends nginx a graceful quit.
pub fn quits_nginx(h: &LifecycleHandler) -> bool {
    h.exec
        .as_ref()
        .and_then(|e| e.command.as_ref())
        .is_some_and(|c| {
            c.iter()
                .any(|a| a.contains("quit") || a == "--signal-nginx")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec_hook(args: &[&str]) -> LifecycleHandler {
        exec(args.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn official_nginx_images_stop_with_sigquit_and_custom_builds_get_the_quit_hook() {
        for image in [
            "nginx",
            "nginx:1.27-alpine",
            "docker.io/library/nginx:1.27",
            "mirror.example/library/nginx:stable",
            "nginxinc/nginx-unprivileged:1.27",
            "public.ecr.aws/nginx/nginx:mainline",
            "nginx@sha256:0123",
        ] {
            assert_eq!(
                nginx_stop(NginxStop::Auto, &nginx(image, None)),
                NginxStop::Signal,
                "{image}"
            );
        }
        for image in [
            "nginx:1.17.10",
            "registry.example/team/nginx:1.27",
            "bitnami/nginx:1.27",
            "nginx-custom:1",
        ] {
            assert_eq!(
                nginx_stop(NginxStop::Auto, &nginx(image, None)),
                NginxStop::Quit,
                "{image}"
            );
        }
        assert_eq!(
            nginx_stop(NginxStop::Quit, &nginx("nginx:1.27", None)),
            NginxStop::Quit
        );
        // The container's own stop signal (ContainerStopSignals) overrides the image's.
        let term = nginx("nginx:1.27", Some("SIGTERM"));
        assert_eq!(nginx_stop(NginxStop::Auto, &term), NginxStop::Quit);
        let quit = nginx("registry.example/team/nginx:1.27", Some("SIGQUIT"));
        assert_eq!(nginx_stop(NginxStop::Auto, &quit), NginxStop::Signal);
    }

    fn nginx(image: &str, stop_signal: Option<&str>) -> Container {
        Container {
            name: "nginx".into(),
            image: Some(image.into()),
            lifecycle: stop_signal.map(|s| k8s_openapi::api::core::v1::Lifecycle {
                stop_signal: Some(s.into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn nginx_quit_is_recognised() {
        assert!(quits_nginx(&exec_hook(&["nginx", "-s", "quit"])));
        assert!(quits_nginx(&exec_hook(&[
            "/bin/sh",
            "-c",
            "sleep 5 && nginx -s quit"
        ])));
        assert!(!quits_nginx(&exec_hook(&["/bin/sh", "-c", "sleep 5"])));
    }
}
