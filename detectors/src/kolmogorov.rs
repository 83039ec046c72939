//! Finite-sample Kolmogorov distributions, as SciPy computes them.
//!
//! * [`kstwo_sf`] / [`kstwo_cdf`]: the distribution of the two-sided
//!   one-sample Kolmogorov–Smirnov statistic `D_n = sup |F_n - F|` for a
//!   sample of size `n` (SciPy's `scipy.stats.kstwo`). The method is chosen as
//!   in SciPy's `_kolmogn`, following Simard & L'Ecuyer (2011):
//!   Ruben–Gambino closed forms near the ends of the support, `2 * smirnov`
//!   where the two one-sided events cannot both happen, the Durbin matrix
//!   algorithm in the Marsaglia–Tsang–Wang form, the Pomeranz recursion, and
//!   the Pelz–Good asymptotic series, with SciPy's cut-offs on `n` and
//!   `n * x^2` (which differ for the CDF and the survival function).
//! * [`smirnov_sf`]: the exact one-sided Smirnov survival function
//!   `P(D_n^+ >= x)` (SciPy's `scipy.special.smirnov`, from the xsf/cephes
//!   `kolmogorov.h` source), evaluated with the Birnbaum–Tingey sum in
//!   double-double arithmetic exactly as the C++ source does.
//!
//! Everything here is pure arithmetic: no allocation beyond small work
//! buffers, no I/O, and no panics (invalid arguments give NaN, as in SciPy).
//!
//! References: Simard R., L'Ecuyer P. (2011), "Computing the Two-Sided
//! Kolmogorov-Smirnov Distribution", J. Stat. Softw. 39(11); Marsaglia G.,
//! Tsang W.W., Wang J. (2003), "Evaluating Kolmogorov's Distribution",
//! J. Stat. Softw. 8(18); Pomeranz J. (1974), CACM 17(12); Pelz W., Good I.J.
//! (1976), JRSS B 38(2); van Mulbregt P. (2018), arXiv:1802.06966.

use std::f64::consts::{LN_2, PI};

/// Survival function `P(D_n >= d)` of the two-sided one-sample
/// Kolmogorov–Smirnov statistic for a sample of size `n`, as
/// `scipy.stats.kstwo.sf(d, n)`.
///
/// Returns 1 for `d <= 1/(2n)` (below the support), 0 for `d >= 1`, and NaN
/// when `d` is NaN or `n == 0`.
pub fn kstwo_sf(d: f64, n: u64) -> f64 {
    kstwo(d, n, false)
}

/// Cumulative distribution function `P(D_n <= d)` of the two-sided
/// one-sample Kolmogorov–Smirnov statistic for a sample of size `n`, as
/// `scipy.stats.kstwo.cdf(d, n)`.
///
/// Returns 0 for `d <= 1/(2n)`, 1 for `d >= 1`, and NaN when `d` is NaN or
/// `n == 0`.
pub fn kstwo_cdf(d: f64, n: u64) -> f64 {
    kstwo(d, n, true)
}

/// Exact one-sided Smirnov survival function `P(D_n^+ >= x)` for a sample of
/// size `n`, as `scipy.special.smirnov(n, x)`.
///
/// Returns NaN when `x` is NaN, outside `[0, 1]`, or `n == 0`. For
/// `n > 1_000_000` SciPy (and this port) uses the approximation
/// `exp(-(6nx+1)^2 / (18n))`.
pub fn smirnov_sf(n: u64, x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    match i64::try_from(n) {
        Ok(n) => smirnov_probs(n, x).sf,
        Err(_) => f64::NAN,
    }
}

/// `rv_continuous` wrapper semantics of `kstwo`: support `(1/(2n), 1)`.
fn kstwo(x: f64, n: u64, cdf: bool) -> f64 {
    if n == 0 || x.is_nan() {
        return f64::NAN;
    }
    let lower = 0.5 / n as f64;
    if x <= lower {
        return if cdf { 0.0 } else { 1.0 };
    }
    if x >= 1.0 {
        return if cdf { 1.0 } else { 0.0 };
    }
    kolmogn(n, x, cdf)
}

/// Clips a probability to `[0, 1]` (NaN stays NaN, as `np.clip`).
fn clip_prob(p: f64) -> f64 {
    if p.is_nan() {
        p
    } else {
        p.clamp(0.0, 1.0)
    }
}

/// Picks the CDF or the SF, then clips.
fn select_and_clip(cdf_prob: f64, sf_prob: f64, cdf: bool) -> f64 {
    clip_prob(if cdf { cdf_prob } else { sf_prob })
}

const E128: i32 = 128;
/// 2^128
const EP128: f64 = f64::from_bits((1023 + 128) << 52);
/// 2^-128
const EM128: f64 = f64::from_bits((1023 - 128) << 52);
const MIN_LOG: f64 = -708.0;

/// Stirling series coefficients `B_{2j} / (2j (2j-1))`, j = 8 .. 1.
const STIRLING_COEFFS: [f64; 8] = [
    -0.029550653594771242,
    0.00641025641025641,
    -0.0019175269175269176,
    0.0008417508417508417,
    -0.0005952380952380953,
    0.0007936507936507937,
    -0.002777777777777778,
    0.08333333333333333,
];

fn sqrt_2pi() -> f64 {
    (2.0 * PI).sqrt()
}

/// `log(n! / n^n)` by Stirling's series, with `n log n` removed up front.
fn log_nfactorial_div_n_pow_n(n: f64) -> f64 {
    let rn = 1.0 / n;
    let t = rn / n;
    let poly = STIRLING_COEFFS.iter().fold(0.0, |acc, &c| acc * t + c);
    n.ln() / 2.0 - n + (2.0 * PI).ln() / 2.0 + rn * poly
}

/// SciPy `_kolmogn`: Simard & L'Ecuyer's choice of method.
fn kolmogn(n: u64, x: f64, cdf: bool) -> f64 {
    if x >= 1.0 {
        return select_and_clip(1.0, 0.0, cdf);
    }
    if x <= 0.0 {
        return select_and_clip(0.0, 1.0, cdf);
    }
    let nf = n as f64;
    let t = nf * x;
    if t <= 1.0 {
        // Ruben–Gambino: 1/(2n) <= x <= 1/n.
        if t <= 0.5 {
            return select_and_clip(0.0, 1.0, cdf);
        }
        let prob = if n <= 140 {
            let inv_n = 1.0 / nf;
            let base = 2.0 * t - 1.0;
            (1..=n).fold(1.0, |acc, i| acc * (i as f64 * inv_n * base))
        } else {
            (log_nfactorial_div_n_pow_n(nf) + nf * (2.0 * t - 1.0).ln()).exp()
        };
        return select_and_clip(prob, 1.0 - prob, cdf);
    }
    if t >= nf - 1.0 {
        // Ruben–Gambino: 1 - 1/n <= x < 1.
        let prob = 2.0 * (1.0 - x).powf(nf);
        return select_and_clip(1.0 - prob, prob, cdf);
    }
    if x >= 0.5 {
        // D+ >= x and D- >= x cannot both happen: exactly 2 * smirnov.
        let prob = 2.0 * smirnov_sf(n, x);
        return select_and_clip(1.0 - prob, prob, cdf);
    }

    let nxsquared = t * x;
    if n <= 140 {
        if nxsquared <= 0.754_693 {
            let prob = kolmogn_dmtw(n, x, true);
            return select_and_clip(prob, 1.0 - prob, cdf);
        }
        if nxsquared <= 4.0 {
            let prob = kolmogn_pomeranz(n, x, true);
            return select_and_clip(prob, 1.0 - prob, cdf);
        }
        // Miller's approximation: 2 * smirnov.
        let prob = 2.0 * smirnov_sf(n, x);
        return select_and_clip(1.0 - prob, prob, cdf);
    }

    // The CDF and the SF have different cut-offs on n x^2.
    if !cdf {
        if nxsquared >= 370.0 {
            return 0.0;
        }
        if nxsquared >= 2.2 {
            return clip_prob(2.0 * smirnov_sf(n, x));
        }
        // Otherwise fall through: SF = 1 - CDF.
    }
    let cdf_prob = if nxsquared >= 18.0 {
        1.0
    } else if n <= 100_000 && nf * x.powf(1.5) <= 1.4 {
        kolmogn_dmtw(n, x, true)
    } else {
        kolmogn_pelz_good(n, x, true)
    };
    select_and_clip(cdf_prob, 1.0 - cdf_prob, cdf)
}

/// Row-major square matrix product `a * b` (both `m x m`).
fn matmul(a: &[f64], b: &[f64], m: usize) -> Vec<f64> {
    let mut out = vec![0.0; m * m];
    for i in 0..m {
        let row = &mut out[i * m..(i + 1) * m];
        for k in 0..m {
            let aik = a[i * m + k];
            if aik == 0.0 {
                continue;
            }
            let brow = &b[k * m..(k + 1) * m];
            for (o, &bkj) in row.iter_mut().zip(brow) {
                *o += aik * bkj;
            }
        }
    }
    out
}

/// Durbin's matrix algorithm, Marsaglia–Tsang–Wang form (SciPy
/// `_kolmogn_DMTW`): `P(D_n <= d)` as the `(k, k)` entry of `(n!/n^n) H^n`,
/// with explicit power-of-two scaling.
fn kolmogn_dmtw(n: u64, d: f64, cdf: bool) -> f64 {
    if d >= 1.0 {
        return select_and_clip(1.0, 0.0, cdf);
    }
    let nf = n as f64;
    let nd = nf * d;
    if nd <= 0.5 {
        return select_and_clip(0.0, 1.0, cdf);
    }
    let k_f = nd.ceil();
    let k = k_f as usize;
    let h = k_f - nd;
    let m = 2 * k - 1;

    // v: first column (and reversed last row) of H; w[j] = 1/j!.
    let mut v = vec![0.0; m];
    let mut w = vec![0.0; m];
    let mut fac = 1.0;
    for j in 1..=m {
        v[j - 1] = 1.0 - h.powf(j as f64);
        w[j - 1] = fac;
        fac /= j as f64;
        v[j - 1] *= fac;
    }
    let tt = (2.0 * h - 1.0).max(0.0).powf(m as f64) - 2.0 * h.powf(m as f64);
    v[m - 1] = (1.0 + tt) * fac;

    let mut hm = vec![0.0; m * m];
    for i in 1..m {
        for r in (i - 1)..m {
            hm[r * m + i] = w[r - (i - 1)];
        }
    }
    for r in 0..m {
        hm[r * m] = v[r];
    }
    for c in 0..m {
        hm[(m - 1) * m + c] = v[m - 1 - c];
    }

    let mut hpwr = vec![0.0; m * m];
    for i in 0..m {
        hpwr[i * m + i] = 1.0;
    }
    let mut nn = n;
    let mut expnt: i32 = 0;
    let mut hexpnt: i32 = 0;
    let kk = (k - 1) * m + (k - 1);
    while nn > 0 {
        if nn % 2 == 1 {
            hpwr = matmul(&hpwr, &hm, m);
            expnt += hexpnt;
        }
        hm = matmul(&hm, &hm, m);
        hexpnt = hexpnt.saturating_mul(2);
        if hm[kk].abs() > EP128 {
            for e in hm.iter_mut() {
                *e /= EP128;
            }
            hexpnt += E128;
        }
        nn /= 2;
    }

    let mut p = hpwr[kk];
    // Multiply by n!/n^n.
    for i in 1..=n {
        p = i as f64 * p / nf;
        if p.abs() < EM128 {
            p *= EP128;
            expnt -= E128;
        }
    }
    if expnt != 0 {
        p = ldexp(p, expnt);
    }
    select_and_clip(p, 1.0 - p, cdf)
}

/// Endpoints of the non-zero interval of row `i` in the Pomeranz recursion.
fn pomeranz_j1j2(i: i64, n: i64, ll: i64, ceilf: i64, roundf: i64) -> (i64, i64) {
    let (j1, j2) = if i == 0 {
        (-ll - ceilf - 1, ll + ceilf - 1)
    } else {
        let ip1div2 = (i + 1) / 2;
        let ip1mod2 = (i + 1) % 2;
        if ip1mod2 == 0 {
            // i is odd
            if ip1div2 == n + 1 {
                (n - ll - ceilf - 1, n + ll + ceilf - 1)
            } else {
                (ip1div2 - 1 - ll - roundf - 1, ip1div2 + ll - 1 + ceilf - 1)
            }
        } else {
            (ip1div2 - 1 - ll - 1, ip1div2 + ll + roundf - 1)
        }
    };
    ((j1 + 2).max(0), j2.min(n))
}

/// Pomeranz's recursion (SciPy `_kolmogn_Pomeranz`): `P(D_n <= x)` as
/// `n!` times the last entry of a chain of truncated Poisson convolutions.
fn kolmogn_pomeranz(n: u64, x: f64, cdf: bool) -> f64 {
    let ni = n as i64;
    let nf = n as f64;
    let t = nf * x;
    let ll_f = t.floor();
    let ll = ll_f as i64;
    let f = t - ll_f;
    let g = f.min(1.0 - f);
    let ceilf = i64::from(f > 0.0);
    let roundf = i64::from(f > 0.5);
    let npwrs = 2 * (ll as usize + 1);

    // (g/n)^m/m!, (2g/n)^m/m!, ((1-2g)/n)^m/m!
    let mut gpower = vec![1.0; npwrs];
    let mut twogpower = vec![1.0; npwrs];
    let mut onem2gpower = vec![1.0; npwrs];
    let (g_over_n, two_g_over_n, one_minus_two_g_over_n) =
        (g / nf, 2.0 * g / nf, (1.0 - 2.0 * g) / nf);
    for m in 1..npwrs {
        let mf = m as f64;
        gpower[m] = gpower[m - 1] * g_over_n / mf;
        twogpower[m] = twogpower[m - 1] * two_g_over_n / mf;
        onem2gpower[m] = onem2gpower[m - 1] * one_minus_two_g_over_n / mf;
    }

    let mut v0 = vec![0.0; npwrs];
    let mut v1 = vec![0.0; npwrs];
    v1[0] = 1.0;
    let (mut v0s, mut v1s): (i64, i64) = (0, 0);
    let mut expnt: i32 = 0;

    let (mut j1, mut _j2) = pomeranz_j1j2(0, ni, ll, ceilf, roundf);
    for i in 1..(2 * ni + 2) {
        let k1 = j1;
        std::mem::swap(&mut v0, &mut v1);
        std::mem::swap(&mut v0s, &mut v1s);
        v1.iter_mut().for_each(|e| *e = 0.0);
        let (nj1, nj2) = pomeranz_j1j2(i, ni, ll, ceilf, roundf);
        j1 = nj1;
        _j2 = nj2;
        let pwrs: &[f64] = if i == 1 || i == 2 * ni + 1 {
            &gpower
        } else if i % 2 == 1 {
            &twogpower
        } else {
            &onem2gpower
        };
        let ln2 = nj2 - k1 + 1;
        if ln2 > 0 {
            // conv = convolve(V0[k1 - V0s : k1 - V0s + ln2], pwrs[:ln2])
            let start = (k1 - v0s).max(0) as usize;
            let a_end = (start + ln2 as usize).min(npwrs);
            let a = &v0[start.min(a_end)..a_end];
            let b = &pwrs[..(ln2 as usize).min(npwrs)];
            let conv_start = nj1 - k1;
            let conv_len = nj2 - nj1 + 1;
            if !a.is_empty() && conv_start >= 0 && conv_len > 0 {
                for (out_idx, slot) in v1.iter_mut().take(conv_len as usize).enumerate() {
                    // conv[c] = sum_{p + q = c} a[p] * b[q]
                    let c = conv_start as usize + out_idx;
                    let p_lo = c.saturating_sub(b.len() - 1);
                    let p_hi = c.min(a.len() - 1);
                    let mut s = 0.0;
                    if p_lo <= p_hi {
                        for p in p_lo..=p_hi {
                            s += a[p] * b[c - p];
                        }
                    }
                    *slot = s;
                }
                let vmax = v1.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                if vmax > 0.0 && vmax < EM128 {
                    v1.iter_mut().for_each(|e| *e *= EP128);
                    expnt -= E128;
                }
            }
            v1s = v0s + nj1 - k1;
        }
    }

    let idx = ni - v1s;
    let mut ans = if idx >= 0 && (idx as usize) < npwrs {
        v1[idx as usize]
    } else {
        0.0
    };
    for m in 1..=n {
        if ans.abs() > EP128 {
            ans *= EM128;
            expnt += E128;
        }
        ans *= m as f64;
    }
    if expnt != 0 {
        ans = ldexp(ans, expnt);
    }
    select_and_clip(ans, 1.0 - ans, cdf)
}

/// Pelz–Good asymptotic series for `P(D_n <= x)` (SciPy `_kolmogn_PelzGood`),
/// the Li-Chien/Korolyuk expansion transformed with Jacobi theta identities.
/// The CDF (or SF) returned is not clipped, as in SciPy.
fn kolmogn_pelz_good(n: u64, x: f64, cdf: bool) -> f64 {
    if x <= 0.0 {
        return select_and_clip(0.0, 1.0, cdf);
    }
    if x >= 1.0 {
        return select_and_clip(1.0, 0.0, cdf);
    }
    let nf = n as f64;
    let pi2 = PI * PI;
    let pi4 = pi2 * pi2;
    let pi6 = pi4 * pi2;
    let sqrt2pi = sqrt_2pi();

    let z = nf.sqrt() * x;
    let (zsquared, zthree, zfour, zsix) = (z.powi(2), z.powi(3), z.powi(4), z.powi(6));

    let qlog = -pi2 / 8.0 / zsquared;
    if qlog < MIN_LOG {
        return select_and_clip(0.0, 1.0, cdf);
    }
    let q = qlog.exp();

    let k1a = -zsquared;
    let k1b = pi2 / 4.0;

    let k2a = 6.0 * zsix + 2.0 * zfour;
    let k2b = (2.0 * zfour - 5.0 * zsquared) * pi2 / 4.0;
    let k2c = pi4 * (1.0 - 2.0 * zsquared) / 16.0;

    let k3d = pi6 * (5.0 - 30.0 * zsquared) / 64.0;
    let k3c = pi4 * (-60.0 * zsquared + 212.0 * zfour) / 16.0;
    let k3b = pi2 * (135.0 * zfour - 96.0 * zsix) / 4.0;
    let k3a = -30.0 * zsix - 90.0 * z.powi(8);

    let mut kk = [0.0f64; 4];
    // Horner scheme for sum c_i q^(i^2) over odd i.
    let maxk = (16.0 * z / PI).ceil() as i64;
    for k in (1..=maxk).rev() {
        let m = (2 * k - 1) as f64;
        let (msquared, mfour, msix) = (m * m, m.powi(4), m.powi(6));
        let qpower = q.powf((8 * k) as f64);
        let coeffs = [
            1.0,
            k1a + k1b * msquared,
            k2a + k2b * msquared + k2c * mfour,
            k3a + k3b * msquared + k3c * mfour + k3d * msix,
        ];
        for (kv, c) in kk.iter_mut().zip(coeffs) {
            *kv = *kv * qpower + c;
        }
    }
    let denoms = [z, 6.0 * zfour, 72.0 * z.powi(7), 6480.0 * z.powi(10)];
    for (kv, dnm) in kk.iter_mut().zip(denoms) {
        *kv = *kv * q * sqrt2pi / dnm;
    }

    // The remaining sums over all integers k for K_2 and K_3.
    let q = (-pi2 / 2.0 / zsquared).exp();
    let sqrt3z = 3.0f64.sqrt() * z;
    let mut k2extra = 0.0;
    let mut k3extra = 0.0;
    for k in (1..=maxk).rev() {
        let kf = k as f64;
        let ksquared = kf * kf;
        let kspi = PI * kf;
        let qp = q.powf(ksquared);
        k2extra += ksquared * qp;
        k3extra += (sqrt3z + kspi) * (sqrt3z - kspi) * ksquared * qp;
    }
    kk[2] += k2extra * (pi2 * sqrt2pi / (-36.0 * zthree));
    kk[3] += k3extra * (pi2 * sqrt2pi / (216.0 * zsix));
    for (i, kv) in kk.iter_mut().enumerate() {
        *kv /= nf.powf(i as f64 / 2.0);
    }
    if !cdf {
        for kv in kk.iter_mut() {
            *kv = -*kv;
        }
        kk[0] += 1.0;
    }
    kk.iter().sum()
}

// ---------------------------------------------------------------------------
// Smirnov one-sided distribution (xsf/cephes kolmogorov.h), double-double.
// ---------------------------------------------------------------------------

/// `log(2^-1075)`: `exp` of anything below underflows (cephes `MINLOG`).
const CEPHES_MINLOG: f64 = -745.133_219_101_941_2;
const SMIRNOV_MAX_COMPUTE_N: i64 = 1_000_000;
const SM_UPPER_MAX_TERMS: i64 = 3;
const SM_UPPERSUM_MIN_N: i64 = 10;
/// Keeps both words of a double-double normalised when scaling powers.
const SM_MAX_EXPONENT: i64 = 960;

#[derive(Debug, Clone, Copy)]
struct SmirnovProbs {
    sf: f64,
    #[allow(dead_code)]
    cdf: f64,
}

/// `x * 2^exp`, correctly rounded also into the subnormal range (musl
/// `scalbn`).
fn ldexp(x: f64, exp: i32) -> f64 {
    let p2 = |e: i32| f64::from_bits(((0x3ff + e as i64) as u64) << 52);
    let mut y = x;
    let mut n = exp;
    if n > 1023 {
        y *= p2(1023);
        n -= 1023;
        if n > 1023 {
            y *= p2(1023);
            n -= 1023;
            if n > 1023 {
                n = 1023;
            }
        }
    } else if n < -1022 {
        // Scale by 2^-1022 * 2^53 so that the final rounding happens once.
        y *= p2(-1022) * p2(53);
        n += 1022 - 53;
        if n < -1022 {
            y *= p2(-1022) * p2(53);
            n += 1022 - 53;
            if n < -1022 {
                n = -1022;
            }
        }
    }
    y * p2(n)
}

/// Splits `x` into `m * 2^e` with `0.5 <= |m| < 1` (C `frexp`).
fn frexp(x: f64) -> (f64, i32) {
    if x == 0.0 || !x.is_finite() {
        return (x, 0);
    }
    let bits = x.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    if biased == 0 {
        // Subnormal: normalise first.
        let (m, e) = frexp(x * f64::from_bits(0x43f0_0000_0000_0000)); // 2^64
        return (m, e - 64);
    }
    let e = biased - 1022;
    let m = f64::from_bits((bits & !(0x7ff_u64 << 52)) | (1022_u64 << 52));
    (m, e)
}

/// Double-double number `hi + lo` (the qd package as used by xsf).
#[derive(Debug, Clone, Copy)]
struct Dd {
    hi: f64,
    lo: f64,
}

fn quick_two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let c = s - a;
    (s, b - c)
}

fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let c = s - a;
    let d = b - c;
    let e = s - c;
    (s, (a - e) + d)
}

fn two_prod(a: f64, b: f64) -> (f64, f64) {
    let p = a * b;
    (p, a.mul_add(b, -p))
}

impl Dd {
    const fn from_f64(hi: f64) -> Self {
        Dd { hi, lo: 0.0 }
    }

    fn is_zero(self) -> bool {
        self.hi == 0.0 && self.lo == 0.0
    }

    fn neg(self) -> Self {
        Dd {
            hi: -self.hi,
            lo: -self.lo,
        }
    }

    fn add(self, rhs: Dd) -> Dd {
        let (s1, s2) = two_sum(self.hi, rhs.hi);
        let (t1, t2) = two_sum(self.lo, rhs.lo);
        let s2 = s2 + t1;
        let (s1, s2) = quick_two_sum(s1, s2);
        let s2 = s2 + t2;
        let (hi, lo) = quick_two_sum(s1, s2);
        Dd { hi, lo }
    }

    fn add_f(self, rhs: f64) -> Dd {
        let (s1, s2) = two_sum(self.hi, rhs);
        let s2 = s2 + self.lo;
        let (hi, lo) = quick_two_sum(s1, s2);
        Dd { hi, lo }
    }

    fn sub(self, rhs: Dd) -> Dd {
        self.add(rhs.neg())
    }

    fn sub_f(self, rhs: f64) -> Dd {
        let (s1, s2) = two_sum(self.hi, -rhs);
        let s2 = s2 + self.lo;
        let (hi, lo) = quick_two_sum(s1, s2);
        Dd { hi, lo }
    }

    fn mul(self, rhs: Dd) -> Dd {
        let (p1, p2) = two_prod(self.hi, rhs.hi);
        let p2 = p2 + (self.hi * rhs.lo + self.lo * rhs.hi);
        let (hi, lo) = quick_two_sum(p1, p2);
        Dd { hi, lo }
    }

    fn mul_f(self, rhs: f64) -> Dd {
        let (p1, e1) = two_prod(self.hi, rhs);
        let (p2, e2) = two_prod(self.lo, rhs);
        let (hi, lo) = quick_two_sum(p1, e2 + p2 + e1);
        Dd { hi, lo }
    }

    fn div(self, rhs: Dd) -> Dd {
        let q1 = self.hi / rhs.hi;
        let r = self.sub(rhs.mul_f(q1));
        let q2 = r.hi / rhs.hi;
        let r = r.sub(rhs.mul_f(q2));
        let q3 = r.hi / rhs.hi;
        let (q1, q2) = quick_two_sum(q1, q2);
        Dd { hi: q1, lo: q2 }.add_f(q3)
    }

    fn div_f(self, rhs: f64) -> Dd {
        self.div(Dd::from_f64(rhs))
    }

    fn floor(self) -> Dd {
        let hi = self.hi.floor();
        if hi == self.hi {
            let (hi, lo) = quick_two_sum(hi, self.lo.floor());
            Dd { hi, lo }
        } else {
            Dd { hi, lo: 0.0 }
        }
    }

    fn ldexp(self, e: i32) -> Dd {
        Dd {
            hi: ldexp(self.hi, e),
            lo: ldexp(self.lo, e),
        }
    }

    fn frexp(self) -> (Dd, i32) {
        let (mut man, mut exponent) = frexp(self.hi);
        let mut b1 = ldexp(self.lo, -exponent);
        if man.abs() == 0.5 && man * b1 < 0.0 {
            man *= 2.0;
            b1 *= 2.0;
            exponent -= 1;
        }
        (Dd { hi: man, lo: b1 }, exponent)
    }
}

/// `f64 / Dd`
fn f_div_dd(lhs: f64, rhs: Dd) -> Dd {
    Dd::from_f64(lhs).div(rhs)
}

/// Converts a (small) exponent product to `i32`, saturating.
fn sat_i32(v: i64) -> i32 {
    v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

/// Floor of `n * x` and its fractional part, computed exactly in
/// double-double. Returns `(alpha, floor, nx)`.
fn mod_nx(n: i64, x: f64) -> (f64, i64, f64) {
    let nx_d = Dd::from_f64(x).mul_f(n as f64);
    let nxfloor_d = nx_d.floor();
    let alpha_d = nx_d.sub(nxfloor_d);
    let mut alpha = alpha_d.hi;
    let mut nxfloor = nxfloor_d.hi as i64;
    if alpha == 1.0 {
        nxfloor += 1;
        alpha = 0.0;
    }
    (alpha, nxfloor, nx_d.hi)
}

/// Binomial coefficient update `C(n, j+1) = C(n, j) (n-j)/(j+1)`, kept as a
/// double-double mantissa in `[0.5, 1)` and a separate exponent.
fn update_binomial(cman: &mut Dd, cexpt: &mut i64, n: i64, j: i64) {
    let rat = Dd::from_f64((n - j) as f64).div_f(j as f64 + 1.0);
    let (man2, expt) = cman.mul(rat).frexp();
    *cexpt += i64::from(expt);
    *cman = man2;
}

/// `a^m` for a double-double `a`, trading accuracy for speed as xsf does.
fn pow_dd(a: Dd, m: i64) -> Dd {
    if m <= 0 {
        if m == 0 {
            return Dd::from_f64(1.0);
        }
        return f_div_dd(1.0, pow_dd(a, -m));
    }
    if a.is_zero() {
        return Dd::from_f64(0.0);
    }
    let mf = m as f64;
    let ans = a.hi.powf(mf);
    let r = a.lo / a.hi;
    let mut adj = mf * r;
    if adj.abs() > 1e-8 {
        if adj.abs() < 1e-4 {
            // First two terms of the Taylor series of (1+r)^m.
            adj += (mf * r) * ((mf - 1.0) / 2.0 * r);
        } else {
            adj = (mf * r.ln_1p()).exp_m1();
        }
    }
    Dd::from_f64(ans).add_f(ans * adj)
}

/// `(a + b)^m` rounded to `f64`.
fn pow2(a: f64, b: f64, m: i64) -> f64 {
    pow_dd(Dd::from_f64(a).add_f(b), m).hi
}

/// xsf `nextPowerOf2` (despite the name: `x (1 + 2^-52)`, made integral if
/// it already is).
fn next_power_of_2(x: f64) -> f64 {
    let q = ldexp(x, 1 - 53);
    let l = (q + x).abs();
    if l == 0.0 {
        x.abs()
    } else {
        l
    }
}

/// `a^m = significand * 2^exponent`, avoiding underflow for large `m`.
fn pow2_scaled_dd(a: Dd, m: i64) -> (Dd, i64) {
    if m <= 0 {
        if m == 0 {
            return (Dd::from_f64(1.0), 0);
        }
        let (ans, a_e1) = pow2_scaled_dd(a, -m);
        let (ans, a_e2) = f_div_dd(1.0, ans).frexp();
        return (ans, -a_e1 + i64::from(a_e2));
    }
    let (y, y_e) = a.frexp();
    let y_e = i64::from(y_e);
    if m == 1 {
        return (y, y_e);
    }
    let mut max_expt = SM_MAX_EXPONENT;
    let mf = m as f64;
    if mf * (y.hi - 1.0) / y.hi < -(SM_MAX_EXPONENT as f64) * LN_2 {
        let lg2y = y.hi.ln() / LN_2;
        let lg_ans = mf * lg2y;
        if lg_ans <= -(SM_MAX_EXPONENT as f64) {
            max_expt = (next_power_of_2(-(SM_MAX_EXPONENT as f64) / lg2y + 1.0) / 2.0) as i64;
        }
    }
    if max_expt <= 0 {
        max_expt = 1;
    }
    if m <= max_expt {
        let ans1 = pow_dd(y, m);
        let (ans, ans_e) = ans1.frexp();
        return (ans, i64::from(ans_e) + m * y_e);
    }
    let q = m / max_expt;
    let r = m % max_expt;
    // y^m = (y^max_expt)^q * y^r
    let (y2r, y2r_e) = pow2_scaled_dd(y, r);
    let (y2m, y2m_e) = pow2_scaled_dd(y, max_expt);
    let (y2mq, y2mq_e) = pow2_scaled_dd(y2m, q);
    let (ans, ans_e) = y2r.mul(y2mq).frexp();
    let y2mq_e = y2mq_e + y2m_e * q;
    (ans, i64::from(ans_e) + y2mq_e + y2r_e + m * y_e)
}

/// `((a + b) / (c + d))^m` in double-double.
fn pow4_dd(a: f64, b: f64, c: f64, d: f64, m: i64) -> Dd {
    if m <= 0 {
        if m == 0 {
            return Dd::from_f64(1.0);
        }
        return pow4_dd(c, d, a, b, -m);
    }
    let aa = Dd::from_f64(a).add_f(b);
    let cc = Dd::from_f64(c).add_f(d);
    if aa.is_zero() {
        return if cc.is_zero() {
            Dd::from_f64(f64::NAN)
        } else {
            Dd::from_f64(0.0)
        };
    }
    if cc.is_zero() {
        return Dd::from_f64(if aa.hi < 0.0 {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    pow_dd(aa.div(cc), m)
}

/// One term of the Birnbaum–Tingey sum:
/// `A_v(n, x) = C(n, v) (1 - x - v/n)^(n-v) (x + v/n)^(v-1)`.
fn compute_av(n: i64, x: f64, v: i64, cman: Dd, cexpt: i64) -> Dd {
    let nf = n as f64;
    let t2x = Dd::from_f64((n - v) as f64).div_f(nf).sub_f(x);
    let (t2, t2_e) = pow2_scaled_dd(t2x, n - v);
    let t1x = Dd::from_f64(v as f64).div_f(nf).add_f(x);
    let (t1, t1_e) = pow2_scaled_dd(t1x, v - 1);
    let ans = t1.mul(t2).mul(cman);
    let ans_e = cexpt + t1_e + t2_e;
    ans.ldexp(sat_i32(ans_e))
}

/// xsf `_smirnov`, survival function and CDF (the PDF is not needed here).
fn smirnov_probs(n: i64, x: f64) -> SmirnovProbs {
    if !(n > 0 && (0.0..=1.0).contains(&x)) {
        return SmirnovProbs {
            sf: f64::NAN,
            cdf: f64::NAN,
        };
    }
    if n == 1 {
        return SmirnovProbs {
            sf: 1.0 - x,
            cdf: x,
        };
    }
    if x == 0.0 {
        return SmirnovProbs { sf: 1.0, cdf: 0.0 };
    }
    if x == 1.0 {
        return SmirnovProbs { sf: 0.0, cdf: 1.0 };
    }
    let nf = n as f64;

    let (alpha, nxfl, _nx) = mod_nx(n, x);
    let mut n1mxfl = n - nxfl - if alpha == 0.0 { 0 } else { 1 };
    let mut n1mxceil = n - nxfl;
    // With alpha == 0 the last term belongs to neither summation.
    if alpha == 0.0 {
        n1mxfl -= 1;
        n1mxceil += 1;
    }

    // x <= 1/n
    if nxfl == 0 || (nxfl == 1 && alpha == 0.0) {
        let t = pow2(1.0, x, n - 1);
        let cdf = x * t;
        return SmirnovProbs { sf: 1.0 - cdf, cdf };
    }
    // x so large that the SF underflows.
    if -2.0 * nf * x * x < CEPHES_MINLOG {
        return SmirnovProbs { sf: 0.0, cdf: 1.0 };
    }
    // x >= 1 - 1/n
    if nxfl >= n - 1 {
        let sf = pow2(1.0, -x, n);
        return SmirnovProbs { sf, cdf: 1.0 - sf };
    }
    // n too large to sum: p ~ exp(-(6nx+1)^2 / 18n).
    if n > SMIRNOV_MAX_COMPUTE_N {
        let logp = -(6.0 * nf * x + 1.0).powi(2) / 18.0 / nf;
        let (sf, cdf) = if logp < -LN_2 {
            let sf = logp.exp();
            (sf, 1.0 - sf)
        } else {
            let cdf = -logp.exp_m1();
            (1.0 - cdf, cdf)
        };
        return SmirnovProbs { sf, cdf };
    }

    // Upper sum only when few terms are involved (it alternates in sign).
    let n_upper_terms = n - n1mxceil + 1;
    let use_upper_sum = (n_upper_terms <= 1 && x < 0.5)
        || (n >= SM_UPPERSUM_MIN_N && n_upper_terms <= SM_UPPER_MAX_TERMS && x <= 0.5 / nf.sqrt());

    let (start, step, n_terms, first_aj) = if use_upper_sum {
        (
            n,
            -1_i64,
            n - n1mxceil + 1,
            pow4_dd(1.0, x, 1.0, 0.0, n - 1),
        )
    } else {
        (0, 1_i64, n1mxfl + 1, pow4_dd(1.0, -x, 1.0, 0.0, n).div_f(x))
    };
    let vmid = n / 2;
    let mut cman = Dd::from_f64(1.0);
    let mut cexpt: i64 = 0;
    let mut aj_sum = Dd::from_f64(0.0).add(first_aj);
    update_binomial(&mut cman, &mut cexpt, n, 0);

    let mut j = 1_i64;
    while j < n_terms {
        let v = start + j * step;
        let aj = compute_av(n, x, v, cman, cexpt);
        let aj_nonzero = !aj.is_zero();
        if aj.hi.is_finite() && aj_nonzero {
            aj_sum = aj_sum.add(aj);
        }
        // Safe to terminate early?
        if aj_nonzero {
            if (4.0 * (n_terms - j) as f64 * aj.hi.abs()) < (f64::EPSILON * aj_sum.hi)
                && j != n_terms - 1
            {
                break;
            }
        } else if j > vmid {
            break;
        }
        update_binomial(&mut cman, &mut cexpt, n, j);
        j += 1;
    }
    let prob = aj_sum.mul_f(x).hi;
    let (cdf, sf) = if step < 0 {
        (prob, 1.0 - prob)
    } else {
        (1.0 - prob, prob)
    };
    SmirnovProbs {
        sf: clip_prob(sf),
        cdf: clip_prob(cdf),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rtol: f64) -> bool {
        (a - b).abs() <= rtol * b.abs().max(1e-300)
    }

    #[test]
    fn frexp_ldexp_roundtrip() {
        for &x in &[1.0, 0.75, 3.0, 1e-310, -5.5e300, f64::from_bits(1)] {
            let (m, e) = frexp(x);
            assert!(m.abs() >= 0.5 && m.abs() < 1.0, "{x} -> {m}");
            assert_eq!(ldexp(m, e), x);
        }
        assert_eq!(ldexp(1.0, -1074), f64::from_bits(1));
        assert_eq!(ldexp(1.0, -1080), 0.0);
        assert_eq!(ldexp(1.5, 1023), 1.5 * 2.0f64.powi(1023));
    }

    #[test]
    fn kstwo_support_boundaries() {
        for n in [1_u64, 2, 5, 100, 1000, 200_000] {
            let lo = 0.5 / n as f64;
            assert_eq!(kstwo_sf(lo, n), 1.0);
            assert_eq!(kstwo_sf(lo * 0.5, n), 1.0);
            assert_eq!(kstwo_sf(0.0, n), 1.0);
            assert_eq!(kstwo_sf(-1.0, n), 1.0);
            assert_eq!(kstwo_cdf(lo, n), 0.0);
            assert_eq!(kstwo_sf(1.0, n), 0.0);
            assert_eq!(kstwo_sf(1.5, n), 0.0);
            assert_eq!(kstwo_cdf(1.0, n), 1.0);
        }
        assert!(kstwo_sf(f64::NAN, 10).is_nan());
        assert!(kstwo_sf(0.3, 0).is_nan());
        assert!(kstwo_cdf(0.3, 0).is_nan());
    }

    #[test]
    fn kstwo_n1_is_uniform() {
        // D_1 = max(U, 1-U): P(D_1 <= d) = 2d - 1 on [1/2, 1].
        for &d in &[0.55, 0.6, 0.75, 0.9, 0.99] {
            assert!(close(kstwo_cdf(d, 1), 2.0 * d - 1.0, 1e-14), "{d}");
        }
    }

    #[test]
    fn kstwo_ruben_gambino_closed_forms() {
        // 1/(2n) < d <= 1/n: P(D_n <= d) = n! (2d - 1/n)^n.
        let n = 10_u64;
        let d = 0.08;
        let expect: f64 = (1..=n).map(|i| i as f64).product::<f64>() * (2.0 * d - 0.1f64).powi(10);
        assert!(close(kstwo_cdf(d, n), expect, 1e-12));
        // d >= 1 - 1/n: P(D_n >= d) = 2 (1-d)^n.
        let d = 0.95;
        assert!(close(kstwo_sf(d, n), 2.0 * 0.05f64.powi(10), 1e-12));
        // d >= 1/2: P(D_n >= d) = 2 smirnov(n, d).
        assert!(close(kstwo_sf(0.6, n), 2.0 * smirnov_sf(n, 0.6), 1e-15));
    }

    #[test]
    fn kstwo_cdf_plus_sf_is_one() {
        for n in [2_u64, 3, 10, 50, 140, 141, 500, 5000, 20_000] {
            for i in 1..200 {
                let d = i as f64 / 200.0;
                let (c, s) = (kstwo_cdf(d, n), kstwo_sf(d, n));
                assert!(
                    (0.0..=1.0).contains(&c) && (0.0..=1.0).contains(&s),
                    "n={n} d={d}"
                );
                // SciPy's CDF and SF switch methods at different n x^2, so
                // they agree only to ~1e-6 (e.g. n = 141, d = 0.125).
                assert!((c + s - 1.0).abs() < 2e-6, "n={n} d={d}: {c} + {s}");
            }
        }
    }

    #[test]
    fn kstwo_monotone() {
        for n in [7_u64, 40, 140, 141, 1000, 20_000] {
            let mut last = 1.0;
            for i in 0..=400 {
                let d = i as f64 / 400.0;
                let s = kstwo_sf(d, n);
                assert!(s <= last + 1e-12, "n={n} d={d}: {s} > {last}");
                last = s;
            }
        }
    }

    #[test]
    fn kstwo_matches_scipy_values() {
        // scipy.stats.kstwo.sf / .cdf (SciPy 1.14) covering every branch.
        let cases: &[(f64, u64, f64, bool)] = &[
            // (x, n, expected, is_cdf)
            (0.1, 10, 3.628_800_000_000_003e-4, true), // Ruben–Gambino, x = 1/n
            (0.274, 10, 0.371_520_384_543_495_7, false), // Pomeranz
            (0.5, 10, 7.777_41e-3, false),             // 2 smirnov, x >= 1/2
            (0.6, 30, 7.392_006_292_214_292e-11, false), // 2 smirnov
            (0.1, 100, 0.252_692_757_006_387_4, false), // Pomeranz
            (0.3, 100, 1.771_986_989_266_291_7e-8, false), // Miller: 2 smirnov
            (0.05, 1000, 1.301_207_478_109_033_2e-2, false), // SF: 2 smirnov (n x^2 >= 2.2)
            (0.02, 5000, 3.613_941_395_325_637e-2, false), // SF: 1 - DMTW
            (0.004, 200_000, 3.314_212_822_560_255e-3, false), // SF: 1 - Pelz-Good
            (0.01, 200_000, 8.433_125_699_870_092e-18, false), // 2 smirnov, large n
        ];
        for &(x, n, expect, is_cdf) in cases {
            let got = if is_cdf {
                kstwo_cdf(x, n)
            } else {
                kstwo_sf(x, n)
            };
            assert!(close(got, expect, 1e-9), "x={x} n={n}: {got} vs {expect}");
        }
    }

    #[test]
    fn smirnov_basics() {
        assert_eq!(smirnov_sf(5, 0.0), 1.0);
        assert_eq!(smirnov_sf(5, 1.0), 0.0);
        assert!(smirnov_sf(5, -0.1).is_nan());
        assert!(smirnov_sf(5, 1.1).is_nan());
        assert!(smirnov_sf(0, 0.5).is_nan());
        assert!(smirnov_sf(5, f64::NAN).is_nan());
        // n = 1: P(D+ >= x) = 1 - x.
        assert!(close(smirnov_sf(1, 0.3), 0.7, 1e-15));
        // x >= 1 - 1/n: (1-x)^n.
        assert!(close(smirnov_sf(4, 0.8), 0.2f64.powi(4), 1e-14));
        // x <= 1/n: 1 - x (1+x)^(n-1).
        assert!(close(smirnov_sf(4, 0.2), 1.0 - 0.2 * 1.2f64.powi(3), 1e-14));
    }
}
