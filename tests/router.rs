//! The HTTP contract of `podgrace::server::router` (the table in src/server/mod.rs), in process:
//! each request goes to the routes with `oneshot`, as the listener hands it over (a hyper request
//! with its body as an axum `Body`), without TLS, sockets or a second thread. tests/server.rs
//! runs the same contract through the real listener.

mod common;

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use common::admission::{configmap_review, decoded_patch};
use common::read_fixture;
use http_body_util::BodyExt as _;
use podgrace::observability::metrics::Metrics;
use podgrace::server::{AppState, PolicyConfigMap, ServerOptions, router};
use podgrace::store::cache::PolicyCache;
use serde_json::Value;
use tower::ServiceExt as _;

const APPLY: &str = "admission/pod-create-kubectl-apply.json";
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The webhook's routes, and the state and policy cache they answer from.
struct App {
    routes: Router,
    state: Arc<AppState>,
    cache: Arc<PolicyCache>,
}

/// What the routes answered.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn header(&self, name: header::HeaderName) -> &str {
        self.headers
            .get(&name)
            .unwrap_or_else(|| panic!("no {name} header: {:?}", self.headers))
            .to_str()
            .unwrap()
    }
}

impl App {
    /// Routes whose policies are not loaded yet (the cache has not had its first list), with the
    /// default options but what `tweak` changes.
    fn unsynced(tweak: impl FnOnce(&mut ServerOptions)) -> Self {
        let metrics = Arc::new(Metrics::new());
        let cache = Arc::new(PolicyCache::new(metrics.clone()));
        let mut opts = ServerOptions::default();
        tweak(&mut opts);
        let state = AppState::new(
            cache.clone(),
            metrics,
            None,
            PolicyConfigMap::default(),
            &opts,
        );
        App {
            routes: router(state.clone(), &opts),
            state,
            cache,
        }
    }

    /// Routes whose policies are loaded.
    fn ready(tweak: impl FnOnce(&mut ServerOptions)) -> Self {
        let app = Self::unsynced(tweak);
        app.cache.mark_synced();
        app
    }

    async fn call(&self, request: Request<Body>) -> Answer {
        let response = self.routes.clone().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        Answer {
            status: parts.status,
            headers: parts.headers,
            body: body.collect().await.unwrap().to_bytes(),
        }
    }

    async fn request(&self, method: Method, path: &str, body: impl Into<Body>) -> Answer {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.into())
            .unwrap();
        self.call(request).await
    }

    async fn get(&self, path: &str) -> Answer {
        self.request(Method::GET, path, Body::empty()).await
    }

    async fn post(&self, path: &str, body: impl Into<Body>) -> Answer {
        self.request(Method::POST, path, body).await
    }

    async fn metrics(&self) -> String {
        self.get("/metrics").await.text()
    }
}

#[tokio::test]
async fn post_mutate_answers_the_captured_review_allowed_with_a_base64_json_patch_that_applies() {
    let app = App::ready(|_| {});
    let body = read_fixture(APPLY);
    let answer = app.post("/mutate?timeout=10s", body.clone()).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.header(header::CONTENT_TYPE), "application/json");
    let review = answer.json();
    let request: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(review["kind"], "AdmissionReview");
    assert_eq!(review["response"]["uid"], request["request"]["uid"]);
    assert_eq!(review["response"]["allowed"], true);
    assert_eq!(review["response"]["patchType"], "JSONPatch");
    let patch = decoded_patch(&review).expect("a patch");
    let mut pod = request["request"]["object"].clone();
    json_patch::patch(&mut pod, &patch.0).unwrap();
    assert_eq!(
        pod["spec"]["containers"][0]["lifecycle"]["preStop"],
        serde_json::json!({"sleep": {"seconds": 10}})
    );
    assert_eq!(pod["spec"]["terminationGracePeriodSeconds"], 45);
    let _: k8s_openapi::api::core::v1::Pod = serde_json::from_value(pod).unwrap();
}

#[tokio::test]
async fn post_validate_allows_a_valid_policy_configmap_and_denies_an_invalid_one_with_its_field() {
    let app = App::ready(|_| {});
    let valid = app
        .post(
            "/validate",
            configmap_review("CREATE", "podgrace-policy", "preStop: {sleepSeconds: 30}"),
        )
        .await;
    assert_eq!(valid.status, StatusCode::OK);
    let review = valid.json();
    assert_eq!(review["response"]["allowed"], true, "{review}");
    assert_eq!(
        review["response"]["uid"],
        "7b0f4c1e-0000-4000-8000-000000000001"
    );

    let invalid = app
        .post(
            "/validate",
            configmap_review("UPDATE", "podgrace-policy", "preStop: {sleepSeconds: many}"),
        )
        .await;
    assert_eq!(invalid.status, StatusCode::OK);
    let review = invalid.json();
    assert_eq!(review["response"]["allowed"], false, "{review}");
    let message = review["response"]["status"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("invalid podgrace policy: configmap shop/podgrace-policy: ")
            && message.contains("preStop.sleepSeconds"),
        "{message}"
    );
    let metrics = app.metrics().await;
    for outcome in ["allowed", "denied"] {
        let line = format!(
            r#"podgrace_admission_requests_total{{endpoint="validate",outcome="{outcome}"}} 1"#
        );
        assert!(metrics.contains(&line), "{line}\n{metrics}");
    }
}

/// Liveness says the process serves, whatever readiness says.
#[tokio::test]
async fn get_healthz_answers_200_before_the_policies_are_loaded_and_while_draining() {
    let app = App::unsynced(|_| {});
    let answer = app.get("/healthz").await;
    assert_eq!(
        (answer.status, answer.text().as_str()),
        (StatusCode::OK, "ok")
    );
    app.state.start_draining();
    assert_eq!(app.get("/healthz").await.status, StatusCode::OK);
}

#[tokio::test]
async fn get_readyz_answers_503_until_the_policies_are_loaded_then_200_then_503_once_draining() {
    let app = App::unsynced(|_| {});
    let before = app.get("/readyz").await;
    assert_eq!(
        (before.status, before.text().as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "policies not loaded yet")
    );
    app.cache.mark_synced();
    let ready = app.get("/readyz").await;
    assert_eq!(
        (ready.status, ready.text().as_str()),
        (StatusCode::OK, "ok")
    );
    app.state.start_draining();
    let draining = app.get("/readyz").await;
    assert_eq!(
        (draining.status, draining.text().as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down")
    );
}

#[tokio::test]
async fn get_metrics_is_openmetrics_text_and_counts_the_admissions_answered() {
    let app = App::ready(|_| {});
    let patched = r#"podgrace_admission_requests_total{endpoint="mutate",outcome="patched"}"#;
    let before = app.get("/metrics").await;
    assert_eq!(before.status, StatusCode::OK);
    assert_eq!(before.header(header::CONTENT_TYPE), OPENMETRICS);
    assert!(
        before.text().contains(&format!("{patched} 0")),
        "{}",
        before.text()
    );
    assert!(before.text().ends_with("# EOF\n"), "{}", before.text());

    assert_eq!(
        app.post("/mutate", read_fixture(APPLY)).await.status,
        StatusCode::OK
    );
    let after = app.metrics().await;
    assert!(after.contains(&format!("{patched} 1")), "{after}");
    assert!(
        after.contains(r#"podgrace_admission_duration_seconds_count{endpoint="mutate"} 1"#),
        "{after}"
    );
}

#[tokio::test]
async fn an_unknown_path_answers_404() {
    let app = App::ready(|_| {});
    for (method, path) in [
        (Method::GET, "/"),
        (Method::GET, "/nope"),
        (Method::POST, "/mutate/"),
        (Method::POST, "/mutating"),
    ] {
        let answer = app.request(method.clone(), path, read_fixture(APPLY)).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{method} {path}");
    }
}

#[tokio::test]
async fn a_known_path_with_another_method_answers_405() {
    let app = App::ready(|_| {});
    for (method, path) in [
        (Method::GET, "/mutate"),
        (Method::PUT, "/mutate"),
        (Method::GET, "/validate"),
        (Method::POST, "/healthz"),
        (Method::DELETE, "/readyz"),
        (Method::POST, "/metrics"),
    ] {
        let answer = app.request(method.clone(), path, read_fixture(APPLY)).await;
        assert_eq!(
            answer.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
    }
    // A review sent with the wrong method is not answered.
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"podgrace_admission_duration_seconds_count{endpoint="mutate"} 0"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_malformed_review_answers_400_with_a_json_error_on_both_webhooks() {
    let app = App::ready(|_| {});
    for path in ["/mutate", "/validate"] {
        let garbage = app.post(path, "{not json").await;
        assert_eq!(garbage.status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(garbage.header(header::CONTENT_TYPE), "application/json");
        let error = garbage.json()["error"].as_str().unwrap().to_owned();
        assert!(
            error.starts_with("malformed AdmissionReview"),
            "{path}: {error}"
        );

        let no_request = app
            .post(
                path,
                r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#,
            )
            .await;
        assert_eq!(no_request.status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(no_request.json()["error"], "AdmissionReview has no request");
    }
    let metrics = app.metrics().await;
    for endpoint in ["mutate", "validate"] {
        let line = format!(
            r#"podgrace_admission_requests_total{{endpoint="{endpoint}",outcome="bad_request"}} 2"#
        );
        assert!(metrics.contains(&line), "{line}\n{metrics}");
    }
}

/// Over `max_body_bytes`: a declared length is refused before the body is read, a body without
/// one (chunked) once what arrived passes the limit; both close the connection.
#[tokio::test]
async fn a_body_over_max_body_bytes_answers_413_whether_its_length_is_declared_or_not() {
    let app = App::ready(|o| o.max_body_bytes = 4096);
    // Under the limit, the same routes answer.
    let small = configmap_review("CREATE", "other", "x: 1");
    assert_eq!(app.post("/validate", small).await.status, StatusCode::OK);

    for path in ["/mutate", "/validate"] {
        let declared = app.post(path, vec![b' '; 4097]).await;
        assert_eq!(declared.status, StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        assert_eq!(declared.header(header::CONNECTION), "close");
        let error = declared.json()["error"].as_str().unwrap().to_owned();
        assert_eq!(
            error, "request body of 4097 bytes is over the limit of 4096 bytes",
            "{path}"
        );

        let chunks = (0..5).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b' '; 1000])));
        let chunked = app
            .post(path, Body::from_stream(futures::stream::iter(chunks)))
            .await;
        assert_eq!(chunked.status, StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        assert_eq!(chunked.header(header::CONNECTION), "close");
        assert!(
            chunked.json()["error"]
                .as_str()
                .unwrap()
                .ends_with("over the limit of 4096 bytes"),
            "{path}: {}",
            chunked.text()
        );
    }
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"podgrace_requests_refused_total{reason="body_too_large"} 4"#),
        "{metrics}"
    );
}
