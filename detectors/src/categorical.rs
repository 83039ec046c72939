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

/// All statistics of `current` against `reference` over the union of their categories.
pub fn categorical_drift(reference: &CategoryCounts, current: &CategoryCounts) -> Result<CategoricalDrift> {
    let (_, r, c) = reference.aligned(current);
    categorical_drift_counts(&r, &c)
}
