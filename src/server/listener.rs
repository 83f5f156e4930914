//! Connections: TCP accept with a bound on open connections, `TCP_NODELAY` (small admission
//! responses must not wait for delayed ACKs: Nagle's algorithm is what gives the kube-rs example
//! its 16 ms p99), the TLS handshake with a deadline, HTTP/1.1 with a header read deadline, and
//! the shutdown the webhook preaches: on the stop signal readiness fails at once, connections are
//! still accepted for the drain period (endpoints take a moment to drop this replica), then the
//! listener closes and in-flight requests finish, within the shutdown timeout.

use std::future::Future;
use std::sync::Arc;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::{AppState, ServerOptions, router};

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
    let graceful = GracefulShutdown::new();
    let cancel = CancellationToken::new();
    {
        let accept = accept_loop(
            listener,
            TlsAcceptor::from(tls),
            app,
            &graceful,
            &opts,
            cancel.clone(),
        );
        tokio::pin!(accept);
        tokio::select! {
            () = &mut accept => return,
            () = stop => {}
        }
        tracing::info!(
            drain_seconds = opts.drain.as_secs_f64(),
            "stopping: readiness fails, still accepting during the drain"
        );
        tokio::select! {
            () = &mut accept => {}
            () = tokio::time::sleep(opts.drain) => {}
        }
        cancel.cancel();
        accept.await;
    }
    tracing::info!("listener closed; waiting for in-flight requests");
    match tokio::time::timeout(opts.shutdown_timeout, graceful.shutdown()).await {
        Ok(()) => tracing::info!("all connections finished"),
        Err(_) => tracing::warn!("shutdown timeout reached with connections still open"),
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    app: axum::Router,
    graceful: &GracefulShutdown,
    opts: &ServerOptions,
    cancel: CancellationToken,
) {
    let connections = Arc::new(Semaphore::new(opts.max_connections));
    loop {
        let permit = tokio::select! {
            () = cancel.cancelled() => return,
            permit = connections.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let (stream, _) = tokio::select! {
            () = cancel.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        tokio::spawn(connection(
            stream,
            acceptor.clone(),
            app.clone(),
            graceful.watcher(),
            permit,
            opts.clone(),
        ));
    }
}

async fn connection(
    stream: TcpStream,
    acceptor: TlsAcceptor,
    app: axum::Router,
    watcher: Watcher,
    _permit: OwnedSemaphorePermit,
    opts: ServerOptions,
) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY");
    }
    let tls = match tokio::time::timeout(opts.handshake_timeout, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!("TLS handshake timed out");
            return;
        }
    };
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(opts.header_timeout)
        .keep_alive(true)
        .serve_connection(TokioIo::new(tls), TowerToHyperService::new(app));
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(error = %e, "connection closed with an error");
    }
}
