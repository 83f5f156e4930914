//! Framework presets: environment variables that switch on an application's own graceful
//! shutdown, sized to the policy's shutdown allowance, and its own readiness signal where the
//! pod is probed for it.

use k8s_openapi::api::core::v1::{Container, EnvVar};

use super::{env, probes, spring_property};
use crate::policy::ContainerPolicy;
use crate::policy::spec::Preset;

/// Spring Boot's switch for the actuator's `liveness` and `readiness` health groups.
pub const SPRING_PROBES_ENABLED: &str = "MANAGEMENT_ENDPOINT_HEALTH_PROBES_ENABLED";
/// The property it sets, as written in arguments, system properties or other variables.
const SPRING_PROBES_PROPERTY: &str = "management.endpoint.health.probes.enabled";

/// The variables of a preset for container `c` under its policy `p`.
///
/// Spring Boot: `server.shutdown=graceful` (stop accepting, finish in-flight requests) and
/// `spring.lifecycle.timeout-per-shutdown-phase` sized to `shutdownSeconds` (relaxed binding
/// accepts the underscore-for-dash form used here). Where the container's readiness probe (its
/// own, or the one podgrace injects) asks the actuator's readiness group over HTTP, also
/// `management.endpoint.health.probes.enabled=true`: the group exists only when Spring Boot
/// detects Kubernetes or is told so, and a probe of a missing group keeps the pod unready.
pub fn env(preset: Preset, c: &Container, p: &ContainerPolicy) -> Vec<EnvVar> {
    match preset {
        Preset::SpringBoot => {
            let mut vars = vec![
                env::literal("SERVER_SHUTDOWN", "graceful".to_owned()),
                env::literal(
                    "SPRING_LIFECYCLE_TIMEOUT_PER_SHUTDOWN_PHASE",
                    format!("{}s", p.shutdown),
                ),
            ];
            if probes_actuator_readiness(c, p) && !sets_probes_property(c) {
                vars.push(env::literal(SPRING_PROBES_ENABLED, "true".to_owned()));
            }
            vars
        }
    }
}

/// Whether the container's readiness probe is an HTTP GET of the actuator's readiness group
/// (`…/health/readiness`, whatever the actuator's base path).
fn probes_actuator_readiness(c: &Container, p: &ContainerPolicy) -> bool {
    let injected = probes::injected_readiness(c, p).map(|(probe, _)| probe);
    let Some(get) = c
        .readiness_probe
        .as_ref()
        .or(injected.as_ref())
        .and_then(|probe| probe.http_get.as_ref())
    else {
        return false;
    };
    let path = get.path.as_deref().unwrap_or("/");
    let path = path.split(['?', '#']).next().unwrap_or(path);
    path.trim_end_matches('/').ends_with("/health/readiness")
}

/// Whether the container already sets `management.endpoint.health.probes.enabled` (true or
/// false: the user's choice stands), in any spelling Spring reads ([`spring_property`]).
fn sets_probes_property(c: &Container) -> bool {
    spring_property::find(c, SPRING_PROBES_PROPERTY).is_some()
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

    fn names(c: &Container, p: &ContainerPolicy) -> Vec<String> {
        env(Preset::SpringBoot, c, p)
            .into_iter()
            .map(|v| v.name)
            .collect()
    }

    fn app(extra: serde_json::Value) -> Container {
        let mut c = serde_json::json!({"name": "app", "ports": [{"containerPort": 8080}]});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        serde_json::from_value(c).unwrap()
    }

    const ACTUATOR: &str = "readiness: {handler: http, path: /actuator/health/readiness}\n";

    #[test]
    fn graceful_shutdown_is_sized_to_the_shutdown_allowance() {
        let vars = env(
            Preset::SpringBoot,
            &app(serde_json::json!({})),
            &policy("shutdownSeconds: 45\n"),
        );
        assert_eq!(vars[0].value.as_deref(), Some("graceful"));
        assert_eq!(vars[1].value.as_deref(), Some("45s"));
        assert_eq!(
            vars.len(),
            2,
            "a TCP readiness probe needs no actuator group"
        );
    }

    #[test]
    fn the_readiness_group_is_switched_on_where_readiness_asks_the_actuator() {
        let injected = names(&app(serde_json::json!({})), &policy(ACTUATOR));
        assert_eq!(
            injected.last().map(String::as_str),
            Some(SPRING_PROBES_ENABLED)
        );
        let own = app(serde_json::json!({"readinessProbe": {"httpGet": {
            "path": "/api/manage/health/readiness/", "port": 8080}}}));
        assert!(names(&own, &policy("")).contains(&SPRING_PROBES_ENABLED.to_owned()));
        let elsewhere = app(
            serde_json::json!({"readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}}}),
        );
        assert_eq!(names(&elsewhere, &policy(ACTUATOR)).len(), 2);
        // No port: podgrace injects no probe, so nothing asks the actuator.
        let portless: Container = serde_json::from_value(serde_json::json!({"name": "w"})).unwrap();
        assert_eq!(names(&portless, &policy(ACTUATOR)).len(), 2);
    }

    #[test]
    fn a_users_own_setting_stands_whatever_its_spelling() {
        for extra in [
            serde_json::json!({"env": [{"name": "MANAGEMENT_ENDPOINT_HEALTH_PROBES_ENABLED", "value": "false"}]}),
            serde_json::json!({"env": [{"name": "management.endpoint.health.probes.enabled", "value": "true"}]}),
            serde_json::json!({"env": [{"name": "JAVA_TOOL_OPTIONS", "value": "-Dmanagement.endpoint.health.probes.enabled=false"}]}),
            serde_json::json!({"args": ["--management.endpoint.health.probes.enabled=false"]}),
        ] {
            let c = app(extra.clone());
            assert_eq!(names(&c, &policy(ACTUATOR)).len(), 2, "{extra}");
        }
    }
}
