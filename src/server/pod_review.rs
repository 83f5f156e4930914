//! `POST /mutate`: the engine behind an AdmissionReview. Always allowed: an internal failure
//! answers with no patch, a warning, a log line and a metric, never with a blocked pod.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use kube::core::admission::Operation;

use super::AppState;
use super::body_budget::Budgeted;
use super::review::{self, Answer, Request, ReviewError};
use crate::engine::{self, ClusterInfo, EngineError, Mutation, PodView};
use crate::observability::metrics::{Endpoint, Outcome};
use crate::policy::EffectivePolicy;

const ENDPOINT: Endpoint = Endpoint::Mutate;

/// The handler.
pub async fn review_pods(State(state): State<Arc<AppState>>, body: Budgeted) -> Response {
    body.handle(move |body| review_pod(&state, body)).await
}

fn review_pod(state: &AppState, body: &[u8]) -> Response {
    let start = Instant::now();
    // The ordinary review: the envelope and the pod in one pass over the body.
    let answer = match review::decode_as::<PodView>(body) {
        Ok(req) => {
            let pod = req.object.as_ref().map(Ok);
            answer(state, &req, pod, start, engine::mutation_for)
        }
        // Not a review, or an object that is not a pod podgrace can read: decoded again with
        // the object kept raw, to tell which.
        Err(_) => match review::decode(body) {
            Ok(req) => {
                let pod = req.object.map(|o| PodView::from_json(o.get()));
                let pod = pod
                    .as_ref()
                    .map(|p| p.as_ref().map_err(|e| e as &dyn Display));
                answer(state, &req, pod, start, engine::mutation_for)
            }
            Err(e) => return bad_request(state, ENDPOINT, e),
        },
    };
    state
        .metrics
        .observe_latency(ENDPOINT, start.elapsed().as_secs_f64());
    json(&answer)
}

/// The engine's signature: `answer` takes it as a parameter so that tests can hand it one that
/// fails or panics.
type Engine = fn(&PodView, &EffectivePolicy, &ClusterInfo) -> Result<Mutation, EngineError>;

/// The answer to `req`, whose object decoded to `pod` (`None` when it has none, an error when it
/// is not a pod podgrace can read).
fn answer<O>(
    state: &AppState,
    req: &Request<O>,
    pod: Option<Result<&PodView, &dyn Display>>,
    start: Instant,
    engine: Engine,
) -> Answer {
    let allow = Answer::allow(req);
    // The webhook configuration routes only pod creation here; anything else passes untouched.
    let (true, Operation::Create, None, Some(pod)) =
        (req.is_core("Pod"), &req.operation, &req.sub_resource, pod)
    else {
        state.metrics.request(ENDPOINT, Outcome::Ignored);
        return allow;
    };
    let namespace = req.namespace.as_deref().unwrap_or_default();
    let pod = match pod {
        Ok(pod) => pod,
        Err(e) => {
            // A pod podgrace cannot read is still admitted, untouched. The API server has
            // decoded it already, so this is a pod newer than podgrace's types, or a bug.
            state.metrics.request(ENDPOINT, Outcome::Error);
            tracing::error!(uid = req.uid.as_str(), namespace, pod = req.name.as_str(), error = %e, "pod not readable; admitted without changes");
            return allow.warn("podgrace: could not read the pod; nothing injected");
        }
    };
    let name = pod.name().unwrap_or(req.name.as_str());
    let policy = state.store.policy_for(namespace);
    let cluster = state.cluster_info();
    // The engine does not panic on any input the property tests found; this is the seat belt
    // that keeps a bug from failing pod creation.
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| engine(pod, &policy, &cluster)));
    let mutation = match result {
        Ok(Ok(m)) => m,
        Ok(Err(e)) => return internal_error(state, allow, req, name, &e.to_string()),
        Err(_) => return internal_error(state, allow, req, name, "engine panicked"),
    };
    let attention = mutation.needs_attention();
    let record = mutation.record;
    let changed = !mutation.patch.0.is_empty();
    let mut answer = allow.with_patch(mutation.patch);
    answer.warnings = mutation.warnings;
    if changed {
        for &kind in &record.injections {
            state.metrics.injection(namespace, kind);
        }
        answer.audit_annotations = audit(&record);
    }
    let decision = match (&record.skipped, changed) {
        (Some(_), _) => Outcome::Skipped,
        (None, true) => Outcome::Patched,
        (None, false) => Outcome::Unchanged,
    };
    state.metrics.request(ENDPOINT, decision);
    // The uid joins podgrace's lines to the API server's audit log. One line per admission at
    // `debug`; at `info` only those whose warnings ask the user to act (observability::summary
    // counts the rest).
    macro_rules! admission {
        ($level:ident) => {
            tracing::$level!(
                uid = req.uid.as_str(),
                namespace,
                pod = name,
                dry_run = req.dry_run,
                decision = decision.as_str(),
                reason = record.skipped.as_deref().unwrap_or(""),
                warnings = answer.warnings.len(),
                latency_us = start.elapsed().as_micros() as u64,
                "admission"
            )
        };
    }
    if attention {
        admission!(info);
    } else {
        admission!(debug);
    }
    answer
}

/// The audit annotations: what was injected, the grace period's arithmetic, the policy.
fn audit(record: &engine::record::Record) -> BTreeMap<String, String> {
    let injected: Vec<String> = record
        .containers
        .iter()
        .map(|c| format!("{}: {}", c.name, c.items.join(" ")))
        .collect();
    let mut audit = BTreeMap::from([
        ("injected".to_owned(), injected.join("; ")),
        ("policy".to_owned(), record.policy.clone()),
    ]);
    if let Some(g) = &record.grace {
        audit.insert("grace".to_owned(), g.clone());
    }
    audit
}

fn internal_error<O>(
    state: &AppState,
    allow: Answer,
    req: &Request<O>,
    name: &str,
    error: &str,
) -> Answer {
    state.metrics.request(ENDPOINT, Outcome::Error);
    tracing::error!(
        uid = req.uid.as_str(),
        namespace = req.namespace.as_deref().unwrap_or_default(),
        pod = name,
        error,
        "mutation failed; pod admitted without changes"
    );
    allow.warn("podgrace: internal error; nothing injected")
}

/// A 200 response carrying the review.
pub(super) fn json(answer: &Answer) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        answer.to_json(),
    )
        .into_response()
}

/// A 400 response with a JSON error body.
pub(super) fn bad_request(state: &AppState, endpoint: Endpoint, e: ReviewError) -> Response {
    state.metrics.request(endpoint, Outcome::BadRequest);
    tracing::warn!(endpoint = endpoint.as_str(), error = %e, "bad admission request");
    let body = serde_json::json!({ "error": e.to_string() });
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observability::metrics::Metrics;
    use crate::server::{PolicyConfigMap, ServerOptions};
    use crate::store::cache::PolicyCache;

    const FIXTURE: &[u8] =
        include_bytes!("../../tests/fixtures/admission/pod-create-kubectl-apply.json");

    fn state() -> Arc<AppState> {
        let metrics = Arc::new(Metrics::new());
        AppState::new(
            Arc::new(PolicyCache::new(metrics.clone())),
            metrics,
            None,
            PolicyConfigMap {
                name: "podgrace-policy".to_owned(),
                key: "policy.yaml".to_owned(),
            },
            &ServerOptions::default(),
        )
    }

    fn panicking(
        _: &PodView,
        _: &EffectivePolicy,
        _: &ClusterInfo,
    ) -> Result<Mutation, EngineError> {
        panic!("a bug in the engine")
    }

    fn failing(_: &PodView, _: &EffectivePolicy, _: &ClusterInfo) -> Result<Mutation, EngineError> {
        Err(EngineError::Serialize {
            what: "a probe",
            source: serde::ser::Error::custom("broken"),
        })
    }

    /// A review whose object does not decode as a pod in the one pass is decoded again, to
    /// tell an object of another kind (ignored), a pod podgrace cannot read (admitted with a
    /// warning, counted as an error) and a body that is not a review (400) apart.
    #[test]
    fn what_the_one_pass_cannot_decode_is_told_apart_by_the_second() {
        let fixture: serde_json::Value = serde_json::from_slice(FIXTURE).unwrap();
        let mut unreadable = fixture.clone();
        unreadable["request"]["object"]["spec"]["containers"] = "not a list".into();
        let mut other_kind = unreadable.clone();
        other_kind["request"]["kind"]["group"] = "example.com".into();
        let cases = [
            (other_kind.to_string(), StatusCode::OK, "ignored"),
            (unreadable.to_string(), StatusCode::OK, "error"),
            (
                r#"{"request": {"uid": 7}}"#.to_owned(),
                StatusCode::BAD_REQUEST,
                "bad_request",
            ),
        ];
        for (body, status, outcome) in cases {
            let state = state();
            assert!(review::decode_as::<PodView>(body.as_bytes()).is_err());
            let response = review_pod(&state, body.as_bytes());
            assert_eq!(response.status(), status, "{body}");
            let metrics = state.metrics.render();
            let counted = format!(r#"endpoint="mutate",outcome="{outcome}"}} 1"#);
            assert!(metrics.contains(&counted), "{outcome}: {metrics}");
        }
    }

    /// The seat belt: an engine that panics or fails still admits the pod, untouched, with a
    /// warning, an error log line and the error metric.
    #[test]
    fn a_panicking_or_failing_engine_admits_the_pod_untouched() {
        for engine in [panicking as Engine, failing] {
            let state = state();
            let req = review::decode_as::<PodView>(FIXTURE).unwrap();
            let pod = req.object.as_ref().map(Ok);
            let answer = answer(&state, &req, pod, Instant::now(), engine);
            let json: serde_json::Value = serde_json::from_slice(&answer.to_json()).unwrap();
            let r = &json["response"];
            assert_eq!(r["allowed"], true);
            assert!(r.get("patch").is_none(), "{r}");
            assert_eq!(
                r["warnings"][0],
                "podgrace: internal error; nothing injected"
            );
            let metrics = state.metrics.render();
            assert!(
                metrics.contains(r#"endpoint="mutate",outcome="error"} 1"#),
                "{metrics}"
            );
        }
        // The real engine on the same review patches it.
        let state = state();
        let req = review::decode_as::<PodView>(FIXTURE).unwrap();
        let pod = req.object.as_ref().map(Ok);
        assert!(answer(&state, &req, pod, Instant::now(), engine::mutation_for).has_patch());
    }
}
