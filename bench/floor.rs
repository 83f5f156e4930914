//! The load benchmark's floor: the same axum + rustls + hyper stack, connection handling,
//! request limits and body budget as podgrace, parsing the body into kube's `AdmissionReview<DynamicObject>` (the idiom of the
//! kube-rs example) and answering a constant "allowed". Whatever podgrace costs above this is
//! its own work.
//!
//! `cargo run --release --example floor -- ADDR CA_OUT`

use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use podgrace::server::body_budget::{BodyBudget, Budgeted};
use podgrace::server::tls::{self, Pair, ReloadingCert};
use podgrace::server::{ServerOptions, listener};

// The same allocator as the podgrace binary, with the same purge setting (src/main.rs), so that
// the comparison is of the work done.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

async fn allow(body: Budgeted) -> Response {
    let Ok(review) = serde_json::from_slice::<AdmissionReview<DynamicObject>>(&body.bytes) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let Ok(req): Result<AdmissionRequest<DynamicObject>, _> = review.try_into() else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let out = AdmissionResponse::from(&req).into_review();
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_vec(&out).unwrap_or_default(),
    )
        .into_response()
}

fn main() -> anyhow::Result<()> {
    // As podgrace's main does, before any other thread exists.
    podgrace_alloc_tuning::purge_at_once();
    tokio::runtime::Runtime::new()?.block_on(serve())
}

async fn serve() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:9443".into());
    let ca_out = args.next().unwrap_or_else(|| "floor-ca.pem".into());
    let pki =
        podgrace::server::certificates::generate(&["localhost".into(), "127.0.0.1".into()], 2)?;
    std::fs::write(&ca_out, &pki.ca_cert_pem)?;
    let pair = Pair::from_pem(pki.cert_pem.as_bytes(), pki.key_pem.as_bytes(), "floor")?;
    let config = tls::server_config(ReloadingCert::new(pair))?;
    let opts = ServerOptions::default();
    let budget = Arc::new(BodyBudget::new(
        opts.max_body_bytes,
        opts.body_budget_bytes,
        None,
    ));
    let routes = Router::new()
        .route("/mutate", post(allow))
        .with_state(budget);
    let app = podgrace::server::with_limits(routes, &opts);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("floor: listening on https://{addr}, CA in {ca_out}");
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    listener::serve_app(listener, config, app, opts, stop).await;
    Ok(())
}
