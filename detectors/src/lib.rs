//! Pure drift statistics and mergeable, retractable sketches.
//!
//! `driftwatch-detectors` is the math of Driftwatch: it knows nothing of
//! Kafka, files, threads or metrics. The engine feeds values into sketches,
//! merges the partial sketches of its shards (or panes, or machines), and asks
//! this crate for statistics comparing a window with a reference.
//!
//! ```text
//!  values ──► sketch (update / retract) ──► merge (shards, panes) ──► statistic
//!             FixedHistogram                                          psi, jensen_shannon, hellinger
//!             ExactSample                                             ks (exact, SciPy semantics), wasserstein
//!             LogSketch (bounded)                                     ks with a stated error bound
//!             CategoryCounts (capped)                                 chi2, psi, jensen_shannon, hellinger, l_infinity
//!             Moments                                                 count, missing, invalid, min, max, mean, variance
//! ```
//!
//! Every statistic matches SciPy 1.14 / scikit-learn 1.9 on the reference
//! values in `tests/fixtures/` (statistics within 1e-9 relative, p-values
//! within 1e-6). NaN and infinities are counted as invalid and never binned;
//! too little data gives [`Error::InsufficientData`], never NaN.
//!
//! # Example
//!
//! ```
//! use driftwatch_detectors::{ks::{ks_2samp, KsMethod}, binning::BinEdges, sketch::{FixedHistogram, Sketch}};
//!
//! let reference: Vec<f64> = (0..1000).map(|i| (i as f64 * 0.37).sin()).collect();
//! let current: Vec<f64> = reference.iter().map(|x| x + 0.5).collect();
//!
//! // Exact two-sample KS, as scipy.stats.ks_2samp.
//! let ks = ks_2samp(&reference, &current, KsMethod::Auto).unwrap();
//! assert!(ks.p_value < 1e-6);
//!
//! // PSI from fixed-edge histograms over the reference's deciles.
//! let edges = BinEdges::from_reference(&reference, 10).unwrap();
//! let mut ref_hist = FixedHistogram::new(edges.clone());
//! let mut cur_hist = FixedHistogram::new(edges);
//! reference.iter().for_each(|&x| ref_hist.update(x));
//! current.iter().for_each(|&x| cur_hist.update(x));
//! let psi = ref_hist.psi(&cur_hist).unwrap();
//! assert!(psi > 0.2);
//! ```
#![warn(missing_docs)]

pub mod binning;
pub mod categorical;
pub mod cbpe;
pub mod chi2;
pub mod distance;
pub mod error;
pub mod feature;
pub mod kolmogorov;
pub mod ks;
pub mod quality;
pub mod sketch;

pub use error::{Error, Result};

/// The README's Rust examples run as doctests, so they cannot go stale.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// Helpers shared by the unit tests.
#[cfg(test)]
pub(crate) mod testing {
    /// A seeded xorshift64 generator: cheap, reproducible test data without
    /// a dependency.
    pub(crate) fn xorshift(seed: u64) -> impl FnMut() -> u64 {
        let mut state = seed;
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        }
    }
}
