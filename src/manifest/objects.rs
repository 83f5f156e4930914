//! Reading the manifests users actually have (a Pod, a workload with a pod template, several
//! documents in one file, a `kind: List` as `kubectl get -o yaml` prints it, or an
//! AdmissionReview) so that `podgrace mutate` can preview the webhook's effect on them. Pure:
//! text in, values out.

use json_patch::jsonptr::PointerBuf;
use json_patch::{Patch, PatchOperation};
use serde::Serialize;
use serde_json::Value;

use crate::engine::PodView;
use crate::manifest::key_order::KeyOrder;

/// Why an object of a manifest cannot be read (the caller names the file, document and
/// object).
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// A pod (template) that is not a valid Pod.
    #[error("not a valid pod: {why}")]
    InvalidPod {
        /// The cause.
        why: String,
    },
    /// A workload kind under an apiVersion that Kubernetes no longer serves.
    #[error(
        "{kind} {api_version} was removed in Kubernetes {removed_in}: the API server refuses this manifest; use {replacement}"
    )]
    RemovedApi {
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
    #[error("{kind} {api_version} is not an API version Kubernetes serves: use {replacement}")]
    UnknownApi {
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
        "unknown field{s} {fields}: kubectl's strict validation rejects it (a misspelling?); correct the name{s}",
        s = if fields.len() == 1 { "" } else { "s" },
        fields = fields.join(", ")
    )]
    UnknownFields {
        /// Dotted paths from the document's root.
        fields: Vec<String>,
    },
    /// A kind with a pod template that podgrace does not read.
    #[error(
        "skipped: {api_version} {kind} is not a kind podgrace reads; its pod template is left as written (the webhook still mutates the pods its controller creates)"
    )]
    UnsupportedKind {
        /// The apiVersion.
        api_version: String,
        /// The kind.
        kind: String,
    },
    /// An Argo Rollout that takes its pod template from a Deployment.
    #[error(
        "skipped: its pods come from the template of Deployment {target} (spec.workloadRef): preview that Deployment"
    )]
    WorkloadRef {
        /// The Deployment referenced.
        target: String,
    },
    /// An AdmissionReview without a request object.
    #[error("AdmissionReview without request.object")]
    EmptyReview,
}

/// The kinds podgrace reads, for messages.
pub const KINDS: &str = "Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job, CronJob, PodTemplate, Argo Rollout, OpenKruise CloneSet, Advanced StatefulSet and Advanced DaemonSet, a List of them or an AdmissionReview";

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
        // Operators' workloads that keep a Deployment's pod template: Argo Rollouts, and
        // OpenKruise's CloneSet, Advanced StatefulSet and Advanced DaemonSet.
        ("argoproj.io/v1alpha1", "Rollout")
        | ("apps.kruise.io/v1alpha1", "CloneSet" | "StatefulSet" | "DaemonSet")
        | ("apps.kruise.io/v1beta1", "StatefulSet") => Some(TEMPLATE),
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
    /// `Deployment`.
    pub kind: String,
    /// Its name (or `generateName`), when it has one.
    pub name: Option<String>,
    /// JSON pointer tokens from the object's root to the pod (template).
    pub path: Vec<String>,
    /// The pod (template), as the engine reads it.
    pub pod: PodView,
    /// The namespace the pod would be created in.
    pub namespace: Option<String>,
}

/// What an object says it is, as far as it says.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    /// `apps/v1`.
    pub api_version: Option<String>,
    /// `Deployment`.
    pub kind: Option<String>,
    /// `metadata.namespace`.
    pub namespace: Option<String>,
    /// `metadata.name` (or `generateName`).
    pub name: Option<String>,
}

impl Identity {
    /// The identity of `v`, with `default` (apiVersion, kind) for what it leaves out (the
    /// items of a typed List).
    pub fn of(v: &Value, default: (&str, &str)) -> Self {
        let meta = v.get("metadata").unwrap_or(&Value::Null);
        let (api_version, kind) = type_of(v, default);
        let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        Identity {
            api_version: some(api_version),
            kind: some(kind),
            namespace: str_at(meta, "namespace").map(str::to_owned),
            name: str_at(meta, "name")
                .or_else(|| str_at(meta, "generateName"))
                .map(str::to_owned),
        }
    }

    /// `Deployment shop/web`, `Deployment web`, `Deployment -`, or an empty string when the
    /// object says nothing of itself.
    pub fn label(&self) -> String {
        let kind = self.kind.as_deref().unwrap_or("object");
        let name = self.name.as_deref().unwrap_or("-");
        match (&self.kind, &self.name, &self.namespace) {
            (None, None, _) => String::new(),
            (_, _, Some(ns)) => format!("{kind} {ns}/{name}"),
            (_, _, None) => format!("{kind} {name}"),
        }
    }
}

/// An object of a document that podgrace cannot read as it should: the document, or one item
/// of a List.
#[derive(Debug)]
pub struct FailedObject {
    /// The item of the List, for a List's item.
    pub item: Option<usize>,
    /// What the object says it is.
    pub object: Identity,
    /// Why.
    pub error: ManifestError,
}

impl FailedObject {
    /// `items[2] (Deployment shop/web)`, `Deployment shop/web`, or empty.
    pub fn what(&self) -> String {
        let label = self.object.label();
        match (self.item, label.is_empty()) {
            (Some(i), true) => format!("items[{i}]"),
            (Some(i), false) => format!("items[{i}] ({label})"),
            (None, _) => label,
        }
    }

    /// Whether the object is skipped on purpose (a kind podgrace does not read), not broken.
    pub fn is_skip(&self) -> bool {
        matches!(
            self.error,
            ManifestError::UnsupportedKind { .. } | ManifestError::WorkloadRef { .. }
        )
    }
}

/// The objects of one document read: the document, then for a List (`kind: List`, or a typed
/// list such as `DeploymentList`) one [`Document`] per item. An AdmissionReview stands for the
/// object it carries. What cannot be read is a [`FailedObject`] beside the rest: a List's bad item
/// costs only itself (it stays in the List as written).
pub fn objects(mut value: Value, mut order: KeyOrder) -> (Vec<Document>, Vec<FailedObject>) {
    let mut docs = Vec::new();
    let mut failures = Vec::new();
    if value.is_null() {
        return (docs, failures);
    }
    let mut namespace = None;
    if str_at(&value, "kind") == Some("AdmissionReview") {
        // Preview what the webhook would answer: the document becomes the request's object.
        let object = value.get_mut("request").and_then(|request| {
            namespace = request
                .get("namespace")
                .and_then(Value::as_str)
                .map(str::to_owned);
            request
                .get_mut("object")
                .map(Value::take)
                .filter(|o| !o.is_null())
        });
        let Some(object) = object else {
            failures.push(FailedObject {
                item: None,
                object: Identity::of(&value, ("", "")),
                error: ManifestError::EmptyReview,
            });
            return (docs, failures);
        };
        value = object;
        order = order.member("request").member("object").clone();
    }
    if let Some((items, item_type)) = list_items(&value) {
        let mut members = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let (api_version, kind) = type_of(item, item_type);
            match find_target(item, api_version, kind) {
                Ok(target) => members.push(Document {
                    value: item.clone(),
                    order: order.member("items").item(i).clone(),
                    target,
                    list_index: Some(i),
                }),
                Err(error) => failures.push(FailedObject {
                    item: Some(i),
                    object: Identity::of(item, item_type),
                    error,
                }),
            }
        }
        docs.push(Document {
            value,
            order,
            target: None,
            list_index: None,
        });
        docs.extend(members);
        return (docs, failures);
    }
    let (api_version, kind) = type_of(&value, ("", ""));
    match find_target(&value, api_version, kind) {
        Ok(mut target) => {
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
        Err(error) => failures.push(FailedObject {
            item: None,
            object: Identity::of(&value, ("", "")),
            error,
        }),
    }
    (docs, failures)
}

/// The document that `docs` (as [`objects`] returned them) came from, each List's items
/// replaced by its (mutated) items, and the order its keys were written in.
pub fn reassemble(docs: Vec<Document>) -> Option<(Value, KeyOrder)> {
    let mut out: Option<(Value, KeyOrder)> = None;
    for doc in docs {
        match (doc.list_index, &mut out) {
            (Some(i), Some((list, _))) => list["items"][i] = doc.value,
            _ => out = Some((doc.value, doc.order)),
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

/// Whether an object of a kind podgrace does not read carries a pod template where workloads
/// keep one (an operator's workload): such a kind is named, never skipped in silence.
fn has_pod_template(doc: &Value) -> bool {
    let containers = |t: Option<&Value>| {
        t.and_then(|t| t.pointer("/spec/containers"))
            .is_some_and(Value::is_array)
    };
    containers(doc.pointer("/spec/template"))
        || containers(doc.pointer("/spec/jobTemplate/spec/template"))
}

fn find_target(
    doc: &Value,
    api_version: &str,
    kind: &str,
) -> Result<Option<Target>, ManifestError> {
    let id = Identity::of(doc, (api_version, kind));
    let label = id.label();
    let namespace = id.namespace;
    let Some(path) = template_path(api_version, kind) else {
        if let Some(replacement) = served_api_version(kind) {
            let (kind, api_version) = (kind.to_owned(), api_version.to_owned());
            return Err(match removed_in(&api_version, &kind) {
                Some(removed_in) => ManifestError::RemovedApi {
                    kind,
                    api_version,
                    removed_in,
                    replacement,
                },
                None => ManifestError::UnknownApi {
                    kind,
                    api_version,
                    replacement,
                },
            });
        }
        if has_pod_template(doc) {
            return Err(ManifestError::UnsupportedKind {
                api_version: api_version.to_owned(),
                kind: kind.to_owned(),
            });
        }
        return Ok(None);
    };
    if kind == "Rollout"
        && doc.pointer("/spec/template").is_none()
        && let Some(target) = doc
            .pointer("/spec/workloadRef/name")
            .and_then(Value::as_str)
    {
        return Err(ManifestError::WorkloadRef {
            target: target.to_owned(),
        });
    }
    let mut node = doc;
    for token in path {
        node = node.get(*token).ok_or_else(|| ManifestError::InvalidPod {
            why: format!(
                "missing {} (a Kustomize patch? `kubectl kustomize` renders the whole object)",
                path.join(".")
            ),
        })?;
    }
    let unknown = crate::manifest::known_fields::unknown_fields(doc, kind, path);
    if !unknown.is_empty() {
        return Err(ManifestError::UnknownFields { fields: unknown });
    }
    // A template reads as a pod: the view looks at `metadata` and `spec` only, and tells an
    // absent `metadata` from an empty one (the patch adds it whole, or adds into it).
    let pod = PodView::from_value(node.clone()).map_err(|e| ManifestError::InvalidPod {
        why: in_kubectl_terms(&e.to_string()),
    })?;
    Ok(Some(Target {
        label,
        kind: kind.to_owned(),
        name: id.name,
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

    /// Every object of every document of `text`.
    fn read(text: &str) -> (Vec<Document>, Vec<FailedObject>) {
        let mut docs = Vec::new();
        let mut failures = Vec::new();
        for chunk in crate::manifest::documents::split(text) {
            let d = crate::manifest::documents::read(&chunk.unwrap(), true).unwrap();
            let (ok, bad) = objects(d.value, d.order);
            docs.extend(ok);
            failures.extend(bad);
        }
        (docs, failures)
    }

    fn errors(text: &str) -> Vec<String> {
        read(text)
            .1
            .iter()
            .map(|f| format!("{}: {}", f.what(), f.error))
            .collect()
    }

    #[test]
    fn finds_pods_in_workloads_and_skips_services() {
        let text = "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\nspec:\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers: [{name: web, image: nginx}]\n";
        let (docs, failures) = read(text);
        assert!(failures.is_empty());
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
        let (docs, _) = read(text);
        assert_eq!(
            docs[0].target.as_ref().unwrap().path,
            vec!["spec", "jobTemplate", "spec", "template"]
        );
    }

    #[test]
    fn operator_workloads_with_a_deployment_template_are_read() {
        for (api_version, kind) in [
            ("argoproj.io/v1alpha1", "Rollout"),
            ("apps.kruise.io/v1alpha1", "CloneSet"),
            ("apps.kruise.io/v1beta1", "StatefulSet"),
            ("apps.kruise.io/v1alpha1", "DaemonSet"),
        ] {
            let text = format!(
                "apiVersion: {api_version}\nkind: {kind}\nmetadata: {{name: w}}\nspec:\n  template:\n    spec:\n      containers: [{{name: a, image: nginx}}]\n"
            );
            let (docs, failures) = read(&text);
            assert!(failures.is_empty(), "{kind}");
            assert_eq!(docs[0].target.as_ref().unwrap().label, format!("{kind} w"));
        }
    }

    #[test]
    fn a_kind_with_a_pod_template_that_podgrace_does_not_read_is_named() {
        let knative = "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata: {name: hello}\nspec:\n  template:\n    spec:\n      containers: [{image: hello}]\n";
        let (_, failures) = read(knative);
        assert!(failures[0].is_skip());
        assert!(
            failures[0].error.to_string().starts_with(
                "skipped: serving.knative.dev/v1 Service is not a kind podgrace reads"
            ),
            "{}",
            failures[0].error
        );
        let rollout = "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: r}\nspec:\n  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: web}\n";
        assert_eq!(
            errors(rollout),
            [
                "Rollout r: skipped: its pods come from the template of Deployment web (spec.workloadRef): preview that Deployment"
            ]
        );
    }

    #[test]
    fn a_partial_object_is_an_error_of_its_own() {
        let patch =
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 3}\n";
        let e = errors(patch);
        assert!(
            e[0].starts_with(
                "Deployment web: not a valid pod: missing spec.template (a Kustomize patch?"
            ),
            "{e:?}"
        );
        let e = errors("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: 3}\n");
        assert!(e[0].contains("spec.containers"), "{e:?}");
    }

    #[test]
    fn list_items_are_objects_of_their_own_and_go_back_into_the_list() {
        let text = "apiVersion: v1\nkind: List\nmetadata: {resourceVersion: \"\"}\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata: {name: s}\n- apiVersion: apps/v1\n  kind: Deployment\n  metadata: {name: web, namespace: shop}\n  spec:\n    template:\n      spec:\n        containers: [{name: web, image: nginx}]\n";
        let (mut docs, _) = read(text);
        assert_eq!(docs.len(), 3, "the List, then its two items");
        assert!(docs[0].target.is_none() && docs[0].list_index.is_none());
        assert_eq!(docs[1].list_index, Some(0));
        assert!(docs[1].target.is_none());
        let t = docs[2].target.as_ref().unwrap();
        assert_eq!(t.label, "Deployment shop/web");
        assert_eq!(t.path, vec!["spec", "template"], "relative to the item");
        docs[2].value["spec"]["replicas"] = json!(3);
        let items_order = docs[0].order.member("items").clone();
        let (list, order) = reassemble(docs).unwrap();
        assert_eq!(list["kind"], "List");
        assert_eq!(list["items"][0]["kind"], "Service");
        assert_eq!(list["items"][1]["spec"]["replicas"], 3);
        assert_eq!(order.member("items"), &items_order);
    }

    #[test]
    fn typed_lists_give_their_items_the_kind_they_leave_out() {
        let text = "apiVersion: apps/v1\nkind: DeploymentList\nitems:\n- metadata: {name: web}\n  spec:\n    template:\n      spec:\n        containers: [{name: web, image: nginx}]\n";
        let (docs, _) = read(text);
        assert_eq!(docs[1].target.as_ref().unwrap().label, "Deployment web");
        assert!(
            docs[1].value.get("kind").is_none(),
            "the item is kept as written"
        );
    }

    #[test]
    fn removed_api_versions_are_named_with_the_release_and_the_replacement() {
        let cron = "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n---\napiVersion: batch/v1beta1\nkind: CronJob\nmetadata: {name: nightly, namespace: shop}\nspec: {}\n";
        assert_eq!(
            errors(cron),
            [
                "CronJob shop/nightly: CronJob batch/v1beta1 was removed in Kubernetes 1.25: the API server refuses this manifest; use batch/v1"
            ]
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
            assert_eq!(
                errors(&text),
                [format!(
                    "{kind} w: {kind} {api_version} was removed in Kubernetes 1.16: the API server refuses this manifest; use apps/v1"
                )]
            );
        }
        // In a List, the bad item costs only itself.
        let list = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: extensions/v1beta1\n  kind: Deployment\n  metadata: {name: old}\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: p}\n  spec: {containers: [{name: a, image: b}]}\n";
        let (docs, failures) = read(list);
        assert_eq!(failures[0].what(), "items[0] (Deployment old)");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].list_index, Some(1));
    }

    #[test]
    fn a_known_kind_under_an_api_version_never_served_names_the_one_to_use() {
        assert_eq!(
            errors("apiVersion: batch/v2alpha1\nkind: CronJob\nmetadata: {name: c}\n"),
            [
                "CronJob c: CronJob batch/v2alpha1 is not an API version Kubernetes serves: use batch/v1"
            ]
        );
    }

    #[test]
    fn admission_reviews_stand_for_their_object() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/admission/pod-create-kubectl-apply.json"
        ))
        .unwrap();
        let (docs, _) = read(&text);
        let t = docs[0].target.as_ref().unwrap();
        assert_eq!(t.label, "Pod probe/probe-pod");
        assert!(t.path.is_empty());
        assert_eq!(docs[0].value["kind"], "Pod");
    }

    #[test]
    fn a_misspelled_field_is_an_error_naming_the_document_and_the_path() {
        let text = "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: nginx\n        readinesProbe: {tcpSocket: {port: 80}}\n";
        let (docs, failures) = read(text);
        assert_eq!(docs.len(), 1, "the Service is read");
        let err = failures[0].error.to_string();
        assert_eq!(
            err,
            "unknown field spec.template.spec.containers[0].readinesProbe: kubectl's strict validation rejects it (a misspelling?); correct the name"
        );
    }

    #[test]
    fn an_unquoted_yes_where_a_string_belongs_is_said_as_kubectl_reads_it() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels:\n    podgrace.io/inject: yes\nspec:\n  containers:\n  - {name: a, image: x}\n";
        let (_, failures) = read(text);
        let err = failures[0].error.to_string();
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
