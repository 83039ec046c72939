//! The pipeline, one driver for `replay` and `run`: sources (a file, a
//! Kafka consumer; several at once) read raw batches on threads of their
//! own, shard threads decode and type-check them in parallel
//! (shared-nothing, fed by bounded crossbeam channels), and the window stage
//! (`stage.rs`) applies them to each model's windows in input order, so
//! results do not depend on the shard count.
//!
//! ```text
//! Source::run ─Batch─► seq, shard seq % n ─► decode_batch ─Decoded─► reorder ─► WindowStage::apply ─► outputs
//!      ▲                                                                             │
//!      └──────────────────────────── SourceHandle::applied ◄─────────────────────────┘
//! ```
//!
//! `replay` is `drive` over a [`FileSource`] with the outputs written as
//! JSON lines; `run` (`live.rs`) is `drive` over the configured source,
//! with `/metrics`, sinks and signals around it.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};
use driftwatch_connectors::file::FileSource;
use driftwatch_connectors::source::stamp;
use driftwatch_connectors::table::CsvTypes;
use driftwatch_connectors::{Batch, BatchPool, Feed, Progress, Source, SourceStats};
use serde::Serialize;

use crate::batch::{integer_category, ModelRows, RowsPool};
use crate::config::{Config, FeatureType, QualityTask};
use crate::decode::{DecodedEvent, Decoder, SlotValue};
use crate::labels::{LabelDecoder, ReplayLabels};
use crate::model::{build_reference_quality, build_references, task_value, Plan, QualityPlan};
use crate::quality::{LabelRecord, QualityCounters, QualityState};
use crate::stage::{End, WindowStage};
use crate::window::{ModelCounters, ModelState};
use crate::{Error, Result};

/// An event the engine could not fully use, with the reason.
///
/// Written as one JSON object: `line`, `reason`, `detail`, `payload`,
/// `partially_used`. The payload is the original bytes as text when they are
/// UTF-8; otherwise it is their standard base64 (RFC 4648, padded) and
/// `"payload_encoding": "base64"` follows it, so nothing of the input is
/// lost (the Kafka dead-letter topic gets the raw bytes as its payload).
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// 1-based line (or row) number in the input.
    pub line: u64,
    /// Closed set: the decoder's reasons, `unknown_model`, `missing_model`, `wrong_type`.
    pub reason: &'static str,
    /// A short description (never the payload).
    pub detail: String,
    /// The original payload (oversize payloads cut at the limit).
    pub payload: Vec<u8>,
    /// Kafka: the partition slot and offset of the message (not serialized).
    pub position: Option<(u32, i64)>,
    /// Whether the rest of the event was still used (`wrong_type` on one feature).
    pub partially_used: bool,
    /// `labels` for a label event (predictions leave it out).
    pub input: Option<&'static str>,
}

impl Serialize for DeadLetter {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use base64::Engine as _;
        use serde::ser::SerializeStruct as _;
        let text = std::str::from_utf8(&self.payload).ok();
        let mut out = s.serialize_struct("DeadLetter", if text.is_some() { 5 } else { 6 } + usize::from(self.input.is_some()))?;
        out.serialize_field("line", &self.line)?;
        out.serialize_field("reason", self.reason)?;
        out.serialize_field("detail", &self.detail)?;
        match text {
            Some(text) => out.serialize_field("payload", text)?,
            None => {
                out.serialize_field("payload", &base64::engine::general_purpose::STANDARD.encode(&self.payload))?;
                out.serialize_field("payload_encoding", "base64")?;
            }
        }
        out.serialize_field("partially_used", &self.partially_used)?;
        if let Some(input) = self.input {
            out.serialize_field("input", input)?;
        }
        out.end()
    }
}

/// A decoded batch, as a shard hands it to the window stage.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub(crate) seq: u64,
    /// The source it came from (index in the pipeline's list).
    pub(crate) source: usize,
    /// The last position per stream in the batch (Kafka: the highest offset per partition slot).
    pub(crate) positions: Vec<(u32, i64)>,
    /// Per model (plan order): its rows in this batch, if any.
    pub(crate) rows: Vec<Option<ModelRows>>,
    /// Kafka: the batch's label events, decoded, in poll order.
    pub(crate) labels: Vec<LabelRecord>,
    /// Kafka: label events in the batch (decoded or dead-lettered).
    pub(crate) labels_read: u64,
    /// Kafka: per dead-lettered label, the model (with `quality`) it names, if any.
    pub(crate) label_dead: Vec<Option<usize>>,
    pub(crate) dead: Vec<DeadLetter>,
    /// Seconds the shard spent decoding it.
    pub(crate) decode_seconds: f64,
}

/// What a replay or a run did (printed at the end; `replay --report` writes it).
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    /// Events read: JSONL lines that are not blank, CSV or Parquet rows, Kafka messages.
    pub events_read: u64,
    /// Blank or whitespace-only JSONL lines: skipped, not events (they still
    /// count for the line numbers of dead letters).
    pub blank_lines: u64,
    /// Events applied to a model (windows or baseline).
    pub events_applied: u64,
    /// Dead letters per reason.
    pub dead_letters: BTreeMap<&'static str, u64>,
    /// Per model counters.
    pub models: BTreeMap<String, ModelCounters>,
    /// Evaluation records written.
    pub evaluations: u64,
    /// Drift events.
    pub drift_events: u64,
    /// Resolved events.
    pub resolved_events: u64,
    /// Episodes suppressed by the cooldown.
    pub suppressed: u64,
    /// Shards used.
    pub shards: usize,
    /// Wall time in seconds.
    pub elapsed_seconds: f64,
    /// Events read per second.
    pub events_per_second: f64,
    /// Bytes held by window sketches at the end.
    pub sketch_bytes: u64,
    /// Peak resident memory of the process (Linux `VmHWM`), if known.
    pub peak_rss_bytes: Option<u64>,
    /// The label join, when a model has `quality`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<LabelsReport>,
}

/// What the label join did.
#[derive(Debug, Default, Serialize)]
pub struct LabelsReport {
    /// Label events read.
    pub read: u64,
    /// Label events refused (dead letters, counted per reason with the rest).
    pub dead_letters: u64,
    /// Per model: the join's outcomes and what it holds at the end.
    pub models: BTreeMap<String, QualityCounters>,
    /// Label delay (label time − prediction time) over every joined label, in seconds.
    pub delay_seconds: Option<DelayPercentiles>,
}

/// Percentiles of the label delay, in seconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct DelayPercentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl DelayPercentiles {
    /// From a histogram of delays in milliseconds (`None` when empty).
    pub fn from_histogram(h: &hdrhistogram::Histogram<u64>) -> Option<Self> {
        if h.is_empty() {
            return None;
        }
        let s = |ms: u64| ms as f64 / 1000.0;
        Some(Self {
            p50: s(h.value_at_quantile(0.5)),
            p90: s(h.value_at_quantile(0.9)),
            p99: s(h.value_at_quantile(0.99)),
            max: s(h.max()),
        })
    }
}

/// The join report of `models` (`None` when none has quality).
pub fn labels_report(models: &[ModelState], read: u64, dead_letters: u64) -> Result<Option<LabelsReport>> {
    let mut delays: Option<hdrhistogram::Histogram<u64>> = None;
    let mut report = LabelsReport { read, dead_letters, ..LabelsReport::default() };
    for m in models {
        let Some(q) = m.quality() else { continue };
        report.models.insert(m.plan().name.clone(), q.counters());
        match &mut delays {
            None => delays = Some(q.delays().clone()),
            Some(d) => d.add(q.delays()).map_err(|e| Error::Internal(format!("label delay histograms: {e}")))?,
        }
    }
    let Some(delays) = delays else { return Ok(None) };
    report.delay_seconds = DelayPercentiles::from_histogram(&delays);
    Ok(Some(report))
}

/// Where the window stage writes JSON lines (replay: all three; run: the evaluations, if asked).
#[derive(Default)]
pub struct Outputs {
    /// One JSON line per evaluation.
    pub evaluations: Option<Box<dyn Write + Send>>,
    /// One JSON line per drift / resolved event.
    pub events: Option<Box<dyn Write + Send>>,
    /// One JSON line per dead letter.
    pub dead_letter: Option<Box<dyn Write + Send>>,
}

impl std::fmt::Debug for Outputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outputs").finish_non_exhaustive()
    }
}

/// Opens a file for writing, `-` for stdout.
pub fn create_output(path: &Path) -> Result<Box<dyn Write + Send>> {
    if path == Path::new("-") {
        return Ok(Box::new(std::io::BufWriter::new(std::io::stdout())));
    }
    let f = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    Ok(Box::new(std::io::BufWriter::with_capacity(1 << 16, f)))
}

pub(crate) fn write_line<T: Serialize>(w: &mut Option<Box<dyn Write + Send>>, value: &T, what: &str) -> Result<()> {
    if let Some(w) = w {
        serde_json::to_writer(&mut *w, value).map_err(|e| Error::io(Path::new(what), std::io::Error::other(e)))?;
        w.write_all(b"\n").map_err(|e| Error::io(Path::new(what), e))?;
    }
    Ok(())
}

/// The shard threads: batch `seq` goes to `senders[seq % n]`; decoded
/// batches come back on `done` in any order (the window stage reorders).
pub(crate) struct Shards {
    pub(crate) senders: Vec<Sender<Batch>>,
    /// Receivers of the shard queues, to read their depth (holding them does not keep a queue open).
    pub(crate) probes: Vec<Receiver<Batch>>,
    pub(crate) done: Receiver<Decoded>,
    pub(crate) pool: BatchPool,
    /// Where the window stage hands applied column batches back.
    pub(crate) rows: RowsPool,
    pub(crate) handles: Vec<std::thread::JoinHandle<()>>,
}

impl Shards {
    /// Starts `count` shard threads sharing the read-only plan and decoder.
    pub(crate) fn start(count: usize, config: &Config, plan: &Arc<Plan>, decoder: &Arc<Decoder>) -> Result<Self> {
        let (done_tx, done) = bounded::<Decoded>(count * config.engine.queue_batches);
        // Each pool keeps as many as can be in flight, so that a full pipeline
        // allocates none and the pool never holds more memory than a full
        // pipeline does. Raw batches: the shards' queues, one being decoded
        // per shard, and the one the reader fills and the next.
        let pool = BatchPool::new(count * (config.engine.queue_batches + 1) + 2, config.engine.batch_events.max(1));
        // Column batches: the queue to the window stage, the reorder buffer
        // (at most what the shards' queues let them decode ahead), one being
        // filled per shard and the one being applied. A smaller pool dropped
        // and re-made some 45 of them per million events.
        let rows = RowsPool::new(plan.models.len(), count * (2 * config.engine.queue_batches + 1) + 1);
        let (mut senders, mut probes, mut handles) = (Vec::with_capacity(count), Vec::with_capacity(count), Vec::with_capacity(count));
        for i in 0..count {
            let (tx, rx): (Sender<Batch>, Receiver<Batch>) = bounded(config.engine.queue_batches);
            senders.push(tx);
            probes.push(rx.clone());
            let (plan, decoder, done, pool, rows) = (Arc::clone(plan), Arc::clone(decoder), done_tx.clone(), pool.clone(), rows.clone());
            let label_decoder = LabelDecoder::new(&plan)?;
            let handle = std::thread::Builder::new()
                .name(format!("driftwatch-shard-{i}"))
                .spawn(move || {
                    let mut scratch = ShardScratch { labels: label_decoder, ..ShardScratch::default() };
                    // A batch is given back to the pool its source takes from.
                    for batch in rx {
                        let decoded = decode_batch(&batch, &decoder, &plan, &rows, &mut scratch);
                        pool.give(batch);
                        if done.send(decoded).is_err() {
                            break;
                        }
                    }
                })
                .map_err(|e| Error::Internal(format!("cannot start shard thread: {e}")))?;
            handles.push(handle);
        }
        Ok(Self { senders, probes, done, pool, rows, handles })
    }
}

/// What a shard thread keeps from batch to batch.
#[derive(Default)]
pub(crate) struct ShardScratch {
    /// One event buffer for a whole batch (its strings borrow the batch).
    event: DecodedEvent<'static>,
    /// Per model, the batch's numbers row by row (NaN: missing), copied into
    /// the rows' columns one column at a time when the batch is done. They
    /// stay in this thread's cache, whereas the recycled columns come from
    /// the window stage's: writing 20 columns of them event by event stalled
    /// on every new cache line of each, a column at a time streams.
    numbers: Vec<Vec<f64>>,
    /// The label decoder, when some model has `quality` (label events come in batches from `label_topics`).
    pub(crate) labels: Option<LabelDecoder>,
}

/// Decodes and type-checks one batch (runs on a shard thread).
pub(crate) fn decode_batch(batch: &Batch, decoder: &Decoder, plan: &Plan, pool: &RowsPool, scratch: &mut ShardScratch) -> Decoded {
    let started = Instant::now();
    let mut per_model: Vec<Option<ModelRows>> = vec![None; plan.models.len()];
    let mut dead = Vec::new();
    let mut ev = std::mem::take(&mut scratch.event).recycle();
    let numbers = &mut scratch.numbers;
    numbers.resize_with(plan.models.len(), Vec::new);
    numbers.iter_mut().for_each(Vec::clear);
    let oversize: HashMap<usize, usize> = batch.oversize().iter().copied().collect();
    let mut last_model: Option<(String, usize)> = None;
    let mut labels = Vec::new();
    let mut label_dead = Vec::new();
    let mut next_label = batch.labels().iter().copied().peekable();
    for i in 0..batch.len() {
        let bytes = batch.event(i);
        let line = batch.number(i);
        if next_label.next_if_eq(&i).is_some() {
            let position = batch.partition(i).map(|slot| (slot, line as i64));
            let refused = |reason: &'static str, detail: String| DeadLetter {
                line,
                reason,
                detail,
                payload: bytes.to_vec(),
                position,
                partially_used: false,
                input: Some("labels"),
            };
            // The model is known for a label refused after its model was read.
            let (item, model) = match (&mut scratch.labels, oversize.get(&i)) {
                (_, Some(len)) => (Err(refused("oversize", format!("{len} bytes, limit {}", plan.decoder.max_event_bytes))), None),
                (Some(decoder), None) => (decoder.decode(bytes, line), decoder.last_model()),
                (None, None) => (Err(refused("unknown_model", "a label event, and no model has `quality` configured".into())), None),
            };
            match item {
                Ok(l) => labels.push(l),
                Err(d) => {
                    label_dead.push(model);
                    dead.push(DeadLetter { position, ..d });
                }
            }
            continue;
        }
        let dead_letter = |reason: &'static str, detail: String, partially_used: bool| DeadLetter {
            line,
            reason,
            detail,
            payload: bytes.to_vec(),
            position: batch.partition(i).map(|slot| (slot, line as i64)),
            partially_used,
            input: None,
        };
        if let Some(len) = oversize.get(&i) {
            dead.push(dead_letter("oversize", format!("{len} bytes, limit {}", plan.decoder.max_event_bytes), false));
            continue;
        }
        if let Err(e) = decoder.decode(bytes, &mut ev) {
            dead.push(dead_letter(e.reason().as_str(), e.to_string(), false));
            continue;
        }
        let model = match ev.model.as_deref() {
            // Most topics carry one model or a few in runs: the last name
            // found saves hashing this one.
            Some(name) if last_model.as_ref().is_some_and(|(last, _)| last == name) => last_model.as_ref().map(|&(_, m)| m),
            Some(name) => match plan.by_name.get(name) {
                Some(&m) => {
                    let (last, index) = last_model.get_or_insert_with(|| (String::new(), m));
                    last.clear();
                    last.push_str(name);
                    *index = m;
                    Some(m)
                }
                None => {
                    let mut shown: String = name.chars().take(64).collect();
                    if shown.len() < name.len() {
                        shown.push('…');
                    }
                    dead.push(dead_letter("unknown_model", format!("model {shown:?} is not configured"), false));
                    None
                }
            },
            None => match plan.default_model {
                Some(m) => Some(m),
                None => {
                    dead.push(dead_letter("missing_model", "the event has no model field".into(), false));
                    None
                }
            },
        };
        if let Some(m) = model {
            let mp = &plan.models[m];
            let rows = per_model[m].get_or_insert_with(|| pool.take(m, mp, batch.len()));
            rows.start_row(ev.timestamp_ms, ev.model_version.as_deref());
            let staged = &mut numbers[m];
            let mut wrong: Vec<&str> = Vec::new();
            let mut not_integers: Vec<&str> = Vec::new();
            for (ci, c) in mp.columns.iter().enumerate() {
                match (c.kind, &ev.values[c.slot]) {
                    (FeatureType::Numeric, SlotValue::Number(x)) => staged.push(*x),
                    (FeatureType::Numeric, SlotValue::Missing | SlotValue::Null) => staged.push(f64::NAN),
                    (_, SlotValue::Missing | SlotValue::Null) => rows.push_missing(ci),
                    (FeatureType::Categorical, SlotValue::Text(t)) => rows.push_category(ci, Some(t)),
                    (FeatureType::Categorical, SlotValue::Bool(b)) => rows.push_category(ci, Some(if *b { "true" } else { "false" })),
                    (FeatureType::Categorical, SlotValue::Number(x)) => match integer_category(*x) {
                        Some(category) => rows.push_category(ci, Some(&category)),
                        None => {
                            not_integers.push(&c.name);
                            rows.push_missing(ci);
                        }
                    },
                    (FeatureType::Numeric, _) => {
                        wrong.push(&c.name);
                        staged.push(f64::NAN);
                    }
                    (FeatureType::Categorical, _) => {
                        wrong.push(&c.name);
                        rows.push_missing(ci);
                    }
                }
            }
            let mut quality_problem: Option<(&'static str, String)> = None;
            if let Some(q) = &mp.quality {
                let (joinable, predicted, score) = quality_fields(q, &ev);
                match (&ev.prediction_id, joinable) {
                    (Some(id), Ok(())) => rows.push_quality(Some(id.as_ref()), predicted, score),
                    (_, Err(problem)) => {
                        rows.push_quality(None, f64::NAN, f64::NAN);
                        quality_problem = Some(("wrong_type", problem));
                    }
                    (None, Ok(())) => {
                        rows.push_quality(None, f64::NAN, f64::NAN);
                        quality_problem =
                            Some(("missing_prediction_id", "no prediction id: the prediction cannot be joined with its label".into()));
                    }
                }
            }
            if !wrong.is_empty() || !not_integers.is_empty() || quality_problem.is_some() {
                let mut detail = String::new();
                if !wrong.is_empty() {
                    detail = format!("unexpected type for {}", wrong.join(", "));
                }
                if !not_integers.is_empty() {
                    if !detail.is_empty() {
                        detail.push_str("; ");
                    }
                    detail.push_str(&format!(
                        "categorical {} given a number that is not an integer of at most 2^53 (categories are strings, booleans and integers)",
                        not_integers.join(", ")
                    ));
                }
                let mut reason = "wrong_type";
                if let Some((why, problem)) = quality_problem {
                    if detail.is_empty() {
                        reason = why;
                    } else {
                        detail.push_str("; ");
                    }
                    detail.push_str(&problem);
                }
                dead.push(dead_letter(reason, detail, true));
            }
        }
    }
    scratch.event = ev.recycle();
    for (rows, staged) in per_model.iter_mut().zip(&scratch.numbers) {
        if let Some(rows) = rows {
            rows.push_numbers_by_row(staged);
        }
    }
    Decoded {
        seq: batch.seq(),
        source: batch.source(),
        positions: batch.positions(),
        rows: per_model,
        labels_read: batch.labels().len() as u64,
        labels,
        label_dead,
        dead,
        decode_seconds: started.elapsed().as_secs_f64(),
    }
}

/// The predicted class or value and the score of a prediction event
/// (`Err`: why it cannot be joined).
fn quality_fields(q: &QualityPlan, ev: &DecodedEvent<'_>) -> (std::result::Result<(), String>, f64, f64) {
    let value = &ev.values[q.prediction_slot];
    let predicted = match (task_value(q.task, value), value) {
        (Some(x), _) => Ok(x),
        (None, SlotValue::Missing | SlotValue::Null) => Err("no predicted value for the quality join".to_owned()),
        (None, _) if q.task == QualityTask::BinaryClassification => Err("the predicted class is not 0/1 or false/true".to_owned()),
        (None, _) => Err("the predicted value is not a number".to_owned()),
    };
    let score = match q.score_slot.map(|slot| &ev.values[slot]) {
        None => predicted.clone(),
        Some(SlotValue::Number(x)) if (0.0..=1.0).contains(x) => Ok(*x),
        Some(SlotValue::Missing | SlotValue::Null) => Err("no score for the quality join".to_owned()),
        Some(_) => Err("the score is not a probability in [0, 1]".to_owned()),
    };
    match (predicted, score) {
        (Ok(p), Ok(s)) => (Ok(()), p, s),
        (Err(e), _) | (_, Err(e)) => (Err(e), f64::NAN, f64::NAN),
    }
}

/// How replay types CSV columns: a flat path (one key) read by a numeric
/// feature, or the timestamp, as numbers cell by cell; the model and its
/// version as text; the rest as inferred from the file (as the reference is).
pub(crate) fn csv_types(plan: &Plan) -> CsvTypes {
    let flat = |path: &[String]| match path {
        [key] => Some(key.clone()),
        _ => None,
    };
    let spec = &plan.decoder;
    let mut types = CsvTypes::default();
    for m in &plan.models {
        for c in m.columns.iter().filter(|c| c.kind == FeatureType::Numeric) {
            types.numeric.extend(spec.slots.get(c.slot).and_then(|p| flat(p)));
        }
    }
    types.numeric.extend(spec.timestamp.as_deref().and_then(flat));
    types.text.extend([&spec.model, &spec.model_version].into_iter().flatten().filter_map(|p| flat(p)));
    types
}

/// How [`drive`] runs.
pub(crate) struct DriveOptions<'t> {
    /// Shard threads.
    pub(crate) shards: usize,
    /// Set to stop unbounded sources (a signal); a window-stage error sets it too.
    pub(crate) stop: Arc<AtomicBool>,
    /// Batches handed over and applied (a Kafka source drains it before a revoke).
    pub(crate) progress: Arc<Progress>,
    /// What the window stage does when the sources are done.
    pub(crate) end: End,
    /// When the command started (the summary's elapsed time counts from it).
    pub(crate) started: Instant,
    /// Called about once a second from the window stage's thread (live: metrics, the progress line).
    pub(crate) tick: Option<&'t mut TickFn<'t>>,
}

/// What a front end does once a second.
pub(crate) type TickFn<'t> = dyn FnMut(&mut WindowStage<'_>, &Tick) + 't;

/// What a tick sees.
#[derive(Debug)]
pub(crate) struct Tick {
    /// Events the sources handed over so far.
    pub(crate) events_read: u64,
    /// Batches waiting in each shard's queue.
    pub(crate) queue_depths: Vec<usize>,
}

/// Runs the pipeline: every source on a thread of its own (batches numbered
/// in the order the sources hand them over, which with one source is its
/// input order), the shards, and the window stage on this thread applying
/// batches strictly in that order. Returns once every source is done (a
/// bounded one at the end of its input, an unbounded one when `stop` is
/// set) and the window stage finished as `options.end` says.
///
/// With several sources, the batches of different sources interleave in
/// arrival order: events whose order matters (one model's) should come from
/// one source.
pub(crate) fn drive(
    config: &Config,
    plan: &Arc<Plan>,
    decoder: &Arc<Decoder>,
    sources: Vec<Box<dyn Source>>,
    stage: &mut WindowStage<'_>,
    mut options: DriveOptions<'_>,
) -> Result<Summary> {
    let shard_count = options.shards.max(1);
    let Shards { senders, probes, done, pool, rows, handles: shard_handles } = Shards::start(shard_count, config, plan, decoder)?;
    stage.attach(sources.iter().map(|s| s.handle()).collect(), rows);
    let events_read = Arc::new(AtomicU64::new(0));
    // Set when the window stage failed: the sources stop handing over batches.
    let failed = Arc::new(AtomicBool::new(false));
    // The next batch number; held while a batch is sent, so batches enter the shards in number order.
    let sequence = Arc::new(Mutex::new(0u64));
    let max = config.engine.max_event_bytes;
    let mut readers = Vec::with_capacity(sources.len());
    for (index, source) in sources.into_iter().enumerate() {
        let (senders, pool, stop, progress) = (senders.clone(), pool.clone(), Arc::clone(&options.stop), Arc::clone(&options.progress));
        let (events_read, failed, sequence) = (Arc::clone(&events_read), Arc::clone(&failed), Arc::clone(&sequence));
        let reader = std::thread::Builder::new()
            .name(format!("driftwatch-source-{index}"))
            .spawn(move || -> Result<SourceStats> {
                let mut emit = |mut batch: Batch| -> bool {
                    if failed.load(Ordering::Acquire) {
                        return false;
                    }
                    let mut next = sequence.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    stamp(&mut batch, *next, index);
                    events_read.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    let shard = (*next % senders.len() as u64) as usize;
                    if senders[shard].send(batch).is_err() {
                        return false;
                    }
                    *next += 1;
                    progress.sent_one();
                    true
                };
                let mut feed = Feed::new(&pool, max, &stop, &progress, &mut emit);
                Ok(source.run(&mut feed)?)
            })
            .map_err(|e| Error::Internal(format!("cannot start source thread: {e}")))?;
        readers.push(reader);
    }
    drop(senders);

    // The window stage: apply batches in their order.
    let mut pending: BTreeMap<u64, Decoded> = BTreeMap::new();
    let mut next = 0u64;
    let mut result: Result<()> = Ok(());
    let mut last_tick = Instant::now();
    loop {
        match done.recv_timeout(Duration::from_millis(200)) {
            Ok(d) => {
                pending.insert(d.seq, d);
                while let Some(d) = pending.remove(&next) {
                    next += 1;
                    if result.is_ok() {
                        result = stage.apply(d);
                    }
                    options.progress.set_applied(next);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if result.is_err() && !failed.swap(true, Ordering::AcqRel) {
            options.stop.store(true, Ordering::Release);
        }
        if let Some(tick) = options.tick.as_mut() {
            if last_tick.elapsed() >= Duration::from_secs(1) {
                last_tick = Instant::now();
                let t = Tick { events_read: events_read.load(Ordering::Relaxed), queue_depths: probes.iter().map(Receiver::len).collect() };
                tick(stage, &t);
            }
        }
    }
    drop(probes);
    let mut blank_lines = 0;
    for reader in readers {
        match reader.join().map_err(|_| Error::Internal("source thread panicked".into()))? {
            Ok(stats) => blank_lines += stats.blank_lines,
            Err(e) if result.is_ok() => result = Err(e),
            Err(_) => {}
        }
    }
    for h in shard_handles {
        h.join().map_err(|_| Error::Internal("shard thread panicked".into()))?;
    }
    result?;
    stage.finish(options.end)?;
    let mut summary = stage.close()?;
    summary.events_read = events_read.load(Ordering::Relaxed);
    summary.blank_lines = blank_lines;
    summary.shards = shard_count;
    summary.elapsed_seconds = options.started.elapsed().as_secs_f64();
    summary.events_per_second = summary.events_read as f64 / summary.elapsed_seconds.max(1e-9);
    summary.peak_rss_bytes = peak_rss_bytes();
    Ok(summary)
}

/// Replays a file through the engine: every evaluation, drift event and dead
/// letter is written to `outputs`. The same input gives byte-identical
/// output whatever the shard count.
///
/// With `labels` (a file of label events), models with `quality` join them
/// with their predictions, merged in event-time order.
pub fn replay(config: &Config, input: &Path, labels: Option<&Path>, outputs: Outputs, shards: Option<usize>) -> Result<Summary> {
    let started = Instant::now();
    let plan = Arc::new(Plan::new(config)?);
    let decoder = Arc::new(Decoder::new(&plan.decoder)?);
    let models = model_states(config, &plan)?;
    let file_labels = labels.map(|path| ReplayLabels::start(&plan, path)).transpose()?;
    let source = FileSource::open(input, csv_types(&plan))?;
    let mut stage = WindowStage::new(models, outputs, file_labels, None);
    let options = DriveOptions {
        shards: shards.unwrap_or_else(|| config.engine.shard_count()),
        stop: Arc::new(AtomicBool::new(false)),
        progress: Arc::new(Progress::default()),
        end: End::Complete,
        started,
        tick: None,
    };
    drive(config, &plan, &decoder, vec![Box::new(source)], &mut stage, options)
}

/// Every model's window state, with its quality stage where configured
/// (the references are read here).
pub fn model_states(config: &Config, plan: &Plan) -> Result<Vec<ModelState>> {
    let references = build_references(config, plan)?;
    let quality_references = build_reference_quality(config, plan)?;
    let mut models = Vec::with_capacity(plan.models.len());
    for ((p, r), qr) in plan.models.iter().cloned().zip(references).zip(quality_references) {
        let quality = p.quality.clone();
        let mut state = ModelState::new(p, r);
        if let Some(q) = quality {
            let qs = QualityState::new(state.plan(), q, qr)?;
            state.set_quality(qs);
        }
        models.push(state);
    }
    Ok(models)
}

/// Peak resident set size of this process (Linux), in bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::RowColumn;

    /// A writer into memory that the test reads afterwards.
    #[derive(Clone, Default)]
    struct Memory(Arc<Mutex<Vec<u8>>>);

    impl Write for Memory {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Memory {
        /// The lines written about `model`, in order.
        fn lines_of(&self, model: &str) -> Vec<String> {
            let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
            let tag = format!("\"model\":\"{model}\"");
            text.lines().filter(|l| l.contains(&tag)).map(str::to_owned).collect()
        }
    }

    /// Several sources feed one pipeline: two files, one model's events in
    /// each, give every model the evaluations and events that replaying
    /// one file of both models' events gives (a model's events keep their
    /// order; the sources interleave as they arrive). The summary adds up
    /// both sources, and each source's handle reports its own last line.
    #[test]
    fn several_sources_feed_one_pipeline() {
        let yaml = r#"
models:
  - name: a
    reference: { baseline_events: 200 }
    window: { type: sliding, events: 100, slide: 50 }
    features:
      - { name: x, type: numeric }
    detectors:
      - { metric: psi, threshold: 0.2 }
  - name: b
    reference: { baseline_events: 150 }
    window: { type: tumbling, events: 80 }
    features:
      - { name: x, type: numeric }
    detectors:
      - { metric: ks, threshold: 0.1 }
"#;
        let config = Config::from_yaml(yaml).unwrap();
        let dir = std::env::temp_dir().join(format!("driftwatch-sources-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let event = |model: &str, i: u64| {
            let x = if i < 600 { (i * 7919 % 101) as f64 } else { 50.0 + (i * 7919 % 101) as f64 };
            format!("{{\"model\":\"{model}\",\"features\":{{\"x\":{x}}}}}\n")
        };
        let (mut a, mut b, mut both) = (String::new(), String::new(), String::new());
        for i in 0..1000 {
            a.push_str(&event("a", i));
            b.push_str(&event("b", i));
            both.push_str(&event("a", i));
            both.push_str(&event("b", i));
        }
        let path = |name: &str| dir.join(name);
        std::fs::write(path("a.jsonl"), a).unwrap();
        std::fs::write(path("b.jsonl"), b).unwrap();
        std::fs::write(path("both.jsonl"), both).unwrap();

        let (one_eval, one_events) = (Memory::default(), Memory::default());
        let outputs = |e: &Memory, d: &Memory| Outputs {
            evaluations: Some(Box::new(e.clone())),
            events: Some(Box::new(d.clone())),
            dead_letter: None,
        };
        let one = replay(&config, &path("both.jsonl"), None, outputs(&one_eval, &one_events), Some(2)).unwrap();

        let plan = Arc::new(Plan::new(&config).unwrap());
        let decoder = Arc::new(Decoder::new(&plan.decoder).unwrap());
        let (two_eval, two_events) = (Memory::default(), Memory::default());
        let mut stage = WindowStage::new(model_states(&config, &plan).unwrap(), outputs(&two_eval, &two_events), None, None);
        let sources: Vec<Box<dyn Source>> = vec![
            Box::new(FileSource::open(&path("a.jsonl"), csv_types(&plan)).unwrap()),
            Box::new(FileSource::open(&path("b.jsonl"), csv_types(&plan)).unwrap()),
        ];
        let handles: Vec<_> = sources.iter().map(|s| s.handle()).collect();
        let options = DriveOptions {
            shards: 2,
            stop: Arc::new(AtomicBool::new(false)),
            progress: Arc::new(Progress::default()),
            end: End::Complete,
            started: Instant::now(),
            tick: None,
        };
        let two = drive(&config, &plan, &decoder, sources, &mut stage, options).unwrap();

        assert_eq!((one.events_read, two.events_read), (2000, 2000));
        assert_eq!(two.events_applied, 2000);
        assert_eq!((two.evaluations, two.drift_events), (one.evaluations, one.drift_events));
        assert!(one.drift_events > 0, "the data drifts: the comparison covers events");
        for model in ["a", "b"] {
            assert!(!one_eval.lines_of(model).is_empty());
            assert_eq!(two_eval.lines_of(model), one_eval.lines_of(model), "model {model}'s evaluations");
            assert_eq!(two_events.lines_of(model), one_events.lines_of(model), "model {model}'s events");
        }
        for (h, name) in handles.iter().zip(["a.jsonl", "b.jsonl"]) {
            let stream = path(name).display().to_string();
            assert_eq!(h.positions(), [driftwatch_connectors::Position { stream, partition: 0, offset: 1000 }]);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn numbers_staged_by_row_land_in_their_columns() {
        let yaml = r#"
models:
  - name: a
    reference: { baseline_events: 10 }
    window: { type: tumbling, events: 10 }
    features:
      - { name: x, type: numeric }
      - { name: c, type: categorical }
      - { name: y, type: numeric }
    detectors:
      - { metric: psi, threshold: 0.2 }
  - name: b
    reference: { baseline_events: 10 }
    window: { type: tumbling, events: 10 }
    features:
      - { name: y, type: numeric }
    detectors:
      - { metric: psi, threshold: 0.2 }
"#;
        let config = Config::from_yaml(yaml).unwrap();
        let plan = Plan::new(&config).unwrap();
        let decoder = Decoder::new(&plan.decoder).unwrap();
        let pool = BatchPool::new(1, 8);
        let mut batch = pool.take();
        let events = [
            r#"{"model":"a","features":{"x":1,"c":"p","y":2}}"#,
            r#"{"model":"b","features":{"x":9,"y":3}}"#,
            r#"{"model":"a","features":{"y":4,"c":"q"}}"#,
            r#"{"model":"a","features":{"x":"five","c":6,"y":null}}"#,
            r#"{"model":"b","features":{}}"#,
        ];
        for (i, e) in events.iter().enumerate() {
            batch.push_row(e.as_bytes(), i as u64 + 1, 1000);
        }
        let rows = RowsPool::new(plan.models.len(), 4);
        let mut scratch = ShardScratch::default();
        // Twice: the second batch reuses the staging buffers.
        for _ in 0..2 {
            let decoded = decode_batch(&batch, &decoder, &plan, &rows, &mut scratch);
            let numbers = |m: usize, c: usize| match &decoded.rows[m].as_ref().unwrap().columns()[c] {
                RowColumn::Numeric(v) => v.iter().map(|x| if x.is_nan() { None } else { Some(*x) }).collect::<Vec<_>>(),
                RowColumn::Categorical(_) => panic!("column {c} of model {m} is categorical"),
            };
            assert_eq!(numbers(0, 0), [Some(1.0), None, None]);
            assert_eq!(numbers(0, 2), [Some(2.0), Some(4.0), None]);
            assert_eq!(numbers(1, 0), [Some(3.0), None]);
            let a = decoded.rows[0].as_ref().unwrap();
            let RowColumn::Categorical(c) = &a.columns()[1] else { panic!("column 1 of model a is numeric") };
            let c: Vec<Option<&str>> = c.iter().map(|s| s.map(|s| a.category(s))).collect();
            assert_eq!(c, [Some("p"), Some("q"), Some("6")]);
            assert_eq!(decoded.dead.len(), 1, "the wrong type of x is dead-lettered");
            assert_eq!(decoded.dead[0].reason, "wrong_type");
            rows.give_all(decoded.rows);
        }
    }

    /// An empty Kafka message (a tombstone's missing payload reads as empty
    /// too) is a message the producer sent: a `malformed_json` dead letter
    /// with its offset, not a blank line, so it reaches the dead-letter topic.
    #[test]
    fn an_empty_kafka_message_is_a_malformed_json_dead_letter() {
        let config = Config::from_yaml(
            "models:\n  - name: a\n    reference: { baseline_events: 10 }\n    window: { type: tumbling, events: 10 }\n    features:\n      - { name: x, type: numeric }\n    detectors:\n      - { metric: psi, threshold: 0.2 }\n",
        )
        .unwrap();
        let plan = Plan::new(&config).unwrap();
        let decoder = Decoder::new(&plan.decoder).unwrap();
        let pool = BatchPool::new(1, 4);
        let mut batch = pool.take();
        batch.push_message(b"", 0, 41, 100, false);
        batch.push_message(b"  ", 0, 42, 100, false);
        let rows = RowsPool::new(plan.models.len(), 2);
        let decoded = decode_batch(&batch, &decoder, &plan, &rows, &mut ShardScratch::default());
        let dead: Vec<(&str, Option<(u32, i64)>)> = decoded.dead.iter().map(|d| (d.reason, d.position)).collect();
        assert_eq!(dead, [("malformed_json", Some((0, 41))), ("malformed_json", Some((0, 42)))]);
    }

    /// Label messages in a Kafka batch (from `label_topics`) are decoded by
    /// the label decoder in poll order, beside the predictions; refused ones
    /// are label dead letters with their position and, where the label names
    /// it, their model; a revoke keeps the marks of what it keeps.
    #[test]
    fn label_messages_in_a_batch_are_decoded_as_labels() {
        let config = Config::from_yaml(
            "models:\n  - name: a\n    reference: { baseline_events: 10 }\n    window: { type: tumbling, events: 10 }\n    features:\n      - { name: x, type: numeric }\n    detectors:\n      - { metric: psi, threshold: 0.2 }\n    quality: { task: binary_classification, prediction: p }\n",
        )
        .unwrap();
        let plan = Plan::new(&config).unwrap();
        let decoder = Decoder::new(&plan.decoder).unwrap();
        let pool = BatchPool::new(1, 8);
        let mut batch = pool.take();
        batch.push_message(br#"{"model":"a","prediction_id":"p1","features":{"x":1},"p":1}"#, 0, 10, 1000, false);
        batch.push_message(br#"{"model":"a","prediction_id":"p1","label":1,"timestamp":5}"#, 1, 20, 1000, true);
        batch.push_message(br#"{"model":"a","prediction_id":"p2","label":"maybe","timestamp":6}"#, 1, 21, 1000, true);
        batch.push_message(br#"{"model":"b","prediction_id":"p3","label":0,"timestamp":7}"#, 2, 30, 1000, true);
        batch.push_message(br#"{"model":"a","prediction_id":"p0","label":0,"timestamp":4}"#, 2, 31, 1000, true);
        let rows = RowsPool::new(plan.models.len(), 2);
        let mut scratch = ShardScratch { labels: LabelDecoder::new(&plan).unwrap(), ..ShardScratch::default() };
        let decoded = decode_batch(&batch, &decoder, &plan, &rows, &mut scratch);
        assert_eq!(decoded.rows[0].as_ref().map(ModelRows::len), Some(1), "the prediction");
        let ids: Vec<(&str, f64, i64)> = decoded.labels.iter().map(|l| (&*l.id, l.label, l.ts)).collect();
        assert_eq!(ids, [("p1", 1.0, 5), ("p0", 0.0, 4)]);
        assert_eq!(decoded.labels_read, 4);
        let dead: Vec<_> = decoded.dead.iter().map(|d| (d.reason, d.position, d.input)).collect();
        assert_eq!(dead, [("invalid_label", Some((1, 21)), Some("labels")), ("unknown_model", Some((2, 30)), Some("labels"))]);
        assert_eq!(decoded.label_dead, [Some(0), None]);
        let mut positions = decoded.positions.clone();
        positions.sort_unstable();
        assert_eq!(positions, [(0, 10), (1, 21), (2, 31)]);

        // A revoke of partition slot 1 keeps the other marks in place.
        batch.retain_partitions(|slot| slot != 1);
        let decoded = decode_batch(&batch, &decoder, &plan, &rows, &mut scratch);
        let ids: Vec<&str> = decoded.labels.iter().map(|l| &*l.id).collect();
        assert_eq!(ids, ["p0"]);
        assert_eq!(decoded.rows[0].as_ref().map(ModelRows::len), Some(1));
        assert_eq!(decoded.dead.len(), 1);
    }

    /// Regression: a payload that is not UTF-8 was written with U+FFFD in
    /// place of its bytes; it is written as base64, marked, and decodes back
    /// to the same bytes. UTF-8 payloads are written as text, unmarked.
    #[test]
    fn invalid_utf8_dead_letters_keep_their_bytes() {
        use base64::Engine as _;
        let letter = |payload: &[u8]| DeadLetter {
            line: 3,
            reason: "malformed_json",
            detail: "event is not valid UTF-8 (at byte 7)".into(),
            payload: payload.to_vec(),
            position: None,
            partially_used: false,
            input: None,
        };
        let bytes = b"{\"x\":\"\xff\xfe\xc3\"}\x80";
        let json: serde_json::Value = serde_json::to_value(letter(bytes)).unwrap();
        assert_eq!(json["payload_encoding"], "base64");
        let back = base64::engine::general_purpose::STANDARD.decode(json["payload"].as_str().unwrap()).unwrap();
        assert_eq!(back, bytes);
        assert_eq!(json["line"], 3);
        assert_eq!(json["partially_used"], false);
        let text = serde_json::to_string(&letter("{\"x\":\"é\"}".as_bytes())).unwrap();
        assert_eq!(
            text,
            r#"{"line":3,"reason":"malformed_json","detail":"event is not valid UTF-8 (at byte 7)","payload":"{\"x\":\"é\"}","partially_used":false}"#
        );
    }
}
