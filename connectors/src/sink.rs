//! The drift-event sink seam. Every sink implements [`Sink`]; [`SinkConfig`]
//! is one `sinks:` entry of the configuration, a variant per sink, and
//! builds it. Adding a sink is a module with its config and its [`Sink`]
//! impl, plus a variant here (validated, checked for secrets and built in
//! the three `match`es below).

use std::time::Duration;

use prometheus::Registry;
use serde::{Deserialize, Serialize};

use crate::kafka::{KafkaSink, KafkaSinkConfig};
use crate::stdout::{LogSink, LogSinkConfig};
use crate::webhook::{SinkMetrics, WebhookConfig, WebhookSink};
use crate::Result;

/// A drift event as a sink sees it: bytes and the fields sinks route or
/// deduplicate by.
#[derive(Debug, Clone, Copy)]
pub struct EventRecord<'a> {
    /// The event's stable id (the same episode gives the same id on every
    /// replay and restart: receivers deduplicate by it).
    pub id: &'a str,
    /// `drift` or `resolved`.
    pub kind: &'a str,
    /// Routing key: `model/feature`.
    pub key: &'a str,
    /// The event as JSON.
    pub body: &'a [u8],
}

/// What sinks are built with.
#[derive(Debug, Clone, Copy)]
pub struct SinkContext<'a> {
    /// The I/O runtime (asynchronous deliveries run on it).
    pub runtime: &'a tokio::runtime::Handle,
    /// `driftwatch_sink_events_total`, `driftwatch_sink_retries_total`.
    pub metrics: &'a SinkMetrics,
    /// Where a sink registers series of its own.
    pub registry: &'a Registry,
}

/// A running drift-event sink.
pub trait Sink: Send + std::fmt::Debug {
    /// Its name in metrics (`sink` label) and logs.
    fn name(&self) -> &str;
    /// Whether it learns, per event, that the receiver has it (an HTTP 2xx,
    /// a broker's acknowledgement), counted as `delivered` or `failed`; a
    /// sink that only writes (standard output) does not.
    fn acknowledges(&self) -> bool;
    /// Hands over one event. Never blocks the window stage: a sink behind a
    /// full queue drops the event and counts it (`dropped`).
    fn send(&self, event: &EventRecord<'_>);
    /// Stops taking events and delivers what is queued, for at most `grace`.
    /// Called from outside the I/O runtime (it may block on it).
    fn close(self: Box<Self>, grace: Duration);
}

/// A drift-event sink in the configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SinkConfig {
    /// POST to an HTTP endpoint (an Argo Events webhook EventSource).
    Webhook(WebhookConfig),
    /// Produce to a Kafka topic (key `model/feature`).
    Kafka(KafkaSinkConfig),
    /// One JSON line per event on standard output.
    Log(LogSinkConfig),
}

impl SinkConfig {
    /// Checks the settings that need no network or secret.
    pub fn validate(&self) -> Result<()> {
        match self {
            SinkConfig::Webhook(w) => w.validate(),
            SinkConfig::Kafka(k) => k.validate(),
            SinkConfig::Log(_) => Ok(()),
        }
    }

    /// Reads every secret setting (`{ env }`, `{ file }`), as starting the
    /// sink does.
    pub fn check_secrets(&self) -> Result<()> {
        match self {
            SinkConfig::Webhook(w) => w.check_secrets(),
            SinkConfig::Kafka(k) => k.check_secrets(),
            SinkConfig::Log(_) => Ok(()),
        }
    }

    /// Starts the sink.
    pub fn build(&self, ctx: &SinkContext<'_>) -> Result<Box<dyn Sink>> {
        Ok(match self {
            SinkConfig::Webhook(w) => Box::new(WebhookSink::start(w, ctx.runtime, ctx.metrics.clone(), ctx.registry)?),
            SinkConfig::Kafka(k) => Box::new(KafkaSink::start(k, ctx.metrics.clone())?),
            SinkConfig::Log(l) => Box::new(LogSink::start(l)),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(yaml: &str) -> Vec<SinkConfig> {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn every_variant_builds_its_sink() {
        // A multi-thread runtime, as `run` has: `Handle::block_on` (the webhook's close) cannot drive the
        // timers of a current-thread one.
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let registry = Registry::new();
        let metrics = SinkMetrics::register(&registry).unwrap();
        let ctx = SinkContext { runtime: runtime.handle(), metrics: &metrics, registry: &registry };
        let configs = parse(
            "- { type: log }\n- { type: webhook, name: argo, url: \"http://127.0.0.1:9/drift\" }\n- { type: kafka, brokers: \"127.0.0.1:9\", topic: drift }\n",
        );
        let sinks: Vec<Box<dyn Sink>> = configs
            .iter()
            .map(|c| {
                c.validate().unwrap();
                c.check_secrets().unwrap();
                c.build(&ctx).unwrap()
            })
            .collect();
        let seen: Vec<(&str, bool)> = sinks.iter().map(|s| (s.name(), s.acknowledges())).collect();
        assert_eq!(seen, [("log", false), ("argo", true), ("kafka", true)]);
        // The webhook registered its queue gauge under its name.
        let families = registry.gather();
        let depth = families.iter().find(|f| f.name() == "driftwatch_sink_queue_events").unwrap();
        assert_eq!(depth.get_metric()[0].get_label()[0].value(), "argo");
        // Closing waits at most the grace (nothing listens on port 9).
        let started = std::time::Instant::now();
        for s in sinks {
            s.close(Duration::from_millis(200));
        }
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_bad_sink_is_refused_with_the_reason() {
        let e = serde_yaml_ng::from_str::<Vec<SinkConfig>>("- { type: stdout }\n").unwrap_err().to_string();
        assert!(e.contains("unknown variant") && e.contains("webhook") && e.contains("log"), "{e}");
        let e = serde_yaml_ng::from_str::<Vec<SinkConfig>>("- { type: log, path: x }\n").unwrap_err().to_string();
        assert!(e.contains("path"), "{e}");
        let bad = parse("- { type: webhook, url: \"ftp://x\" }\n");
        assert!(bad[0].validate().is_err());
        // A bad duration names its field, though the tagged enum loses the path to it.
        let e =
            serde_yaml_ng::from_str::<Vec<SinkConfig>>("- { type: webhook, url: \"http://x\", timeout: soon }\n").unwrap_err().to_string();
        assert!(e.contains("timeout: bad duration \"soon\""), "{e}");
    }
}
