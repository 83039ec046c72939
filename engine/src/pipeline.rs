//! The pipeline: a reader cuts the input into batches of events, shard
//! threads decode and type-check them in parallel (shared-nothing, fed by
//! bounded crossbeam channels), and the window stage applies them to each
//! model's windows in input order, so results do not depend on the shard
//! count. `replay` runs it over a file; the live Kafka source reuses the same
//! stages.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{bounded, Receiver, Sender};
use serde::Serialize;

use crate::batch::{integer_category, ModelRows, Recycler, RowsPool};
use crate::config::{Config, FeatureType, QualityTask};
use crate::decode::{DecodedEvent, Decoder, SlotValue};
use crate::labels::{LabelDecoder, ReplayLabels};
use crate::model::{build_reference_quality, build_references, task_value, Plan, QualityPlan};
use crate::quality::{LabelFeed, LabelRecord, NoLabels, QualityCounters, QualityState};
use crate::source::{self, FileFormat};
use crate::window::{ModelCounters, ModelState, Outcome};
use crate::{Error, Result};

/// A batch of raw events (one per line or message) with its position in the input.
#[derive(Debug)]
pub(crate) struct Batch {
    pub(crate) seq: u64,
    /// Event bytes: `data[..filled]` holds this batch's input. The vector is
    /// kept initialized to its high-water mark across reuses, so the file
    /// reader can read straight into it without zeroing.
    data: Vec<u8>,
    filled: usize,
    /// Files: 1-based input line (or row) number of each event. Kafka: the offset.
    numbers: Vec<u64>,
    /// Kafka: the partition slot of each event (empty for files).
    partitions: Vec<u32>,
    /// Event `i` is `data[starts[i]..ends[i]]` (the reader leaves line breaks,
    /// blank lines and the cut-off rest of an oversize line between events).
    starts: Vec<usize>,
    ends: Vec<usize>,
    /// Lines refused by the reader (longer than the limit): (index in batch, original length).
    oversize: Vec<(usize, usize)>,
    /// Kafka: indices (ascending) of the events that are labels (from `label_topics`).
    labels: Vec<usize>,
}

impl Batch {
    fn new(seq: u64, events: usize) -> Self {
        Self::with_room(seq, events, events * 512)
    }
    fn with_room(seq: u64, events: usize, bytes: usize) -> Self {
        Self {
            seq,
            data: Vec::with_capacity(bytes),
            filled: 0,
            numbers: Vec::with_capacity(events),
            partitions: Vec::new(),
            starts: Vec::with_capacity(events),
            ends: Vec::with_capacity(events),
            oversize: Vec::new(),
            labels: Vec::new(),
        }
    }
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }
    fn clear(&mut self, seq: u64) {
        self.seq = seq;
        self.filled = 0;
        self.numbers.clear();
        self.partitions.clear();
        self.starts.clear();
        self.ends.clear();
        self.oversize.clear();
        self.labels.clear();
    }
    /// Adds a Kafka message (`max`: the event byte limit; longer ones are cut and marked oversize).
    /// `label`: the message is a label event.
    pub(crate) fn push_message(&mut self, payload: &[u8], slot: u32, offset: i64, max: usize, label: bool) {
        if payload.len() > max {
            self.oversize.push((self.len(), payload.len()));
        }
        if label {
            self.labels.push(self.len());
        }
        self.partitions.push(slot);
        self.push(&payload[..payload.len().min(max)], offset as u64);
    }
    /// Drops the events of `slots` (their partitions were revoked before the batch was handed over).
    pub(crate) fn retain_partitions(&mut self, keep: impl Fn(u32) -> bool) {
        let old = std::mem::replace(self, Batch::new(self.seq, self.len()));
        let oversize: HashMap<usize, usize> = old.oversize.iter().copied().collect();
        let labels: std::collections::HashSet<usize> = old.labels.iter().copied().collect();
        for i in 0..old.len() {
            if keep(old.partitions[i]) {
                if let Some(&len) = oversize.get(&i) {
                    self.oversize.push((self.len(), len));
                }
                if labels.contains(&i) {
                    self.labels.push(self.len());
                }
                self.partitions.push(old.partitions[i]);
                self.push(old.line(i), old.numbers[i]);
            }
        }
    }
    /// Appends `line` as an event.
    fn push(&mut self, line: &[u8], number: u64) {
        let start = self.append(line);
        self.add(start, self.filled, number);
    }
    /// Copies `bytes` after the filled part; returns where they start.
    fn append(&mut self, bytes: &[u8]) -> usize {
        let start = self.filled;
        self.room(bytes.len()).copy_from_slice(bytes);
        self.filled += bytes.len();
        start
    }
    /// Records `data[start..end]` (already in the buffer) as an event.
    fn add(&mut self, start: usize, end: usize, number: u64) {
        self.numbers.push(number);
        self.starts.push(start);
        self.ends.push(end);
    }
    /// `len` writable bytes after the filled part (zeroed only where the
    /// buffer grows past its high-water mark).
    fn room(&mut self, len: usize) -> &mut [u8] {
        let end = self.filled + len;
        if self.data.len() < end {
            self.data.resize(end, 0);
        }
        &mut self.data[self.filled..end]
    }
    fn line(&self, i: usize) -> &[u8] {
        &self.data[self.starts[i]..self.ends[i]]
    }
    /// Moves the events together at the start of the buffer, followed by
    /// `data[tail..filled]`; returns where that tail now starts.
    fn compact(&mut self, tail: usize) -> usize {
        let mut to = 0;
        for i in 0..self.len() {
            let (s, e) = (self.starts[i], self.ends[i]);
            self.data.copy_within(s..e, to);
            self.starts[i] = to;
            to += e - s;
            self.ends[i] = to;
        }
        self.data.copy_within(tail..self.filled, to);
        self.filled = to + (self.filled - tail);
        to
    }
}

/// Batches that shards have decoded, handed back to the reader so that
/// their buffers are reused (no page faults for fresh megabytes per batch).
#[derive(Clone)]
pub(crate) struct BatchPool {
    batches: Recycler<Batch>,
    events: usize,
    /// The most bytes a batch given back held (its events and the gaps
    /// between them): a new batch starts with
    /// that much room (and an eighth more), so that it is not grown by
    /// doubling, copying megabytes and touching pages it then gives up.
    bytes_seen: Arc<AtomicUsize>,
}

impl BatchPool {
    pub(crate) fn new(capacity: usize, events: usize) -> Self {
        Self { batches: Recycler::new(capacity), events, bytes_seen: Arc::new(AtomicUsize::new(0)) }
    }
    pub(crate) fn take(&self, seq: u64) -> Batch {
        match self.batches.take() {
            Some(mut b) => {
                b.clear(seq);
                b
            }
            None => {
                let seen = self.bytes_seen.load(Ordering::Relaxed);
                Batch::with_room(seq, self.events, (self.events * 512).max(seen.saturating_add(seen / 8)))
            }
        }
    }
    /// Keeps `batch` for reuse unless the pool is full.
    pub(crate) fn give(&self, batch: Batch) {
        self.bytes_seen.fetch_max(batch.filled, Ordering::Relaxed);
        self.batches.give(batch);
    }
}

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
    /// Kafka: the highest offset per partition slot in the batch.
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

/// What a replay did.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// Events read: JSONL lines that are not blank, CSV or Parquet rows.
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
    #[serde(skip)]
    label_dead_letters: u64,
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

/// Where replay writes.
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
        let pool = BatchPool::new(count * (config.engine.queue_batches + 1) + 2, config.engine.batch_events);
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
    let oversize: HashMap<usize, usize> = batch.oversize.iter().copied().collect();
    let mut last_model: Option<(String, usize)> = None;
    let mut labels = Vec::new();
    let mut label_dead = Vec::new();
    let mut next_label = batch.labels.iter().copied().peekable();
    for i in 0..batch.len() {
        let bytes = batch.line(i);
        let line = batch.numbers[i];
        if next_label.next_if_eq(&i).is_some() {
            let position = batch.partitions.get(i).map(|&slot| (slot, line as i64));
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
            position: batch.partitions.get(i).map(|&slot| (slot, line as i64)),
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
    let mut positions: Vec<(u32, i64)> = Vec::new();
    for (&slot, &offset) in batch.partitions.iter().zip(&batch.numbers) {
        match positions.iter_mut().find(|p| p.0 == slot) {
            Some(p) => p.1 = p.1.max(offset as i64),
            None => positions.push((slot, offset as i64)),
        }
    }
    Decoded {
        seq: batch.seq,
        positions,
        rows: per_model,
        labels_read: batch.labels.len() as u64,
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

/// Reads JSONL into batches; a line longer than `max` is cut there, the
/// rest skipped, and the event marked oversize (bounded memory whatever the
/// input).
fn read_jsonl(path: &Path, pool: &BatchPool, max: usize, send: impl FnMut(Batch) -> Result<()>) -> Result<Lines> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    cut_lines(file, path, pool, max, READ_BYTES, send)
}

/// The least and the most bytes the JSONL reader asks for in one read.
const READ_BYTES: (usize, usize) = (4 << 10, 4 << 20);

/// Bytes between a batch's events that the reader leaves before it compacts.
const GAP_BYTES: usize = 64 << 10;

/// Cuts `input` into lines and the lines into batches of `batch_events`
/// events, reading straight into each batch's buffer: an event's bytes are
/// not copied in user space, except the input a batch's last read held past
/// its last event (part of a line, or a few lines when the read overshot),
/// which moves to the next batch, and the rare compaction below. Each read
/// asks for what the rest of the batch needs at the last batch's input bytes
/// per event (plus a thirty-second, within `reads`), so the carried rest
/// stays small.
///
/// Lines end at `\n`, a trailing `\r` is dropped, and blank (empty or
/// whitespace-only) lines are counted, apart, and for line numbers, but are
/// not events. A line over `max` bytes keeps its
/// first `max + 1` bytes while the rest is read and dropped; it becomes an
/// oversize event cut at `max`. Bytes between a batch's events (line breaks,
/// blank lines, the dropped rest of an oversize line) are compacted away once
/// they outweigh the events (and [`GAP_BYTES`]), so a batch holds at most
/// about `batch_events × max` bytes plus one read, whatever the input.
fn cut_lines(
    mut input: impl Read,
    path: &Path,
    pool: &BatchPool,
    max: usize,
    reads: (usize, usize),
    mut send: impl FnMut(Batch) -> Result<()>,
) -> Result<Lines> {
    let batch_events = pool.events.max(1);
    let limit = max.saturating_add(1);
    let (mut seq, mut lines, mut blank) = (0u64, 0u64, 0u64);
    let mut batch = pool.take(seq);
    // `batch.data[start..batch.filled]` is input not cut into lines yet, of
    // which `start..pos` holds no line break: the line in progress, after
    // whose first `limit` bytes `skipped` more were dropped.
    let (mut start, mut pos, mut skipped) = (0usize, 0usize, 0usize);
    // `kept`: bytes of the batch's events; `taken`: input bytes of its lines
    // (without dropped ones); `mean`: input bytes per event of the last batch.
    let (mut kept, mut taken, mut mean) = (0usize, 0usize, 64usize);
    loop {
        while batch.len() < batch_events {
            let Some(i) = memchr::memchr(b'\n', &batch.data[pos..batch.filled]) else { break };
            let end = pos + i;
            lines += 1;
            match end_line(&mut batch, start, end, skipped, max, lines) {
                Some(bytes) => kept += bytes,
                None => blank += 1,
            }
            taken += end + 1 - start;
            (start, pos, skipped) = (end + 1, end + 1, 0);
        }
        if batch.len() >= batch_events {
            // Full (`pos == start`): the rest of the input goes to the next batch.
            mean = taken / batch.len() + 1;
            seq += 1;
            let mut next = pool.take(seq);
            next.append(&batch.data[start..batch.filled]);
            batch.filled = start;
            (start, pos, kept, taken) = (0, 0, 0, 0);
            send(std::mem::replace(&mut batch, next))?;
            continue;
        }
        // Everything read is cut: `start..filled` is the line in progress.
        if batch.filled - start > limit {
            skipped += batch.filled - start - limit;
            batch.filled = start + limit;
        }
        if start - kept > kept.max(GAP_BYTES) {
            start = batch.compact(start);
        }
        pos = batch.filled;
        let want = (batch_events - batch.len() + batch_events / 32 + 2).saturating_mul(mean).clamp(reads.0, reads.1);
        match input.read(batch.room(want)) {
            Ok(0) => break,
            Ok(n) => batch.filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    if batch.filled > start || skipped > 0 {
        lines += 1;
        let end = batch.filled;
        if end_line(&mut batch, start, end, skipped, max, lines).is_none() {
            blank += 1;
        }
    }
    if batch.len() > 0 {
        send(batch)?;
    }
    Ok(Lines { lines, blank })
}

/// What the reader read: lines (or rows) in all, and how many were blank.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Lines {
    lines: u64,
    blank: u64,
}

/// Ends line `number`, `batch.data[start..end]` and `skipped` bytes dropped
/// after it: a blank line is left out, an oversize one is cut at `max` and
/// marked. Returns the bytes the batch keeps of it, `None` for a blank line.
fn end_line(batch: &mut Batch, start: usize, end: usize, skipped: usize, max: usize, number: u64) -> Option<usize> {
    let total = end - start + skipped;
    let mut stop = end;
    if stop > start && batch.data[stop - 1] == b'\r' {
        stop -= 1;
    }
    if total <= max && batch.data[start..stop].iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    if total > max {
        batch.oversize.push((batch.len(), total));
        stop = stop.min(start + max);
    }
    batch.add(start, stop, number);
    Some(stop - start)
}

/// How replay types CSV columns: a flat path (one key) read by a numeric
/// feature, or the timestamp, as numbers cell by cell; the model and its
/// version as text; the rest as inferred from the file (as the reference is).
fn csv_types(plan: &Plan) -> source::CsvTypes {
    let flat = |path: &[String]| match path {
        [key] => Some(key.clone()),
        _ => None,
    };
    let spec = &plan.decoder;
    let mut types = source::CsvTypes::default();
    for m in &plan.models {
        for c in m.columns.iter().filter(|c| c.kind == FeatureType::Numeric) {
            types.numeric.extend(spec.slots.get(c.slot).and_then(|p| flat(p)));
        }
    }
    types.numeric.extend(spec.timestamp.as_deref().and_then(flat));
    types.text.extend([&spec.model, &spec.model_version].into_iter().flatten().filter_map(|p| flat(p)));
    types
}

/// Input file kinds replay reads.
pub fn input_format(path: &Path) -> Result<FileFormat> {
    Ok(FileFormat::from_path(path)?)
}

/// Replays a file through the engine: every evaluation, drift event and dead
/// letter is written to `outputs`. The same input gives byte-identical
/// output whatever the shard count.
///
/// With `labels` (a file of label events), models with `quality` join them
/// with their predictions, merged in event-time order.
pub fn replay(config: &Config, input: &Path, labels: Option<&Path>, mut outputs: Outputs, shards: Option<usize>) -> Result<Report> {
    let started = Instant::now();
    let plan = Arc::new(Plan::new(config)?);
    let decoder = Arc::new(Decoder::new(&plan.decoder)?);
    let mut models = model_states(config, &plan)?;
    let mut label_feed = match labels {
        Some(path) => Some(ReplayLabels::start(&plan, path)?),
        None => None,
    };
    let shard_count = shards.unwrap_or_else(|| config.engine.shard_count()).max(1);
    let format = input_format(input)?;
    let batch_events = config.engine.batch_events;
    let max = config.engine.max_event_bytes;

    let Shards { senders: shard_txs, done: done_rx, pool, rows: rows_pool, handles, .. } =
        Shards::start(shard_count, config, &plan, &decoder)?;

    let input_path: PathBuf = input.to_owned();
    let csv_types = csv_types(&plan);
    let reader = std::thread::Builder::new()
        .name("driftwatch-reader".into())
        .spawn(move || -> Result<Lines> {
            let send = |b: Batch| {
                let shard = (b.seq % shard_txs.len() as u64) as usize;
                shard_txs[shard].send(b).map_err(|_| Error::Internal("shard stopped".into()))
            };
            match format {
                FileFormat::Json => read_jsonl(&input_path, &pool, max, send),
                FileFormat::Csv | FileFormat::Parquet => {
                    let (mut seq, mut lines) = (0u64, 0u64);
                    let mut batch = pool.take(0);
                    let blank = source::for_each_json_row_typed(&input_path, format, &csv_types, |row: &[u8]| -> Result<()> {
                        lines += 1;
                        if row.len() > max {
                            batch.oversize.push((batch.len(), row.len()));
                            batch.push(&row[..max], lines);
                        } else {
                            batch.push(row, lines);
                        }
                        if batch.len() >= batch_events {
                            seq += 1;
                            send(std::mem::replace(&mut batch, pool.take(seq)))?;
                        }
                        Ok(())
                    })?;
                    if batch.len() > 0 {
                        send(batch)?;
                    }
                    // Rows are numbered as rows: the CSV reader skips empty lines.
                    Ok(Lines { lines: lines + blank, blank })
                }
            }
        })
        .map_err(|e| Error::Internal(format!("cannot start reader thread: {e}")))?;

    // The window stage: apply batches in input order.
    let mut report = Report { shards: shard_count, ..Report::default() };
    let mut pending: BTreeMap<u64, Decoded> = BTreeMap::new();
    let mut next = 0u64;
    let mut outcome = Outcome::default();
    let mut result: Result<()> = Ok(());
    for decoded in done_rx.iter() {
        pending.insert(decoded.seq, decoded);
        while let Some(d) = pending.remove(&next) {
            next += 1;
            if result.is_ok() {
                let feed: &mut dyn LabelFeed = match &mut label_feed {
                    Some(f) => f,
                    None => &mut NoLabels,
                };
                result = apply_batch(d, &mut models, &mut outputs, &mut outcome, &mut report, &rows_pool, feed);
                if let Some(f) = &mut label_feed {
                    if result.is_ok() {
                        result = write_label_dead_letters(f, &mut outputs, &mut report);
                    }
                }
            }
        }
        if result.is_err() {
            break;
        }
    }
    drop(done_rx);
    let lines = reader.join().map_err(|_| Error::Internal("reader thread panicked".into()))?;
    for h in handles {
        h.join().map_err(|_| Error::Internal("shard thread panicked".into()))?;
    }
    result?;
    let Lines { lines, blank } = lines?;
    report.events_read = lines - blank;
    report.blank_lines = blank;
    if let Some(f) = &mut label_feed {
        for m in &mut models {
            m.drain_labels(f, &mut outcome)?;
        }
        write_label_dead_letters(f, &mut outputs, &mut report)?;
        f.finish()?;
    }
    for m in &mut models {
        m.finish(&mut outcome)?;
    }
    flush_outcome(&mut outcome, &mut outputs, &mut report)?;
    let (read, dead) = label_feed.as_ref().map_or((0, 0), |f| (f.read, report.label_dead_letters));
    report.labels = labels_report(&models, read, dead)?;
    for w in [&mut outputs.evaluations, &mut outputs.events, &mut outputs.dead_letter].into_iter().flatten() {
        w.flush().map_err(|e| Error::io(Path::new("output"), e))?;
    }
    for m in &models {
        report.models.insert(m.plan().name.clone(), m.counters);
        report.sketch_bytes += m.size_bytes() as u64;
    }
    report.elapsed_seconds = started.elapsed().as_secs_f64();
    report.events_per_second = report.events_read as f64 / report.elapsed_seconds.max(1e-9);
    report.peak_rss_bytes = peak_rss_bytes();
    Ok(report)
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

/// Writes and counts the label dead letters the feed collected.
fn write_label_dead_letters(feed: &mut ReplayLabels, outputs: &mut Outputs, report: &mut Report) -> Result<()> {
    for dl in feed.dead.drain(..) {
        *report.dead_letters.entry(dl.reason).or_default() += 1;
        report.label_dead_letters += 1;
        write_line(&mut outputs.dead_letter, &dl, "dead letter output")?;
    }
    Ok(())
}

fn apply_batch(
    d: Decoded,
    models: &mut [ModelState],
    outputs: &mut Outputs,
    outcome: &mut Outcome,
    report: &mut Report,
    pool: &RowsPool,
    labels: &mut dyn LabelFeed,
) -> Result<()> {
    for dl in &d.dead {
        *report.dead_letters.entry(dl.reason).or_default() += 1;
        write_line(&mut outputs.dead_letter, dl, "dead letter output")?;
    }
    for (model, rows) in models.iter_mut().zip(&d.rows) {
        if let Some(rows) = rows {
            model.apply_rows(rows, outcome, labels)?;
            report.events_applied += rows.len() as u64;
        }
    }
    pool.give_all(d.rows);
    flush_outcome(outcome, outputs, report)
}

fn flush_outcome(outcome: &mut Outcome, outputs: &mut Outputs, report: &mut Report) -> Result<()> {
    for e in outcome.evaluations.drain(..) {
        write_line(&mut outputs.evaluations, &e, "evaluation output")?;
        report.evaluations += 1;
    }
    for e in outcome.events.drain(..) {
        match e.kind {
            "drift" => report.drift_events += 1,
            _ => report.resolved_events += 1,
        }
        write_line(&mut outputs.events, &e, "event output")?;
    }
    for e in outcome.quality.drain(..) {
        write_line(&mut outputs.evaluations, &e, "evaluation output")?;
        report.evaluations += 1;
    }
    report.suppressed += std::mem::take(&mut outcome.suppressed);
    outcome.window_seconds.clear();
    outcome.label_delays.clear();
    Ok(())
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

    /// Hands out at most a pseudo-random number of bytes per read.
    struct Trickle<'a> {
        rest: &'a [u8],
        state: u64,
        most: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            let n = (1 + self.state as usize % self.most).min(buf.len()).min(self.rest.len());
            buf[..n].copy_from_slice(&self.rest[..n]);
            self.rest = &self.rest[n..];
            Ok(n)
        }
    }

    /// (line number, bytes, original length if oversize) of an event.
    type Event = (u64, Vec<u8>, Option<usize>);

    /// The events and the number of blank lines, by
    /// the rules `cut_lines` documents, written the plain way.
    fn expected(input: &[u8], max: usize) -> (Vec<Event>, u64) {
        let mut parts: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
        if parts.last().is_some_and(|p| p.is_empty()) {
            parts.pop();
        }
        let (mut out, mut blank) = (Vec::new(), 0);
        for (i, part) in parts.into_iter().enumerate() {
            let total = part.len();
            let line = part.strip_suffix(b"\r").unwrap_or(part);
            if total <= max && line.iter().all(u8::is_ascii_whitespace) {
                blank += 1;
                continue;
            }
            let cut = &line[..line.len().min(max)];
            out.push((i as u64 + 1, cut.to_vec(), (total > max).then_some(total)));
        }
        (out, blank)
    }

    /// Runs `cut_lines` with batches recycled through the pool (so stale
    /// bytes of earlier batches are in the buffers), returning the events,
    /// the line count, and the largest buffer a batch had.
    fn cut(input: &[u8], max: usize, events: usize, reads: (usize, usize), seed: u64, most: usize) -> (Vec<Event>, Lines, usize) {
        let pool = BatchPool::new(4, events);
        let mut got = Vec::new();
        let (mut next_seq, mut biggest, mut last_was_short) = (0u64, 0usize, false);
        let reader = Trickle { rest: input, state: seed | 1, most };
        let lines = cut_lines(reader, Path::new("test"), &pool, max, reads, |b: Batch| {
            assert_eq!(b.seq, next_seq, "batches are numbered in order");
            next_seq += 1;
            assert!(b.len() > 0, "no empty batch is sent");
            assert!(b.len() <= events, "{} events in a batch of {events}", b.len());
            assert!(!last_was_short, "only the last batch is short");
            last_was_short = b.len() < events;
            biggest = biggest.max(b.data.len());
            let oversize: HashMap<usize, usize> = b.oversize.iter().copied().collect();
            for i in 0..b.len() {
                got.push((b.numbers[i], b.line(i).to_vec(), oversize.get(&i).copied()));
            }
            pool.give(b);
            Ok(())
        })
        .unwrap();
        (got, lines, biggest)
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
        let mut batch = pool.take(0);
        let events = [
            r#"{"model":"a","features":{"x":1,"c":"p","y":2}}"#,
            r#"{"model":"b","features":{"x":9,"y":3}}"#,
            r#"{"model":"a","features":{"y":4,"c":"q"}}"#,
            r#"{"model":"a","features":{"x":"five","c":6,"y":null}}"#,
            r#"{"model":"b","features":{}}"#,
        ];
        for (i, e) in events.iter().enumerate() {
            batch.push(e.as_bytes(), i as u64 + 1);
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

    #[test]
    fn lines_are_cut_as_documented_whatever_the_reads() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as usize
        };
        for case in 0..400 {
            let max = 1 + next() % 40;
            let mut input = Vec::new();
            for _ in 0..next() % 200 {
                let len = match next() % 10 {
                    0 => 0,
                    1 => max + next() % (3 * max),
                    _ => next() % (max + 2),
                };
                for _ in 0..len {
                    input.push(*[b'a', b'{', b'}', b' ', b'\t', b'\r', b'\n', b'x'].get(next() % 12).unwrap_or(&b'q'));
                }
                if next() % 8 != 0 {
                    input.extend_from_slice(if next() % 4 == 0 { b"\r\n" } else { b"\n" });
                }
            }
            let events = 1 + next() % 9;
            let reads = (1 + next() % 32, 32 + next() % 256);
            let (got, lines, _) = cut(&input, max, events, reads, case as u64, 1 + next() % 300);
            let (want, blank) = expected(&input, max);
            assert_eq!(got, want, "case {case}: {:?}", String::from_utf8_lossy(&input));
            let breaks = input.iter().filter(|&&b| b == b'\n').count() as u64;
            let unterminated = u64::from(!input.is_empty() && input.last() != Some(&b'\n'));
            assert_eq!(lines.lines, breaks + unterminated, "case {case}");
            assert_eq!(lines.blank, blank, "case {case}");
            assert_eq!(lines.lines - lines.blank, got.len() as u64, "case {case}: every line is an event or blank");
        }
    }

    #[test]
    fn a_batch_stays_bounded_on_blank_and_oversize_lines() {
        let (max, events, reads) = (100, 4, (64, 4096));
        let mut input = vec![b'\n'; 1 << 20];
        for _ in 0..20 {
            input.extend(std::iter::repeat_n(b'x', 50_000));
            input.push(b'\n');
        }
        input.extend_from_slice(b"{}\n");
        let (got, lines, biggest) = cut(&input, max, events, reads, 7, 1 << 16);
        assert_eq!(got.len(), 21);
        assert_eq!(got[0], ((1 << 20) + 1, vec![b'x'; 100], Some(50_000)));
        assert_eq!(got[20].1, b"{}");
        assert_eq!(lines, Lines { lines: (1 << 20) + 21, blank: 1 << 20 });
        // Events of at most `max` bytes, the gaps compacted once they
        // outweigh them and `GAP_BYTES`, one read and one line in progress.
        assert!(biggest <= 2 * events * (max + 1) + GAP_BYTES + 2 * reads.1 + max + 1, "{biggest} bytes");
    }
    /// Regression: blank and whitespace-only lines (also `\r` alone and an
    /// unterminated last one) were counted as events read; they are counted
    /// apart, and line numbers still count them.
    #[test]
    fn blank_lines_are_counted_apart_from_events() {
        let input = b"\n{\"a\":1}\n \t \n\r\n{\"a\":2}\r\n\n   ";
        for most in [1, 3, 64] {
            let (got, lines, _) = cut(input, 100, 2, (1, 64), 3, most);
            assert_eq!(lines, Lines { lines: 7, blank: 5 }, "reads of at most {most}");
            let numbers: Vec<u64> = got.iter().map(|e| e.0).collect();
            assert_eq!(numbers, [2, 5]);
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
        let mut batch = pool.take(0);
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
        let mut batch = pool.take(0);
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
