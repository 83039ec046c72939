//! The Prometheus endpoint: `/metrics` (text exposition format 0.0.4),
//! `/healthz` (the process is alive) and `/readyz` (the source is connected
//! and has work: 503 with the cause otherwise).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus::{Encoder, Registry, TextEncoder};
use tokio::net::TcpListener;

use crate::{Error, Result};

/// Answers `/readyz`: `Ok(())` when ready, else the reason.
pub type Readiness = Arc<dyn Fn() -> std::result::Result<(), String> + Send + Sync>;

/// Binds `addr` and serves the endpoints on the current tokio runtime until
/// the returned task is aborted. Returns the bound address (port 0 picks one).
pub async fn serve(addr: SocketAddr, registry: Registry, ready: Readiness) -> Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await.map_err(|source| Error::Io { what: format!("binding the metrics address {addr}"), source })?;
    let bound = listener.local_addr().map_err(|source| Error::Io { what: "reading the metrics address".into(), source })?;
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                // Out of file descriptors and the like: back off instead of spinning.
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            };
            let (registry, ready) = (registry.clone(), Arc::clone(&ready));
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let response = respond(&req, &registry, &ready);
                    async move { Ok::<_, Infallible>(response) }
                });
                // A client that hangs up mid-request is its own business.
                let _closed = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok((bound, task))
}

fn respond(req: &Request<Incoming>, registry: &Registry, ready: &Readiness) -> Response<Full<Bytes>> {
    let text = |status: StatusCode, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"));
        r
    };
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n".into());
    }
    match req.uri().path() {
        "/metrics" => {
            let encoder = TextEncoder::new();
            let mut body = Vec::with_capacity(16 * 1024);
            match encoder.encode(&registry.gather(), &mut body) {
                Ok(()) => {
                    let mut r = Response::new(Full::new(Bytes::from(body)));
                    if let Ok(v) = hyper::header::HeaderValue::from_str(encoder.format_type()) {
                        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
                    }
                    r
                }
                Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("encoding metrics: {e}\n")),
            }
        }
        "/healthz" => text(StatusCode::OK, "ok\n".into()),
        "/readyz" => match ready() {
            Ok(()) => text(StatusCode::OK, "ready\n".into()),
            Err(why) => text(StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}\n")),
        },
        _ => text(StatusCode::NOT_FOUND, "not found: try /metrics, /healthz or /readyz\n".into()),
    }
}
