//! Fréchet distance between Gaussians fitted to two feature sets (Heusel et al. 2017; formula
//! sheet §6): `‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2 (Σ₁Σ₂)^{1/2})`, covariances with the `n − 1`
//! denominator as pytorch-fid (`np.cov`). FID is biased by the sample count: always quote `n`.
//!
//! `tr (Σ₁Σ₂)^{1/2}` is computed as `tr (A Σ₂ A)^{1/2}` with `A = Σ₁^{1/2}`: `AΣ₂A` is symmetric
//! positive semi-definite and similar to `Σ₁Σ₂`, so the trace is the sum of the square roots of its
//! eigenvalues (negative round-off clamped to zero). Symmetric eigen-decompositions by nalgebra.

use nalgebra::{DMatrix, DVector, SymmetricEigen};

use super::features::{Features, check_pair};
use crate::Result;

/// Mean and covariance of a feature set.
#[derive(Debug, Clone)]
pub struct GaussianFit {
    /// Mean `μ`.
    pub mean: DVector<f64>,
    /// Covariance `Σ` (denominator `n − 1`).
    pub cov: DMatrix<f64>,
}

/// Fits `μ, Σ` to `f` (needs at least two vectors).
pub fn fit_gaussian(f: &Features) -> GaussianFit {
    let (n, d) = (f.len(), f.dim);
    let x = DMatrix::from_row_iterator(n, d, f.data.iter().map(|&v| v as f64));
    let mean = x.row_mean().transpose();
    let centred = DMatrix::from_fn(n, d, |i, j| x[(i, j)] - mean[j]);
    let cov = centred.tr_mul(&centred) / (n as f64 - 1.0);
    GaussianFit { mean, cov }
}

fn sym_sqrt(m: &DMatrix<f64>) -> DMatrix<f64> {
    let e = SymmetricEigen::new(m.clone());
    let roots = e.eigenvalues.map(|v| v.max(0.0).sqrt());
    &e.eigenvectors * DMatrix::from_diagonal(&roots) * e.eigenvectors.transpose()
}

/// `tr (Σ₁Σ₂)^{1/2}` for symmetric positive semi-definite `Σ₁, Σ₂`.
pub fn trace_sqrt_product(s1: &DMatrix<f64>, s2: &DMatrix<f64>) -> f64 {
    let a = sym_sqrt(s1);
    let m = &a * s2 * &a;
    let m = (&m + m.transpose()) * 0.5;
    SymmetricEigen::new(m)
        .eigenvalues
        .iter()
        .map(|v| v.max(0.0).sqrt())
        .sum()
}

/// The Fréchet distance between two fitted Gaussians.
pub fn frechet_distance(a: &GaussianFit, b: &GaussianFit) -> f64 {
    let diff = &a.mean - &b.mean;
    diff.norm_squared() + a.cov.trace() + b.cov.trace() - 2.0 * trace_sqrt_product(&a.cov, &b.cov)
}

/// FID between `real` and `generated` features.
pub fn fid(real: &Features, generated: &Features) -> Result<f64> {
    check_pair(real, generated, 2, "FID")?;
    Ok(frechet_distance(
        &fit_gaussian(real),
        &fit_gaussian(generated),
    ))
}
