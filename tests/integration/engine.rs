//! The engine end to end through its library API: configuration files,
//! replay determinism, the golden drift scenario, statistics equal to the
//! detectors on raw window data, bad input, event-time windows and baselines.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use driftwatch_detectors::binning::BinEdges;
use driftwatch_detectors::categorical::categorical_drift;
use driftwatch_detectors::ks::{ks_2samp, KsMethod};
use driftwatch_detectors::sketch::{CategoryCounts, FixedHistogram, Sketch};
use driftwatch_engine::config::Config;
use driftwatch_engine::model::Plan;
use driftwatch_engine::pipeline::{replay, Outputs, Summary};
use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!("driftwatch-test-{}-{name}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Replays and returns (report, evaluations bytes, events bytes, dead letters bytes).
fn run(config: &Config, input: &Path, shards: usize) -> (Summary, Vec<u8>, Vec<u8>, Vec<u8>) {
    run_with_labels(config, input, None, shards)
}

/// [`run`] with a labels file.
fn run_with_labels(config: &Config, input: &Path, labels: Option<&Path>, shards: usize) -> (Summary, Vec<u8>, Vec<u8>, Vec<u8>) {
    let dir = temp_dir("replay");
    let (ev, de, dl) = (dir.join("evaluations.jsonl"), dir.join("events.jsonl"), dir.join("dead.jsonl"));
    let open = |p: &Path| Some(driftwatch_engine::pipeline::create_output(p).unwrap());
    let outputs = Outputs { evaluations: open(&ev), events: open(&de), dead_letter: open(&dl) };
    let report = replay(config, input, labels, outputs, Some(shards)).unwrap();
    let read = |p: &Path| std::fs::read(p).unwrap();
    let out = (report, read(&ev), read(&de), read(&dl));
    std::fs::remove_dir_all(dir).ok();
    out
}

fn lines(bytes: &[u8]) -> Vec<Value> {
    bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(|l| serde_json::from_slice(l).unwrap()).collect()
}

fn golden() -> (Config, PathBuf) {
    let dir = repo().join("tests/fixtures/drift_episode");
    (Config::from_file(&dir.join("config.yaml")).unwrap(), dir.join("input.jsonl"))
}

#[test]
fn every_config_file_validates() {
    let mut seen = 0;
    for entry in std::fs::read_dir(repo().join("configs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            let c = Config::from_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let plan = Plan::new(&c).unwrap();
            driftwatch_engine::model::build_references(&c, &plan).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            driftwatch_engine::model::build_reference_quality(&c, &plan).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            seen += 1;
        }
    }
    assert!(seen >= 1, "no config files found");
}

fn config_error(yaml: &str) -> String {
    match Config::from_yaml(yaml) {
        Ok(_) => panic!("accepted:\n{yaml}"),
        Err(e) => e.to_string(),
    }
}

const BASE: &str = r#"
models:
  - name: m
    reference: { baseline_events: 100 }
    window: { type: tumbling, events: 100 }
    features:
      - { name: x, type: numeric }
      - { name: c, type: categorical }
    detectors:
      - { metric: psi, threshold: 0.2 }
"#;

#[test]
fn config_errors_name_the_field_and_what_was_expected() {
    assert!(Config::from_yaml(BASE).is_ok());
    let e = config_error(&BASE.replace("{ type: tumbling, events: 100 }", "{ type: tumbling, events: 100, sizee: 3 }"));
    assert!(e.contains("models[0].window") && e.contains("sizee"), "{e}");
    let e = config_error(&BASE.replace("threshold: 0.2", "threshold: high"));
    assert!(e.contains("models[0].detectors[0].threshold"), "{e}");
    let e = config_error(&BASE.replace("metric: psi, threshold: 0.2", "metric: chi2, p_value: 0.01, features: [x]"));
    assert!(e.contains("models[0].detectors[0].features[0]") && e.contains("does not apply"), "{e}");
    let e = config_error(&BASE.replace("metric: psi", "metric: pvalue"));
    assert!(e.contains("models[0].detectors[0].metric") && e.contains("psi"), "{e}");
    let e = config_error(&BASE.replace("type: tumbling, events: 100", "type: sliding, events: 100, slide: 30"));
    assert!(e.contains("models[0].window.slide") && e.contains("divide"), "{e}");
    let e = config_error(&BASE.replace("metric: psi, threshold: 0.2", "metric: ks, threshold: 0.1, p_value: 2"));
    assert!(e.contains("models[0].detectors[0].p_value"), "{e}");
    let e = config_error(&BASE.replace("{ baseline_events: 100 }", "{ baseline_events: 100, path: x.csv }"));
    assert!(e.contains("models[0].reference") && e.contains("exactly one"), "{e}");
    let e = config_error(&BASE.replace("window: { type: tumbling, events: 100 }", "window: { type: tumbling, duration: 5 parsecs }"));
    assert!(e.contains("models[0].window.duration"), "{e}");
}

#[test]
fn quality_config_errors_name_the_field() {
    let with = |quality: &str| format!("{BASE}    quality: {quality}\n");
    let ok = with("{ task: binary_classification, prediction: p, score: s, detectors: [{ metric: accuracy, min: 0.9 }] }");
    let c = Config::from_yaml(&ok).unwrap();
    assert_eq!(c.models[0].quality.as_ref().unwrap().metrics().len(), 7, "every classification metric by default");
    let cases = [
        ("{ task: binary_classification, prediction: p, metrics: [roc_auc] }", "models[0].quality.metrics[0]", "score"),
        ("{ task: regression, prediction: p, metrics: [accuracy] }", "models[0].quality.metrics[0]", "regression"),
        (
            "{ task: binary_classification, prediction: p, detectors: [{ metric: accuracy, max_drop: 0.1 }] }",
            "models[0].quality.detectors[0]",
            "reference",
        ),
        (
            "{ task: binary_classification, prediction: p, detectors: [{ metric: accuracy, max: 0.1 }] }",
            "models[0].quality.detectors[0]",
            "min",
        ),
        (
            "{ task: binary_classification, prediction: p, detectors: [{ metric: accuracy, min: 0.8, max_drop: 0.1 }] }",
            "models[0].quality.detectors[0]",
            "one",
        ),
        (
            "{ task: binary_classification, prediction: p, detectors: [{ metric: accuracy, min: 0.8 }, { metric: accuracy, min: 0.7 }] }",
            "models[0].quality.detectors[1].metric",
            "already",
        ),
        ("{ task: binary_classification, prediction: p, label_ttl: forever }", "models[0].quality.label_ttl", "duration"),
        ("{ task: binary_classification, prediction: p, max_pending: 0 }", "models[0].quality.max_pending", ""),
        ("{ task: multiclass, prediction: p }", "models[0].quality", "binary_classification"),
        ("{ task: binary_classification, prediction: p, reference: { label: y, prediction: p } }", "models[0].quality.reference", "path"),
        ("{ task: regression, prediction: p, estimate: cbpe }", "models[0].quality.estimate", "binary classifier"),
        ("{ task: binary_classification, prediction: p, estimate: cbpe }", "models[0].quality.estimate", "score"),
        ("{ task: binary_classification, prediction: p, score: s, estimate: cbpe }", "models[0].quality.estimate", "reference"),
        ("{ task: binary_classification, prediction: p, estimate: nannyml }", "models[0].quality", "cbpe"),
        (
            "{ task: binary_classification, prediction: p, detectors: [{ metric: accuracy, estimated: true, min: 0.8 }] }",
            "models[0].quality.detectors[0].estimated",
            "estimate: cbpe",
        ),
    ];
    for (quality, field, what) in cases {
        let e = config_error(&with(quality));
        assert!(e.contains(field) && e.contains(what), "{quality}: {e}");
    }
    let e = config_error(&format!("input: {{ prediction_id: null }}\n{ok}"));
    assert!(e.contains("input.prediction_id"), "{e}");
    let e = config_error(&format!("labels: {{ label: '' }}\n{ok}"));
    assert!(e.contains("labels.label"), "{e}");
    // Live labels: a topic of their own, and only for models with quality.
    let source = |topics: &str| format!("source: {{ type: kafka, brokers: 127.0.0.1:9092, group_id: g, {topics} }}\n");
    let live = format!("{}{ok}", source("topics: [p], label_topics: [l]"));
    assert!(Config::from_yaml(&live).unwrap().source.is_some());
    let e = config_error(&format!("{}{ok}", source("topics: [p], label_topics: [p]")));
    assert!(e.contains("label_topics") && e.contains("not both"), "{e}");
    let e = config_error(&format!("{}{ok}", source("topics: [p], label_topics: [\"^labels-.*\"]")));
    assert!(e.contains("label_topics") && e.contains("patterns"), "{e}");
    let e = config_error(&format!("{}{BASE}", source("topics: [p], label_topics: [l]")));
    assert!(e.contains("source.label_topics") && e.contains("quality"), "{e}");
    // The estimate: fitted on a reference table's labels and scores, for the metrics CBPE estimates.
    let table = |quality: &str| with(quality).replace("{ baseline_events: 100 }", "{ path: ref.csv }");
    let estimated =
        "{ task: binary_classification, prediction: p, score: s, reference: { label: y, prediction: p, score: s }, estimate: cbpe";
    let both = format!(
        "{estimated}, detectors: [{{ metric: accuracy, max_drop: 0.05 }}, {{ metric: accuracy, estimated: true, max_drop: 0.05 }}] }}"
    );
    let q = Config::from_yaml(&table(&both)).unwrap().models[0].quality.clone().unwrap();
    assert_eq!(q.estimated_metrics().len(), 5, "accuracy, precision, recall, f1 and roc_auc are estimated");
    let e = config_error(&table(&format!("{estimated}, metrics: [log_loss, brier] }}")));
    assert!(e.contains("models[0].quality.estimate") && e.contains("none of them"), "{e}");
    let e = config_error(&table(&format!("{estimated}, detectors: [{{ metric: log_loss, estimated: true, max: 1 }}] }}")));
    assert!(e.contains("models[0].quality.detectors[0].metric") && e.contains("does not estimate log_loss"), "{e}");
    let e = config_error(&table(&format!(
        "{estimated}, detectors: [{{ metric: f1, estimated: true, min: 0.5 }}, {{ metric: f1, estimated: true, min: 0.4 }}] }}"
    )));
    assert!(e.contains("models[0].quality.detectors[1].metric") && e.contains("estimated f1 has a detector already"), "{e}");
    // Label drift: a chi2 detector that fits no feature is accepted for the label of a classifier with a reference table.
    let numeric_only = |quality: &str| {
        format!(
            "models:\n  - name: m\n    reference: {{ path: ref.csv }}\n    window: {{ type: tumbling, events: 100 }}\n    features: [{{ name: x, type: numeric }}]\n    detectors: [{{ metric: chi2, p_value: 0.01 }}]\n{quality}"
        )
    };
    let q = "    quality: { task: binary_classification, prediction: p, reference: { label: y, prediction: p } }\n";
    let c = Config::from_yaml(&numeric_only(q)).unwrap();
    let plan = Plan::new(&c).unwrap();
    let drift = plan.models[0].quality.as_ref().unwrap().label_drift.unwrap();
    assert_eq!((drift.metric.as_str(), drift.p_value), ("chi2", Some(0.01)));
    let e = config_error(&numeric_only("    quality: { task: binary_classification, prediction: p }\n"));
    assert!(e.contains("models[0].detectors[0].metric") && e.contains("fits no feature"), "{e}");
    let e = config_error(&numeric_only("    quality: { task: regression, prediction: p, reference: { label: y, prediction: p } }\n"));
    assert!(e.contains("fits no feature"), "a regression's label takes ks, not chi2: {e}");
    // Too small a reference to fit on is refused at startup, naming the model.
    let dir = temp_dir("cbpe-small");
    std::fs::write(dir.join("ref.csv"), "x,y,p,s\n1,1,1,0.9\n2,0,0,0.2\n3,1,0,0.4\n").unwrap();
    let yaml = table(&format!("{estimated} }}")).replace("ref.csv", &dir.join("ref.csv").display().to_string());
    let c = Config::from_yaml(&yaml).unwrap();
    let e = driftwatch_engine::model::build_reference_quality(&c, &Plan::new(&c).unwrap()).unwrap_err().to_string();
    assert!(e.contains("cbpe cannot be fitted on the reference's 3 rows"), "{e}");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn missing_reference_file_and_column_are_refused_at_startup() {
    let dir = temp_dir("refs");
    let csv = dir.join("ref.csv");
    std::fs::write(&csv, "x,other\n1.0,a\n2.0,b\n").unwrap();
    let yaml = BASE.replace("{ baseline_events: 100 }", &format!("{{ path: {} }}", dir.join("nope.csv").display()));
    let c = Config::from_yaml(&yaml).unwrap();
    let err = driftwatch_engine::model::build_references(&c, &Plan::new(&c).unwrap()).unwrap_err().to_string();
    assert!(err.contains("nope.csv"), "{err}");
    let yaml = BASE.replace("{ baseline_events: 100 }", &format!("{{ path: {} }}", csv.display()));
    let c = Config::from_yaml(&yaml).unwrap();
    let err = driftwatch_engine::model::build_references(&c, &Plan::new(&c).unwrap()).unwrap_err().to_string();
    assert!(err.contains('c') && err.contains("other"), "missing column should list the available ones: {err}");
    std::fs::remove_dir_all(dir).ok();
}

/// The golden scenario: drift on f0 and c0 between events 3000 and 5500.
/// Exactly one drift and one resolved event per drifted (feature, metric),
/// none for stable features, and the events equal the stored ones byte for byte.
#[test]
fn golden_drift_episode() {
    let (config, input) = golden();
    let (report, _, events, dead) = run(&config, &input, 2);
    assert!(dead.is_empty());
    assert_eq!(report.events_read, 8000);
    let expected = std::fs::read(repo().join("tests/fixtures/drift_episode/expected_events.jsonl")).unwrap();
    assert_eq!(String::from_utf8_lossy(&events), String::from_utf8_lossy(&expected), "events differ from the golden file");
    let mut per_key: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for e in lines(&events) {
        let key = (e["feature"].as_str().unwrap().to_owned(), e["metric"].as_str().unwrap().to_owned());
        per_key.entry(key).or_default().push(e["type"].as_str().unwrap().to_owned());
        // Drift is detected after it starts and resolved after it ends.
        let end = e["window"]["end_index"].as_u64().unwrap();
        match e["type"].as_str().unwrap() {
            "drift" => assert!((3000..4500).contains(&end), "{e}"),
            _ => assert!((5500..7500).contains(&end), "{e}"),
        }
    }
    for ((feature, metric), kinds) in &per_key {
        assert!(["f0", "c0", "*"].contains(&feature.as_str()), "stable feature {feature} ({metric}) raised an event");
        assert_eq!(kinds, &["drift", "resolved"], "{feature}/{metric}");
    }
    for key in [("f0", "psi"), ("f0", "ks"), ("f0", "jensen_shannon"), ("c0", "chi2"), ("c0", "psi"), ("c0", "jensen_shannon")] {
        assert!(per_key.contains_key(&(key.0.to_owned(), key.1.to_owned())), "no episode for {key:?}");
    }
    // Event ids are unique and stable (the golden comparison above pins them).
    let ids: HashSet<String> = lines(&events).iter().map(|e| e["event_id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), lines(&events).len());
}

#[test]
fn output_is_byte_identical_whatever_the_shard_count() {
    let (config, input) = golden();
    let (_, ev1, de1, _) = run(&config, &input, 1);
    for shards in [2, 3, 5] {
        let (_, ev, de, _) = run(&config, &input, shards);
        assert!(ev == ev1, "evaluations differ with {shards} shards");
        assert!(de == de1, "events differ with {shards} shards");
    }
}

/// For count-based tumbling windows, every KS / PSI / JS / chi2 value equals
/// what the detectors give on the raw window data.
#[test]
fn tumbling_windows_equal_detectors_on_raw_data() {
    let dir = repo().join("tests/fixtures/drift_episode");
    let yaml = std::fs::read_to_string(dir.join("config.yaml"))
        .unwrap()
        .replace("{ type: sliding, events: 1000, slide: 250 }", "{ type: tumbling, events: 1000 }")
        .replace("reference.csv", &dir.join("reference.csv").display().to_string());
    let config = Config::from_yaml(&yaml).unwrap();
    let (_, evaluations, _, _) = run(&config, &dir.join("input.jsonl"), 2);
    // Raw reference and events.
    let mut reader = std::fs::read_to_string(dir.join("reference.csv")).unwrap();
    let header: Vec<String> = reader.lines().next().unwrap().split(',').map(str::to_owned).collect();
    let rows: Vec<Vec<String>> = reader.lines().skip(1).map(|l| l.split(',').map(str::to_owned).collect()).collect();
    reader.clear();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let num_ref = |name: &str| rows.iter().filter_map(|r| r[col(name)].parse::<f64>().ok()).collect::<Vec<_>>();
    let cat_ref = |name: &str| rows.iter().map(|r| r[col(name)].clone()).filter(|s| !s.is_empty()).collect::<Vec<_>>();
    let events: Vec<Value> = lines(&std::fs::read(dir.join("input.jsonl")).unwrap());
    let mut checked = 0;
    for e in lines(&evaluations) {
        let start = e["window"]["start_index"].as_u64().unwrap() as usize;
        let window = &events[start..start + 1000];
        let feature = e["feature"].as_str().unwrap();
        let value = e["value"].as_f64().unwrap();
        let close = |a: f64, b: f64| assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "{feature} {}: {a} vs {b} at {start}", e["metric"]);
        if feature.starts_with('f') {
            let r = num_ref(feature);
            let w: Vec<f64> = window.iter().filter_map(|v| v["features"][feature].as_f64()).collect();
            let edges = BinEdges::from_reference(&r, 10).unwrap();
            let (rh, wh) = (FixedHistogram::from_values(edges.clone(), &r), FixedHistogram::from_values(edges, &w));
            match e["metric"].as_str().unwrap() {
                "ks" => {
                    let ks = ks_2samp(&r, &w, KsMethod::Auto).unwrap();
                    close(value, ks.statistic);
                    close(e["p_value"].as_f64().unwrap(), ks.p_value);
                }
                "psi" => close(value, rh.psi(&wh).unwrap()),
                "jensen_shannon" => close(value, rh.jensen_shannon(&wh).unwrap()),
                "wasserstein" => close(value, driftwatch_detectors::distance::wasserstein(&r, &w).unwrap()),
                m => panic!("unexpected metric {m}"),
            }
        } else {
            let mut rc = CategoryCounts::new(1000);
            cat_ref(feature).iter().for_each(|s| rc.update(s));
            let mut wc = CategoryCounts::new(1000);
            window.iter().filter_map(|v| v["features"][feature].as_str()).for_each(|s| wc.update(s));
            let d = categorical_drift(&rc, &wc).unwrap();
            match e["metric"].as_str().unwrap() {
                "chi2" => {
                    close(value, d.chi2.statistic);
                    close(e["p_value"].as_f64().unwrap(), d.chi2.p_value);
                }
                "psi" => close(value, d.psi),
                "jensen_shannon" => close(value, d.jensen_shannon),
                m => panic!("unexpected metric {m}"),
            }
        }
        checked += 1;
    }
    // 8 windows × (3 numeric × 4 metrics + 2 categorical × 3 metrics).
    assert_eq!(checked, 8 * (3 * 4 + 2 * 3));
}

#[test]
fn bad_input_is_dead_lettered_counted_and_good_data_kept() {
    let dir = temp_dir("bad");
    let input = dir.join("input.jsonl");
    let good = |i: u32| format!(r#"{{"model":"m","timestamp":{i},"features":{{"x":{},"c":"a"}}}}"#, i % 7);
    let mut text = String::new();
    for i in 0..300 {
        text.push_str(&good(i));
        text.push('\n');
        match i {
            10 => text.push_str("{not json\n"),
            20 => text.push_str("{\"model\":\"other\",\"features\":{}}\n"),
            30 => text.push_str("[1,2,3]\n"),
            40 => text.push_str(&format!("{{\"model\":\"m\",\"features\":{{\"x\":\"{}\"}}}}\n", "y".repeat(5000))),
            50 => text.push_str("{\"model\":\"m\",\"features\":{\"x\":\"high\",\"c\":\"b\"}}\n"),
            60 => text.push_str("{\"features\":{\"x\":1}}\n"),
            70 => text.push('\n'),
            80 => text.push_str("{\"model\":\"m\",\"timestamp\":\"yesterday\",\"features\":{\"x\":1}}\n"),
            _ => {}
        }
    }
    std::fs::write(&input, text).unwrap();
    let yaml = BASE.replace("engine:", "").replace("models:", "engine: { max_event_bytes: 1000, batch_events: 64 }\nmodels:");
    let config = Config::from_yaml(&yaml).unwrap();
    let (report, _, _, dead) = run(&config, &input, 2);
    let reasons: Vec<String> = lines(&dead).iter().map(|d| d["reason"].as_str().unwrap().to_owned()).collect();
    assert_eq!(reasons, ["malformed_json", "unknown_model", "not_an_object", "oversize", "wrong_type", "missing_model", "bad_timestamp"]);
    // Line numbers count every input line, blank ones included.
    let numbers: Vec<u64> = lines(&dead).iter().map(|d| d["line"].as_u64().unwrap()).collect();
    assert_eq!(numbers, [12, 23, 34, 45, 56, 67, 89]);
    let wrong = &lines(&dead)[4];
    assert_eq!(wrong["partially_used"], true);
    assert!(wrong["payload"].as_str().unwrap().contains("high"));
    assert!(lines(&dead)[3]["payload"].as_str().unwrap().len() <= 1000, "oversize payloads are cut at the limit");
    // 300 good events plus the partially used one.
    assert_eq!(report.events_applied, 301);
    assert_eq!(report.dead_letters.values().sum::<u64>(), 7);
    assert_eq!(report.models["m"].baseline, 100);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn event_time_windows_drop_and_count_late_events() {
    let dir = temp_dir("time");
    let input = dir.join("input.jsonl");
    let mut text = String::new();
    // Timestamps advance 10 ms per event; every 50th event is 5 s late.
    for i in 0..2000i64 {
        let ts = if i % 50 == 49 { i * 10 - 5000 } else { i * 10 };
        text.push_str(&format!("{{\"model\":\"m\",\"timestamp\":{ts},\"features\":{{\"x\":{},\"c\":\"a\"}}}}\n", (i % 13) as f64));
    }
    std::fs::write(&input, text).unwrap();
    let yaml = BASE.replace("{ type: tumbling, events: 100 }", "{ type: tumbling, duration: 2s, allowed_lateness: 1s }");
    let config = Config::from_yaml(&yaml).unwrap();
    let (report, evaluations, _, _) = run(&config, &input, 2);
    let m = report.models["m"];
    // Late events: those whose 2 s pane had closed (watermark = max − 1 s) when they arrived.
    assert!(m.late > 0 && m.late <= 40, "late = {}", m.late);
    assert!(report.dead_letters.is_empty(), "{:?}", report.dead_letters);
    assert_eq!(m.baseline + m.windowed + m.late, 2000, "{m:?} {:?}", report.dead_letters);
    let evals = lines(&evaluations);
    assert!(!evals.is_empty());
    for e in &evals {
        let (s, t) = (e["window"]["start_ms"].as_i64().unwrap(), e["window"]["end_ms"].as_i64().unwrap());
        assert_eq!(t - s, 2000);
        assert_eq!(s % 2000, 0);
    }
    std::fs::remove_dir_all(dir).ok();
}

/// A profile written by `driftwatch profile` and loaded back gives the same
/// events as building the reference at startup.
#[test]
fn profile_round_trip_gives_the_same_results() {
    use driftwatch_engine::model::{build_references, Profile, PROFILE_VERSION};
    let (config, input) = golden();
    let plan = Plan::new(&config).unwrap();
    let mut models: Vec<_> = build_references(&config, &plan).unwrap().into_iter().flatten().collect();
    // A profile may list its columns in another order than the config.
    models[0].columns.reverse();
    let dir = temp_dir("profile");
    let path = dir.join("profile.json");
    Profile { version: PROFILE_VERSION, created_at: "2026-11-23T00:00:00Z".into(), models }.save(&path).unwrap();
    let mut from_profile = config.clone();
    from_profile.models[0].reference = driftwatch_engine::config::ReferenceConfig { profile: Some(path.clone()), ..Default::default() };
    let (_, ev_a, de_a, _) = run(&config, &input, 2);
    let (_, ev_b, de_b, _) = run(&from_profile, &input, 2);
    assert!(ev_a == ev_b && de_a == de_b, "a loaded profile changed the results");
    // Another format version is refused with that reason (checked before the
    // schema: a version 1 profile, whose sketches have another key mapping,
    // is told to be rebuilt).
    let text = std::fs::read_to_string(&path).unwrap();
    let ours = format!("\"version\":{PROFILE_VERSION}");
    assert!(text.starts_with(&format!("{{{ours}")), "the profile starts with its version");
    for (version, extra) in [(99, ""), (1, ",\"inv_ln_gamma\":50.0")] {
        let old = text.replacen(&ours, &format!("\"version\":{version}{extra}"), 1);
        std::fs::write(&path, old).unwrap();
        let message = Profile::load(&path).unwrap_err().to_string();
        assert!(message.contains(&format!("profile version {version}")) && message.contains("rebuild"), "{message}");
    }
    std::fs::remove_dir_all(dir).ok();
}

/// CSV and Parquet input go through the same decoder and windows: flat rows
/// give the same evaluations as the nested JSONL events.
#[test]
fn csv_and_parquet_input_give_the_same_evaluations_as_jsonl() {
    let (config, input) = golden();
    let dir = temp_dir("csv");
    let csv = dir.join("events.csv");
    let mut text = String::from("model,model_version,timestamp,f0,f1,f2,c0,c1\n");
    for e in lines(&std::fs::read(&input).unwrap()) {
        let f = &e["features"];
        let num = |k: &str| f[k].as_f64().map(|x| format!("{x:?}")).unwrap_or_default();
        let cat = |k: &str| f[k].as_str().unwrap_or("").to_owned();
        text.push_str(&format!(
            "{},{},{},{},{},{},{},{}\n",
            e["model"].as_str().unwrap(),
            e["model_version"].as_str().unwrap(),
            e["timestamp"],
            num("f0"),
            num("f1"),
            num("f2"),
            cat("c0"),
            cat("c1")
        ));
    }
    std::fs::write(&csv, text).unwrap();
    let mut flat = config.clone();
    flat.input.features = String::new();
    let (report, ev_csv, de_csv, dead) = run(&flat, &csv, 2);
    assert!(dead.is_empty(), "{}", String::from_utf8_lossy(&dead));
    assert_eq!(report.events_read, 8000);
    let (_, ev_json, de_json, _) = run(&config, &input, 2);
    assert!(ev_csv == ev_json, "CSV evaluations differ from JSONL");
    assert!(de_csv == de_json);

    // Parquet: the same rows as typed columns.
    use driftwatch_connectors::table::{batch_from_columns, write_parquet, ColumnData};
    let events = lines(&std::fs::read(&input).unwrap());
    let text_col = |f: &dyn Fn(&serde_json::Value) -> Option<String>| ColumnData::Categorical(events.iter().map(f).collect());
    let num_col = |f: &dyn Fn(&serde_json::Value) -> Option<f64>| ColumnData::Numeric(events.iter().map(f).collect());
    let mut columns = vec![
        ("model".to_string(), text_col(&|e| e["model"].as_str().map(str::to_owned))),
        ("model_version".to_string(), text_col(&|e| e["model_version"].as_str().map(str::to_owned))),
        ("timestamp".to_string(), num_col(&|e| e["timestamp"].as_f64())),
    ];
    for k in ["f0", "f1", "f2"] {
        columns.push((k.to_string(), num_col(&|e| e["features"][k].as_f64())));
    }
    for k in ["c0", "c1"] {
        columns.push((k.to_string(), text_col(&|e| e["features"][k].as_str().map(str::to_owned))));
    }
    let parquet = dir.join("events.parquet");
    write_parquet(&parquet, &batch_from_columns(columns).unwrap()).unwrap();
    let (report, ev_parquet, de_parquet, dead) = run(&flat, &parquet, 2);
    assert!(dead.is_empty(), "{}", String::from_utf8_lossy(&dead));
    assert_eq!(report.events_read, 8000);
    assert!(ev_parquet == ev_json, "Parquet evaluations differ from JSONL");
    assert!(de_parquet == de_json);
    std::fs::remove_dir_all(dir).ok();
}

/// A sliding event-time window holding more values than the exact store keeps
/// falls back to the bounded sketch for KS and keeps sliding (regression: the
/// overflowed store could not be unmerged).
#[test]
fn event_time_window_larger_than_the_exact_store_keeps_sliding() {
    let dir = temp_dir("overflow");
    let input = dir.join("input.jsonl");
    let mut text = String::new();
    for i in 0..6000i64 {
        let x = (i % 97) as f64 + if i > 3000 { 40.0 } else { 0.0 };
        text.push_str(&format!("{{\"model\":\"m\",\"timestamp\":{},\"features\":{{\"x\":{x},\"c\":\"a\"}}}}\n", i * 10));
    }
    std::fs::write(&input, text).unwrap();
    let yaml = BASE.replace("{ type: tumbling, events: 100 }", "{ type: sliding, duration: 10s, slide: 2s }").replace(
        "{ metric: psi, threshold: 0.2 }",
        "{ metric: psi, threshold: 0.2 }\n      - { metric: ks, threshold: 0.2, exact_max: 600, features: [x] }",
    );
    let config = Config::from_yaml(&yaml).unwrap();
    let (report, evaluations, _, _) = run(&config, &input, 2);
    assert!(report.models["m"].windows > 10);
    let methods: HashSet<String> =
        lines(&evaluations).iter().filter(|e| e["metric"] == "ks").map(|e| e["method"].as_str().unwrap().to_owned()).collect();
    assert!(methods.contains("sketch"), "{methods:?}");
    std::fs::remove_dir_all(dir).ok();
}

/// Regression: `features` of another type (number, string, array, boolean,
/// `null`) was applied with every feature missing and no dead letter; it is a
/// `wrong_type` dead letter naming the path, and the event is not applied.
/// Absent `features` is still an event with every feature missing.
#[test]
fn features_that_is_not_an_object_is_a_wrong_type_dead_letter() {
    let dir = temp_dir("features-type");
    let input = dir.join("input.jsonl");
    let mut text = String::new();
    for i in 0..200 {
        text.push_str(&format!("{{\"model\":\"m\",\"features\":{{\"x\":{i},\"c\":\"a\"}}}}\n"));
    }
    let bad = ["5", "\"x\"", "[1,2]", "true", "null", "{}"];
    for value in bad {
        text.push_str(&format!("{{\"model\":\"m\",\"features\":{value}}}\n"));
    }
    text.push_str("{\"model\":\"m\"}\n");
    std::fs::write(&input, text).unwrap();
    let config = Config::from_yaml(BASE).unwrap();
    let (report, _, _, dead) = run(&config, &input, 2);
    let dead = lines(&dead);
    let got: Vec<(u64, &str, &str, bool)> = dead
        .iter()
        .map(|d| {
            (
                d["line"].as_u64().unwrap(),
                d["reason"].as_str().unwrap(),
                d["detail"].as_str().unwrap(),
                d["partially_used"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (201, "wrong_type", "features: expected an object, found number", false),
            (202, "wrong_type", "features: expected an object, found string", false),
            (203, "wrong_type", "features: expected an object, found array", false),
            (204, "wrong_type", "features: expected an object, found boolean", false),
            (205, "wrong_type", "features: expected an object, found null", false),
        ]
    );
    assert_eq!(dead[1]["payload"], "{\"model\":\"m\",\"features\":\"x\"}");
    assert_eq!(report.dead_letters["wrong_type"], 5);
    assert_eq!(report.events_read, 207);
    // `{}` and no `features` at all: applied, every feature missing.
    assert_eq!(report.events_applied, 202);
    std::fs::remove_dir_all(dir).ok();
}

/// Regression: blank and whitespace-only lines were counted in
/// `events_read`; they are `blank_lines`, and dead letters keep the file's
/// line numbers. CSV: empty lines (which the CSV reader skips) likewise.
#[test]
fn blank_lines_are_counted_apart_from_events() {
    let dir = temp_dir("blank");
    let input = dir.join("input.jsonl");
    let mut text = String::from("\n");
    for i in 0..300 {
        text.push_str(&format!("{{\"model\":\"m\",\"features\":{{\"x\":{i},\"c\":\"a\"}}}}\n"));
        if i % 100 == 0 {
            text.push_str("   \n\t\r\n\r\n\n");
        }
    }
    text.push_str("not json\n  ");
    std::fs::write(&input, text).unwrap();
    let config = Config::from_yaml(BASE).unwrap();
    let (report, _, _, dead) = run(&config, &input, 3);
    assert_eq!(report.events_read, 301);
    assert_eq!(report.blank_lines, 1 + 3 * 4 + 1);
    assert_eq!(report.events_applied, 300);
    let dead = lines(&dead);
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["line"], 1 + 300 + 3 * 4 + 1, "line numbers count blank lines");
    let summary = serde_json::to_value(&report).unwrap();
    assert_eq!(summary["blank_lines"], 14);
    assert_eq!(summary["events_read"], 301);

    let csv = dir.join("input.csv");
    let mut text = String::from("model,x,c\n");
    for i in 0..300 {
        text.push_str(&format!("m,{i},a\n"));
        if i % 100 == 0 {
            text.push_str("\n\r\n");
        }
    }
    std::fs::write(&csv, text).unwrap();
    let mut flat = config.clone();
    flat.input.features = String::new();
    let (report, _, _, dead) = run(&flat, &csv, 2);
    assert!(dead.is_empty(), "{}", String::from_utf8_lossy(&dead));
    assert_eq!((report.events_read, report.blank_lines, report.events_applied), (300, 6, 300));
    std::fs::remove_dir_all(dir).ok();
}

/// Regression: a payload that is not UTF-8 was written to the dead-letter
/// file with U+FFFD in place of its bytes; it is written as base64 with
/// `"payload_encoding": "base64"`, UTF-8 payloads as text without the field.
#[test]
fn invalid_utf8_dead_letters_keep_their_bytes() {
    let dir = temp_dir("utf8");
    let input = dir.join("input.jsonl");
    let mut bytes = Vec::new();
    bytes.extend_from_slice(b"{\"model\":\"m\",\"features\":{\"x\":1,\"c\":\"\xff\xfe\"}}\n");
    bytes.extend_from_slice("{\"model\":\"m\",\"features\":{\"x\":\"zwölf\"}}\n".as_bytes());
    bytes.extend_from_slice(b"\xc3\x28\n");
    std::fs::write(&input, &bytes).unwrap();
    let config = Config::from_yaml(BASE).unwrap();
    let (report, _, _, dead) = run(&config, &input, 1);
    let dead = lines(&dead);
    assert_eq!(dead.len(), 3);
    assert_eq!(dead[0]["reason"], "malformed_json");
    assert_eq!(dead[0]["payload_encoding"], "base64");
    // base64 of line 1 (`printf '…' | base64`).
    assert_eq!(dead[0]["payload"], "eyJtb2RlbCI6Im0iLCJmZWF0dXJlcyI6eyJ4IjoxLCJjIjoi//4ifX0=");
    assert_eq!(dead[1]["reason"], "wrong_type");
    assert_eq!(dead[1]["payload"], "{\"model\":\"m\",\"features\":{\"x\":\"zwölf\"}}");
    assert!(dead[1].get("payload_encoding").is_none(), "{}", dead[1]);
    assert_eq!((dead[2]["payload"].as_str(), dead[2]["payload_encoding"].as_str()), (Some("wyg="), Some("base64")));
    assert_eq!(report.dead_letters["malformed_json"], 2);
    std::fs::remove_dir_all(dir).ok();
}

/// Regression: `oops` in the first row of a numeric CSV column made type
/// inference read the whole column as text, and every one of the 5 001 rows'
/// values was dead-lettered. The configuration types the column: only the
/// bad row's value is refused (`wrong_type`, the rest of the row used).
#[test]
fn one_bad_csv_cell_refuses_only_its_row() {
    let dir = temp_dir("csv-cell");
    let csv = dir.join("input.csv");
    let mut text = String::from("model,x,c\nm,oops,007\n");
    for i in 0..5000 {
        text.push_str(&format!("m,{}.25,{}\n", i % 50, i % 3));
    }
    std::fs::write(&csv, text).unwrap();
    let mut config = Config::from_yaml(BASE).unwrap();
    config.input.features = String::new();
    let (report, _, _, dead) = run(&config, &csv, 2);
    let dead = lines(&dead);
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["line"], 1);
    assert_eq!(dead[0]["reason"], "wrong_type");
    assert_eq!(dead[0]["partially_used"], true);
    assert!(dead[0]["detail"].as_str().unwrap().contains('x'), "{}", dead[0]);
    assert_eq!(dead[0]["payload"], "{\"model\":\"m\",\"x\":\"oops\",\"c\":7}");
    assert_eq!((report.events_read, report.events_applied), (5001, 5001));
    assert_eq!(report.dead_letters.values().sum::<u64>(), 1);
    std::fs::remove_dir_all(dir).ok();
}

/// Regression: `1.0`, `1e0` and `100e-2` counted as category "1" and `1.5`
/// as a new one, while a float reference column was refused. One rule now,
/// for events and references alike: a number names a category when it is an
/// integer of at most 2^53 (its decimal text), any other number is
/// `wrong_type`; strings are categories as written.
#[test]
fn floats_as_categories_follow_one_rule_for_events_and_references() {
    let dir = temp_dir("float-categories");
    // A float reference column with integral values: categories "1" and "2".
    let reference = dir.join("reference.csv");
    let mut csv = String::from("c\n");
    for i in 0..100 {
        csv.push_str(if i % 2 == 0 { "1.0\n" } else { "2.0\n" });
    }
    std::fs::write(&reference, csv).unwrap();
    let yaml = format!(
        "models:\n  - name: m\n    reference: {{ path: {} }}\n    window: {{ type: tumbling, events: 100 }}\n    features:\n      - {{ name: c, type: categorical }}\n    detectors:\n      - {{ metric: l_infinity, threshold: 0.5 }}\n",
        reference.display()
    );
    let config = Config::from_yaml(&yaml).unwrap();
    let input = dir.join("input.jsonl");
    let mut text = String::new();
    // 100 events, all naming "1" or "2" whichever way the number is written.
    let ones = ["1", "1.0", "1e0", "100e-2", "0.1e1"];
    let twos = ["2", "2.0", "2e0", "20e-1", "200E-2"];
    for i in 0..100 {
        let c = if i % 2 == 0 { ones[i / 2 % 5] } else { twos[i / 2 % 5] };
        text.push_str(&format!("{{\"model\":\"m\",\"features\":{{\"c\":{c}}}}}\n"));
    }
    // Numbers that name no category.
    for c in ["1.5", "1e300", "9007199254740994", "-0.25"] {
        text.push_str(&format!("{{\"model\":\"m\",\"features\":{{\"c\":{c}}}}}\n"));
    }
    std::fs::write(&input, text).unwrap();
    let (report, evaluations, _, dead) = run(&config, &input, 2);
    let evaluations = lines(&evaluations);
    assert_eq!(evaluations.len(), 1, "{evaluations:?}");
    // Every event of the window matched a reference category: no shift.
    assert_eq!(evaluations[0]["value"].as_f64(), Some(0.0), "{}", evaluations[0]);
    let dead = lines(&dead);
    let got: Vec<(u64, &str, bool)> =
        dead.iter().map(|d| (d["line"].as_u64().unwrap(), d["reason"].as_str().unwrap(), d["partially_used"].as_bool().unwrap())).collect();
    assert_eq!(got, [(101, "wrong_type", true), (102, "wrong_type", true), (103, "wrong_type", true), (104, "wrong_type", true)]);
    let detail = dead[0]["detail"].as_str().unwrap();
    assert!(detail.contains("categorical c") && detail.contains("not an integer"), "{detail}");
    assert_eq!(report.dead_letters["wrong_type"], 4);

    // A reference value that is not an integer is refused at startup, named.
    std::fs::write(&reference, "c\n1.0\n2.5\n").unwrap();
    let config = Config::from_yaml(&yaml).unwrap();
    let plan = Plan::new(&config).unwrap();
    let error = driftwatch_engine::model::build_references(&config, &plan).unwrap_err().to_string();
    assert!(error.contains("row 2 holds 2.5") && error.contains("not an integer"), "{error}");
    std::fs::remove_dir_all(dir).ok();
}

/// Secret settings come from the environment or a file, and no secret value
/// is ever shown: not in config errors, not in `Debug` or serialized
/// configuration, not in the binary's error output.
#[test]
fn secrets_come_from_env_or_file_and_are_never_shown() {
    let dir = temp_dir("secrets");
    let variable = format!("DRIFTWATCH_TEST_HMAC_{}", std::process::id());
    let password_file = dir.join("password");
    std::fs::write(&password_file, "pa55-from-file\n").unwrap();
    let yaml = |hmac: &str, url: &str| {
        format!(
            "{BASE}source: {{ type: kafka, brokers: 127.0.0.1:9, topics: [t], group_id: g, options: {{ security.protocol: sasl_plaintext, sasl.mechanism: PLAIN, sasl.username: u, sasl.password: {{ file: {} }} }} }}\nsinks:\n  - {{ type: webhook, url: \"{url}\", hmac_secret: {hmac} }}\n",
            password_file.display()
        )
    };
    // Unset: loading (what replay needs) is fine; reading the secrets, as
    // `validate` and `run` do, is refused naming the variable.
    std::env::remove_var(&variable);
    let config = Config::from_yaml(&yaml(&format!("{{ env: {variable} }}"), "http://127.0.0.1:9/drift")).unwrap();
    let error = config.check_secrets().unwrap_err().to_string();
    assert!(error.contains(&variable) && error.contains("is not set"), "{error}");
    // Set: accepted; never shown.
    std::env::set_var(&variable, "hm4c-from-env");
    let config = Config::from_yaml(&yaml(&format!("{{ env: {variable} }}"), "http://127.0.0.1:9/drift")).unwrap();
    config.check_secrets().unwrap();
    let shown = format!("{config:?}");
    assert!(!shown.contains("hm4c-from-env") && !shown.contains("pa55-from-file"), "{shown}");
    assert!(shown.contains(&variable), "{shown}");
    // An inline secret beside an error elsewhere: the error does not show it.
    let error = config_error(&yaml("inl1ne-hmac", "ftp://127.0.0.1:9/drift"));
    assert!(!error.contains("inl1ne-hmac") && error.contains("scheme"), "{error}");
    // A missing secret file is named, its would-be value is not invented.
    let broken =
        yaml("x", "http://127.0.0.1:9/drift").replace(&password_file.display().to_string(), &dir.join("absent").display().to_string());
    let error = Config::from_yaml(&broken).unwrap().check_secrets().unwrap_err().to_string();
    assert!(error.contains("sasl.password") && error.contains("absent"), "{error}");
    // An option librdkafka refuses is named without its (possibly secret) value.
    let typo = yaml("x", "http://127.0.0.1:9/drift").replace("sasl.username: u", "sasl.usernme: s3cr3t-typo");
    let error = Config::from_yaml(&typo).unwrap().check_secrets().unwrap_err().to_string();
    assert!(error.contains("sasl.usernme") && !error.contains("s3cr3t-typo"), "{error}");
    // The binary's own error output.
    let path = dir.join("config.yaml");
    std::fs::write(&path, yaml("inl1ne-hmac", "ftp://127.0.0.1:9/drift")).unwrap();
    let out = std::process::Command::new(crate::live::binary()).arg("validate").arg("--config").arg(&path).output().unwrap();
    assert!(!out.status.success());
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!text.contains("inl1ne-hmac") && !text.contains("pa55-from-file") && text.contains("scheme"), "{text}");
    std::fs::remove_dir_all(dir).ok();
}

/// `tests/fixtures/quality`: predictions of a classifier that degrades at
/// minute 60, labels late (minutes to hours, some past `label_ttl`), early,
/// duplicated, missing and bad; expected values from scikit-learn.
#[test]
fn realised_quality_per_window_equals_scikit_learn_on_the_joined_pairs() {
    let dir = repo().join("tests/fixtures/quality");
    let config = Config::from_file(&dir.join("config.yaml")).unwrap();
    let expected: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let (input, labels) = (dir.join("predictions.jsonl"), dir.join("labels.jsonl"));
    let (report, evaluations, events, dead) = run_with_labels(&config, &input, Some(&labels), 2);
    let close = |a: &Value, b: &Value| match (a.as_f64(), b.as_f64()) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * b.abs().max(1.0),
        (None, None) => a.is_null() && b.is_null(),
        _ => false,
    };
    let quality: Vec<Value> = lines(&evaluations).into_iter().filter(|e| e["kind"] == "quality").collect();
    let metrics = ["accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "brier"];
    let windows = expected["windows"].as_array().unwrap();
    assert_eq!(
        quality.iter().filter(|e| e["final"] == true).count(),
        windows.len() * metrics.len(),
        "one final evaluation per window and metric"
    );
    for w in windows {
        for metric in metrics {
            let of_window: Vec<&Value> = quality.iter().filter(|e| e["window"]["end_ms"] == w["end_ms"] && e["metric"] == metric).collect();
            let last = of_window.last().unwrap_or_else(|| panic!("no {metric} for the window ending {}", w["end_ms"]));
            assert_eq!(last["final"], true, "the last evaluation of a window is its final one: {last}");
            assert!(of_window.len() >= 2, "{metric} at {} was not re-evaluated as labels came", w["end_ms"]);
            // Evaluated again only when labels came (the final evaluation may add none).
            let labelled: Vec<u64> = of_window.iter().map(|e| e["labelled"].as_u64().unwrap()).collect();
            assert!(labelled[..labelled.len() - 1].windows(2).all(|p| p[0] < p[1]), "{metric} at {}: {labelled:?}", w["end_ms"]);
            assert!(
                close(&last["value"], &w["metrics"][metric]),
                "{metric} at {}: {} vs scikit-learn {}",
                w["end_ms"],
                last["value"],
                w["metrics"][metric]
            );
            assert!(close(&last["reference_value"], &expected["reference"][metric]), "reference {metric}: {last}");
            assert_eq!(last["labelled"], w["labelled"]);
            assert_eq!(last["window"]["start_ms"], w["start_ms"]);
            let coverage = w["labelled"].as_f64().unwrap() / w["predictions"].as_f64().unwrap();
            assert!((last["coverage"].as_f64().unwrap() - coverage).abs() < 1e-12, "{last}");
        }
        // Label drift: SciPy's chi-square of the joined labels' classes against the reference's.
        let label = lines(&evaluations)
            .into_iter()
            .rfind(|e| e["kind"] == "label" && e["window"]["end_ms"] == w["end_ms"])
            .unwrap_or_else(|| panic!("no label drift for the window ending {}", w["end_ms"]));
        assert_eq!(
            (&label["feature"], &label["metric"], &label["final"]),
            (&Value::from("label"), &Value::from("chi2"), &Value::from(true))
        );
        assert_eq!(label["labelled"], w["labelled"]);
        assert!(close(&label["value"], &w["label_chi2"]["statistic"]), "{label} vs {}", w["label_chi2"]);
        assert!((label["p_value"].as_f64().unwrap() - w["label_chi2"]["p_value"].as_f64().unwrap()).abs() < 1e-6);
        assert_eq!(label["breach"], false, "the labels' classes do not drift here: {label}");
    }
    // The drop at minute 60 raises exactly one accuracy event, at the first
    // window whose final accuracy is under the floor, and it never resolves.
    let first_bad = windows.iter().find(|w| w["metrics"]["accuracy"].as_f64().unwrap() < 0.85).unwrap();
    assert!(first_bad["end_ms"].as_i64().unwrap() > expected["drop_at_ms"].as_i64().unwrap());
    let events = lines(&events);
    let accuracy: Vec<&Value> = events.iter().filter(|e| e["metric"] == "accuracy").collect();
    assert_eq!(accuracy.len(), 1, "{events:?}");
    let e = accuracy[0];
    assert_eq!(
        (&e["type"], &e["kind"], &e["feature"], &e["model"]),
        (&Value::from("drift"), &Value::from("quality"), &Value::from("*"), &Value::from("fraud"))
    );
    assert_eq!(e["window"]["end_ms"], first_bad["end_ms"]);
    assert!(close(&e["threshold"], &Value::from(0.85)));
    let auc: Vec<&Value> = events.iter().filter(|e| e["metric"] == "roc_auc").collect();
    assert_eq!(auc.len(), 1, "{events:?}");
    assert!(close(&auc[0]["threshold"], &Value::from(expected["reference"]["roc_auc"].as_f64().unwrap() - 0.1)));
    // Join outcomes.
    let l = report.labels.as_ref().unwrap();
    let c = &l.models["fraud"];
    let (joined, predictions) = (expected["joined"].as_u64().unwrap(), expected["predictions"].as_u64().unwrap());
    assert_eq!(c.join.joined, joined);
    assert_eq!(c.join.expired, predictions - joined, "every prediction without a joined label expired");
    assert_eq!(c.join.duplicate, expected["duplicates"].as_u64().unwrap());
    assert_eq!(c.join.evicted, 0);
    let (early, ghosts) = (expected["early"].as_u64().unwrap(), expected["ghosts"].as_u64().unwrap());
    assert!(c.join.early >= early + ghosts, "{c:?}");
    assert!(c.join.orphan >= ghosts, "{c:?}");
    assert_eq!(c.pending, 0);
    assert_eq!(l.dead_letters, expected["bad_lines"].as_u64().unwrap());
    // Percentiles from an HDR histogram of 3 significant digits.
    let delay = l.delay_seconds.unwrap();
    assert!(
        delay.p50 > 0.0
            && delay.p50 <= delay.p90
            && delay.p90 <= delay.p99
            && delay.p99 <= delay.max
            && delay.max < 3.0 * 3600.0 * 1.001
            && delay.p90 > 3600.0,
        "{delay:?}"
    );
    // Bad labels are dead-lettered with their reason; the good ones around them joined (above).
    let dead = lines(&dead);
    let reasons: Vec<&str> = dead.iter().map(|d| d["reason"].as_str().unwrap()).collect();
    assert_eq!(reasons, ["unknown_model", "invalid_label", "missing_prediction_id", "malformed_json"], "{dead:?}");
    assert!(dead.iter().all(|d| d["input"] == "labels"));
    // Feature drift is what it is without labels, and the output does not depend on the shard count.
    let (_, without, _, _) = run(&config, &input, 2);
    let features = |b: &[u8]| lines(b).into_iter().filter(|e| e["kind"] != "quality" && e["kind"] != "label").collect::<Vec<_>>();
    assert!(!events.iter().any(|e| e["kind"] == "label"), "{events:?}");
    assert_eq!(features(&evaluations), features(&without));
    let (_, again, events_again, _) = run_with_labels(&config, &input, Some(&labels), 1);
    assert_eq!(evaluations, again);
    assert_eq!(lines(&events_again), events);
}

/// `tests/fixtures/cbpe`: an over-confident classifier (CBPE calibrates its
/// scores), a covariate shift (events 6 000–12 000) and then concept drift
/// (12 000–18 000, labels flipped), every label 3 h late. The engine's
/// estimate per window equals NannyML's CBPE; it tracks realised quality
/// through the covariate shift and alerts on it before any label of the
/// window arrives; under concept drift it stays flat while realised accuracy
/// drops.
#[test]
fn cbpe_estimate_tracks_covariate_shift_and_cannot_see_concept_drift() {
    let dir = repo().join("tests/fixtures/cbpe");
    let config = Config::from_file(&dir.join("config.yaml")).unwrap();
    let expected: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let (input, labels) = (dir.join("predictions.jsonl"), dir.join("labels.jsonl"));
    let (_, evaluations, events, _) = run_with_labels(&config, &input, Some(&labels), 2);
    let all = lines(&evaluations);
    let of = |kind: &str, end: u64, metric: &str| -> Vec<Value> {
        all.iter().filter(|e| e["kind"] == kind && e["window"]["end_index"] == end && e["metric"] == metric).cloned().collect()
    };
    let f = |v: &Value| v.as_f64().unwrap();
    let windows = expected["windows"].as_array().unwrap();
    let metrics = ["accuracy", "precision", "recall", "f1", "roc_auc"];
    let mut worst = [0.0f64; 5];
    for (i, w) in windows.iter().enumerate() {
        let end = w["end_index"].as_u64().unwrap();
        for (k, metric) in metrics.iter().enumerate() {
            let est = of("estimated_quality", end, metric);
            assert_eq!(est.len(), 1, "one estimate per window and metric: {est:?}");
            let e = &est[0];
            assert_eq!((&e["final"], &e["status"], &e["labelled"]), (&Value::from(true), &Value::from("ok"), &Value::from(0)), "{e}");
            let want = if *metric == "roc_auc" { f(&w["estimated_roc_auc_exact"]) } else { f(&w["estimated"][metric]) };
            assert!((f(&e["value"]) - want).abs() <= 1e-9, "{metric} at {end}: {} vs NannyML {want}", e["value"]);
            assert!((f(&e["value"]) - f(&w["estimated"][metric])).abs() <= 1e-4);
            let (lower, upper) = (f(&e["lower"]), f(&e["upper"]));
            assert!(lower < f(&e["value"]) && f(&e["value"]) < upper, "{e}");
            // The band is ± 3 sampling errors; the bootstrap's sampling error is NannyML's (its formulas) within 20 % (0.88–1.16 × on this fixture).
            let ratio = (upper - lower) / 6.0 / f(&w["sampling_error"][metric]);
            assert!(
                (0.8..=1.2).contains(&ratio),
                "{metric} at {end}: band {lower}..{upper}, NannyML's sampling error {}",
                w["sampling_error"][metric]
            );
            let realised = of("quality", end, metric).last().cloned().unwrap();
            // The last window's TTL has not passed at the end of the labels: evaluated once more, not final.
            assert_eq!(realised["final"], i + 1 < windows.len(), "{realised}");
            assert!((f(&realised["value"]) - f(&w["realised"][metric])).abs() <= 1e-9);
            assert!(realised.get("lower").is_none(), "a realised line has no band: {realised}");
            if i < 6 {
                // No concept drift: the estimate tracks the realised value, inside its band.
                worst[k] = worst[k].max((f(&e["value"]) - f(&realised["value"])).abs());
                assert!(lower <= f(&realised["value"]) && f(&realised["value"]) <= upper, "{metric} at {end}: {realised} outside {e}");
            }
        }
    }
    // The tolerance the README states: accuracy and ROC AUC within 0.02, precision, recall and F1 within 0.04.
    assert!(worst[0] <= 0.02 && worst[4] <= 0.02 && worst[1..4].iter().all(|&d| d <= 0.04), "{worst:?}");
    let acc = |kind: &str, end: u64| f(&of(kind, end, "accuracy").last().unwrap()["value"]);
    let reference = f(&expected["reference"]["accuracy"]);
    for end in [14_000, 16_000, 18_000] {
        // Concept drift: the estimate stays at the reference's accuracy, realised accuracy falls far below.
        assert!((acc("estimated_quality", end) - reference).abs() < 0.01, "estimate at {end}");
        assert!(acc("quality", end) < reference - 0.2, "realised at {end}");
    }
    // Drift events: the estimate alerts at the first shifted window and resolves when the inputs
    // come back (while realised accuracy, concept-drifted, stays low); realised accuracy alerts once.
    let events = lines(&events);
    let kinds: Vec<(String, String, u64)> = events
        .iter()
        .filter(|e| e["metric"] == "accuracy")
        .map(|e| (e["kind"].as_str().unwrap().into(), e["type"].as_str().unwrap().into(), e["window"]["end_index"].as_u64().unwrap()))
        .collect();
    let k = |a: &str, b: &str, c: u64| (a.to_owned(), b.to_owned(), c);
    assert_eq!(
        kinds,
        [k("estimated_quality", "drift", 8000), k("estimated_quality", "resolved", 14_000), k("quality", "drift", 8000)],
        "{events:?}"
    );
    // Label drift: both the shift (more positives near the boundary) and the flipped labels move the classes.
    for w in windows {
        let end = w["end_index"].as_u64().unwrap();
        let label = all.iter().rfind(|e| e["kind"] == "label" && e["window"]["end_index"] == end).unwrap();
        assert!(
            (f(&label["value"]) - f(&w["label_chi2"]["statistic"])).abs() <= 1e-9 * f(&w["label_chi2"]["statistic"]).max(1.0),
            "{label}"
        );
        assert!((f(&label["p_value"]) - f(&w["label_chi2"]["p_value"])).abs() <= 1e-6, "{label}");
    }
    let label_events: Vec<(&str, u64)> = events
        .iter()
        .filter(|e| e["kind"] == "label")
        .map(|e| (e["type"].as_str().unwrap(), e["window"]["end_index"].as_u64().unwrap()))
        .collect();
    assert_eq!(label_events, [("drift", 8000)], "{events:?}");
    let estimated = &events.iter().find(|e| e["kind"] == "estimated_quality").unwrap();
    assert!((f(&estimated["threshold"]) - (reference - 0.1)).abs() < 1e-9);
    assert_ne!(estimated["event_id"], events.iter().find(|e| e["kind"] == "quality").unwrap()["event_id"]);
    // Before any label: the estimate of the first shifted window comes before every realised line of it with labels.
    let position = |pred: &dyn Fn(&Value) -> bool| all.iter().position(pred).unwrap();
    let estimate_at = position(&|e| e["kind"] == "estimated_quality" && e["window"]["end_index"] == 8000);
    let first_label_at = position(&|e| e["kind"] == "quality" && e["window"]["end_index"] == 8000 && e["labelled"].as_u64() > Some(0));
    assert!(estimate_at < first_label_at);
    // Without the labels the estimate is the same.
    let (_, alone, _, _) = run_with_labels(&config, &input, None, 1);
    let estimates = |v: &[Value]| v.iter().filter(|e| e["kind"] == "estimated_quality").map(|e| e["value"].clone()).collect::<Vec<_>>();
    assert_eq!(estimates(&lines(&alone)), estimates(&all));
}

/// The estimate over sliding windows of 4 panes (2 000 predictions, a slide
/// of 500) equals CBPE computed directly over each window's predictions: a
/// window's estimate takes exactly its own panes, and a pane's probabilities
/// are dropped only after the last window that holds it.
#[test]
fn cbpe_estimate_of_sliding_windows_takes_exactly_their_panes() {
    use driftwatch_detectors::cbpe::{Cbpe, ExpectedQuality};
    let dir = repo().join("tests/fixtures/cbpe");
    let yaml = std::fs::read_to_string(dir.join("config.yaml"))
        .unwrap()
        .replace("{ type: tumbling, events: 2000 }", "{ type: sliding, events: 2000, slide: 500 }")
        .replace("path: reference.csv", &format!("path: {}", dir.join("reference.csv").display()));
    let config = Config::from_yaml(&yaml).unwrap();
    let (_, evaluations, _, _) = run_with_labels(&config, &dir.join("predictions.jsonl"), None, 2);
    let estimates: Vec<Value> = lines(&evaluations).into_iter().filter(|e| e["kind"] == "estimated_quality").collect();
    // The reference, as the engine reads it (labels written as floats).
    let text = std::fs::read_to_string(dir.join("reference.csv")).unwrap();
    let rows: Vec<Vec<f64>> = text.lines().skip(1).map(|l| l.split(',').map(|x| x.parse().unwrap()).collect()).collect();
    let col = |i: usize| rows.iter().map(|r| r[i] as u8).collect::<Vec<u8>>();
    let scores: Vec<f64> = rows.iter().map(|r| r[3]).collect();
    let cbpe = Cbpe::fit(&col(1), &col(2), &scores, 2000).unwrap();
    let events: Vec<Value> =
        std::fs::read_to_string(dir.join("predictions.jsonl")).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let ends: Vec<u64> = (2000..=18_000).step_by(500).collect();
    assert_eq!(estimates.len(), ends.len() * 5, "one estimate per window and metric");
    for end in ends {
        let mut q = ExpectedQuality::new(1 << 20, 1000).unwrap();
        for e in &events[end as usize - 2000..end as usize] {
            q.update(e["prediction"].as_u64().unwrap() as u8, cbpe.calibrate(e["score"].as_f64().unwrap())).unwrap();
        }
        let want = q.estimate().unwrap();
        for (metric, value) in [("accuracy", want.accuracy), ("f1", want.f1), ("roc_auc", want.roc_auc.unwrap())] {
            let got = estimates.iter().find(|e| e["window"]["end_index"] == end && e["metric"] == metric).unwrap();
            assert_eq!(got["window"]["count"], 2000);
            assert!((got["value"].as_f64().unwrap() - value).abs() <= 1e-9, "{metric} at {end}: {got} vs {value}");
        }
    }
}

/// A live configuration with `quality` but no `source.label_topics` is
/// refused with the reason instead of evaluating no quality.
#[test]
fn run_refuses_quality_without_label_topics() {
    let dir = repo().join("tests/fixtures/quality");
    let yaml = std::fs::read_to_string(dir.join("config.yaml"))
        .unwrap()
        .replace("path: reference.csv", &format!("path: {}", dir.join("reference.csv").display()));
    let yaml = format!("source: {{ type: kafka, brokers: \"127.0.0.1:1\", topics: [predictions], group_id: g }}\n{yaml}");
    let config = Config::from_yaml(&yaml).unwrap();
    let options = driftwatch_engine::live::RunOptions {
        shards: Some(1),
        progress: false,
        listen: Some("127.0.0.1:0".parse().unwrap()),
        output_evaluations: None,
        stop: Default::default(),
    };
    let e = driftwatch_engine::live::run(&config, options).unwrap_err().to_string();
    assert!(e.contains("\"fraud\"") && e.contains("quality") && e.contains("source.label_topics"), "{e}");
}

/// The quality fixture's labels as CSV (classes written as 0/1, 0.0/1.0 and
/// false/true, as pandas and people write them) and as Parquet give the
/// same evaluations and events as the JSONL labels.
#[test]
fn csv_and_parquet_labels_give_the_same_quality_as_jsonl() {
    let dir = repo().join("tests/fixtures/quality");
    let config = Config::from_file(&dir.join("config.yaml")).unwrap();
    let input = dir.join("predictions.jsonl");
    let jsonl = dir.join("labels.jsonl");
    let good: Vec<Value> = std::fs::read_to_string(&jsonl)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["model"] == "fraud" && l["prediction_id"].is_string() && l["label"] != "maybe")
        .collect();
    let class = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let out = temp_dir("labels");
    let csv = out.join("labels.csv");
    let mut text = String::from("model,prediction_id,label,timestamp\n");
    for l in &good {
        text.push_str(&format!("fraud,{},{},{}\n", l["prediction_id"].as_str().unwrap(), class(&l["label"]), l["timestamp"]));
    }
    assert!(text.contains(",true,") && text.contains(",1.0,") && text.contains(",false,"));
    std::fs::write(&csv, text).unwrap();
    let (_, ev_json, de_json, _) = run_with_labels(&config, &input, Some(&jsonl), 2);
    let (report, ev_csv, de_csv, dead) = run_with_labels(&config, &input, Some(&csv), 2);
    assert!(dead.is_empty(), "{}", String::from_utf8_lossy(&dead));
    assert_eq!(report.labels.as_ref().unwrap().read, good.len() as u64);
    assert!(ev_csv == ev_json, "CSV labels give other evaluations than JSONL");
    assert_eq!(de_csv, de_json);

    use driftwatch_connectors::table::{batch_from_columns, write_parquet, ColumnData};
    let columns = vec![
        ("model".to_string(), ColumnData::Categorical(good.iter().map(|_| Some("fraud".to_owned())).collect())),
        (
            "prediction_id".to_string(),
            ColumnData::Categorical(good.iter().map(|l| l["prediction_id"].as_str().map(str::to_owned)).collect()),
        ),
        ("label".to_string(), ColumnData::Categorical(good.iter().map(|l| Some(class(&l["label"]))).collect())),
        ("timestamp".to_string(), ColumnData::Numeric(good.iter().map(|l| l["timestamp"].as_f64()).collect())),
    ];
    let parquet = out.join("labels.parquet");
    write_parquet(&parquet, &batch_from_columns(columns).unwrap()).unwrap();
    let (_, ev_parquet, de_parquet, dead) = run_with_labels(&config, &input, Some(&parquet), 2);
    assert!(dead.is_empty(), "{}", String::from_utf8_lossy(&dead));
    assert!(ev_parquet == ev_json, "Parquet labels give other evaluations than JSONL");
    assert_eq!(de_parquet, de_json);
    std::fs::remove_dir_all(out).ok();
}

/// A label line longer than `engine.max_event_bytes` is an `oversize` dead
/// letter (its first bytes kept, the rest read past), and the labels around
/// it join as without it.
#[test]
fn an_oversized_label_line_is_dead_lettered_and_the_rest_kept() {
    let dir = repo().join("tests/fixtures/quality");
    let mut config = Config::from_file(&dir.join("config.yaml")).unwrap();
    config.engine.max_event_bytes = 4096;
    let input = dir.join("predictions.jsonl");
    let labels = std::fs::read_to_string(dir.join("labels.jsonl")).unwrap();
    let mut lines_in: Vec<&str> = labels.lines().collect();
    let huge = format!("{{\"model\":\"fraud\",\"prediction_id\":\"x\",\"label\":1,\"timestamp\":1,\"pad\":\"{}\"}}", "a".repeat(1 << 20));
    lines_in.insert(1000, &huge);
    let out = temp_dir("oversize");
    let with_huge = out.join("labels.jsonl");
    std::fs::write(&with_huge, lines_in.join("\n") + "\n").unwrap();
    let (_, ev, _, dead) = run_with_labels(&config, &input, Some(&with_huge), 2);
    let (_, ev_plain, _, _) = run_with_labels(&config, &input, Some(&dir.join("labels.jsonl")), 2);
    assert!(ev == ev_plain, "the oversized line changed the evaluations");
    let dead = lines(&dead);
    let big: Vec<&Value> = dead.iter().filter(|d| d["reason"] == "oversize").collect();
    assert_eq!(big.len(), 1, "{dead:?}");
    assert_eq!((big[0]["line"].as_u64(), big[0]["input"].as_str()), (Some(1001), Some("labels")));
    assert_eq!(big[0]["payload"].as_str().unwrap().len(), 4096);
    assert_eq!(dead.len(), 5);
    std::fs::remove_dir_all(out).ok();
}

/// Log lines go through `tracing`: text by default, one JSON object per
/// line with `--log-format json`, filtered by `RUST_LOG`; a bad `RUST_LOG`
/// is refused with the reason. The replay's own output is not a log line
/// and is the same whatever the log settings.
#[test]
fn log_lines_follow_rust_log_and_the_log_format() {
    let fixture = repo().join("tests/fixtures/quality");
    let dir = std::env::temp_dir().join(format!("dw-log-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // No --labels for a model with quality: the engine warns.
    let replay = |extra: &[&str], rust_log: Option<&str>| {
        let mut c = std::process::Command::new(crate::live::binary());
        c.args(extra).args(["replay", "--config"]).arg(fixture.join("config.yaml")).arg("--input");
        c.arg(fixture.join("predictions.jsonl")).arg("--output-events").arg(dir.join("events.jsonl"));
        match rust_log {
            Some(v) => c.env("RUST_LOG", v),
            None => c.env_remove("RUST_LOG"),
        };
        let out = c.output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let warning = "no --labels given";
    let (ok, text) = replay(&[], None);
    assert!(ok, "{text}");
    let line = text.lines().find(|l| l.contains(warning)).unwrap_or_else(|| panic!("no warning in:\n{text}"));
    assert!(line.contains("WARN"), "{line}");
    let (ok, json) = replay(&["--log-format", "json"], Some("warn"));
    assert!(ok, "{json}");
    let line = json.lines().find(|l| l.contains(warning)).unwrap_or_else(|| panic!("no warning in:\n{json}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(v["level"], "WARN", "{line}");
    assert!(v["fields"]["message"].as_str().unwrap().starts_with(warning), "{line}");
    assert!(v["timestamp"].is_string(), "{line}");
    // Filtered out by level, and per target.
    let (ok, quiet) = replay(&[], Some("error"));
    assert!(ok && !quiet.contains(warning), "{quiet}");
    let (ok, quiet) = replay(&[], Some("driftwatch=error,warn"));
    assert!(ok && !quiet.contains(warning), "{quiet}");
    // The summary is printed whatever the filter.
    assert!(quiet.contains("events"), "{quiet}");
    let (ok, refused) = replay(&[], Some("driftwatch=loud"));
    assert!(!ok && refused.contains("RUST_LOG"), "{refused}");
    std::fs::remove_dir_all(&dir).ok();
}
