//! Regression tests of the hardening issue: each case was a silent wrong
//! answer or a crash, named after what must hold now.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use driftwatch_detectors::categorical::categorical_drift_counts;
use driftwatch_engine::config::Config;
use driftwatch_engine::pipeline::{replay, Outputs};
use serde_json::{json, Value};

fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir =
        std::env::temp_dir().join(format!("driftwatch-hardening-{}-{name}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Replays `events` (one JSON value each) under `yaml`: (evaluations, drift events).
fn replay_events(yaml: &str, events: &[Value]) -> (Vec<Value>, Vec<Value>) {
    let config = Config::from_yaml(yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    let dir = temp_dir("replay");
    let input = dir.join("input.jsonl");
    let text: String = events.iter().map(|e| format!("{e}\n")).collect();
    std::fs::write(&input, text).unwrap();
    let (ev, de) = (dir.join("evaluations.jsonl"), dir.join("events.jsonl"));
    let open = |p: &PathBuf| Some(driftwatch_engine::pipeline::create_output(p).unwrap());
    let outputs = Outputs { evaluations: open(&ev), events: open(&de), dead_letter: None };
    replay(&config, &input, None, outputs, Some(2)).unwrap();
    let read = |p: &PathBuf| -> Vec<Value> {
        std::fs::read(p).unwrap().split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(|l| serde_json::from_slice(l).unwrap()).collect()
    };
    let out = (read(&ev), read(&de));
    std::fs::remove_dir_all(dir).ok();
    out
}

/// A reproducible uniform in [0, 1).
fn uniform(state: &mut u64) -> f64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    (*state >> 11) as f64 / (1u64 << 53) as f64
}

/// A standard normal (Box–Muller).
fn normal(state: &mut u64) -> f64 {
    let (u, v) = (uniform(state).max(1e-300), uniform(state));
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

fn model(window: &str, detectors: &str, reference: &str, features: &str) -> String {
    format!(
        "models:\n  - name: m\n    reference: {reference}\n    window: {window}\n    features: {features}\n    detectors:\n{detectors}\n"
    )
}

const METRICS: [&str; 7] = ["psi", "jensen_shannon", "hellinger", "ks", "wasserstein", "chi2", "l_infinity"];

fn detector_line(metric: &str) -> String {
    match metric {
        "ks" => "      - { metric: ks, p_value: 0.01 }".into(),
        "chi2" => "      - { metric: chi2, p_value: 0.01 }".into(),
        m => format!("      - {{ metric: {m}, threshold: 0.1 }}"),
    }
}

#[test]
fn every_detector_combination_gives_every_statistic_a_value() {
    let mut seed = 0x5EED_u64;
    let events: Vec<Value> = (0..600)
        .map(|i| {
            let x = normal(&mut seed) + if i >= 400 { 1.0 } else { 0.0 };
            let c = ["a", "b", "c"][(uniform(&mut seed) * 3.0) as usize];
            json!({"model": "m", "timestamp": i * 1000, "features": {"x": x, "c": c}})
        })
        .collect();
    let features = "[{ name: x, type: numeric }, { name: c, type: categorical }]";
    for window in ["{ type: tumbling, events: 100 }", "{ type: sliding, events: 100, slide: 50 }"] {
        for mask in 1u32..(1 << METRICS.len()) {
            let chosen: Vec<&str> = METRICS.iter().enumerate().filter(|(i, _)| mask & (1 << i) != 0).map(|(_, m)| *m).collect();
            let detectors: Vec<String> = chosen.iter().map(|m| detector_line(m)).collect();
            let yaml = model(window, &detectors.join("\n"), "{ baseline_events: 200 }", features);
            let (evaluations, _) = replay_events(&yaml, &events);
            let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
            for e in &evaluations {
                let key = (e["feature"].as_str().unwrap().to_owned(), e["metric"].as_str().unwrap().to_owned());
                assert_eq!(e["status"], "ok", "{chosen:?} {window}: {e}");
                assert!(e["value"].as_f64().is_some_and(f64::is_finite), "{chosen:?} {window}: {e}");
                *seen.entry(key).or_default() += 1;
            }
            let windows = if window.contains("slide") { 7 } else { 4 };
            for m in &chosen {
                let columns: &[&str] = match *m {
                    "ks" | "wasserstein" => &["x"],
                    "chi2" | "l_infinity" => &["c"],
                    _ => &["x", "c"],
                };
                for c in columns {
                    assert_eq!(seen.get(&(c.to_string(), m.to_string())), Some(&windows), "{chosen:?} {window}: {c} {m}");
                }
            }
        }
    }
}

#[test]
fn psi_alone_sees_a_mean_shift() {
    let mut seed = 7u64;
    let events: Vec<Value> =
        (0..20_000).map(|i| json!({"model": "m", "features": {"x": normal(&mut seed) + if i >= 10_000 { 0.5 } else { 0.0 }}})).collect();
    let yaml = model(
        "{ type: tumbling, events: 1000 }",
        "      - { metric: psi, threshold: 0.1 }",
        "{ baseline_events: 5000 }",
        "[{ name: x, type: numeric }]",
    );
    let (evaluations, events) = replay_events(&yaml, &events);
    assert_eq!(evaluations.len(), 15);
    assert!(evaluations.iter().all(|e| e["status"] == "ok"), "{evaluations:?}");
    let drift: Vec<&Value> = events.iter().filter(|e| e["type"] == "drift" && e["feature"] == "x").collect();
    assert_eq!(drift.len(), 1, "{events:?}");
    assert!(drift[0]["episode_start"].as_i64().unwrap() >= 5_000, "{events:?}");
}

/// Window starts (minutes) and event counts an event-time sliding window of
/// `size` minutes sliding by one minute must evaluate: every one whose panes
/// lie between the first and the last pane holding events, and that holds events.
fn expected_windows(times_s: &[i64], size: i64) -> Vec<(i64, u64)> {
    let minutes: Vec<i64> = times_s.iter().map(|t| t.div_euclid(60)).collect();
    let (first, last) = (*minutes.iter().min().unwrap(), *minutes.iter().max().unwrap());
    (first..=last - size + 1)
        .map(|s| (s, minutes.iter().filter(|&&m| m >= s && m < s + size).count() as u64))
        .filter(|&(_, n)| n > 0)
        .collect()
}

fn evaluated_windows(evaluations: &[Value]) -> Vec<(i64, u64)> {
    let mut w: Vec<(i64, u64)> = evaluations
        .iter()
        .filter(|e| e["metric"] == "ks")
        .map(|e| (e["window"]["start_ms"].as_i64().unwrap() / 60_000, e["window"]["count"].as_u64().unwrap()))
        .collect();
    w.dedup();
    w
}

#[test]
fn event_time_sliding_windows_across_a_gap_are_all_evaluated() {
    let yaml = model(
        "{ type: sliding, duration: 5m, slide: 1m }",
        "      - { metric: ks, p_value: 0.01 }",
        "{ baseline_events: 100 }",
        "[{ name: x, type: numeric }]",
    );
    for gap_s in [240, 300, 1_000] {
        let mut seed = 11u64;
        let mut times: Vec<i64> = (0..100).map(|_| 0).collect();
        times.extend(0..600);
        times.extend((0..600).map(|t| 600 + gap_s + t));
        let events: Vec<Value> =
            times.iter().map(|&t| json!({"model": "m", "timestamp": t * 1000, "features": {"x": normal(&mut seed)}})).collect();
        let (evaluations, _) = replay_events(&yaml, &events);
        assert_eq!(evaluated_windows(&evaluations), expected_windows(&times[100..], 5), "gap {gap_s} s");
    }
    // The case by name: the windows starting at minutes 6–9 and 11–14.
    let times: Vec<i64> = (0..600).chain(900..1_500).collect();
    let expected = expected_windows(&times, 5);
    for (start, count) in [(6, 240), (7, 180), (8, 120), (9, 60), (11, 60), (12, 120), (13, 180), (14, 240)] {
        assert!(expected.contains(&(start, count)));
    }
}

#[test]
fn event_time_sliding_windows_of_a_disordered_stream_are_all_evaluated() {
    let yaml = model(
        "{ type: sliding, duration: 5m, slide: 1m, allowed_lateness: 1h }",
        "      - { metric: ks, p_value: 0.01 }",
        "{ baseline_events: 100 }",
        "[{ name: x, type: numeric }]",
    );
    let mut seed = 3u64;
    // Bursts separated by gaps of up to 20 minutes, shuffled within a burst.
    let mut times: Vec<i64> = Vec::new();
    let mut t = 0i64;
    while times.len() < 3_000 {
        let burst: Vec<i64> = (0..(uniform(&mut seed) * 300.0) as i64).map(|_| t + (uniform(&mut seed) * 240.0) as i64).collect();
        times.extend(burst);
        t += 240 + (uniform(&mut seed) * 1_200.0) as i64;
    }
    let mut events: Vec<Value> = (0..100).map(|_| json!({"model": "m", "timestamp": 0, "features": {"x": 0.5}})).collect();
    events.extend(times.iter().map(|&t| json!({"model": "m", "timestamp": t * 1000, "features": {"x": normal(&mut seed)}})));
    let (evaluations, _) = replay_events(&yaml, &events);
    assert_eq!(evaluated_windows(&evaluations), expected_windows(&times, 5));
}

#[test]
fn max_categories_names_the_same_categories_in_tumbling_and_sliding_windows() {
    let reference: Vec<&str> = (0..100).map(|i| if i % 2 == 0 { "a" } else { "b" }).collect();
    let window: Vec<&str> =
        [("a", 20), ("b", 20), ("c", 10), ("d", 5), ("a", 15), ("b", 15), ("c", 15)].iter().flat_map(|&(c, n)| vec![c; n]).collect();
    let earlier: Vec<&str> = [("e", 30), ("f", 30), ("g", 40)].iter().flat_map(|&(c, n)| vec![c; n]).collect();
    let ev = |c: &&str| json!({"model": "m", "features": {"c": c}});
    // The window by hand: a 35, b 35, c 25 named, d (5) in `__other__`.
    // Aligned in name order: `__other__`, a, b, c.
    let want = categorical_drift_counts(&[0, 50, 50, 0], &[5, 35, 35, 25]).unwrap();
    assert!((want.l_infinity - 0.25).abs() < 1e-12);
    assert!((want.psi - 2.3723).abs() < 1e-4, "{}", want.psi);
    let features = "[{ name: c, type: categorical, max_categories: 3 }]";
    let detectors = "      - { metric: l_infinity, threshold: 0.1 }\n      - { metric: psi, threshold: 0.1 }";
    let value = |evaluations: &[Value], metric: &str, end: u64| -> f64 {
        let e = evaluations.iter().find(|e| e["metric"] == metric && e["window"]["end_index"] == end).unwrap();
        e["value"].as_f64().unwrap()
    };
    for (spec, history) in [
        ("{ type: tumbling, events: 100 }", false),
        ("{ type: tumbling, events: 100 }", true),
        ("{ type: sliding, events: 100, slide: 50 }", false),
        ("{ type: sliding, events: 100, slide: 50 }", true),
    ] {
        let mut stream: Vec<Value> = reference.iter().map(ev).collect();
        if history {
            stream.extend(earlier.iter().map(ev));
        }
        stream.extend(window.iter().map(ev));
        let yaml = model(spec, detectors, "{ baseline_events: 100 }", features);
        let (evaluations, _) = replay_events(&yaml, &stream);
        let end = if history { 200 } else { 100 };
        assert_eq!(value(&evaluations, "l_infinity", end), want.l_infinity, "{spec} history {history}");
        assert_eq!(value(&evaluations, "psi", end), want.psi, "{spec} history {history}");
    }
}

#[test]
fn constant_reference_column_still_sees_a_shift() {
    let mut events: Vec<Value> = (0..1_000).map(|_| json!({"model": "m", "features": {"x": 5.0}})).collect();
    events.extend((0..1_000).map(|_| json!({"model": "m", "features": {"x": 1.0}})));
    let detectors =
        "      - { metric: psi, threshold: 0.2 }\n      - { metric: jensen_shannon, threshold: 0.1 }\n      - { metric: hellinger, threshold: 0.1 }";
    let yaml = model("{ type: tumbling, events: 500 }", detectors, "{ baseline_events: 1000 }", "[{ name: x, type: numeric }]");
    let (evaluations, _) = replay_events(&yaml, &events);
    assert_eq!(evaluations.len(), 6);
    for e in &evaluations {
        assert_eq!(e["status"], "ok", "{e}");
        assert_eq!(e["breach"], true, "{e}");
    }
    // The same values as a reference with the point in a bin of its own.
    let js = evaluations.iter().find(|e| e["metric"] == "jensen_shannon").unwrap()["value"].as_f64().unwrap();
    assert!((js - 1.0).abs() < 1e-12, "{js}");
    // And no breach on windows of the point itself.
    let events: Vec<Value> = (0..2_000).map(|_| json!({"model": "m", "features": {"x": 5.0}})).collect();
    let (evaluations, _) = replay_events(&yaml, &events);
    assert!(evaluations.iter().all(|e| e["value"].as_f64() == Some(0.0) && e["breach"] == false), "{evaluations:?}");
}

#[test]
fn high_cardinality_categories_raise_no_false_alarm_and_a_mix_change_still_does() {
    let mut seed = 99u64;
    let name = |seed: &mut u64| format!("u{}", (uniform(seed) * 100_000.0) as u64);
    let mut events: Vec<Value> = (0..20_000).map(|_| json!({"model": "m", "features": {"c": name(&mut seed)}})).collect();
    // Stable: 48 windows of the same distribution.
    events.extend((0..48_000).map(|_| json!({"model": "m", "features": {"c": name(&mut seed)}})));
    let features = "[{ name: c, type: categorical, max_categories: 200000 }]";
    let detectors = "      - { metric: jensen_shannon, threshold: 0.1 }\n      - { metric: psi, threshold: 0.2 }\n      - { metric: hellinger, threshold: 0.1 }";
    let yaml = model("{ type: tumbling, events: 1000 }", detectors, "{ baseline_events: 20000 }", features);
    let (evaluations, drift) = replay_events(&yaml, &events);
    assert_eq!(evaluations.len(), 48 * 3);
    // Every window is evaluated (the rare names pooled), with no breach and no drift event.
    assert!(evaluations.iter().all(|e| e["status"] == "ok"));
    assert!(evaluations.iter().all(|e| e["breach"] == false), "{:?}", evaluations.iter().find(|e| e["breach"] == true));
    assert!(drift.is_empty(), "{drift:?}");
    // A real mix change: half of the events go to one name.
    for i in 0..6_000 {
        let c = if i % 2 == 0 { "hot".to_owned() } else { name(&mut seed) };
        events.push(json!({"model": "m", "features": {"c": c}}));
    }
    let (_, drift) = replay_events(&yaml, &events);
    let metrics: Vec<&str> = drift.iter().filter(|e| e["type"] == "drift").map(|e| e["metric"].as_str().unwrap()).collect();
    assert!(metrics.contains(&"jensen_shannon") && metrics.contains(&"hellinger"), "{drift:?}");
}

fn config_error(yaml: &str) -> String {
    match Config::from_yaml(yaml) {
        Ok(_) => panic!("accepted:\n{yaml}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn wasserstein_that_could_not_be_computed_is_refused_or_computed() {
    // On an event-time window: refused with the reason.
    let yaml = model(
        "{ type: tumbling, duration: 1m }",
        "      - { metric: wasserstein, threshold: 0.1 }",
        "{ baseline_events: 100 }",
        "[{ name: x, type: numeric }]",
    );
    let e = config_error(&yaml);
    assert!(e.contains("models[0].detectors[0]") && e.contains("event-time window"), "{e}");
    // A count window over exact_max: refused without advice that leads nowhere.
    let yaml = model(
        "{ type: tumbling, events: 20000 }",
        "      - { metric: wasserstein, threshold: 0.1 }",
        "{ baseline_events: 100 }",
        "[{ name: x, type: numeric }]",
    );
    let e = config_error(&yaml);
    assert!(e.contains("exact_max") && !e.contains("mode: sketch"), "{e}");
    // Beside a KS in sketch mode: computed from the raw values.
    let mut seed = 5u64;
    let events: Vec<Value> = (0..400).map(|_| json!({"model": "m", "features": {"x": normal(&mut seed)}})).collect();
    let yaml = model(
        "{ type: tumbling, events: 100 }",
        "      - { metric: wasserstein, threshold: 0.1 }\n      - { metric: ks, mode: sketch, p_value: 0.01 }",
        "{ baseline_events: 100 }",
        "[{ name: x, type: numeric }]",
    );
    let (evaluations, _) = replay_events(&yaml, &events);
    let w: Vec<&Value> = evaluations.iter().filter(|e| e["metric"] == "wasserstein").collect();
    assert_eq!(w.len(), 3);
    assert!(w.iter().all(|e| e["status"] == "ok" && e["method"] == "exact"), "{w:?}");
    assert!(evaluations.iter().filter(|e| e["metric"] == "ks").all(|e| e["method"] == "sketch"));
}

#[test]
fn oversized_engine_settings_are_config_errors_not_aborts() {
    let base = model(
        "{ type: tumbling, events: 100 }",
        "      - { metric: psi, threshold: 0.1 }",
        "{ baseline_events: 100 }",
        "[{ name: x, type: numeric }]",
    );
    for (key, value) in [("queue_batches", "1000000000000"), ("batch_events", "18446744073709551615"), ("max_event_bytes", "1099511627776")]
    {
        let e = config_error(&format!("engine: {{ {key}: {value} }}\n{base}"));
        assert!(e.contains(&format!("engine.{key}")) && e.contains("between 1 and"), "{e}");
    }
    let e = config_error(&base.replace("tumbling, events: 100 }", "tumbling, events: 10000000000 }"));
    assert!(e.contains("models[0].window.events"), "{e}");
    let e = config_error(&base.replace("{ type: tumbling, events: 100 }", "{ type: tumbling, duration: 1000d }"));
    assert!(e.contains("models[0].window.duration"), "{e}");
    let e = config_error(&base.replace("{ baseline_events: 100 }", "{ baseline_events: 1000000000000 }"));
    assert!(e.contains("baseline_events"), "{e}");
}

/// `driftwatch validate` prints the worst-case bytes of the configured
/// queues, batches and sketches, so a 5 000-feature model with large batches
/// is seen to need gigabytes before it runs.
#[test]
fn validate_prints_the_worst_case_memory() {
    let dir = temp_dir("validate-memory");
    let features: String = (0..5_000).map(|i| format!("      - {{ name: f{i}, type: numeric }}\n")).collect();
    let total = |batch: usize| -> (String, f64) {
        let yaml = format!(
            "engine: {{ shards: 2, batch_events: {batch} }}\nmodels:\n  - name: m\n    reference: {{ baseline_events: 1000 }}\n    window: {{ type: tumbling, events: 1000 }}\n    features:\n{features}    detectors:\n      - {{ metric: psi, threshold: 0.2 }}\n"
        );
        let path = dir.join(format!("config-{batch}.yaml"));
        std::fs::write(&path, yaml).unwrap();
        let out = std::process::Command::new(crate::live::binary()).arg("validate").arg("--config").arg(&path).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).unwrap();
        let line = text.lines().find(|l| l.trim_start().starts_with("total")).unwrap_or_else(|| panic!("{text}"));
        // "total  1.4 GiB at 1 KiB an event, …"
        let mut words = line.split_whitespace().skip(1);
        let value: f64 = words.next().unwrap().parse().unwrap();
        let scale = match words.next().unwrap() {
            "MiB" => 1.0 / 1024.0,
            "GiB" => 1.0,
            unit => panic!("{unit} in {line}"),
        };
        (text, value * scale)
    };
    let (text, large) = total(512);
    for part in ["worst-case memory with 2 shards", "input batches", "decoded batches", "model m", "max_event_bytes"] {
        assert!(text.contains(part), "{part}: {text}");
    }
    let (_, small) = total(64);
    // 19 decoded batches of 512 rows × 5 000 numbers are 0.36 GiB alone.
    assert!(large > 0.36 && small < large / 2.0, "{large} GiB vs {small} GiB");
    std::fs::remove_dir_all(dir).ok();
}

/// A sliding window over more category names than its cap: a merge that
/// cannot admit a name counts it in `__other__`, and a later merge may admit
/// the same name, so its count is split and no unmerge can take the leaving
/// pane out (this stopped the engine with "retract of a value that
/// category_counts does not hold"). The window is rebuilt from its panes
/// instead: the replay completes, and a window's values depend on its own
/// events only, not on the high-cardinality history before them.
#[test]
fn sliding_windows_over_more_names_than_the_cap_run_and_forget_their_history() {
    let mut seed = 7u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    let ev = |c: String| json!({"model": "m", "features": {"c": c}});
    let reference: Vec<Value> = (0..200).map(|i| ev(format!("n{}", i % 50))).collect();
    let history: Vec<Value> = (0..1_200).map(|_| ev(format!("h{}", (next() * 300.0) as u32))).collect();
    let window: Vec<Value> =
        (0..400)
            .map(|_| {
                if next() < 0.5 {
                    ev(format!("n{}", (next() * 50.0) as u32))
                } else {
                    ev(format!("m{}", (next() * next() * 100.0) as u32))
                }
            })
            .collect();
    let features = "[{ name: c, type: categorical, max_categories: 5 }]";
    let detectors =
        "      - { metric: chi2, p_value: 0.01 }\n      - { metric: psi, threshold: 0.1 }\n      - { metric: l_infinity, threshold: 0.1 }";
    let yaml = model("{ type: sliding, events: 400, slide: 100 }", detectors, "{ baseline_events: 200 }", features);
    let last = |stream: &[Value], end: u64| -> Vec<(String, f64)> {
        let (evaluations, _) = replay_events(&yaml, stream);
        let at: Vec<(String, f64)> = evaluations
            .iter()
            .filter(|e| e["window"]["end_index"] == end)
            .map(|e| (e["metric"].as_str().unwrap().to_owned(), e["value"].as_f64().unwrap()))
            .collect();
        assert_eq!(at.len(), 3, "{end}: {evaluations:?}");
        at
    };
    let mut with_history = reference.clone();
    with_history.extend(history.iter().cloned());
    with_history.extend(window.iter().cloned());
    let mut without = reference.clone();
    without.extend(window.iter().cloned());
    assert_eq!(last(&with_history, 1_600), last(&without, 400));
}
