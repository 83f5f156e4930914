//! Admission warnings for the traps podgrace can see but not fix. kubectl prints each one; the
//! API asks for 120 characters or less, so every warning is written to fit: the advice is never
//! cut, a long container name is shortened instead, in the middle (`argocd-no…ntroller`).

use k8s_openapi::api::core::v1::{Container, LifecycleHandler};

use super::{hook_plan, probes, shell};
use crate::policy::effective::is_nginx_image;
use crate::policy::spec::NginxStop;

/// Longest warning, in characters (under the API's 120).
pub const MAX_LEN: usize = 119;

/// Renders a message that names `name`, shortening the name (never the message) to fit, by
/// [`shorten`].
pub fn naming(name: &str, render: impl Fn(&str) -> String) -> String {
    let full = render(name);
    let over = full.chars().count().saturating_sub(MAX_LEN);
    if over == 0 {
        return full;
    }
    let out = render(&shorten(name, name.chars().count().saturating_sub(over)));
    debug_assert!(
        out.chars().count() <= MAX_LEN,
        "warning longer than {MAX_LEN} characters: {out}"
    );
    out
}

/// `s` cut to `max` characters, the one way every name in a message is shortened (container
/// names, scripts, commands): in the middle, the cut marked `…`. Names that share a prefix
/// (`prometheus-server`, `prometheus-server-configmap-reload`) rarely share their ends, which
/// say what they are (`…-reload`, `…-entrypoint.sh`).
pub fn shorten(s: &str, max: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= max {
        return s.to_owned();
    }
    let keep = max.saturating_sub(1);
    let tail = keep / 2;
    chars[..keep - tail]
        .iter()
        .chain(['…'].iter())
        .chain(&chars[chars.len() - tail..])
        .collect()
}

/// A trap of one container that podgrace can see but not fix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Trap {
    /// PID 1 has no SIGTERM handler ([`ignores_sigterm`]).
    IgnoresSigterm,
    /// A shell is PID 1 and does not pass SIGTERM on ([`shell_pid1`]).
    ShellPid1,
    /// A liveness probe and no readiness probe.
    LivenessWithoutReadiness,
    /// nginx stopped by SIGTERM (fast shutdown) rather than a graceful quit.
    NginxWithoutQuit,
    /// The preStop hook runs a shell in an image that commonly has none ([`hook_needs_shell`]).
    PrestopNeedsShell,
}

/// The traps of a container whose preStop hook will be `final_hook` and that will (or will not)
/// have a readiness probe, each with its message (without the container prefix, see
/// [`container`]). `pid1` says whether the container's process is PID 1 of its namespace (not
/// with `shareProcessNamespace`, where the pause container is, nor with `hostPID`). The engine
/// warns with them; `podgrace audit` reports them before and after.
pub fn container_traps(
    c: &Container,
    final_hook: Option<&LifecycleHandler>,
    has_readiness: bool,
    pid1: bool,
) -> Vec<(Trap, String)> {
    let mut out = Vec::new();
    // Only PID 1 is spared the default action of SIGTERM: elsewhere `sleep infinity` just dies.
    if let Some(w) = ignores_sigterm(c).filter(|_| pid1) {
        out.push((Trap::IgnoresSigterm, w));
    } else if let Some(w) = shell_pid1(c, pid1).filter(|_| !final_hook.is_some_and(stops_the_app)) {
        out.push((Trap::ShellPid1, w));
    }
    // Also without a declared port (a Service routes to undeclared ports too) where the liveness
    // probe checks a server; not for a worker checked by a command (a Celery worker, a
    // scheduler), which serves nothing, nor where the container's own probes check another
    // address than the pod's: no readiness probe fits it.
    let checks_a_server = c
        .liveness_probe
        .as_ref()
        .is_some_and(|p| p.http_get.is_some() || p.tcp_socket.is_some() || p.grpc.is_some());
    let serves = probes::first_tcp_port(c).is_some() || checks_a_server;
    if c.liveness_probe.is_some() && !has_readiness && serves && !probes::checks_own_address(c) {
        out.push((
            Trap::LivenessWithoutReadiness,
            "liveness probe without readiness probe: traffic arrives before the app is ready"
                .to_owned(),
        ));
    }
    let image = c.image.as_deref().unwrap_or_default();
    // The official images stop with SIGQUIT (graceful) on their own, as does a container
    // whose own stopSignal says so.
    let graceful_stop = final_hook.is_some_and(hook_plan::quits_nginx)
        || hook_plan::nginx_stop(NginxStop::Auto, c) == NginxStop::Signal;
    if is_nginx_image(image) && !graceful_stop {
        out.push((
            Trap::NginxWithoutQuit,
            "nginx without `nginx -s quit` in preStop: SIGTERM makes nginx drop requests"
                .to_owned(),
        ));
    }
    if let Some(w) = final_hook.and_then(|h| hook_needs_shell(h, image)) {
        out.push((Trap::PrestopNeedsShell, w));
    }
    out
}

/// A preStop hook that starts a shell in an image that commonly ships without one
/// ([`may_lack_shell`]): the kubelet's exec fails at once, so there is no drain, whatever the
/// grace period allows. The one check behind the webhook's warning, `podgrace mutate`'s and
/// `podgrace audit`'s `prestop-needs-shell`.
pub fn hook_needs_shell(hook: &LifecycleHandler, image: &str) -> Option<String> {
    let program = hook.exec.as_ref()?.command.as_ref()?.first()?;
    (shell::is_shell(program) && may_lack_shell(image)).then(|| {
        let name = shorten(program.rsplit('/').next().unwrap_or(program), 12);
        format!("its preStop runs {name}, which this image may lack: the hook fails, no drain")
    })
}

/// What `/bin/sh` is in an image, as far as its reference tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageShell {
    /// busybox ash (busybox, Alpine and `*-alpine` images): execs a `-c` script's last simple
    /// command itself, as bash does.
    Ash,
    /// bash (Red Hat family images: UBI, CentOS, Fedora, Rocky, Alma, Amazon Linux).
    Bash,
    /// dash (Debian and Ubuntu images): never execs, stays the app's parent.
    Dash,
    /// The reference does not say (`eclipse-temurin:21`, a private image).
    Unknown,
}

/// Reads what `sh` is from an image reference: the names of its repository path (not the
/// registry host) and its tag. Only markers an image family puts in its names or tags count
/// (`busybox:1.36`, `python:3.12-alpine`, `debian:bookworm-slim`, `redhat/ubi9`); anything else
/// is [`ImageShell::Unknown`].
pub fn image_sh(image: &str) -> ImageShell {
    let image = image.to_ascii_lowercase();
    let image = image.split('@').next().unwrap_or(&image);
    let mut segments: Vec<&str> = image.split('/').collect();
    if segments.len() > 1 && segments[0].contains(['.', ':']) {
        segments.remove(0);
    }
    let (last, tag) = match segments.pop() {
        Some(last) => last.split_once(':').unwrap_or((last, "")),
        None => return ImageShell::Unknown,
    };
    segments.push(last);
    let words: Vec<&str> = segments
        .iter()
        .chain(std::iter::once(&tag))
        .flat_map(|s| s.split(['-', '_', '.']))
        .collect();
    let has = |markers: &[&str]| {
        words
            .iter()
            .any(|w| markers.contains(&w.trim_end_matches(|ch: char| ch.is_ascii_digit())))
    };
    if has(&["alpine", "busybox"]) {
        ImageShell::Ash
    } else if has(&[
        "debian", "ubuntu", "bookworm", "bullseye", "buster", "trixie", "jammy", "noble", "focal",
    ]) {
        ImageShell::Dash
    } else if has(&[
        "ubi",
        "centos",
        "fedora",
        "rockylinux",
        "almalinux",
        "amazonlinux",
        "rhel",
    ]) {
        ImageShell::Bash
    } else {
        ImageShell::Unknown
    }
}

/// Whether a preStop hook stops the app itself (`kill`, `pkill`, `killall`, an app's own
/// `*shutdown` script, as RocketMQ's `mqshutdown`): then a shell as PID 1 that swallows SIGTERM
/// does not keep the app from stopping.
fn stops_the_app(hook: &LifecycleHandler) -> bool {
    let Some(argv) = hook.exec.as_ref().and_then(|e| e.command.as_ref()) else {
        return false;
    };
    let words = match shell::dash_c_script(argv) {
        Some(script) => script.split_whitespace().collect::<Vec<_>>(),
        None => argv.iter().map(String::as_str).collect(),
    };
    words.iter().any(|w| {
        let name = w.rsplit('/').next().unwrap_or(w);
        matches!(name, "kill" | "pkill" | "killall") || name.ends_with("shutdown")
    })
}

/// Whether `value` is true as Go's `strconv.ParseBool` reads it (how Istio reads its boolean
/// variables): `"false"` or `"0"` turns a setting off, it does not turn it on.
fn go_true(value: &str) -> bool {
    matches!(value, "1" | "t" | "T" | "TRUE" | "true" | "True")
}

/// A warning about one container.
pub fn container(name: &str, message: &str) -> String {
    naming(name, |n| format!("podgrace: container {n}: {message}"))
}

/// A warning about the pod.
pub fn pod(message: &str) -> String {
    let out = format!("podgrace: {message}");
    debug_assert!(
        out.chars().count() <= MAX_LEN,
        "warning longer than {MAX_LEN} characters: {out}"
    );
    out
}

/// The container's command line (`command` then `args`), when the pod spells it out; without
/// `command` the image's ENTRYPOINT runs, which podgrace cannot see, except where `args` is
/// itself a `sh -c SCRIPT` line (`args: [/bin/sh, -c, ...]` on a busybox image): run directly
/// by an image without ENTRYPOINT, or by an entrypoint that ends in `exec "$@"`, that shell is
/// the app's parent either way.
fn argv(c: &Container) -> Option<Vec<&str>> {
    let args = c.args.iter().flatten().map(String::as_str);
    match c.command.as_ref().filter(|c| !c.is_empty()) {
        Some(command) => Some(command.iter().map(String::as_str).chain(args).collect()),
        None => {
            let args: Vec<&str> = args.collect();
            shell::dash_c_script(&args).is_some().then_some(args)
        }
    }
}

/// A shell as PID 1 that will not pass SIGTERM on. bash and busybox ash exec the last simple
/// command of a `-c` script themselves (so `bash -c "source env && app"` is fine); dash, which
/// is `/bin/sh` on Debian and Ubuntu, never does; a pipeline, a loop or a background job keeps
/// any shell in place. What `sh` is comes from the image where its reference says
/// ([`image_sh`]); where it does not, the warning says it holds if `sh` is dash. A `*.sh` entrypoint must `exec` the app itself (podgrace cannot see
/// inside it). Where the shell is not PID 1 (`pid1` false: a shared or the node's process
/// namespace), SIGTERM ends the shell instead, and the runtime kills the app with the
/// container: the same trap, said otherwise.
pub fn shell_pid1(c: &Container, pid1: bool) -> Option<String> {
    let argv = argv(c)?;
    let swallows = if pid1 {
        "stays PID 1, swallows SIGTERM"
    } else {
        "dies on SIGTERM, the app is killed"
    };
    if let Some(script) = shell::dash_c_script(&argv) {
        let program = argv[0].rsplit('/').next().unwrap_or(argv[0]);
        let last = shell::after_assignments(last_command(script)?);
        if last == "exec" || last.starts_with("exec ") || last.starts_with("exec\t") {
            return None;
        }
        let simple = !last.contains('|') && !starts_compound(last);
        let sh = (program == "sh").then(|| image_sh(c.image.as_deref().unwrap_or_default()));
        let execs_last = matches!(program, "bash" | "ash")
            || matches!(sh, Some(ImageShell::Ash | ImageShell::Bash));
        return match program {
            _ if execs_last && simple => None,
            _ if execs_last => Some(format!(
                "{program} -c ends in a pipeline or loop: the shell {swallows}; exec the app"
            )),
            "sh" if sh == Some(ImageShell::Dash) => Some(format!(
                "sh -c without exec: dash (Debian's sh) {swallows}; exec the app"
            )),
            "sh" => Some(format!(
                "sh -c without exec: if sh is dash (Debian's), it {swallows}; exec the app"
            )),
            _ => Some(format!(
                "{program} -c without exec: the shell {swallows}; start the app with exec"
            )),
        };
    }
    let script = if shell::is_shell(argv[0]) {
        argv.get(1)
    } else {
        argv.first()
    };
    let script = script.filter(|s| s.ends_with(".sh"))?;
    let name = shorten(script.rsplit('/').next().unwrap_or(script), 24);
    let runs = if pid1 {
        "is PID 1"
    } else {
        "is the container's process"
    };
    Some(format!(
        "{name} {runs}: unless it execs the app, SIGTERM never reaches it"
    ))
}

/// A PID 1 that has no SIGTERM handler: the kernel delivers no default action to a namespace's
/// init, so `sleep infinity`, `tail -f /dev/null` or a bare shell loop ignore the signal and
/// every stop waits out the whole grace period.
pub fn ignores_sigterm(c: &Container) -> Option<String> {
    let argv = argv(c)?;
    let idle = |words: &[&str]| -> Option<String> {
        let program = words.first()?.rsplit('/').next()?;
        let ignores = match program {
            "sleep" | "pause" => true,
            "tail" => words
                .iter()
                .any(|w| w.starts_with("-f") || *w == "-F" || w.starts_with("--follow")),
            "cat" => words.len() == 1,
            _ => false,
        };
        ignores.then(|| words[..words.len().min(3)].join(" "))
    };
    let culprit = match shell::dash_c_script(&argv) {
        Some(script) if script.contains("trap") => return None,
        Some(script) => {
            let last = last_command(script)?;
            if starts_compound(last) {
                Some("a shell loop".to_owned())
            } else if last.contains('|') {
                // The shell waits for the pipeline as PID 1, whatever runs in it.
                idle(&last.split_whitespace().collect::<Vec<_>>())
                    .map(|_| "a shell pipeline".to_owned())
            } else {
                let words: Vec<&str> = shell::after_assignments(last).split_whitespace().collect();
                let words = words.strip_prefix(&["exec"]).unwrap_or(&words);
                idle(words)
            }
        }
        None => idle(&argv),
    }?;
    let culprit = shorten(&culprit, 24);
    Some(format!(
        "PID 1 `{culprit}` ignores SIGTERM: each stop waits out the grace period"
    ))
}

/// The last command of a script (separators `;`, `&&`, `||`, newlines), trimmed.
fn last_command(script: &str) -> Option<&str> {
    let trimmed = script.trim_end().trim_end_matches(';').trim_end();
    let cut = trimmed
        .rfind(['\n', ';'])
        .map(|i| i + 1)
        .into_iter()
        .chain(trimmed.rfind("&&").map(|i| i + 2))
        .chain(trimmed.rfind("||").map(|i| i + 2))
        .max()
        .unwrap_or(0);
    let last = trimmed[cut..].trim();
    // `done`/`fi` close a compound command that began earlier.
    if matches!(last, "done" | "fi" | "esac" | "}") {
        return Some("while");
    }
    (!last.is_empty()).then_some(last)
}

fn starts_compound(command: &str) -> bool {
    let first = command.split_whitespace().next().unwrap_or_default();
    matches!(first, "while" | "until" | "for" | "if" | "case" | "{" | "(") || first.starts_with('(')
}

/// Images that commonly ship without `/bin/sh`.
pub fn may_lack_shell(image: &str) -> bool {
    let i = image.to_ascii_lowercase();
    [
        "distroless",
        "cgr.dev/",
        "chainguard",
        "paketo",
        "buildpacks",
        "scratch",
    ]
    .iter()
    .any(|marker| i.contains(marker))
}

/// How long Istio's sidecar keeps serving after SIGTERM before it exits, unless the pod's
/// `proxy.istio.io/config` (or the mesh's default) sets `terminationDrainDuration`.
pub const ISTIO_DRAIN_SECONDS: u32 = 5;

/// Istio's proxy injected as a regular container (classic injection, not a native sidecar) gets
/// SIGTERM as the pod's deletion starts and exits after its drain, while the apps' preStop still
/// runs: from then on their traffic, in and out, has no proxy. A warning when the longest
/// preStop podgrace counts (`longest`: container and seconds) outlasts it and the pod does not
/// set the drain itself.
pub fn classic_istio_sidecar(
    containers: &[Container],
    annotations: Option<&std::collections::BTreeMap<String, String>>,
    longest: Option<(&str, u32)>,
) -> Option<String> {
    let (name, seconds) = longest.filter(|(_, s)| *s > ISTIO_DRAIN_SECONDS)?;
    let proxy = containers.iter().find(|c| c.name == "istio-proxy")?;
    let config = annotations
        .and_then(|a| a.get("proxy.istio.io/config"))
        .map_or("", String::as_str);
    // With EXIT_ON_ZERO_ACTIVE_CONNECTIONS true the drain is MINIMUM_DRAIN_DURATION, then until
    // no connection is left, and terminationDrainDuration is not used.
    const EXIT_ON_ZERO: &str = "EXIT_ON_ZERO_ACTIVE_CONNECTIONS";
    let quote = |ch: char| ch == '"' || ch == '\'' || ch.is_whitespace();
    let in_config = config.split(EXIT_ON_ZERO).skip(1).any(|rest| {
        let value = rest.trim_start_matches(|ch: char| quote(ch) || ch == ':' || ch == '=');
        go_true(
            value
                .split(|ch: char| quote(ch) || ch == ',' || ch == '}')
                .next()
                .unwrap_or(""),
        )
    });
    let exit_on_zero = in_config
        || proxy
            .env
            .iter()
            .flatten()
            .any(|e| e.name == EXIT_ON_ZERO && e.value.as_deref().is_some_and(go_true));
    let (setting, exits) = if exit_on_zero {
        ("MINIMUM_DRAIN_DURATION", "can exit")
    } else {
        ("terminationDrainDuration", "exits")
    };
    (!config.contains(setting)).then(|| {
        naming(name, |n| {
            format!(
                "podgrace: istio-proxy {exits} {ISTIO_DRAIN_SECONDS}s after SIGTERM, {n} drains {seconds}s: set its {setting}"
            )
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv_container(command: &[&str], args: &[&str]) -> Container {
        let list = |v: &[&str]| (!v.is_empty()).then(|| v.iter().map(|s| s.to_string()).collect());
        Container {
            name: "app".into(),
            command: list(command),
            args: list(args),
            ..Default::default()
        }
    }

    fn image_container(image: &str, command: &[&str]) -> Container {
        Container {
            image: Some(image.to_owned()),
            ..argv_container(command, &[])
        }
    }

    #[test]
    fn what_sh_is_comes_from_the_image_where_its_reference_says() {
        for (image, sh) in [
            ("busybox:1.28", ImageShell::Ash),
            ("docker.io/library/alpine:3.20", ImageShell::Ash),
            ("python:3.12-alpine3.20", ImageShell::Ash),
            ("node:20-alpine", ImageShell::Ash),
            ("debian:bookworm-slim", ImageShell::Dash),
            ("python:3.12-slim-bookworm", ImageShell::Dash),
            ("ubuntu:24.04", ImageShell::Dash),
            (
                "registry.access.redhat.com/ubi9/ubi-minimal:9.4",
                ImageShell::Bash,
            ),
            ("eclipse-temurin:21-jre", ImageShell::Unknown),
            ("registry.example:5000/shop/cart:1.4", ImageShell::Unknown),
            // The registry host is no part of the image's family.
            ("alpine.registry.example/shop/cart:1.4", ImageShell::Unknown),
        ] {
            assert_eq!(image_sh(image), sh, "{image}");
        }
    }

    /// Measured with busybox 1.35 (`busybox sh -c 'cd / && sleep 100'`: the process is `sleep`,
    /// no shell left) and dash 0.5.12 (`dash -c 'sleep 100'`: dash stays, `sleep` its child).
    #[test]
    fn sh_without_exec_is_worded_by_what_the_image_says_sh_is() {
        let script = ["/bin/sh", "-c", "date; echo Hello from the cluster"];
        assert_eq!(
            shell_pid1(&image_container("busybox:1.28", &script), true),
            None
        );
        let piped = ["/bin/sh", "-c", "app | tee /log"];
        let w = shell_pid1(&image_container("alpine:3.20", &piped), true).unwrap();
        assert!(w.contains("pipeline") && !w.contains("dash"), "{w}");
        let w = shell_pid1(&image_container("debian:bookworm", &script), true).unwrap();
        assert!(
            w.starts_with("sh -c without exec: dash (Debian's sh) stays PID 1"),
            "{w}"
        );
        let w = shell_pid1(&image_container("shop/cart:1.4", &script), true).unwrap();
        assert!(
            w.starts_with("sh -c without exec: if sh is dash (Debian's), it stays PID 1"),
            "{w}"
        );
    }

    #[test]
    fn a_shell_hook_in_a_shell_less_image_is_one_trap_for_every_adapter() {
        let hook = LifecycleHandler {
            exec: Some(k8s_openapi::api::core::v1::ExecAction {
                command: Some(vec!["/bin/sh".into(), "-c".into(), "sleep 20".into()]),
            }),
            ..Default::default()
        };
        let c = image_container(
            "gcr.io/distroless/java21-debian12",
            &["java", "-jar", "app.jar"],
        );
        let traps = container_traps(&c, Some(&hook), true, true);
        assert_eq!(traps.len(), 1, "{traps:?}");
        assert_eq!(traps[0].0, Trap::PrestopNeedsShell);
        let c = image_container("eclipse-temurin:21-jre", &["java", "-jar", "app.jar"]);
        assert!(container_traps(&c, Some(&hook), true, true).is_empty());
    }

    #[test]
    fn dash_keeps_pid_1_so_sh_without_exec_is_flagged() {
        let w = shell_pid1(
            &argv_container(&["/bin/sh", "-c", "java -jar app.jar"], &[]),
            true,
        )
        .unwrap();
        assert!(w.contains("dash"), "{w}");
        assert!(
            shell_pid1(
                &argv_container(&["dash", "-ec"], &["cd /app && ./run"]),
                true
            )
            .is_some()
        );
    }

    #[test]
    fn bash_and_ash_exec_the_last_simple_command_themselves() {
        for program in ["bash", "/bin/ash"] {
            assert_eq!(
                shell_pid1(
                    &argv_container(&[program, "-c", "source /env && app --serve"], &[]),
                    true
                ),
                None,
                "{program}"
            );
        }
        let w = shell_pid1(
            &argv_container(&["bash", "-c", "app | tee /log"], &[]),
            true,
        )
        .unwrap();
        assert!(w.contains("pipeline"), "{w}");
    }

    #[test]
    fn exec_in_the_script_is_fine() {
        assert!(
            shell_pid1(
                &argv_container(&["/bin/sh", "-c", "exec java -jar app.jar"], &[]),
                true
            )
            .is_none()
        );
        assert!(
            shell_pid1(
                &argv_container(&["sh", "-c", "cd /app && exec ./server"], &[]),
                true
            )
            .is_none()
        );
        assert!(shell_pid1(&argv_container(&["java", "-jar", "app.jar"], &[]), true).is_none());
        assert!(shell_pid1(&argv_container(&[], &["-c", "anything"]), true).is_none());
        // busybox's `args: [/bin/sh, -c, ...]`: no entrypoint, the shell runs the app.
        let busybox = argv_container(&[], &["/bin/sh", "-c", "httpd -f -p 8080"]);
        assert!(shell_pid1(&busybox, true).is_some());
        let exec = argv_container(&[], &["/bin/sh", "-c", "exec httpd -f -p 8080"]);
        assert!(shell_pid1(&exec, true).is_none());
        // Other arguments go to an entrypoint podgrace cannot see.
        assert!(shell_pid1(&argv_container(&[], &["--port", "8080"]), true).is_none());
        // Pulsar's charts: the last line sets a variable for the exec'd command only.
        let pulsar = "bin/apply-config-from-env.py conf/broker.conf;\n\
                      OPTS=\"${OPTS} -Dlog4j2.formatMsgNoLookups=true\" exec bin/pulsar broker;\n";
        assert!(shell_pid1(&argv_container(&["sh", "-c", pulsar], &[]), true).is_none());
        let without = "OPTS=\"-Xmx1g\" bin/pulsar broker";
        assert!(shell_pid1(&argv_container(&["sh", "-c", without], &[]), true).is_some());
    }

    #[test]
    fn shell_script_entrypoints_are_flagged() {
        let w = shell_pid1(
            &argv_container(&["/docker-entrypoint.sh"], &["serve"]),
            true,
        )
        .unwrap();
        assert!(w.starts_with("docker-entrypoint.sh is PID 1"), "{w}");
        assert!(shell_pid1(&argv_container(&["bash", "/opt/start.sh"], &[]), true).is_some());
    }

    /// With `shareProcessNamespace` the pause container is PID 1: an idle command dies on
    /// SIGTERM like any process, and a shell without exec dies too, taking the app with it.
    #[test]
    fn in_a_shared_process_namespace_no_container_is_pid_1() {
        let sleeper = argv_container(&["sleep", "infinity"], &[]);
        assert_eq!(
            container_traps(&sleeper, None, true, true)[0].0,
            Trap::IgnoresSigterm
        );
        assert!(container_traps(&sleeper, None, true, false).is_empty());
        let shell = argv_container(&["sh", "-c", "java -jar app.jar"], &[]);
        let traps = container_traps(&shell, None, true, false);
        assert_eq!(traps.len(), 1);
        assert_eq!(traps[0].0, Trap::ShellPid1);
        assert!(!traps[0].1.contains("PID 1"), "{}", traps[0].1);
        assert!(traps[0].1.contains("the app is killed"), "{}", traps[0].1);
        let script = argv_container(&["/docker-entrypoint.sh"], &["serve"]);
        let w = shell_pid1(&script, false).unwrap();
        assert!(
            w.starts_with("docker-entrypoint.sh is the container's process"),
            "{w}"
        );
        // bash execs the last simple command either way.
        assert!(shell_pid1(&argv_container(&["bash", "-c", "app"], &[]), false).is_none());
    }

    #[test]
    fn idle_pid_1_commands_are_said_to_ignore_sigterm() {
        for (command, args) in [
            (&["/bin/sleep"][..], &["infinity"][..]),
            (&["sleep", "3650d"][..], &[][..]),
            (&["tail", "-f", "/dev/null"][..], &[][..]),
            (
                &["/bin/sh", "-c"][..],
                &["while true; do sleep 30; done"][..],
            ),
            (
                &["sh", "-c", "echo ready; exec sleep infinity"][..],
                &[][..],
            ),
        ] {
            let w = ignores_sigterm(&argv_container(command, args));
            assert!(
                w.is_some_and(|w| w.contains("ignores SIGTERM")),
                "{command:?} {args:?}"
            );
        }
        // A pipeline keeps the shell as PID 1: it is the one named, not its first command.
        let piped = argv_container(
            &["/bin/sh", "-c", "tail -F /var/log/app.log | forward"],
            &[],
        );
        assert_eq!(
            ignores_sigterm(&piped).as_deref(),
            Some("PID 1 `a shell pipeline` ignores SIGTERM: each stop waits out the grace period")
        );
        for (command, args) in [
            (&["nginx", "-g", "daemon off;"][..], &[][..]),
            (
                &[
                    "sh",
                    "-c",
                    "trap 'exit 0' TERM; while true; do sleep 1; done",
                ][..],
                &[][..],
            ),
            (&["tail", "/var/log/x"][..], &[][..]),
        ] {
            assert_eq!(
                ignores_sigterm(&argv_container(command, args)),
                None,
                "{command:?}"
            );
        }
    }

    #[test]
    fn every_name_is_shortened_the_same_way() {
        let name = "argocd-notifications-controller";
        let w = container(name, &"y".repeat(90));
        let short = w
            .strip_prefix("podgrace: container ")
            .and_then(|r| r.split(": ").next())
            .unwrap();
        assert_eq!(short, shorten(name, short.chars().count()));
        assert_eq!(
            shorten("docker-entrypoint-with-a-long-name.sh", 12),
            "docker…me.sh"
        );
        assert_eq!(shorten("short.sh", 12), "short.sh");
    }

    #[test]
    fn long_names_are_shortened_and_the_advice_is_kept() {
        let name = "x".repeat(63);
        let message = "y".repeat(80);
        let w = container(&name, &message);
        assert!(w.chars().count() <= MAX_LEN, "{w}");
        assert!(w.ends_with(&message));
        assert!(w.contains("xxx…xxx") && w.contains("x: y"), "{w}");
        assert_eq!(container("app", "short"), "podgrace: container app: short");
        // Cut in the middle: two containers that share a prefix stay told apart.
        let reload = container("prometheus-server-configmap-reload", &"y".repeat(80));
        assert!(reload.contains("promethe…p-reload: "), "{reload}");
    }

    /// RocketMQ's proxy: `sh -c` without exec is PID 1, but its own preStop runs `mqshutdown`,
    /// which kills the JVM by its PID: SIGTERM not reaching the app is no trap there.
    #[test]
    fn a_shell_pid_1_is_no_trap_when_the_prestop_stops_the_app_itself() {
        let c = argv_container(&["/bin/sh", "-c", "./bin/mqproxy"], &[]);
        let traps = |hook: &[&str]| {
            let hook = LifecycleHandler {
                exec: Some(k8s_openapi::api::core::v1::ExecAction {
                    command: Some(hook.iter().map(|s| s.to_string()).collect()),
                }),
                ..Default::default()
            };
            container_traps(&c, Some(&hook), false, true)
                .into_iter()
                .map(|(t, _)| t)
                .collect::<Vec<_>>()
        };
        assert_eq!(traps(&["sh", "./bin/mqshutdown", "proxy"]), []);
        assert_eq!(traps(&["/bin/sh", "-c", "pkill -TERM java; sleep 5"]), []);
        assert_eq!(traps(&["sleep", "10"]), [Trap::ShellPid1]);
        assert_eq!(
            container_traps(&c, None, false, true)
                .into_iter()
                .map(|(t, _)| t)
                .collect::<Vec<_>>(),
            [Trap::ShellPid1]
        );
    }

    #[test]
    fn shell_less_images_are_recognised() {
        assert!(may_lack_shell("gcr.io/distroless/java21-debian12"));
        assert!(may_lack_shell("cgr.dev/chainguard/nginx"));
        assert!(!may_lack_shell("eclipse-temurin:21-jre"));
    }
}
