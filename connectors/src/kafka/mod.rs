//! Kafka transport: a consumer-group source that commits only what the
//! engine has applied, and an idempotent producer sink.

mod sink;
mod source;

use std::collections::BTreeMap;

use rdkafka::ClientConfig;

use crate::SecretValue;

pub use sink::{KafkaSink, KafkaSinkConfig};
pub use source::{KafkaSource, KafkaSourceConfig, Message, PollOutcome, RevokeHook, SourceHandle};

/// Settings our code owns; passing them through `options` is refused, since
/// overriding them would break the offset contract or the idempotent producer.
const OWNED_CONSUMER: &[&str] = &["bootstrap.servers", "group.id", "enable.auto.commit", "enable.auto.offset.store"];
const OWNED_PRODUCER: &[&str] = &["bootstrap.servers"];

/// The client settings: `options` resolved (a `{ env }` or `{ file }` value
/// read now). librdkafka's own errors name the property, never its value; a
/// client config is never printed (its `Debug` shows values).
fn client_config(brokers: &str, options: &BTreeMap<String, SecretValue>, owned: &[&str]) -> crate::Result<ClientConfig> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers);
    for (k, v) in options {
        if owned.contains(&k.as_str()) {
            return Err(crate::Error::Config {
                field: "options",
                message: format!("{k:?} is set by driftwatch itself; use the dedicated field"),
            });
        }
        c.set(k, v.resolve(&format!("options.{k}"))?);
    }
    Ok(c)
}
