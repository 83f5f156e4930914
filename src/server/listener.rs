//! Connections: TCP accept within the connection slots of [`Connections`], `TCP_NODELAY` (small
//! admission responses must not wait for delayed ACKs: Nagle's algorithm is what gives the
//! kube-rs example its 16 ms p99), the TLS handshake with a deadline, HTTP/1.1 through hyper, and
//! the shutdown the webhook preaches.
//!
//! On the stop signal readiness fails at once, and every answer from then on carries
//! `Connection: close`, so that clients (the API server's connection pool among them) reconnect,
//! to another replica once the endpoints have dropped this one; kept-alive connections that stay
//! quiet are closed at the drain's start ([`super::connections::DRAIN_QUIET`]). Connections are
//! still accepted for the drain period. Then the connections that completed their TCP handshake but
//! were not accepted yet are accepted too (closing the listener would reset them), the listener
//! closes (later clients are refused before they send anything), and every open connection gets
//! its answer, within the shutdown timeout. No connection is closed between reading a request and
//! answering it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustix::net::sockopt::set_socket_recv_buffer_size;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::activity::{self, Close, ConnectionState, Tracked};
use super::connections::{Connections, Slot, Timeouts};
use super::linger::{Lingering, linger};
use super::{AppState, ServerOptions, router};

/// hyper's read buffer per connection at most (its default, 400 KiB, stays allocated with a
/// kept-alive connection once a large body has made it grow).
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// Each connection's receive buffer in the kernel (which doubles it for its own bookkeeping: at
/// most 128 KiB per connection, 128 MiB for the 1,024 connections). A window of 64 KiB still moves
/// a megabyte in 16 round trips, a few milliseconds inside a cluster; reviews are smaller.
const RECEIVE_BUFFER_BYTES: usize = 64 * 1024;

/// Serves the webhook until `stop` resolves, then fails readiness, drains and returns once
/// connections are done (or the shutdown timeout passed).
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    state: Arc<AppState>,
    opts: ServerOptions,
    stop: impl Future<Output = ()>,
) {
    let app = router(state.clone(), &opts);
    let stop = async move {
        stop.await;
        state.start_draining();
    };
    serve_app(listener, tls, app, opts, stop).await;
}

/// Serves any router with the webhook's connection handling (also used by the benchmark's floor
/// server, so that both are measured on the same stack).
pub async fn serve_app(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: axum::Router,
    opts: ServerOptions,
    stop: impl Future<Output = ()>,
) {
    // A body waiting for the budget waits in its connection's receive queue, in the kernel, and
    // Linux lets that queue take up to `tcp_rmem`'s maximum (6 to 32 MiB): 20 clients whose 5.9
    // MiB bodies waited had 118 MiB queued (tests/server_stress.rs), socket memory that cgroup
    // v2 charges to the pod's memory limit. Connections inherit the listener's size.
    if let Err(e) = set_socket_recv_buffer_size(&listener, RECEIVE_BUFFER_BYTES) {
        tracing::warn!(error = %e, "receive buffers left at the kernel's size");
    }
    let connections = Connections::new(
        opts.max_connections,
        Timeouts {
            idle: opts.idle_timeout,
            header: opts.header_timeout,
        },
    );
    let reaper = tokio::spawn(connections.clone().reap());
    let server = Server {
        acceptor: TlsAcceptor::from(tls),
        app,
        connections: connections.clone(),
        lingering: Arc::new(Lingering::new(opts.max_lingering)),
        opts: opts.clone(),
    };
    let cancel = CancellationToken::new();
    {
        let accept = server.accept_loop(&listener, &cancel);
        tokio::pin!(accept);
        tokio::select! {
            () = &mut accept => {
                reaper.abort();
                return;
            }
            () = stop => {}
        }
        tracing::info!(
            drain_seconds = opts.drain.as_secs_f64(),
            "stopping: readiness fails, answers close their connections, still accepting during the drain"
        );
        connections.start_draining();
        tokio::select! {
            () = &mut accept => {}
            () = tokio::time::sleep(opts.drain) => {}
        }
        cancel.cancel();
        accept.await;
    }
    let waited = tokio::time::timeout(opts.shutdown_timeout, async {
        server.accept_backlog(listener).await;
        tracing::info!(
            open = connections.open(),
            "listener closed; answering what the open connections sent"
        );
        connections.all_closed().await;
    });
    match waited.await {
        Ok(()) => tracing::info!("all connections finished"),
        Err(_) => tracing::warn!(
            open = connections.open(),
            "shutdown timeout reached with connections still open"
        ),
    }
    reaper.abort();
}

/// What every connection needs.
struct Server {
    acceptor: TlsAcceptor,
    app: axum::Router,
    connections: Arc<Connections>,
    /// Shared by the connections' lingers.
    lingering: Arc<Lingering>,
    opts: ServerOptions,
}

impl Server {
    async fn accept_loop(&self, listener: &TcpListener, cancel: &CancellationToken) {
        loop {
            let stream = tokio::select! {
                () = cancel.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let slot = tokio::select! {
                () = cancel.cancelled() => return,
                slot = self.connections.admit() => slot,
            };
            self.spawn(stream, slot);
        }
    }

    /// Accepts what is in the listen backlog (clients whose TCP handshake completed), then closes
    /// the listener: those clients may already have sent their request, and a closing listener
    /// would reset them; clients that come later are refused before they send anything.
    async fn accept_backlog(&self, listener: TcpListener) {
        let listener = match listener.into_std() {
            Ok(l) => l,
            Err(e) => return tracing::warn!(error = %e, "cannot read the listen backlog"),
        };
        while let Ok((stream, _)) = listener.accept() {
            let stream = stream
                .set_nonblocking(true)
                .and_then(|()| TcpStream::from_std(stream));
            match stream {
                Ok(stream) => {
                    let slot = self.connections.admit().await;
                    self.spawn(stream, slot);
                }
                Err(e) => tracing::debug!(error = %e, "backlog connection unusable"),
            }
        }
    }

    fn spawn(&self, stream: TcpStream, slot: Slot) {
        tokio::spawn(connection(
            stream,
            self.acceptor.clone(),
            self.app.clone(),
            slot,
            self.lingering.clone(),
            self.opts.clone(),
        ));
    }
}

async fn connection(
    stream: TcpStream,
    acceptor: TlsAcceptor,
    app: axum::Router,
    slot: Slot,
    lingering: Arc<Lingering>,
    opts: ServerOptions,
) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY");
    }
    let stream = Arc::new(stream);
    let activity = slot.activity().clone();
    let handshake = tokio::time::timeout(
        opts.handshake_timeout,
        acceptor.accept(Tracked::new(stream.clone(), activity.clone())),
    );
    let tls = tokio::select! {
        done = handshake => match done {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => return tracing::debug!(error = %e, "TLS handshake failed"),
            Err(_) => return tracing::debug!("TLS handshake timed out"),
        },
        () = cut(&activity) => return tracing::debug!("stalled TLS handshake cut for a new connection"),
    };
    activity.handshake_done();
    // In a block of its own, so that hyper's and TLS's buffers are freed before the linger.
    {
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            // The reaper enforces the idle and header timeouts; hyper's own header timer, which
            // starts as soon as the connection is idle, is only a backstop.
            .header_read_timeout(opts.idle_timeout + opts.header_timeout)
            .max_buf_size(READ_BUFFER_BYTES)
            .keep_alive(true)
            .serve_connection(
                TokioIo::new(tls),
                activity::Service::new(app, activity.clone()),
            );
        tokio::pin!(conn);
        loop {
            tokio::select! {
                biased;
                done = conn.as_mut() => {
                    if let Err(e) = done {
                        tracing::debug!(error = %e, "connection closed with an error");
                    }
                    break;
                }
                () = activity.woken() => match activity.close_requested() {
                    Close::Now => return tracing::debug!("request head too slow; connection cut"),
                    // Quiet, with nothing arrived: close it (gracefully: TLS close_notify, then
                    // FIN). Otherwise what arrives is answered with `Connection: close`.
                    Close::WhenQuiet
                        if matches!(activity.state(), ConnectionState::Quiet(_))
                            && activity::pending_bytes(&stream) == 0 =>
                    {
                        conn.as_mut().graceful_shutdown();
                    }
                    _ => {}
                },
            }
        }
    }
    drop(slot);
    linger(&stream, &lingering).await;
}

/// Resolves when the connection is to be dropped at once.
async fn cut(activity: &activity::Activity) {
    while activity.close_requested() != Close::Now {
        activity.woken().await;
    }
}
