//! `driftwatch run`: the live pipeline. The same shards and window stage as
//! replay, fed by a Kafka consumer group, with drift events delivered to
//! sinks and every series on `/metrics`.
//!
//! ```text
//! source thread ──batches──► shard threads ──decoded──► window stage (this thread)
//!  KafkaSource.poll          decode, type-check          apply in poll order ─► evaluations ─► /metrics
//!  ▲        │ revoke: drain                                  │                 └► drift events ─► sinks
//!  └ commit ◄────────── applied offsets (per batch, in order) ┘
//! ```
//!
//! Labels (models with `quality`): the consumer reads `label_topics` too;
//! label messages ride in the same batches, are decoded by the shards'
//! label decoders and joined by the window stage in poll order, so their
//! offsets follow the same rule as the predictions'.
//!
//! Offsets: a batch's offsets are reported to the source only after the
//! window stage applied it; the source commits them every `commit_interval`,
//! synchronously before a revoke (after draining what it already handed
//! over) and at shutdown. What a crash can replay: the events after the last
//! commit (at most `commit_interval` of traffic plus the queues); windows
//! live in memory, so after a restart they fill again from the committed
//! offsets and nothing is counted twice within one process.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use driftwatch_connectors::kafka::{KafkaSink, KafkaSinkConfig, KafkaSource, PollOutcome, RevokeHook, SourceHandle};
use driftwatch_connectors::webhook::SinkMetrics;
use driftwatch_connectors::{EventRecord, Sink, SinkContext};
use prometheus::Registry;
use serde::Serialize;

use crate::batch::RowsPool;
use crate::config::{Config, SourceConfig};
use crate::decode::Decoder;
use crate::metrics::EngineMetrics;
use crate::model::Plan;
use crate::pipeline::{create_output, write_line, Batch, BatchPool, Decoded, Shards};
use crate::quality::{JoinCounters, LabelFeed, LabelRecord};
use crate::window::{ModelState, Outcome};
use crate::{Error, Result};

/// Options of `driftwatch run` beyond the configuration file.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Shard threads (default: the config's, else the core count).
    pub shards: Option<usize>,
    /// Print a progress line every second on standard error.
    pub progress: bool,
    /// Overrides `metrics.listen`.
    pub listen: Option<SocketAddr>,
    /// Also write every evaluation as a JSON line here.
    pub output_evaluations: Option<PathBuf>,
    /// Set to stop (Ctrl-C and SIGTERM set it too).
    pub stop: Arc<AtomicBool>,
}

/// What a run did, printed at shutdown.
#[derive(Debug, Default, Serialize)]
pub struct RunSummary {
    /// Events read from Kafka.
    pub events_read: u64,
    /// Events applied to windows or baselines.
    pub events_applied: u64,
    /// Dead letters per reason.
    pub dead_letters: BTreeMap<&'static str, u64>,
    /// Evaluation records.
    pub evaluations: u64,
    /// Drift events emitted.
    pub drift_events: u64,
    /// Resolved events emitted.
    pub resolved_events: u64,
    /// Seconds running.
    pub elapsed_seconds: f64,
    /// Peak resident memory of the process (Linux `VmHWM`), if known.
    pub peak_rss_bytes: Option<u64>,
    /// Label events and the join, when a model has `quality`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<crate::pipeline::LabelsReport>,
}

/// Batches handed to shards and batches applied: the revoke hook waits for
/// the second to catch up with the first.
#[derive(Debug, Default)]
struct Progress {
    sent: AtomicU64,
    applied: Mutex<u64>,
    cv: Condvar,
}

impl Progress {
    fn set_applied(&self, n: u64) {
        *self.applied.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = n;
        self.cv.notify_all();
    }
    /// Waits until every batch sent so far is applied (at most `limit`).
    fn wait_applied(&self, limit: Duration) -> bool {
        let target = self.sent.load(Ordering::Acquire);
        let guard = self.applied.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (guard, _) =
            self.cv.wait_timeout_while(guard, limit, |applied| *applied < target).unwrap_or_else(std::sync::PoisonError::into_inner);
        *guard >= target
    }
}

impl RevokeHook for Progress {
    fn drain(&self) {
        if !self.wait_applied(Duration::from_secs(60)) {
            tracing::warn!("revoke: batches still in flight after 60 s; their offsets stay uncommitted");
        }
    }
}

fn now_unix() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// Runs until `options.stop` is set; returns the summary.
pub fn run(config: &Config, options: RunOptions) -> Result<RunSummary> {
    let started = Instant::now();
    let Some(SourceConfig::Kafka(kafka)) = &config.source else {
        return Err(Error::Usage("`driftwatch run` needs a `source` in the configuration (type: kafka)".into()));
    };
    let plan = Arc::new(Plan::new(config)?);
    let decoder = Arc::new(Decoder::new(&plan.decoder)?);
    if let Some(m) = config.models.iter().find(|m| m.quality.is_some()) {
        if kafka.label_topics.is_empty() {
            return Err(Error::Usage(format!(
                "model {:?} has `quality`: set `source.label_topics` to the topics of its label events \
                 (or leave `quality` out of the live configuration)",
                m.name
            )));
        }
    }
    let mut models: Vec<ModelState> = crate::pipeline::model_states(config, &plan)?;
    models.iter_mut().for_each(ModelState::hold_quality_clock_to_predictions);
    let shard_count = options.shards.unwrap_or_else(|| config.engine.shard_count()).max(1);
    let batch_events = config.engine.batch_events;
    let max = config.engine.max_event_bytes;

    let registry = Registry::new();
    let metrics = EngineMetrics::register(&registry)?;
    metrics.start_time.set(now_unix());
    let sink_metrics = SinkMetrics::register(&registry)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("driftwatch-io")
        .enable_all()
        .build()
        .map_err(|e| Error::Io { path: "tokio runtime".into(), source: e })?;

    let context = SinkContext { runtime: runtime.handle(), metrics: &sink_metrics, registry: &registry };
    let sinks = config.sinks.iter().map(|s| s.build(&context)).collect::<Result<Vec<_>, _>>()?;
    let dead_letter_sink = match &kafka.dead_letter_topic {
        Some(topic) => {
            // Only the connection settings carry over from the consumer.
            let options = kafka
                .options
                .iter()
                .filter(|(k, _)| ["security.", "sasl.", "ssl.", "client."].iter().any(|p| k.starts_with(p)))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let c = KafkaSinkConfig { name: Some("dead_letter".into()), brokers: kafka.brokers.clone(), topic: topic.clone(), options };
            Some(KafkaSink::start(&c, sink_metrics.clone())?)
        }
        None => None,
    };

    let progress = Arc::new(Progress::default());
    let source = KafkaSource::start(kafka, Arc::clone(&progress) as Arc<dyn RevokeHook>, &registry)?;
    let handle = source.handle();

    let listen = match options.listen {
        Some(a) => a,
        None => config.metrics.listen.parse().map_err(|e| Error::Usage(format!("metrics.listen: {e}")))?,
    };
    let ready_handle = handle.clone();
    let (bound, server) =
        runtime.block_on(driftwatch_connectors::http::serve(listen, registry.clone(), Arc::new(move || ready_handle.ready())))?;
    tracing::info!("serving /metrics, /healthz, /readyz on http://{bound}");
    let stop = Arc::clone(&options.stop);
    {
        let stop = Arc::clone(&stop);
        runtime.spawn(async move {
            wait_for_signal().await;
            stop.store(true, Ordering::Release);
        });
    }

    // Shards.
    let Shards { senders: shard_txs, probes: queue_probe, done: done_rx, pool, rows: rows_pool, handles: shard_handles } =
        Shards::start(shard_count, config, &plan, &decoder)?;

    // The source thread.
    let events_read = Arc::new(AtomicU64::new(0));
    let source_thread = {
        let (progress, stop, events_read, pool) = (Arc::clone(&progress), Arc::clone(&stop), Arc::clone(&events_read), pool.clone());
        let batch_wait = kafka.batch_wait.get();
        std::thread::Builder::new()
            .name("driftwatch-source".into())
            .spawn(move || {
                source_loop(source, shard_txs, &pool, &progress, &stop, &events_read, batch_events, batch_wait, max);
            })
            .map_err(|e| Error::Internal(format!("cannot start source thread: {e}")))?
    };

    // The window stage.
    let mut evaluations_out = match &options.output_evaluations {
        Some(p) => Some(create_output(p)?),
        None => None,
    };
    let mut stage = WindowStage {
        metrics: &metrics,
        sinks: &sinks,
        dead_letter_sink: dead_letter_sink.as_ref(),
        handle: &handle,
        rows_pool: &rows_pool,
        summary: RunSummary::default(),
        drifting: HashMap::new(),
        previous: vec![Default::default(); models.len()],
        feed: BatchLabels { queues: vec![VecDeque::new(); models.len()] },
        labels_read: 0,
        label_dead_letters: 0,
        quality_shown: HashMap::new(),
        label_shown: HashMap::new(),
        label_delays: models.iter().map(|m| m.quality().map(|_| metrics.label_delay.with_label_values(&[&m.plan().name]))).collect(),
    };
    let mut pending: BTreeMap<u64, Decoded> = BTreeMap::new();
    let mut next = 0u64;
    let mut outcome = Outcome::default();
    let mut last_tick = Instant::now();
    let mut last_events = 0u64;
    let mut result = Ok(());
    loop {
        match done_rx.recv_timeout(Duration::from_millis(200)) {
            Ok(d) => {
                pending.insert(d.seq, d);
                while let Some(d) = pending.remove(&next) {
                    next += 1;
                    if result.is_ok() {
                        result = stage.apply(d, &mut models, &mut outcome, &mut evaluations_out);
                    }
                    progress.set_applied(next);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if result.is_err() {
            stop.store(true, Ordering::Release);
        }
        if last_tick.elapsed() >= Duration::from_secs(1) {
            let read = events_read.load(Ordering::Relaxed);
            let rate = (read - last_events) as f64 / last_tick.elapsed().as_secs_f64();
            metrics.source_events.inc_by(read - last_events);
            last_tick = Instant::now();
            last_events = read;
            stage.tick(&models, &queue_probe, rate);
            if options.progress {
                eprintln!("{}", stage.progress_line(read, rate, handle.lag()));
            }
        }
    }
    drop(queue_probe);
    source_thread.join().map_err(|_| Error::Internal("source thread panicked".into()))?;
    for h in shard_handles {
        h.join().map_err(|_| Error::Internal("shard thread panicked".into()))?;
    }
    if result.is_ok() {
        // Every window of predictions holding labels is evaluated once more
        // (`final` says whether its label_ttl had passed).
        result = models.iter_mut().try_for_each(|m| m.finish_quality(&mut outcome));
        if result.is_ok() {
            result = stage.emit(&mut outcome, &mut evaluations_out);
        }
        stage.tick(&models, &[], 0.0);
    }
    if let Some(w) = &mut evaluations_out {
        std::io::Write::flush(w).map_err(|e| Error::io(std::path::Path::new("evaluation output"), e))?;
    }
    let mut summary = std::mem::take(&mut stage.summary);
    summary.events_read = events_read.load(Ordering::Relaxed);
    summary.elapsed_seconds = started.elapsed().as_secs_f64();
    summary.peak_rss_bytes = crate::pipeline::peak_rss_bytes();
    match crate::pipeline::labels_report(&models, stage.labels_read, stage.label_dead_letters) {
        Ok(labels) => summary.labels = labels,
        Err(e) if result.is_ok() => result = Err(e),
        Err(_) => {}
    }
    drop(stage);
    // Let the sinks deliver what is queued, then stop serving.
    for s in sinks {
        s.close(Duration::from_secs(5));
    }
    if let Some(dl) = dead_letter_sink {
        dl.flush(Duration::from_secs(5));
    }
    server.abort();
    result?;
    Ok(summary)
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _interrupted = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _interrupted = tokio::signal::ctrl_c().await;
    }
}

/// Polls Kafka into batches and hands them to the shards in turn; on stop,
/// hands over the last batch, waits until everything is applied, commits
/// and leaves the group.
#[allow(clippy::too_many_arguments)]
fn source_loop(
    mut source: KafkaSource,
    shards: Vec<Sender<Batch>>,
    pool: &BatchPool,
    progress: &Progress,
    stop: &AtomicBool,
    events_read: &AtomicU64,
    batch_events: usize,
    batch_wait: Duration,
    max: usize,
) {
    let mut seq = 0u64;
    let mut batch = pool.take(seq);
    let mut first_at: Option<Instant> = None;
    let send = |batch: Batch, seq: &mut u64| -> bool {
        let shard = (*seq % shards.len() as u64) as usize;
        events_read.fetch_add(batch.len() as u64, Ordering::Relaxed);
        if shards[shard].send(batch).is_err() {
            return false;
        }
        *seq += 1;
        progress.sent.store(*seq, Ordering::Release);
        true
    };
    while !stop.load(Ordering::Acquire) {
        let wait = first_at.map_or(batch_wait, |t| batch_wait.saturating_sub(t.elapsed()));
        let room = batch_events - batch.len();
        match source.poll(room, wait, |m| batch.push_message(m.payload, m.slot, m.offset, max, m.label)) {
            PollOutcome::Revoked(slots) => batch.retain_partitions(|s| !slots.contains(&s)),
            PollOutcome::Messages(_) => {}
        }
        if batch.len() > 0 && first_at.is_none() {
            first_at = Some(Instant::now());
        }
        let due = first_at.is_some_and(|t| t.elapsed() >= batch_wait);
        if batch.len() >= batch_events || (due && batch.len() > 0) {
            let next = pool.take(seq + 1);
            if !send(std::mem::replace(&mut batch, next), &mut seq) {
                break; // the window stage stopped (an error): leave without committing more
            }
            first_at = None;
        }
    }
    if batch.len() > 0 {
        send(batch, &mut seq);
    }
    drop(shards);
    if !progress.wait_applied(Duration::from_secs(60)) {
        tracing::warn!("shutdown: batches still in flight after 60 s; committing what was applied");
    }
    source.close();
}

#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    late: u64,
    windows: u64,
    join: JoinCounters,
}

struct WindowStage<'a> {
    metrics: &'a EngineMetrics,
    sinks: &'a [Box<dyn Sink>],
    dead_letter_sink: Option<&'a KafkaSink>,
    handle: &'a SourceHandle,
    rows_pool: &'a RowsPool,
    summary: RunSummary,
    /// (model, feature) → metrics by which it drifts now.
    drifting: HashMap<(String, String), Vec<&'static str>>,
    previous: Vec<Seen>,
    /// The labels of the batch being applied.
    feed: BatchLabels,
    labels_read: u64,
    label_dead_letters: u64,
    /// Per model: the window whose realised quality the gauges show (its
    /// end), and the metrics given a value so far.
    quality_shown: HashMap<String, (WindowEnd, Vec<&'static str>)>,
    /// Per model: the window whose label drift the series show.
    label_shown: HashMap<String, WindowEnd>,
    /// Per model: its label-delay histogram.
    label_delays: Vec<Option<prometheus::Histogram>>,
}

/// Where a window ends: (index after its last event, end time); orders a model's windows.
type WindowEnd = (Option<u64>, Option<i64>);

/// A batch's label events, per model in poll order, for the window stage:
/// before each prediction it takes the model's labels with an earlier
/// event time, and the rest once the batch's predictions are applied.
#[derive(Debug)]
struct BatchLabels {
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

impl WindowStage<'_> {
    fn apply(
        &mut self,
        d: Decoded,
        models: &mut [ModelState],
        outcome: &mut Outcome,
        evaluations_out: &mut Option<Box<dyn std::io::Write + Send>>,
    ) -> Result<()> {
        let started = Instant::now();
        self.metrics.stage_seconds.with_label_values(&["decode"]).observe(d.decode_seconds);
        self.labels_read += d.labels_read;
        for &model in &d.label_dead {
            self.label_dead_letters += 1;
            let name = model.map_or("", |m| models[m].plan().name.as_str());
            self.metrics.labels.with_label_values(&[name, "dead_letter"]).inc();
        }
        for l in d.labels {
            self.feed.queues[l.model].push_back(l);
        }
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        for dl in &d.dead {
            *self.summary.dead_letters.entry(dl.reason).or_default() += 1;
            self.metrics.dead_letters.with_label_values(&[dl.reason]).inc();
            if let (Some(sink), Some((slot, offset))) = (self.dead_letter_sink, dl.position) {
                let (topic, partition) = self.handle.partition(slot).unwrap_or_default();
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
        let latency = self.metrics.event_latency.local();
        for (model, rows) in models.iter_mut().zip(&d.rows) {
            let Some(rows) = rows else { continue };
            model.apply_rows(rows, outcome, &mut self.feed)?;
            let suppressed = std::mem::take(&mut outcome.suppressed);
            if suppressed > 0 {
                self.metrics.suppressed.with_label_values(&[&model.plan().name]).inc_by(suppressed);
            }
            self.summary.events_applied += rows.len() as u64;
            self.metrics.window_events.with_label_values(&[&model.plan().name]).inc_by(rows.len() as u64);
            for &t in rows.ts_range(0..rows.len()).iter().flatten() {
                latency.observe((now_ms - t).max(0) as f64 / 1000.0);
            }
        }
        latency.flush();
        for model in models.iter_mut() {
            model.drain_labels(&mut self.feed, outcome)?;
        }
        self.metrics.stage_seconds.with_label_values(&["window"]).observe(started.elapsed().as_secs_f64());
        // Offsets are reported only now that the batch is applied.
        self.handle.applied(&d.positions);
        self.rows_pool.give_all(d.rows);
        self.emit(outcome, evaluations_out)
    }

    /// Hands what the window stage produced to `/metrics`, the evaluation
    /// output and the sinks.
    fn emit(&mut self, outcome: &mut Outcome, evaluations_out: &mut Option<Box<dyn std::io::Write + Send>>) -> Result<()> {
        let now = now_unix();
        for e in outcome.evaluations.drain(..) {
            self.summary.evaluations += 1;
            if e.kind == "label" {
                // Label drift: older windows are re-evaluated as their labels come; the series show the newest.
                let end = (e.window.end_index, e.window.end_ms);
                let shown = self.label_shown.entry(e.model.clone()).or_insert(end);
                if end >= *shown {
                    *shown = end;
                    self.metrics.record(&e, now);
                }
                write_line(evaluations_out, &e, "evaluation output")?;
                continue;
            }
            self.metrics.record(&e, now);
            let entry = self.drifting.entry((e.model.clone(), e.feature.clone())).or_default();
            entry.retain(|m| *m != e.metric);
            if e.state == "drifting" {
                entry.push(e.metric);
            }
            write_line(evaluations_out, &e, "evaluation output")?;
        }
        for e in outcome.quality.drain(..) {
            self.summary.evaluations += 1;
            if let Some(band) = e.band {
                // An estimate: made once per window, when it closes, in window order.
                let labels = [e.model.as_str(), e.metric];
                let nan = f64::NAN;
                self.metrics.quality_estimated.with_label_values(&labels).set(e.value.unwrap_or(nan));
                self.metrics.quality_estimated_lower.with_label_values(&labels).set(band.lower.unwrap_or(nan));
                self.metrics.quality_estimated_upper.with_label_values(&labels).set(band.upper.unwrap_or(nan));
                write_line(evaluations_out, &e, "evaluation output")?;
                continue;
            }
            let end = (e.window.end_index, e.window.end_ms);
            if let Some(v) = e.value {
                let (shown, metrics) = self.quality_shown.entry(e.model.clone()).or_insert((end, Vec::new()));
                if end > *shown {
                    // A newer window: metrics it has no value for show none, not an older window's.
                    *shown = end;
                    for m in metrics.iter() {
                        self.metrics.quality.with_label_values(&[e.model.as_str(), m]).set(f64::NAN);
                    }
                }
                if end == *shown {
                    if !metrics.contains(&e.metric) {
                        metrics.push(e.metric);
                    }
                    self.metrics.quality.with_label_values(&[&e.model, e.metric]).set(v);
                    self.metrics.label_coverage.with_label_values(&[&e.model]).set(e.coverage);
                }
            }
            write_line(evaluations_out, &e, "evaluation output")?;
        }
        for (model, delay) in outcome.label_delays.drain(..) {
            if let Some(Some(h)) = self.label_delays.get(model) {
                h.observe(delay);
            }
        }
        for s in outcome.window_seconds.drain(..) {
            self.metrics.evaluation_seconds.observe(s);
        }
        for e in outcome.events.drain(..) {
            match e.kind {
                "drift" => self.summary.drift_events += 1,
                _ => self.summary.resolved_events += 1,
            }
            self.metrics.drift_events.with_label_values(&[&e.model, e.kind]).inc();
            let body = serde_json::to_vec(&e).map_err(|e| Error::Internal(format!("serializing a drift event: {e}")))?;
            let key = format!("{}/{}", e.model, e.feature);
            let record = EventRecord { id: &e.event_id, kind: e.kind, key: &key, body: &body };
            for sink in self.sinks {
                sink.send(&record);
            }
        }
        Ok(())
    }

    fn tick(&mut self, models: &[ModelState], queues: &[Receiver<Batch>], rate: f64) {
        self.metrics.events_rate.set(rate);
        for (i, q) in queues.iter().enumerate() {
            self.metrics.shard_queue.with_label_values(&[&i.to_string()]).set(q.len() as i64);
        }
        for (m, prev) in models.iter().zip(self.previous.iter_mut()) {
            let name = &m.plan().name;
            self.metrics.sketch_bytes.with_label_values(&[name]).set(m.size_bytes() as i64);
            self.metrics.reference_ready.with_label_values(&[name]).set(i64::from(m.has_reference()));
            let c = m.counters;
            self.metrics.late_events.with_label_values(&[name]).inc_by(c.late - prev.late);
            self.metrics.evaluations.with_label_values(&[name]).inc_by(c.windows - prev.windows);
            let mut join = JoinCounters::default();
            if let Some(q) = m.quality() {
                let counters = q.counters();
                join = counters.join;
                for ((outcome, now), (_, before)) in join.outcomes().into_iter().zip(prev.join.outcomes()) {
                    self.metrics.labels.with_label_values(&[name, outcome]).inc_by(now - before);
                }
                self.metrics.join_pending.with_label_values(&[name]).set(counters.pending as i64);
            }
            *prev = Seen { late: c.late, windows: c.windows, join };
            let drifting = self.drifting.iter().filter(|((model, _), metrics)| model == name && !metrics.is_empty()).count();
            self.metrics.drifting_features.with_label_values(&[name]).set(drifting as i64);
        }
    }

    fn progress_line(&self, read: u64, rate: f64, lag: i64) -> String {
        let drifting = self.drifting.values().filter(|m| !m.is_empty()).count();
        let dead: u64 = self.summary.dead_letters.values().sum();
        format!(
            "driftwatch: {read} events ({rate:.0}/s) · lag {lag} · {drifting}/{} features drifting · {} drift / {} resolved events · {dead} dead letters",
            self.drifting.len(),
            self.summary.drift_events,
            self.summary.resolved_events
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(model: usize, id: &str, ts: i64) -> LabelRecord {
        LabelRecord { model, id: id.into(), label: 1.0, ts }
    }

    /// A batch's labels: per model in poll order; before a prediction only
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
        assert_eq!(id(feed.next_before(0, Some(10)).unwrap()), None, "b (20) holds back c (7): poll order");
        assert_eq!(id(feed.next_before(1, Some(2)).unwrap()).as_deref(), Some("x"));
        let rest: Vec<String> = std::iter::from_fn(|| id(feed.next_before(0, None).unwrap())).collect();
        assert_eq!(rest, ["b", "c"]);
        assert!(feed.next_before(1, None).unwrap().is_none());
    }
}
