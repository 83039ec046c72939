//! The webhook sink: POSTs each drift event to an HTTP endpoint such as an
//! Argo Events webhook EventSource.
//!
//! Events wait in a bounded queue and are delivered in order by one task:
//! a per-request timeout, retries with exponential backoff and full jitter on
//! connection errors, timeouts, 429 and 5xx (other 4xx are final), and
//! headers `Idempotency-Key`, CloudEvents binary mode (`ce-id`, `ce-type`,
//! `ce-source`, `ce-specversion`) and, with a secret, an HMAC-SHA256
//! signature. A full queue drops the event and counts it: a failing receiver
//! never stalls detection.

use std::time::Duration;

use hmac::{Hmac, Mac};
use prometheus::{IntCounterVec, IntGauge, Opts, Registry};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tokio::sync::mpsc;

use crate::{backoff, Error, HumanDuration, Result, SecretValue};

fn default_timeout() -> HumanDuration {
    HumanDuration::from_secs(5)
}
fn timeout<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<HumanDuration, D::Error> {
    crate::duration::named(d, "timeout")
}
fn default_retries() -> u32 {
    5
}
fn default_queue() -> usize {
    10_000
}
fn default_source() -> String {
    "driftwatch".into()
}
fn default_signature_header() -> String {
    "X-Driftwatch-Signature".into()
}

/// Webhook sink settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Sink name (metrics label); defaults to `webhook`.
    #[serde(default)]
    pub name: Option<String>,
    /// Endpoint, `http://` or `https://`.
    pub url: String,
    /// Per-request timeout (`"5s"`).
    #[serde(default = "default_timeout", deserialize_with = "timeout")]
    pub timeout: HumanDuration,
    /// Retries after the first attempt before the event counts as failed.
    #[serde(default = "default_retries")]
    pub max_retries: u32,
    /// Events waiting for delivery; more are dropped and counted.
    #[serde(default = "default_queue")]
    pub queue_events: usize,
    /// CloudEvents `ce-source`.
    #[serde(default = "default_source")]
    pub source: String,
    /// Shared secret for the HMAC-SHA256 signature header (`sha256=<hex>` of the body).
    #[serde(default)]
    pub hmac_secret: Option<SecretValue>,
    /// Header that carries the signature.
    #[serde(default = "default_signature_header")]
    pub signature_header: String,
}

impl WebhookConfig {
    /// Checks the values (URL scheme, durations) without connecting.
    pub fn validate(&self) -> Result<()> {
        let url = reqwest::Url::parse(&self.url).map_err(|e| Error::Config { field: "url", message: format!("{:?}: {e}", self.url) })?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(Error::Config { field: "url", message: format!("scheme must be http or https, got {:?}", url.scheme()) });
        }
        if self.queue_events == 0 {
            return Err(Error::Config { field: "queue_events", message: "must be at least 1".into() });
        }
        Ok(())
    }

    /// Reads the secret (`{ env }`, `{ file }`), as starting the sink does.
    pub fn check_secrets(&self) -> Result<()> {
        self.hmac_secret.as_ref().map_or(Ok(()), |s| s.resolve("hmac_secret").map(drop))
    }

    /// The metrics label.
    pub fn sink_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| "webhook".into())
    }
}

/// One event to deliver.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Stable id: `Idempotency-Key` and `ce-id`.
    pub id: String,
    /// CloudEvents type, e.g. `io.driftwatch.drift`.
    pub kind: String,
    /// The JSON body.
    pub body: Vec<u8>,
    /// When the event was produced (CloudEvents `ce-time`, RFC 3339).
    pub time: String,
}

/// Delivery counters shared by all sinks: `driftwatch_sink_events_total{sink, outcome}`.
#[derive(Debug, Clone)]
pub struct SinkMetrics {
    /// Outcomes: `delivered`, `failed` (retries exhausted or a final 4xx), `dropped` (queue full).
    pub events: IntCounterVec,
    /// Retries: `driftwatch_sink_retries_total{sink}`.
    pub retries: IntCounterVec,
}

impl SinkMetrics {
    /// Registers the sink families.
    pub fn register(registry: &Registry) -> Result<Self> {
        let events = IntCounterVec::new(
            Opts::new("driftwatch_sink_events_total", "Drift events handed to a sink, by outcome"),
            &["sink", "outcome"],
        )?;
        let retries = IntCounterVec::new(Opts::new("driftwatch_sink_retries_total", "Delivery attempts retried"), &["sink"])?;
        registry.register(Box::new(events.clone()))?;
        registry.register(Box::new(retries.clone()))?;
        Ok(Self { events, retries })
    }
}

/// A running webhook sink.
#[derive(Debug)]
pub struct WebhookSink {
    name: String,
    tx: mpsc::Sender<Delivery>,
    metrics: SinkMetrics,
    depth: IntGauge,
    task: tokio::task::JoinHandle<()>,
    runtime: tokio::runtime::Handle,
}

impl WebhookSink {
    /// Starts the delivery task on `runtime`.
    pub fn start(config: &WebhookConfig, runtime: &tokio::runtime::Handle, metrics: SinkMetrics, registry: &Registry) -> Result<Self> {
        config.validate()?;
        let name = config.sink_name();
        let timeout = config.timeout.get();
        let client = reqwest::Client::builder().timeout(timeout).connect_timeout(timeout).build()?;
        let depth = IntGauge::with_opts(
            Opts::new("driftwatch_sink_queue_events", "Drift events waiting in a sink's queue").const_label("sink", name.clone()),
        )?;
        registry.register(Box::new(depth.clone()))?;
        let (tx, rx) = mpsc::channel(config.queue_events);
        let worker = Worker {
            name: name.clone(),
            client,
            url: config.url.clone(),
            source: config.source.clone(),
            secret: config.hmac_secret.as_ref().map(|s| s.resolve("hmac_secret")).transpose()?,
            signature_header: config.signature_header.clone(),
            max_retries: config.max_retries,
            metrics: metrics.clone(),
            depth: depth.clone(),
        };
        let task = runtime.spawn(worker.run(rx));
        Ok(Self { name, tx, metrics, depth, task, runtime: runtime.clone() })
    }

    /// Queues an event; never blocks. A full queue drops it (counted).
    pub fn send(&self, delivery: Delivery) {
        match self.tx.try_send(delivery) {
            Ok(()) => self.depth.inc(),
            Err(_) => self.metrics.events.with_label_values(&[&self.name, "dropped"]).inc(),
        }
    }

    /// Stops accepting events and waits up to `grace` for the queue to drain.
    pub async fn close(self, grace: Duration) {
        drop(self.tx);
        let mut task = self.task;
        if tokio::time::timeout(grace, &mut task).await.is_err() {
            task.abort();
        }
    }
}

impl crate::sink::Sink for WebhookSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn acknowledges(&self) -> bool {
        true
    }

    fn send(&self, event: &crate::sink::EventRecord<'_>) {
        WebhookSink::send(
            self,
            Delivery {
                id: event.id.to_owned(),
                kind: format!("io.driftwatch.{}", event.kind),
                body: event.body.to_vec(),
                time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            },
        );
    }

    /// Blocks on the I/O runtime (call it from outside the runtime).
    fn close(self: Box<Self>, grace: Duration) {
        let runtime = self.runtime.clone();
        runtime.block_on(WebhookSink::close(*self, grace));
    }
}

struct Worker {
    name: String,
    client: reqwest::Client,
    url: String,
    source: String,
    secret: Option<String>,
    signature_header: String,
    max_retries: u32,
    metrics: SinkMetrics,
    depth: IntGauge,
}

impl Worker {
    async fn run(self, mut rx: mpsc::Receiver<Delivery>) {
        while let Some(d) = rx.recv().await {
            self.depth.dec();
            let outcome = self.deliver(&d).await;
            self.metrics.events.with_label_values(&[&self.name, outcome]).inc();
        }
    }

    async fn deliver(&self, d: &Delivery) -> &'static str {
        let signature = self.secret.as_ref().and_then(|secret| {
            let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).ok()?;
            mac.update(&d.body);
            Some(format!("sha256={}", hex(&mac.finalize().into_bytes())))
        });
        for attempt in 0..=self.max_retries {
            if attempt > 0 {
                self.metrics.retries.with_label_values(&[&self.name]).inc();
                tokio::time::sleep(backoff(attempt - 1, Duration::from_millis(200), Duration::from_secs(30))).await;
            }
            let mut request = self
                .client
                .post(&self.url)
                .header("content-type", "application/json")
                .header("idempotency-key", &d.id)
                .header("ce-id", &d.id)
                .header("ce-type", &d.kind)
                .header("ce-source", &self.source)
                .header("ce-specversion", "1.0")
                .header("ce-time", &d.time)
                .body(d.body.clone());
            if let Some(sig) = &signature {
                request = request.header(self.signature_header.as_str(), sig);
            }
            match request.send().await {
                Ok(r) if r.status().is_success() => return "delivered",
                Ok(r) if r.status().as_u16() == 429 || r.status().is_server_error() => continue,
                Ok(_) => return "failed", // another 4xx: retrying the same body cannot help
                Err(_) => continue,       // connect error or timeout
            }
        }
        "failed"
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _infallible = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_signature_matches_rfc_4231_case_2() {
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(hex(&mac.finalize().into_bytes()), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }

    #[test]
    fn bad_urls_are_refused() {
        let mut c: WebhookConfig = serde_json::from_str(r#"{"url":"ftp://x/"}"#).unwrap();
        assert!(c.validate().is_err());
        c.url = "http://127.0.0.1:12000/drift".into();
        c.validate().unwrap();
    }
}
