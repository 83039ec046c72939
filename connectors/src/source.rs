//! The source seam. A [`Source`] reads raw events into [`Batch`]es (each
//! event's bytes with its position: a line or row number of a file, or a
//! Kafka partition and offset) and hands them to the pipeline through a
//! [`Feed`]; its [`SourceHandle`] is told which positions the window stage
//! has applied (a Kafka source commits only those) and says where the
//! source stands. A source can be moved to given positions before it runs
//! ([`Source::seek`]). [`SourceConfig`] is the configuration's `source:`,
//! one variant per live source, and builds it; file sources are opened by
//! path ([`crate::file`]).
//!
//! ```text
//! Source::run ──Batch──► Feed::send ──► the pipeline (seq, shards, window stage)
//!      ▲                                              │ applied positions
//!      └──────────── SourceHandle::applied ◄──────────┘
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use prometheus::Registry;
use serde::{Deserialize, Serialize};

use crate::kafka::{KafkaSource, KafkaSourceConfig, RevokeHook};
use crate::Result;

/// A batch of raw events (one per line, row or message), each with its position.
#[derive(Debug)]
pub struct Batch {
    pub(crate) seq: u64,
    pub(crate) source: usize,
    /// Event bytes: `data[..filled]` holds this batch's input. The vector is
    /// kept initialized to its high-water mark across reuses, so the file
    /// reader can read straight into it without zeroing.
    pub(crate) data: Vec<u8>,
    pub(crate) filled: usize,
    /// Files: 1-based input line (or row) number of each event. Kafka: the offset.
    pub(crate) numbers: Vec<u64>,
    /// Kafka: the partition slot of each event (empty for files).
    pub(crate) partitions: Vec<u32>,
    /// Event `i` is `data[starts[i]..ends[i]]` (the reader leaves line breaks,
    /// blank lines and the cut-off rest of an oversize line between events).
    pub(crate) starts: Vec<usize>,
    pub(crate) ends: Vec<usize>,
    /// Events cut at the size limit: (index in batch, original length).
    pub(crate) oversize: Vec<(usize, usize)>,
    /// Indices (ascending) of the events that are labels (Kafka: from `label_topics`).
    pub(crate) labels: Vec<usize>,
}

impl Batch {
    fn with_room(events: usize, bytes: usize) -> Self {
        Self {
            seq: 0,
            source: 0,
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

    /// Events in the batch.
    #[inline]
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the batch holds no event.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Its place in the pipeline's input order (set when it is sent).
    #[inline]
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The index of the source it came from, in the pipeline's list.
    #[inline]
    pub fn source(&self) -> usize {
        self.source
    }

    /// Event `i`'s bytes (an oversize event cut at the limit).
    #[inline]
    pub fn event(&self, i: usize) -> &[u8] {
        &self.data[self.starts[i]..self.ends[i]]
    }

    /// Event `i`'s number: its 1-based line or row (files) or its offset (Kafka).
    #[inline]
    pub fn number(&self, i: usize) -> u64 {
        self.numbers[i]
    }

    /// Event `i`'s partition slot (Kafka), `None` for files.
    #[inline]
    pub fn partition(&self, i: usize) -> Option<u32> {
        self.partitions.get(i).copied()
    }

    /// Events cut at the size limit: (index in batch, original length), ascending.
    pub fn oversize(&self) -> &[(usize, usize)] {
        &self.oversize
    }

    /// Indices (ascending) of the events that are labels.
    pub fn labels(&self) -> &[usize] {
        &self.labels
    }

    /// The last position of each stream in the batch: per partition slot its
    /// highest offset (Kafka), or slot 0 and the last line or row (files).
    pub fn positions(&self) -> Vec<(u32, i64)> {
        if self.partitions.is_empty() {
            return self.numbers.last().map(|&n| vec![(0, n as i64)]).unwrap_or_default();
        }
        let mut positions: Vec<(u32, i64)> = Vec::new();
        for (&slot, &offset) in self.partitions.iter().zip(&self.numbers) {
            match positions.iter_mut().find(|p| p.0 == slot) {
                Some(p) => p.1 = p.1.max(offset as i64),
                None => positions.push((slot, offset as i64)),
            }
        }
        positions
    }

    fn clear(&mut self) {
        self.seq = 0;
        self.source = 0;
        self.filled = 0;
        self.numbers.clear();
        self.partitions.clear();
        self.starts.clear();
        self.ends.clear();
        self.oversize.clear();
        self.labels.clear();
    }

    /// Adds a row or record `number` (`max`: the event byte limit; a longer one is cut and marked oversize).
    pub fn push_row(&mut self, row: &[u8], number: u64, max: usize) {
        if row.len() > max {
            self.oversize.push((self.len(), row.len()));
        }
        self.push(&row[..row.len().min(max)], number);
    }

    /// Adds a Kafka message (`max`: the event byte limit; longer ones are cut and marked oversize).
    /// `label`: the message is a label event.
    pub fn push_message(&mut self, payload: &[u8], slot: u32, offset: i64, max: usize, label: bool) {
        if label {
            self.labels.push(self.len());
        }
        self.partitions.push(slot);
        self.push_row(payload, offset as u64, max);
    }

    /// Keeps only the events of the partitions `keep` accepts (the others
    /// were revoked before the batch was handed over).
    pub fn retain_partitions(&mut self, keep: impl Fn(u32) -> bool) {
        let mut old = std::mem::replace(self, Batch::with_room(self.len(), self.filled));
        (self.seq, self.source) = (old.seq, old.source);
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
                let start = self.append(old.event(i));
                self.add(start, self.filled, old.numbers[i]);
            }
        }
        old.clear();
    }

    /// Appends `line` as an event.
    fn push(&mut self, line: &[u8], number: u64) {
        let start = self.append(line);
        self.add(start, self.filled, number);
    }

    /// Copies `bytes` after the filled part; returns where they start.
    pub(crate) fn append(&mut self, bytes: &[u8]) -> usize {
        let start = self.filled;
        self.room(bytes.len()).copy_from_slice(bytes);
        self.filled += bytes.len();
        start
    }

    /// Records `data[start..end]` (already in the buffer) as an event.
    pub(crate) fn add(&mut self, start: usize, end: usize, number: u64) {
        self.numbers.push(number);
        self.starts.push(start);
        self.ends.push(end);
    }

    /// `len` writable bytes after the filled part (zeroed only where the
    /// buffer grows past its high-water mark).
    pub(crate) fn room(&mut self, len: usize) -> &mut [u8] {
        let end = self.filled + len;
        if self.data.len() < end {
            self.data.resize(end, 0);
        }
        &mut self.data[self.filled..end]
    }

    /// Moves the events together at the start of the buffer, followed by
    /// `data[tail..filled]`; returns where that tail now starts.
    pub(crate) fn compact(&mut self, tail: usize) -> usize {
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

/// Batches the pipeline is done with, handed back to the sources so that
/// their buffers are reused (no page faults for fresh megabytes per batch).
#[derive(Clone)]
pub struct BatchPool {
    tx: crossbeam_channel::Sender<Batch>,
    rx: crossbeam_channel::Receiver<Batch>,
    events: usize,
    /// The most bytes a batch given back held (its events and the gaps
    /// between them): a new batch starts with that much room (and an eighth
    /// more), so that it is not grown by doubling, copying megabytes and
    /// touching pages it then gives up.
    bytes_seen: Arc<AtomicUsize>,
}

impl std::fmt::Debug for BatchPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchPool").field("events", &self.events).field("kept", &self.rx.len()).finish()
    }
}

impl BatchPool {
    /// A pool keeping at most `capacity` batches of `events` events.
    pub fn new(capacity: usize, events: usize) -> Self {
        let (tx, rx) = crossbeam_channel::bounded(capacity.max(1));
        Self { tx, rx, events: events.max(1), bytes_seen: Arc::new(AtomicUsize::new(0)) }
    }

    /// Events per batch.
    pub fn batch_events(&self) -> usize {
        self.events
    }

    /// An empty batch, recycled when one is available.
    pub fn take(&self) -> Batch {
        match self.rx.try_recv() {
            Ok(mut b) => {
                b.clear();
                b
            }
            Err(_) => {
                let seen = self.bytes_seen.load(Ordering::Relaxed);
                Batch::with_room(self.events, (self.events * 512).max(seen.saturating_add(seen / 8)))
            }
        }
    }

    /// Keeps `batch` for reuse unless the pool is full.
    pub fn give(&self, batch: Batch) {
        self.bytes_seen.fetch_max(batch.filled, Ordering::Relaxed);
        let _full = self.tx.try_send(batch);
    }
}

/// Batches handed to the pipeline and batches the window stage applied: a
/// source waits for the second to catch up with the first before a Kafka
/// revoke and at shutdown.
#[derive(Debug, Default)]
pub struct Progress {
    sent: AtomicU64,
    applied: Mutex<u64>,
    cv: Condvar,
}

impl Progress {
    /// Counts one more batch handed over.
    pub fn sent_one(&self) {
        self.sent.fetch_add(1, Ordering::AcqRel);
    }

    /// Batches handed over so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Acquire)
    }

    /// The window stage has applied the first `n` batches.
    pub fn set_applied(&self, n: u64) {
        *self.applied.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = n;
        self.cv.notify_all();
    }

    /// Waits until every batch handed over so far is applied (at most `limit`).
    pub fn wait_applied(&self, limit: Duration) -> bool {
        let target = self.sent();
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

/// What a source hands its batches to.
pub struct Feed<'a> {
    pool: &'a BatchPool,
    max_event_bytes: usize,
    stop: &'a AtomicBool,
    progress: &'a Progress,
    emit: &'a mut dyn FnMut(Batch) -> bool,
}

impl std::fmt::Debug for Feed<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed").field("pool", self.pool).field("max_event_bytes", &self.max_event_bytes).finish_non_exhaustive()
    }
}

impl<'a> Feed<'a> {
    /// A feed handing batches to `emit` (which returns `false` once the pipeline stopped taking them).
    pub fn new(
        pool: &'a BatchPool,
        max_event_bytes: usize,
        stop: &'a AtomicBool,
        progress: &'a Progress,
        emit: &'a mut dyn FnMut(Batch) -> bool,
    ) -> Self {
        Self { pool, max_event_bytes, stop, progress, emit }
    }

    /// An empty batch to fill.
    pub fn batch(&self) -> Batch {
        self.pool.take()
    }

    /// Events per batch.
    pub fn batch_events(&self) -> usize {
        self.pool.batch_events()
    }

    /// The event byte limit (longer events are cut and marked oversize).
    pub fn max_event_bytes(&self) -> usize {
        self.max_event_bytes
    }

    /// Hands a batch over; `false`: the pipeline stopped, read no more.
    pub fn send(&mut self, batch: Batch) -> bool {
        (self.emit)(batch)
    }

    /// Whether the pipeline asks its sources to stop (a signal, or an error downstream).
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// How far the window stage got.
    pub fn progress(&self) -> &Progress {
        self.progress
    }
}

/// Sets what a batch is before it goes to the pipeline (the pipeline calls it).
pub fn stamp(batch: &mut Batch, seq: u64, source: usize) {
    batch.seq = seq;
    batch.source = source;
}

/// A position in a source: the last event of a stream that was applied.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Position {
    /// The Kafka topic, or the file's path.
    pub stream: String,
    /// The Kafka partition (0 for a file).
    pub partition: i32,
    /// The offset (Kafka) or the 1-based line or row number (files) of the last applied event.
    pub offset: i64,
}

/// What the window stage tells a running source, and asks it.
pub trait SourceHandle: Send + Sync + std::fmt::Debug {
    /// The window stage applied a batch whose last positions per slot these
    /// are (slot, offset or line). Kafka commits only applied offsets.
    fn applied(&self, positions: &[(u32, i64)]);
    /// The stream and partition of a slot (Kafka: topic and partition; a file: its path and 0).
    fn stream(&self, slot: u32) -> Option<(String, i32)>;
    /// The last applied position of every stream so far.
    fn positions(&self) -> Vec<Position>;
    /// Messages behind the end of the input, when known (Kafka: consumer lag).
    fn lag(&self) -> Option<i64>;
    /// `Ok` when the source can deliver events (`/readyz`), else why not.
    fn ready(&self) -> std::result::Result<(), String>;
}

/// What a source did, once it stops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceStats {
    /// Blank lines read past (JSONL): not events, but counted in line numbers.
    pub blank_lines: u64,
}

/// A source of raw events.
pub trait Source: Send + std::fmt::Debug {
    /// What it reads, for logs and errors (`kafka topics [...]`, `file events.jsonl`).
    fn name(&self) -> String;
    /// Whether its input ends (a file) rather than runs until stopped (Kafka):
    /// at the end of a bounded input every open window is completed.
    fn bounded(&self) -> bool;
    /// The handle the window stage reports applied positions to.
    fn handle(&self) -> Arc<dyn SourceHandle>;
    /// Moves the source so that it continues after `positions` (the last
    /// applied event of each stream); before [`Source::run`]. Streams not
    /// named start where they would have.
    fn seek(&mut self, positions: &[Position]) -> Result<()>;
    /// Reads until its input ends or the feed says stop, handing each batch to the feed.
    fn run(self: Box<Self>, feed: &mut Feed<'_>) -> Result<SourceStats>;
}

/// What live sources are built with.
#[derive(Debug, Clone)]
pub struct SourceContext<'a> {
    /// Where a source registers its series.
    pub registry: &'a Registry,
    /// How far the window stage got (a Kafka source drains it before a revoke).
    pub progress: Arc<Progress>,
}

/// A live source in the configuration (`source:`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SourceConfig {
    /// A Kafka consumer group (with its dead-letter topic).
    Kafka(KafkaSourceConfig),
}

impl SourceConfig {
    /// Checks the settings that need no network or secret.
    pub fn validate(&self) -> Result<()> {
        match self {
            SourceConfig::Kafka(k) => k.validate(),
        }
    }

    /// Reads the secret settings (`{ env }` / `{ file }`) and checks them.
    pub fn check_secrets(&self) -> Result<()> {
        match self {
            SourceConfig::Kafka(k) => k.check_secrets(),
        }
    }

    /// Starts the source.
    pub fn build(&self, context: &SourceContext<'_>) -> Result<Box<dyn Source>> {
        match self {
            SourceConfig::Kafka(k) => {
                Ok(Box::new(KafkaSource::start(k, Arc::clone(&context.progress) as Arc<dyn RevokeHook>, context.registry)?))
            }
        }
    }
}
