//! What one connection is doing, seen from outside its task: reads are counted below TLS
//! ([`Tracked`]), and the connection's service marks when a request starts and when it is
//! answered ([`Service`]). From those two marks a connection is, at any moment,
//!
//! - in its TLS handshake;
//! - *quiet*: nothing received since the handshake or the last answer (a kept-alive connection
//!   whose client may never send again, or may send right now);
//! - reading a request head: bytes arrived, no request yet;
//! - answering a request.
//!
//! The connection's task, the reaper and the eviction of [`super::connections`] read this state;
//! only the task and its service write it. A close is *requested* ([`Activity::request_close`]):
//! from then on answers carry `Connection: close`, and (for [`Close::WhenQuiet`]) the task closes
//! the connection at once if it is quiet with nothing in its socket's receive queue. So a request
//! whose bytes have reached the server is always answered before its connection closes.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll, ready};

use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, header};
use axum::routing::future::RouteFuture;
use hyper::body::Incoming;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tower::Service as _;

/// `idle_at` while the TLS handshake runs.
const HANDSHAKING: u64 = u64::MAX;
/// `idle_at` while a request is being answered.
const ANSWERING: u64 = u64::MAX - 1;

/// How soon a connection should close.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Close {
    /// Keep it open.
    No = 0,
    /// Answers carry `Connection: close`, so that it closes after the next one (the drain).
    AfterAnswer = 1,
    /// That, and close it now if it is quiet (idle timeout, eviction, a drain's quiet
    /// connection).
    WhenQuiet = 2,
    /// Drop it now (a stalled handshake or request head: nothing to answer).
    Now = 3,
}

/// One connection's state (see the module documentation).
#[derive(Debug)]
pub struct Activity {
    /// Reads that returned data, handshake included.
    reads: AtomicU64,
    /// `reads` when the connection last became quiet, or [`HANDSHAKING`] / [`ANSWERING`].
    idle_at: AtomicU64,
    close: AtomicU8,
    wake: Notify,
}

/// What a connection is doing, as [`Activity::state`] sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionState {
    /// In the TLS handshake.
    Handshaking,
    /// Nothing received since it last became quiet, at this count of reads.
    Quiet(u64),
    /// Reading a request head since it became quiet at this count of reads.
    ReadingHead(u64),
    /// A request is being answered.
    Answering,
}

impl Default for Activity {
    fn default() -> Self {
        Activity {
            reads: AtomicU64::new(0),
            idle_at: AtomicU64::new(HANDSHAKING),
            close: AtomicU8::new(Close::No as u8),
            wake: Notify::new(),
        }
    }
}

impl Activity {
    /// The current state. Exact in the connection's own task, a snapshot elsewhere.
    pub fn state(&self) -> ConnectionState {
        let idle_at = self.idle_at.load(Relaxed);
        match idle_at {
            HANDSHAKING => ConnectionState::Handshaking,
            ANSWERING => ConnectionState::Answering,
            _ if self.reads.load(Relaxed) == idle_at => ConnectionState::Quiet(idle_at),
            _ => ConnectionState::ReadingHead(idle_at),
        }
    }

    /// The handshake is done; what it read is no request.
    pub fn handshake_done(&self) {
        self.idle_at.store(self.reads.load(Relaxed), Relaxed);
    }

    fn request_started(&self) {
        self.idle_at.store(ANSWERING, Relaxed);
    }

    /// The answer is ready: the connection is quiet again. Whether it should close.
    fn answered(&self) -> bool {
        self.idle_at.store(self.reads.load(Relaxed), Relaxed);
        self.close.load(Relaxed) != Close::No as u8
    }

    /// Asks the connection's task to close (never lowers an earlier request).
    pub fn request_close(&self, how: Close) {
        self.close.fetch_max(how as u8, Relaxed);
        self.wake.notify_one();
    }

    /// The close asked for so far.
    pub fn close_requested(&self) -> Close {
        match self.close.load(Relaxed) {
            0 => Close::No,
            1 => Close::AfterAnswer,
            2 => Close::WhenQuiet,
            _ => Close::Now,
        }
    }

    /// Resolves at each [`Activity::request_close`] (one waiter: the connection's task).
    pub async fn woken(&self) {
        self.wake.notified().await;
    }
}

/// The TCP stream under TLS, counting the reads that return data. The stream is shared so that
/// the connection's task can look at the socket's receive queue ([`pending_bytes`]) while hyper
/// owns the connection.
pub struct Tracked {
    stream: Arc<TcpStream>,
    activity: Arc<Activity>,
}

impl Tracked {
    /// Wraps `stream`, counting into `activity`.
    pub fn new(stream: Arc<TcpStream>, activity: Arc<Activity>) -> Self {
        Tracked { stream, activity }
    }
}

/// Bytes in the socket's receive queue that nobody has read yet.
pub fn pending_bytes(stream: &TcpStream) -> u64 {
    // An error (a socket already gone) counts as data: the connection is then not taken for
    // quiet, and the service closes it after its answer instead.
    rustix::io::ioctl_fionread(stream).unwrap_or(1)
}

// Reads and writes go through the stream's readiness, the way tokio's own `TcpStream` does,
// since the stream is shared.
impl AsyncRead for Tracked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            ready!(self.stream.poll_read_ready(cx))?;
            match self.stream.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    if n > 0 {
                        self.activity.reads.fetch_add(1, Relaxed);
                    }
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.stream.poll_write_ready(cx))?;
            match self.stream.try_write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                done => return Poll::Ready(done),
            }
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.stream.poll_write_ready(cx))?;
            match self.stream.try_write_vectored(bufs) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                done => return Poll::Ready(done),
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        match rustix::net::shutdown(&*self.stream, rustix::net::Shutdown::Write) {
            Ok(()) | Err(rustix::io::Errno::NOTCONN) => Poll::Ready(Ok(())),
            Err(e) => Poll::Ready(Err(e.into())),
        }
    }
}

/// The router as one connection's hyper service: marks the request's start and its answer, and
/// adds `Connection: close` to the answer once the connection was asked to close.
#[derive(Clone)]
pub struct Service {
    app: axum::Router,
    activity: Arc<Activity>,
}

impl Service {
    /// `app`, serving the connection of `activity`.
    pub fn new(app: axum::Router, activity: Arc<Activity>) -> Self {
        Service { app, activity }
    }
}

impl hyper::service::Service<Request<Incoming>> for Service {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn call(&self, req: Request<Incoming>) -> ResponseFuture {
        self.activity.request_started();
        ResponseFuture {
            inner: self.app.clone().call(req.map(Body::new)),
            activity: self.activity.clone(),
        }
    }
}

pin_project_lite::pin_project! {
    /// The router's answer to one request, see [`Service`].
    pub struct ResponseFuture {
        #[pin]
        inner: RouteFuture<Infallible>,
        activity: Arc<Activity>,
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(mut response) = ready!(this.inner.poll(cx));
        if this.activity.answered() {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        Poll::Ready(Ok(response))
    }
}
