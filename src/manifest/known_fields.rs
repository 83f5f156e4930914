//! Fields the Kubernetes API does not know, found with k8s-openapi's own types: an object is
//! read into its type and written back, and every key of the input that did not survive is one
//! the API has no field for (`readinesProbe`, `imagePullPolcy`). kubectl's default strict field
//! validation rejects such an object, so `podgrace mutate` and `podgrace audit` name the typo
//! instead of mutating around it (adding a readiness probe beside a misspelled one). No list of
//! field names is kept here: the types are the list. Pure.

use k8s_openapi::api::{apps, batch, core};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The unknown fields of `doc`, a manifest of `kind` whose pod template sits at `template`
/// (tokens from the document's root), as dotted paths from the document's root
/// (`spec.template.spec.containers[0].readinesProbe`). The built-in workload kinds are checked
/// whole; any other kind with a pod template only in its template. An object its type cannot
/// read at all yields nothing here: that is another error, reported where the pod is read.
pub fn unknown_fields(doc: &Value, kind: &str, template: &[&str]) -> Vec<String> {
    let whole = match kind {
        "Pod" => Some(check::<core::v1::Pod>(doc)),
        "PodTemplate" => Some(check::<core::v1::PodTemplate>(doc)),
        "Deployment" => Some(check::<apps::v1::Deployment>(doc)),
        "StatefulSet" => Some(check::<apps::v1::StatefulSet>(doc)),
        "DaemonSet" => Some(check::<apps::v1::DaemonSet>(doc)),
        "ReplicaSet" => Some(check::<apps::v1::ReplicaSet>(doc)),
        "Job" => Some(check::<batch::v1::Job>(doc)),
        "CronJob" => Some(check::<batch::v1::CronJob>(doc)),
        _ => None,
    };
    match whole {
        Some(Some(found)) => found,
        // Another kind, or a built-in one its type cannot read (a removed apiVersion's shape):
        // its template still is a pod template.
        _ => {
            let mut node = doc;
            for token in template {
                match node.get(*token) {
                    Some(next) => node = next,
                    None => return Vec::new(),
                }
            }
            check::<core::v1::PodTemplateSpec>(node)
                .unwrap_or_default()
                .into_iter()
                .map(|p| format!("{}.{p}", template.join(".")))
                .collect()
        }
    }
}

/// The input keys that `T` does not keep, or `None` when `T` cannot read `value`.
fn check<T: DeserializeOwned + Serialize>(value: &Value) -> Option<Vec<String>> {
    let typed: T = serde_json::from_value(value.clone()).ok()?;
    let known = serde_json::to_value(&typed).ok()?;
    let mut out = Vec::new();
    missing(value, &known, String::new(), &mut out);
    Some(out)
}

fn missing(input: &Value, known: &Value, path: String, out: &mut Vec<String>) {
    match (input, known) {
        (Value::Object(input), Value::Object(known)) => {
            for (key, value) in input {
                // An explicit null is "not set", which every field may be.
                if value.is_null() {
                    continue;
                }
                let at = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match known.get(key) {
                    Some(k) => missing(value, k, at, out),
                    None => out.push(at),
                }
            }
        }
        (Value::Array(input), Value::Array(known)) if input.len() == known.len() => {
            for (i, (value, k)) in input.iter().zip(known).enumerate() {
                missing(value, k, format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(container: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "labels": {"app": "web"}, "annotations": {"a": "b"}},
               "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                        "template": {"metadata": {"labels": {"app": "web"}},
                                     "spec": {"containers": [container],
                                              "volumes": [{"name": "tmp", "emptyDir": {}}]}}}})
    }

    #[test]
    fn misspelled_fields_are_named_at_their_path() {
        let doc = deployment(json!({"name": "web", "image": "nginx:1.27",
            "imagePullPolcy": "Always",
            "readinesProbe": {"httpGet": {"path": "/", "port": 80}},
            "resources": {"limits": {"memory": "128Mi"}}}));
        assert_eq!(
            unknown_fields(&doc, "Deployment", &["spec", "template"]),
            [
                "spec.template.spec.containers[0].imagePullPolcy",
                "spec.template.spec.containers[0].readinesProbe"
            ]
        );
    }

    #[test]
    fn a_valid_object_has_no_unknown_fields_whatever_it_sets() {
        let doc = deployment(json!({"name": "web", "image": "nginx:1.27",
            "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}],
            "env": [{"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
            "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 5},
            "resources": {"requests": {"cpu": "100m"}, "limits": {"memory": "1Gi"}},
            "securityContext": {}, "lifecycle": {"preStop": {"sleep": {"seconds": 5}}}}));
        assert_eq!(
            unknown_fields(&doc, "Deployment", &["spec", "template"]),
            Vec::<String>::new()
        );
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "creationTimestamp": null},
            "spec": {"containers": [{"name": "a", "image": "x"}]}, "status": {}});
        assert_eq!(unknown_fields(&pod, "Pod", &[]), Vec::<String>::new());
    }

    #[test]
    fn other_kinds_are_checked_in_their_template() {
        let rollout = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "r"},
            "spec": {"strategy": {"canary": {"steps": [{"setWeight": 20}]}},
                     "template": {"spec": {"containers": [{"name": "a", "image": "x", "comand": ["x"]}]}}}});
        assert_eq!(
            unknown_fields(&rollout, "Rollout", &["spec", "template"]),
            ["spec.template.spec.containers[0].comand"]
        );
    }
}
