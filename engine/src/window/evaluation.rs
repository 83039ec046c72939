//! Evaluation: every detector on every column it applies to (metric
//! dispatch over the window's sketches), and the p-value correction across
//! a model's columns.

use driftwatch_detectors::categorical::categorical_drift;
use driftwatch_detectors::feature::{numeric_drift, KsOutcome, NumericStatistics};
use driftwatch_detectors::ks::KsMethod;

use super::columns::ColumnState;
use crate::config::{Correction, KsMode, Metric};
use crate::model::{ColumnReference, ModelPlan, ModelProfile};
use crate::{Error, Result};

/// One detector's raw result on one column.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Computed {
    /// The statistic; `None`: insufficient data.
    pub(crate) value: Option<f64>,
    /// Its p-value (tests, and the noise gate of distances over counts).
    pub(crate) p: Option<f64>,
    /// How it was computed.
    pub(crate) method: &'static str,
    /// Sketch KS: the exact D lies in [value, value + bound].
    pub(crate) bound: Option<f64>,
}

impl Computed {
    fn value(v: f64, method: &'static str) -> Self {
        Self { value: Some(v), p: None, method, bound: None }
    }
    fn insufficient() -> Self {
        Self { value: None, p: None, method: "none", bound: None }
    }
}

/// Significance a distance over category counts (PSI, Jensen–Shannon,
/// Hellinger, L∞ on a categorical feature) must also reach to breach: the
/// chi-square homogeneity test of the same counts, corrected like any
/// p-value. Plug-in distances over sparse counts are biased upward (a window
/// of 1 000 events over 100 000 equally likely names is far from the
/// reference by every distance, although nothing changed); the test knows
/// the sample sizes, so a breach means the distance is both large and more
/// than sampling noise.
pub const CATEGORY_NOISE_P_VALUE: f64 = 0.001;

/// The p-value threshold a result must also pass: its detector's, else the
/// noise gate of a distance over counts.
pub(crate) fn noise_gate(metric: Metric, c: &Computed) -> Option<f64> {
    (c.method == "counts" && metric != Metric::Chi2).then_some(CATEGORY_NOISE_P_VALUE)
}

/// Results per detector, then per column (`None`: the detector does not
/// apply to the column).
pub(crate) type Results = Vec<Vec<Option<Computed>>>;

/// Every detector of `plan` on every column of `window` it applies to.
pub(crate) fn compute(plan: &ModelPlan, reference: &ModelProfile, window: &mut [ColumnState]) -> Result<Results> {
    let mut results: Results = vec![vec![None; plan.columns.len()]; plan.detectors.len()];
    if window.len() != plan.columns.len() || reference.columns.len() != plan.columns.len() {
        return Err(Error::Internal(format!(
            "model {:?}: {} window columns and {} reference columns for {} planned",
            plan.name,
            window.len(),
            reference.columns.len(),
            plan.columns.len()
        )));
    }
    for (ci, state) in window.iter_mut().enumerate() {
        let wanted: Vec<usize> = (0..plan.detectors.len()).filter(|&d| plan.detectors[d].applies[ci]).collect();
        if wanted.is_empty() {
            continue;
        }
        let r = &reference.columns[ci].reference;
        let column = &plan.columns[ci].name;
        match (r, state) {
            (ColumnReference::Numeric { reference }, ColumnState::Numeric(w)) => {
                let ks = plan.detectors.iter().enumerate().find(|(d, det)| det.metric == Metric::Ks && wanted.contains(d));
                let which = NumericStatistics {
                    ks: ks.is_some(),
                    ks_method: ks.map_or(KsMethod::Auto, |(_, d)| d.p_value_method),
                    wasserstein: wanted.iter().any(|&d| plan.detectors[d].metric == Metric::Wasserstein),
                    exact_ks: ks.is_none_or(|(_, d)| d.mode != KsMode::Sketch),
                };
                let drift = defined(numeric_drift(reference, w, which), &plan.name, column)?;
                for &d in &wanted {
                    let metric = plan.detectors[d].metric;
                    results[d][ci] = Some(match &drift {
                        None => Computed::insufficient(),
                        Some(s) => match metric {
                            Metric::Psi => Computed::value(s.psi, "histogram"),
                            Metric::JensenShannon => Computed::value(s.jensen_shannon, "histogram"),
                            Metric::Hellinger => Computed::value(s.hellinger, "histogram"),
                            Metric::Wasserstein => match s.wasserstein {
                                Some(v) => Computed::value(v, "exact"),
                                // Validation keeps every window within the raw store.
                                None => return Err(missing(&plan.name, column, metric)),
                            },
                            Metric::Ks => match s.ks {
                                Some(KsOutcome::Exact(k)) => Computed {
                                    value: Some(k.statistic),
                                    p: Some(k.p_value),
                                    method: if k.method == KsMethod::Exact { "exact" } else { "asymptotic" },
                                    bound: None,
                                },
                                Some(KsOutcome::Sketch(k)) => {
                                    Computed { value: Some(k.statistic), p: Some(k.p_value), method: "sketch", bound: Some(k.error_bound) }
                                }
                                None => return Err(missing(&plan.name, column, metric)),
                            },
                            Metric::Chi2 | Metric::LInfinity => return Err(missing(&plan.name, column, metric)),
                        },
                    });
                }
            }
            (ColumnReference::Categorical { counts: rc, .. }, ColumnState::Categorical { counts, .. }) => {
                let view = counts.limited(plan.columns[ci].max_categories);
                let drift = defined(categorical_drift(rc, view.as_ref().unwrap_or(counts)), &plan.name, column)?;
                for &d in &wanted {
                    let metric = plan.detectors[d].metric;
                    results[d][ci] = Some(match &drift {
                        None => Computed::insufficient(),
                        Some(s) => {
                            // Distances over counts carry the chi-square p-value of the same counts:
                            // their noise gate (see `noise_gate`).
                            let gated = |v: f64| Computed { value: Some(v), p: Some(s.chi2.p_value), method: "counts", bound: None };
                            match metric {
                                Metric::Psi => gated(s.psi),
                                Metric::JensenShannon => gated(s.jensen_shannon),
                                Metric::Hellinger => gated(s.hellinger),
                                Metric::LInfinity => gated(s.l_infinity),
                                Metric::Chi2 => {
                                    Computed { value: Some(s.chi2.statistic), p: Some(s.chi2.p_value), method: "asymptotic", bound: None }
                                }
                                Metric::Ks | Metric::Wasserstein => return Err(missing(&plan.name, column, metric)),
                            }
                        }
                    });
                }
            }
            _ => {
                return Err(Error::Internal(format!("model {:?}, column {column:?}: reference and window column types differ", plan.name)))
            }
        }
    }
    Ok(results)
}

/// A statistic's result: `None` when the window has too little data for it,
/// an internal error (which stops the engine with its reason) for anything
/// else, since that is a broken invariant, never `insufficient_data`.
fn defined<T>(r: driftwatch_detectors::Result<T>, model: &str, column: &str) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(driftwatch_detectors::Error::InsufficientData { .. }) => Ok(None),
        Err(e) => Err(Error::Internal(format!("model {model:?}, column {column:?}: {e}"))),
    }
}

fn missing(model: &str, column: &str, metric: Metric) -> Error {
    Error::Internal(format!("model {model:?}, column {column:?}: {} was not computed by its sketches", metric.as_str()))
}

/// Adjusts the p-values of one detector across the model's columns.
pub(crate) fn correct(correction: Correction, results: &[Option<Computed>]) -> Vec<Option<f64>> {
    let raw: Vec<Option<f64>> = results.iter().map(|r| r.as_ref().and_then(|c| c.p)).collect();
    let m = raw.iter().flatten().count() as f64;
    match correction {
        Correction::None => raw,
        Correction::Bonferroni => raw.iter().map(|p| p.map(|p| (p * m).min(1.0))).collect(),
        Correction::BenjaminiHochberg => {
            let mut order: Vec<(usize, f64)> = raw.iter().enumerate().filter_map(|(i, p)| p.map(|p| (i, p))).collect();
            order.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
            let mut adjusted = vec![None; raw.len()];
            let mut running = 1.0f64;
            for (rank, &(i, p)) in order.iter().enumerate().rev() {
                running = running.min(p * m / (rank + 1) as f64);
                adjusted[i] = Some(running.min(1.0));
            }
            adjusted
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(p: f64) -> Option<Computed> {
        Some(Computed { value: Some(0.0), p: Some(p), method: "x", bound: None })
    }

    #[test]
    fn benjamini_hochberg_matches_hand_computation() {
        let r = vec![c(0.01), c(0.04), None, c(0.03)];
        let adj = correct(Correction::BenjaminiHochberg, &r);
        // m = 3; sorted 0.01, 0.03, 0.04 → 0.03, 0.04 (min(0.045, 0.04)), 0.04
        assert!((adj[0].unwrap() - 0.03).abs() < 1e-15);
        assert!((adj[3].unwrap() - 0.04).abs() < 1e-15);
        assert!((adj[1].unwrap() - 0.04).abs() < 1e-15);
        assert_eq!(adj[2], None);
    }

    #[test]
    fn bonferroni_and_none() {
        // Results without a p-value (distances) are not counted in m.
        let r = vec![c(0.01), c(0.04), None, c(0.5), Some(Computed::value(0.3, "histogram"))];
        let bonf = correct(Correction::Bonferroni, &r);
        assert!((bonf[1].unwrap() - 0.12).abs() < 1e-15);
        assert_eq!(bonf[3], Some(1.0)); // capped
        assert_eq!(bonf[4], None);
        assert_eq!(correct(Correction::None, &r), [Some(0.01), Some(0.04), None, Some(0.5), None]);
        // Insufficient data has no p-value either.
        assert_eq!(correct(Correction::Bonferroni, &[Some(Computed::insufficient()), c(0.2)]), [None, Some(0.2)]);
    }

    #[test]
    fn distances_over_counts_are_gated_by_their_chi_square() {
        let counts = Computed { value: Some(0.5), p: Some(0.2), method: "counts", bound: None };
        assert_eq!(noise_gate(Metric::Psi, &counts), Some(CATEGORY_NOISE_P_VALUE));
        assert_eq!(noise_gate(Metric::LInfinity, &counts), Some(CATEGORY_NOISE_P_VALUE));
        // The test itself has its own threshold, and numeric distances no gate.
        assert_eq!(noise_gate(Metric::Chi2, &counts), None);
        assert_eq!(noise_gate(Metric::Psi, &Computed::value(0.5, "histogram")), None);
    }

    #[test]
    fn only_insufficient_data_is_insufficient() {
        let short: driftwatch_detectors::Result<()> =
            Err(driftwatch_detectors::Error::InsufficientData { statistic: "ks", available: 0, required: 1 });
        assert!(matches!(defined(short, "m", "x"), Ok(None)));
        let broken: driftwatch_detectors::Result<()> = Err(driftwatch_detectors::Error::Incompatible { reason: "edges differ" });
        let e = defined(broken, "m", "x").unwrap_err();
        assert!(matches!(e, Error::Internal(_)), "{e}");
        assert!(e.to_string().contains("\"x\""), "{e}");
    }
}
