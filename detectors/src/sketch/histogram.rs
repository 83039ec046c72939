//! Counts over fixed reference edges: exact PSI, Jensen–Shannon and Hellinger.

use serde::{Deserialize, Serialize};

use super::Sketch;
use crate::binning::BinEdges;
use crate::distance;
use crate::error::{Error, Result};

/// A histogram over fixed interior edges (usually the reference's quantiles).
///
/// `update` is a branchless binary search and one increment: O(log B).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixedHistogram {
    edges: BinEdges,
    counts: Vec<u64>,
    total: u64,
    invalid: u64,
}

impl FixedHistogram {
    /// An empty histogram over `edges`.
    pub fn new(edges: BinEdges) -> Self {
        let counts = vec![0; edges.bins()];
        Self { edges, counts, total: 0, invalid: 0 }
    }

    /// A histogram over `edges` holding `values`.
    pub fn from_values(edges: BinEdges, values: &[f64]) -> Self {
        let mut h = Self::new(edges);
        h.update_slice(values);
        h
    }

    /// Adds every value of a slice (hot path).
    #[inline]
    pub fn update_slice(&mut self, values: &[f64]) {
        for &x in values {
            self.update(x);
        }
    }

    /// The edges.
    pub fn edges(&self) -> &BinEdges {
        &self.edges
    }

    /// Counts per bin.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// Non-finite values seen (not binned).
    pub fn invalid(&self) -> u64 {
        self.invalid
    }

    fn same_edges(&self, other: &Self) -> Result<()> {
        if self.edges != other.edges {
            return Err(Error::Incompatible { reason: "histograms have different bin edges" });
        }
        Ok(())
    }

    /// PSI of `current` against `self` as the reference.
    pub fn psi(&self, current: &Self) -> Result<f64> {
        self.same_edges(current)?;
        distance::psi(&self.counts, &current.counts)
    }

    /// Jensen–Shannon distance (base 2) of `current` against `self`.
    pub fn jensen_shannon(&self, current: &Self) -> Result<f64> {
        self.same_edges(current)?;
        distance::jensen_shannon(&self.counts, &current.counts)
    }

    /// Hellinger distance of `current` against `self`.
    pub fn hellinger(&self, current: &Self) -> Result<f64> {
        self.same_edges(current)?;
        distance::hellinger(&self.counts, &current.counts)
    }
}

impl Sketch for FixedHistogram {
    type Item<'a> = f64;
    const KIND: &'static str = "fixed_histogram";
    const VERSION: u32 = 1;

    #[inline]
    fn update(&mut self, x: f64) {
        if !x.is_finite() {
            self.invalid += 1;
            return;
        }
        let i = self.edges.bin_index(x);
        // bin_index < bins == counts.len() by construction (and `validate`).
        if let Some(c) = self.counts.get_mut(i) {
            *c += 1;
            self.total += 1;
        }
    }

    fn retract(&mut self, x: f64) -> Result<()> {
        if !x.is_finite() {
            self.invalid = self.invalid.checked_sub(1).ok_or(Error::NotHeld { kind: Self::KIND })?;
            return Ok(());
        }
        let i = self.edges.bin_index(x);
        match self.counts.get_mut(i) {
            Some(c) if *c > 0 => {
                *c -= 1;
                self.total -= 1;
                Ok(())
            }
            _ => Err(Error::NotHeld { kind: Self::KIND }),
        }
    }

    fn merge(&mut self, other: &Self) -> Result<()> {
        self.same_edges(other)?;
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.invalid += other.invalid;
        Ok(())
    }

    fn unmerge(&mut self, other: &Self) -> Result<()> {
        self.same_edges(other)?;
        if self.counts.iter().zip(&other.counts).any(|(a, b)| a < b) || self.invalid < other.invalid {
            return Err(Error::NotHeld { kind: Self::KIND });
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a -= b;
        }
        self.total -= other.total;
        self.invalid -= other.invalid;
        Ok(())
    }

    fn count(&self) -> u64 {
        self.total
    }

    fn size_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.counts.capacity() * 8 + self.edges.edges().len() * 8
    }

    fn clear(&mut self) {
        self.counts.iter_mut().for_each(|c| *c = 0);
        self.total = 0;
        self.invalid = 0;
    }

    fn validate(&self) -> Result<()> {
        if self.counts.len() != self.edges.bins() {
            return Err(Error::CorruptSnapshot { kind: Self::KIND, reason: "counts do not match the edges" });
        }
        if self.counts.iter().sum::<u64>() != self.total {
            return Err(Error::CorruptSnapshot { kind: Self::KIND, reason: "total does not match the counts" });
        }
        Ok(())
    }
}
