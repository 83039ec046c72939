//! The pipeline: a reader cuts the input into batches of events, shard
//! threads decode and type-check them in parallel (shared-nothing, fed by
//! bounded crossbeam channels), and the window stage applies them to each
//! model's windows in input order, so results do not depend on the shard
//! count. `replay` runs it over a file; the live Kafka source reuses the same
//! stages.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{bounded, Receiver, Sender};
use serde::Serialize;

use crate::config::{Config, FeatureType};
use crate::decode::{DecodedEvent, Decoder, SlotValue};
use crate::batch::{ModelRows, Recycler, RowsPool};
use crate::evaluate::{ModelCounters, ModelState, Outcome};
use crate::model::{build_references, Plan};
use crate::source::{self, FileFormat};
use crate::{Error, Result};

/// A batch of raw events (one per line or message) with its position in the input.
#[derive(Debug)]
pub(crate) struct Batch {
    pub(crate) seq: u64,
    data: Vec<u8>,
    /// Files: 1-based input line (or row) number of each event. Kafka: the offset.
    numbers: Vec<u64>,
    /// Kafka: the partition slot of each event (empty for files).
    partitions: Vec<u32>,
    ends: Vec<usize>,
    /// Lines refused by the reader (longer than the limit): (index in batch, original length).
    oversize: Vec<(usize, usize)>,
}

impl Batch {
    fn new(seq: u64, events: usize) -> Self {
        Self::with_room(seq, events, events * 512)
    }
    fn with_room(seq: u64, events: usize, bytes: usize) -> Self {
        Self {
            seq,
            data: Vec::with_capacity(bytes),
            numbers: Vec::with_capacity(events),
            partitions: Vec::new(),
            ends: Vec::with_capacity(events),
            oversize: Vec::new(),
        }
    }
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }
    fn clear(&mut self, seq: u64) {
        self.seq = seq;
        self.data.clear();
        self.numbers.clear();
        self.partitions.clear();
        self.ends.clear();
        self.oversize.clear();
    }
    /// Adds a Kafka message (`max`: the event byte limit; longer ones are cut and marked oversize).
    pub(crate) fn push_message(&mut self, payload: &[u8], slot: u32, offset: i64, max: usize) {
        if payload.len() > max {
            self.oversize.push((self.len(), payload.len()));
        }
        self.partitions.push(slot);
        self.push(&payload[..payload.len().min(max)], offset as u64);
    }
    /// Drops the events of `slots` (their partitions were revoked before the batch was handed over).
    pub(crate) fn retain_partitions(&mut self, keep: impl Fn(u32) -> bool) {
        let old = std::mem::replace(self, Batch::new(self.seq, self.len()));
        let oversize: HashMap<usize, usize> = old.oversize.iter().copied().collect();
        for i in 0..old.len() {
            if keep(old.partitions[i]) {
                if let Some(&len) = oversize.get(&i) {
                    self.oversize.push((self.len(), len));
                }
                self.partitions.push(old.partitions[i]);
                self.push(old.line(i), old.numbers[i]);
            }
        }
    }
    fn push(&mut self, line: &[u8], number: u64) {
        self.numbers.push(number);
        self.data.extend_from_slice(line);
        self.ends.push(self.data.len());
    }
    fn line(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.data[start..self.ends[i]]
    }
}

/// Batches that shards have decoded, handed back to the reader so that
/// their buffers are reused (no page faults for fresh megabytes per batch).
#[derive(Clone)]
pub(crate) struct BatchPool {
    batches: Recycler<Batch>,
    events: usize,
    /// The most event bytes a batch given back held: a new batch starts with
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
        self.bytes_seen.fetch_max(batch.data.len(), Ordering::Relaxed);
        self.batches.give(batch);
    }
}

/// An event the engine could not fully use, with the reason.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    /// 1-based line (or row) number in the input.
    pub line: u64,
    /// Closed set: the decoder's reasons, `unknown_model`, `missing_model`, `wrong_type`.
    pub reason: &'static str,
    /// A short description (never the payload).
    pub detail: String,
    /// The original payload (written as lossy UTF-8; oversize payloads cut at the limit).
    #[serde(serialize_with = "lossy_utf8")]
    pub payload: Vec<u8>,
    /// Kafka: the partition slot and offset of the message.
    #[serde(skip)]
    pub position: Option<(u32, i64)>,
    /// Whether the rest of the event was still used (`wrong_type` on one feature).
    pub partially_used: bool,
}

fn lossy_utf8<S: serde::Serializer>(bytes: &[u8], s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(bytes))
}

/// A decoded batch, as a shard hands it to the window stage.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub(crate) seq: u64,
    /// Kafka: the highest offset per partition slot in the batch.
    pub(crate) positions: Vec<(u32, i64)>,
    /// Per model (plan order): its rows in this batch, if any.
    pub(crate) rows: Vec<Option<ModelRows>>,
    pub(crate) dead: Vec<DeadLetter>,
}

/// What a replay did.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// Input lines (events) read.
    pub events_read: u64,
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

fn write_line<T: Serialize>(w: &mut Option<Box<dyn Write + Send>>, value: &T, what: &str) -> Result<()> {
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
        let pool = BatchPool::new(count * (config.engine.queue_batches + 1), config.engine.batch_events);
        // As many as can be in flight (the shards → window stage queue plus
        // one being filled per shard), so the pool never holds more memory
        // than a full pipeline does.
        let rows = RowsPool::new(plan.models.len(), count * (config.engine.queue_batches + 1));
        let (mut senders, mut probes, mut handles) = (Vec::with_capacity(count), Vec::with_capacity(count), Vec::with_capacity(count));
        for i in 0..count {
            let (tx, rx): (Sender<Batch>, Receiver<Batch>) = bounded(config.engine.queue_batches);
            senders.push(tx);
            probes.push(rx.clone());
            let (plan, decoder, done, pool, rows) = (Arc::clone(plan), Arc::clone(decoder), done_tx.clone(), pool.clone(), rows.clone());
            let handle = std::thread::Builder::new()
                .name(format!("driftwatch-shard-{i}"))
                .spawn(move || {
                    let mut scratch = DecodedEvent::new();
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

/// Decodes and type-checks one batch (runs on a shard thread).
pub(crate) fn decode_batch(batch: &Batch, decoder: &Decoder, plan: &Plan, pool: &RowsPool, scratch: &mut DecodedEvent<'static>) -> Decoded {
    let mut per_model: Vec<Option<ModelRows>> = vec![None; plan.models.len()];
    let mut dead = Vec::new();
    // One event buffer for the whole batch (its strings borrow the batch).
    let mut ev = std::mem::take(scratch).recycle();
    let oversize: HashMap<usize, usize> = batch.oversize.iter().copied().collect();
    let mut last_model: Option<(String, usize)> = None;
    for i in 0..batch.len() {
        let bytes = batch.line(i);
        let line = batch.numbers[i];
        let dead_letter = |reason: &'static str, detail: String, partially_used: bool| DeadLetter {
            line,
            reason,
            detail,
            payload: bytes.to_vec(),
            position: batch.partitions.get(i).map(|&slot| (slot, line as i64)),
            partially_used,
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
            let mut wrong: Vec<&str> = Vec::new();
            for (ci, c) in mp.columns.iter().enumerate() {
                match (c.kind, &ev.values[c.slot]) {
                    (_, SlotValue::Missing | SlotValue::Null) => rows.push_missing(ci),
                    (FeatureType::Numeric, SlotValue::Number(x)) => rows.push_number(ci, Some(*x)),
                    (FeatureType::Categorical, SlotValue::Text(t)) => rows.push_category(ci, Some(t)),
                    (FeatureType::Categorical, SlotValue::Bool(b)) => rows.push_category(ci, Some(if *b { "true" } else { "false" })),
                    (FeatureType::Categorical, SlotValue::Number(x)) => rows.push_category(ci, Some(&number_category(*x))),
                    _ => {
                        wrong.push(&c.name);
                        rows.push_missing(ci);
                    }
                }
            }
            if !wrong.is_empty() {
                dead.push(dead_letter("wrong_type", format!("unexpected type for {}", wrong.join(", ")), true));
            }
        }
    }
    *scratch = ev.recycle();
    let mut positions: Vec<(u32, i64)> = Vec::new();
    for (&slot, &offset) in batch.partitions.iter().zip(&batch.numbers) {
        match positions.iter_mut().find(|p| p.0 == slot) {
            Some(p) => p.1 = p.1.max(offset as i64),
            None => positions.push((slot, offset as i64)),
        }
    }
    Decoded { seq: batch.seq, positions, rows: per_model, dead }
}

fn number_category(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// Reads JSONL line by line into batches; a line longer than `max` is cut
/// there, the rest skipped, and the event marked oversize (bounded memory
/// whatever the input).
///
/// Hot path: a line that lies whole in the read buffer is copied once, into
/// its batch; only a line that straddles two reads goes through `line`.
fn read_jsonl(path: &Path, pool: &BatchPool, max: usize, mut send: impl FnMut(Batch) -> Result<()>) -> Result<u64> {
    let batch_events = pool.events;
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let (mut seq, mut lines) = (0u64, 0u64);
    let mut batch = pool.take(seq);
    // A line that straddles reads (cut at `max + 1` bytes) and its full length.
    let mut line: Vec<u8> = Vec::new();
    let mut total = 0usize;
    let mut push = |bytes: &[u8], total: usize, batch: &mut Batch| -> Result<()> {
        let mut bytes = bytes;
        if bytes.last() == Some(&b'\r') {
            bytes = &bytes[..bytes.len() - 1];
        }
        lines += 1;
        if total <= max && bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(()); // blank lines are not events
        }
        if total > max {
            batch.oversize.push((batch.len(), total));
            bytes = &bytes[..bytes.len().min(max)];
        }
        batch.push(bytes, lines);
        if batch.len() >= batch_events {
            seq += 1;
            send(std::mem::replace(batch, pool.take(seq)))?;
        }
        Ok(())
    };
    loop {
        let buf = reader.fill_buf().map_err(|e| Error::io(path, e))?;
        if buf.is_empty() {
            break;
        }
        let mut used = 0;
        while let Some(i) = memchr::memchr(b'\n', &buf[used..]) {
            let chunk = &buf[used..used + i];
            if line.is_empty() && total == 0 {
                push(chunk, chunk.len(), &mut batch)?;
            } else {
                let room = max.saturating_add(1).saturating_sub(line.len());
                line.extend_from_slice(&chunk[..chunk.len().min(room)]);
                push(&line, total + chunk.len(), &mut batch)?;
                line.clear();
                total = 0;
            }
            used += i + 1;
        }
        let rest = &buf[used..];
        let room = max.saturating_add(1).saturating_sub(line.len());
        line.extend_from_slice(&rest[..rest.len().min(room)]);
        total += rest.len();
        let n = buf.len();
        reader.consume(n);
    }
    if total > 0 {
        push(&line, total, &mut batch)?;
    }
    if batch.len() > 0 {
        send(batch)?;
    }
    Ok(lines)
}

/// Input file kinds replay reads.
pub fn input_format(path: &Path) -> Result<FileFormat> {
    Ok(FileFormat::from_path(path)?)
}

/// Replays a file through the engine: every evaluation, drift event and dead
/// letter is written to `outputs`. The same input gives byte-identical
/// output whatever the shard count.
pub fn replay(config: &Config, input: &Path, mut outputs: Outputs, shards: Option<usize>) -> Result<Report> {
    let started = Instant::now();
    let plan = Arc::new(Plan::new(config)?);
    let decoder = Arc::new(Decoder::new(&plan.decoder)?);
    let references = build_references(config, &plan)?;
    let mut models: Vec<ModelState> =
        plan.models.iter().cloned().zip(references).map(|(p, r)| ModelState::new(p, r)).collect();
    let shard_count = shards.unwrap_or_else(|| config.engine.shard_count()).max(1);
    let format = input_format(input)?;
    let batch_events = config.engine.batch_events;
    let max = config.engine.max_event_bytes;

    let Shards { senders: shard_txs, done: done_rx, pool, rows: rows_pool, handles, .. } = Shards::start(shard_count, config, &plan, &decoder)?;

    let input_path: PathBuf = input.to_owned();
    let reader = std::thread::Builder::new()
        .name("driftwatch-reader".into())
        .spawn(move || -> Result<u64> {
            let send = |b: Batch| {
                let shard = (b.seq % shard_txs.len() as u64) as usize;
                shard_txs[shard].send(b).map_err(|_| Error::Internal("shard stopped".into()))
            };
            match format {
                FileFormat::Json => read_jsonl(&input_path, &pool, max, send),
                FileFormat::Csv | FileFormat::Parquet => {
                    let (mut seq, mut lines) = (0u64, 0u64);
                    let mut batch = pool.take(0);
                    source::for_each_json_row(&input_path, format, |row: &[u8]| -> Result<()> {
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
                    Ok(lines)
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
                result = apply_batch(d, &mut models, &mut outputs, &mut outcome, &mut report, &rows_pool);
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
    report.events_read = lines?;
    for m in &mut models {
        m.finish(&mut outcome)?;
    }
    flush_outcome(&mut outcome, &mut outputs, &mut report)?;
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

fn apply_batch(d: Decoded, models: &mut [ModelState], outputs: &mut Outputs, outcome: &mut Outcome, report: &mut Report, pool: &RowsPool) -> Result<()> {
    for dl in &d.dead {
        *report.dead_letters.entry(dl.reason).or_default() += 1;
        write_line(&mut outputs.dead_letter, dl, "dead letter output")?;
    }
    for (model, rows) in models.iter_mut().zip(&d.rows) {
        if let Some(rows) = rows {
            model.apply_rows(rows, outcome)?;
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
    report.suppressed += std::mem::take(&mut outcome.suppressed);
    outcome.window_seconds.clear();
    Ok(())
}

/// Peak resident set size of this process (Linux), in bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
