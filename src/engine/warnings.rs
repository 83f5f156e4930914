//! Admission warnings for the traps podgrace can see but not fix. kubectl prints each one; the
//! API recommends at most 120 characters, so every warning is cut to fit.

use k8s_openapi::api::core::v1::Container;

use super::shell;

/// Longest warning, in characters.
pub const MAX_LEN: usize = 120;

/// A warning about one container.
pub fn container(name: &str, message: &str) -> String {
    fit(format!("podgrace: container {name}: {message}"))
}

/// A warning about the pod.
pub fn pod(message: &str) -> String {
    fit(format!("podgrace: {message}"))
}

/// Cuts `s` to [`MAX_LEN`] characters, marking the cut.
pub fn fit(s: String) -> String {
    if s.chars().count() <= MAX_LEN {
        return s;
    }
    let mut out: String = s.chars().take(MAX_LEN - 1).collect();
    out.push('…');
    out
}

/// A shell as PID 1 that will not pass SIGTERM on: `sh -c 'app'` without `exec`, or a `*.sh`
/// entrypoint (which must `exec` the app itself; podgrace cannot see inside it).
pub fn shell_pid1(c: &Container) -> Option<String> {
    // Without `command` the image's ENTRYPOINT runs, which podgrace cannot see.
    let command = c.command.as_ref().filter(|c| !c.is_empty())?;
    let argv: Vec<String> = command
        .iter()
        .chain(c.args.iter().flatten())
        .cloned()
        .collect();
    if let Some(script) = shell::dash_c_script(&argv) {
        return (!execs(script)).then(|| {
            format!(
                "{} -c without exec is PID 1 and swallows SIGTERM: start the app with exec",
                argv[0].rsplit('/').next().unwrap_or(&argv[0])
            )
        });
    }
    let script = if shell::is_shell(&argv[0]) {
        argv.get(1)
    } else {
        argv.first()
    };
    let script = script.filter(|s| s.ends_with(".sh"))?;
    Some(format!(
        "{script} is PID 1: it must exec the app, or SIGTERM never reaches it"
    ))
}

/// Whether a `-c` script hands PID 1 to the app with `exec`.
fn execs(script: &str) -> bool {
    script
        .split([';', '&', '|', '\n'])
        .map(str::trim_start)
        .any(|cmd| cmd == "exec" || cmd.starts_with("exec ") || cmd.starts_with("exec\t"))
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

    #[test]
    fn shell_without_exec_is_flagged() {
        assert!(
            shell_pid1(&argv_container(
                &["/bin/sh", "-c", "java -jar app.jar"],
                &[]
            ))
            .is_some()
        );
        assert!(shell_pid1(&argv_container(&["bash", "-ec"], &["cd /app && ./run"])).is_some());
    }

    #[test]
    fn exec_in_the_script_is_fine() {
        assert!(
            shell_pid1(&argv_container(
                &["/bin/sh", "-c", "exec java -jar app.jar"],
                &[]
            ))
            .is_none()
        );
        assert!(
            shell_pid1(&argv_container(
                &["sh", "-c", "cd /app && exec ./server"],
                &[]
            ))
            .is_none()
        );
        assert!(shell_pid1(&argv_container(&["java", "-jar", "app.jar"], &[])).is_none());
        assert!(shell_pid1(&argv_container(&[], &["-c", "anything"])).is_none());
    }

    #[test]
    fn shell_script_entrypoints_are_flagged() {
        let w = shell_pid1(&argv_container(&["/docker-entrypoint.sh"], &["serve"])).unwrap();
        assert!(w.starts_with("/docker-entrypoint.sh is PID 1"), "{w}");
        assert!(shell_pid1(&argv_container(&["bash", "/opt/start.sh"], &[])).is_some());
    }

    #[test]
    fn warnings_fit_in_120_characters() {
        let w = container(&"x".repeat(63), &"y".repeat(200));
        assert_eq!(w.chars().count(), MAX_LEN);
        assert!(w.ends_with('…'));
    }

    #[test]
    fn shell_less_images_are_recognised() {
        assert!(may_lack_shell("gcr.io/distroless/java21-debian12"));
        assert!(may_lack_shell("cgr.dev/chainguard/nginx"));
        assert!(!may_lack_shell("eclipse-temurin:21-jre"));
    }
}
