//! Errors of the connectors.

/// A connector error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// librdkafka refused a setting or failed to create a client.
    #[error("kafka {what}: {source}")]
    Kafka {
        /// What was being done.
        what: &'static str,
        /// The cause.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// A configuration value is invalid.
    #[error("{field}: {message}")]
    Config {
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A secret setting could not be read (the message names the variable or
    /// file, never the value).
    #[error("{field}: {message}")]
    Secret {
        /// The setting.
        field: String,
        /// What failed.
        message: String,
    },
    /// A metric could not be registered (a duplicate name is a bug).
    #[error("metric registration: {0}")]
    Metrics(#[from] prometheus::Error),
    /// I/O (binding the metrics address).
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file could not be opened or read.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A tabular file (CSV, Parquet, JSON through DataFusion) could not be read.
    #[error(transparent)]
    Table(#[from] crate::table::SourceError),
    /// The HTTP client could not be built.
    #[error("http client: {0}")]
    Http(#[from] reqwest::Error),
}

impl Error {
    /// Whether retrying the same operation later can help.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Kafka { .. } | Error::Io { .. })
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
