//! Two-sample Kolmogorov–Smirnov test with SciPy 1.14 semantics.
//!
//! This is `scipy.stats.ks_2samp(reference, current, alternative="two-sided",
//! method=...)` rewritten in Rust:
//!
//! * the statistic `D = max |F_ref(x) - F_cur(x)|` over every value `x` of the
//!   pooled sample, with both ECDFs right-continuous (NumPy `searchsorted`
//!   with `side="right"`), so ties are handled as SciPy does;
//! * the exact p-value (SciPy `_attempt_exact_2kssamp`): `D` is first
//!   rounded to `h / lcm(n1, n2)`; equal sizes use the closed alternating sum
//!   of `_compute_prob_outside_square`, unequal sizes the windowed lattice-path
//!   recursion of `_compute_outer_prob_inside_method` (Hodges' inside method
//!   in Viehmann's numerically stable form, which computes `1 - p` directly);
//! * the asymptotic p-value: `kstwo.sf(D, round(n1 n2 / (n1 + n2)))` with
//!   NumPy's round-half-to-even (see [`crate::kolmogorov`]);
//! * `auto` picks exact when both sizes are at most [`MAX_AUTO_EXACT_N`],
//!   and any failed exact attempt falls back to the asymptotic p-value.

use crate::error::{Error, Result};
use crate::kolmogorov::kstwo_sf;

/// `auto` uses the exact p-value when both sample sizes are at most this
/// (SciPy's `MAX_AUTO_N`).
pub const MAX_AUTO_EXACT_N: usize = 10_000;

/// How the p-value of the two-sample KS test is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KsMethod {
    /// Exact when both sizes are at most [`MAX_AUTO_EXACT_N`], else
    /// asymptotic (SciPy `method="auto"`).
    Auto,
    /// The exact distribution of `D` under the null hypothesis; falls back
    /// to asymptotic where SciPy's exact attempt fails or `lcm(n1, n2)` is too
    /// large (SciPy `method="exact"`).
    Exact,
    /// `kstwo.sf(D, round(n1 n2 / (n1 + n2)))` (SciPy `method="asymp"`).
    Asymptotic,
}

/// Outcome of a two-sample KS test.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KsResult {
    /// The statistic `D`. When the exact method was used it is `D` rounded
    /// to the lattice `h / lcm(n1, n2)`, as SciPy reports it.
    pub statistic: f64,
    /// Two-sided p-value, in `[0, 1]`.
    pub p_value: f64,
    /// The method actually used: [`KsMethod::Exact`] or
    /// [`KsMethod::Asymptotic`], never [`KsMethod::Auto`].
    pub method: KsMethod,
    /// Number of (finite) reference values used.
    pub n_reference: u64,
    /// Number of (finite) current values used.
    pub n_current: u64,
}

/// The two-sample KS statistic `D` of two ascending-sorted, NaN-free slices.
///
/// Both ECDFs are evaluated at every value of the pooled sample with
/// right-continuity (ties are one jump), as `scipy.stats.ks_2samp`, in one
/// linear merge pass without allocation. Returns 0 when either slice is
/// empty. Unsorted input gives a meaningless value but never panics or loops.
pub fn ks_statistic_sorted(reference: &[f64], current: &[f64]) -> f64 {
    let (n1, n2) = (reference.len(), current.len());
    if n1 == 0 || n2 == 0 {
        return 0.0;
    }
    let (n1f, n2f) = (n1 as f64, n2 as f64);
    // The last pooled value has both ECDFs at 1, so max/min start at 0.
    let mut max_s = 0.0_f64;
    let mut min_s = 0.0_f64;
    let (mut i, mut j) = (0_usize, 0_usize);
    while i < n1 && j < n2 {
        let (a, b) = (reference[i], current[j]);
        let v = if a <= b { a } else { b };
        let (i0, j0) = (i, j);
        while i < n1 && reference[i] <= v {
            i += 1;
        }
        while j < n2 && current[j] <= v {
            j += 1;
        }
        if i == i0 && j == j0 {
            // Only reachable with NaN in the input: step past it.
            i += 1;
            j += 1;
            continue;
        }
        let diff = i as f64 / n1f - j as f64 / n2f;
        if diff > max_s {
            max_s = diff;
        }
        if -diff > min_s {
            min_s = -diff;
        }
    }
    // Once one sample is exhausted the difference only moves towards 0.
    let min_s = min_s.clamp(0.0, 1.0);
    if min_s > max_s {
        min_s
    } else {
        max_s
    }
}

/// Two-sided two-sample KS test on ascending-sorted samples, as
/// `scipy.stats.ks_2samp(reference, current, method=...)`.
///
/// Infinite values are allowed (they are ordinary extreme values). Errors:
/// [`Error::InsufficientData`] when a sample is empty, or when
/// [`KsMethod::Asymptotic`] is asked for with one value on each side (SciPy
/// would return NaN: `round(1/2) = 0` is not a valid `kstwo` size);
/// [`Error::InvalidParameter`] when a slice holds NaN or is not sorted.
pub fn ks_2samp_sorted(reference: &[f64], current: &[f64], method: KsMethod) -> Result<KsResult> {
    check_sorted(reference, "reference")?;
    check_sorted(current, "current")?;
    ks_2samp_trusted(reference, current, method)
}

/// [`ks_2samp_sorted`] for callers whose invariants already guarantee sorted,
/// finite input ([`crate::sketch::ExactSample`]): the check scans 60 000
/// values per evaluation of a 10 000-value window against a 50 000-value
/// reference, about as long as computing `D`.
pub(crate) fn ks_2samp_trusted(reference: &[f64], current: &[f64], method: KsMethod) -> Result<KsResult> {
    debug_assert!(check_sorted(reference, "reference").is_ok() && check_sorted(current, "current").is_ok());
    for s in [reference, current] {
        if s.is_empty() {
            return Err(Error::InsufficientData { statistic: "ks", available: 0, required: 1 });
        }
    }
    let (n1, n2) = (reference.len() as u64, current.len() as u64);
    let d = ks_statistic_sorted(reference, current);
    let (statistic, p_value, used) = pvalue_with_statistic(n1, n2, d, method);
    if p_value.is_nan() {
        return Err(Error::InsufficientData { statistic: "ks", available: n1.min(n2), required: 2 });
    }
    Ok(KsResult { statistic, p_value, method: used, n_reference: n1, n_current: n2 })
}

/// Two-sided two-sample KS test on raw samples: copies both, drops NaN and
/// infinite values, sorts (by `total_cmp`), and calls [`ks_2samp_sorted`].
///
/// [`Error::InsufficientData`] when a sample has no finite value.
pub fn ks_2samp(reference: &[f64], current: &[f64], method: KsMethod) -> Result<KsResult> {
    let prepare = |s: &[f64]| -> Result<Vec<f64>> {
        let mut v: Vec<f64> = s.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return Err(Error::InsufficientData { statistic: "ks", available: 0, required: 1 });
        }
        crate::sketch::sort_total(&mut v);
        Ok(v)
    };
    let r = prepare(reference)?;
    let c = prepare(current)?;
    ks_2samp_sorted(&r, &c, method)
}

/// Exact two-sided p-value `P(D_{n1,n2} >= d)` as SciPy's
/// `_attempt_exact_2kssamp`: `d` is rounded to `h / lcm(n1, n2)` first.
///
/// `None` where SciPy would not use the exact value: a size of 0, `d` NaN
/// or outside `[0, 1]`, `lcm(n1, n2)` too large for SciPy's `method="exact"`
/// (`n1/g >= i32::MAX / (n2/g)`), or a computed probability outside `[0, 1]`.
pub fn ks_pvalue_exact(n1: u64, n2: u64, d: f64) -> Option<f64> {
    attempt_exact(n1, n2, d).1
}

/// Asymptotic two-sided p-value as SciPy's `ks_2samp(method="asymp")`:
/// `kstwo.sf(d, round(n1 n2 / (n1 + n2)))`, round half to even, clipped to
/// `[0, 1]`.
///
/// NaN when `d` is NaN, a size is 0, or `n1 = n2 = 1` (the rounded effective
/// size is 0, for which SciPy also returns NaN).
pub fn ks_pvalue_asymptotic(n1: u64, n2: u64, d: f64) -> f64 {
    if n1 == 0 || n2 == 0 {
        return f64::NAN;
    }
    let (a, b) = (n1 as f64, n2 as f64);
    let (m, n) = if a >= b { (a, b) } else { (b, a) };
    let en = (m * n / (m + n)).round_ties_even();
    if en < 1.0 {
        return f64::NAN;
    }
    let p = memoized_kstwo_sf(d, en as u64);
    if p.is_nan() {
        p
    } else {
        p.clamp(0.0, 1.0)
    }
}

/// Entries of the per-thread memo of [`memoized_kstwo_sf`] (a power of two):
/// 768 KiB for each thread that evaluates. The replay benchmark makes 37 640
/// calls with 17 900 distinct arguments, spread over the whole run: 1 024
/// entries still computed 31 600 of them, 32 768 compute 19 200.
const KSTWO_MEMO: usize = 32768;

thread_local! {
    /// `(n, d.to_bits(), kstwo_sf(d, n))`, direct-mapped; `n = 0` is empty.
    static KSTWO: std::cell::RefCell<Vec<(u64, u64, f64)>> = std::cell::RefCell::new(vec![(0, 0, 0.0); KSTWO_MEMO]);
}

/// The memo slot of `(d.to_bits(), n)`: Fibonacci hashing of both.
fn kstwo_slot(bits: u64, n: u64) -> usize {
    ((bits ^ n.rotate_left(32)).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - KSTWO_MEMO.trailing_zeros())) as usize
}

/// [`kstwo_sf`], remembered per thread for the last arguments seen at each
/// slot: a pure function, so the result is the same bit for bit. Sliding
/// windows evaluate it for the same `(d, n)` again and again (a full window
/// has one effective size, and a sketch's `D` lies on the lattice
/// `k / lcm(n1, n2)`): about half of the calls in the replay benchmark repeat
/// one, and the small `D`s, whose Durbin-matrix method costs the most, repeat
/// most.
fn memoized_kstwo_sf(d: f64, n: u64) -> f64 {
    let bits = d.to_bits();
    let slot = kstwo_slot(bits, n);
    KSTWO.with(|memo| {
        let mut memo = memo.borrow_mut();
        match memo.get(slot) {
            // `n = 0` marks an empty slot (callers never pass it).
            Some(&(m, b, p)) if m == n && n != 0 && b == bits => p,
            _ => {
                let p = kstwo_sf(d, n);
                if let Some(entry) = memo.get_mut(slot) {
                    *entry = (n, bits, p);
                }
                p
            }
        }
    })
}

/// Two-sided p-value for statistic `d` with the given method, and the method
/// actually used (never [`KsMethod::Auto`]).
///
/// As SciPy, when the exact attempt fails the asymptotic value is computed
/// from the lattice-rounded `d`. The p-value is NaN only where
/// [`ks_pvalue_asymptotic`] is (NaN `d`, a size of 0, or `n1 = n2 = 1` with
/// the asymptotic method).
pub fn ks_pvalue(n1: u64, n2: u64, d: f64, method: KsMethod) -> (f64, KsMethod) {
    let (_, p, used) = pvalue_with_statistic(n1, n2, d, method);
    (p, used)
}

/// `(statistic reported by SciPy, p-value, method used)`.
fn pvalue_with_statistic(n1: u64, n2: u64, d: f64, method: KsMethod) -> (f64, f64, KsMethod) {
    let try_exact = match method {
        KsMethod::Auto => n1.max(n2) <= MAX_AUTO_EXACT_N as u64,
        KsMethod::Exact => true,
        KsMethod::Asymptotic => false,
    };
    let mut d = d;
    if try_exact {
        let (d_rounded, p) = attempt_exact(n1, n2, d);
        if let Some(p) = p {
            return (d_rounded, p, KsMethod::Exact);
        }
        d = d_rounded;
    }
    (d, ks_pvalue_asymptotic(n1, n2, d), KsMethod::Asymptotic)
}

fn check_sorted(s: &[f64], name: &'static str) -> Result<()> {
    let bad = s.first().is_some_and(|x| x.is_nan()) || s.windows(2).any(|w| w[0].partial_cmp(&w[1]).is_none_or(|o| o.is_gt()));
    if bad {
        Err(Error::InvalidParameter { name, reason: "must be sorted ascending and free of NaN" })
    } else {
        Ok(())
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// SciPy `_attempt_exact_2kssamp` (two-sided): `(rounded d, probability)`.
/// The rounded `d` is returned even when the attempt fails, because SciPy
/// then feeds it to the asymptotic formula.
fn attempt_exact(n1: u64, n2: u64, d: f64) -> (f64, Option<f64>) {
    if n1 == 0 || n2 == 0 || !(0.0..=1.0).contains(&d) {
        return (d, None);
    }
    let g = gcd(n1, n2);
    let (n1g, n2g) = (n1 / g, n2 / g);
    // SciPy (method="exact"): lcm too big -> asymptotic. This never triggers
    // for sizes <= MAX_AUTO_EXACT_N, where SciPy's "auto" skips the check.
    if n1g as f64 >= f64::from(i32::MAX) / n2g as f64 {
        return (d, None);
    }
    let lcm = n1g * n2;
    let h = (d * lcm as f64).round_ties_even() as u64;
    let d_rounded = h as f64 / lcm as f64;
    if h == 0 {
        return (d_rounded, Some(1.0));
    }
    let prob = if n1 == n2 { prob_outside_square(n1, h) } else { outer_prob_inside_method(n1, n2, g, h) };
    if (0.0..=1.0).contains(&prob) {
        (d_rounded, Some(prob))
    } else {
        (d_rounded, None)
    }
}

/// `P(D_{n,n} >= h/n)` (SciPy `_compute_prob_outside_square`):
/// `2 * sum_k (-1)^(k+1) C(2n, n - k h) / C(2n, n)` in the Horner-like form
/// `2 A0 (1 - A1 (1 - A2 (1 - ...)))` that avoids cancellation.
fn prob_outside_square(n: u64, h: u64) -> f64 {
    let mut p = 0.0;
    let (nf, hf) = (n as f64, h as f64);
    let kmax = (nf / hf).floor() as i64;
    let n = n as i64;
    let h = h as i64;
    let mut k = kmax;
    while k >= 0 {
        let mut p1 = 1.0;
        for j in 0..h {
            p1 = (n - k * h - j) as f64 * p1 / (n + k * h + j + 1) as f64;
        }
        p = p1 * (1.0 - p);
        k -= 1;
    }
    2.0 * p
}

/// `P(D_{m,n} >= h/lcm(m,n))` for `m != n` (SciPy
/// `_compute_outer_prob_inside_method`): lattice paths from `(0,0)` to
/// `(m,n)` that leave the band `|x/m - y/n| < h/lcm`, with Viehmann's
/// recursion for `1 - p` (entries stay in `[0, 1]`, no rescaling needed).
/// One column at a time, only the sliding window inside the band:
/// O(m * (2 h / (m/g) + 1)) operations.
fn outer_prob_inside_method(m: u64, n: u64, g: u64, h: u64) -> f64 {
    let (m, n) = if m < n { (n, m) } else { (m, n) };
    let (m, n, g, h) = (m as i64, n as i64, g as i64, h as i64);
    let mg = m / g;
    let ng = n / g;
    let ceil_div = |a: i64, b: i64| -> i64 { -((-a).div_euclid(b)) };

    let mut minj: i64 = 0;
    let mut maxj: i64 = ceil_div(h, mg).min(n + 1);
    let mut curlen = maxj - minj;
    // Beyond the current window every entry is 1 (paths already outside).
    let mut a = vec![1.0_f64; (n + 2) as usize];
    for e in a.iter_mut().take(maxj as usize) {
        *e = 0.0;
    }
    for i in 1..=m {
        let lastminj = minj;
        let lastlen = curlen;
        minj = ((ng * i - h).div_euclid(mg) + 1).max(0).min(n);
        maxj = ceil_div(ng * i + h, mg).min(n + 1);
        if maxj <= minj {
            return 1.0;
        }
        let fi = i as f64;
        let mut val = if minj == 0 { 0.0 } else { 1.0 };
        let shift = (minj - lastminj) as usize;
        let len = (maxj - minj) as usize;
        for jj in 0..len {
            let jf = (jj as i64 + minj) as f64;
            val = (a[jj + shift] * fi + val * jf) / (fi + jf);
            a[jj] = val;
        }
        curlen = maxj - minj;
        if lastlen > curlen {
            let end = (lastlen as usize).min(a.len());
            for e in a[len..end].iter_mut() {
                *e = 1.0;
            }
        }
    }
    a[(maxj - minj - 1) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> serde_json::Value {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/numeric.json");
        let text = std::fs::read_to_string(path).expect("fixture readable");
        serde_json::from_str(&text).expect("fixture is JSON")
    }

    fn floats(v: &serde_json::Value) -> Vec<f64> {
        v.as_array().expect("array").iter().map(|x| x.as_f64().expect("number")).collect()
    }

    fn sorted(v: &[f64]) -> Vec<f64> {
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        s
    }

    /// (absolute error, relative error where it applies)
    fn pvalue_err(got: f64, expected: f64) -> (f64, f64) {
        let abs = (got - expected).abs();
        let rel = if expected > 1e-300 { abs / expected } else { 0.0 };
        (abs, rel)
    }

    #[test]
    fn fixture_cases_match_scipy() {
        let fx = fixture();
        let cases = fx["cases"].as_array().expect("cases");
        assert!(!cases.is_empty());
        let mut max_stat_rel = 0.0_f64;
        let mut max_err = [(0.0_f64, 0.0_f64); 3];
        for case in cases {
            let name = case["name"].as_str().expect("name");
            let r = floats(&case["reference"]);
            let c = floats(&case["current"]);
            let e = &case["expected"];

            let d = ks_statistic_sorted(&sorted(&r), &sorted(&c));
            let d_exp = e["ks_statistic"].as_f64().expect("ks_statistic");
            let d_err = (d - d_exp).abs();
            if d_exp.abs() < 1e-12 {
                assert!(d_err <= 1e-12, "{name}: D {d} vs {d_exp}");
            } else {
                let rel = d_err / d_exp.abs();
                max_stat_rel = max_stat_rel.max(rel);
                assert!(rel <= 1e-9, "{name}: D {d} vs {d_exp}");
            }

            for (slot, (key, method)) in
                [("ks_pvalue_auto", KsMethod::Auto), ("ks_pvalue_exact", KsMethod::Exact), ("ks_pvalue_asymp", KsMethod::Asymptotic)]
                    .into_iter()
                    .enumerate()
            {
                let expected = e[key].as_f64().expect("p-value");
                let res = ks_2samp(&r, &c, method).expect("ks_2samp");
                assert!((res.statistic - d_exp).abs() <= 1e-9 * d_exp.abs().max(1e-3), "{name} {key}");
                assert_eq!(res.n_reference, r.len() as u64);
                assert_eq!(res.n_current, c.len() as u64);
                let want_method = if method == KsMethod::Asymptotic { KsMethod::Asymptotic } else { KsMethod::Exact };
                assert_eq!(res.method, want_method, "{name} {key}");
                let (abs, rel) = pvalue_err(res.p_value, expected);
                eprintln!("{name:24} {key:16} got {:.17e} want {:.17e} abs {abs:.2e} rel {rel:.2e}", res.p_value, expected);
                assert!(abs <= 1e-6, "{name} {key}: {} vs {expected}", res.p_value);
                assert!(rel <= 1e-6, "{name} {key}: {} vs {expected} (rel {rel})", res.p_value);
                max_err[slot].0 = max_err[slot].0.max(abs);
                max_err[slot].1 = max_err[slot].1.max(rel);
            }
        }
        eprintln!("max rel error ks_statistic: {max_stat_rel:.3e}");
        for (key, (abs, rel)) in ["auto", "exact", "asymp"].iter().zip(max_err) {
            eprintln!("max error ks_pvalue_{key}: abs {abs:.3e} rel {rel:.3e}");
        }
    }

    #[test]
    fn statistic_handles_ties_like_searchsorted_right() {
        // cdf1 at pooled values [1,2,2,3,3,3]: ...
        let a = [1.0, 2.0, 2.0, 3.0];
        let b = [2.0, 3.0, 3.0];
        // Brute force with searchsorted(side="right").
        let count_le = |s: &[f64], x: f64| s.iter().filter(|&&y| y <= x).count() as f64;
        let brute = a.iter().chain(b.iter()).map(|&x| (count_le(&a, x) / 4.0 - count_le(&b, x) / 3.0).abs()).fold(0.0, f64::max);
        assert_eq!(ks_statistic_sorted(&a, &b), brute);
        assert_eq!(ks_statistic_sorted(&a, &a), 0.0);
        assert_eq!(ks_statistic_sorted(&[0.0], &[1.0]), 1.0);
        assert_eq!(ks_statistic_sorted(&[-0.0], &[0.0]), 0.0);
    }

    #[test]
    fn statistic_matches_brute_force_on_random_ties() {
        let mut next = crate::testing::xorshift(0x1234_5678_9abc_def0);
        for _ in 0..200 {
            let n1 = (next() % 30 + 1) as usize;
            let n2 = (next() % 30 + 1) as usize;
            let a = sorted(&(0..n1).map(|_| (next() % 10) as f64).collect::<Vec<_>>());
            let b = sorted(&(0..n2).map(|_| (next() % 10) as f64).collect::<Vec<_>>());
            let count_le = |s: &[f64], x: f64| s.iter().filter(|&&y| y <= x).count() as f64;
            let brute =
                a.iter().chain(b.iter()).map(|&x| (count_le(&a, x) / n1 as f64 - count_le(&b, x) / n2 as f64).abs()).fold(0.0, f64::max);
            assert_eq!(ks_statistic_sorted(&a, &b), brute);
        }
    }

    #[test]
    fn statistic_never_panics_on_nan() {
        let d = ks_statistic_sorted(&[f64::NAN, 1.0], &[f64::NAN, 2.0]);
        assert!(d.is_finite());
        assert!(ks_2samp_sorted(&[f64::NAN], &[1.0], KsMethod::Auto).is_err());
        assert!(ks_2samp_sorted(&[2.0, 1.0], &[1.0], KsMethod::Auto).is_err());
    }

    #[test]
    fn empty_and_non_finite_samples() {
        let err = ks_2samp(&[], &[1.0], KsMethod::Auto).expect_err("must fail");
        assert_eq!(err, Error::InsufficientData { statistic: "ks", available: 0, required: 1 });
        let err = ks_2samp(&[1.0], &[f64::NAN, f64::INFINITY], KsMethod::Auto).expect_err("must fail");
        assert!(matches!(err, Error::InsufficientData { .. }));
        let r = ks_2samp(&[1.0, f64::NAN, 2.0], &[3.0, f64::NEG_INFINITY], KsMethod::Auto).expect("ok");
        assert_eq!(r.n_reference, 2);
        assert_eq!(r.n_current, 1);
        assert_eq!(r.statistic, 1.0);
        assert!(ks_2samp(&[1.0], &[2.0], KsMethod::Asymptotic).is_err());
    }

    #[test]
    fn exact_small_cases_by_enumeration() {
        // n1 = n2 = 1: D is 1 always, P(D >= 1) = 1.
        assert_eq!(ks_pvalue_exact(1, 1, 1.0), Some(1.0));
        // n1 = 2, n2 = 1: 3 equally likely orderings; D = 1 for two of them
        // (the single value at an end), D = 1/2 for the middle one.
        assert!((ks_pvalue_exact(2, 1, 1.0).expect("exact") - 2.0 / 3.0).abs() < 1e-15);
        assert_eq!(ks_pvalue_exact(2, 1, 0.5), Some(1.0));
        // n1 = n2 = 2: C(4,2) = 6 orderings; D = 1 for aabb and bbaa.
        assert!((ks_pvalue_exact(2, 2, 1.0).expect("exact") - 1.0 / 3.0).abs() < 1e-15);
        // Brute force over all arrangements for small unequal sizes.
        for (n1, n2) in [(3_u64, 2_u64), (4, 3), (5, 3), (6, 4), (7, 5)] {
            let total = n1 + n2;
            let mut dist = Vec::new();
            for mask in 0_u32..(1 << total) {
                if u64::from(mask.count_ones()) != n1 {
                    continue;
                }
                let (mut c1, mut c2, mut d) = (0.0, 0.0, 0.0_f64);
                for bit in 0..total {
                    if mask & (1 << bit) != 0 {
                        c1 += 1.0;
                    } else {
                        c2 += 1.0;
                    }
                    d = d.max((c1 / n1 as f64 - c2 / n2 as f64).abs());
                }
                dist.push(d);
            }
            for &d0 in &dist {
                let expect = dist.iter().filter(|&&d| d >= d0 - 1e-12).count() as f64 / dist.len() as f64;
                let got = ks_pvalue_exact(n1, n2, d0).expect("exact");
                assert!((got - expect).abs() < 1e-12, "{n1} {n2} {d0}: {got} vs {expect}");
            }
        }
    }

    #[test]
    fn exact_fallbacks() {
        assert_eq!(ks_pvalue_exact(10, 10, f64::NAN), None);
        assert_eq!(ks_pvalue_exact(0, 10, 0.5), None);
        assert_eq!(ks_pvalue_exact(10, 10, 0.0), Some(1.0));
        // lcm too large for SciPy's exact mode -> asymptotic.
        assert_eq!(ks_pvalue_exact(100_000, 99_999, 0.01), None);
        let (p, used) = ks_pvalue(100_000, 99_999, 0.01, KsMethod::Exact);
        assert_eq!(used, KsMethod::Asymptotic);
        assert_eq!(p, ks_pvalue_asymptotic(100_000, 99_999, 0.01));
        let (_, used) = ks_pvalue(10_001, 5, 0.3, KsMethod::Auto);
        assert_eq!(used, KsMethod::Asymptotic);
        let (_, used) = ks_pvalue(10_000, 9_999, 0.02, KsMethod::Auto);
        assert_eq!(used, KsMethod::Exact);
    }

    /// The per-thread memo gives `kstwo_sf`'s value bit for bit, with more
    /// arguments than slots (entries evicted and computed again), arguments
    /// that differ only in `n`, and repeats in any order.
    #[test]
    fn memoized_kstwo_equals_kstwo() {
        let mut next = crate::testing::xorshift(0x5DEE_CE66_D1CE_4E5B);
        let args: Vec<(f64, u64)> = (0..3 * KSTWO_MEMO)
            .map(|i| {
                let n = [8_333, 8_334, 100, 12][i % 4];
                // Lattice values and arbitrary ones, small and large.
                let d = if i % 3 == 0 { (next() % 2_000) as f64 / 50_000.0 } else { (next() % 1_000_000) as f64 / 1e6 };
                (d, n)
            })
            .collect();
        for round in 0..3 {
            for k in 0..args.len() {
                let (d, n) = args[(k * 7 + round * 131) % args.len()];
                assert_eq!(memoized_kstwo_sf(d, n).to_bits(), kstwo_sf(d, n).to_bits(), "d = {d}, n = {n}");
            }
        }
        // One `d` with two sizes that share a slot, one after the other.
        let d = 0.0123_f64;
        let n2 = (1..100_000).find(|&n| n != 8_333 && kstwo_slot(d.to_bits(), n) == kstwo_slot(d.to_bits(), 8_333)).unwrap();
        for n in [8_333, n2, 8_333, n2] {
            assert_eq!(memoized_kstwo_sf(d, n).to_bits(), kstwo_sf(d, n).to_bits(), "d = {d}, n = {n}");
        }
    }

    #[test]
    fn asymptotic_uses_round_half_even() {
        // n1 = 3, n2 = 1: en = 0.75 -> 1; n1 = n2 = 5: en = 2.5 -> 2.
        assert_eq!(ks_pvalue_asymptotic(5, 5, 0.6), kstwo_sf(0.6, 2));
        assert_eq!(ks_pvalue_asymptotic(3, 1, 0.8), kstwo_sf(0.8, 1));
        assert!(ks_pvalue_asymptotic(1, 1, 1.0).is_nan());
        assert_eq!(ks_pvalue_asymptotic(300, 300, 1.0), 0.0);
    }

    #[test]
    fn large_exact_is_fast_enough() {
        // 10 000 x 9 999 with a small D must stay well below a second.
        let t = std::time::Instant::now();
        let p = ks_pvalue_exact(10_000, 9_999, 0.015).expect("exact");
        assert!(p > 0.0 && p < 1.0);
        assert!(t.elapsed().as_secs_f64() < 2.0);
    }

    #[test]
    fn method_serde_names() {
        assert_eq!(serde_json::to_string(&KsMethod::Asymptotic).expect("ser"), "\"asymptotic\"");
        assert_eq!(serde_json::from_str::<KsMethod>("\"auto\"").expect("de"), KsMethod::Auto);
    }
}
