//! Drift statistics for a categorical feature.
//!
//! Over the categories seen in either sample (new and vanished categories
//! included, `__other__` counted as one category): chi-square homogeneity
//! test, PSI, Jensen–Shannon distance (base 2), Hellinger and L∞.

use serde::{Deserialize, Serialize};

use crate::chi2::{chi2_homogeneity, Chi2Result};
use crate::distance;
use crate::error::Result;
use crate::sketch::CategoryCounts;

/// Every categorical drift statistic of one window against a reference.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CategoricalDrift {
    /// Chi-square test of homogeneity.
    pub chi2: Chi2Result,
    /// Population stability index.
    pub psi: f64,
    /// Jensen–Shannon distance, base 2.
    pub jensen_shannon: f64,
    /// Hellinger distance.
    pub hellinger: f64,
    /// Largest difference of shares.
    pub l_infinity: f64,
}

/// All statistics from two count vectors aligned over the same categories.
pub fn categorical_drift_counts(reference: &[u64], current: &[u64]) -> Result<CategoricalDrift> {
    Ok(CategoricalDrift {
        chi2: chi2_homogeneity(reference, current)?,
        psi: distance::psi(reference, current)?,
        jensen_shannon: distance::jensen_shannon(reference, current)?,
        hellinger: distance::hellinger(reference, current)?,
        l_infinity: distance::l_infinity(reference, current)?,
    })
}

/// Categories counted fewer than this many times in reference and window
/// together are compared as one pooled category.
///
/// Plug-in distances over sparse counts are biased upward: a window of 1 000
/// events over 100 000 equally likely names shares few names with its
/// reference and is far from it by every distance although nothing changed,
/// and the chi-square approximation fails on such cells too. Pooling the
/// rare cells (the usual remedy for a contingency table) leaves what can be
/// compared: a name that gains or loses real mass still stands alone.
pub const MIN_CATEGORY_COUNT: u64 = 5;

/// All statistics of `current` against `reference` over the union of their
/// categories, with the categories counted fewer than [`MIN_CATEGORY_COUNT`]
/// times in both together pooled into one.
pub fn categorical_drift(reference: &CategoryCounts, current: &CategoryCounts) -> Result<CategoricalDrift> {
    let (_, r, c) = reference.aligned(current);
    let (r, c) = pool_rare(r, c, MIN_CATEGORY_COUNT);
    categorical_drift_counts(&r, &c)
}

/// Aligned counts with every category whose total is below `min` merged into
/// one last category (none when no category is rare).
pub fn pool_rare(reference: Vec<u64>, current: Vec<u64>, min: u64) -> (Vec<u64>, Vec<u64>) {
    if reference.iter().zip(&current).all(|(a, b)| a + b >= min) {
        return (reference, current);
    }
    let (mut r, mut c) = (Vec::with_capacity(reference.len()), Vec::with_capacity(current.len()));
    let (mut rare_r, mut rare_c) = (0, 0);
    for (a, b) in reference.into_iter().zip(current) {
        if a + b >= min {
            r.push(a);
            c.push(b);
        } else {
            rare_r += a;
            rare_c += b;
        }
    }
    r.push(rare_r);
    c.push(rare_c);
    (r, c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rare_categories_are_pooled_and_common_ones_kept() {
        assert_eq!(pool_rare(vec![10, 1, 2], vec![10, 3, 1], 5), (vec![10, 3], vec![10, 4]));
        assert_eq!(pool_rare(vec![10, 5], vec![0, 0], 5), (vec![10, 5], vec![0, 0]));
        assert_eq!(pool_rare(vec![1, 1], vec![1, 1], 5), (vec![2], vec![2]));
    }
}
