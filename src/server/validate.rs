//! `POST /validate`: the validating webhook for policy ConfigMaps. An invalid policy is denied at
//! `kubectl apply` time with the precise message (field path, expected values), checked on top of
//! the cluster default exactly as the store would load it.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::response::Response;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::core::admission::{AdmissionResponse, Operation};

use super::AppState;
use super::body_budget::Budgeted;
use super::mutate::{bad_request, json};
use super::review::{self, Decoded};
use crate::metrics::{Endpoint, Outcome};
use crate::policy::EffectivePolicy;
use crate::policy::parse::layer_from_configmap;

const ENDPOINT: Endpoint = Endpoint::validate;

/// The handler.
pub async fn validate(State(state): State<Arc<AppState>>, body: Budgeted) -> Response {
    body.handle(move |body| review_configmap(&state, body))
        .await
}

fn review_configmap(state: &AppState, body: &[u8]) -> Response {
    let start = Instant::now();
    let req = match review::decode::<ConfigMap>(body) {
        Ok(Decoded::Typed(req)) => req,
        Ok(Decoded::Other(req, _)) => {
            state.metrics.request(ENDPOINT, Outcome::ignored);
            return json(&AdmissionResponse::from(&*req));
        }
        Err(e) => return bad_request(state, ENDPOINT, e),
    };
    // The same span as `/mutate`: what is logged carries the request's uid.
    let span = tracing::info_span!("admission", uid = req.uid.as_str());
    let _in_span = span.enter();
    let resp = AdmissionResponse::from(&*req);
    let relevant = matches!(req.operation, Operation::Create | Operation::Update);
    let configmap = req.object.as_ref().filter(|cm| {
        relevant && cm.metadata.name.as_deref() == Some(state.policy_configmap.name.as_str())
    });
    let Some(cm) = configmap else {
        state.metrics.request(ENDPOINT, Outcome::ignored);
        return json(&resp);
    };
    let mut cm = cm.clone();
    if cm.metadata.namespace.is_none() {
        cm.metadata.namespace = req.namespace.clone();
    }
    let checked = layer_from_configmap(&cm, &state.policy_configmap.key).and_then(|layer| {
        let cluster = state.store.cluster_layer();
        EffectivePolicy::combine(cluster.as_deref(), Some(&layer)).map(drop)
    });
    let resp = match checked {
        Ok(()) => {
            state.metrics.request(ENDPOINT, Outcome::allowed);
            resp
        }
        Err(e) => {
            state.metrics.request(ENDPOINT, Outcome::denied);
            tracing::info!(namespace = req.namespace.as_deref().unwrap_or(""), error = %e, "policy denied");
            resp.deny(format!("invalid podgrace policy: {e}"))
        }
    };
    state
        .metrics
        .observe_latency(ENDPOINT, start.elapsed().as_secs_f64());
    json(&resp)
}
