//! The window stage of one model: its windows, their evaluation against the
//! reference, and the drift state that turns breaches into drift and
//! resolved events.
//!
//! Events arrive here in input order (the shards decode in parallel, the
//! pipeline restores order), so every decision — pane membership, lateness,
//! debounce — is deterministic whatever the shard count. The parts:
//!
//! - `panes`: window assignment (count and event time, watermark,
//!   lateness) and the ring of panes whose merge is the window;
//! - `columns`: what a pane holds, one sketch per column;
//! - `evaluation`: metric dispatch over a window and p-value correction;
//! - `alerting`: the breach rule, the drift state machine, dataset drift;
//! - `events`: evaluation lines and drift events with their stable ids.
//!
//! [`ModelState`] ties them together (and to the model's quality stage); its
//! state serializes to a versioned [`ModelSnapshot`].

pub(crate) mod alerting;
mod columns;
mod evaluation;
mod events;
mod panes;

use std::ops::Range;

use driftwatch_detectors::sketch::CategoryCounts;
use serde::{Deserialize, Serialize};

use alerting::{dataset_share, step, step_dataset};
pub(crate) use alerting::{step_with, test_breach, DriftState};
use columns::ColumnState;
pub use evaluation::CATEGORY_NOISE_P_VALUE;
use evaluation::{compute, correct, noise_gate};
pub(crate) use events::{event_id, rfc3339};
pub use events::{DriftEvent, Evaluation, Outcome, WindowBounds};
use events::{EventSite, Reading};
pub(crate) use panes::MAX_SPARE_PANES;
use panes::{Entered, Panes, Place};

use crate::batch::{ModelRows, RowColumn};
use crate::config::{FeatureType, WindowSpec};
use crate::model::{Column, ColumnProfile, ColumnReference, ModelPlan, ModelProfile};
use crate::quality::{LabelFeed, QualityState};
use crate::{Error, Result};
use driftwatch_connectors::table::ColumnData;

/// Counters of one model's windows.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

/// The first events of a `baseline_events` model, until they are its reference.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Baseline {
    columns: Vec<ColumnData>,
    rows: u64,
}

/// What a snapshot's states are laid out by: the columns (name, numeric or
/// not) and the detectors (metric, which columns it applies to), in plan
/// order. A restore under a plan with another layout is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Layout {
    columns: Vec<(String, bool)>,
    detectors: Vec<(String, Vec<bool>)>,
}

impl Layout {
    fn of(plan: &ModelPlan) -> Self {
        Self {
            columns: plan.columns.iter().map(|c| (c.name.clone(), c.kind == FeatureType::Numeric)).collect(),
            detectors: plan.detectors.iter().map(|d| (d.metric.as_str().to_owned(), d.applies.clone())).collect(),
        }
    }
}

/// Drift states: one per (column, detector), column-major, and the dataset's.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Alerts {
    columns: Vec<DriftState>,
    dataset: DriftState,
}

/// The windows and drift state of one model.
#[derive(Debug)]
pub struct ModelState {
    plan: ModelPlan,
    reference: Option<ModelProfile>,
    baseline: Baseline,
    panes: Panes<Vec<ColumnState>>,
    alerts: Alerts,
    /// Model quality, when configured.
    quality: Option<QualityState>,
    /// Counters.
    pub counters: ModelCounters,
}

/// The format version of [`ModelSnapshot`] this build writes and reads.
pub const SNAPSHOT_VERSION: u32 = 1;

/// One model's window-stage state, serializable: its panes and window,
/// drift states, counters, and the reference when it was built from the
/// stream (a configured reference is rebuilt from the configuration).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSnapshot {
    /// [`SNAPSHOT_VERSION`] of the build that wrote it.
    pub version: u32,
    /// The model's name.
    pub model: String,
    layout: Layout,
    /// A `baseline_events` model's reference, once built.
    baseline_reference: Option<ModelProfile>,
    baseline: Baseline,
    panes: Panes<Vec<ColumnState>>,
    alerts: Alerts,
    counters: ModelCounters,
}

impl ModelState {
    /// State for a model; `reference` is `None` for a baseline model.
    pub fn new(plan: ModelPlan, reference: Option<ModelProfile>) -> Self {
        let alerts =
            Alerts { columns: vec![DriftState::default(); plan.columns.len() * plan.detectors.len()], dataset: DriftState::default() };
        Self {
            panes: Panes::new(plan.window),
            plan,
            reference,
            baseline: Baseline::default(),
            alerts,
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
        self.quality.as_ref().map_or(0, QualityState::size_bytes) + self.panes.size_bytes()
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
            let wanted = self.plan.baseline_events.unwrap_or(0).saturating_sub(self.baseline.rows);
            let end = usize::try_from(wanted.max(1)).unwrap_or(usize::MAX).min(rows.len());
            self.take_baseline(rows, 0..end);
            i = end;
            if self.baseline.rows >= self.plan.baseline_events.unwrap_or(0) {
                self.build_baseline()?;
            }
        }
        // The current run: rows `run_start..i` all go to pane `run_pane`.
        let mut run_start = i;
        let mut run_pane = 0i64;
        while i < rows.len() {
            let ts = rows.ts(i);
            let pane_id = match self.panes.place(ts) {
                Place::Pane(id) => id,
                dropped => {
                    self.flush_run(rows, run_start..i, run_pane, out, labels)?;
                    match dropped {
                        Place::Late => self.counters.late += 1,
                        _ => self.counters.missing_timestamp += 1,
                    }
                    i += 1;
                    run_start = i;
                    continue;
                }
            };
            if run_start < i && pane_id != run_pane {
                self.flush_run(rows, run_start..i, run_pane, out, labels)?;
                run_start = i;
            }
            run_pane = pane_id;
            i += 1;
            self.counters.windowed += 1;
            if let Some(last) = self.panes.admit(pane_id, ts) {
                self.flush_run(rows, run_start..i, run_pane, out, labels)?;
                run_start = i;
                self.complete_through(last, out)?;
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
        let (plan, reference) = (&self.plan, self.reference.as_ref());
        let mut fresh = |spare| fresh_columns(plan, reference, spare);
        let ts = rows.ts_range(range.clone()).iter().flatten().copied();
        self.panes.add(pane_id, range.len(), ts, rows.last_version(range.clone()), &mut fresh, |columns| {
            for (state, column) in columns.iter_mut().zip(rows.columns()) {
                state.update_rows(rows, column, range.clone());
            }
        })
    }

    /// Takes rows `range` into the baseline reference's columns.
    fn take_baseline(&mut self, rows: &ModelRows, range: std::ops::Range<usize>) {
        let baseline = &mut self.baseline;
        if baseline.columns.is_empty() {
            // Sized for the whole baseline up front, within 64 MiB of
            // reservations for all columns together (more grows as usual):
            // growing by doubling copied each column about twice over and
            // touched fresh pages at every step.
            const RESERVE_BYTES: usize = 64 << 20;
            let per_column = RESERVE_BYTES / (rows.columns().len().max(1) * std::mem::size_of::<Option<String>>());
            let room = (self.plan.baseline_events.unwrap_or(0) as usize).min(per_column);
            baseline.columns = rows
                .columns()
                .iter()
                .map(|c| match c {
                    RowColumn::Numeric(_) => ColumnData::Numeric(Vec::with_capacity(room)),
                    RowColumn::Categorical(_) => ColumnData::Categorical(Vec::with_capacity(room)),
                })
                .collect();
        }
        for (data, column) in baseline.columns.iter_mut().zip(rows.columns()) {
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
        baseline.rows += range.len() as u64;
        self.counters.baseline += range.len() as u64;
    }

    fn build_baseline(&mut self) -> Result<()> {
        let Baseline { columns, rows } = std::mem::take(&mut self.baseline);
        let source = format!("baseline: first {rows} events of the stream");
        self.reference = Some(self.plan.reference_from_columns(rows, columns, source)?);
        Ok(())
    }

    /// Completes every open pane with id ≤ `last`, in order, evaluating windows.
    fn complete_through(&mut self, last: i64, out: &mut Outcome) -> Result<()> {
        let Self { plan, reference, panes, alerts, quality, counters, .. } = self;
        let reference = reference.as_ref();
        let mut fresh = |spare| fresh_columns(plan, reference, spare);
        let mut entered = |e: Entered<'_, Vec<ColumnState>>| window_entered(plan, reference, alerts, quality, counters, e, out);
        panes.complete_through(last, &mut fresh, &mut entered)
    }

    /// End of bounded input: event-time windows close every pane (the
    /// watermark moves to +∞); count windows keep an incomplete last pane
    /// unevaluated.
    pub fn finish(&mut self, out: &mut Outcome) -> Result<()> {
        if let Some(last) = self.panes.end_of_input() {
            self.complete_through(last, out)?;
        }
        if let Some(q) = &mut self.quality {
            q.finish(out)?;
        }
        Ok(())
    }

    /// The model's window-stage state, to be written out. A model with
    /// `quality` is refused: its join store is not part of the snapshot yet,
    /// and a restore without it would be a different answer.
    pub fn snapshot(&self) -> Result<ModelSnapshot> {
        if self.quality.is_some() {
            return Err(Error::State(format!("model {:?}: the quality stage's state cannot be saved yet", self.plan.name)));
        }
        Ok(ModelSnapshot {
            version: SNAPSHOT_VERSION,
            model: self.plan.name.clone(),
            layout: Layout::of(&self.plan),
            baseline_reference: self.plan.baseline_events.and(self.reference.clone()),
            baseline: self.baseline.clone(),
            panes: self.panes.clone(),
            alerts: self.alerts.clone(),
            counters: self.counters,
        })
    }

    /// A model's state from a snapshot taken under the same plan:
    /// `reference` is the configured one (`None` for a baseline model, whose
    /// reference is in the snapshot once built). A snapshot of another
    /// version, model, window or column layout is refused with the reason.
    pub fn restore(plan: ModelPlan, reference: Option<ModelProfile>, snapshot: ModelSnapshot) -> Result<Self> {
        let refuse = |why: String| Error::State(format!("model {:?}: snapshot refused: {why}", plan.name));
        if snapshot.version != SNAPSHOT_VERSION {
            return Err(refuse(format!("format version {} (this build reads {SNAPSHOT_VERSION})", snapshot.version)));
        }
        if snapshot.model != plan.name {
            return Err(refuse(format!("it is of model {:?}", snapshot.model)));
        }
        if snapshot.layout != Layout::of(&plan) {
            return Err(refuse("its columns or detectors are not the model's (names, kinds, order, metrics)".into()));
        }
        if snapshot.panes.spec() != plan.window {
            return Err(refuse(format!("its window {:?} is not the configured {:?}", snapshot.panes.spec(), plan.window)));
        }
        snapshot.panes.check().map_err(refuse)?;
        let cells = plan.columns.len() * plan.detectors.len();
        if snapshot.alerts.columns.len() != cells {
            return Err(refuse(format!("{} drift states for {cells} (column, detector) pairs", snapshot.alerts.columns.len())));
        }
        let reference = match (plan.baseline_events, reference, snapshot.baseline_reference) {
            (Some(_), None, built) => match built {
                Some(mut r) => {
                    r.sort_after_load();
                    // The reference built from the stream: checked as a profile file is.
                    plan.check_profile(&r).map_err(|e| refuse(format!("its baseline reference: {e}")))?;
                    Some(r)
                }
                None => None,
            },
            (None, Some(configured), None) => Some(configured),
            (None, None, _) => return Err(refuse("no reference for a model without a baseline".into())),
            (None, Some(_), Some(_)) => return Err(refuse("it holds a baseline but the model has a configured reference".into())),
            (Some(_), Some(_), _) => return Err(Error::Internal("a baseline model was given a reference".into())),
        };
        if let Some(r) = &reference {
            let names_match = r.columns.len() == plan.columns.len() && r.columns.iter().zip(&plan.columns).all(|(a, b)| a.name == b.name);
            if !names_match {
                return Err(refuse("the reference's columns are not the model's".into()));
            }
            for data in snapshot.panes.all_data() {
                if data.len() != r.columns.len() {
                    return Err(refuse(format!("a pane of {} columns for {}", data.len(), r.columns.len())));
                }
                for ((state, c), p) in data.iter().zip(&r.columns).zip(&plan.columns) {
                    let fresh = empty_column(&plan, p, c)?;
                    state.check(&c.reference, &plan.window_sketch, fresh).map_err(|why| refuse(format!("column {:?}: {why}", p.name)))?;
                }
            }
        } else if snapshot.panes.all_data().next().is_some() {
            return Err(refuse("it holds windows but no reference".into()));
        }
        if snapshot.baseline.rows > 0 {
            let kinds_match = snapshot.baseline.columns.len() == plan.columns.len()
                && snapshot.baseline.columns.iter().zip(&plan.columns).all(|(d, c)| {
                    matches!(
                        (d, c.kind),
                        (ColumnData::Numeric(_), FeatureType::Numeric) | (ColumnData::Categorical(_), FeatureType::Categorical)
                    )
                });
            let rows_match = snapshot.baseline.columns.iter().all(|d| match d {
                ColumnData::Numeric(v) => v.len() as u64 == snapshot.baseline.rows,
                ColumnData::Categorical(v) => v.len() as u64 == snapshot.baseline.rows,
            });
            if !kinds_match || !rows_match {
                return Err(refuse("its baseline's columns do not match the model's columns".into()));
            }
        }
        Ok(Self {
            plan,
            reference,
            baseline: snapshot.baseline,
            panes: snapshot.panes,
            alerts: snapshot.alerts,
            quality: None,
            counters: snapshot.counters,
        })
    }
}

/// Columns for a new pane: `spare` (a pane that left the window), cleared,
/// when there is one (numeric sketches keep their allocations: no page
/// faults for fresh stores at every slide), else new ones. Categorical
/// columns are always new, so a pane starts with exactly the reference's
/// categories.
fn fresh_columns(plan: &ModelPlan, reference: Option<&ModelProfile>, spare: Option<Vec<ColumnState>>) -> Result<Vec<ColumnState>> {
    let reference = reference.ok_or_else(|| Error::Internal("window before reference".into()))?;
    let Some(mut columns) = spare else {
        return plan.columns.iter().zip(&reference.columns).map(|(c, r)| empty_column(plan, c, r)).collect();
    };
    for ((state, c), r) in columns.iter_mut().zip(&plan.columns).zip(&reference.columns) {
        match state {
            ColumnState::Numeric(w) => w.clear(),
            ColumnState::Categorical { .. } => *state = empty_column(plan, c, r)?,
        }
    }
    Ok(columns)
}

fn empty_column(plan: &ModelPlan, c: &Column, r: &ColumnProfile) -> Result<ColumnState> {
    Ok(match &r.reference {
        ColumnReference::Numeric { reference } => ColumnState::Numeric(reference.new_window(&plan.window_sketch)?),
        // Room for `max_categories` new names in every pane of the
        // window, so merging panes loses none: which names the window
        // shows is chosen at evaluation from its counts
        // (`CategoryCounts::limited`), not by arrival order.
        ColumnReference::Categorical { counts, .. } => ColumnState::Categorical {
            counts: CategoryCounts::with_categories(
                counts.distinct().saturating_add(c.max_categories.saturating_mul(plan.window_panes() as usize)),
                counts.entries().iter().map(|e| e.0),
            ),
            missing: 0,
        },
    })
}

/// A pane entered the window: a full window is evaluated, and the quality
/// stage learns of the pane.
fn window_entered(
    plan: &ModelPlan,
    reference: Option<&ModelProfile>,
    alerts: &mut Alerts,
    quality: &mut Option<QualityState>,
    counters: &mut ModelCounters,
    mut e: Entered<'_, Vec<ColumnState>>,
    out: &mut Outcome,
) -> Result<()> {
    if e.full {
        evaluate(plan, reference, alerts, counters, &mut e, out)?;
        out.window_seconds.push(e.closed_at.elapsed().as_secs_f64());
    }
    if let Some(q) = quality {
        let window = (e.full && e.bounds.count > 0).then(|| (e.bounds, e.version().map(str::to_owned)));
        q.pane_completed(e.pane, e.pane_end_ms, window, out)?;
    }
    Ok(())
}

/// Evaluates a full window: every detector on every column it applies to,
/// then the drift states.
fn evaluate(
    plan: &ModelPlan,
    reference: Option<&ModelProfile>,
    alerts: &mut Alerts,
    counters: &mut ModelCounters,
    e: &mut Entered<'_, Vec<ColumnState>>,
    out: &mut Outcome,
) -> Result<()> {
    let bounds = e.bounds;
    if bounds.count == 0 {
        return Ok(());
    }
    counters.windows += 1;
    let version = e.version().map(str::to_owned);
    let reference = reference.ok_or_else(|| Error::Internal("evaluation before reference".into()))?;
    let results = compute(plan, reference, e.window)?;
    let site = EventSite { model: &plan.name, version: version.as_deref(), window: bounds, reference_rows: reference.rows };
    let at = match plan.window {
        WindowSpec::Count { .. } => bounds.end_index.unwrap_or(0) as i64,
        WindowSpec::Time { .. } => bounds.end_ms.unwrap_or(0),
    };
    let now_ms = bounds.end_ms;
    let mut drifting = vec![false; plan.columns.len()];
    for (d, det) in plan.detectors.iter().enumerate() {
        let adjusted = correct(plan.correction, &results[d]);
        for (ci, col) in plan.columns.iter().enumerate() {
            let Some(c) = &results[d][ci] else { continue };
            let p = adjusted[ci];
            let p_threshold = det.p_value.or(noise_gate(det.metric, c));
            let breach = test_breach(c.value, p, det.threshold, p_threshold);
            let state = &mut alerts.columns[ci * plan.detectors.len() + d];
            let transition = step(state, breach, c.value.is_some(), at, now_ms, &plan.alerting);
            let reading = Reading {
                feature: &col.name,
                metric: det.metric.as_str(),
                value: c.value,
                threshold: det.threshold,
                p_value: p,
                p_value_threshold: p_threshold,
            };
            out.transition(transition, |kind| site.event(kind, reading, state));
            drifting[ci] |= state.drifting;
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
        let monitored: Vec<bool> = plan.columns.iter().map(|c| !c.is_prediction).collect();
        let (value, breach) = dataset_share(&monitored, &drifting, share);
        let transition = step_dataset(&mut alerts.dataset, breach, at, now_ms, &plan.alerting);
        let reading =
            Reading { feature: "*", metric: "dataset", value: Some(value), threshold: Some(share), p_value: None, p_value_threshold: None };
        out.transition(transition, |kind| site.event(kind, reading, &alerts.dataset));
    }
    Ok(())
}

impl ModelPlan {
    /// Panes per window.
    pub fn window_panes(&self) -> u64 {
        match self.window {
            WindowSpec::Count { panes, .. } | WindowSpec::Time { panes, .. } => panes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::model::{build_references, Plan};
    use crate::quality::NoLabels;

    /// A model with two numeric and two categorical features (one of a few
    /// names, one of hundreds under a cap of 5, so merged panes overflow
    /// their cap), every kind of detector, dataset drift, a baseline of the
    /// first 600 events.
    fn config(window: &str) -> Config {
        config_with(window, "a", "b")
    }

    /// The same model with a reference file instead of the baseline: 600
    /// rows like the stream's undrifted ones.
    fn config_with_file(window: &str) -> Config {
        let dir = std::env::temp_dir().join(format!("dw-window-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("reference.csv");
        let mut csv = String::from("a,b,c,d\n");
        for i in 0..600u64 {
            let h = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40;
            csv.push_str(&format!(
                "{},{},{},n{}\n",
                (h % 1000) as f64 / 1000.0,
                h % 10,
                ["x", "y", "z"][(h % 3) as usize],
                (h % 97) * (h % 3)
            ));
        }
        std::fs::write(&path, csv).unwrap();
        let yaml = config_yaml(window, "a", "b").replace("{ baseline_events: 600 }", &format!("{{ path: {} }}", path.display()));
        Config::from_yaml(&yaml).unwrap()
    }

    fn config_with(window: &str, first: &str, second: &str) -> Config {
        Config::from_yaml(&config_yaml(window, first, second)).unwrap()
    }

    fn config_yaml(window: &str, first: &str, second: &str) -> String {
        format!(
            "models:\n  - name: m\n    reference: {{ baseline_events: 600 }}\n    window: {window}\n    features:\n      - {{ name: {first}, type: numeric }}\n      - {{ name: {second}, type: numeric }}\n      - {{ name: c, type: categorical }}\n      - {{ name: d, type: categorical, max_categories: 5 }}\n    detectors:\n      - {{ metric: psi, threshold: 0.1 }}\n      - {{ metric: ks, p_value: 0.01 }}\n      - {{ metric: jensen_shannon, threshold: 0.05 }}\n      - {{ metric: chi2, p_value: 0.01 }}\n    alerting: {{ consecutive: 2, recover_after: 2, dataset_drift_share: 0.5 }}\n"
        )
    }

    /// Batches of rows: a drift of `a`, `b` and `c` from event 2 000 to
    /// 3 500, timestamps 1 s apart with some disorder, a few missing values.
    fn batches(plan: &ModelPlan, events: u64, batch: u64) -> Vec<ModelRows> {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 11) as f64 / (1u64 << 53) as f64
        };
        (0..events)
            .step_by(batch as usize)
            .map(|start| {
                let mut rows = ModelRows::new(plan, batch as usize);
                for i in start..(start + batch).min(events) {
                    let drift = (2_000..3_500).contains(&i);
                    let jitter = (next() * 4_000.0) as i64;
                    rows.start_row(Some(i as i64 * 1_000 + jitter), Some(if i < 2_500 { "v1" } else { "v2" }));
                    let a = next() + if drift { 0.6 } else { 0.0 };
                    rows.push_number(0, (next() > 0.02).then_some(a));
                    rows.push_number(1, Some((next() * 10.0).floor()));
                    let c = ["x", "y", "z", "w"][(next() * if drift { 4.0 } else { 3.0 }) as usize];
                    rows.push_category(2, Some(c));
                    // Hundreds of names, more of them during the drift.
                    let d = format!("n{}", (next() * next() * if drift { 600.0 } else { 300.0 }) as u32);
                    rows.push_category(3, Some(&d));
                }
                rows
            })
            .collect()
    }

    fn lines(out: &Outcome) -> Vec<String> {
        let e = out.evaluations.iter().map(|e| serde_json::to_string(e).unwrap());
        e.chain(out.events.iter().map(|e| serde_json::to_string(e).unwrap())).collect()
    }

    fn fresh(config: &Config) -> ModelState {
        let plan = Plan::new(config).unwrap();
        let references = build_references(config, &plan).unwrap();
        ModelState::new(plan.models[0].clone(), references.into_iter().next().unwrap())
    }

    #[test]
    fn a_restored_model_continues_as_if_never_stopped() {
        for window in [
            "{ type: sliding, events: 400, slide: 100 }",
            "{ type: tumbling, events: 250 }",
            "{ type: sliding, duration: 400s, slide: 100s, allowed_lateness: 2s }",
        ] {
            for config in [config(window), config_with_file(window)] {
                let plan = Plan::new(&config).unwrap();
                let all = batches(&plan.models[0], 5_000, 170);
                let mut whole = fresh(&config);
                let mut expected = Outcome::default();
                for rows in &all {
                    whole.apply_rows(rows, &mut expected, &mut NoLabels).unwrap();
                }
                whole.finish(&mut expected).unwrap();
                assert!(expected.events.iter().any(|e| e.kind == "drift"), "{window}: the scenario drifts");
                assert!(expected.events.iter().any(|e| e.kind == "resolved"), "{window}: and recovers");
                // Cut inside the baseline, just after it, in the drift, in the recovery.
                for cut in [2, 4, 13, 19, 25] {
                    let mut first = fresh(&config);
                    let mut out = Outcome::default();
                    for rows in &all[..cut] {
                        first.apply_rows(rows, &mut out, &mut NoLabels).unwrap();
                    }
                    let json = serde_json::to_string(&first.snapshot().unwrap()).unwrap();
                    drop(first);
                    let snapshot: ModelSnapshot = serde_json::from_str(&json).unwrap();
                    let plan = Plan::new(&config).unwrap();
                    let reference = build_references(&config, &plan).unwrap().pop().unwrap();
                    let mut second = ModelState::restore(plan.models[0].clone(), reference, snapshot).unwrap();
                    for rows in &all[cut..] {
                        second.apply_rows(rows, &mut out, &mut NoLabels).unwrap();
                    }
                    second.finish(&mut out).unwrap();
                    assert_eq!(lines(&out), lines(&expected), "{window}, cut after batch {cut}");
                    assert_eq!(second.counters, whole.counters, "{window}, cut after batch {cut}");
                }
            }
        }
        std::fs::remove_dir_all(std::env::temp_dir().join(format!("dw-window-{}", std::process::id()))).ok();
    }

    #[test]
    fn a_snapshot_of_another_version_model_or_window_is_refused() {
        let config = config("{ type: sliding, events: 400, slide: 100 }");
        let plan = Plan::new(&config).unwrap();
        let mut m = fresh(&config);
        let mut out = Outcome::default();
        for rows in &batches(&plan.models[0], 1_500, 100) {
            m.apply_rows(rows, &mut out, &mut NoLabels).unwrap();
        }
        let snapshot = m.snapshot().unwrap();
        let refused = |s: ModelSnapshot, plan: &ModelPlan| match ModelState::restore(plan.clone(), None, s) {
            Err(Error::State(why)) => why,
            other => panic!("expected a refusal, got {other:?}"),
        };
        let mut s = snapshot.clone();
        s.version = SNAPSHOT_VERSION + 1;
        assert!(refused(s, &plan.models[0]).contains("format version"));
        let mut s = snapshot.clone();
        s.model = "other".into();
        assert!(refused(s, &plan.models[0]).contains("of model \"other\""));
        let other = Plan::new(&self::config("{ type: sliding, events: 800, slide: 100 }")).unwrap();
        assert!(refused(snapshot.clone(), &other.models[0]).contains("window"));
        // Features reordered (same kinds), or another detector: their states would be mixed up.
        let swapped = Plan::new(&config_with("{ type: sliding, events: 400, slide: 100 }", "b", "a")).unwrap();
        assert!(refused(snapshot.clone(), &swapped.models[0]).contains("columns or detectors"));
        let hellinger =
            config_yaml("{ type: sliding, events: 400, slide: 100 }", "a", "b").replace("metric: jensen_shannon", "metric: hellinger");
        let other = Plan::new(&Config::from_yaml(&hellinger).unwrap()).unwrap();
        assert!(refused(snapshot.clone(), &other.models[0]).contains("columns or detectors"));
        // Another category cap: the panes would not merge with new ones.
        let capped = config_yaml("{ type: sliding, events: 400, slide: 100 }", "a", "b").replace("max_categories: 5", "max_categories: 6");
        let other = Plan::new(&Config::from_yaml(&capped).unwrap()).unwrap();
        let why = refused(snapshot.clone(), &other.models[0]);
        assert!(why.contains("column \"d\"") && why.contains("caps"), "{why}");
        // A corrupt sketch (a window's exact store of another capacity, holding more than it) is refused, never run.
        let mut json = serde_json::to_value(&snapshot).unwrap();
        let exact = &mut json["panes"]["running"][0]["numeric"]["exact"];
        assert_eq!(exact["capacity"], plan.models[0].window_sketch.exact_capacity);
        exact["capacity"] = 3.into();
        let bad: ModelSnapshot = serde_json::from_value(json).unwrap();
        let why = refused(bad, &plan.models[0]);
        assert!(why.contains("column \"a\""), "{why}");
        // The same plan restores.
        assert!(ModelState::restore(plan.models[0].clone(), None, snapshot).is_ok());
    }
}
