//! `POST /mutate`: the engine behind an AdmissionReview. Always allowed: an internal failure
//! answers with no patch, a warning, a log line and a metric, never with a blocked pod.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use kube::core::GroupVersionKind;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation};

use super::AppState;
use super::body_budget::Budgeted;
use super::pod_wire::WirePod;
use super::review::{self, Decoded, ReviewError};
use crate::engine;
use crate::metrics::{Endpoint, Outcome};

const ENDPOINT: Endpoint = Endpoint::mutate;

/// The handler.
pub async fn mutate(State(state): State<Arc<AppState>>, body: Budgeted) -> Response {
    body.handle(move |body| review_pod(&state, body)).await
}

fn review_pod(state: &AppState, body: &[u8]) -> Response {
    let start = Instant::now();
    let decoded = match review::decode_pod(body) {
        Ok(decoded) => decoded,
        Err(e) => return bad_request(state, ENDPOINT, e),
    };
    let uid = match &decoded {
        Decoded::Typed(req) => req.uid.as_str(),
        Decoded::Other(req, _) => req.uid.as_str(),
    };
    // Every line logged while answering carries the request's uid, the key that joins
    // podgrace's logs to the API server's audit log.
    let span = tracing::info_span!("admission", uid);
    let response = span.in_scope(|| match &decoded {
        Decoded::Typed(req) => answer(state, req, start),
        Decoded::Other(req, why) => {
            let resp = AdmissionResponse::from(&**req);
            if is_pod(&req.kind) && req.sub_resource.is_none() {
                // A pod podgrace cannot read is still admitted, untouched.
                state.metrics.request(ENDPOINT, Outcome::error);
                tracing::error!(error = %why, "pod not readable; admitted without changes");
                json(&with_warning(
                    resp,
                    "podgrace: could not read the pod; nothing injected",
                ))
            } else {
                state.metrics.request(ENDPOINT, Outcome::ignored);
                json(&resp)
            }
        }
    });
    state
        .metrics
        .observe_latency(ENDPOINT, start.elapsed().as_secs_f64());
    response
}

fn answer(state: &AppState, req: &AdmissionRequest<WirePod>, start: Instant) -> Response {
    let resp = AdmissionResponse::from(req);
    // The webhook configuration routes only pod creation here; anything else passes untouched.
    let (true, Operation::Create, None, Some(WirePod(pod))) = (
        is_pod(&req.kind),
        &req.operation,
        &req.sub_resource,
        &req.object,
    ) else {
        state.metrics.request(ENDPOINT, Outcome::ignored);
        return json(&resp);
    };
    let namespace = req.namespace.as_deref().unwrap_or_default();
    let name = pod
        .metadata
        .name
        .as_deref()
        .or(pod.metadata.generate_name.as_deref())
        .unwrap_or(req.name.as_str());
    let policy = state.store.policy_for(namespace);
    let ctx = state.context();
    // The engine does not panic on any input the property tests found; this is the seat belt
    // that keeps a bug from failing pod creation.
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| engine::mutate(pod, &policy, &ctx)));
    let mutation = match result {
        Ok(Ok(m)) => m,
        Ok(Err(e)) => return internal_error(state, req, namespace, name, &e.to_string()),
        Err(_) => return internal_error(state, req, namespace, name, "engine panicked"),
    };
    let warnings = mutation.warnings;
    let record = mutation.record;
    let changed = !mutation.patch.0.is_empty();
    let mut resp = resp;
    if changed {
        resp = match resp.with_patch(mutation.patch) {
            Ok(r) => r,
            Err(e) => return internal_error(state, req, namespace, name, &e.to_string()),
        };
        for &kind in &record.injections {
            state.metrics.injection(kind);
        }
        resp.audit_annotations = audit(&record);
    }
    if !warnings.is_empty() {
        resp.warnings = Some(warnings);
    }
    let decision = match (&record.skipped, changed) {
        (Some(_), _) => Outcome::skipped,
        (None, true) => Outcome::patched,
        (None, false) => Outcome::unchanged,
    };
    state.metrics.request(ENDPOINT, decision);
    tracing::info!(
        namespace,
        pod = name,
        dry_run = req.dry_run,
        decision = ?decision,
        reason = record.skipped.as_deref().unwrap_or(""),
        latency_us = start.elapsed().as_micros() as u64,
        "admission"
    );
    json(&resp)
}

/// Core `v1` pods, not a custom resource that happens to be called Pod.
fn is_pod(kind: &GroupVersionKind) -> bool {
    kind.group.is_empty() && kind.kind == "Pod"
}

fn audit(record: &engine::record::Record) -> HashMap<String, String> {
    let mut audit = HashMap::new();
    let injected: Vec<String> = record
        .containers
        .iter()
        .map(|c| format!("{}: {}", c.name, c.items.join(" ")))
        .collect();
    audit.insert("injected".to_owned(), injected.join("; "));
    if let Some(g) = &record.grace {
        audit.insert("grace".to_owned(), g.clone());
    }
    audit.insert("policy".to_owned(), record.policy.clone());
    audit
}

fn internal_error(
    state: &AppState,
    req: &AdmissionRequest<WirePod>,
    namespace: &str,
    name: &str,
    error: &str,
) -> Response {
    state.metrics.request(ENDPOINT, Outcome::error);
    tracing::error!(
        namespace,
        pod = name,
        error,
        "mutation failed; pod admitted without changes"
    );
    json(&with_warning(
        AdmissionResponse::from(req),
        "podgrace: internal error; nothing injected",
    ))
}

fn with_warning(mut resp: AdmissionResponse, warning: &str) -> AdmissionResponse {
    resp.warnings = Some(vec![warning.to_owned()]);
    resp
}

/// A 200 response carrying the review.
pub(super) fn json(resp: &AdmissionResponse) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        review::encode(resp),
    )
        .into_response()
}

/// A 400 response with a JSON error body.
pub(super) fn bad_request(state: &AppState, endpoint: Endpoint, e: ReviewError) -> Response {
    state.metrics.request(endpoint, Outcome::bad_request);
    tracing::warn!(endpoint = ?endpoint, error = %e, "bad admission request");
    let body = serde_json::json!({ "error": e.to_string() });
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}
