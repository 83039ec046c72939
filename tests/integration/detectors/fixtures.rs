//! Every case of `detectors/tests/fixtures/{numeric,categorical}.json`
//! through the public API, within the tolerances of the fixtures' README:
//! statistics within 1e-9 relative (1e-12 absolute near zero), p-values
//! within 1e-6 absolute and, above 1e-300, 1e-6 relative.

use driftwatch_detectors::binning::BinEdges;
use driftwatch_detectors::categorical::categorical_drift;
use driftwatch_detectors::distance;
use driftwatch_detectors::feature::{numeric_drift, KsOutcome, NumericReference, NumericSketchConfig, NumericStatistics};
use driftwatch_detectors::ks::{ks_2samp, KsMethod};
use driftwatch_detectors::sketch::{CategoryCounts, ExactSample, FixedHistogram, LogSketch, Sketch};
use driftwatch_tests::load_stats_fixture;
use serde::Deserialize;

#[derive(Deserialize)]
struct File<C> {
    cases: Vec<C>,
}

#[derive(Deserialize)]
struct NumericCase {
    name: String,
    reference: Vec<f64>,
    current: Vec<f64>,
    bins: usize,
    expected: NumericExpected,
}

#[derive(Deserialize)]
struct NumericExpected {
    ks_statistic: f64,
    ks_pvalue_auto: f64,
    ks_pvalue_asymp: f64,
    ks_pvalue_exact: f64,
    wasserstein: f64,
    quantile_edges: Vec<f64>,
    reference_bin_counts: Vec<u64>,
    current_bin_counts: Vec<u64>,
    psi: f64,
    jensen_shannon_base2: f64,
    hellinger: f64,
}

#[derive(Deserialize)]
struct CategoricalCase {
    name: String,
    reference: Vec<String>,
    current: Vec<String>,
    expected: CategoricalExpected,
}

#[derive(Deserialize)]
struct CategoricalExpected {
    categories: Vec<String>,
    reference_counts: Vec<u64>,
    current_counts: Vec<u64>,
    chi2_statistic: f64,
    chi2_pvalue: f64,
    chi2_dof: u64,
    psi: f64,
    jensen_shannon_base2: f64,
    hellinger: f64,
    l_infinity: f64,
}

/// Statistics and distances: 1e-9 relative, 1e-12 absolute near zero.
#[track_caller]
fn assert_stat(case: &str, what: &str, actual: f64, expected: f64) {
    let tol = (1e-9 * expected.abs()).max(1e-12);
    assert!(
        (actual - expected).abs() <= tol,
        "{case}: {what} = {actual:e}, SciPy gives {expected:e} (difference {:e} > {tol:e})",
        (actual - expected).abs()
    );
}

/// p-values: 1e-6 absolute, and 1e-6 relative above 1e-300.
#[track_caller]
fn assert_p(case: &str, what: &str, actual: f64, expected: f64) {
    let diff = (actual - expected).abs();
    assert!(diff <= 1e-6, "{case}: {what} = {actual:e}, SciPy gives {expected:e} (absolute difference {diff:e})");
    if expected > 1e-300 {
        assert!(
            diff <= 1e-6 * expected,
            "{case}: {what} = {actual:e}, SciPy gives {expected:e} (relative difference {:e})",
            diff / expected
        );
    }
}

fn numeric_cases() -> Vec<NumericCase> {
    let file: File<NumericCase> = load_stats_fixture("numeric");
    assert!(file.cases.len() >= 17, "the numeric fixture lost cases");
    file.cases
}

#[test]
fn numeric_quantile_edges_and_bin_counts() {
    for c in numeric_cases() {
        let edges = BinEdges::from_reference(&c.reference, c.bins).unwrap();
        assert_eq!(edges.edges().len(), c.expected.quantile_edges.len(), "{}: edge count", c.name);
        for (a, e) in edges.edges().iter().zip(&c.expected.quantile_edges) {
            assert_stat(&c.name, "edge", *a, *e);
        }
        let r = FixedHistogram::from_values(edges.clone(), &c.reference);
        let q = FixedHistogram::from_values(edges, &c.current);
        assert_eq!(r.counts(), c.expected.reference_bin_counts.as_slice(), "{}: reference bins", c.name);
        assert_eq!(q.counts(), c.expected.current_bin_counts.as_slice(), "{}: current bins", c.name);
    }
}

#[test]
fn numeric_psi_jensen_shannon_hellinger() {
    for c in numeric_cases() {
        let edges = BinEdges::from_reference(&c.reference, c.bins).unwrap();
        let r = FixedHistogram::from_values(edges.clone(), &c.reference);
        let q = FixedHistogram::from_values(edges, &c.current);
        assert_stat(&c.name, "psi", r.psi(&q).unwrap(), c.expected.psi);
        assert_stat(&c.name, "jensen_shannon", r.jensen_shannon(&q).unwrap(), c.expected.jensen_shannon_base2);
        assert_stat(&c.name, "hellinger", r.hellinger(&q).unwrap(), c.expected.hellinger);
    }
}

#[test]
fn numeric_wasserstein() {
    for c in numeric_cases() {
        assert_stat(&c.name, "wasserstein", distance::wasserstein(&c.reference, &c.current).unwrap(), c.expected.wasserstein);
        let mut r = ExactSample::from_values(&c.reference);
        let mut q = ExactSample::from_values(&c.current);
        assert_stat(&c.name, "wasserstein (exact store)", r.wasserstein(&mut q).unwrap(), c.expected.wasserstein);
    }
}

#[test]
fn numeric_ks_every_method() {
    for c in numeric_cases() {
        let auto = ks_2samp(&c.reference, &c.current, KsMethod::Auto).unwrap();
        assert_stat(&c.name, "ks statistic", auto.statistic, c.expected.ks_statistic);
        assert_p(&c.name, "ks p (auto)", auto.p_value, c.expected.ks_pvalue_auto);
        let exact = ks_2samp(&c.reference, &c.current, KsMethod::Exact).unwrap();
        assert_eq!(exact.method, KsMethod::Exact, "{}: exact fell back", c.name);
        assert_p(&c.name, "ks p (exact)", exact.p_value, c.expected.ks_pvalue_exact);
        let asymp = ks_2samp(&c.reference, &c.current, KsMethod::Asymptotic).unwrap();
        assert_eq!(asymp.method, KsMethod::Asymptotic);
        assert_stat(&c.name, "ks statistic (asymp)", asymp.statistic, c.expected.ks_statistic);
        assert_p(&c.name, "ks p (asymp)", asymp.p_value, c.expected.ks_pvalue_asymp);
    }
}

/// The feature-level path (reference profile + window sketches) gives the
/// same values as the free functions.
#[test]
fn numeric_feature_path_matches_fixtures() {
    for c in numeric_cases() {
        let config = NumericSketchConfig { bins: c.bins, ..NumericSketchConfig::default() };
        let reference = NumericReference::from_values(&c.reference, &config).unwrap();
        let mut window = reference.new_window(&config).unwrap();
        for &x in &c.current {
            window.update(Some(x));
        }
        let d = numeric_drift(&reference, &mut window, NumericStatistics::default()).unwrap();
        assert_stat(&c.name, "psi", d.psi, c.expected.psi);
        assert_stat(&c.name, "jensen_shannon", d.jensen_shannon, c.expected.jensen_shannon_base2);
        assert_stat(&c.name, "hellinger", d.hellinger, c.expected.hellinger);
        let Some(KsOutcome::Exact(ks)) = d.ks else { panic!("{}: expected the exact KS path", c.name) };
        assert_stat(&c.name, "ks statistic", ks.statistic, c.expected.ks_statistic);
        assert_p(&c.name, "ks p", ks.p_value, c.expected.ks_pvalue_auto);
        assert_stat(&c.name, "wasserstein", d.wasserstein.unwrap(), c.expected.wasserstein);
    }
}

/// KS from the bounded sketches brackets SciPy's statistic within the
/// sketch's stated bound, on every fixture case.
#[test]
fn numeric_sketch_ks_within_stated_bound() {
    for c in numeric_cases() {
        let mut r = LogSketch::default();
        let mut q = LogSketch::default();
        c.reference.iter().for_each(|&x| r.update(x));
        c.current.iter().for_each(|&x| q.update(x));
        let ks = r.ks(&q).unwrap();
        let exact = c.expected.ks_statistic;
        assert!(
            ks.statistic <= exact + 1e-12 && exact <= ks.statistic + ks.error_bound + 1e-12,
            "{}: sketch D {} + bound {} does not bracket SciPy's D {exact}",
            c.name,
            ks.statistic,
            ks.error_bound
        );
        assert!(ks.p_value_lower <= ks.p_value);
    }
}

#[test]
fn categorical_every_statistic() {
    let file: File<CategoricalCase> = load_stats_fixture("categorical");
    assert!(file.cases.len() >= 8, "the categorical fixture lost cases");
    for c in file.cases {
        let mut r = CategoryCounts::new(1000);
        let mut q = CategoryCounts::new(1000);
        c.reference.iter().for_each(|s| r.update(s));
        c.current.iter().for_each(|s| q.update(s));
        let (names, rc, qc) = r.aligned(&q);
        assert_eq!(names, c.expected.categories.iter().map(String::as_str).collect::<Vec<_>>(), "{}", c.name);
        assert_eq!(rc, c.expected.reference_counts, "{}: reference counts", c.name);
        assert_eq!(qc, c.expected.current_counts, "{}: current counts", c.name);
        let d = categorical_drift(&r, &q).unwrap();
        assert_stat(&c.name, "chi2 statistic", d.chi2.statistic, c.expected.chi2_statistic);
        assert_eq!(d.chi2.dof, c.expected.chi2_dof, "{}: chi2 dof", c.name);
        assert_p(&c.name, "chi2 p", d.chi2.p_value, c.expected.chi2_pvalue);
        assert_stat(&c.name, "psi", d.psi, c.expected.psi);
        assert_stat(&c.name, "jensen_shannon", d.jensen_shannon, c.expected.jensen_shannon_base2);
        assert_stat(&c.name, "hellinger", d.hellinger, c.expected.hellinger);
        assert_stat(&c.name, "l_infinity", d.l_infinity, c.expected.l_infinity);
    }
}
