//! The plain-HTTP metrics endpoint (`serve --metrics-listen`): `GET /metrics` and nothing else,
//! for scrapers that do not hold the webhook's CA (Prometheus's `prometheus.io/*` annotations,
//! a ServiceMonitor without TLS). The HTTPS port keeps serving `/metrics` as well.
//!
//! Small on purpose, so that no client of this port can take anything from the webhook: a few
//! connections at once (more are closed at once), one request per connection, headers within
//! a few seconds and the whole exchange within a few more.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::observability::metrics::Metrics;

/// Connections served at once; Prometheus needs one per scrape.
pub const MAX_CONNECTIONS: usize = 8;
/// Time for the request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Time for the whole connection.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// The OpenMetrics content type `/metrics` answers with.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves `/metrics` on `listener` until the task is dropped or aborted.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: wait rather than spin.
                tracing::warn!(error = %e, "metrics listener: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "metrics listener: every connection slot taken; closed");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let metrics = metrics.clone();
                async move { Ok::<_, Infallible>(answer(&req, &metrics)) }
            });
            let connection = http1::Builder::new()
                .keep_alive(false)
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(CONNECTION_TIMEOUT, connection).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "metrics listener: connection error")
                }
                Err(_) => tracing::debug!(%peer, "metrics listener: connection timed out"),
            }
            drop(slot);
        });
    }
}

fn answer<B>(req: &Request<B>, metrics: &Metrics) -> Response<Full<Bytes>> {
    let response = Response::builder();
    let response = match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => response
            .header(header::CONTENT_TYPE, CONTENT_TYPE)
            .body(Full::from(metrics.render())),
        (_, "/metrics") => response
            .status(StatusCode::METHOD_NOT_ALLOWED)
            .header(header::ALLOW, "GET")
            .body(Full::default()),
        _ => response.status(StatusCode::NOT_FOUND).body(Full::default()),
    };
    // The builder only fails on invalid parts, and every part here is a constant.
    response.unwrap_or_default()
}
