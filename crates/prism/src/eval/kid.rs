//! Kernel Inception Distance (Bińkowski et al. 2018, "Demystifying MMD GANs"; formula sheet §6):
//! the unbiased estimate of MMD² between the feature distributions of real and generated images
//! under the cubic polynomial kernel `k(x, y) = (xᵀy/d + 1)³`, averaged over random subsets.
//!
//! Conventions follow torch-fidelity: subsets drawn without replacement, subset size
//! `min(subset_size, n_real, n_generated)`, mean and population standard deviation over subsets.

use rand::SeedableRng;
use rand::seq::index::sample;
use rayon::prelude::*;

use super::features::{Features, check_pair};
use crate::Result;

/// Subsets for [`kid`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KidOptions {
    /// Number of random subsets (torch-fidelity: 100).
    pub subsets: usize,
    /// Images per subset (torch-fidelity: 1000), clamped to the smaller set.
    pub subset_size: usize,
    /// Seed of the subset draws.
    pub seed: u64,
}

impl Default for KidOptions {
    fn default() -> Self {
        Self {
            subsets: 100,
            subset_size: 1000,
            seed: 0,
        }
    }
}

/// KID with its spread over subsets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Kid {
    /// Mean of the unbiased MMD² over subsets.
    pub mean: f64,
    /// Population standard deviation over subsets.
    pub std: f64,
    /// The subset size used.
    pub subset_size: usize,
    /// The number of subsets.
    pub subsets: usize,
}

fn kernel(x: &[f32], y: &[f32]) -> f64 {
    let dot: f64 = x.iter().zip(y).map(|(&a, &b)| a as f64 * b as f64).sum();
    (dot / x.len() as f64 + 1.0).powi(3)
}

/// Unbiased MMD² of two equally sized sets under the cubic kernel:
/// `Σ_{i≠j} k(xᵢ,xⱼ)/(m(m−1)) + Σ_{i≠j} k(yᵢ,yⱼ)/(m(m−1)) − 2 Σ_{i,j} k(xᵢ,yⱼ)/m²`.
pub fn mmd2_unbiased(x: &Features, y: &Features) -> Result<f64> {
    check_pair(x, y, 2, "MMD²")?;
    let m = x.len();
    if y.len() != m {
        return Err(crate::Error::Shape(format!(
            "MMD² needs equal set sizes, got {m} and {}",
            y.len()
        )));
    }
    let within = |f: &Features| -> f64 {
        (0..m)
            .into_par_iter()
            .map(|i| {
                (0..m)
                    .filter(|&j| j != i)
                    .map(|j| kernel(f.row(i), f.row(j)))
                    .sum::<f64>()
            })
            .sum()
    };
    let across: f64 = (0..m)
        .into_par_iter()
        .map(|i| (0..m).map(|j| kernel(x.row(i), y.row(j))).sum::<f64>())
        .sum();
    let mf = m as f64;
    Ok((within(x) + within(y)) / (mf * (mf - 1.0)) - 2.0 * across / (mf * mf))
}

/// KID between `real` and `generated` features.
pub fn kid(real: &Features, generated: &Features, opts: KidOptions) -> Result<Kid> {
    check_pair(real, generated, 2, "KID")?;
    let m = opts.subset_size.min(real.len()).min(generated.len());
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(opts.seed);
    let mut values = Vec::with_capacity(opts.subsets.max(1));
    for _ in 0..opts.subsets.max(1) {
        let r = sample(&mut rng, real.len(), m).into_vec();
        let g = sample(&mut rng, generated.len(), m).into_vec();
        values.push(mmd2_unbiased(&real.select(&r), &generated.select(&g))?);
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    Ok(Kid {
        mean,
        std: var.sqrt(),
        subset_size: m,
        subsets: values.len(),
    })
}
