//! The one error type of this crate.

/// What can go wrong when computing a statistic or handling a sketch.
///
/// `InsufficientData` is an expected outcome (a window that has not filled
/// yet); the others are caller errors. None of them is ever produced by a
/// panic on bad input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A sample or window holds fewer valid values than the statistic needs.
    #[error("insufficient data for {statistic}: {available} valid values, at least {required} required")]
    InsufficientData {
        /// The statistic that was asked for.
        statistic: &'static str,
        /// Valid (finite) values available.
        available: u64,
        /// Values the statistic needs.
        required: u64,
    },
    /// A parameter is outside its domain (for example zero bins).
    #[error("invalid parameter {name}: {reason}")]
    InvalidParameter {
        /// The parameter's name.
        name: &'static str,
        /// What was expected.
        reason: &'static str,
    },
    /// Two sketches cannot be combined (different edges, accuracy or capacity).
    #[error("incompatible sketches: {reason}")]
    Incompatible {
        /// Why they do not fit together.
        reason: &'static str,
    },
    /// `retract` was asked to remove a value the sketch does not hold.
    #[error("retract of a value that {kind} does not hold")]
    NotHeld {
        /// The sketch kind.
        kind: &'static str,
    },
    /// An exact store would exceed its configured capacity.
    #[error("exact store capacity exceeded: {len} values held, capacity {capacity}")]
    CapacityExceeded {
        /// Values held now.
        len: usize,
        /// The configured capacity.
        capacity: usize,
    },
    /// A snapshot was written by a format version this build cannot read.
    #[error("unsupported snapshot version {found} for {kind} (this build reads version {supported})")]
    SnapshotVersion {
        /// The sketch kind.
        kind: &'static str,
        /// The version in the snapshot.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// A snapshot could not be decoded, or decodes to an inconsistent state.
    #[error("corrupt snapshot for {kind}: {reason}")]
    CorruptSnapshot {
        /// The sketch kind.
        kind: &'static str,
        /// What is inconsistent.
        reason: &'static str,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
