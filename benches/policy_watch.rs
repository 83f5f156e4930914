//! `policy_watch`: how long after a ConfigMap event the next admission uses the new policy.
//! Against the test API server (tests/common/kube_api.rs, the documented list/watch protocol),
//! a namespace policy is changed repeatedly; for each change two times are taken from the moment
//! the server emits the event:
//! - baseline: when a bare kube-runtime watcher on the same server receives the event
//!   (the transport: HTTP chunk, JSON decode);
//! - podgrace: when `PolicyStore::policy_for` returns the new policy (parse, validation, merge,
//!   publication of the new snapshot).
//!
//! `cargo bench --bench policy_watch` (200 changes); under `cargo test` it runs 5 as a smoke test.

#[path = "../tests/common/kube_api.rs"]
mod kube_api;
// The test API server's Secrets and webhook configurations (kube_api.rs serves them too).
#[path = "../tests/common/kube_objects.rs"]
mod kube_objects;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::runtime::watcher::{self, Event};
use podgrace::cluster::policy_watch::watch_policies;
use podgrace::observability::metrics::Metrics;
use podgrace::store::PolicyStore;
use podgrace::store::cache::PolicyCache;

const NAME: &str = "podgrace-policy";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let changes = if full { 200 } else { 5 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let api = kube_api::FakeApi::start(NAME).await;
        let cache = Arc::new(PolicyCache::new(Arc::new(Metrics::new())));
        let _store = watch_policies(
            api.client(),
            cache.clone(),
            NAME.into(),
            "policy.yaml".into(),
        );

        // The baseline consumer: a bare watcher, reporting the resourceVersion of each event.
        let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
        let bare: Api<ConfigMap> = Api::all(api.client());
        tokio::spawn(async move {
            let mut events = watcher::watcher(
                bare,
                watcher::Config::default().fields(&format!("metadata.name={NAME}")),
            )
            .boxed();
            while let Some(Ok(e)) = events.next().await {
                if let Event::Apply(cm) = e {
                    let _ = seen_tx.send((
                        cm.metadata.resource_version.unwrap_or_default(),
                        Instant::now(),
                    ));
                }
            }
        });
        while !cache.is_ready() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;

        let (mut transport, mut store) = (Vec::new(), Vec::new());
        for i in 0..changes {
            let sleep = 1 + (i % 50) as u32;
            let text = format!("preStop: {{sleepSeconds: {sleep}}}\n");
            let start = Instant::now();
            let rv = api.put("shop", NAME, &[("policy.yaml", &text)]).to_string();
            loop {
                let p = cache.policy_for("shop");
                if p.resolve(None, "app", "app:1", None)
                    .map(|r| r.policy.sleep)
                    == Ok(sleep)
                {
                    store.push(start.elapsed());
                    break;
                }
                tokio::task::yield_now().await;
            }
            loop {
                let (seen, at) = seen_rx.recv().await.unwrap();
                if seen == rv {
                    transport.push(at - start);
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for (name, mut v) in [
            ("baseline: bare watcher receives the event", transport),
            ("podgrace: admission uses the new policy", store),
        ] {
            v.sort();
            println!(
                "policy_watch/{name}: n={} p50={:?} p99={:?} max={:?}",
                v.len(),
                percentile(&v, 0.5),
                percentile(&v, 0.99),
                v[v.len() - 1]
            );
        }
    });
}
