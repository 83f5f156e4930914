//! A simulated rollout, to measure what the adaptive drain is worth: the real
//! `podgrace prestop` in real network namespaces, against a client that balances over its own
//! instance list, re-read every 15 s as Nacos and Ribbon clients do (BRIEF.md §2b).
//!
//! Set-up: three old "pods" and three new ones, each a network namespace with a small HTTP
//! server on :8080, reached by the client over its own veth link. The client sends a fixed rate
//! of requests, round-robin over the list it last read from the "registry". One rollout step at
//! a time: the new pod joins the registry, the old pod leaves it and runs its preStop (the
//! drain, as user 65532 without capabilities), then gets SIGTERM and exits at once (listener
//! and connections closed: an app without graceful shutdown). A request to a pod that has
//! exited is lost. Needs root (network namespaces) and iproute2.
//!
//! ```sh
//! cargo build --bin podgrace --example rollout
//! target/debug/examples/rollout                       # fixed 5 s, fixed 35 s, adaptive
//! target/debug/examples/rollout --keep-alive          # pooled connections, as HTTP clients keep
//! target/debug/examples/rollout --modes adaptive,adaptive-new-connections --keep-alive
//! ```
//!
//! The client's list refresh has the same phase in every run (7.5 s after the start, then
//! every 15 s), so the modes meet the same registry timing. Figures: bench/results/rollout.md.

#[path = "../tests/common/child.rs"]
#[allow(dead_code)]
mod child;
#[path = "../tests/common/netns.rs"]
mod netns;
#[path = "../tests/common/tiny_http.rs"]
mod tiny_http;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use netns::Net;
use tiny_http::request;

const PORT: u16 = 8080;
const PODS: usize = 3;

#[derive(Parser)]
struct Args {
    /// Drain modes to compare: fixed-5, fixed-35, adaptive, adaptive-new-connections.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "fixed-5,fixed-35,adaptive"
    )]
    modes: Vec<String>,
    /// Requests per second.
    #[arg(long, default_value_t = 200)]
    rate: u32,
    /// Seconds between the client's reads of the registry.
    #[arg(long, default_value_t = 15)]
    refresh: u64,
    /// Pooled keep-alive connections instead of one connection per request.
    #[arg(long)]
    keep_alive: bool,
    /// The podgrace binary.
    #[arg(long, default_value = "target/debug/podgrace")]
    podgrace: PathBuf,
}

/// A pod's app: exits at once.
struct Server {
    stop: Arc<AtomicBool>,
}

impl Server {
    fn start(ns: &str) -> Server {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let flag = stop.clone();
        Net::spawn(ns, move || {
            let listener = TcpListener::bind(("0.0.0.0", PORT)).unwrap();
            tx.send(()).unwrap();
            tiny_http::serve(listener, flag);
        });
        rx.recv().unwrap();
        Server { stop }
    }

    /// SIGTERM to an app that exits at once: the listener and every connection close.
    fn exit(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Per pod: workers in its client namespace that carry out the requests sent to it.
fn workers(
    net: &Net,
    keep_alive: bool,
    ok: Arc<AtomicU64>,
    lost: Arc<AtomicU64>,
) -> mpsc::Sender<()> {
    let (tx, rx) = mpsc::channel::<()>();
    let rx = Arc::new(Mutex::new(rx));
    let target: SocketAddr = net.pod_addr("client", PORT);
    for _ in 0..8 {
        let (rx, ok, lost) = (rx.clone(), ok.clone(), lost.clone());
        Net::spawn(&net.peer("client").name, move || {
            let mut pooled: Option<TcpStream> = None;
            loop {
                let next = rx.lock().unwrap().recv();
                if next.is_err() {
                    return;
                }
                let mut answered = false;
                // A pooled connection that the server closed is retried once on a new one,
                // as HTTP clients do for a stale connection.
                for _ in 0..2 {
                    let mut s = match pooled.take() {
                        Some(s) => s,
                        None => match TcpStream::connect_timeout(&target, Duration::from_secs(1)) {
                            Ok(s) => {
                                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                                s
                            }
                            Err(_) => break,
                        },
                    };
                    if request(&mut s) {
                        answered = true;
                        if keep_alive {
                            pooled = Some(s);
                        }
                        break;
                    }
                }
                if answered { &ok } else { &lost }.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    tx
}

struct Run {
    mode: String,
    ok: u64,
    lost: u64,
    drains: Vec<f64>,
    lines: Vec<String>,
}

fn rollout(args: &Args, mode: &str) -> Run {
    let nets: Vec<Net> = (0..2 * PODS).map(|_| Net::new(&["client"])).collect();
    let servers: Vec<Server> = nets.iter().map(|n| Server::start(&n.pod)).collect();
    let (ok, lost) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let senders: Vec<mpsc::Sender<()>> = nets
        .iter()
        .map(|n| workers(n, args.keep_alive, ok.clone(), lost.clone()))
        .collect();
    let registry = Arc::new(Mutex::new((0..PODS).collect::<Vec<usize>>()));
    let done = Arc::new(AtomicBool::new(false));
    // The client: a fixed rate, round-robin over the list it last read.
    let client = {
        let (registry, done, rate, refresh) =
            (registry.clone(), done.clone(), args.rate, args.refresh);
        std::thread::spawn(move || {
            let start = Instant::now();
            let mut list = registry.lock().unwrap().clone();
            let mut next_refresh = start + Duration::from_millis(refresh * 500);
            let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
            let mut i = 0usize;
            let mut tick = start;
            while !done.load(Ordering::Relaxed) {
                let now = Instant::now();
                if now >= next_refresh {
                    list = registry.lock().unwrap().clone();
                    next_refresh += Duration::from_secs(refresh);
                }
                let pod = list[i % list.len()];
                i += 1;
                let _ = senders[pod].send(());
                tick += interval;
                std::thread::sleep(tick.saturating_duration_since(Instant::now()));
            }
        })
    };
    std::thread::sleep(Duration::from_secs(2));
    let mut drains = Vec::new();
    let mut lines = Vec::new();
    for k in 0..PODS {
        {
            let mut r = registry.lock().unwrap();
            r.push(PODS + k);
            r.retain(|&p| p != k);
        }
        let mut cmd = Net::command(&nets[k].pod, &args.podgrace);
        cmd.args(["prestop", "--report-to", "/dev/null"]);
        match mode {
            "fixed-5" => cmd.args(["--sleep", "5"]),
            "fixed-35" => cmd.args(["--sleep", "35"]),
            "adaptive" | "adaptive-new-connections" => cmd
                .args([
                    "--drain",
                    "adaptive",
                    "--drain-min",
                    "2",
                    "--drain-quiet",
                    "3",
                ])
                .args(["--drain-max", "35", "--port", "8080"])
                .args(if mode == "adaptive" {
                    ["--drain-traffic", "all"]
                } else {
                    ["--drain-traffic", "new-connections"]
                }),
            other => panic!("unknown mode {other}"),
        };
        let started = Instant::now();
        let out = child::output_within(&mut cmd, None, Duration::from_secs(60));
        drains.push(started.elapsed().as_secs_f64());
        lines.extend(
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .map(str::to_owned),
        );
        servers[k].exit();
        std::thread::sleep(Duration::from_secs(1));
    }
    // Long enough for the client's last refresh to forget the last old pod.
    std::thread::sleep(Duration::from_secs(args.refresh + 1));
    done.store(true, Ordering::Relaxed);
    client.join().unwrap();
    std::thread::sleep(Duration::from_secs(3));
    for s in &servers {
        s.exit();
    }
    Run {
        mode: mode.to_owned(),
        ok: ok.load(Ordering::Relaxed),
        lost: lost.load(Ordering::Relaxed),
        drains,
        lines,
    }
}

fn main() {
    let args = Args::parse();
    // Thousands of short connections a minute, on both ends, in one process.
    podgrace_test_process::raise_open_files_limit().expect("raising the open files limit");
    println!(
        "rollout: {PODS} pods, {} req/s, client list refresh {} s, {}",
        args.rate,
        args.refresh,
        if args.keep_alive {
            "pooled keep-alive connections"
        } else {
            "one connection per request"
        }
    );
    println!(
        "{:<26} {:>9} {:>6} {:>8}  drains (s)",
        "mode", "requests", "lost", "lost %"
    );
    for mode in &args.modes {
        let r = rollout(&args, mode);
        let total = r.ok + r.lost;
        let drains: Vec<String> = r.drains.iter().map(|d| format!("{d:.1}")).collect();
        println!(
            "{:<26} {:>9} {:>6} {:>7.2}%  {}",
            r.mode,
            total,
            r.lost,
            100.0 * r.lost as f64 / total.max(1) as f64,
            drains.join(", ")
        );
        for l in r.lines.iter().filter(|l| l.contains("drain ended")) {
            println!("    {l}");
        }
    }
}
