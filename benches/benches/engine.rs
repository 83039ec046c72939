//! Hot paths of the engine, and the window-close → evaluation latency.
//! Run: `cargo bench -p driftwatch-benches --bench engine` (criterion figures
//! per event, then the latency table printed by this file).
#![allow(clippy::unwrap_used)] // a bench with bad input should stop loudly

use std::time::Duration;

use clap::Parser;
use criterion::{black_box, BatchSize, Criterion, Throughput};
use driftwatch_engine::batch::ModelRows;
use driftwatch_engine::config::{Config, FeatureType};
use driftwatch_engine::decode::{DecodedEvent, Decoder, SlotValue};
use driftwatch_engine::model::{build_references, Plan};
use driftwatch_engine::quality::{LabelRecord, NoLabels, QualityState};
use driftwatch_engine::window::{ModelState, Outcome};
use driftwatch_generator::{GenerateArgs, Generator};

const PANE: usize = 1000;

/// A model with `numeric` + `categorical` features, PSI + KS (sketch) + JS,
/// sliding window 10 000 / 1 000, baseline of the first 10 000 events.
fn setup(numeric: usize, categorical: usize, events: u64) -> (Config, Vec<Vec<u8>>) {
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: GenerateArgs,
    }
    let args = Cli::try_parse_from([
        "generate".to_string(),
        "--events".into(),
        events.to_string(),
        "--numeric".into(),
        numeric.to_string(),
        "--categorical".into(),
        categorical.to_string(),
        "--drift-start".into(),
        (events / 2).to_string(),
    ])
    .unwrap()
    .args;
    let generator = Generator::new(args.config()).unwrap();
    let (num, cat) = generator.feature_names();
    let mut features = String::new();
    for n in &num {
        features.push_str(&format!("      - {{ name: {n}, type: numeric }}\n"));
    }
    for c in &cat {
        features.push_str(&format!("      - {{ name: {c}, type: categorical }}\n"));
    }
    let yaml = format!(
        "models:\n  - name: fraud\n    reference: {{ baseline_events: 10000 }}\n    window: {{ type: sliding, events: 10000, slide: 1000 }}\n    features:\n{features}    detectors:\n      - {{ metric: psi, threshold: 0.2 }}\n      - {{ metric: ks, p_value: 0.01, threshold: 0.1, mode: sketch }}\n      - {{ metric: jensen_shannon, threshold: 0.1 }}\n"
    );
    let config = Config::from_yaml(&yaml).unwrap();
    let lines = (0..events)
        .map(|i| {
            let mut buf = Vec::new();
            generator.write_event(i, &mut buf);
            buf
        })
        .collect();
    (config, lines)
}

/// Decodes `lines` into panes of column-major rows, as the shards do.
fn panes(config: &Config, lines: &[Vec<u8>]) -> Vec<ModelRows> {
    let plan = Plan::new(config).unwrap();
    let decoder = Decoder::new(&plan.decoder).unwrap();
    let mp = &plan.models[0];
    // One event buffer for all lines (the engine keeps one per batch).
    let mut e = DecodedEvent::new();
    lines
        .chunks(PANE)
        .map(|chunk| {
            let mut rows = ModelRows::new(mp, chunk.len());
            for line in chunk {
                decoder.decode(line, &mut e).unwrap();
                rows.start_row(e.timestamp_ms, e.model_version.as_deref());
                for (ci, c) in mp.columns.iter().enumerate() {
                    match (c.kind, &e.values[c.slot]) {
                        (FeatureType::Numeric, SlotValue::Number(x)) => rows.push_number(ci, Some(*x)),
                        (FeatureType::Categorical, SlotValue::Text(t)) => rows.push_category(ci, Some(t)),
                        _ => rows.push_missing(ci),
                    }
                }
            }
            rows
        })
        .collect()
}

fn model(config: &Config) -> ModelState {
    let plan = Plan::new(config).unwrap();
    let references = build_references(config, &plan).unwrap();
    ModelState::new(plan.models[0].clone(), references.into_iter().next().unwrap())
}

fn bench(c: &mut Criterion) {
    let (config, lines) = setup(20, 2, 60_000);
    let plan = Plan::new(&config).unwrap();
    let decoder = Decoder::new(&plan.decoder).unwrap();

    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(PANE as u64));
    g.bench_function("decode/22_features", |b| {
        // One event buffer for all lines, as the shards keep one per batch.
        let mut e = DecodedEvent::new();
        b.iter(|| {
            for line in &lines[..PANE] {
                decoder.decode(black_box(line), &mut e).unwrap();
            }
        });
    });
    g.bench_function("route/22_features", |b| {
        b.iter(|| black_box(panes(&config, &lines[..PANE])));
    });
    let all = panes(&config, &lines);
    g.bench_function("apply_and_evaluate/22_features", |b| {
        // Every iteration applies one pane of 1 000 events: sketch updates,
        // then the window close (merge / unmerge) and its evaluation.
        b.iter_batched_ref(
            || {
                let mut m = model(&config);
                let mut out = Outcome::default();
                for p in &all[..20] {
                    m.apply_rows(p, &mut out, &mut NoLabels).unwrap();
                }
                (m, out)
            },
            |(m, out)| m.apply_rows(black_box(&all[20]), out, &mut NoLabels).unwrap(),
            BatchSize::LargeInput,
        );
    });
    g.finish();
}

/// Window close → evaluation done, as the engine records it, over 40 windows.
fn window_close_latency() {
    println!("\nwindow close → evaluation done (sliding 10 000 / 1 000, PSI + KS sketch + JS per feature):");
    for (numeric, categorical) in [(20, 2), (100, 0)] {
        let (config, lines) = setup(numeric, categorical, 60_000);
        let all = panes(&config, &lines);
        let mut m = model(&config);
        let mut out = Outcome::default();
        for p in &all {
            m.apply_rows(p, &mut out, &mut NoLabels).unwrap();
        }
        let mut s = std::mem::take(&mut out.window_seconds);
        s.sort_by(f64::total_cmp);
        let ms = |q: f64| 1000.0 * s[((s.len() - 1) as f64 * q).round() as usize];
        println!(
            "  {:>3} features: {} windows, median {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            numeric + categorical,
            s.len(),
            ms(0.5),
            ms(0.99),
            ms(1.0)
        );
    }
}

/// The label join: 1 000 000 predictions pending, then their labels in a
/// shuffled order (one core, the window stage's calls).
fn label_join() {
    const N: usize = 1_000_000;
    let yaml = r#"
input: { prediction_id: prediction_id }
models:
  - name: m
    reference: { baseline_events: 10 }
    window: { type: tumbling, duration: 1h }
    features: [{ name: f, type: numeric }]
    detectors: [{ metric: psi, threshold: 0.2 }]
    quality: { task: binary_classification, prediction: prediction, score: score, label_ttl: 7d, max_pending: 1000000 }
"#;
    let config = Config::from_yaml(yaml).unwrap();
    let plan = Plan::new(&config).unwrap();
    let m = &plan.models[0];
    let mut q = QualityState::new(m, m.quality.clone().unwrap(), driftwatch_engine::quality::ReferenceQuality::default()).unwrap();
    let mut out = Outcome::default();
    // Ids as a service writes them (UUID-like, 36 bytes).
    let ids: Vec<String> = (0..N as u64).map(|i| format!("{:08x}-0000-4000-8000-{:012x}", i.wrapping_mul(0x9e37_79b9) as u32, i)).collect();
    let t = std::time::Instant::now();
    for (i, id) in ids.iter().enumerate() {
        q.predict(id, 0, Some(i as i64), (i % 2) as f64, 0.5, &mut out).unwrap();
    }
    let predict_s = t.elapsed().as_secs_f64();
    let c = q.counters();
    let id_bytes: usize = ids.iter().map(String::len).sum();
    let per = (c.join_store_bytes as f64 - id_bytes as f64) / c.pending as f64;
    // Labels in a shuffled order (a full-period LCG over the indices).
    let labels: Vec<LabelRecord> = (0..N)
        .map(|k| (k * 700_001 + 12_345) % N)
        .map(|i| LabelRecord { model: 0, id: ids[i].as_str().into(), label: (i % 3 == 0) as u8 as f64, ts: N as i64 })
        .collect();
    let t = std::time::Instant::now();
    for l in &labels {
        q.label(black_box(l), &mut out).unwrap();
    }
    let label_s = t.elapsed().as_secs_f64();
    assert_eq!(q.counters().join.joined, N as u64);
    println!("\nlabel join ({N} pending predictions, 36-byte ids, labels shuffled):");
    println!("  predictions registered: {:.2} M/s", N as f64 / predict_s / 1e6);
    println!("  labels joined:          {:.2} M/s", N as f64 / label_s / 1e6);
    println!("  join store:             {per:.1} bytes per pending prediction + its id ({} bytes in all)", c.join_store_bytes);
}

fn main() {
    let mut c = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4)).configure_from_args();
    bench(&mut c);
    c.final_summary();
    window_close_latency();
    label_join();
}
