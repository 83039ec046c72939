//! A bounded-memory, mergeable, retractable quantile sketch with log-spaced
//! buckets (DDSketch), and KS computed from two such sketches with a stated
//! error bound.
//!
//! Why our own and not a crate: the maintained quantile-sketch crates
//! (`sketches-ddsketch`, KLL and t-digest implementations) merge but cannot
//! retract, and do not expose their buckets, which KS needs.
//!
//! # The bucket mapping
//!
//! DDSketch's *cubically interpolated* mapping (Masson, Rim and Lee, "DDSketch:
//! a fast and fully-mergeable quantile sketch with relative-error guarantees",
//! VLDB 2019; the reference implementations' `CubicallyInterpolatedMapping`):
//! a positive `x = 2^e (1 + s)` with `s ∈ [0, 1)` goes to key
//! `floor(m · (e + A s³ + B s² + C s))` with `A = 6/35`, `B = −3/5`,
//! `C = 10/7` and `m = 7 / (10 ln γ)`, `γ = (1 + α) / (1 − α)`. The cubic
//! interpolates `log2` between powers of two; its slope is at least `10/7` of
//! the logarithm's, so `m` makes every bucket at most `γ` wide in relative
//! terms (as the exact `ceil(ln x / ln γ)` mapping's), with about 1 % more
//! buckets. It costs a few multiplications on the float's bits instead of a
//! libm `ln` call, which was a third of a window update's cost.
//!
//! Negatives mirror into a second store, and values with `|x| <`
//! [`LogSketch::MIN_INDEXABLE`] share a zero bucket. When a store would exceed
//! `max_buckets`, its smallest-magnitude buckets collapse into one, so memory
//! is bounded whatever the data.
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
//! [`SketchKs::error_bound`] is that maximum, computed from the data. It holds
//! for any monotone bucketing, so it does not depend on the mapping; it is
//! small when the buckets are fine relative to the data's spread (α = 1 %
//! gives buckets at most 2 % wide in relative terms).

use serde::{Deserialize, Serialize};

use super::Sketch;
use crate::error::{Error, Result};
use crate::ks;

/// The cubic's coefficients (see the module docs).
const A: f64 = 6.0 / 35.0;
const B: f64 = -3.0 / 5.0;
const C: f64 = 10.0 / 7.0;

/// Keys per unit of the interpolated `log2` for relative accuracy `alpha`.
fn multiplier(alpha: f64) -> f64 {
    let gamma = (1.0 + alpha) / (1.0 - alpha);
    7.0 / (10.0 * gamma.ln())
}

/// `e + A s³ + B s² + C s` for a positive normal `x = 2^e (1 + s)`: equal to
/// `log2 x` at powers of two, monotone, and between them within 0.0015 of it.
#[inline]
fn approx_log2(x: f64) -> f64 {
    const MANTISSA: u64 = (1 << 52) - 1;
    let bits = x.to_bits();
    let exponent = ((bits >> 52) & 0x7ff) as i32 - 1023;
    let s = f64::from_bits((bits & MANTISSA) | (1023 << 52)) - 1.0;
    ((A * s + B) * s + C) * s + f64::from(exponent)
}

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

    fn clear(&mut self) {
        self.offset = 0;
        self.floor = i32::MIN;
        self.counts.clear();
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
            self.counts.splice(0..0, std::iter::repeat_n(0, below));
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

    /// The buckets with keys below `floor` folded into `floor`: the first
    /// key, its count and the counts of the keys after it (`None` if empty).
    fn folded(&self, floor: i32) -> Option<Folded<'_>> {
        let (&first, rest) = self.counts.split_first()?;
        if floor <= self.offset {
            return Some(Folded { first: self.offset, count: first, rest });
        }
        let cut = (floor as i64 - self.offset as i64) as usize;
        match self.counts.get(..=cut) {
            Some(below) => Some(Folded { first: floor, count: below.iter().sum(), rest: &self.counts[cut + 1..] }),
            None => Some(Folded { first: floor, count: self.total(), rest: &[] }),
        }
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

/// One store's buckets aligned to a floor (see `Store::folded`).
#[derive(Clone, Copy)]
struct Folded<'a> {
    first: i32,
    count: u64,
    rest: &'a [u64],
}

impl Folded<'_> {
    fn last(&self) -> i32 {
        self.first + self.rest.len() as i32
    }

    #[inline]
    fn at(&self, key: i32) -> u64 {
        if key == self.first {
            return self.count;
        }
        usize::try_from(key as i64 - self.first as i64 - 1).ok().and_then(|i| self.rest.get(i)).copied().unwrap_or(0)
    }
}

/// The two ECDFs walked bucket by bucket: the largest difference `d` and the
/// largest bucket share `bound` (see the module docs).
struct EcdfWalk {
    ca: u64,
    cb: u64,
    d: f64,
    bound: f64,
    nf: f64,
    mf: f64,
}

impl EcdfWalk {
    /// Adds one bucket boundary (an empty bucket changes neither figure).
    #[inline]
    fn step(&mut self, da: u64, db: u64) {
        if da == 0 && db == 0 {
            return;
        }
        self.ca += da;
        self.cb += db;
        self.d = self.d.max((self.ca as f64 / self.nf - self.cb as f64 / self.mf).abs());
        self.bound = self.bound.max((da as f64 / self.nf).max(db as f64 / self.mf));
    }

    /// Every key of one sign's two stores, in value order (descending keys
    /// for the negative store). Direct indexing into both dense stores.
    fn store_pair(&mut self, a: Option<Folded<'_>>, b: Option<Folded<'_>>, descending: bool) {
        let (lo, hi) = match (a, b) {
            (Some(a), Some(b)) => (a.first.min(b.first), a.last().max(b.last())),
            (Some(x), None) | (None, Some(x)) => (x.first, x.last()),
            (None, None) => return,
        };
        let count = |f: &Option<Folded<'_>>, k: i32| f.as_ref().map_or(0, |f| f.at(k));
        if descending {
            for k in (lo..=hi).rev() {
                self.step(count(&a, k), count(&b, k));
            }
        } else {
            for k in lo..=hi {
                self.step(count(&a, k), count(&b, k));
            }
        }
    }
}

/// Bounded-memory quantile sketch with relative accuracy α.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSketch {
    relative_accuracy: f64,
    max_buckets: usize,
    /// `m` of the mapping (see the module docs): keys per unit of `log2`.
    multiplier: f64,
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
        Ok(Self {
            relative_accuracy: alpha,
            max_buckets,
            multiplier: multiplier(alpha),
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

    /// Adds a run of finite values, as one [`Sketch::update`] each does: the
    /// keys of a block first, in a loop without branches (so that one value's
    /// floor does not wait on the last one's), then the counts.
    pub fn update_finite(&mut self, xs: &[f64]) {
        debug_assert!(xs.iter().all(|x| x.is_finite()));
        const BLOCK: usize = 256;
        let mut keys = [0i32; BLOCK];
        for chunk in xs.chunks(BLOCK) {
            for (k, &x) in keys.iter_mut().zip(chunk) {
                *k = self.key(x.abs().max(Self::MIN_INDEXABLE));
            }
            for (&k, &x) in keys.iter().zip(chunk) {
                if x.abs() < Self::MIN_INDEXABLE {
                    self.zero += 1;
                } else {
                    let store = if x > 0.0 { &mut self.positive } else { &mut self.negative };
                    store.add(k, 1, self.max_buckets);
                }
            }
        }
    }

    /// The key of `magnitude` ∈ [`MIN_INDEXABLE`](Self::MIN_INDEXABLE),
    /// `f64::MAX`] (normal floats only). Hot path: bit operations and a
    /// cubic, no libm call.
    #[inline]
    fn key(&self, magnitude: f64) -> i32 {
        let y = approx_log2(magnitude) * self.multiplier;
        // Floor by truncation (`f64::floor` is a libm call on baseline
        // x86-64); `as` saturates, so the key fits i32 for any accuracy (it
        // fits without saturating for every α ≥ 1e-6).
        let t = y as i32;
        t.saturating_sub(i32::from(f64::from(t) > y))
    }

    /// The smallest magnitude with key `k` (the inverse of the mapping, by
    /// Cardano's formula for the cubic).
    fn lower_bound(&self, k: i32) -> f64 {
        let normalized = f64::from(k) / self.multiplier;
        let exponent = normalized.floor();
        let target = normalized - exponent;
        // Solve A s³ + B s² + C s = target for the one real root in [0, 1].
        let d0 = B * B - 3.0 * A * C;
        let d1 = 2.0 * B * B * B - 9.0 * A * B * C - 27.0 * A * A * target;
        let p = ((d1 - (d1 * d1 - 4.0 * d0 * d0 * d0).sqrt()) / 2.0).cbrt();
        let s = -(B + p + d0 / p) / (3.0 * A);
        (1.0 + s.clamp(0.0, 1.0)) * exponent.exp2()
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
        // Both ECDFs at every bucket boundary in value order: negatives from
        // the largest magnitude down, the zero bucket, positives upwards. Keys
        // below the higher of the two collapse floors fold into that floor.
        let mut walk = EcdfWalk { ca: 0, cb: 0, d: 0.0, bound: 0.0, nf: n as f64, mf: m as f64 };
        let neg_floor = self.negative.floor.max(current.negative.floor);
        walk.store_pair(self.negative.folded(neg_floor), current.negative.folded(neg_floor), true);
        walk.step(self.zero, current.zero);
        let pos_floor = self.positive.floor.max(current.positive.floor);
        walk.store_pair(self.positive.folded(pos_floor), current.positive.folded(pos_floor), false);
        let EcdfWalk { d, bound, .. } = walk;
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
        // A bucket spans [L, γ L) at most, so L (1 + α) is within α of
        // every value in it.
        let value = |k: i32| self.lower_bound(k) * (1.0 + self.relative_accuracy);
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
            multiplier: multiplier(Self::DEFAULT_RELATIVE_ACCURACY),
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
    /// Version 2: the cubically interpolated mapping (version 1 keyed by
    /// `ceil(ln x / ln γ)`; its keys mean other buckets).
    const VERSION: u32 = 2;

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
        // Keep the stores' allocations: panes are cleared and reused.
        self.positive.clear();
        self.negative.clear();
        self.zero = 0;
        self.invalid = 0;
    }

    fn validate(&self) -> Result<()> {
        let expected = Self::new(self.relative_accuracy, self.max_buckets)
            .map_err(|_| Error::CorruptSnapshot { kind: Self::KIND, reason: "invalid accuracy or bucket bound" })?;
        if expected.multiplier != self.multiplier {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic values spread over 40 octaves (1 400 keys per sign at
    /// α = 1 %, inside the default bucket bound), both signs.
    fn spread(n: usize) -> Vec<f64> {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let u = (state >> 11) as f64 / (1u64 << 53) as f64;
                let magnitude = (u * 40.0 - 20.0).exp2();
                if state & 1 == 0 {
                    magnitude
                } else {
                    -magnitude
                }
            })
            .collect()
    }

    #[test]
    fn approx_log2_is_exact_at_powers_of_two_and_close_between() {
        for e in -40..1024 {
            assert_eq!(approx_log2(f64::from(e).exp2()), f64::from(e));
        }
        for x in spread(10_000) {
            let x = x.abs();
            assert!((approx_log2(x) - x.log2()).abs() < 0.0015, "{x}");
        }
    }

    #[test]
    fn keys_are_monotone_and_buckets_at_most_gamma_wide() {
        for alpha in [0.001, 0.01, 0.05, 0.2] {
            let s = LogSketch::new(alpha, 2048).unwrap();
            let gamma = (1.0 + alpha) / (1.0 - alpha);
            let mut xs: Vec<f64> = spread(20_000).into_iter().map(f64::abs).collect();
            xs.sort_by(f64::total_cmp);
            for w in xs.windows(2) {
                assert!(s.key(w[0]) <= s.key(w[1]), "α {alpha}: keys not monotone at {} {}", w[0], w[1]);
            }
            for &x in &xs {
                let k = s.key(x);
                let (lo, hi) = (s.lower_bound(k), s.lower_bound(k + 1));
                // Up to rounding of the cubic and its inverse.
                assert!(lo <= x * (1.0 + 1e-12) && x < hi * (1.0 + 1e-12), "α {alpha}: {x} outside key {k} [{lo}, {hi})");
                assert!(hi / lo <= gamma * (1.0 + 1e-12), "α {alpha}: bucket {k} is {} wide", hi / lo);
            }
        }
    }

    #[test]
    fn quantiles_within_relative_accuracy() {
        let mut xs = spread(5_001);
        let mut s = LogSketch::default();
        xs.iter().for_each(|&x| s.update(x));
        xs.sort_by(f64::total_cmp);
        let alpha = LogSketch::DEFAULT_RELATIVE_ACCURACY;
        for i in 0..=100 {
            let q = f64::from(i) / 100.0;
            let exact = xs[(q * (xs.len() - 1) as f64).floor() as usize];
            let got = s.quantile(q).unwrap();
            assert!((got - exact).abs() <= alpha * exact.abs() * (1.0 + 1e-9), "q {q}: {got} vs {exact}");
        }
    }

    /// KS over `bucket_counts()` merged by ordinal: the walk the dense one
    /// replaced, kept as the oracle.
    fn ks_by_ordinals(a: &LogSketch, b: &LogSketch) -> (f64, f64) {
        let neg = a.negative.floor.max(b.negative.floor);
        let pos = a.positive.floor.max(b.positive.floor);
        let (nf, mf) = (a.count() as f64, b.count() as f64);
        let mut all: Vec<(i64, u64, u64)> = a.ordered(neg, pos).map(|(o, c)| (o, c, 0)).collect();
        all.extend(b.ordered(neg, pos).map(|(o, c)| (o, 0, c)));
        all.sort_by_key(|e| e.0);
        let (mut ca, mut cb, mut d, mut bound) = (0u64, 0u64, 0.0f64, 0.0f64);
        let mut i = 0;
        while i < all.len() {
            let (mut da, mut db) = (0, 0);
            let o = all[i].0;
            while i < all.len() && all[i].0 == o {
                da += all[i].1;
                db += all[i].2;
                i += 1;
            }
            ca += da;
            cb += db;
            d = d.max((ca as f64 / nf - cb as f64 / mf).abs());
            bound = bound.max((da as f64 / nf).max(db as f64 / mf));
        }
        (d, bound)
    }

    #[test]
    fn dense_ks_walk_matches_the_ordinal_merge() {
        let xs = spread(4_000);
        for (max_buckets, split, shift) in [(2048, 1_500, 1.0), (2048, 3_999, -3.5), (40, 2_000, 1.0), (7, 1_000, 2.0), (2, 100, 0.5)] {
            let (mut a, mut b) = (LogSketch::new(0.01, max_buckets).unwrap(), LogSketch::new(0.01, max_buckets).unwrap());
            xs[..split].iter().for_each(|&x| a.update(x));
            xs[split..].iter().for_each(|&x| b.update(x * shift));
            b.update(0.0);
            let ks = a.ks(&b).unwrap();
            let (d, bound) = ks_by_ordinals(&a, &b);
            assert_eq!(ks.statistic.to_bits(), d.to_bits(), "{max_buckets} {split} {shift}");
            assert_eq!(ks.error_bound.to_bits(), ((d + bound).min(1.0) - d).to_bits(), "{max_buckets} {split} {shift}");
        }
    }

    #[test]
    fn clear_keeps_allocations_and_forgets_values() {
        let mut s = LogSketch::default();
        spread(1_000).iter().for_each(|&x| s.update(x));
        let held = s.size_bytes();
        s.clear();
        assert_eq!(s.count(), 0);
        assert_eq!(s.bucket_counts(), Vec::new());
        assert_eq!(s.size_bytes(), held);
        s.update(3.0);
        let mut fresh = LogSketch::default();
        fresh.update(3.0);
        assert_eq!(s.bucket_counts(), fresh.bucket_counts());
    }
}
