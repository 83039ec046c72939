//! Reference-quantile bin edges, as numpy computes them.
//!
//! Interior edges are `unique(numpy.quantile(reference, linspace(0, 1, bins + 1)[1:-1]))`
//! with numpy's default linear interpolation. Bin `i` holds
//! `edges[i - 1] < x <= edges[i]`; the first and last bins are open to ∓∞, so
//! there are `edges.len() + 1` bins and every finite value falls into one.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Sorted, de-duplicated interior bin edges.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "Vec<f64>", into = "Vec<f64>")]
pub struct BinEdges {
    edges: Vec<f64>,
    /// `guide[c]` = number of edges whose grid cell is below `c`: a lower
    /// bound of the bin of any value in cell `c` (see [`BinEdges::bin_index`]).
    guide: Vec<u32>,
    /// `edges[0]`, `edges[last]` and cells per unit, cached for the hot path.
    lo: f64,
    hi: f64,
    scale: f64,
}

/// Grid cells per interior edge: enough that a cell rarely holds more than
/// one edge, even for skewed quantiles.
const CELLS_PER_EDGE: usize = 4;

impl BinEdges {
    /// Builds edges from explicit interior edges (must be finite and strictly increasing).
    pub fn new(edges: Vec<f64>) -> Result<Self> {
        if edges.iter().any(|e| !e.is_finite()) {
            return Err(Error::InvalidParameter { name: "edges", reason: "bin edges must be finite" });
        }
        if edges.windows(2).any(|w| w[0] >= w[1]) {
            return Err(Error::InvalidParameter { name: "edges", reason: "bin edges must be strictly increasing" });
        }
        Ok(Self::with_guide(edges))
    }

    fn with_guide(edges: Vec<f64>) -> Self {
        let (lo, hi) = match (edges.first(), edges.last()) {
            (Some(&lo), Some(&hi)) => (lo, hi),
            _ => (0.0, 0.0),
        };
        let cells = (edges.len() * CELLS_PER_EDGE).clamp(1, 1 << 16);
        let scale = if hi > lo { cells as f64 / (hi - lo) } else { 0.0 };
        let cell = |x: f64| (((x - lo) * scale) as usize).min(cells - 1);
        let mut guide = vec![0u32; cells];
        // Count edges per cell, then prefix-sum into "edges in earlier cells".
        let mut per_cell = vec![0u32; cells];
        for &e in &edges {
            per_cell[cell(e)] += 1;
        }
        let mut below = 0u32;
        for (g, n) in guide.iter_mut().zip(&per_cell) {
            *g = below;
            below += n;
        }
        Self { edges, guide, lo, hi, scale }
    }

    /// Edges at the reference's quantiles for `bins` bins. Non-finite values of
    /// `reference` are ignored; at least one finite value is required.
    ///
    /// The same edges as [`BinEdges::from_sorted_reference`] on the sorted
    /// values, without sorting them: only the order statistics the quantiles
    /// interpolate between are put in place, by selection (O(n log bins)).
    pub fn from_reference(reference: &[f64], bins: usize) -> Result<Self> {
        let mut values: Vec<f64> = reference.iter().copied().filter(|x| x.is_finite()).collect();
        if bins > 0 && !values.is_empty() {
            let n = values.len();
            let mut ranks: Vec<usize> = edge_quantiles(bins)
                .flat_map(|q| {
                    let lo = quantile_ranks(n, q).0;
                    [lo, (lo + 1).min(n - 1)]
                })
                .collect();
            ranks.sort_unstable();
            ranks.dedup();
            select_ranks(&mut values, 0, &ranks);
        }
        Self::from_sorted_reference(&values, bins)
    }

    /// As [`BinEdges::from_reference`] for an ascending, finite reference.
    pub fn from_sorted_reference(sorted: &[f64], bins: usize) -> Result<Self> {
        if bins == 0 {
            return Err(Error::InvalidParameter { name: "bins", reason: "at least one bin is required" });
        }
        if sorted.is_empty() {
            return Err(Error::InsufficientData { statistic: "quantile_edges", available: 0, required: 1 });
        }
        let mut edges: Vec<f64> = edge_quantiles(bins).map(|q| quantile_linear(sorted, q)).collect();
        edges.dedup();
        Ok(Self::with_guide(edges))
    }

    /// Up to this many edges, [`BinEdges::bin_index`] counts every edge
    /// below the value instead of scanning from the grid's guess.
    const BRANCH_FREE_EDGES: usize = 16;

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
    /// Hot path. Up to 16 edges, a branch-free count of the edges below `x`.
    /// Beyond, O(1) expected: a uniform grid over `[edges[0], edges[last]]`
    /// gives a lower bound of the answer, and a short forward scan finishes.
    /// The cell map `(x − lo)·scale` is monotone in `x`, so an edge in an
    /// earlier cell than `x` is below `x` and one in a later cell is above it:
    /// the scan only visits the edges sharing `x`'s cell.
    #[inline]
    pub fn bin_index(&self, x: f64) -> usize {
        let edges = self.edges.as_slice();
        let n = edges.len();
        if n <= Self::BRANCH_FREE_EDGES {
            // Few edges (the default 10 bins has 9): count them all without a
            // branch, the outer bins included (a test for them mispredicts on
            // about a fifth of the values with quantile edges); the
            // data-dependent exit of the scan below would mispredict on most
            // values, and this is the per-value hot path.
            return edges.iter().map(|&e| usize::from(e < x)).sum();
        }
        // `x <= lo` (NaN too: callers filter non-finite values first).
        if x.partial_cmp(&self.lo) != Some(std::cmp::Ordering::Greater) {
            return 0;
        }
        if x > self.hi {
            return n;
        }
        let cell = (((x - self.lo) * self.scale) as usize).min(self.guide.len() - 1);
        let mut i = self.guide[cell] as usize;
        while i < n && edges[i] < x {
            i += 1;
        }
        i
    }
}

impl TryFrom<Vec<f64>> for BinEdges {
    type Error = Error;
    fn try_from(edges: Vec<f64>) -> Result<Self> {
        Self::new(edges)
    }
}

impl PartialEq for BinEdges {
    fn eq(&self, other: &Self) -> bool {
        self.edges == other.edges
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
    let (lo, t) = quantile_ranks(n, q);
    let hi = (lo + 1).min(n - 1);
    let (a, b) = (sorted[lo], sorted[hi]);
    let diff = b - a;
    if t >= 0.5 {
        b - diff * (1.0 - t)
    } else {
        a + diff * t
    }
}

/// The quantiles of the interior edges for `bins` bins, as
/// `numpy.linspace(0, 1, bins + 1)[1:-1]`: `i * (1 / bins)`.
fn edge_quantiles(bins: usize) -> impl Iterator<Item = f64> {
    let step = 1.0 / bins as f64;
    (1..bins).map(move |i| i as f64 * step)
}

/// The lower rank `quantile_linear` reads for `q` among `n` values (the
/// upper one is the next, within the values) and the weight between them.
fn quantile_ranks(n: usize, q: f64) -> (usize, f64) {
    let virtual_index = (n - 1) as f64 * q;
    let below = virtual_index.floor();
    ((below.max(0.0) as usize).min(n - 1), virtual_index - below)
}

/// Puts the order statistics of `ranks` (ascending, within
/// `offset..offset + values.len()`) at their places in `values`, whose
/// first element has rank `offset`: the median rank by selection, then each
/// side with the ranks it holds.
fn select_ranks(values: &mut [f64], offset: usize, ranks: &[usize]) {
    if ranks.is_empty() {
        return;
    }
    let mid = ranks.len() / 2;
    let k = ranks[mid] - offset;
    let (below, _, above) = values.select_nth_unstable_by(k, f64::total_cmp);
    select_ranks(below, offset, &ranks[..mid]);
    select_ranks(above, offset + k + 1, &ranks[mid + 1..]);
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
    fn grid_lookup_matches_linear_scan_on_skewed_edges() {
        // Edges bunched near zero with a far outlier: many edges share a cell.
        let mut edges: Vec<f64> = (1..60).map(|i| (i as f64 / 7.0).exp() * 1e-3).collect();
        edges.push(1e6);
        let e = BinEdges::new(edges).unwrap();
        let mut x = -1.0f64;
        while x < 2e6 {
            let expected = e.edges().iter().filter(|&&v| v < x).count();
            assert_eq!(e.bin_index(x), expected, "x = {x}");
            x = if x < 1.0 { x + 1e-3 } else { x * 1.01 };
        }
        for &v in e.edges() {
            assert_eq!(e.bin_index(v), e.edges().iter().filter(|&&w| w < v).count());
        }
    }

    #[test]
    fn rejects_bad_edges() {
        assert!(BinEdges::new(vec![1.0, 1.0]).is_err());
        assert!(BinEdges::new(vec![f64::NAN]).is_err());
        assert!(BinEdges::from_reference(&[f64::NAN], 10).is_err());
        assert!(BinEdges::from_reference(&[1.0], 0).is_err());
    }

    #[test]
    fn edges_by_selection_equal_edges_of_the_sorted_reference() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for case in 0..300 {
            let n = 1 + (next() % 3000) as usize;
            let distinct = 1 + next() % 50;
            let reference: Vec<f64> = (0..n)
                .map(|_| match next() % 40 {
                    0 => f64::NAN,
                    1 => -0.0,
                    2 => 0.0,
                    _ if case % 2 == 0 => (next() % distinct) as f64 - 7.0,
                    _ => (next() as f64 / u64::MAX as f64 - 0.3) * 1e3,
                })
                .collect();
            let bins = 1 + (next() % 40) as usize;
            let mut sorted: Vec<f64> = reference.iter().copied().filter(|x| x.is_finite()).collect();
            sorted.sort_unstable_by(f64::total_cmp);
            let want = BinEdges::from_sorted_reference(&sorted, bins).unwrap();
            let got = BinEdges::from_reference(&reference, bins).unwrap();
            let bits = |e: &BinEdges| e.edges().iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "case {case}: n = {n}, bins = {bins}");
        }
    }

    #[test]
    fn constant_reference_has_one_edge() {
        let e = BinEdges::from_reference(&[3.0; 50], 10).unwrap();
        assert_eq!(e.edges(), &[3.0]);
        assert_eq!(e.bins(), 2);
    }
}
