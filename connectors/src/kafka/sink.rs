//! The Kafka sink: produces each record to a topic with an idempotent
//! producer (`enable.idempotence=true`, `acks=all`), so an Argo Events Kafka
//! EventSource (or anything else) can consume drift events, and the dead
//! letters of the source go to their own topic with the cause in headers.

use std::collections::BTreeMap;
use std::time::Duration;

use prometheus::IntCounterVec;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use serde::{Deserialize, Serialize};

use crate::webhook::SinkMetrics;
use crate::SecretValue;
use crate::{Error, Result};

/// Kafka sink settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSinkConfig {
    /// Sink name (metrics label); defaults to `kafka`.
    #[serde(default)]
    pub name: Option<String>,
    /// `bootstrap.servers`.
    pub brokers: String,
    /// Topic to produce to.
    pub topic: String,
    /// librdkafka producer settings passed through (`security.protocol`, `sasl.*`, `ssl.*`, `linger.ms` …).
    #[serde(default)]
    pub options: BTreeMap<String, SecretValue>,
}

impl KafkaSinkConfig {
    /// Checks the values without connecting or reading secrets.
    pub fn validate(&self) -> Result<()> {
        if self.topic.is_empty() {
            return Err(Error::Config { field: "topic", message: "must not be empty".into() });
        }
        super::check_owned(&self.options, super::OWNED_PRODUCER)
    }

    /// Reads the secret options and has librdkafka check every setting, as
    /// starting the sink does.
    pub fn check_secrets(&self) -> Result<()> {
        super::client_config(&self.brokers, &self.options, super::OWNED_PRODUCER).map(|_| ())
    }

    /// The metrics label.
    pub fn sink_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| "kafka".into())
    }
}

struct DeliveryCounter {
    name: String,
    events: IntCounterVec,
}

impl ClientContext for DeliveryCounter {
    fn error(&self, error: KafkaError, reason: &str) {
        crate::kafka::source::log_rate_limited(&format!("kafka sink {}: {error}: {reason}", self.name));
    }
}

impl ProducerContext for DeliveryCounter {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let outcome = if result.is_ok() { "delivered" } else { "failed" };
        self.events.with_label_values(&[&self.name, outcome]).inc();
    }
}

/// A running Kafka producer.
pub struct KafkaSink {
    name: String,
    topic: String,
    producer: ThreadedProducer<DeliveryCounter>,
    metrics: SinkMetrics,
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink").field("name", &self.name).field("topic", &self.topic).finish_non_exhaustive()
    }
}

impl KafkaSink {
    /// Creates the producer (it connects in the background).
    pub fn start(config: &KafkaSinkConfig, metrics: SinkMetrics) -> Result<Self> {
        let name = config.sink_name();
        let mut c = super::client_config(&config.brokers, &config.options, super::OWNED_PRODUCER)?;
        for (k, v) in [("enable.idempotence", "true"), ("acks", "all"), ("linger.ms", "5")] {
            if !config.options.contains_key(k) {
                c.set(k, v);
            }
        }
        let context = DeliveryCounter { name: name.clone(), events: metrics.events.clone() };
        let producer: ThreadedProducer<DeliveryCounter> =
            c.create_with_context(context).map_err(|source| super::client_error("creating the producer", source))?;
        Ok(Self { name, topic: config.topic.clone(), producer, metrics })
    }

    /// Queues a record; never blocks. A full local queue drops it (counted as `dropped`).
    pub fn send(&self, key: &str, payload: &[u8], headers: &[(&str, &[u8])]) {
        let mut h = OwnedHeaders::new_with_capacity(headers.len());
        for (k, v) in headers {
            h = h.insert(Header { key: k, value: Some(*v) });
        }
        let record = BaseRecord::to(&self.topic).key(key).payload(payload).headers(h);
        if let Err((e, _)) = self.producer.send(record) {
            let outcome = match e {
                KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull) => "dropped",
                _ => "failed",
            };
            self.metrics.events.with_label_values(&[&self.name, outcome]).inc();
        }
    }

    /// Queues a record, waiting while the local queue is full (for producers
    /// of traffic, where backpressure is wanted). Returns false if it failed.
    pub fn send_blocking(&self, key: &str, payload: &[u8]) -> bool {
        let mut record = BaseRecord::to(&self.topic).key(key).payload(payload);
        loop {
            match self.producer.send(record) {
                Ok(()) => return true,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(_) => {
                    self.metrics.events.with_label_values(&[&self.name, "failed"]).inc();
                    return false;
                }
            }
        }
    }

    /// Waits up to `grace` for queued records to be delivered.
    pub fn flush(&self, grace: Duration) {
        if self.producer.flush(grace).is_err() {
            log_flush_timeout(&self.name, self.producer.in_flight_count());
        }
    }
}

fn log_flush_timeout(name: &str, left: i32) {
    tracing::warn!("kafka sink {name}: {left} records still in flight at shutdown");
}

impl crate::sink::Sink for KafkaSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn acknowledges(&self) -> bool {
        true
    }

    fn send(&self, event: &crate::sink::EventRecord<'_>) {
        KafkaSink::send(self, event.key, event.body, &[("event_id", event.id.as_bytes()), ("type", event.kind.as_bytes())]);
    }

    fn close(self: Box<Self>, grace: Duration) {
        self.flush(grace);
    }
}
