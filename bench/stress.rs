//! The server under stress (issue 15), measured against the release binary on loopback: SIGTERM
//! under load (requests answered, refused before they were sent, lost), parallel large bodies
//! (peak and settled RSS, small reviews' latency meanwhile), connection floods (a prober's
//! success and latency), an oversized declared `Content-Length`, all of it at once, and a quick
//! throughput check (server CPU per request). Every scenario starts its own `podgrace serve
//! --standalone` on a free loopback port and lasts a bounded time; figures and how to read them:
//! bench/results/stress.md (how to run: bench/README.md).
//!
//! ```sh
//! CARGO_PROFILE_RELEASE_LTO=thin CARGO_PROFILE_RELEASE_CODEGEN_UNITS=4 \
//!   cargo build --release --bin podgrace --example stress
//! target/release/examples/stress drain --runs 5
//! target/release/examples/stress bodies --concurrency 20,64,200   # --shape env|containers, --control
//! target/release/examples/stress mix
//! target/release/examples/stress floods
//! target/release/examples/stress oversize
//! target/release/examples/stress throughput --rounds 3     # PODGRACE_BIN=a,b alternates two
//! ```
//!
//! `PODGRACE_BIN` names the binary (default `target/release/podgrace`); `--server-arg=--flag=value`
//! passes options to it.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Parser, Subcommand};
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::task::JoinSet;

/// The small review: what a `kubectl apply` of a pod sends (3.3 KB).
const SMALL: &str = include_str!("../tests/fixtures/admission/pod-create-kubectl-apply.json");
/// Size of the large reviews: 5.9 MiB, under the default 6 MiB body limit.
const LARGE_BYTES: usize = 6_186_598;

#[derive(Parser)]
#[command(about = "Stress scenarios for podgrace serve (loopback only)")]
struct Cli {
    /// An extra argument for every `podgrace serve` started (repeat for several).
    #[arg(long = "server-arg", global = true, allow_hyphen_values = true)]
    server_args: Vec<String>,
    #[command(subcommand)]
    scenario: Scenario,
}

static SERVER_ARGS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();

#[derive(Subcommand)]
enum Scenario {
    /// SIGTERM while keep-alive and new-connection clients send across the end of the drain.
    Drain {
        /// Separate server runs.
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// The server's --drain-seconds.
        #[arg(long, default_value_t = 2)]
        drain: u64,
    },
    /// Concurrent 5.9 MiB reviews for a while; RSS and small reviews' latency meanwhile.
    Bodies {
        /// Concurrent large-body clients, one server run per value.
        #[arg(long, value_delimiter = ',', default_value = "20,64,200")]
        concurrency: Vec<usize>,
        /// Length of the attack.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Small reviews per second during the attack.
        #[arg(long, default_value_t = 100)]
        probe_rate: u64,
        /// What fills the large reviews.
        #[arg(long, value_enum, default_value_t = Shape::Annotation)]
        shape: Shape,
        /// Also probe a second server that nobody attacks, at the same rate and at the same
        /// time: what the machine's CPU contention alone does to small reviews' latency.
        #[arg(long)]
        control: bool,
    },
    /// 1,100 keep-alive clients sending every 3 s, then 1,100 idle TLS connections; a prober
    /// opens a new connection for each small review meanwhile.
    Floods {
        /// Length of each flood.
        #[arg(long, default_value_t = 15)]
        seconds: u64,
        /// Flooding connections.
        #[arg(long, default_value_t = 1100)]
        connections: usize,
    },
    /// A declared Content-Length of 100 MiB with no body: how soon, and what, is the answer.
    Oversize,
    /// Everything at once: idle TLS connections taking most slots, and large-body clients of
    /// every shape (5.9 MiB of annotation, 1 MiB of environment variables, 64 KiB of
    /// containers); RSS, and small reviews meanwhile.
    Mix {
        /// Length of the attack.
        #[arg(long, default_value_t = 15)]
        seconds: u64,
        /// Large-body clients of each shape.
        #[arg(long, default_value_t = 40)]
        per_shape: usize,
        /// Idle TLS connections.
        #[arg(long, default_value_t = 900)]
        idle: usize,
    },
    /// Closed-loop small reviews on 16 keep-alive connections: requests per second.
    Throughput {
        /// Rounds per binary (alternating when PODGRACE_BIN lists two).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Seconds per round.
        #[arg(long, default_value_t = 8)]
        seconds: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    SERVER_ARGS.get_or_init(|| cli.server_args.clone());
    let bins = binaries();
    match cli.scenario {
        Scenario::Drain { runs, drain } => {
            for run in 1..=runs {
                drain_run(&bins[0], run, drain).await?;
            }
        }
        Scenario::Bodies {
            concurrency,
            seconds,
            probe_rate,
            shape,
            control,
        } => {
            for c in concurrency {
                let length = Duration::from_secs(seconds);
                bodies_run(&bins[0], c, length, probe_rate, shape, control).await?;
            }
        }
        Scenario::Floods {
            seconds,
            connections,
        } => {
            let d = Duration::from_secs(seconds);
            flood_run(&bins[0], Flood::KeepAlive, connections, d).await?;
            flood_run(&bins[0], Flood::IdleTls, connections, d).await?;
        }
        Scenario::Oversize => oversize_run(&bins[0]).await?,
        Scenario::Mix {
            seconds,
            per_shape,
            idle,
        } => mix_run(&bins[0], Duration::from_secs(seconds), per_shape, idle).await?,
        Scenario::Throughput { rounds, seconds } => {
            for round in 1..=rounds {
                for bin in &bins {
                    throughput_run(bin, round, Duration::from_secs(seconds)).await?;
                }
            }
        }
    }
    Ok(())
}

fn binaries() -> Vec<PathBuf> {
    let list = std::env::var("PODGRACE_BIN").unwrap_or_else(|_| "target/release/podgrace".into());
    list.split(',').map(PathBuf::from).collect()
}

// The server --------------------------------------------------------------------------------

struct Server {
    child: Child,
    port: u16,
    ca: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    async fn start(bin: &PathBuf, extra: &[&str]) -> anyhow::Result<Server> {
        let dir = tempfile::tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let ca_path = dir.path().join("ca.pem");
        let child = Command::new(bin)
            .args(["serve", "--standalone", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--ca-out")
            .arg(&ca_path)
            .args(extra)
            .args(SERVER_ARGS.get().into_iter().flatten())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(ca) = std::fs::read_to_string(&ca_path)
                && !ca.is_empty()
                && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            {
                return Ok(Server {
                    child,
                    port,
                    ca,
                    _dir: dir,
                });
            }
            anyhow::ensure!(Instant::now() < deadline, "{} did not start", bin.display());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn sigterm(&self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
    }

    /// CPU time the server has used (user + system), from `/proc/PID/stat`.
    fn cpu(&self) -> Duration {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        // Fields after the command name, which is in parentheses: utime and stime are the 12th
        // and 13th, in clock ticks (100 a second on Linux).
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or("", |(_, rest)| rest)
            .split_whitespace()
            .collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Duration::from_millis((ticks(11) + ticks(12)) * 10)
    }

    /// `VmRSS` and `VmHWM` in MiB.
    fn memory(&self) -> (f64, f64) {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
                .map_or(0.0, |kib| kib / 1024.0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    fn tls(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(self.ca.as_bytes()) {
            roots.add(cert.expect("CA PEM")).expect("CA certificate");
        }
        Arc::new(
            rustls::ClientConfig::builder_with_provider(podgrace::server::tls::provider())
                .with_safe_default_protocol_versions()
                .expect("TLS versions")
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    }

    /// A keep-alive client with its own connection pool.
    fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .use_preconfigured_tls((*self.tls()).clone())
            .timeout(Duration::from_secs(20))
            .build()
            .expect("client")
    }

    /// A client that opens a new connection for every request.
    fn fresh_client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .use_preconfigured_tls((*self.tls()).clone())
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(20))
            .build()
            .expect("client")
    }

    async fn tls_connect(
        &self,
        tls: &Arc<rustls::ClientConfig>,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await?;
        tcp.set_nodelay(true)?;
        tokio_rustls::TlsConnector::from(tls.clone())
            .connect(ServerName::try_from("localhost").expect("name"), tcp)
            .await
    }
}

/// One HTTP/1.1 exchange on a raw stream; the response's status.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    head: &str,
    body: &[u8],
) -> std::io::Result<u16> {
    s.write_all(head.as_bytes()).await?;
    s.write_all(body).await?;
    s.flush().await?;
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let (status, end, len) = loop {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let status = head
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break (status, end + 4, len);
        }
    };
    while buf.len() < end + len {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(status)
}

fn post_head(len: usize) -> String {
    format!(
        "POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n"
    )
}

/// What fills a large review.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum Shape {
    /// One annotation of the whole size: kept by the decoder, as one string.
    Annotation,
    /// Tens of thousands of environment variables in the pod's container: many small objects.
    Env,
    /// Tens of thousands of minimal containers: the decoder's and the engine's worst case.
    Containers,
}

/// The small review grown to `size` bytes by `shape`: a pod podgrace mutates.
fn large_review(size: usize, shape: Shape) -> Bytes {
    let mut review: serde_json::Value = serde_json::from_str(SMALL).expect("fixture");
    let room = size - SMALL.len() - 64;
    let pod = &mut review["request"]["object"];
    match shape {
        Shape::Annotation => {
            pod["metadata"]["annotations"]["stress.podgrace.io/filler"] =
                serde_json::Value::String("x".repeat(room));
        }
        Shape::Env => {
            let mut env = Vec::new();
            let mut used = 0;
            while used + 40 < room {
                let var = serde_json::json!({"name": format!("E{}", env.len()), "value": "v"});
                used += var.to_string().len() + 1;
                env.push(var);
            }
            pod["spec"]["containers"][0]["env"] = serde_json::Value::Array(env);
        }
        Shape::Containers => {
            let mut containers = Vec::new();
            let mut used = 0;
            while used + 40 < room {
                let c = serde_json::json!({"name": format!("c{}", containers.len()), "image": "x"});
                used += c.to_string().len() + 1;
                containers.push(c);
            }
            pod["spec"]["containers"] = serde_json::Value::Array(containers);
        }
    }
    let mut out = serde_json::to_vec(&review).expect("JSON");
    // Pad with whitespace to the exact size.
    out.resize(size, b' ');
    Bytes::from(out)
}

// Latency statistics ----------------------------------------------------------------------------

#[derive(Default)]
struct Latencies {
    ok: Vec<Duration>,
    failed: usize,
}

impl Latencies {
    fn summary(&mut self) -> String {
        self.ok.sort();
        let p = |q: f64| -> f64 {
            if self.ok.is_empty() {
                return f64::NAN;
            }
            let i = ((self.ok.len() as f64 * q).ceil() as usize).clamp(1, self.ok.len()) - 1;
            self.ok[i].as_secs_f64() * 1e3
        };
        format!(
            "{} answered, {} failed; p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            self.ok.len(),
            self.failed,
            p(0.5),
            p(0.99),
            p(1.0)
        )
    }
}

/// Small reviews at a fixed rate, each timed from its scheduled start (open loop), until `stop`.
async fn probe(
    client: reqwest::Client,
    url: String,
    rate: u64,
    stop: Arc<AtomicBool>,
) -> Latencies {
    let mut tasks = JoinSet::new();
    let period = Duration::from_micros(1_000_000 / rate.max(1));
    let mut next = tokio::time::Instant::now();
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep_until(next).await;
        let scheduled = next;
        next += period;
        let (client, url) = (client.clone(), url.clone());
        tasks.spawn(async move {
            let sent = client
                .post(&url)
                .header("content-type", "application/json")
                .body(SMALL)
                .timeout(Duration::from_secs(10))
                .send()
                .await;
            match sent {
                Ok(r) if r.status() == 200 => match r.bytes().await {
                    Ok(_) => Ok(scheduled.elapsed()),
                    Err(_) => Err(()),
                },
                _ => Err(()),
            }
        });
    }
    let mut lat = Latencies::default();
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(Ok(d)) => lat.ok.push(d),
            _ => lat.failed += 1,
        }
    }
    lat
}

/// [`probe`] on a thread of its own, with its own runtime and connections (warmed up before this
/// returns), so that its timings do not include waiting for the attackers' tasks.
fn probe_on_own_thread(
    client: reqwest::Client,
    url: String,
    rate: u64,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Latencies> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            for _ in 0..8 {
                if let Ok(r) = client.post(&url).body(SMALL).send().await {
                    let _ = r.bytes().await;
                }
            }
            let _ = ready_tx.send(());
            probe(client, url, rate, stop).await
        })
    });
    let _ = ready_rx.recv();
    handle
}

// Drain -------------------------------------------------------------------------------------

#[derive(Default)]
struct Outcomes {
    answered: AtomicU64,
    refused: AtomicU64,
    lost: AtomicU64,
    other_status: AtomicU64,
}

impl Outcomes {
    async fn record(&self, sent: reqwest::Result<reqwest::Response>) -> bool {
        match sent {
            Ok(r) if r.status() == 200 => {
                if r.bytes().await.is_ok() {
                    self.answered.fetch_add(1, Ordering::Relaxed);
                } else {
                    self.lost.fetch_add(1, Ordering::Relaxed);
                }
                true
            }
            Ok(_) => {
                self.other_status.fetch_add(1, Ordering::Relaxed);
                true
            }
            // Connection refused, or closed during the TLS handshake: the request was never
            // sent, so a client can send it to another replica.
            Err(e) if e.is_connect() => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                false
            }
            Err(_) => {
                self.lost.fetch_add(1, Ordering::Relaxed);
                true
            }
        }
    }

    fn line(&self) -> String {
        format!(
            "{} answered, {} refused before sending, {} lost, {} other statuses",
            self.answered.load(Ordering::Relaxed),
            self.refused.load(Ordering::Relaxed),
            self.lost.load(Ordering::Relaxed),
            self.other_status.load(Ordering::Relaxed)
        )
    }
}

async fn drain_run(bin: &PathBuf, run: usize, drain_secs: u64) -> anyhow::Result<()> {
    let mut server = Server::start(bin, &["--drain-seconds", &drain_secs.to_string()]).await?;
    let url = server.url("/mutate");
    let stop = Arc::new(AtomicBool::new(false));
    let looping = Arc::new(Outcomes::default());
    let idle = Arc::new(Outcomes::default());
    let mut tasks = JoinSet::new();
    // 16 keep-alive and 4 new-connection clients sending back to back.
    for i in 0..20 {
        let client = if i < 16 {
            server.client()
        } else {
            server.fresh_client()
        };
        let (url, stop, out) = (url.clone(), stop.clone(), looping.clone());
        tasks.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let sent = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(SMALL)
                    .send()
                    .await;
                if !out.record(sent).await {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        });
    }
    // 40 kept-alive connections, idle after one request, each sending its next one within
    // ±10 ms of the drain's end.
    let drain = Duration::from_secs(drain_secs);
    let sigterm_at = tokio::time::Instant::now() + Duration::from_secs(1);
    for i in 0..40u64 {
        let client = server.client();
        let (url, out) = (url.clone(), idle.clone());
        tasks.spawn(async move {
            let first = client.post(&url).body(SMALL).send().await;
            out.record(first).await;
            let at =
                sigterm_at + drain - Duration::from_millis(10) + Duration::from_micros(i * 500);
            tokio::time::sleep_until(at).await;
            let second = client.post(&url).body(SMALL).send().await;
            out.record(second).await;
        });
    }
    tokio::time::sleep_until(sigterm_at).await;
    server.sigterm();
    let exit_deadline = Instant::now() + Duration::from_secs(40);
    let status = loop {
        if let Some(status) = server.child.try_wait()? {
            break status;
        }
        anyhow::ensure!(Instant::now() < exit_deadline, "the server did not exit");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let exited_after = sigterm_at.elapsed();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    while tasks.join_next().await.is_some() {}
    println!(
        "drain run {run}: exit {status} {:.2} s after SIGTERM; looping clients: {}; idle connections sending at the drain's end: {}",
        exited_after.as_secs_f64(),
        looping.line(),
        idle.line()
    );
    Ok(())
}

// Large bodies ------------------------------------------------------------------------------------

async fn bodies_run(
    bin: &PathBuf,
    concurrency: usize,
    length: Duration,
    probe_rate: u64,
    shape: Shape,
    control: bool,
) -> anyhow::Result<()> {
    let server = Arc::new(Server::start(bin, &[]).await?);
    let control = match control {
        true => Some(Server::start(bin, &[]).await?),
        false => None,
    };
    let url = server.url("/mutate");
    let body = large_review(LARGE_BYTES, shape);
    let (rss_before, _) = server.memory();

    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (server, stop, peak) = (server.clone(), stop.clone(), peak.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let (rss, _) = server.memory();
                peak.fetch_max((rss * 1024.0) as u64, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let probing = probe_on_own_thread(server.client(), url.clone(), probe_rate, stop.clone());
    let control_probing = control
        .as_ref()
        .map(|c| probe_on_own_thread(c.client(), c.url("/mutate"), probe_rate, stop.clone()));
    let statuses: Arc<[AtomicU64; 6]> = Arc::new(Default::default());
    let mut attackers = JoinSet::new();
    let deadline = tokio::time::Instant::now() + length;
    for _ in 0..concurrency {
        let client = server.client();
        let (url, body, statuses) = (url.clone(), body.clone(), statuses.clone());
        attackers.spawn(async move {
            while tokio::time::Instant::now() < deadline {
                let sent = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .timeout(Duration::from_secs(30))
                    .send()
                    .await;
                let slot = match sent {
                    Ok(r) => {
                        let code = r.status().as_u16();
                        let _ = r.bytes().await;
                        match code {
                            200 => 0,
                            413 => 1,
                            429 => 2,
                            503 => 3,
                            _ => 4,
                        }
                    }
                    Err(_) => 5,
                };
                statuses[slot].fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    tokio::time::sleep_until(deadline).await;
    // The prober stops with the attack; attackers finish the request they are in.
    stop.store(true, Ordering::Relaxed);
    let mut probed = probing.join().expect("prober");
    let control_line = match control_probing {
        Some(p) => format!(
            "; the same beside it to a server nobody attacks (control): {}",
            p.join().expect("control prober").summary()
        ),
        None => String::new(),
    };
    let _ = tokio::time::timeout(Duration::from_secs(60), async {
        while attackers.join_next().await.is_some() {}
    })
    .await;
    sampler.await?;
    let (rss_end, hwm) = server.memory();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (rss_settled, _) = server.memory();
    let s: Vec<u64> = statuses.iter().map(|a| a.load(Ordering::Relaxed)).collect();
    println!(
        "bodies c={concurrency} ({:.1} MiB each, {shape:?}, {} s): VmHWM {hwm:.1} MiB (sampled peak {:.1}), RSS before {rss_before:.1}, at the end {rss_end:.1}, 10 s later {rss_settled:.1} MiB; large: {} ok, {} 413, {} 429, {} 503, {} other, {} errors; small reviews at {probe_rate}/s during the attack: {}{control_line}",
        LARGE_BYTES as f64 / 1048576.0,
        length.as_secs(),
        peak.load(Ordering::Relaxed) as f64 / 1024.0,
        s[0],
        s[1],
        s[2],
        s[3],
        s[4],
        s[5],
        probed.summary()
    );
    Ok(())
}

// Floods ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Flood {
    /// Each connection sends a small review every 3 s.
    KeepAlive,
    /// Each connection completes the TLS handshake and sends nothing.
    IdleTls,
}

async fn flood_run(
    bin: &PathBuf,
    kind: Flood,
    connections: usize,
    length: Duration,
) -> anyhow::Result<()> {
    let server = Arc::new(Server::start(bin, &[]).await?);
    let tls = server.tls();
    let stop = Arc::new(AtomicBool::new(false));
    let (opened, flood_requests) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut flooders = JoinSet::new();
    for i in 0..connections {
        let (server, tls, stop) = (server.clone(), tls.clone(), stop.clone());
        let (opened, flood_requests) = (opened.clone(), flood_requests.clone());
        flooders.spawn(async move {
            // Spread the connections' phases over the 3 s period.
            tokio::time::sleep(Duration::from_micros((i as u64 * 2_700) % 3_000_000)).await;
            while !stop.load(Ordering::Relaxed) {
                let Ok(Ok(mut s)) =
                    tokio::time::timeout(Duration::from_secs(10), server.tls_connect(&tls)).await
                else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                opened.fetch_add(1, Ordering::Relaxed);
                match kind {
                    Flood::KeepAlive => loop {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        let head = post_head(SMALL.len());
                        match exchange(&mut s, &head, SMALL.as_bytes()).await {
                            Ok(_) => flood_requests.fetch_add(1, Ordering::Relaxed),
                            Err(_) => break,
                        };
                        tokio::time::sleep(Duration::from_secs(3)).await;
                    },
                    Flood::IdleTls => {
                        // Hold the connection until the server closes it.
                        let mut buf = [0u8; 64];
                        loop {
                            tokio::select! {
                                r = s.read(&mut buf) => if matches!(r, Ok(0) | Err(_)) { break },
                                () = tokio::time::sleep(Duration::from_millis(200)) => {
                                    if stop.load(Ordering::Relaxed) { return; }
                                }
                            }
                        }
                    }
                }
            }
        });
    }
    // Let the flood take the slots, then probe with a new connection per small review.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let probing = {
        let (client, url, stop) = (server.fresh_client(), server.url("/mutate"), stop.clone());
        tokio::spawn(probe(client, url, 5, stop))
    };
    tokio::time::sleep(length).await;
    let (rss, hwm) = server.memory();
    stop.store(true, Ordering::Relaxed);
    let mut probed = probing.await?;
    flooders.abort_all();
    while flooders.join_next().await.is_some() {}
    println!(
        "flood {kind:?} ({connections} connections, {} s): {} connections opened, {} flood requests answered, server RSS {rss:.1} MiB (peak {hwm:.1}); new-connection small reviews at 5/s: {}",
        length.as_secs(),
        opened.load(Ordering::Relaxed),
        flood_requests.load(Ordering::Relaxed),
        probed.summary()
    );
    Ok(())
}

// Everything at once ----------------------------------------------------------------------------

async fn mix_run(
    bin: &PathBuf,
    length: Duration,
    per_shape: usize,
    idle: usize,
) -> anyhow::Result<()> {
    let server = Arc::new(Server::start(bin, &[]).await?);
    let tls = server.tls();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = JoinSet::new();
    for _ in 0..idle {
        let (server, tls, stop) = (server.clone(), tls.clone(), stop.clone());
        tasks.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let Ok(Ok(mut s)) =
                    tokio::time::timeout(Duration::from_secs(10), server.tls_connect(&tls)).await
                else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let mut buf = [0u8; 64];
                loop {
                    tokio::select! {
                        r = s.read(&mut buf) => if matches!(r, Ok(0) | Err(_)) { break },
                        () = tokio::time::sleep(Duration::from_millis(200)) => {
                            if stop.load(Ordering::Relaxed) { return; }
                        }
                    }
                }
            }
        });
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let url = server.url("/mutate");
    let probing = probe_on_own_thread(server.client(), url.clone(), 100, stop.clone());
    let statuses: Arc<[AtomicU64; 6]> = Arc::new(Default::default());
    let shapes = [
        (Shape::Annotation, LARGE_BYTES),
        (Shape::Env, 1024 * 1024),
        (Shape::Containers, 64 * 1024),
    ];
    for (shape, size) in shapes {
        let body = large_review(size, shape);
        for _ in 0..per_shape {
            let (client, url, body) = (server.client(), url.clone(), body.clone());
            let (stop, statuses) = (stop.clone(), statuses.clone());
            tasks.spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let sent = client.post(&url).body(body.clone()).send().await;
                    let slot = match sent {
                        Ok(r) => {
                            let code = r.status().as_u16();
                            let _ = r.bytes().await;
                            match code {
                                200 => 0,
                                413 => 1,
                                429 => 2,
                                503 => 3,
                                _ => 4,
                            }
                        }
                        Err(_) => 5,
                    };
                    statuses[slot].fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    }
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (server, stop, peak) = (server.clone(), stop.clone(), peak.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let (rss, _) = server.memory();
                peak.fetch_max((rss * 1024.0) as u64, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    tokio::time::sleep(length).await;
    stop.store(true, Ordering::Relaxed);
    let mut probed = probing.join().expect("prober");
    sampler.await?;
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    let (rss_end, hwm) = server.memory();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (rss_settled, _) = server.memory();
    let s: Vec<u64> = statuses.iter().map(|a| a.load(Ordering::Relaxed)).collect();
    println!(
        "mix ({idle} idle TLS connections, {per_shape} clients each of 5.9 MiB annotation / 1 MiB env / 64 KiB containers reviews, {} s): VmHWM {hwm:.1} MiB (sampled peak {:.1}), at the end {rss_end:.1}, 10 s later {rss_settled:.1} MiB; large: {} ok, {} 413, {} 429, {} 503, {} other, {} errors; small reviews at 100/s: {}",
        length.as_secs(),
        peak.load(Ordering::Relaxed) as f64 / 1024.0,
        s[0],
        s[1],
        s[2],
        s[3],
        s[4],
        s[5],
        probed.summary()
    );
    Ok(())
}

// Oversized Content-Length ----------------------------------------------------------------------

async fn oversize_run(bin: &PathBuf) -> anyhow::Result<()> {
    let server = Server::start(bin, &[]).await?;
    let tls = server.tls();
    for _ in 0..3 {
        let mut s = server.tls_connect(&tls).await?;
        let start = Instant::now();
        let status = tokio::time::timeout(
            Duration::from_secs(30),
            exchange(&mut s, &post_head(100 * 1024 * 1024), b""),
        )
        .await;
        let answer = match status {
            Ok(Ok(code)) => code.to_string(),
            Ok(Err(e)) => format!("error: {e}"),
            Err(_) => "nothing within 30 s".into(),
        };
        println!(
            "oversize: Content-Length 100 MiB, no body: {answer} after {:.1} ms",
            start.elapsed().as_secs_f64() * 1e3
        );
    }
    Ok(())
}

// Throughput -------------------------------------------------------------------------------------

async fn throughput_run(bin: &PathBuf, round: usize, length: Duration) -> anyhow::Result<()> {
    let server = Server::start(bin, &[]).await?;
    let url = server.url("/mutate");
    let cpu_before = server.cpu();
    let deadline = tokio::time::Instant::now() + length;
    let mut tasks = JoinSet::new();
    for _ in 0..16 {
        let (client, url) = (server.client(), url.clone());
        tasks.spawn(async move {
            let mut lat = Latencies::default();
            while tokio::time::Instant::now() < deadline {
                let start = Instant::now();
                let answered = match client.post(&url).body(SMALL).send().await {
                    Ok(r) if r.status() == 200 => r.bytes().await.is_ok(),
                    _ => false,
                };
                if answered {
                    lat.ok.push(start.elapsed());
                } else {
                    lat.failed += 1;
                }
            }
            lat
        });
    }
    let mut all = Latencies::default();
    while let Some(lat) = tasks.join_next().await {
        let lat = lat?;
        all.ok.extend(lat.ok);
        all.failed += lat.failed;
    }
    let (rss, hwm) = server.memory();
    let cpu = server.cpu().saturating_sub(cpu_before);
    println!(
        "throughput round {round} {}: {:.0} req/s, server CPU {:.1} µs/request; {}; RSS {rss:.1} MiB (peak {hwm:.1})",
        bin.display(),
        all.ok.len() as f64 / length.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / all.ok.len().max(1) as f64,
        all.summary()
    );
    Ok(())
}
