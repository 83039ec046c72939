//! Driftwatch connectors: transport only (Kafka source and sink, webhook,
//! Prometheus exporter, files). Connectors move bytes and acknowledgements;
//! they never know what PSI is.
//!
//! This crate is filled by the live-pipeline issue; it is a workspace member
//! now so the layering (`detectors` ← `engine` → `connectors`) is fixed from
//! the first commit.
#![warn(missing_docs)]
