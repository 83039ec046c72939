//! Confidence-based performance estimation (CBPE): a binary classifier's
//! quality estimated from its scores alone, before any label arrives.
//!
//! CBPE, as NannyML defines it, reads a calibrated score as the probability
//! that the prediction's true class is 1. Over a window of predictions, the
//! expected confusion matrix is then
//!
//! ```text
//! TP = Σ p  over predictions of class 1      FP = Σ (1 − p) over predictions of class 1
//! FN = Σ p  over predictions of class 0      TN = Σ (1 − p) over predictions of class 0
//! ```
//!
//! and accuracy, precision, recall and F1 follow from it as from a realised
//! one. The estimated ROC AUC is the area under the expected ROC curve: the
//! predictions ranked by calibrated score, highest first, each adding `p` to
//! the true positives and `1 − p` to the false positives.
//!
//! * [`Isotonic`]: isotonic regression of labels on scores, as
//!   scikit-learn's `IsotonicRegression(out_of_bounds="clip")`.
//! * [`expected_calibration_error`]: NannyML's ECE over equal-count bins.
//! * [`Cbpe`]: fitted on the reference's (label, prediction, score) rows: it
//!   calibrates where the reference shows the scores are not calibrated, and
//!   gives the confidence band of an estimate from the spread of the
//!   realised metric over chunks of the reference (its sampling error).
//! * [`ExpectedQuality`]: the mergeable accumulator of one window (or pane).
//!
//! CBPE assumes that P(y | score) is the reference's. It tracks quality under
//! covariate shift (the inputs move, the relation between inputs and labels
//! does not) and cannot see concept drift (the relation changes, the scores
//! do not): that needs the labels.
//!
//! # Example
//!
//! ```
//! use driftwatch_detectors::cbpe::ExpectedQuality;
//!
//! let mut window = ExpectedQuality::new(10_000, 1_000).unwrap();
//! for (predicted, p) in [(1, 0.9), (1, 0.6), (0, 0.2), (0, 0.1)] {
//!     window.update(predicted, p).unwrap();
//! }
//! let q = window.estimate().unwrap();
//! // (0.9 + 0.6 + 0.8 + 0.9) / 4
//! assert!((q.accuracy - 0.8).abs() < 1e-12);
//! assert!(q.roc_auc.unwrap() > 0.8);
//! ```

use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::quality::{bin_of, BinaryClassification, CompensatedSum};

/// Half-width of the confidence band in sampling errors (NannyML's
/// `SAMPLING_ERROR_RANGE`).
pub const BAND_SAMPLING_ERRORS: f64 = 3.0;

/// Bins of the expected calibration error used to decide on calibration.
pub const CALIBRATION_BINS: usize = 10;

/// Folds of the calibration check.
pub const CALIBRATION_FOLDS: usize = 10;

/// Chunks drawn from the reference for the spread of each metric.
pub const BAND_CHUNKS: usize = 200;

/// A metric CBPE estimates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EstimatedMetric {
    /// (TP + TN) / n.
    Accuracy,
    /// TP / (TP + FP).
    Precision,
    /// TP / (TP + FN).
    Recall,
    /// 2 TP / (2 TP + FP + FN).
    F1,
    /// Area under the expected ROC curve.
    RocAuc,
}

impl EstimatedMetric {
    /// Every metric, in the order of [`Cbpe`]'s spreads.
    pub const ALL: [EstimatedMetric; 5] =
        [EstimatedMetric::Accuracy, EstimatedMetric::Precision, EstimatedMetric::Recall, EstimatedMetric::F1, EstimatedMetric::RocAuc];

    fn index(self) -> usize {
        self as usize
    }
}

// ---------------------------------------------------------------------------
// Isotonic regression
// ---------------------------------------------------------------------------

/// A non-decreasing, piecewise-linear map from scores to probabilities: the
/// isotonic regression of labels on scores, as scikit-learn 1.x fits it
/// (`IsotonicRegression(increasing=True, out_of_bounds="clip")`) and predicts
/// with it (linear interpolation between the fitted points, clipped to the
/// fitted range).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Isotonic {
    x: Vec<f64>,
    y: Vec<f64>,
}

impl Isotonic {
    /// Fits `y` (labels, or any targets) on `x` (scores) with unit weights.
    ///
    /// Equal `x` values (within `f64` resolution, 1e-15, as scikit-learn's
    /// `_make_unique`) are merged into one point with their mean target; the
    /// pool-adjacent-violators algorithm then fits the non-decreasing
    /// sequence, and points inside runs of equal fitted values are dropped
    /// (they do not change the interpolation).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] when the slices differ in length or hold a
    /// non-finite value; [`Error::InsufficientData`] when they are empty.
    pub fn fit(x: &[f64], y: &[f64]) -> Result<Self> {
        if x.len() != y.len() {
            return Err(Error::InvalidParameter { name: "y", reason: "x and y must have the same length" });
        }
        if x.iter().chain(y).any(|v| !v.is_finite()) {
            return Err(Error::InvalidParameter { name: "x", reason: "isotonic regression needs finite values" });
        }
        if x.is_empty() {
            return Err(Error::InsufficientData { statistic: "isotonic", available: 0, required: 1 });
        }
        let mut order: Vec<usize> = (0..x.len()).collect();
        // np.lexsort((y, X)): by x, then by y.
        order.sort_by(|&a, &b| x[a].total_cmp(&x[b]).then(y[a].total_cmp(&y[b])));
        // Unique x with mean y and weight (count).
        let mut ux: Vec<f64> = Vec::new();
        let mut uy: Vec<f64> = Vec::new();
        let mut uw: Vec<f64> = Vec::new();
        let (mut cx, mut sum, mut w) = (x[order[0]], 0.0, 0.0);
        for &i in &order {
            if x[i] - cx >= 1e-15 {
                ux.push(cx);
                uy.push(sum / w);
                uw.push(w);
                cx = x[i];
                sum = 0.0;
                w = 0.0;
            }
            sum += y[i];
            w += 1.0;
        }
        ux.push(cx);
        uy.push(sum / w);
        uw.push(w);
        let fitted = pool_adjacent_violators(&uy, &uw);
        // Keep the ends and every point where the fitted value changes on either side.
        let n = ux.len();
        let (mut kx, mut ky) = (Vec::new(), Vec::new());
        for i in 0..n {
            let keep = i == 0 || i + 1 == n || fitted[i] != fitted[i - 1] || fitted[i] != fitted[i + 1];
            if keep {
                kx.push(ux[i]);
                ky.push(fitted[i]);
            }
        }
        Ok(Isotonic { x: kx, y: ky })
    }

    /// The fitted value at `s`: clipped to the fitted range of scores, then
    /// interpolated linearly between the fitted points (`np.interp`). NaN
    /// stays NaN.
    pub fn predict(&self, s: f64) -> f64 {
        if s.is_nan() {
            return s;
        }
        let (Some(&first), Some(&last)) = (self.x.first(), self.x.last()) else { return f64::NAN };
        if s <= first {
            return self.y[0];
        }
        if s >= last {
            return self.y[self.y.len() - 1];
        }
        // The first point strictly above s; s lies in [x[i-1], x[i]).
        let i = self.x.partition_point(|&v| v <= s);
        let (x0, x1, y0, y1) = (self.x[i - 1], self.x[i], self.y[i - 1], self.y[i]);
        // np.interp's formula: slope times offset from the left point; its
        // rounding may step a few ulps past the right point, which it never
        // exceeds in exact arithmetic.
        let slope = (y1 - y0) / (x1 - x0);
        (slope * (s - x0) + y0).min(y1)
    }

    /// The fitted points `(score, probability)`.
    pub fn points(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.x.iter().copied().zip(self.y.iter().copied())
    }
}

/// Weighted pool-adjacent-violators: the non-decreasing sequence closest to
/// `y` in weighted least squares.
fn pool_adjacent_violators(y: &[f64], w: &[f64]) -> Vec<f64> {
    // Blocks as (weighted mean, weight, length).
    let mut blocks: Vec<(f64, f64, usize)> = Vec::with_capacity(y.len());
    for (&v, &wt) in y.iter().zip(w) {
        let mut block = (v, wt, 1usize);
        while let Some(&(m, bw, len)) = blocks.last() {
            if m <= block.0 {
                break;
            }
            blocks.pop();
            let total = bw + block.1;
            block = ((m * bw + block.0 * block.1) / total, total, len + block.2);
        }
        blocks.push(block);
    }
    let mut out = Vec::with_capacity(y.len());
    for (m, _, len) in blocks {
        out.extend(std::iter::repeat_n(m, len));
    }
    out
}

// ---------------------------------------------------------------------------
// Calibration check
// ---------------------------------------------------------------------------

/// Index ranges of the equal-count bins of a sorted vector of `n` values, as
/// NannyML's `_get_bin_index_edges`: width `n / bins` (fewer bins when
/// `n <= 2 bins`), the last bin taking the remainder.
///
/// # Errors
///
/// [`Error::InsufficientData`] when fewer than 2 bins of 2 values fit.
pub fn bin_index_edges(n: usize, bins: usize) -> Result<Vec<(usize, usize)>> {
    let mut bins = bins.max(1);
    if n <= 2 * bins {
        bins = n / 2;
        if bins < 2 {
            return Err(Error::InsufficientData { statistic: "expected_calibration_error", available: n as u64, required: 5 });
        }
    }
    let width = n / bins;
    let mut edges: Vec<usize> = (0..=n).step_by(width).collect();
    if let Some(last) = edges.last_mut() {
        *last = n;
    }
    Ok(edges.windows(2).map(|e| (e[0], e[1])).collect())
}

/// Expected calibration error of `probabilities` for binary `labels`, as
/// NannyML computes it: the values sorted by probability and cut into the
/// bins of [`bin_index_edges`]; the sum over bins of the bin's share times
/// |mean probability − mean label|.
///
/// # Errors
///
/// [`Error::InvalidParameter`] on different lengths or a NaN probability;
/// [`Error::InsufficientData`] as [`bin_index_edges`].
pub fn expected_calibration_error(labels: &[u8], probabilities: &[f64], bins: usize) -> Result<f64> {
    if labels.len() != probabilities.len() {
        return Err(Error::InvalidParameter { name: "probabilities", reason: "labels and probabilities must have the same length" });
    }
    if probabilities.iter().any(|p| p.is_nan()) {
        return Err(Error::InvalidParameter { name: "probabilities", reason: "probabilities must not be NaN" });
    }
    let edges = bin_index_edges(probabilities.len(), bins)?;
    let mut order: Vec<usize> = (0..probabilities.len()).collect();
    order.sort_by(|&a, &b| probabilities[a].total_cmp(&probabilities[b]));
    let n = probabilities.len() as f64;
    let mut ece = 0.0;
    for (lo, hi) in edges {
        let len = (hi - lo) as f64;
        let (mut p, mut y) = (0.0, 0.0);
        for &i in &order[lo..hi] {
            p += probabilities[i];
            y += f64::from(labels[i]);
        }
        ece += len / n * (p / len - y / len).abs();
    }
    Ok(ece)
}

/// Whether isotonic calibration brings `scores` closer to `labels`, as
/// NannyML decides it: never for a single class or an almost perfect ranking
/// (ROC AUC above 0.999); otherwise isotonic regression is fitted on 9 of 10
/// folds and applied to the tenth, for each fold, and calibration is needed
/// when the expected calibration error of the held-out scores is larger
/// before calibration than after.
///
/// NannyML draws its folds with a seeded stratified shuffle; here fold `k`
/// holds the rows whose index is `k` modulo 10, so the decision depends on
/// the rows alone.
///
/// # Errors
///
/// As [`Isotonic::fit`] and [`expected_calibration_error`] (too few rows).
pub fn needs_calibration(labels: &[u8], scores: &[f64]) -> Result<bool> {
    let positives = labels.iter().filter(|&&l| l == 1).count();
    if positives == 0 || positives == labels.len() {
        return Ok(false);
    }
    if crate::quality::roc_auc(labels, scores)? > 0.999 {
        return Ok(false);
    }
    let mut held_labels = Vec::with_capacity(labels.len());
    let mut before = Vec::with_capacity(labels.len());
    let mut after = Vec::with_capacity(labels.len());
    for k in 0..CALIBRATION_FOLDS {
        let (mut tx, mut ty) = (Vec::new(), Vec::new());
        for (i, (&l, &s)) in labels.iter().zip(scores).enumerate() {
            if i % CALIBRATION_FOLDS != k {
                tx.push(s);
                ty.push(f64::from(l));
            }
        }
        if tx.is_empty() {
            continue;
        }
        let iso = Isotonic::fit(&tx, &ty)?;
        for (i, (&l, &s)) in labels.iter().zip(scores).enumerate() {
            if i % CALIBRATION_FOLDS == k {
                held_labels.push(l);
                before.push(s);
                after.push(iso.predict(s));
            }
        }
    }
    let ece_before = expected_calibration_error(&held_labels, &before, CALIBRATION_BINS)?;
    let ece_after = expected_calibration_error(&held_labels, &after, CALIBRATION_BINS)?;
    Ok(ece_before > ece_after)
}

// ---------------------------------------------------------------------------
// The fitted estimator
// ---------------------------------------------------------------------------

/// CBPE fitted on a reference: the calibration, and the spread of each
/// metric over chunks of the reference that gives an estimate's band.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cbpe {
    /// `None`: the reference's scores are calibrated and used as they are.
    calibrator: Option<Isotonic>,
    /// Reference rows it was fitted on.
    rows: usize,
    /// Rows per reference chunk.
    chunk: usize,
    /// Chunks the spreads come from.
    chunks: usize,
    /// Standard deviation of each realised metric over the chunks, in
    /// [`EstimatedMetric::ALL`] order; `None` where fewer than 2 chunks
    /// define it (ROC AUC of chunks with one class).
    spread: [Option<f64>; 5],
}

impl Cbpe {
    /// Fits CBPE on the reference's rows: `labels` and `predictions` 0 or 1,
    /// `scores` in `[0, 1]`.
    ///
    /// The band's spreads come from [`BAND_CHUNKS`] chunks of `chunk` rows
    /// drawn from the reference with replacement (a bootstrap with a fixed
    /// seed, so a fit is the same on every run): the standard deviation of
    /// each realised metric over them is its sampling error at `chunk` rows.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] on different lengths, a class other than 0
    /// or 1, a score outside `[0, 1]`, or `chunk` 0;
    /// [`Error::InsufficientData`] with fewer than 20 rows.
    pub fn fit(labels: &[u8], predictions: &[u8], scores: &[f64], chunk: usize) -> Result<Self> {
        if labels.len() != predictions.len() || labels.len() != scores.len() {
            return Err(Error::InvalidParameter { name: "scores", reason: "labels, predictions and scores must have the same length" });
        }
        if labels.iter().chain(predictions).any(|&c| c > 1) {
            return Err(Error::InvalidParameter { name: "labels", reason: "classes must be 0 or 1" });
        }
        if scores.iter().any(|s| !(0.0..=1.0).contains(s)) {
            return Err(Error::InvalidParameter { name: "scores", reason: "scores must be probabilities in [0, 1]" });
        }
        if chunk == 0 {
            return Err(Error::InvalidParameter { name: "chunk", reason: "chunks must hold at least one row" });
        }
        if labels.len() < 20 {
            return Err(Error::InsufficientData { statistic: "cbpe", available: labels.len() as u64, required: 20 });
        }
        let calibrator = if needs_calibration(labels, scores)? {
            let y: Vec<f64> = labels.iter().map(|&l| f64::from(l)).collect();
            Some(Isotonic::fit(scores, &y)?)
        } else {
            None
        };
        let chunks = BAND_CHUNKS;
        let mut values: [Vec<f64>; 5] = Default::default();
        // ChaCha8 is value-stable across rand_chacha releases, so the band is too.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x6362_7065);
        let (mut l, mut p, mut s) = (Vec::with_capacity(chunk), Vec::with_capacity(chunk), Vec::with_capacity(chunk));
        for _ in 0..chunks {
            l.clear();
            p.clear();
            s.clear();
            for _ in 0..chunk {
                let i = rng.gen_range(0..labels.len());
                l.push(labels[i]);
                p.push(predictions[i]);
                s.push(scores[i]);
            }
            let mut acc = BinaryClassification::new(chunk, crate::quality::DEFAULT_AUC_BINS)?;
            acc.update_batch(&l, &p, &s)?;
            let q = acc.evaluate()?;
            let row = [Some(q.accuracy), Some(q.precision), Some(q.recall), Some(q.f1), q.roc_auc];
            for (v, x) in values.iter_mut().zip(row) {
                v.extend(x);
            }
        }
        let spread = values.map(|v| {
            (v.len() >= 2).then(|| {
                let mean = v.iter().sum::<f64>() / v.len() as f64;
                (v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / v.len() as f64).sqrt()
            })
        });
        Ok(Cbpe { calibrator, rows: labels.len(), chunk, chunks, spread })
    }

    /// Whether the scores are calibrated (isotonic regression) before use.
    pub fn calibrates(&self) -> bool {
        self.calibrator.is_some()
    }

    /// Reference rows it was fitted on.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Rows per reference chunk, and the number of chunks.
    pub fn chunks(&self) -> (usize, usize) {
        (self.chunk, self.chunks)
    }

    /// The calibrated probability of class 1 for a score (in `[0, 1]` for
    /// a score in `[0, 1]`: interpolation's rounding is clamped away).
    pub fn calibrate(&self, score: f64) -> f64 {
        match &self.calibrator {
            Some(iso) => iso.predict(score).clamp(0.0, 1.0),
            None => score,
        }
    }

    /// The spread of `metric` over the reference's chunks.
    pub fn spread(&self, metric: EstimatedMetric) -> Option<f64> {
        self.spread[metric.index()]
    }

    /// The confidence band of an estimate `value` of `metric` over `n`
    /// predictions: `value ± 3 σ √(chunk / n)`, clipped to `[0, 1]`, where σ
    /// is the metric's spread over reference chunks of `chunk` rows (its
    /// sampling error, scaled to `n` rows). `None` without a spread or with
    /// `n` 0.
    pub fn band(&self, metric: EstimatedMetric, value: f64, n: u64) -> Option<(f64, f64)> {
        let sigma = self.spread(metric)?;
        if n == 0 || !value.is_finite() {
            return None;
        }
        let half = BAND_SAMPLING_ERRORS * sigma * (self.chunk as f64 / n as f64).sqrt();
        Some(((value - half).max(0.0), (value + half).min(1.0)))
    }
}

// ---------------------------------------------------------------------------
// The accumulator
// ---------------------------------------------------------------------------

/// Estimated quality of a window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EstimatedQuality {
    /// Predictions estimated over.
    pub count: u64,
    /// (TP + TN) / n.
    pub accuracy: f64,
    /// TP / (TP + FP); 0 without predictions of class 1.
    pub precision: f64,
    /// TP / (TP + FN); 0 when no positive is expected.
    pub recall: f64,
    /// 2 TP / (2 TP + FP + FN); 0 when that denominator is 0.
    pub f1: f64,
    /// Area under the expected ROC curve; `None` when every probability is
    /// 0 or every one is 1 (one expected class).
    pub roc_auc: Option<f64>,
    /// Whether `roc_auc` used every probability (not the fallback bins).
    pub roc_auc_exact: bool,
}

impl EstimatedQuality {
    /// The value of `metric`.
    pub fn get(&self, metric: EstimatedMetric) -> Option<f64> {
        match metric {
            EstimatedMetric::Accuracy => Some(self.accuracy),
            EstimatedMetric::Precision => Some(self.precision),
            EstimatedMetric::Recall => Some(self.recall),
            EstimatedMetric::F1 => Some(self.f1),
            EstimatedMetric::RocAuc => self.roc_auc,
        }
    }
}

/// The calibrated probabilities behind the expected ROC curve: exact while
/// small, per-bin counts and sums past capacity.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ProbabilityStore {
    Exact(Vec<f64>),
    /// Count and sum of the probabilities in each equal-width bin over `[0, 1]`.
    Binned {
        counts: Vec<u64>,
        sums: Vec<f64>,
    },
}

/// Mergeable accumulator of a window's expected confusion matrix and
/// expected ROC curve, from (predicted class, calibrated probability) pairs.
///
/// Probabilities are held exactly up to `capacity`, then folded into `bins`
/// equal-width bins (the ROC AUC treats the probabilities of one bin as one
/// step of the curve); the confusion sums are always exact.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExpectedQuality {
    capacity: usize,
    bins: usize,
    /// Predictions of class 0 and class 1.
    count: [u64; 2],
    /// Sum of the probabilities of predictions of class 0 and class 1.
    positives: [CompensatedSum; 2],
    store: ProbabilityStore,
}

impl ExpectedQuality {
    /// An empty accumulator.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] when `bins` is 0 or above
    /// [`MAX_AUC_BINS`](crate::quality::MAX_AUC_BINS).
    pub fn new(capacity: usize, bins: usize) -> Result<Self> {
        if bins == 0 || bins > crate::quality::MAX_AUC_BINS {
            return Err(Error::InvalidParameter { name: "bins", reason: "bins must be between 1 and MAX_AUC_BINS" });
        }
        Ok(ExpectedQuality {
            capacity,
            bins,
            count: [0; 2],
            positives: [CompensatedSum::default(); 2],
            store: ProbabilityStore::Exact(Vec::new()),
        })
    }

    /// Predictions added.
    pub fn count(&self) -> u64 {
        self.count[0] + self.count[1]
    }

    /// Adds a prediction of class `predicted` (0 or 1) whose calibrated
    /// probability of class 1 is `p`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] when `predicted` is not 0 or 1 or `p` is
    /// not in `[0, 1]`; the accumulator is then unchanged.
    pub fn update(&mut self, predicted: u8, p: f64) -> Result<()> {
        if predicted > 1 {
            return Err(Error::InvalidParameter { name: "predicted", reason: "classes must be 0 or 1" });
        }
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::InvalidParameter { name: "p", reason: "probabilities must be in [0, 1]" });
        }
        let c = usize::from(predicted);
        self.count[c] += 1;
        self.positives[c].add(p);
        match &mut self.store {
            ProbabilityStore::Exact(v) if v.len() < self.capacity => v.push(p),
            ProbabilityStore::Exact(_) => {
                self.fold();
                self.add_binned(p);
            }
            ProbabilityStore::Binned { .. } => self.add_binned(p),
        }
        Ok(())
    }

    fn add_binned(&mut self, p: f64) {
        if let ProbabilityStore::Binned { counts, sums } = &mut self.store {
            let b = bin_of(p, self.bins);
            counts[b] += 1;
            sums[b] += p;
        }
    }

    /// Turns the exact store into bins.
    fn fold(&mut self) {
        if let ProbabilityStore::Exact(v) = &self.store {
            let (mut counts, mut sums) = (vec![0u64; self.bins], vec![0.0; self.bins]);
            for &p in v {
                let b = bin_of(p, self.bins);
                counts[b] += 1;
                sums[b] += p;
            }
            self.store = ProbabilityStore::Binned { counts, sums };
        }
    }

    /// Adds another accumulator's predictions.
    ///
    /// # Errors
    ///
    /// [`Error::Incompatible`] when the capacities or bins differ.
    pub fn merge(&mut self, other: &Self) -> Result<()> {
        if self.capacity != other.capacity || self.bins != other.bins {
            return Err(Error::Incompatible { reason: "expected-quality accumulators with different capacity or bins" });
        }
        for c in 0..2 {
            self.count[c] += other.count[c];
            self.positives[c].merge(&other.positives[c]);
        }
        match (&mut self.store, &other.store) {
            (ProbabilityStore::Exact(a), ProbabilityStore::Exact(b)) if a.len() + b.len() <= self.capacity => a.extend_from_slice(b),
            (_, ProbabilityStore::Exact(b)) => {
                self.fold();
                for &p in b {
                    self.add_binned(p);
                }
            }
            (_, ProbabilityStore::Binned { counts: oc, sums: os }) => {
                self.fold();
                if let ProbabilityStore::Binned { counts, sums } = &mut self.store {
                    for (c, o) in counts.iter_mut().zip(oc) {
                        *c += o;
                    }
                    for (s, o) in sums.iter_mut().zip(os) {
                        *s += o;
                    }
                }
            }
        }
        Ok(())
    }

    /// Heap bytes held.
    pub fn size_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + match &self.store {
                ProbabilityStore::Exact(v) => v.capacity() * 8,
                ProbabilityStore::Binned { counts, sums } => counts.capacity() * 8 + sums.capacity() * 8,
            }
    }

    /// The estimated metrics.
    ///
    /// # Errors
    ///
    /// [`Error::InsufficientData`] without predictions.
    pub fn estimate(&self) -> Result<EstimatedQuality> {
        let n = self.count();
        if n == 0 {
            return Err(Error::InsufficientData { statistic: "cbpe", available: 0, required: 1 });
        }
        let tp = self.positives[1].value();
        let fp = self.count[1] as f64 - tp;
        let fn_ = self.positives[0].value();
        let tn = self.count[0] as f64 - fn_;
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        let (roc_auc, roc_auc_exact) = match &self.store {
            ProbabilityStore::Exact(v) => {
                let mut sorted = v.clone();
                sorted.sort_unstable_by(|a, b| b.total_cmp(a));
                (expected_auc(sorted.iter().map(|&p| (p, 1.0 - p))), true)
            }
            ProbabilityStore::Binned { counts, sums } => {
                (expected_auc(counts.iter().zip(sums).rev().filter(|(&c, _)| c > 0).map(|(&c, &s)| (s, c as f64 - s))), false)
            }
        };
        Ok(EstimatedQuality {
            count: n,
            accuracy: (tp + tn) / n as f64,
            precision: ratio(tp, tp + fp),
            recall: ratio(tp, tp + fn_),
            f1: ratio(tp, tp + 0.5 * (fp + fn_)),
            roc_auc,
            roc_auc_exact,
        })
    }
}

/// Trapezoidal area under the curve through the origin and the cumulative
/// (true, false) positive steps, normalised by the totals; `None` when a
/// total is 0.
fn expected_auc(steps: impl Iterator<Item = (f64, f64)>) -> Option<f64> {
    let (mut tp, mut fp, mut twice_area) = (0.0f64, 0.0f64, 0.0f64);
    for (dt, df) in steps {
        twice_area += df * (2.0 * tp + dt);
        tp += dt;
        fp += df;
    }
    (tp > 0.0 && fp > 0.0).then(|| twice_area / (2.0 * tp * fp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pava_pools_violators() {
        let fitted = pool_adjacent_violators(&[1.0, 3.0, 2.0, 4.0, 0.0], &[1.0; 5]);
        assert_eq!(fitted, vec![1.0, 2.25, 2.25, 2.25, 2.25]);
        let weighted = pool_adjacent_violators(&[2.0, 1.0], &[3.0, 1.0]);
        assert_eq!(weighted, vec![1.75, 1.75]);
    }

    #[test]
    fn interpolation_never_passes_the_next_point() {
        // np.interp's formula gives 1.0000000000000002 one step below x1 here.
        let iso = Isotonic { x: vec![0.07, 0.998], y: vec![0.0005, 1.0] };
        let s = f64::from_bits(0.998f64.to_bits() - 1);
        assert!((1.0 - 0.0005) / (0.998 - 0.07) * (s - 0.07) + 0.0005 > 1.0, "the case still overshoots unclamped");
        assert_eq!(iso.predict(s), 1.0);
    }

    #[test]
    fn isotonic_interpolates_and_clips() {
        let iso = Isotonic::fit(&[0.0, 0.5, 1.0], &[0.0, 1.0, 1.0]).unwrap();
        assert_eq!(iso.predict(-1.0), 0.0);
        assert_eq!(iso.predict(0.25), 0.5);
        assert_eq!(iso.predict(2.0), 1.0);
        assert!(iso.predict(f64::NAN).is_nan());
        assert!(Isotonic::fit(&[], &[]).is_err());
        assert!(Isotonic::fit(&[f64::NAN], &[1.0]).is_err());
    }

    #[test]
    fn bin_edges_follow_nannyml() {
        assert_eq!(bin_index_edges(20, 4).unwrap(), vec![(0, 5), (5, 10), (10, 15), (15, 20)]);
        // 25 values in "10" bins: width 2, twelve bins, the last one of 3.
        let e = bin_index_edges(25, 10).unwrap();
        assert_eq!(e.len(), 12);
        assert_eq!(e.last(), Some(&(22, 25)));
        assert_eq!(bin_index_edges(12, 10).unwrap().len(), 6);
        assert!(bin_index_edges(3, 10).is_err());
    }

    #[test]
    fn expected_auc_of_certain_scores_is_realised_auc() {
        // Probabilities 0 and 1 are certain classes: the expected curve is the realised one.
        let mut q = ExpectedQuality::new(100, 10).unwrap();
        for (c, p) in [(1, 1.0), (1, 1.0), (0, 0.0), (0, 0.0), (1, 0.0)] {
            q.update(c, p).unwrap();
        }
        let e = q.estimate().unwrap();
        assert_eq!(e.roc_auc, Some(1.0));
        assert_eq!(e.accuracy, 0.8);
        assert_eq!(e.precision, 2.0 / 3.0);
        assert_eq!(e.recall, 1.0);
        let mut one = ExpectedQuality::new(100, 10).unwrap();
        one.update(1, 1.0).unwrap();
        assert_eq!(one.estimate().unwrap().roc_auc, None);
        assert!(ExpectedQuality::new(10, 10).unwrap().estimate().is_err());
        assert!(one.update(2, 0.5).is_err());
        assert!(one.update(1, 1.5).is_err());
        assert_eq!(one.count(), 1);
    }

    #[test]
    fn merge_and_bins_agree_with_one_accumulator() {
        let mut rnd = crate::testing::xorshift(5);
        let pairs: Vec<(u8, f64)> = (0..5000)
            .map(|_| {
                let p = (rnd() % 1_000_001) as f64 / 1e6;
                (u8::from(p >= 0.5), p)
            })
            .collect();
        let mut whole = ExpectedQuality::new(10_000, 1000).unwrap();
        let (mut a, mut b) = (ExpectedQuality::new(10_000, 1000).unwrap(), ExpectedQuality::new(10_000, 1000).unwrap());
        let mut small = ExpectedQuality::new(100, 1000).unwrap();
        for (i, &(c, p)) in pairs.iter().enumerate() {
            whole.update(c, p).unwrap();
            small.update(c, p).unwrap();
            if i % 3 == 0 {
                a.update(c, p).unwrap()
            } else {
                b.update(c, p).unwrap()
            }
        }
        a.merge(&b).unwrap();
        let (w, m, s) = (whole.estimate().unwrap(), a.estimate().unwrap(), small.estimate().unwrap());
        assert!((w.accuracy - m.accuracy).abs() < 1e-12 && (w.f1 - m.f1).abs() < 1e-12);
        assert!((w.roc_auc.unwrap() - m.roc_auc.unwrap()).abs() < 1e-12);
        assert!(w.roc_auc_exact && !s.roc_auc_exact);
        assert_eq!(w.accuracy, s.accuracy);
        // 1000 bins: the binned area is within 1e-4 of the exact one.
        assert!((w.roc_auc.unwrap() - s.roc_auc.unwrap()).abs() < 1e-4);
        assert!(a.merge(&ExpectedQuality::new(1, 1000).unwrap()).is_err());
    }

    #[test]
    fn calibrated_scores_need_no_calibration_and_miscalibrated_ones_do() {
        let mut rnd = crate::testing::xorshift(11);
        let mut uniform = move || (rnd() >> 11) as f64 / (1u64 << 53) as f64;
        let n = 5000;
        let scores: Vec<f64> = (0..n).map(|_| uniform()).collect();
        let labels: Vec<u8> = scores.iter().map(|&s| u8::from(uniform() < s)).collect();
        assert!(!needs_calibration(&labels, &scores).unwrap());
        // Over-confident: the label's probability is only half-way from 0.5 to the score.
        let skewed: Vec<u8> = scores.iter().map(|&s| u8::from(uniform() < 0.25 + s / 2.0)).collect();
        assert!(needs_calibration(&skewed, &scores).unwrap());
        assert!(!needs_calibration(&vec![1; n], &scores).unwrap());
        let fit = Cbpe::fit(&skewed, &scores.iter().map(|&s| u8::from(s >= 0.5)).collect::<Vec<_>>(), &scores, 500).unwrap();
        assert!(fit.calibrates());
        assert_eq!(fit.chunks(), (500, BAND_CHUNKS));
        // The accuracy of 500 rows: a binomial share, sampling error √(a (1 − a) / 500).
        let a: f64 = 0.75 * 0.75 + 0.25 * 0.25;
        let se = (a * (1.0 - a) / 500.0).sqrt();
        assert!((fit.spread(EstimatedMetric::Accuracy).unwrap() / se - 1.0).abs() < 0.15, "{fit:?}");
        assert!((fit.calibrate(0.9) - 0.7).abs() < 0.05);
        let (lo, hi) = fit.band(EstimatedMetric::Accuracy, 0.6, 500).unwrap();
        assert!(lo < 0.6 && hi > 0.6 && (hi - 0.6 - (0.6 - lo)).abs() < 1e-12);
        assert!(fit.band(EstimatedMetric::Accuracy, 0.6, 0).is_none());
        let perfect = Cbpe::fit(&skewed, &skewed, &scores, 100).unwrap();
        assert_eq!(perfect.spread(EstimatedMetric::Accuracy), Some(0.0));
        assert!(Cbpe::fit(&skewed[..10], &skewed[..10], &scores[..10], 5).is_err());
    }
}
