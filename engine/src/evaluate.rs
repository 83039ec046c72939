//! Windows of one model, their evaluation against the reference, and the
//! drift state machine that turns breaches into drift and resolved events.
//!
//! Events arrive here in input order (the shards decode in parallel, the
//! pipeline restores order), so every decision — pane membership, lateness,
//! debounce — is deterministic whatever the shard count.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Range;

use driftwatch_detectors::categorical::categorical_drift;
use driftwatch_detectors::feature::{numeric_drift, KsOutcome, NumericStatistics, NumericWindow};
use driftwatch_detectors::ks::KsMethod;
use driftwatch_detectors::sketch::{CategoryCounts, Sketch};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::batch::{ModelRows, RowColumn};
use crate::config::{Correction, KsMode, Metric, WindowSpec};
use crate::model::{Column, ColumnProfile, ColumnReference, ModelPlan, ModelProfile};
use crate::quality::{LabelFeed, QualityState};
use crate::source::ColumnData;
use crate::{Error, Result};

/// One column's window sketch.
// Boxing the numeric variant would add a pointer chase per update on the hot path.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
enum ColumnState {
    Numeric(NumericWindow),
    Categorical { counts: CategoryCounts, missing: u64 },
}

impl ColumnState {
    /// Adds rows `range` of `column` (hot path: one tight loop per column).
    fn update_rows(&mut self, rows: &ModelRows, column: &RowColumn, range: Range<usize>) {
        match (self, column) {
            (ColumnState::Numeric(w), RowColumn::Numeric(values)) => w.update_all_nan_missing(&values[range]),
            (ColumnState::Categorical { counts, missing }, RowColumn::Categorical(values)) => {
                for v in &values[range] {
                    match v {
                        Some(span) => counts.update(rows.category(*span)),
                        None => *missing += 1,
                    }
                }
            }
            // The plan gives both the same kind; a mismatch would be a bug.
            _ => debug_assert!(false, "column kinds differ"),
        }
    }

    fn merge(&mut self, other: &Self) -> Result<()> {
        match (self, other) {
            (ColumnState::Numeric(a), ColumnState::Numeric(b)) => a.merge(b)?,
            (ColumnState::Categorical { counts: a, missing: ma }, ColumnState::Categorical { counts: b, missing: mb }) => {
                a.merge(b)?;
                *ma += mb;
            }
            _ => return Err(Error::Internal("merging column states of different types".into())),
        }
        Ok(())
    }

    fn unmerge(&mut self, other: &Self) -> Result<()> {
        match (self, other) {
            (ColumnState::Numeric(a), ColumnState::Numeric(b)) => a.unmerge(b)?,
            (ColumnState::Categorical { counts: a, missing: ma }, ColumnState::Categorical { counts: b, missing: mb }) => {
                a.unmerge(b)?;
                a.drop_empty();
                *ma -= mb;
            }
            _ => return Err(Error::Internal("unmerging column states of different types".into())),
        }
        Ok(())
    }

    /// Whether the raw-value store dropped values at its capacity (then it
    /// cannot be unmerged exactly and the window is rebuilt from its panes).
    fn exact_incomplete(&self) -> bool {
        matches!(self, ColumnState::Numeric(w) if w.exact.overflow() > 0)
    }

    fn size_bytes(&self) -> usize {
        match self {
            ColumnState::Numeric(w) => w.size_bytes(),
            ColumnState::Categorical { counts, .. } => counts.size_bytes(),
        }
    }
}

/// A pane: the sketches of `slide` events (or `slide` of event time).
#[derive(Debug, Clone)]
struct Pane {
    id: i64,
    columns: Vec<ColumnState>,
    count: u64,
    min_ts: Option<i64>,
    max_ts: Option<i64>,
    first_index: Option<u64>,
    last_version: Option<String>,
}

/// One evaluation of one (column, metric) at a window.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    /// Model name.
    pub model: String,
    /// Version of the window's last event.
    pub model_version: Option<String>,
    /// Column name.
    pub feature: String,
    /// `feature`, `prediction` or `label` (label drift of a model with `quality`).
    pub kind: &'static str,
    /// Metric name.
    pub metric: &'static str,
    /// Statistic value; `null` with `status: insufficient_data`.
    pub value: Option<f64>,
    /// p-value after correction (tests only).
    pub p_value: Option<f64>,
    /// p-value before correction (tests only).
    pub p_value_raw: Option<f64>,
    /// Statistic threshold.
    pub threshold: Option<f64>,
    /// p-value threshold.
    pub p_value_threshold: Option<f64>,
    /// How the value was computed (`exact`, `asymptotic`, `sketch`, `histogram`, `counts`).
    pub method: &'static str,
    /// For sketch KS: the exact D lies in [value, value + error_bound].
    pub error_bound: Option<f64>,
    /// `ok` or `insufficient_data`.
    pub status: &'static str,
    /// Whether the alert condition holds.
    pub breach: bool,
    /// Drift state after this evaluation (`ok` or `drifting`).
    pub state: &'static str,
    /// Label drift: the window's predictions with their label so far.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labelled: Option<u64>,
    /// Label drift: whether `label_ttl` has passed the window's end (only
    /// final evaluations step the drift state).
    #[serde(rename = "final", skip_serializing_if = "Option::is_none")]
    pub is_final: Option<bool>,
    /// Window bounds.
    pub window: WindowBounds,
}

/// Where a window lies in the model's stream.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct WindowBounds {
    /// Index (among the model's windowed events) of the first event, count windows.
    pub start_index: Option<u64>,
    /// Index after the last event, count windows.
    pub end_index: Option<u64>,
    /// Event time of the window start (ms): the pane start for time windows, the earliest event otherwise.
    pub start_ms: Option<i64>,
    /// Event time of the window end (ms): the pane end for time windows, the latest event otherwise.
    pub end_ms: Option<i64>,
    /// Events in the window.
    pub count: u64,
}

/// A drift or resolved event.
#[derive(Debug, Clone, Serialize)]
pub struct DriftEvent {
    /// Stable id: the same episode gives the same id on every replay and retry.
    pub event_id: String,
    /// `drift` or `resolved`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// What drifted beyond the features: `quality`, `estimated_quality` or
    /// `label` (feature and dataset drift leave it out).
    #[serde(rename = "kind", skip_serializing_if = "Option::is_none")]
    pub signal: Option<&'static str>,
    /// Model name.
    pub model: String,
    /// Model version of the window's last event.
    pub model_version: Option<String>,
    /// Column name, or `*` for dataset drift.
    pub feature: String,
    /// Metric name, or `dataset` for dataset drift.
    pub metric: &'static str,
    /// The statistic (dataset drift: the share of drifting columns).
    pub value: Option<f64>,
    /// Its threshold.
    pub threshold: Option<f64>,
    /// p-value, where defined.
    pub p_value: Option<f64>,
    /// p-value threshold, where defined.
    pub p_value_threshold: Option<f64>,
    /// The window that triggered the event.
    pub window: WindowBounds,
    /// Reference rows.
    pub reference_rows: u64,
    /// Window position where the episode started (index for count windows, ms for time windows).
    pub episode_start: i64,
    /// When detected: the window's end event time (RFC 3339), so replays are reproducible.
    pub detected_at: String,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct DriftState {
    pub(crate) drifting: bool,
    breaches: u32,
    cleans: u32,
    candidate_start: i64,
    /// Event time (ms) of the window where the candidate episode started.
    candidate_start_ms: Option<i64>,
    pub(crate) episode_start: i64,
    /// Whether this episode's drift event was emitted (not suppressed by cooldown).
    announced: bool,
    last_announced_ms: Option<i64>,
}

/// Output of one window's evaluation.
#[derive(Debug, Default)]
pub struct Outcome {
    /// One per (column, detector).
    pub evaluations: Vec<Evaluation>,
    /// Drift and resolved events.
    pub events: Vec<DriftEvent>,
    /// Episodes that started inside the cooldown of a previous drift event.
    pub suppressed: u64,
    /// Seconds from each window's close (its last pane completed) to its evaluation done.
    pub window_seconds: Vec<f64>,
    /// Model-quality evaluations.
    pub quality: Vec<crate::quality::QualityEvaluation>,
    /// Delays (seconds) of the labels joined, with the model's index.
    pub label_delays: Vec<(usize, f64)>,
}

impl Outcome {
    /// Records what a drift-state transition emits: the event `event`
    /// builds for `drift` and `resolved`, a count for a suppressed episode.
    pub(crate) fn transition(&mut self, t: Transition, event: impl FnOnce(&'static str) -> DriftEvent) {
        match t {
            Transition::Drift => self.events.push(event("drift")),
            Transition::Resolved => self.events.push(event("resolved")),
            Transition::Suppressed => self.suppressed += 1,
            Transition::None => {}
        }
    }
}

/// Counters of one model's windows.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct ModelCounters {
    /// Events applied to windows.
    pub windowed: u64,
    /// Events taken into the baseline reference.
    pub baseline: u64,
    /// Event-time windows: events later than the allowed lateness, dropped.
    pub late: u64,
    /// Event-time windows: events without a timestamp, dropped.
    pub missing_timestamp: u64,
    /// Windows evaluated.
    pub windows: u64,
}

/// Panes kept for reuse per model: one leaves the window for each that
/// enters, so two cover the steady state.
pub(crate) const MAX_SPARE_PANES: usize = 2;

/// The windows and drift state of one model.
#[derive(Debug)]
pub struct ModelState {
    plan: ModelPlan,
    reference: Option<ModelProfile>,
    baseline: Vec<ColumnData>,
    baseline_rows: u64,
    open: BTreeMap<i64, Pane>,
    ring: VecDeque<Pane>,
    /// Columns of panes that left the window, for reuse (at most
    /// [`MAX_SPARE_PANES`]).
    spare: Vec<Vec<ColumnState>>,
    running: Option<Vec<ColumnState>>,
    next_pane: Option<i64>,
    windowed: u64,
    max_ts: Option<i64>,
    states: Vec<DriftState>,
    dataset: DriftState,
    /// Model quality, when configured.
    quality: Option<QualityState>,
    /// Counters.
    pub counters: ModelCounters,
}

impl ModelState {
    /// State for a model; `reference` is `None` for a baseline model.
    pub fn new(plan: ModelPlan, reference: Option<ModelProfile>) -> Self {
        let states = vec![DriftState::default(); plan.columns.len() * plan.detectors.len()];
        Self {
            plan,
            reference,
            baseline: Vec::new(),
            baseline_rows: 0,
            open: BTreeMap::new(),
            ring: VecDeque::new(),
            spare: Vec::new(),
            running: None,
            next_pane: None,
            windowed: 0,
            max_ts: None,
            states,
            dataset: DriftState::default(),
            quality: None,
            counters: ModelCounters::default(),
        }
    }

    /// Whether the reference is known (a baseline model has none until its first N events).
    pub fn has_reference(&self) -> bool {
        self.reference.is_some()
    }

    /// The plan.
    pub fn plan(&self) -> &ModelPlan {
        &self.plan
    }

    /// Adds the model's quality stage.
    pub fn set_quality(&mut self, quality: QualityState) {
        self.quality = Some(quality);
    }

    /// The quality stage, when configured.
    pub fn quality(&self) -> Option<&QualityState> {
        self.quality.as_ref()
    }

    /// Applies every remaining label of this model (the predictions have ended).
    pub fn drain_labels(&mut self, labels: &mut dyn LabelFeed, out: &mut Outcome) -> Result<()> {
        if let Some(q) = &mut self.quality {
            while let Some(l) = labels.next_before(self.plan.index, None)? {
                q.label(&l, out)?;
            }
        }
        Ok(())
    }

    /// Labels move the quality clock no further than the latest prediction
    /// time (`driftwatch run`: see [`QualityState::hold_clock_to_predictions`]).
    pub fn hold_quality_clock_to_predictions(&mut self) {
        if let Some(q) = &mut self.quality {
            q.hold_clock_to_predictions();
        }
    }

    /// Evaluates once more every window of predictions that holds labels
    /// and is not final (a graceful shutdown of `run`: the panes stay as
    /// they are).
    pub fn finish_quality(&mut self, out: &mut Outcome) -> Result<()> {
        match &mut self.quality {
            Some(q) => q.finish(out),
            None => Ok(()),
        }
    }

    /// Bytes held by open panes and the window.
    pub fn size_bytes(&self) -> usize {
        let cols = |c: &[ColumnState]| c.iter().map(ColumnState::size_bytes).sum::<usize>();
        self.quality.as_ref().map_or(0, QualityState::size_bytes)
            + self.open.values().map(|p| cols(&p.columns)).sum::<usize>()
            + self.ring.iter().map(|p| cols(&p.columns)).sum::<usize>()
            + self.running.as_deref().map_or(0, cols)
    }

    fn empty_columns(&self) -> Result<Vec<ColumnState>> {
        let reference = self.reference.as_ref().ok_or_else(|| Error::Internal("window before reference".into()))?;
        self.plan.columns.iter().zip(&reference.columns).map(|(c, r)| self.empty_column(c, r)).collect()
    }

    fn empty_column(&self, c: &Column, r: &ColumnProfile) -> Result<ColumnState> {
        Ok(match &r.reference {
            ColumnReference::Numeric { reference } => ColumnState::Numeric(reference.new_window(&self.plan.window_sketch)?),
            // Room for `max_categories` new names in every pane of the
            // window, so merging panes loses none: which names the window
            // shows is chosen at evaluation from its counts
            // (`CategoryCounts::limited`), not by arrival order.
            ColumnReference::Categorical { counts, .. } => ColumnState::Categorical {
                counts: CategoryCounts::with_categories(
                    counts.distinct().saturating_add(c.max_categories.saturating_mul(self.plan.window_panes() as usize)),
                    counts.entries().iter().map(|e| e.0),
                ),
                missing: 0,
            },
        })
    }

    /// Columns for a new pane: a pane that left the window, cleared, when
    /// one is kept (numeric sketches keep their allocations: no page faults
    /// for fresh stores at every slide), else new ones. Categorical columns
    /// are always new, so a pane starts with exactly the reference's
    /// categories.
    fn pane_columns(&mut self) -> Result<Vec<ColumnState>> {
        let Some(mut columns) = self.spare.pop() else {
            return self.empty_columns();
        };
        let reference = self.reference.as_ref().ok_or_else(|| Error::Internal("window before reference".into()))?;
        for ((state, c), r) in columns.iter_mut().zip(&self.plan.columns).zip(&reference.columns) {
            match state {
                ColumnState::Numeric(w) => w.clear(),
                ColumnState::Categorical { .. } => *state = self.empty_column(c, r)?,
            }
        }
        Ok(columns)
    }

    /// Keeps the columns of a pane that left the window for [`Self::pane_columns`].
    fn recycle(&mut self, pane: Pane) {
        if self.spare.len() < MAX_SPARE_PANES {
            self.spare.push(pane.columns);
        }
    }

    /// Applies a batch of this model's rows, in input order.
    ///
    /// Rows are grouped into runs that go to the same pane with nothing to
    /// complete in between; each run updates one column at a time.
    /// Labels of this model that come before a row (by event time) are
    /// taken from `labels` and applied first.
    pub fn apply_rows(&mut self, rows: &ModelRows, out: &mut Outcome, labels: &mut dyn LabelFeed) -> Result<()> {
        let mut i = 0;
        if self.reference.is_none() && !rows.is_empty() {
            let wanted = self.plan.baseline_events.unwrap_or(0).saturating_sub(self.baseline_rows);
            let end = usize::try_from(wanted.max(1)).unwrap_or(usize::MAX).min(rows.len());
            self.take_baseline(rows, 0..end);
            i = end;
            if self.baseline_rows >= self.plan.baseline_events.unwrap_or(0) {
                self.build_baseline()?;
            }
        }
        // The current run: rows `run_start..i` all go to pane `run_pane`.
        let mut run_start = i;
        let mut run_pane = 0i64;
        while i < rows.len() {
            let ts = rows.ts(i);
            let pane_id = match self.plan.window {
                WindowSpec::Count { slide, .. } => (self.windowed / slide) as i64,
                WindowSpec::Time { slide_ms, lateness_ms, .. } => {
                    let Some(t) = ts else {
                        self.flush_run(rows, run_start..i, run_pane, out, labels)?;
                        self.counters.missing_timestamp += 1;
                        i += 1;
                        run_start = i;
                        continue;
                    };
                    let pane_id = t.div_euclid(slide_ms as i64);
                    let watermark = self.max_ts.map(|m| m.saturating_sub(lateness_ms as i64));
                    let pane_end = (pane_id + 1).saturating_mul(slide_ms as i64);
                    if watermark.is_some_and(|w| pane_end <= w) || self.next_pane.is_some_and(|n| pane_id < n) {
                        self.flush_run(rows, run_start..i, run_pane, out, labels)?;
                        self.counters.late += 1;
                        i += 1;
                        run_start = i;
                        continue;
                    }
                    pane_id
                }
            };
            if run_start < i && pane_id != run_pane {
                self.flush_run(rows, run_start..i, run_pane, out, labels)?;
                run_start = i;
            }
            run_pane = pane_id;
            i += 1;
            self.counters.windowed += 1;
            match self.plan.window {
                WindowSpec::Count { slide, .. } => {
                    self.windowed += 1;
                    if self.windowed.is_multiple_of(slide) {
                        self.flush_run(rows, run_start..i, run_pane, out, labels)?;
                        run_start = i;
                        self.complete_through(pane_id, out)?;
                    }
                }
                WindowSpec::Time { slide_ms, lateness_ms, .. } => {
                    let t = ts.unwrap_or_default();
                    self.max_ts = Some(self.max_ts.map_or(t, |m| m.max(t)));
                    let watermark = self.max_ts.unwrap_or(t).saturating_sub(lateness_ms as i64);
                    // Panes whose end is at or before the watermark are closed.
                    let last_closed = watermark.div_euclid(slide_ms as i64) - 1;
                    let first_open = self.open.keys().next().copied().map_or(run_pane, |f| f.min(run_pane));
                    if first_open <= last_closed {
                        self.flush_run(rows, run_start..i, run_pane, out, labels)?;
                        run_start = i;
                        self.complete_through(last_closed, out)?;
                    }
                }
            }
        }
        self.flush_run(rows, run_start..i, run_pane, out, labels)
    }

    /// Adds rows `range` (all in pane `pane_id`) to that pane.
    fn flush_run(
        &mut self,
        rows: &ModelRows,
        range: Range<usize>,
        pane_id: i64,
        out: &mut Outcome,
        labels: &mut dyn LabelFeed,
    ) -> Result<()> {
        if range.is_empty() {
            return Ok(());
        }
        if let (Some(q), Some(qrows)) = (&mut self.quality, rows.quality()) {
            for j in range.clone() {
                let ts = rows.ts(j);
                if let Some(t) = ts {
                    while let Some(l) = labels.next_before(self.plan.index, Some(t))? {
                        q.label(&l, out)?;
                    }
                }
                if let Some(id) = qrows.id(rows, j) {
                    q.predict(id, pane_id, ts, qrows.predicted[j], qrows.score[j], out)?;
                }
            }
        }
        if !self.open.contains_key(&pane_id) {
            let columns = self.pane_columns()?;
            self.open.insert(
                pane_id,
                Pane { id: pane_id, columns, count: 0, min_ts: None, max_ts: None, first_index: None, last_version: None },
            );
        }
        let first_index = match self.plan.window {
            WindowSpec::Count { .. } => Some(self.windowed - range.len() as u64),
            WindowSpec::Time { .. } => None,
        };
        let pane = self.open.get_mut(&pane_id).ok_or_else(|| Error::Internal("pane vanished".into()))?;
        for (state, column) in pane.columns.iter_mut().zip(rows.columns()) {
            state.update_rows(rows, column, range.clone());
        }
        pane.count += range.len() as u64;
        for &t in rows.ts_range(range.clone()).iter().flatten() {
            pane.min_ts = Some(pane.min_ts.map_or(t, |m| m.min(t)));
            pane.max_ts = Some(pane.max_ts.map_or(t, |m| m.max(t)));
        }
        if pane.first_index.is_none() {
            pane.first_index = first_index;
        }
        if let Some(v) = rows.last_version(range) {
            if pane.last_version.as_deref() != Some(v) {
                pane.last_version = Some(v.to_owned());
            }
        }
        Ok(())
    }

    /// Takes rows `range` into the baseline reference's columns.
    fn take_baseline(&mut self, rows: &ModelRows, range: std::ops::Range<usize>) {
        if self.baseline.is_empty() {
            // Sized for the whole baseline up front, within 64 MiB of
            // reservations for all columns together (more grows as usual):
            // growing by doubling copied each column about twice over and
            // touched fresh pages at every step.
            const RESERVE_BYTES: usize = 64 << 20;
            let per_column = RESERVE_BYTES / (rows.columns().len().max(1) * std::mem::size_of::<Option<String>>());
            let room = (self.plan.baseline_events.unwrap_or(0) as usize).min(per_column);
            self.baseline = rows
                .columns()
                .iter()
                .map(|c| match c {
                    RowColumn::Numeric(_) => ColumnData::Numeric(Vec::with_capacity(room)),
                    RowColumn::Categorical(_) => ColumnData::Categorical(Vec::with_capacity(room)),
                })
                .collect();
        }
        for (data, column) in self.baseline.iter_mut().zip(rows.columns()) {
            match (data, column) {
                (ColumnData::Numeric(xs), RowColumn::Numeric(v)) => {
                    xs.extend(v[range.clone()].iter().map(|&x| Some(x).filter(|x| !x.is_nan())))
                }
                (ColumnData::Categorical(xs), RowColumn::Categorical(v)) => {
                    xs.extend(v[range.clone()].iter().map(|s| s.map(|s| rows.category(s).to_owned())));
                }
                _ => debug_assert!(false, "column kinds differ"),
            }
        }
        self.baseline_rows += range.len() as u64;
        self.counters.baseline += range.len() as u64;
    }

    fn build_baseline(&mut self) -> Result<()> {
        let columns = std::mem::take(&mut self.baseline);
        let n = std::mem::take(&mut self.baseline_rows);
        let source = format!("baseline: first {n} events of the stream");
        self.reference = Some(self.plan.reference_from_columns(n, columns, source)?);
        Ok(())
    }

    /// Completes every open pane with id ≤ `last`, in order, evaluating windows.
    fn complete_through(&mut self, last: i64, out: &mut Outcome) -> Result<()> {
        let panes = self.plan.window_panes();
        while let Some((&id, _)) = self.open.iter().next() {
            if id > last {
                break;
            }
            let pane = self.open.remove(&id).ok_or_else(|| Error::Internal("pane vanished".into()))?;
            // Time windows: panes without events still occupy their slot, so
            // every window holding events is evaluated as it slides out of
            // the old panes and into the new one. Across a gap longer than
            // the window, the windows in between hold only empty panes: the
            // ring is emptied and refilled with the empty panes just before
            // `id` instead of sliding through all of them.
            let first = self.next_pane.unwrap_or(id);
            let panes = panes as i64;
            let flush_end = id.min(first.saturating_add(panes - 1));
            for gap in first..flush_end {
                self.push_empty_pane(gap, out)?;
            }
            let refill_start = id.saturating_sub(panes - 1).max(flush_end);
            if refill_start > flush_end {
                while let Some(old) = self.ring.pop_front() {
                    self.recycle(old);
                }
                self.running = None;
            }
            for gap in refill_start..id {
                self.push_empty_pane(gap, out)?;
            }
            self.push_pane(pane, out)?;
            self.next_pane = Some(id + 1);
        }
        Ok(())
    }

    fn push_empty_pane(&mut self, id: i64, out: &mut Outcome) -> Result<()> {
        let columns = self.pane_columns()?;
        let empty = Pane { id, columns, count: 0, min_ts: None, max_ts: None, first_index: None, last_version: None };
        self.push_pane(empty, out)
    }

    fn push_pane(&mut self, pane: Pane, out: &mut Outcome) -> Result<()> {
        let closed = std::time::Instant::now();
        // The oldest pane leaves before the new one enters, so the window
        // never holds more than its size (the exact store's capacity).
        let full = self.ring.len() as u64 >= self.plan.window_panes();
        let incomplete = self.running.as_ref().is_some_and(|r| r.iter().any(ColumnState::exact_incomplete));
        if incomplete {
            // A window larger than the exact store dropped raw values, so it
            // cannot unmerge exactly: rebuild it from its panes (the store then
            // fills up to its capacity again and KS uses the bounded sketch).
            if full {
                if let Some(old) = self.ring.pop_front() {
                    self.recycle(old);
                }
            }
            self.ring.push_back(pane);
            let mut panes = self.ring.iter();
            let mut running = panes.next().map(|p| p.columns.clone()).unwrap_or_default();
            for p in panes {
                for (r, c) in running.iter_mut().zip(&p.columns) {
                    r.merge(c)?;
                }
            }
            self.running = Some(running);
        } else {
            if full {
                if let (Some(old), Some(running)) = (self.ring.pop_front(), self.running.as_mut()) {
                    for (r, c) in running.iter_mut().zip(&old.columns) {
                        r.unmerge(c)?;
                    }
                    self.recycle(old);
                }
            }
            match &mut self.running {
                Some(running) => {
                    for (r, c) in running.iter_mut().zip(&pane.columns) {
                        r.merge(c)?;
                    }
                }
                None => self.running = Some(pane.columns.clone()),
            }
            self.ring.push_back(pane);
        }
        let full = self.ring.len() as u64 == self.plan.window_panes();
        if full {
            self.evaluate(out)?;
            out.window_seconds.push(closed.elapsed().as_secs_f64());
        }
        if self.quality.is_some() {
            let last = self.ring.back().ok_or_else(|| Error::Internal("pane vanished".into()))?;
            let (id, end_ms) = match self.plan.window {
                WindowSpec::Count { .. } => (last.id, last.max_ts),
                WindowSpec::Time { slide_ms, .. } => (last.id, Some((last.id + 1).saturating_mul(slide_ms as i64))),
            };
            let bounds = self.bounds();
            let window = (full && bounds.count > 0).then(|| (bounds, self.ring.iter().rev().find_map(|p| p.last_version.clone())));
            if let Some(q) = &mut self.quality {
                q.pane_completed(id, end_ms, window, out)?;
            }
        }
        Ok(())
    }

    fn bounds(&self) -> WindowBounds {
        let count = self.ring.iter().map(|p| p.count).sum();
        match self.plan.window {
            WindowSpec::Count { slide, panes } => {
                let last = self.ring.back().map_or(0, |p| p.id) as u64;
                let end = (last + 1) * slide;
                WindowBounds {
                    start_index: Some(end - slide * panes),
                    end_index: Some(end),
                    start_ms: self.ring.iter().filter_map(|p| p.min_ts).min(),
                    end_ms: self.ring.iter().filter_map(|p| p.max_ts).max(),
                    count,
                }
            }
            WindowSpec::Time { slide_ms, .. } => WindowBounds {
                start_index: None,
                end_index: None,
                start_ms: self.ring.front().map(|p| p.id * slide_ms as i64),
                end_ms: self.ring.back().map(|p| (p.id + 1) * slide_ms as i64),
                count,
            },
        }
    }

    /// Evaluates the current window: every detector on every column it applies to.
    fn evaluate(&mut self, out: &mut Outcome) -> Result<()> {
        let bounds = self.bounds();
        if bounds.count == 0 {
            return Ok(());
        }
        self.counters.windows += 1;
        let version = self.ring.iter().rev().find_map(|p| p.last_version.clone());
        let reference = self.reference.as_ref().ok_or_else(|| Error::Internal("evaluation before reference".into()))?;
        let running = self.running.as_mut().ok_or_else(|| Error::Internal("evaluation without window".into()))?;
        let plan = &self.plan;
        // Raw results per (detector, column): (value, p, method, bound).
        let mut results: Vec<Vec<Option<Computed>>> = vec![vec![None; plan.columns.len()]; plan.detectors.len()];
        for (ci, state) in running.iter_mut().enumerate() {
            let wanted: Vec<usize> = (0..plan.detectors.len()).filter(|&d| plan.detectors[d].applies[ci]).collect();
            if wanted.is_empty() {
                continue;
            }
            let r = &reference.columns[ci].reference;
            let column = &plan.columns[ci].name;
            match (r, state) {
                (ColumnReference::Numeric { reference }, ColumnState::Numeric(w)) => {
                    let ks = plan.detectors.iter().enumerate().find(|(d, det)| det.metric == Metric::Ks && wanted.contains(d));
                    let which = NumericStatistics {
                        ks: ks.is_some(),
                        ks_method: ks.map_or(KsMethod::Auto, |(_, d)| d.p_value_method),
                        wasserstein: wanted.iter().any(|&d| plan.detectors[d].metric == Metric::Wasserstein),
                        exact_ks: ks.is_none_or(|(_, d)| d.mode != KsMode::Sketch),
                    };
                    let drift = defined(numeric_drift(reference, w, which), &plan.name, column)?;
                    for &d in &wanted {
                        let metric = plan.detectors[d].metric;
                        results[d][ci] = Some(match &drift {
                            None => Computed::insufficient(),
                            Some(s) => match metric {
                                Metric::Psi => Computed::value(s.psi, "histogram"),
                                Metric::JensenShannon => Computed::value(s.jensen_shannon, "histogram"),
                                Metric::Hellinger => Computed::value(s.hellinger, "histogram"),
                                Metric::Wasserstein => match s.wasserstein {
                                    Some(v) => Computed::value(v, "exact"),
                                    // Validation keeps every window within the raw store.
                                    None => return Err(missing(&plan.name, column, metric)),
                                },
                                Metric::Ks => match s.ks {
                                    Some(KsOutcome::Exact(k)) => Computed {
                                        value: Some(k.statistic),
                                        p: Some(k.p_value),
                                        method: if k.method == KsMethod::Exact { "exact" } else { "asymptotic" },
                                        bound: None,
                                    },
                                    Some(KsOutcome::Sketch(k)) => Computed {
                                        value: Some(k.statistic),
                                        p: Some(k.p_value),
                                        method: "sketch",
                                        bound: Some(k.error_bound),
                                    },
                                    None => return Err(missing(&plan.name, column, metric)),
                                },
                                Metric::Chi2 | Metric::LInfinity => return Err(missing(&plan.name, column, metric)),
                            },
                        });
                    }
                }
                (ColumnReference::Categorical { counts: rc, .. }, ColumnState::Categorical { counts, .. }) => {
                    let view = counts.limited(plan.columns[ci].max_categories);
                    let drift = defined(categorical_drift(rc, view.as_ref().unwrap_or(counts)), &plan.name, column)?;
                    for &d in &wanted {
                        let metric = plan.detectors[d].metric;
                        results[d][ci] = Some(match &drift {
                            None => Computed::insufficient(),
                            Some(s) => {
                                // Distances over counts carry the chi-square p-value of the same counts:
                                // their noise gate (see `noise_gate`).
                                let gated = |v: f64| Computed { value: Some(v), p: Some(s.chi2.p_value), method: "counts", bound: None };
                                match metric {
                                    Metric::Psi => gated(s.psi),
                                    Metric::JensenShannon => gated(s.jensen_shannon),
                                    Metric::Hellinger => gated(s.hellinger),
                                    Metric::LInfinity => gated(s.l_infinity),
                                    Metric::Chi2 => Computed {
                                        value: Some(s.chi2.statistic),
                                        p: Some(s.chi2.p_value),
                                        method: "asymptotic",
                                        bound: None,
                                    },
                                    Metric::Ks | Metric::Wasserstein => return Err(missing(&plan.name, column, metric)),
                                }
                            }
                        });
                    }
                }
                _ => return Err(Error::Internal("reference and window column types differ".into())),
            }
        }
        let reference_rows = reference.rows;
        let at = match plan.window {
            WindowSpec::Count { .. } => bounds.end_index.unwrap_or(0) as i64,
            WindowSpec::Time { .. } => bounds.end_ms.unwrap_or(0),
        };
        let now_ms = bounds.end_ms;
        let mut drifting_columns = vec![false; plan.columns.len()];
        for (d, det) in plan.detectors.iter().enumerate() {
            let adjusted = correct(plan.correction, &results[d]);
            for (ci, col) in plan.columns.iter().enumerate() {
                let Some(c) = &results[d][ci] else { continue };
                let p = adjusted[ci];
                let p_threshold = det.p_value.or(noise_gate(det.metric, c));
                let breach = test_breach(c.value, p, det.threshold, p_threshold);
                let state = &mut self.states[ci * plan.detectors.len() + d];
                let key = (&plan.name, col.name.as_str(), det.metric.as_str());
                let transition = step(state, breach, c.value.is_some(), at, now_ms, plan);
                let mk = |kind: &'static str, state: &DriftState| DriftEvent {
                    event_id: event_id(key.0, key.1, key.2, state.episode_start, kind),
                    kind,
                    signal: None,
                    model: plan.name.clone(),
                    model_version: version.clone(),
                    feature: col.name.clone(),
                    metric: det.metric.as_str(),
                    value: c.value,
                    threshold: det.threshold,
                    p_value: p,
                    p_value_threshold: p_threshold,
                    window: bounds,
                    reference_rows,
                    episode_start: state.episode_start,
                    detected_at: rfc3339(now_ms),
                };
                out.transition(transition, |kind| mk(kind, state));
                drifting_columns[ci] |= state.drifting;
                out.evaluations.push(Evaluation {
                    model: plan.name.clone(),
                    model_version: version.clone(),
                    feature: col.name.clone(),
                    kind: if col.is_prediction { "prediction" } else { "feature" },
                    metric: det.metric.as_str(),
                    value: c.value,
                    p_value: p,
                    p_value_raw: c.p,
                    threshold: det.threshold,
                    p_value_threshold: p_threshold,
                    method: c.method,
                    error_bound: c.bound,
                    status: if c.value.is_some() { "ok" } else { "insufficient_data" },
                    breach,
                    state: if state.drifting { "drifting" } else { "ok" },
                    labelled: None,
                    is_final: None,
                    window: bounds,
                });
            }
        }
        if let Some(share) = plan.alerting.dataset_drift_share {
            let monitored = plan.columns.iter().filter(|c| !c.is_prediction).count().max(1);
            let drifting = plan.columns.iter().zip(&drifting_columns).filter(|(c, &d)| d && !c.is_prediction).count();
            let value = drifting as f64 / monitored as f64;
            let breach = value >= share;
            let state = &mut self.dataset;
            // Column states are already debounced: the dataset state follows them directly.
            let transition = step_with(state, breach, true, at, now_ms, 1, 1, plan.alerting.cooldown.0.as_millis() as i64);
            let mk = |kind: &'static str, state: &DriftState| DriftEvent {
                event_id: event_id(&plan.name, "*", "dataset", state.episode_start, kind),
                kind,
                signal: None,
                model: plan.name.clone(),
                model_version: version.clone(),
                feature: "*".into(),
                metric: "dataset",
                value: Some(value),
                threshold: Some(share),
                p_value: None,
                p_value_threshold: None,
                window: bounds,
                reference_rows,
                episode_start: state.episode_start,
                detected_at: rfc3339(now_ms),
            };
            out.transition(transition, |kind| mk(kind, state));
        }
        Ok(())
    }

    /// End of bounded input: event-time windows close every pane (the
    /// watermark moves to +∞); count windows keep an incomplete last pane
    /// unevaluated.
    pub fn finish(&mut self, out: &mut Outcome) -> Result<()> {
        if let WindowSpec::Time { .. } = self.plan.window {
            if let Some((&last, _)) = self.open.iter().next_back() {
                self.complete_through(last, out)?;
            }
        }
        if let Some(q) = &mut self.quality {
            q.finish(out)?;
        }
        Ok(())
    }
}

impl ModelPlan {
    /// Panes per window.
    pub fn window_panes(&self) -> u64 {
        match self.window {
            WindowSpec::Count { panes, .. } | WindowSpec::Time { panes, .. } => panes,
        }
    }
}

#[derive(Debug, Clone)]
struct Computed {
    value: Option<f64>,
    p: Option<f64>,
    method: &'static str,
    bound: Option<f64>,
}

impl Computed {
    fn value(v: f64, method: &'static str) -> Self {
        Self { value: Some(v), p: None, method, bound: None }
    }
    fn insufficient() -> Self {
        Self { value: None, p: None, method: "none", bound: None }
    }
}

/// Significance a distance over category counts (PSI, Jensen–Shannon,
/// Hellinger, L∞ on a categorical feature) must also reach to breach: the
/// chi-square homogeneity test of the same counts, corrected like any
/// p-value. Plug-in distances over sparse counts are biased upward (a window
/// of 1 000 events over 100 000 equally likely names is far from the
/// reference by every distance, although nothing changed); the test knows
/// the sample sizes, so a breach means the distance is both large and more
/// than sampling noise.
pub const CATEGORY_NOISE_P_VALUE: f64 = 0.001;

fn noise_gate(metric: Metric, c: &Computed) -> Option<f64> {
    (c.method == "counts" && metric != Metric::Chi2).then_some(CATEGORY_NOISE_P_VALUE)
}

/// A statistic's result: `None` when the window has too little data for it,
/// an internal error (which stops the engine with its reason) for anything
/// else, since that is a broken invariant, never `insufficient_data`.
fn defined<T>(r: driftwatch_detectors::Result<T>, model: &str, column: &str) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(driftwatch_detectors::Error::InsufficientData { .. }) => Ok(None),
        Err(e) => Err(Error::Internal(format!("model {model:?}, column {column:?}: {e}"))),
    }
}

fn missing(model: &str, column: &str, metric: Metric) -> Error {
    Error::Internal(format!("model {model:?}, column {column:?}: {} was not computed by its sketches", metric.as_str()))
}

/// Adjusts the p-values of one detector across the model's columns.
fn correct(correction: Correction, results: &[Option<Computed>]) -> Vec<Option<f64>> {
    let raw: Vec<Option<f64>> = results.iter().map(|r| r.as_ref().and_then(|c| c.p)).collect();
    let m = raw.iter().flatten().count() as f64;
    match correction {
        Correction::None => raw,
        Correction::Bonferroni => raw.iter().map(|p| p.map(|p| (p * m).min(1.0))).collect(),
        Correction::BenjaminiHochberg => {
            let mut order: Vec<(usize, f64)> = raw.iter().enumerate().filter_map(|(i, p)| p.map(|p| (i, p))).collect();
            order.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
            let mut adjusted = vec![None; raw.len()];
            let mut running = 1.0f64;
            for (rank, &(i, p)) in order.iter().enumerate().rev() {
                running = running.min(p * m / (rank + 1) as f64);
                adjusted[i] = Some(running.min(1.0));
            }
            adjusted
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Transition {
    None,
    Drift,
    Resolved,
    Suppressed,
}

/// Whether a statistic `value` with p-value `p` breaches: at or above
/// `threshold` and below `p_threshold`, whichever are set (both: both must
/// hold; a p-value threshold without a p-value never breaches).
pub(crate) fn test_breach(value: Option<f64>, p: Option<f64>, threshold: Option<f64>, p_threshold: Option<f64>) -> bool {
    value.is_some_and(|v| {
        let by_stat = threshold.map(|t| v >= t);
        let by_p = p_threshold.zip(p).map(|(t, p)| p < t);
        match (by_stat, by_p) {
            (Some(a), Some(b)) => a && b,
            (Some(a), None) => a && p_threshold.is_none(),
            (None, Some(b)) => b,
            (None, None) => false,
        }
    })
}

fn step(state: &mut DriftState, breach: bool, defined: bool, at: i64, now_ms: Option<i64>, plan: &ModelPlan) -> Transition {
    let a = &plan.alerting;
    step_with(state, breach, defined, at, now_ms, a.consecutive, a.recover_after, a.cooldown.0.as_millis() as i64)
}

/// The debounce / recovery / cooldown state machine.
///
/// OK → DRIFTING after `consecutive` breaching evaluations (the episode starts
/// at the first of them); DRIFTING → OK after `recover_after` clean ones. A
/// drift event is announced unless a previous drift event of the same key was
/// announced less than `cooldown_ms` of event time before the episode's start
/// (the event time of its first breaching window): then the episode is
/// tracked (state `drifting`) but neither its drift nor its resolution is sent.
/// An evaluation without a value (insufficient data) changes nothing.
#[allow(clippy::too_many_arguments)]
pub(crate) fn step_with(
    state: &mut DriftState,
    breach: bool,
    defined: bool,
    at: i64,
    now_ms: Option<i64>,
    consecutive: u32,
    recover_after: u32,
    cooldown_ms: i64,
) -> Transition {
    if !defined {
        return Transition::None;
    }
    if !state.drifting {
        if !breach {
            state.breaches = 0;
            return Transition::None;
        }
        if state.breaches == 0 {
            state.candidate_start = at;
            state.candidate_start_ms = now_ms;
        }
        state.breaches += 1;
        if state.breaches < consecutive {
            return Transition::None;
        }
        state.drifting = true;
        state.breaches = 0;
        state.cleans = 0;
        state.episode_start = state.candidate_start;
        // The cooldown is measured from the last announced drift event to
        // this episode's start (its first breaching window), not to its
        // detection `consecutive` windows later.
        let cooling = match (state.last_announced_ms, state.candidate_start_ms) {
            (Some(last), Some(start)) => cooldown_ms > 0 && start.saturating_sub(last) < cooldown_ms,
            _ => false,
        };
        state.announced = !cooling;
        if cooling {
            return Transition::Suppressed;
        }
        state.last_announced_ms = now_ms;
        Transition::Drift
    } else {
        if breach {
            state.cleans = 0;
            return Transition::None;
        }
        state.cleans += 1;
        if state.cleans < recover_after {
            return Transition::None;
        }
        state.drifting = false;
        state.cleans = 0;
        if state.announced {
            Transition::Resolved
        } else {
            Transition::None
        }
    }
}

/// A stable id: the first 16 bytes of SHA-256 over the key and episode start.
pub(crate) fn event_id(model: &str, feature: &str, metric: &str, episode_start: i64, kind: &str) -> String {
    let mut h = Sha256::new();
    for part in [model, feature, metric, kind] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    h.update(episode_start.to_le_bytes());
    h.finalize()[..16].iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn rfc3339(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debounce_recovery_and_cooldown() {
        let mut s = DriftState::default();
        let run = |s: &mut DriftState, breach: bool, t: i64| step_with(s, breach, true, t, Some(t), 3, 2, 100);
        assert_eq!(run(&mut s, true, 1), Transition::None);
        assert_eq!(run(&mut s, true, 2), Transition::None);
        assert_eq!(run(&mut s, false, 3), Transition::None); // streak broken
        assert_eq!(run(&mut s, true, 4), Transition::None);
        assert_eq!(run(&mut s, true, 5), Transition::None);
        assert_eq!(run(&mut s, true, 6), Transition::Drift);
        assert_eq!(s.episode_start, 4);
        assert_eq!(run(&mut s, true, 7), Transition::None); // one event per episode
        assert_eq!(run(&mut s, false, 8), Transition::None);
        assert_eq!(run(&mut s, false, 9), Transition::Resolved);
        // A new episode within the cooldown (100 ms after t=6) is suppressed, with no resolved event either.
        for t in 10..12 {
            assert_eq!(run(&mut s, true, t), Transition::None);
        }
        assert_eq!(run(&mut s, true, 12), Transition::Suppressed);
        assert_eq!(run(&mut s, false, 13), Transition::None);
        assert_eq!(run(&mut s, false, 14), Transition::None);
        assert!(!s.drifting);
        // After the cooldown a new episode is announced.
        for t in 200..202 {
            run(&mut s, true, t);
        }
        assert_eq!(run(&mut s, true, 202), Transition::Drift);
    }

    #[test]
    fn cooldown_is_measured_to_the_episode_start_not_its_detection() {
        // Cooldown 100 ms, 3 breaches to detect; the first episode is announced at t = 6.
        let run = |s: &mut DriftState, breach: bool, t: i64| step_with(s, breach, true, t, Some(t), 3, 1, 100);
        let announced_at_6 = || {
            let mut s = DriftState::default();
            for t in 4..6 {
                run(&mut s, true, t);
            }
            assert_eq!(run(&mut s, true, 6), Transition::Drift);
            assert_eq!(run(&mut s, false, 7), Transition::Resolved);
            s
        };
        // Starting 99 ms after it and detected 101 ms after it: inside the cooldown.
        let mut s = announced_at_6();
        assert_eq!(run(&mut s, true, 105), Transition::None);
        assert_eq!(run(&mut s, true, 106), Transition::None);
        assert_eq!(run(&mut s, true, 107), Transition::Suppressed);
        // Starting exactly 100 ms after it: announced.
        let mut s = announced_at_6();
        assert_eq!(run(&mut s, true, 106), Transition::None);
        assert_eq!(run(&mut s, true, 107), Transition::None);
        assert_eq!(run(&mut s, true, 108), Transition::Drift);
    }

    #[test]
    fn insufficient_data_changes_nothing() {
        let mut s = DriftState::default();
        assert_eq!(step_with(&mut s, true, true, 1, None, 2, 1, 0), Transition::None);
        assert_eq!(step_with(&mut s, false, false, 2, None, 2, 1, 0), Transition::None);
        assert_eq!(step_with(&mut s, true, true, 3, None, 2, 1, 0), Transition::Drift);
    }

    #[test]
    fn event_ids_are_stable_and_distinct() {
        assert_eq!(event_id("m", "f", "ks", 10, "drift"), event_id("m", "f", "ks", 10, "drift"));
        assert_ne!(event_id("m", "f", "ks", 10, "drift"), event_id("m", "f", "ks", 11, "drift"));
        assert_ne!(event_id("m", "f", "ks", 10, "drift"), event_id("m", "f", "ks", 10, "resolved"));
        assert_ne!(event_id("m", "fk", "s", 10, "drift"), event_id("m", "f", "ks", 10, "drift"));
        assert_eq!(event_id("m", "f", "ks", 10, "drift").len(), 32);
    }

    #[test]
    fn benjamini_hochberg_matches_hand_computation() {
        let c = |p: f64| Some(Computed { value: Some(0.0), p: Some(p), method: "x", bound: None });
        let r = vec![c(0.01), c(0.04), None, c(0.03)];
        let adj = correct(Correction::BenjaminiHochberg, &r);
        // m = 3; sorted 0.01, 0.03, 0.04 → 0.03, 0.04 (min(0.045, 0.04)), 0.04
        assert!((adj[0].unwrap() - 0.03).abs() < 1e-15);
        assert!((adj[3].unwrap() - 0.04).abs() < 1e-15);
        assert!((adj[1].unwrap() - 0.04).abs() < 1e-15);
        assert_eq!(adj[2], None);
        let bonf = correct(Correction::Bonferroni, &r);
        assert!((bonf[1].unwrap() - 0.12).abs() < 1e-15);
    }
}
