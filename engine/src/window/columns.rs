//! What a pane holds: one sketch per monitored column.

use std::ops::Range;

use driftwatch_detectors::feature::NumericWindow;
use driftwatch_detectors::sketch::{CategoryCounts, Sketch};
use serde::{Deserialize, Serialize};

use super::panes::PaneData;
use crate::batch::{ModelRows, RowColumn};
use crate::{Error, Result};

/// One column's window sketch.
// Boxing the numeric variant would add a pointer chase per update on the hot path.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum ColumnState {
    Numeric(NumericWindow),
    Categorical { counts: CategoryCounts, missing: u64 },
}

impl ColumnState {
    /// Adds rows `range` of `column` (hot path: one tight loop per column).
    pub(crate) fn update_rows(&mut self, rows: &ModelRows, column: &RowColumn, range: Range<usize>) {
        match (self, column) {
            (ColumnState::Numeric(w), RowColumn::Numeric(values)) => w.update_all_nan_missing(&values[range]),
            (ColumnState::Categorical { counts, missing }, RowColumn::Categorical(values)) => {
                for v in &values[range] {
                    match v {
                        Some(span) => counts.update(rows.category(*span)),
                        None => *missing += 1,
                    }
                }
            }
            // The plan gives both the same kind; a mismatch would be a bug.
            _ => debug_assert!(false, "column kinds differ"),
        }
    }

    fn merge(&mut self, other: &Self) -> Result<()> {
        match (self, other) {
            (ColumnState::Numeric(a), ColumnState::Numeric(b)) => a.merge(b)?,
            (ColumnState::Categorical { counts: a, missing: ma }, ColumnState::Categorical { counts: b, missing: mb }) => {
                a.merge(b)?;
                *ma += mb;
            }
            _ => return Err(Error::Internal("merging column states of different types".into())),
        }
        Ok(())
    }

    fn unmerge(&mut self, other: &Self) -> Result<()> {
        match (self, other) {
            (ColumnState::Numeric(a), ColumnState::Numeric(b)) => a.unmerge(b)?,
            (ColumnState::Categorical { counts: a, missing: ma }, ColumnState::Categorical { counts: b, missing: mb }) => {
                a.unmerge(b)?;
                a.drop_empty();
                *ma -= mb;
            }
            _ => return Err(Error::Internal("unmerging column states of different types".into())),
        }
        Ok(())
    }

    /// Whether the raw-value store dropped values at its capacity (then it
    /// cannot be unmerged exactly and the window is rebuilt from its panes).
    fn exact_incomplete(&self) -> bool {
        matches!(self, ColumnState::Numeric(w) if w.exact.overflow() > 0)
    }

    pub(crate) fn size_bytes(&self) -> usize {
        match self {
            ColumnState::Numeric(w) => w.size_bytes(),
            ColumnState::Categorical { counts, .. } => counts.size_bytes(),
        }
    }

    pub(crate) fn is_numeric(&self) -> bool {
        matches!(self, ColumnState::Numeric(_))
    }
}

/// A pane's columns, in plan order.
impl PaneData for Vec<ColumnState> {
    fn merge(&mut self, other: &Self) -> Result<()> {
        if self.len() != other.len() {
            return Err(Error::Internal("merging panes of different column counts".into()));
        }
        self.iter_mut().zip(other).try_for_each(|(a, b)| a.merge(b))
    }

    fn unmerge(&mut self, other: &Self) -> Result<()> {
        if self.len() != other.len() {
            return Err(Error::Internal("unmerging panes of different column counts".into()));
        }
        self.iter_mut().zip(other).try_for_each(|(a, b)| a.unmerge(b))
    }

    fn incomplete(&self) -> bool {
        self.iter().any(ColumnState::exact_incomplete)
    }

    fn size_bytes(&self) -> usize {
        self.iter().map(ColumnState::size_bytes).sum()
    }
}
