//! `podgrace prestop --drain adaptive` against real traffic: a server in a pod's network
//! namespace, clients in another namespace, a prober in a third ("node") one, all over veth
//! links the test makes. The helper runs as the real binary, as user 65532 with no
//! capabilities, as Pod Security `restricted` leaves a container; it reads the kernel's sockets
//! (no mock of the kernel anywhere). Bounds: min 2 s, quiet 2 s, max 8 s.

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::child;
use common::netns::Net;
use common::tiny_http::{self, request};

const PORT: u16 = 8080;
const MIN: f64 = 2.0;
const QUIET: f64 = 2.0;
const MAX: f64 = 8.0;
/// A tick of the helper, and the time to start a process.
const SLACK: f64 = 0.5;

/// A small HTTP/1.1 server with keep-alive on :8080, one thread per connection.
fn serve(net: &Net) {
    serve_on(net, PORT);
}

fn serve_on(net: &Net, port: u16) {
    let ready = std::sync::mpsc::channel();
    let tx = ready.0;
    Net::spawn(&net.pod, move || {
        let listener = TcpListener::bind(("0.0.0.0", port)).unwrap();
        tx.send(()).unwrap();
        // Runs until the test process ends; the namespace goes with the test.
        tiny_http::serve(listener, Arc::new(AtomicBool::new(false)));
    });
    ready
        .1
        .recv_timeout(Duration::from_secs(5))
        .expect("server up");
}

/// A client in `peer`'s namespace opening a new connection per request every `every`, until
/// `stop` (or for ever); returns the time of its last answered request.
fn new_connection_client(
    net: &Net,
    peer: &str,
    every: Duration,
    until: Option<Instant>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Option<Instant>> {
    client_of(net, peer, PORT, every, until, stop)
}

fn client_of(
    net: &Net,
    peer: &str,
    port: u16,
    every: Duration,
    until: Option<Instant>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Option<Instant>> {
    let target = net.pod_addr(peer, port);
    Net::spawn(&net.peer(peer).name, move || {
        let mut last = None;
        while !stop.load(Ordering::Relaxed) && until.is_none_or(|u| Instant::now() < u) {
            if let Ok(mut s) = TcpStream::connect_timeout(&target, Duration::from_secs(1))
                && request(&mut s)
            {
                last = Some(Instant::now());
            }
            std::thread::sleep(every);
        }
        last
    })
}

/// The helper's run: how long it took and its report line.
struct Drained {
    seconds: f64,
    report: String,
    started: Instant,
}

fn drain(net: &Net, extra: &[&str], deny_netlink: bool) -> Drained {
    let port = PORT.to_string();
    let mut args = vec!["--port", port.as_str()];
    args.extend_from_slice(extra);
    drain_with(net, &args, deny_netlink)
}

/// The helper with exactly `extra` after its bounds: without `--port`, as the engine writes it,
/// every listening port counts but `--ignore-port`.
fn drain_with(net: &Net, extra: &[&str], deny_netlink: bool) -> Drained {
    let dir = tempfile::tempdir().unwrap();
    // The helper runs as 65532: its report file must be writable for it.
    let report = dir.path().join("report");
    std::fs::write(&report, "").unwrap();
    std::fs::set_permissions(&report, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
    let mut cmd = Net::command(&net.pod, common::BIN);
    cmd.args(["prestop", "--drain", "adaptive"])
        .args(["--drain-min", "2", "--drain-quiet", "2", "--drain-max", "8"])
        .arg("--report-to")
        .arg(&report)
        .args(extra);
    if deny_netlink {
        Net::deny_netlink(&mut cmd);
    }
    let started = Instant::now();
    let out = child::output_within(&mut cmd, None, Duration::from_secs(30));
    let seconds = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let report = std::fs::read_to_string(&report).unwrap();
    assert_eq!(
        report.trim(),
        stderr.trim(),
        "the container output gets the stderr line"
    );
    eprintln!("{seconds:.2}s: {}", report.trim());
    Drained {
        seconds,
        report,
        started,
    }
}

fn between(d: &Drained, low: f64, high: f64) {
    assert!(
        (low..=high).contains(&d.seconds),
        "drained {:.2}s, expected {low}-{high}s: {}",
        d.seconds,
        d.report
    );
}

#[test]
fn without_traffic_the_drain_ends_at_its_minimum() {
    let net = Net::new(&["client"]);
    serve(&net);
    let d = drain(&net, &[], false);
    between(&d, MIN, MIN + SLACK);
    assert!(d.report.contains("no traffic"), "{}", d.report);
}

#[test]
fn the_drain_ends_a_quiet_period_after_the_last_request() {
    let net = Net::new(&["client"]);
    serve(&net);
    let stop = Arc::new(AtomicBool::new(false));
    // Requests on new connections, 20 a second, for 4 s from now.
    let until = Instant::now() + Duration::from_secs(4);
    let client =
        new_connection_client(&net, "client", Duration::from_millis(50), Some(until), stop);
    let d = drain(&net, &[], false);
    let last = client.join().unwrap().expect("requests answered");
    let last = last.duration_since(d.started).as_secs_f64();
    assert!(last > 3.5, "traffic ran until {last:.2}s");
    between(&d, last + QUIET - 0.1, last + QUIET + SLACK);
    assert!(d.report.contains("quiet since"), "{}", d.report);
}

#[test]
fn idle_keep_alive_connections_do_not_hold_the_drain() {
    let net = Net::new(&["client"]);
    serve(&net);
    let target = net.pod_addr("client", PORT);
    // Five pooled connections, each used once, then held open and idle.
    let held = Net::spawn(&net.peer("client").name, move || {
        let mut pool: Vec<TcpStream> = (0..5)
            .map(|_| TcpStream::connect(target).unwrap())
            .collect();
        for s in &mut pool {
            assert!(request(s));
        }
        pool
    })
    .join()
    .unwrap();
    std::thread::sleep(Duration::from_millis(QUIET as u64 * 1000));
    let d = drain(&net, &[], false);
    between(&d, MIN, MIN + QUIET + SLACK);
    drop(held);
}

#[test]
fn probes_from_the_node_every_second_do_not_hold_the_drain() {
    let net = Net::new(&["node"]);
    serve(&net);
    let stop = Arc::new(AtomicBool::new(false));
    // The kubelet's httpGet probe: a new connection, one small request, once a second.
    let prober = new_connection_client(&net, "node", Duration::from_secs(1), None, stop.clone());
    let d = drain(&net, &["--probe", "8080:1"], false);
    stop.store(true, Ordering::Relaxed);
    prober.join().unwrap().expect("probes answered");
    between(&d, MIN, MIN + QUIET + SLACK);
}

#[test]
fn the_same_probes_count_as_traffic_when_no_probe_is_declared() {
    // The proof that the probe rule does the work above.
    let net = Net::new(&["node"]);
    serve(&net);
    let stop = Arc::new(AtomicBool::new(false));
    let prober = new_connection_client(&net, "node", Duration::from_secs(1), None, stop.clone());
    let d = drain(&net, &[], false);
    stop.store(true, Ordering::Relaxed);
    prober.join().unwrap();
    between(&d, MAX, MAX + SLACK);
}

#[test]
fn steady_traffic_holds_the_drain_to_its_maximum() {
    let net = Net::new(&["client"]);
    serve(&net);
    let stop = Arc::new(AtomicBool::new(false));
    let client = new_connection_client(
        &net,
        "client",
        Duration::from_millis(50),
        None,
        stop.clone(),
    );
    let d = drain(&net, &[], false);
    stop.store(true, Ordering::Relaxed);
    client.join().unwrap();
    between(&d, MAX, MAX + SLACK);
    assert!(d.report.contains("maximum reached"), "{}", d.report);
}

#[test]
fn traffic_from_the_node_address_beyond_the_probes_cadence_is_counted() {
    // A NodePort client (SNAT to the node's address) on the probed port: its connections
    // exceed what the probe makes, so they count.
    let net = Net::new(&["node"]);
    serve(&net);
    let stop = Arc::new(AtomicBool::new(false));
    let client = new_connection_client(&net, "node", Duration::from_millis(50), None, stop.clone());
    let d = drain(&net, &["--probe", "8080:1"], false);
    stop.store(true, Ordering::Relaxed);
    client.join().unwrap();
    between(&d, MAX, MAX + SLACK);
}

/// A container of the pod calling the app on localhost, 20 times a second, until `stop`.
fn loopback_sidecar(net: &Net, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    Net::spawn(&net.pod, move || {
        while !stop.load(Ordering::Relaxed) {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", PORT)) {
                request(&mut s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })
}

/// A client that keeps sending on one connection it opened before the drain.
fn keep_alive_sender(net: &Net, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u32> {
    let target: SocketAddr = net.pod_addr("client", PORT);
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = Net::spawn(&net.peer("client").name, move || {
        let mut s = TcpStream::connect(target).unwrap();
        assert!(request(&mut s));
        tx.send(()).unwrap();
        let mut answered = 0;
        while !stop.load(Ordering::Relaxed) && request(&mut s) {
            answered += 1;
            std::thread::sleep(Duration::from_millis(50));
        }
        answered
    });
    rx.recv_timeout(Duration::from_secs(5)).unwrap();
    handle
}

#[test]
fn requests_on_an_open_connection_count_by_default() {
    let net = Net::new(&["client"]);
    serve(&net);
    let stop = Arc::new(AtomicBool::new(false));
    let sender = keep_alive_sender(&net, stop.clone());
    let d = drain(&net, &[], false);
    stop.store(true, Ordering::Relaxed);
    assert!(sender.join().unwrap() > 50);
    between(&d, MAX, MAX + SLACK);
}

#[test]
fn with_new_connections_only_an_open_connection_does_not_hold_the_drain() {
    let net = Net::new(&["client"]);
    serve(&net);
    let stop = Arc::new(AtomicBool::new(false));
    let sender = keep_alive_sender(&net, stop.clone());
    let d = drain(&net, &["--drain-traffic", "new-connections"], false);
    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    between(&d, MIN, MIN + SLACK);
}

#[test]
fn the_pods_own_loopback_traffic_is_not_counted() {
    let net = Net::new(&["client"]);
    serve(&net);
    let stop = Arc::new(AtomicBool::new(false));
    // A sidecar calling the app on localhost, 20 times a second.
    let sidecar = loopback_sidecar(&net, stop.clone());
    let d = drain(&net, &[], false);
    stop.store(true, Ordering::Relaxed);
    sidecar.join().unwrap();
    between(&d, MIN, MIN + SLACK);
}

#[test]
fn an_unreadable_traffic_source_falls_back_to_the_maximum_and_says_so() {
    let net = Net::new(&["client"]);
    serve(&net);
    let d = drain(&net, &[], true);
    between(&d, MAX, MAX + SLACK);
    assert!(
        d.report.contains("could not be read") && d.report.contains("sock_diag"),
        "{}",
        d.report
    );
}

#[test]
fn every_listening_port_counts_but_the_ignored_ones() {
    // An app declaring HTTP on 8080 that serves Dubbo on 20880, and metrics on 9090.
    let net = Net::new(&["client"]);
    serve(&net);
    serve_on(&net, 20880);
    serve_on(&net, 9090);
    let stop = Arc::new(AtomicBool::new(false));
    let scraper = client_of(
        &net,
        "client",
        9090,
        Duration::from_millis(100),
        None,
        stop.clone(),
    );
    let quiet = drain_with(&net, &["--ignore-port", "9090"], false);
    between(&quiet, MIN, MIN + SLACK);
    assert!(
        quiet.report.contains("ports 8080,20880"),
        "{}",
        quiet.report
    );
    let dubbo = client_of(
        &net,
        "client",
        20880,
        Duration::from_millis(50),
        None,
        stop.clone(),
    );
    let busy = drain_with(&net, &["--ignore-port", "9090"], false);
    stop.store(true, Ordering::Relaxed);
    scraper.join().unwrap();
    dubbo.join().unwrap();
    between(&busy, MAX, MAX + SLACK);
}

#[test]
fn a_dual_stack_listener_sees_ipv4_clients_as_mapped_addresses_and_counts_them() {
    // Java and Go servers listen on [::] by default: IPv4 clients appear in the kernel's IPv6
    // table as ::ffff:a.b.c.d, and loopback as ::ffff:127.0.0.1.
    let net = Net::new(&["client"]);
    let (tx, rx) = std::sync::mpsc::channel();
    Net::spawn(&net.pod, move || {
        let listener = TcpListener::bind(("::", PORT)).unwrap();
        tx.send(()).unwrap();
        tiny_http::serve(listener, Arc::new(AtomicBool::new(false)));
    });
    rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let sidecar = loopback_sidecar(&net, stop.clone());
    let quiet = drain(&net, &[], false);
    between(&quiet, MIN, MIN + SLACK);
    let client = new_connection_client(
        &net,
        "client",
        Duration::from_millis(50),
        None,
        stop.clone(),
    );
    let busy = drain(&net, &[], false);
    stop.store(true, Ordering::Relaxed);
    client.join().unwrap();
    sidecar.join().unwrap();
    between(&busy, MAX, MAX + SLACK);
}
