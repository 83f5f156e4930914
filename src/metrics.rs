//! Prometheus metrics, shared by the server, the TLS reloader and the policy stores. Rendered in
//! the OpenMetrics text format on `GET /metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Endpoint and outcome of an admission request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `mutate` or `validate`.
    pub endpoint: &'static str,
    /// `patched`, `unchanged`, `skipped`, `ignored`, `denied`, `error`, `bad_request`.
    pub outcome: &'static str,
}

/// One label: the endpoint.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabel {
    /// `mutate` or `validate`.
    pub endpoint: &'static str,
}

/// One label: the kind of injection.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// `prestop`, `env`, `readiness`, `preset`, `helper`, `grace`.
    pub kind: &'static str,
}

/// One label: a namespace (or `cluster` for the cluster default policy).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NamespaceLabel {
    /// Namespace name.
    pub namespace: String,
}

/// One label: success or failure.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// `success` or `failure`.
    pub result: &'static str,
}

/// All of podgrace's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Admission requests by endpoint and outcome.
    pub requests: Family<RequestLabels, Counter>,
    /// Admission handling latency (body read to response), by endpoint.
    pub latency: Family<EndpointLabel, Histogram>,
    /// Changes made, by kind.
    pub injections: Family<KindLabel, Counter>,
    /// Policies refused (parse or validation errors), by namespace.
    pub policy_errors: Family<NamespaceLabel, Counter>,
    /// Namespaces with a policy in the cache.
    pub namespace_policies: Gauge,
    /// Serving certificate reloads.
    pub cert_reloads: Family<ResultLabel, Counter>,
    /// `notAfter` of the serving certificate, Unix seconds.
    pub cert_expiry: Gauge,
    /// Log lines dropped because the log output did not keep up (the log writer counts them).
    pub log_lines_dropped: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("podgrace");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "admission_requests",
            "Admission requests by endpoint and outcome",
            requests.clone(),
        );
        let latency = Family::<EndpointLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
        });
        registry.register(
            "admission_duration_seconds",
            "Time to answer an admission request (body read to response)",
            latency.clone(),
        );
        let injections = Family::<KindLabel, Counter>::default();
        registry.register(
            "injections",
            "Changes made to pods, by kind",
            injections.clone(),
        );
        let policy_errors = Family::<NamespaceLabel, Counter>::default();
        registry.register(
            "policy_errors",
            "Policies refused because they do not parse or validate (the last good one stays)",
            policy_errors.clone(),
        );
        let namespace_policies = Gauge::default();
        registry.register(
            "namespace_policies",
            "Namespaces with a policy loaded",
            namespace_policies.clone(),
        );
        let cert_reloads = Family::<ResultLabel, Counter>::default();
        registry.register(
            "certificate_reloads",
            "Serving certificate reloads",
            cert_reloads.clone(),
        );
        let cert_expiry = Gauge::default();
        registry.register(
            "certificate_expiry_timestamp_seconds",
            "notAfter of the serving certificate (Unix time)",
            cert_expiry.clone(),
        );
        let log_lines_dropped = Counter::default();
        registry.register(
            "log_lines_dropped",
            "Log lines dropped because the log output did not keep up",
            log_lines_dropped.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            injections,
            policy_errors,
            namespace_policies,
            cert_reloads,
            cert_expiry,
            log_lines_dropped,
        }
    }

    /// Counts an admission outcome.
    pub fn request(&self, endpoint: &'static str, outcome: &'static str) {
        self.requests
            .get_or_create(&RequestLabels { endpoint, outcome })
            .inc();
    }

    /// Counts a refused policy.
    pub fn policy_error(&self, namespace: &str) {
        self.policy_errors
            .get_or_create(&NamespaceLabel {
                namespace: namespace.to_owned(),
            })
            .inc();
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Encoding into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
