//! Reference-quantile bin edges, as numpy computes them.
//!
//! Interior edges are `unique(numpy.quantile(reference, linspace(0, 1, bins + 1)[1:-1]))`
//! with numpy's default linear interpolation. Bin `i` holds
//! `edges[i - 1] < x <= edges[i]`; the first and last bins are open to ∓∞, so
//! there are `edges.len() + 1` bins and every finite value falls into one.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Sorted, de-duplicated interior bin edges.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Vec<f64>", into = "Vec<f64>")]
pub struct BinEdges {
    edges: Vec<f64>,
}

impl BinEdges {
    /// Builds edges from explicit interior edges (must be finite and strictly increasing).
    pub fn new(edges: Vec<f64>) -> Result<Self> {
        if edges.iter().any(|e| !e.is_finite()) {
            return Err(Error::InvalidParameter { name: "edges", reason: "bin edges must be finite" });
        }
        if edges.windows(2).any(|w| w[0] >= w[1]) {
            return Err(Error::InvalidParameter { name: "edges", reason: "bin edges must be strictly increasing" });
        }
        Ok(Self { edges })
    }

    /// Edges at the reference's quantiles for `bins` bins. Non-finite values of
    /// `reference` are ignored; at least one finite value is required.
    pub fn from_reference(reference: &[f64], bins: usize) -> Result<Self> {
        let mut sorted: Vec<f64> = reference.iter().copied().filter(|x| x.is_finite()).collect();
        sorted.sort_unstable_by(f64::total_cmp);
        Self::from_sorted_reference(&sorted, bins)
    }

    /// As [`BinEdges::from_reference`] for an ascending, finite reference.
    pub fn from_sorted_reference(sorted: &[f64], bins: usize) -> Result<Self> {
        if bins == 0 {
            return Err(Error::InvalidParameter { name: "bins", reason: "at least one bin is required" });
        }
        if sorted.is_empty() {
            return Err(Error::InsufficientData { statistic: "quantile_edges", available: 0, required: 1 });
        }
        // numpy.linspace(0, 1, bins + 1): i * (1 / bins), endpoints exact.
        let step = 1.0 / bins as f64;
        let mut edges: Vec<f64> = (1..bins).map(|i| quantile_linear(sorted, i as f64 * step)).collect();
        edges.dedup();
        Ok(Self { edges })
    }

    /// The interior edges.
    pub fn edges(&self) -> &[f64] {
        &self.edges
    }

    /// Number of bins (`edges + 1`).
    pub fn bins(&self) -> usize {
        self.edges.len() + 1
    }

    /// The bin of a finite value: the number of edges strictly below it.
    ///
    /// Hot path: a branchless binary search, O(log B), no allocation.
    #[inline]
    pub fn bin_index(&self, x: f64) -> usize {
        let edges = self.edges.as_slice();
        if edges.is_empty() {
            return 0;
        }
        let mut base = 0usize;
        let mut size = edges.len();
        while size > 1 {
            let half = size / 2;
            let mid = base + half;
            // `mid < edges.len()` always holds: base + half < base + size <= len.
            base = if edges[mid] < x { mid } else { base };
            size -= half;
        }
        base + usize::from(edges[base] < x)
    }
}

impl TryFrom<Vec<f64>> for BinEdges {
    type Error = Error;
    fn try_from(edges: Vec<f64>) -> Result<Self> {
        Self::new(edges)
    }
}

impl From<BinEdges> for Vec<f64> {
    fn from(e: BinEdges) -> Self {
        e.edges
    }
}

/// numpy.quantile(sorted, q) with the default `linear` method, bit-for-bit:
/// virtual index `(n - 1) q` and numpy's two-sided `_lerp`.
pub fn quantile_linear(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    debug_assert!(n > 0);
    let virtual_index = (n - 1) as f64 * q;
    let below = virtual_index.floor();
    let lo = (below.max(0.0) as usize).min(n - 1);
    let hi = (lo + 1).min(n - 1);
    let t = virtual_index - below;
    let (a, b) = (sorted[lo], sorted[hi]);
    let diff = b - a;
    if t >= 0.5 {
        b - diff * (1.0 - t)
    } else {
        a + diff * t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bin_index_matches_linear_scan() {
        let edges = BinEdges::new(vec![-1.0, 0.0, 0.5, 2.0, 3.0]).unwrap();
        for x in [-5.0, -1.0, -0.999, 0.0, 0.1, 0.5, 1.0, 2.0, 2.5, 3.0, 3.0001, 1e9] {
            let expected = edges.edges().iter().filter(|&&e| e < x).count();
            assert_eq!(edges.bin_index(x), expected, "x = {x}");
        }
        let empty = BinEdges::new(vec![]).unwrap();
        assert_eq!(empty.bin_index(3.0), 0);
        assert_eq!(empty.bins(), 1);
    }

    #[test]
    fn rejects_bad_edges() {
        assert!(BinEdges::new(vec![1.0, 1.0]).is_err());
        assert!(BinEdges::new(vec![f64::NAN]).is_err());
        assert!(BinEdges::from_reference(&[f64::NAN], 10).is_err());
        assert!(BinEdges::from_reference(&[1.0], 0).is_err());
    }

    #[test]
    fn constant_reference_has_one_edge() {
        let e = BinEdges::from_reference(&[3.0; 50], 10).unwrap();
        assert_eq!(e.edges(), &[3.0]);
        assert_eq!(e.bins(), 2);
    }
}
