//! `admission`: the CPU cost of answering one captured AdmissionReview, without sockets: what the
//! floor server does (parse into kube's `AdmissionReview<DynamicObject>`, answer "allowed") next
//! to what podgrace does (parse, engine, base64 patch, encode). The load benchmark
//! (bench/load.sh) measures the same two over HTTPS.

use criterion::{Criterion, criterion_group, criterion_main};
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use podgrace::engine::{self, Context};
use podgrace::policy::{EffectivePolicy, Origin, load_layer};
use podgrace::server::review::{self, Decoded};
use std::hint::black_box;

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
    let Ok(Decoded::Typed(req)) = review::decode_pod(body) else {
        panic!()
    };
    let m = engine::mutate(req.object.as_ref().unwrap(), policy, &Context::default()).unwrap();
    let mut resp = AdmissionResponse::from(&*req).with_patch(m.patch).unwrap();
    resp.warnings = Some(m.warnings);
    review::encode(&resp)
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
}

criterion_group!(benches, bench);
criterion_main!(benches);
