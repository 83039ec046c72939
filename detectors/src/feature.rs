//! One numeric feature's reference and window sketches, and every drift
//! statistic between them.
//!
//! A [`NumericWindow`] holds the sketches a window needs: a histogram over the
//! reference's edges (PSI, Jensen–Shannon, Hellinger), raw values up to a
//! capacity (exact KS and Wasserstein), a bounded [`LogSketch`] (KS with a
//! stated bound once the window outgrows the exact store) and [`Moments`].
//! All of them merge, so shards and panes combine into one window.

use serde::{Deserialize, Serialize};

use crate::binning::BinEdges;
use crate::error::{Error, Result};
use crate::ks::{KsMethod, KsResult};
use crate::sketch::{ExactSample, FixedHistogram, LogSketch, Moments, Sketch, SketchKs};

/// Shape of a numeric feature's sketches.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumericSketchConfig {
    /// Quantile bins for PSI / JS / Hellinger.
    pub bins: usize,
    /// Raw values kept for exact KS and Wasserstein (0 disables the exact store).
    pub exact_capacity: usize,
    /// Relative accuracy of the bounded sketch.
    pub relative_accuracy: f64,
    /// Bucket bound per sign of the bounded sketch.
    pub max_buckets: usize,
    /// Whether to keep the bounded sketch (KS beyond the exact store).
    pub quantile_sketch: bool,
}

impl NumericSketchConfig {
    /// The most bytes a [`NumericWindow`] of this shape can hold once it has
    /// seen `values` finite values (`u64::MAX`: any number): every store
    /// full, and each growable vector at twice what it holds (a `Vec` grows
    /// to at most double its length, from whatever capacity it had).
    pub fn max_window_bytes(&self, values: u64) -> usize {
        let grown = |n: usize| n.max(4).saturating_mul(16);
        let held = usize::try_from(values).unwrap_or(usize::MAX);
        // Counts per bin plus the outer two, and the bins' edges.
        let histogram = std::mem::size_of::<FixedHistogram>() + (2 * self.bins + 3) * 8;
        let exact = match self.exact_capacity.min(held) {
            0 => 0,
            n => grown(n),
        };
        // A store spans its keys contiguously: two values can use all of
        // its buckets, whatever the number held.
        let sketch = if self.quantile_sketch { 2 * grown(self.max_buckets) } else { 0 };
        std::mem::size_of::<NumericWindow>() + histogram + exact + sketch
    }
}

impl Default for NumericSketchConfig {
    fn default() -> Self {
        Self {
            bins: 10,
            exact_capacity: 10_000,
            relative_accuracy: LogSketch::DEFAULT_RELATIVE_ACCURACY,
            max_buckets: LogSketch::DEFAULT_MAX_BUCKETS,
            quantile_sketch: true,
        }
    }
}

/// A numeric feature's sketches over one window (or shard, or pane).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumericWindow {
    /// Counts over the reference's edges.
    pub histogram: FixedHistogram,
    /// Raw values up to the exact capacity.
    pub exact: ExactSample,
    /// Bounded quantile sketch, when configured.
    pub sketch: Option<LogSketch>,
    /// Count, data quality, mean and variance.
    pub moments: Moments,
}

impl NumericWindow {
    /// Empty sketches over `edges`.
    pub fn new(edges: BinEdges, config: &NumericSketchConfig) -> Result<Self> {
        Ok(Self {
            histogram: FixedHistogram::new(edges),
            exact: ExactSample::new(config.exact_capacity),
            sketch: if config.quantile_sketch { Some(LogSketch::new(config.relative_accuracy, config.max_buckets)?) } else { None },
            moments: Moments::new(),
        })
    }

    /// Adds one value; `None` is a missing value. Hot path.
    #[inline]
    pub fn update(&mut self, value: Option<f64>) {
        match value {
            None => self.moments.update_missing(),
            Some(x) => {
                self.moments.update(x);
                if x.is_finite() {
                    self.histogram.update(x);
                    self.exact.update(x);
                    if let Some(s) = &mut self.sketch {
                        s.update(x);
                    }
                }
            }
        }
    }

    /// Adds a run of values, as [`NumericWindow::update`] on each in turn
    /// does (moments equal up to rounding): finite values are gathered in
    /// blocks, then each sketch takes a whole block in its own loop, and the
    /// moments take it in one step ([`Moments::update_finite`]). Hot path.
    pub fn update_all(&mut self, values: &[Option<f64>]) {
        self.update_all_with(values, |&v| v);
    }

    /// [`NumericWindow::update_all`] for a column of numbers in which NaN
    /// marks a missing value (half the bytes of `Option<f64>`: the form a
    /// column of finite numbers with gaps, such as decoded JSON numbers,
    /// takes). Hot path.
    pub fn update_all_nan_missing(&mut self, values: &[f64]) {
        self.update_all_with(values, |&x| (!x.is_nan()).then_some(x));
    }

    #[inline]
    fn update_all_with<T>(&mut self, values: &[T], value: impl Fn(&T) -> Option<f64>) {
        const BLOCK: usize = 256;
        let mut block = [0.0f64; BLOCK];
        for chunk in values.chunks(BLOCK) {
            let mut n = 0;
            for v in chunk {
                match value(v) {
                    Some(x) if x.is_finite() => {
                        block[n] = x;
                        n += 1;
                    }
                    // NaN and ±∞ are counted by the moments alone.
                    Some(x) => self.moments.update(x),
                    None => self.moments.update_missing(),
                }
            }
            let xs = &block[..n];
            self.moments.update_finite(xs);
            for &x in xs {
                self.histogram.update(x);
            }
            for &x in xs {
                self.exact.update(x);
            }
            if let Some(s) = &mut self.sketch {
                s.update_finite(xs);
            }
        }
    }

    /// Removes a value added before.
    pub fn retract(&mut self, value: Option<f64>) -> Result<()> {
        match value {
            None => self.moments.retract_missing(),
            Some(x) => {
                self.moments.retract(x)?;
                if x.is_finite() {
                    self.histogram.retract(x)?;
                    self.exact.retract(x)?;
                    if let Some(s) = &mut self.sketch {
                        s.retract(x)?;
                    }
                }
                Ok(())
            }
        }
    }

    /// Adds another window's sketches (a shard's or a pane's).
    pub fn merge(&mut self, other: &Self) -> Result<()> {
        self.histogram.merge(&other.histogram)?;
        self.exact.merge(&other.exact)?;
        match (&mut self.sketch, &other.sketch) {
            (Some(a), Some(b)) => a.merge(b)?,
            (None, None) => {}
            _ => return Err(Error::Incompatible { reason: "one window keeps a quantile sketch, the other does not" }),
        }
        self.moments.merge(&other.moments)
    }

    /// Removes another window's sketches merged in before (a pane leaving a
    /// sliding window).
    pub fn unmerge(&mut self, other: &Self) -> Result<()> {
        self.histogram.unmerge(&other.histogram)?;
        self.exact.unmerge(&other.exact)?;
        match (&mut self.sketch, &other.sketch) {
            (Some(a), Some(b)) => a.unmerge(b)?,
            (None, None) => {}
            _ => return Err(Error::Incompatible { reason: "one window keeps a quantile sketch, the other does not" }),
        }
        self.moments.unmerge(&other.moments)
    }

    /// Forgets all values.
    pub fn clear(&mut self) {
        self.histogram.clear();
        self.exact.clear();
        if let Some(s) = &mut self.sketch {
            s.clear();
        }
        self.moments.clear();
    }

    /// Finite values held.
    pub fn count(&self) -> u64 {
        self.moments.count()
    }

    /// Bytes held by all sketches.
    pub fn size_bytes(&self) -> usize {
        self.histogram.size_bytes()
            + self.exact.size_bytes()
            + self.sketch.as_ref().map_or(0, Sketch::size_bytes)
            + self.moments.size_bytes()
    }
}

/// A numeric feature's reference profile: edges, histogram, sorted sample
/// (exact KS), bounded sketch and moments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumericReference {
    /// Sketches of the reference data.
    pub window: NumericWindow,
}

impl NumericReference {
    /// Builds a reference from raw values: edges at the quantiles, and every
    /// sketch filled. The exact store keeps up to `config.exact_capacity`
    /// reference values (all of them when it is at least their number).
    pub fn from_values(values: &[f64], config: &NumericSketchConfig) -> Result<Self> {
        let edges = BinEdges::from_reference(values, config.bins)?;
        let mut window = NumericWindow::new(edges, config)?;
        for &x in values {
            window.update(Some(x));
        }
        window.exact.sort();
        Ok(Self { window })
    }

    /// The bin edges windows must use.
    pub fn edges(&self) -> &BinEdges {
        self.window.histogram.edges()
    }

    /// Empty window sketches that fit this reference.
    pub fn new_window(&self, config: &NumericSketchConfig) -> Result<NumericWindow> {
        NumericWindow::new(self.edges().clone(), config)
    }
}

/// KS as computed: exact on raw values, or from the bounded sketches.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum KsOutcome {
    /// Exact statistic on raw values (SciPy's `ks_2samp`).
    Exact(KsResult),
    /// From the bounded sketches, with its error bound.
    Sketch(SketchKs),
}

impl KsOutcome {
    /// The statistic D (a lower bound of the exact D for a sketch).
    pub fn statistic(&self) -> f64 {
        match self {
            Self::Exact(r) => r.statistic,
            Self::Sketch(s) => s.statistic,
        }
    }
    /// The two-sided p-value.
    pub fn p_value(&self) -> f64 {
        match self {
            Self::Exact(r) => r.p_value,
            Self::Sketch(s) => s.p_value,
        }
    }
}

/// Every drift statistic of one numeric window against its reference.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NumericDrift {
    /// Finite values in the window.
    pub count: u64,
    /// Population stability index.
    pub psi: f64,
    /// Jensen–Shannon distance, base 2.
    pub jensen_shannon: f64,
    /// Hellinger distance.
    pub hellinger: f64,
    /// Kolmogorov–Smirnov, when asked for.
    pub ks: Option<KsOutcome>,
    /// Wasserstein-1 on raw values, when asked for and both raw samples are complete.
    pub wasserstein: Option<f64>,
}

/// Which numeric statistics to compute (the rest are skipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NumericStatistics {
    /// Whether to compute KS (exact on raw values, or from the sketches).
    pub ks: bool,
    /// KS p-value method for the exact path.
    pub ks_method: KsMethod,
    /// Whether to compute Wasserstein (needs raw values of both sides).
    pub wasserstein: bool,
    /// Whether the exact KS path may be used (else always the sketch).
    pub exact_ks: bool,
}

impl Default for NumericStatistics {
    fn default() -> Self {
        Self { ks: true, ks_method: KsMethod::Auto, wasserstein: true, exact_ks: true }
    }
}

/// The statistics `which` asks for of `window` against `reference`; the
/// histogram distances (PSI, Jensen–Shannon, Hellinger) always. KS is exact
/// when both raw stores are complete (nothing dropped at capacity) and
/// `which.exact_ks`, else from the sketches; Wasserstein needs both raw
/// stores complete and is `None` otherwise.
///
/// Only the sketches a requested statistic needs are read: a window without
/// raw values or quantile sketch still gives its histogram distances.
pub fn numeric_drift(reference: &NumericReference, window: &mut NumericWindow, which: NumericStatistics) -> Result<NumericDrift> {
    let count = window.count();
    if count == 0 {
        return Err(Error::InsufficientData { statistic: "numeric_drift", available: 0, required: 1 });
    }
    let r = &reference.window;
    let raw_complete = r.exact.overflow() == 0 && window.exact.overflow() == 0 && r.exact.count() == r.count();
    let ref_sorted = r.exact.sorted_values_ref().filter(|_| raw_complete);
    let ks = if which.ks {
        Some(match ref_sorted {
            Some(ref_values) if which.exact_ks => {
                KsOutcome::Exact(crate::ks::ks_2samp_sorted(ref_values, window.exact.sorted_values(), which.ks_method)?)
            }
            _ => match (&r.sketch, &window.sketch) {
                (Some(rs), Some(ws)) => KsOutcome::Sketch(rs.ks(ws)?),
                _ => {
                    return Err(Error::InvalidParameter {
                        name: "quantile_sketch",
                        reason: "KS needs complete raw values or the quantile sketch on both sides",
                    })
                }
            },
        })
    } else {
        None
    };
    let wasserstein = match ref_sorted {
        Some(ref_values) if which.wasserstein => Some(crate::distance::wasserstein_sorted(ref_values, window.exact.sorted_values())?),
        _ => None,
    };
    Ok(NumericDrift {
        count,
        psi: r.histogram.psi(&window.histogram)?,
        jensen_shannon: r.histogram.jensen_shannon(&window.histogram)?,
        hellinger: r.histogram.hellinger(&window.histogram)?,
        ks,
        wasserstein,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bound holds for windows filled with widely spread values (every
    /// sketch bucket in use), merged and updated one by one.
    #[test]
    fn max_window_bytes_bounds_a_full_window() {
        let mut next = crate::testing::xorshift(0x51ED_2701_BA5E_0001);
        let reference: Vec<f64> = (0..1_000).map(|i| i as f64).collect();
        for (config, n) in [
            (NumericSketchConfig::default(), 50_000u64),
            (NumericSketchConfig { exact_capacity: 0, ..NumericSketchConfig::default() }, 3_000),
            (NumericSketchConfig { max_buckets: 64, bins: 40, ..NumericSketchConfig::default() }, 20_000),
            (NumericSketchConfig { quantile_sketch: false, ..NumericSketchConfig::default() }, 7),
        ] {
            let edges = BinEdges::from_reference(&reference, config.bins).unwrap();
            let mut window = NumericWindow::new(edges.clone(), &config).unwrap();
            let mut pane = NumericWindow::new(edges, &config).unwrap();
            for i in 0..n {
                let magnitude = 10f64.powi((next() % 600) as i32 - 300);
                let x = if i % 2 == 0 { magnitude } else { -magnitude };
                if i % 3 == 0 {
                    pane.update(Some(x));
                } else {
                    window.update(Some(x));
                }
            }
            window.merge(&pane).unwrap();
            assert!(
                window.size_bytes() <= config.max_window_bytes(n),
                "{config:?}: {} > {}",
                window.size_bytes(),
                config.max_window_bytes(n)
            );
            assert!(pane.size_bytes() <= config.max_window_bytes(n.div_ceil(3)), "{config:?}");
        }
    }

    /// The block update holds exactly what one update per value holds
    /// (moments up to rounding), across block boundaries, with missing, NaN,
    /// ±∞, zeros, values below the sketch's zero bucket bound, both signs, a
    /// bucket bound small enough to collapse, and an exact store that fills.
    #[test]
    fn block_updates_equal_value_updates() {
        let mut next = crate::testing::xorshift(0x9E37_79B9_7F4A_7C15);
        let values: Vec<Option<f64>> = (0..5_000)
            .map(|i| match next() % 20 {
                0 => None,
                1 => Some(f64::NAN),
                2 => Some(if i % 2 == 0 { f64::INFINITY } else { f64::NEG_INFINITY }),
                3 => Some(0.0),
                4 => Some(1e-13),
                5 => Some(-1e150),
                _ => Some((next() % 2_000_000) as f64 / 1_000.0 - 1_000.0),
            })
            .collect();
        let edges = BinEdges::new(vec![-500.0, -10.0, 0.0, 0.5, 10.0, 500.0]).unwrap();
        let config = NumericSketchConfig { exact_capacity: 3_000, max_buckets: 64, ..NumericSketchConfig::default() };
        let mut one_by_one = NumericWindow::new(edges.clone(), &config).unwrap();
        for &v in &values {
            one_by_one.update(v);
        }
        let mut blocks = NumericWindow::new(edges.clone(), &config).unwrap();
        for run in values.chunks(777) {
            blocks.update_all(run);
        }
        // NaN for missing: the same as `None`, with no NaN values.
        let mut nan_missing = NumericWindow::new(edges, &config).unwrap();
        let mut as_option = NumericWindow::new(BinEdges::new(vec![-500.0, -10.0, 0.0, 0.5, 10.0, 500.0]).unwrap(), &config).unwrap();
        let without_nan: Vec<Option<f64>> = values.iter().map(|v| v.filter(|x| !x.is_nan())).collect();
        let coded: Vec<f64> = without_nan.iter().map(|v| v.unwrap_or(f64::NAN)).collect();
        for (run, coded_run) in without_nan.chunks(777).zip(coded.chunks(777)) {
            as_option.update_all(run);
            nan_missing.update_all_nan_missing(coded_run);
        }
        assert_eq!(nan_missing.histogram, as_option.histogram);
        assert_eq!(nan_missing.exact, as_option.exact);
        assert_eq!(nan_missing.sketch, as_option.sketch);
        assert_eq!(nan_missing.moments, as_option.moments);
        assert_eq!(as_option.moments.missing(), one_by_one.moments.missing() + one_by_one.moments.nan());
        assert_eq!(blocks.histogram, one_by_one.histogram);
        assert_eq!(blocks.exact, one_by_one.exact);
        assert_eq!(blocks.sketch, one_by_one.sketch);
        let (a, b) = (&blocks.moments, &one_by_one.moments);
        assert_eq!((a.count(), a.missing(), a.nan(), a.infinite()), (b.count(), b.missing(), b.nan(), b.infinite()));
        assert_eq!((a.min(), a.max()), (b.min(), b.max()));
        let close = |x: f64, y: f64| x == y || (x - y).abs() <= 1e-9 * y.abs().max(1.0);
        assert!(close(a.mean().unwrap(), b.mean().unwrap()), "{:?} {:?}", a.mean(), b.mean());
        assert!(close(a.variance().unwrap(), b.variance().unwrap()), "{:?} {:?}", a.variance(), b.variance());
        // Finite values whose block sum overflows keep a finite mean.
        for run in [vec![Some(1e308); 2], vec![Some(7e305); 256]] {
            let mut w = NumericWindow::new(BinEdges::new(vec![0.0]).unwrap(), &config).unwrap();
            w.update_all(&run);
            assert_eq!((w.moments.mean(), w.moments.variance()), (run[0], Some(0.0)));
        }
    }
}
