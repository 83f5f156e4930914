//! Settings that do nothing, or less than they seem to: a policy that is valid and complete, but
//! where a value never reaches a pod (a start time with `inject: false`, an `exec` action with no
//! duration to count, a `nacos` hook that reads a pod-IP variable no one adds). Not errors:
//! `podgrace policy check` prints them as notes, and `podgrace mutate --explain` for each
//! container. Checked on a merged policy (every layer under it), so that a value set in one
//! layer and disabled in another is seen. Pure.

use super::defaults;
use super::error::FieldError;
use super::spec::*;

/// The notes of a merged policy, each at the field it concerns.
pub fn notes(spec: &PolicySpec) -> Vec<FieldError> {
    let mut out = Vec::new();
    let pre_stop = spec.pre_stop.clone().unwrap_or_default();
    let action = pre_stop.action.unwrap_or(ActionKind::Sleep);
    if action == ActionKind::Exec
        && pre_stop
            .exec
            .as_ref()
            .is_none_or(|e| e.duration_seconds.is_none())
    {
        let unknown = pre_stop
            .unknown_hook_seconds
            .unwrap_or(defaults::UNKNOWN_HOOK)
            .get();
        out.push(FieldError::new(
            "preStop.exec.durationSeconds",
            format!(
                "not set: the command is counted as preStop.unknownHookSeconds ({unknown}s) in the grace period, as a hook podgrace cannot read; set how long it takes"
            ),
        ));
    }
    let pod_ip = spec.env.as_ref().and_then(|e| e.pod_ip.as_deref());
    if action == ActionKind::Nacos && pod_ip == Some("") {
        out.push(FieldError::new(
            "env.podIP",
            format!(
                "is \"\" (none), but the nacos hook needs the pod's address and adds ${} all the same; name another variable here to have it there",
                defaults::POD_IP_ENV
            ),
        ));
    }
    if let Some(s) = &spec.startup {
        match (s.inject, s.max_seconds) {
            (Some(false), Some(max)) => out.push(FieldError::new(
                "startup.inject",
                format!(
                    "is false: startup.maxSeconds {} only warns about a liveness probe that restarts the app sooner; no startupProbe is added",
                    max.get()
                ),
            )),
            (_, None) if s.period_seconds.is_some() => out.push(FieldError::new(
                "startup.periodSeconds",
                "does nothing: no start time is declared (startup.maxSeconds)",
            )),
            _ => {}
        }
    }
    let adaptive = pre_stop
        .drain
        .as_ref()
        .is_some_and(|d| d.mode == Some(DrainMode::Adaptive));
    if adaptive && matches!(action, ActionKind::Exec | ActionKind::None) {
        out.push(FieldError::new(
            "preStop.drain.mode",
            format!(
                "is adaptive, but preStop.action {} has no drain: nothing watches the traffic",
                action.as_str()
            ),
        ));
    }
    if adaptive && pre_stop.sleep_seconds.is_some_and(|s| s != defaults::SLEEP) {
        out.push(FieldError::new(
            "preStop.sleepSeconds",
            "does nothing under preStop.drain.mode adaptive: the drain lasts until the traffic stops, at most drain.maxSeconds",
        ));
    }
    if let Some(r) = &spec.readiness
        && r.inject == Some(false)
    {
        for (field, said) in [("path", r.path.is_some()), ("port", r.port.is_some())] {
            if said {
                out.push(FieldError::new(
                    format!("readiness.{field}"),
                    "does nothing: readiness.inject is false",
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::merge::Merge;
    use crate::policy::parse::parse_spec;

    fn merged(yaml: &str) -> Vec<String> {
        let mut spec = defaults::builtin();
        spec.merge_from(&parse_spec(yaml).unwrap());
        notes(&spec).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn the_builtin_policy_has_no_notes() {
        assert_eq!(notes(&defaults::builtin()), []);
    }

    #[test]
    fn an_exec_action_without_a_duration_is_counted_as_an_unreadable_hook_and_said() {
        let n =
            merged("preStop: {action: exec, unknownHookSeconds: 45, exec: {command: [/drain]}}");
        assert_eq!(n.len(), 1, "{n:?}");
        assert!(
            n[0].starts_with("preStop.exec.durationSeconds: not set: the command is counted as preStop.unknownHookSeconds (45s)"),
            "{n:?}"
        );
        assert_eq!(
            merged("preStop: {action: exec, exec: {command: [/drain], durationSeconds: 5}}"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_nacos_hook_without_a_pod_ip_variable_is_said() {
        let n =
            merged("preStop: {action: nacos, nacos: {server: 'http://n:8848'}}\nenv: {podIP: ''}");
        assert_eq!(n.len(), 1, "{n:?}");
        assert!(n[0].starts_with("env.podIP: is \"\" (none), but the nacos hook needs the pod's address and adds $POD_IP"), "{n:?}");
    }

    #[test]
    fn start_settings_that_do_nothing_are_said() {
        let n = merged("startup: {inject: false, maxSeconds: 120}");
        assert!(
            n[0].starts_with("startup.inject: is false: startup.maxSeconds 120 only warns"),
            "{n:?}"
        );
        let n = merged("startup: {periodSeconds: 5}");
        assert_eq!(
            n,
            ["startup.periodSeconds: does nothing: no start time is declared (startup.maxSeconds)"]
        );
        assert_eq!(merged("startup: {maxSeconds: 120}"), Vec::<String>::new());
        let n = merged("readiness: {inject: false, path: /ready}");
        assert_eq!(
            n,
            ["readiness.path: does nothing: readiness.inject is false"]
        );
    }

    #[test]
    fn an_adaptive_drain_without_a_drain_or_with_a_sleep_is_noted() {
        let exec = merged(
            "preStop: {action: exec, exec: {command: [/drain], durationSeconds: 5}, drain: {mode: adaptive}}",
        );
        assert!(
            exec.iter()
                .any(|n| n.starts_with("preStop.drain.mode") && n.contains("action exec")),
            "{exec:?}"
        );
        let sleep = merged("preStop: {sleepSeconds: 35, drain: {mode: adaptive}}");
        assert!(sleep.iter().any(|n| n.starts_with("preStop.sleepSeconds")));
        assert!(merged("preStop: {drain: {mode: adaptive}}").is_empty());
    }
}
