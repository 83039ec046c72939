//! The engine's error type.

use std::path::{Path, PathBuf};

/// What can stop an engine command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// A reference file or query failed.
    #[error(transparent)]
    Source(#[from] driftwatch_connectors::table::SourceError),
    /// The decoder specification is inconsistent (a bug in config validation).
    #[error("internal: decoder specification: {0}")]
    DecodeSpec(#[from] crate::decode::DecodeSpecError),
    /// A statistic or sketch operation failed on a broken invariant.
    #[error("internal: sketch: {0}")]
    Sketch(#[from] driftwatch_detectors::Error),
    /// A reference cannot be built or does not fit the configuration.
    #[error("reference of model {model:?}: {message}")]
    Reference {
        /// The model.
        model: String,
        /// What is wrong.
        message: String,
    },
    /// A profile file cannot be read or written.
    #[error("profile {}: {message}", path.display())]
    Profile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Reading input or writing output failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A connector could not start (Kafka client, HTTP endpoint, sink).
    #[error(transparent)]
    Connector(#[from] driftwatch_connectors::Error),
    /// Metric registration failed (a duplicate name is a bug).
    #[error("internal: metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// `driftwatch run` without a source, or a bad runtime option.
    #[error("{0}")]
    Usage(String),
    /// Saved state cannot be written, or a snapshot does not fit this build or configuration.
    #[error("state: {0}")]
    State(String),
    /// A worker thread stopped unexpectedly (a bug).
    #[error("internal: {0}")]
    Internal(String),
}

impl Error {
    /// An I/O error on a path.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io { path: path.to_owned(), source }
    }
}

/// Result with the engine's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
