//! One namespace audited: its workloads under the policy the webhook would use for it, whether
//! they come from manifests or from a cluster. Pure.

use std::collections::BTreeMap;

use anyhow::Context as _;

use super::OptIn;
use super::ownership::{self, Object};
use super::report::NamespaceReport;
use crate::engine::ClusterInfo;
use crate::policy::{EffectivePolicy, PolicyLayer};

/// Namespaces never audited as opted in whatever their labels: podgrace's own and
/// `kube-system` (the webhook configuration excludes both).
fn excluded(podgrace_namespace: &str, name: &str) -> bool {
    name == podgrace_namespace || name == "kube-system"
}

/// Whether `name` opts in, from its labels when they could be read (`None`: the user may not
/// read the Namespace object).
pub fn opt_in_of(
    name: &str,
    labels: Option<&BTreeMap<String, String>>,
    podgrace_namespace: &str,
) -> OptIn {
    let excluded = excluded(podgrace_namespace, name);
    match labels {
        Some(l) => OptIn::from_labels(Some(l), excluded),
        None if excluded => OptIn::Excluded,
        None => OptIn::Unknown,
    }
}

/// The namespace's own policy: the one given on the command line overrides the one found.
pub fn own_policy(
    override_: Option<&PolicyLayer>,
    found: Option<Result<PolicyLayer, String>>,
) -> Option<Result<PolicyLayer, String>> {
    match override_ {
        Some(layer) => Some(Ok(layer.clone())),
        None => found,
    }
}

/// A namespace none of whose objects could be read, and why.
pub fn not_readable(name: &str, opt_in: OptIn, why: String) -> NamespaceReport {
    NamespaceReport {
        name: name.to_owned(),
        opt_in,
        readable: false,
        error: Some(why),
        unreadable: Vec::new(),
        policy: String::new(),
        policy_error: None,
        workloads: Vec::new(),
    }
}

/// Audits one namespace's objects under its policy: its own layer when it has a valid one, the
/// cluster default otherwise (what the webhook would use), the problem reported.
pub fn audit_namespace(
    name: &str,
    opt_in: OptIn,
    cluster: Option<&PolicyLayer>,
    own: Option<Result<PolicyLayer, String>>,
    objects: Vec<Object>,
    info: &ClusterInfo,
) -> anyhow::Result<NamespaceReport> {
    let mut policy_error = None;
    let combined = match own {
        Some(Ok(layer)) => match EffectivePolicy::combine(cluster, Some(&layer)) {
            Ok(p) => Some(p),
            Err(e) => {
                policy_error = Some(e.to_string());
                None
            }
        },
        Some(Err(e)) => {
            policy_error = Some(e);
            None
        }
        None => None,
    };
    let policy = match combined {
        Some(p) => p,
        None => EffectivePolicy::combine(cluster, None)
            .map_err(|e| anyhow::anyhow!("the cluster default policy is incomplete: {e}"))?,
    };
    let mut workloads = Vec::new();
    for w in ownership::workloads(objects) {
        let report = super::audit_workload(&w, &opt_in, &policy, info)
            .with_context(|| format!("{} {}/{}", w.kind, w.namespace, w.name))?;
        workloads.push(report);
    }
    Ok(NamespaceReport {
        name: name.to_owned(),
        opt_in,
        readable: true,
        error: None,
        unreadable: Vec::new(),
        policy: policy.description().to_owned(),
        policy_error,
        workloads,
    })
}
