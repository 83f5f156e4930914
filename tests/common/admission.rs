//! AdmissionReviews as the API server sends them, and what tests read from podgrace's answers.

use base64::Engine as _;
use serde_json::{Value, json};

/// A review of ConfigMap `shop/name` (`operation`: CREATE, UPDATE, DELETE) holding `policy` under
/// `policy.yaml`: what the API server sends `/validate`.
pub fn configmap_review(operation: &str, name: &str, policy: &str) -> String {
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "7b0f4c1e-0000-4000-8000-000000000001",
        "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
        "resource": {"group": "", "version": "v1", "resource": "configmaps"},
        "requestKind": {"group": "", "version": "v1", "kind": "ConfigMap"},
        "requestResource": {"group": "", "version": "v1", "resource": "configmaps"},
        "name": name, "namespace": "shop", "operation": operation,
        "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
        "object": {"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": name, "namespace": "shop"},
                   "data": {"policy.yaml": policy}},
        "oldObject": null, "dryRun": false}})
    .to_string()
}

/// The JSON patch of an answered review, decoded from its base64; `None` when it has none.
pub fn decoded_patch(review: &Value) -> Option<json_patch::Patch> {
    let b64 = review["response"]["patch"].as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    Some(serde_json::from_slice(&bytes).unwrap())
}
