//! The real `podgrace` binary, started with `serve --standalone` on a free loopback port (the
//! kubelet's way of stopping it: SIGTERM), and what the tests read from the outside: its memory
//! in /proc and raw HTTP/1.1 exchanges over verified TLS.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::https::tls_connect;

/// A running `podgrace serve --standalone`; killed if the test fails.
pub struct Webhook {
    /// The process.
    pub child: Child,
    /// Its loopback port.
    pub port: u16,
    /// The CA of its generated certificate.
    pub ca: String,
    _dir: tempfile::TempDir,
}

impl Drop for Webhook {
    fn drop(&mut self) {
        // A failed assertion must not leave a webhook running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Webhook {
    /// Starts the binary with `args` after the standalone ones, and waits until it serves.
    pub async fn start(args: &[&str], stdout: Stdio) -> Webhook {
        Self::start_command(super::child::command(super::BIN), args, stdout).await
    }

    /// [`Webhook::start`] from a prepared `command` of the binary (signal dispositions set).
    #[allow(clippy::zombie_processes)] // reaped by Drop
    pub async fn start_command(mut command: Command, args: &[&str], stdout: Stdio) -> Webhook {
        let dir = tempfile::tempdir().unwrap();
        let port = super::free_port();
        let ca_path = dir.path().join("ca.pem");
        let child = command
            .args(["serve", "--standalone", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--ca-out")
            .arg(&ca_path)
            .args(args)
            .stdout(stdout)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(ca) = std::fs::read_to_string(&ca_path)
                && !ca.is_empty()
                && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            {
                return Webhook {
                    child,
                    port,
                    ca,
                    _dir: dir,
                };
            }
            assert!(Instant::now() < deadline, "the webhook did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `https://localhost:PORT/path`.
    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    /// A verified TLS connection to it.
    pub async fn connect(&self) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
        tls_connect(self.addr(), &[&self.ca]).await
    }

    /// Sends SIGTERM, as the kubelet does.
    pub fn sigterm(&self) {
        let kill = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(kill.success());
    }

    /// Waits for the process to exit, `within` at most.
    pub async fn exited(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the webhook did not exit");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// A `/proc/PID/status` field in MiB (`VmRSS`, `VmHWM`).
    pub fn memory_mib(&self, field: &str) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no {field} in {status}"))
            / 1024.0
    }
}

/// The head of a `POST /mutate` with a body of `len` bytes.
pub fn post_head(len: usize) -> String {
    format!(
        "POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n"
    )
}

/// An HTTP/1.1 response as read off the wire.
#[derive(Debug)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The head, lower-cased.
    pub head: String,
    /// The body.
    pub body: Vec<u8>,
}

impl Answer {
    /// Whether the head carries `connection: close`.
    pub fn closes(&self) -> bool {
        self.head.lines().any(|l| l == "connection: close")
    }
}

/// Writes `head` and `body`, then reads one response (its body by `Content-Length`).
pub async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    head: &str,
    body: &[u8],
) -> std::io::Result<Answer> {
    s.write_all(head.as_bytes()).await?;
    s.write_all(body).await?;
    s.flush().await?;
    read_answer(s).await
}

/// Reads one response, and not a byte more: a pipelined answer after it stays unread for the
/// next call.
pub async fn read_answer<S: AsyncRead + Unpin>(s: &mut S) -> std::io::Result<Answer> {
    let mut head = Vec::with_capacity(512);
    // A byte at a time up to the blank line: heads are short, and the TLS stream hands them
    // out of its own buffer.
    while !head.ends_with(b"\r\n\r\n") {
        head.push(s.read_u8().await?);
    }
    let head = String::from_utf8_lossy(&head[..head.len() - 4]).to_ascii_lowercase();
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
    let mut body = vec![0; len];
    s.read_exact(&mut body).await?;
    Ok(Answer { status, head, body })
}
