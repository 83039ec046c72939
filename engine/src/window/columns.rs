//! What a pane holds: one sketch per monitored column.

use std::ops::Range;

use driftwatch_detectors::feature::NumericWindow;
use driftwatch_detectors::sketch::{CategoryCounts, Sketch};
use serde::{Deserialize, Serialize};

use super::panes::PaneData;
use crate::batch::{ModelRows, RowColumn};
use crate::model::ColumnReference;
use crate::{Error, Result};
use driftwatch_detectors::feature::NumericSketchConfig;

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

    /// Whether a merge may have dropped data, so that unmerging a pane
    /// would not give the merge of the others: the raw-value store reached
    /// its capacity, or the category counts their cap (a name a merge could
    /// not admit went to `__other__`, and a later merge may have admitted
    /// the same name: its count is then split between its slot and
    /// `__other__`, which no unmerge can take apart). The window is then
    /// rebuilt from its panes.
    fn exact_incomplete(&self) -> bool {
        match self {
            ColumnState::Numeric(w) => w.exact.overflow() > 0,
            ColumnState::Categorical { counts, .. } => counts.distinct() >= counts.max_categories(),
        }
    }

    pub(crate) fn size_bytes(&self) -> usize {
        match self {
            ColumnState::Numeric(w) => w.size_bytes(),
            ColumnState::Categorical { counts, .. } => counts.size_bytes(),
        }
    }

    /// Checks a restored column against the reference it is compared with
    /// and the plan's window sketches: its own invariants (each sketch's
    /// `validate`), the same bin edges, the same exact-store capacity, the
    /// quantile sketch kept or not, and that it merges into `fresh` (an
    /// empty column as the plan builds it now: same sketch parameters, same
    /// category cap).
    pub(crate) fn check(
        &self,
        reference: &ColumnReference,
        sketch: &NumericSketchConfig,
        fresh: ColumnState,
    ) -> std::result::Result<(), String> {
        let mut probe = fresh;
        probe.merge(self).map_err(|e| format!("it does not fit the configured sketches ({e})"))?;
        match (self, reference) {
            (ColumnState::Numeric(w), ColumnReference::Numeric { reference }) => {
                let invalid = |e: driftwatch_detectors::Error| e.to_string();
                w.histogram.validate().map_err(invalid)?;
                w.exact.validate().map_err(invalid)?;
                w.moments.validate().map_err(invalid)?;
                if let Some(s) = &w.sketch {
                    s.validate().map_err(invalid)?;
                }
                if w.histogram.edges() != reference.edges() {
                    return Err("its bin edges are not the reference's (was the reference rebuilt?)".into());
                }
                if w.exact.capacity() != sketch.exact_capacity {
                    return Err(format!("exact store of {} values, configured {}", w.exact.capacity(), sketch.exact_capacity));
                }
                if w.sketch.is_some() != sketch.quantile_sketch {
                    return Err("the quantile sketch is kept in one and not in the other".into());
                }
                Ok(())
            }
            (ColumnState::Categorical { counts, missing }, ColumnReference::Categorical { .. }) => {
                counts.validate().map_err(|e| e.to_string())?;
                if counts.count().checked_add(*missing).is_none() {
                    return Err("its counts overflow".into());
                }
                Ok(())
            }
            _ => Err("a numeric column where the model has a categorical one, or the reverse".into()),
        }
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
