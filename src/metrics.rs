//! Prometheus metrics, shared by the server, the TLS reloader and the policy stores. Rendered in
//! the OpenMetrics text format on `GET /metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::engine::record::Injection;

/// The outcomes `/mutate` counts.
pub const MUTATE_OUTCOMES: [&str; 6] = [
    "patched",
    "unchanged",
    "skipped",
    "ignored",
    "error",
    "bad_request",
];
/// The outcomes `/validate` counts.
pub const VALIDATE_OUTCOMES: [&str; 4] = ["allowed", "denied", "ignored", "bad_request"];

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

/// One label: why a request was refused before its body was read.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// `body_too_large`, `body_too_complex`, `body_budget`, `body_unreadable`.
    pub reason: &'static str,
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
    /// Requests answered without reading their body, by reason.
    pub requests_refused: Family<ReasonLabel, Counter>,
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
    /// The series every admission updates, resolved once.
    hot: HotSeries,
}

/// The series the server updates on every admission, created with the registry: updating one
/// is then an atomic add, where going through its family takes the family's lock and hashes the
/// labels (several times per admission, on a lock both workers share; it showed in profiles
/// under load). Created up front, each is also exported at 0 before its first event, so that
/// `rate()` and alerts on it work from the start.
#[derive(Debug)]
struct HotSeries {
    requests: Vec<(RequestLabels, Counter)>,
    latency: Vec<(&'static str, Histogram)>,
    injections: Vec<(Injection, Counter)>,
}

impl HotSeries {
    fn new(
        requests: &Family<RequestLabels, Counter>,
        latency: &Family<EndpointLabel, Histogram>,
        injections: &Family<KindLabel, Counter>,
    ) -> Self {
        let endpoints = [
            ("mutate", &MUTATE_OUTCOMES[..]),
            ("validate", &VALIDATE_OUTCOMES[..]),
        ];
        HotSeries {
            requests: endpoints
                .iter()
                .flat_map(|(endpoint, outcomes)| outcomes.iter().map(move |o| (*endpoint, *o)))
                .map(|(endpoint, outcome)| {
                    let labels = RequestLabels { endpoint, outcome };
                    let counter = requests.get_or_create(&labels).clone();
                    (labels, counter)
                })
                .collect(),
            latency: endpoints
                .iter()
                .map(|(endpoint, _)| {
                    let label = EndpointLabel { endpoint };
                    (*endpoint, latency.get_or_create(&label).clone())
                })
                .collect(),
            injections: Injection::ALL
                .iter()
                .map(|&kind| {
                    let label = KindLabel {
                        kind: kind.as_str(),
                    };
                    (kind, injections.get_or_create(&label).clone())
                })
                .collect(),
        }
    }
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
        let requests_refused = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "requests_refused",
            "Requests refused for their body (413 too large or too complex, 429 over the memory budget, 400 unreadable)",
            requests_refused.clone(),
        );
        for reason in [
            "body_too_large",
            "body_too_complex",
            "body_budget",
            "body_unreadable",
        ] {
            let _ = requests_refused.get_or_create(&ReasonLabel { reason });
        }
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
        let hot = HotSeries::new(&requests, &latency, &injections);
        Metrics {
            registry,
            hot,
            requests,
            latency,
            requests_refused,
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
        let labels = RequestLabels { endpoint, outcome };
        match self.hot.requests.iter().find(|(l, _)| *l == labels) {
            Some((_, counter)) => counter.inc(),
            None => self.requests.get_or_create(&labels).inc(),
        };
    }

    /// Records how long an admission on `endpoint` took.
    pub fn observe_latency(&self, endpoint: &'static str, seconds: f64) {
        match self.hot.latency.iter().find(|(e, _)| *e == endpoint) {
            Some((_, histogram)) => histogram.observe(seconds),
            None => self
                .latency
                .get_or_create(&EndpointLabel { endpoint })
                .observe(seconds),
        }
    }

    /// Counts a change made to a pod.
    pub fn injection(&self, kind: Injection) {
        // Every kind is in the table; the family is the fallback should one be added without it.
        match self.hot.injections.iter().find(|(k, _)| *k == kind) {
            Some((_, counter)) => counter.inc(),
            None => self
                .injections
                .get_or_create(&KindLabel {
                    kind: kind.as_str(),
                })
                .inc(),
        };
    }

    /// Counts a request refused before its body was read.
    pub fn request_refused(&self, reason: &'static str) {
        self.requests_refused
            .get_or_create(&ReasonLabel { reason })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_series_are_exported_at_zero_before_any_event() {
        let text = Metrics::new().render();
        for line in [
            r#"podgrace_admission_requests_total{endpoint="mutate",outcome="patched"} 0"#,
            r#"podgrace_admission_requests_total{endpoint="validate",outcome="denied"} 0"#,
            r#"podgrace_admission_duration_seconds_count{endpoint="mutate"} 0"#,
            r#"podgrace_injections_total{kind="grace"} 0"#,
            r#"podgrace_injections_total{kind="startup"} 0"#,
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }

    #[test]
    fn events_land_in_their_series_and_unknown_labels_still_count() {
        let m = Metrics::new();
        m.request("mutate", "patched");
        m.request("mutate", "patched");
        m.request("mutate", "unlisted");
        m.observe_latency("mutate", 0.001);
        m.observe_latency("other", 0.001);
        m.injection(Injection::Readiness);
        let text = m.render();
        for line in [
            r#"podgrace_admission_requests_total{endpoint="mutate",outcome="patched"} 2"#,
            r#"podgrace_admission_requests_total{endpoint="mutate",outcome="unchanged"} 0"#,
            r#"podgrace_admission_requests_total{endpoint="mutate",outcome="unlisted"} 1"#,
            r#"podgrace_admission_duration_seconds_count{endpoint="mutate"} 1"#,
            r#"podgrace_admission_duration_seconds_count{endpoint="other"} 1"#,
            r#"podgrace_injections_total{kind="readiness"} 1"#,
            r#"podgrace_injections_total{kind="prestop"} 0"#,
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }
}
