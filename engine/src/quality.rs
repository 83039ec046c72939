//! Model quality from delayed labels: the join of labels with the
//! predictions they belong to, realised quality per window of predictions,
//! and its drift state.
//!
//! ```text
//! prediction (id, class/value, score, time) ──► join store (bounded, oldest evicted) ◄── label (id, truth, time)
//!        │ pane of the model's window                    │ joined: the pair goes to the prediction's pane
//!        ▼                                               ▼
//!   window closes ─► evaluated (labels so far) ─► re-evaluated as labels arrive ─► final when label_ttl has
//!                                                                                  passed its end: drift state
//! ```
//!
//! Everything here runs in the in-order window stage, driven by the
//! model's own events: the clock is the latest event time seen among the
//! model's predictions and labels, so a replay gives the same result on
//! every run. A pane stops taking labels once the clock has passed its end
//! plus `label_ttl`; a window is final when its last pane is. Only final
//! windows step the drift state machine (debounce, recovery, cooldown and
//! ids as for feature drift), so an alert never rests on a window whose
//! labels are still coming.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::hash::BuildHasher;

use driftwatch_detectors::cbpe::{Cbpe, EstimatedMetric, ExpectedQuality};
use driftwatch_detectors::quality::{BinaryClassification, Regression, DEFAULT_AUC_BINS};
use serde::Serialize;

use crate::config::AlertingConfig;
use crate::config::{QualityMetric, QualityTask, WindowSpec};
use crate::model::{ModelPlan, QualityBound, QualityPlan};
use crate::window::{event_id, rfc3339, step_with, DriftEvent, DriftState, Outcome, WindowBounds};
use crate::{Error, Result};

/// Scores held per pane for an exact ROC AUC before the accumulator falls
/// back to its histogram (see `driftwatch_detectors::quality`).
pub const PANE_SCORE_CAPACITY: usize = 1 << 20;

/// One label event, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelRecord {
    /// Index of the model (plan order).
    pub model: usize,
    /// The prediction id it belongs to.
    pub id: Box<str>,
    /// The ground truth: 0 or 1 for a classifier, a number for a regression.
    pub label: f64,
    /// Event time (ms).
    pub ts: i64,
}

/// Where the window stage takes labels from, in order.
pub trait LabelFeed {
    /// The next label of `model` that comes before a prediction at `ts`
    /// (its time is earlier), if any; `None` for `ts`: any next label (the
    /// predictions have ended).
    fn next_before(&mut self, model: usize, ts: Option<i64>) -> Result<Option<LabelRecord>>;
}

/// A feed without labels.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoLabels;

impl LabelFeed for NoLabels {
    fn next_before(&mut self, _model: usize, _ts: Option<i64>) -> Result<Option<LabelRecord>> {
        Ok(None)
    }
}

/// What happened to labels and predictions in the join.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct JoinCounters {
    /// Labels joined with their prediction.
    pub joined: u64,
    /// Labels that came before their prediction and were held.
    pub early: u64,
    /// Predictions whose label did not come within `label_ttl`.
    pub expired: u64,
    /// Predictions evicted from the full join store before their label came.
    pub evicted: u64,
    /// Labels for a prediction that already had one (the first wins).
    pub duplicate: u64,
    /// Labels that matched no prediction within `early_label_ttl`, or that
    /// came `label_ttl` or more after their prediction.
    pub orphan: u64,
}

impl JoinCounters {
    /// (outcome, count) pairs in the order of `driftwatch_labels_total`.
    pub fn outcomes(&self) -> [(&'static str, u64); 6] {
        [
            ("joined", self.joined),
            ("early", self.early),
            ("expired", self.expired),
            ("evicted", self.evicted),
            ("duplicate", self.duplicate),
            ("orphan", self.orphan),
        ]
    }
}

/// The reference's own quality and, with `estimate: cbpe`, the estimator
/// fitted on it.
#[derive(Debug, Clone, Default)]
pub struct ReferenceQuality {
    /// The reference's value per metric of the plan (empty: none).
    pub values: Vec<Option<f64>>,
    /// CBPE fitted on the reference's labels and scores.
    pub cbpe: Option<Cbpe>,
    /// The reference's labels, for label drift.
    pub labels: Option<ReferenceLabels>,
}

/// The reference's labels that a window's labels are tested against.
#[derive(Debug, Clone)]
pub enum ReferenceLabels {
    /// Counts of class 0 and class 1 (chi-square).
    Classes([u64; 2]),
    /// Every value, sorted ascending (two-sample KS).
    Values(Vec<f64>),
}

/// Label values a regression's pane keeps for label drift at most (8 MiB);
/// a window holding a pane past it reports label drift as
/// `insufficient_data` with `method: "capacity_exceeded"`.
pub const PANE_LABEL_CAPACITY: usize = 1 << 20;

/// The confidence band of an estimate.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Band {
    /// Lower end (`null` without a band: fewer than two reference chunks).
    pub lower: Option<f64>,
    /// Upper end.
    pub upper: Option<f64>,
}

/// One evaluation of a quality metric at a window of predictions.
#[derive(Debug, Clone, Serialize)]
pub struct QualityEvaluation {
    /// Model name.
    pub model: String,
    /// Version of the window's last event.
    pub model_version: Option<String>,
    /// `quality` (realised, from labels) or `estimated_quality` (CBPE, from scores).
    pub kind: &'static str,
    /// Metric name.
    pub metric: &'static str,
    /// The metric over the window's labelled predictions; `null` with `status: insufficient_data`.
    pub value: Option<f64>,
    /// The metric on the reference table, when configured.
    pub reference_value: Option<f64>,
    /// The bound a breach crosses (`min`, `max`, or the reference value minus `max_drop` / plus `max_rise`).
    pub threshold: Option<f64>,
    /// Predictions of the window that have their label.
    pub labelled: u64,
    /// `labelled` over the window's predictions that can be joined.
    pub coverage: f64,
    /// Whether `label_ttl` has passed the window's end (no label can change
    /// it any more); an estimate is final when made.
    #[serde(rename = "final")]
    pub is_final: bool,
    /// The estimate's confidence band (`estimated_quality` lines only).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub band: Option<Band>,
    /// `ok` or `insufficient_data`.
    pub status: &'static str,
    /// Whether the alert condition holds.
    pub breach: bool,
    /// Drift state of the metric (`ok` or `drifting`; it changes on final evaluations only).
    pub state: &'static str,
    /// The predictions' window.
    pub window: WindowBounds,
}

// ---------------------------------------------------------------------------
// Join store
// ---------------------------------------------------------------------------

/// A prediction waiting for its label (or joined, kept to spot duplicates).
#[derive(Debug, Clone)]
struct Slot {
    id: Box<str>,
    pane: i64,
    ts: i64,
    /// A classifier's score with the predicted class in its sign bit
    /// (negative, `-0.0` included, for class 1), a regression's predicted
    /// value; NaN once joined (it is not needed any more). One field keeps
    /// the slot at 40 bytes.
    value: f64,
}

// The join store's bound (and `validate`'s memory figure) counts on it.
const _: () = assert!(std::mem::size_of::<Option<Slot>>() == 40);

impl Slot {
    fn new(task: QualityTask, id: &str, pane: i64, ts: i64, predicted: f64, score: f64) -> Self {
        let value = match task {
            // Scores lie in [0, 1] (the decoder refuses others), so the sign bit is free.
            QualityTask::BinaryClassification if predicted == 1.0 => -score.abs(),
            QualityTask::BinaryClassification => score.abs(),
            QualityTask::Regression => predicted,
        };
        Slot { id: id.into(), pane, ts, value }
    }

    /// The predicted class or value and the score (a regression's score is its value).
    fn prediction(&self, task: QualityTask) -> (f64, f64) {
        match task {
            QualityTask::BinaryClassification => (f64::from(u8::from(self.value.is_sign_negative())), self.value.abs()),
            QualityTask::Regression => (self.value, self.value),
        }
    }

    fn joined(&self) -> bool {
        self.value.is_nan()
    }
}

/// The predictions of one model by id, in arrival order: a ring of slots
/// and a hash table of their sequence numbers (the id is stored once).
/// Bounded: inserting into a full store evicts the oldest slot.
#[derive(Debug)]
struct JoinStore {
    ring: VecDeque<Option<Slot>>,
    /// Sequence number of `ring[0]`.
    base: u64,
    /// One `u64` per slot: the id's 32-bit hash above the slot's sequence
    /// number modulo 2³² (the ring never holds 2³² slots), so a resize
    /// rehashes without reading the ring.
    index: hashbrown::HashTable<u64>,
    hasher: foldhash::fast::FixedState,
    live: usize,
    pending: usize,
    max: usize,
}

/// The table's hash of an id's 32-bit hash (all 64 bits depend on it).
fn spread(h: u32) -> u64 {
    u64::from(h).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

fn entry_hash(entry: u64) -> u32 {
    (entry >> 32) as u32
}

impl JoinStore {
    fn new(max: usize) -> Self {
        Self {
            ring: VecDeque::new(),
            base: 0,
            index: hashbrown::HashTable::new(),
            hasher: foldhash::fast::FixedState::with_seed(0x6472_6966_7477_6174),
            live: 0,
            pending: 0,
            max,
        }
    }

    fn hash(&self, id: &str) -> u32 {
        (self.hasher.hash_one(id) >> 32) as u32
    }

    /// Ring position of an index entry.
    fn position(&self, entry: u64) -> usize {
        (entry as u32).wrapping_sub(self.base as u32) as usize
    }

    fn slot(&self, seq: u64) -> Option<&Slot> {
        self.ring.get((seq - self.base) as usize).and_then(Option::as_ref)
    }

    fn find(&self, id: &str) -> Option<u64> {
        let h = self.hash(id);
        self.index
            .find(spread(h), |&e| {
                entry_hash(e) == h && self.ring.get(self.position(e)).and_then(Option::as_ref).is_some_and(|s| &*s.id == id)
            })
            .map(|&e| self.base + self.position(e) as u64)
    }

    fn get_mut(&mut self, seq: u64) -> Option<&mut Slot> {
        self.ring.get_mut((seq - self.base) as usize).and_then(Option::as_mut)
    }

    /// Removes slot `seq`.
    fn remove(&mut self, seq: u64) -> Option<Slot> {
        let slot = self.ring.get_mut((seq - self.base) as usize)?.take()?;
        let h = self.hash(&slot.id);
        if let Ok(entry) = self.index.find_entry(spread(h), |&e| e as u32 == seq as u32) {
            entry.remove();
        }
        self.live -= 1;
        if !slot.joined() {
            self.pending -= 1;
        }
        while matches!(self.ring.front(), Some(None)) {
            self.ring.pop_front();
            self.base += 1;
        }
        Some(slot)
    }

    /// The oldest slot's sequence number.
    fn front(&self) -> Option<u64> {
        self.ring.front().and_then(|s| s.as_ref()).map(|_| self.base)
    }

    /// Inserts a slot (the caller has made room).
    fn insert(&mut self, slot: Slot) {
        let seq = self.base + self.ring.len() as u64;
        let h = self.hash(&slot.id);
        if !slot.joined() {
            self.pending += 1;
        }
        self.ring.push_back(Some(slot));
        self.index.insert_unique(spread(h), (u64::from(h) << 32) | u64::from(seq as u32), |&e| spread(entry_hash(e)));
        self.live += 1;
    }

    fn mark_joined(&mut self, seq: u64) {
        if let Some(slot) = self.get_mut(seq) {
            if !slot.joined() {
                slot.value = f64::NAN;
                self.pending -= 1;
            }
        }
    }

    fn size_bytes(&self) -> usize {
        self.ring.capacity() * std::mem::size_of::<Option<Slot>>()
            + self.index.capacity() * (std::mem::size_of::<u64>() + 1)
            + self.ring.iter().flatten().map(|s| s.id.len()).sum::<usize>()
    }
}

/// Labels that came before their prediction, held for `early_label_ttl`.
#[derive(Debug, Default)]
struct EarlyStore {
    labels: HashMap<Box<str>, (f64, i64)>,
    /// Arrival order, for expiry and eviction (entries already taken are skipped).
    order: VecDeque<(i64, Box<str>)>,
}

// ---------------------------------------------------------------------------
// Quality state of one model
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Accumulator {
    Binary(BinaryClassification),
    Regression(Regression),
}

impl Accumulator {
    fn new(task: QualityTask) -> Result<Self> {
        Ok(match task {
            QualityTask::BinaryClassification => Accumulator::Binary(BinaryClassification::new(PANE_SCORE_CAPACITY, DEFAULT_AUC_BINS)?),
            QualityTask::Regression => Accumulator::Regression(Regression::new()),
        })
    }

    fn add(&mut self, label: f64, predicted: f64, score: f64) -> Result<()> {
        match self {
            Accumulator::Binary(b) => b.update(label as u8, predicted as u8, score)?,
            Accumulator::Regression(r) => r.update(label, predicted),
        }
        Ok(())
    }

    fn merge(&mut self, other: &Self) -> Result<()> {
        match (self, other) {
            (Accumulator::Binary(a), Accumulator::Binary(b)) => a.merge(b)?,
            (Accumulator::Regression(a), Accumulator::Regression(b)) => a.merge(b),
            _ => return Err(Error::Internal("merging quality accumulators of different tasks".into())),
        }
        Ok(())
    }

    fn size_bytes(&self) -> usize {
        match self {
            Accumulator::Binary(b) => b.size_bytes(),
            Accumulator::Regression(r) => r.size_bytes(),
        }
    }
}

/// Metric values of an accumulator (`None`: undefined, e.g. no labels, or
/// ROC AUC with one class).
/// Each metric's value (`None` where it is not finite; precision, recall
/// and F1 without positives are 0 as scikit-learn's `zero_division=0`).
fn metric_values(acc: &Accumulator, metrics: &[QualityMetric]) -> Result<Vec<Option<f64>>> {
    let values: Vec<Option<f64>> = match acc {
        Accumulator::Binary(b) => {
            if b.count() == 0 {
                return Ok(vec![None; metrics.len()]);
            }
            let q = b.quality()?;
            metrics
                .iter()
                .map(|m| match m {
                    QualityMetric::Accuracy => Some(q.accuracy),
                    QualityMetric::Precision => Some(q.precision),
                    QualityMetric::Recall => Some(q.recall),
                    QualityMetric::F1 => Some(q.f1),
                    QualityMetric::RocAuc => q.roc_auc,
                    QualityMetric::LogLoss => Some(q.log_loss),
                    QualityMetric::Brier => Some(q.brier),
                    QualityMetric::Mae | QualityMetric::Rmse | QualityMetric::Mape => None,
                })
                .collect()
        }
        Accumulator::Regression(r) => {
            if r.count() == 0 {
                return Ok(vec![None; metrics.len()]);
            }
            let q = r.evaluate()?;
            metrics
                .iter()
                .map(|m| match m {
                    QualityMetric::Mae => Some(q.mae),
                    QualityMetric::Rmse => Some(q.rmse),
                    QualityMetric::Mape => Some(q.mape),
                    _ => None,
                })
                .collect()
        }
    };
    Ok(values.into_iter().map(|v| v.filter(|x| x.is_finite())).collect())
}

/// The reference's own quality, per metric of the plan.
pub fn reference_quality(task: QualityTask, metrics: &[QualityMetric], pairs: &[(f64, f64, f64)]) -> Result<Vec<Option<f64>>> {
    let mut acc = match task {
        QualityTask::BinaryClassification => Accumulator::Binary(BinaryClassification::new(pairs.len().max(1), DEFAULT_AUC_BINS)?),
        QualityTask::Regression => Accumulator::Regression(Regression::new()),
    };
    for &(label, predicted, score) in pairs {
        acc.add(label, predicted, score)?;
    }
    if let Accumulator::Binary(b) = &mut acc {
        b.evaluate()?;
    }
    metric_values(&acc, metrics)
}

/// A pane's labelled pairs.
#[derive(Debug)]
struct QualityPane {
    acc: Accumulator,
    /// The expected confusion of its predictions (with `estimate`).
    expected: Option<ExpectedQuality>,
    /// The labels joined into it (a regression with label drift), at most
    /// [`PANE_LABEL_CAPACITY`].
    labels: Vec<f64>,
    /// Whether more labels joined than `labels` could keep.
    labels_overflow: bool,
    /// Predictions registered (with an id and valid fields).
    predictions: u64,
    /// Of which joined with a label.
    labelled: u64,
    /// Of which still waiting in the join store.
    pending: u64,
}

/// A window evaluated at its close and not yet final.
#[derive(Debug, Clone)]
struct ClosedWindow {
    bounds: WindowBounds,
    version: Option<String>,
}

/// Quality counters of one model.
#[derive(Debug, Default, Clone, Serialize)]
pub struct QualityCounters {
    /// The join's outcomes.
    #[serde(flatten)]
    pub join: JoinCounters,
    /// Predictions waiting for their label now.
    pub pending: u64,
    /// Labels held, waiting for their prediction, now.
    pub early_pending: u64,
    /// Bytes of the join store.
    pub join_store_bytes: u64,
}

/// Realised quality of one model.
#[derive(Debug)]
pub struct QualityState {
    plan: QualityPlan,
    model: String,
    /// The model's index (plan order).
    plan_index: usize,
    alerting: AlertingConfig,
    window: WindowSpec,
    panes_per_window: i64,
    store: JoinStore,
    early: EarlyStore,
    panes: BTreeMap<i64, QualityPane>,
    /// Completed panes not yet final, with their end time (`None`: a count
    /// pane without timestamps, final only at the end of input).
    completed: BTreeMap<i64, Option<i64>>,
    /// Windows evaluated at close, by their last pane, not yet final.
    closed: BTreeMap<i64, ClosedWindow>,
    /// Panes that took labels since the last re-evaluation.
    dirty: BTreeSet<i64>,
    /// Panes up to this id take no more labels.
    final_through: Option<i64>,
    /// End time of the last completed pane that had one.
    last_end: Option<i64>,
    clock: Option<i64>,
    /// Whether a label may move the clock past the latest prediction time
    /// (replay: yes, it merges by event time; live: no, see [`QualityState::hold_clock_to_predictions`]).
    labels_lead: bool,
    /// The latest prediction time seen.
    latest_prediction: Option<i64>,
    reference: Vec<Option<f64>>,
    states: Vec<DriftState>,
    /// CBPE, fitted on the reference (with `estimate`).
    cbpe: Option<Cbpe>,
    /// The reference's value of each estimated metric.
    estimated_reference: Vec<Option<f64>>,
    estimated_states: Vec<DriftState>,
    /// The reference's labels (with label drift).
    label_reference: Option<ReferenceLabels>,
    label_state: DriftState,
    /// Label delays (label time − prediction time) in ms.
    delays: hdrhistogram::Histogram<u64>,
    counters: JoinCounters,
}

impl QualityState {
    /// State for `model`; `reference` holds the reference's value per metric (empty: none).
    ///
    /// # Errors
    ///
    /// [`Error::Internal`] when the plan estimates quality and `reference`
    /// has no fitted estimator.
    pub fn new(model: &ModelPlan, plan: QualityPlan, reference: ReferenceQuality) -> Result<Self> {
        let delays = hdrhistogram::Histogram::new(3).map_err(|e| Error::Internal(format!("label delay histogram: {e}")))?;
        let ReferenceQuality { values: reference, cbpe, labels: label_reference } = reference;
        if plan.label_drift.is_some() && label_reference.is_none() {
            return Err(Error::Internal(format!("model {:?}: label drift without the reference's labels", model.name)));
        }
        let reference = if reference.is_empty() { vec![None; plan.metrics.len()] } else { reference };
        if !plan.estimated.is_empty() && cbpe.is_none() {
            return Err(Error::Internal(format!("model {:?}: quality is estimated, and no estimator was fitted", model.name)));
        }
        let estimated_reference =
            plan.estimated.iter().map(|e| plan.metrics.iter().position(|m| m == e).and_then(|i| reference[i])).collect();
        Ok(Self {
            cbpe: if plan.estimated.is_empty() { None } else { cbpe },
            estimated_reference,
            estimated_states: vec![DriftState::default(); plan.estimated.len()],
            label_reference: if plan.label_drift.is_some() { label_reference } else { None },
            label_state: DriftState::default(),
            states: vec![DriftState::default(); plan.metrics.len()],
            store: JoinStore::new(plan.max_pending),
            model: model.name.clone(),
            plan_index: model.index,
            alerting: model.alerting.clone(),
            window: model.window,
            panes_per_window: model.window_panes() as i64,
            early: EarlyStore::default(),
            panes: BTreeMap::new(),
            completed: BTreeMap::new(),
            closed: BTreeMap::new(),
            dirty: BTreeSet::new(),
            final_through: None,
            last_end: None,
            clock: None,
            labels_lead: true,
            latest_prediction: None,
            reference,
            delays,
            counters: JoinCounters::default(),
            plan,
        })
    }

    /// Labels move the clock no further than the latest prediction time.
    /// Live, labels are applied as they are polled, not merged by event
    /// time: a label with a wrong, far-future time (or a labels topic read
    /// ahead of the predictions after a backlog) would otherwise make every
    /// window final before its labels came.
    pub fn hold_clock_to_predictions(&mut self) {
        self.labels_lead = false;
    }

    /// The plan.
    pub fn plan(&self) -> &QualityPlan {
        &self.plan
    }

    /// Counters and sizes now.
    pub fn counters(&self) -> QualityCounters {
        QualityCounters {
            join: self.counters,
            pending: self.store.pending as u64,
            early_pending: self.early.labels.len() as u64,
            join_store_bytes: self.store.size_bytes() as u64,
        }
    }

    /// Label delays recorded (ms).
    pub fn delays(&self) -> &hdrhistogram::Histogram<u64> {
        &self.delays
    }

    /// Bytes of the join store and the panes' accumulators.
    pub fn size_bytes(&self) -> usize {
        self.store.size_bytes()
            + self
                .panes
                .values()
                .map(|p| p.acc.size_bytes() + p.expected.as_ref().map_or(0, ExpectedQuality::size_bytes) + p.labels.capacity() * 8)
                .sum::<usize>()
            + match &self.label_reference {
                Some(ReferenceLabels::Values(v)) => v.capacity() * 8,
                _ => 0,
            }
    }

    /// Whether the estimator calibrates scores (`None`: no estimate).
    pub fn calibrates(&self) -> Option<bool> {
        self.cbpe.as_ref().map(Cbpe::calibrates)
    }

    fn is_final(&self, pane: i64) -> bool {
        self.final_through.is_some_and(|f| pane <= f)
    }

    fn pane(&mut self, id: i64) -> Result<&mut QualityPane> {
        if !self.panes.contains_key(&id) {
            let acc = Accumulator::new(self.plan.task)?;
            let expected = match &self.cbpe {
                Some(_) => Some(ExpectedQuality::new(PANE_SCORE_CAPACITY, DEFAULT_AUC_BINS)?),
                None => None,
            };
            self.panes.insert(
                id,
                QualityPane { acc, expected, labels: Vec::new(), labels_overflow: false, predictions: 0, labelled: 0, pending: 0 },
            );
        }
        self.panes.get_mut(&id).ok_or_else(|| Error::Internal("quality pane vanished".into()))
    }

    /// Moves the clock to `ts` and finalizes what that makes final.
    pub fn advance(&mut self, ts: i64, out: &mut Outcome) -> Result<()> {
        if self.clock.is_some_and(|c| c >= ts) {
            return Ok(());
        }
        self.clock = Some(ts);
        self.expire_early(ts);
        self.finalize(out)
    }

    fn expire_early(&mut self, clock: i64) {
        let ttl = self.plan.early_label_ttl_ms;
        while let Some((t, _)) = self.early.order.front() {
            if t.saturating_add(ttl) > clock {
                break;
            }
            if let Some((t, id)) = self.early.order.pop_front() {
                if self.early.labels.get(&id).is_some_and(|&(_, held)| held == t) {
                    self.early.labels.remove(&id);
                    self.counters.orphan += 1;
                }
            }
        }
    }

    /// Registers a prediction of pane `pane` (called in input order).
    pub fn predict(&mut self, id: &str, pane: i64, ts: Option<i64>, predicted: f64, score: f64, out: &mut Outcome) -> Result<()> {
        if let Some(t) = ts {
            self.latest_prediction = Some(self.latest_prediction.map_or(t, |p| p.max(t)));
            self.advance(t, out)?;
        }
        let ts = ts.unwrap_or(i64::MIN);
        let calibrated = self.cbpe.as_ref().map(|c| c.calibrate(score));
        let p = self.pane(pane)?;
        p.predictions += 1;
        if let (Some(e), Some(cp)) = (&mut p.expected, calibrated) {
            e.update(predicted as u8, cp)?;
        }
        let early = if self.early.labels.is_empty() { None } else { self.early.labels.remove(id) };
        if self.store.live >= self.store.max {
            if let Some(front) = self.store.front() {
                if let Some(old) = self.store.remove(front) {
                    // A prediction of a final pane was counted as expired already.
                    if !old.joined() && !self.is_final(old.pane) {
                        self.counters.evicted += 1;
                        if let Some(p) = self.panes.get_mut(&old.pane) {
                            p.pending = p.pending.saturating_sub(1);
                        }
                    }
                }
            }
        }
        let mut slot = Slot::new(self.plan.task, id, pane, ts, predicted, score);
        if let Some((label, label_ts)) = early {
            self.join(&slot, label, label_ts, out)?;
            slot.value = f64::NAN;
        } else if let Some(p) = self.panes.get_mut(&pane) {
            p.pending += 1;
        }
        self.store.insert(slot);
        Ok(())
    }

    fn join(&mut self, slot: &Slot, label: f64, label_ts: i64, out: &mut Outcome) -> Result<()> {
        let keep_label = matches!(self.label_reference, Some(ReferenceLabels::Values(_)));
        let (predicted, score) = slot.prediction(self.plan.task);
        let pane = self.pane(slot.pane)?;
        pane.acc.add(label, predicted, score)?;
        pane.labelled += 1;
        if keep_label {
            if pane.labels.len() < PANE_LABEL_CAPACITY {
                pane.labels.push(label);
            } else {
                pane.labels_overflow = true;
            }
        }
        self.dirty.insert(slot.pane);
        self.counters.joined += 1;
        if slot.ts != i64::MIN {
            // The histogram grows to the largest delay seen (saturating_record would clamp to its current top).
            let delay = label_ts.saturating_sub(slot.ts).max(0) as u64;
            self.delays.record(delay).map_err(|e| Error::Internal(format!("label delay histogram: {e}")))?;
            out.label_delays.push((self.plan_index, delay as f64 / 1000.0));
        }
        Ok(())
    }

    /// Applies a label (called in input order).
    pub fn label(&mut self, l: &LabelRecord, out: &mut Outcome) -> Result<()> {
        if self.labels_lead {
            self.advance(l.ts, out)?;
        } else if let Some(p) = self.latest_prediction {
            self.advance(l.ts.min(p), out)?;
        }
        match self.store.find(&l.id) {
            Some(seq) => {
                let Some(slot) = self.store.slot(seq).cloned() else {
                    return Err(Error::Internal("join store slot vanished".into()));
                };
                if slot.joined() {
                    self.counters.duplicate += 1;
                } else if self.is_final(slot.pane) || (slot.ts != i64::MIN && l.ts >= slot.ts.saturating_add(self.plan.label_ttl_ms)) {
                    // The prediction stopped waiting `label_ttl` after its own time.
                    self.counters.orphan += 1;
                } else {
                    self.join(&slot, l.label, l.ts, out)?;
                    self.store.mark_joined(seq);
                    if let Some(p) = self.panes.get_mut(&slot.pane) {
                        p.pending = p.pending.saturating_sub(1);
                    }
                }
            }
            None if self.early.labels.contains_key(&l.id) => self.counters.duplicate += 1,
            None => {
                if self.early.labels.len() >= self.plan.max_pending {
                    while let Some((t, id)) = self.early.order.pop_front() {
                        if self.early.labels.get(&id).is_some_and(|&(_, held)| held == t) {
                            self.early.labels.remove(&id);
                            self.counters.orphan += 1;
                            break;
                        }
                    }
                }
                self.early.labels.insert(l.id.clone(), (l.label, l.ts));
                self.early.order.push_back((l.ts, l.id.clone()));
                self.counters.early += 1;
            }
        }
        Ok(())
    }

    /// A pane of the model's window completed (`end_ms`: its end time) and,
    /// when `window` is set, the window ending with it was evaluated for
    /// its features: the window's quality is evaluated now, windows that
    /// took labels since are re-evaluated.
    pub fn pane_completed(
        &mut self,
        pane: i64,
        end_ms: Option<i64>,
        window: Option<(WindowBounds, Option<String>)>,
        out: &mut Outcome,
    ) -> Result<()> {
        // A count pane whose predictions had no timestamp ends where the one before it did,
        // so it does not hold back the panes after it.
        let end_ms = end_ms.or(self.last_end);
        self.last_end = end_ms;
        self.completed.insert(pane, end_ms);
        let mut evaluated = None;
        if let Some((bounds, version)) = window {
            self.closed.insert(pane, ClosedWindow { bounds, version });
            self.estimate(pane, out)?;
            self.evaluate(pane, false, out)?;
            evaluated = Some(pane);
        }
        self.reevaluate(evaluated, out)?;
        self.finalize(out)
    }

    /// Re-evaluates closed windows holding a pane that took labels since
    /// (but `skip`, evaluated just now).
    fn reevaluate(&mut self, skip: Option<i64>, out: &mut Outcome) -> Result<()> {
        if self.dirty.is_empty() {
            return Ok(());
        }
        let mut windows = BTreeSet::new();
        for &p in &self.dirty {
            windows.extend(self.closed.range(p..p.saturating_add(self.panes_per_window)).map(|(&e, _)| e));
        }
        if let Some(s) = skip {
            windows.remove(&s);
        }
        self.dirty.clear();
        for end in windows {
            self.evaluate(end, false, out)?;
        }
        Ok(())
    }

    /// Finalizes completed panes whose end plus `label_ttl` the clock has passed, in order.
    fn finalize(&mut self, out: &mut Outcome) -> Result<()> {
        let Some(clock) = self.clock else { return Ok(()) };
        while let Some((&pane, &end)) = self.completed.first_key_value() {
            if end.is_none_or(|e| clock < e.saturating_add(self.plan.label_ttl_ms)) {
                break;
            }
            self.finalize_pane(pane, out)?;
        }
        Ok(())
    }

    fn finalize_pane(&mut self, pane: i64, out: &mut Outcome) -> Result<()> {
        self.completed.remove(&pane);
        self.final_through = Some(pane);
        if let Some(p) = self.panes.get_mut(&pane) {
            self.counters.expired += std::mem::take(&mut p.pending);
        }
        if self.closed.contains_key(&pane) {
            // Labels that came since the last evaluation are in this one; the
            // pane stays dirty for the later windows that hold it.
            self.evaluate(pane, true, out)?;
            self.closed.remove(&pane);
        }
        // Windows ending after `pane` start after this one.
        let keep_from = pane.saturating_add(2).saturating_sub(self.panes_per_window);
        while let Some((&id, _)) = self.panes.first_key_value() {
            if id >= keep_from {
                break;
            }
            self.panes.pop_first();
        }
        // Predictions of final panes can take no label: drop them (their
        // panes counted them as expired).
        while let Some(seq) = self.store.front() {
            let Some(slot) = self.store.slot(seq) else { break };
            if !self.is_final(slot.pane) {
                break;
            }
            let was_pending = !slot.joined();
            self.store.remove(seq);
            if was_pending {
                // Counted by its pane already.
            }
        }
        Ok(())
    }

    /// End of input: finalizes what the clock allows, then evaluates every
    /// other closed window that holds labels once more (`final: false`).
    pub fn finish(&mut self, out: &mut Outcome) -> Result<()> {
        self.finalize(out)?;
        let ends: Vec<i64> = self.closed.keys().copied().collect();
        for end in ends {
            if self.labelled(end) > 0 {
                self.evaluate(end, false, out)?;
            }
        }
        self.dirty.clear();
        Ok(())
    }

    fn span(&self, end: i64) -> std::ops::RangeInclusive<i64> {
        end.saturating_sub(self.panes_per_window - 1)..=end
    }

    fn labelled(&self, end: i64) -> u64 {
        self.panes.range(self.span(end)).map(|(_, p)| p.labelled).sum()
    }

    /// Evaluates the window ending with pane `end`.
    fn evaluate(&mut self, end: i64, is_final: bool, out: &mut Outcome) -> Result<()> {
        let Some(closed) = self.closed.get(&end).cloned() else {
            return Err(Error::Internal(format!("model {:?}: quality window {end} was never closed", self.model)));
        };
        let mut acc = Accumulator::new(self.plan.task)?;
        let (mut predictions, mut labelled) = (0u64, 0u64);
        for (_, p) in self.panes.range(self.span(end)) {
            acc.merge(&p.acc)?;
            predictions += p.predictions;
            labelled += p.labelled;
        }
        let values = if labelled == 0 {
            // No label yet: every metric is insufficient_data.
            vec![None; self.plan.metrics.len()]
        } else {
            if let Accumulator::Binary(b) = &mut acc {
                b.evaluate()?;
            }
            metric_values(&acc, &self.plan.metrics)?
        };
        self.label_drift(end, &closed, &acc, labelled, is_final, out)?;
        let coverage = if predictions == 0 { 0.0 } else { labelled as f64 / predictions as f64 };
        for (m, value) in values.into_iter().enumerate() {
            let metric = self.plan.metrics[m];
            let judged = Judged::new(metric, self.plan.bounds[m], value, self.reference[m]);
            if is_final && self.plan.bounds[m].is_some() {
                self.step(&closed, false, m, metric, &judged, out);
            }
            out.quality.push(QualityEvaluation {
                model: self.model.clone(),
                model_version: closed.version.clone(),
                kind: "quality",
                metric: metric.as_str(),
                value: judged.value,
                reference_value: judged.reference_value,
                threshold: judged.threshold,
                labelled,
                coverage,
                is_final,
                band: None,
                status: if judged.value.is_some() { "ok" } else { "insufficient_data" },
                breach: judged.breach,
                state: if self.states[m].drifting { "drifting" } else { "ok" },
                window: closed.bounds,
            });
        }
        Ok(())
    }

    /// Label drift of the window ending with pane `end`, when configured:
    /// its joined labels against the reference's (chi-square of the classes,
    /// two-sample KS of regression values), as an evaluation of the column
    /// `label` with `kind: label`. Final evaluations step its drift state.
    fn label_drift(
        &mut self,
        end: i64,
        closed: &ClosedWindow,
        acc: &Accumulator,
        labelled: u64,
        is_final: bool,
        out: &mut Outcome,
    ) -> Result<()> {
        let (Some(plan), Some(reference)) = (self.plan.label_drift, &self.label_reference) else { return Ok(()) };
        use driftwatch_detectors::categorical::{categorical_drift_counts, pool_rare, MIN_CATEGORY_COUNT};
        let insufficient = |e: &driftwatch_detectors::Error| matches!(e, driftwatch_detectors::Error::InsufficientData { .. });
        let (value, p, method) = match (reference, acc) {
            (ReferenceLabels::Classes(r), Accumulator::Binary(b)) => {
                let (tp, fp, tn, fn_) = b.confusion();
                let (r, c) = pool_rare(r.to_vec(), vec![tn + fp, tp + fn_], MIN_CATEGORY_COUNT);
                match categorical_drift_counts(&r, &c) {
                    Ok(d) => (Some(d.chi2.statistic), Some(d.chi2.p_value), "asymptotic"),
                    Err(e) if insufficient(&e) => (None, None, "none"),
                    Err(e) => return Err(e.into()),
                }
            }
            (ReferenceLabels::Values(r), Accumulator::Regression(_)) => {
                let mut window: Vec<f64> = Vec::with_capacity(labelled as usize);
                let mut overflow = false;
                for (_, pane) in self.panes.range(self.span(end)) {
                    window.extend_from_slice(&pane.labels);
                    overflow |= pane.labels_overflow;
                }
                window.retain(|x| x.is_finite());
                window.sort_unstable_by(f64::total_cmp);
                if overflow {
                    (None, None, "capacity_exceeded")
                } else {
                    match driftwatch_detectors::ks::ks_2samp_sorted(r, &window, plan.ks_method) {
                        Ok(k) => (
                            Some(k.statistic),
                            Some(k.p_value),
                            if k.method == driftwatch_detectors::ks::KsMethod::Exact { "exact" } else { "asymptotic" },
                        ),
                        Err(e) if insufficient(&e) => (None, None, "none"),
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            _ => return Err(Error::Internal("label drift of a task its reference labels do not fit".into())),
        };
        let breach = crate::window::test_breach(value, p, plan.threshold, plan.p_value);
        let metric = plan.metric.as_str();
        if is_final {
            let at = match self.window {
                WindowSpec::Count { .. } => closed.bounds.end_index.unwrap_or(0) as i64,
                WindowSpec::Time { .. } => closed.bounds.end_ms.unwrap_or(0),
            };
            let now_ms = closed.bounds.end_ms;
            let a = &self.alerting;
            let state = &mut self.label_state;
            let transition =
                step_with(state, breach, value.is_some(), at, now_ms, a.consecutive, a.recover_after, a.cooldown.0.as_millis() as i64);
            let reference_rows = match reference {
                ReferenceLabels::Classes(c) => c[0] + c[1],
                ReferenceLabels::Values(v) => v.len() as u64,
            };
            let mk = |kind: &'static str, state: &DriftState| DriftEvent {
                event_id: event_id(&self.model, "label", metric, state.episode_start, &format!("label:{kind}")),
                kind,
                signal: Some("label"),
                model: self.model.clone(),
                model_version: closed.version.clone(),
                feature: "label".into(),
                metric,
                value,
                threshold: plan.threshold,
                p_value: p,
                p_value_threshold: plan.p_value,
                window: closed.bounds,
                reference_rows,
                episode_start: state.episode_start,
                detected_at: rfc3339(now_ms),
            };
            out.transition(transition, |kind| mk(kind, state));
        }
        out.evaluations.push(crate::window::Evaluation {
            model: self.model.clone(),
            model_version: closed.version.clone(),
            feature: "label".into(),
            kind: "label",
            metric,
            value,
            p_value: p,
            p_value_raw: p,
            threshold: plan.threshold,
            p_value_threshold: plan.p_value,
            method,
            error_bound: None,
            status: if value.is_some() { "ok" } else { "insufficient_data" },
            breach,
            state: if self.label_state.drifting { "drifting" } else { "ok" },
            labelled: Some(labelled),
            is_final: Some(is_final),
            window: closed.bounds,
        });
        Ok(())
    }

    /// Estimates the window ending with pane `end` from its predictions'
    /// scores (CBPE), when configured. Estimates are final when made: they
    /// step their drift state at once.
    fn estimate(&mut self, end: i64, out: &mut Outcome) -> Result<()> {
        let Some(cbpe) = &self.cbpe else { return Ok(()) };
        let Some(closed) = self.closed.get(&end).cloned() else {
            return Err(Error::Internal(format!("model {:?}: quality window {end} was never closed", self.model)));
        };
        let mut acc = ExpectedQuality::new(PANE_SCORE_CAPACITY, DEFAULT_AUC_BINS)?;
        let (mut predictions, mut labelled) = (0u64, 0u64);
        for (_, p) in self.panes.range(self.span(end)) {
            if let Some(e) = &p.expected {
                acc.merge(e)?;
            }
            predictions += p.predictions;
            labelled += p.labelled;
        }
        // No later window holds the window's first pane: its probabilities are not needed any more.
        if let Some(p) = self.panes.get_mut(&end.saturating_sub(self.panes_per_window - 1)) {
            p.expected = None;
        }
        let estimate = if acc.count() == 0 { None } else { Some(acc.estimate()?) };
        let n = acc.count();
        let mut lines = Vec::with_capacity(self.plan.estimated.len());
        for (k, &metric) in self.plan.estimated.iter().enumerate() {
            let em = estimated_metric(metric)?;
            let value = estimate.and_then(|q| q.get(em)).filter(|v| v.is_finite());
            let band = value.and_then(|v| cbpe.band(em, v, n));
            let judged = Judged::new(metric, self.plan.estimated_bounds[k], value, self.estimated_reference[k]);
            lines.push((k, metric, judged, band));
        }
        for (k, metric, judged, band) in lines {
            if self.plan.estimated_bounds[k].is_some() {
                self.step(&closed, true, k, metric, &judged, out);
            }
            out.quality.push(QualityEvaluation {
                model: self.model.clone(),
                model_version: closed.version.clone(),
                kind: "estimated_quality",
                metric: metric.as_str(),
                value: judged.value,
                reference_value: judged.reference_value,
                threshold: judged.threshold,
                labelled,
                coverage: if predictions == 0 { 0.0 } else { labelled as f64 / predictions as f64 },
                is_final: true,
                band: Some(Band { lower: band.map(|b| b.0), upper: band.map(|b| b.1) }),
                status: if judged.value.is_some() { "ok" } else { "insufficient_data" },
                breach: judged.breach,
                state: if self.estimated_states[k].drifting { "drifting" } else { "ok" },
                window: closed.bounds,
            });
        }
        Ok(())
    }

    /// Steps the drift state of metric `m` (of the realised metrics, or of
    /// the estimated ones) with a final value of window `closed`.
    fn step(&mut self, closed: &ClosedWindow, estimated: bool, m: usize, metric: QualityMetric, judged: &Judged, out: &mut Outcome) {
        let at = match self.window {
            WindowSpec::Count { .. } => closed.bounds.end_index.unwrap_or(0) as i64,
            WindowSpec::Time { .. } => closed.bounds.end_ms.unwrap_or(0),
        };
        let now_ms = closed.bounds.end_ms;
        let signal = if estimated { "estimated_quality" } else { "quality" };
        let state = if estimated { &mut self.estimated_states[m] } else { &mut self.states[m] };
        let a = &self.alerting;
        let transition = step_with(
            state,
            judged.breach,
            judged.value.is_some(),
            at,
            now_ms,
            a.consecutive,
            a.recover_after,
            a.cooldown.0.as_millis() as i64,
        );
        let mk = |kind: &'static str, state: &DriftState| DriftEvent {
            event_id: event_id(&self.model, "*", metric.as_str(), state.episode_start, &format!("{signal}:{kind}")),
            kind,
            signal: Some(signal),
            model: self.model.clone(),
            model_version: closed.version.clone(),
            feature: "*".into(),
            metric: metric.as_str(),
            value: judged.value,
            threshold: judged.threshold,
            p_value: None,
            p_value_threshold: None,
            window: closed.bounds,
            reference_rows: 0,
            episode_start: state.episode_start,
            detected_at: rfc3339(now_ms),
        };
        out.transition(transition, |kind| mk(kind, state));
    }
}

/// A metric's value against its bound.
#[derive(Debug, Clone, Copy)]
struct Judged {
    value: Option<f64>,
    reference_value: Option<f64>,
    threshold: Option<f64>,
    breach: bool,
}

impl Judged {
    fn new(metric: QualityMetric, bound: Option<QualityBound>, value: Option<f64>, reference_value: Option<f64>) -> Self {
        let threshold = match bound {
            Some(QualityBound::Min(x)) | Some(QualityBound::Max(x)) => Some(x),
            Some(QualityBound::MaxDrop(d)) => reference_value.map(|r| r - d),
            Some(QualityBound::MaxRise(d)) => reference_value.map(|r| r + d),
            None => None,
        };
        let breach = match (value, threshold) {
            (Some(v), Some(t)) if metric.higher_is_better() => v < t,
            (Some(v), Some(t)) => v > t,
            _ => false,
        };
        Judged { value, reference_value, threshold, breach }
    }
}

/// The CBPE metric of a quality metric (config validation admits only these).
fn estimated_metric(metric: QualityMetric) -> Result<EstimatedMetric> {
    Ok(match metric {
        QualityMetric::Accuracy => EstimatedMetric::Accuracy,
        QualityMetric::Precision => EstimatedMetric::Precision,
        QualityMetric::Recall => EstimatedMetric::Recall,
        QualityMetric::F1 => EstimatedMetric::F1,
        QualityMetric::RocAuc => EstimatedMetric::RocAuc,
        other => return Err(Error::Internal(format!("cbpe does not estimate {}", other.as_str()))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::model::Plan;

    /// A model with a tumbling (`panes` = 1) or sliding event-time window of
    /// 10 s panes, accuracy with a floor of 0.5, `label_ttl` 10 s and
    /// `early_label_ttl` 5 s.
    fn state(panes: u32, max_pending: usize) -> QualityState {
        let window = if panes == 1 {
            "{ type: tumbling, duration: 10s }".to_owned()
        } else {
            format!("{{ type: sliding, duration: {}s, slide: 10s }}", 10 * panes)
        };
        let yaml = format!(
            r#"
models:
  - name: m
    reference: {{ baseline_events: 10 }}
    window: {window}
    features: [{{ name: f, type: numeric }}]
    detectors: [{{ metric: psi, threshold: 0.2 }}]
    alerting: {{ consecutive: 1, recover_after: 1 }}
    quality:
      task: binary_classification
      prediction: prediction
      metrics: [accuracy]
      label_ttl: 10s
      early_label_ttl: 5s
      max_pending: {max_pending}
      detectors: [{{ metric: accuracy, min: 0.5 }}]
"#
        );
        let config = Config::from_yaml(&yaml).unwrap();
        let plan = Plan::new(&config).unwrap();
        let m = &plan.models[0];
        QualityState::new(m, m.quality.clone().unwrap(), ReferenceQuality::default()).unwrap()
    }

    fn label(id: &str, label: f64, ts: i64) -> LabelRecord {
        LabelRecord { model: 0, id: id.into(), label, ts }
    }

    /// The window of panes `first..=last` (10 s each).
    fn bounds(first: i64, last: i64, count: u64) -> Option<(WindowBounds, Option<String>)> {
        let b =
            WindowBounds { start_index: None, end_index: None, start_ms: Some(first * 10_000), end_ms: Some((last + 1) * 10_000), count };
        Some((b, None))
    }

    fn accuracy(out: &Outcome) -> Vec<(Option<f64>, u64, bool)> {
        out.quality.iter().map(|q| (q.value, q.labelled, q.is_final)).collect()
    }

    #[test]
    fn join_outcomes_are_counted_and_a_window_is_final_after_the_ttl() {
        let mut q = state(1, 100);
        let mut out = Outcome::default();
        q.predict("a", 0, Some(1_000), 1.0, 1.0, &mut out).unwrap();
        q.label(&label("a", 1.0, 2_000), &mut out).unwrap(); // joined
        q.label(&label("b", 0.0, 2_500), &mut out).unwrap(); // before its prediction: held
        q.predict("b", 0, Some(3_000), 0.0, 0.0, &mut out).unwrap(); // joined with the held label
        q.label(&label("a", 0.0, 3_500), &mut out).unwrap(); // duplicate: the first wins
        q.label(&label("ghost", 1.0, 3_600), &mut out).unwrap(); // held, never matched
        q.predict("c", 0, Some(4_000), 1.0, 1.0, &mut out).unwrap();
        q.predict("d", 0, Some(5_000), 1.0, 1.0, &mut out).unwrap();
        assert_eq!(q.counters().pending, 2);
        q.pane_completed(0, Some(10_000), bounds(0, 0, 4), &mut out).unwrap();
        assert_eq!(accuracy(&out), [(Some(1.0), 2, false)]);
        assert_eq!(out.quality[0].coverage, 0.5);
        // The ghost label expired at 3 600 + 5 000.
        q.label(&label("d", 0.0, 12_000), &mut out).unwrap(); // joined, wrong prediction
        q.label(&label("c", 1.0, 14_000), &mut out).unwrap(); // 10 s after its prediction: too late
        assert_eq!(out.quality.len(), 1, "a label alone does not re-evaluate");
        q.advance(20_000, &mut out).unwrap(); // pane end + label_ttl
        assert_eq!(accuracy(&out)[1], (Some(2.0 / 3.0), 3, true));
        assert_eq!(out.quality[1].coverage, 0.75);
        let c = q.counters();
        assert_eq!((c.join.joined, c.join.early, c.join.duplicate, c.join.orphan, c.join.expired, c.join.evicted), (3, 2, 1, 2, 1, 0));
        assert_eq!(c.pending, 0, "final predictions leave the join store");
        assert!(out.events.is_empty());
        // Delays: 1 000, 0 (a label before its prediction counts as no delay) and 7 000 ms.
        assert_eq!(q.delays().len(), 3);
        assert_eq!(q.delays().max(), q.delays().highest_equivalent(7_000));
    }

    /// Live, a label (say one with a far-future time) moves the clock no
    /// further than the latest prediction: the window stays open for its
    /// other labels. In replay, where labels are merged by event time, it does.
    #[test]
    fn live_labels_move_the_clock_no_further_than_the_predictions() {
        for live in [true, false] {
            let mut q = state(1, 100);
            if live {
                q.hold_clock_to_predictions();
            }
            let mut out = Outcome::default();
            q.predict("a", 0, Some(1_000), 1.0, 1.0, &mut out).unwrap();
            q.predict("b", 0, Some(2_000), 1.0, 1.0, &mut out).unwrap();
            q.pane_completed(0, Some(10_000), bounds(0, 0, 2), &mut out).unwrap();
            q.label(&label("a", 1.0, 9_000_000_000), &mut out).unwrap();
            q.label(&label("b", 1.0, 3_000), &mut out).unwrap();
            let c = q.counters().join;
            if live {
                // The far-future label is an orphan itself (later than label_ttl after its
                // prediction), and the window still takes b's label.
                assert_eq!((c.joined, c.orphan, c.expired), (1, 1, 0));
                q.advance(20_000, &mut out).unwrap(); // a prediction's time past the pane's end + label_ttl
                assert_eq!(accuracy(&out).last(), Some(&(Some(1.0), 1, true)));
                assert_eq!(q.counters().join.expired, 1);
            } else {
                // The far-future label made the window final: both predictions expired, their labels wait as early ones.
                assert_eq!((c.joined, c.early, c.expired), (0, 2, 2));
            }
        }
    }

    #[test]
    fn regression_metrics_and_their_bound() {
        let yaml = r#"
models:
  - name: m
    reference: { baseline_events: 10 }
    window: { type: tumbling, duration: 10s }
    features: [{ name: f, type: numeric }]
    detectors: [{ metric: psi, threshold: 0.2 }]
    alerting: { consecutive: 1, recover_after: 1 }
    quality:
      task: regression
      prediction: prediction
      label_ttl: 10s
      detectors: [{ metric: mae, max: 0.5 }]
"#;
        let config = Config::from_yaml(yaml).unwrap();
        let plan = Plan::new(&config).unwrap();
        let m = &plan.models[0];
        let mut q = QualityState::new(m, m.quality.clone().unwrap(), ReferenceQuality::default()).unwrap();
        let mut out = Outcome::default();
        for (i, (label, predicted)) in [(2.0, 3.0), (4.0, 2.0), (5.0, 5.0)].into_iter().enumerate() {
            let id = format!("p{i}");
            q.predict(&id, 0, Some(i as i64), predicted, predicted, &mut out).unwrap();
            q.label(&super::tests::label(&id, label, 100), &mut out).unwrap();
        }
        q.pane_completed(0, Some(10_000), bounds(0, 0, 3), &mut out).unwrap();
        q.advance(20_000, &mut out).unwrap();
        let last: Vec<(&str, Option<f64>, bool)> = out.quality[3..].iter().map(|e| (e.metric, e.value, e.breach)).collect();
        let close = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() < 1e-12);
        assert_eq!(last.iter().map(|l| l.0).collect::<Vec<_>>(), ["mae", "rmse", "mape"]);
        assert!(close(last[0].1, 1.0) && last[0].2, "{last:?}"); // |−1|, |2|, 0
        assert!(close(last[1].1, (5.0f64 / 3.0).sqrt()), "{last:?}");
        assert!(close(last[2].1, (0.5 + 0.5) / 3.0), "{last:?}"); // scikit-learn: mean |e| / |y|
        assert!(out.quality[3].is_final);
        assert_eq!(out.events.len(), 1, "mae above its max on the final window");
        assert_eq!(out.events[0].metric, "mae");
    }

    /// Label drift of a regression: the window's joined labels against the
    /// reference's values by two-sample KS (SciPy's `ks_2samp`, which
    /// `driftwatch_detectors::ks` matches on the fixtures), stepped on the
    /// final evaluation only.
    #[test]
    fn regression_label_drift_is_ks_of_the_joined_labels() {
        let yaml = r#"
models:
  - name: m
    reference: { path: ref.csv }
    window: { type: tumbling, duration: 10s }
    features: [{ name: f, type: numeric }]
    detectors: [{ metric: ks, p_value: 0.05 }]
    alerting: { consecutive: 1, recover_after: 1 }
    quality:
      task: regression
      prediction: prediction
      reference: { label: y, prediction: p }
      label_ttl: 10s
"#;
        let config = Config::from_yaml(yaml).unwrap();
        let plan = Plan::new(&config).unwrap();
        let m = &plan.models[0];
        let reference: Vec<f64> = (0..50).map(|i| f64::from(i) / 10.0).collect();
        let refq = ReferenceQuality { labels: Some(ReferenceLabels::Values(reference.clone())), ..ReferenceQuality::default() };
        assert!(reference.windows(2).all(|w| w[0] <= w[1]), "the reference's values are sorted");
        let mut q = QualityState::new(m, m.quality.clone().unwrap(), refq).unwrap();
        let mut out = Outcome::default();
        // Labels shifted by 3: ids p0..p19, one unlabelled (p19).
        let labels: Vec<f64> = (0..19).map(|i| 3.0 + f64::from(i) / 10.0).collect();
        for i in 0..20 {
            q.predict(&format!("p{i}"), 0, Some(i), 1.0, 1.0, &mut out).unwrap();
        }
        for (i, &l) in labels.iter().enumerate() {
            q.label(&super::tests::label(&format!("p{i}"), l, 100), &mut out).unwrap();
        }
        q.pane_completed(0, Some(10_000), bounds(0, 0, 20), &mut out).unwrap();
        q.advance(20_000, &mut out).unwrap();
        let lines: Vec<_> = out.evaluations.iter().filter(|e| e.kind == "label").collect();
        assert_eq!(lines.len(), 2, "at the close and when final");
        let want = driftwatch_detectors::ks::ks_2samp(&reference, &labels, driftwatch_detectors::ks::KsMethod::Auto).unwrap();
        let last = lines[1];
        assert_eq!((last.metric, last.feature.as_str(), last.labelled, last.is_final), ("ks", "label", Some(19), Some(true)));
        assert_eq!((last.value, last.p_value), (Some(want.statistic), Some(want.p_value)));
        assert!(last.breach && last.state == "drifting" && lines[0].state == "ok", "{lines:?}");
        let events: Vec<_> = out.events.iter().filter(|e| e.signal == Some("label")).collect();
        assert_eq!(events.len(), 1);
        assert_eq!((events[0].kind, events[0].feature.as_str(), events[0].metric), ("drift", "label", "ks"));
    }

    /// A regression pane past its label capacity does not give a KS of part
    /// of its labels: the window's label drift is insufficient_data, and says why.
    #[test]
    fn regression_label_drift_past_the_pane_capacity_says_so() {
        let yaml = r#"
models:
  - name: m
    reference: { path: ref.csv }
    window: { type: tumbling, duration: 10s }
    features: [{ name: f, type: numeric }]
    detectors: [{ metric: ks, p_value: 0.05 }]
    quality:
      task: regression
      prediction: prediction
      reference: { label: y, prediction: p }
      label_ttl: 10s
      max_pending: 2000000
"#;
        let config = Config::from_yaml(yaml).unwrap();
        let plan = Plan::new(&config).unwrap();
        let m = &plan.models[0];
        let refq = ReferenceQuality { labels: Some(ReferenceLabels::Values(vec![0.0, 1.0, 2.0])), ..ReferenceQuality::default() };
        let mut q = QualityState::new(m, m.quality.clone().unwrap(), refq).unwrap();
        let mut out = Outcome::default();
        let n = PANE_LABEL_CAPACITY + 1;
        for i in 0..n {
            let id = i.to_string();
            q.predict(&id, 0, Some(0), 1.0, 1.0, &mut out).unwrap();
            q.label(&super::tests::label(&id, 1.0, 1), &mut out).unwrap();
        }
        q.pane_completed(0, Some(10_000), bounds(0, 0, n as u64), &mut out).unwrap();
        let line = out.evaluations.iter().find(|e| e.kind == "label").unwrap();
        assert_eq!((line.value, line.status, line.method, line.labelled), (None, "insufficient_data", "capacity_exceeded", Some(n as u64)));
    }

    #[test]
    fn the_oldest_pending_prediction_is_evicted_first() {
        let mut q = state(1, 2);
        let mut out = Outcome::default();
        for (i, id) in ["a", "b", "c"].iter().enumerate() {
            q.predict(id, 0, Some(i as i64), 1.0, 1.0, &mut out).unwrap();
        }
        let c = q.counters();
        assert_eq!((c.join.evicted, c.pending), (1, 2));
        assert!(c.join_store_bytes > 0);
        q.label(&label("a", 1.0, 10), &mut out).unwrap(); // forgotten: held as early
        q.label(&label("c", 1.0, 11), &mut out).unwrap();
        let c = q.counters();
        assert_eq!((c.join.joined, c.join.early, c.pending), (1, 1, 1));
    }

    #[test]
    fn only_final_windows_raise_drift_and_ids_are_stable() {
        let run = || {
            let mut q = state(1, 100);
            let mut out = Outcome::default();
            for i in 0..4 {
                q.predict(&format!("p{i}"), 0, Some(i * 1_000), 1.0, 1.0, &mut out).unwrap();
                q.label(&label(&format!("p{i}"), 0.0, i * 1_000 + 500), &mut out).unwrap();
            }
            q.pane_completed(0, Some(10_000), bounds(0, 0, 4), &mut out).unwrap();
            assert!(out.quality[0].breach && !out.quality[0].is_final);
            assert!(out.events.is_empty(), "a window still taking labels raises nothing");
            q.advance(20_000, &mut out).unwrap();
            assert_eq!(out.events.len(), 1);
            q.finish(&mut out).unwrap();
            out
        };
        let (a, b) = (run(), run());
        let e = &a.events[0];
        assert_eq!(
            (e.kind, e.signal, e.feature.as_str(), e.metric, e.value, e.threshold),
            ("drift", Some("quality"), "*", "accuracy", Some(0.0), Some(0.5))
        );
        assert_eq!(e.event_id, b.events[0].event_id);
        assert_eq!(a.quality.last().map(|q| q.state), Some("drifting"));
    }

    #[test]
    fn sliding_windows_are_re_evaluated_as_their_labels_arrive() {
        let mut q = state(2, 100);
        let mut out = Outcome::default();
        q.predict("a", 0, Some(1_000), 1.0, 1.0, &mut out).unwrap();
        q.pane_completed(0, Some(10_000), None, &mut out).unwrap();
        q.predict("b", 1, Some(11_000), 1.0, 1.0, &mut out).unwrap();
        q.pane_completed(1, Some(20_000), bounds(0, 1, 2), &mut out).unwrap();
        assert_eq!(accuracy(&out), [(None, 0, false)]);
        assert_eq!(out.quality[0].status, "insufficient_data");
        // A label for pane 0 after the window [0, 1] closed: re-evaluated at the next pane.
        q.label(&label("a", 1.0, 10_500), &mut out).unwrap();
        q.predict("c", 2, Some(21_000), 1.0, 1.0, &mut out).unwrap();
        q.label(&label("c", 0.0, 21_500), &mut out).unwrap();
        q.pane_completed(2, Some(30_000), bounds(1, 2, 2), &mut out).unwrap();
        // Window [1, 2] (b unlabelled, c wrong), then window [0, 1] again with a's label.
        assert_eq!(accuracy(&out)[1..], [(Some(0.0), 1, false), (Some(1.0), 1, false)]);
        // Pane 0 final at 20 000 already; at 30 000 pane 1 is final with window [0, 1].
        q.advance(30_000, &mut out).unwrap();
        assert_eq!(accuracy(&out)[3..], [(Some(1.0), 1, true)]);
        assert_eq!(out.quality[3].window.end_ms, Some(20_000));
        // End of input: the open window [1, 2] holds labels and is evaluated once more, not final.
        q.finish(&mut out).unwrap();
        assert_eq!(accuracy(&out)[4..], [(Some(0.0), 1, false)]);
    }
}
