//! The Prometheus endpoint: `/metrics` (text exposition format 0.0.4),
//! `/healthz` (the process is alive) and `/readyz` (the source is connected
//! and has work: 503 with the cause otherwise).
//!
//! Slow and idle clients cannot hold it: see [`EndpointLimits`]. Connections
//! are counted in `driftwatch_http_connections_total{outcome}`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus::{Encoder, IntCounterVec, Opts, Registry, TextEncoder};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use crate::{Error, Result};

/// Answers `/readyz`: `Ok(())` when ready, else the reason.
pub type Readiness = Arc<dyn Fn() -> std::result::Result<(), String> + Send + Sync>;

/// What a connection may hold. With the defaults the endpoint keeps at most
/// 64 sockets open (far below usual descriptor limits, so the sinks' outgoing
/// connections are never starved) and a client that sends nothing, or sends
/// its request head too slowly, is closed after 5 s.
#[derive(Debug, Clone)]
pub struct EndpointLimits {
    /// Connections served at once (default 64). A new connection over the cap
    /// is served and the oldest connection that has not completed a request
    /// (a slow or idle client) is closed to make room, else the oldest one:
    /// idle connections cannot lock scrapes out. Must be at least 1.
    pub max_connections: usize,
    /// Time to send a complete request head (line and headers), counted from
    /// the accept and again after each response (default 5 s): a connection
    /// that is idle that long, before its first request or between keep-alive
    /// requests, is closed without a response.
    pub header_read_timeout: Duration,
    /// A connection's lifetime (default 60 s): then it finishes the request in
    /// flight and closes, or is cut `header_read_timeout` later (a client that
    /// does not read its response).
    pub max_connection_age: Duration,
}

impl Default for EndpointLimits {
    fn default() -> Self {
        Self { max_connections: 64, header_read_timeout: Duration::from_secs(5), max_connection_age: Duration::from_secs(60) }
    }
}

/// Binds `addr` and serves the endpoints on the current tokio runtime until
/// the returned task is aborted, with [`EndpointLimits::default`]. Returns the
/// bound address (port 0 picks one).
pub async fn serve(addr: SocketAddr, registry: Registry, ready: Readiness) -> Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    serve_with_limits(addr, registry, ready, EndpointLimits::default()).await
}

/// [`serve`] with explicit limits. Registers `driftwatch_http_connections_total{outcome}`
/// (`accepted`, `evicted_over_cap`, `timed_out`) in `registry`.
pub async fn serve_with_limits(
    addr: SocketAddr,
    registry: Registry,
    ready: Readiness,
    limits: EndpointLimits,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    if limits.max_connections == 0 {
        return Err(Error::Config { field: "max_connections", message: "must be at least 1".into() });
    }
    let outcomes = IntCounterVec::new(
        Opts::new("driftwatch_http_connections_total", "Connections to the metrics endpoint, by outcome"),
        &["outcome"],
    )?;
    for outcome in ["accepted", "evicted_over_cap", "timed_out"] {
        outcomes.with_label_values(&[outcome]);
    }
    registry.register(Box::new(outcomes.clone()))?;
    let listener =
        TcpListener::bind(addr).await.map_err(|source| Error::Io { what: format!("binding the metrics address {addr}"), source })?;
    let bound = listener.local_addr().map_err(|source| Error::Io { what: "reading the metrics address".into(), source })?;
    let shared = Arc::new(Shared { registry, ready, limits, outcomes, open: Mutex::default() });
    let task = tokio::spawn(async move {
        let mut next_id = 0u64;
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                // Out of file descriptors and the like: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            next_id += 1;
            let (requests, evicted) = shared.admit(next_id);
            shared.outcomes.with_label_values(&["accepted"]).inc();
            tokio::spawn(connection(Arc::clone(&shared), next_id, stream, requests, evicted));
        }
    });
    Ok((bound, task))
}

/// What every connection task sees.
struct Shared {
    registry: Registry,
    ready: Readiness,
    limits: EndpointLimits,
    outcomes: IntCounterVec,
    /// The open connections by id (ids grow, so the first is the oldest).
    open: Mutex<BTreeMap<u64, Slot>>,
}

struct Slot {
    /// Requests whose head was read on this connection.
    requests: Arc<AtomicU64>,
    /// Closes the connection.
    evict: oneshot::Sender<()>,
}

impl Shared {
    /// Makes room for connection `id` (closing the oldest connection without a
    /// completed request, else the oldest) and records it.
    fn admit(&self, id: u64) -> (Arc<AtomicU64>, oneshot::Receiver<()>) {
        let requests = Arc::new(AtomicU64::new(0));
        let (evict, evicted) = oneshot::channel();
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        while open.len() >= self.limits.max_connections {
            let idle = open.iter().find(|(_, slot)| slot.requests.load(Ordering::Relaxed) == 0);
            let Some(victim) = idle.or_else(|| open.iter().next()).map(|(&id, _)| id) else { break };
            if let Some(slot) = open.remove(&victim) {
                // Already gone if its task is ending on its own.
                let _sent = slot.evict.send(());
            }
        }
        open.insert(id, Slot { requests: Arc::clone(&requests), evict });
        (requests, evicted)
    }

    fn release(&self, id: u64) {
        self.open.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
    }
}

/// Serves one connection within the limits, then counts how it ended.
async fn connection(shared: Arc<Shared>, id: u64, stream: TcpStream, requests: Arc<AtomicU64>, evicted: oneshot::Receiver<()>) {
    let service = {
        let shared = Arc::clone(&shared);
        hyper::service::service_fn(move |req| {
            requests.fetch_add(1, Ordering::Relaxed);
            let response = respond(&req, &shared.registry, &shared.ready);
            async move { Ok::<_, Infallible>(response) }
        })
    };
    let limits = &shared.limits;
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    // A client that hangs up mid-request is its own business; a timeout is counted.
    let timed_out = |r: std::result::Result<(), hyper::Error>| r.err().is_some_and(|e| e.is_timeout()).then_some("timed_out");
    let outcome = tokio::select! {
        r = conn.as_mut() => timed_out(r),
        _ = evicted => Some("evicted_over_cap"),
        () = tokio::time::sleep(limits.max_connection_age) => {
            conn.as_mut().graceful_shutdown();
            match tokio::time::timeout(limits.header_read_timeout, conn.as_mut()).await {
                Ok(r) => timed_out(r),
                Err(_) => Some("timed_out"),
            }
        }
    };
    // Counted while the socket is still open, so a client that sees it close also sees the count.
    if let Some(outcome) = outcome {
        shared.outcomes.with_label_values(&[outcome]).inc();
    }
    shared.release(id);
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
