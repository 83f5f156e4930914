//! The engine's behaviour, one test per sentence of the spec (BRIEF.md §2, issue #2), run on raw
//! JSON pods the way the API server sends them. One test binary, a module per concern; the pod
//! most tests start from and the way they run the engine are here.

#[path = "../common/mod.rs"]
mod common;

mod drain;
mod grace;
mod helper;
mod nacos;
mod patch;
mod pre_stop;
mod probes;
mod sidecars;
mod skipping;

use common::{apply, mutate_raw};
use podgrace::engine::ClusterInfo;
use podgrace::policy::EffectivePolicy;
use serde_json::Value;

const APP: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: app, namespace: shop, labels: {app: shop}}
spec:
  containers:
  - name: app
    image: registry.example/shop:1
    ports: [{containerPort: 8080}]
"#;

fn run(raw: &Value, policy: &EffectivePolicy) -> (podgrace::engine::Mutation, Value) {
    let m = mutate_raw(raw, policy, &ClusterInfo::default());
    let out = apply(raw, &m);
    (m, out)
}
