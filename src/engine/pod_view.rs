//! The pod as the engine reads it: the members it looks at, as k8s-openapi types, and nothing
//! else.
//!
//! Every caller decodes pods into this view: the webhook (from the review's raw object), the
//! CLI (from manifests), the tests and the benchmarks. serde skips every other member without
//! building it (`managedFields`, `status`, volume sources, scheduling and security settings),
//! which is most of what decoding a pod used to cost. When the engine starts reading another
//! member, it is added here, and every caller sees it at once: the compiler keeps them in step.
//!
//! The engine's patch is written against the JSON the API server sent, never against this view:
//! members the view leaves out are never rewritten. Whether a map or list exists at all
//! (`metadata`, `metadata.annotations`, `spec.volumes`, …) is kept (`None` when absent or
//! `null`), because the patch must add a missing one whole and append to an existing one.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, EmptyDirVolumeSource, PodOS, ResourceRequirements};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The pod: `metadata` and `spec` as far as the engine reads them.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodView {
    /// `metadata`, when the object has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<PodMeta>,
    /// `spec`, when the object has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<PodSpecView>,
}

/// The members of `metadata` the engine reads.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodMeta {
    /// `metadata.name` (absent on pods of a ReplicaSet until the API server names them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `metadata.generateName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate_name: Option<String>,
    /// `metadata.namespace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// `metadata.labels`: policy rules select on them; the Nacos service name falls back to them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// `metadata.annotations`: the pod's overrides and podgrace's own record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// The members of `spec` the engine reads.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpecView {
    /// `spec.containers`, whole: hooks, env, probes, ports, mounts and image are all read.
    #[serde(default)]
    pub containers: Vec<Container>,
    /// `spec.initContainers`, whole: native sidecars are mutated like containers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_containers: Option<Vec<Container>>,
    /// `spec.os`: the helper is never injected into Windows pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<PodOS>,
    /// `spec.nodeSelector`, its OS labels only: how most Windows pods still choose their nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<OsSelector>,
    /// `spec.restartPolicy`: run-to-completion pods are skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<String>,
    /// `spec.terminationGracePeriodSeconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_grace_period_seconds: Option<i64>,
    /// `spec.resources`, the pod-level budget (PodLevelResources): the containers' requests must
    /// fit in it, so the helper's init container then requests nothing of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// `spec.shareProcessNamespace`: then the pause container is PID 1, no container's process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_process_namespace: Option<bool>,
    /// `spec.hostNetwork`: then the pod's sockets are the node's, and an adaptive drain cannot
    /// tell its traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_network: Option<bool>,
    /// `spec.hostPID`: then the node's init is PID 1.
    #[serde(default, rename = "hostPID", skip_serializing_if = "Option::is_none")]
    pub host_pid: Option<bool>,
    /// `spec.volumes`, each by name and `emptyDir` (how the helper's own volume is told from a
    /// foreign one of the same name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<Vec<VolumeView>>,
}

/// The members of `spec.nodeSelector` the engine reads: the node OS labels. serde skips the
/// others without building them.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
pub struct OsSelector {
    /// `kubernetes.io/os`.
    #[serde(
        rename = "kubernetes.io/os",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os: Option<String>,
    /// `beta.kubernetes.io/os`, the label's name before Kubernetes 1.14, still in old manifests.
    #[serde(
        rename = "beta.kubernetes.io/os",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub beta_os: Option<String>,
}

impl PodSpecView {
    /// Whether each container's process is PID 1 of its own namespace: not where the pod shares
    /// one between its containers (the pause container is PID 1) or uses the node's (`hostPID`).
    pub fn containers_are_pid1(&self) -> bool {
        self.share_process_namespace != Some(true) && self.host_pid != Some(true)
    }

    /// Whether the pod runs on Windows nodes: `spec.os.name`, or a node selector on the OS label
    /// (how the Kubernetes documentation's Windows examples choose their nodes).
    pub fn is_windows(&self) -> bool {
        let windows = |os: &Option<String>| os.as_deref() == Some("windows");
        self.os.as_ref().is_some_and(|os| os.name == "windows")
            || self
                .node_selector
                .as_ref()
                .is_some_and(|s| windows(&s.os) || windows(&s.beta_os))
    }
}

/// The members of a volume the engine reads.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeView {
    /// `name`.
    pub name: String,
    /// `emptyDir`, when that is the volume's source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty_dir: Option<EmptyDirVolumeSource>,
}

/// What decoding a pod into [`PodView`] builds besides copies of its strings, counted on its
/// JSON text without building it: the server's memory budget reserves by it before decoding a
/// large review (`server::body_budget`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BuiltObjects {
    /// Containers and init containers: a k8s-openapi `Container` each, and the engine's plan and
    /// patch for it.
    pub containers: usize,
    /// JSON objects inside them and in `spec.volumes` (an `env` entry, a port, a mount, a
    /// volume): at most a small struct each. Objects inside strings and inside members the view
    /// skips are counted too: an overestimate.
    pub nested: usize,
}

/// A pod's shape as far as [`BuiltObjects`] needs it: the lists that decoding into
/// [`PodView`] builds, kept as raw JSON. Everything else, `managedFields` (an object per field
/// of the pod) above all, is skipped as the view skips it.
#[derive(Debug, Default, Deserialize)]
pub struct PodShape<'a> {
    #[serde(borrow, default)]
    spec: Option<SpecShape<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpecShape<'a> {
    #[serde(borrow, default)]
    containers: Option<Vec<&'a RawValue>>,
    #[serde(borrow, default)]
    init_containers: Option<Vec<&'a RawValue>>,
    #[serde(borrow, default)]
    volumes: Option<&'a RawValue>,
}

impl PodShape<'_> {
    /// What decoding this pod into [`PodView`] builds.
    pub fn built_objects(&self) -> BuiltObjects {
        let Some(spec) = &self.spec else {
            return BuiltObjects::default();
        };
        let braces = |raw: &RawValue| memchr::memchr_iter(b'{', raw.get().as_bytes()).count();
        let containers = spec
            .containers
            .iter()
            .chain(&spec.init_containers)
            .flatten();
        let (count, inside) = containers.fold((0, 0), |(n, b), c| (n + 1, b + braces(c)));
        BuiltObjects {
            containers: count,
            // Each container's own `{` is the container.
            nested: inside.saturating_sub(count) + spec.volumes.map_or(0, braces),
        }
    }
}

/// Why a pod could not be read: the path of the member and what was wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {inner}", path = display_path(.0.path()), inner = .0.inner())]
pub struct PodViewError(serde_path_to_error::Error<serde_json::Error>);

fn display_path(path: &serde_path_to_error::Path) -> String {
    let text = path.to_string();
    if text == "." {
        "the pod".to_owned()
    } else {
        text
    }
}

impl PodView {
    /// Decodes a pod from its JSON text, naming the member that does not fit on failure
    /// (`spec.containers[0].ports[0].containerPort: invalid type: …`).
    pub fn from_json(json: &str) -> Result<PodView, PodViewError> {
        // Tracking the path costs an allocation per member read, so it is paid only for a pod
        // that does not fit, to name where.
        serde_json::from_str(json).or_else(|_| {
            let mut de = serde_json::Deserializer::from_str(json);
            serde_path_to_error::deserialize(&mut de).map_err(PodViewError)
        })
    }

    /// Decodes a pod from a JSON value (manifests, tests), naming the member that does not fit.
    pub fn from_value(value: serde_json::Value) -> Result<PodView, PodViewError> {
        serde_path_to_error::deserialize(value).map_err(PodViewError)
    }

    /// `metadata.labels`, when there are any.
    pub fn labels(&self) -> Option<&BTreeMap<String, String>> {
        self.metadata.as_ref()?.labels.as_ref()
    }

    /// `metadata.annotations`, when there are any.
    pub fn annotations(&self) -> Option<&BTreeMap<String, String>> {
        self.metadata.as_ref()?.annotations.as_ref()
    }

    /// The pod's name, or its `generateName` prefix when the API server has not named it yet.
    pub fn name(&self) -> Option<&str> {
        let meta = self.metadata.as_ref()?;
        meta.name.as_deref().or(meta.generate_name.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn built_objects_are_the_containers_and_what_is_inside_them_never_managed_fields() {
        let pod = json!({
            "metadata": {
                "name": "p",
                "managedFields": [{"fieldsV1": {"f:spec": {"f:containers": {
                    "k:{\"name\":\"app\"}": {".": {}, "f:env": {}}
                }}}}]
            },
            "spec": {
                "containers": [{"name": "app", "env": [
                    {"name": "A", "value": "1"},
                    {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
                ]}],
                "initContainers": [{"name": "init"}],
                "volumes": [{"name": "v", "emptyDir": {}}],
                "tolerations": [{"key": "k"}, {"key": "l"}]
            }
        })
        .to_string();
        let shape: PodShape = serde_json::from_str(&pod).unwrap();
        assert_eq!(
            shape.built_objects(),
            // Two env entries, a valueFrom, its fieldRef; the volume and its emptyDir.
            BuiltObjects {
                containers: 2,
                nested: 6
            }
        );
        let empty: PodShape = serde_json::from_str(r#"{"metadata": {"name": "p"}}"#).unwrap();
        assert_eq!(empty.built_objects(), BuiltObjects::default());
        // A shape the view could not decode either is not counted.
        assert!(serde_json::from_str::<PodShape>(r#"{"spec": {"containers": 3}}"#).is_err());
    }

    #[test]
    fn a_pod_runs_on_windows_by_its_os_or_its_node_selector() {
        let spec = |spec| {
            PodView::from_value(json!({ "spec": spec }))
                .unwrap()
                .spec
                .unwrap()
        };
        assert!(spec(json!({"os": {"name": "windows"}})).is_windows());
        let selected = json!({"nodeSelector": {"kubernetes.io/os": "windows", "zone": {"a": 1}}});
        assert!(spec(selected).is_windows());
        assert!(spec(json!({"nodeSelector": {"beta.kubernetes.io/os": "windows"}})).is_windows());
        assert!(!spec(json!({"nodeSelector": {"kubernetes.io/os": "linux"}})).is_windows());
        let linux =
            json!({"os": {"name": "linux"}, "nodeSelector": {"kubernetes.io/arch": "amd64"}});
        assert!(!spec(linux).is_windows());
    }

    #[test]
    fn members_the_engine_does_not_read_are_skipped_whatever_their_shape() {
        let pod = PodView::from_value(json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p", "managedFields": [{"fieldsV1": {"f:x": {}}}], "uid": 7},
            "spec": {
                "containers": [{"name": "app", "image": "x"}],
                "volumes": [{"name": "token", "projected": {"sources": 3}}],
                "affinity": "not an object",
            },
            "status": [1, 2],
        }))
        .unwrap();
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(spec.containers[0].name, "app");
        assert_eq!(spec.volumes.as_ref().unwrap()[0].name, "token");
        assert_eq!(pod.name(), Some("p"));
    }

    #[test]
    fn absent_and_null_maps_are_told_from_empty_ones() {
        let absent = PodView::from_value(json!({"metadata": {"name": "p"}})).unwrap();
        assert_eq!(absent.annotations(), None);
        let null = PodView::from_value(json!({"metadata": {"annotations": null}})).unwrap();
        assert_eq!(null.annotations(), None);
        let empty = PodView::from_value(json!({"metadata": {"annotations": {}}})).unwrap();
        assert_eq!(empty.annotations(), Some(&BTreeMap::new()));
        let bare = PodView::from_value(json!({"spec": {"containers": []}})).unwrap();
        assert_eq!(bare.metadata, None);
        // `metadata: {}` exists: annotations are added to it, never the object replaced.
        let no_members = PodView::from_value(json!({"metadata": {}})).unwrap();
        assert_eq!(no_members.metadata, Some(PodMeta::default()));
    }

    #[test]
    fn a_member_of_the_wrong_type_is_named_by_its_path() {
        for (pod, path) in [
            (
                json!({"metadata": {"annotations": {"a": 1}}}),
                "metadata.annotations.a",
            ),
            (
                json!({"spec": {"containers": [{"name": "c", "ports": [{"containerPort": "80"}]}]}}),
                "spec.containers[0].ports[0].containerPort",
            ),
            (
                json!({"spec": {"terminationGracePeriodSeconds": "30"}}),
                "spec.terminationGracePeriodSeconds",
            ),
            (json!("a pod"), "the pod"),
        ] {
            let text = serde_json::to_string(&pod).unwrap();
            for err in [
                PodView::from_json(&text).unwrap_err(),
                PodView::from_value(pod.clone()).unwrap_err(),
            ] {
                assert!(err.to_string().starts_with(&format!("{path}: ")), "{err}");
            }
        }
    }
}
