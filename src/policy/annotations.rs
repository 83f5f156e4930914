//! The pod-level layer: a small, documented set of `podgrace.io/...` annotations (and the opt-out
//! label) that override the namespace policy for one workload.
//!
//! | key | values |
//! |---|---|
//! | label or annotation `podgrace.io/inject` | `disabled` (or a YAML 1.1 false: `false`, `no`, `off`) skips the pod |
//! | `podgrace.io/action` | `sleep`, `exec`, `nginx`, `nacos`, `none` |
//! | `podgrace.io/sleep-seconds` | 0-3600 |
//! | `podgrace.io/shutdown-seconds` | 0-3600 |
//! | `podgrace.io/readiness` | `disabled`/`false` to inject no readiness probe |
//! | `podgrace.io/prestop-seconds` | 0-3600: how long the pod's own preStop hooks run |
//! | `podgrace.io/drain` | `fixed`, `adaptive` |
//! | `podgrace.io/drain-max-seconds` | 1-3600: the adaptive drain's ceiling |

use std::collections::BTreeMap;

use serde::Deserialize as _;
use serde::de::IntoDeserializer as _;

use super::error::FieldError;
use super::seconds::Seconds;
use super::spec::{ActionKind, DrainMode, DrainSpec, PolicySpec, PreStopSpec, ReadinessSpec};

/// Opt-out label/annotation key.
pub const INJECT: &str = "podgrace.io/inject";
/// preStop action override.
pub const ACTION: &str = "podgrace.io/action";
/// Drain sleep override.
pub const SLEEP_SECONDS: &str = "podgrace.io/sleep-seconds";
/// Application shutdown override.
pub const SHUTDOWN_SECONDS: &str = "podgrace.io/shutdown-seconds";
/// Readiness injection switch.
pub const READINESS: &str = "podgrace.io/readiness";
/// Drain mode override.
pub const DRAIN: &str = "podgrace.io/drain";
/// Adaptive drain ceiling override.
pub const DRAIN_MAX_SECONDS: &str = "podgrace.io/drain-max-seconds";
/// The exact duration of the pod's own (kept) preStop hooks.
pub const PRESTOP_SECONDS: &str = "podgrace.io/prestop-seconds";

/// What a pod's labels and annotations ask of podgrace.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodOverrides {
    /// The pod opted out.
    pub opt_out: bool,
    /// The overriding layer (empty when nothing is set).
    pub spec: PolicySpec,
    /// How long the pod's own preStop hooks run, as the pod declares it.
    pub prestop_seconds: Option<u32>,
    /// Annotations that could not be read; they are ignored, and reported.
    pub errors: Vec<FieldError>,
}

impl PodOverrides {
    /// The override layer, if it sets anything.
    pub fn layer(&self) -> Option<&PolicySpec> {
        (self.spec != PolicySpec::default()).then_some(&self.spec)
    }
}

/// Reads the overrides from a pod's (or pod template's) labels and annotations.
pub fn read(
    labels: Option<&BTreeMap<String, String>>,
    annotations: Option<&BTreeMap<String, String>>,
) -> PodOverrides {
    let mut out = PodOverrides::default();
    let empty = BTreeMap::new();
    let annotations = annotations.unwrap_or(&empty);
    let labels = labels.unwrap_or(&empty);

    for (kind, map) in [("label", labels), ("annotation", annotations)] {
        if let Some(v) = map.get(INJECT) {
            match switch(v) {
                Some(on) => out.opt_out |= !on,
                None => out.errors.push(FieldError::new(
                    format!("{kind} {INJECT}"),
                    format!(
                        "{} is not enabled or disabled (nor true/false, yes/no, on/off)",
                        shown(v)
                    ),
                )),
            }
        }
    }

    let mut pre_stop = PreStopSpec::default();
    if let Some(v) = annotations.get(ACTION) {
        // The annotation is a plain string, not YAML: the enum's own names, nothing else.
        let name: serde::de::value::StrDeserializer<'_, serde::de::value::Error> =
            v.trim().into_deserializer();
        match ActionKind::deserialize(name) {
            Ok(a) if !v.trim().is_empty() => pre_stop.action = Some(a),
            _ => out.errors.push(FieldError::new(
                format!("annotation {ACTION}"),
                format!("{} is not sleep, exec, nginx, nacos or none", shown(v)),
            )),
        }
    }
    pre_stop.sleep_seconds = seconds(annotations, SLEEP_SECONDS, &mut out.errors);
    let mut drain = DrainSpec::default();
    if let Some(v) = annotations.get(DRAIN) {
        let name: serde::de::value::StrDeserializer<'_, serde::de::value::Error> =
            v.trim().into_deserializer();
        match DrainMode::deserialize(name) {
            Ok(m) => drain.mode = Some(m),
            Err(_) => out.errors.push(FieldError::new(
                format!("annotation {DRAIN}"),
                format!("{} is not fixed or adaptive", shown(v)),
            )),
        }
    }
    drain.max_seconds = match seconds(annotations, DRAIN_MAX_SECONDS, &mut out.errors) {
        Some(s) if s.get() == 0 => {
            out.errors.push(FieldError::new(
                format!("annotation {DRAIN_MAX_SECONDS}"),
                "0 is not an adaptive drain's ceiling (1-3600)",
            ));
            None
        }
        other => other,
    };
    if drain != DrainSpec::default() {
        pre_stop.drain = Some(drain);
    }
    if pre_stop != PreStopSpec::default() {
        out.spec.pre_stop = Some(pre_stop);
    }
    out.spec.shutdown_seconds = seconds(annotations, SHUTDOWN_SECONDS, &mut out.errors);
    out.prestop_seconds = seconds(annotations, PRESTOP_SECONDS, &mut out.errors).map(Seconds::get);
    if let Some(v) = annotations.get(READINESS) {
        match switch(v) {
            Some(false) => {
                out.spec.readiness = Some(ReadinessSpec {
                    inject: Some(false),
                    ..Default::default()
                })
            }
            Some(true) => {}
            None => out.errors.push(FieldError::new(
                format!("annotation {READINESS}"),
                format!("{} is not enabled or disabled", shown(v)),
            )),
        }
    }
    out
}

/// A user's value quoted for a message, cut so that the message (an admission warning) fits.
fn shown(v: &str) -> String {
    const MAX: usize = 16;
    if v.chars().count() <= MAX {
        format!("{v:?}")
    } else {
        format!("{:?}…", v.chars().take(MAX).collect::<String>())
    }
}

/// An on/off switch: `enabled`/`disabled`, and every word kubectl's YAML 1.1 reader takes for a
/// boolean (`true`, `yes`, `on`, `y`; `false`, `no`, `off`, `n`): a user who writes `"yes"`
/// means what an unquoted `yes` means to kubectl elsewhere in the same manifest.
fn switch(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "enabled" | "true" | "yes" | "on" | "y" => Some(true),
        "disabled" | "false" | "no" | "off" | "n" => Some(false),
        _ => None,
    }
}

fn seconds(
    annotations: &BTreeMap<String, String>,
    key: &str,
    errors: &mut Vec<FieldError>,
) -> Option<Seconds> {
    let v = annotations.get(key)?;
    match v.parse::<Seconds>() {
        Ok(s) => Some(s),
        Err(_) => {
            errors.push(FieldError::new(
                format!("annotation {key}"),
                format!("{} is not a number of seconds (0-3600)", shown(v)),
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The overrides read from a pod with these labels and annotations.
    fn meta(labels: &[(&str, &str)], annotations: &[(&str, &str)]) -> PodOverrides {
        let map = |p: &[(&str, &str)]| -> BTreeMap<String, String> {
            p.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        read(Some(&map(labels)), Some(&map(annotations)))
    }

    #[test]
    fn opt_out_by_label_or_annotation() {
        assert!(meta(&[(INJECT, "disabled")], &[]).opt_out);
        assert!(meta(&[], &[(INJECT, "false")]).opt_out);
        assert!(!meta(&[(INJECT, "enabled")], &[]).opt_out);
    }

    /// What an unquoted `yes` or `off` means to kubectl (YAML 1.1) elsewhere in the manifest,
    /// the quoted word means here.
    #[test]
    fn switches_read_yaml_1_1_words_as_kubectl_reads_them() {
        for off in ["no", "off", "No", "OFF", "n"] {
            let o = meta(&[(INJECT, off)], &[(READINESS, off)]);
            assert!(o.opt_out && o.errors.is_empty(), "{off}: {:?}", o.errors);
        }
        for on in ["yes", "on", "Yes", "y"] {
            let o = meta(&[], &[(INJECT, on)]);
            assert!(!o.opt_out && o.errors.is_empty(), "{on}: {:?}", o.errors);
        }
        let o = meta(&[], &[(INJECT, "maybe")]);
        assert!(
            o.errors[0].to_string().contains("not enabled or disabled"),
            "{:?}",
            o.errors
        );
    }

    #[test]
    fn overrides_become_a_policy_layer() {
        let o = meta(
            &[],
            &[
                (ACTION, "none"),
                (SLEEP_SECONDS, "20"),
                (SHUTDOWN_SECONDS, "45"),
                (READINESS, "disabled"),
            ],
        );
        assert!(o.errors.is_empty(), "{:?}", o.errors);
        let ps = o.spec.pre_stop.as_ref().unwrap();
        assert_eq!(ps.action, Some(ActionKind::None));
        assert_eq!(ps.sleep_seconds.map(|s| s.get()), Some(20));
        assert_eq!(o.spec.shutdown_seconds.map(|s| s.get()), Some(45));
        assert_eq!(o.spec.readiness.as_ref().unwrap().inject, Some(false));
    }

    #[test]
    fn the_drain_mode_and_ceiling_are_overridden_by_annotation() {
        let o = meta(&[], &[(DRAIN, "adaptive"), (DRAIN_MAX_SECONDS, "45")]);
        assert!(o.errors.is_empty(), "{:?}", o.errors);
        let d = o.spec.pre_stop.as_ref().unwrap().drain.as_ref().unwrap();
        assert_eq!(d.mode, Some(DrainMode::Adaptive));
        assert_eq!(d.max_seconds.map(|s| s.get()), Some(45));
        let bad = meta(&[], &[(DRAIN, "smart"), (DRAIN_MAX_SECONDS, "0")]);
        assert_eq!(bad.errors.len(), 2, "{:?}", bad.errors);
        assert!(bad.layer().is_none());
    }

    #[test]
    fn bad_values_are_reported_by_key_and_ignored() {
        let o = meta(
            &[],
            &[
                (SLEEP_SECONDS, "ten"),
                (ACTION, "sleepy"),
                (SHUTDOWN_SECONDS, "9999"),
            ],
        );
        assert_eq!(o.errors.len(), 3);
        let text: Vec<String> = o.errors.iter().map(|e| e.to_string()).collect();
        assert!(
            text.iter()
                .any(|t| t.starts_with("annotation podgrace.io/sleep-seconds: ")
                    && t.contains("\"ten\""))
        );
        assert!(text.iter().any(|t| t.contains("9999")));
        assert!(o.layer().is_none());
    }
}
