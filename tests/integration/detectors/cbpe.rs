//! CBPE against NannyML and scikit-learn on `tests/fixtures/cbpe`
//! (`generate.py` there wrote the data and `expected.json`).

use std::path::PathBuf;

use driftwatch_detectors::cbpe::{expected_calibration_error, needs_calibration, Cbpe, EstimatedMetric, ExpectedQuality, Isotonic};
use serde::Deserialize;

#[derive(Deserialize)]
struct Expected {
    needs_calibration: bool,
    windows: Vec<Window>,
    isotonic: IsotonicCase,
    ece: EceCase,
}

#[derive(Deserialize)]
struct Window {
    start_index: usize,
    end_index: usize,
    estimated: Metrics,
    estimated_roc_auc_exact: f64,
}

#[derive(Deserialize)]
struct Metrics {
    accuracy: f64,
    precision: f64,
    recall: f64,
    f1: f64,
    roc_auc: f64,
}

#[derive(Deserialize)]
struct IsotonicCase {
    x: Vec<f64>,
    y: Vec<f64>,
    query: Vec<f64>,
    predicted: Vec<f64>,
}

#[derive(Deserialize)]
struct EceCase {
    labels: Vec<u8>,
    probabilities: Vec<f64>,
    bins: usize,
    value: f64,
}

#[derive(Deserialize)]
struct Prediction {
    prediction: u8,
    score: f64,
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/cbpe")
}

fn expected() -> Expected {
    let text = std::fs::read_to_string(dir().join("expected.json")).expect("expected.json");
    serde_json::from_str(&text).expect("expected.json parses")
}

/// (labels, predictions, scores) of reference.csv (`x,label,y_pred,y_pred_proba`, labels as floats).
fn reference() -> (Vec<u8>, Vec<u8>, Vec<f64>) {
    let text = std::fs::read_to_string(dir().join("reference.csv")).expect("reference.csv");
    let (mut l, mut p, mut s) = (Vec::new(), Vec::new(), Vec::new());
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        l.push(f[1].parse::<f64>().expect("label") as u8);
        p.push(f[2].parse().expect("y_pred"));
        s.push(f[3].parse().expect("y_pred_proba"));
    }
    (l, p, s)
}

fn predictions() -> Vec<Prediction> {
    let text = std::fs::read_to_string(dir().join("predictions.jsonl")).expect("predictions.jsonl");
    text.lines().map(|l| serde_json::from_str(l).expect("prediction line")).collect()
}

fn close(what: &str, actual: f64, expected: f64, tolerance: f64) {
    assert!((actual - expected).abs() <= tolerance * expected.abs().max(1.0), "{what}: {actual} vs {expected}");
}

#[test]
fn isotonic_regression_equals_scikit_learn() {
    let case = expected().isotonic;
    let iso = Isotonic::fit(&case.x, &case.y).unwrap();
    for (q, want) in case.query.iter().zip(&case.predicted) {
        close(&format!("isotonic at {q}"), iso.predict(*q), *want, 1e-12);
    }
}

#[test]
fn expected_calibration_error_equals_nannyml() {
    let case = expected().ece;
    close("ece", expected_calibration_error(&case.labels, &case.probabilities, case.bins).unwrap(), case.value, 1e-12);
}

/// The estimate per tumbling window of 2 000 predictions equals NannyML's
/// CBPE fitted on the same reference: accuracy, precision, recall and F1
/// within 1e-9; ROC AUC within 1e-9 of the exact area and 1e-4 of NannyML's
/// (which rounds its cumulative sums to 5 decimals).
#[test]
fn estimate_equals_nannyml_cbpe() {
    let e = expected();
    let (labels, predicted, scores) = reference();
    assert_eq!(needs_calibration(&labels, &scores).unwrap(), e.needs_calibration);
    let cbpe = Cbpe::fit(&labels, &predicted, &scores, 2000).unwrap();
    assert!(cbpe.calibrates());
    let events = predictions();
    for w in &e.windows {
        let mut q = ExpectedQuality::new(1 << 20, 1000).unwrap();
        for p in &events[w.start_index..w.end_index] {
            q.update(p.prediction, cbpe.calibrate(p.score)).unwrap();
        }
        let got = q.estimate().unwrap();
        let at = |m: &str| format!("window {}: {m}", w.start_index);
        close(&at("accuracy"), got.accuracy, w.estimated.accuracy, 1e-9);
        close(&at("precision"), got.precision, w.estimated.precision, 1e-9);
        close(&at("recall"), got.recall, w.estimated.recall, 1e-9);
        close(&at("f1"), got.f1, w.estimated.f1, 1e-9);
        let auc = got.roc_auc.unwrap();
        close(&at("roc_auc (exact)"), auc, w.estimated_roc_auc_exact, 1e-9);
        close(&at("roc_auc (NannyML)"), auc, w.estimated.roc_auc, 1e-4);
        let (lo, hi) = cbpe.band(EstimatedMetric::Accuracy, got.accuracy, got.count).unwrap();
        assert!(lo < got.accuracy && got.accuracy < hi, "{}", at("band"));
    }
}
