//! The server under stress, against the real binary over verified TLS on loopback: SIGTERM while
//! clients send across the end of the drain, kept-alive connections at the drain's start, dozens
//! of large bodies at once (memory, and the small reviews meanwhile), an oversized declared
//! length, connection slots held by idle or stalled clients, and pipelined requests across
//! SIGTERM. Every test is bounded in requests and in time, and fails on a timeout rather than
//! hanging.

mod common;

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::binary::*;
use common::https::*;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

/// The tests measure time and memory: they run one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn small_review() -> String {
    read_fixture("admission/pod-create-kubectl-apply.json")
}

/// A pod review of `size` bytes, most of it one annotation (which the decoder keeps).
fn large_review(size: usize) -> Bytes {
    let mut review: serde_json::Value = serde_json::from_str(&small_review()).unwrap();
    review["request"]["object"]["metadata"]["annotations"]["test.podgrace.io/filler"] =
        serde_json::Value::String("x".repeat(size - 4096));
    let mut out = serde_json::to_vec(&review).unwrap();
    out.resize(size, b' ');
    Bytes::from(out)
}

/// 5.9 MiB, under the default 6 MiB body limit.
const LARGE: usize = 6_186_598;

/// Fails the test if `f` takes longer than `limit`.
async fn within<T>(limit: Duration, what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: not done within {limit:?}"))
}

/// How requests sent across a SIGTERM ended.
#[derive(Default)]
struct Outcomes {
    answered: AtomicU64,
    /// Refused before the request was sent (connection refused, or closed during the TLS
    /// handshake): the client can send it to another replica.
    refused: AtomicU64,
    /// Sent and never answered.
    lost: AtomicU64,
}

impl Outcomes {
    /// Records one request's outcome; whether it was sent.
    async fn record(&self, sent: reqwest::Result<reqwest::Response>) -> bool {
        let counter = match sent {
            Ok(r) if r.status() == 200 => match r.text().await {
                Ok(t) if t.contains("patch") => &self.answered,
                _ => &self.lost,
            },
            Err(e) if e.is_connect() => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                return false;
            }
            _ => &self.lost,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        true
    }

    fn counts(&self) -> (u64, u64, u64) {
        (
            self.answered.load(Ordering::Relaxed),
            self.refused.load(Ordering::Relaxed),
            self.lost.load(Ordering::Relaxed),
        )
    }
}

/// One SIGTERM under load: keep-alive and new-connection clients sending back to back until the
/// process is gone, and kept-alive connections, idle since before the signal, each sending its
/// next request within ±10 ms of the drain's end.
async fn one_drain(run: usize) {
    let mut hook = Webhook::start(
        &["--drain-seconds", "1", "--log-format", "text"],
        Stdio::null(),
    )
    .await;
    let url = hook.url("/mutate");
    let body = small_review();
    let stop = Arc::new(AtomicBool::new(false));
    let (looping, idle) = (Arc::new(Outcomes::default()), Arc::new(Outcomes::default()));
    let mut clients = JoinSet::new();
    for i in 0..8 {
        let client = if i < 6 {
            client(&[&hook.ca])
        } else {
            fresh_connection_client(&[&hook.ca])
        };
        let (url, body, stop, out) = (url.clone(), body.clone(), stop.clone(), looping.clone());
        clients.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if !out
                    .record(client.post(&url).body(body.clone()).send().await)
                    .await
                {
                    // Refused: the listener is closed; do not spin.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        });
    }
    let sigterm_at = tokio::time::Instant::now() + Duration::from_millis(500);
    let drain_end = sigterm_at + Duration::from_secs(1);
    for i in 0..12u64 {
        let client = client(&[&hook.ca]);
        let (url, body, out) = (url.clone(), body.clone(), idle.clone());
        clients.spawn(async move {
            out.record(client.post(&url).body(body.clone()).send().await)
                .await;
            let at = drain_end - Duration::from_millis(10) + Duration::from_micros(i * 1_700);
            tokio::time::sleep_until(at).await;
            out.record(client.post(&url).body(body).send().await).await;
        });
    }
    tokio::time::sleep_until(sigterm_at).await;
    hook.sigterm();
    let status = hook.exited(Duration::from_secs(15)).await;
    assert!(status.success(), "run {run}: exit status {status}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.store(true, Ordering::Relaxed);
    while clients.join_next().await.is_some() {}
    let (answered, refused, lost) = looping.counts();
    assert_eq!(
        lost, 0,
        "run {run}: back-to-back clients lost {lost} requests ({answered} answered, {refused} refused)"
    );
    assert!(answered > 30, "run {run}: only {answered} answered");
    let (answered, refused, lost) = idle.counts();
    assert_eq!(
        lost, 0,
        "run {run}: idle connections lost {lost} requests at the drain's end ({answered} answered, {refused} refused)"
    );
    assert_eq!(answered + refused, 24, "run {run}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_loses_no_request_of_clients_sending_across_the_end_of_the_drain() {
    let _serial = SERIAL.lock().await;
    for run in 1..=3 {
        within(Duration::from_secs(30), "a drain", one_drain(run)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_sigterm_on_answers_close_their_connection_and_idle_ones_are_closed_at_once() {
    let _serial = SERIAL.lock().await;
    let mut hook = Webhook::start(
        &["--drain-seconds", "3", "--log-format", "text"],
        Stdio::null(),
    )
    .await;
    let body = small_review();
    let head = post_head(body.len());
    // Kept-alive connections, idle after one answer, and one that never sent a request.
    let mut idle = Vec::new();
    for _ in 0..4 {
        let mut conn = hook.connect().await;
        let answer = exchange(&mut conn, &head, body.as_bytes()).await.unwrap();
        assert_eq!(answer.status, 200);
        assert!(
            !answer.closes(),
            "before SIGTERM connections are kept alive"
        );
        idle.push(conn);
    }
    idle.push(hook.connect().await);
    // Idle for longer than the drain's quiet period before the signal, except one connection
    // whose last answer comes just before it.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut busy = hook.connect().await;
    let answer = exchange(&mut busy, &head, body.as_bytes()).await.unwrap();
    assert!(!answer.closes());

    let sigterm = Instant::now();
    hook.sigterm();
    let mut closed = JoinSet::new();
    for mut conn in idle {
        closed.spawn(async move {
            let mut buf = [0u8; 64];
            // EOF (after the TLS close_notify), or an error: either way, closed.
            let _ = conn.read(&mut buf).await;
            sigterm.elapsed()
        });
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let answer = within(
        Duration::from_secs(2),
        "an answer during the drain",
        async { exchange(&mut busy, &head, body.as_bytes()).await.unwrap() },
    )
    .await;
    assert_eq!(answer.status, 200);
    assert!(answer.closes(), "{}", answer.head);
    let mut buf = [0u8; 64];
    let after = within(
        Duration::from_secs(2),
        "the close after the answer",
        busy.read(&mut buf),
    )
    .await;
    assert!(
        matches!(after, Ok(0) | Err(_)),
        "the connection closes after its answer"
    );
    while let Some(elapsed) = closed.join_next().await {
        let elapsed = elapsed.unwrap();
        assert!(
            elapsed < Duration::from_millis(1500),
            "an idle connection stayed open {elapsed:?} into a 3 s drain"
        );
    }
    // Still accepting during the drain.
    let late = client(&[&hook.ca])
        .post(hook.url("/mutate"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(late.status(), 200);
    assert_eq!(late.headers()["connection"], "close");
    let status = hook.exited(Duration::from_secs(15)).await;
    assert!(status.success(), "exit status {status}");
}

/// `concurrency` clients each sending `rounds` large reviews on their own connection; the
/// statuses they got.
async fn large_body_attack(hook: &Webhook, concurrency: usize, rounds: usize) -> Vec<u16> {
    let body = large_review(LARGE);
    let mut attackers = JoinSet::new();
    for _ in 0..concurrency {
        let (client, url, body) = (client(&[&hook.ca]), hook.url("/mutate"), body.clone());
        attackers.spawn(async move {
            let mut statuses = Vec::new();
            for _ in 0..rounds {
                let sent = client.post(&url).body(body.clone()).send().await;
                statuses.push(match sent {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let _ = r.bytes().await;
                        status
                    }
                    Err(_) => 0,
                });
            }
            statuses
        });
    }
    let mut statuses = Vec::new();
    while let Some(s) = attackers.join_next().await {
        statuses.extend(s.unwrap());
    }
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_bounded_with_64_large_bodies_at_once_and_is_returned_after() {
    let _serial = SERIAL.lock().await;
    let hook = Webhook::start(&["--log-format", "text"], Stdio::null()).await;
    let before = hook.memory_mib("VmRSS");
    let statuses = within(
        Duration::from_secs(40),
        "64 large reviews",
        large_body_attack(&hook, 64, 1),
    )
    .await;
    let peak = hook.memory_mib("VmHWM");
    let ok = statuses.iter().filter(|&&s| s == 200).count();
    let busy = statuses.iter().filter(|&&s| s == 429).count();
    assert_eq!(ok + busy, 64, "only 200 and 429 expected: {statuses:?}");
    // The one in flight at first is always answered.
    assert!(ok >= 1, "the budget admits some large bodies: {statuses:?}");
    // Without the budget: 420 MiB (bench/results/stress.md, "Issue 15: before and after").
    assert!(
        peak < 128.0,
        "peak RSS {peak:.1} MiB with 64 bodies of 5.9 MiB (before: {before:.1} MiB)"
    );
    // And the allocator gives it back.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let rss = hook.memory_mib("VmRSS");
        if rss < before + 16.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "RSS {rss:.1} MiB 5 s after the burst (before: {before:.1}, peak {peak:.1})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `count` small reviews at `per_second`, each timed from its scheduled start (open loop), from a
/// thread and runtime of their own so that the timings do not include waiting for the test's
/// other tasks; the latencies, sorted.
fn probe(hook: &Webhook, count: u32, per_second: u32) -> std::thread::JoinHandle<Vec<Duration>> {
    let (ca, url, body) = (hook.ca.clone(), hook.url("/mutate"), small_review());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let prober = client(&[&ca]);
            for _ in 0..4 {
                prober.post(&url).body(body.clone()).send().await.unwrap();
            }
            let mut probes = JoinSet::new();
            let start = tokio::time::Instant::now() + Duration::from_millis(500);
            for i in 0..count {
                let (prober, url, body) = (prober.clone(), url.clone(), body.clone());
                let at = start + Duration::from_secs(1) * i / per_second;
                probes.spawn(async move {
                    tokio::time::sleep_until(at).await;
                    let r = prober.post(&url).body(body).send().await.unwrap();
                    assert_eq!(r.status(), 200);
                    r.bytes().await.unwrap();
                    at.elapsed()
                });
            }
            let mut latencies = Vec::new();
            while let Some(l) = probes.join_next().await {
                latencies.push(l.unwrap());
            }
            latencies.sort();
            latencies
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_reviews_are_answered_quickly_during_a_large_body_attack() {
    let _serial = SERIAL.lock().await;
    let hook = Webhook::start(&["--log-format", "text"], Stdio::null()).await;
    let probing = probe(&hook, 100, 40);
    let statuses = within(
        Duration::from_secs(60),
        "the attack",
        large_body_attack(&hook, 8, 5),
    )
    .await;
    assert!(
        statuses.iter().all(|&s| s == 200 || s == 429),
        "{statuses:?}"
    );
    let latencies = tokio::task::spawn_blocking(move || probing.join().unwrap())
        .await
        .unwrap();
    let (p50, p99) = (latencies[49], latencies[98]);
    eprintln!("small reviews during the attack: p50 {p50:?}, p99 {p99:?}");
    // The debug build (TLS and JSON ten times slower), beside the attack's clients, on a shared
    // machine: generous bounds (measured p99 110-190 ms), yet below what waiting for the budget
    // (a second) or behind the large reviews' decoding would give. The release figures are in
    // bench/results/stress.md.
    assert!(
        p50 < Duration::from_millis(100),
        "p50 {p50:?} (p99 {p99:?})"
    );
    assert!(
        p99 < Duration::from_millis(500),
        "p99 {p99:?} (p50 {p50:?})"
    );
}

/// One large review is in flight at a time, whatever the memory budget allows: a second waits
/// for it and is refused 429 when it is not answered within the budget's wait (1 s); a small
/// review is answered meanwhile; once it is answered, its slot serves the next large one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_large_review_is_in_flight_at_a_time() {
    let _serial = SERIAL.lock().await;
    let hook = Webhook::start(&["--log-format", "text"], Stdio::null()).await;
    let len = 1024 * 1024;
    let start_slow = || async {
        let mut conn = hook.connect().await;
        conn.write_all(post_head(len).as_bytes()).await.unwrap();
        conn.write_all(&[b' '; 1000]).await.unwrap();
        conn.flush().await.unwrap();
        conn
    };
    let mut first = start_slow().await;
    // It is being read (the lane has room for 32 of them) when the second comes.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut second = start_slow().await;
    let waited = Instant::now();
    let small = client(&[&hook.ca]);
    let answer = small
        .post(hook.url("/mutate"))
        .header("content-type", "application/json")
        .body(small_review())
        .send();
    let answer = within(Duration::from_secs(2), "a small review", answer).await;
    assert_eq!(answer.unwrap().status(), 200);
    let refused = within(Duration::from_secs(3), "the 429", read_answer(&mut second))
        .await
        .unwrap();
    assert_eq!(refused.status, 429, "{}", refused.head);
    assert!(waited.elapsed() >= Duration::from_millis(900));

    // The first body arrives (spaces: not a review, 400 once read); its slot reads the next.
    first.write_all(&vec![b' '; len - 1000]).await.unwrap();
    first.flush().await.unwrap();
    let read = within(
        Duration::from_secs(3),
        "the first answer",
        read_answer(&mut first),
    )
    .await
    .unwrap();
    assert_eq!(read.status, 400, "{}", read.head);
    let mut next = hook.connect().await;
    let answer = within(
        Duration::from_secs(3),
        "a large body in the freed slot",
        exchange(&mut next, &post_head(len), &vec![b' '; len]),
    )
    .await
    .unwrap();
    assert_eq!(answer.status, 400, "{}", answer.head);
}

/// Bytes waiting in the kernel's receive queues of the server's connections on `port`
/// (`/proc/net/tcp`: `local_address` as hex `IP:PORT`, `rx_queue` in hex).
fn queued_for_server(port: u16) -> u64 {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let local = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (_, rx) = fields.get(4)?.split_once(':')?;
            fields[1]
                .ends_with(&local)
                .then(|| u64::from_str_radix(rx, 16).ok())?
        })
        .sum()
}

/// A body waiting for the budget waits in its connection's receive queue in the kernel, which
/// is bounded too: with the large-review slot held, 20 clients sending 5.9 MiB bodies leave
/// at most a window each queued, where Linux's autotuning would let each queue take the body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_waiting_for_the_budget_hold_little_kernel_memory() {
    let _serial = SERIAL.lock().await;
    let hook = Webhook::start(&["--log-format", "text"], Stdio::null()).await;
    let mut held = Vec::new();
    for _ in 0..podgrace::server::body_budget::LARGE_AT_ONCE {
        let mut conn = hook.connect().await;
        conn.write_all(post_head(1024 * 1024).as_bytes())
            .await
            .unwrap();
        conn.write_all(&[b' '; 1000]).await.unwrap();
        conn.flush().await.unwrap();
        held.push(conn);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let body = large_review(LARGE);
    let mut senders = JoinSet::new();
    for _ in 0..20 {
        let (mut conn, body) = (hook.connect().await, body.clone());
        senders.spawn(async move {
            conn.write_all(post_head(body.len()).as_bytes())
                .await
                .unwrap();
            // Blocks once the window is full; the server refuses it (429) after a second.
            let _ = tokio::time::timeout(Duration::from_millis(1500), conn.write_all(&body)).await;
            conn
        });
    }
    // Measured before the budget's one-second wait ends (then the refused bodies are discarded).
    tokio::time::sleep(Duration::from_millis(600)).await;
    let queued = queued_for_server(hook.addr().port());
    assert!(
        queued < 20 * 256 * 1024,
        "{queued} bytes queued in the kernel for 20 waiting bodies"
    );
    within(Duration::from_secs(5), "the senders", senders.join_all()).await;
}

/// Sends the head of a 100 MiB review and one byte of it on `conn`; returns the answer, a 413.
async fn refused_as_too_large(
    conn: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
) -> Answer {
    let answer = within(
        Duration::from_secs(2),
        "the 413",
        exchange(conn, &post_head(100 * 1024 * 1024), b"{"),
    )
    .await
    .unwrap();
    assert_eq!(answer.status, 413, "{}", answer.head);
    answer
}

#[tokio::test]
async fn a_declared_length_over_the_limit_is_answered_413_before_the_body_is_read() {
    let _serial = SERIAL.lock().await;
    let hook = Webhook::start(&["--log-format", "text"], Stdio::null()).await;
    let mut conn = hook.connect().await;
    let start = Instant::now();
    let answer = refused_as_too_large(&mut conn).await;
    assert!(start.elapsed() < Duration::from_secs(1));
    assert!(answer.closes());
    let error: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(
        error["error"],
        "request body of 104857600 bytes is over the limit of 6291456 bytes"
    );
    let mut buf = [0u8; 64];
    let after = within(Duration::from_secs(3), "the close", conn.read(&mut buf)).await;
    assert!(matches!(after, Ok(0) | Err(_)));
}

/// Refused clients that go on sending are read (so that they get their answer, not a reset), but
/// all of them together only as fast as the linger's shared pace: 4 clients writing as fast as
/// loopback takes bytes (gigabytes a second each when the server discards as they come) get
/// about 64 MiB a second through between them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_clients_that_keep_sending_are_discarded_at_a_bounded_pace() {
    use podgrace::server::linger::{DISCARD_BYTES_PER_SECOND, LINGER};
    let _serial = SERIAL.lock().await;
    let hook = Webhook::start(&["--log-format", "text"], Stdio::null()).await;
    const CLIENTS: usize = 4;
    let sending = LINGER * 3 / 4;
    let mut senders = JoinSet::new();
    for _ in 0..CLIENTS {
        let mut conn = hook.connect().await;
        refused_as_too_large(&mut conn).await;
        senders.spawn(async move {
            // The rest of the "body" goes straight onto TCP: the server no longer decrypts it,
            // and the client's own encryption would bound the rate instead of the server.
            let tcp = conn.get_mut().0;
            rustix::net::sockopt::set_socket_send_buffer_size(&*tcp, 64 * 1024).unwrap();
            let chunk = vec![b' '; 64 * 1024];
            let mut sent = 0usize;
            let _ = tokio::time::timeout(sending, async {
                while let Ok(n) = tcp.write(&chunk).await {
                    sent += n;
                }
            })
            .await;
            sent
        });
    }
    let sent: usize = within(Duration::from_secs(5), "the senders", senders.join_all())
        .await
        .into_iter()
        .sum();
    let paced = DISCARD_BYTES_PER_SECOND as f64 * sending.as_secs_f64();
    // Above the pace: its burst (1 MiB) and, per client, its send buffer and the server's
    // receive buffer (128 KiB each as the kernel counts them).
    let allowance = 1024.0 * 1024.0 + CLIENTS as f64 * 512.0 * 1024.0;
    let mib = |b: f64| b / (1024.0 * 1024.0);
    assert!(
        (sent as f64) < paced + allowance,
        "{:.1} MiB sent in {sending:?}, the pace allows {:.1} MiB",
        mib(sent as f64),
        mib(paced + allowance)
    );
    // Still read, not left to stall until a reset.
    assert!(
        (sent as f64) > paced / 4.0,
        "only {:.1} MiB discarded in {sending:?}",
        mib(sent as f64)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_cannot_keep_a_new_client_out_and_time_out() {
    let _serial = SERIAL.lock().await;
    let hook = Webhook::start(
        &[
            "--max-connections",
            "8",
            "--idle-timeout-seconds",
            "2",
            "--log-format",
            "text",
        ],
        Stdio::null(),
    )
    .await;
    let body = small_review();
    let head = post_head(body.len());
    // Every slot held by a kept-alive connection, idle after one answer.
    let mut idle = Vec::new();
    for _ in 0..8 {
        let mut conn = hook.connect().await;
        exchange(&mut conn, &head, body.as_bytes()).await.unwrap();
        idle.push((conn, Instant::now()));
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A new client gets in: the connection idle for longest is closed for it.
    let fresh = fresh_connection_client(&[&hook.ca]);
    let start = Instant::now();
    let answer = within(
        Duration::from_secs(2),
        "a new client at the connection cap",
        fresh.post(hook.url("/mutate")).body(body.clone()).send(),
    )
    .await
    .unwrap();
    assert_eq!(answer.status(), 200);
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    let (mut oldest, _) = idle.remove(0);
    let mut buf = [0u8; 64];
    let closed = within(
        Duration::from_secs(1),
        "the oldest idle connection's close",
        oldest.read(&mut buf),
    )
    .await;
    assert!(matches!(closed, Ok(0) | Err(_)));
    // The others are closed by the idle timeout, about 2 s after their answer.
    for (mut conn, answered) in idle {
        let _ = within(
            Duration::from_secs(4),
            "an idle connection's timeout",
            conn.read(&mut buf),
        )
        .await;
        let idle_for = answered.elapsed();
        assert!(
            idle_for >= Duration::from_millis(1800) && idle_for < Duration::from_millis(3500),
            "closed after {idle_for:?} idle, with a 2 s idle timeout"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_tls_handshakes_cannot_keep_a_new_client_out() {
    let _serial = SERIAL.lock().await;
    let hook = Webhook::start(
        &["--max-connections", "8", "--log-format", "text"],
        Stdio::null(),
    )
    .await;
    // Every slot held by a client that connected and never started its TLS handshake.
    let mut stalled = Vec::new();
    for _ in 0..8 {
        stalled.push(tokio::net::TcpStream::connect(hook.addr()).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let fresh = fresh_connection_client(&[&hook.ca]);
    let start = Instant::now();
    let answer = within(
        Duration::from_secs(4),
        "a new client while handshakes stall",
        fresh.get(hook.url("/healthz")).send(),
    )
    .await
    .unwrap();
    assert_eq!(answer.status(), 200);
    // A stalled handshake is cut once it is a second old (the handshake timeout is 5 s).
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
}

/// A handshake that never starts is cut at the handshake timeout, and its slot is given back:
/// with a single slot, a client arriving after the timeout is served at once (a leaked slot
/// would leave no connection to close for it, and it would wait until refused).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_handshake_times_out_and_gives_its_slot_back() {
    let _serial = SERIAL.lock().await;
    let hook = Webhook::start(
        &[
            "--max-connections",
            "1",
            "--header-timeout-seconds",
            "1",
            "--log-format",
            "text",
        ],
        Stdio::null(),
    )
    .await;
    for round in 0..3 {
        let mut stalled = tokio::net::TcpStream::connect(hook.addr()).await.unwrap();
        let start = Instant::now();
        let mut buf = [0u8; 64];
        // The server closes without a byte: no TLS alert for a handshake that never began.
        let read = within(
            Duration::from_secs(4),
            "the stalled handshake closed",
            stalled.read(&mut buf),
        )
        .await;
        assert!(matches!(read, Ok(0) | Err(_)), "round {round}: {read:?}");
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
            "round {round}: closed after {waited:?}, the timeout is 1 s"
        );
        let fresh = fresh_connection_client(&[&hook.ca]);
        let answer = within(
            Duration::from_millis(900),
            "a new client in the released slot",
            fresh.get(hook.url("/healthz")).send(),
        )
        .await
        .unwrap();
        assert_eq!(answer.status(), 200, "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_answered_in_order_and_across_sigterm_the_second_is_refused_cleanly()
{
    let _serial = SERIAL.lock().await;
    let mut hook = Webhook::start(
        &["--drain-seconds", "6", "--log-format", "text"],
        Stdio::null(),
    )
    .await;
    let body = small_review();
    let request = format!("{}{body}", post_head(body.len()));

    // Before SIGTERM: two requests in one write, two answers in order, the connection kept.
    let mut conn = hook.connect().await;
    let answers = within(Duration::from_secs(5), "two pipelined answers", async {
        conn.write_all(format!("{request}{request}").as_bytes())
            .await
            .unwrap();
        conn.flush().await.unwrap();
        let first = read_answer(&mut conn).await.unwrap();
        let second = read_answer(&mut conn).await.unwrap();
        [first, second]
    })
    .await;
    for answer in &answers {
        assert_eq!(answer.status, 200, "{}", answer.head);
        assert!(!answer.closes(), "{}", answer.head);
        assert!(String::from_utf8_lossy(&answer.body).contains("patch"));
    }

    // Across SIGTERM: the first request is on its way (all but its last byte) when the drain
    // starts; its last byte and a second request then arrive in one write.
    let (first, rest) = request.split_at(request.len() - 1);
    conn.write_all(first.as_bytes()).await.unwrap();
    conn.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    hook.sigterm();
    let ready = client(&[&hook.ca]);
    within(Duration::from_secs(10), "readiness failing", async {
        while ready
            .get(hook.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status()
            != 503
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    conn.write_all(format!("{rest}{request}").as_bytes())
        .await
        .unwrap();
    conn.flush().await.unwrap();
    let answer = within(
        Duration::from_secs(5),
        "the first answer",
        read_answer(&mut conn),
    )
    .await
    .unwrap();
    assert_eq!(answer.status, 200, "{}", answer.head);
    assert!(String::from_utf8_lossy(&answer.body).contains("patch"));
    assert!(
        answer.closes(),
        "answers during the drain close: {}",
        answer.head
    );
    // hyper does not start a request after an answer that closes the connection: the second
    // gets no answer, and the connection ends with TLS close_notify and FIN (a clean EOF, no
    // reset), which tells a pipelining client to send it again (RFC 9112 §9.3.2). An answer,
    // if one came, would have to be whole and a 200.
    let mut after = Vec::new();
    let end = within(
        Duration::from_secs(5),
        "the close after the first answer",
        conn.read_to_end(&mut after),
    )
    .await;
    eprintln!(
        "the request pipelined across SIGTERM: {}",
        if after.is_empty() {
            "not answered, clean close"
        } else {
            "answered"
        }
    );
    if after.is_empty() {
        assert!(
            end.is_ok(),
            "the connection was not closed cleanly: {end:?}"
        );
    } else {
        let second = read_answer(&mut after.as_slice()).await.unwrap();
        assert_eq!(second.status, 200, "{}", second.head);
        assert!(end.is_ok(), "{end:?}");
    }
    let status = hook.exited(Duration::from_secs(15)).await;
    assert!(status.success(), "exit status {status}");
}
