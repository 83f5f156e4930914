//! The HTTPS admission server, started for real on a loopback port with real TLS and queried by
//! clients that verify its certificate. The AdmissionReviews are the ones a v1.36 API server
//! sent, byte for byte.

mod common;

use std::time::Duration;

use common::admission::decoded_patch;
use common::https::*;
use common::*;
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const FIXTURES: [&str; 3] = [
    "admission/pod-create-kubectl-apply.json",
    "admission/pod-create-kubectl-run.json",
    "admission/pod-create-dry-run.json",
];

#[tokio::test]
async fn captured_reviews_get_patches_that_apply_to_the_request_object() {
    let server = TestServer::start(|_| {}).await;
    for f in FIXTURES {
        let body = read_fixture(f);
        let request: Value = serde_json::from_str(&body).unwrap();
        let (status, review) = server.post("/mutate?timeout=5s", body.clone()).await;
        assert_eq!(status, 200, "{f}");
        assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(review["kind"], "AdmissionReview");
        assert_eq!(review["response"]["uid"], request["request"]["uid"], "{f}");
        assert_eq!(review["response"]["allowed"], true);
        let mut object = request["request"]["object"].clone();
        if let Some(patch) = decoded_patch(&review) {
            assert_eq!(review["response"]["patchType"], "JSONPatch");
            json_patch::patch(&mut object, &patch.0).unwrap();
            let _: Pod = serde_json::from_value(object.clone()).unwrap();
            assert!(review["response"]["auditAnnotations"]["injected"].is_string());
        }
        match f {
            "admission/pod-create-kubectl-run.json" => {
                assert!(decoded_patch(&review).is_none(), "batch pod")
            }
            // No port: nothing to drain, the grace period stays.
            "admission/pod-create-dry-run.json" => {
                assert_eq!(object["spec"]["terminationGracePeriodSeconds"], 30)
            }
            _ => assert_eq!(object["spec"]["terminationGracePeriodSeconds"], 45, "{f}"),
        }
    }
    let metrics = server
        .client()
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            r#"podgrace_admission_requests_total{endpoint="mutate",outcome="patched"} 2"#
        ),
        "{metrics}"
    );
    assert!(
        // The dry-run pod declares no port: env only, no hook.
        metrics.contains(r#"podgrace_injections_total{namespace="probe",kind="prestop"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("podgrace_admission_duration_seconds_count{endpoint=\"mutate\"} 3"),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_patch_is_base64_and_warnings_reach_the_user() {
    let server = TestServer::start(|_| {}).await;
    let (_, review) = server
        .post(
            "/mutate",
            read_fixture("admission/pod-create-kubectl-apply.json"),
        )
        .await;
    assert!(review["response"]["patch"].is_string());
    let warnings: Vec<&str> = review["response"]["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert!(
        warnings.iter().any(|w| w.contains("grace period 30 → 45")),
        "{warnings:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn bad_requests_get_clear_statuses() {
    let server = TestServer::start(|o| o.max_body_bytes = 64 * 1024).await;
    let (status, body) = server.post("/mutate", "{not json").await;
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("malformed AdmissionReview"),
        "{body}"
    );

    let (status, body) = server
        .post(
            "/mutate",
            r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#,
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "AdmissionReview has no request");

    let (status, _) = server.post("/mutate", vec![b' '; 65 * 1024]).await;
    assert_eq!(status, 413);

    let c = server.client();
    assert_eq!(
        c.get(server.url("/mutate")).send().await.unwrap().status(),
        405
    );
    assert_eq!(
        c.get(server.url("/nope")).send().await.unwrap().status(),
        404
    );
    assert_eq!(
        c.get(server.url("/healthz")).send().await.unwrap().status(),
        200
    );
    assert_eq!(
        c.get(server.url("/readyz")).send().await.unwrap().status(),
        200
    );
    server.stop().await;
}

/// The memory budget counts what decoding builds: a pod with 700 env entries (and the
/// `managedFields` entry the API server writes for them, thousands of JSON objects that decoding
/// skips) is answered, while a review of 3,000 containers, which decoding would build, is
/// refused 413 with a message naming why.
#[tokio::test]
async fn reviews_are_budgeted_by_what_decoding_builds_not_by_their_managed_fields() {
    let server = TestServer::start(|_| {}).await;
    let mut review: Value =
        serde_json::from_str(&read_fixture("admission/pod-create-kubectl-apply.json")).unwrap();
    let object = &mut review["request"]["object"];
    let names: Vec<String> = (0..700).map(|i| format!("SETTING_{i}")).collect();
    let env: Vec<Value> = names
        .iter()
        .map(|n| json!({"name": n, "value": "on"}))
        .collect();
    object["spec"]["containers"][0]["env"] = Value::Array(env);
    let fields: serde_json::Map<String, Value> = names
        .iter()
        .map(|n| {
            let key = format!("k:{{\"name\":\"{n}\"}}");
            (key, json!({".": {}, "f:name": {}, "f:value": {}}))
        })
        .collect();
    let app = object["spec"]["containers"][0]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let entry = json!({
        "manager": "kube-controller-manager",
        "operation": "Update",
        "apiVersion": "v1",
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:spec": {"f:containers": {
            format!("k:{{\"name\":\"{app}\"}}"): {".": {}, "f:env": Value::Object(fields)}
        }}}
    });
    object["metadata"]["managedFields"]
        .as_array_mut()
        .unwrap()
        .push(entry);
    let body = review.to_string();
    // Over the quick estimate's limit (every `{` as a container: 32 MiB of decoding budget).
    assert!(body.matches('{').count() * 12 * 1024 > 32 * 1024 * 1024);
    let (status, answer) = server.post("/mutate", body.clone()).await;
    assert_eq!(status, 200, "{answer}");
    let patch = decoded_patch(&answer).expect("a patch");
    let mut object = review["request"]["object"].clone();
    json_patch::patch(&mut object, &patch).unwrap();
    assert!(
        object["spec"]["containers"][0]["env"]
            .as_array()
            .unwrap()
            .len()
            > 700
    );

    let containers: Vec<Value> = (0..3000)
        .map(|i| json!({"name": format!("c{i}"), "image": "x"}))
        .collect();
    review["request"]["object"]["spec"]["containers"] = Value::Array(containers);
    let (status, answer) = server.post("/mutate", review.to_string()).await;
    assert_eq!(status, 413, "{answer}");
    let error = answer["error"].as_str().unwrap();
    assert!(
        error.contains("JSON objects") && error.contains("budget"),
        "{error}"
    );
    server.stop().await;
}

#[tokio::test]
async fn other_kinds_and_operations_are_allowed_without_a_patch() {
    let server = TestServer::start(|_| {}).await;
    let mut review: Value =
        serde_json::from_str(&read_fixture("admission/pod-create-kubectl-apply.json")).unwrap();
    review["request"]["operation"] = json!("UPDATE");
    let (status, out) = server.post("/mutate", review.to_string()).await;
    assert_eq!((status, &out["response"]["allowed"]), (200, &json!(true)));
    assert!(out["response"].get("patch").is_none());

    let cm = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u1", "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
        "resource": {"group": "", "version": "v1", "resource": "configmaps"}, "operation": "CREATE",
        "userInfo": {}, "object": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}, "oldObject": null}});
    let (status, out) = server.post("/mutate", cm.to_string()).await;
    assert_eq!(status, 200);
    assert_eq!(out["response"]["uid"], "u1");
    assert!(out["response"].get("patch").is_none());

    // A custom resource called Pod, whose object reads like a pod: not podgrace's business.
    let crd = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u2", "kind": {"group": "example.com", "version": "v1", "kind": "Pod"},
        "resource": {"group": "example.com", "version": "v1", "resource": "pods"}, "operation": "CREATE",
        "userInfo": {}, "object": {"metadata": {"name": "x"},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}, "oldObject": null}});
    let (status, out) = server.post("/mutate", crd.to_string()).await;
    assert_eq!((status, &out["response"]["uid"]), (200, &json!("u2")));
    assert!(out["response"].get("patch").is_none(), "{out}");
    assert!(out["response"].get("warnings").is_none(), "{out}");
    server.stop().await;
}

/// Wrong types anywhere in what the engine reads, metadata included, get the same answer: the
/// pod admitted untouched, a warning naming no internals, and the error metric.
#[tokio::test]
async fn wrongly_typed_metadata_or_spec_is_admitted_untouched_with_a_warning() {
    let server = TestServer::start(|_| {}).await;
    let fixture: Value =
        serde_json::from_str(&read_fixture("admission/pod-create-kubectl-apply.json")).unwrap();
    let cases: [(&str, Value); 4] = [
        ("/metadata/annotations", json!({"a": 1})),
        ("/metadata/labels", json!(["app"])),
        ("/spec/terminationGracePeriodSeconds", json!("30")),
        ("/spec/containers/0/ports/0/containerPort", json!({"n": 80})),
    ];
    for (i, (path, value)) in cases.iter().enumerate() {
        let mut review = fixture.clone();
        *review["request"]["object"].pointer_mut(path).unwrap() = value.clone();
        let (status, out) = server.post("/mutate", review.to_string()).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(out["response"]["allowed"], true, "{path}");
        assert!(out["response"].get("patch").is_none(), "{path}: {out}");
        assert_eq!(
            out["response"]["warnings"][0],
            "podgrace: could not read the pod; nothing injected"
        );
        let metrics = server.state.metrics.render();
        let expected = format!(r#"outcome="error"}} {}"#, i + 1);
        assert!(metrics.contains(&expected), "{path}: {metrics}");
    }
    server.stop().await;
}

/// Whatever the metadata holds, the patch adds into it: members podgrace does not own
/// (`managedFields`, an unknown member) are never replaced, even when the metadata has no
/// member the engine reads.
#[tokio::test]
async fn the_patch_adds_into_any_metadata_and_never_replaces_it() {
    let server = TestServer::start(|_| {}).await;
    let fixture: Value =
        serde_json::from_str(&read_fixture("admission/pod-create-kubectl-apply.json")).unwrap();
    let managed =
        json!([{"manager": "kubectl", "operation": "Update", "fieldsV1": {"f:spec": {}}}]);
    for metadata in [
        json!({"managedFields": managed}),
        json!({"managedFields": managed, "futureMember": {"x": 1}}),
        json!({}),
        json!({"annotations": null, "managedFields": managed}),
    ] {
        let mut review = fixture.clone();
        review["request"]["object"]["metadata"] = metadata.clone();
        let (status, out) = server.post("/mutate", review.to_string()).await;
        assert_eq!(status, 200);
        let patch = decoded_patch(&out).unwrap_or_else(|| panic!("no patch for {metadata}: {out}"));
        for op in &patch.0 {
            assert_ne!(op.path().to_string(), "/metadata", "{metadata}: {op:?}");
        }
        let mut object = review["request"]["object"].clone();
        json_patch::patch(&mut object, &patch.0).unwrap();
        for (key, value) in metadata.as_object().unwrap() {
            if key != "annotations" {
                assert_eq!(&object["metadata"][key], value, "{key} kept");
            }
        }
        assert!(object["metadata"]["annotations"]["podgrace.io/injected"].is_string());
    }
    // No metadata at all: added whole.
    let mut review = fixture.clone();
    review["request"]["object"]
        .as_object_mut()
        .unwrap()
        .remove("metadata");
    let (_, out) = server.post("/mutate", review.to_string()).await;
    let mut object = review["request"]["object"].clone();
    json_patch::patch(&mut object, &decoded_patch(&out).unwrap().0).unwrap();
    assert!(object["metadata"]["annotations"]["podgrace.io/injected"].is_string());
    server.stop().await;
}

#[tokio::test]
async fn a_pod_podgrace_cannot_read_is_admitted_untouched_with_a_warning() {
    let server = TestServer::start(|_| {}).await;
    let mut review: Value =
        serde_json::from_str(&read_fixture("admission/pod-create-kubectl-apply.json")).unwrap();
    review["request"]["object"]["spec"]["containers"] = json!("not a list");
    let (status, out) = server.post("/mutate", review.to_string()).await;
    assert_eq!(status, 200);
    assert_eq!(out["response"]["allowed"], true);
    assert!(out["response"].get("patch").is_none());
    assert_eq!(
        out["response"]["warnings"][0],
        "podgrace: could not read the pod; nothing injected"
    );
    let metrics = server.state.metrics.render();
    assert!(metrics.contains(r#"outcome="error"} 1"#), "{metrics}");
    server.stop().await;
}

#[tokio::test]
async fn namespace_policies_from_the_store_shape_the_patch() {
    let server = TestServer::start(|_| {}).await;
    server
        .cache
        .apply("probe", Ok(layer("preStop: {sleepSeconds: 25}")));
    let (_, review) = server
        .post(
            "/mutate",
            read_fixture("admission/pod-create-kubectl-apply.json"),
        )
        .await;
    let mut object: Value =
        serde_json::from_str::<Value>(&read_fixture("admission/pod-create-kubectl-apply.json"))
            .unwrap()["request"]["object"]
            .clone();
    json_patch::patch(&mut object, &decoded_patch(&review).unwrap().0).unwrap();
    assert_eq!(
        object["spec"]["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"],
        25
    );
    assert_eq!(object["spec"]["terminationGracePeriodSeconds"], 60);
    server.stop().await;
}

#[tokio::test]
async fn slow_headers_are_cut_off() {
    let server = TestServer::start(|o| o.header_timeout = Duration::from_millis(500)).await;
    let mut stream = tls_connect(server.addr, &[&server.pki.ca_cert_pem]).await;
    stream
        .write_all(b"POST /mutate HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(3), stream.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the server closed the connection");
    server.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_for_a_slot_while_every_connection_is_reading_a_request()
{
    let server = TestServer::start(|o| o.max_connections = 1).await;
    // A connection in the middle of its request head is not taken for a new one (an idle one
    // would be, see tests/server_stress.rs).
    let mut held = tls_connect(server.addr, &[&server.pki.ca_cert_pem]).await;
    held.write_all(b"POST /mutate HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    held.flush().await.unwrap();
    let c = fresh_connection_client(&[&server.pki.ca_cert_pem]);
    let waiting = tokio::time::timeout(
        Duration::from_millis(500),
        c.get(server.url("/healthz")).send(),
    )
    .await;
    assert!(
        waiting.is_err(),
        "a second connection is not served while the first is reading its request"
    );
    drop(held);
    let served =
        tokio::time::timeout(Duration::from_secs(5), c.get(server.url("/healthz")).send()).await;
    assert_eq!(served.unwrap().unwrap().status(), 200);
    server.stop().await;
}

#[tokio::test]
async fn a_body_that_never_finishes_gets_408() {
    let server = TestServer::start(|o| o.request_timeout = Duration::from_millis(500)).await;
    let mut stream = tls_connect(server.addr, &[&server.pki.ca_cert_pem]).await;
    stream
        .write_all(b"POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"apiVersion\":")
        .await
        .unwrap();
    let mut buf = vec![0; 256];
    let n = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    server.stop().await;
}

/// Closed connections linger only so many at once (`max_lingering`): beyond them a refused
/// connection is closed at once, so its client's writes soon fail, while the lingering ones'
/// writes are still read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_lingering_bound_a_refused_connection_is_closed_at_once() {
    use common::binary::{exchange, post_head};
    let server = TestServer::start(|o| o.max_lingering = 2).await;
    let mut writers = tokio::task::JoinSet::new();
    for i in 0..3 {
        let mut conn = tls_connect(server.addr, &[&server.pki.ca_cert_pem]).await;
        let answer = exchange(&mut conn, &post_head(100 * 1024 * 1024), b"{")
            .await
            .unwrap();
        assert_eq!(answer.status, 413, "{}", answer.head);
        writers.spawn(async move {
            // Straight onto TCP, as a client still sending its body: how long its writes last.
            let tcp = conn.get_mut().0;
            let start = std::time::Instant::now();
            while start.elapsed() < Duration::from_secs(1) {
                if tcp.write_all(&[b' '; 1024]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (i, start.elapsed())
        });
    }
    let mut lasted = tokio::time::timeout(Duration::from_secs(5), writers.join_all())
        .await
        .expect("the writers did not finish");
    lasted.sort();
    for (i, took) in lasted {
        if i < 2 {
            assert!(
                took >= Duration::from_secs(1),
                "lingering {i}: writes failed after {took:?}"
            );
        } else {
            assert!(
                took < Duration::from_millis(500),
                "the third's writes lasted {took:?}"
            );
        }
    }
}
