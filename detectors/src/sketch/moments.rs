//! Count, data quality and numerically stable mean and variance.

use serde::{Deserialize, Serialize};

use super::Sketch;
use crate::error::{Error, Result};

/// Moments and data-quality counters of a numeric feature.
///
/// Mean and variance use Welford's update and Chan et al.'s pairwise merge, so
/// they stay accurate for large counts and large offsets. `min` and `max` are
/// the extremes of the values added since the last `clear`: a retract cannot
/// undo them (sliding windows get exact extremes by merging panes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Moments {
    count: u64,
    missing: u64,
    nan: u64,
    infinite: u64,
    min: f64,
    max: f64,
    mean: f64,
    m2: f64,
}

/// The sum of `f` over `xs` in four interleaved partial sums (independent
/// additions, so that they pipeline).
#[inline]
fn sum4(xs: &[f64], f: impl Fn(f64) -> f64) -> f64 {
    let mut acc = [0.0f64; 4];
    let mut chunks = xs.chunks_exact(4);
    for c in &mut chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += f(x);
        }
    }
    let tail: f64 = chunks.remainder().iter().map(|&x| f(x)).sum();
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

impl Default for Moments {
    fn default() -> Self {
        Self { count: 0, missing: 0, nan: 0, infinite: 0, min: 0.0, max: 0.0, mean: 0.0, m2: 0.0 }
    }
}

impl Moments {
    /// Empty moments.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a run of finite values at once: the run's own mean and squared
    /// deviations in two passes (four independent sums each, no division per
    /// value), merged in by Chan et al.'s formula. The same statistics as
    /// one [`Sketch::update`] per value, up to rounding, without Welford's
    /// serial chain of divisions (the window stage's hot loop).
    pub fn update_finite(&mut self, xs: &[f64]) {
        debug_assert!(xs.iter().all(|x| x.is_finite()));
        let Some(&first) = xs.first() else { return };
        let n = xs.len() as f64;
        let mean = sum4(xs, |x| x) / n;
        let m2 = sum4(xs, |x| (x - mean) * (x - mean));
        if !m2.is_finite() {
            // Values near f64::MAX, whose sum or squared deviations from the
            // block's rounded mean overflow: Welford's running update stays
            // in range wherever it can.
            xs.iter().for_each(|&x| self.update(x));
            return;
        }
        let (mut min, mut max) = ([first; 4], [first; 4]);
        let mut chunks = xs.chunks_exact(4);
        for c in &mut chunks {
            for i in 0..4 {
                min[i] = min[i].min(c[i]);
                max[i] = max[i].max(c[i]);
            }
        }
        let fold = |v: [f64; 4], tail: &[f64], f: fn(f64, f64) -> f64| tail.iter().fold(f(f(v[0], v[1]), f(v[2], v[3])), |a, &x| f(a, x));
        let run = Moments {
            count: xs.len() as u64,
            min: fold(min, chunks.remainder(), f64::min),
            max: fold(max, chunks.remainder(), f64::max),
            mean,
            m2,
            ..Moments::default()
        };
        self.add_stats(&run);
    }

    /// Chan et al.'s merge of `other`'s count, mean, variance and extremes.
    fn add_stats(&mut self, other: &Self) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            (self.count, self.mean, self.m2) = (other.count, other.mean, other.m2);
            (self.min, self.max) = (other.min, other.max);
            return;
        }
        let (na, nb) = (self.count as f64, other.count as f64);
        let n = na + nb;
        let delta = other.mean - self.mean;
        self.mean += delta * nb / n;
        self.m2 += other.m2 + delta * delta * na * nb / n;
        self.count += other.count;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// Records a missing (absent or null) value.
    pub fn update_missing(&mut self) {
        self.missing += 1;
    }

    /// Removes a missing value recorded before.
    pub fn retract_missing(&mut self) -> Result<()> {
        self.missing = self.missing.checked_sub(1).ok_or(Error::NotHeld { kind: Self::KIND })?;
        Ok(())
    }

    /// Missing values.
    pub fn missing(&self) -> u64 {
        self.missing
    }
    /// NaN values.
    pub fn nan(&self) -> u64 {
        self.nan
    }
    /// ±∞ values.
    pub fn infinite(&self) -> u64 {
        self.infinite
    }
    /// Smallest finite value, `None` when empty.
    pub fn min(&self) -> Option<f64> {
        (self.count > 0).then_some(self.min)
    }
    /// Largest finite value, `None` when empty.
    pub fn max(&self) -> Option<f64> {
        (self.count > 0).then_some(self.max)
    }
    /// Mean of the finite values, `None` when empty.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then_some(self.mean)
    }
    /// Population variance, `None` when empty.
    pub fn variance(&self) -> Option<f64> {
        (self.count > 0).then(|| (self.m2 / self.count as f64).max(0.0))
    }
    /// Sample variance (n − 1), `None` below two values.
    pub fn sample_variance(&self) -> Option<f64> {
        (self.count > 1).then(|| (self.m2 / (self.count - 1) as f64).max(0.0))
    }
}

impl Sketch for Moments {
    type Item<'a> = f64;
    const KIND: &'static str = "moments";
    const VERSION: u32 = 1;

    #[inline]
    fn update(&mut self, x: f64) {
        if x.is_nan() {
            self.nan += 1;
            return;
        }
        if x.is_infinite() {
            self.infinite += 1;
            return;
        }
        self.count += 1;
        let delta = x - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (x - self.mean);
        if self.count == 1 {
            (self.min, self.max) = (x, x);
        } else {
            self.min = self.min.min(x);
            self.max = self.max.max(x);
        }
    }

    fn retract(&mut self, x: f64) -> Result<()> {
        let not_held = Error::NotHeld { kind: Self::KIND };
        if x.is_nan() {
            self.nan = self.nan.checked_sub(1).ok_or(not_held)?;
            return Ok(());
        }
        if x.is_infinite() {
            self.infinite = self.infinite.checked_sub(1).ok_or(not_held)?;
            return Ok(());
        }
        match self.count {
            0 => Err(not_held),
            1 => {
                let (missing, nan, infinite) = (self.missing, self.nan, self.infinite);
                *self = Self { missing, nan, infinite, ..Self::default() };
                Ok(())
            }
            n => {
                let n1 = (n - 1) as f64;
                let mean = (self.mean * n as f64 - x) / n1;
                self.m2 = (self.m2 - (x - mean) * (x - self.mean)).max(0.0);
                self.mean = mean;
                self.count = n - 1;
                Ok(())
            }
        }
    }

    fn merge(&mut self, other: &Self) -> Result<()> {
        self.missing += other.missing;
        self.nan += other.nan;
        self.infinite += other.infinite;
        self.add_stats(other);
        Ok(())
    }

    /// Reverses Chan's merge. `min` and `max` keep the extremes seen.
    fn unmerge(&mut self, other: &Self) -> Result<()> {
        let not_held = Error::NotHeld { kind: Self::KIND };
        if other.count > self.count || other.missing > self.missing || other.nan > self.nan || other.infinite > self.infinite {
            return Err(not_held);
        }
        self.missing -= other.missing;
        self.nan -= other.nan;
        self.infinite -= other.infinite;
        if other.count == 0 {
            return Ok(());
        }
        let rest = self.count - other.count;
        if rest == 0 {
            (self.count, self.mean, self.m2) = (0, 0.0, 0.0);
            return Ok(());
        }
        let (n, nb, na) = (self.count as f64, other.count as f64, rest as f64);
        let mean_a = (self.mean * n - other.mean * nb) / na;
        let delta = other.mean - mean_a;
        self.m2 = (self.m2 - other.m2 - delta * delta * na * nb / n).max(0.0);
        self.mean = mean_a;
        self.count = rest;
        Ok(())
    }

    fn count(&self) -> u64 {
        self.count
    }

    fn size_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
    }

    fn clear(&mut self) {
        *self = Self::default();
    }

    fn validate(&self) -> Result<()> {
        if !self.mean.is_finite() || !self.m2.is_finite() || self.m2 < 0.0 {
            return Err(Error::CorruptSnapshot { kind: Self::KIND, reason: "mean or m2 is not a finite, non-negative state" });
        }
        if self.count > 0 && (self.min.is_nan() || self.max.is_nan() || self.min > self.max) {
            return Err(Error::CorruptSnapshot { kind: Self::KIND, reason: "min exceeds max" });
        }
        Ok(())
    }
}
