//! Hot paths of the statistics core. Run: `cargo bench -p driftwatch-benches --bench detectors`.
#![allow(clippy::unwrap_used)] // a bench with bad input should stop loudly

use criterion::{black_box, criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use driftwatch_benches::{categories, normal};
use driftwatch_detectors::binning::BinEdges;
use driftwatch_detectors::feature::{numeric_drift, NumericReference, NumericSketchConfig, NumericStatistics};
use driftwatch_detectors::kolmogorov::kstwo_sf;
use driftwatch_detectors::ks::{ks_2samp, ks_2samp_sorted, ks_statistic_sorted, KsMethod};
use driftwatch_detectors::sketch::{CategoryCounts, FixedHistogram, LogSketch, Moments, Sketch};

fn sketch_updates(c: &mut Criterion) {
    let values = normal(100_000, 0.0, 1.0, 1);
    let reference = normal(50_000, 0.0, 1.0, 2);
    let mut g = c.benchmark_group("sketch_update");
    g.throughput(Throughput::Elements(values.len() as u64));
    for bins in [10usize, 20, 100] {
        let edges = BinEdges::from_reference(&reference, bins).unwrap();
        g.bench_with_input(BenchmarkId::new("histogram", bins), &edges, |b, edges| {
            let mut h = FixedHistogram::new(edges.clone());
            b.iter(|| h.update_slice(black_box(&values)));
        });
    }
    g.bench_function("log_sketch", |b| {
        let mut s = LogSketch::default();
        b.iter(|| values.iter().for_each(|&x| s.update(black_box(x))));
    });
    g.bench_function("log_sketch_block", |b| {
        let mut s = LogSketch::default();
        b.iter(|| s.update_finite(black_box(&values)));
    });
    g.bench_function("moments", |b| {
        let mut m = Moments::new();
        b.iter(|| values.iter().for_each(|&x| m.update(black_box(x))));
    });
    g.bench_function("moments_block", |b| {
        let mut m = Moments::new();
        b.iter(|| m.update_finite(black_box(&values)));
    });
    let cats = categories(100_000, 50, 3);
    g.bench_function("category_counts", |b| {
        let mut c = CategoryCounts::new(1000);
        b.iter(|| cats.iter().for_each(|s| c.update(black_box(s))));
    });
    g.finish();
}

fn exact_ks(c: &mut Criterion) {
    let mut a = normal(10_000, 0.0, 1.0, 4);
    let mut b = normal(10_000, 0.05, 1.0, 5);
    let mut g = c.benchmark_group("ks_10000x10000");
    g.throughput(Throughput::Elements(20_000));
    g.bench_function("unsorted_input_auto", |bench| bench.iter(|| ks_2samp(black_box(&a), black_box(&b), KsMethod::Auto)));
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    g.bench_function("sorted_statistic_only", |bench| bench.iter(|| ks_statistic_sorted(black_box(&a), black_box(&b))));
    g.bench_function("sorted_exact_pvalue", |bench| bench.iter(|| ks_2samp_sorted(black_box(&a), black_box(&b), KsMethod::Exact)));
    let b2 = &b[..9_999];
    g.bench_function("sorted_exact_pvalue_10000x9999", |bench| {
        bench.iter(|| ks_2samp_sorted(black_box(&a), black_box(b2), KsMethod::Exact))
    });
    g.finish();
}

fn kstwo(c: &mut Criterion) {
    // The asymptotic two-sample p-value: kstwo.sf(d, n) with n x^2 >= 2.2, where
    // SciPy's method choice is 2 * smirnov(n, d) (8 333 = effective n of a
    // 50 000 x 10 000 comparison).
    let mut g = c.benchmark_group("kstwo");
    for (n, d) in [(8_333u64, 0.0245), (1_000_000, 0.0025)] {
        g.bench_with_input(BenchmarkId::new("sf_2smirnov", n), &(n, d), |b, &(n, d)| b.iter(|| kstwo_sf(black_box(d), black_box(n))));
    }
    g.finish();
}

fn feature_evaluation(c: &mut Criterion) {
    let reference = normal(50_000, 0.0, 1.0, 6);
    let current = normal(10_000, 0.2, 1.1, 7);
    let mut g = c.benchmark_group("numeric_feature_all_statistics");
    // From the bounded sketches only: what a window beyond the exact capacity costs.
    let sketch_only = NumericSketchConfig { exact_capacity: 0, ..NumericSketchConfig::default() };
    let r = NumericReference::from_values(&reference, &sketch_only).unwrap();
    let mut w = r.new_window(&sketch_only).unwrap();
    current.iter().for_each(|&x| w.update(Some(x)));
    g.bench_function("from_sketches", |b| b.iter(|| numeric_drift(&r, &mut w, NumericStatistics::default()).unwrap()));
    // Exact KS + Wasserstein on raw values (10 000-value window, 50 000 reference).
    let exact = NumericSketchConfig { exact_capacity: 50_000, ..NumericSketchConfig::default() };
    let r = NumericReference::from_values(&reference, &exact).unwrap();
    let mut w = r.new_window(&exact).unwrap();
    current.iter().for_each(|&x| w.update(Some(x)));
    g.bench_function("exact_window_sorted", |b| b.iter(|| numeric_drift(&r, &mut w, NumericStatistics::default()).unwrap()));
    g.bench_function("exact_window_unsorted", |b| {
        b.iter_batched(
            || {
                let mut w = r.new_window(&exact).unwrap();
                current.iter().for_each(|&x| w.update(Some(x)));
                w
            },
            |mut w| numeric_drift(&r, &mut w, NumericStatistics::default()).unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn merge(c: &mut Criterion) {
    let reference = normal(50_000, 0.0, 1.0, 8);
    let mut g = c.benchmark_group("merge_feature_sketches");
    for (name, capacity) in [("bounded_sketches", 0usize), ("with_exact_store_1000", 1_000)] {
        let config = NumericSketchConfig { exact_capacity: capacity * 2, ..NumericSketchConfig::default() };
        let r = NumericReference::from_values(&reference, &config).unwrap();
        let mut a = r.new_window(&config).unwrap();
        let mut b = r.new_window(&config).unwrap();
        normal(1_000, 0.0, 1.0, 9).iter().for_each(|&x| a.update(Some(x)));
        normal(1_000, 0.1, 1.0, 10).iter().for_each(|&x| b.update(Some(x)));
        g.bench_function(name, |bench| {
            bench.iter_batched_ref(|| a.clone(), |acc| acc.merge(black_box(&b)).unwrap(), BatchSize::SmallInput)
        });
    }
    g.finish();
}

criterion_group!(benches, sketch_updates, exact_ks, kstwo, feature_evaluation, merge);
criterion_main!(benches);
