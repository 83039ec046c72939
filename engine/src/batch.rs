//! Decoded events of one batch, column-major per model: what a shard hands
//! to the window stage.
//!
//! Hot path: a batch allocates one vector per column (and one text arena for
//! its categories), never one per event, and the window stage updates each
//! column's sketch over a run of rows in a tight loop.

use crate::config::FeatureType;
use crate::model::ModelPlan;

pub use driftwatch_connectors::table::{integer_category, MAX_INTEGER_CATEGORY};

/// Marks a row without a model version.
const NO_VERSION: u32 = u32::MAX;

/// One column of a batch's rows.
#[derive(Debug, Clone)]
pub enum RowColumn {
    /// Numeric values; NaN marks a missing one (absent, `null` or a wrong
    /// type): decoded JSON numbers are always finite, and 8 bytes a value
    /// instead of the 16 of `Option<f64>` halve the memory a batch crosses
    /// between threads in.
    Numeric(Vec<f64>),
    /// Categories as byte ranges of the rows' text arena ([`ModelRows::category`]); `None` is missing.
    Categorical(Vec<Option<(usize, usize)>>),
}

/// The decoded rows of one model in one batch, in input order.
#[derive(Debug, Clone)]
pub struct ModelRows {
    len: usize,
    ts: Vec<Option<i64>>,
    version: Vec<u32>,
    versions: Vec<Box<str>>,
    columns: Vec<RowColumn>,
    text: String,
    quality: Option<QualityRows>,
}

/// What the quality stage needs of each row: the prediction id, the
/// predicted class or value and the score (one entry per row).
#[derive(Debug, Clone, Default)]
pub struct QualityRows {
    /// Byte range of the prediction id in the rows' text; `None`: the row
    /// cannot be joined (no id, or an invalid prediction or score).
    ids: Vec<Option<(usize, usize)>>,
    /// Predicted class (0 or 1) or value.
    pub predicted: Vec<f64>,
    /// Positive-class score (the predicted class when no score is configured).
    pub score: Vec<f64>,
}

impl QualityRows {
    /// Row `i`'s prediction id, when it can be joined.
    pub fn id<'a>(&self, rows: &'a ModelRows, i: usize) -> Option<&'a str> {
        self.ids[i].map(|(a, b)| &rows.text[a..b])
    }

    fn clear(&mut self) {
        self.ids.clear();
        self.predicted.clear();
        self.score.clear();
    }
}

impl ModelRows {
    /// Empty rows with one column per column of `plan`.
    pub fn new(plan: &ModelPlan, capacity: usize) -> Self {
        let columns = plan
            .columns
            .iter()
            .map(|c| match c.kind {
                FeatureType::Numeric => RowColumn::Numeric(Vec::with_capacity(capacity)),
                FeatureType::Categorical => RowColumn::Categorical(Vec::with_capacity(capacity)),
            })
            .collect();
        Self {
            len: 0,
            ts: Vec::with_capacity(capacity),
            version: Vec::with_capacity(capacity),
            versions: Vec::new(),
            columns,
            text: String::new(),
            quality: plan.quality.as_ref().map(|_| QualityRows::default()),
        }
    }

    /// Empties the rows, keeping every buffer's capacity (the window stage
    /// hands applied batches back to the shards for reuse).
    pub fn clear(&mut self) {
        self.len = 0;
        self.ts.clear();
        self.version.clear();
        self.versions.clear();
        for c in &mut self.columns {
            match c {
                RowColumn::Numeric(v) => v.clear(),
                RowColumn::Categorical(v) => v.clear(),
            }
        }
        self.text.clear();
        if let Some(q) = &mut self.quality {
            q.clear();
        }
    }

    /// Rows held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Starts a row; the caller then pushes exactly one value per column.
    pub fn start_row(&mut self, ts: Option<i64>, version: Option<&str>) {
        self.len += 1;
        self.ts.push(ts);
        let v = match version {
            None => NO_VERSION,
            Some(v) => match self.versions.last() {
                Some(last) if **last == *v => (self.versions.len() - 1) as u32,
                _ => {
                    self.versions.push(v.into());
                    (self.versions.len() - 1) as u32
                }
            },
        };
        self.version.push(v);
    }

    /// Pushes column `c`'s number for the current row (`None` or NaN:
    /// missing).
    #[inline]
    pub fn push_number(&mut self, c: usize, x: Option<f64>) {
        if let RowColumn::Numeric(v) = &mut self.columns[c] {
            v.push(x.unwrap_or(f64::NAN));
        }
    }

    /// Pushes column `c`'s category for the current row.
    #[inline]
    pub fn push_category(&mut self, c: usize, s: Option<&str>) {
        if let RowColumn::Categorical(v) = &mut self.columns[c] {
            v.push(s.map(|s| {
                let start = self.text.len();
                self.text.push_str(s);
                (start, self.text.len())
            }));
        }
    }

    /// Appends the numeric columns' values of rows given row by row
    /// (`by_row[r * k + j]`: row `r`'s value of the `j`-th of the `k` numeric
    /// columns, NaN if missing), for rows started with
    /// [`ModelRows::start_row`] whose numbers were not pushed one by one.
    pub fn push_numbers_by_row(&mut self, by_row: &[f64]) {
        let k = self.columns.iter().filter(|c| matches!(c, RowColumn::Numeric(_))).count();
        if k == 0 {
            return;
        }
        let rows = self.len;
        debug_assert_eq!(by_row.len() % k, 0);
        let numeric = self.columns.iter_mut().filter_map(|c| match c {
            RowColumn::Numeric(v) => Some(v),
            RowColumn::Categorical(_) => None,
        });
        for (j, v) in numeric.enumerate() {
            v.extend(by_row[j..].iter().step_by(k));
            debug_assert_eq!(v.len(), rows, "a numeric value for every row started");
        }
    }

    /// Pushes a missing value of column `c` for the current row.
    #[inline]
    pub fn push_missing(&mut self, c: usize) {
        match &mut self.columns[c] {
            RowColumn::Numeric(v) => v.push(f64::NAN),
            RowColumn::Categorical(v) => v.push(None),
        }
    }

    /// Pushes the current row's quality fields (`id`: `None` when the row
    /// cannot be joined). Only for a model with quality.
    pub fn push_quality(&mut self, id: Option<&str>, predicted: f64, score: f64) {
        if let Some(q) = &mut self.quality {
            q.ids.push(id.map(|id| {
                let start = self.text.len();
                self.text.push_str(id);
                (start, self.text.len())
            }));
            q.predicted.push(predicted);
            q.score.push(score);
        }
    }

    /// The rows' quality fields, for a model with quality.
    pub fn quality(&self) -> Option<&QualityRows> {
        self.quality.as_ref()
    }

    /// Event time of row `i` (ms).
    pub fn ts(&self, i: usize) -> Option<i64> {
        self.ts[i]
    }

    /// Event times of rows `range`.
    pub fn ts_range(&self, range: std::ops::Range<usize>) -> &[Option<i64>] {
        &self.ts[range]
    }

    /// The model version of the last row in `range` that has one.
    pub fn last_version(&self, range: std::ops::Range<usize>) -> Option<&str> {
        self.version[range].iter().rev().find(|&&v| v != NO_VERSION).map(|&v| &*self.versions[v as usize])
    }

    /// The columns.
    pub fn columns(&self) -> &[RowColumn] {
        &self.columns
    }

    /// The text of a category range.
    pub fn category(&self, span: (usize, usize)) -> &str {
        &self.text[span.0..span.1]
    }
}

/// Buffers handed back by the stage that consumed them, so that the stage
/// producing them reuses their allocations: a bounded queue; a full queue
/// drops what is given, an empty one gives nothing.
pub(crate) struct Recycler<T> {
    tx: crossbeam_channel::Sender<T>,
    rx: crossbeam_channel::Receiver<T>,
}

impl<T> Clone for Recycler<T> {
    fn clone(&self) -> Self {
        Self { tx: self.tx.clone(), rx: self.rx.clone() }
    }
}

impl<T> Recycler<T> {
    pub(crate) fn new(capacity: usize) -> Self {
        let (tx, rx) = crossbeam_channel::bounded(capacity);
        Self { tx, rx }
    }

    /// A buffer given back earlier, if any.
    pub(crate) fn take(&self) -> Option<T> {
        self.rx.try_recv().ok()
    }

    /// Keeps `item` for reuse unless the queue is full.
    pub(crate) fn give(&self, item: T) {
        let _full = self.tx.try_send(item);
    }
}

/// Column batches the window stage has applied, handed back to the shards
/// so that their buffers are reused: a fresh batch is about 1.4 MB for 22
/// features × 4 096 rows, and allocating one per batch on one thread and
/// freeing it on another made the allocator return pages to the kernel and
/// fault them in again. One [`Recycler`] per model (batches of different
/// models have different columns).
#[derive(Clone)]
pub(crate) struct RowsPool {
    per_model: std::sync::Arc<[Recycler<ModelRows>]>,
}

impl RowsPool {
    pub(crate) fn new(models: usize, capacity: usize) -> Self {
        Self { per_model: (0..models).map(|_| Recycler::new(capacity)).collect() }
    }

    /// Empty rows for model `m` of `plan`, recycled when one is available.
    pub(crate) fn take(&self, m: usize, plan: &ModelPlan, capacity: usize) -> ModelRows {
        match self.per_model.get(m).and_then(Recycler::take) {
            Some(mut rows) => {
                rows.clear();
                rows
            }
            None => ModelRows::new(plan, capacity),
        }
    }

    /// Gives back every model's rows of one decoded batch.
    pub(crate) fn give_all(&self, rows: Vec<Option<ModelRows>>) {
        for (pool, r) in self.per_model.iter().zip(rows) {
            if let Some(r) = r {
                pool.give(r);
            }
        }
    }
}
