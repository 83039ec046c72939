//! Kafka transport: a consumer-group source that commits only what the
//! engine has applied, and an idempotent producer sink.

mod sink;
mod source;

use std::collections::BTreeMap;

use rdkafka::ClientConfig;

use crate::SecretValue;

pub use sink::{KafkaSink, KafkaSinkConfig};
pub use source::{KafkaHandle, KafkaSource, KafkaSourceConfig, Message, PollOutcome, RevokeHook};

/// Settings our code owns; passing them through `options` is refused, since
/// overriding them would break the offset contract or the idempotent producer.
const OWNED_CONSUMER: &[&str] = &["bootstrap.servers", "group.id", "enable.auto.commit", "enable.auto.offset.store"];
const OWNED_PRODUCER: &[&str] = &["bootstrap.servers"];

/// The client settings: `options` resolved (a `{ env }` or `{ file }` value
/// read now). A client config is never printed, and librdkafka's errors
/// about it go through [`client_error`], which drops the value.
fn client_config(brokers: &str, options: &BTreeMap<String, SecretValue>, owned: &[&str]) -> crate::Result<ClientConfig> {
    check_owned(options, owned)?;
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers);
    for (k, v) in options {
        c.set(k, v.resolve(&format!("options.{k}"))?);
    }
    // librdkafka checks names and values here: an unknown property or a
    // refused value fails now, without the value in the error.
    c.create_native_config().map_err(|e| client_error("checking the client settings", e))?;
    Ok(c)
}

/// Refuses the settings our code owns.
fn check_owned(options: &BTreeMap<String, SecretValue>, owned: &[&str]) -> crate::Result<()> {
    match options.keys().find(|k| owned.contains(&k.as_str())) {
        Some(k) => {
            Err(crate::Error::Config { field: "options", message: format!("{k:?} is set by driftwatch itself; use the dedicated field") })
        }
        None => Ok(()),
    }
}

/// A librdkafka error as ours. A configuration error names the property and
/// librdkafka's reason but not the value (rdkafka's own message prints it,
/// and the value may be a secret).
fn client_error(what: &'static str, source: rdkafka::error::KafkaError) -> crate::Error {
    match source {
        rdkafka::error::KafkaError::ClientConfig(_, description, key, _) => {
            crate::Error::Config { field: "options", message: format!("{key}: {description}") }
        }
        source => crate::Error::Kafka { what, source },
    }
}
