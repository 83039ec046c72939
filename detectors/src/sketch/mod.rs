//! Mergeable, retractable, bounded sketches.
//!
//! Modelled on DataFusion's `Accumulator`: a sketch is updated value by value
//! (the hot path), retracts values that leave a sliding window, merges with a
//! sketch of the same shape (from another shard, pane or machine), reports the
//! bytes it holds, and snapshots to a versioned serde form for checkpoints.
//!
//! | sketch | holds | memory bound | retract |
//! |---|---|---|---|
//! | [`FixedHistogram`] | counts over reference edges | `bins` counters | exact |
//! | [`ExactSample`] | raw finite values | its capacity | exact |
//! | [`LogSketch`] | log-spaced buckets (relative accuracy α) | `max_buckets` per sign | exact |
//! | [`CategoryCounts`] | counts per category, capped, overflow in `__other__` | `max_categories` | exact |
//! | [`Moments`] | count, missing, invalid, min, max, mean, variance | constant | count, mean, variance (min/max are extremes since the last clear) |
//!
//! Non-finite values are never binned: every numeric sketch counts them as
//! invalid and otherwise ignores them.

mod categorical;
mod exact;
mod histogram;
mod log_sketch;
mod moments;

use serde::{de::DeserializeOwned, Deserialize, Serialize};

pub use categorical::{CategoryCounts, OTHER_CATEGORY};
pub use exact::{sort_total, ExactSample};
pub use histogram::FixedHistogram;
pub use log_sketch::{LogSketch, SketchKs};
pub use moments::Moments;

use crate::error::{Error, Result};

/// What every sketch can do.
pub trait Sketch: Clone + Serialize + DeserializeOwned {
    /// What one update takes (`f64` for numeric sketches, `&str` for categories).
    type Item<'a>;
    /// The kind written into snapshots.
    const KIND: &'static str;
    /// The snapshot format version this build writes and reads.
    const VERSION: u32;

    /// Adds one value. Hot path: no allocation in the steady state.
    fn update(&mut self, item: Self::Item<'_>);
    /// Removes one value previously added; `Error::NotHeld` if it was not.
    fn retract(&mut self, item: Self::Item<'_>) -> Result<()>;
    /// Adds everything `other` holds; `Error::Incompatible` if the shapes differ.
    fn merge(&mut self, other: &Self) -> Result<()>;
    /// Removes everything `other` holds, which must have been merged in
    /// before (a pane leaving a sliding window); `Error::NotHeld` otherwise,
    /// in which case `self` may be partly changed and should be rebuilt.
    fn unmerge(&mut self, other: &Self) -> Result<()>;
    /// Valid values held.
    fn count(&self) -> u64;
    /// Heap and inline bytes held, for memory accounting.
    fn size_bytes(&self) -> usize;
    /// Forgets every value, keeping the shape (edges, capacity, accuracy).
    fn clear(&mut self);
    /// Checks the invariants of a deserialized state.
    fn validate(&self) -> Result<()>;

    /// A versioned, serializable view of the state.
    fn snapshot(&self) -> Snapshot<&Self> {
        Snapshot { kind: Self::KIND.to_owned(), version: Self::VERSION, state: self }
    }

    /// Rebuilds a sketch from a snapshot, rejecting other kinds, other
    /// versions and inconsistent states.
    fn restore(snapshot: Snapshot<Self>) -> Result<Self> {
        if snapshot.kind != Self::KIND {
            return Err(Error::CorruptSnapshot { kind: Self::KIND, reason: "snapshot is of another sketch kind" });
        }
        if snapshot.version != Self::VERSION {
            return Err(Error::SnapshotVersion { kind: Self::KIND, found: snapshot.version, supported: Self::VERSION });
        }
        snapshot.state.validate()?;
        Ok(snapshot.state)
    }
}

/// A sketch's state with its kind and format version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot<S> {
    /// The sketch kind ([`Sketch::KIND`]).
    pub kind: String,
    /// The format version ([`Sketch::VERSION`]).
    pub version: u32,
    /// The state.
    pub state: S,
}
