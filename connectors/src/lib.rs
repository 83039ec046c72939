//! Driftwatch connectors: transport only. They move bytes and
//! acknowledgements; they never know what PSI is.
//!
//! ```text
//! Kafka topics ─► kafka::KafkaSource (consumer group, batches, offsets committed after apply)
//!                      │ raw payloads + (partition slot, offset)
//!                      ▼
//!                  the engine (decode, windows, evaluation)
//!                      │ drift events as JSON bytes, keyed
//!        ┌─────────────┼──────────────────┐
//!        ▼             ▼                  ▼
//!  webhook::WebhookSink  kafka::KafkaSink   http::serve (/metrics, /healthz, /readyz)
//! ```
//!
//! Every component takes a [`prometheus::Registry`] and registers its own
//! series (names follow `driftwatch_<subsystem>_<name>_<unit>`).
#![warn(missing_docs)]

pub mod error;
pub mod http;
pub mod kafka;
pub mod secret;
pub mod webhook;

pub use error::{Error, Result};
pub use secret::SecretValue;

/// Parses a human duration (`"250ms"`, `"5s"`, `"4h"`) with humantime.
pub fn parse_duration(field: &'static str, text: &str) -> Result<std::time::Duration> {
    humantime::parse_duration(text).map_err(|e| Error::Config { field, message: format!("{text:?} is not a duration like \"5s\": {e}") })
}

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
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("t", "250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("t", "5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("t", "2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("t", "4h").unwrap(), Duration::from_secs(4 * 3600));
        assert!(parse_duration("t", "5 parsecs").is_err());
        assert!(parse_duration("t", "").is_err());
    }

    #[test]
    fn backoff_stays_within_its_cap() {
        for attempt in 0..40 {
            let d = backoff(attempt, Duration::from_millis(100), Duration::from_secs(5));
            let cap = Duration::from_millis(100 * (1u64 << attempt.min(20))).min(Duration::from_secs(5));
            assert!(d <= cap, "attempt {attempt}: {d:?} > {cap:?}");
        }
    }
}
