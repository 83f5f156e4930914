//! Reading the manifests users actually have (a Pod, a workload with a pod template, several
//! documents in one file, a `kind: List` as `kubectl get -o yaml` prints it, or an
//! AdmissionReview) so that `podgrace mutate` can preview the webhook's effect on them. Pure:
//! text in, values out.

use json_patch::jsonptr::PointerBuf;
use json_patch::{Patch, PatchOperation};
use serde_json::Value;

use crate::engine::PodView;
use crate::key_order::KeyOrder;
use crate::yaml;

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
    /// A workload kind under an apiVersion that Kubernetes no longer serves.
    #[error(
        "{what}: {kind} {api_version} was removed in Kubernetes {removed_in}: use {replacement}"
    )]
    RemovedApi {
        /// Which document.
        what: String,
        /// The kind, e.g. `CronJob`.
        kind: String,
        /// The apiVersion written, e.g. `batch/v1beta1`.
        api_version: String,
        /// The Kubernetes release that stopped serving it.
        removed_in: &'static str,
        /// The apiVersion to write instead.
        replacement: &'static str,
    },
    /// A workload kind under an apiVersion that Kubernetes never served (a typo, an alpha).
    #[error(
        "{what}: {kind} {api_version} is not an API version Kubernetes serves: use {replacement}"
    )]
    UnknownApi {
        /// Which document.
        what: String,
        /// The kind.
        kind: String,
        /// The apiVersion written.
        api_version: String,
        /// The apiVersion Kubernetes serves the kind under.
        replacement: &'static str,
    },
    /// Fields the Kubernetes API does not know (a misspelling): kubectl's default strict field
    /// validation rejects the object, so podgrace does not mutate around them.
    #[error(
        "{what}: unknown field{s} {fields}: kubectl's strict validation rejects it (a misspelling?); correct the name{s}",
        s = if fields.len() == 1 { "" } else { "s" },
        fields = fields.join(", ")
    )]
    UnknownFields {
        /// Which document.
        what: String,
        /// Dotted paths from the document's root.
        fields: Vec<String>,
    },
    /// Nothing podgrace could mutate.
    #[error(
        "no Pod, workload or AdmissionReview found (documents: {0}); expected a Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, PodTemplate, a List of them or an AdmissionReview"
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

/// The apiVersion Kubernetes serves a workload kind under, for kinds podgrace mutates.
fn served_api_version(kind: &str) -> Option<&'static str> {
    match kind {
        "Pod" | "PodTemplate" | "ReplicationController" => Some("v1"),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" => Some("apps/v1"),
        "Job" | "CronJob" => Some("batch/v1"),
        _ => None,
    }
}

/// The Kubernetes release that stopped serving a workload kind under an old apiVersion, from
/// the deprecated API migration guide
/// (<https://kubernetes.io/docs/reference/using-api/deprecation-guide/>): the beta workload
/// APIs in 1.16, the beta CronJob in 1.25.
pub fn removed_in(api_version: &str, kind: &str) -> Option<&'static str> {
    match (api_version, kind) {
        ("extensions/v1beta1", "Deployment" | "DaemonSet" | "ReplicaSet")
        | ("apps/v1beta1", "Deployment" | "StatefulSet" | "ReplicaSet")
        | ("apps/v1beta2", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet") => {
            Some("1.16")
        }
        ("batch/v1beta1", "CronJob") => Some("1.25"),
        _ => None,
    }
}

/// One object of the input: a document, or an item of a `kind: List` document.
#[derive(Clone, Debug)]
pub struct Document {
    /// The object as JSON.
    pub value: Value,
    /// The order its keys were written in (a JSON value sorts them).
    pub order: KeyOrder,
    /// Where its pod is, if it has one.
    pub target: Option<Target>,
    /// For an item of a List: its index in `items` of the List document, which comes just
    /// before its items (and keeps them, unmutated, in its own value). [`reassemble`] puts the
    /// items back.
    pub list_index: Option<usize>,
}

/// A pod inside a document.
#[derive(Clone, Debug)]
pub struct Target {
    /// `Deployment shop/web`.
    pub label: String,
    /// JSON pointer tokens from the object's root to the pod (template).
    pub path: Vec<String>,
    /// The pod (template), as the engine reads it.
    pub pod: PodView,
    /// The namespace the pod would be created in.
    pub namespace: Option<String>,
}

/// Reads every document of `text` (YAML stream or JSON). An AdmissionReview stands for the
/// object it carries; a List (`kind: List`, or a typed list such as `DeploymentList`) is
/// followed by one [`Document`] per item.
pub fn read_documents(text: &str) -> Result<Vec<Document>, ManifestError> {
    let syntax = |e: yaml::YamlError| ManifestError::Syntax(e.to_string());
    let values: Vec<Value> = yaml::manifests(text).map_err(syntax)?;
    let orders: Vec<KeyOrder> = yaml::manifests(text).map_err(syntax)?;
    documents(values.into_iter().zip(orders))
}

/// [`read_documents`] of a text already read into `values` (one per document), without the
/// order of their keys (every [`Document::order`] a leaf): for a reader that writes no manifest
/// back (`podgrace audit`), which then reads the YAML once instead of twice.
pub fn documents_of_values(values: Vec<Value>) -> Result<Vec<Document>, ManifestError> {
    documents(values.into_iter().map(|v| (v, KeyOrder::Leaf)))
}

fn documents(
    read: impl Iterator<Item = (Value, KeyOrder)>,
) -> Result<Vec<Document>, ManifestError> {
    let mut docs = Vec::new();
    for (index, (mut value, mut order)) in read.enumerate() {
        if value.is_null() {
            continue;
        }
        let what = format!("document {}", index + 1);
        let mut namespace = None;
        if str_at(&value, "kind") == Some("AdmissionReview") {
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
            order = order.member("request").member("object").clone();
        }
        if let Some((items, item_type)) = list_items(&value) {
            let members = items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let (api_version, kind) = type_of(item, item_type);
                    Ok(Document {
                        value: item.clone(),
                        order: order.member("items").item(i).clone(),
                        target: find_target(
                            item,
                            api_version,
                            kind,
                            &format!("{what}, items[{i}]"),
                        )?,
                        list_index: Some(i),
                    })
                })
                .collect::<Result<Vec<_>, ManifestError>>()?;
            docs.push(Document {
                value,
                order,
                target: None,
                list_index: None,
            });
            docs.extend(members);
            continue;
        }
        let (api_version, kind) = type_of(&value, ("", ""));
        let mut target = find_target(&value, api_version, kind, &what)?;
        if let (Some(t), Some(ns)) = (&mut target, namespace) {
            t.namespace.get_or_insert(ns);
        }
        docs.push(Document {
            value,
            order,
            target,
            list_index: None,
        });
    }
    if !docs.iter().any(|d| d.target.is_some()) {
        let kinds: Vec<&str> = docs
            .iter()
            .filter(|d| list_items(&d.value).is_none())
            .map(|d| str_at(&d.value, "kind").unwrap_or("no kind"))
            .collect();
        return Err(ManifestError::NothingToMutate(if kinds.is_empty() {
            "none".to_owned()
        } else {
            kinds.join(", ")
        }));
    }
    Ok(docs)
}

/// One value per input document, with each List's items replaced by its (mutated) items, and
/// the order its keys were written in (a List's covers its items).
pub fn reassemble(docs: &[Document]) -> Vec<(Value, &KeyOrder)> {
    let mut out: Vec<(Value, &KeyOrder)> = Vec::with_capacity(docs.len());
    for doc in docs {
        match (doc.list_index, out.last_mut()) {
            (Some(i), Some((list, _))) => list["items"][i] = doc.value.clone(),
            _ => out.push((doc.value.clone(), &doc.order)),
        }
    }
    out
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// `apiVersion` and `kind` of an object, with defaults for what it leaves out.
fn type_of<'a>(v: &'a Value, default: (&'a str, &'a str)) -> (&'a str, &'a str) {
    (
        str_at(v, "apiVersion").unwrap_or(default.0),
        str_at(v, "kind").unwrap_or(default.1),
    )
}

/// The items of a list document, and the type its items have when they do not say: none for
/// `kind: List`, whose items always carry their own; `apps/v1 Deployment` for an `apps/v1
/// DeploymentList`, whose items, as the API server lists them, do not.
fn list_items(v: &Value) -> Option<(&Vec<Value>, (&str, &str))> {
    let (api_version, kind) = type_of(v, ("", ""));
    let item_kind = kind.strip_suffix("List")?;
    let items = v.get("items")?.as_array()?;
    Some(if item_kind.is_empty() {
        (items, ("", ""))
    } else {
        (items, (api_version, item_kind))
    })
}

fn find_target(
    doc: &Value,
    api_version: &str,
    kind: &str,
    what: &str,
) -> Result<Option<Target>, ManifestError> {
    let meta = doc.get("metadata").unwrap_or(&Value::Null);
    let name = str_at(meta, "name")
        .or_else(|| str_at(meta, "generateName"))
        .unwrap_or("-");
    let namespace = str_at(meta, "namespace").map(str::to_owned);
    let label = match &namespace {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    };
    let Some(path) = template_path(api_version, kind) else {
        if let Some(replacement) = served_api_version(kind) {
            let what = format!("{what} ({label})");
            let (kind, api_version) = (kind.to_owned(), api_version.to_owned());
            return Err(match removed_in(&api_version, &kind) {
                Some(removed_in) => ManifestError::RemovedApi {
                    what,
                    kind,
                    api_version,
                    removed_in,
                    replacement,
                },
                None => ManifestError::UnknownApi {
                    what,
                    kind,
                    api_version,
                    replacement,
                },
            });
        }
        return Ok(None);
    };
    let mut node = doc;
    for token in path {
        node = node.get(*token).ok_or_else(|| ManifestError::InvalidPod {
            what: label.clone(),
            why: format!("missing {}", path.join(".")),
        })?;
    }
    let unknown = crate::known_fields::unknown_fields(doc, kind, path);
    if !unknown.is_empty() {
        return Err(ManifestError::UnknownFields {
            what: format!("{what} ({label})"),
            fields: unknown,
        });
    }
    // A template reads as a pod: the view looks at `metadata` and `spec` only, and tells an
    // absent `metadata` from an empty one (the patch adds it whole, or adds into it).
    let pod = PodView::from_value(node.clone()).map_err(|e| ManifestError::InvalidPod {
        what: label.clone(),
        why: in_kubectl_terms(&e.to_string()),
    })?;
    Ok(Some(Target {
        label,
        path: path.iter().map(|s| s.to_string()).collect(),
        pod,
        namespace,
    }))
}

/// A decoding error said in the terms of the manifest as kubectl reads it: an unquoted `yes`
/// where a string belongs (a label's or an annotation's value) is YAML 1.1's boolean, which
/// kubectl refuses there too.
fn in_kubectl_terms(why: &str) -> String {
    let mut out = why.to_owned();
    for (value, words) in [("true", "yes, on or true"), ("false", "no, off or false")] {
        out = out.replace(
            &format!("invalid type: boolean `{value}`, expected a string"),
            &format!(
                "an unquoted {words} is the boolean {value} to kubectl (YAML 1.1), and this field takes a string: quote it"
            ),
        );
    }
    out
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
    use serde_json::json;

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
    fn list_items_are_objects_of_their_own_and_go_back_into_the_list() {
        let text = "apiVersion: v1\nkind: List\nmetadata: {resourceVersion: \"\"}\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata: {name: s}\n- apiVersion: apps/v1\n  kind: Deployment\n  metadata: {name: web, namespace: shop}\n  spec:\n    template:\n      spec:\n        containers: [{name: web, image: nginx}]\n";
        let mut docs = read_documents(text).unwrap();
        assert_eq!(docs.len(), 3, "the List, then its two items");
        assert!(docs[0].target.is_none() && docs[0].list_index.is_none());
        assert_eq!(docs[1].list_index, Some(0));
        assert!(docs[1].target.is_none());
        let t = docs[2].target.as_ref().unwrap();
        assert_eq!(t.label, "Deployment shop/web");
        assert_eq!(t.path, vec!["spec", "template"], "relative to the item");
        docs[2].value["spec"]["replicas"] = json!(3);
        let out = reassemble(&docs);
        assert_eq!(out.len(), 1);
        let (list, order) = &out[0];
        assert_eq!(list["kind"], "List");
        assert_eq!(list["items"][0]["kind"], "Service");
        assert_eq!(list["items"][1]["spec"]["replicas"], 3);
        assert_eq!(
            order.member("items"),
            &docs[0].order.member("items").clone()
        );
    }

    #[test]
    fn typed_lists_give_their_items_the_kind_they_leave_out() {
        let text = "apiVersion: apps/v1\nkind: DeploymentList\nitems:\n- metadata: {name: web}\n  spec:\n    template:\n      spec:\n        containers: [{name: web, image: nginx}]\n";
        let docs = read_documents(text).unwrap();
        assert_eq!(docs[1].target.as_ref().unwrap().label, "Deployment web");
        assert!(
            docs[1].value.get("kind").is_none(),
            "the item is kept as written"
        );
    }

    #[test]
    fn removed_api_versions_are_named_with_the_release_and_the_replacement() {
        let cron = "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n---\napiVersion: batch/v1beta1\nkind: CronJob\nmetadata: {name: nightly, namespace: shop}\nspec: {}\n";
        let err = read_documents(cron).unwrap_err().to_string();
        assert_eq!(
            err,
            "document 2 (CronJob shop/nightly): CronJob batch/v1beta1 was removed in Kubernetes 1.25: use batch/v1"
        );
        for (api_version, kind) in [
            ("extensions/v1beta1", "Deployment"),
            ("extensions/v1beta1", "DaemonSet"),
            ("extensions/v1beta1", "ReplicaSet"),
            ("apps/v1beta1", "Deployment"),
            ("apps/v1beta1", "StatefulSet"),
            ("apps/v1beta2", "DaemonSet"),
            ("apps/v1beta2", "StatefulSet"),
        ] {
            let text = format!("apiVersion: {api_version}\nkind: {kind}\nmetadata: {{name: w}}\n");
            let err = read_documents(&text).unwrap_err().to_string();
            assert_eq!(
                err,
                format!(
                    "document 1 ({kind} w): {kind} {api_version} was removed in Kubernetes 1.16: use apps/v1"
                )
            );
        }
        let list = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: extensions/v1beta1\n  kind: Deployment\n  metadata: {name: old}\n";
        let err = read_documents(list).unwrap_err().to_string();
        assert!(
            err.starts_with("document 1, items[0] (Deployment old): "),
            "{err}"
        );
    }

    #[test]
    fn a_known_kind_under_an_api_version_never_served_names_the_one_to_use() {
        let err =
            read_documents("apiVersion: batch/v2alpha1\nkind: CronJob\nmetadata: {name: c}\n")
                .unwrap_err()
                .to_string();
        assert_eq!(
            err,
            "document 1 (CronJob c): CronJob batch/v2alpha1 is not an API version Kubernetes serves: use batch/v1"
        );
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
    fn a_misspelled_field_is_an_error_naming_the_document_and_the_path() {
        let text = "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: nginx\n        readinesProbe: {tcpSocket: {port: 80}}\n";
        let err = read_documents(text).unwrap_err().to_string();
        assert_eq!(
            err,
            "document 2 (Deployment shop/web): unknown field spec.template.spec.containers[0].readinesProbe: kubectl's strict validation rejects it (a misspelling?); correct the name"
        );
    }

    #[test]
    fn an_unquoted_yes_where_a_string_belongs_is_said_as_kubectl_reads_it() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels:\n    podgrace.io/inject: yes\nspec:\n  containers:\n  - {name: a, image: x}\n";
        let err = read_documents(text).unwrap_err().to_string();
        assert!(
            err.contains("metadata.labels.podgrace.io/inject: an unquoted yes, on or true is the boolean true to kubectl (YAML 1.1), and this field takes a string: quote it"),
            "{err}"
        );
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
