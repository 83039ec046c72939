//! The most memory a configuration's queues, batches and sketches can hold,
//! computed before anything runs (`driftwatch validate` prints it).
//!
//! Each part is bounded by construction: the reader and the shards recycle a
//! fixed number of batches, a window holds a fixed number of panes, and every
//! sketch has a fixed shape ([`driftwatch_detectors::feature::NumericSketchConfig::max_window_bytes`],
//! [`CategoryCounts::max_size_bytes`]). Two inputs are not in the
//! configuration, so the figures state them: the size of an event (input
//! batches are shown at 1 KiB per event and at `engine.max_event_bytes`) and
//! the length of a category name ([`NAME_BYTES`]).

use std::fmt;

use driftwatch_detectors::sketch::{CategoryCounts, Sketch as _};

use crate::config::{Config, FeatureType, QualityTask, WindowSpec};
use crate::model::{ColumnReference, ModelPlan, ModelProfile, Plan};
use crate::quality::PANE_SCORE_CAPACITY;
use crate::window::MAX_SPARE_PANES;

/// The category name length the figures assume.
pub const NAME_BYTES: usize = 32;

/// The event size the "typical" input figure assumes.
pub const TYPICAL_EVENT_BYTES: u64 = 1 << 10;

/// Bytes held by one model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelMemory {
    /// The model.
    pub name: String,
    /// Stores of its window: panes in the ring, open panes, spare panes and
    /// the running window.
    pub window_stores: u64,
    /// Their sketches at their fullest.
    pub window_bytes: u64,
    /// The reference's sketches (the profile as built, or its bound for a
    /// baseline from the stream).
    pub reference_bytes: u64,
    /// Raw values a stream baseline collects before it is built (0 without).
    pub baseline_bytes: u64,
    /// The label join of a model with `quality` (0 without): the join store
    /// and the held early labels at `max_pending` each, and the held scores.
    pub quality_bytes: u64,
}

/// Bytes per pending prediction in the join store: its 40-byte slot, the
/// hash index at its largest load (8-byte entries at 7/8 of a power of two)
/// and an id of [`NAME_BYTES`].
const JOIN_SLOT_BYTES: u64 = 40 + 17 + NAME_BYTES as u64;

/// Bytes per held early label: a map entry (id, label, time) with its
/// control byte at 7/8 load, the arrival-order entry, and two copies of
/// an id of [`NAME_BYTES`].
const EARLY_LABEL_BYTES: u64 = 38 + 24 + 2 * NAME_BYTES as u64;

/// Bytes per joined label of a window still taking labels: its score in
/// its pane and in the merged window an evaluation builds.
const HELD_SCORE_BYTES: u64 = 16;

/// The worst-case memory of a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryBound {
    /// Shard threads assumed.
    pub shards: usize,
    /// Events per batch.
    pub batch_events: usize,
    /// Input batches alive at once (queued, being read and being decoded).
    pub input_batches: u64,
    /// Their bytes at [`TYPICAL_EVENT_BYTES`] per event.
    pub input_typical: u64,
    /// Their bytes with every event at `engine.max_event_bytes`.
    pub input_max: u64,
    /// Decoded column batches alive at once (queued for the window stage,
    /// waiting for their turn, and being filled), each with rows for every
    /// model.
    pub decoded_batches: u64,
    /// Their bytes (values, timestamps and versions; category text at
    /// [`NAME_BYTES`] a value).
    pub decoded_bytes: u64,
    /// Per model.
    pub models: Vec<ModelMemory>,
}

impl MemoryBound {
    /// The bound for `config` and `plan` with `shards` shard threads;
    /// `references` are the built references (`None` for a baseline model),
    /// in plan order.
    pub fn new(config: &Config, plan: &Plan, references: &[Option<ModelProfile>], shards: usize) -> Self {
        let shards = shards.max(1);
        let engine = &config.engine;
        let (queue, batch_events) = (engine.queue_batches as u64, engine.batch_events as u64);
        let n = shards as u64;
        // The pools the shards recycle through (`Shards::start`): a batch
        // queued at each shard, one being decoded by each, the one the reader
        // fills and one more in hand.
        let input_batches = n * (queue + 1) + 2;
        // A shard may be up to one read (4 MiB) past its batch when it cuts it.
        let read = 4u64 << 20;
        let input = |event: u64| input_batches.saturating_mul(batch_events.saturating_mul(event).saturating_add(read));
        let decoded_batches = n * (2 * queue + 1) + 1;
        let rows: u64 = plan.models.iter().map(|m| batch_events.saturating_mul(row_bytes(m))).sum();
        // Each shard also stages one batch of numbers per model.
        let staged: u64 = plan.models.iter().map(|m| batch_events.saturating_mul(8 * numeric_columns(m))).sum();
        let models = plan
            .models
            .iter()
            .zip(references.iter().map(Some).chain(std::iter::repeat(None)))
            .map(|(m, r)| model_memory(m, r.and_then(Option::as_ref)))
            .collect();
        Self {
            shards,
            batch_events: engine.batch_events,
            input_batches,
            input_typical: input(TYPICAL_EVENT_BYTES),
            input_max: input(engine.max_event_bytes as u64),
            decoded_batches,
            decoded_bytes: decoded_batches.saturating_mul(rows).saturating_add(n.saturating_mul(staged)),
            models,
        }
    }

    /// Everything but the input batches.
    fn state_bytes(&self) -> u64 {
        self.models
            .iter()
            .map(|m| m.window_bytes.saturating_add(m.reference_bytes).saturating_add(m.baseline_bytes).saturating_add(m.quality_bytes))
            .fold(self.decoded_bytes, u64::saturating_add)
    }

    /// The total at [`TYPICAL_EVENT_BYTES`] per event.
    pub fn total_typical(&self) -> u64 {
        self.state_bytes().saturating_add(self.input_typical)
    }

    /// The total with every event at `engine.max_event_bytes`.
    pub fn total_max(&self) -> u64 {
        self.state_bytes().saturating_add(self.input_max)
    }
}

fn numeric_columns(m: &ModelPlan) -> u64 {
    m.columns.iter().filter(|c| c.kind == FeatureType::Numeric).count() as u64
}

/// Bytes of one decoded row of `m`: 8 per number, a 24-byte text range and
/// [`NAME_BYTES`] of text per category, a timestamp and a version index.
fn row_bytes(m: &ModelPlan) -> u64 {
    let categorical = m.columns.len() as u64 - numeric_columns(m);
    8 * numeric_columns(m) + categorical * (24 + NAME_BYTES as u64) + 16 + 4
}

fn model_memory(m: &ModelPlan, reference: Option<&ModelProfile>) -> ModelMemory {
    let panes = m.window_panes();
    // Events one pane and the whole window can hold (unbounded in event time).
    let (pane_events, window_events, open) = match m.window {
        WindowSpec::Count { slide, panes } => (slide, slide.saturating_mul(panes), 1),
        // Panes from the watermark's to the newest event's are open at once.
        WindowSpec::Time { slide_ms, lateness_ms, .. } => (u64::MAX, u64::MAX, lateness_ms.div_ceil(slide_ms.max(1)) + 2),
    };
    let pane_stores = panes + open + MAX_SPARE_PANES as u64;
    let mut window_bytes = 0u64;
    let mut reference_bytes = 0u64;
    for (i, c) in m.columns.iter().enumerate() {
        let profile = reference.and_then(|r| r.columns.get(i));
        let (pane, window, built) = match c.kind {
            FeatureType::Numeric => (
                m.window_sketch.max_window_bytes(pane_events),
                m.window_sketch.max_window_bytes(window_events),
                match profile.map(|p| &p.reference) {
                    Some(ColumnReference::Numeric { reference }) => reference.window.size_bytes(),
                    _ => m.reference_sketch.max_window_bytes(m.baseline_events.unwrap_or(u64::MAX)),
                },
            ),
            FeatureType::Categorical => {
                let reference_names = match profile.map(|p| &p.reference) {
                    Some(ColumnReference::Categorical { counts, .. }) => counts.distinct(),
                    _ => c.max_categories,
                };
                // Room for the reference's names and the cap in every pane.
                let room = reference_names.saturating_add(c.max_categories.saturating_mul(panes as usize));
                let names = |events: u64| room.min(reference_names.saturating_add(usize::try_from(events).unwrap_or(usize::MAX)));
                let built = match profile.map(|p| &p.reference) {
                    Some(ColumnReference::Categorical { counts, .. }) => counts.size_bytes(),
                    _ => CategoryCounts::max_size_bytes(c.max_categories, NAME_BYTES),
                };
                (
                    CategoryCounts::max_size_bytes(names(pane_events), NAME_BYTES),
                    CategoryCounts::max_size_bytes(names(window_events), NAME_BYTES),
                    built,
                )
            }
        };
        window_bytes = window_bytes.saturating_add((pane as u64).saturating_mul(pane_stores)).saturating_add(window as u64);
        reference_bytes = reference_bytes.saturating_add(built as u64);
    }
    // A baseline keeps its raw values until it is built: an optional number
    // (16 bytes) or an optional name (24 bytes and the text) per value.
    let baseline_bytes = match (reference, m.baseline_events) {
        (None, Some(events)) => {
            let categorical = m.columns.len() as u64 - numeric_columns(m);
            events.saturating_mul(16 * numeric_columns(m) + categorical * (24 + NAME_BYTES as u64))
        }
        _ => 0,
    };
    // Joined predictions stay in the store until their window is final, so
    // the held scores are bounded by `max_pending` too.
    // The estimate holds the calibrated probabilities of the panes of the
    // newest window and the open ones (exact up to a capacity per pane, in
    // vectors that grow by doubling), and merges and sorts a window's worth
    // when one closes.
    let estimate_bytes = m.quality.as_ref().filter(|q| !q.estimated.is_empty()).map_or(0, |_| {
        let cap = PANE_SCORE_CAPACITY as u64;
        let per_pane = pane_events.min(cap).next_power_of_two();
        let merged = window_events.min(cap).next_power_of_two();
        (panes + open).saturating_mul(per_pane).saturating_add(2 * merged).saturating_mul(8)
    });
    let quality_bytes = m
        .quality
        .as_ref()
        .map_or(0, |q| (q.max_pending as u64).saturating_mul(JOIN_SLOT_BYTES + EARLY_LABEL_BYTES + HELD_SCORE_BYTES))
        .saturating_add(estimate_bytes)
        // A regression's label drift keeps the values of the joined labels of the panes still held (about
        // `max_pending`, as the realised scores; at most PANE_LABEL_CAPACITY a pane) and the reference's labels.
        .saturating_add(
            m.quality
                .as_ref()
                .filter(|q| q.label_drift.is_some() && q.task == QualityTask::Regression)
                .map_or(0, |q| 8 * (q.max_pending as u64).saturating_add(reference.map_or(0, |r| r.rows))),
        );
    ModelMemory { name: m.name.clone(), window_stores: pane_stores + 1, window_bytes, reference_bytes, baseline_bytes, quality_bytes }
}

/// Bytes in binary units (`512 B`, `1.5 KiB`, `3.2 GiB`).
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

impl fmt::Display for MemoryBound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "worst-case memory with {} shard{} (engine.shards, default the cores), batches of {} events:",
            self.shards,
            if self.shards == 1 { "" } else { "s" },
            self.batch_events
        )?;
        writeln!(
            f,
            "  input batches    {:>10} at 1 KiB an event, {} with every event at engine.max_event_bytes ({} batches)",
            human_bytes(self.input_typical),
            human_bytes(self.input_max),
            self.input_batches
        )?;
        writeln!(f, "  decoded batches  {:>10} ({} batches of column rows)", human_bytes(self.decoded_bytes), self.decoded_batches)?;
        for m in &self.models {
            writeln!(
                f,
                "  model {:<10} {:>10} window ({} stores), {} reference{}",
                m.name,
                human_bytes(m.window_bytes),
                m.window_stores,
                human_bytes(m.reference_bytes),
                if m.baseline_bytes > 0 { format!(", {} baseline values", human_bytes(m.baseline_bytes)) } else { String::new() }
            )?;
            if m.quality_bytes > 0 {
                writeln!(
                    f,
                    "        {:<10} {:>10} label join (quality.max_pending predictions and early labels; the estimate's scores)",
                    "",
                    human_bytes(m.quality_bytes)
                )?;
            }
        }
        write!(
            f,
            "  total            {:>10} at 1 KiB an event, {} at engine.max_event_bytes (category names of {NAME_BYTES} bytes)",
            human_bytes(self.total_typical()),
            human_bytes(self.total_max())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound(yaml: &str, shards: usize) -> MemoryBound {
        let config = Config::from_yaml(yaml).unwrap();
        let plan = Plan::new(&config).unwrap();
        MemoryBound::new(&config, &plan, &[], shards)
    }

    fn yaml(engine: &str, features: usize, window: &str) -> String {
        let features: String = (0..features).map(|i| format!("      - {{ name: f{i}, type: numeric }}\n")).collect();
        format!(
            "engine: {engine}\nmodels:\n  - name: m\n    reference: {{ baseline_events: 1000 }}\n    window: {window}\n    features:\n{features}    detectors:\n      - {{ metric: psi, threshold: 0.2 }}\n"
        )
    }

    #[test]
    fn decoded_batches_grow_with_features_batch_and_shards() {
        let small = bound(&yaml("{ batch_events: 64 }", 5_000, "{ type: tumbling, events: 1000 }"), 2);
        let large = bound(&yaml("{ batch_events: 512 }", 5_000, "{ type: tumbling, events: 1000 }"), 2);
        // 2 shards, 4 queued: 19 decoded batches of 512 rows × 5 000 numbers.
        assert_eq!(large.decoded_batches, 19);
        assert!(large.decoded_bytes >= 19 * 512 * 5_000 * 8, "{}", large.decoded_bytes);
        assert_eq!(large.decoded_bytes, 8 * small.decoded_bytes);
        let more_shards = bound(&yaml("{ batch_events: 512 }", 5_000, "{ type: tumbling, events: 1000 }"), 8);
        assert!(more_shards.decoded_bytes > 3 * large.decoded_bytes);
        assert!(large.total_typical() > 400 << 20, "{large}");
    }

    #[test]
    fn input_is_shown_at_a_typical_and_the_largest_event() {
        let b =
            bound(&yaml("{ batch_events: 4096, queue_batches: 4, max_event_bytes: 1048576 }", 3, "{ type: tumbling, events: 1000 }"), 2);
        assert_eq!(b.input_batches, 12);
        assert_eq!(b.input_typical, 12 * (4096 * 1024 + (4 << 20)));
        assert_eq!(b.input_max, 12 * (4096 * (1 << 20) + (4 << 20)));
        assert!(b.total_max() > b.total_typical());
    }

    #[test]
    fn sliding_and_event_time_windows_hold_more_stores() {
        let tumbling = bound(&yaml("{}", 10, "{ type: tumbling, events: 1000 }"), 1);
        let sliding = bound(&yaml("{}", 10, "{ type: sliding, events: 1000, slide: 100 }"), 1);
        let time = bound(&yaml("{}", 10, "{ type: sliding, duration: 10m, slide: 1m, allowed_lateness: 5m }"), 1);
        assert_eq!(tumbling.models[0].window_stores, 1 + 1 + 2 + 1);
        assert_eq!(sliding.models[0].window_stores, 10 + 1 + 2 + 1);
        assert_eq!(time.models[0].window_stores, 10 + 7 + 2 + 1);
        assert!(sliding.models[0].window_bytes > tumbling.models[0].window_bytes);
        // A baseline of 1 000 events × 10 numbers.
        assert_eq!(tumbling.models[0].baseline_bytes, 1_000 * 10 * 16);
    }

    #[test]
    fn the_label_join_counts_at_max_pending() {
        let plain = yaml("{}", 3, "{ type: tumbling, events: 1000 }");
        let with = format!("{plain}    quality: {{ task: regression, prediction: p, max_pending: 1000 }}\n");
        let (a, b) = (bound(&plain, 2), bound(&with, 2));
        assert_eq!(a.models[0].quality_bytes, 0);
        assert_eq!(b.models[0].quality_bytes, 1000 * (JOIN_SLOT_BYTES + EARLY_LABEL_BYTES + HELD_SCORE_BYTES));
        assert_eq!(b.total_typical() - a.total_typical(), b.models[0].quality_bytes);
        assert!(b.to_string().contains("label join"), "{b}");
    }

    #[test]
    fn display_names_every_part() {
        let text = bound(&yaml("{}", 3, "{ type: tumbling, events: 1000 }"), 2).to_string();
        for part in ["input batches", "decoded batches", "model m", "total", "max_event_bytes"] {
            assert!(text.contains(part), "{text}");
        }
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }
}
