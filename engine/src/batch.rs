//! Decoded events of one batch, column-major per model: what a shard hands
//! to the window stage.
//!
//! Hot path: a batch allocates one vector per column (and one text arena for
//! its categories), never one per event, and the window stage updates each
//! column's sketch over a run of rows in a tight loop.

use crate::config::FeatureType;
use crate::model::ModelPlan;

/// Marks a row without a model version.
const NO_VERSION: u32 = u32::MAX;

/// One column of a batch's rows.
#[derive(Debug, Clone)]
pub enum RowColumn {
    /// Numeric values; `None` is missing (absent, `null` or a wrong type).
    Numeric(Vec<Option<f64>>),
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

    /// Pushes column `c`'s number for the current row.
    #[inline]
    pub fn push_number(&mut self, c: usize, x: Option<f64>) {
        if let RowColumn::Numeric(v) = &mut self.columns[c] {
            v.push(x);
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

    /// Pushes a missing value of column `c` for the current row.
    #[inline]
    pub fn push_missing(&mut self, c: usize) {
        match &mut self.columns[c] {
            RowColumn::Numeric(v) => v.push(None),
            RowColumn::Categorical(v) => v.push(None),
        }
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
