//! The Driftwatch engine: configuration, decoding, sharded sliding windows,
//! evaluation and drift state.
//!
//! This crate is being built in the engine issue; today it holds the
//! `driftwatch` binary's entry point, which reports its version and the
//! commands available in this build.
#![warn(missing_docs)]

/// The version of this build.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
