//! A bounded-memory, mergeable, retractable quantile sketch with log-spaced
//! buckets (the DDSketch mapping), and KS computed from two such sketches with
//! a stated error bound.
//!
//! Why our own and not a crate: the maintained quantile-sketch crates
//! (`sketches-ddsketch`, KLL and t-digest implementations) merge but cannot
//! retract, and do not expose their buckets, which KS needs. The bucket
//! mapping here is DDSketch's: a positive value `x` goes to key
//! `ceil(ln x / ln γ)` with `γ = (1 + α) / (1 − α)`, negatives mirror into a
//! second store, and values with `|x| <` [`LogSketch::MIN_INDEXABLE`] share a
//! zero bucket. When a store would exceed `max_buckets`, its smallest-magnitude
//! buckets collapse into one, so memory is bounded whatever the data.
//!
//! # KS error bound
//!
//! Both sketches' cumulative counts are exact at every bucket boundary, so the
//! sketch statistic `D̂` (the largest ECDF difference over boundaries) never
//! exceeds the exact `D`, and inside a bucket the difference can grow by at
//! most that bucket's larger share:
//!
//! `D̂ ≤ D ≤ D̂ + max over buckets of max(p_k, q_k)`
//!
//! [`SketchKs::error_bound`] is that maximum, computed from the data. It is
//! small when the buckets are fine relative to the data's spread (α = 1 %
//! gives buckets 2 % wide in relative terms).

use serde::{Deserialize, Serialize};

use super::Sketch;
use crate::error::{Error, Result};
use crate::ks;

/// One sign's buckets: `counts[i]` holds key `offset + i`; keys below `floor`
/// were collapsed into `floor`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Store {
    offset: i32,
    floor: i32,
    counts: Vec<u64>,
}

impl Store {
    fn new() -> Self {
        Self { offset: 0, floor: i32::MIN, counts: Vec::new() }
    }

    #[inline]
    fn add(&mut self, key: i32, n: u64, max_buckets: usize) {
        let key = key.max(self.floor);
        if self.counts.is_empty() {
            self.offset = key;
            self.counts.push(n);
            return;
        }
        let top = self.offset + self.counts.len() as i32 - 1;
        if key >= self.offset && key <= top {
            self.counts[(key - self.offset) as usize] += n;
            return;
        }
        self.grow(key, top, max_buckets);
        let key = key.max(self.floor);
        self.counts[(key - self.offset) as usize] += n;
    }

    /// Widens the range to hold `key`, collapsing the lowest keys when the
    /// span would exceed `max_buckets` (amortised: runs only for new extremes).
    #[cold]
    fn grow(&mut self, key: i32, top: i32, max_buckets: usize) {
        let hi = top.max(key);
        let mut lo = self.offset.min(key);
        if (hi as i64 - lo as i64 + 1) as usize > max_buckets {
            lo = hi - max_buckets as i32 + 1;
            self.floor = self.floor.max(lo);
        }
        let len = (hi - lo + 1) as usize;
        if lo == self.offset {
            // Only the top moved: extend in place (amortised by `Vec`).
            self.counts.resize(len, 0);
            return;
        }
        if lo < self.offset {
            // The bottom moved down and nothing collapses: shift in place.
            let below = (self.offset - lo) as usize;
            self.counts.splice(0..0, std::iter::repeat(0).take(below));
            self.counts.resize(len, 0);
            self.offset = lo;
            return;
        }
        let mut counts = vec![0u64; len];
        for (i, &c) in self.counts.iter().enumerate() {
            let k = (self.offset + i as i32).max(lo);
            counts[(k - lo) as usize] += c;
        }
        self.offset = lo;
        self.counts = counts;
    }

    fn retract(&mut self, key: i32) -> bool {
        let key = key.max(self.floor);
        let i = key as i64 - self.offset as i64;
        match usize::try_from(i).ok().and_then(|i| self.counts.get_mut(i)) {
            Some(c) if *c > 0 => {
                *c -= 1;
                true
            }
            _ => false,
        }
    }

    fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// (key, count) of the non-empty buckets, ascending key.
    /// The counts of `other`'s keys as a slice of this store's counts, when
    /// this store covers `other`'s whole range above its floor (the common
    /// case of a window absorbing a pane: one vectorisable loop, no lookups).
    fn covering(&mut self, other: &Store) -> Option<&mut [u64]> {
        if other.counts.is_empty() || self.counts.is_empty() || other.offset < self.floor {
            return None;
        }
        let start = usize::try_from(other.offset as i64 - self.offset as i64).ok()?;
        self.counts.get_mut(start..start + other.counts.len())
    }

    fn iter(&self) -> impl DoubleEndedIterator<Item = (i32, u64)> + '_ {
        self.counts.iter().enumerate().filter(|(_, &c)| c > 0).map(move |(i, &c)| (self.offset + i as i32, c))
    }
}

/// Bounded-memory quantile sketch with relative accuracy α.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSketch {
    relative_accuracy: f64,
    max_buckets: usize,
    inv_ln_gamma: f64,
    positive: Store,
    negative: Store,
    zero: u64,
    invalid: u64,
}

/// KS statistic computed from two [`LogSketch`]es.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SketchKs {
    /// `D̂`, the largest ECDF difference over bucket boundaries (≤ exact D).
    pub statistic: f64,
    /// Exact D lies in `[statistic, statistic + error_bound]`.
    pub error_bound: f64,
    /// Asymptotic two-sided p-value at `D̂` (SciPy's `kstwo.sf` method).
    pub p_value: f64,
    /// Asymptotic p-value at `D̂ + error_bound`: the exact test's p-value is
    /// at least this.
    pub p_value_lower: f64,
    /// Values in the reference sketch.
    pub n_reference: u64,
    /// Values in the current sketch.
    pub n_current: u64,
}

impl LogSketch {
    /// Values closer to zero than this share the zero bucket.
    pub const MIN_INDEXABLE: f64 = 1e-12;
    /// Default relative accuracy (1 %).
    pub const DEFAULT_RELATIVE_ACCURACY: f64 = 0.01;
    /// Default bucket bound per sign.
    pub const DEFAULT_MAX_BUCKETS: usize = 2048;

    /// A sketch with relative accuracy `alpha` in (0, 1) and at most
    /// `max_buckets` (≥ 2) buckets per sign.
    pub fn new(alpha: f64, max_buckets: usize) -> Result<Self> {
        if !(alpha > 0.0 && alpha < 1.0) {
            return Err(Error::InvalidParameter { name: "relative_accuracy", reason: "must be in (0, 1)" });
        }
        if !(2..=1 << 20).contains(&max_buckets) {
            return Err(Error::InvalidParameter { name: "max_buckets", reason: "must be in [2, 1048576]" });
        }
        let gamma = (1.0 + alpha) / (1.0 - alpha);
        Ok(Self {
            relative_accuracy: alpha,
            max_buckets,
            inv_ln_gamma: 1.0 / gamma.ln(),
            positive: Store::new(),
            negative: Store::new(),
            zero: 0,
            invalid: 0,
        })
    }

    /// The relative accuracy α.
    pub fn relative_accuracy(&self) -> f64 {
        self.relative_accuracy
    }

    /// Non-finite values seen (not held).
    pub fn invalid(&self) -> u64 {
        self.invalid
    }

    #[inline]
    fn key(&self, magnitude: f64) -> i32 {
        // magnitude ∈ [MIN_INDEXABLE, f64::MAX]: the key fits i32 for any α ≥ 1e-6.
        // `f64::ceil` is a libm call on baseline x86-64 (no SSE4.1): ceil by
        // truncation instead, exact for every value in i32's range.
        let y = magnitude.ln() * self.inv_ln_gamma;
        let t = y as i32;
        if f64::from(t) < y {
            // Saturates like `ceil() as i32` (only reachable with an accuracy
            // far below any configured one).
            t.saturating_add(1)
        } else {
            t
        }
    }

    fn compatible(&self, other: &Self) -> Result<()> {
        if self.relative_accuracy != other.relative_accuracy || self.max_buckets != other.max_buckets {
            return Err(Error::Incompatible { reason: "log sketches have different accuracy or bucket bounds" });
        }
        Ok(())
    }

    /// Buckets in ascending value order as (ordinal, count), where keys below
    /// the given floors are folded into the floors (to align two sketches).
    fn ordered(&self, neg_floor: i32, pos_floor: i32) -> impl Iterator<Item = (i64, u64)> + '_ {
        let neg = self.negative.iter().rev().map(move |(k, c)| (-(k.max(neg_floor) as i64), c));
        let zero = (self.zero > 0).then_some((1i64 << 33, self.zero));
        let pos = self.positive.iter().map(move |(k, c)| ((1i64 << 34) + k.max(pos_floor) as i64, c));
        neg.chain(zero).chain(pos)
    }

    /// The non-empty buckets in ascending value order, as (ordinal, count);
    /// ordinals order buckets but carry no other meaning.
    pub fn bucket_counts(&self) -> Vec<(i64, u64)> {
        self.ordered(self.negative.floor, self.positive.floor).collect()
    }

    /// KS of `current` against `self` as the reference, with its error bound.
    pub fn ks(&self, current: &Self) -> Result<SketchKs> {
        self.compatible(current)?;
        let (n, m) = (self.count(), current.count());
        if n == 0 || m == 0 {
            return Err(Error::InsufficientData { statistic: "ks", available: n.min(m), required: 1 });
        }
        let neg_floor = self.negative.floor.max(current.negative.floor);
        let pos_floor = self.positive.floor.max(current.positive.floor);
        let (nf, mf) = (n as f64, m as f64);
        let mut a = self.ordered(neg_floor, pos_floor).peekable();
        let mut b = current.ordered(neg_floor, pos_floor).peekable();
        let (mut ca, mut cb) = (0u64, 0u64);
        let (mut d, mut bound) = (0.0f64, 0.0f64);
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(&(x, _)), Some(&(y, _))) => x.min(y),
                (Some(&(x, _)), None) => x,
                (None, Some(&(y, _))) => y,
                (None, None) => break,
            };
            let (mut da, mut db) = (0u64, 0u64);
            while let Some(&(_, c)) = a.peek().filter(|(o, _)| *o == next) {
                da += c;
                a.next();
            }
            while let Some(&(_, c)) = b.peek().filter(|(o, _)| *o == next) {
                db += c;
                b.next();
            }
            ca += da;
            cb += db;
            d = d.max((ca as f64 / nf - cb as f64 / mf).abs());
            bound = bound.max((da as f64 / nf).max(db as f64 / mf));
        }
        let upper = (d + bound).min(1.0);
        Ok(SketchKs {
            statistic: d,
            error_bound: upper - d,
            p_value: ks::ks_pvalue_asymptotic(n, m, d),
            p_value_lower: ks::ks_pvalue_asymptotic(n, m, upper),
            n_reference: n,
            n_current: m,
        })
    }

    /// The value at quantile `q` ∈ [0, 1], within relative accuracy α
    /// (values in the zero bucket read as 0). `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let n = self.count();
        if n == 0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        let rank = (q * (n - 1) as f64).floor() as u64;
        let gamma = (1.0 + self.relative_accuracy) / (1.0 - self.relative_accuracy);
        let value = |k: i32| 2.0 * gamma.powi(k) / (gamma + 1.0);
        let mut seen = 0u64;
        for (k, c) in self.negative.iter().rev() {
            seen += c;
            if seen > rank {
                return Some(-value(k));
            }
        }
        seen += self.zero;
        if seen > rank {
            return Some(0.0);
        }
        for (k, c) in self.positive.iter() {
            seen += c;
            if seen > rank {
                return Some(value(k));
            }
        }
        None
    }
}

impl Default for LogSketch {
    fn default() -> Self {
        Self {
            relative_accuracy: Self::DEFAULT_RELATIVE_ACCURACY,
            max_buckets: Self::DEFAULT_MAX_BUCKETS,
            inv_ln_gamma: 1.0 / ((1.0 + Self::DEFAULT_RELATIVE_ACCURACY) / (1.0 - Self::DEFAULT_RELATIVE_ACCURACY)).ln(),
            positive: Store::new(),
            negative: Store::new(),
            zero: 0,
            invalid: 0,
        }
    }
}

impl Sketch for LogSketch {
    type Item<'a> = f64;
    const KIND: &'static str = "log_sketch";
    const VERSION: u32 = 1;

    #[inline]
    fn update(&mut self, x: f64) {
        if !x.is_finite() {
            self.invalid += 1;
        } else if x.abs() < Self::MIN_INDEXABLE {
            self.zero += 1;
        } else if x > 0.0 {
            let k = self.key(x);
            self.positive.add(k, 1, self.max_buckets);
        } else {
            let k = self.key(-x);
            self.negative.add(k, 1, self.max_buckets);
        }
    }

    fn retract(&mut self, x: f64) -> Result<()> {
        let held = if !x.is_finite() {
            self.invalid.checked_sub(1).map(|v| self.invalid = v).is_some()
        } else if x.abs() < Self::MIN_INDEXABLE {
            self.zero.checked_sub(1).map(|v| self.zero = v).is_some()
        } else if x > 0.0 {
            let k = self.key(x);
            self.positive.retract(k)
        } else {
            let k = self.key(-x);
            self.negative.retract(k)
        };
        held.then_some(()).ok_or(Error::NotHeld { kind: Self::KIND })
    }

    fn merge(&mut self, other: &Self) -> Result<()> {
        self.compatible(other)?;
        let max = self.max_buckets;
        // Carry the other's collapse floors so its folded mass stays folded.
        for (store, theirs) in [(&mut self.positive, &other.positive), (&mut self.negative, &other.negative)] {
            if theirs.floor > store.floor && !store.counts.is_empty() {
                let folded: u64 = store.iter().filter(|(k, _)| *k < theirs.floor).map(|(_, c)| c).sum();
                let mut kept = Store { offset: 0, floor: theirs.floor, counts: Vec::new() };
                for (k, c) in store.iter().filter(|(k, _)| *k >= theirs.floor) {
                    kept.add(k, c, max);
                }
                if folded > 0 {
                    kept.add(theirs.floor, folded, max);
                }
                *store = kept;
            }
            store.floor = store.floor.max(theirs.floor);
            if let Some(mine) = store.covering(theirs) {
                for (a, &b) in mine.iter_mut().zip(&theirs.counts) {
                    *a += b;
                }
                continue;
            }
            for (k, c) in theirs.iter() {
                store.add(k, c, max);
            }
        }
        self.zero += other.zero;
        self.invalid += other.invalid;
        Ok(())
    }

    fn unmerge(&mut self, other: &Self) -> Result<()> {
        self.compatible(other)?;
        let not_held = Error::NotHeld { kind: Self::KIND };
        if other.zero > self.zero || other.invalid > self.invalid {
            return Err(not_held);
        }
        for (store, theirs) in [(&mut self.positive, &other.positive), (&mut self.negative, &other.negative)] {
            if let Some(mine) = store.covering(theirs) {
                if mine.iter().zip(&theirs.counts).any(|(a, b)| a < b) {
                    return Err(not_held);
                }
                for (a, &b) in mine.iter_mut().zip(&theirs.counts) {
                    *a -= b;
                }
                continue;
            }
            for (k, c) in theirs.iter() {
                let i = k.max(store.floor) as i64 - store.offset as i64;
                match usize::try_from(i).ok().and_then(|i| store.counts.get_mut(i)) {
                    Some(have) if *have >= c => *have -= c,
                    _ => return Err(not_held),
                }
            }
        }
        self.zero -= other.zero;
        self.invalid -= other.invalid;
        Ok(())
    }

    fn count(&self) -> u64 {
        self.positive.total() + self.negative.total() + self.zero
    }

    fn size_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + (self.positive.counts.capacity() + self.negative.counts.capacity()) * 8
    }

    fn clear(&mut self) {
        self.positive = Store::new();
        self.negative = Store::new();
        self.zero = 0;
        self.invalid = 0;
    }

    fn validate(&self) -> Result<()> {
        let expected = Self::new(self.relative_accuracy, self.max_buckets)
            .map_err(|_| Error::CorruptSnapshot { kind: Self::KIND, reason: "invalid accuracy or bucket bound" })?;
        if expected.inv_ln_gamma != self.inv_ln_gamma {
            return Err(Error::CorruptSnapshot { kind: Self::KIND, reason: "mapping does not match the accuracy" });
        }
        for s in [&self.positive, &self.negative] {
            if s.counts.len() > self.max_buckets || (!s.counts.is_empty() && s.offset < s.floor) {
                return Err(Error::CorruptSnapshot { kind: Self::KIND, reason: "store exceeds its bucket bound or floor" });
            }
        }
        Ok(())
    }
}
