//! Driftwatch connectors: transport only. They move bytes and
//! acknowledgements; they never know what PSI is.
//!
//! ```text
//! Kafka topics ─► kafka::KafkaSource (consumer group, offsets committed after apply) ─┐ source::Source
//! JSONL / CSV / Parquet files ─► file::FileSource (lines or rows, through table) ─────┤ (batches of raw events
//!                                                                                      │  with their positions)
//!                      ┌───────────────────────────────────────────────────────────────┘
//!                      ▼
//!                  the engine (decode, windows, evaluation)
//!                      │ drift events as sink::EventRecord (id, type, key, JSON bytes)
//!        ┌─────────────┼──────────────────┬──────────────────┐
//!        ▼             ▼                  ▼                  ▼
//!  webhook::WebhookSink  kafka::KafkaSink   stdout::LogSink    http::serve (/metrics, /healthz, /readyz)
//! ```
//!
//! Sources are `Box<dyn source::Source>`s (a live one built from
//! `source::SourceConfig`, a file opened by path), sinks `Box<dyn sink::Sink>`s
//! built from `sink::SinkConfig`: a new connector is a module and a variant.
//! `table` reads tabular files through DataFusion (reference tables, and the
//! rows of CSV and Parquet inputs).
//!
//! Every component takes a [`prometheus::Registry`] and registers its own
//! series (names follow `driftwatch_<subsystem>_<name>_<unit>`).
#![warn(missing_docs)]

pub mod duration;
pub mod error;
pub mod file;
pub mod http;
pub mod kafka;
pub mod secret;
pub mod sink;
pub mod source;
pub mod stdout;
pub mod table;
pub mod webhook;

pub use duration::HumanDuration;
pub use error::{Error, Result};
pub use secret::SecretValue;
pub use sink::{EventRecord, Sink, SinkConfig, SinkContext};
pub use source::{Batch, BatchPool, Feed, Position, Progress, Source, SourceConfig, SourceContext, SourceHandle, SourceStats};

/// Exponential backoff with full jitter: a random delay in
/// `[0, min(max, base · 2^attempt)]` (AWS's "full jitter").
pub fn backoff(attempt: u32, base: std::time::Duration, max: std::time::Duration) -> std::time::Duration {
    use rand::Rng;
    let cap = base.saturating_mul(1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX)).min(max);
    let millis = cap.as_millis().min(u64::MAX as u128) as u64;
    std::time::Duration::from_millis(rand::thread_rng().gen_range(0..=millis))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn backoff_stays_within_its_cap() {
        for attempt in 0..40 {
            let d = backoff(attempt, Duration::from_millis(100), Duration::from_secs(5));
            let cap = Duration::from_millis(100 * (1u64 << attempt.min(20))).min(Duration::from_secs(5));
            assert!(d <= cap, "attempt {attempt}: {d:?} > {cap:?}");
        }
    }
}
