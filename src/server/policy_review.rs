//! `POST /validate`: the validating webhook for policy ConfigMaps. An invalid policy is denied at
//! `kubectl apply` time with the precise message (field path, expected values), checked on top of
//! the cluster default exactly as the store would load it.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::response::Response;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::core::admission::Operation;

use super::AppState;
use super::body_budget::Budgeted;
use super::pod_review::{bad_request, json};
use super::review::{self, Answer};
use crate::observability::metrics::{Endpoint, Outcome};
use crate::policy::EffectivePolicy;
use crate::policy::parse::layer_from_configmap;

const ENDPOINT: Endpoint = Endpoint::Validate;

/// The `POST /validate` handler.
pub async fn review_policies(State(state): State<Arc<AppState>>, body: Budgeted) -> Response {
    body.handle(move |body| review_configmap(&state, body))
        .await
}

fn review_configmap(state: &AppState, body: &[u8]) -> Response {
    let start = Instant::now();
    let req = match review::decode(body) {
        Ok(req) => req,
        Err(e) => return bad_request(state, ENDPOINT, e),
    };
    let allow = Answer::allow(&req);
    let relevant =
        req.is_core("ConfigMap") && matches!(req.operation, Operation::Create | Operation::Update);
    // The API server has decoded the object already; one that is not a ConfigMap is not ours.
    let configmap = req
        .object
        .filter(|_| relevant)
        .and_then(|raw| serde_json::from_str::<ConfigMap>(raw.get()).ok())
        .filter(|cm| cm.metadata.name.as_deref() == Some(state.policy_configmap.name.as_str()));
    let Some(mut cm) = configmap else {
        state.metrics.request(ENDPOINT, Outcome::Ignored);
        return json(&allow);
    };
    if cm.metadata.namespace.is_none() {
        cm.metadata.namespace = req.namespace.clone();
    }
    let checked = layer_from_configmap(&cm, &state.policy_configmap.key).and_then(|layer| {
        let cluster = state.store.cluster_layer();
        EffectivePolicy::combine(cluster.as_deref(), Some(&layer)).map(drop)
    });
    let answer = match checked {
        Ok(()) => {
            state.metrics.request(ENDPOINT, Outcome::Allowed);
            allow
        }
        Err(e) => {
            state.metrics.request(ENDPOINT, Outcome::Denied);
            tracing::info!(uid = req.uid.as_str(), namespace = req.namespace.as_deref().unwrap_or(""), error = %e, "policy denied");
            allow.deny(format!("invalid podgrace policy: {e}"))
        }
    };
    state
        .metrics
        .observe_latency(ENDPOINT, start.elapsed().as_secs_f64());
    json(&answer)
}
