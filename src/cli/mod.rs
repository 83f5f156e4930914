//! The command line: argument definitions (clap, with environment variables for everything a
//! Deployment sets) and dispatch to one module per subcommand.

mod audit;
mod audit_cluster;
mod certs;
mod examples;
mod explain;
mod mutate;
mod policy;
mod prestop;
mod serve;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::observability::logging::{self, LogFormat};
use crate::observability::metrics::Metrics;
use crate::policy::Seconds;
use crate::protocols::kube_version::KubeVersion;

/// podgrace: graceful pod termination, injected by an admission webhook.
#[derive(Debug, Parser)]
#[command(name = "podgrace", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the admission webhook (HTTPS).
    #[command(after_help = examples::SERVE)]
    Serve(Box<ServeArgs>),
    /// Generate a CA and a serving certificate for the webhook Service.
    #[command(after_help = examples::CERTS)]
    Certs(CertsArgs),
    /// Preview the webhook's patch on a manifest, offline.
    #[command(after_help = examples::MUTATE)]
    Mutate(MutateArgs),
    /// Which workloads lose requests on a rollout, today and with podgrace.
    ///
    /// Which workloads lose requests on a rollout, today and with podgrace: from a cluster
    /// (read-only) or from manifests (-f).
    #[command(after_help = examples::AUDIT)]
    Audit(Box<AuditArgs>),
    /// Run the preStop sequence in a container: deregister, drain, quit nginx; no shell.
    ///
    /// Run the preStop sequence inside a container (what an injected helper hook calls):
    /// deregister, drain, signal nginx. No shell needed.
    #[command(after_help = examples::PRESTOP)]
    Prestop(Box<PrestopArgs>),
    /// Copy this binary into DIR (what the helper init container runs).
    #[command(after_help = examples::INSTALL_HELPER)]
    InstallHelper {
        /// Target directory (the shared volume).
        dir: PathBuf,
    },
    /// Validate or show policies.
    #[command(after_help = examples::POLICY)]
    Policy {
        /// Policy subcommand.
        #[command(subcommand)]
        command: PolicyCommand,
    },
}

/// `podgrace serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "PODGRACE_LISTEN", default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,
    /// Serving certificate (PEM chain); reloaded when it changes.
    #[arg(
        long,
        env = "PODGRACE_TLS_CERT_FILE",
        default_value = "/etc/podgrace/tls/tls.crt"
    )]
    pub tls_cert_file: PathBuf,
    /// Serving key (PEM).
    #[arg(
        long,
        env = "PODGRACE_TLS_KEY_FILE",
        default_value = "/etc/podgrace/tls/tls.key"
    )]
    pub tls_key_file: PathBuf,
    /// Where the serving certificate comes from: `files` (--tls-cert-file and --tls-key-file,
    /// reloaded when they change) or `self` (podgrace creates a CA and pair in the Secret
    /// --cert-secret, keeps its webhook configurations' caBundle and renews them).
    #[arg(long, env = "PODGRACE_CERTIFICATES", value_enum, default_value_t = CertificateSource::Files)]
    pub certificates: CertificateSource,
    /// `--certificates self`: the Secret holding the CA and serving pair.
    #[arg(long, env = "PODGRACE_CERT_SECRET", default_value = "podgrace-certs")]
    pub cert_secret: String,
    /// `--certificates self`: podgrace's namespace (default: the service account's).
    #[arg(long, env = "PODGRACE_NAMESPACE", value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// `--certificates self`: the Service the API server calls (the certificate's names).
    #[arg(long, env = "PODGRACE_SERVICE", default_value = "podgrace")]
    pub service: String,
    /// `--certificates self`: the MutatingWebhookConfiguration whose caBundle podgrace keeps.
    #[arg(long, env = "PODGRACE_MUTATING_WEBHOOK", default_value = "podgrace")]
    pub mutating_webhook: String,
    /// `--certificates self`: the ValidatingWebhookConfiguration whose caBundle podgrace keeps
    /// (none when unset).
    #[arg(long, env = "PODGRACE_VALIDATING_WEBHOOK", value_name = "NAME")]
    pub validating_webhook: Option<String>,
    /// `--certificates self`: validity of a serving certificate, in seconds (90 days).
    #[arg(long, env = "PODGRACE_CERT_VALIDITY_SECONDS", default_value_t = 90 * 86_400)]
    pub cert_validity_seconds: u64,
    /// `--certificates self`: a serving certificate is renewed this many seconds before it
    /// expires (30 days).
    #[arg(long, env = "PODGRACE_CERT_RENEW_BEFORE_SECONDS", default_value_t = 30 * 86_400)]
    pub cert_renew_before_seconds: u64,
    /// `--certificates self`: validity of a CA, in seconds (10 years).
    #[arg(long, env = "PODGRACE_CA_VALIDITY_SECONDS", default_value_t = 3650 * 86_400)]
    pub ca_validity_seconds: u64,
    /// `--certificates self`: the CA starts rolling this many seconds before it expires (1 year).
    #[arg(long, env = "PODGRACE_CA_RENEW_BEFORE_SECONDS", default_value_t = 365 * 86_400)]
    pub ca_renew_before_seconds: u64,
    /// `--certificates self`: seconds between reads of the certificate Secret.
    #[arg(long, env = "PODGRACE_CERT_CHECK_SECONDS", default_value_t = 30)]
    pub cert_check_seconds: u64,
    /// No cluster: generate a self-signed certificate and read namespace policies from
    /// --policy-dir.
    #[arg(long, env = "PODGRACE_STANDALONE")]
    pub standalone: bool,
    /// Standalone mode: where to write the generated CA certificate.
    #[arg(
        long,
        env = "PODGRACE_CA_OUT",
        default_value = "certs/standalone-ca.pem"
    )]
    pub ca_out: PathBuf,
    /// Standalone mode: extra DNS names or IPs for the generated certificate.
    #[arg(long, value_name = "NAME")]
    pub san: Vec<String>,
    /// Namespace policies from a directory, one file per namespace (`shop.yaml`), instead of
    /// ConfigMaps.
    #[arg(long, env = "PODGRACE_POLICY_DIR", value_name = "DIR")]
    pub policy_dir: Option<PathBuf>,
    /// Cluster default policy file; reloaded when it changes.
    #[arg(long, env = "PODGRACE_CLUSTER_POLICY", value_name = "FILE")]
    pub cluster_policy: Option<PathBuf>,
    /// Name of the namespace policy ConfigMaps.
    #[arg(long, env = "PODGRACE_POLICY_NAME", default_value = "podgrace-policy")]
    pub policy_name: String,
    /// ConfigMap key holding the policy.
    #[arg(long, env = "PODGRACE_POLICY_KEY", default_value = crate::policy::POLICY_KEY)]
    pub policy_key: String,
    /// Report a refused namespace policy ConfigMap as a Warning Event on it (events.k8s.io,
    /// once per refused resourceVersion).
    #[arg(long, env = "PODGRACE_POLICY_EVENTS", default_value_t = true, action = clap::ArgAction::Set)]
    pub policy_events: bool,
    /// This replica's name in the Events it reports (default: the host name, which is the pod
    /// name in Kubernetes).
    #[arg(long, env = "PODGRACE_POD_NAME", value_name = "NAME")]
    pub pod_name: Option<String>,
    /// Also serve `GET /metrics` in plain HTTP on this address (for scrapers without the
    /// webhook's CA); the HTTPS port keeps serving it.
    #[arg(long, env = "PODGRACE_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// Kubeconfig to reach the cluster from outside it (default: in-cluster, then $KUBECONFIG,
    /// then ~/.kube/config).
    #[arg(long, env = "PODGRACE_KUBECONFIG", value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubernetes version of the cluster, overriding discovery (e.g. 1.29).
    #[arg(long, env = "PODGRACE_KUBE_VERSION", value_name = "VERSION")]
    pub kube_version: Option<KubeVersion>,
    /// Largest accepted request body, in bytes (a larger declared length is answered 413 before
    /// the body is read).
    #[arg(long, env = "PODGRACE_MAX_BODY_BYTES", default_value_t = 6 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Memory that large reviews (bodies over 64 KiB, or of many JSON objects) may take at once:
    /// half for their bodies, half for decoding them (estimated). More wait up to a second, then
    /// get 429; one estimated above the decoding half gets 413.
    #[arg(long, env = "PODGRACE_BODY_BUDGET_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub body_budget_bytes: usize,
    /// Time allowed for a whole request, in seconds.
    #[arg(long, env = "PODGRACE_REQUEST_TIMEOUT_SECONDS", default_value_t = 10)]
    pub request_timeout_seconds: u64,
    /// Time allowed for the TLS handshake, and for request headers from their first byte, in
    /// seconds.
    #[arg(long, env = "PODGRACE_HEADER_TIMEOUT_SECONDS", default_value_t = 5)]
    pub header_timeout_seconds: u64,
    /// A kept-alive connection with no request for this many seconds is closed.
    #[arg(long, env = "PODGRACE_IDLE_TIMEOUT_SECONDS", default_value_t = 30)]
    pub idle_timeout_seconds: u64,
    /// Open connections at most; when all are taken, the one idle for longest is closed for a
    /// new client.
    #[arg(long, env = "PODGRACE_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,
    /// After SIGTERM, seconds to keep accepting while endpoints drop this replica.
    #[arg(long, env = "PODGRACE_DRAIN_SECONDS", default_value_t = 5)]
    pub drain_seconds: u64,
    /// After the drain, seconds in-flight requests may take.
    #[arg(long, env = "PODGRACE_SHUTDOWN_TIMEOUT_SECONDS", default_value_t = 20)]
    pub shutdown_timeout_seconds: u64,
    /// Seconds between re-checks of certificate and policy files (changes are also watched).
    #[arg(long, env = "PODGRACE_RELOAD_POLL_SECONDS", default_value_t = 60)]
    pub reload_poll_seconds: u64,
    /// Log format.
    #[arg(long, env = "PODGRACE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
    /// Log filter (tracing EnvFilter syntax).
    #[arg(long, env = "PODGRACE_LOG", default_value = "info")]
    pub log: String,
}

/// Where `serve` takes its serving certificate from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CertificateSource {
    /// Files, reloaded when they change (Helm-generated, cert-manager or your own Secret).
    Files,
    /// podgrace creates, renews and publishes its own (chart `certificates.mode: self`).
    #[value(name = "self")]
    SelfManaged,
}

/// `podgrace certs`.
#[derive(Debug, Args)]
pub struct CertsArgs {
    /// Service name of the webhook.
    #[arg(long, default_value = "podgrace")]
    pub service: String,
    /// Namespace of the webhook.
    #[arg(long, default_value = "podgrace-system")]
    pub namespace: String,
    /// Extra DNS names or IPs.
    #[arg(long, value_name = "NAME")]
    pub san: Vec<String>,
    /// Validity in days.
    #[arg(long, default_value_t = 365)]
    pub days: u32,
    /// Output directory.
    #[arg(long, default_value = "certs")]
    pub out_dir: PathBuf,
}

/// `podgrace prestop`.
#[derive(Debug, Args)]
pub struct PrestopArgs {
    /// Drain sleep, after deregistration and before the nginx quit.
    #[arg(long, default_value = "0", value_name = "SECONDS")]
    pub sleep: Seconds,
    /// Deregister from this registry first.
    #[arg(long, value_enum)]
    pub deregister: Option<Registry>,
    /// Nacos base URL.
    #[arg(long, required_if_eq("deregister", "nacos"), value_name = "URL")]
    pub nacos_server: Option<String>,
    /// Nacos HTTP API generation.
    #[arg(long, value_enum, default_value_t = NacosApiArg::V1)]
    pub nacos_api: NacosApiArg,
    /// Nacos namespace id (the public namespace when omitted).
    #[arg(long)]
    pub nacos_namespace: Option<String>,
    /// Nacos group.
    #[arg(long, default_value = crate::policy::defaults::NACOS_GROUP)]
    pub nacos_group: String,
    /// Nacos service name.
    #[arg(long, required_if_eq("deregister", "nacos"))]
    pub nacos_service: Option<String>,
    /// Nacos cluster.
    #[arg(long, default_value = crate::policy::defaults::NACOS_CLUSTER)]
    pub nacos_cluster: String,
    /// Registered port.
    #[arg(long, required_if_eq("deregister", "nacos"))]
    pub nacos_port: Option<u16>,
    /// Whether the instance is ephemeral.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub nacos_ephemeral: bool,
    /// Variable holding the pod IP (downward API).
    #[arg(long, default_value = crate::policy::defaults::POD_IP_ENV, value_name = "NAME")]
    pub ip_env: String,
    /// Variable holding the Nacos user name (login only when set and non-empty).
    #[arg(long, value_name = "NAME")]
    pub username_env: Option<String>,
    /// Variable holding the Nacos password.
    #[arg(long, value_name = "NAME")]
    pub password_env: Option<String>,
    /// Bound on each HTTP call.
    #[arg(long, default_value = "3", value_name = "SECONDS")]
    pub timeout: Seconds,
    /// Bound on the whole deregistration, retries included (default: timeout × calls).
    #[arg(long, value_name = "SECONDS")]
    pub budget: Option<Seconds>,
    /// After the drain, send nginx a graceful quit (SIGQUIT) and wait for it to exit.
    #[arg(long)]
    pub signal_nginx: bool,
    /// nginx pid file (default: the usual locations, then PID 1).
    #[arg(long, value_name = "FILE")]
    pub nginx_pid_file: Option<PathBuf>,
    /// Longest wait for nginx to exit.
    #[arg(long, default_value = "30", value_name = "SECONDS")]
    pub nginx_wait: Seconds,
    /// `adaptive`: drain until the pod's inbound traffic has been quiet for --drain-quiet,
    /// between --drain-min and --drain-max (instead of --sleep).
    #[arg(long, value_enum, default_value_t = DrainArg::Fixed)]
    pub drain: DrainArg,
    /// Adaptive drain: never shorter.
    #[arg(long, default_value = "2", value_name = "SECONDS")]
    pub drain_min: Seconds,
    /// Adaptive drain: ends this long after the last traffic.
    #[arg(long, default_value = "3", value_name = "SECONDS")]
    pub drain_quiet: Seconds,
    /// Adaptive drain: never longer (the grace period counts this).
    #[arg(long, default_value = "30", value_name = "SECONDS")]
    pub drain_max: Seconds,
    /// Adaptive drain: what keeps it going.
    #[arg(long, value_enum, default_value_t = DrainTrafficArg::All)]
    pub drain_traffic: DrainTrafficArg,
    /// Adaptive drain: a serving port (repeat; none: every listening port but --ignore-port).
    #[arg(long = "port", value_name = "PORT")]
    pub ports: Vec<u16>,
    /// Adaptive drain: a port whose traffic never counts (metrics; repeat).
    #[arg(long = "ignore-port", value_name = "PORT")]
    pub ignore_ports: Vec<u16>,
    /// Adaptive drain: a readiness or liveness probe, `PORT:PERIOD` (repeat).
    #[arg(long = "probe", value_name = "PORT:PERIOD", value_parser = parse_probe)]
    pub probes: Vec<crate::helper::traffic::Probe>,
    /// Adaptive drain: where the outcome line goes besides stderr (the container's output).
    #[arg(long, default_value = "/proc/1/fd/1", value_name = "FILE")]
    pub report_to: PathBuf,
}

/// Drain modes on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DrainArg {
    /// `--sleep` seconds.
    Fixed,
    /// Until the traffic stops.
    Adaptive,
}

/// What keeps an adaptive drain going, on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DrainTrafficArg {
    /// New connections and data on open ones.
    All,
    /// New connections only.
    NewConnections,
}

fn parse_probe(text: &str) -> Result<crate::helper::traffic::Probe, String> {
    let (port, period) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?} is not PORT:PERIOD"))?;
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("{port:?} is not a port number"))?;
    let period = period
        .parse::<u64>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("{period:?} is not a period in whole seconds"))?;
    Ok(crate::helper::traffic::Probe {
        port,
        period: std::time::Duration::from_secs(period),
    })
}

/// Registries `podgrace prestop` can deregister from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Registry {
    /// Nacos (`enabled=false` on the instance).
    Nacos,
}

/// Nacos API generations on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum NacosApiArg {
    /// `/nacos/v1/ns/instance`.
    V1,
    /// `/nacos/v2/ns/instance`.
    V2,
    /// `/nacos/v3/admin/ns/instance`.
    V3,
}

/// `podgrace mutate`.
#[derive(Debug, Args)]
pub struct MutateArgs {
    /// Manifest: a Pod, a workload (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob),
    /// several of them, a List of them (`kubectl get -o yaml`), or an AdmissionReview; `-`
    /// reads standard input.
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub file: PathBuf,
    /// Namespace policy: a policy file or a ConfigMap manifest carrying one.
    #[arg(long, value_name = "FILE")]
    pub namespace_policy: Option<PathBuf>,
    /// Cluster default policy file.
    #[arg(long, value_name = "FILE", env = "PODGRACE_CLUSTER_POLICY")]
    pub cluster_policy: Option<PathBuf>,
    /// What to print.
    #[arg(short, long, value_enum, default_value_t = Output::Patch)]
    pub output: Output,
    /// Kubernetes version of the target cluster (for `sleepHandler: auto`), e.g. 1.29.
    #[arg(long, value_name = "VERSION")]
    pub kube_version: Option<KubeVersion>,
    /// ConfigMap key holding the policy.
    #[arg(long, default_value = crate::policy::POLICY_KEY)]
    pub policy_key: String,
    /// Also print, on stderr, which layer or rule set each policy value of every container.
    #[arg(long)]
    pub explain: bool,
    /// Name of the namespace policy ConfigMaps: one in the input applies to the workloads of
    /// its namespace, as in `podgrace audit` (unless --namespace-policy is given).
    #[arg(long, value_name = "NAME", default_value = "podgrace-policy")]
    pub policy_name: String,
}

/// `podgrace audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Audit manifests instead of a cluster: files, directories (their .yaml, .yml and .json
    /// files, recursively) or `-` for standard input; multi-document, `kind: List`.
    #[arg(short = 'f', long = "filename", value_name = "PATH")]
    pub files: Vec<PathBuf>,
    /// Namespaces to audit (default: the context's namespace).
    #[arg(short = 'n', long = "namespace", value_name = "NAMESPACE")]
    pub namespaces: Vec<String>,
    /// Audit every namespace.
    #[arg(short = 'A', long, conflicts_with = "namespaces")]
    pub all_namespaces: bool,
    /// Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, then in-cluster).
    #[arg(long, value_name = "FILE", conflicts_with = "files")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context.
    #[arg(long, value_name = "NAME", conflicts_with = "files")]
    pub context: Option<String>,
    /// Cluster default policy file (default: the chart's ConfigMap in the cluster, or the
    /// built-in defaults for manifests).
    #[arg(long, value_name = "FILE", env = "PODGRACE_CLUSTER_POLICY")]
    pub cluster_policy: Option<PathBuf>,
    /// Namespace policy for every namespace audited, instead of their `podgrace-policy`
    /// ConfigMaps (a what-if).
    #[arg(long, value_name = "FILE")]
    pub namespace_policy: Option<PathBuf>,
    /// Namespace podgrace is installed in (never mutated; holds the cluster default).
    #[arg(long, value_name = "NAMESPACE", default_value = "podgrace-system")]
    pub podgrace_namespace: String,
    /// Name of the cluster default policy ConfigMap (the chart's `<release>-cluster-policy`).
    #[arg(long, value_name = "NAME", default_value = "podgrace-cluster-policy")]
    pub cluster_policy_configmap: String,
    /// Name of the namespace policy ConfigMaps.
    #[arg(long, value_name = "NAME", default_value = "podgrace-policy")]
    pub policy_name: String,
    /// ConfigMap key holding the policy.
    #[arg(long, default_value = crate::policy::POLICY_KEY)]
    pub policy_key: String,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = AuditOutput::Table)]
    pub output: AuditOutput,
    /// Exit with 1 when a workload (or namespace) reaches this status.
    #[arg(long, value_enum, value_name = "STATUS")]
    pub fail_on: Option<FailOn>,
    /// Kubernetes version of the cluster (for `sleepHandler: auto`), e.g. 1.29.
    #[arg(long, value_name = "VERSION")]
    pub kube_version: Option<KubeVersion>,
    /// Objects per list page.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..))]
    pub page_size: u32,
}

/// Output formats of `podgrace audit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AuditOutput {
    /// Grouped by namespace, a verdict per workload, a summary line (coloured on a terminal).
    Table,
    /// The report as JSON (schema in docs/AUDIT.md).
    Json,
    /// Markdown, for a pull-request comment.
    Markdown,
}

/// `--fail-on` thresholds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    /// A workload at risk.
    Risk,
    /// A workload at risk or with a warning (drift, a namespace not readable, an invalid
    /// namespace policy).
    Warning,
}

/// Output formats of `podgrace mutate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// A JSON array with one entry per workload, whatever the input: {document, item, kind,
    /// namespace, name, patch}; the patch's paths start at the object (a document, or the
    /// List item `item`); `patch` is null for a workload that could not be mutated.
    Patch,
    /// The mutated manifest, as YAML (keys in the input's order, YAML 1.1-safe quoting).
    Pod,
    /// A unified diff of the manifest before and after.
    Diff,
}

/// `podgrace policy ...`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate policy files or ConfigMap manifests: every one, with notes on unused values.
    ///
    /// Validate policy files or ConfigMap manifests (every policy of every file is checked, and
    /// each gets its line: `ok:` with `note:` lines for values that never reach a pod, or
    /// `invalid:` with every problem); exit code 1 when any is invalid.
    #[command(after_help = examples::POLICY_CHECK)]
    Check {
        /// Files to check.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Cluster default policy the files are layered on (to check their combination).
        #[arg(long, value_name = "FILE")]
        cluster_policy: Option<PathBuf>,
        /// ConfigMap key holding the policy.
        #[arg(long, default_value = crate::policy::POLICY_KEY)]
        policy_key: String,
    },
    /// Print the built-in policy (every default) as YAML.
    #[command(after_help = examples::POLICY_DEFAULTS)]
    Defaults,
}

/// The program's name in help and usage texts: `kubectl podgrace` when the binary is installed as
/// the kubectl plugin `kubectl-podgrace` (kubectl runs it with the words after `podgrace`, so the
/// arguments are the same; only what the help says changes).
pub fn program_name(argv0: &std::ffi::OsStr) -> &'static str {
    let file = std::path::Path::new(argv0)
        .file_name()
        .and_then(|f| f.to_str())
        .unwrap_or_default();
    if file.starts_with("kubectl-podgrace") {
        "kubectl podgrace"
    } else {
        "podgrace"
    }
}

/// Parses the process's arguments, named as [`program_name`] says.
pub fn parse() -> Cli {
    use clap::{CommandFactory as _, FromArgMatches as _};
    let argv0 = std::env::args_os().next().unwrap_or_default();
    let matches = Cli::command().bin_name(program_name(&argv0)).get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// Runs the command line; errors are printed as one line on stderr.
pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Serve(args) => {
            logging::init(args.log_format, &args.log).and_then(|logging| {
                let metrics = Arc::new(Metrics::with_dropped_log_lines(logging.dropped));
                let code = serve::run(*args, metrics);
                // Writes the lines still queued, the last ones of the run among them.
                drop(logging.guard);
                code
            })
        }
        Command::Certs(args) => certs::run(&args),
        Command::Prestop(args) => prestop::run(&args),
        Command::InstallHelper { dir } => crate::helper::install::install(&dir)
            .map(|path| {
                eprintln!("podgrace: helper installed at {}", path.display());
                ExitCode::SUCCESS
            })
            .map_err(|e| anyhow::anyhow!("installing the helper into {}: {e}", dir.display())),
        Command::Mutate(args) => mutate::run(&args),
        Command::Audit(args) => audit::run(&args),
        Command::Policy { command } => policy::run(&command),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("podgrace: error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// Exit code: what was asked for is found (`audit --fail-on`, an invalid policy in `policy
/// check`).
pub(crate) const EXIT_FOUND: u8 = 1;
/// Exit code: the command could not run (a usage error, as clap's, a file that cannot be read,
/// no input, nothing to process).
pub(crate) const EXIT_ERROR: u8 = 2;
/// Exit code: part of the input could not be read or processed (each part named on stderr, or
/// in the audit's report); the rest was.
pub(crate) const EXIT_PARTIAL: u8 = 3;
