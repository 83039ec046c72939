//! Model-quality metrics as mergeable, retractable accumulators.
//!
//! Driftwatch keeps one accumulator per sliding window (and per shard), feeds
//! it with [`update`](BinaryClassification::update), removes expired
//! observations with [`retract`](BinaryClassification::retract), combines the
//! shards' partial states with [`merge`](BinaryClassification::merge) and asks
//! for the metrics with [`evaluate`](BinaryClassification::evaluate) — the
//! shape of DataFusion's `Accumulator`. Every state is plain data with serde
//! `Serialize`/`Deserialize`; a deserialized state is validated, so a corrupt
//! snapshot gives [`Error::CorruptSnapshot`] instead of nonsense later.
//!
//! * [`BinaryClassification`]: confusion counts, log loss, Brier score and
//!   ROC AUC of a binary classifier, as scikit-learn 1.9 computes them
//!   (`accuracy_score`, `precision_score`/`recall_score`/`f1_score` with
//!   positive class 1 and `zero_division=0`, `roc_auc_score`, `log_loss`,
//!   `brier_score_loss`).
//! * [`Regression`]: MAE, RMSE and MAPE as scikit-learn computes them, with
//!   non-finite inputs counted as invalid and skipped.
//! * [`roc_auc`]: exact ROC AUC of a labelled sample in O(n log n).
//!
//! # ROC AUC
//!
//! ROC AUC is the Mann–Whitney statistic: the share of (positive, negative)
//! pairs in which the positive has the higher score, a tie counting 1/2. It
//! equals scikit-learn's `roc_auc_score` (the trapezoidal area under the ROC
//! curve) exactly, up to floating-point rounding. Here it is computed from
//! the sorted scores of both classes with integer pair counts, so no rounding
//! error accumulates: the only rounding is in the final division.
//!
//! The accumulator holds the scores themselves while there are at most
//! `capacity` of them, and the AUC it reports is then exact. Past the
//! capacity it folds them into a fixed histogram of `bins` equal-width bins
//! over `[0, 1]` (memory stays bounded; update, retract and merge stay
//! exact on the histogram) and reports the AUC of the binned scores, in which
//! two scores in one bin tie; [`BinaryQuality::roc_auc_exact`] says which
//! case applies. The histogram is kept until the accumulator is emptied.
//!
//! # Example
//!
//! ```
//! use driftwatch_detectors::quality::{BinaryClassification, Regression};
//!
//! let mut shard_a = BinaryClassification::default();
//! let mut shard_b = BinaryClassification::default();
//! shard_a.update(1, 1, 0.9).unwrap();
//! shard_a.update(0, 0, 0.2).unwrap();
//! shard_b.update(1, 0, 0.4).unwrap();
//! shard_b.update(0, 1, 0.6).unwrap();
//! shard_a.merge(&shard_b).unwrap();
//! let quality = shard_a.evaluate().unwrap();
//! assert_eq!(quality.count, 4);
//! assert_eq!(quality.accuracy, 0.5);
//! assert_eq!(quality.roc_auc, Some(0.75));
//!
//! let mut reg = Regression::new();
//! reg.update(3.0, 2.5);
//! reg.update(-0.5, 0.0);
//! reg.update(f64::NAN, 1.0); // counted as invalid, skipped
//! let q = reg.evaluate().unwrap();
//! assert_eq!((q.count, q.invalid), (2, 1));
//! assert_eq!(q.mae, 0.5);
//! ```

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Lower clip of scores for log loss: scores are clipped to
/// `[LOG_LOSS_EPS, 1 - LOG_LOSS_EPS]` before taking logarithms.
pub const LOG_LOSS_EPS: f64 = 1e-15;

/// Default number of scores a [`BinaryClassification`] holds exactly before
/// it falls back to a histogram (80 KB of scores).
pub const DEFAULT_SCORE_CAPACITY: usize = 10_000;

/// Default number of equal-width histogram bins over `[0, 1]` used for ROC
/// AUC once a [`BinaryClassification`] holds more than its capacity.
pub const DEFAULT_AUC_BINS: usize = 1_000;

/// Largest number of AUC histogram bins accepted (16 MB of counts).
pub const MAX_AUC_BINS: usize = 1 << 20;

// ---------------------------------------------------------------------------
// Compensated sums
// ---------------------------------------------------------------------------

/// A Neumaier-compensated sum that supports subtraction, so that retracting
/// a term undoes adding it up to rounding far below the sum's own error.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct CompensatedSum {
    sum: f64,
    compensation: f64,
}

impl CompensatedSum {
    pub(crate) fn add(&mut self, x: f64) {
        let t = self.sum + x;
        if self.sum.abs() >= x.abs() {
            self.compensation += (self.sum - t) + x;
        } else {
            self.compensation += (x - t) + self.sum;
        }
        self.sum = t;
    }

    fn sub(&mut self, x: f64) {
        self.add(-x);
    }

    pub(crate) fn merge(&mut self, other: &Self) {
        self.add(other.sum);
        self.add(other.compensation);
    }

    pub(crate) fn value(&self) -> f64 {
        self.sum + self.compensation
    }

    fn is_finite(&self) -> bool {
        self.sum.is_finite() && self.compensation.is_finite()
    }
}

// ---------------------------------------------------------------------------
// ROC AUC core
// ---------------------------------------------------------------------------

/// Twice the Mann–Whitney U of positives over negatives, from both classes'
/// scores sorted ascending: each (positive, negative) pair adds 2 when the
/// positive scores higher and 1 on a tie.
fn twice_u_sorted(positives: &[f64], negatives: &[f64]) -> u128 {
    let mut u2: u128 = 0;
    let mut i = 0;
    let mut below = 0; // negatives strictly below the current positive value
    while let Some(&v) = positives.get(i) {
        while negatives.get(below).is_some_and(|&n| n < v) {
            below += 1;
        }
        let mut tied_end = below;
        while negatives.get(tied_end).is_some_and(|&n| n == v) {
            tied_end += 1;
        }
        let mut group_end = i;
        while positives.get(group_end).is_some_and(|&p| p == v) {
            group_end += 1;
        }
        let group = (group_end - i) as u128;
        u2 += group * (2 * below as u128 + (tied_end - below) as u128);
        i = group_end;
    }
    u2
}

/// Twice the Mann–Whitney U from per-bin counts (bins ascending by score);
/// scores in one bin tie.
fn twice_u_binned(positives: &[u64], negatives: &[u64]) -> u128 {
    let mut u2: u128 = 0;
    let mut below: u128 = 0;
    for (&p, &n) in positives.iter().zip(negatives) {
        u2 += u128::from(p) * (2 * below + u128::from(n));
        below += u128::from(n);
    }
    u2
}

/// AUC from twice the U statistic and the class sizes (both non-zero).
fn auc_from_twice_u(u2: u128, positives: u64, negatives: u64) -> f64 {
    // 2 * P * N fits u128 for any u64 counts whose sum fits u64; f64 keeps
    // the division well defined even if it did not.
    let denominator = 2.0 * positives as f64 * negatives as f64;
    u2 as f64 / denominator
}

fn one_class_error(positives: u64, negatives: u64) -> Error {
    Error::InsufficientData { statistic: "roc_auc", available: positives.min(negatives), required: 1 }
}

/// ROC AUC of `scores` for binary `labels`, equal to scikit-learn's
/// `roc_auc_score(labels, scores)`.
///
/// Ties between a positive's and a negative's score count 1/2 (Mann–Whitney
/// with midranks), as the trapezoidal ROC curve does. Runs in O(n log n).
/// Scores may be any finite reals (they need not be probabilities).
///
/// # Errors
///
/// * [`Error::InvalidParameter`] when the slices differ in length, a label
///   is not 0 or 1, or a score is NaN or infinite.
/// * [`Error::InsufficientData`] (statistic `"roc_auc"`, `available` = the
///   size of the smaller class, `required` = 1) when the input is empty or
///   holds only one class.
pub fn roc_auc(labels: &[u8], scores: &[f64]) -> Result<f64> {
    if labels.len() != scores.len() {
        return Err(Error::InvalidParameter { name: "scores", reason: "labels and scores must have the same length" });
    }
    let mut positives = Vec::new();
    let mut negatives = Vec::new();
    for (&label, &score) in labels.iter().zip(scores) {
        if !score.is_finite() {
            return Err(Error::InvalidParameter { name: "scores", reason: "scores must be finite" });
        }
        match label {
            1 => positives.push(score),
            0 => negatives.push(score),
            _ => return Err(Error::InvalidParameter { name: "labels", reason: "labels must be 0 or 1" }),
        }
    }
    let (p, n) = (positives.len() as u64, negatives.len() as u64);
    if p == 0 || n == 0 {
        return Err(one_class_error(p, n));
    }
    positives.sort_unstable_by(f64::total_cmp);
    negatives.sort_unstable_by(f64::total_cmp);
    Ok(auc_from_twice_u(twice_u_sorted(&positives, &negatives), p, n))
}

// ---------------------------------------------------------------------------
// Score store
// ---------------------------------------------------------------------------

/// The scores behind ROC AUC: exact while small, a histogram past capacity.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ScoreStore {
    /// Every score, split by label; `sorted` says both vectors are ascending.
    Exact {
        positives: Vec<f64>,
        negatives: Vec<f64>,
        #[serde(skip)]
        sorted: bool,
    },
    /// Counts of scores per equal-width bin over `[0, 1]`, split by label.
    Binned { positives: Vec<u64>, negatives: Vec<u64> },
}

impl ScoreStore {
    fn empty() -> Self {
        ScoreStore::Exact { positives: Vec::new(), negatives: Vec::new(), sorted: true }
    }

    fn held(&self) -> usize {
        match self {
            ScoreStore::Exact { positives, negatives, .. } => positives.len() + negatives.len(),
            ScoreStore::Binned { .. } => 0,
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            ScoreStore::Exact { positives, negatives, .. } => (positives.capacity() + negatives.capacity()) * std::mem::size_of::<f64>(),
            ScoreStore::Binned { positives, negatives } => (positives.capacity() + negatives.capacity()) * std::mem::size_of::<u64>(),
        }
    }
}

/// Bin of a score in `[0, 1]` among `bins` equal-width bins (the last bin
/// closed on the right).
pub(crate) fn bin_of(score: f64, bins: usize) -> usize {
    // `as usize` saturates; scores are validated to lie in [0, 1].
    let b = (score * bins as f64) as usize;
    b.min(bins.saturating_sub(1))
}

fn histogram(scores: &[f64], bins: usize) -> Vec<u64> {
    let mut counts = vec![0u64; bins];
    for &s in scores {
        if let Some(c) = counts.get_mut(bin_of(s, bins)) {
            *c += 1;
        }
    }
    counts
}

/// Position of `score` in `values` (bitwise-equal up to the sign of zero).
fn find_score(values: &[f64], score: f64, sorted: bool) -> Option<usize> {
    if sorted {
        let i = values.partition_point(|&v| v < score);
        values.get(i).filter(|&&v| v == score).map(|_| i)
    } else {
        values.iter().position(|&v| v == score)
    }
}

// ---------------------------------------------------------------------------
// Binary classification
// ---------------------------------------------------------------------------

/// Quality of a binary classifier over the observations of an accumulator,
/// as scikit-learn 1.9 computes each metric.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BinaryQuality {
    /// Share of predictions equal to the label (`accuracy_score`).
    pub accuracy: f64,
    /// `tp / (tp + fp)`, 0 when nothing was predicted positive.
    pub precision: f64,
    /// `tp / (tp + fn)`, 0 when no label is positive.
    pub recall: f64,
    /// `2 tp / (2 tp + fp + fn)`, 0 when that denominator is 0.
    pub f1: f64,
    /// ROC AUC of the scores (`roc_auc_score`); `None` when only one class
    /// is present.
    pub roc_auc: Option<f64>,
    /// Whether `roc_auc` was computed from every score (`true`) or from the
    /// fallback histogram once more scores than the capacity were held.
    pub roc_auc_exact: bool,
    /// Mean cross-entropy with scores clipped to
    /// `[LOG_LOSS_EPS, 1 - LOG_LOSS_EPS]` (`log_loss`).
    pub log_loss: f64,
    /// Mean squared difference between score and label
    /// (`brier_score_loss`).
    pub brier: f64,
    /// Number of observations.
    pub count: u64,
}

/// Mergeable, retractable accumulator of a binary classifier's quality over
/// `(label, prediction, score)` observations.
///
/// Labels and predictions are 0 or 1 (use `u8::from(b)` for a `bool`); the
/// score is the predicted probability of class 1, in `[0, 1]`. It keeps the
/// confusion counts, compensated sums of log loss and Brier terms, and the
/// scores for ROC AUC (exact up to `capacity` scores, then a histogram; see
/// the [module documentation](self)).
///
/// `update` is O(1) amortised (scores are pushed, and sorted lazily when the
/// AUC is asked for); `retract` is O(1) past capacity and a search of the held
/// scores below it; `merge` is linear in the held scores.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "BinaryClassificationRepr")]
pub struct BinaryClassification {
    capacity: usize,
    bins: usize,
    tp: u64,
    fp: u64,
    tn: u64,
    #[serde(rename = "fn")]
    fn_: u64,
    log_loss_sum: CompensatedSum,
    brier_sum: CompensatedSum,
    scores: ScoreStore,
}

/// The serialized form, validated into a [`BinaryClassification`].
#[derive(Deserialize)]
struct BinaryClassificationRepr {
    capacity: usize,
    bins: usize,
    tp: u64,
    fp: u64,
    tn: u64,
    #[serde(rename = "fn")]
    fn_: u64,
    log_loss_sum: CompensatedSum,
    brier_sum: CompensatedSum,
    scores: ScoreStore,
}

impl TryFrom<BinaryClassificationRepr> for BinaryClassification {
    type Error = Error;

    fn try_from(r: BinaryClassificationRepr) -> Result<Self> {
        let corrupt = |reason| Error::CorruptSnapshot { kind: "binary_classification", reason };
        if r.bins == 0 || r.bins > MAX_AUC_BINS {
            return Err(corrupt("bins must be between 1 and MAX_AUC_BINS"));
        }
        let pos = r.tp.checked_add(r.fn_).ok_or(corrupt("count overflow"))?;
        let neg = r.tn.checked_add(r.fp).ok_or(corrupt("count overflow"))?;
        pos.checked_add(neg).ok_or(corrupt("count overflow"))?;
        if !r.log_loss_sum.is_finite() || !r.brier_sum.is_finite() {
            return Err(corrupt("non-finite sum"));
        }
        let scores = match r.scores {
            ScoreStore::Exact { mut positives, mut negatives, .. } => {
                if positives.len() as u64 != pos || negatives.len() as u64 != neg {
                    return Err(corrupt("held scores disagree with the confusion counts"));
                }
                if positives.len() + negatives.len() > r.capacity {
                    return Err(corrupt("more scores held than the capacity"));
                }
                if positives.iter().chain(&negatives).any(|s| !(0.0..=1.0).contains(s)) {
                    return Err(corrupt("score outside [0, 1]"));
                }
                // Hold -0.0 as 0.0, as `update` does.
                for s in positives.iter_mut().chain(negatives.iter_mut()) {
                    *s += 0.0;
                }
                positives.sort_unstable_by(f64::total_cmp);
                negatives.sort_unstable_by(f64::total_cmp);
                ScoreStore::Exact { positives, negatives, sorted: true }
            }
            ScoreStore::Binned { positives, negatives } => {
                if positives.len() != r.bins || negatives.len() != r.bins {
                    return Err(corrupt("histogram length differs from bins"));
                }
                let total = |v: &[u64]| v.iter().try_fold(0u64, |a, &c| a.checked_add(c));
                if total(&positives) != Some(pos) || total(&negatives) != Some(neg) {
                    return Err(corrupt("histogram disagrees with the confusion counts"));
                }
                ScoreStore::Binned { positives, negatives }
            }
        };
        Ok(BinaryClassification {
            capacity: r.capacity,
            bins: r.bins,
            tp: r.tp,
            fp: r.fp,
            tn: r.tn,
            fn_: r.fn_,
            log_loss_sum: r.log_loss_sum,
            brier_sum: r.brier_sum,
            scores,
        })
    }
}

impl Default for BinaryClassification {
    /// An empty accumulator with [`DEFAULT_SCORE_CAPACITY`] and
    /// [`DEFAULT_AUC_BINS`].
    fn default() -> Self {
        Self::empty(DEFAULT_SCORE_CAPACITY, DEFAULT_AUC_BINS)
    }
}

/// A validated observation.
#[derive(Clone, Copy)]
struct Observation {
    positive: bool,
    predicted_positive: bool,
    score: f64,
}

fn validate_observation(label: u8, prediction: u8, score: f64) -> Result<Observation> {
    let positive = match label {
        0 => false,
        1 => true,
        _ => return Err(Error::InvalidParameter { name: "label", reason: "labels must be 0 or 1" }),
    };
    let predicted_positive = match prediction {
        0 => false,
        1 => true,
        _ => return Err(Error::InvalidParameter { name: "prediction", reason: "predictions must be 0 or 1" }),
    };
    if !score.is_finite() {
        return Err(Error::InvalidParameter { name: "score", reason: "scores must be finite" });
    }
    if !(0.0..=1.0).contains(&score) {
        return Err(Error::InvalidParameter { name: "score", reason: "scores must be probabilities in [0, 1]" });
    }
    // Normalise -0.0 so that held scores compare and bin uniformly.
    let score = if score == 0.0 { 0.0 } else { score };
    Ok(Observation { positive, predicted_positive, score })
}

fn check_batch_lengths(labels: usize, predictions: usize, scores: usize) -> Result<()> {
    if labels != predictions {
        return Err(Error::InvalidParameter { name: "predictions", reason: "labels and predictions must have the same length" });
    }
    if labels != scores {
        return Err(Error::InvalidParameter { name: "scores", reason: "labels and scores must have the same length" });
    }
    Ok(())
}

/// Log loss term of one observation, as scikit-learn: the probability of the
/// true class, clipped to `[LOG_LOSS_EPS, 1 - LOG_LOSS_EPS]`.
fn log_loss_term(positive: bool, score: f64) -> f64 {
    let p = if positive { score } else { 1.0 - score };
    -p.clamp(LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS).ln()
}

fn brier_term(positive: bool, score: f64) -> f64 {
    let y = if positive { 1.0 } else { 0.0 };
    (y - score) * (y - score)
}

impl BinaryClassification {
    /// An empty accumulator holding up to `capacity` scores exactly, then an
    /// AUC histogram of `bins` equal-width bins over `[0, 1]`.
    ///
    /// `capacity` may be 0 (always binned).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] when `bins` is 0 or above
    /// [`MAX_AUC_BINS`].
    pub fn new(capacity: usize, bins: usize) -> Result<Self> {
        if bins == 0 || bins > MAX_AUC_BINS {
            return Err(Error::InvalidParameter { name: "bins", reason: "bins must be between 1 and MAX_AUC_BINS" });
        }
        Ok(Self::empty(capacity, bins))
    }

    fn empty(capacity: usize, bins: usize) -> Self {
        BinaryClassification {
            capacity,
            bins,
            tp: 0,
            fp: 0,
            tn: 0,
            fn_: 0,
            log_loss_sum: CompensatedSum::default(),
            brier_sum: CompensatedSum::default(),
            scores: ScoreStore::empty(),
        }
    }

    /// The number of scores held exactly before falling back to bins.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The number of AUC histogram bins used past the capacity.
    pub fn bins(&self) -> usize {
        self.bins
    }

    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.tp + self.fp + self.tn + self.fn_
    }

    /// The confusion counts `(tp, fp, tn, fn)` with class 1 as positive.
    pub fn confusion(&self) -> (u64, u64, u64, u64) {
        (self.tp, self.fp, self.tn, self.fn_)
    }

    /// Whether ROC AUC is computed from every score (no histogram fallback).
    pub fn is_exact(&self) -> bool {
        matches!(self.scores, ScoreStore::Exact { .. })
    }

    fn positives(&self) -> u64 {
        self.tp + self.fn_
    }

    fn negatives(&self) -> u64 {
        self.tn + self.fp
    }

    /// Adds one observation: `label` and `prediction` in {0, 1}, `score` the
    /// predicted probability of class 1.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] when a label or prediction is not 0 or 1,
    /// the score is not a finite value in `[0, 1]`, or the count would
    /// overflow `u64`; the accumulator is then unchanged.
    pub fn update(&mut self, label: u8, prediction: u8, score: f64) -> Result<()> {
        let obs = validate_observation(label, prediction, score)?;
        self.check_room(1)?;
        self.add(obs);
        Ok(())
    }

    /// Adds a batch of observations (equal-length slices). All are validated
    /// first: on error none is added.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] on different lengths or any invalid
    /// observation (see [`update`](Self::update)).
    pub fn update_batch(&mut self, labels: &[u8], predictions: &[u8], scores: &[f64]) -> Result<()> {
        check_batch_lengths(labels.len(), predictions.len(), scores.len())?;
        let observations =
            labels.iter().zip(predictions).zip(scores).map(|((&l, &p), &s)| validate_observation(l, p, s)).collect::<Result<Vec<_>>>()?;
        self.check_room(observations.len() as u64)?;
        if let ScoreStore::Exact { positives, negatives, .. } = &mut self.scores {
            let room = self.capacity.saturating_sub(positives.len() + negatives.len());
            if observations.len() <= room {
                let pos = observations.iter().filter(|o| o.positive).count();
                positives.reserve(pos);
                negatives.reserve(observations.len() - pos);
            }
        }
        for obs in observations {
            self.add(obs);
        }
        Ok(())
    }

    /// Fails when `extra` more observations would overflow the count.
    fn check_room(&self, extra: u64) -> Result<()> {
        match self.count().checked_add(extra) {
            Some(_) => Ok(()),
            None => Err(Error::InvalidParameter { name: "count", reason: "the observation count would overflow u64" }),
        }
    }

    fn add(&mut self, obs: Observation) {
        match (obs.positive, obs.predicted_positive) {
            (true, true) => self.tp += 1,
            (true, false) => self.fn_ += 1,
            (false, true) => self.fp += 1,
            (false, false) => self.tn += 1,
        }
        self.log_loss_sum.add(log_loss_term(obs.positive, obs.score));
        self.brier_sum.add(brier_term(obs.positive, obs.score));
        if self.scores.held() >= self.capacity {
            self.bin_scores();
        }
        match &mut self.scores {
            ScoreStore::Exact { positives, negatives, sorted } => {
                let target = if obs.positive { positives } else { negatives };
                if target.last().is_some_and(|&last| last > obs.score) {
                    *sorted = false;
                }
                target.push(obs.score);
            }
            ScoreStore::Binned { positives, negatives } => {
                let target = if obs.positive { positives } else { negatives };
                if let Some(c) = target.get_mut(bin_of(obs.score, self.bins)) {
                    *c += 1;
                }
            }
        }
    }

    /// Switches the score store to the histogram (no-op when binned).
    fn bin_scores(&mut self) {
        if let ScoreStore::Exact { positives, negatives, .. } = &self.scores {
            self.scores = ScoreStore::Binned { positives: histogram(positives, self.bins), negatives: histogram(negatives, self.bins) };
        }
    }

    /// Removes one observation previously added with the same values (for a
    /// sliding window), undoing [`update`](Self::update).
    ///
    /// # Errors
    ///
    /// * [`Error::InvalidParameter`] when the observation is invalid (as for
    ///   `update`) or was never added: its confusion cell is empty, or its
    ///   score is not among the held scores (or its bin is empty). The
    ///   accumulator is then unchanged.
    pub fn retract(&mut self, label: u8, prediction: u8, score: f64) -> Result<()> {
        let obs = validate_observation(label, prediction, score)?;
        let never_added = |name| Error::InvalidParameter { name, reason: "retracted an observation that was never added" };
        let cell = match (obs.positive, obs.predicted_positive) {
            (true, true) => self.tp,
            (true, false) => self.fn_,
            (false, true) => self.fp,
            (false, false) => self.tn,
        };
        if cell == 0 {
            return Err(never_added("label"));
        }
        // Locate the score before changing anything.
        let bins = self.bins;
        match &mut self.scores {
            ScoreStore::Exact { positives, negatives, sorted } => {
                let target = if obs.positive { positives } else { negatives };
                let i = find_score(target, obs.score, *sorted).ok_or(never_added("score"))?;
                if *sorted {
                    target.remove(i);
                } else {
                    target.swap_remove(i);
                }
            }
            ScoreStore::Binned { positives, negatives } => {
                let target = if obs.positive { positives } else { negatives };
                match target.get_mut(bin_of(obs.score, bins)) {
                    Some(c) if *c > 0 => *c -= 1,
                    _ => return Err(never_added("score")),
                }
            }
        }
        match (obs.positive, obs.predicted_positive) {
            (true, true) => self.tp -= 1,
            (true, false) => self.fn_ -= 1,
            (false, true) => self.fp -= 1,
            (false, false) => self.tn -= 1,
        }
        self.log_loss_sum.sub(log_loss_term(obs.positive, obs.score));
        self.brier_sum.sub(brier_term(obs.positive, obs.score));
        if self.count() == 0 {
            // Drop rounding residue and return to exact scores.
            *self = Self::empty(self.capacity, self.bins);
        }
        Ok(())
    }

    /// Removes a batch of observations (equal-length slices), as repeated
    /// [`retract`](Self::retract). All are checked first: on error none is
    /// removed.
    ///
    /// # Errors
    ///
    /// As [`retract`](Self::retract), and [`Error::InvalidParameter`] on
    /// different lengths.
    pub fn retract_batch(&mut self, labels: &[u8], predictions: &[u8], scores: &[f64]) -> Result<()> {
        check_batch_lengths(labels.len(), predictions.len(), scores.len())?;
        let mut trial = self.clone();
        for ((&l, &p), &s) in labels.iter().zip(predictions).zip(scores) {
            trial.retract(l, p, s)?;
        }
        *self = trial;
        Ok(())
    }

    /// Folds another accumulator (another shard or pane) into this one, as
    /// if its observations had been added here.
    ///
    /// When the merged scores exceed the capacity, or either side is already
    /// binned, the result is binned.
    ///
    /// # Errors
    ///
    /// [`Error::Incompatible`] when the two differ in capacity or bins, and
    /// [`Error::InvalidParameter`] when the merged count would overflow
    /// `u64`; this accumulator is then unchanged.
    pub fn merge(&mut self, other: &Self) -> Result<()> {
        if self.capacity != other.capacity {
            return Err(Error::Incompatible { reason: "binary classification accumulators differ in score capacity" });
        }
        if self.bins != other.bins {
            return Err(Error::Incompatible { reason: "binary classification accumulators differ in AUC bins" });
        }
        self.check_room(other.count())?;
        self.tp += other.tp;
        self.fp += other.fp;
        self.tn += other.tn;
        self.fn_ += other.fn_;
        self.log_loss_sum.merge(&other.log_loss_sum);
        self.brier_sum.merge(&other.brier_sum);
        let fits = self.scores.held() + other.scores.held() <= self.capacity;
        if !fits {
            self.bin_scores();
        }
        let bins = self.bins;
        match (&mut self.scores, &other.scores) {
            (ScoreStore::Exact { positives, negatives, sorted }, ScoreStore::Exact { positives: op, negatives: on, .. }) => {
                positives.extend_from_slice(op);
                negatives.extend_from_slice(on);
                *sorted = false;
            }
            (ScoreStore::Binned { positives, negatives }, ScoreStore::Exact { positives: op, negatives: on, .. }) => {
                for &s in op {
                    if let Some(c) = positives.get_mut(bin_of(s, bins)) {
                        *c += 1;
                    }
                }
                for &s in on {
                    if let Some(c) = negatives.get_mut(bin_of(s, bins)) {
                        *c += 1;
                    }
                }
            }
            (ScoreStore::Binned { positives, negatives }, ScoreStore::Binned { positives: op, negatives: on }) => {
                positives.iter_mut().zip(op).for_each(|(c, o)| *c += o);
                negatives.iter_mut().zip(on).for_each(|(c, o)| *c += o);
            }
            (ScoreStore::Exact { .. }, ScoreStore::Binned { positives: op, negatives: on }) => {
                self.bin_scores();
                if let ScoreStore::Binned { positives, negatives } = &mut self.scores {
                    positives.iter_mut().zip(op).for_each(|(c, o)| *c += o);
                    negatives.iter_mut().zip(on).for_each(|(c, o)| *c += o);
                }
            }
        }
        Ok(())
    }

    /// Approximate memory held, in bytes (the struct and its score buffers).
    pub fn size_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.scores.heap_bytes()
    }

    fn require_data(&self, statistic: &'static str) -> Result<u64> {
        match self.count() {
            0 => Err(Error::InsufficientData { statistic, available: 0, required: 1 }),
            n => Ok(n),
        }
    }

    /// Share of correct predictions.
    ///
    /// # Errors
    ///
    /// [`Error::InsufficientData`] when empty.
    pub fn accuracy(&self) -> Result<f64> {
        let n = self.require_data("accuracy")?;
        Ok((self.tp + self.tn) as f64 / n as f64)
    }

    /// Precision of class 1, `tp / (tp + fp)`; 0 when nothing was predicted
    /// positive (`zero_division=0`).
    ///
    /// # Errors
    ///
    /// [`Error::InsufficientData`] when empty.
    pub fn precision(&self) -> Result<f64> {
        self.require_data("precision")?;
        Ok(ratio_or_zero(self.tp, self.tp + self.fp))
    }

    /// Recall of class 1, `tp / (tp + fn)`; 0 when no label is positive
    /// (`zero_division=0`).
    ///
    /// # Errors
    ///
    /// [`Error::InsufficientData`] when empty.
    pub fn recall(&self) -> Result<f64> {
        self.require_data("recall")?;
        Ok(ratio_or_zero(self.tp, self.tp + self.fn_))
    }

    /// F1 of class 1, `2 tp / (2 tp + fp + fn)` as scikit-learn computes it;
    /// 0 when the denominator is 0 (`zero_division=0`).
    ///
    /// # Errors
    ///
    /// [`Error::InsufficientData`] when empty.
    pub fn f1(&self) -> Result<f64> {
        self.require_data("f1")?;
        // scikit-learn: (1 + beta²) tp / (beta² (tp + fn) + (tp + fp)).
        let numerator = 2.0 * self.tp as f64;
        let denominator = (self.tp + self.fn_) as f64 + (self.tp + self.fp) as f64;
        Ok(if denominator == 0.0 { 0.0 } else { numerator / denominator })
    }

    /// Mean log loss, scores clipped to `[LOG_LOSS_EPS, 1 - LOG_LOSS_EPS]`.
    ///
    /// # Errors
    ///
    /// [`Error::InsufficientData`] when empty.
    pub fn log_loss(&self) -> Result<f64> {
        let n = self.require_data("log_loss")?;
        Ok(self.log_loss_sum.value().max(0.0) / n as f64)
    }

    /// Brier score: mean of `(label - score)²`.
    ///
    /// # Errors
    ///
    /// [`Error::InsufficientData`] when empty.
    pub fn brier(&self) -> Result<f64> {
        let n = self.require_data("brier")?;
        Ok(self.brier_sum.value().max(0.0) / n as f64)
    }

    /// ROC AUC of the held scores (exact while at most `capacity` scores
    /// are held, else from the histogram; see [`is_exact`](Self::is_exact)).
    ///
    /// Sorts a copy of the scores when they are not sorted yet; prefer
    /// [`evaluate`](Self::evaluate), which sorts in place once.
    ///
    /// # Errors
    ///
    /// [`Error::InsufficientData`] (statistic `"roc_auc"`) when empty or when
    /// only one class is present.
    pub fn roc_auc(&self) -> Result<f64> {
        let (p, n) = (self.positives(), self.negatives());
        if p == 0 || n == 0 {
            return Err(one_class_error(p, n));
        }
        let u2 = match &self.scores {
            ScoreStore::Exact { positives, negatives, sorted: true } => twice_u_sorted(positives, negatives),
            ScoreStore::Exact { positives, negatives, sorted: false } => {
                let mut positives = positives.clone();
                let mut negatives = negatives.clone();
                positives.sort_unstable_by(f64::total_cmp);
                negatives.sort_unstable_by(f64::total_cmp);
                twice_u_sorted(&positives, &negatives)
            }
            ScoreStore::Binned { positives, negatives } => twice_u_binned(positives, negatives),
        };
        Ok(auc_from_twice_u(u2, p, n))
    }

    /// Sorts the held scores in place so later AUC evaluations and
    /// retractions need no sort (binary search instead of a scan).
    pub fn sort_scores(&mut self) {
        if let ScoreStore::Exact { positives, negatives, sorted } = &mut self.scores {
            if !*sorted {
                positives.sort_unstable_by(f64::total_cmp);
                negatives.sort_unstable_by(f64::total_cmp);
                *sorted = true;
            }
        }
    }

    /// All metrics at once; sorts the held scores in place first.
    ///
    /// `roc_auc` is `None` when only one class is present.
    ///
    /// # Errors
    ///
    /// [`Error::InsufficientData`] (statistic `"binary_quality"`) when empty.
    pub fn evaluate(&mut self) -> Result<BinaryQuality> {
        self.sort_scores();
        self.quality()
    }

    /// All metrics at once without touching the state (sorts a copy of the
    /// scores when needed).
    ///
    /// # Errors
    ///
    /// [`Error::InsufficientData`] (statistic `"binary_quality"`) when empty.
    pub fn quality(&self) -> Result<BinaryQuality> {
        let count = self.require_data("binary_quality")?;
        let roc_auc = match self.roc_auc() {
            Ok(auc) => Some(auc),
            Err(Error::InsufficientData { .. }) => None,
            Err(e) => return Err(e),
        };
        Ok(BinaryQuality {
            accuracy: self.accuracy()?,
            precision: self.precision()?,
            recall: self.recall()?,
            f1: self.f1()?,
            roc_auc,
            roc_auc_exact: self.is_exact(),
            log_loss: self.log_loss()?,
            brier: self.brier()?,
            count,
        })
    }
}

fn ratio_or_zero(numerator: u64, denominator: u64) -> f64 {
    if denominator == 0 {
        0.0
    } else {
        numerator as f64 / denominator as f64
    }
}

// ---------------------------------------------------------------------------
// Regression
// ---------------------------------------------------------------------------

/// Quality of a regression model over the observations of a [`Regression`]
/// accumulator, as scikit-learn computes each metric.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RegressionQuality {
    /// Mean absolute error (`mean_absolute_error`).
    pub mae: f64,
    /// Root mean squared error (`root_mean_squared_error`).
    pub rmse: f64,
    /// Mean absolute percentage error as a fraction, with
    /// `|y - ŷ| / max(|y|, f64::EPSILON)` per observation
    /// (`mean_absolute_percentage_error`).
    pub mape: f64,
    /// Valid observations.
    pub count: u64,
    /// Observations skipped as invalid.
    pub invalid: u64,
}

/// Mergeable, retractable accumulator of a regression model's errors over
/// `(y_true, y_pred)` pairs.
///
/// It keeps compensated sums of absolute, squared and absolute percentage
/// errors. A pair with a NaN or infinite value — or whose squared or
/// percentage error overflows `f64` — is counted in `invalid` and folded into
/// no sum.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(try_from = "RegressionRepr")]
pub struct Regression {
    count: u64,
    invalid: u64,
    abs_error_sum: CompensatedSum,
    squared_error_sum: CompensatedSum,
    percentage_error_sum: CompensatedSum,
}

/// The serialized form, validated into a [`Regression`].
#[derive(Deserialize)]
struct RegressionRepr {
    count: u64,
    invalid: u64,
    abs_error_sum: CompensatedSum,
    squared_error_sum: CompensatedSum,
    percentage_error_sum: CompensatedSum,
}

impl TryFrom<RegressionRepr> for Regression {
    type Error = Error;

    fn try_from(r: RegressionRepr) -> Result<Self> {
        if !(r.abs_error_sum.is_finite() && r.squared_error_sum.is_finite() && r.percentage_error_sum.is_finite()) {
            return Err(Error::CorruptSnapshot { kind: "regression", reason: "non-finite sum" });
        }
        Ok(Regression {
            count: r.count,
            invalid: r.invalid,
            abs_error_sum: r.abs_error_sum,
            squared_error_sum: r.squared_error_sum,
            percentage_error_sum: r.percentage_error_sum,
        })
    }
}

/// Error terms `(|e|, e², |e| / max(|y|, EPSILON))` of a pair, or `None`
/// when the pair is invalid.
fn regression_terms(y_true: f64, y_pred: f64) -> Option<(f64, f64, f64)> {
    if !y_true.is_finite() || !y_pred.is_finite() {
        return None;
    }
    let abs = (y_true - y_pred).abs();
    let squared = abs * abs;
    let percentage = abs / y_true.abs().max(f64::EPSILON);
    (abs.is_finite() && squared.is_finite() && percentage.is_finite()).then_some((abs, squared, percentage))
}

impl Regression {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Valid observations.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Observations skipped as invalid (NaN, infinite, or overflowing).
    pub fn invalid(&self) -> u64 {
        self.invalid
    }

    /// Adds one `(y_true, y_pred)` pair; an invalid pair only increments
    /// the invalid counter.
    pub fn update(&mut self, y_true: f64, y_pred: f64) {
        match regression_terms(y_true, y_pred) {
            Some((abs, squared, percentage)) => {
                self.count = self.count.saturating_add(1);
                self.abs_error_sum.add(abs);
                self.squared_error_sum.add(squared);
                self.percentage_error_sum.add(percentage);
            }
            None => self.invalid = self.invalid.saturating_add(1),
        }
    }

    /// Adds pairs from equal-length slices.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] when the lengths differ; nothing is
    /// added then.
    pub fn update_batch(&mut self, y_true: &[f64], y_pred: &[f64]) -> Result<()> {
        if y_true.len() != y_pred.len() {
            return Err(Error::InvalidParameter { name: "y_pred", reason: "y_true and y_pred must have the same length" });
        }
        for (&t, &p) in y_true.iter().zip(y_pred) {
            self.update(t, p);
        }
        Ok(())
    }

    /// Removes one pair previously added with the same values, undoing
    /// [`update`](Self::update) (an invalid pair decrements the invalid
    /// counter).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] when there is no such observation to
    /// remove (the matching counter is 0); nothing changes then.
    pub fn retract(&mut self, y_true: f64, y_pred: f64) -> Result<()> {
        let never_added = Error::InvalidParameter { name: "y_true", reason: "retracted an observation that was never added" };
        match regression_terms(y_true, y_pred) {
            Some((abs, squared, percentage)) => {
                if self.count == 0 {
                    return Err(never_added);
                }
                self.count -= 1;
                if self.count == 0 {
                    // Drop rounding residue.
                    self.abs_error_sum = CompensatedSum::default();
                    self.squared_error_sum = CompensatedSum::default();
                    self.percentage_error_sum = CompensatedSum::default();
                } else {
                    self.abs_error_sum.sub(abs);
                    self.squared_error_sum.sub(squared);
                    self.percentage_error_sum.sub(percentage);
                }
            }
            None => {
                if self.invalid == 0 {
                    return Err(never_added);
                }
                self.invalid -= 1;
            }
        }
        Ok(())
    }

    /// Removes pairs from equal-length slices, as repeated
    /// [`retract`](Self::retract). All are checked first: on error none is
    /// removed.
    ///
    /// # Errors
    ///
    /// As [`retract`](Self::retract), and [`Error::InvalidParameter`] on
    /// different lengths.
    pub fn retract_batch(&mut self, y_true: &[f64], y_pred: &[f64]) -> Result<()> {
        if y_true.len() != y_pred.len() {
            return Err(Error::InvalidParameter { name: "y_pred", reason: "y_true and y_pred must have the same length" });
        }
        let mut trial = self.clone();
        for (&t, &p) in y_true.iter().zip(y_pred) {
            trial.retract(t, p)?;
        }
        *self = trial;
        Ok(())
    }

    /// Folds another accumulator into this one.
    pub fn merge(&mut self, other: &Self) {
        self.count = self.count.saturating_add(other.count);
        self.invalid = self.invalid.saturating_add(other.invalid);
        self.abs_error_sum.merge(&other.abs_error_sum);
        self.squared_error_sum.merge(&other.squared_error_sum);
        self.percentage_error_sum.merge(&other.percentage_error_sum);
    }

    /// Approximate memory held, in bytes.
    pub fn size_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
    }

    fn require_data(&self, statistic: &'static str) -> Result<f64> {
        match self.count {
            0 => Err(Error::InsufficientData { statistic, available: 0, required: 1 }),
            n => Ok(n as f64),
        }
    }

    /// Mean absolute error.
    ///
    /// # Errors
    ///
    /// [`Error::InsufficientData`] without valid observations.
    pub fn mae(&self) -> Result<f64> {
        let n = self.require_data("mae")?;
        Ok(self.abs_error_sum.value().max(0.0) / n)
    }

    /// Root mean squared error.
    ///
    /// # Errors
    ///
    /// [`Error::InsufficientData`] without valid observations.
    pub fn rmse(&self) -> Result<f64> {
        let n = self.require_data("rmse")?;
        Ok((self.squared_error_sum.value().max(0.0) / n).sqrt())
    }

    /// Mean absolute percentage error (a fraction, not percent), each term
    /// `|y - ŷ| / max(|y|, f64::EPSILON)` as scikit-learn.
    ///
    /// # Errors
    ///
    /// [`Error::InsufficientData`] without valid observations.
    pub fn mape(&self) -> Result<f64> {
        let n = self.require_data("mape")?;
        Ok(self.percentage_error_sum.value().max(0.0) / n)
    }

    /// All metrics at once.
    ///
    /// # Errors
    ///
    /// [`Error::InsufficientData`] (statistic `"regression_quality"`)
    /// without valid observations.
    pub fn evaluate(&self) -> Result<RegressionQuality> {
        self.require_data("regression_quality")?;
        Ok(RegressionQuality { mae: self.mae()?, rmse: self.rmse()?, mape: self.mape()?, count: self.count, invalid: self.invalid })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/classification.json");

    /// One case of the classification fixture.
    #[derive(Debug)]
    struct Case {
        name: String,
        labels: Vec<u8>,
        predictions: Vec<u8>,
        scores: Vec<f64>,
        expected: Value,
    }

    fn load_cases() -> Vec<Case> {
        let text = std::fs::read_to_string(FIXTURE).expect("read classification fixture");
        let root: Value = serde_json::from_str(&text).expect("parse classification fixture");
        let definition = root["definitions"]["classification"].as_str().expect("classification definition");
        assert!(definition.contains("zero_division=0"));
        assert!(definition.contains("1e-15"));
        let to_u8 = |v: &Value| -> Vec<u8> {
            v.as_array().expect("array").iter().map(|x| u8::try_from(x.as_u64().expect("integer")).expect("small integer")).collect()
        };
        let cases: Vec<Case> = root["cases"]
            .as_array()
            .expect("cases")
            .iter()
            .map(|c| Case {
                name: c["name"].as_str().expect("name").to_owned(),
                labels: to_u8(&c["label"]),
                predictions: to_u8(&c["prediction"]),
                scores: c["score"].as_array().expect("scores").iter().map(|x| x.as_f64().expect("float")).collect(),
                expected: c["expected"].clone(),
            })
            .collect();
        assert!(!cases.is_empty());
        cases
    }

    fn expected(case: &Case, metric: &str) -> f64 {
        case.expected[metric].as_f64().unwrap_or_else(|| panic!("{}: expected.{metric} missing", case.name))
    }

    #[track_caller]
    fn assert_close(actual: f64, expected: f64, what: &str) {
        let diff = (actual - expected).abs();
        assert!(diff <= 1e-12 || diff <= 1e-9 * expected.abs(), "{what}: got {actual}, expected {expected} (diff {diff:e})");
    }

    #[track_caller]
    fn assert_quality_close(a: &BinaryQuality, b: &BinaryQuality, what: &str) {
        assert_eq!(a.count, b.count, "{what}: count");
        assert_eq!(a.roc_auc_exact, b.roc_auc_exact, "{what}: roc_auc_exact");
        assert_close(a.accuracy, b.accuracy, &format!("{what}: accuracy"));
        assert_close(a.precision, b.precision, &format!("{what}: precision"));
        assert_close(a.recall, b.recall, &format!("{what}: recall"));
        assert_close(a.f1, b.f1, &format!("{what}: f1"));
        assert_close(a.log_loss, b.log_loss, &format!("{what}: log_loss"));
        assert_close(a.brier, b.brier, &format!("{what}: brier"));
        match (a.roc_auc, b.roc_auc) {
            (Some(x), Some(y)) => assert_close(x, y, &format!("{what}: roc_auc")),
            (x, y) => assert_eq!(x, y, "{what}: roc_auc"),
        }
    }

    fn build(capacity: usize, bins: usize, labels: &[u8], predictions: &[u8], scores: &[f64]) -> BinaryClassification {
        let mut acc = BinaryClassification::new(capacity, bins).expect("valid config");
        for ((&l, &p), &s) in labels.iter().zip(predictions).zip(scores) {
            acc.update(l, p, s).expect("valid observation");
        }
        acc
    }

    /// Deterministic pseudo-random numbers (SplitMix64) for property checks.
    struct Rng(u64);

    impl Rng {
        fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next_u64() % n
        }
    }

    fn brute_force_auc(labels: &[u8], scores: &[f64]) -> f64 {
        let mut wins = 0.0;
        let mut pairs = 0.0;
        for (&li, &si) in labels.iter().zip(scores) {
            for (&lj, &sj) in labels.iter().zip(scores) {
                if li == 1 && lj == 0 {
                    pairs += 1.0;
                    if si > sj {
                        wins += 1.0;
                    } else if si == sj {
                        wins += 0.5;
                    }
                }
            }
        }
        wins / pairs
    }

    // --- fixtures ---------------------------------------------------------

    #[test]
    fn fixture_every_case_every_metric() {
        let cases = load_cases();
        for case in &cases {
            let n = case.labels.len();
            assert_eq!(case.predictions.len(), n, "{}", case.name);
            assert_eq!(case.scores.len(), n, "{}", case.name);

            // One update at a time, then evaluate().
            let mut acc = build(DEFAULT_SCORE_CAPACITY, DEFAULT_AUC_BINS, &case.labels, &case.predictions, &case.scores);
            assert!(acc.is_exact());
            let q = acc.evaluate().expect("non-empty");
            let what = |m: &str| format!("{} {m}", case.name);
            assert_eq!(q.count, n as u64, "{}", case.name);
            assert!(q.roc_auc_exact);
            assert_close(q.accuracy, expected(case, "accuracy"), &what("accuracy"));
            assert_close(q.precision, expected(case, "precision"), &what("precision"));
            assert_close(q.recall, expected(case, "recall"), &what("recall"));
            assert_close(q.f1, expected(case, "f1"), &what("f1"));
            assert_close(q.roc_auc.expect("both classes present"), expected(case, "roc_auc"), &what("roc_auc"));
            assert_close(q.log_loss, expected(case, "log_loss"), &what("log_loss"));
            assert_close(q.brier, expected(case, "brier"), &what("brier"));

            // The single-metric getters agree.
            assert_close(acc.accuracy().expect("data"), expected(case, "accuracy"), &what("accuracy()"));
            assert_close(acc.precision().expect("data"), expected(case, "precision"), &what("precision()"));
            assert_close(acc.recall().expect("data"), expected(case, "recall"), &what("recall()"));
            assert_close(acc.f1().expect("data"), expected(case, "f1"), &what("f1()"));
            assert_close(acc.roc_auc().expect("data"), expected(case, "roc_auc"), &what("roc_auc()"));
            assert_close(acc.log_loss().expect("data"), expected(case, "log_loss"), &what("log_loss()"));
            assert_close(acc.brier().expect("data"), expected(case, "brier"), &what("brier()"));

            // The free function.
            assert_close(roc_auc(&case.labels, &case.scores).expect("both classes"), expected(case, "roc_auc"), &what("roc_auc fn"));

            // Batch update, and quality() on unsorted scores.
            let mut batch = BinaryClassification::default();
            batch.update_batch(&case.labels, &case.predictions, &case.scores).expect("valid batch");
            assert_quality_close(&batch.quality().expect("data"), &q, &what("batch"));
        }
    }

    #[test]
    fn fixture_auc_matches_brute_force() {
        for case in &load_cases() {
            if case.labels.len() > 1000 {
                continue;
            }
            assert_close(roc_auc(&case.labels, &case.scores).expect("auc"), brute_force_auc(&case.labels, &case.scores), &case.name);
        }
    }

    #[test]
    fn fixture_merge_equals_build_of_concatenation() {
        for case in &load_cases() {
            let n = case.labels.len();
            for &(capacity, bins) in &[(DEFAULT_SCORE_CAPACITY, DEFAULT_AUC_BINS), (n / 2, 100), (0, 64)] {
                let mut whole = build(capacity, bins, &case.labels, &case.predictions, &case.scores);
                let expected_q = whole.evaluate().expect("data");
                for cut in [0, 1, n / 3, n / 2, n - 1, n] {
                    let (l, p, s) = (&case.labels, &case.predictions, &case.scores);
                    let mut a = build(capacity, bins, &l[..cut], &p[..cut], &s[..cut]);
                    let b = build(capacity, bins, &l[cut..], &p[cut..], &s[cut..]);
                    a.merge(&b).expect("compatible");
                    let what = format!("{} cap {capacity} cut {cut}", case.name);
                    assert_quality_close(&a.evaluate().expect("data"), &expected_q, &what);
                    // Merge in the other order.
                    let mut b2 = build(capacity, bins, &l[cut..], &p[cut..], &s[cut..]);
                    let a2 = build(capacity, bins, &l[..cut], &p[..cut], &s[..cut]);
                    b2.merge(&a2).expect("compatible");
                    assert_quality_close(&b2.evaluate().expect("data"), &expected_q, &what);
                }
                // Three shards, round robin.
                let mut shards: Vec<BinaryClassification> =
                    (0..3).map(|_| BinaryClassification::new(capacity, bins).expect("config")).collect();
                for i in 0..n {
                    shards[i % 3].update(case.labels[i], case.predictions[i], case.scores[i]).expect("valid");
                }
                let mut merged = BinaryClassification::new(capacity, bins).expect("config");
                for shard in &shards {
                    merged.merge(shard).expect("compatible");
                }
                assert_quality_close(&merged.evaluate().expect("data"), &expected_q, &format!("{} cap {capacity} round robin", case.name));
            }
        }
    }

    #[test]
    fn fixture_retract_undoes_update() {
        for case in &load_cases() {
            let n = case.labels.len();
            let (l, p, s) = (&case.labels, &case.predictions, &case.scores);
            for &(capacity, bins) in &[(DEFAULT_SCORE_CAPACITY, DEFAULT_AUC_BINS), (0, 128)] {
                let half = n / 2;
                let mut reference = build(capacity, bins, &l[half..], &p[half..], &s[half..]);
                let expected_q = reference.evaluate().expect("data");

                // Sliding window: add everything, retract the oldest half
                // (with an evaluation in between, so both the sorted and
                // the unsorted retract paths run).
                let mut window = build(capacity, bins, l, p, s);
                for i in 0..half {
                    if i == half / 2 {
                        window.evaluate().expect("data");
                    }
                    window.retract(l[i], p[i], s[i]).expect("was added");
                }
                assert_quality_close(
                    &window.evaluate().expect("data"),
                    &expected_q,
                    &format!("{} cap {capacity} retract oldest half", case.name),
                );

                // Retracting in reverse order through the batch API.
                let mut window = build(capacity, bins, l, p, s);
                let idx: Vec<usize> = (0..half).rev().collect();
                let rl: Vec<u8> = idx.iter().map(|&i| l[i]).collect();
                let rp: Vec<u8> = idx.iter().map(|&i| p[i]).collect();
                let rs: Vec<f64> = idx.iter().map(|&i| s[i]).collect();
                window.retract_batch(&rl, &rp, &rs).expect("were added");
                assert_quality_close(
                    &window.evaluate().expect("data"),
                    &expected_q,
                    &format!("{} cap {capacity} retract batch", case.name),
                );

                // Retracting everything returns to an empty, exact state.
                window.retract_batch(&l[half..], &p[half..], &s[half..]).expect("were added");
                assert_eq!(window.count(), 0);
                assert!(window.is_exact());
                assert!(matches!(window.evaluate(), Err(Error::InsufficientData { .. })));
            }
        }
    }

    #[test]
    fn retract_then_update_matches_sliding_rebuild_exactly() {
        // A window of 300 sliding over binary_5000, compared with a fresh build.
        let cases = load_cases();
        let case = cases.iter().max_by_key(|c| c.labels.len()).expect("a case");
        let (l, p, s) = (&case.labels, &case.predictions, &case.scores);
        let width = 300;
        let mut window = BinaryClassification::default();
        for i in 0..1200 {
            window.update(l[i], p[i], s[i]).expect("valid");
            if i >= width {
                let j = i - width;
                window.retract(l[j], p[j], s[j]).expect("was added");
            }
            if i % 97 == 0 && i >= width {
                let lo = i + 1 - width;
                let mut fresh = build(DEFAULT_SCORE_CAPACITY, DEFAULT_AUC_BINS, &l[lo..=i], &p[lo..=i], &s[lo..=i]);
                let q = window.evaluate().expect("data");
                assert_quality_close(&q, &fresh.evaluate().expect("data"), &format!("window at {i}"));
                assert_eq!(q.roc_auc, roc_auc(&l[lo..=i], &s[lo..=i]).ok());
            }
        }
    }

    // --- ROC AUC details ---------------------------------------------------

    #[test]
    fn roc_auc_hand_examples_and_ties() {
        // scikit-learn's documentation example.
        assert_eq!(roc_auc(&[0, 0, 1, 1], &[0.1, 0.4, 0.35, 0.8]).expect("auc"), 0.75);
        // All scores tied: 1/2.
        assert_eq!(roc_auc(&[0, 1, 0, 1], &[0.5; 4]).expect("auc"), 0.5);
        // Mixed ties: pairs (0.2|0.2)=½, (0.2|0.6)=0, (0.6|0.2)=1, (0.6|0.6)=½,
        // (0.9|0.2)=1, (0.9|0.6)=1 → 4/6.
        assert_close(roc_auc(&[0, 1, 1, 0, 1], &[0.2, 0.2, 0.6, 0.6, 0.9]).expect("auc"), 4.0 / 6.0, "mixed ties");
        // Perfect and inverted rankings; scores need not be probabilities.
        assert_eq!(roc_auc(&[0, 0, 1, 1], &[-3.0, -1.0, 2.0, 7.5]).expect("auc"), 1.0);
        assert_eq!(roc_auc(&[1, 1, 0, 0], &[-3.0, -1.0, 2.0, 7.5]).expect("auc"), 0.0);
        // -0.0 and 0.0 tie.
        assert_eq!(roc_auc(&[0, 1], &[-0.0, 0.0]).expect("auc"), 0.5);
        assert_eq!(roc_auc(&[1, 0], &[-0.0, 0.0]).expect("auc"), 0.5);
    }

    #[test]
    fn roc_auc_matches_brute_force_with_heavy_ties() {
        let mut rng = Rng(42);
        for round in 0..200 {
            let n = 2 + rng.below(60) as usize;
            let levels = 1 + rng.below(8);
            let labels: Vec<u8> = (0..n).map(|_| rng.below(2) as u8).collect();
            let scores: Vec<f64> = (0..n).map(|_| rng.below(levels) as f64 / levels as f64).collect();
            let positives = labels.iter().filter(|&&l| l == 1).count();
            match roc_auc(&labels, &scores) {
                Ok(auc) => {
                    assert!(positives > 0 && positives < n);
                    assert_close(auc, brute_force_auc(&labels, &scores), &format!("round {round}"));
                    // The accumulator agrees, exact and through merges.
                    let preds = vec![0u8; n];
                    let mut acc = build(n, 10, &labels, &preds, &scores);
                    assert_eq!(acc.roc_auc().expect("auc"), auc);
                    assert_eq!(acc.evaluate().expect("q").roc_auc, Some(auc));
                }
                Err(Error::InsufficientData { statistic: "roc_auc", available: 0, required: 1 }) => {
                    assert!(positives == 0 || positives == n)
                }
                Err(e) => panic!("unexpected error {e}"),
            }
        }
    }

    #[test]
    fn binned_auc_is_exact_auc_of_binned_scores() {
        let cases = load_cases();
        for case in &cases {
            let bins = 50;
            let acc = build(0, bins, &case.labels, &case.predictions, &case.scores);
            assert!(!acc.is_exact());
            let q = acc.quality().expect("data");
            assert!(!q.roc_auc_exact);
            let binned: Vec<f64> = case.scores.iter().map(|&s| bin_of(s, bins) as f64).collect();
            assert_eq!(q.roc_auc, Some(roc_auc(&case.labels, &binned).expect("auc")), "{}", case.name);
            // The approximation is close with fine bins.
            let fine = build(0, 10_000, &case.labels, &case.predictions, &case.scores);
            let diff = (fine.roc_auc().expect("auc") - expected(case, "roc_auc")).abs();
            assert!(diff < 1e-2, "{}: binned AUC off by {diff}", case.name);
            // The other metrics do not depend on the score store.
            assert_close(q.log_loss, expected(case, "log_loss"), &case.name);
            assert_close(q.brier, expected(case, "brier"), &case.name);
        }
    }

    #[test]
    fn capacity_switches_to_bins_and_bounds_memory() {
        let mut acc = BinaryClassification::new(4, 10).expect("config");
        for (i, s) in [0.1, 0.2, 0.3, 0.4].into_iter().enumerate() {
            acc.update((i % 2) as u8, 0, s).expect("valid");
        }
        assert!(acc.is_exact());
        acc.update(1, 0, 0.95).expect("valid");
        assert!(!acc.is_exact());
        let small = acc.size_bytes();
        for i in 0..10_000 {
            acc.update((i % 2) as u8, 1, (i % 100) as f64 / 100.0).expect("valid");
        }
        assert_eq!(acc.size_bytes(), small);
        assert_eq!(acc.count(), 10_005);
        // Merging with a different configuration is refused.
        let other = BinaryClassification::new(5, 10).expect("config");
        assert!(matches!(acc.merge(&other), Err(Error::Incompatible { .. })));
        let other = BinaryClassification::new(4, 11).expect("config");
        assert!(matches!(acc.merge(&other), Err(Error::Incompatible { .. })));
        assert_eq!(acc.count(), 10_005);
        assert!(matches!(BinaryClassification::new(4, 0), Err(Error::InvalidParameter { name: "bins", .. })));
        assert!(matches!(BinaryClassification::new(4, MAX_AUC_BINS + 1), Err(Error::InvalidParameter { name: "bins", .. })));
    }

    // --- edge cases and errors ----------------------------------------------

    #[test]
    fn zero_division_and_one_class() {
        // Nothing predicted positive, no positive label: precision, recall
        // and F1 are 0 (zero_division=0); AUC undefined.
        let mut acc = build(10, 10, &[0, 0, 0], &[0, 0, 0], &[0.1, 0.2, 0.3]);
        let q = acc.evaluate().expect("data");
        assert_eq!((q.precision, q.recall, q.f1, q.accuracy), (0.0, 0.0, 0.0, 1.0));
        assert_eq!(q.roc_auc, None);
        assert!(matches!(acc.roc_auc(), Err(Error::InsufficientData { statistic: "roc_auc", available: 0, required: 1 })));
        // Positives present but never predicted.
        let acc = build(10, 10, &[1, 0], &[0, 0], &[0.4, 0.3]);
        let q = acc.quality().expect("data");
        assert_eq!((q.precision, q.recall, q.f1), (0.0, 0.0, 0.0));
        assert_eq!(q.roc_auc, Some(1.0));
    }

    #[test]
    fn log_loss_clips_and_brier_by_hand() {
        let acc = build(10, 10, &[1, 0], &[0, 1], &[0.0, 1.0]);
        let expected_ll = -(LOG_LOSS_EPS.ln());
        assert_close(acc.log_loss().expect("data"), expected_ll, "clipped log loss");
        assert_eq!(acc.brier().expect("data"), 1.0);
        let acc = build(10, 10, &[1, 0], &[1, 0], &[0.8, 0.3]);
        assert_close(acc.log_loss().expect("data"), -(0.8f64.ln() + 0.7f64.ln()) / 2.0, "log loss");
        assert_close(acc.brier().expect("data"), (0.04 + 0.09) / 2.0, "brier");
    }

    #[test]
    fn invalid_input_is_rejected_without_change() {
        assert!(matches!(roc_auc(&[0, 1], &[0.5]), Err(Error::InvalidParameter { name: "scores", .. })));
        assert!(matches!(roc_auc(&[0, 2], &[0.5, 0.6]), Err(Error::InvalidParameter { name: "labels", .. })));
        assert!(matches!(roc_auc(&[0, 1], &[0.5, f64::NAN]), Err(Error::InvalidParameter { name: "scores", .. })));
        assert!(matches!(roc_auc(&[0, 1], &[f64::INFINITY, 0.5]), Err(Error::InvalidParameter { name: "scores", .. })));
        assert!(matches!(roc_auc(&[], &[]), Err(Error::InsufficientData { statistic: "roc_auc", available: 0, required: 1 })));
        assert!(matches!(roc_auc(&[1, 1], &[0.1, 0.2]), Err(Error::InsufficientData { statistic: "roc_auc", .. })));

        let mut acc = build(10, 10, &[1, 0], &[1, 0], &[0.8, 0.3]);
        let before = acc.quality().expect("data");
        for (l, p, s, name) in [
            (2, 0, 0.5, "label"),
            (0, 7, 0.5, "prediction"),
            (0, 0, f64::NAN, "score"),
            (0, 0, f64::NEG_INFINITY, "score"),
            (0, 0, 1.5, "score"),
            (0, 0, -0.1, "score"),
        ] {
            assert!(matches!(acc.update(l, p, s), Err(Error::InvalidParameter { name: n, .. }) if n == name));
            assert!(matches!(acc.retract(l, p, s), Err(Error::InvalidParameter { name: n, .. }) if n == name));
        }
        // Batches: bad lengths, or one bad element, change nothing.
        assert!(matches!(acc.update_batch(&[1, 0], &[1], &[0.1, 0.2]), Err(Error::InvalidParameter { name: "predictions", .. })));
        assert!(matches!(acc.update_batch(&[1, 0], &[1, 0], &[0.1]), Err(Error::InvalidParameter { name: "scores", .. })));
        assert!(acc.update_batch(&[1, 0], &[1, 0], &[0.1, f64::NAN]).is_err());
        // Never-added observations: empty confusion cell, or unknown score.
        assert!(matches!(acc.retract(1, 0, 0.8), Err(Error::InvalidParameter { name: "label", .. })));
        assert!(matches!(acc.retract(1, 1, 0.81), Err(Error::InvalidParameter { name: "score", .. })));
        assert!(acc.retract_batch(&[1, 1], &[1, 1], &[0.8, 0.8]).is_err());
        assert_eq!(acc.quality().expect("data"), before);
        // The same through the binned store.
        let mut binned = build(0, 10, &[1, 0], &[1, 0], &[0.8, 0.3]);
        assert!(matches!(binned.retract(1, 1, 0.05), Err(Error::InvalidParameter { name: "score", .. })));
        assert_eq!(binned.count(), 2);
        // Empty accumulators.
        let mut empty = BinaryClassification::default();
        assert!(matches!(empty.evaluate(), Err(Error::InsufficientData { statistic: "binary_quality", available: 0, required: 1 })));
        assert!(matches!(empty.accuracy(), Err(Error::InsufficientData { .. })));
        assert!(matches!(empty.roc_auc(), Err(Error::InsufficientData { statistic: "roc_auc", .. })));
        assert!(empty.retract(0, 0, 0.5).is_err());
    }

    #[test]
    fn negative_zero_is_held_as_zero() {
        let mut acc = build(10, 10, &[1, 0], &[1, 0], &[-0.0, 0.0]);
        assert_eq!(acc.roc_auc().expect("auc"), 0.5);
        acc.retract(1, 1, 0.0).expect("-0.0 was added as 0.0");
        acc.retract(0, 0, -0.0).expect("0.0 was added");
        assert_eq!(acc.count(), 0);
    }

    #[test]
    fn binary_serde_round_trip_and_corrupt_snapshots() {
        let cases = load_cases();
        let case = &cases[0];
        for capacity in [DEFAULT_SCORE_CAPACITY, 0] {
            let mut acc = build(capacity, 20, &case.labels, &case.predictions, &case.scores);
            let json = serde_json::to_string(&acc).expect("serialize");
            let mut back: BinaryClassification = serde_json::from_str(&json).expect("deserialize");
            assert_quality_close(&back.evaluate().expect("q"), &acc.evaluate().expect("q"), "serde");
            // Still retractable after the round trip.
            back.retract(case.labels[0], case.predictions[0], case.scores[0]).expect("was added");
            let q = serde_json::to_value(back.quality().expect("q")).expect("serialize quality");
            assert!(q.get("roc_auc").is_some());
        }
        let acc = build(10, 20, &[1, 0], &[1, 0], &[0.8, 0.3]);
        let good = serde_json::to_value(&acc).expect("serialize");
        let corrupt = |edit: &dyn Fn(&mut Value)| {
            let mut v = good.clone();
            edit(&mut v);
            serde_json::from_value::<BinaryClassification>(v)
        };
        assert!(corrupt(&|v| v["tp"] = Value::from(5)).is_err());
        assert!(corrupt(&|v| v["bins"] = Value::from(0)).is_err());
        assert!(corrupt(&|v| v["capacity"] = Value::from(1)).is_err());
        assert!(corrupt(&|v| v["scores"]["exact"]["positives"][0] = Value::from(3.0)).is_err());
        assert!(corrupt(&|v| v["scores"] = serde_json::json!({"binned": {"positives": [1], "negatives": [1]}})).is_err());
        assert!(corrupt(&|v| v["bins"] = Value::from(u64::MAX)).is_err());
        assert!(corrupt(&|_| ()).is_ok());
        // Counts at the edge of u64: updates and merges fail, never panic.
        let mut positives = vec![0u64; 20];
        positives[16] = 1;
        let mut negatives = vec![0u64; 20];
        negatives[6] = u64::MAX - 1;
        let mut huge = corrupt(&|v| {
            v["capacity"] = Value::from(0);
            v["tn"] = Value::from(u64::MAX - 1);
            v["scores"] = serde_json::json!({"binned": {
                "positives": positives.clone(),
                "negatives": negatives.clone(),
            }});
        })
        .expect("a consistent state");
        assert!(huge.merge(&huge.clone()).is_err());
        assert!(huge.update(0, 0, 0.01).is_err());
        assert_eq!(huge.count(), u64::MAX);
    }

    // --- regression ------------------------------------------------------------

    #[test]
    fn regression_hand_checked() {
        // scikit-learn documentation examples:
        // mean_absolute_error([3, -0.5, 2, 7], [2.5, 0.0, 2, 8]) == 0.5
        // root_mean_squared_error(...) == sqrt(0.375) == 0.6123724356957945
        // mean_absolute_percentage_error(...) == 0.3273809523809524
        let mut reg = Regression::new();
        reg.update_batch(&[3.0, -0.5, 2.0, 7.0], &[2.5, 0.0, 2.0, 8.0]).expect("same length");
        let q = reg.evaluate().expect("data");
        assert_close(q.mae, 0.5, "mae");
        assert_close(q.rmse, 0.6123724356957945, "rmse");
        assert_close(q.mape, (0.5 / 3.0 + 1.0 + 0.0 + 1.0 / 7.0) / 4.0, "mape");
        assert_close(q.mape, 0.3273809523809524, "mape sklearn");
        assert_eq!((q.count, q.invalid), (4, 0));
        assert_eq!(reg.mae().expect("data"), q.mae);
        assert_eq!(reg.rmse().expect("data"), q.rmse);
        assert_eq!(reg.mape().expect("data"), q.mape);

        // y_true = 0 divides by f64::EPSILON, as scikit-learn.
        let mut zero = Regression::new();
        zero.update(0.0, 1.0);
        assert_eq!(zero.mape().expect("data"), 1.0 / f64::EPSILON);
        assert_eq!(zero.mape().expect("data"), 4503599627370496.0);

        // A perfect model.
        let mut perfect = Regression::new();
        perfect.update_batch(&[1.0, -2.0, 3.5], &[1.0, -2.0, 3.5]).expect("same length");
        let q = perfect.evaluate().expect("data");
        assert_eq!((q.mae, q.rmse, q.mape), (0.0, 0.0, 0.0));

        // RMSE by hand: errors 3 and 4 → sqrt((9 + 16) / 2).
        let mut r = Regression::new();
        r.update(10.0, 7.0);
        r.update(-10.0, -6.0);
        assert_close(r.rmse().expect("data"), (12.5f64).sqrt(), "rmse");
        assert_close(r.mae().expect("data"), 3.5, "mae");
        assert_close(r.mape().expect("data"), (0.3 + 0.4) / 2.0, "mape");
    }

    #[test]
    fn regression_invalid_inputs_are_counted_and_skipped() {
        let mut reg = Regression::new();
        reg.update(1.0, 2.0);
        reg.update(f64::NAN, 2.0);
        reg.update(1.0, f64::INFINITY);
        reg.update(f64::NEG_INFINITY, 0.0);
        reg.update(1e200, -1e200); // squared error overflows
        let q = reg.evaluate().expect("data");
        assert_eq!((q.count, q.invalid), (1, 4));
        assert_eq!((q.mae, q.rmse, q.mape), (1.0, 1.0, 1.0));
        // Retracting an invalid pair decrements the invalid counter.
        reg.retract(f64::NAN, 0.0).expect("an invalid pair was added");
        assert_eq!(reg.invalid(), 3);
        // Only invalid data: no metrics.
        let mut bad = Regression::new();
        bad.update(f64::NAN, f64::NAN);
        assert!(matches!(bad.evaluate(), Err(Error::InsufficientData { statistic: "regression_quality", available: 0, required: 1 })));
        assert!(matches!(bad.mae(), Err(Error::InsufficientData { .. })));
        assert!(matches!(bad.update_batch(&[1.0], &[]), Err(Error::InvalidParameter { name: "y_pred", .. })));
        assert_eq!(bad.count() + bad.invalid(), 1);
        // Retracting what was never added fails and changes nothing.
        assert!(bad.retract(1.0, 2.0).is_err());
        bad.retract(f64::NAN, 1.0).expect("one invalid");
        assert!(bad.retract(f64::NAN, 1.0).is_err());
        assert!(Regression::new().retract_batch(&[1.0], &[1.0, 2.0]).is_err());
    }

    fn regression_data(n: usize) -> (Vec<f64>, Vec<f64>) {
        let mut rng = Rng(7);
        let y: Vec<f64> = (0..n).map(|_| (rng.below(20_000) as f64 - 10_000.0) / 97.0).collect();
        let yhat: Vec<f64> = y.iter().map(|&v| v + (rng.below(2_000) as f64 - 1_000.0) / 313.0).collect();
        (y, yhat)
    }

    #[track_caller]
    fn assert_regression_close(a: &RegressionQuality, b: &RegressionQuality, what: &str) {
        assert_eq!((a.count, a.invalid), (b.count, b.invalid), "{what}");
        assert_close(a.mae, b.mae, &format!("{what}: mae"));
        assert_close(a.rmse, b.rmse, &format!("{what}: rmse"));
        assert_close(a.mape, b.mape, &format!("{what}: mape"));
    }

    #[test]
    fn regression_merge_equals_build_of_concatenation() {
        let (mut y, yhat) = regression_data(1000);
        y[10] = f64::NAN;
        y[500] = 0.0;
        let mut whole = Regression::new();
        whole.update_batch(&y, &yhat).expect("same length");
        let expected_q = whole.evaluate().expect("data");
        assert_eq!(expected_q.invalid, 1);
        for cut in [0, 1, 333, 999, 1000] {
            let mut a = Regression::new();
            a.update_batch(&y[..cut], &yhat[..cut]).expect("same length");
            let mut b = Regression::new();
            b.update_batch(&y[cut..], &yhat[cut..]).expect("same length");
            let mut ab = a.clone();
            ab.merge(&b);
            assert_regression_close(&ab.evaluate().expect("data"), &expected_q, &format!("a+b cut {cut}"));
            b.merge(&a);
            assert_regression_close(&b.evaluate().expect("data"), &expected_q, &format!("b+a cut {cut}"));
        }
    }

    #[test]
    fn regression_retract_undoes_update() {
        let (y, yhat) = regression_data(2000);
        let mut reference = Regression::new();
        reference.update_batch(&y[1000..], &yhat[1000..]).expect("same length");
        let mut window = Regression::new();
        window.update_batch(&y, &yhat).expect("same length");
        window.update(f64::INFINITY, 1.0);
        window.retract(f64::INFINITY, 1.0).expect("was added");
        window.retract_batch(&y[..1000], &yhat[..1000]).expect("were added");
        assert_regression_close(&window.evaluate().expect("data"), &reference.evaluate().expect("data"), "retract first half");
        window.retract_batch(&y[1000..], &yhat[1000..]).expect("were added");
        assert_eq!(window.count(), 0);
        assert!(window.evaluate().is_err());
        // Exactly back to empty: a fresh update gives exact results.
        window.update(2.0, 1.0);
        assert_eq!(window.mae().expect("data"), 1.0);
    }

    #[test]
    fn regression_serde_round_trip() {
        let (y, yhat) = regression_data(50);
        let mut reg = Regression::new();
        reg.update_batch(&y, &yhat).expect("same length");
        reg.update(f64::NAN, 0.0);
        let json = serde_json::to_string(&reg).expect("serialize");
        let back: Regression = serde_json::from_str(&json).expect("deserialize");
        // serde_json (without its `float_roundtrip` feature) may move a
        // float by one ulp; other formats restore the state bit for bit.
        assert_regression_close(&back.evaluate().expect("q"), &reg.evaluate().expect("q"), "serde");
        assert!(reg.size_bytes() > 0);
        let mut v: Value = serde_json::from_str(&json).expect("json");
        v["abs_error_sum"]["sum"] = Value::Null;
        assert!(serde_json::from_value::<Regression>(v).is_err());
    }
}
