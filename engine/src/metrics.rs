//! The engine's Prometheus series. Handles are created once; the window
//! stage updates them per batch (latencies go through local histograms that
//! are flushed per batch), never per event through a shared atomic.
//!
//! Names follow `driftwatch_<subsystem>_<name>_<unit>[_total]`; every label
//! value comes from a closed set or from the configuration.

use prometheus::{Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry};

use crate::window::Evaluation;

/// Every series the engine exports.
#[derive(Debug, Clone)]
pub struct EngineMetrics {
    /// Events read from the source.
    pub source_events: IntCounter,
    /// Events that could not be used, by reason.
    pub dead_letters: IntCounterVec,
    /// Events applied to windows or baselines, per model.
    pub window_events: IntCounterVec,
    /// Event-time windows: events later than the allowed lateness, per model.
    pub late_events: IntCounterVec,
    /// Windows evaluated, per model.
    pub evaluations: IntCounterVec,
    /// Drift / resolved events emitted, per model and type.
    pub drift_events: IntCounterVec,
    /// Episodes suppressed by the cooldown, per model.
    pub suppressed: IntCounterVec,
    /// Latest statistic per model / kind / feature / metric.
    pub score: GaugeVec,
    /// Latest (corrected) p-value.
    pub p_value: GaugeVec,
    /// 1 while drifting.
    pub state: IntGaugeVec,
    /// Unix time of the last evaluation.
    pub last_evaluation: GaugeVec,
    /// Features drifting now, per model.
    pub drifting_features: IntGaugeVec,
    /// Event time → applied to the window.
    pub event_latency: Histogram,
    /// Window close → evaluation done.
    pub evaluation_seconds: Histogram,
    /// Batches waiting per shard.
    pub shard_queue: IntGaugeVec,
    /// Bytes held by window sketches, per model.
    pub sketch_bytes: IntGaugeVec,
    /// Whether the reference is ready (0 while a baseline is being collected), per model.
    pub reference_ready: IntGaugeVec,
    /// Process start (Unix seconds).
    pub start_time: Gauge,
    /// Events per second over the last progress interval.
    pub events_rate: Gauge,
    /// Time spent in each stage per batch.
    pub stage_seconds: HistogramVec,
    /// Realised quality of the newest window of predictions with labels, per model and metric.
    pub quality: GaugeVec,
    /// CBPE estimate of the newest closed window, per model and metric.
    pub quality_estimated: GaugeVec,
    /// Lower end of the estimate's confidence band.
    pub quality_estimated_lower: GaugeVec,
    /// Upper end of the estimate's confidence band.
    pub quality_estimated_upper: GaugeVec,
    /// Share of that window's predictions that have their label, per model.
    pub label_coverage: GaugeVec,
    /// Label events by what became of them, per model.
    pub labels: IntCounterVec,
    /// Label time minus prediction time of the labels joined, per model.
    pub label_delay: HistogramVec,
    /// Predictions waiting for their label, per model.
    pub join_pending: IntGaugeVec,
}

impl EngineMetrics {
    /// Registers every family in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let col = ["model", "kind", "feature", "metric"];
        let latency_buckets = vec![0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];
        let m = Self {
            source_events: IntCounter::new("driftwatch_source_events_total", "Events read from the source")?,
            dead_letters: IntCounterVec::new(
                Opts::new("driftwatch_pipeline_dead_letters_total", "Events that could not be used, by reason"),
                &["reason"],
            )?,
            window_events: IntCounterVec::new(
                Opts::new("driftwatch_window_events_total", "Events applied to a model's windows or baseline"),
                &["model"],
            )?,
            late_events: IntCounterVec::new(
                Opts::new("driftwatch_window_late_events_total", "Events later than the allowed lateness, dropped"),
                &["model"],
            )?,
            evaluations: IntCounterVec::new(Opts::new("driftwatch_window_evaluations_total", "Windows evaluated"), &["model"])?,
            drift_events: IntCounterVec::new(
                Opts::new("driftwatch_drift_events_total", "Drift and resolved events emitted"),
                &["model", "type"],
            )?,
            suppressed: IntCounterVec::new(
                Opts::new("driftwatch_drift_suppressed_total", "Drift episodes suppressed by the cooldown"),
                &["model"],
            )?,
            score: GaugeVec::new(
                Opts::new("driftwatch_feature_drift_score", "Latest drift statistic of a feature (or the prediction)"),
                &col,
            )?,
            p_value: GaugeVec::new(
                Opts::new("driftwatch_feature_p_value", "Latest p-value (after correction) of a test-based metric"),
                &col,
            )?,
            state: IntGaugeVec::new(Opts::new("driftwatch_feature_drift_state", "1 while the feature is drifting by this metric"), &col)?,
            last_evaluation: GaugeVec::new(
                Opts::new("driftwatch_feature_last_evaluation_timestamp_seconds", "Unix time of the feature's last evaluation"),
                &col,
            )?,
            drifting_features: IntGaugeVec::new(
                Opts::new("driftwatch_model_drifting_features", "Features drifting by any metric"),
                &["model"],
            )?,
            event_latency: Histogram::with_opts(
                HistogramOpts::new("driftwatch_pipeline_event_latency_seconds", "Event timestamp to applied to the window")
                    .buckets(latency_buckets.clone()),
            )?,
            evaluation_seconds: Histogram::with_opts(
                HistogramOpts::new("driftwatch_window_evaluation_seconds", "Window close to evaluation done")
                    .buckets(vec![0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0]),
            )?,
            shard_queue: IntGaugeVec::new(Opts::new("driftwatch_shard_queue_batches", "Batches waiting for a shard"), &["shard"])?,
            sketch_bytes: IntGaugeVec::new(
                Opts::new("driftwatch_window_sketch_bytes", "Bytes held by a model's window sketches"),
                &["model"],
            )?,
            reference_ready: IntGaugeVec::new(
                Opts::new("driftwatch_model_reference_ready", "1 once the model has its reference"),
                &["model"],
            )?,
            start_time: Gauge::new("driftwatch_process_start_time_seconds", "Start time of the process (Unix seconds)")?,
            events_rate: Gauge::new("driftwatch_source_events_per_second", "Events read per second over the last second")?,
            stage_seconds: HistogramVec::new(
                HistogramOpts::new("driftwatch_pipeline_stage_seconds", "Time a batch spends in a stage")
                    .buckets(vec![0.0001, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0]),
                &["stage"],
            )?,
            quality: GaugeVec::new(
                Opts::new(
                    "driftwatch_model_quality",
                    "Realised quality (predictions joined with their labels) of the newest window that has labels",
                ),
                &["model", "metric"],
            )?,
            quality_estimated: GaugeVec::new(
                Opts::new(
                    "driftwatch_model_quality_estimated",
                    "Quality estimated from the scores (CBPE) for the newest closed window of predictions, before its labels",
                ),
                &["model", "metric"],
            )?,
            quality_estimated_lower: GaugeVec::new(
                Opts::new("driftwatch_model_quality_estimated_lower", "Lower end of the estimate's confidence band (3 sampling errors)"),
                &["model", "metric"],
            )?,
            quality_estimated_upper: GaugeVec::new(
                Opts::new("driftwatch_model_quality_estimated_upper", "Upper end of the estimate's confidence band (3 sampling errors)"),
                &["model", "metric"],
            )?,
            label_coverage: GaugeVec::new(
                Opts::new(
                    "driftwatch_model_label_coverage_ratio",
                    "Share of the predictions of the window in driftwatch_model_quality that have their label",
                ),
                &["model"],
            )?,
            labels: IntCounterVec::new(
                Opts::new(
                    "driftwatch_labels_total",
                    "Label events and predictions by join outcome (joined, early, expired, evicted, duplicate, orphan, dead_letter)",
                ),
                &["model", "outcome"],
            )?,
            label_delay: HistogramVec::new(
                HistogramOpts::new("driftwatch_label_delay_seconds", "Label event time minus its prediction's, for the labels joined")
                    .buckets(vec![
                        1.0,
                        10.0,
                        60.0,
                        300.0,
                        900.0,
                        3600.0,
                        4.0 * 3600.0,
                        12.0 * 3600.0,
                        86400.0,
                        3.0 * 86400.0,
                        7.0 * 86400.0,
                        30.0 * 86400.0,
                    ]),
                &["model"],
            )?,
            join_pending: IntGaugeVec::new(
                Opts::new("driftwatch_label_join_pending", "Predictions in the join store waiting for their label"),
                &["model"],
            )?,
        };
        registry.register(Box::new(m.source_events.clone()))?;
        registry.register(Box::new(m.dead_letters.clone()))?;
        registry.register(Box::new(m.window_events.clone()))?;
        registry.register(Box::new(m.late_events.clone()))?;
        registry.register(Box::new(m.evaluations.clone()))?;
        registry.register(Box::new(m.drift_events.clone()))?;
        registry.register(Box::new(m.suppressed.clone()))?;
        registry.register(Box::new(m.score.clone()))?;
        registry.register(Box::new(m.p_value.clone()))?;
        registry.register(Box::new(m.state.clone()))?;
        registry.register(Box::new(m.last_evaluation.clone()))?;
        registry.register(Box::new(m.drifting_features.clone()))?;
        registry.register(Box::new(m.event_latency.clone()))?;
        registry.register(Box::new(m.evaluation_seconds.clone()))?;
        registry.register(Box::new(m.shard_queue.clone()))?;
        registry.register(Box::new(m.sketch_bytes.clone()))?;
        registry.register(Box::new(m.reference_ready.clone()))?;
        registry.register(Box::new(m.start_time.clone()))?;
        registry.register(Box::new(m.events_rate.clone()))?;
        registry.register(Box::new(m.stage_seconds.clone()))?;
        registry.register(Box::new(m.quality.clone()))?;
        registry.register(Box::new(m.label_coverage.clone()))?;
        registry.register(Box::new(m.quality_estimated.clone()))?;
        registry.register(Box::new(m.quality_estimated_lower.clone()))?;
        registry.register(Box::new(m.quality_estimated_upper.clone()))?;
        registry.register(Box::new(m.labels.clone()))?;
        registry.register(Box::new(m.label_delay.clone()))?;
        registry.register(Box::new(m.join_pending.clone()))?;
        Ok(m)
    }

    /// Records one evaluation in the per-feature gauges.
    pub fn record(&self, e: &Evaluation, now_unix: f64) {
        let labels = [e.model.as_str(), e.kind, e.feature.as_str(), e.metric];
        if let Some(v) = e.value {
            self.score.with_label_values(&labels).set(v);
        }
        if let Some(p) = e.p_value {
            self.p_value.with_label_values(&labels).set(p);
        }
        self.state.with_label_values(&labels).set(i64::from(e.state == "drifting"));
        self.last_evaluation.with_label_values(&labels).set(now_unix);
    }
}
