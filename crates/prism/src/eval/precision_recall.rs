//! Improved precision and recall (Kynkäänniemi et al. 2019; formula sheet §6). Each set's manifold
//! is the union of balls around its vectors with radius the distance to the k-th nearest other
//! vector of the same set (k = 3). Precision: the fraction of generated vectors inside the real
//! manifold; recall: the fraction of real vectors inside the generated manifold.

use rayon::prelude::*;

use super::features::{Features, check_pair};
use crate::Result;

/// Precision and recall.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PrecisionRecall {
    /// Fraction of generated samples inside the real manifold.
    pub precision: f64,
    /// Fraction of real samples inside the generated manifold.
    pub recall: f64,
    /// The neighbourhood size.
    pub k: usize,
}

fn sq_dist(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum()
}

/// Squared distance from each vector to its k-th nearest other vector in the same set.
pub fn knn_radii_sq(f: &Features, k: usize) -> Vec<f64> {
    (0..f.len())
        .into_par_iter()
        .map(|i| {
            let mut d: Vec<f64> = (0..f.len())
                .filter(|&j| j != i)
                .map(|j| sq_dist(f.row(i), f.row(j)))
                .collect();
            let (_, kth, _) = d.select_nth_unstable_by(k - 1, f64::total_cmp);
            *kth
        })
        .collect()
}

/// The fraction of `queries` inside the manifold of `support` (balls of squared radii `radii_sq`).
fn coverage(queries: &Features, support: &Features, radii_sq: &[f64]) -> f64 {
    let inside = (0..queries.len())
        .into_par_iter()
        .filter(|&i| {
            (0..support.len()).any(|j| sq_dist(queries.row(i), support.row(j)) <= radii_sq[j])
        })
        .count();
    inside as f64 / queries.len() as f64
}

/// Precision and recall of `generated` against `real` with neighbourhood size `k`.
pub fn precision_recall(
    real: &Features,
    generated: &Features,
    k: usize,
) -> Result<PrecisionRecall> {
    check_pair(real, generated, k.max(1) + 1, "precision/recall")?;
    let k = k.max(1);
    let real_r = knn_radii_sq(real, k);
    let gen_r = knn_radii_sq(generated, k);
    Ok(PrecisionRecall {
        precision: coverage(generated, real, &real_r),
        recall: coverage(real, generated, &gen_r),
        k,
    })
}
