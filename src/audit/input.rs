//! The manifest input of `podgrace mutate` and `podgrace audit`, read as kubectl reads it: a
//! file's documents one at a time (`crate::manifest::documents`), each problem named with its file,
//! document, line and object, the namespace policy ConfigMaps it carries. Both commands read
//! their input through here, so that they read the same input the same way.

use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::Value;

use crate::audit::Status;
use crate::audit::report::{InputProblem, Problem};
use crate::manifest::documents::{self, Chunk, ReadDocument, ReadError};
use crate::manifest::{FailedObject, Identity, ManifestError};
use crate::policy::PolicyLayer;
use crate::policy::parse::{layer_from_configmap, layers_from_file_text};

/// The namespace an object without one is created in (kubectl's default context namespace).
pub fn namespace_of(ns: Option<&str>) -> String {
    ns.unwrap_or("default").to_owned()
}

/// A document that could not be read.
pub fn unreadable(file: &str, e: &ReadError) -> InputProblem {
    InputProblem {
        file: file.to_owned(),
        document: Some(e.number),
        line: Some(e.line),
        item: None,
        object: Identity::default(),
        problem: Problem::Unreadable,
        status: Status::Warning,
        error: e.message.clone(),
    }
}

/// An object of a read document that could not be read as a workload.
pub fn failed(file: &str, chunk: &Chunk<'_>, f: FailedObject) -> InputProblem {
    let (problem, status) = match f.error {
        ManifestError::RemovedApi { .. } => (Problem::RemovedApi, Status::Risk),
        ManifestError::UnsupportedKind { .. } | ManifestError::WorkloadRef { .. } => {
            (Problem::SkippedKind, Status::Warning)
        }
        _ => (Problem::Unreadable, Status::Warning),
    };
    InputProblem {
        file: file.to_owned(),
        document: Some(chunk.number),
        line: Some(chunk.line),
        item: f.item,
        object: f.object,
        problem,
        status,
        error: f.error.to_string(),
    }
}

/// The warnings on a document read (keys written twice), each naming file, document and line.
pub fn warnings(file: &str, chunk: &Chunk<'_>, d: &ReadDocument) -> Vec<String> {
    d.duplicates
        .iter()
        .map(|dup| format!("{file}: document {}, {dup}", chunk.number))
        .collect()
}

/// Reads one document, without the order of its keys unless `with_order`.
pub fn read(chunk: &Chunk<'_>, with_order: bool) -> Result<ReadDocument, ReadError> {
    documents::read(chunk, with_order)
}

/// A namespace policy found in the input: its namespace, and the layer or why it is invalid.
pub type FoundPolicy = (String, Result<PolicyLayer, String>);

/// The namespace policy ConfigMaps (named `policy_name`) of a document, or of a List's items.
pub fn policies(
    file: &str,
    chunk: &Chunk<'_>,
    value: &Value,
    policy_name: &str,
    policy_key: &str,
) -> Vec<Result<FoundPolicy, (Identity, String)>> {
    let (items, alone): (Vec<&Value>, bool) = match value.get("items") {
        Some(Value::Array(items)) => (items.iter().collect(), false),
        _ => (vec![value], true),
    };
    items
        .into_iter()
        .filter(|v| {
            v.get("kind").and_then(Value::as_str) == Some("ConfigMap")
                && v.pointer("/metadata/name").and_then(Value::as_str) == Some(policy_name)
        })
        .map(|v| {
            let cm: ConfigMap = serde_json::from_value(v.clone()).map_err(|e| {
                (
                    Identity::of(v, ("", "")),
                    format!("a policy ConfigMap that is not a valid ConfigMap: {e}"),
                )
            })?;
            let ns = namespace_of(cm.metadata.namespace.as_deref());
            let layer = layer_from_configmap(&cm, policy_key).map_err(|e| {
                // A ConfigMap that is its document: read again from the file's text, so that
                // the error's line is counted in the file, not in the policy's own text.
                alone
                    .then(|| {
                        layers_from_file_text(file, &chunk.text_at_its_lines(), policy_key)
                            .into_iter()
                            .find_map(Result::err)
                    })
                    .flatten()
                    .map_or_else(|| e.to_string(), |located| located.to_string())
            });
            Ok((ns, layer))
        })
        .collect()
}

/// An invalid policy ConfigMap as an input problem.
pub fn invalid_policy(
    file: &str,
    chunk: &Chunk<'_>,
    object: Identity,
    error: String,
) -> InputProblem {
    InputProblem {
        file: file.to_owned(),
        document: Some(chunk.number),
        line: Some(chunk.line),
        item: None,
        object,
        problem: Problem::InvalidPolicy,
        status: Status::Warning,
        error,
    }
}

/// The namespace of the ConfigMap a namespace policy layer was read from, if it was one
/// (`configmap kevin/podgrace-policy`).
pub fn configmap_namespace(layer: &PolicyLayer) -> Option<&str> {
    let name = &layer.origin.name;
    let at = name.find("configmap ")?;
    let (ns, _) = name[at + "configmap ".len()..].split_once('/')?;
    (ns != "-").then_some(ns)
}

/// The note for a `--namespace-policy` ConfigMap of one namespace applied to the pods of
/// another: a what-if, not what the webhook would do.
pub fn foreign_policy_note(layer: &PolicyLayer, namespace: &str) -> Option<String> {
    let own = configmap_namespace(layer)?;
    (own != namespace).then(|| {
        format!(
            "--namespace-policy is the ConfigMap of namespace {own} ({}), applied here to the pods of namespace {namespace}: the webhook would give them {namespace}'s own policy",
            layer.origin.name
        )
    })
}
