//! From the objects read (a cluster's lists, or manifests) to the workloads to audit: each
//! object that owns a pod template and is owned by nothing (a Deployment, not its ReplicaSets;
//! a CronJob, not its Jobs), bare Pods, and for each workload the pods running from it (a pod
//! owned by a ReplicaSet owned by a Deployment runs from the Deployment). Pure.

use std::collections::HashMap;

use super::Workload;
use crate::engine::PodView;

/// An object as read, before ownership is resolved.
#[derive(Clone, Debug)]
pub struct Object {
    /// `Deployment`, `ReplicaSet`, `Pod`, …
    pub kind: String,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its owners (`metadata.ownerReferences`), as kind and name.
    pub owners: Vec<(String, String)>,
    /// Its pod template, or the pod itself for a Pod.
    pub pod: PodView,
}

/// Kinds whose pods run from the owner's template.
const POD_OWNERS: [&str; 5] = [
    "ReplicaSet",
    "StatefulSet",
    "DaemonSet",
    "ReplicationController",
    "Job",
];

/// The workloads among `objects`, each with the pods running from it, in input order.
pub fn workloads(objects: Vec<Object>) -> Vec<Workload> {
    // ReplicaSet → its Deployment (a pod's owner is the ReplicaSet, the template the
    // Deployment's).
    let rs_owner: HashMap<(String, String), String> = objects
        .iter()
        .filter(|o| o.kind == "ReplicaSet")
        .filter_map(|o| {
            let (_, d) = o.owners.iter().find(|(k, _)| k == "Deployment")?;
            Some(((o.namespace.clone(), o.name.clone()), d.clone()))
        })
        .collect();
    let mut out: Vec<Workload> = Vec::new();
    let mut index: HashMap<(String, String, String), usize> = HashMap::new();
    let mut pods = Vec::new();
    for o in objects {
        let owned_pod = o.kind == "Pod"
            && o.owners
                .iter()
                .any(|(k, _)| POD_OWNERS.contains(&k.as_str()));
        if owned_pod {
            pods.push(o);
            continue;
        }
        // A Pod owned by a kind podgrace does not know (an operator's CRD) is audited itself.
        if !o.owners.is_empty() && o.kind != "Pod" {
            continue;
        }
        let key = (o.namespace.clone(), o.kind.clone(), o.name.clone());
        let running = if o.kind == "Pod" {
            vec![o.pod.clone()]
        } else {
            Vec::new()
        };
        index.insert(key, out.len());
        out.push(Workload {
            kind: o.kind,
            namespace: o.namespace,
            name: o.name,
            template: o.pod,
            running,
        });
    }
    for p in pods {
        let Some((kind, name)) = p
            .owners
            .iter()
            .find(|(k, _)| POD_OWNERS.contains(&k.as_str()))
        else {
            continue;
        };
        let (kind, name) = match rs_owner.get(&(p.namespace.clone(), name.clone())) {
            Some(d) if kind == "ReplicaSet" => ("Deployment".to_owned(), d.clone()),
            _ => (kind.clone(), name.clone()),
        };
        if let Some(&i) = index.get(&(p.namespace.clone(), kind, name)) {
            out[i].running.push(p.pod);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(kind: &str, name: &str, owners: &[(&str, &str)]) -> Object {
        Object {
            kind: kind.into(),
            namespace: "shop".into(),
            name: name.into(),
            owners: owners
                .iter()
                .map(|(k, n)| (k.to_string(), n.to_string()))
                .collect(),
            pod: PodView::default(),
        }
    }

    #[test]
    fn pods_run_from_the_deployment_that_owns_their_replica_set() {
        let found = workloads(vec![
            object("Deployment", "web", &[]),
            object("ReplicaSet", "web-7d", &[("Deployment", "web")]),
            object("Pod", "web-7d-a", &[("ReplicaSet", "web-7d")]),
            object("Pod", "web-7d-b", &[("ReplicaSet", "web-7d")]),
            object("ReplicaSet", "lonely", &[]),
            object("Pod", "lonely-x", &[("ReplicaSet", "lonely")]),
            object("Pod", "bare", &[]),
            object("CronJob", "report", &[]),
            object("Job", "report-1", &[("CronJob", "report")]),
            object("Pod", "report-1-x", &[("Job", "report-1")]),
            object("Pod", "operated", &[("Rollout", "r")]),
        ]);
        let names: Vec<(&str, &str, usize)> = found
            .iter()
            .map(|w| (w.kind.as_str(), w.name.as_str(), w.running.len()))
            .collect();
        assert_eq!(
            names,
            [
                ("Deployment", "web", 2),
                ("ReplicaSet", "lonely", 1),
                ("Pod", "bare", 1),
                ("CronJob", "report", 0),
                ("Pod", "operated", 1),
            ]
        );
    }
}
