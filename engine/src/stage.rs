//! The window stage's outputs, the same for `replay` and `run`: each decoded
//! batch is applied to every model in input order, and what that produced
//! goes to the outputs every front end has (the JSON lines files, the
//! summary) and, when running live, to `/metrics`, the drift-event sinks and
//! the dead-letter topic. The driver (`pipeline::drive`) calls it.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use driftwatch_connectors::kafka::KafkaSink;
use driftwatch_connectors::{EventRecord, Sink, SourceHandle};

use crate::batch::RowsPool;
use crate::labels::ReplayLabels;
use crate::metrics::EngineMetrics;
use crate::pipeline::{write_line, Decoded, Outputs, Summary};
use crate::quality::{JoinCounters, LabelFeed, LabelRecord};
use crate::window::{ModelState, Outcome};
use crate::{Error, Result};

/// How the input ended, and so what the window stage does last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// The input is complete (a file): every open pane is completed and
    /// evaluated, every label read is joined.
    Complete,
    /// The stream was stopped (a live source): windows stay as they are;
    /// windows of predictions holding labels are evaluated once more.
    Stopped,
}

/// What only a live run has: `/metrics` and the sinks.
pub(crate) struct Live<'a> {
    pub(crate) metrics: &'a EngineMetrics,
    pub(crate) sinks: &'a [Box<dyn Sink>],
    pub(crate) dead_letter_sink: Option<&'a KafkaSink>,
    /// (model, feature) → metrics by which it drifts now.
    drifting: HashMap<(String, String), Vec<&'static str>>,
    previous: Vec<Seen>,
    /// Per model: the window whose realised quality the gauges show (its
    /// end), and the metrics given a value so far.
    quality_shown: HashMap<String, (WindowEnd, Vec<&'static str>)>,
    /// Per model: the window whose label drift the series show.
    label_shown: HashMap<String, WindowEnd>,
    /// Per model: its label-delay histogram.
    label_delays: Vec<Option<prometheus::Histogram>>,
}

impl<'a> Live<'a> {
    pub(crate) fn new(
        metrics: &'a EngineMetrics,
        sinks: &'a [Box<dyn Sink>],
        dead_letter_sink: Option<&'a KafkaSink>,
        models: &[ModelState],
    ) -> Self {
        Self {
            metrics,
            sinks,
            dead_letter_sink,
            drifting: HashMap::new(),
            previous: vec![Seen::default(); models.len()],
            quality_shown: HashMap::new(),
            label_shown: HashMap::new(),
            label_delays: models.iter().map(|m| m.quality().map(|_| metrics.label_delay.with_label_values(&[&m.plan().name]))).collect(),
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    late: u64,
    windows: u64,
    join: JoinCounters,
}

/// Where a window ends: (index after its last event, end time); orders a model's windows.
type WindowEnd = (Option<u64>, Option<i64>);

/// A batch's label events, per model in input order, for the window stage:
/// before each prediction it takes the model's labels with an earlier
/// event time, and the rest once the batch's predictions are applied.
#[derive(Debug)]
pub(crate) struct BatchLabels {
    queues: Vec<VecDeque<LabelRecord>>,
}

impl LabelFeed for BatchLabels {
    fn next_before(&mut self, model: usize, ts: Option<i64>) -> Result<Option<LabelRecord>> {
        let queue = &mut self.queues[model];
        Ok(match queue.front() {
            Some(l) if ts.is_none_or(|t| l.ts < t) => queue.pop_front(),
            _ => None,
        })
    }
}

/// The window stage: the models, what they produced, and where it goes.
pub(crate) struct WindowStage<'a> {
    pub(crate) models: Vec<ModelState>,
    outcome: Outcome,
    outputs: Outputs,
    live: Option<Live<'a>>,
    /// The labels of a replay's `--labels` file, merged by event time; else
    /// the labels that came in the batches.
    file_labels: Option<ReplayLabels>,
    batch_labels: BatchLabels,
    /// Per source of the pipeline, its handle (told what was applied).
    handles: Vec<Arc<dyn SourceHandle>>,
    rows_pool: Option<RowsPool>,
    pub(crate) summary: Summary,
    labels_read: u64,
    label_dead_letters: u64,
}

impl<'a> WindowStage<'a> {
    pub(crate) fn new(models: Vec<ModelState>, outputs: Outputs, file_labels: Option<ReplayLabels>, live: Option<Live<'a>>) -> Self {
        let batch_labels = BatchLabels { queues: vec![VecDeque::new(); models.len()] };
        Self {
            models,
            outcome: Outcome::default(),
            outputs,
            live,
            file_labels,
            batch_labels,
            handles: Vec::new(),
            rows_pool: None,
            summary: Summary::default(),
            labels_read: 0,
            label_dead_letters: 0,
        }
    }

    /// Connects the stage to the pipeline's sources and column-batch pool.
    pub(crate) fn attach(&mut self, handles: Vec<Arc<dyn SourceHandle>>, rows_pool: RowsPool) {
        self.handles = handles;
        self.rows_pool = Some(rows_pool);
    }

    /// Applies one decoded batch (batches come in input order), then tells
    /// its source the batch's positions are applied.
    pub(crate) fn apply(&mut self, d: Decoded) -> Result<()> {
        let started = Instant::now();
        if let Some(live) = &self.live {
            live.metrics.stage_seconds.with_label_values(&["decode"]).observe(d.decode_seconds);
        }
        self.labels_read += d.labels_read;
        for &model in &d.label_dead {
            self.label_dead_letters += 1;
            if let Some(live) = &self.live {
                let name = model.map_or("", |m| self.models[m].plan().name.as_str());
                live.metrics.labels.with_label_values(&[name, "dead_letter"]).inc();
            }
        }
        for l in d.labels {
            self.batch_labels.queues[l.model].push_back(l);
        }
        for dl in &d.dead {
            *self.summary.dead_letters.entry(dl.reason).or_default() += 1;
            write_line(&mut self.outputs.dead_letter, dl, "dead letter output")?;
            let Some(live) = &self.live else { continue };
            live.metrics.dead_letters.with_label_values(&[dl.reason]).inc();
            if let (Some(sink), Some((slot, offset))) = (live.dead_letter_sink, dl.position) {
                let (topic, partition) = self.handles.get(d.source).and_then(|h| h.stream(slot)).unwrap_or_default();
                let (partition, offset) = (partition.to_string(), offset.to_string());
                let mut headers = vec![
                    ("driftwatch.source.topic", topic.as_bytes()),
                    ("driftwatch.source.partition", partition.as_bytes()),
                    ("driftwatch.source.offset", offset.as_bytes()),
                    ("driftwatch.reason", dl.reason.as_bytes()),
                    ("driftwatch.detail", dl.detail.as_bytes()),
                ];
                if let Some(input) = dl.input {
                    headers.push(("driftwatch.input", input.as_bytes()));
                }
                sink.send(&format!("{topic}/{partition}"), &dl.payload, &headers);
            }
        }
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        let latency = self.live.as_ref().map(|l| l.metrics.event_latency.local());
        for (model, rows) in self.models.iter_mut().zip(&d.rows) {
            let Some(rows) = rows else { continue };
            let feed: &mut dyn LabelFeed = match &mut self.file_labels {
                Some(f) => f,
                None => &mut self.batch_labels,
            };
            model.apply_rows(rows, &mut self.outcome, feed)?;
            let suppressed = std::mem::take(&mut self.outcome.suppressed);
            self.summary.suppressed += suppressed;
            self.summary.events_applied += rows.len() as u64;
            if let Some(live) = &self.live {
                let name = &model.plan().name;
                if suppressed > 0 {
                    live.metrics.suppressed.with_label_values(&[name]).inc_by(suppressed);
                }
                live.metrics.window_events.with_label_values(&[name]).inc_by(rows.len() as u64);
            }
            if let Some(latency) = &latency {
                for &t in rows.ts_range(0..rows.len()).iter().flatten() {
                    latency.observe((now_ms - t).max(0) as f64 / 1000.0);
                }
            }
        }
        if let Some(latency) = latency {
            latency.flush();
        }
        // The batch's own labels that no prediction of it came after.
        for model in &mut self.models {
            model.drain_labels(&mut self.batch_labels, &mut self.outcome)?;
        }
        if let Some(live) = &self.live {
            live.metrics.stage_seconds.with_label_values(&["window"]).observe(started.elapsed().as_secs_f64());
        }
        // The source learns only now that the batch is applied (Kafka commits only this).
        if let Some(h) = self.handles.get(d.source) {
            h.applied(&d.positions);
        }
        if let Some(pool) = &self.rows_pool {
            pool.give_all(d.rows);
        }
        self.emit()?;
        self.write_label_dead_letters()
    }

    /// The end of the input: what [`End`] says.
    pub(crate) fn finish(&mut self, end: End) -> Result<()> {
        match end {
            End::Complete => {
                if let Some(f) = &mut self.file_labels {
                    for m in &mut self.models {
                        m.drain_labels(f, &mut self.outcome)?;
                    }
                }
                self.write_label_dead_letters()?;
                if let Some(f) = &mut self.file_labels {
                    f.finish()?;
                }
                for m in &mut self.models {
                    m.finish(&mut self.outcome)?;
                }
            }
            End::Stopped => {
                // Every window of predictions holding labels is evaluated once
                // more (`final` says whether its label_ttl had passed).
                for m in &mut self.models {
                    m.finish_quality(&mut self.outcome)?;
                }
            }
        }
        self.emit()?;
        self.tick(&[], 0.0);
        Ok(())
    }

    /// The summary's totals that come from the models, and the outputs flushed.
    pub(crate) fn close(&mut self) -> Result<Summary> {
        for w in [&mut self.outputs.evaluations, &mut self.outputs.events, &mut self.outputs.dead_letter].into_iter().flatten() {
            w.flush().map_err(|e| Error::io(std::path::Path::new("output"), e))?;
        }
        let read = self.file_labels.as_ref().map_or(0, |f| f.read) + self.labels_read;
        self.summary.labels = crate::pipeline::labels_report(&self.models, read, self.label_dead_letters)?;
        for m in &self.models {
            self.summary.models.insert(m.plan().name.clone(), m.counters);
            self.summary.sketch_bytes += m.size_bytes() as u64;
        }
        Ok(std::mem::take(&mut self.summary))
    }

    /// Writes and counts the label dead letters the labels file gave so far.
    fn write_label_dead_letters(&mut self) -> Result<()> {
        let Some(f) = &mut self.file_labels else { return Ok(()) };
        for dl in f.dead.drain(..) {
            *self.summary.dead_letters.entry(dl.reason).or_default() += 1;
            self.label_dead_letters += 1;
            write_line(&mut self.outputs.dead_letter, &dl, "dead letter output")?;
        }
        Ok(())
    }

    /// Hands what the window stage produced to the outputs: the evaluation
    /// and event files, and when live `/metrics` and the sinks.
    fn emit(&mut self) -> Result<()> {
        let now = crate::live::now_unix();
        for e in self.outcome.evaluations.drain(..) {
            self.summary.evaluations += 1;
            write_line(&mut self.outputs.evaluations, &e, "evaluation output")?;
            let Some(live) = &mut self.live else { continue };
            if e.kind == "label" {
                // Label drift: older windows are re-evaluated as their labels come; the series show the newest.
                let end = (e.window.end_index, e.window.end_ms);
                let shown = live.label_shown.entry(e.model.clone()).or_insert(end);
                if end >= *shown {
                    *shown = end;
                    live.metrics.record(&e, now);
                }
                continue;
            }
            live.metrics.record(&e, now);
            let entry = live.drifting.entry((e.model.clone(), e.feature.clone())).or_default();
            entry.retain(|m| *m != e.metric);
            if e.state == "drifting" {
                entry.push(e.metric);
            }
        }
        for e in self.outcome.events.drain(..) {
            match e.kind {
                "drift" => self.summary.drift_events += 1,
                _ => self.summary.resolved_events += 1,
            }
            write_line(&mut self.outputs.events, &e, "event output")?;
            let Some(live) = &self.live else { continue };
            live.metrics.drift_events.with_label_values(&[&e.model, e.kind]).inc();
            let body = serde_json::to_vec(&e).map_err(|e| Error::Internal(format!("serializing a drift event: {e}")))?;
            let key = format!("{}/{}", e.model, e.feature);
            let record = EventRecord { id: &e.event_id, kind: e.kind, key: &key, body: &body };
            for sink in live.sinks {
                sink.send(&record);
            }
        }
        for e in self.outcome.quality.drain(..) {
            self.summary.evaluations += 1;
            write_line(&mut self.outputs.evaluations, &e, "evaluation output")?;
            let Some(live) = &mut self.live else { continue };
            if let Some(band) = e.band {
                // An estimate: made once per window, when it closes, in window order.
                let labels = [e.model.as_str(), e.metric];
                let nan = f64::NAN;
                live.metrics.quality_estimated.with_label_values(&labels).set(e.value.unwrap_or(nan));
                live.metrics.quality_estimated_lower.with_label_values(&labels).set(band.lower.unwrap_or(nan));
                live.metrics.quality_estimated_upper.with_label_values(&labels).set(band.upper.unwrap_or(nan));
                continue;
            }
            let end = (e.window.end_index, e.window.end_ms);
            if let Some(v) = e.value {
                let (shown, metrics) = live.quality_shown.entry(e.model.clone()).or_insert((end, Vec::new()));
                if end > *shown {
                    // A newer window: metrics it has no value for show none, not an older window's.
                    *shown = end;
                    for m in metrics.iter() {
                        live.metrics.quality.with_label_values(&[e.model.as_str(), m]).set(f64::NAN);
                    }
                }
                if end == *shown {
                    if !metrics.contains(&e.metric) {
                        metrics.push(e.metric);
                    }
                    live.metrics.quality.with_label_values(&[&e.model, e.metric]).set(v);
                    live.metrics.label_coverage.with_label_values(&[&e.model]).set(e.coverage);
                }
            }
        }
        self.summary.suppressed += std::mem::take(&mut self.outcome.suppressed);
        if let Some(live) = &self.live {
            for (model, delay) in self.outcome.label_delays.drain(..) {
                if let Some(Some(h)) = live.label_delays.get(model) {
                    h.observe(delay);
                }
            }
            for s in self.outcome.window_seconds.drain(..) {
                live.metrics.evaluation_seconds.observe(s);
            }
        } else {
            self.outcome.window_seconds.clear();
            self.outcome.label_delays.clear();
        }
        Ok(())
    }

    /// Once a second when live: the gauges and counters that follow the models' state.
    pub(crate) fn tick(&mut self, queue_depths: &[usize], rate: f64) {
        let Some(live) = &mut self.live else { return };
        live.metrics.events_rate.set(rate);
        for (i, depth) in queue_depths.iter().enumerate() {
            live.metrics.shard_queue.with_label_values(&[&i.to_string()]).set(*depth as i64);
        }
        for (m, prev) in self.models.iter().zip(live.previous.iter_mut()) {
            let name = &m.plan().name;
            live.metrics.sketch_bytes.with_label_values(&[name]).set(m.size_bytes() as i64);
            live.metrics.reference_ready.with_label_values(&[name]).set(i64::from(m.has_reference()));
            let c = m.counters;
            live.metrics.late_events.with_label_values(&[name]).inc_by(c.late - prev.late);
            live.metrics.evaluations.with_label_values(&[name]).inc_by(c.windows - prev.windows);
            let mut join = JoinCounters::default();
            if let Some(q) = m.quality() {
                let counters = q.counters();
                join = counters.join;
                for ((outcome, now), (_, before)) in join.outcomes().into_iter().zip(prev.join.outcomes()) {
                    live.metrics.labels.with_label_values(&[name, outcome]).inc_by(now - before);
                }
                live.metrics.join_pending.with_label_values(&[name]).set(counters.pending as i64);
            }
            *prev = Seen { late: c.late, windows: c.windows, join };
            let drifting = live.drifting.iter().filter(|((model, _), metrics)| model == name && !metrics.is_empty()).count();
            live.metrics.drifting_features.with_label_values(&[name]).set(drifting as i64);
        }
    }

    /// `driftwatch run --progress`'s line.
    pub(crate) fn progress_line(&self, read: u64, rate: f64, lag: i64) -> String {
        let drifting = self.live.as_ref().map_or(0, |l| l.drifting.values().filter(|m| !m.is_empty()).count());
        let features = self.live.as_ref().map_or(0, |l| l.drifting.len());
        let dead: u64 = self.summary.dead_letters.values().sum();
        format!(
            "driftwatch: {read} events ({rate:.0}/s) · lag {lag} · {drifting}/{features} features drifting · {} drift / {} resolved events · {dead} dead letters",
            self.summary.drift_events, self.summary.resolved_events
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(model: usize, id: &str, ts: i64) -> LabelRecord {
        LabelRecord { model, id: id.into(), label: 1.0, ts }
    }

    /// A batch's labels: per model in input order; before a prediction only
    /// those at the front with an earlier time, then all the rest.
    #[test]
    fn batch_labels_hand_out_earlier_labels_first_then_the_rest() {
        let mut feed = BatchLabels { queues: vec![VecDeque::new(); 2] };
        for l in [label(0, "a", 5), label(1, "x", 1), label(0, "b", 20), label(0, "c", 7)] {
            feed.queues[l.model].push_back(l);
        }
        let id = |l: Option<LabelRecord>| l.map(|l| l.id.to_string());
        assert_eq!(id(feed.next_before(0, Some(5)).unwrap()), None, "same time: after the prediction");
        assert_eq!(id(feed.next_before(0, Some(6)).unwrap()).as_deref(), Some("a"));
        assert_eq!(id(feed.next_before(0, Some(10)).unwrap()), None, "b (20) holds back c (7): input order");
        assert_eq!(id(feed.next_before(1, Some(2)).unwrap()).as_deref(), Some("x"));
        let rest: Vec<String> = std::iter::from_fn(|| id(feed.next_before(0, None).unwrap())).collect();
        assert_eq!(rest, ["b", "c"]);
        assert!(feed.next_before(1, None).unwrap().is_none());
    }
}
