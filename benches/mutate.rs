//! `mutate`: the engine on a typical 3-container pod (application, log shipper, Istio proxy) with a
//! cluster policy and rules. Also measured in the same run, as baselines: parsing that pod's JSON
//! into a whole k8s-openapi Pod (what a webhook decoding the full type pays before deciding
//! anything), into the engine's `PodView`, and the full pure path (view + engine + patch
//! serialization).

use criterion::{Criterion, criterion_group, criterion_main};
use k8s_openapi::api::core::v1::Pod;
use podgrace::engine::{self, ClusterInfo, PodView};
use podgrace::policy::{EffectivePolicy, Origin, load_layer};
use std::hint::black_box;

// As in the podgrace binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const POD: &str = include_str!("../tests/fixtures/manifests/multi-container.yaml");
const CLUSTER: &str = include_str!("../tests/fixtures/policies/cluster.yaml");

fn bench(c: &mut Criterion) {
    let value: serde_json::Value = podgrace::protocols::yaml::from_str(POD).unwrap();
    let json = serde_json::to_vec(&value).unwrap();
    let text = String::from_utf8(json.clone()).unwrap();
    let pod = PodView::from_json(&text).unwrap();
    let cluster = load_layer(CLUSTER, Origin::hashed("cluster", CLUSTER)).unwrap();
    let policy = EffectivePolicy::new(Some(&cluster), None);
    let cluster_info = ClusterInfo::default();
    assert!(
        !engine::mutation_for(&pod, &policy, &cluster_info)
            .unwrap()
            .patch
            .0
            .is_empty()
    );

    let mut g = c.benchmark_group("mutate");
    g.bench_function("baseline_parse_pod", |b| {
        b.iter(|| serde_json::from_slice::<Pod>(black_box(&json)).unwrap())
    });
    g.bench_function("parse_pod_view", |b| {
        b.iter(|| PodView::from_json(black_box(&text)).unwrap())
    });
    g.bench_function("engine_3_containers", |b| {
        b.iter(|| engine::mutation_for(black_box(&pod), &policy, &cluster_info).unwrap())
    });
    g.bench_function("parse_engine_serialize", |b| {
        b.iter(|| {
            let pod = PodView::from_json(black_box(&text)).unwrap();
            let m = engine::mutation_for(&pod, &policy, &cluster_info).unwrap();
            serde_json::to_vec(&m.patch).unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
