//! The Driftwatch engine: configuration, decoding, sharded sliding windows,
//! evaluation and drift state.
//!
//! ```text
//! input ─► reader (batches of lines) ─► shards (decode, type-check) ─► window stage (in input order)
//!            JSONL / CSV / Parquet        crossbeam, bounded            panes → windows → evaluate → drift state
//!                                                                          │                       │
//!                                                                    evaluations.jsonl       drift events
//! ```
#![warn(missing_docs)]

pub mod batch;
pub mod config;
pub mod decode;
pub mod error;
pub mod labels;
pub mod live;
pub mod memory;
pub mod metrics;
pub mod model;
pub mod pipeline;
pub mod quality;
pub mod source;
pub mod window;

pub use error::{Error, Result};

/// The version of this build.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
