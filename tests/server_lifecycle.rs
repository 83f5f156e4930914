//! The server over its lifetime: certificates rotated on disk the way the kubelet rotates Secret
//! volumes, SIGTERM under load (the real binary, a real signal), and the production log it
//! writes meanwhile.

mod common;

use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::binary::Webhook;
use common::child::{self, drain, drained, wait_within};
use common::https::*;
use common::*;
use podgrace::observability::metrics::Metrics;
use podgrace::server::tls::{self, Pair, ReloadingCert};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn a_kubelet_rotation_reaches_the_next_connection_without_failing_a_request() {
    let dir = tempfile::tempdir().unwrap();
    let old = pki();
    kubelet_write(
        dir.path(),
        "..2026_11_22_10_00_00.1",
        &[("tls.crt", &old.cert_pem), ("tls.key", &old.key_pem)],
    );
    let (cert_file, key_file) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let cert = ReloadingCert::new(Pair::from_files(&cert_file, &key_file).unwrap());
    let metrics = Arc::new(Metrics::new());
    // A long poll: only the directory watch can make this test pass in time.
    let _watch = tls::reload_on_change(
        cert.clone(),
        cert_file,
        key_file,
        metrics.clone(),
        Duration::from_secs(3600),
    );
    let server = TestServer::start_with(cert, old.clone(), |_| {}).await;
    let new = pki();
    let cas = [old.ca_cert_pem.clone(), new.ca_cert_pem.clone()];
    assert_eq!(
        served_certificate(server.addr, &[&cas[0]]).await,
        der(&old.cert_pem)
    );

    // Requests on fresh connections, before, across and after the rotation.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let looper = {
        let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
        let client = fresh_connection_client(&[&cas[0], &cas[1]]);
        let url = server.url("/mutate");
        let body = read_fixture("admission/pod-create-kubectl-apply.json");
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match client.post(&url).body(body.clone()).send().await {
                    Ok(r) if r.status() == 200 => ok.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    kubelet_write(
        dir.path(),
        "..2026_11_22_11_00_00.2",
        &[("tls.crt", &new.cert_pem), ("tls.key", &new.key_pem)],
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while served_certificate(server.addr, &[&cas[0], &cas[1]]).await != der(&new.cert_pem) {
        assert!(
            Instant::now() < deadline,
            "the new certificate was not served within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    // A broken revision (certificate and key from different pairs) is refused; the new pair stays.
    let (a, b) = (pki(), pki());
    kubelet_write(
        dir.path(),
        "..2026_11_22_12_00_00.3",
        &[("tls.crt", &a.cert_pem), ("tls.key", &b.key_pem)],
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        served_certificate(server.addr, &[&cas[1]]).await,
        der(&new.cert_pem)
    );
    stop.store(true, Ordering::Relaxed);
    looper.await.unwrap();

    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "no request failed across the rotation"
    );
    assert!(ok.load(Ordering::Relaxed) > 10);
    let m = metrics.render();
    assert!(
        m.contains(r#"podgrace_certificate_reloads_total{result="success"} 1"#),
        "{m}"
    );
    assert!(
        m.contains(r#"podgrace_certificate_reloads_total{result="failure"}"#),
        "{m}"
    );
    assert!(
        m.contains("podgrace_certificate_expiry_timestamp_seconds"),
        "{m}"
    );
    server.stop().await;
}

/// Sends SIGTERM, as the kubelet does.
fn sigterm(child: &Child) {
    podgrace_test_process::kill(child.id(), libc::SIGTERM)
        .unwrap_or_else(|e| panic!("kill -TERM {}: {e}", child.id()));
}

/// How long the webhook may take to exit after SIGTERM (its drain included).
const EXIT_LIMIT: Duration = Duration::from_secs(30);

/// How the binary logs in a test.
enum Logs {
    /// Readable text, discarded.
    Discarded,
    /// JSON lines (the production default) on a pipe the test reads, at `info` (the default).
    JsonPiped,
    /// JSON lines on a pipe, at `debug` for podgrace (a line per admission).
    JsonPipedDebug,
}

/// Starts the real binary in standalone mode and waits until it serves.
async fn start_binary(drain_seconds: u64, logs: Logs) -> Webhook {
    start_binary_ignoring(drain_seconds, logs, &[]).await
}

/// [`start_binary`], with `ignored` signals handed down as ignored, as a parent that ignores
/// them would.
async fn start_binary_ignoring(
    drain_seconds: u64,
    logs: Logs,
    ignored: &'static [libc::c_int],
) -> Webhook {
    // Default signal dispositions (but `ignored`), whatever this test process inherited.
    let mut command = child::command(env!("CARGO_BIN_EXE_podgrace"));
    child::with_dispositions(&mut command, libc::SIG_IGN, ignored);
    let (format, level, stdout) = match logs {
        Logs::Discarded => ("text", "info", Stdio::null()),
        Logs::JsonPiped => ("json", "info", Stdio::piped()),
        Logs::JsonPipedDebug => ("json", "info,podgrace=debug", Stdio::piped()),
    };
    let drain = drain_seconds.to_string();
    let args = [
        "--log-format",
        format,
        "--log",
        level,
        "--drain-seconds",
        drain.as_str(),
    ];
    Webhook::start_command(command, &args, stdout).await
}

#[tokio::test]
async fn sigterm_fails_readiness_drains_and_finishes_in_flight_requests() {
    let mut hook = start_binary(2, Logs::Discarded).await;
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", hook.port).parse().unwrap();
    let url = |p: &str| format!("https://localhost:{}{p}", hook.port);
    let body = read_fixture("admission/pod-create-kubectl-apply.json");

    // Load: keep-alive clients posting reviews until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicUsize::new(0));
    let ok = Arc::new(AtomicUsize::new(0));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (stop, failed, ok) = (stop.clone(), failed.clone(), ok.clone());
        let client = client(&[&hook.ca]);
        let (u, b) = (url("/mutate"), body.clone());
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let answered = match client.post(&u).body(b.clone()).send().await {
                    Ok(r) if r.status() == 200 => {
                        r.text().await.is_ok_and(|t| t.contains("\"patch\""))
                    }
                    _ => false,
                };
                if answered {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    // An in-flight request: headers and half the body sent before SIGTERM, the rest after the
    // listener has closed.
    let mut slow = tls_connect(addr, &[&hook.ca]).await;
    let half = body.len() / 2;
    slow.write_all(format!("POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes()).await.unwrap();
    slow.write_all(&body.as_bytes()[..half]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    sigterm(&hook.child);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ready = client(&[&hook.ca])
        .get(url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503, "readiness fails at once");
    // Clients still get answers during the drain; stop the load before the listener closes,
    // as the API server does once the endpoint is gone.
    tokio::time::sleep(Duration::from_millis(900)).await;
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "after the drain the listener is closed"
    );
    slow.write_all(&body.as_bytes()[half..]).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(REQUEST_LIMIT, slow.read_to_end(&mut response))
        .await
        .expect("the in-flight request was answered")
        .unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.contains("\"patchType\":\"JSONPatch\""),
        "{response}"
    );

    let status = wait_within(&mut hook.child, EXIT_LIMIT, "the webhook after SIGTERM");
    assert!(status.success(), "exit status {status}");
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "no request under load failed"
    );
    assert!(ok.load(Ordering::Relaxed) > 10);
}

/// The webhook installs its own SIGTERM handler: a SIGTERM ignored by whatever started it (a
/// wrapper script, `nohup`-style) still stops it, after its drain.
#[tokio::test]
async fn sigterm_stops_the_webhook_even_when_it_inherits_sigterm_ignored() {
    let mut hook = start_binary_ignoring(
        0,
        Logs::Discarded,
        &[libc::SIGTERM, libc::SIGINT, libc::SIGQUIT],
    )
    .await;
    sigterm(&hook.child);
    let status = wait_within(&mut hook.child, EXIT_LIMIT, "the webhook after SIGTERM");
    assert!(status.success(), "exit status {status}");
}

/// Sends the captured review, the same review with a container whose shell stays PID 1 (a
/// warning that asks the user to act) and a malformed body; returns the review sent first.
async fn three_admissions(hook: &Webhook) -> (serde_json::Value, serde_json::Value) {
    let url = format!("https://localhost:{}/mutate", hook.port);
    let http = client(&[&hook.ca]);
    let body = read_fixture("admission/pod-create-kubectl-apply.json");
    let review: serde_json::Value = serde_json::from_str(&body).unwrap();
    let answer = http.post(&url).body(body).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    let mut warned = review.clone();
    warned["request"]["uid"] = "warned-uid".into();
    warned["request"]["object"]["spec"]["containers"][0]["command"] =
        serde_json::json!(["/bin/sh", "-c", "java -jar /app.jar"]);
    let answer = http.post(&url).json(&warned).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    let bad = http.post(&url).body("{not json").send().await.unwrap();
    assert_eq!(bad.status(), 400);
    (review, warned)
}

/// The webhook's log lines up to its exit after SIGTERM, parsed.
fn lines_until_exit(hook: &mut Webhook) -> (String, Vec<serde_json::Value>) {
    let stdout = drain(hook.child.stdout.take().unwrap());
    sigterm(&hook.child);
    assert!(wait_within(&mut hook.child, EXIT_LIMIT, "the webhook after SIGTERM").success());
    let out = drained(&stdout, Duration::from_secs(5), "the webhook's log");
    let out = String::from_utf8(out).unwrap();
    let lines = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert_last_line_is_stopped(&out);
    (out, lines)
}

/// The per-admission lines among `lines`.
fn admission_lines(lines: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    lines
        .iter()
        .filter(|l| l["message"] == "admission")
        .collect()
}

/// The production log at `info`: JSON lines on stdout; no line for an admission that went as
/// planned (the pod's annotations and the API server's audit log record it), one for an
/// admission whose warnings ask the user to act, with the request's uid, namespace, pod name,
/// decision and latency; a line for the malformed review; the totals at exit; nothing of the
/// pod's spec.
#[tokio::test]
async fn at_info_only_admissions_that_warned_or_failed_are_logged_with_the_uid_and_no_pod_spec() {
    let mut hook = start_binary(0, Logs::JsonPiped).await;
    let (review, warned) = three_admissions(&hook).await;
    let (out, lines) = lines_until_exit(&mut hook);

    let admissions = admission_lines(&lines);
    assert_eq!(admissions.len(), 1, "{out}");
    let admission = admissions[0];
    assert_eq!(admission["level"], "INFO");
    assert_eq!(admission["uid"], warned["request"]["uid"]);
    assert_ne!(admission["uid"], review["request"]["uid"]);
    assert_eq!(admission["namespace"], "probe");
    assert_eq!(admission["pod"], "probe-pod");
    assert_eq!(admission["decision"], "patched");
    assert_eq!(admission["warnings"], 2, "{admission}");
    assert!(admission["latency_us"].is_u64(), "{admission}");
    let rejected = lines
        .iter()
        .find(|l| l["level"] == "WARN" && l["message"] == "bad admission request")
        .unwrap_or_else(|| panic!("no line for the malformed review in {out}"));
    assert!(
        rejected["error"]
            .as_str()
            .unwrap()
            .contains("malformed AdmissionReview"),
        "{rejected}"
    );
    let totals = lines
        .iter()
        .find(|l| l["message"] == "admission totals")
        .unwrap_or_else(|| panic!("no totals at exit in {out}"));
    assert_eq!(
        (&totals["patched"], &totals["bad_requests"]),
        (&2.into(), &1.into()),
        "{totals}"
    );
    // The pod's spec and annotations stay out of the log.
    for secret in [
        "registry.example/app",
        "last-applied-configuration",
        "containers",
    ] {
        assert!(!out.contains(secret), "{secret} logged: {out}");
    }
}

/// At `debug`, every admission has its line, with its uid as a field of the line (no span).
#[tokio::test]
async fn at_debug_every_admission_is_logged_with_its_uid() {
    let mut hook = start_binary(0, Logs::JsonPipedDebug).await;
    let (review, warned) = three_admissions(&hook).await;
    let (out, lines) = lines_until_exit(&mut hook);
    let admissions = admission_lines(&lines);
    assert_eq!(admissions.len(), 2, "{out}");
    assert_eq!(admissions[0]["level"], "DEBUG");
    assert_eq!(admissions[0]["uid"], review["request"]["uid"]);
    assert_eq!(admissions[0]["warnings"], 1, "the grace period's notice");
    assert_eq!(admissions[1]["level"], "INFO");
    assert_eq!(admissions[1]["uid"], warned["request"]["uid"]);
    assert!(admissions.iter().all(|a| a.get("span").is_none()), "{out}");
}

/// A log output nobody reads (a stalled log agent) never holds up admissions. The binary's
/// stdout pipe is left unread while thousands of admissions are answered: the pipe and the log
/// writer's queue fill up, and further lines are dropped and counted on `/metrics`. Once the
/// pipe is read again, the lines queued are written, the last one of the run among them.
#[tokio::test]
async fn a_stalled_log_output_costs_lines_never_admissions() {
    // At debug: a line per admission.
    let mut hook = start_binary(0, Logs::JsonPipedDebug).await;
    let url = format!("https://localhost:{}/mutate", hook.port);
    let http = client(&[&hook.ca]);
    let body = read_fixture("admission/pod-create-kubectl-apply.json");
    // One line each: more than the pipe (64 KiB) and the writer's queue (4,096 lines) hold
    // together.
    let (per_task, tasks) = (750, 8);
    let mut answered = tokio::task::JoinSet::new();
    for _ in 0..tasks {
        let (http, url, body) = (http.clone(), url.clone(), body.clone());
        answered.spawn(async move {
            for _ in 0..per_task {
                let send = http.post(&url).body(body.clone()).send();
                let answer = tokio::time::timeout(Duration::from_secs(10), send)
                    .await
                    .expect("an admission waited for the log output")
                    .unwrap();
                assert_eq!(answer.status(), 200);
            }
        });
    }
    while let Some(task) = answered.join_next().await {
        task.unwrap();
    }
    let metrics_url = format!("https://localhost:{}/metrics", hook.port);
    let metrics = http
        .get(&metrics_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let dropped: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("podgrace_log_lines_dropped_total "))
        .unwrap_or_else(|| panic!("no dropped-lines counter in {metrics}"))
        .parse()
        .unwrap();
    assert!(
        dropped > 0,
        "nothing dropped: the test did not stall the output"
    );
    assert!(dropped < per_task * tasks, "every line dropped");

    let stdout = drain(hook.child.stdout.take().unwrap());
    sigterm(&hook.child);
    assert!(wait_within(&mut hook.child, EXIT_LIMIT, "the webhook after SIGTERM").success());
    let out = drained(&stdout, Duration::from_secs(5), "the webhook's log");
    let out = String::from_utf8(out).unwrap();
    assert_last_line_is_stopped(&out);
    let admissions = out
        .lines()
        .filter(|l| l.contains(r#""message":"admission""#))
        .count() as u64;
    assert_eq!(
        admissions + dropped,
        per_task * tasks,
        "an admission line neither written nor counted"
    );
}

/// The run's last line was written before the process exited: the log writer's queue is
/// flushed at exit.
fn assert_last_line_is_stopped(out: &str) {
    let last = out.lines().last().expect("nothing logged");
    let last: serde_json::Value =
        serde_json::from_str(last).unwrap_or_else(|e| panic!("not JSON ({e}): {last}"));
    assert_eq!(last["message"], "stopped", "{out}");
    assert_eq!(last["level"], "INFO", "{last}");
    assert!(last.get("span").is_none(), "{last}");
}
