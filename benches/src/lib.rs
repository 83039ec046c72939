//! Seeded data for Driftwatch's benches, so every run measures the same input.

use rand::{rngs::StdRng, SeedableRng};
use rand_distr::{Distribution, Normal};

/// `n` draws from N(mean, sd) with a fixed seed.
pub fn normal(n: usize, mean: f64, sd: f64, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let dist = Normal::new(mean, sd).expect("finite mean and positive sd");
    (0..n).map(|_| dist.sample(&mut rng)).collect()
}

/// `n` category names drawn from `k` categories with a skewed mix.
pub fn categories(n: usize, k: usize, seed: u64) -> Vec<String> {
    let names: Vec<String> = (0..k).map(|i| format!("cat_{i}")).collect();
    normal(n, 0.0, 1.0, seed).into_iter().map(|z| names[((z.abs() * k as f64 / 3.0) as usize).min(k - 1)].clone()).collect()
}
