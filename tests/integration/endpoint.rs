//! The metrics endpoint (`connectors::http`) against slow and idle clients:
//! loopback only, small limits, every wait bounded.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use driftwatch_connectors::http::{serve_with_limits, EndpointLimits};
use driftwatch_connectors::webhook::{Delivery, SinkMetrics, WebhookConfig, WebhookSink};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;

/// Idle connections a test holds open.
const IDLE: usize = 400;

fn limits() -> EndpointLimits {
    EndpointLimits { max_connections: 64, header_read_timeout: Duration::from_secs(1), max_connection_age: Duration::from_secs(30) }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    crate::live::http_get(addr.port(), path)
}

/// `driftwatch_http_connections_total{outcome="…"}` in a scrape.
fn connections(scrape: &str, outcome: &str) -> u64 {
    let prefix = format!("driftwatch_http_connections_total{{outcome=\"{outcome}\"}} ");
    scrape.lines().find_map(|l| l.strip_prefix(prefix.as_str())).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

/// Whether the server closed `s` (EOF or reset) before `deadline`; whatever it
/// sent first is read and ignored.
fn closed_by(s: &mut TcpStream, deadline: Instant) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || s.set_read_timeout(Some(left)).is_err() {
            return false;
        }
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return false,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return true, // reset
        }
    }
}

/// A local webhook receiver answering 200 to every request; returns its address and the request count.
fn receiver(rt: &tokio::runtime::Runtime) -> (SocketAddr, Arc<AtomicUsize>) {
    let received = Arc::new(AtomicUsize::new(0));
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::clone(&received);
    rt.spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let count = Arc::clone(&count);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let count = Arc::clone(&count);
                    async move {
                        let _body = req.into_body().collect().await;
                        count.fetch_add(1, Ordering::Relaxed);
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(Bytes::from_static(b"ok"))))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(stream), service).await;
            });
        }
    });
    (addr, received)
}

#[test]
fn idle_partial_header_connections_are_closed_and_metrics_keep_answering() {
    let rt = runtime();
    let registry = Default::default();
    let sink_metrics = SinkMetrics::register(&registry).unwrap();
    let limits = limits();
    let ready = Arc::new(|| Ok(()));
    let (addr, server) = rt.block_on(serve_with_limits("127.0.0.1:0".parse().unwrap(), registry.clone(), ready, limits.clone())).unwrap();

    // Slowloris: a request line and one header, then nothing.
    let opened = Instant::now();
    let mut idle: Vec<TcpStream> = (0..IDLE)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            // The server may already have closed it to make room: that is the point.
            let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n");
            s
        })
        .collect();

    // (a) /metrics answers at once while they are held.
    let asked = Instant::now();
    let (status, body) = http_get(addr, "/metrics").expect("/metrics unreachable while idle connections are held");
    assert_eq!(status, 200);
    assert!(asked.elapsed() < Duration::from_secs(3), "/metrics took {:?}", asked.elapsed());
    assert!(body.contains("driftwatch_http_connections_total"), "{body}");

    // Outgoing (webhook) connections of the same process still work: every delivery arrives.
    let (receiver_addr, received) = receiver(&rt);
    let config: WebhookConfig =
        serde_json::from_value(serde_json::json!({ "url": format!("http://{receiver_addr}/drift"), "timeout": "3s", "max_retries": 0 }))
            .unwrap();
    let sink = WebhookSink::start(&config, rt.handle(), sink_metrics.clone(), &registry).unwrap();
    const DELIVERIES: u64 = 20;
    for i in 0..DELIVERIES {
        let body = format!("{{\"n\":{i}}}").into_bytes();
        sink.send(Delivery { id: format!("event-{i}"), kind: "io.driftwatch.drift".into(), body, time: "2024-01-01T00:00:00Z".into() });
    }
    let outcome = |o: &str| sink_metrics.events.with_label_values(&["webhook", o]).get();
    let started = Instant::now();
    while outcome("delivered") + outcome("failed") < DELIVERIES && started.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!((outcome("delivered"), outcome("failed")), (DELIVERIES, 0), "webhook deliveries while {IDLE} idle connections are held");
    assert_eq!(received.load(Ordering::Relaxed), DELIVERIES as usize);

    // (b) every idle connection is closed by the server: over the cap at once, the rest at the header timeout.
    let deadline = opened + limits.header_read_timeout + Duration::from_secs(5);
    let still_open = idle.iter_mut().map(|s| closed_by(s, deadline)).filter(|closed| !closed).count();
    assert_eq!(still_open, 0, "{still_open} of {IDLE} idle connections still open {:?} after opening", opened.elapsed());

    // And counted.
    let scrape = http_get(addr, "/metrics").unwrap().1;
    let (evicted, timed_out) = (connections(&scrape, "evicted_over_cap"), connections(&scrape, "timed_out"));
    assert!(evicted + timed_out >= IDLE as u64, "evicted {evicted} + timed out {timed_out} < {IDLE}\n{scrape}");
    assert!(timed_out >= 1, "{scrape}");
    assert!(connections(&scrape, "accepted") > IDLE as u64, "{scrape}");

    rt.block_on(sink.close(Duration::from_secs(1)));
    server.abort();
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_header_timeout() {
    let rt = runtime();
    let limits = limits();
    let ready = Arc::new(|| Ok(()));
    let (addr, server) = rt.block_on(serve_with_limits("127.0.0.1:0".parse().unwrap(), Default::default(), ready, limits.clone())).unwrap();
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut response = Vec::new();
    let mut buf = [0u8; 1024];
    while !response.ends_with(b"ok\n") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed before the response: {}", String::from_utf8_lossy(&response));
        response.extend_from_slice(&buf[..n]);
    }
    assert!(response.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&response));
    // Kept alive, then idle: closed after about the header timeout.
    let idle_since = Instant::now();
    assert!(closed_by(&mut s, idle_since + limits.header_read_timeout + Duration::from_secs(5)), "idle keep-alive connection kept open");
    assert!(idle_since.elapsed() >= limits.header_read_timeout / 2, "closed too early: {:?}", idle_since.elapsed());
    server.abort();
}

#[test]
fn a_zero_connection_cap_is_refused() {
    let rt = runtime();
    let limits = EndpointLimits { max_connections: 0, ..EndpointLimits::default() };
    let served = rt.block_on(serve_with_limits("127.0.0.1:0".parse().unwrap(), Default::default(), Arc::new(|| Ok(())), limits));
    assert!(served.is_err());
}
