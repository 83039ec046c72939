//! Exact decimal conversion of JSON numbers: Clinger's fast path, division by 5^k, and the
//! eight-bytes-at-a-time digit helpers.

#[allow(unused_imports)]
use super::*;

/// Powers of ten up to 10^8, to shift a mantissa by a run of digits.
pub(super) const POW10_U64: [u64; 9] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000];

/// How many of the eight bytes of `values` (input bytes XOR `'0'`,
/// little-endian) are digits, counted from the first: a byte is a digit iff
/// it is at most 9 now. Per byte, `(b & 0x7f) + 0x76` sets the high bit iff
/// the low seven bits are 10 or more, and cannot carry into the next byte.
#[inline]
pub(super) fn leading_digits(values: u64) -> usize {
    let non_digit = (((values & !HIGHS) + ONES * 0x76) | values) & HIGHS;
    (non_digit.trailing_zeros() / 8) as usize
}

/// The decimal value of the first `n` (1..=8) digit values of `values` (the
/// first byte is the most significant digit): the digits are moved to the
/// top so that the bytes below are leading zeros, then combined pairwise in
/// three multiply-and-add steps.
#[inline]
pub(super) fn digits_value(values: u64, n: usize) -> u64 {
    let v = values << (8 * (8 - n));
    let v = (v.wrapping_mul(10) + (v >> 8)) & 0x00FF_00FF_00FF_00FF;
    let v = (v.wrapping_mul(100) + (v >> 16)) & 0x0000_FFFF_0000_FFFF;
    (v.wrapping_mul(10_000) + (v >> 32)) & 0xFFFF_FFFF
}

/// Exact powers of ten (10^22 is the last one an f64 holds exactly).
pub(super) const POW10: [f64; 23] =
    [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22];

/// Largest `k` with `5^k` below 2^63: the most fraction digits (net of the
/// exponent) [`divide_pow10`] takes.
pub(super) const MAX_POW5: usize = 27;

/// `5^k` for `k` in `0..=MAX_POW5`.
pub(super) const POW5: [u64; MAX_POW5 + 1] = {
    let mut table = [1u64; MAX_POW5 + 1];
    let mut k = 1;
    while k <= MAX_POW5 {
        table[k] = table[k - 1] * 5;
        k += 1;
    }
    table
};

/// `floor((2^128 - 1) / 5^k)`: multiplying by it and keeping the top 128
/// bits divides by `5^k` to within 2 below the exact quotient.
pub(super) const POW5_RECIPROCAL: [u128; MAX_POW5 + 1] = {
    let mut table = [0u128; MAX_POW5 + 1];
    let mut k = 0;
    while k <= MAX_POW5 {
        table[k] = u128::MAX / POW5[k] as u128;
        k += 1;
    }
    table
};

/// `2^e` for an exponent of the normal f64 range.
#[inline]
pub(super) fn pow2(e: i32) -> f64 {
    debug_assert!((-1022..=1023).contains(&e));
    f64::from_bits(((1023 + e) as u64) << 52)
}

/// `m / 10^k`, correctly rounded (to nearest, ties to even), for `m ≥ 1` and
/// `k` in `1..=MAX_POW5`, in integer arithmetic alone: the decimals past
/// Clinger's fast path (17 to 19 significant digits, as shortest round-trip
/// formatting writes most doubles) without a second pass over their text.
///
/// `m / 10^k = m / 5^k · 2^-k`. With `m` shifted up to a full 64 bits and 64
/// zero bits appended, `n = m·2^(64+lz)`, the quotient `q = ⌊n / 5^k⌋` has at
/// least 65 significant bits (`5^k < 2^63`) and the remainder says whether
/// anything was cut off. The top 64 bits of `q`, with every lower bit and the
/// remainder folded into the last one ("sticky"), round to the same 53 bits
/// as the exact quotient: the cut-off part only decides a tie, and a tie needs
/// it to be zero. Scaling the rounded value by a power of two is exact (it
/// stays far inside the normal range: `m / 10^k ≥ 10^-27`). The quotient
/// comes from a multiplication by a precomputed reciprocal; the exact
/// remainder is only needed next to a halfway point.
#[inline]
pub(super) fn divide_pow10(m: u64, k: usize) -> f64 {
    debug_assert!(m != 0 && (1..=MAX_POW5).contains(&k));
    let d = u128::from(POW5[k]);
    let lz = m.leading_zeros();
    let m = m << lz;
    let n = u128::from(m) << 64;
    // ⌊m · r / 2^64⌋ = ⌊n · r / 2^128⌋, from the two 64 × 64-bit halves of
    // m · r; at most 2 below ⌊n / 5^k⌋ and never above it.
    let r = POW5_RECIPROCAL[k];
    let low = u128::from(m) * (r as u64 as u128);
    let high = u128::from(m) * (r >> 64);
    let mut q = high + (low >> 64);
    // q ≥ 2^64 (n ≥ 2^127, 5^k < 2^63) and q < 2^126: 1..=62 bits below the top 64.
    let mut cut = 64 - q.leading_zeros();
    let mut top = (q >> cut) as u64;
    // Almost always the rounding is plain without the remainder (a sticky
    // last bit rounds as the exact quotient does): the shortfall (at most 2,
    // at most one unit of the top 64 bits) can only matter next to a halfway
    // point, where the 11 bits the conversion drops read 0x3FF or 0x400.
    if matches!(top & 0x7FF, 0x3FF | 0x400) {
        let mut rem = n - q * d;
        while rem >= d {
            q += 1;
            rem -= d;
        }
        cut = 64 - q.leading_zeros();
        let sticky = q & ((1u128 << cut) - 1) != 0 || rem != 0;
        top = (q >> cut) as u64 | u64::from(sticky);
    } else {
        top |= 1;
    }
    // `u64 as f64` rounds to nearest, ties to even.
    (top as f64) * pow2(cut as i32 - 64 - lz as i32 - k as i32)
}

/// `mantissa · 10^scale` (a decimal of at most 19 digits), correctly rounded,
/// by exact arithmetic: Clinger's fast path (both operands exact, one
/// rounding) up to 2^53 in the mantissa and 10^±22 in the scale, else
/// [`divide_pow10`] for scales down to 10^-27, else a 128-bit product for
/// positive scales that fit. `None` beyond those (the caller parses the text).
#[inline]
pub(super) fn decimal(mantissa: u64, scale: i64) -> Option<f64> {
    if (-22..0).contains(&scale) {
        Some(fraction_value(mantissa, scale.unsigned_abs() as usize))
    } else if mantissa <= 1 << 53 && (0..=22).contains(&scale) {
        // Both operands exact: one rounding, the correct one.
        Some(mantissa as f64 * POW10[scale as usize])
    } else if mantissa == 0 {
        Some(0.0)
    } else if (-(MAX_POW5 as i64)..0).contains(&scale) {
        Some(divide_pow10(mantissa, scale.unsigned_abs() as usize))
    } else {
        // An exact integer; `u128 as f64` rounds to nearest, ties to even.
        usize::try_from(scale).ok().and_then(|s| POW10_U128.get(s)).and_then(|&p| u128::from(mantissa).checked_mul(p)).map(|n| n as f64)
    }
}

/// `mantissa / 10^k` for `k` in `1..=22`, correctly rounded: Clinger's fast
/// path (both operands exact, one rounding) up to 2^53 in the mantissa, else
/// [`divide_pow10`]. The common decimal of both number paths.
#[inline(always)]
pub(super) fn fraction_value(mantissa: u64, k: usize) -> f64 {
    if mantissa <= 1 << 53 {
        mantissa as f64 / POW10[k]
    } else {
        divide_pow10(mantissa, k)
    }
}

/// Powers of ten that fit 128 bits, for decimals with a positive scale.
pub(super) const POW10_U128: [u128; 39] = {
    let mut table = [1u128; 39];
    let mut k = 1;
    while k < 39 {
        table[k] = table[k - 1] * 10;
        k += 1;
    }
    table
};
