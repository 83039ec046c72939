//! Property tests: every sketch merges as if built from the concatenation,
//! retract undoes update, snapshots round-trip, and the bounded sketch's KS
//! lies within its stated bound of the exact KS.

use driftwatch_detectors::binning::BinEdges;
use driftwatch_detectors::ks::ks_statistic_sorted;
use driftwatch_detectors::sketch::{CategoryCounts, ExactSample, FixedHistogram, LogSketch, Moments, Sketch, Snapshot};
use proptest::prelude::*;

/// Finite values with heavy ties, negatives, zeros and wide magnitudes.
fn values() -> impl Strategy<Value = Vec<f64>> {
    let one = prop_oneof![
        4 => -1000.0f64..1000.0,
        2 => (-20i32..20).prop_map(f64::from),
        1 => Just(0.0),
        1 => -1e-3f64..1e-3,
        1 => 1e6f64..1e9,
    ];
    prop::collection::vec(one, 0..300)
}

fn edges() -> BinEdges {
    BinEdges::new(vec![-500.0, -10.0, -1.0, 0.0, 1.0, 10.0, 500.0]).unwrap()
}

fn build<S>(mut s: S, xs: &[f64]) -> S
where
    for<'a> S: Sketch<Item<'a> = f64>,
{
    xs.iter().for_each(|&x| s.update(x));
    s
}

fn round_trip<S: Sketch + std::fmt::Debug + PartialEq>(s: &S) {
    let json = serde_json::to_string(&s.snapshot()).unwrap();
    let back: Snapshot<S> = serde_json::from_str(&json).unwrap();
    assert_eq!(&S::restore(back).unwrap(), s);
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn histogram_merge_retract_snapshot(a in values(), b in values()) {
        let whole: Vec<f64> = a.iter().chain(&b).copied().collect();
        let mut merged = build(FixedHistogram::new(edges()), &a);
        merged.merge(&build(FixedHistogram::new(edges()), &b)).unwrap();
        prop_assert_eq!(&merged, &build(FixedHistogram::new(edges()), &whole));
        for &x in &b {
            merged.retract(x).unwrap();
        }
        prop_assert_eq!(&merged, &build(FixedHistogram::new(edges()), &a));
        round_trip(&merged);
    }

    #[test]
    fn exact_sample_merge_retract_snapshot(a in values(), b in values()) {
        let whole: Vec<f64> = a.iter().chain(&b).copied().collect();
        let mut left = build(ExactSample::new(1000), &a);
        let mut right = build(ExactSample::new(1000), &b);
        left.sort();
        right.sort();
        let mut merged = left.clone();
        merged.merge(&right).unwrap();
        let mut expected = build(ExactSample::new(1000), &whole);
        prop_assert_eq!(merged.sorted_values(), expected.sorted_values());
        // One at a time on half of b, as a batch on the rest.
        let (one, batch) = b.split_at(b.len() / 2);
        for &x in one {
            merged.retract(x).unwrap();
        }
        merged.retract_batch(batch).unwrap();
        prop_assert_eq!(merged.sorted_values(), left.sorted_values());
        round_trip(&merged);
    }

    #[test]
    fn log_sketch_merge_retract_snapshot(a in values(), b in values()) {
        let whole: Vec<f64> = a.iter().chain(&b).copied().collect();
        let mut merged = build(LogSketch::default(), &a);
        merged.merge(&build(LogSketch::default(), &b)).unwrap();
        prop_assert_eq!(merged.bucket_counts(), build(LogSketch::default(), &whole).bucket_counts());
        for &x in &b {
            merged.retract(x).unwrap();
        }
        prop_assert_eq!(merged.bucket_counts(), build(LogSketch::default(), &a).bucket_counts());
        round_trip(&merged);
    }

    #[test]
    fn moments_merge_and_retract(a in values(), b in values()) {
        let whole: Vec<f64> = a.iter().chain(&b).copied().collect();
        let mut merged = build(Moments::new(), &a);
        merged.merge(&build(Moments::new(), &b)).unwrap();
        let expected = build(Moments::new(), &whole);
        prop_assert_eq!(merged.count(), expected.count());
        prop_assert_eq!(merged.min(), expected.min());
        prop_assert_eq!(merged.max(), expected.max());
        if let (Some(m), Some(e)) = (merged.mean(), expected.mean()) {
            prop_assert!(close(m, e), "mean {} vs {}", m, e);
            let scale = e.abs().max(1.0).powi(2).max(merged.variance().unwrap_or(0.0));
            prop_assert!((merged.variance().unwrap() - expected.variance().unwrap()).abs() <= 1e-7 * scale);
        }
        for &x in &b {
            merged.retract(x).unwrap();
        }
        let only_a = build(Moments::new(), &a);
        prop_assert_eq!(merged.count(), only_a.count());
        if let (Some(m), Some(e)) = (merged.mean(), only_a.mean()) {
            let scale = whole.iter().fold(1.0f64, |s, x| s.max(x.abs()));
            prop_assert!((m - e).abs() <= 1e-9 * scale, "mean {} vs {}", m, e);
            prop_assert!((merged.variance().unwrap() - only_a.variance().unwrap()).abs() <= 1e-6 * scale * scale);
        }
        round_trip(&merged);
    }

    #[test]
    fn category_counts_merge_retract_snapshot(
        a in prop::collection::vec("[a-f]{1,2}", 0..200),
        b in prop::collection::vec("[a-f]{1,2}", 0..200),
    ) {
        let build = |xs: &[String]| {
            let mut c = CategoryCounts::new(64);
            xs.iter().for_each(|s| c.update(s));
            c
        };
        let whole: Vec<String> = a.iter().chain(&b).cloned().collect();
        let mut merged = build(&a);
        merged.merge(&build(&b)).unwrap();
        prop_assert_eq!(&merged, &build(&whole));
        for s in &b {
            merged.retract(s).unwrap();
        }
        prop_assert_eq!(&merged, &build(&a));
        round_trip(&merged);
    }

    #[test]
    fn category_cap_is_respected(xs in prop::collection::vec("[a-z]{1,3}", 0..400), cap in 1usize..20) {
        let mut c = CategoryCounts::new(cap);
        xs.iter().for_each(|s| c.update(s));
        prop_assert!(c.distinct() <= cap);
        prop_assert_eq!(c.count(), xs.len() as u64);
        prop_assert_eq!(c.entries().iter().map(|e| e.1).sum::<u64>(), xs.len() as u64);
    }

    /// A pane merged into a sliding window and unmerged later leaves the
    /// window as if it had never been added.
    #[test]
    fn unmerge_undoes_merge(a in values(), b in values()) {
        let mut h = build(FixedHistogram::new(edges()), &a);
        h.merge(&build(FixedHistogram::new(edges()), &b)).unwrap();
        h.unmerge(&build(FixedHistogram::new(edges()), &b)).unwrap();
        prop_assert_eq!(&h, &build(FixedHistogram::new(edges()), &a));

        let mut l = build(LogSketch::default(), &a);
        l.merge(&build(LogSketch::default(), &b)).unwrap();
        l.unmerge(&build(LogSketch::default(), &b)).unwrap();
        prop_assert_eq!(l.bucket_counts(), build(LogSketch::default(), &a).bucket_counts());

        let mut e = build(ExactSample::new(1000), &a);
        e.merge(&build(ExactSample::new(1000), &b)).unwrap();
        e.unmerge(&build(ExactSample::new(1000), &b)).unwrap();
        let mut expected_e = build(ExactSample::new(1000), &a);
        prop_assert_eq!(e.sorted_values(), expected_e.sorted_values());

        let mut m = build(Moments::new(), &a);
        m.merge(&build(Moments::new(), &b)).unwrap();
        m.unmerge(&build(Moments::new(), &b)).unwrap();
        let only_a = build(Moments::new(), &a);
        prop_assert_eq!(m.count(), only_a.count());
        if let (Some(x), Some(y)) = (m.mean(), only_a.mean()) {
            let scale = a.iter().chain(&b).fold(1.0f64, |s, v| s.max(v.abs()));
            prop_assert!((x - y).abs() <= 1e-9 * scale);
            prop_assert!((m.variance().unwrap() - only_a.variance().unwrap()).abs() <= 1e-6 * scale * scale);
        }
        // Unmerging what was never merged is refused.
        let mut empty = FixedHistogram::new(edges());
        if !a.is_empty() {
            prop_assert!(empty.unmerge(&build(FixedHistogram::new(edges()), &a)).is_err());
        }
    }

    #[test]
    fn category_unmerge_undoes_merge(
        a in prop::collection::vec("[a-f]{1,2}", 0..200),
        b in prop::collection::vec("[a-h]{1,2}", 0..200),
        cap in 1usize..30,
    ) {
        let build = |xs: &[String]| {
            let mut c = CategoryCounts::new(cap);
            xs.iter().for_each(|s| c.update(s));
            c
        };
        let mut c = build(&a);
        c.merge(&build(&b)).unwrap();
        c.unmerge(&build(&b)).unwrap();
        prop_assert_eq!(c.count(), a.len() as u64);
        let total: u64 = c.entries().iter().map(|e| e.1).sum();
        prop_assert_eq!(total, a.len() as u64);
    }

    /// The stated bound holds with the default accuracy and with a tiny bucket
    /// budget that forces collapsing.
    #[test]
    fn sketch_ks_within_stated_bound(a in values(), b in values(), max_buckets in prop_oneof![Just(2048usize), 2usize..24]) {
        prop_assume!(!a.is_empty() && !b.is_empty());
        let new = || LogSketch::new(0.01, max_buckets).unwrap();
        let (r, q) = (build(new(), &a), build(new(), &b));
        let ks = r.ks(&q).unwrap();
        let (mut sa, mut sb) = (a.clone(), b.clone());
        sa.sort_by(f64::total_cmp);
        sb.sort_by(f64::total_cmp);
        let exact = ks_statistic_sorted(&sa, &sb);
        prop_assert!(ks.statistic <= exact + 1e-12, "sketch D {} above exact {}", ks.statistic, exact);
        prop_assert!(exact <= ks.statistic + ks.error_bound + 1e-12, "exact {} outside {} + {}", exact, ks.statistic, ks.error_bound);
    }
}

#[test]
fn non_finite_values_are_counted_never_binned() {
    let mut h = FixedHistogram::new(edges());
    let mut s = LogSketch::default();
    let mut e = ExactSample::new(10);
    let mut m = Moments::new();
    for x in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1.0] {
        h.update(x);
        s.update(x);
        e.update(x);
        m.update(x);
    }
    assert_eq!((h.count(), h.invalid()), (1, 3));
    assert_eq!((s.count(), s.invalid()), (1, 3));
    assert_eq!((e.count(), e.invalid()), (1, 3));
    assert_eq!((m.count(), m.nan(), m.infinite()), (1, 1, 2));
}

#[test]
fn exact_store_refuses_statistics_after_overflow() {
    let mut r = ExactSample::from_values(&[1.0, 2.0, 3.0]);
    let mut w = ExactSample::new(2);
    [1.0, 2.0, 3.0].iter().for_each(|&x| w.update(x));
    assert_eq!(w.overflow(), 1);
    assert!(matches!(r.ks(&mut w, driftwatch_detectors::ks::KsMethod::Auto), Err(driftwatch_detectors::Error::CapacityExceeded { .. })));
}

#[test]
fn snapshots_reject_other_versions_and_kinds() {
    let h = FixedHistogram::new(edges());
    let mut snap: Snapshot<FixedHistogram> = serde_json::from_str(&serde_json::to_string(&h.snapshot()).unwrap()).unwrap();
    snap.version = 99;
    assert!(matches!(FixedHistogram::restore(snap.clone()), Err(driftwatch_detectors::Error::SnapshotVersion { .. })));
    snap.version = FixedHistogram::VERSION;
    snap.kind = "moments".into();
    assert!(FixedHistogram::restore(snap).is_err());
    // A histogram whose counts do not match its edges is refused.
    let json = r#"{"kind":"fixed_histogram","version":1,"state":{"edges":[0.0],"counts":[1],"total":1,"invalid":0}}"#;
    let bad: Snapshot<FixedHistogram> = serde_json::from_str(json).unwrap();
    assert!(FixedHistogram::restore(bad).is_err());
}
