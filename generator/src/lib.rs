//! Seeded synthetic prediction traffic with known drift (`driftwatch generate`).
//!
//! Tests, benches and the demo need traffic whose drift is known in advance:
//! which features drift, from which event on, by how much. A [`Generator`]
//! turns a [`GeneratorConfig`] into prediction events (one JSON object each)
//! and into undrifted reference rows.
//!
//! ```text
//! (seed, i) ──splitmix64──▶ per-event RNG ──▶ feature values ──▶ drift (if i in [drift_start, drift_end))
//!                                                    │
//!                                                    └──▶ score = logistic(linear predictor) ──▶ JSON bytes
//! ```
//!
//! Event `i` depends only on the configuration and `i`: a producer can start at
//! any offset and shards can generate disjoint ranges in parallel, and the same
//! configuration always gives byte-identical output.
//!
//! The traffic model:
//! - numeric features `f00`, `f01`, … each have a fixed distribution (mostly
//!   normals with different means and spreads; every eighth feature is lognormal,
//!   for a heavy tail). The distributions depend on the feature's position, not
//!   on the seed.
//! - categorical features `c0`, `c1`, … take values `"a"`, `"b"`, … with a
//!   skewed (Zipf) mix: `"a"` is the most common.
//! - `score` is the logistic of a linear combination of the first four numeric
//!   features (standardised) and `c0`, so prediction drift follows feature drift;
//!   `prediction` is `score >= 0.5`.
//! - Drift: [`DriftKind::Mean`] adds `drift_size` standard deviations to a drifted
//!   numeric feature, [`DriftKind::Scale`] multiplies its spread around the mean by
//!   `1 + drift_size`. A drifted categorical feature draws, with probability
//!   `min(|drift_size|, 1)`, from the reversed mix (the rarest value becomes the
//!   most common).
//! - Missing values: each feature is omitted independently with probability
//!   `missing_rate`, decided by a separate random stream, so the values that are
//!   present do not depend on the missing rate.
//!
//! ```
//! use driftwatch_generator::{Generator, GeneratorConfig};
//!
//! let generator = Generator::new(GeneratorConfig {
//!     drift_start: Some(10_000),
//!     ..GeneratorConfig::default()
//! })?;
//! let mut buf = Vec::new();
//! generator.write_event(0, &mut buf);
//! assert!(buf.starts_with(br#"{"model":"fraud","model_version":"v1","prediction_id":"fraud-0","#));
//! # Ok::<(), driftwatch_generator::GenerateError>(())
//! ```

use std::fs::File;
use std::io::{self, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use rand::RngCore;
use rand_distr::{Distribution, StandardNormal};
use serde_json::ser::{CompactFormatter, Formatter};

/// The event time of event 0 unless configured: 2026-11-23T00:00:00Z, in
/// milliseconds since the Unix epoch.
pub const DEFAULT_START_TIME_MS: i64 = 1_795_392_000_000;

/// Most categories a categorical feature can have (their values are `"a"`..`"z"`).
pub const MAX_CATEGORIES: usize = 26;

/// How drifted numeric features change once drift begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftKind {
    /// Add `drift_size` standard deviations to the value.
    #[default]
    Mean,
    /// Multiply the spread around the mean by `1 + drift_size` (the mean stays).
    Scale,
}

/// What to generate. `GeneratorConfig::default()` gives the documented defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratorConfig {
    /// The `model` field of every event.
    pub model: String,
    /// The `model_version` field of every event.
    pub model_version: String,
    /// Seed of every random choice.
    pub seed: u64,
    /// Number of numeric features, named `f00`, `f01`, … (zero-padded to the
    /// width the largest index needs).
    pub numeric_features: usize,
    /// Number of categorical features, named `c0`, `c1`, …
    pub categorical_features: usize,
    /// Categories per categorical feature (`"a"`, `"b"`, …), 2 to [`MAX_CATEGORIES`].
    pub categories: usize,
    /// Index of the first drifted event; `None` means no drift.
    pub drift_start: Option<u64>,
    /// Index of the first event after drift ends (recovery); `None` means never.
    pub drift_end: Option<u64>,
    /// Features that drift; `None` means the first half of the numeric features
    /// (rounded up) and `c0`.
    pub drifted_features: Option<Vec<String>>,
    /// How drifted numeric features change.
    pub drift_kind: DriftKind,
    /// Size of the drift: standard deviations ([`DriftKind::Mean`]), relative
    /// change of spread ([`DriftKind::Scale`]), and, for categorical features,
    /// the share of events drawn from the reversed mix (`min(|drift_size|, 1)`).
    pub drift_size: f64,
    /// Event time of event 0, in milliseconds since the Unix epoch.
    pub start_time_ms: i64,
    /// Event-time spacing: event `i` has timestamp
    /// `start_time_ms + floor(i * 1000 / events_per_second)`.
    pub events_per_second: f64,
    /// Probability that a feature is omitted from an event or reference row.
    pub missing_rate: f64,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        Self {
            model: "fraud".to_owned(),
            model_version: "v1".to_owned(),
            seed: 42,
            numeric_features: 20,
            categorical_features: 2,
            categories: 8,
            drift_start: None,
            drift_end: None,
            drifted_features: None,
            drift_kind: DriftKind::Mean,
            drift_size: 1.0,
            start_time_ms: DEFAULT_START_TIME_MS,
            events_per_second: 1000.0,
            missing_rate: 0.0,
        }
    }
}

/// Why generation failed.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// Two outputs name the same file or topic (one would overwrite or mix into the other).
    #[error("{first} and {second} name the same {what} {name:?}: give each its own")]
    SameOutput {
        /// The first option.
        first: &'static str,
        /// The second option.
        second: &'static str,
        /// `file` or `topic`.
        what: &'static str,
        /// The shared name.
        name: String,
    },
    /// Both feature counts are zero.
    #[error("the generator needs at least one feature (numeric and categorical counts are both 0)")]
    NoFeatures,
    /// The category count is out of range.
    #[error("categories must be between 2 and {MAX_CATEGORIES}, got {categories}")]
    Categories {
        /// The configured count.
        categories: usize,
    },
    /// A numeric setting is out of range or not finite.
    #[error("{field} must be {expected}, got {value}")]
    InvalidNumber {
        /// The setting.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
        /// The configured value.
        value: f64,
    },
    /// `drift_end` is set without `drift_start`.
    #[error("drift_end ({end}) is set but drift_start is not")]
    DriftEndWithoutStart {
        /// The configured end.
        end: u64,
    },
    /// `drift_end` is not after `drift_start`.
    #[error("drift_end ({end}) must be after drift_start ({start})")]
    DriftEndNotAfterStart {
        /// The configured start.
        start: u64,
        /// The configured end.
        end: u64,
    },
    /// A drifted feature is not one of the generated features.
    #[error("unknown drifted feature `{name}` (the features are {})", known.join(", "))]
    UnknownDriftedFeature {
        /// The unknown name.
        name: String,
        /// The generated features.
        known: Vec<String>,
    },
    /// The reference output's extension names no supported format.
    #[error("cannot tell the format of reference output {path}: use a .jsonl or .csv extension")]
    ReferenceFormat {
        /// The reference output path.
        path: PathBuf,
    },
    /// Writing an output failed (`-` is standard output).
    #[error("cannot write {path}")]
    Io {
        /// The output being written.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// The file format of a reference sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferenceFormat {
    /// One flat JSON object per line: `{"f00":…,"c0":"a",…,"score":…,"prediction":0,"label":1}`;
    /// missing features are omitted.
    Jsonl,
    /// A header line with the feature names, `score`, `prediction` and
    /// `label`, then one row per line; missing features are empty fields.
    Csv,
}

impl ReferenceFormat {
    /// The format a path's extension names (`.jsonl`, `.ndjson`, `.json`, `.csv`).
    pub fn from_path(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "jsonl" | "ndjson" | "json" => Some(Self::Jsonl),
            "csv" => Some(Self::Csv),
            _ => None,
        }
    }
}

// Domain separators of the random streams derived from the seed.
const EVENT_VALUES: u64 = 0x6576_656e_7476_616c;
const EVENT_MISSING: u64 = 0x6576_656e_746d_6973;
const REFERENCE_VALUES: u64 = 0x7265_6676_616c_7565;
const REFERENCE_MISSING: u64 = 0x7265_666d_6973_7369;
const LABELS: u64 = 0x6c61_6265_6c73_0001;
const REFERENCE_LABELS: u64 = 0x6c61_6265_6c73_0002;
const FEATURE_PARAMETERS: u64 = 0x7061_7261_6d65_7465;

const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// Coefficients of the standardised numeric features `f00`..`f03` in the score's
/// linear predictor.
const SCORE_WEIGHTS: [f64; 4] = [1.0, -0.8, 0.6, 0.5];
/// Coefficient of `c0`'s category index, scaled to [0, 1]: rarer values are riskier.
const SCORE_CATEGORY_WEIGHT: f64 = 1.0;
/// Puts about 15 % of undrifted default events at `prediction = 1`.
const SCORE_INTERCEPT: f64 = -1.8;

/// Bytes handed to the writer at a time by the file writers.
const CHUNK_BYTES: usize = 1 << 16;

/// The splitmix64 finaliser: a bijective mix of 64 bits.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// SplitMix64: tiny, fast and statistically sound for simulation. Its output is
/// fixed by its definition, unlike `StdRng`'s, so generated files stay the same
/// across `rand` releases.
#[derive(Debug, Clone)]
struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// The generator for row `index` of the stream whose base is `base`.
    fn for_row(base: u64, index: u64) -> Self {
        Self { state: mix64(base.wrapping_add(index.wrapping_mul(GOLDEN_GAMMA))) }
    }

    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

impl RngCore for SplitMix64 {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        mix64(self.state)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

#[derive(Debug, Clone, Copy)]
enum Shape {
    /// `mean + sd * z`.
    Normal,
    /// `exp(mu + sigma * z)`.
    LogNormal { mu: f64, sigma: f64 },
}

#[derive(Debug, Clone)]
struct NumericFeature {
    name: String,
    /// `"f00":`
    json_key: Box<[u8]>,
    shape: Shape,
    /// Mean and standard deviation of the undrifted distribution.
    mean: f64,
    sd: f64,
    drifted: bool,
    /// Coefficient in the score's linear predictor (0 for most features).
    weight: f64,
}

impl NumericFeature {
    fn new(index: usize, name: String) -> Self {
        let h = mix64(FEATURE_PARAMETERS ^ index as u64);
        let u1 = (h & 0xffff) as f64 / 65535.0;
        let u2 = ((h >> 16) & 0xffff) as f64 / 65535.0;
        let round1 = |x: f64| (x * 10.0).round() / 10.0;
        let (shape, mean, sd) = if index % 8 == 7 {
            // Heavy-tailed and positive, like amounts or durations.
            let mu = round1(1.0 + 3.0 * u1);
            let sigma = round1(0.5 + 0.5 * u2);
            let mean = (mu + sigma * sigma / 2.0).exp();
            let sd = mean * (sigma * sigma).exp_m1().sqrt();
            (Shape::LogNormal { mu, sigma }, mean, sd)
        } else {
            (Shape::Normal, round1(-10.0 + 110.0 * u1), round1(0.5 + 14.5 * u2))
        };
        Self { json_key: json_key(&name), name, shape, mean, sd, drifted: false, weight: SCORE_WEIGHTS.get(index).copied().unwrap_or(0.0) }
    }
}

#[derive(Debug, Clone)]
struct CategoricalFeature {
    name: String,
    /// `"c0":`
    json_key: Box<[u8]>,
    drifted: bool,
    /// Coefficient of the category index (scaled to [0, 1]) in the score.
    weight: f64,
}

/// `"name":` as JSON bytes.
fn json_key(name: &str) -> Box<[u8]> {
    let mut key = json_string(name);
    key.push(b':');
    key.into_boxed_slice()
}

/// `s` as a quoted, escaped JSON string.
fn json_string(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() + 2);
    infallible(serde_json::to_writer(&mut out, s).map_err(io::Error::from));
    out
}

/// Unwraps the result of writing into a `Vec<u8>`, which cannot fail; the
/// `io::Result` only comes from the formatter's signature.
fn infallible(result: io::Result<()>) {
    if let Err(err) = result {
        unreachable!("writing into a Vec<u8> failed: {err}");
    }
}

fn push_f64(buf: &mut Vec<u8>, value: f64) {
    if value.is_finite() {
        infallible(CompactFormatter.write_f64(buf, value));
    } else {
        // Only reachable with absurd drift sizes (around 1e300); keeps JSON valid.
        buf.extend_from_slice(b"null");
    }
}

fn push_u64(buf: &mut Vec<u8>, value: u64) {
    infallible(CompactFormatter.write_u64(buf, value));
}

fn push_i64(buf: &mut Vec<u8>, value: i64) {
    infallible(CompactFormatter.write_i64(buf, value));
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// `"name":value` pairs separated by commas, missing ones omitted.
    Json,
    /// Values separated by commas, missing ones empty.
    Csv,
}

/// Zero-padded names `{prefix}0`.. with the width the largest index needs.
fn padded_names(prefix: char, count: usize) -> Vec<String> {
    let width = count.saturating_sub(1).to_string().len();
    (0..count).map(|i| format!("{prefix}{i:0width$}")).collect()
}

/// Cumulative probabilities of a mix; the last is exactly 1.
fn cumulative(weights: &[f64]) -> Vec<f64> {
    let total: f64 = weights.iter().sum();
    let mut acc = 0.0;
    let mut cdf: Vec<f64> = weights
        .iter()
        .map(|w| {
            acc += w / total;
            acc
        })
        .collect();
    if let Some(last) = cdf.last_mut() {
        *last = 1.0;
    }
    cdf
}

fn draw_category(cdf: &[f64], u: f64) -> usize {
    cdf.iter().position(|&c| u < c).unwrap_or(cdf.len() - 1)
}

/// Generates events and reference rows for one [`GeneratorConfig`].
///
/// `Send` and `Sync`: shards can share one generator and write disjoint index
/// ranges.
#[derive(Debug, Clone)]
pub struct Generator {
    config: GeneratorConfig,
    numeric: Vec<NumericFeature>,
    categorical: Vec<CategoricalFeature>,
    /// `"a"`, `"b"`, … as JSON strings.
    category_json: Vec<Box<[u8]>>,
    /// Cumulative undrifted and drifted category mixes.
    base_cdf: Vec<f64>,
    drifted_cdf: Vec<f64>,
    /// `{"model":…,"model_version":…,"prediction_id":"<model>-`
    event_prefix: Box<[u8]>,
    /// Stream bases derived from the seed.
    event_values: u64,
    event_missing: u64,
    reference_values: u64,
    reference_missing: u64,
    labels: u64,
    reference_labels: u64,
    /// `{"model":…,"prediction_id":"<model>-`
    label_prefix: Box<[u8]>,
    /// Index of the next reference row [`Generator::write_reference_row`] writes.
    next_reference_row: u64,
    /// Bytes to reserve before an event, so the hot path grows `buf` at most once.
    event_bytes_hint: usize,
}

impl Generator {
    /// Validates `config` and prepares everything that does not change per event.
    pub fn new(config: GeneratorConfig) -> Result<Self, GenerateError> {
        if config.numeric_features == 0 && config.categorical_features == 0 {
            return Err(GenerateError::NoFeatures);
        }
        if !(2..=MAX_CATEGORIES).contains(&config.categories) {
            return Err(GenerateError::Categories { categories: config.categories });
        }
        check_number("drift_size", config.drift_size, config.drift_size.is_finite(), "finite")?;
        if config.drift_kind == DriftKind::Scale {
            check_number("drift_size", config.drift_size, config.drift_size > -1.0, "greater than -1 for scale drift")?;
        }
        check_number(
            "events_per_second",
            config.events_per_second,
            config.events_per_second.is_finite() && config.events_per_second > 0.0,
            "positive and finite",
        )?;
        check_number("missing_rate", config.missing_rate, (0.0..=1.0).contains(&config.missing_rate), "between 0 and 1")?;
        match (config.drift_start, config.drift_end) {
            (None, Some(end)) => return Err(GenerateError::DriftEndWithoutStart { end }),
            (Some(start), Some(end)) if end <= start => return Err(GenerateError::DriftEndNotAfterStart { start, end }),
            _ => {}
        }

        let mut numeric: Vec<NumericFeature> =
            padded_names('f', config.numeric_features).into_iter().enumerate().map(|(i, name)| NumericFeature::new(i, name)).collect();
        let mut categorical: Vec<CategoricalFeature> = padded_names('c', config.categorical_features)
            .into_iter()
            .enumerate()
            .map(|(i, name)| CategoricalFeature {
                json_key: json_key(&name),
                name,
                drifted: false,
                weight: if i == 0 { SCORE_CATEGORY_WEIGHT } else { 0.0 },
            })
            .collect();

        match &config.drifted_features {
            None => {
                let half = config.numeric_features.div_ceil(2);
                numeric.iter_mut().take(half).for_each(|f| f.drifted = true);
                if let Some(c0) = categorical.first_mut() {
                    c0.drifted = true;
                }
            }
            Some(names) => {
                for name in names {
                    let flag = numeric
                        .iter_mut()
                        .find(|f| f.name == *name)
                        .map(|f| &mut f.drifted)
                        .or_else(|| categorical.iter_mut().find(|f| f.name == *name).map(|f| &mut f.drifted));
                    match flag {
                        Some(flag) => *flag = true,
                        None => {
                            let known = numeric.iter().map(|f| f.name.clone()).chain(categorical.iter().map(|f| f.name.clone())).collect();
                            return Err(GenerateError::UnknownDriftedFeature { name: name.clone(), known });
                        }
                    }
                }
            }
        }

        // Zipf mix: value c has weight 1 / (c + 1). Drift moves a share of the
        // events to the reversed mix.
        let k = config.categories;
        let base: Vec<f64> = (0..k).map(|c| 1.0 / (c + 1) as f64).collect();
        let share = config.drift_size.abs().min(1.0);
        let drifted: Vec<f64> = (0..k).map(|c| (1.0 - share) * base[c] + share * base[k - 1 - c]).collect();
        let category_json = (b'a'..).take(k).map(|letter| vec![b'"', letter, b'"'].into_boxed_slice()).collect();

        let mut event_prefix = br#"{"model":"#.to_vec();
        event_prefix.extend_from_slice(&json_string(&config.model));
        event_prefix.extend_from_slice(br#","model_version":"#);
        event_prefix.extend_from_slice(&json_string(&config.model_version));
        event_prefix.extend_from_slice(br#","prediction_id":"#);
        // The id is `<model>-<i>`: the quoted model without its closing quote.
        let model = json_string(&config.model);
        event_prefix.extend_from_slice(&model[..model.len() - 1]);
        event_prefix.push(b'-');

        let mut label_prefix = br#"{"model":"#.to_vec();
        label_prefix.extend_from_slice(&model);
        label_prefix.extend_from_slice(br#","prediction_id":"#);
        label_prefix.extend_from_slice(&model[..model.len() - 1]);
        label_prefix.push(b'-');

        // Generous per-feature estimate: key, 24 bytes of number, comma.
        let event_bytes_hint = event_prefix.len()
            + 128
            + numeric.iter().map(|f| f.json_key.len() + 25).sum::<usize>()
            + categorical.iter().map(|f| f.json_key.len() + 4).sum::<usize>();

        let seed = config.seed;
        Ok(Self {
            numeric,
            categorical,
            category_json,
            base_cdf: cumulative(&base),
            drifted_cdf: cumulative(&drifted),
            event_prefix: event_prefix.into_boxed_slice(),
            event_values: mix64(seed ^ EVENT_VALUES),
            event_missing: mix64(seed ^ EVENT_MISSING),
            reference_values: mix64(seed ^ REFERENCE_VALUES),
            reference_missing: mix64(seed ^ REFERENCE_MISSING),
            labels: mix64(seed ^ LABELS),
            reference_labels: mix64(seed ^ REFERENCE_LABELS),
            label_prefix: label_prefix.into_boxed_slice(),
            next_reference_row: 0,
            event_bytes_hint,
            config,
        })
    }

    /// The configuration this generator was built from.
    pub fn config(&self) -> &GeneratorConfig {
        &self.config
    }

    /// The numeric and the categorical feature names, in output order.
    pub fn feature_names(&self) -> (Vec<String>, Vec<String>) {
        (self.numeric.iter().map(|f| f.name.clone()).collect(), self.categorical.iter().map(|f| f.name.clone()).collect())
    }

    /// Whether event `i` falls in the drift interval.
    pub fn is_drifted(&self, i: u64) -> bool {
        match self.config.drift_start {
            Some(start) => i >= start && self.config.drift_end.is_none_or(|end| i < end),
            None => false,
        }
    }

    /// The event time of event `i`, in milliseconds since the Unix epoch.
    pub fn timestamp_ms(&self, i: u64) -> i64 {
        // `i * 1000 / eps` rather than `i * (1000 / eps)`: exact for integer spacings.
        let offset = (i as f64 * 1000.0 / self.config.events_per_second).floor() as i64;
        self.config.start_time_ms.saturating_add(offset)
    }

    /// Appends event `i` to `buf` as one JSON object, without a trailing newline:
    /// `{"model":"fraud","model_version":"v1","prediction_id":"fraud-<i>","timestamp":<ms>,"features":{"f00":…,"c0":"a",…},"prediction":0,"score":0.12}`.
    ///
    /// Hot path: apart from growing `buf` it allocates nothing.
    /// Returns the event's score.
    pub fn write_event(&self, i: u64, buf: &mut Vec<u8>) -> f64 {
        buf.reserve(self.event_bytes_hint);
        buf.extend_from_slice(&self.event_prefix);
        push_u64(buf, i);
        buf.extend_from_slice(br#"","timestamp":"#);
        push_i64(buf, self.timestamp_ms(i));
        buf.extend_from_slice(br#","features":{"#);
        let mut values = SplitMix64::for_row(self.event_values, i);
        let mut missing = SplitMix64::for_row(self.event_missing, i);
        let (score, _) = self.write_features(&mut values, &mut missing, self.is_drifted(i), Layout::Json, buf);
        buf.extend_from_slice(if score >= 0.5 { br#"},"prediction":1,"score":"# } else { br#"},"prediction":0,"score":"# });
        push_f64(buf, score);
        buf.push(b'}');
        score
    }

    /// The label event of event `i` (whose score is `score`), without a
    /// trailing newline, and its event time:
    /// `{"model":"fraud","prediction_id":"fraud-<i>","label":1,"timestamp":<ms>}`.
    ///
    /// The class is drawn with probability `score` of being 1 (a calibrated
    /// model); inside the drift interval a share `labels.flip` of the classes
    /// is flipped (concept drift: the model's quality drops). The label comes
    /// an exponentially distributed delay of mean `labels.mean_delay_ms`
    /// (event time) after its prediction.
    pub fn write_label(&self, i: u64, score: f64, labels: &LabelSpec, buf: &mut Vec<u8>) -> i64 {
        let mut rng = SplitMix64::for_row(self.labels, i);
        let mut class = rng.uniform() < score;
        if self.is_drifted(i) && rng.uniform() < labels.flip {
            class = !class;
        }
        let delay = (-(labels.mean_delay_ms as f64) * (1.0 - rng.uniform()).ln()).round() as i64;
        let ts = self.timestamp_ms(i).saturating_add(delay);
        buf.extend_from_slice(&self.label_prefix);
        push_u64(buf, i);
        buf.extend_from_slice(if class { br#"","label":1,"timestamp":"# } else { br#"","label":0,"timestamp":"# });
        push_i64(buf, ts);
        buf.push(b'}');
        ts
    }

    /// Appends the next reference row to `buf` as a flat JSON object without a
    /// trailing newline: `{"f00":…,"c0":"a",…,"score":…,"prediction":0,"label":1}`
    /// (the label drawn with the score as its probability). Reference rows never
    /// drift; they come from their own random stream, so they are not copies of
    /// the first events.
    pub fn write_reference_row(&mut self, buf: &mut Vec<u8>) {
        self.next_reference(Layout::Json, buf);
    }

    /// Appends the next reference row in `layout`, without a trailing newline.
    fn next_reference(&mut self, layout: Layout, buf: &mut Vec<u8>) {
        let row = self.next_reference_row;
        self.next_reference_row += 1;
        buf.reserve(self.event_bytes_hint);
        if layout == Layout::Json {
            buf.push(b'{');
        }
        let mut values = SplitMix64::for_row(self.reference_values, row);
        let mut missing = SplitMix64::for_row(self.reference_missing, row);
        let (score, wrote_any) = self.write_features(&mut values, &mut missing, false, layout, buf);
        match layout {
            Layout::Json => buf.extend_from_slice(if wrote_any { br#","score":"# } else { br#""score":"# }),
            // Every feature has a column, so there is always one before the score.
            Layout::Csv => buf.push(b','),
        }
        push_f64(buf, score);
        // The model's class and the true one, drawn with the score as its probability (a calibrated model).
        let class = SplitMix64::for_row(self.reference_labels, row).uniform() < score;
        let fields: &[u8] = match (layout, score >= 0.5, class) {
            (Layout::Json, p, l) => match (p, l) {
                (false, false) => br#","prediction":0,"label":0"#,
                (false, true) => br#","prediction":0,"label":1"#,
                (true, false) => br#","prediction":1,"label":0"#,
                (true, true) => br#","prediction":1,"label":1"#,
            },
            (Layout::Csv, p, l) => match (p, l) {
                (false, false) => b",0,0",
                (false, true) => b",0,1",
                (true, false) => b",1,0",
                (true, true) => b",1,1",
            },
        };
        buf.extend_from_slice(fields);
        if layout == Layout::Json {
            buf.push(b'}');
        }
    }

    /// The CSV header of a reference file, without a trailing newline.
    fn csv_header(&self, buf: &mut Vec<u8>) {
        let names = self.numeric.iter().map(|f| &f.name).chain(self.categorical.iter().map(|f| &f.name));
        for name in names {
            buf.extend_from_slice(name.as_bytes());
            buf.push(b',');
        }
        buf.extend_from_slice(b"score,prediction,label");
    }

    /// Draws every feature of one row, writes them in `layout`, and returns the
    /// score and whether any feature was written.
    ///
    /// Hot path: no allocation. The value stream is drawn in a fixed order (one
    /// normal per numeric feature, then one uniform per categorical feature)
    /// whether or not a feature is missing, so values do not depend on the
    /// missing rate.
    fn write_features(
        &self,
        values: &mut SplitMix64,
        missing: &mut SplitMix64,
        drift: bool,
        layout: Layout,
        buf: &mut Vec<u8>,
    ) -> (f64, bool) {
        let missing_rate = self.config.missing_rate;
        let drift_size = self.config.drift_size;
        let mut is_missing = || missing_rate > 0.0 && missing.uniform() < missing_rate;
        let mut first = true;
        let mut linear = SCORE_INTERCEPT;

        for f in &self.numeric {
            let z: f64 = StandardNormal.sample(values);
            let mut x = match f.shape {
                Shape::Normal => f.mean + f.sd * z,
                Shape::LogNormal { mu, sigma } => (mu + sigma * z).exp(),
            };
            if drift && f.drifted {
                x = match self.config.drift_kind {
                    DriftKind::Mean => x + drift_size * f.sd,
                    DriftKind::Scale => f.mean + (x - f.mean) * (1.0 + drift_size),
                };
            }
            linear += f.weight * (x - f.mean) / f.sd;
            let present = !is_missing();
            match layout {
                Layout::Json if present => {
                    separate(buf, &mut first);
                    buf.extend_from_slice(&f.json_key);
                    push_f64(buf, x);
                }
                Layout::Json => {}
                Layout::Csv => {
                    separate(buf, &mut first);
                    if present {
                        push_f64(buf, x);
                    }
                }
            }
        }

        let scale = 1.0 / (self.config.categories - 1) as f64;
        for f in &self.categorical {
            let cdf = if drift && f.drifted { &self.drifted_cdf } else { &self.base_cdf };
            let c = draw_category(cdf, values.uniform());
            linear += f.weight * c as f64 * scale;
            let present = !is_missing();
            let value = &self.category_json[c];
            match layout {
                Layout::Json if present => {
                    separate(buf, &mut first);
                    buf.extend_from_slice(&f.json_key);
                    buf.extend_from_slice(value);
                }
                Layout::Json => {}
                Layout::Csv => {
                    separate(buf, &mut first);
                    if present {
                        // The unquoted letter.
                        buf.push(value[1]);
                    }
                }
            }
        }

        let score = 1.0 / (1.0 + (-linear).exp());
        (score, !first)
    }
}

/// Writes the comma before every field but the first.
fn separate(buf: &mut Vec<u8>, first: &mut bool) {
    if !std::mem::replace(first, false) {
        buf.push(b',');
    }
}

fn check_number(field: &'static str, value: f64, ok: bool, expected: &'static str) -> Result<(), GenerateError> {
    if ok {
        Ok(())
    } else {
        Err(GenerateError::InvalidNumber { field, expected, value })
    }
}

/// How label events are generated ([`Generator::write_label`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LabelSpec {
    /// Mean delay of a label after its prediction (event time, ms).
    pub mean_delay_ms: i64,
    /// Share of the labels flipped inside the drift interval.
    pub flip: f64,
}

/// Labels waiting for the stream's event time to reach their own, so that
/// they are written in time order, as a labels topic would carry them.
#[derive(Debug, Default)]
pub struct LabelQueue {
    heap: std::collections::BinaryHeap<std::cmp::Reverse<(i64, u64, Vec<u8>)>>,
}

impl LabelQueue {
    /// Queues event `i`'s label (made by [`Generator::write_label`]).
    pub fn push(&mut self, generator: &Generator, i: u64, score: f64, labels: &LabelSpec) {
        let mut buf = Vec::with_capacity(96);
        let ts = generator.write_label(i, score, labels, &mut buf);
        self.heap.push(std::cmp::Reverse((ts, i, buf)));
    }

    /// The next label whose time is at most `ts` (`None` for `ts`: any), as (index, bytes).
    pub fn pop_until(&mut self, ts: Option<i64>) -> Option<(u64, Vec<u8>)> {
        let std::cmp::Reverse((t, _, _)) = self.heap.peek()?;
        if ts.is_some_and(|limit| *t > limit) {
            return None;
        }
        self.heap.pop().map(|std::cmp::Reverse((_, i, buf))| (i, buf))
    }
}

/// Writes events `range` as JSON lines (one event and `\n` per line) to `out`,
/// in chunks of about 64 KiB, and flushes it.
pub fn write_events_to<W: Write + ?Sized>(generator: &Generator, range: Range<u64>, out: &mut W) -> io::Result<()> {
    let mut buf = Vec::with_capacity(CHUNK_BYTES + 4096);
    for i in range {
        generator.write_event(i, &mut buf);
        buf.push(b'\n');
        if buf.len() >= CHUNK_BYTES {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)?;
    out.flush()
}

/// Writes the labels of events `range` as JSON lines to `out`, in label-time
/// order (a label is written once the events' time reaches its own), and flushes it.
pub fn write_labels_to<W: Write + ?Sized>(generator: &Generator, range: Range<u64>, labels: &LabelSpec, out: &mut W) -> io::Result<()> {
    let mut queue = LabelQueue::default();
    let mut event = Vec::with_capacity(1024);
    for i in range {
        event.clear();
        let score = generator.write_event(i, &mut event);
        queue.push(generator, i, score, labels);
        while let Some((_, line)) = queue.pop_until(Some(generator.timestamp_ms(i))) {
            out.write_all(&line)?;
            out.write_all(b"\n")?;
        }
    }
    while let Some((_, line)) = queue.pop_until(None) {
        out.write_all(&line)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// Writes the next `rows` reference rows in `format` to `out` (with a header
/// for CSV) and flushes it.
pub fn write_reference_to<W: Write + ?Sized>(generator: &mut Generator, rows: u64, format: ReferenceFormat, out: &mut W) -> io::Result<()> {
    let layout = match format {
        ReferenceFormat::Jsonl => Layout::Json,
        ReferenceFormat::Csv => Layout::Csv,
    };
    let mut buf = Vec::with_capacity(CHUNK_BYTES + 4096);
    if format == ReferenceFormat::Csv {
        generator.csv_header(&mut buf);
        buf.push(b'\n');
    }
    for _ in 0..rows {
        generator.next_reference(layout, &mut buf);
        buf.push(b'\n');
        if buf.len() >= CHUNK_BYTES {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)?;
    out.flush()
}

/// Writes events `0..events` of `config` to `path` as JSON lines.
pub fn write_events_file(config: &GeneratorConfig, events: u64, path: &Path) -> Result<(), GenerateError> {
    let generator = Generator::new(config.clone())?;
    let io_error = |source| GenerateError::Io { path: path.to_owned(), source };
    let mut file = File::create(path).map_err(io_error)?;
    write_events_to(&generator, 0..events, &mut file).map_err(io_error)
}

/// Writes `rows` reference rows of `config` to `path`: JSON lines for `.jsonl`
/// (also `.ndjson`, `.json`), CSV with a header for `.csv`.
pub fn write_reference_file(config: &GeneratorConfig, rows: u64, path: &Path) -> Result<(), GenerateError> {
    let format = ReferenceFormat::from_path(path).ok_or_else(|| GenerateError::ReferenceFormat { path: path.to_owned() })?;
    let mut generator = Generator::new(config.clone())?;
    let io_error = |source| GenerateError::Io { path: path.to_owned(), source };
    let mut file = File::create(path).map_err(io_error)?;
    write_reference_to(&mut generator, rows, format, &mut file).map_err(io_error)
}

fn parse_start_time(s: &str) -> Result<i64, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|err| format!("expected an RFC 3339 time such as 2026-11-23T00:00:00Z: {err}"))
}

/// `driftwatch generate`: seeded synthetic prediction traffic with known drift.
#[derive(Debug, Clone, clap::Args)]
pub struct GenerateArgs {
    /// Number of prediction events to write.
    #[arg(long, value_name = "N")]
    pub events: u64,
    /// Where to write the events as JSON lines (`-` is standard output).
    #[arg(long, short = 'o', value_name = "PATH", default_value = "-")]
    pub output: PathBuf,
    /// Also write an undrifted reference sample here (`.jsonl` or `.csv`).
    #[arg(long, value_name = "PATH")]
    pub reference_output: Option<PathBuf>,
    /// Rows in the reference sample.
    #[arg(long, value_name = "N", default_value_t = 50_000)]
    pub reference_rows: u64,
    /// Seed; the same seed and options give byte-identical output.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Number of numeric features (f00, f01, …).
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub numeric: usize,
    /// Number of categorical features (c0, c1, …).
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub categorical: usize,
    /// Categories per categorical feature ("a", "b", …), 2 to 26.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub categories: usize,
    /// Index of the first drifted event [default: no drift].
    #[arg(long, value_name = "I")]
    pub drift_start: Option<u64>,
    /// Index of the first event after drift ends [default: never].
    #[arg(long, value_name = "I", requires = "drift_start")]
    pub drift_end: Option<u64>,
    /// Features that drift [default: the first half of the numeric features and c0].
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    pub drift_features: Option<Vec<String>>,
    /// How drifted numeric features change.
    #[arg(long, value_enum, default_value_t = DriftKind::Mean)]
    pub drift_kind: DriftKind,
    /// Standard deviations (mean), relative spread change (scale); share of
    /// events drawn from the reversed mix for categorical features (at most 1).
    #[arg(long, value_name = "X", default_value_t = 1.0, allow_negative_numbers = true)]
    pub drift_size: f64,
    /// Event-time spacing: events per second of event time.
    #[arg(long, value_name = "X", default_value_t = 1000.0)]
    pub events_per_second: f64,
    /// Event time of event 0 (RFC 3339) [default: 2026-11-23T00:00:00Z].
    #[arg(long, value_name = "TIME", value_parser = parse_start_time)]
    pub start_time: Option<i64>,
    /// Probability that a feature is omitted from an event.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub missing_rate: f64,
    /// The events' `model`.
    #[arg(long, default_value = "fraud")]
    pub model: String,
    /// The events' `model_version`.
    #[arg(long, default_value = "v1")]
    pub model_version: String,
    /// Produce the events to Kafka (these brokers) instead of writing them.
    #[arg(long, value_name = "HOST:PORT", requires = "kafka_topic")]
    pub kafka_brokers: Option<String>,
    /// The topic to produce to (key: the event index, so events spread over partitions).
    #[arg(long, value_name = "TOPIC", requires = "kafka_brokers")]
    pub kafka_topic: Option<String>,
    /// Kafka: events per second of wall time (0: as fast as the broker takes them).
    #[arg(long, value_name = "X", default_value_t = 0.0)]
    pub rate: f64,
    /// Also write a label event per prediction here (JSON lines, in label-time order).
    #[arg(long, value_name = "PATH", conflicts_with = "kafka_topic")]
    pub labels_output: Option<PathBuf>,
    /// Kafka: also produce a label event per prediction to this topic, each
    /// once the stream's event time reaches the label's (key: the prediction id).
    #[arg(long, value_name = "TOPIC", requires = "kafka_topic")]
    pub labels_topic: Option<String>,
    /// Mean delay of a label after its prediction, in seconds of event time (exponentially distributed).
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0)]
    pub label_delay: f64,
    /// Share of the labels flipped inside the drift interval (concept drift: the model's accuracy drops).
    #[arg(long, value_name = "P", default_value_t = 0.3)]
    pub label_flip: f64,
}

impl GenerateArgs {
    /// The generator configuration these arguments describe.
    pub fn config(&self) -> GeneratorConfig {
        GeneratorConfig {
            model: self.model.clone(),
            model_version: self.model_version.clone(),
            seed: self.seed,
            numeric_features: self.numeric,
            categorical_features: self.categorical,
            categories: self.categories,
            drift_start: self.drift_start,
            drift_end: self.drift_end,
            drifted_features: self.drift_features.clone(),
            drift_kind: self.drift_kind,
            drift_size: self.drift_size,
            start_time_ms: self.start_time.unwrap_or(DEFAULT_START_TIME_MS),
            events_per_second: self.events_per_second,
            missing_rate: self.missing_rate,
        }
    }

    /// How labels are generated, checked (with their outputs: a labels file
    /// or topic of their own).
    pub fn label_spec(&self) -> Result<LabelSpec, GenerateError> {
        let same = |first, second, what, name: String| Err(GenerateError::SameOutput { first, second, what, name });
        let files = [
            ("--output", Some(&self.output)),
            ("--labels-output", self.labels_output.as_ref()),
            ("--reference-output", self.reference_output.as_ref()),
        ];
        for (i, (first, a)) in files.iter().enumerate() {
            for (second, b) in &files[i + 1..] {
                if let (Some(a), Some(b)) = (a, b) {
                    if a == b && a.as_os_str() != "-" {
                        return same(first, second, "file", a.display().to_string());
                    }
                }
            }
        }
        if let (Some(a), Some(b)) = (&self.kafka_topic, &self.labels_topic) {
            if a == b {
                return same("--kafka-topic", "--labels-topic", "topic", a.clone());
            }
        }
        check_number("label_delay", self.label_delay, self.label_delay.is_finite() && self.label_delay >= 0.0, "at least 0")?;
        check_number("label_flip", self.label_flip, (0.0..=1.0).contains(&self.label_flip), "between 0 and 1")?;
        Ok(LabelSpec { mean_delay_ms: (self.label_delay * 1000.0).round() as i64, flip: self.label_flip })
    }

    /// Writes the events, then the labels and the reference sample if they were asked for.
    pub fn run(&self) -> Result<(), GenerateError> {
        let labels = self.label_spec()?;
        // Refuse a bad configuration or reference path before writing anything.
        let reference = match &self.reference_output {
            Some(path) => {
                let format = ReferenceFormat::from_path(path).ok_or_else(|| GenerateError::ReferenceFormat { path: path.clone() })?;
                Some((path, format))
            }
            None => None,
        };
        let mut generator = Generator::new(self.config())?;

        let output_error = |source| GenerateError::Io { path: self.output.clone(), source };
        if self.output.as_os_str() == "-" {
            match write_events_to(&generator, 0..self.events, &mut io::stdout().lock()) {
                // The reader went away (`driftwatch generate … | head`): a normal end.
                Err(err) if err.kind() == io::ErrorKind::BrokenPipe => {}
                result => result.map_err(output_error)?,
            }
        } else {
            let mut file = File::create(&self.output).map_err(output_error)?;
            write_events_to(&generator, 0..self.events, &mut file).map_err(output_error)?;
        }

        if let Some(path) = &self.labels_output {
            let labels_error = |source| GenerateError::Io { path: path.clone(), source };
            let mut file = io::BufWriter::new(File::create(path).map_err(labels_error)?);
            write_labels_to(&generator, 0..self.events, &labels, &mut file).map_err(labels_error)?;
        }
        if let Some((path, format)) = reference {
            let reference_error = |source| GenerateError::Io { path: path.clone(), source };
            let mut file = File::create(path).map_err(reference_error)?;
            write_reference_to(&mut generator, self.reference_rows, format, &mut file).map_err(reference_error)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};
    use serde_json::Value;

    fn event(generator: &Generator, i: u64) -> Value {
        let mut buf = Vec::new();
        generator.write_event(i, &mut buf);
        serde_json::from_slice(&buf).expect("event is JSON")
    }

    fn numeric(value: &Value, feature: &str) -> Option<f64> {
        value.get(feature).and_then(Value::as_f64)
    }

    /// Mean and standard deviation of `feature` over events `range`.
    fn moments(generator: &Generator, range: Range<u64>, feature: &str) -> (f64, f64) {
        let xs: Vec<f64> = range.filter_map(|i| numeric(&event(generator, i)["features"], feature)).collect();
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (mean, var.sqrt())
    }

    fn category_share(generator: &Generator, range: Range<u64>, feature: &str, value: &str) -> f64 {
        let n = range.end - range.start;
        let hits = range.filter(|&i| event(generator, i)["features"][feature] == value).count();
        hits as f64 / n as f64
    }

    fn drifting(kind: DriftKind, size: f64) -> Generator {
        Generator::new(GeneratorConfig { drift_start: Some(5_000), drift_kind: kind, drift_size: size, ..GeneratorConfig::default() })
            .expect("valid config")
    }

    #[test]
    fn same_config_gives_same_bytes_in_any_order() {
        let a = Generator::new(GeneratorConfig::default()).expect("valid");
        let b = Generator::new(GeneratorConfig::default()).expect("valid");
        let mut forward = Vec::new();
        write_events_to(&a, 0..1_000, &mut forward).expect("vec");
        let mut again = Vec::new();
        write_events_to(&b, 0..1_000, &mut again).expect("vec");
        assert_eq!(forward, again);

        // Backwards, one at a time, from a fresh generator: event i depends only on i.
        let lines: Vec<&[u8]> = forward.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
        for i in (0..1_000u64).rev() {
            let mut one = Vec::new();
            b.write_event(i, &mut one);
            assert_eq!(one, lines[i as usize], "event {i}");
        }

        let other = Generator::new(GeneratorConfig { seed: 7, ..GeneratorConfig::default() }).expect("valid");
        let mut other_bytes = Vec::new();
        write_events_to(&other, 0..1_000, &mut other_bytes).expect("vec");
        assert_ne!(forward, other_bytes);
    }

    #[test]
    fn pinned_output_does_not_change() {
        // Fails if the stream derivation or the formatting changes, which would
        // silently change every generated fixture.
        let generator =
            Generator::new(GeneratorConfig { numeric_features: 2, categorical_features: 1, ..GeneratorConfig::default() }).expect("valid");
        let mut buf = Vec::new();
        generator.write_event(3, &mut buf);
        let text = String::from_utf8(buf).expect("utf-8");
        assert_eq!(text, PINNED_EVENT_3);
    }

    const PINNED_EVENT_3: &str = r#"{"model":"fraud","model_version":"v1","prediction_id":"fraud-3","timestamp":1795392000003,"features":{"f0":87.07899934096086,"f1":1.1206076529656386,"c0":"d"},"prediction":0,"score":0.07371860900241738}"#;

    #[test]
    fn every_event_is_json_with_the_expected_fields() {
        let generator = Generator::new(GeneratorConfig::default()).expect("valid");
        let (numeric_names, categorical_names) = generator.feature_names();
        assert_eq!(numeric_names.len(), 20);
        assert_eq!(numeric_names.first().map(String::as_str), Some("f00"));
        assert_eq!(numeric_names.last().map(String::as_str), Some("f19"));
        assert_eq!(categorical_names, ["c0", "c1"]);

        let mut out = Vec::new();
        write_events_to(&generator, 0..2_000, &mut out).expect("vec");
        let text = std::str::from_utf8(&out).expect("utf-8");
        let mut positives = 0;
        for (i, line) in text.lines().enumerate() {
            let event: Value = serde_json::from_str(line).expect("event is JSON");
            let object = event.as_object().expect("object");
            assert_eq!(object.len(), 7, "{line}");
            assert_eq!(event["model"], "fraud");
            assert_eq!(event["model_version"], "v1");
            assert_eq!(event["prediction_id"], format!("fraud-{i}"));
            assert_eq!(event["timestamp"].as_i64(), Some(DEFAULT_START_TIME_MS + i as i64));
            let features = event["features"].as_object().expect("features object");
            assert_eq!(features.len(), 22);
            for name in &numeric_names {
                assert!(features[name].is_f64(), "{name} in {line}");
            }
            for name in &categorical_names {
                let value = features[name].as_str().expect("string category");
                assert!(("a"..="h").contains(&value), "{value}");
            }
            let score = event["score"].as_f64().expect("score");
            assert!((0.0..=1.0).contains(&score));
            let prediction = event["prediction"].as_u64().expect("prediction");
            assert_eq!(prediction, u64::from(score >= 0.5));
            positives += prediction;
        }
        assert_eq!(text.lines().count(), 2_000);
        let positive_rate = positives as f64 / 2_000.0;
        assert!((0.05..0.30).contains(&positive_rate), "positive rate {positive_rate}");
        let bytes_per_event = out.len() / 2_000;
        assert!((600..900).contains(&bytes_per_event), "{bytes_per_event} bytes per event");
    }

    #[test]
    fn names_are_padded_to_the_width_needed() {
        assert_eq!(padded_names('f', 3), ["f0", "f1", "f2"]);
        assert_eq!(padded_names('f', 10), ["f0", "f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8", "f9"]);
        assert_eq!(padded_names('f', 11)[..2], ["f00", "f01"]);
        assert_eq!(padded_names('f', 101)[100], "f100");
        assert_eq!(padded_names('c', 1), ["c0"]);
    }

    #[test]
    fn mean_drift_shifts_drifted_features_only() {
        let generator = drifting(DriftKind::Mean, 1.0);
        for f in &generator.numeric {
            let (before, _) = moments(&generator, 0..5_000, &f.name);
            let (after, _) = moments(&generator, 5_000..10_000, &f.name);
            let shift = (after - before) / f.sd;
            let expected = if f.drifted { 1.0 } else { 0.0 };
            assert!((shift - expected).abs() < 0.15, "{}: shift {shift} sd, expected {expected}", f.name);
        }
        // Default drifted set: the first half of the numeric features and c0.
        let drifted: Vec<&str> = generator.numeric.iter().filter(|f| f.drifted).map(|f| f.name.as_str()).collect();
        assert_eq!(drifted, ["f00", "f01", "f02", "f03", "f04", "f05", "f06", "f07", "f08", "f09"]);
    }

    #[test]
    fn scale_drift_widens_the_spread_and_keeps_the_mean() {
        let generator = drifting(DriftKind::Scale, 1.0);
        for f in &generator.numeric {
            let (mean_before, sd_before) = moments(&generator, 0..5_000, &f.name);
            let (mean_after, sd_after) = moments(&generator, 5_000..10_000, &f.name);
            let ratio = sd_after / sd_before;
            let expected = if f.drifted { 2.0 } else { 1.0 };
            assert!((ratio / expected - 1.0).abs() < 0.15, "{}: sd ratio {ratio}", f.name);
            let shift = (mean_after - mean_before) / f.sd;
            assert!(shift.abs() < 0.15, "{}: mean moved {shift} sd", f.name);
        }
    }

    #[test]
    fn drift_ends_at_drift_end() {
        let generator = Generator::new(GeneratorConfig { drift_start: Some(5_000), drift_end: Some(10_000), ..GeneratorConfig::default() })
            .expect("valid");
        assert!(!generator.is_drifted(4_999));
        assert!(generator.is_drifted(5_000));
        assert!(generator.is_drifted(9_999));
        assert!(!generator.is_drifted(10_000));
        let f00 = &generator.numeric[0];
        let (before, _) = moments(&generator, 0..5_000, "f00");
        let (recovered, _) = moments(&generator, 10_000..15_000, "f00");
        assert!(((recovered - before) / f00.sd).abs() < 0.15);
    }

    #[test]
    fn categorical_mix_changes_for_drifted_categorical_features() {
        let generator = drifting(DriftKind::Mean, 1.0);
        // Zipf over 8 values: "a" has 1 / H(8) = 0.368; reversed, it has 0.046.
        let c0_before = category_share(&generator, 0..5_000, "c0", "a");
        let c0_after = category_share(&generator, 5_000..10_000, "c0", "a");
        assert!((c0_before - 0.368).abs() < 0.03, "{c0_before}");
        assert!((c0_after - 0.046).abs() < 0.03, "{c0_after}");
        let c1_before = category_share(&generator, 0..5_000, "c1", "a");
        let c1_after = category_share(&generator, 5_000..10_000, "c1", "a");
        assert!((c1_before - c1_after).abs() < 0.03, "{c1_before} vs {c1_after}");

        // A partial share moves part of the mass.
        let half = drifting(DriftKind::Mean, 0.5);
        let c0_half = category_share(&half, 5_000..10_000, "c0", "a");
        assert!((c0_half - (0.368 + 0.046) / 2.0).abs() < 0.03, "{c0_half}");
    }

    #[test]
    fn prediction_drift_follows_feature_drift() {
        let generator = drifting(DriftKind::Mean, 1.0);
        let rate = |range: Range<u64>| {
            let n = (range.end - range.start) as f64;
            range.map(|i| event(&generator, i)["prediction"].as_u64().unwrap_or(0)).sum::<u64>() as f64 / n
        };
        let before = rate(0..5_000);
        let after = rate(5_000..10_000);
        assert!(after > before + 0.2, "positive rate {before} -> {after}");
    }

    #[test]
    fn explicit_drifted_features_are_the_only_ones_that_drift() {
        let generator = Generator::new(GeneratorConfig {
            drift_start: Some(0),
            drifted_features: Some(vec!["f15".to_owned(), "c1".to_owned()]),
            ..GeneratorConfig::default()
        })
        .expect("valid");
        let drifted: Vec<&str> = generator
            .numeric
            .iter()
            .map(|f| (f.name.as_str(), f.drifted))
            .chain(generator.categorical.iter().map(|f| (f.name.as_str(), f.drifted)))
            .filter_map(|(name, drifted)| drifted.then_some(name))
            .collect();
        assert_eq!(drifted, ["f15", "c1"]);

        let err = Generator::new(GeneratorConfig { drifted_features: Some(vec!["f20".to_owned()]), ..GeneratorConfig::default() })
            .expect_err("f20 does not exist");
        assert!(matches!(err, GenerateError::UnknownDriftedFeature { ref name, .. } if name == "f20"));
    }

    #[test]
    fn missing_rate_omits_features_without_changing_the_others() {
        let full = Generator::new(GeneratorConfig::default()).expect("valid");
        let sparse = Generator::new(GeneratorConfig { missing_rate: 0.3, ..GeneratorConfig::default() }).expect("valid");
        let (mut present, mut total) = (0usize, 0usize);
        for i in 0..2_000 {
            let a = event(&full, i);
            let b = event(&sparse, i);
            let features = b["features"].as_object().expect("object");
            for (name, value) in features {
                assert_eq!(&a["features"][name], value, "event {i} {name}");
            }
            present += features.len();
            total += 22;
            // The model saw every feature, so the score does not change.
            assert_eq!(a["score"], b["score"]);
        }
        let omitted = 1.0 - present as f64 / total as f64;
        assert!((omitted - 0.3).abs() < 0.02, "omitted {omitted}");

        let none = Generator::new(GeneratorConfig { missing_rate: 1.0, ..GeneratorConfig::default() }).expect("valid");
        assert_eq!(event(&none, 0)["features"], serde_json::json!({}));
    }

    #[test]
    fn reference_rows_never_drift() {
        let mut generator = Generator::new(GeneratorConfig { drift_start: Some(0), ..GeneratorConfig::default() }).expect("valid");
        let (numeric_names, _) = generator.feature_names();
        let mut rows = Vec::new();
        for _ in 0..5_000 {
            let mut buf = Vec::new();
            generator.write_reference_row(&mut buf);
            let row: Value = serde_json::from_slice(&buf).expect("row is JSON");
            assert_eq!(row.as_object().map(|o| o.len()), Some(25));
            assert!(row["score"].is_f64());
            assert_eq!(row["prediction"], u64::from(row["score"].as_f64().unwrap_or(0.0) >= 0.5));
            rows.push(row);
        }
        for (f, name) in generator.numeric.iter().zip(&numeric_names) {
            let mean = rows.iter().filter_map(|r| numeric(r, name)).sum::<f64>() / rows.len() as f64;
            assert!(((mean - f.mean) / f.sd).abs() < 0.1, "{name}: reference mean {mean}, expected {}", f.mean);
        }
        let a_share = rows.iter().filter(|r| r["c0"] == "a").count() as f64 / rows.len() as f64;
        assert!((a_share - 0.368).abs() < 0.03, "{a_share}");
        // Reference rows come from their own stream, not from the events.
        let first_event = event(&generator, 0);
        assert_ne!(first_event["features"]["f10"], rows[0]["f10"]);
    }

    #[test]
    fn outputs_of_their_own_are_required() {
        let args = |extra: &[&str]| {
            let mut argv = vec!["generate", "--events", "10", "-o", "events.jsonl"];
            argv.extend_from_slice(extra);
            Cli::try_parse_from(argv).expect("parses").generate
        };
        let e = args(&["--labels-output", "events.jsonl"]).label_spec().expect_err("same file").to_string();
        assert!(e.contains("--output and --labels-output name the same file \"events.jsonl\""), "{e}");
        let e = args(&["--reference-output", "r.csv", "--labels-output", "r.csv"]).label_spec().expect_err("same file").to_string();
        assert!(e.contains("--labels-output and --reference-output"), "{e}");
        let kafka = ["--kafka-brokers", "127.0.0.1:1", "--kafka-topic", "p", "--labels-topic", "p"];
        let mut argv = vec!["generate", "--events", "10"];
        argv.extend_from_slice(&kafka);
        let e = Cli::try_parse_from(argv).expect("parses").generate.label_spec().expect_err("same topic").to_string();
        assert!(e.contains("--kafka-topic and --labels-topic name the same topic \"p\""), "{e}");
        assert!(args(&["--labels-output", "labels.jsonl", "--reference-output", "r.csv"]).label_spec().is_ok());
    }

    #[test]
    fn files_are_written_in_the_asked_format() {
        let dir = std::env::temp_dir().join(format!("driftwatch-generate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let config = GeneratorConfig { missing_rate: 0.1, ..GeneratorConfig::default() };

        let events = dir.join("events.jsonl");
        write_events_file(&config, 300, &events).expect("write events");
        let text = std::fs::read_to_string(&events).expect("read");
        assert_eq!(text.lines().count(), 300);
        assert!(text.ends_with('\n'));
        let mut expected = Vec::new();
        write_events_to(&Generator::new(config.clone()).expect("valid"), 0..300, &mut expected).expect("vec");
        assert_eq!(text.as_bytes(), expected);

        let csv = dir.join("reference.csv");
        write_reference_file(&config, 200, &csv).expect("write csv");
        let text = std::fs::read_to_string(&csv).expect("read");
        let mut lines = text.lines();
        let header = lines.next().expect("header");
        assert!(header.starts_with("f00,f01,"));
        assert!(header.ends_with(",f19,c0,c1,score,prediction,label"));
        let mut agree = 0;
        for line in lines.by_ref() {
            let fields: Vec<&str> = line.split(',').collect();
            assert_eq!(fields.len(), 25, "{line}");
            for field in &fields[..20] {
                assert!(field.is_empty() || field.parse::<f64>().is_ok(), "{field}");
            }
            let score = fields[22].parse::<f64>().expect("score");
            assert_eq!(fields[23], if score >= 0.5 { "1" } else { "0" });
            assert!(fields[24] == "0" || fields[24] == "1");
            agree += u32::from(fields[23] == fields[24]);
        }
        // A calibrated model with about 15 % positives is right most of the time, not always.
        assert!((140..200).contains(&agree), "{agree}");
        assert_eq!(text.lines().count(), 201);

        let jsonl = dir.join("reference.jsonl");
        write_reference_file(&config, 200, &jsonl).expect("write jsonl");
        let text = std::fs::read_to_string(&jsonl).expect("read");
        let mut generator = Generator::new(config.clone()).expect("valid");
        for line in text.lines() {
            let mut row = Vec::new();
            generator.write_reference_row(&mut row);
            assert_eq!(line.as_bytes(), row);
        }
        assert_eq!(text.lines().count(), 200);

        let err = write_reference_file(&config, 10, &dir.join("reference.parquet")).expect_err("parquet is not supported");
        assert!(matches!(err, GenerateError::ReferenceFormat { .. }));
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn timestamps_follow_events_per_second() {
        let generator =
            Generator::new(GeneratorConfig { events_per_second: 3.0, start_time_ms: 1_000, ..GeneratorConfig::default() }).expect("valid");
        assert_eq!(generator.timestamp_ms(0), 1_000);
        assert_eq!(generator.timestamp_ms(1), 1_333);
        assert_eq!(generator.timestamp_ms(3), 2_000);
        assert_eq!(generator.timestamp_ms(3_000_000), 1_000_001_000);
    }

    #[test]
    fn invalid_configs_are_refused() {
        let refused = |config: GeneratorConfig| Generator::new(config).is_err();
        let d = GeneratorConfig::default;
        assert!(refused(GeneratorConfig { numeric_features: 0, categorical_features: 0, ..d() }));
        assert!(refused(GeneratorConfig { categories: 1, ..d() }));
        assert!(refused(GeneratorConfig { categories: 27, ..d() }));
        assert!(refused(GeneratorConfig { missing_rate: 1.5, ..d() }));
        assert!(refused(GeneratorConfig { missing_rate: f64::NAN, ..d() }));
        assert!(refused(GeneratorConfig { events_per_second: 0.0, ..d() }));
        assert!(refused(GeneratorConfig { drift_size: f64::INFINITY, ..d() }));
        assert!(refused(GeneratorConfig { drift_kind: DriftKind::Scale, drift_size: -1.0, ..d() }));
        assert!(refused(GeneratorConfig { drift_end: Some(5), ..d() }));
        assert!(refused(GeneratorConfig { drift_start: Some(5), drift_end: Some(5), ..d() }));
        assert!(!refused(GeneratorConfig { numeric_features: 0, ..d() }));
        assert!(!refused(GeneratorConfig { categorical_features: 0, ..d() }));
    }

    #[test]
    fn model_names_are_escaped() {
        let generator = Generator::new(GeneratorConfig { model: "fr\"aud".to_owned(), ..GeneratorConfig::default() }).expect("valid");
        let event = event(&generator, 12);
        assert_eq!(event["model"], "fr\"aud");
        assert_eq!(event["prediction_id"], "fr\"aud-12");
    }

    #[test]
    fn default_start_time_is_2026_11_23() {
        let parsed = parse_start_time("2026-11-23T00:00:00Z").expect("rfc 3339");
        assert_eq!(parsed, DEFAULT_START_TIME_MS);
    }

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        generate: GenerateArgs,
    }

    #[test]
    fn arguments_parse_into_a_config() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "generate",
            "--events",
            "100",
            "--drift-start",
            "50",
            "--drift-features",
            "f01,c1",
            "--drift-kind",
            "scale",
            "--drift-size",
            "0.5",
            "--start-time",
            "2026-11-23T00:00:01Z",
        ])
        .expect("valid arguments");
        let config = cli.generate.config();
        assert_eq!(config.drift_start, Some(50));
        assert_eq!(config.drifted_features, Some(vec!["f01".to_owned(), "c1".to_owned()]));
        assert_eq!(config.drift_kind, DriftKind::Scale);
        assert_eq!(config.start_time_ms, DEFAULT_START_TIME_MS + 1_000);
        assert_eq!(cli.generate.output, PathBuf::from("-"));

        let defaults = Cli::try_parse_from(["generate", "--events", "1"]).expect("valid");
        assert_eq!(defaults.generate.config(), GeneratorConfig::default());
        assert_eq!(defaults.generate.reference_rows, 50_000);
        assert!(Cli::try_parse_from(["generate"]).is_err(), "--events is required");
    }

    /// `cargo test --release -p driftwatch-generator tests::write_event_throughput -- --ignored --nocapture`
    #[test]
    #[ignore = "prints a throughput figure; run in release"]
    fn write_event_throughput() {
        let generator = Generator::new(GeneratorConfig { drift_start: Some(500_000), ..GeneratorConfig::default() }).expect("valid");
        let events = 2_000_000u64;
        let mut buf = Vec::with_capacity(1 << 20);
        let mut bytes = 0;
        let started = std::time::Instant::now();
        for i in 0..events {
            generator.write_event(i, &mut buf);
            if buf.len() >= 1 << 20 {
                bytes += buf.len();
                buf.clear();
            }
        }
        bytes += buf.len();
        let elapsed = started.elapsed().as_secs_f64();
        println!(
            "write_event: {events} events in {elapsed:.3} s = {:.0} events/s, {:.0} MB/s, {} bytes/event",
            events as f64 / elapsed,
            bytes as f64 / elapsed / 1e6,
            bytes as u64 / events
        );
    }

    /// Labels: one per event, in time order, each `label_delay` late on
    /// average; calibrated to the score outside the drift interval, a share
    /// `label_flip` flipped inside it.
    #[test]
    fn labels_follow_their_predictions_in_time_order() {
        let generator =
            Generator::new(GeneratorConfig { drift_start: Some(10_000), drift_end: Some(20_000), ..GeneratorConfig::default() })
                .expect("valid config");
        let spec = LabelSpec { mean_delay_ms: 5_000, flip: 0.5 };
        let mut out = Vec::new();
        write_labels_to(&generator, 0..30_000, &spec, &mut out).expect("vec");
        let labels: Vec<Value> =
            out.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(|l| serde_json::from_slice(l).expect("JSON")).collect();
        assert_eq!(labels.len(), 30_000);
        let times: Vec<i64> = labels.iter().map(|l| l["timestamp"].as_i64().expect("ms")).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "labels in time order");
        let mut agree = [0u64; 2];
        let mut delay = 0i64;
        for l in &labels {
            let id = l["prediction_id"].as_str().expect("id");
            let i: u64 = id.strip_prefix("fraud-").expect("the events' ids").parse().expect("index");
            let e = event(&generator, i);
            assert_eq!(l["model"], "fraud");
            delay += l["timestamp"].as_i64().expect("ms") - e["timestamp"].as_i64().expect("ms");
            if l["label"] == e["prediction"] {
                agree[usize::from(generator.is_drifted(i))] += 1;
            }
        }
        let mean_delay = delay as f64 / labels.len() as f64;
        assert!((mean_delay - 5_000.0).abs() < 200.0, "mean delay {mean_delay} ms");
        let (outside, inside) = (agree[0] as f64 / 20_000.0, agree[1] as f64 / 10_000.0);
        // Flipping half of the labels makes agreement a coin toss inside the interval.
        assert!(outside > 0.6 && (inside - 0.5).abs() < 0.03, "agreement {outside} outside, {inside} inside");
        let mut again = Vec::new();
        write_labels_to(&generator, 0..30_000, &spec, &mut again).expect("vec");
        assert_eq!(out, again, "the same seed gives the same labels");
    }
}
