//! The Driftwatch engine: configuration, decoding, sharded sliding windows,
//! evaluation and drift state.
//!
//! ```text
//! sources ─► batches of raw events ─► shards (decode, type-check) ─► window stage (in input order)
//!  files, Kafka (connectors)           crossbeam, bounded            panes → windows → evaluate → drift state
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
mod stage;
pub mod window;

pub use error::{Error, Result};

/// The version of this build.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
