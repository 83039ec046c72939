//! The Kafka source: one consumer in a consumer group, drained into batches.
//!
//! Offsets: librdkafka's auto-commit and auto-store are off. The engine calls
//! [`KafkaHandle::applied`] (through [`crate::source::SourceHandle`]) with the highest offset per partition of every
//! batch once that batch is applied to the windows (batches are applied in
//! the order they were polled, so this is a low-water mark across shards);
//! [`KafkaSource::commit`] commits those positions. Before partitions are
//! revoked, the [`RevokeHook`] lets the engine apply everything already
//! handed over, the source commits synchronously, and the next poll reports
//! [`PollOutcome::Revoked`] so the caller drops what it polled but has not
//! handed over (the new owner reads it again from the committed offset).
//!
//! Seeking ([`Source::seek`]): the positions are kept, and when a partition
//! with one is assigned its fetch starts right after it (the offset is set
//! in the assignment before librdkafka applies it), instead of at the
//! group's committed offset.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::{ClientContext, Message as _};
use serde::{Deserialize, Serialize};

use crate::source::{Batch, Feed, Position, Source, SourceHandle, SourceStats};
use crate::{Error, Result};
use crate::{HumanDuration, SecretValue};

fn default_commit_interval() -> HumanDuration {
    HumanDuration::from_secs(1)
}
fn default_batch_wait() -> HumanDuration {
    HumanDuration::from_millis(100)
}
fn commit_interval<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<HumanDuration, D::Error> {
    crate::duration::named(d, "commit_interval")
}
fn batch_wait<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<HumanDuration, D::Error> {
    crate::duration::named(d, "batch_wait")
}

/// Kafka source settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSourceConfig {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// Topics to subscribe to (prediction events).
    pub topics: Vec<String>,
    /// Topics of label events (ground truth for models with `quality`),
    /// consumed by the same consumer group; their offsets are committed by
    /// the same rule as the predictions'.
    #[serde(default)]
    pub label_topics: Vec<String>,
    /// Consumer group.
    pub group_id: String,
    /// librdkafka consumer settings passed through (`security.protocol`,
    /// `sasl.*`, `ssl.*`, `fetch.*`, `session.timeout.ms` …).
    #[serde(default)]
    pub options: BTreeMap<String, SecretValue>,
    /// How often applied offsets are committed (`"1s"`).
    #[serde(default = "default_commit_interval", deserialize_with = "commit_interval")]
    pub commit_interval: HumanDuration,
    /// Longest wait for a batch to fill before it is handed to a shard (`"100ms"`).
    #[serde(default = "default_batch_wait", deserialize_with = "batch_wait")]
    pub batch_wait: HumanDuration,
    /// Topic that receives unusable messages (original bytes; source topic,
    /// partition, offset and reason in headers).
    #[serde(default)]
    pub dead_letter_topic: Option<String>,
}

impl KafkaSourceConfig {
    /// Checks the values without connecting.
    pub fn validate(&self) -> Result<()> {
        if self.topics.is_empty() {
            return Err(Error::Config { field: "topics", message: "at least one topic".into() });
        }
        if let Some(t) = self.label_topics.iter().find(|t| self.topics.contains(t)) {
            return Err(Error::Config {
                field: "label_topics",
                message: format!("{t:?} is in `topics` too: a topic carries predictions or labels, not both"),
            });
        }
        if self.label_topics.iter().any(|t| t.is_empty() || t.starts_with('^')) {
            return Err(Error::Config {
                field: "label_topics",
                message: "topic names, not empty and not patterns (`^…`): label messages are told apart by their topic's name".into(),
            });
        }
        if self.group_id.is_empty() {
            return Err(Error::Config { field: "group_id", message: "must not be empty".into() });
        }
        super::check_owned(&self.options, super::OWNED_CONSUMER)
    }

    /// Reads the secret options (`{ env }`, `{ file }`) and has librdkafka
    /// check every setting, as starting the source does.
    pub fn check_secrets(&self) -> Result<()> {
        super::client_config(&self.brokers, &self.options, super::OWNED_CONSUMER).map(|_| ())
    }
}

/// A message as polled.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// The payload (empty for a tombstone).
    pub payload: &'a [u8],
    /// The partition's slot (see [`KafkaHandle::partition`]).
    pub slot: u32,
    /// The offset.
    pub offset: i64,
    /// The message timestamp (ms), if the broker sent one.
    pub timestamp_ms: Option<i64>,
    /// Whether it comes from one of `label_topics`.
    pub label: bool,
}

/// What a poll did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollOutcome {
    /// `n` messages were handed to the callback.
    Messages(usize),
    /// Partitions were revoked (their applied offsets are committed): drop
    /// anything polled from these slots and not yet handed to the engine.
    Revoked(Vec<u32>),
}

/// Called on the polling thread before partitions are revoked.
pub trait RevokeHook: Send + Sync + 'static {
    /// Returns once every batch handed to the engine so far is applied.
    fn drain(&self);
}

/// Metric handles of the source.
#[derive(Debug, Clone)]
struct SourceMetrics {
    lag: IntGaugeVec,
    assigned: IntGaugeVec,
    errors: IntCounterVec,
    commits: IntCounterVec,
}

#[derive(Debug, Default)]
struct Slots {
    list: Vec<(String, i32)>,
    index: HashMap<(String, i32), u32>,
}

#[derive(Debug)]
struct Shared {
    slots: Mutex<Slots>,
    /// Next offset to commit per slot (highest applied + 1).
    applied: Mutex<HashMap<u32, i64>>,
    committed: Mutex<HashMap<u32, i64>>,
    assigned: Mutex<BTreeSet<u32>>,
    revoked: Mutex<Vec<u32>>,
    /// Set with `revoked`, so the poll loop checks a flag, not a lock, per message.
    revoke_pending: AtomicBool,
    brokers_up: AtomicBool,
    /// Milliseconds since `started` of the last statistics report.
    last_stats_ms: AtomicU64,
    started: Instant,
    last_error: Mutex<Option<String>>,
    /// Where a seek asked each partition to start: the next offset to fetch.
    start_at: Mutex<HashMap<(String, i32), i64>>,
    metrics: SourceMetrics,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not take the source down with it: the data is plain maps.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    fn slot(&self, topic: &str, partition: i32) -> u32 {
        let mut s = lock(&self.slots);
        if let Some(&i) = s.index.get(&(topic.to_owned(), partition)) {
            return i;
        }
        let i = s.list.len() as u32;
        s.list.push((topic.to_owned(), partition));
        s.index.insert((topic.to_owned(), partition), i);
        i
    }

    fn name(&self, slot: u32) -> Option<(String, i32)> {
        lock(&self.slots).list.get(slot as usize).cloned()
    }

    /// The applied positions not yet committed, as a partition list.
    fn to_commit(&self, only: Option<&BTreeSet<u32>>) -> (TopicPartitionList, Vec<(u32, i64)>) {
        let applied = lock(&self.applied);
        let committed = lock(&self.committed);
        let mut tpl = TopicPartitionList::new();
        let mut marks = Vec::new();
        for (&slot, &next) in applied.iter() {
            if only.is_some_and(|o| !o.contains(&slot)) || committed.get(&slot).is_some_and(|&c| c >= next) {
                continue;
            }
            if let Some((topic, partition)) = self.name(slot) {
                if tpl.add_partition_offset(&topic, partition, Offset::Offset(next)).is_ok() {
                    marks.push((slot, next));
                }
            }
        }
        (tpl, marks)
    }
}

/// The engine's view of a running source (cheap to clone, thread-safe).
#[derive(Debug, Clone)]
pub struct KafkaHandle {
    shared: Arc<Shared>,
}

impl KafkaHandle {
    /// Records that every message up to `offset` of each slot is applied.
    pub fn applied(&self, positions: &[(u32, i64)]) {
        let mut applied = lock(&self.shared.applied);
        for &(slot, offset) in positions {
            let next = applied.entry(slot).or_insert(offset + 1);
            *next = (*next).max(offset + 1);
        }
    }

    /// The topic and partition of a slot.
    pub fn partition(&self, slot: u32) -> Option<(String, i32)> {
        self.shared.name(slot)
    }

    /// Slots currently assigned to this consumer.
    pub fn assigned(&self) -> Vec<u32> {
        lock(&self.shared.assigned).iter().copied().collect()
    }

    /// Total consumer lag over assigned partitions, from the last statistics report.
    pub fn lag(&self) -> i64 {
        let assigned = self.assigned();
        let Some(names): Option<Vec<(String, i32)>> = assigned.iter().map(|&s| self.shared.name(s)).collect() else {
            return 0;
        };
        names
            .iter()
            .filter_map(|(t, p)| self.shared.metrics.lag.get_metric_with_label_values(&[t, &p.to_string()]).ok())
            .map(|g| g.get().max(0))
            .sum()
    }

    /// `Ok` when a broker is up and partitions are assigned; else why not.
    pub fn ready(&self) -> std::result::Result<(), String> {
        let since_stats = self.shared.started.elapsed().as_millis() as u64 - self.shared.last_stats_ms.load(Ordering::Relaxed);
        if !self.shared.brokers_up.load(Ordering::Relaxed) || since_stats > 30_000 {
            let why = lock(&self.shared.last_error).clone().unwrap_or_else(|| "no broker connection yet".into());
            return Err(format!("kafka: {why}"));
        }
        if lock(&self.shared.assigned).is_empty() {
            return Err("kafka: no partitions assigned (joining the group)".into());
        }
        Ok(())
    }
}

impl SourceHandle for KafkaHandle {
    fn applied(&self, positions: &[(u32, i64)]) {
        KafkaHandle::applied(self, positions);
    }

    fn stream(&self, slot: u32) -> Option<(String, i32)> {
        self.partition(slot)
    }

    fn positions(&self) -> Vec<Position> {
        let applied = lock(&self.shared.applied).clone();
        let mut positions: Vec<Position> = applied
            .into_iter()
            .filter_map(|(slot, next)| self.shared.name(slot).map(|(stream, partition)| Position { stream, partition, offset: next - 1 }))
            .collect();
        positions.sort();
        positions
    }

    fn lag(&self) -> Option<i64> {
        Some(KafkaHandle::lag(self))
    }

    fn ready(&self) -> std::result::Result<(), String> {
        KafkaHandle::ready(self)
    }
}

struct SourceContext {
    shared: Arc<Shared>,
    hook: Arc<dyn RevokeHook>,
}

/// Logs at most one line per 10 s per process for repeated failures (a
/// broker that is down must not flood the log).
pub(crate) fn log_rate_limited(line: &str) {
    static LAST: OnceLock<Mutex<Option<Instant>>> = OnceLock::new();
    let mut last = lock(LAST.get_or_init(|| Mutex::new(None)));
    if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
        *last = Some(Instant::now());
        tracing::warn!("{line}");
    }
}

fn error_kind(e: &KafkaError) -> &'static str {
    match e.rdkafka_error_code() {
        Some(RDKafkaErrorCode::AllBrokersDown) => "all_brokers_down",
        Some(RDKafkaErrorCode::BrokerTransportFailure) => "transport",
        Some(RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed) => "authentication",
        Some(RDKafkaErrorCode::SSL) => "tls",
        Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic) => "unknown_topic",
        _ => "other",
    }
}

impl ClientContext for SourceContext {
    fn stats(&self, stats: Statistics) {
        let s = &self.shared;
        s.last_stats_ms.store(s.started.elapsed().as_millis() as u64, Ordering::Relaxed);
        let up = stats.brokers.values().any(|b| b.state == "UP");
        s.brokers_up.store(up, Ordering::Relaxed);
        let assigned = lock(&s.assigned).clone();
        for (topic, t) in &stats.topics {
            for (&partition, p) in &t.partitions {
                if partition < 0 || !assigned.contains(&s.slot(topic, partition)) {
                    continue;
                }
                // consumer_lag is -1 until the first fetch reports a high watermark.
                if p.consumer_lag >= 0 {
                    s.metrics.lag.with_label_values(&[topic, &partition.to_string()]).set(p.consumer_lag);
                }
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let kind = error_kind(&error);
        self.shared.metrics.errors.with_label_values(&[kind]).inc();
        if kind == "all_brokers_down" {
            self.shared.brokers_up.store(false, Ordering::Relaxed);
        }
        *lock(&self.shared.last_error) = Some(format!("{error}: {reason}"));
        log_rate_limited(&format!("kafka source: {error}: {reason} (retrying)"));
    }

    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, line: &str) {
        if (level as i32) <= (rdkafka::config::RDKafkaLogLevel::Warning as i32) {
            log_rate_limited(&format!("librdkafka {fac}: {line}"));
        }
    }
}

impl ConsumerContext for SourceContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            // A seek: start each partition that has a position right after it.
            // The offsets are set in the list librdkafka assigns next.
            let start_at = lock(&self.shared.start_at);
            for mut e in tpl.elements() {
                if let Some(&next) = start_at.get(&(e.topic().to_owned(), e.partition())) {
                    if let Err(error) = e.set_offset(Offset::Offset(next)) {
                        log_rate_limited(&format!("kafka source: cannot start {}/{} at {next}: {error}", e.topic(), e.partition()));
                    }
                }
            }
            return;
        }
        let Rebalance::Revoke(tpl) = rebalance else { return };
        let slots: BTreeSet<u32> = tpl.elements().iter().map(|e| self.shared.slot(e.topic(), e.partition())).collect();
        // Everything handed over is applied before the partitions go, so
        // their committed offsets cover exactly what the windows hold.
        self.hook.drain();
        // The revoked slots' bookkeeping is dropped below, so the marks are not needed.
        let (list, _marks) = self.shared.to_commit(Some(&slots));
        if list.count() > 0 {
            match consumer.commit(&list, CommitMode::Sync) {
                Ok(()) => self.shared.metrics.commits.with_label_values(&["ok"]).inc(),
                Err(e) => {
                    self.shared.metrics.commits.with_label_values(&["failed"]).inc();
                    log_rate_limited(&format!("kafka source: commit before revoke failed: {e}"));
                }
            }
        }
        let mut applied = lock(&self.shared.applied);
        let mut committed = lock(&self.shared.committed);
        let mut assigned = lock(&self.shared.assigned);
        for &slot in &slots {
            applied.remove(&slot);
            committed.remove(&slot);
            assigned.remove(&slot);
            if let Some((topic, partition)) = self.shared.name(slot) {
                let labels = [topic.as_str(), &partition.to_string()];
                let _gone = self.shared.metrics.lag.remove_label_values(&labels);
                let _gone = self.shared.metrics.assigned.remove_label_values(&labels);
            }
        }
        lock(&self.shared.revoked).extend(slots);
        self.shared.revoke_pending.store(true, Ordering::Release);
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            let mut assigned = lock(&self.shared.assigned);
            for e in tpl.elements() {
                assigned.insert(self.shared.slot(e.topic(), e.partition()));
                self.shared.metrics.assigned.with_label_values(&[e.topic(), &e.partition().to_string()]).set(1);
            }
        }
    }
}

/// Per topic, as the polling thread caches it: whether it is a label topic,
/// and its partitions' slots.
#[derive(Debug, Default)]
struct TopicSlots {
    label: bool,
    partitions: HashMap<i32, u32>,
}

/// The slot of a partition and whether its topic carries labels, from the
/// polling thread's cache (the shared table is consulted once per partition).
fn cached_slot(
    cache: &mut HashMap<String, TopicSlots>,
    label_topics: &[String],
    shared: &Shared,
    topic: &str,
    partition: i32,
) -> (u32, bool) {
    if let Some(t) = cache.get(topic) {
        if let Some(&slot) = t.partitions.get(&partition) {
            return (slot, t.label);
        }
    }
    let slot = shared.slot(topic, partition);
    let t = cache
        .entry(topic.to_owned())
        .or_insert_with(|| TopicSlots { label: label_topics.iter().any(|l| l == topic), partitions: HashMap::new() });
    t.partitions.insert(partition, slot);
    (slot, t.label)
}

/// A running consumer.
pub struct KafkaSource {
    consumer: BaseConsumer<SourceContext>,
    shared: Arc<Shared>,
    /// Slots seen by this thread: topic → partition → slot (hot path: no lock, no allocation on a hit).
    slots: HashMap<String, TopicSlots>,
    label_topics: Vec<String>,
    topics: Vec<String>,
    commit_interval: Duration,
    batch_wait: Duration,
    last_commit: Instant,
}

impl std::fmt::Debug for KafkaSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSource").finish_non_exhaustive()
    }
}

impl KafkaSource {
    /// Creates the consumer and subscribes (the group join happens in the background).
    pub fn start(config: &KafkaSourceConfig, hook: Arc<dyn RevokeHook>, registry: &Registry) -> Result<Self> {
        config.validate()?;
        let metrics = SourceMetrics {
            lag: IntGaugeVec::new(
                Opts::new(
                    "driftwatch_source_consumer_lag_messages",
                    "Messages behind the partition's high watermark (librdkafka statistics)",
                ),
                &["topic", "partition"],
            )?,
            assigned: IntGaugeVec::new(
                Opts::new("driftwatch_source_partition_assigned", "1 for each partition assigned to this consumer"),
                &["topic", "partition"],
            )?,
            errors: IntCounterVec::new(
                Opts::new("driftwatch_source_errors_total", "Client errors reported by librdkafka, by kind"),
                &["kind"],
            )?,
            commits: IntCounterVec::new(Opts::new("driftwatch_source_commits_total", "Offset commits, by outcome"), &["outcome"])?,
        };
        registry.register(Box::new(metrics.lag.clone()))?;
        registry.register(Box::new(metrics.assigned.clone()))?;
        registry.register(Box::new(metrics.errors.clone()))?;
        registry.register(Box::new(metrics.commits.clone()))?;
        let shared = Arc::new(Shared {
            slots: Mutex::new(Slots::default()),
            applied: Mutex::new(HashMap::new()),
            committed: Mutex::new(HashMap::new()),
            assigned: Mutex::new(BTreeSet::new()),
            revoked: Mutex::new(Vec::new()),
            revoke_pending: AtomicBool::new(false),
            brokers_up: AtomicBool::new(false),
            last_stats_ms: AtomicU64::new(0),
            started: Instant::now(),
            last_error: Mutex::new(None),
            start_at: Mutex::new(HashMap::new()),
            metrics,
        });
        let mut c = super::client_config(&config.brokers, &config.options, super::OWNED_CONSUMER)?;
        c.set("group.id", &config.group_id).set("enable.auto.commit", "false").set("enable.auto.offset.store", "false");
        // Defaults a user's `options` override. librdkafka's own
        // `fetch.queue.backoff.ms` (1 000 ms) pauses fetching a partition for
        // a whole second whenever its prefetch queue is full, which is the
        // steady state when the engine, not the broker, is the bottleneck:
        // measured, it cost a quarter of end-to-end throughput.
        for (k, v) in [("statistics.interval.ms", "1000"), ("auto.offset.reset", "earliest"), ("fetch.queue.backoff.ms", "50")] {
            if !config.options.contains_key(k) {
                c.set(k, v);
            }
        }
        let consumer: BaseConsumer<SourceContext> = c
            .create_with_context(SourceContext { shared: Arc::clone(&shared), hook })
            .map_err(|source| super::client_error("creating the consumer", source))?;
        let topics: Vec<&str> = config.topics.iter().chain(&config.label_topics).map(String::as_str).collect();
        consumer.subscribe(&topics).map_err(|source| Error::Kafka { what: "subscribing", source })?;
        Ok(Self {
            consumer,
            shared,
            slots: HashMap::new(),
            label_topics: config.label_topics.clone(),
            topics: config.topics.clone(),
            commit_interval: config.commit_interval.get(),
            batch_wait: config.batch_wait.get(),
            last_commit: Instant::now(),
        })
    }

    /// The engine's handle.
    pub fn kafka_handle(&self) -> KafkaHandle {
        KafkaHandle { shared: Arc::clone(&self.shared) }
    }

    /// Drains up to `max` messages from librdkafka's prefetch queue (which
    /// fetches in batches), waiting at most `wait` in all; commits applied
    /// offsets when the commit interval has passed.
    pub fn poll(&mut self, max: usize, wait: Duration, mut f: impl FnMut(Message<'_>)) -> PollOutcome {
        let deadline = Instant::now() + wait;
        let mut n = 0;
        while n < max {
            let left = deadline.saturating_duration_since(Instant::now());
            let polled = self.consumer.poll(if n == 0 { left } else { left.min(Duration::from_millis(1)) });
            if self.shared.revoke_pending.swap(false, Ordering::AcqRel) {
                let revoked = std::mem::take(&mut *lock(&self.shared.revoked));
                if !revoked.is_empty() {
                    return PollOutcome::Revoked(revoked);
                }
            }
            match polled {
                None if left.is_zero() || n > 0 => break,
                None => continue,
                Some(Err(e)) => {
                    // Per-message errors (partition EOF is off by default) are logged, never fatal.
                    self.shared.metrics.errors.with_label_values(&[error_kind(&e)]).inc();
                    log_rate_limited(&format!("kafka source: {e}"));
                }
                Some(Ok(m)) => {
                    let (slot, label) = cached_slot(&mut self.slots, &self.label_topics, &self.shared, m.topic(), m.partition());
                    f(Message {
                        payload: m.payload().unwrap_or_default(),
                        slot,
                        offset: m.offset(),
                        timestamp_ms: m.timestamp().to_millis(),
                        label,
                    });
                    n += 1;
                }
            }
            if Instant::now() >= deadline {
                break;
            }
        }
        if self.last_commit.elapsed() >= self.commit_interval {
            self.commit(CommitMode::Async);
        }
        PollOutcome::Messages(n)
    }

    /// Commits the applied offsets of assigned partitions.
    pub fn commit(&mut self, mode: CommitMode) {
        self.last_commit = Instant::now();
        let assigned = lock(&self.shared.assigned).clone();
        let (list, marks) = self.shared.to_commit(Some(&assigned));
        if list.count() == 0 {
            return;
        }
        match self.consumer.commit(&list, mode) {
            Ok(()) => {
                self.shared.metrics.commits.with_label_values(&["ok"]).inc();
                lock(&self.shared.committed).extend(marks);
            }
            Err(e) => {
                self.shared.metrics.commits.with_label_values(&["failed"]).inc();
                log_rate_limited(&format!("kafka source: commit failed: {e} (retrying at the next interval)"));
            }
        }
    }

    /// Final synchronous commit, then leaves the group.
    pub fn close(mut self) {
        self.commit(CommitMode::Sync);
        self.consumer.unsubscribe();
    }
}

impl Source for KafkaSource {
    fn name(&self) -> String {
        match self.label_topics.as_slice() {
            [] => format!("kafka topics {:?}", self.topics),
            labels => format!("kafka topics {:?} (labels {labels:?})", self.topics),
        }
    }

    fn bounded(&self) -> bool {
        false
    }

    fn handle(&self) -> Arc<dyn SourceHandle> {
        Arc::new(self.kafka_handle())
    }

    fn seek(&mut self, positions: &[Position]) -> Result<()> {
        let subscribed = |t: &str| self.topics.iter().chain(&self.label_topics).any(|s| s == t);
        let mut start_at = lock(&self.shared.start_at);
        for p in positions.iter().filter(|p| subscribed(&p.stream)) {
            if p.offset < -1 || p.partition < 0 {
                return Err(Error::Config {
                    field: "seek",
                    message: format!("{}/{}: offset {} is not a position", p.stream, p.partition, p.offset),
                });
            }
            start_at.insert((p.stream.clone(), p.partition), p.offset + 1);
        }
        Ok(())
    }

    /// Polls into batches and hands them over in turn; on stop, hands over
    /// the last batch, waits until everything is applied, commits and leaves
    /// the group.
    fn run(mut self: Box<Self>, feed: &mut Feed<'_>) -> Result<SourceStats> {
        let (batch_events, max, batch_wait) = (feed.batch_events(), feed.max_event_bytes(), self.batch_wait);
        let mut batch: Batch = feed.batch();
        let mut first_at: Option<Instant> = None;
        while !feed.stopped() {
            let wait = first_at.map_or(batch_wait, |t| batch_wait.saturating_sub(t.elapsed()));
            let room = batch_events - batch.len();
            match self.poll(room, wait, |m| batch.push_message(m.payload, m.slot, m.offset, max, m.label)) {
                PollOutcome::Revoked(slots) => batch.retain_partitions(|s| !slots.contains(&s)),
                PollOutcome::Messages(_) => {}
            }
            if !batch.is_empty() && first_at.is_none() {
                first_at = Some(Instant::now());
            }
            let due = first_at.is_some_and(|t| t.elapsed() >= batch_wait);
            if batch.len() >= batch_events || (due && !batch.is_empty()) {
                let next = feed.batch();
                if !feed.send(std::mem::replace(&mut batch, next)) {
                    break; // the window stage stopped (an error): leave without committing more
                }
                first_at = None;
            }
        }
        if !batch.is_empty() {
            feed.send(batch);
        }
        if !feed.progress().wait_applied(Duration::from_secs(60)) {
            tracing::warn!("shutdown: batches still in flight after 60 s; committing what was applied");
        }
        self.close();
        Ok(SourceStats::default())
    }
}
