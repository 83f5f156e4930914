//! The HTTPS admission server. The whole HTTP contract is [`router`]:
//!
//! | method | path | answer |
//! |---|---|---|
//! | POST | `/mutate` | AdmissionReview for pods: base64 JSON patch, warnings, audit annotations; always allowed |
//! | POST | `/validate` | AdmissionReview for policy ConfigMaps: denied with the validation message when invalid |
//! | GET | `/healthz` | 200 while the process serves |
//! | GET | `/readyz` | 200 once policies are loaded, 503 from the moment shutdown starts |
//! | GET | `/metrics` | Prometheus text |
//!
//! Other paths answer 404, other methods 405. Bodies over the limit answer 413 (a declared
//! length at once, before the body is read), bodies the memory budget cannot take 429 with
//! `Retry-After` ([`body_budget`]), malformed reviews 400 with a JSON error. Connections, TLS and
//! shutdown are in [`listener`] and [`connections`].

pub(crate) mod activity;
pub mod body_budget;
pub mod certificates;
pub(crate) mod connections;
pub(crate) mod large_reviews;
pub mod linger;
pub mod listener;
pub(crate) mod memory;
pub mod metrics_listener;
pub(crate) mod pod_review;
pub(crate) mod policy_review;
pub mod review;
pub(crate) mod status;
pub mod tls;
pub mod webhook;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};

use self::body_budget::{BodyBudget, WithBodyBudget};
use crate::engine::ClusterInfo;
use crate::observability::metrics::Metrics;
use crate::protocols::kube_version::KubeVersion;
use crate::store::PolicyStore;

/// Limits and timings of the server.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// What large reviews may take at once: half for their bodies, half for decoding them
    /// ([`body_budget`]).
    pub body_budget_bytes: usize,
    /// Time allowed for a whole request (body read and answer).
    pub request_timeout: Duration,
    /// Time allowed for a client to send the request headers (slowloris), from their first byte.
    pub header_timeout: Duration,
    /// Time allowed for the TLS handshake.
    pub handshake_timeout: Duration,
    /// A kept-alive connection with no request for this long is closed.
    pub idle_timeout: Duration,
    /// Open connections at most; when all are taken, the one idle for longest is closed for a
    /// new client ([`connections`]).
    pub max_connections: usize,
    /// After SIGTERM: how long to keep accepting while endpoints are updated.
    pub drain: Duration,
    /// After the drain: how long in-flight requests may take before exit.
    pub shutdown_timeout: Duration,
    /// Closed connections lingering at once at most ([`linger`]).
    pub max_lingering: usize,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_body_bytes: 6 * 1024 * 1024,
            body_budget_bytes: 64 * 1024 * 1024,
            request_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(30),
            max_connections: 1024,
            drain: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(20),
            max_lingering: linger::LINGERING_AT_ONCE,
        }
    }
}

/// Which ConfigMaps hold namespace policies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyConfigMap {
    /// ConfigMap name.
    pub name: String,
    /// Key of the policy inside it.
    pub key: String,
}

impl Default for PolicyConfigMap {
    fn default() -> Self {
        PolicyConfigMap {
            name: "podgrace-policy".to_owned(),
            key: crate::policy::POLICY_KEY.to_owned(),
        }
    }
}

/// State shared by the handlers.
pub struct AppState {
    /// Where policies come from.
    pub store: Arc<dyn PolicyStore>,
    /// The policy ConfigMaps `/validate` checks.
    pub policy_configmap: PolicyConfigMap,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    body_budget: BodyBudget,
    cluster_info: ArcSwap<ClusterInfo>,
    draining: AtomicBool,
}

impl AppState {
    /// New state; `kube_version` is the API server version if known; request bodies within the
    /// limits of `opts`.
    pub fn new(
        store: Arc<dyn PolicyStore>,
        metrics: Arc<Metrics>,
        kube_version: Option<KubeVersion>,
        policy_configmap: PolicyConfigMap,
        opts: &ServerOptions,
    ) -> Arc<Self> {
        Arc::new(AppState {
            store,
            policy_configmap,
            body_budget: BodyBudget::new(
                opts.max_body_bytes,
                opts.body_budget_bytes,
                Some(metrics.clone()),
            )
            .counting_built_objects(review::built_objects),
            metrics,
            cluster_info: ArcSwap::from_pointee(ClusterInfo { kube_version }),
            draining: AtomicBool::new(false),
        })
    }

    /// What the engine knows about the cluster.
    pub fn cluster_info(&self) -> ClusterInfo {
        **self.cluster_info.load()
    }

    /// Records a newly discovered API server version.
    pub fn set_kube_version(&self, version: Option<KubeVersion>) {
        self.cluster_info.store(Arc::new(ClusterInfo {
            kube_version: version,
        }));
    }

    /// Marks the server as shutting down: readiness fails from now on.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Whether shutdown has started.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }
}

impl WithBodyBudget for Arc<AppState> {
    fn body_budget(&self) -> &BodyBudget {
        &self.body_budget
    }
}

/// The HTTP routes with their limits.
pub fn router(state: Arc<AppState>, opts: &ServerOptions) -> Router {
    let routes = Router::new()
        .route("/mutate", post(pod_review::review_pods))
        .route("/validate", post(policy_review::review_policies))
        .route("/healthz", get(status::healthz))
        .route("/readyz", get(status::readyz))
        .route("/metrics", get(status::metrics))
        .with_state(state);
    with_limits(routes, opts)
}

/// The request limits every route gets: body size (413 beyond, for bodies read without the
/// budget's extractor) and total time (408 beyond).
pub fn with_limits(routes: Router, opts: &ServerOptions) -> Router {
    routes
        .layer(DefaultBodyLimit::max(opts.max_body_bytes))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            opts.request_timeout,
        ))
}
