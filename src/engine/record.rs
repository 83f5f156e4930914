//! What podgrace did, kept on the pod (annotations) and returned to the caller (for logs,
//! metrics and audit annotations).

/// Per-container summary: `app: preStop=sleep 10s env=POD_IP readiness=tcp:8080`.
pub const INJECTED: &str = "podgrace.io/injected";
/// Grace period arithmetic.
pub const GRACE: &str = "podgrace.io/grace";
/// The policy layers (and versions) that applied.
pub const POLICY: &str = "podgrace.io/policy";

/// A kind of change, for metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Injection {
    /// A preStop hook was added or replaced.
    PreStop,
    /// Environment variables were added.
    Env,
    /// A readiness probe was added.
    Readiness,
    /// A startupProbe was added.
    Startup,
    /// A framework preset was applied.
    Preset,
    /// The helper init container was added.
    Helper,
    /// The grace period was raised.
    Grace,
}

impl Injection {
    /// Every kind.
    pub const ALL: [Injection; 7] = [
        Injection::PreStop,
        Injection::Env,
        Injection::Readiness,
        Injection::Startup,
        Injection::Preset,
        Injection::Helper,
        Injection::Grace,
    ];

    /// Metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Injection::PreStop => "prestop",
            Injection::Env => "env",
            Injection::Readiness => "readiness",
            Injection::Startup => "startup",
            Injection::Preset => "preset",
            Injection::Helper => "helper",
            Injection::Grace => "grace",
        }
    }
}

/// What happened to one container.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerRecord {
    /// Container name.
    pub name: String,
    /// `key=value` items in patch order.
    pub items: Vec<String>,
    /// The policy rules that matched the container (not written on the pod).
    pub rules: Vec<String>,
}

/// What happened to the pod.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    /// Why the pod was left alone entirely, if it was.
    pub skipped: Option<String>,
    /// Containers that were changed.
    pub containers: Vec<ContainerRecord>,
    /// Grace period arithmetic, when any container has a budget.
    pub grace: Option<String>,
    /// The grace period decision behind `grace` (not written on the pod): `podgrace audit`
    /// reads from it whether the pod's grace period still falls short after the mutation.
    pub decision: Option<super::grace::Decision>,
    /// The policy layers that applied.
    pub policy: String,
    /// Kinds of changes made, for metrics (one entry per change).
    pub injections: Vec<Injection>,
}

/// Merges this run's container entries into an existing `podgrace.io/injected` value, so that a
/// reinvocation (after another webhook added a container) keeps the earlier entries.
pub fn merge_injected(existing: Option<&str>, entries: &[ContainerRecord]) -> String {
    let mut parts: Vec<(String, String)> = existing
        .unwrap_or_default()
        .split("; ")
        .filter_map(|p| p.split_once(": "))
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
    for e in entries {
        let value = e.items.join(" ");
        match parts.iter_mut().find(|(n, _)| *n == e.name) {
            Some(slot) => slot.1 = value,
            None => parts.push((e.name.clone(), value)),
        }
    }
    parts
        .iter()
        .map(|(n, v)| format!("{n}: {v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reinvocation_keeps_earlier_entries() {
        let first = merge_injected(
            None,
            &[ContainerRecord {
                name: "app".into(),
                items: vec!["preStop=sleep 10s".into(), "env=POD_IP".into()],
                rules: vec![],
            }],
        );
        assert_eq!(first, "app: preStop=sleep 10s env=POD_IP");
        let second = merge_injected(
            Some(&first),
            &[ContainerRecord {
                name: "late".into(),
                items: vec!["env=POD_IP".into()],
                rules: vec![],
            }],
        );
        assert_eq!(
            second,
            "app: preStop=sleep 10s env=POD_IP; late: env=POD_IP"
        );
    }
}
