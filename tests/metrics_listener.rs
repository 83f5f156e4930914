//! `serve --metrics-listen`: the real binary serves `GET /metrics` in plain HTTP on a second
//! port, the same series as the HTTPS port, nothing else there, and no client of that port can
//! hold it: connections beyond the slots are closed at once, idle ones after the header timeout.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::binary::{Webhook, exchange, read_answer};
use common::free_port;
use podgrace::server::metrics_listener::MAX_CONNECTIONS;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

async fn start() -> (Webhook, u16) {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let webhook = Webhook::start(&["--metrics-listen", &addr], Stdio::null()).await;
    (webhook, port)
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n")
}

#[tokio::test]
async fn the_plain_port_serves_the_same_metrics_as_the_https_port_and_nothing_else() {
    let (webhook, port) = start().await;
    let mut plain = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let answer = exchange(&mut plain, &get("/metrics"), b"").await.unwrap();
    assert_eq!(answer.status, 200);
    assert!(
        answer
            .head
            .contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{}",
        answer.head
    );
    assert!(
        answer.closes(),
        "one request per connection: {}",
        answer.head
    );
    let text = String::from_utf8(answer.body).unwrap();
    let mut tls = webhook.connect().await;
    let https = exchange(&mut tls, &get("/metrics"), b"").await.unwrap();
    let https = String::from_utf8(https.body).unwrap();
    let names = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| l.starts_with("# TYPE "))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(names(&text), names(&https));
    assert!(
        text.contains(
            r#"podgrace_admission_requests_total{endpoint="mutate",outcome="patched"} 0"#
        )
    );
    assert!(text.ends_with("# EOF\n"));

    for (head, status) in [
        (get("/mutate"), 404),
        (get("/readyz"), 404),
        (
            "POST /metrics HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n".to_owned(),
            405,
        ),
    ] {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let answer = exchange(&mut s, &head, b"").await.unwrap();
        assert_eq!(answer.status, status, "{head}");
    }
}

#[tokio::test]
async fn idle_clients_cannot_hold_the_metrics_port() {
    let (_webhook, port) = start().await;
    // Every slot taken by a client that sends nothing.
    let mut idle = Vec::new();
    for _ in 0..MAX_CONNECTIONS {
        idle.push(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // One more is closed without an answer.
    let mut extra = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(2), extra.read(&mut buf))
        .await
        .expect("the extra connection is closed at once")
        .unwrap_or(0);
    assert_eq!(n, 0);
    // The idle ones are closed after the header timeout (5 s); then scrapes work again.
    let start = Instant::now();
    for s in &mut idle {
        let closed = tokio::time::timeout(Duration::from_secs(8), read_answer(s)).await;
        assert!(closed.is_ok(), "an idle connection still open after 8 s");
    }
    assert!(start.elapsed() < Duration::from_secs(8));
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let answer = exchange(&mut s, &get("/metrics"), b"").await.unwrap();
    assert_eq!(answer.status, 200);
}

#[tokio::test]
async fn a_metrics_address_in_use_stops_the_start_with_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = common::child::command(env!("CARGO_BIN_EXE_podgrace"));
    cmd.args(["serve", "--standalone", "--listen", "127.0.0.1:0"])
        .arg("--ca-out")
        .arg(dir.path().join("ca.pem"))
        .args(["--metrics-listen", &addr, "--log-format", "text"]);
    let out = common::child::output_within(&mut cmd, None, Duration::from_secs(20));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("listening for metrics on {addr}")),
        "{stderr}"
    );
}
