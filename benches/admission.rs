//! `admission`: the CPU cost of answering one captured AdmissionReview, without sockets: what the
//! floor server does (parse into kube's `AdmissionReview<DynamicObject>`, answer "allowed") next
//! to what podgrace does (parse, engine, base64 patch, encode). The load benchmark
//! (bench/load.sh) measures the same two over HTTPS. `parts`: podgrace's answer piece by piece
//! (the decoding next to the floor's, the engine, the patch to JSON, the review to JSON with
//! the base64 patch, the log line formatted and handed to the log writer, the metric updates).
//! `namespaces`: the policy lookup and the engine with 1 and with 1,000 namespace policies loaded.

use criterion::{Criterion, criterion_group, criterion_main};
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use podgrace::engine::record::Injection;
use podgrace::engine::{self, ClusterInfo, PodView};
use podgrace::observability::logging;
use podgrace::observability::logging::LogFormat;
use podgrace::observability::metrics::{Endpoint, Metrics, Outcome};
use podgrace::policy::{EffectivePolicy, Origin, load_layer};
use podgrace::server::review::{self, Answer};
use podgrace::store::PolicyStore;
use podgrace::store::cache::PolicyCache;
use std::hint::black_box;
use tracing_subscriber::Registry;
use tracing_subscriber::layer::SubscriberExt as _;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BODY: &[u8] = include_bytes!("../tests/fixtures/admission/pod-create-kubectl-apply.json");
const CLUSTER: &str = include_str!("../tests/fixtures/policies/cluster.yaml");

fn floor(body: &[u8]) -> Vec<u8> {
    let review: AdmissionReview<DynamicObject> = serde_json::from_slice(body).unwrap();
    let req: AdmissionRequest<DynamicObject> = review.try_into().unwrap();
    serde_json::to_vec(&AdmissionResponse::from(&req).into_review()).unwrap()
}

fn podgrace(body: &[u8], policy: &EffectivePolicy) -> Vec<u8> {
    let req = review::decode_as::<PodView>(body).unwrap();
    let pod = req.object.as_ref().unwrap();
    let m = engine::mutation_for(pod, policy, &ClusterInfo::default()).unwrap();
    let mut answer = Answer::allow(&req).with_patch(m.patch);
    answer.warnings = m.warnings;
    answer.to_json()
}

/// The pod of the captured review.
fn captured_pod() -> PodView {
    PodView::from_json(review::decode(BODY).unwrap().object.unwrap().get()).unwrap()
}

/// A cache with `n` namespace policies (`ns-0000` …), plus the namespace of the fixture.
fn cache_with(n: usize) -> PolicyCache {
    let cache = PolicyCache::new(std::sync::Arc::new(Metrics::new()));
    let mut entries = Vec::new();
    for i in 0..n {
        let text = format!(
            "preStop: {{sleepSeconds: {}}}\nshutdownSeconds: 20\n",
            i % 60
        );
        entries.push((
            format!("ns-{i:04}"),
            load_layer(&text, Origin::hashed(format!("ns-{i:04}"), &text)),
        ));
    }
    let probe = "preStop: {sleepSeconds: 25}";
    entries.push((
        "probe".to_owned(),
        load_layer(probe, Origin::hashed("probe", probe)),
    ));
    cache.replace_all(entries);
    cache
}

fn namespaces(c: &mut Criterion) {
    let pod = captured_pod();
    let mut g = c.benchmark_group("namespaces");
    for n in [1, 1000] {
        let cache = cache_with(n);
        g.bench_function(format!("lookup_and_engine_{n}"), |b| {
            b.iter(|| {
                let policy = cache.policy_for(black_box("probe"));
                engine::mutation_for(&pod, &policy, &ClusterInfo::default()).unwrap()
            })
        });
    }
    g.finish();
}

fn bench(c: &mut Criterion) {
    let cluster = load_layer(CLUSTER, Origin::hashed("cluster", CLUSTER)).unwrap();
    let policy = EffectivePolicy::new(Some(&cluster), None);
    let mut g = c.benchmark_group("admission");
    g.bench_function("floor_parse_and_allow", |b| {
        b.iter(|| floor(black_box(BODY)))
    });
    g.bench_function("podgrace_answer", |b| {
        b.iter(|| podgrace(black_box(BODY), &policy))
    });
    g.finish();

    // The same work, piece by piece, to see where podgrace's extra time goes.
    let mut g = c.benchmark_group("parts");
    g.bench_function("decode_floor_dynamic", |b| {
        b.iter(|| {
            serde_json::from_slice::<AdmissionReview<DynamicObject>>(black_box(BODY)).unwrap()
        })
    });
    g.bench_function("decode_full_pod", |b| {
        b.iter(|| {
            serde_json::from_slice::<AdmissionReview<k8s_openapi::api::core::v1::Pod>>(black_box(
                BODY,
            ))
            .unwrap()
        })
    });
    g.bench_function("decode_podgrace", |b| {
        b.iter(|| review::decode_as::<PodView>(black_box(BODY)).unwrap())
    });
    // The fallback for a review whose object is not a pod podgrace reads: the envelope with the
    // object raw, then the object.
    g.bench_function("decode_podgrace_two_passes", |b| {
        b.iter(|| {
            let req = review::decode(black_box(BODY)).unwrap();
            PodView::from_json(req.object.unwrap().get()).unwrap()
        })
    });
    let req = review::decode(BODY).unwrap();
    let pod = &captured_pod();
    g.bench_function("engine", |b| {
        b.iter(|| engine::mutation_for(black_box(pod), &policy, &ClusterInfo::default()).unwrap())
    });
    let m = engine::mutation_for(pod, &policy, &ClusterInfo::default()).unwrap();
    // What kube's `with_patch` does: the patch to JSON bytes.
    g.bench_function("patch_json", |b| {
        b.iter(|| serde_json::to_vec(black_box(&m.patch)).unwrap())
    });
    let mut answer = Answer::allow(&req).with_patch(m.patch);
    answer.warnings = m.warnings;
    g.bench_function("encode", |b| b.iter(|| black_box(&answer).to_json()));
    // The admission span and its log line as `serve` formats them (JSON), to a sink.
    let subscriber = Registry::default().with(logging::lines(LogFormat::Json, std::io::sink));
    tracing::subscriber::with_default(subscriber, || {
        g.bench_function("log_line", |b| b.iter(|| admission_line(&req.uid)));
    });
    // The same line through the writer `serve` logs with, its output thrown away: what the
    // caller pays to hand the line over (the writer thread's own work is not in the figure).
    let (writer, guard) = logging::non_blocking(std::io::sink());
    let subscriber = Registry::default().with(logging::lines(LogFormat::Json, writer));
    tracing::subscriber::with_default(subscriber, || {
        g.bench_function("log_line_written", |b| b.iter(|| admission_line(&req.uid)));
    });
    drop(guard);
    // One admission's metric updates as `/mutate` makes them: the outcome, the latency and
    // three kinds of change.
    let metrics = Metrics::new();
    g.bench_function("metrics", |b| {
        b.iter(|| {
            metrics.request(black_box(Endpoint::Mutate), black_box(Outcome::Patched));
            metrics.observe_latency(black_box(Endpoint::Mutate), black_box(0.000_5));
            for kind in [Injection::PreStop, Injection::Env, Injection::Grace] {
                metrics.injection(black_box("probe"), black_box(kind));
            }
        })
    });
    g.finish();
}

/// The admission span and its line, as `/mutate` logs them.
fn admission_line(uid: &str) {
    let span = tracing::info_span!("admission", uid);
    span.in_scope(|| {
        tracing::info!(
            namespace = "probe",
            pod = "probe-pod",
            dry_run = false,
            decision = "patched",
            reason = "",
            latency_us = 57u64,
            "admission"
        )
    })
}

criterion_group!(benches, bench, namespaces);
criterion_main!(benches);
