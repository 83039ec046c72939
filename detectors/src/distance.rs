//! Distances between two distributions given as counts over the same bins or
//! categories, and Wasserstein-1 on raw samples.
//!
//! Definitions follow SciPy (see `tests/fixtures/README.md`):
//! - PSI: `Σ (q − p) ln(q / p)`, a share of exactly 0 replaced by [`PSI_EPSILON`];
//! - Jensen–Shannon distance, base 2 (`scipy.spatial.distance.jensenshannon`);
//! - Hellinger: `sqrt(1 − Σ sqrt(p q))`;
//! - L∞: `max |p − q|`.

use crate::error::{Error, Result};

/// The share used in place of an empty bin in PSI.
pub const PSI_EPSILON: f64 = 1e-4;

fn total(counts: &[u64], statistic: &'static str) -> Result<f64> {
    let t: u64 = counts.iter().sum();
    if t == 0 {
        return Err(Error::InsufficientData { statistic, available: 0, required: 1 });
    }
    Ok(t as f64)
}

fn check_len(p: &[u64], q: &[u64]) -> Result<()> {
    if p.len() != q.len() {
        return Err(Error::Incompatible { reason: "count vectors have different lengths" });
    }
    Ok(())
}

/// Population stability index of `current` against `reference` counts.
pub fn psi(reference: &[u64], current: &[u64]) -> Result<f64> {
    check_len(reference, current)?;
    let (tp, tq) = (total(reference, "psi")?, total(current, "psi")?);
    let share = |c: u64, t: f64| if c == 0 { PSI_EPSILON } else { c as f64 / t };
    Ok(reference
        .iter()
        .zip(current)
        .map(|(&p, &q)| {
            let (p, q) = (share(p, tp), share(q, tq));
            (q - p) * (q / p).ln()
        })
        .sum())
}

/// `x ln(x / y)` with `0 ln 0 = 0`, as `scipy.special.rel_entr` for x, y ≥ 0.
#[inline]
fn rel_entr(x: f64, y: f64) -> f64 {
    if x == 0.0 {
        0.0
    } else {
        x * (x / y).ln()
    }
}

/// Jensen–Shannon distance in base 2 (in [0, 1]).
pub fn jensen_shannon(reference: &[u64], current: &[u64]) -> Result<f64> {
    check_len(reference, current)?;
    let (tp, tq) = (total(reference, "jensen_shannon")?, total(current, "jensen_shannon")?);
    let (mut left, mut right) = (0.0, 0.0);
    for (&p, &q) in reference.iter().zip(current) {
        let (p, q) = (p as f64 / tp, q as f64 / tq);
        let m = (p + q) / 2.0;
        left += rel_entr(p, m);
        right += rel_entr(q, m);
    }
    let js = (left + right) / std::f64::consts::LN_2;
    Ok((js / 2.0).max(0.0).sqrt())
}

/// Hellinger distance (in [0, 1]).
pub fn hellinger(reference: &[u64], current: &[u64]) -> Result<f64> {
    check_len(reference, current)?;
    let (tp, tq) = (total(reference, "hellinger")?, total(current, "hellinger")?);
    // 1 − Σ sqrt(p q) = ½ Σ (sqrt p − sqrt q)² when both shares sum to one;
    // the right-hand form has no cancellation, so identical distributions give
    // exactly 0 and small distances keep their relative precision.
    let half_sq: f64 = reference
        .iter()
        .zip(current)
        .map(|(&p, &q)| {
            let d = (p as f64 / tp).sqrt() - (q as f64 / tq).sqrt();
            d * d
        })
        .sum();
    Ok((half_sq / 2.0).sqrt())
}

/// Largest absolute difference of shares.
pub fn l_infinity(reference: &[u64], current: &[u64]) -> Result<f64> {
    check_len(reference, current)?;
    let (tp, tq) = (total(reference, "l_infinity")?, total(current, "l_infinity")?);
    Ok(reference.iter().zip(current).map(|(&p, &q)| (p as f64 / tp - q as f64 / tq).abs()).fold(0.0, f64::max))
}

/// First Wasserstein distance between two ascending, finite samples, as
/// `scipy.stats.wasserstein_distance`: the integral of |F − G| over the pooled
/// support, computed in one merge pass.
pub fn wasserstein_sorted(reference: &[f64], current: &[f64]) -> Result<f64> {
    if reference.is_empty() || current.is_empty() {
        let available = reference.len().min(current.len()) as u64;
        return Err(Error::InsufficientData { statistic: "wasserstein", available, required: 1 });
    }
    let (n, m) = (reference.len(), current.len());
    let (nf, mf) = (n as f64, m as f64);
    let (mut i, mut j) = (0usize, 0usize);
    // Walk the pooled sorted values; between consecutive pooled values x_k and
    // x_{k+1}, F and G are the shares of each sample <= x_k.
    let mut prev = reference[0].min(current[0]);
    let mut sum = 0.0;
    while i < n || j < m {
        let x = match (reference.get(i), current.get(j)) {
            (Some(&a), Some(&b)) => a.min(b),
            (Some(&a), None) => a,
            (None, Some(&b)) => b,
            (None, None) => break,
        };
        sum += (i as f64 / nf - j as f64 / mf).abs() * (x - prev);
        while i < n && reference[i] <= x {
            i += 1;
        }
        while j < m && current[j] <= x {
            j += 1;
        }
        prev = x;
    }
    Ok(sum)
}

/// As [`wasserstein_sorted`] for unsorted samples; non-finite values are dropped.
pub fn wasserstein(reference: &[f64], current: &[f64]) -> Result<f64> {
    let sorted = |s: &[f64]| {
        let mut v: Vec<f64> = s.iter().copied().filter(|x| x.is_finite()).collect();
        v.sort_unstable_by(f64::total_cmp);
        v
    };
    wasserstein_sorted(&sorted(reference), &sorted(current))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_distributions_are_zero() {
        let c = [10, 20, 30];
        assert_eq!(psi(&c, &c).unwrap(), 0.0);
        assert!(jensen_shannon(&c, &c).unwrap().abs() < 1e-12);
        assert_eq!(hellinger(&c, &c).unwrap(), 0.0);
        assert_eq!(l_infinity(&c, &c).unwrap(), 0.0);
    }

    #[test]
    fn empty_is_insufficient_not_nan() {
        assert!(matches!(psi(&[0, 0], &[1, 2]), Err(Error::InsufficientData { .. })));
        assert!(matches!(wasserstein(&[], &[1.0]), Err(Error::InsufficientData { .. })));
        assert!(matches!(psi(&[1], &[1, 2]), Err(Error::Incompatible { .. })));
    }

    #[test]
    fn wasserstein_simple() {
        // scipy.stats.wasserstein_distance([0, 1, 3], [5, 6, 8]) == 5.0
        assert!((wasserstein(&[0.0, 1.0, 3.0], &[5.0, 6.0, 8.0]).unwrap() - 5.0).abs() < 1e-12);
        // scipy: wasserstein_distance([0, 1], [0, 1, 1, 1]) == 0.25
        assert!((wasserstein(&[0.0, 1.0], &[0.0, 1.0, 1.0, 1.0]).unwrap() - 0.25).abs() < 1e-12);
    }
}
