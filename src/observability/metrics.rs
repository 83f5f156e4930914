//! Prometheus metrics, shared by the server, the TLS reloader and the policy stores. Rendered in
//! the OpenMetrics text format on `GET /metrics`.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder,
};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tracing_appender::non_blocking::ErrorCounter;

use crate::engine::record::Injection;

/// Label enums are written as their wire names ([`as_str`](Outcome::as_str)): the values
/// dashboards and alerts select on, kept apart from the Rust names.
macro_rules! label_values {
    ($($ty:ident { $($variant:ident => $wire:literal),* $(,)? })*) => {$(
        impl $ty {
            /// The label value on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $wire,)*
                }
            }
        }

        impl EncodeLabelValue for $ty {
            fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
                self.as_str().encode(encoder)
            }
        }
    )*};
}

/// The admission endpoints.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /mutate`.
    Mutate,
    /// `POST /validate`.
    Validate,
}

/// How an admission request was answered.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Outcome {
    /// `/mutate`: a patch was returned.
    Patched,
    /// `/mutate`: the pod needed no change.
    Unchanged,
    /// `/mutate`: the pod opted out, or its namespace is not opted in.
    Skipped,
    /// Not a request the endpoint acts on (another kind, operation or object).
    Ignored,
    /// `/mutate`: podgrace failed; the pod was admitted unchanged.
    Error,
    /// Not an AdmissionReview (answered 400).
    BadRequest,
    /// `/validate`: the policy is valid.
    Allowed,
    /// `/validate`: the policy was refused.
    Denied,
}

impl Outcome {
    /// The outcomes `/mutate` counts.
    pub const MUTATE: [Outcome; 6] = [
        Outcome::Patched,
        Outcome::Unchanged,
        Outcome::Skipped,
        Outcome::Ignored,
        Outcome::Error,
        Outcome::BadRequest,
    ];
    /// The outcomes `/validate` counts.
    pub const VALIDATE: [Outcome; 4] = [
        Outcome::Allowed,
        Outcome::Denied,
        Outcome::Ignored,
        Outcome::BadRequest,
    ];
}

/// Why a request was refused before its body was read.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Refusal {
    /// Over the size limit (413).
    BodyTooLarge,
    /// Too many objects to decode within the budget (413).
    BodyTooComplex,
    /// The budget for large reviews stayed taken (429).
    BodyBudget,
    /// The body could not be read (400).
    BodyUnreadable,
}

impl Refusal {
    /// Every reason.
    pub const ALL: [Refusal; 4] = [
        Refusal::BodyTooLarge,
        Refusal::BodyTooComplex,
        Refusal::BodyBudget,
        Refusal::BodyUnreadable,
    ];
}

/// How a certificate reload went.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum ReloadResult {
    /// The new certificate is served.
    Success,
    /// The new files were refused; the current certificate stays.
    Failure,
}

/// What the self-managed certificates were doing when the API server failed them.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum CertSyncOperation {
    /// Reading the certificate Secret.
    ReadSecret,
    /// Creating or updating the certificate Secret.
    WriteSecret,
    /// Patching a webhook configuration's caBundle.
    PatchCaBundle,
    /// Watching the webhook configurations.
    WatchWebhooks,
}

impl CertSyncOperation {
    /// Every operation.
    pub const ALL: [CertSyncOperation; 4] = [
        CertSyncOperation::ReadSecret,
        CertSyncOperation::WriteSecret,
        CertSyncOperation::PatchCaBundle,
        CertSyncOperation::WatchWebhooks,
    ];
}

label_values! {
    CertSyncOperation {
        ReadSecret => "read_secret",
        WriteSecret => "write_secret",
        PatchCaBundle => "patch_ca_bundle",
        WatchWebhooks => "watch_webhooks",
    }
    Endpoint {
        Mutate => "mutate",
        Validate => "validate",
    }
    Outcome {
        Patched => "patched",
        Unchanged => "unchanged",
        Skipped => "skipped",
        Ignored => "ignored",
        Error => "error",
        BadRequest => "bad_request",
        Allowed => "allowed",
        Denied => "denied",
    }
    Refusal {
        BodyTooLarge => "body_too_large",
        BodyTooComplex => "body_too_complex",
        BodyBudget => "body_budget",
        BodyUnreadable => "body_unreadable",
    }
    ReloadResult {
        Success => "success",
        Failure => "failure",
    }
}

/// The engine's kinds of change, by their names (the engine does not know about metrics).
impl EncodeLabelValue for Injection {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        self.as_str().encode(encoder)
    }
}

/// Endpoint and outcome of an admission request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The endpoint.
    pub endpoint: Endpoint,
    /// How it was answered.
    pub outcome: Outcome,
}

/// One label: the endpoint.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabel {
    /// The endpoint.
    pub endpoint: Endpoint,
}

/// The labels of an injection: the pod's namespace and the kind of change.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InjectionLabels {
    /// The namespace of the pod.
    pub namespace: String,
    /// `prestop`, `env`, `readiness`, `preset`, `helper`, `grace`, `startup`.
    pub kind: Injection,
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
    /// The reason.
    pub reason: Refusal,
}

/// One label: success or failure.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// The result.
    pub result: ReloadResult,
}

/// One label: a certificate sync operation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabel {
    /// The operation.
    pub operation: CertSyncOperation,
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
    pub injections: Family<InjectionLabels, Counter>,
    /// Policies refused (parse or validation errors), by namespace.
    pub policy_errors: Family<NamespaceLabel, Counter>,
    /// Namespaces with a policy in the cache.
    pub namespace_policies: Gauge,
    /// Serving certificate reloads.
    pub cert_reloads: Family<ResultLabel, Counter>,
    /// `notAfter` of the serving certificate, Unix seconds.
    pub cert_expiry: Gauge,
    /// Self-managed certificates: API server requests that failed, by operation (the current
    /// pair keeps being served).
    pub cert_sync_errors: Family<OperationLabel, Counter>,
    /// Self-managed certificates: 1 while the last attempt of some operation failed.
    pub cert_sync_failing: Gauge,
    /// Self-managed certificates: caBundles found different from the CA and put back.
    pub ca_bundle_restores: Counter,
    /// Self-managed certificates: the Secret found deleted and re-created from this replica.
    pub cert_secret_recreations: Counter,
}

/// Upper bounds of the admission latency buckets above the doubling ones, in seconds: 0.8 × and
/// 1 × the webhook timeouts people set (the chart's 5 s, the API server's default 10 s, its
/// maximum 30 s), so that "p99 near the timeout" is read from podgrace's own histogram.
pub const LATENCY_TIMEOUT_BUCKETS: [f64; 8] = [2.5, 4.0, 5.0, 8.0, 10.0, 20.0, 24.0, 30.0];

/// The admission latency buckets: 16 doubling ones from 50 µs to 1.6384 s (the resolution of the
/// usual sub-millisecond answers), then [`LATENCY_TIMEOUT_BUCKETS`] up to the webhook's maximum
/// timeout of 30 s. 24 buckets and `+Inf`: 25 series per endpoint.
pub fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.000_05, 2.0, 16).chain(LATENCY_TIMEOUT_BUCKETS)
}

/// `log_lines_dropped_total`: the log writer's own count of the lines it dropped, read at each
/// scrape.
#[derive(Debug)]
struct DroppedLogLines(Option<ErrorCounter>);

impl Collector for DroppedLogLines {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let dropped = self.0.as_ref().map_or(0, ErrorCounter::dropped_lines);
        let counter = ConstCounter::new(dropped as u64);
        let metric = encoder.encode_descriptor(
            "log_lines_dropped",
            "Log lines dropped because the log output did not keep up",
            None,
            counter.metric_type(),
        )?;
        counter.encode(metric)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric; no log lines are counted as dropped.
    pub fn new() -> Self {
        Self::registered(None)
    }

    /// [`Metrics::new`], exporting the log writer's count of dropped lines.
    pub fn with_dropped_log_lines(dropped: ErrorCounter) -> Self {
        Self::registered(Some(dropped))
    }

    fn registered(dropped_log_lines: Option<ErrorCounter>) -> Self {
        let mut registry = Registry::with_prefix("podgrace");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "admission_requests",
            "Admission requests by endpoint and outcome",
            requests.clone(),
        );
        let latency = Family::<EndpointLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(latency_buckets())
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
        let injections = Family::<InjectionLabels, Counter>::default();
        registry.register(
            "injections",
            "Changes made to pods, by namespace and kind",
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
        let cert_sync_errors = Family::<OperationLabel, Counter>::default();
        registry.register(
            "certificate_sync_errors",
            "certificates.mode self: API server requests that failed, by operation (the current pair keeps being served)",
            cert_sync_errors.clone(),
        );
        let cert_sync_failing = Gauge::default();
        registry.register(
            "certificate_sync_failing",
            "certificates.mode self: 1 while the last attempt of an operation failed",
            cert_sync_failing.clone(),
        );
        let ca_bundle_restores = Counter::default();
        registry.register(
            "ca_bundle_restores",
            "certificates.mode self: webhook caBundles found different from podgrace's CAs and put back",
            ca_bundle_restores.clone(),
        );
        let cert_secret_recreations = Counter::default();
        registry.register(
            "certificate_secret_recreations",
            "certificates.mode self: the certificate Secret found deleted and re-created from this replica's pair",
            cert_secret_recreations.clone(),
        );
        for operation in CertSyncOperation::ALL {
            let _ = cert_sync_errors.get_or_create(&OperationLabel { operation });
        }
        registry.register_collector(Box::new(DroppedLogLines(dropped_log_lines)));
        // The series of every known label value exist from the start, at 0, so that `rate()`
        // and alerts on them work before the first event.
        for (endpoint, outcomes) in [
            (Endpoint::Mutate, &Outcome::MUTATE[..]),
            (Endpoint::Validate, &Outcome::VALIDATE[..]),
        ] {
            for &outcome in outcomes {
                let _ = requests.get_or_create(&RequestLabels { endpoint, outcome });
            }
            let _ = latency.get_or_create(&EndpointLabel { endpoint });
        }
        for reason in Refusal::ALL {
            let _ = requests_refused.get_or_create(&ReasonLabel { reason });
        }
        Metrics {
            registry,
            requests,
            latency,
            requests_refused,
            injections,
            policy_errors,
            namespace_policies,
            cert_reloads,
            cert_expiry,
            cert_sync_errors,
            cert_sync_failing,
            ca_bundle_restores,
            cert_secret_recreations,
        }
    }

    /// Counts an admission outcome.
    pub fn request(&self, endpoint: Endpoint, outcome: Outcome) {
        self.requests
            .get_or_create(&RequestLabels { endpoint, outcome })
            .inc();
    }

    /// Records how long an admission on `endpoint` took.
    pub fn observe_latency(&self, endpoint: Endpoint, seconds: f64) {
        self.latency
            .get_or_create(&EndpointLabel { endpoint })
            .observe(seconds);
    }

    /// Counts a change made to a pod in `namespace`. The series of a namespace appear with its
    /// first injection (one per namespace and kind: opted-in namespaces only).
    pub fn injection(&self, namespace: &str, kind: Injection) {
        let labels = InjectionLabels {
            namespace: namespace.to_owned(),
            kind,
        };
        self.injections.get_or_create(&labels).inc();
    }

    /// Counts a request refused before its body was read.
    pub fn request_refused(&self, reason: Refusal) {
        self.requests_refused
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// Requests refused for `reason` so far.
    pub fn refused_count(&self, reason: Refusal) -> u64 {
        self.requests_refused
            .get_or_create(&ReasonLabel { reason })
            .get()
    }

    /// Counts a serving certificate reload.
    pub fn cert_reload(&self, result: ReloadResult) {
        self.cert_reloads
            .get_or_create(&ResultLabel { result })
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
    use std::io::{self, Write};
    use std::sync::mpsc;

    use tracing_appender::non_blocking::NonBlockingBuilder;

    use super::*;

    fn missing<'a>(text: &str, lines: &[&'a str]) -> Vec<&'a str> {
        lines
            .iter()
            .filter(|l| !text.lines().any(|t| t == **l))
            .copied()
            .collect()
    }

    /// The names, labels and values dashboards and alerts select on, each at 0 from the start.
    #[test]
    fn every_known_series_is_exported_at_zero_before_any_event() {
        let text = Metrics::new().render();
        let expected = [
            r#"podgrace_admission_requests_total{endpoint="mutate",outcome="patched"} 0"#,
            r#"podgrace_admission_requests_total{endpoint="mutate",outcome="unchanged"} 0"#,
            r#"podgrace_admission_requests_total{endpoint="mutate",outcome="skipped"} 0"#,
            r#"podgrace_admission_requests_total{endpoint="mutate",outcome="ignored"} 0"#,
            r#"podgrace_admission_requests_total{endpoint="mutate",outcome="error"} 0"#,
            r#"podgrace_admission_requests_total{endpoint="mutate",outcome="bad_request"} 0"#,
            r#"podgrace_admission_requests_total{endpoint="validate",outcome="allowed"} 0"#,
            r#"podgrace_admission_requests_total{endpoint="validate",outcome="denied"} 0"#,
            r#"podgrace_admission_requests_total{endpoint="validate",outcome="ignored"} 0"#,
            r#"podgrace_admission_requests_total{endpoint="validate",outcome="bad_request"} 0"#,
            r#"podgrace_admission_duration_seconds_count{endpoint="mutate"} 0"#,
            r#"podgrace_admission_duration_seconds_count{endpoint="validate"} 0"#,
            r#"podgrace_requests_refused_total{reason="body_too_large"} 0"#,
            r#"podgrace_requests_refused_total{reason="body_too_complex"} 0"#,
            r#"podgrace_requests_refused_total{reason="body_budget"} 0"#,
            r#"podgrace_requests_refused_total{reason="body_unreadable"} 0"#,
            "podgrace_namespace_policies 0",
            "podgrace_certificate_expiry_timestamp_seconds 0",
            "podgrace_log_lines_dropped_total 0",
            "# TYPE podgrace_log_lines_dropped counter",
        ];
        assert_eq!(missing(&text, &expected), Vec::<&str>::new(), "{text}");
        // Outcomes only the other endpoint has are not exported.
        assert!(!text.contains(r#"endpoint="validate",outcome="patched""#));
        assert!(!text.contains(r#"endpoint="mutate",outcome="denied""#));
    }

    #[test]
    fn events_land_in_their_series() {
        let m = Metrics::new();
        m.request(Endpoint::Mutate, Outcome::Patched);
        m.request(Endpoint::Mutate, Outcome::Patched);
        m.request(Endpoint::Validate, Outcome::Denied);
        m.observe_latency(Endpoint::Mutate, 0.001);
        m.injection("shop", Injection::Readiness);
        m.request_refused(Refusal::BodyBudget);
        m.cert_reload(ReloadResult::Failure);
        m.policy_error("shop");
        let text = m.render();
        let expected = [
            r#"podgrace_admission_requests_total{endpoint="mutate",outcome="patched"} 2"#,
            r#"podgrace_admission_requests_total{endpoint="mutate",outcome="unchanged"} 0"#,
            r#"podgrace_admission_requests_total{endpoint="validate",outcome="denied"} 1"#,
            r#"podgrace_admission_duration_seconds_count{endpoint="mutate"} 1"#,
            r#"podgrace_admission_duration_seconds_bucket{le="0.0016",endpoint="mutate"} 1"#,
            r#"podgrace_admission_duration_seconds_bucket{le="0.0008",endpoint="mutate"} 0"#,
            r#"podgrace_injections_total{namespace="shop",kind="readiness"} 1"#,
            r#"podgrace_requests_refused_total{reason="body_budget"} 1"#,
            r#"podgrace_certificate_reloads_total{result="failure"} 1"#,
            r#"podgrace_policy_errors_total{namespace="shop"} 1"#,
        ];
        assert_eq!(missing(&text, &expected), Vec::<&str>::new(), "{text}");
    }

    /// The bucket bounds of one endpoint's latency histogram, in order, with their counts.
    fn latency_buckets_of(text: &str, endpoint: &str) -> Vec<(String, u64)> {
        let suffix = format!(",endpoint=\"{endpoint}\"}} ");
        text.lines()
            .filter_map(|l| l.strip_prefix("podgrace_admission_duration_seconds_bucket{le=\""))
            .filter_map(|rest| {
                let (le, rest) = rest.split_once('"')?;
                Some((le.to_owned(), rest.strip_prefix(&suffix)?.parse().ok()?))
            })
            .collect()
    }

    /// The API server waits at most 30 s for a webhook (`timeoutSeconds` is 1 to 30): the
    /// histogram resolves latencies up to there, keeping the doubling buckets below 1.6384 s.
    #[test]
    fn latency_buckets_reach_the_longest_webhook_timeout_and_keep_the_fine_ones() {
        let m = Metrics::new();
        for seconds in [0.000_04, 0.000_3, 3.9, 7.5, 23.0, 29.9, 31.0] {
            m.observe_latency(Endpoint::Mutate, seconds);
        }
        let buckets = latency_buckets_of(&m.render(), "mutate");
        let bounds: Vec<&str> = buckets.iter().map(|(le, _)| le.as_str()).collect();
        assert_eq!(
            bounds,
            [
                "0.00005", "0.0001", "0.0002", "0.0004", "0.0008", "0.0016", "0.0032", "0.0064",
                "0.0128", "0.0256", "0.0512", "0.1024", "0.2048", "0.4096", "0.8192", "1.6384",
                "2.5", "4.0", "5.0", "8.0", "10.0", "20.0", "24.0", "30.0", "+Inf",
            ]
        );
        let count = |le: &str| buckets.iter().find(|(b, _)| b == le).unwrap().1;
        // Cumulative counts: each observation in the first bucket at or above it.
        assert_eq!(count("0.00005"), 1);
        assert_eq!(count("0.0004"), 2);
        assert_eq!(count("2.5"), 2);
        assert_eq!(count("4.0"), 3, "3.9 s, just under 0.8 x a 5 s timeout");
        assert_eq!(count("8.0"), 4, "7.5 s, under 0.8 x a 10 s timeout");
        assert_eq!(count("24.0"), 5);
        assert_eq!(
            count("30.0"),
            6,
            "29.9 s is still within the longest timeout"
        );
        assert_eq!(count("+Inf"), 7, "only 31 s is beyond every timeout");
        // The other endpoint has the same buckets, all at 0: 25 series each.
        let validate = latency_buckets_of(&m.render(), "validate");
        assert_eq!(validate.len(), 25);
        assert!(validate.iter().all(|(_, n)| *n == 0));
    }

    /// An output that blocks until the test lets it go.
    struct Blocked(mpsc::Receiver<()>);

    impl Write for Blocked {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            // Returns once the sender is dropped.
            let _ = self.0.recv();
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn dropped_log_lines_are_read_from_the_log_writer_at_each_scrape() {
        let (release, blocked) = mpsc::channel::<()>();
        let (mut writer, guard) = NonBlockingBuilder::default()
            .lossy(true)
            .buffered_lines_limit(1)
            .finish(Blocked(blocked));
        let counter = writer.error_counter();
        let m = Metrics::with_dropped_log_lines(writer.error_counter());
        assert!(
            m.render()
                .contains("\npodgrace_log_lines_dropped_total 0\n")
        );
        for _ in 0..50 {
            writer.write_all(b"line\n").unwrap();
        }
        // The writer thread holds at most one line, the queue one more.
        let dropped = counter.dropped_lines();
        assert!((48..=50).contains(&dropped), "{dropped}");
        assert!(
            m.render()
                .contains(&format!("\npodgrace_log_lines_dropped_total {dropped}\n"))
        );
        drop(release);
        drop(guard);
    }
}
