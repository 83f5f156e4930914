//! A real podgrace server on a loopback port with real TLS, and clients that verify its
//! certificate against the CA that issued it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use podgrace::observability::metrics::Metrics;
use podgrace::server::certificates::{self, Generated};
use podgrace::server::tls::{self, Pair, ReloadingCert};
use podgrace::server::{AppState, PolicyConfigMap, ServerOptions, listener};
use podgrace::store::PolicyStore;
use podgrace::store::cache::PolicyCache;
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A fresh CA and serving certificate for localhost.
pub fn pki() -> Generated {
    certificates::generate(&["localhost".into(), "127.0.0.1".into()], 2).unwrap()
}

/// A rustls client configuration trusting exactly `ca_pems`.
pub fn client_config(ca_pems: &[&str]) -> rustls::ClientConfig {
    let mut roots = RootCertStore::empty();
    for pem in ca_pems {
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
    }
    rustls::ClientConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// The longest any single request of a test may take: a server that stops answering fails
/// the test instead of hanging it.
pub const REQUEST_LIMIT: Duration = Duration::from_secs(30);

/// An HTTPS client that verifies the server against `ca_pems`.
pub fn client(ca_pems: &[&str]) -> reqwest::Client {
    reqwest::Client::builder()
        .use_preconfigured_tls(client_config(ca_pems))
        .timeout(REQUEST_LIMIT)
        .build()
        .unwrap()
}

/// Like [`client`], with a new connection for every request.
pub fn fresh_connection_client(ca_pems: &[&str]) -> reqwest::Client {
    reqwest::Client::builder()
        .use_preconfigured_tls(client_config(ca_pems))
        .pool_max_idle_per_host(0)
        .timeout(REQUEST_LIMIT)
        .build()
        .unwrap()
}

/// A verified TLS connection to `addr`.
pub async fn tls_connect(
    addr: SocketAddr,
    ca_pems: &[&str],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config(ca_pems)));
    let connect = async {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        connector
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap()
    };
    tokio::time::timeout(REQUEST_LIMIT, connect)
        .await
        .expect("the TLS handshake did not finish")
}

/// The leaf certificate the server presents to a new connection.
pub async fn served_certificate(addr: SocketAddr, ca_pems: &[&str]) -> Vec<u8> {
    let stream = tls_connect(addr, ca_pems).await;
    stream.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

/// DER of the first certificate in `pem`.
pub fn der(pem: &str) -> Vec<u8> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .unwrap()
        .unwrap()
        .to_vec()
}

/// A server running in this process.
pub struct TestServer {
    /// Bound address.
    pub addr: SocketAddr,
    /// The PKI it serves.
    pub pki: Generated,
    /// Shared state (store, metrics).
    pub state: Arc<AppState>,
    /// The policy cache behind the store.
    pub cache: Arc<PolicyCache>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server with default options except those `tweak` changes.
    pub async fn start(tweak: impl FnOnce(&mut ServerOptions)) -> Self {
        let pki = pki();
        let pair = Pair::from_pem(pki.cert_pem.as_bytes(), pki.key_pem.as_bytes(), "test").unwrap();
        Self::start_with(ReloadingCert::new(pair), pki, tweak).await
    }

    /// Starts a server presenting `cert`.
    pub async fn start_with(
        cert: Arc<ReloadingCert>,
        pki: Generated,
        tweak: impl FnOnce(&mut ServerOptions),
    ) -> Self {
        let metrics = Arc::new(Metrics::new());
        let cache = Arc::new(PolicyCache::new(metrics.clone()));
        cache.mark_synced();
        Self::start_full(cert, pki, cache, metrics, tweak).await
    }

    /// Starts a server answering from `cache` (fed by the caller, e.g. a ConfigMap watch).
    pub async fn start_with_cache(cache: Arc<PolicyCache>, metrics: Arc<Metrics>) -> Self {
        let pki = pki();
        let pair = Pair::from_pem(pki.cert_pem.as_bytes(), pki.key_pem.as_bytes(), "test").unwrap();
        Self::start_full(ReloadingCert::new(pair), pki, cache, metrics, |_| {}).await
    }

    async fn start_full(
        cert: Arc<ReloadingCert>,
        pki: Generated,
        cache: Arc<PolicyCache>,
        metrics: Arc<Metrics>,
        tweak: impl FnOnce(&mut ServerOptions),
    ) -> Self {
        let store: Arc<dyn PolicyStore> = cache.clone();
        let mut opts = ServerOptions {
            drain: std::time::Duration::from_millis(0),
            ..ServerOptions::default()
        };
        tweak(&mut opts);
        let state = AppState::new(store, metrics, None, PolicyConfigMap::default(), &opts);
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let config = tls::server_config(cert).unwrap();
        let task = tokio::spawn(listener::serve(tcp, config, state.clone(), opts, async {
            let _ = rx.await;
        }));
        TestServer {
            addr,
            pki,
            state,
            cache,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// `https://localhost:PORT/path`.
    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }

    /// A verifying client for this server.
    pub fn client(&self) -> reqwest::Client {
        client(&[&self.pki.ca_cert_pem])
    }

    /// POSTs `body` as JSON to `path`: the status and the answer, as JSON when it is JSON, as a
    /// JSON string otherwise.
    pub async fn post(&self, path: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let resp = self
            .client()
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(REQUEST_LIMIT, task)
                .await
                .expect("the test server did not stop");
        }
    }
}
