//! Helpers shared by Driftwatch's integration tests: loading the reference
//! fixtures computed with SciPy and scikit-learn.

use std::path::PathBuf;

use serde::de::DeserializeOwned;

/// The folder holding the SciPy / scikit-learn reference values.
pub fn stats_fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../detectors/tests/fixtures")
}

/// Loads one fixture file (`numeric`, `categorical`, `classification`).
pub fn load_stats_fixture<T: DeserializeOwned>(name: &str) -> T {
    let path = stats_fixtures_dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}
