//! Reading the manifests users actually have (a Pod, a workload with a pod template, several
//! documents in one file, or an AdmissionReview) so that `podgrace mutate` can preview the
//! webhook's effect on them. Pure: text in, values out.

use json_patch::jsonptr::PointerBuf;
use json_patch::{Patch, PatchOperation};
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

/// Errors reading a manifest.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The text is not YAML or JSON.
    #[error("invalid YAML/JSON: {0}")]
    Syntax(String),
    /// A pod (template) that is not a valid Pod.
    #[error("{what}: not a valid pod: {why}")]
    InvalidPod {
        /// Which document.
        what: String,
        /// The cause.
        why: String,
    },
    /// Nothing podgrace could mutate.
    #[error(
        "no Pod, workload or AdmissionReview found (documents: {0}); expected a Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, PodTemplate or an AdmissionReview"
    )]
    NothingToMutate(String),
    /// An AdmissionReview without a request object.
    #[error("AdmissionReview without request.object")]
    EmptyReview,
}

/// Where the pod template of a kind lives.
pub fn template_path(api_version: &str, kind: &str) -> Option<&'static [&'static str]> {
    const TEMPLATE: &[&str] = &["spec", "template"];
    match (api_version, kind) {
        ("v1", "Pod") => Some(&[]),
        ("v1", "PodTemplate") => Some(&["template"]),
        ("v1", "ReplicationController") => Some(TEMPLATE),
        ("apps/v1", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet") => Some(TEMPLATE),
        ("batch/v1", "Job") => Some(TEMPLATE),
        ("batch/v1", "CronJob") => Some(&["spec", "jobTemplate", "spec", "template"]),
        _ => None,
    }
}

/// One document of the input.
#[derive(Clone, Debug)]
pub struct Document {
    /// The document as JSON.
    pub value: Value,
    /// Where its pod is, if it has one.
    pub target: Option<Target>,
}

/// A pod inside a document.
#[derive(Clone, Debug)]
pub struct Target {
    /// `Deployment shop/web`.
    pub label: String,
    /// JSON pointer tokens from the document root to the pod (template).
    pub path: Vec<String>,
    /// The pod, typed (templates are wrapped as Pods).
    pub pod: Pod,
    /// The namespace the pod would be created in.
    pub namespace: Option<String>,
}

/// Reads every document of `text` (YAML stream or JSON). An AdmissionReview stands for the
/// object it carries.
pub fn read_documents(text: &str) -> Result<Vec<Document>, ManifestError> {
    let mut docs = Vec::new();
    let values: Vec<Value> =
        crate::yaml::documents(text).map_err(|e| ManifestError::Syntax(e.to_string()))?;
    for mut value in values {
        if value.is_null() {
            continue;
        }
        let mut namespace = None;
        if value.get("kind").and_then(Value::as_str) == Some("AdmissionReview") {
            // Preview what the webhook would answer: the document becomes the request's object.
            let request = value.get_mut("request").ok_or(ManifestError::EmptyReview)?;
            namespace = request
                .get("namespace")
                .and_then(Value::as_str)
                .map(str::to_owned);
            value = request
                .get_mut("object")
                .map(Value::take)
                .filter(|o| !o.is_null())
                .ok_or(ManifestError::EmptyReview)?;
        }
        let mut target = find_target(&value)?;
        if let (Some(t), Some(ns)) = (&mut target, namespace) {
            t.namespace.get_or_insert(ns);
        }
        docs.push(Document { value, target });
    }
    if !docs.iter().any(|d| d.target.is_some()) {
        let kinds: Vec<String> = docs
            .iter()
            .map(|d| {
                d.value
                    .get("kind")
                    .and_then(Value::as_str)
                    .unwrap_or("no kind")
                    .to_owned()
            })
            .collect();
        return Err(ManifestError::NothingToMutate(if kinds.is_empty() {
            "none".to_owned()
        } else {
            kinds.join(", ")
        }));
    }
    Ok(docs)
}

fn find_target(doc: &Value) -> Result<Option<Target>, ManifestError> {
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let kind = s(doc, "kind").unwrap_or_default();
    let api_version = s(doc, "apiVersion").unwrap_or_default();
    let meta = doc.get("metadata").cloned().unwrap_or(Value::Null);
    let name = s(&meta, "name")
        .or_else(|| s(&meta, "generateName"))
        .unwrap_or_else(|| "-".into());
    let Some(path) = template_path(&api_version, &kind) else {
        return Ok(None);
    };
    let namespace = s(&meta, "namespace");
    let label = match &namespace {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    };
    let mut node = doc;
    for token in path {
        node = node.get(*token).ok_or_else(|| ManifestError::InvalidPod {
            what: label.clone(),
            why: format!("missing {}", path.join(".")),
        })?;
    }
    let pod_value = if path.is_empty() {
        node.clone()
    } else {
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": node.get("metadata").cloned().unwrap_or_else(|| json!({})),
            "spec": node.get("spec").cloned().unwrap_or(Value::Null),
        })
    };
    let pod = typed_pod(pod_value, &label)?;
    Ok(Some(Target {
        label,
        path: path.iter().map(|s| s.to_string()).collect(),
        pod,
        namespace,
    }))
}

fn typed_pod(value: Value, label: &str) -> Result<Pod, ManifestError> {
    serde_path_to_error::deserialize(value).map_err(|e| ManifestError::InvalidPod {
        what: label.to_owned(),
        why: format!("{}: {}", e.path(), e.inner()),
    })
}

/// Moves a pod-relative patch under `prefix` (the template's location in its document).
pub fn prefix_patch(patch: &Patch, prefix: &[String]) -> Patch {
    Patch(
        patch
            .0
            .iter()
            .map(|op| match op {
                PatchOperation::Add(add) => {
                    let mut path = PointerBuf::from_tokens(prefix.iter());
                    path.append(&add.path);
                    PatchOperation::Add(json_patch::AddOperation {
                        path,
                        value: add.value.clone(),
                    })
                }
                other => other.clone(),
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_pods_in_workloads_and_skips_services() {
        let text = "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\nspec:\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers: [{name: web, image: nginx}]\n";
        let docs = read_documents(text).unwrap();
        assert_eq!(docs.len(), 2);
        assert!(docs[0].target.is_none());
        let t = docs[1].target.as_ref().unwrap();
        assert_eq!(t.label, "Deployment shop/web");
        assert_eq!(t.path, vec!["spec", "template"]);
        assert_eq!(t.pod.spec.as_ref().unwrap().containers[0].name, "web");
    }

    #[test]
    fn cronjobs_reach_their_nested_template() {
        let text = "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c}\nspec:\n  schedule: '* * * * *'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: Never\n          containers: [{name: j, image: busybox}]\n";
        let docs = read_documents(text).unwrap();
        assert_eq!(
            docs[0].target.as_ref().unwrap().path,
            vec!["spec", "jobTemplate", "spec", "template"]
        );
    }

    #[test]
    fn non_pod_objects_and_garbage_are_clear_errors() {
        let err =
            read_documents("apiVersion: v1\nkind: Service\nmetadata: {name: s}\n").unwrap_err();
        assert!(err.to_string().contains("documents: Service"), "{err}");
        let err = read_documents("kind: [oops").unwrap_err();
        assert!(err.to_string().starts_with("invalid YAML/JSON"), "{err}");
        let err = read_documents(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: 3}\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("spec.containers"), "{err}");
    }

    #[test]
    fn admission_reviews_stand_for_their_object() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/admission/pod-create-kubectl-apply.json"
        ))
        .unwrap();
        let docs = read_documents(&text).unwrap();
        let t = docs[0].target.as_ref().unwrap();
        assert_eq!(t.label, "Pod probe/probe-pod");
        assert!(t.path.is_empty());
        assert_eq!(docs[0].value["kind"], "Pod");
    }

    #[test]
    fn patches_move_under_the_template() {
        let patch: Patch = serde_json::from_value(
            json!([{"op": "add", "path": "/spec/containers/0/env", "value": []}]),
        )
        .unwrap();
        let moved = prefix_patch(&patch, &["spec".into(), "template".into()]);
        assert_eq!(
            serde_json::to_value(moved).unwrap(),
            json!([{"op": "add", "path": "/spec/template/spec/containers/0/env", "value": []}])
        );
    }
}
