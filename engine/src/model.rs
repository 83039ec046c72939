//! A configuration compiled for the hot path: decoder slots, per-model
//! columns and detectors, and the reference profile each window is compared
//! with (built from a file through DataFusion, loaded from a profile, or taken
//! from the stream's first events).

use std::collections::HashMap;
use std::path::Path;

use driftwatch_detectors::binning::BinEdges;
use driftwatch_detectors::feature::{NumericReference, NumericSketchConfig, NumericWindow};
use driftwatch_detectors::sketch::{CategoryCounts, Sketch};
use serde::{Deserialize, Serialize};

use crate::config::{
    split_path, AlertingConfig, Config, Correction, FeatureType, KsMode, Metric, ModelConfig, QualityConfig, QualityMetric,
    QualityReferenceConfig, QualityTask, WindowSpec, DEFAULT_EXACT_MAX, DEFAULT_MAX_CATEGORIES,
};
use crate::decode::DecoderSpec;
use crate::quality::{ReferenceLabels, ReferenceQuality};
use crate::{Error, Result};
use driftwatch_connectors::table::{self as source, ColumnData, ColumnKind, ColumnRequest, TableSource};

/// Raw reference values kept for exact KS / Wasserstein.
pub const REFERENCE_EXACT_MAX: usize = 1_000_000;

/// One monitored column of a model.
#[derive(Debug, Clone)]
pub struct Column {
    /// Feature name (or the prediction field).
    pub name: String,
    /// Numeric or categorical.
    pub kind: FeatureType,
    /// Decoder slot holding its value.
    pub slot: usize,
    /// Whether this is the model's prediction rather than an input feature.
    pub is_prediction: bool,
    /// Categorical cap.
    pub max_categories: usize,
}

/// A detector resolved against the model's columns.
#[derive(Debug, Clone)]
pub struct DetectorPlan {
    /// The statistic.
    pub metric: Metric,
    /// Statistic threshold (breach when ≥).
    pub threshold: Option<f64>,
    /// p-value threshold (breach when <).
    pub p_value: Option<f64>,
    /// KS mode.
    pub mode: KsMode,
    /// KS p-value method on raw values.
    pub p_value_method: driftwatch_detectors::ks::KsMethod,
    /// Which columns it applies to (indexed like `ModelPlan::columns`).
    pub applies: Vec<bool>,
}

/// One model, compiled.
#[derive(Debug, Clone)]
pub struct ModelPlan {
    /// The model's name.
    pub name: String,
    /// Its position among the configured models.
    pub index: usize,
    /// Pane structure of its window.
    pub window: WindowSpec,
    /// Monitored columns: features, then the prediction.
    pub columns: Vec<Column>,
    /// Detectors in configuration order.
    pub detectors: Vec<DetectorPlan>,
    /// Multiple-testing correction.
    pub correction: Correction,
    /// Alerting rules.
    pub alerting: AlertingConfig,
    /// Shape of window sketches.
    pub window_sketch: NumericSketchConfig,
    /// Shape of reference sketches.
    pub reference_sketch: NumericSketchConfig,
    /// First N events as the reference, if configured.
    pub baseline_events: Option<u64>,
    /// Model quality from delayed labels, if configured.
    pub quality: Option<QualityPlan>,
}

/// One quality alert condition, compiled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum QualityBound {
    /// Breach below this value.
    Min(f64),
    /// Breach above this value.
    Max(f64),
    /// Breach more than this below the reference's value.
    MaxDrop(f64),
    /// Breach more than this above the reference's value.
    MaxRise(f64),
}

/// Model quality, compiled.
#[derive(Debug, Clone)]
pub struct QualityPlan {
    /// Classification or regression.
    pub task: QualityTask,
    /// Decoder slot of the predicted class / value.
    pub prediction_slot: usize,
    /// Decoder slot of the score.
    pub score_slot: Option<usize>,
    /// Metrics in output order.
    pub metrics: Vec<QualityMetric>,
    /// Alert conditions, per metric (indexed like `metrics`).
    pub bounds: Vec<Option<QualityBound>>,
    /// Metrics estimated by CBPE (empty: no estimate).
    pub estimated: Vec<QualityMetric>,
    /// Alert conditions on the estimates (indexed like `estimated`).
    pub estimated_bounds: Vec<Option<QualityBound>>,
    /// Label drift: the model's detector of the label column's test.
    pub label_drift: Option<LabelDriftPlan>,
    /// Label TTL in event-time milliseconds.
    pub label_ttl_ms: i64,
    /// Early-label TTL in event-time milliseconds.
    pub early_label_ttl_ms: i64,
    /// Bound of the join store.
    pub max_pending: usize,
    /// Reference table columns giving the reference quality.
    pub reference: Option<QualityReferenceConfig>,
}

/// Label drift of a model with `quality.reference`: the labels of a window's
/// joined predictions against the reference's, with the model's `chi2`
/// (classes) or `ks` (regression) detector that names no features.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LabelDriftPlan {
    /// `chi2` or `ks`.
    pub metric: Metric,
    /// Breach when the statistic is ≥ this.
    pub threshold: Option<f64>,
    /// Breach when the p-value is < this.
    pub p_value: Option<f64>,
    /// KS p-value method.
    pub ks_method: driftwatch_detectors::ks::KsMethod,
}

/// The bound of each of `metrics` among the detectors on realised
/// (`estimated` false) or estimated values.
fn quality_bounds(q: &QualityConfig, metrics: &[QualityMetric], estimated: bool) -> Vec<Option<QualityBound>> {
    metrics
        .iter()
        .map(|metric| {
            q.detectors.iter().find(|d| d.metric == *metric && d.estimated == estimated).and_then(|d| {
                d.min
                    .map(QualityBound::Min)
                    .or(d.max.map(QualityBound::Max))
                    .or(d.max_drop.map(QualityBound::MaxDrop))
                    .or(d.max_rise.map(QualityBound::MaxRise))
            })
        })
        .collect()
}

/// How label events are decoded.
#[derive(Debug, Clone)]
pub struct LabelPlan {
    /// What the label decoder extracts (slot 0: the label).
    pub decoder: DecoderSpec,
    /// Model of labels without a model field.
    pub default_model: Option<usize>,
}

/// The whole configuration, compiled.
#[derive(Debug, Clone)]
pub struct Plan {
    /// What the decoder extracts.
    pub decoder: DecoderSpec,
    /// Models in configuration order.
    pub models: Vec<ModelPlan>,
    /// Model name → index.
    pub by_name: HashMap<String, usize>,
    /// Model of events without a model field.
    pub default_model: Option<usize>,
    /// Label decoding, when a model has `quality`.
    pub labels: Option<LabelPlan>,
}

impl Plan {
    /// Compiles a validated configuration.
    pub fn new(config: &Config) -> Result<Self> {
        let mut slots: Vec<Vec<String>> = Vec::new();
        let mut slot_of = |path: Vec<String>| -> usize {
            if let Some(i) = slots.iter().position(|p| *p == path) {
                return i;
            }
            slots.push(path);
            slots.len() - 1
        };
        let prefix = config.input.features.as_str();
        let mut models = Vec::new();
        for m in &config.models {
            let mut columns = Vec::new();
            for f in &m.features {
                let path = match &f.path {
                    Some(p) => split_path(p),
                    None if prefix.is_empty() => vec![f.name.clone()],
                    None => {
                        let mut p = split_path(prefix);
                        p.push(f.name.clone());
                        p
                    }
                };
                columns.push(Column {
                    name: f.name.clone(),
                    kind: f.kind,
                    slot: slot_of(path),
                    is_prediction: false,
                    max_categories: f.max_categories.unwrap_or(DEFAULT_MAX_CATEGORIES),
                });
            }
            if let Some(p) = &m.prediction {
                columns.push(Column {
                    name: p.field.clone(),
                    kind: p.kind,
                    slot: slot_of(split_path(&p.field)),
                    is_prediction: true,
                    max_categories: DEFAULT_MAX_CATEGORIES,
                });
            }
            let quality = m.quality.as_ref().map(|q| QualityPlan {
                task: q.task,
                prediction_slot: slot_of(split_path(&q.prediction)),
                score_slot: q.score.as_deref().map(|s| slot_of(split_path(s))),
                metrics: q.metrics(),
                bounds: quality_bounds(q, &q.metrics(), false),
                estimated: q.estimated_metrics(),
                estimated_bounds: quality_bounds(q, &q.estimated_metrics(), true),
                label_drift: m.label_drift_metric().and_then(|metric| {
                    m.detectors.iter().find(|d| d.metric == metric && d.features.is_none()).map(|d| LabelDriftPlan {
                        metric,
                        threshold: d.threshold,
                        p_value: d.p_value,
                        ks_method: d.p_value_method.unwrap_or(driftwatch_detectors::ks::KsMethod::Auto),
                    })
                }),
                label_ttl_ms: q.label_ttl.0.as_millis().min(i64::MAX as u128) as i64,
                early_label_ttl_ms: q.early_label_ttl.0.as_millis().min(i64::MAX as u128) as i64,
                max_pending: q.max_pending,
                reference: q.reference.clone(),
            });
            let mut plan = ModelPlan::new(m, columns)?;
            plan.quality = quality;
            plan.index = models.len();
            models.push(plan);
        }
        let path = |p: &Option<String>| p.as_deref().map(split_path);
        let decoder = DecoderSpec {
            model: path(&config.input.model),
            model_version: path(&config.input.model_version),
            prediction_id: path(&config.input.prediction_id),
            timestamp: path(&config.input.timestamp),
            slots,
            max_event_bytes: config.engine.max_event_bytes,
        };
        let by_name: HashMap<String, usize> = models.iter().enumerate().map(|(i, m)| (m.name.clone(), i)).collect();
        let default_model = config.input.default_model.as_ref().and_then(|d| by_name.get(d).copied());
        let labels = models.iter().any(|m| m.quality.is_some()).then(|| {
            let l = &config.labels;
            LabelPlan {
                decoder: DecoderSpec {
                    model: l.model.as_deref().map(split_path),
                    model_version: None,
                    prediction_id: Some(split_path(&l.prediction_id)),
                    timestamp: Some(split_path(&l.timestamp)),
                    slots: vec![split_path(&l.label)],
                    max_event_bytes: config.engine.max_event_bytes,
                },
                default_model: l.default_model.as_ref().or(config.input.default_model.as_ref()).and_then(|d| by_name.get(d).copied()),
            }
        });
        Ok(Self { decoder, models, by_name, default_model, labels })
    }
}

impl ModelPlan {
    fn new(m: &ModelConfig, columns: Vec<Column>) -> Result<Self> {
        let window = m.window.spec("window").map_err(Error::Config)?;
        let detectors: Vec<DetectorPlan> = m
            .detectors
            .iter()
            .map(|d| DetectorPlan {
                metric: d.metric,
                threshold: d.threshold,
                p_value: d.p_value,
                mode: d.mode.unwrap_or_default(),
                p_value_method: d.p_value_method.unwrap_or(driftwatch_detectors::ks::KsMethod::Auto),
                applies: columns.iter().map(|c| d.metric.fits(c.kind) && d.features.as_ref().is_none_or(|l| l.contains(&c.name))).collect(),
            })
            .collect();
        let raw_needed =
            m.detectors.iter().any(|d| (d.metric == Metric::Ks && d.mode != Some(KsMode::Sketch)) || d.metric == Metric::Wasserstein);
        let exact_max = m
            .detectors
            .iter()
            .filter(|d| matches!(d.metric, Metric::Ks | Metric::Wasserstein))
            .filter_map(|d| d.exact_max)
            .max()
            .unwrap_or(DEFAULT_EXACT_MAX);
        let window_fits = match window {
            WindowSpec::Count { slide, panes } => slide * panes <= exact_max as u64,
            WindowSpec::Time { .. } => false,
        };
        let sketch_needed = m
            .detectors
            .iter()
            .any(|d| d.metric == Metric::Ks && (d.mode == Some(KsMode::Sketch) || (d.mode != Some(KsMode::Exact) && !window_fits)));
        let base = NumericSketchConfig { bins: m.bins(), quantile_sketch: sketch_needed, ..NumericSketchConfig::default() };
        Ok(Self {
            name: m.name.clone(),
            index: 0,
            window,
            columns,
            detectors,
            correction: m.correction,
            alerting: m.alerting.clone(),
            window_sketch: NumericSketchConfig { exact_capacity: if raw_needed { exact_max } else { 0 }, ..base },
            reference_sketch: NumericSketchConfig { exact_capacity: if raw_needed { REFERENCE_EXACT_MAX } else { 0 }, ..base },
            baseline_events: m.reference.baseline_events,
            quality: None,
        })
    }

    /// Columns to read from a reference table.
    pub fn column_requests(&self) -> Vec<ColumnRequest> {
        self.columns
            .iter()
            .map(|c| ColumnRequest {
                name: c.name.clone(),
                kind: match c.kind {
                    FeatureType::Numeric => ColumnKind::Numeric,
                    FeatureType::Categorical => ColumnKind::Categorical,
                },
            })
            .collect()
    }

    /// Builds the reference from raw column values.
    pub fn reference_from_columns(&self, rows: u64, columns: Vec<ColumnData>, source: String) -> Result<ModelProfile> {
        let mut out = Vec::with_capacity(columns.len());
        for (c, data) in self.columns.iter().zip(columns) {
            let reference = match (c.kind, data) {
                (FeatureType::Numeric, ColumnData::Numeric(values)) => {
                    let finite: Vec<f64> = values.iter().flatten().copied().filter(|x| x.is_finite()).collect();
                    let mut edges = BinEdges::from_reference(&finite, self.reference_sketch.bins).map_err(|_| Error::Reference {
                        model: self.name.clone(),
                        message: format!("column {:?} has no finite values", c.name),
                    })?;
                    if let [point] = edges.edges() {
                        // Every quantile is one value (a constant reference):
                        // numpy's edges leave the one bin `x <= point`, so
                        // values below the point would share its bin and a
                        // shift down would go unseen. An edge just below it
                        // gives the point a bin of its own.
                        edges = BinEdges::new(vec![point.next_down(), *point])?;
                    }
                    let mut w = NumericWindow::new(edges, &self.reference_sketch)?;
                    w.update_all(&values);
                    w.exact.sort();
                    ColumnReference::Numeric { reference: NumericReference { window: w } }
                }
                (FeatureType::Categorical, ColumnData::Categorical(values)) => {
                    let mut counts = CategoryCounts::new(c.max_categories);
                    let mut missing = 0;
                    for v in &values {
                        match v {
                            Some(s) => counts.update(s),
                            None => missing += 1,
                        }
                    }
                    if counts.count() == 0 {
                        return Err(Error::Reference { model: self.name.clone(), message: format!("column {:?} has no values", c.name) });
                    }
                    ColumnReference::Categorical { counts, missing }
                }
                _ => return Err(Error::Reference { model: self.name.clone(), message: format!("column {:?} has the wrong type", c.name) }),
            };
            out.push(ColumnProfile { name: c.name.clone(), reference });
        }
        Ok(ModelProfile { name: self.name.clone(), rows, source, columns: out })
    }

    /// Reads the reference file of a `path` reference through DataFusion.
    pub fn reference_from_file(&self, source: &TableSource) -> Result<ModelProfile> {
        let table = source::read_columns(source, &self.column_requests())?;
        self.reference_from_columns(table.rows, table.columns, table.description)
    }

    /// Checks that a loaded profile fits this model (columns, types, binning).
    pub fn check_profile(&self, p: &ModelProfile) -> Result<()> {
        let bad = |message: String| Error::Reference { model: self.name.clone(), message };
        for c in &self.columns {
            let col = p.columns.iter().find(|x| x.name == c.name).ok_or_else(|| bad(format!("profile lacks column {:?}", c.name)))?;
            match (&col.reference, c.kind) {
                (ColumnReference::Numeric { reference }, FeatureType::Numeric) => {
                    let window = &reference.window;
                    if window.sketch.is_none() && self.window_sketch.quantile_sketch {
                        return Err(bad(format!("profile column {:?} has no quantile sketch; rebuild it with this config", c.name)));
                    }
                    if window.exact.count() == 0 && self.window_sketch.exact_capacity > 0 {
                        return Err(bad(format!(
                            "profile column {:?} has no raw values for exact KS; rebuild it with this config",
                            c.name
                        )));
                    }
                }
                (ColumnReference::Categorical { .. }, FeatureType::Categorical) => {}
                _ => return Err(bad(format!("profile column {:?} has another type than configured", c.name))),
            }
        }
        Ok(())
    }
}

/// One column's reference.
#[allow(clippy::large_enum_variant)] // one per column, built once
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ColumnReference {
    /// Numeric: edges, histogram, sorted raw values, quantile sketch, moments.
    Numeric {
        /// The reference's sketches.
        reference: NumericReference,
    },
    /// Categorical: counts per category.
    Categorical {
        /// Counts.
        counts: CategoryCounts,
        /// Missing values.
        missing: u64,
    },
}

/// A named column reference.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnProfile {
    /// Column name.
    pub name: String,
    /// Its reference.
    pub reference: ColumnReference,
}

/// One model's reference profile.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelProfile {
    /// Model name.
    pub name: String,
    /// Reference rows.
    pub rows: u64,
    /// Where it came from.
    pub source: String,
    /// Columns.
    pub columns: Vec<ColumnProfile>,
}

impl ModelProfile {
    /// Makes a deserialized profile usable: the exact stores' sorted flag is
    /// not serialized, and a reference is never sorted lazily (it is shared
    /// read-only); sorting sorted data is linear.
    pub(crate) fn sort_after_load(&mut self) {
        for c in &mut self.columns {
            if let ColumnReference::Numeric { reference } = &mut c.reference {
                reference.window.exact.sort();
            }
        }
    }

    /// The reference of a column.
    pub fn column(&self, name: &str) -> Option<&ColumnReference> {
        self.columns.iter().find(|c| c.name == name).map(|c| &c.reference)
    }
}

/// The file written by `driftwatch profile`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Format version ([`PROFILE_VERSION`]).
    pub version: u32,
    /// When it was built (RFC 3339, UTC).
    pub created_at: String,
    /// One entry per model.
    pub models: Vec<ModelProfile>,
}

/// The profile format this build writes and reads. Version 2: quantile
/// sketches use the cubically interpolated bucket mapping (rebuild version 1
/// profiles with `driftwatch profile`).
pub const PROFILE_VERSION: u32 = 2;

impl Profile {
    /// Writes the profile as JSON.
    pub fn save(&self, path: &Path) -> Result<()> {
        let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
        serde_json::to_writer(std::io::BufWriter::new(file), self)
            .map_err(|e| Error::Profile { path: path.to_owned(), message: e.to_string() })
    }

    /// Reads a profile, refusing other format versions (checked before the
    /// rest is read, so an old profile gets this error, not a schema one).
    pub fn load(path: &Path) -> Result<Self> {
        #[derive(Deserialize)]
        struct Header {
            version: u32,
        }
        let invalid = |e: serde_json::Error| Error::Profile { path: path.to_owned(), message: e.to_string() };
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let header: Header = serde_json::from_str(&text).map_err(invalid)?;
        if header.version != PROFILE_VERSION {
            return Err(Error::Profile {
                path: path.to_owned(),
                message: format!(
                    "profile version {} (this build reads version {PROFILE_VERSION}; rebuild it with `driftwatch profile`)",
                    header.version
                ),
            });
        }
        let mut p: Profile = serde_json::from_str(&text).map_err(invalid)?;
        p.models.iter_mut().for_each(ModelProfile::sort_after_load);
        Ok(p)
    }
}

/// Builds the reference of every model that has a file or profile reference
/// (baseline models are built from the stream). `None` for baseline models.
pub fn build_references(config: &Config, plan: &Plan) -> Result<Vec<Option<ModelProfile>>> {
    let mut loaded: HashMap<std::path::PathBuf, Profile> = HashMap::new();
    let mut out = Vec::new();
    for (m, mp) in config.models.iter().zip(&plan.models) {
        let r = &m.reference;
        let profile = if let Some(path) = &r.path {
            Some(mp.reference_from_file(&TableSource { path: path.clone(), format: r.format, sql: r.sql.clone() })?)
        } else if let Some(path) = &r.profile {
            if !loaded.contains_key(path) {
                loaded.insert(path.clone(), Profile::load(path)?);
            }
            let p = loaded[path].models.iter().find(|x| x.name == m.name).cloned().ok_or_else(|| Error::Reference {
                model: m.name.clone(),
                message: format!("profile {} has no model {:?}", path.display(), m.name),
            })?;
            mp.check_profile(&p)?;
            // Windows index reference columns by position: follow the plan's order.
            let columns = mp.columns.iter().filter_map(|c| p.columns.iter().find(|x| x.name == c.name).cloned()).collect();
            Some(ModelProfile { columns, ..p })
        } else {
            None
        };
        out.push(profile);
    }
    Ok(out)
}

/// The reference's own quality for every model with `quality.reference`
/// (per metric, in the plan's order; empty for other models) and, with
/// `estimate: cbpe`, the estimator fitted on it, read from the model's
/// reference table through DataFusion.
pub fn build_reference_quality(config: &Config, plan: &Plan) -> Result<Vec<ReferenceQuality>> {
    let mut out = Vec::new();
    for (m, mp) in config.models.iter().zip(&plan.models) {
        let (Some(q), Some(path)) = (&mp.quality, &m.reference.path) else {
            out.push(ReferenceQuality::default());
            continue;
        };
        let Some(r) = &q.reference else {
            out.push(ReferenceQuality::default());
            continue;
        };
        let source = TableSource { path: path.clone(), format: m.reference.format, sql: m.reference.sql.clone() };
        out.push(reference_quality_of(&m.name, q, mp.window, r, &source)?);
    }
    Ok(out)
}

/// Rows per reference chunk for the estimate's band: the window's size for
/// count windows, else 10 000, at most the reference's rows and 10 000.
pub fn cbpe_chunk_rows(window: WindowSpec, rows: usize) -> usize {
    let size = match window {
        WindowSpec::Count { slide, panes } => usize::try_from(slide.saturating_mul(panes)).unwrap_or(usize::MAX),
        WindowSpec::Time { .. } => CBPE_MAX_CHUNK_ROWS,
    };
    size.min(rows).clamp(1, CBPE_MAX_CHUNK_ROWS)
}

/// The largest reference chunk of the estimate's band (bigger windows scale its spread).
pub const CBPE_MAX_CHUNK_ROWS: usize = 10_000;

fn reference_quality_of(
    model: &str,
    q: &QualityPlan,
    window: WindowSpec,
    r: &QualityReferenceConfig,
    source: &TableSource,
) -> Result<ReferenceQuality> {
    let task = q.task;
    let bad = |message: String| Error::Reference { model: model.to_owned(), message };
    let class_or_value = |name: &str| match task {
        // Classes are read as text so that 0/1, 0.0/1.0 and false/true all work.
        QualityTask::BinaryClassification => ColumnRequest::categorical(name),
        QualityTask::Regression => ColumnRequest::numeric(name),
    };
    let mut request = vec![class_or_value(&r.label), class_or_value(&r.prediction)];
    request.extend(r.score.as_deref().map(ColumnRequest::numeric));
    let table = source::read_columns(source, &request)?;
    let column = |i: usize, name: &str| -> Result<Vec<f64>> {
        match &table.columns[i] {
            ColumnData::Numeric(values) => values
                .iter()
                .enumerate()
                .map(|(row, v)| {
                    v.filter(|x| x.is_finite()).ok_or_else(|| bad(format!("column {name:?} row {}: not a finite number", row + 1)))
                })
                .collect(),
            ColumnData::Categorical(values) => values
                .iter()
                .enumerate()
                .map(|(row, v)| {
                    v.as_deref().and_then(binary_class).ok_or_else(|| {
                        bad(format!("column {name:?} row {}: {v:?} is not a binary class (0/1, 0.0/1.0, false/true)", row + 1))
                    })
                })
                .collect(),
        }
    };
    let labels = column(0, &r.label)?;
    let predicted = column(1, &r.prediction)?;
    let scores = match &r.score {
        Some(name) => {
            let s = column(2, name)?;
            if let Some(row) = s.iter().position(|x| !(0.0..=1.0).contains(x)) {
                return Err(bad(format!("column {name:?} row {}: scores are probabilities in [0, 1]", row + 1)));
            }
            s
        }
        None => predicted.clone(),
    };
    if labels.is_empty() {
        return Err(bad("the reference table has no rows for its quality".into()));
    }
    let cbpe = if q.estimated.is_empty() {
        None
    } else {
        let classes = |v: &[f64]| v.iter().map(|&x| x as u8).collect::<Vec<u8>>();
        let chunk = cbpe_chunk_rows(window, labels.len());
        let fitted = driftwatch_detectors::cbpe::Cbpe::fit(&classes(&labels), &classes(&predicted), &scores, chunk)
            .map_err(|e| bad(format!("cbpe cannot be fitted on the reference's {} rows: {e}", labels.len())))?;
        Some(fitted)
    };
    let label_reference = q.label_drift.map(|_| match task {
        QualityTask::BinaryClassification => {
            let ones = labels.iter().filter(|&&l| l == 1.0).count() as u64;
            ReferenceLabels::Classes([labels.len() as u64 - ones, ones])
        }
        QualityTask::Regression => {
            let mut values = labels.clone();
            values.sort_unstable_by(f64::total_cmp);
            ReferenceLabels::Values(values)
        }
    });
    let pairs: Vec<(f64, f64, f64)> = labels.into_iter().zip(predicted).zip(scores).map(|((l, p), s)| (l, p, s)).collect();
    let values = crate::quality::reference_quality(task, &q.metrics, &pairs)?;
    Ok(ReferenceQuality { values, cbpe, labels: label_reference })
}

/// A label or predicted value of `task` as decoded: a binary class as
/// 0/1, 0.0/1.0, false/true (number, boolean or text), a regression value
/// as a number; `None` for anything else.
pub fn task_value(task: QualityTask, v: &crate::decode::SlotValue<'_>) -> Option<f64> {
    use crate::decode::SlotValue;
    match (task, v) {
        (QualityTask::Regression, SlotValue::Number(x)) => Some(*x),
        (QualityTask::BinaryClassification, SlotValue::Number(x)) if *x == 0.0 || *x == 1.0 => Some(*x),
        (QualityTask::BinaryClassification, SlotValue::Bool(b)) => Some(f64::from(u8::from(*b))),
        (QualityTask::BinaryClassification, SlotValue::Text(t)) => binary_class(t),
        _ => None,
    }
}

/// A binary class written as text: `0`/`1`, `0.0`/`1.0`, `false`/`true`.
pub fn binary_class(s: &str) -> Option<f64> {
    match s {
        "0" | "0.0" | "false" | "False" => Some(0.0),
        "1" | "1.0" | "true" | "True" => Some(1.0),
        _ => None,
    }
}
