//! Framework presets: environment variables that switch on an application's own graceful
//! shutdown, sized to the policy's shutdown allowance.

use k8s_openapi::api::core::v1::EnvVar;

use super::env;
use crate::policy::spec::Preset;

/// The variables of a preset for an application allowed `shutdown` seconds to stop.
///
/// Spring Boot: `server.shutdown=graceful` (stop accepting, finish in-flight requests) and
/// `spring.lifecycle.timeout-per-shutdown-phase` (relaxed binding accepts the
/// underscore-for-dash form used here).
pub fn env(preset: Preset, shutdown: u32) -> Vec<EnvVar> {
    match preset {
        Preset::SpringBoot => vec![
            env::literal("SERVER_SHUTDOWN", "graceful".to_owned()),
            env::literal(
                "SPRING_LIFECYCLE_TIMEOUT_PER_SHUTDOWN_PHASE",
                format!("{shutdown}s"),
            ),
        ],
    }
}
