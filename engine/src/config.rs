//! The YAML configuration: models, their features, windows, detectors and
//! alerting. Every struct denies unknown keys; a typo or a wrong type fails at
//! startup with the path of the field (`models[0].detectors[1].metric`) and
//! what was expected. [`Config::from_yaml`] parses, [`Config::validate`]
//! checks the semantics (detector fits feature type, windows are coherent,
//! names are unique).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

use driftwatch_connectors::table::FileFormat;

/// A configuration error: the path of the offending field and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// YAML syntax, an unknown key or a wrong type.
    #[error("config error at {path}: {message}")]
    Parse {
        /// Path of the field (`models[0].window.type`).
        path: String,
        /// What the parser expected.
        message: String,
    },
    /// A semantic rule is broken.
    #[error("config error at {path}: {message}")]
    Invalid {
        /// Path of the field.
        path: String,
        /// What was expected.
        message: String,
    },
}

fn invalid(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { path: path.into(), message: message.into() }
}

/// The whole configuration file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Threads, batching and limits.
    #[serde(default)]
    pub engine: EngineConfig,
    /// Where the fields are in each event.
    #[serde(default)]
    pub input: InputConfig,
    /// The monitored models.
    pub models: Vec<ModelConfig>,
    /// Where `driftwatch run` reads events.
    #[serde(default)]
    pub source: Option<SourceConfig>,
    /// Where drift and resolved events go (`driftwatch run`).
    #[serde(default)]
    pub sinks: Vec<SinkConfig>,
    /// The Prometheus endpoint of `driftwatch run`.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// Where the fields are in each label event (models with `quality`).
    #[serde(default)]
    pub labels: LabelsConfig,
}

/// Paths (dot-separated object keys) of the fields in each label event.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LabelsConfig {
    /// Path of the model name; `null` with `default_model` (here or under `input`).
    pub model: Option<String>,
    /// Model of labels without a model path (default: `input.default_model`).
    pub default_model: Option<String>,
    /// Path of the prediction id the label belongs to.
    pub prediction_id: String,
    /// Path of the ground truth.
    pub label: String,
    /// Path of the label's event time (RFC 3339 string or epoch milliseconds).
    pub timestamp: String,
}

impl Default for LabelsConfig {
    fn default() -> Self {
        Self {
            model: Some("model".into()),
            default_model: None,
            prediction_id: "prediction_id".into(),
            label: "label".into(),
            timestamp: "timestamp".into(),
        }
    }
}

/// What the model predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QualityTask {
    /// Classes 0 and 1 (also 0.0/1.0 and false/true), with an optional
    /// positive-class score.
    BinaryClassification,
    /// A number.
    Regression,
}

/// A model-quality metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QualityMetric {
    /// Share of correct predictions.
    Accuracy,
    /// tp / (tp + fp).
    Precision,
    /// tp / (tp + fn).
    Recall,
    /// Harmonic mean of precision and recall.
    F1,
    /// Area under the ROC curve of the score.
    RocAuc,
    /// Cross-entropy of the score.
    LogLoss,
    /// Mean squared error of the score.
    Brier,
    /// Mean absolute error.
    Mae,
    /// Root mean squared error.
    Rmse,
    /// Mean absolute percentage error (a fraction).
    Mape,
}

impl QualityMetric {
    /// Name in outputs.
    pub fn as_str(self) -> &'static str {
        match self {
            QualityMetric::Accuracy => "accuracy",
            QualityMetric::Precision => "precision",
            QualityMetric::Recall => "recall",
            QualityMetric::F1 => "f1",
            QualityMetric::RocAuc => "roc_auc",
            QualityMetric::LogLoss => "log_loss",
            QualityMetric::Brier => "brier",
            QualityMetric::Mae => "mae",
            QualityMetric::Rmse => "rmse",
            QualityMetric::Mape => "mape",
        }
    }

    /// Whether a larger value is a better model.
    pub fn higher_is_better(self) -> bool {
        matches!(
            self,
            QualityMetric::Accuracy | QualityMetric::Precision | QualityMetric::Recall | QualityMetric::F1 | QualityMetric::RocAuc
        )
    }

    /// Whether the metric needs the positive-class score.
    pub fn needs_score(self) -> bool {
        matches!(self, QualityMetric::RocAuc | QualityMetric::LogLoss | QualityMetric::Brier)
    }

    /// Whether CBPE estimates the metric.
    pub fn estimable(self) -> bool {
        matches!(
            self,
            QualityMetric::Accuracy | QualityMetric::Precision | QualityMetric::Recall | QualityMetric::F1 | QualityMetric::RocAuc
        )
    }

    /// Whether the metric belongs to `task`.
    pub fn fits(self, task: QualityTask) -> bool {
        match task {
            QualityTask::BinaryClassification => !matches!(self, QualityMetric::Mae | QualityMetric::Rmse | QualityMetric::Mape),
            QualityTask::Regression => matches!(self, QualityMetric::Mae | QualityMetric::Rmse | QualityMetric::Mape),
        }
    }
}

/// Columns of the model's reference table that give the reference quality.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QualityReferenceConfig {
    /// Ground truth column.
    pub label: String,
    /// Predicted class / value column.
    pub prediction: String,
    /// Positive-class score column (classification).
    #[serde(default)]
    pub score: Option<String>,
}

/// One quality alert condition.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QualityDetectorConfig {
    /// The metric.
    pub metric: QualityMetric,
    /// Breach below this (metrics where higher is better).
    #[serde(default)]
    pub min: Option<f64>,
    /// Breach above this (error metrics: log loss, Brier, MAE, RMSE, MAPE).
    #[serde(default)]
    pub max: Option<f64>,
    /// Breach when the value is more than this below the reference's own value.
    #[serde(default)]
    pub max_drop: Option<f64>,
    /// Breach when an error metric is more than this above the reference's own value.
    #[serde(default)]
    pub max_rise: Option<f64>,
    /// Alert on the label-free estimate (`estimate: cbpe`) instead of the
    /// realised value.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub estimated: bool,
}

/// A label-free estimate of quality.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QualityEstimate {
    /// Confidence-based performance estimation (binary classification).
    Cbpe,
}

/// Model quality from delayed labels.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QualityConfig {
    /// `binary_classification` or `regression`.
    pub task: QualityTask,
    /// Path of the predicted class / value in prediction events.
    pub prediction: String,
    /// Path of the positive-class score (classification).
    #[serde(default)]
    pub score: Option<String>,
    /// Columns of the model's reference table giving its own quality.
    #[serde(default)]
    pub reference: Option<QualityReferenceConfig>,
    /// Metrics evaluated per window (default: every metric of the task that
    /// the configured fields allow).
    #[serde(default)]
    pub metrics: Option<Vec<QualityMetric>>,
    /// How long (event time) a prediction waits for its label; a window is
    /// final when this has passed its end.
    #[serde(default = "default_label_ttl")]
    pub label_ttl: HumanDuration,
    /// How long (event time) a label that came before its prediction is held.
    #[serde(default = "default_early_label_ttl")]
    pub early_label_ttl: HumanDuration,
    /// Predictions held for their labels at most (the oldest are evicted first).
    #[serde(default = "default_max_pending")]
    pub max_pending: usize,
    /// Quality estimated from the scores before labels arrive (`cbpe`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimate: Option<QualityEstimate>,
    /// Alert conditions.
    #[serde(default)]
    pub detectors: Vec<QualityDetectorConfig>,
}

fn default_label_ttl() -> HumanDuration {
    HumanDuration(Duration::from_secs(7 * 24 * 3600))
}

fn default_early_label_ttl() -> HumanDuration {
    HumanDuration(Duration::from_secs(3600))
}

fn default_max_pending() -> usize {
    1_000_000
}

/// Upper bound of `quality.max_pending`.
pub const MAX_PENDING: usize = 100_000_000;

impl QualityConfig {
    /// The metrics estimated (`estimate` set): those of [`QualityConfig::metrics`] CBPE estimates.
    pub fn estimated_metrics(&self) -> Vec<QualityMetric> {
        if self.estimate.is_none() {
            return Vec::new();
        }
        self.metrics().into_iter().filter(|m| m.estimable()).collect()
    }

    /// The metrics evaluated.
    pub fn metrics(&self) -> Vec<QualityMetric> {
        match &self.metrics {
            Some(m) => m.clone(),
            None => {
                use QualityMetric::*;
                let all = [Accuracy, Precision, Recall, F1, RocAuc, LogLoss, Brier, Mae, Rmse, Mape];
                all.into_iter().filter(|m| m.fits(self.task) && (self.score.is_some() || !m.needs_score())).collect()
            }
        }
    }

    fn validate(&self, at: &str, has_path_reference: bool) -> Result<(), ConfigError> {
        if self.prediction.is_empty() {
            return Err(invalid(format!("{at}.prediction"), "the path of the predicted class or value is required"));
        }
        if self.task == QualityTask::Regression && self.score.is_some() {
            return Err(invalid(format!("{at}.score"), "a regression has no class score"));
        }
        if let Some(r) = &self.reference {
            if !has_path_reference {
                return Err(invalid(format!("{at}.reference"), "reference quality columns need a `path` reference (a table)"));
            }
            if r.score.is_some() && self.score.is_none() {
                return Err(invalid(format!("{at}.reference.score"), "set `score` (the events' score path) too"));
            }
        }
        let metrics = self.metrics();
        if metrics.is_empty() {
            return Err(invalid(format!("{at}.metrics"), "at least one metric is required"));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, m) in metrics.iter().enumerate() {
            let mat = format!("{at}.metrics[{i}]");
            if !seen.insert(*m) {
                return Err(invalid(mat, format!("{} is listed twice", m.as_str())));
            }
            if !m.fits(self.task) {
                return Err(invalid(mat, format!("{} is not a metric of {:?}", m.as_str(), self.task).to_lowercase()));
            }
            if m.needs_score() && self.score.is_none() {
                return Err(invalid(mat, format!("{} needs the score: set `score`", m.as_str())));
            }
            if m.needs_score() && self.reference.as_ref().is_some_and(|r| r.score.is_none()) {
                return Err(invalid(mat, format!("{} needs the reference's score column: set `reference.score`", m.as_str())));
            }
        }
        for (name, d) in [("label_ttl", self.label_ttl), ("early_label_ttl", self.early_label_ttl)] {
            if d.0.is_zero() || d.0 > MAX_DURATION {
                return Err(invalid(format!("{at}.{name}"), "must be between 1ms and 366d"));
            }
        }
        if self.max_pending == 0 || self.max_pending > MAX_PENDING {
            return Err(invalid(format!("{at}.max_pending"), format!("must be between 1 and {MAX_PENDING}")));
        }
        if self.estimate.is_some() {
            if self.task != QualityTask::BinaryClassification {
                return Err(invalid(format!("{at}.estimate"), "cbpe estimates the quality of a binary classifier"));
            }
            if self.score.is_none() {
                return Err(invalid(format!("{at}.estimate"), "cbpe estimates from the score: set `score`"));
            }
            if self.reference.as_ref().is_none_or(|r| r.score.is_none()) {
                return Err(invalid(
                    format!("{at}.estimate"),
                    "cbpe is fitted on the reference's labels and scores: set `reference` with `label`, `prediction` and `score` columns",
                ));
            }
            if self.estimated_metrics().is_empty() {
                return Err(invalid(
                    format!("{at}.estimate"),
                    "cbpe estimates accuracy, precision, recall, f1 and roc_auc, and none of them is among the metrics",
                ));
            }
        }
        let mut bounded = std::collections::HashSet::new();
        for (k, d) in self.detectors.iter().enumerate() {
            let dat = format!("{at}.detectors[{k}]");
            if !metrics.contains(&d.metric) {
                return Err(invalid(format!("{dat}.metric"), format!("{} is not among the evaluated metrics", d.metric.as_str())));
            }
            if d.estimated && self.estimate.is_none() {
                return Err(invalid(format!("{dat}.estimated"), "an estimated detector needs `estimate: cbpe`"));
            }
            if d.estimated && !d.metric.estimable() {
                return Err(invalid(
                    format!("{dat}.metric"),
                    format!("cbpe does not estimate {} (it estimates accuracy, precision, recall, f1 and roc_auc)", d.metric.as_str()),
                ));
            }
            if !bounded.insert((d.metric, d.estimated)) {
                let which = if d.estimated { "estimated " } else { "" };
                return Err(invalid(
                    format!("{dat}.metric"),
                    format!("{which}{} has a detector already (one bound per metric)", d.metric.as_str()),
                ));
            }
            let set = [d.min, d.max, d.max_drop, d.max_rise];
            if set.iter().flatten().count() != 1 {
                return Err(invalid(dat, "set exactly one of `min`, `max`, `max_drop`, `max_rise`"));
            }
            if set.iter().flatten().any(|v| !v.is_finite() || (*v < 0.0)) {
                return Err(invalid(dat, "the bound must be a finite number ≥ 0"));
            }
            let higher = d.metric.higher_is_better();
            if higher && (d.max.is_some() || d.max_rise.is_some()) {
                return Err(invalid(dat, format!("{} is better when higher: use `min` or `max_drop`", d.metric.as_str())));
            }
            if !higher && (d.min.is_some() || d.max_drop.is_some()) {
                return Err(invalid(dat, format!("{} is an error (better when lower): use `max` or `max_rise`", d.metric.as_str())));
            }
            if (d.max_drop.is_some() || d.max_rise.is_some()) && self.reference.is_none() {
                return Err(invalid(
                    dat,
                    "a bound relative to the reference needs `reference` (the reference table's label and prediction columns)",
                ));
            }
        }
        Ok(())
    }
}

/// A live source: the connectors' seam (one variant per source, each builds its source).
pub use driftwatch_connectors::source::SourceConfig;

/// A drift-event sink: the connectors' seam (one variant per sink, each builds its sink).
pub use driftwatch_connectors::sink::SinkConfig;

/// The Prometheus endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Address of `/metrics`, `/healthz`, `/readyz` (`0.0.0.0:9100` in a pod).
    pub listen: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self { listen: "127.0.0.1:9100".into() }
    }
}

/// Threads, batching and limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// Shard threads (decode + sketch updates); default: available cores.
    pub shards: Option<usize>,
    /// Events per batch handed to a shard.
    pub batch_events: usize,
    /// Batches queued per shard before the reader waits (backpressure).
    pub queue_batches: usize,
    /// Events larger than this are refused (`oversize`) without parsing.
    pub max_event_bytes: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self { shards: None, batch_events: 4096, queue_batches: 4, max_event_bytes: 1 << 20 }
    }
}

impl EngineConfig {
    /// The shard count to use.
    pub fn shard_count(&self) -> usize {
        self.shards.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}

/// Paths (dot-separated object keys) of the fields in each event.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InputConfig {
    /// Path of the model name; `null` with `default_model` for single-model topics.
    pub model: Option<String>,
    /// Model used when `model` is null.
    pub default_model: Option<String>,
    /// Path of the model version.
    pub model_version: Option<String>,
    /// Path of the prediction id.
    pub prediction_id: Option<String>,
    /// Path of the event time (RFC 3339 string or epoch milliseconds).
    pub timestamp: Option<String>,
    /// Object that holds the features by name; `""` for flat events.
    pub features: String,
}

impl Default for InputConfig {
    fn default() -> Self {
        Self {
            model: Some("model".into()),
            default_model: None,
            model_version: Some("model_version".into()),
            prediction_id: Some("prediction_id".into()),
            timestamp: Some("timestamp".into()),
            features: "features".into(),
        }
    }
}

/// Splits a dotted path into keys (`"features.amount"` → `["features", "amount"]`).
pub fn split_path(path: &str) -> Vec<String> {
    path.split('.').map(str::to_owned).collect()
}

/// One monitored model.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The model's name, as in the events' model field.
    pub name: String,
    /// Where the reference distribution comes from.
    pub reference: ReferenceConfig,
    /// The window compared with the reference.
    pub window: WindowConfig,
    /// Monitored input features.
    pub features: Vec<FeatureConfig>,
    /// The prediction (or score), monitored like a feature.
    #[serde(default)]
    pub prediction: Option<PredictionConfig>,
    /// Statistics, each with its alert condition.
    pub detectors: Vec<DetectorConfig>,
    /// Multiple-testing correction across the model's features.
    #[serde(default)]
    pub correction: Correction,
    /// Debounce, recovery and rate limiting of drift events.
    #[serde(default)]
    pub alerting: AlertingConfig,
    /// Model quality from delayed labels.
    #[serde(default)]
    pub quality: Option<QualityConfig>,
}

/// The reference: a file (Parquet, CSV, JSONL) with optional SQL, a prebuilt
/// profile, or the stream's first N events. Exactly one of `path`,
/// `profile`, `baseline_events`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceConfig {
    /// Training data file.
    pub path: Option<PathBuf>,
    /// Its format (default: from the extension).
    pub format: Option<FileFormat>,
    /// SQL over the table `reference`.
    pub sql: Option<String>,
    /// A profile written by `driftwatch profile`.
    pub profile: Option<PathBuf>,
    /// The first N events of the model become the reference.
    pub baseline_events: Option<u64>,
}

/// Window type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowType {
    /// Fixed, non-overlapping windows.
    Tumbling,
    /// Overlapping windows advancing by `slide`.
    Sliding,
}

/// A window's extent: a number of events or an event-time duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extent {
    /// A number of the model's events.
    Events(u64),
    /// An event-time span.
    Duration(Duration),
}

impl Serialize for Extent {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Extent::Events(n) => s.serialize_u64(*n),
            Extent::Duration(d) => s.serialize_str(&humantime::format_duration(*d).to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for Extent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Extent;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of events or a duration such as \"30s\", \"5m\", \"4h\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Extent, E> {
                Ok(Extent::Events(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Extent, E> {
                u64::try_from(v).map(Extent::Events).map_err(|_| E::custom("a count must not be negative"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Extent, E> {
                humantime::parse_duration(v).map(Extent::Duration).map_err(|e| E::custom(format!("bad duration {v:?}: {e}")))
            }
        }
        d.deserialize_any(V)
    }
}

/// The configuration's one duration type (`"15m"`, `"4h"`), shared with the connectors.
pub use driftwatch_connectors::HumanDuration;

/// The window compared with the reference.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowConfig {
    /// `tumbling` or `sliding`.
    #[serde(rename = "type")]
    pub kind: WindowType,
    /// Size in events (count-based windows).
    #[serde(default)]
    pub events: Option<u64>,
    /// Size in event time (time-based windows).
    #[serde(default)]
    pub duration: Option<HumanDuration>,
    /// Sliding windows: how far each window advances (events or duration).
    #[serde(default)]
    pub slide: Option<Extent>,
    /// Time-based windows: how late an event may arrive before it is dropped (and counted).
    #[serde(default)]
    pub allowed_lateness: Option<HumanDuration>,
}

/// A checked window: size and slide in the same unit, size a multiple of slide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "unit", rename_all = "snake_case")]
pub enum WindowSpec {
    /// Count-based: panes of `slide` events, windows of `panes` panes.
    Count {
        /// Events per pane.
        slide: u64,
        /// Panes per window (1 = tumbling).
        panes: u64,
    },
    /// Event-time: panes of `slide_ms`, windows of `panes` panes.
    Time {
        /// Pane length in milliseconds.
        slide_ms: u64,
        /// Panes per window.
        panes: u64,
        /// Allowed lateness in milliseconds.
        lateness_ms: u64,
    },
}

impl WindowConfig {
    /// Checks the window and returns its pane structure.
    pub fn spec(&self, path: &str) -> Result<WindowSpec, ConfigError> {
        let ms = |d: Duration| d.as_millis() as u64;
        let (size, by_time) = match (self.events, self.duration) {
            (Some(_), Some(_)) => return Err(invalid(path, "set either `events` or `duration`, not both")),
            (None, None) => return Err(invalid(path, "set `events` (count-based) or `duration` (event-time)")),
            (Some(n), None) => (n, false),
            (None, Some(HumanDuration(d))) => (ms(d), true),
        };
        let size_key = if by_time { "duration" } else { "events" };
        if size == 0 {
            return Err(invalid(format!("{path}.{size_key}"), if by_time { "must be at least 1ms" } else { "must be at least 1" }));
        }
        if by_time && size > ms(MAX_DURATION) {
            return Err(invalid(format!("{path}.duration"), "must be at most 366d"));
        }
        if !by_time && size > MAX_WINDOW_EVENTS {
            return Err(invalid(format!("{path}.events"), format!("must be at most {MAX_WINDOW_EVENTS}")));
        }
        if self.allowed_lateness.is_some_and(|d| d.0 > MAX_DURATION) {
            return Err(invalid(format!("{path}.allowed_lateness"), "must be at most 366d"));
        }
        if !by_time && self.allowed_lateness.is_some() {
            return Err(invalid(format!("{path}.allowed_lateness"), "only event-time windows (`duration`) take a lateness"));
        }
        let slide = match (self.kind, self.slide) {
            (WindowType::Tumbling, None) => size,
            (WindowType::Tumbling, Some(_)) => return Err(invalid(format!("{path}.slide"), "tumbling windows have no slide")),
            (WindowType::Sliding, None) => return Err(invalid(format!("{path}.slide"), "sliding windows need `slide`")),
            (WindowType::Sliding, Some(Extent::Events(s))) if !by_time => s,
            (WindowType::Sliding, Some(Extent::Duration(d))) if by_time => ms(d),
            (WindowType::Sliding, Some(_)) => {
                let want = if by_time {
                    "an event-time window slides by a duration such as \"1m\""
                } else {
                    "a count-based window slides by a number of events"
                };
                return Err(invalid(format!("{path}.slide"), want));
            }
        };
        if slide == 0 || size % slide != 0 {
            return Err(invalid(format!("{path}.slide"), format!("must be at least 1 and divide the window {size_key} ({size})")));
        }
        if size / slide > 1000 {
            return Err(invalid(format!("{path}.slide"), "at most 1000 slides per window"));
        }
        Ok(if by_time {
            WindowSpec::Time { slide_ms: slide, panes: size / slide, lateness_ms: self.allowed_lateness.map_or(0, |d| ms(d.0)) }
        } else {
            WindowSpec::Count { slide, panes: size / slide }
        })
    }
}

/// Feature type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureType {
    /// Real numbers.
    Numeric,
    /// Labels.
    Categorical,
}

/// One monitored feature.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureConfig {
    /// Name (also the key under `input.features` unless `path` is set).
    pub name: String,
    /// `numeric` or `categorical`.
    #[serde(rename = "type")]
    pub kind: FeatureType,
    /// Full dotted path in the event, overriding `input.features` + name.
    #[serde(default)]
    pub path: Option<String>,
    /// Categorical: distinct categories tracked before `__other__`.
    #[serde(default)]
    pub max_categories: Option<usize>,
}

/// The model output monitored for drift.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredictionConfig {
    /// Dotted path of the prediction or score field.
    pub field: String,
    /// `numeric` (a score) or `categorical` (a class).
    #[serde(rename = "type")]
    pub kind: FeatureType,
}

/// A statistic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Population stability index (numeric and categorical).
    Psi,
    /// Two-sample Kolmogorov–Smirnov (numeric).
    Ks,
    /// Jensen–Shannon distance, base 2 (numeric and categorical).
    JensenShannon,
    /// Hellinger distance (numeric and categorical).
    Hellinger,
    /// Wasserstein-1 on raw values (numeric, exact store only).
    Wasserstein,
    /// Chi-square homogeneity test (categorical).
    Chi2,
    /// Largest share difference (categorical).
    LInfinity,
}

impl Metric {
    /// The name used in outputs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Psi => "psi",
            Metric::Ks => "ks",
            Metric::JensenShannon => "jensen_shannon",
            Metric::Hellinger => "hellinger",
            Metric::Wasserstein => "wasserstein",
            Metric::Chi2 => "chi2",
            Metric::LInfinity => "l_infinity",
        }
    }

    /// Whether the metric applies to a feature type.
    pub fn fits(self, kind: FeatureType) -> bool {
        match self {
            Metric::Psi | Metric::JensenShannon | Metric::Hellinger => true,
            Metric::Ks | Metric::Wasserstein => kind == FeatureType::Numeric,
            Metric::Chi2 | Metric::LInfinity => kind == FeatureType::Categorical,
        }
    }

    /// Whether the metric is a test with a p-value.
    pub fn is_test(self) -> bool {
        matches!(self, Metric::Ks | Metric::Chi2)
    }
}

/// KS computation mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KsMode {
    /// Exact on raw values while the window fits `exact_max`, from the bounded sketch beyond.
    #[default]
    Auto,
    /// Like `auto`, but a window larger than `exact_max` is a config error.
    Exact,
    /// Always from the bounded sketch (fastest; the result carries its error bound).
    Sketch,
}

/// One detector: a metric and its alert condition.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorConfig {
    /// The statistic.
    pub metric: Metric,
    /// Breach when the statistic (distance, PSI, KS D) is ≥ this.
    #[serde(default)]
    pub threshold: Option<f64>,
    /// Tests: breach when the (corrected) p-value is < this.
    #[serde(default)]
    pub p_value: Option<f64>,
    /// Histogram bins (PSI, Jensen–Shannon, Hellinger on numeric features).
    #[serde(default)]
    pub bins: Option<usize>,
    /// KS: exact, sketch or auto.
    #[serde(default)]
    pub mode: Option<KsMode>,
    /// KS on raw values: how the p-value is computed — `auto` (SciPy's
    /// rule: exact when both sizes ≤ 10 000), `exact` or `asymptotic`. The
    /// exact distribution for unequal sizes costs O(n·m·D) and can take tens
    /// of milliseconds per evaluation; `asymptotic` costs microseconds.
    #[serde(default)]
    pub p_value_method: Option<driftwatch_detectors::ks::KsMethod>,
    /// KS / Wasserstein: raw values kept per window for exact results (default 10 000).
    #[serde(default)]
    pub exact_max: Option<usize>,
    /// Only these features (default: every feature the metric fits).
    #[serde(default)]
    pub features: Option<Vec<String>>,
}

/// Multiple-testing correction of p-values across a model's features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Correction {
    /// Raw p-values.
    #[default]
    None,
    /// p × m, capped at 1.
    Bonferroni,
    /// Benjamini–Hochberg adjusted p-values (false discovery rate).
    BenjaminiHochberg,
}

/// Debounce, recovery, rate limit and dataset-level drift.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertingConfig {
    /// Consecutive breaching evaluations before a drift event.
    pub consecutive: u32,
    /// Consecutive clean evaluations before a resolved event.
    pub recover_after: u32,
    /// After a resolved event, a new episode of the same (feature, metric)
    /// within this event time re-opens without a new drift event (like
    /// Alertmanager's repeat_interval); "0s" disables.
    pub cooldown: HumanDuration,
    /// Dataset drift: emit a model-level event when at least this share of
    /// monitored features is drifting (by any metric). `null` disables.
    pub dataset_drift_share: Option<f64>,
}

impl Default for AlertingConfig {
    fn default() -> Self {
        Self { consecutive: 3, recover_after: 3, cooldown: HumanDuration(Duration::from_secs(0)), dataset_drift_share: Some(0.5) }
    }
}

/// Upper bound of `engine.batch_events`.
pub const MAX_BATCH_EVENTS: usize = 1 << 20;
/// Upper bound of `engine.queue_batches`.
pub const MAX_QUEUE_BATCHES: usize = 1024;
/// Upper bound of `engine.max_event_bytes` (64 MiB).
pub const MAX_EVENT_BYTES: usize = 64 << 20;
/// Upper bound of `max_categories`.
pub const MAX_CATEGORIES: usize = 10_000_000;
/// Upper bound of `reference.baseline_events`.
pub const MAX_BASELINE_EVENTS: u64 = 100_000_000;
/// Upper bound of a count window's events.
pub const MAX_WINDOW_EVENTS: u64 = 1_000_000_000;
/// Upper bound of every duration (window, slide, lateness, cooldown): 366 days.
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

/// Default raw values kept for exact KS / Wasserstein.
pub const DEFAULT_EXACT_MAX: usize = 10_000;
/// Default histogram bins.
pub const DEFAULT_BINS: usize = 10;
/// Default categorical cap.
pub const DEFAULT_MAX_CATEGORIES: usize = 1000;

impl Config {
    /// Parses YAML, reporting the path of a bad field.
    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        let de = serde_yaml_ng::Deserializer::from_str(text);
        let config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            ConfigError::Parse { path: if path.is_empty() { "(top level)".into() } else { path }, message: e.into_inner().to_string() }
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Reads and parses a file. Relative reference paths are resolved against
    /// the file's folder.
    pub fn from_file(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        let mut config = Self::from_yaml(&text)?;
        if let Some(dir) = path.parent() {
            for m in &mut config.models {
                for p in [&mut m.reference.path, &mut m.reference.profile].into_iter().flatten() {
                    if p.is_relative() {
                        *p = dir.join(&*p);
                    }
                }
            }
        }
        Ok(config)
    }

    /// Reads every secret setting (`{ env }`, `{ file }`) and has librdkafka
    /// check the Kafka settings, as `run` does when it starts its
    /// components: `driftwatch validate` calls it.
    pub fn check_secrets(&self) -> Result<(), ConfigError> {
        if let Some(SourceConfig::Kafka(k)) = &self.source {
            k.check_secrets().map_err(|e| invalid("source", e.to_string()))?;
        }
        for (i, sink) in self.sinks.iter().enumerate() {
            sink.check_secrets().map_err(|e| invalid(format!("sinks[{i}]"), e.to_string()))?;
        }
        Ok(())
    }

    /// Semantic checks that need no file access (loading does this). Secrets are not read: a
    /// replay of a production config needs none of them
    /// ([`Config::check_secrets`] reads them).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let e = &self.engine;
        if e.shards == Some(0) || e.shards.is_some_and(|s| s > 1024) {
            return Err(invalid("engine.shards", "must be between 1 and 1024"));
        }
        for (key, value, max) in [
            ("batch_events", e.batch_events, MAX_BATCH_EVENTS),
            ("queue_batches", e.queue_batches, MAX_QUEUE_BATCHES),
            ("max_event_bytes", e.max_event_bytes, MAX_EVENT_BYTES),
        ] {
            if value == 0 || value > max {
                return Err(invalid(format!("engine.{key}"), format!("must be between 1 and {max} (got {value})")));
            }
        }
        if self.input.model.is_none() && self.input.default_model.is_none() {
            return Err(invalid("input.model", "set a model path, or `default_model` for single-model input"));
        }
        if self.models.is_empty() {
            return Err(invalid("models", "at least one model is required"));
        }
        let mut names = std::collections::HashSet::new();
        for (i, m) in self.models.iter().enumerate() {
            let at = format!("models[{i}]");
            if m.name.is_empty() || !names.insert(m.name.as_str()) {
                return Err(invalid(format!("{at}.name"), format!("model names must be non-empty and unique ({:?})", m.name)));
            }
            m.validate(&at)?;
        }
        if let Some(d) = &self.input.default_model {
            if !names.contains(d.as_str()) {
                return Err(invalid("input.default_model", format!("no model named {d:?}")));
            }
        }
        if let Some(d) = &self.labels.default_model {
            if !names.contains(d.as_str()) {
                return Err(invalid("labels.default_model", format!("no model named {d:?}")));
            }
        }
        if self.models.iter().any(|m| m.quality.is_some()) {
            if self.input.prediction_id.is_none() {
                return Err(invalid("input.prediction_id", "models with `quality` join labels by prediction id: set its path"));
            }
            let l = &self.labels;
            if l.model.is_none() && l.default_model.is_none() && self.input.default_model.is_none() {
                return Err(invalid("labels.model", "set a model path, or `default_model` for single-model labels"));
            }
            for (key, path) in [("prediction_id", &l.prediction_id), ("label", &l.label), ("timestamp", &l.timestamp)] {
                if path.is_empty() {
                    return Err(invalid(format!("labels.{key}"), "must be a path"));
                }
            }
        }
        if let Some(SourceConfig::Kafka(k)) = &self.source {
            k.validate().map_err(|e| invalid("source", e.to_string()))?;
            if !k.label_topics.is_empty() && !self.models.iter().any(|m| m.quality.is_some()) {
                return Err(invalid(
                    "source.label_topics",
                    "label events are joined for models with `quality`, and no model has it: configure `quality` or leave label_topics out",
                ));
            }
        }
        for (i, sink) in self.sinks.iter().enumerate() {
            sink.validate().map_err(|e| invalid(format!("sinks[{i}]"), e.to_string()))?;
        }
        self.metrics
            .listen
            .parse::<std::net::SocketAddr>()
            .map_err(|e| invalid("metrics.listen", format!("{:?} is not an address like 127.0.0.1:9100: {e}", self.metrics.listen)))?;
        Ok(())
    }
}

impl ModelConfig {
    fn validate(&self, at: &str) -> Result<(), ConfigError> {
        let r = &self.reference;
        let sources = [r.path.is_some(), r.profile.is_some(), r.baseline_events.is_some()].iter().filter(|&&b| b).count();
        if sources != 1 {
            return Err(invalid(format!("{at}.reference"), "set exactly one of `path`, `profile`, `baseline_events`"));
        }
        if r.path.is_none() && (r.sql.is_some() || r.format.is_some()) {
            return Err(invalid(format!("{at}.reference"), "`sql` and `format` apply to a `path` reference only"));
        }
        if r.baseline_events.is_some_and(|n| n == 0 || n > MAX_BASELINE_EVENTS) {
            return Err(invalid(format!("{at}.reference.baseline_events"), format!("must be between 1 and {MAX_BASELINE_EVENTS}")));
        }
        let window = self.window.spec(&format!("{at}.window"))?;
        if self.features.is_empty() && self.prediction.is_none() {
            return Err(invalid(format!("{at}.features"), "monitor at least one feature or the prediction"));
        }
        let mut names = std::collections::HashSet::new();
        for (j, f) in self.features.iter().enumerate() {
            let fat = format!("{at}.features[{j}]");
            if f.name.is_empty() || !names.insert(f.name.as_str()) {
                return Err(invalid(format!("{fat}.name"), format!("feature names must be non-empty and unique ({:?})", f.name)));
            }
            if f.max_categories.is_some() && f.kind != FeatureType::Categorical {
                return Err(invalid(format!("{fat}.max_categories"), "only categorical features have a category cap"));
            }
            if f.max_categories.is_some_and(|m| m == 0 || m > MAX_CATEGORIES) {
                return Err(invalid(format!("{fat}.max_categories"), format!("must be between 1 and {MAX_CATEGORIES}")));
            }
        }
        if let Some(p) = &self.prediction {
            if names.contains(p.field.as_str()) {
                return Err(invalid(format!("{at}.prediction.field"), "the prediction field is also configured as a feature"));
            }
        }
        if self.detectors.is_empty() {
            return Err(invalid(format!("{at}.detectors"), "at least one detector is required"));
        }
        let mut bins: Option<(usize, String)> = None;
        let mut seen = std::collections::HashSet::new();
        for (k, d) in self.detectors.iter().enumerate() {
            let dat = format!("{at}.detectors[{k}]");
            if !seen.insert(d.metric) {
                return Err(invalid(format!("{dat}.metric"), format!("{} is configured twice", d.metric.as_str())));
            }
            d.validate(&dat, window)?;
            if let Some(b) = d.bins {
                match &bins {
                    Some((prev, prev_at)) if *prev != b => {
                        return Err(invalid(
                            format!("{dat}.bins"),
                            format!("{b} differs from {prev} at {prev_at}: a model's histogram detectors share one binning"),
                        ))
                    }
                    _ => bins = Some((b, dat.clone())),
                }
            }
            let fits: Vec<&str> = self.monitored().filter(|(_, kind)| d.metric.fits(*kind)).map(|(n, _)| n).collect();
            match &d.features {
                Some(list) => {
                    for (x, name) in list.iter().enumerate() {
                        match self.monitored().find(|(n, _)| n == name) {
                            None => return Err(invalid(format!("{dat}.features[{x}]"), format!("no feature named {name:?}"))),
                            Some((_, kind)) if !d.metric.fits(kind) => {
                                return Err(invalid(
                                    format!("{dat}.features[{x}]"),
                                    format!("{} does not apply to the {kind:?} feature {name:?}", d.metric.as_str()).to_lowercase(),
                                ))
                            }
                            _ => {}
                        }
                    }
                }
                None if fits.is_empty() && self.label_drift_metric() != Some(d.metric) => {
                    return Err(invalid(
                        format!("{dat}.metric"),
                        format!("{} fits no feature of this model (it needs {} features)", d.metric.as_str(), needs(d.metric)),
                    ))
                }
                None => {}
            }
        }
        let a = &self.alerting;
        if a.cooldown.0 > MAX_DURATION {
            return Err(invalid(format!("{at}.alerting.cooldown"), "must be at most 366d"));
        }
        if a.consecutive == 0 || a.recover_after == 0 {
            return Err(invalid(format!("{at}.alerting"), "consecutive and recover_after must be at least 1"));
        }
        if let Some(s) = a.dataset_drift_share {
            if !(s > 0.0 && s <= 1.0) {
                return Err(invalid(format!("{at}.alerting.dataset_drift_share"), "must be in (0, 1]"));
            }
        }
        if let Some(q) = &self.quality {
            q.validate(&format!("{at}.quality"), self.reference.path.is_some())?;
        }
        Ok(())
    }

    /// (name, type) of every monitored column: features, then the prediction.
    pub fn monitored(&self) -> impl Iterator<Item = (&str, FeatureType)> + '_ {
        self.features.iter().map(|f| (f.name.as_str(), f.kind)).chain(self.prediction.iter().map(|p| (p.field.as_str(), p.kind)))
    }

    /// The test of the label column (label drift): `chi2` for a binary
    /// classifier's classes, `ks` for a regression's values; `None` without
    /// `quality.reference` (the reference's labels).
    pub fn label_drift_metric(&self) -> Option<Metric> {
        let q = self.quality.as_ref()?;
        q.reference.as_ref()?;
        Some(match q.task {
            QualityTask::BinaryClassification => Metric::Chi2,
            QualityTask::Regression => Metric::Ks,
        })
    }

    /// Histogram bins of this model.
    pub fn bins(&self) -> usize {
        self.detectors.iter().find_map(|d| d.bins).unwrap_or(DEFAULT_BINS)
    }
}

fn needs(m: Metric) -> &'static str {
    match m {
        Metric::Ks | Metric::Wasserstein => "numeric",
        Metric::Chi2 | Metric::LInfinity => "categorical",
        _ => "any",
    }
}

impl DetectorConfig {
    fn validate(&self, at: &str, window: WindowSpec) -> Result<(), ConfigError> {
        let m = self.metric;
        if let Some(t) = self.threshold {
            if !t.is_finite() || t < 0.0 {
                return Err(invalid(format!("{at}.threshold"), "must be a finite number ≥ 0"));
            }
            if m == Metric::Chi2 {
                return Err(invalid(format!("{at}.threshold"), "chi2 alerts on `p_value` only"));
            }
        }
        if let Some(p) = self.p_value {
            if !(p > 0.0 && p < 1.0) {
                return Err(invalid(format!("{at}.p_value"), "must be in (0, 1)"));
            }
            if !m.is_test() {
                return Err(invalid(format!("{at}.p_value"), format!("{} has no p-value; use `threshold`", m.as_str())));
            }
        }
        if self.threshold.is_none() && self.p_value.is_none() {
            let want = if m.is_test() { "`p_value` and/or `threshold`" } else { "`threshold`" };
            return Err(invalid(at, format!("{} needs {want}", m.as_str())));
        }
        if let Some(b) = self.bins {
            if !matches!(m, Metric::Psi | Metric::JensenShannon | Metric::Hellinger) {
                return Err(invalid(format!("{at}.bins"), "only psi, jensen_shannon and hellinger take `bins`"));
            }
            if !(2..=1000).contains(&b) {
                return Err(invalid(format!("{at}.bins"), "must be between 2 and 1000"));
            }
        }
        if self.mode.is_some() && m != Metric::Ks {
            return Err(invalid(format!("{at}.mode"), "only ks takes `mode`"));
        }
        if self.p_value_method.is_some() && m != Metric::Ks {
            return Err(invalid(format!("{at}.p_value_method"), "only ks takes `p_value_method`"));
        }
        if let Some(x) = self.exact_max {
            if !matches!(m, Metric::Ks | Metric::Wasserstein) {
                return Err(invalid(format!("{at}.exact_max"), "only ks and wasserstein take `exact_max`"));
            }
            if x == 0 || x > 10_000_000 {
                return Err(invalid(format!("{at}.exact_max"), "must be between 1 and 10 000 000"));
            }
        }
        let exact_max = self.exact_max.unwrap_or(DEFAULT_EXACT_MAX) as u64;
        match window {
            WindowSpec::Count { slide, panes } => {
                let size = slide.saturating_mul(panes);
                if size > exact_max && m == Metric::Wasserstein {
                    return Err(invalid(
                        at,
                        format!("wasserstein needs every raw value of a window but the window ({size} events) exceeds exact_max ({exact_max}); raise exact_max or use a smaller window (wasserstein has no sketch mode)"),
                    ));
                }
                if size > exact_max && self.mode == Some(KsMode::Exact) {
                    return Err(invalid(
                        at,
                        format!("ks needs raw values but the window ({size} events) exceeds exact_max ({exact_max}); raise exact_max or use mode: sketch"),
                    ));
                }
            }
            WindowSpec::Time { .. } if m == Metric::Wasserstein => {
                return Err(invalid(
                    at,
                    "wasserstein needs every raw value of a window, and an event-time window has no bound on its events: use a count window (tumbling or sliding `events`) of at most exact_max events, or ks (its sketch mode covers windows of any size)",
                ));
            }
            WindowSpec::Time { .. } => {}
        }
        Ok(())
    }
}
