//! The `log` sink: one JSON line per drift event on standard output.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::sink::{EventRecord, Sink};

/// The `log` sink's settings (none).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSinkConfig {}

/// Writes each event's JSON as a line on standard output.
#[derive(Debug, Default)]
pub struct LogSink {
    closed: AtomicBool,
}

impl LogSink {
    /// The sink.
    pub fn start(_config: &LogSinkConfig) -> Self {
        Self::default()
    }
}

impl Sink for LogSink {
    fn name(&self) -> &str {
        "log"
    }

    fn acknowledges(&self) -> bool {
        false
    }

    fn send(&self, event: &EventRecord<'_>) {
        // A closed standard output (`driftwatch run | head`) loses the log lines, not the engine.
        let mut out = std::io::stdout().lock();
        if let Err(err) = out.write_all(event.body).and_then(|()| out.write_all(b"\n")) {
            if !self.closed.swap(true, Ordering::Relaxed) {
                tracing::error!("the log sink cannot write to standard output ({err}): its drift events are not logged");
            }
        }
    }

    fn close(self: Box<Self>, _grace: Duration) {
        let _ = std::io::stdout().lock().flush();
    }
}
