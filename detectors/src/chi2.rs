//! Chi-square test of homogeneity on a 2 × K table.
//!
//! As `scipy.stats.chi2_contingency(table, correction=False)` where the rows are
//! the reference and current counts over the categories seen in either;
//! categories with a zero total are dropped first.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ChiSquared, ContinuousCDF};

use crate::error::{Error, Result};

/// The outcome of a chi-square test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Chi2Result {
    /// Pearson's statistic.
    pub statistic: f64,
    /// Degrees of freedom, `K − 1` over the non-empty categories.
    pub dof: u64,
    /// Upper-tail probability of the statistic.
    pub p_value: f64,
}

/// Chi-square homogeneity test of two count vectors over the same categories.
pub fn chi2_homogeneity(reference: &[u64], current: &[u64]) -> Result<Chi2Result> {
    if reference.len() != current.len() {
        return Err(Error::Incompatible { reason: "count vectors have different lengths" });
    }
    let (r, c): (u64, u64) = (reference.iter().sum(), current.iter().sum());
    if r == 0 || c == 0 {
        return Err(Error::InsufficientData { statistic: "chi2", available: r.min(c), required: 1 });
    }
    let n = (r + c) as f64;
    let (rf, cf) = (r as f64, c as f64);
    let mut statistic = 0.0;
    let mut k = 0u64;
    for (&a, &b) in reference.iter().zip(current) {
        let col = (a + b) as f64;
        if col == 0.0 {
            continue;
        }
        k += 1;
        let ea = rf * col / n;
        let eb = cf * col / n;
        let (da, db) = (a as f64 - ea, b as f64 - eb);
        statistic += da * da / ea + db * db / eb;
    }
    let dof = k.saturating_sub(1);
    if dof == 0 {
        // One category: the table carries no information (SciPy: statistic 0, p 1).
        return Ok(Chi2Result { statistic: 0.0, dof, p_value: 1.0 });
    }
    Ok(Chi2Result { statistic, dof, p_value: chi2_sf(statistic, dof) })
}

/// Upper tail of the chi-square distribution with `dof` degrees of freedom.
pub fn chi2_sf(x: f64, dof: u64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x <= 0.0 {
        return 1.0;
    }
    match ChiSquared::new(dof as f64) {
        Ok(d) => d.sf(x).clamp(0.0, 1.0),
        Err(_) => f64::NAN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_category_is_defined() {
        let r = chi2_homogeneity(&[10, 0], &[5, 0]).unwrap();
        assert_eq!((r.statistic, r.dof, r.p_value), (0.0, 0, 1.0));
    }

    #[test]
    fn empty_side_is_insufficient() {
        assert!(matches!(chi2_homogeneity(&[0, 0], &[1, 1]), Err(Error::InsufficientData { .. })));
    }
}
