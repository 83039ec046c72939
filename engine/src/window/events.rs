//! What the window stage emits: evaluation lines, drift and resolved events
//! with their stable ids, and the [`Outcome`] that collects them.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::alerting::{DriftState, Transition};

/// One evaluation of one (column, metric) at a window.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    /// Model name.
    pub model: String,
    /// Version of the window's last event.
    pub model_version: Option<String>,
    /// Column name.
    pub feature: String,
    /// `feature`, `prediction` or `label` (label drift of a model with `quality`).
    pub kind: &'static str,
    /// Metric name.
    pub metric: &'static str,
    /// Statistic value; `null` with `status: insufficient_data`.
    pub value: Option<f64>,
    /// p-value after correction (tests only).
    pub p_value: Option<f64>,
    /// p-value before correction (tests only).
    pub p_value_raw: Option<f64>,
    /// Statistic threshold.
    pub threshold: Option<f64>,
    /// p-value threshold.
    pub p_value_threshold: Option<f64>,
    /// How the value was computed (`exact`, `asymptotic`, `sketch`, `histogram`, `counts`).
    pub method: &'static str,
    /// For sketch KS: the exact D lies in [value, value + error_bound].
    pub error_bound: Option<f64>,
    /// `ok` or `insufficient_data`.
    pub status: &'static str,
    /// Whether the alert condition holds.
    pub breach: bool,
    /// Drift state after this evaluation (`ok` or `drifting`).
    pub state: &'static str,
    /// Label drift: the window's predictions with their label so far.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labelled: Option<u64>,
    /// Label drift: whether `label_ttl` has passed the window's end (only
    /// final evaluations step the drift state).
    #[serde(rename = "final", skip_serializing_if = "Option::is_none")]
    pub is_final: Option<bool>,
    /// Window bounds.
    pub window: WindowBounds,
}

/// Where a window lies in the model's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowBounds {
    /// Index (among the model's windowed events) of the first event, count windows.
    pub start_index: Option<u64>,
    /// Index after the last event, count windows.
    pub end_index: Option<u64>,
    /// Event time of the window start (ms): the pane start for time windows, the earliest event otherwise.
    pub start_ms: Option<i64>,
    /// Event time of the window end (ms): the pane end for time windows, the latest event otherwise.
    pub end_ms: Option<i64>,
    /// Events in the window.
    pub count: u64,
}

/// A drift or resolved event.
#[derive(Debug, Clone, Serialize)]
pub struct DriftEvent {
    /// Stable id: the same episode gives the same id on every replay and retry.
    pub event_id: String,
    /// `drift` or `resolved`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// What drifted beyond the features: `quality`, `estimated_quality` or
    /// `label` (feature and dataset drift leave it out).
    #[serde(rename = "kind", skip_serializing_if = "Option::is_none")]
    pub signal: Option<&'static str>,
    /// Model name.
    pub model: String,
    /// Model version of the window's last event.
    pub model_version: Option<String>,
    /// Column name, or `*` for dataset drift.
    pub feature: String,
    /// Metric name, or `dataset` for dataset drift.
    pub metric: &'static str,
    /// The statistic (dataset drift: the share of drifting columns).
    pub value: Option<f64>,
    /// Its threshold.
    pub threshold: Option<f64>,
    /// p-value, where defined.
    pub p_value: Option<f64>,
    /// p-value threshold, where defined.
    pub p_value_threshold: Option<f64>,
    /// The window that triggered the event.
    pub window: WindowBounds,
    /// Reference rows.
    pub reference_rows: u64,
    /// Window position where the episode started (index for count windows, ms for time windows).
    pub episode_start: i64,
    /// When detected: the window's end event time (RFC 3339), so replays are reproducible.
    pub detected_at: String,
}

/// The window an event is about: what every feature and dataset event of
/// one evaluation shares.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EventSite<'a> {
    pub(crate) model: &'a str,
    pub(crate) version: Option<&'a str>,
    pub(crate) window: WindowBounds,
    pub(crate) reference_rows: u64,
}

/// The statistic an event reports.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reading<'a> {
    pub(crate) feature: &'a str,
    pub(crate) metric: &'static str,
    pub(crate) value: Option<f64>,
    pub(crate) threshold: Option<f64>,
    pub(crate) p_value: Option<f64>,
    pub(crate) p_value_threshold: Option<f64>,
}

impl EventSite<'_> {
    /// The `kind` (`drift` or `resolved`) event of the episode `state` is in.
    /// Feature and dataset drift: no signal, the id hashed over the bare kind.
    pub(crate) fn event(&self, kind: &'static str, reading: Reading<'_>, state: &DriftState) -> DriftEvent {
        DriftEvent {
            event_id: event_id(self.model, reading.feature, reading.metric, state.episode_start, kind),
            kind,
            signal: None,
            model: self.model.to_owned(),
            model_version: self.version.map(str::to_owned),
            feature: reading.feature.to_owned(),
            metric: reading.metric,
            value: reading.value,
            threshold: reading.threshold,
            p_value: reading.p_value,
            p_value_threshold: reading.p_value_threshold,
            window: self.window,
            reference_rows: self.reference_rows,
            episode_start: state.episode_start,
            detected_at: rfc3339(self.window.end_ms),
        }
    }
}

/// Output of one window's evaluation.
#[derive(Debug, Default)]
pub struct Outcome {
    /// One per (column, detector).
    pub evaluations: Vec<Evaluation>,
    /// Drift and resolved events.
    pub events: Vec<DriftEvent>,
    /// Episodes that started inside the cooldown of a previous drift event.
    pub suppressed: u64,
    /// Seconds from each window's close (its last pane completed) to its evaluation done.
    pub window_seconds: Vec<f64>,
    /// Model-quality evaluations.
    pub quality: Vec<crate::quality::QualityEvaluation>,
    /// Delays (seconds) of the labels joined, with the model's index.
    pub label_delays: Vec<(usize, f64)>,
}

impl Outcome {
    /// Records what a drift-state transition emits: the event `event`
    /// builds for `drift` and `resolved`, a count for a suppressed episode.
    pub(crate) fn transition(&mut self, t: Transition, event: impl FnOnce(&'static str) -> DriftEvent) {
        match t {
            Transition::Drift => self.events.push(event("drift")),
            Transition::Resolved => self.events.push(event("resolved")),
            Transition::Suppressed => self.suppressed += 1,
            Transition::None => {}
        }
    }
}

/// A stable id: the first 16 bytes of SHA-256 over the key and episode start.
pub(crate) fn event_id(model: &str, feature: &str, metric: &str, episode_start: i64, kind: &str) -> String {
    let mut h = Sha256::new();
    for part in [model, feature, metric, kind] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    h.update(episode_start.to_le_bytes());
    h.finalize()[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// An event time (ms) as RFC 3339 with milliseconds; empty without one.
pub(crate) fn rfc3339(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_stable_and_distinct() {
        assert_eq!(event_id("m", "f", "ks", 10, "drift"), event_id("m", "f", "ks", 10, "drift"));
        assert_ne!(event_id("m", "f", "ks", 10, "drift"), event_id("m", "f", "ks", 11, "drift"));
        assert_ne!(event_id("m", "f", "ks", 10, "drift"), event_id("m", "f", "ks", 10, "resolved"));
        assert_ne!(event_id("m", "fk", "s", 10, "drift"), event_id("m", "f", "ks", 10, "drift"));
        assert_eq!(event_id("m", "f", "ks", 10, "drift").len(), 32);
        // Pinned (computed independently, with Python's hashlib): ids are a
        // contract with receivers that deduplicate, so a change of the hashing
        // (part order, length prefix, endianness) must not slip through.
        assert_eq!(event_id("fraud", "amount", "psi", 1_000, "drift"), "df60019eff42eb7d8202fa2b4d2837f1");
    }

    #[test]
    fn an_event_carries_its_site_reading_and_episode() {
        let window = WindowBounds { start_index: Some(0), end_index: Some(100), start_ms: Some(0), end_ms: Some(1_500), count: 100 };
        let site = EventSite { model: "fraud", version: Some("v2"), window, reference_rows: 500 };
        let reading =
            Reading { feature: "amount", metric: "psi", value: Some(0.4), threshold: Some(0.2), p_value: None, p_value_threshold: None };
        let mut state = DriftState::default();
        state.episode_start = 100;
        let e = site.event("drift", reading, &state);
        assert_eq!(e.event_id, event_id("fraud", "amount", "psi", 100, "drift"));
        assert_eq!((e.kind, e.signal, e.metric, e.value, e.episode_start), ("drift", None, "psi", Some(0.4), 100));
        assert_eq!((e.model.as_str(), e.model_version.as_deref(), e.reference_rows), ("fraud", Some("v2"), 500));
        assert_eq!(e.detected_at, "1970-01-01T00:00:01.500Z");
        assert_ne!(site.event("resolved", reading, &state).event_id, e.event_id);
    }

    #[test]
    fn transitions_emit_events_or_count_suppressions() {
        let mut out = Outcome::default();
        let site = EventSite {
            model: "m",
            version: None,
            window: WindowBounds { start_index: None, end_index: None, start_ms: None, end_ms: None, count: 1 },
            reference_rows: 1,
        };
        let reading = Reading { feature: "f", metric: "ks", value: None, threshold: None, p_value: None, p_value_threshold: None };
        let state = DriftState::default();
        for t in [Transition::Drift, Transition::None, Transition::Suppressed, Transition::Resolved] {
            out.transition(t, |kind| site.event(kind, reading, &state));
        }
        assert_eq!(out.events.iter().map(|e| e.kind).collect::<Vec<_>>(), ["drift", "resolved"]);
        assert_eq!(out.suppressed, 1);
        assert_eq!(rfc3339(None), "");
    }
}
