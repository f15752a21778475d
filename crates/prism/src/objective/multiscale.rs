//! simple diffusion's multiscale loss (Hoogeboom et al. 2023, §3.2; formula sheet §2):
//! ```text
//! L^{s×s}(x) = (1/s²) · E || D^{s×s}[ε] − D^{s×s}[ε̂] ||²          (D: average pooling to s×s)
//! L̃(x)      = Σ_{s ∈ {s_min, 2 s_min, …, d}} (1/s) · L^{s×s}(x)
//! ```
//! `ε̂` comes from the network's output through the parameterisation (v̂ → ε̂ under v-prediction).
//!
//! Normalisation (the sheet leaves it open): `L^{s×s}` is the mean over the batch, channels and
//! the `s²` pixels of the per-sample weighted squared error, and the `1/s` weights are divided by
//! their sum, so that the weights add to one. With a single scale (`s_min ≥ d`) the loss is then
//! exactly the single-scale loss of the same [`Weighting`], and its size does not depend on `d`;
//! the paper's absolute constant would only rescale the learning rate. Per-sample weights are
//! [`Weighting::eps_weights`] (for `mse`, the conversion of the parameterisation's error to the ε
//! error). Scales halve from `d` while they stay `≥ s_min` and even.

use burn::tensor::Tensor;

use super::{LossInputs, Weighting};
use crate::process::Parameterization;
use crate::tensor::per_sample;
use crate::transform::avg_pool;

/// The pooling factors used for an image of side `d`: 1, 2, 4, … while `d/factor ≥ min` and the
/// factor divides `d` (always at least the full resolution).
fn factors(d: usize, min: usize) -> Vec<usize> {
    let mut out = vec![1];
    let mut f = 2;
    while d.is_multiple_of(f) && d / f >= min {
        out.push(f);
        f *= 2;
    }
    out
}

/// The multiscale loss of the module docs (a `[1]` tensor).
pub fn multiscale_loss(
    weighting: Weighting,
    p: Parameterization,
    i: LossInputs<'_>,
    min_resolution: usize,
) -> Tensor<1> {
    let w = weighting.eps_weights(p, i.log_snr, i.dlog_snr_dt);
    let eps_hat = i.eps_hat;
    let weights = per_sample(&w, &eps_hat.device());
    let [_, _, h, w_] = eps_hat.dims();
    let d = h.min(w_);
    let err = i.eps - eps_hat;
    let fs = factors(d, min_resolution);
    let norm: f64 = fs.iter().map(|&f| f as f64 / d as f64).sum();
    fs.into_iter()
        .map(|f| {
            let s = d / f;
            let pooled = avg_pool(err.clone(), f);
            (pooled.powi_scalar(2) * weights.clone()).mean() * (1.0 / (s as f64 * norm))
        })
        .reduce(|a, b| a + b)
        .expect("at least the full resolution")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::NoiseLevels;
    use crate::tensor::{normal, scalar, to_vec};
    use burn::tensor::{Device, TensorData};

    #[test]
    fn scales_halve_down_to_the_minimum() {
        assert_eq!(factors(256, 32), vec![1, 2, 4, 8]);
        assert_eq!(factors(64, 32), vec![1, 2]);
        assert_eq!(factors(16, 32), vec![1]);
        assert_eq!(factors(24, 2), vec![1, 2, 4, 8]);
    }

    #[test]
    fn avg_pool_averages_blocks() {
        let device = Device::flex();
        let x = Tensor::<4>::from_data(
            TensorData::new((0..16).map(|v| v as f32).collect::<Vec<_>>(), [1, 1, 4, 4]),
            &device,
        );
        assert_eq!(to_vec(avg_pool(x, 2)), vec![2.5, 4.5, 10.5, 12.5]);
    }

    /// ε-prediction, ε − ε̂ = 0.5 + checkerboard(±1) on 4×4, scales 4 and 2 (`min` = 2):
    /// L⁴ = mean(1.5², 0.5²) = 1.25; pooling 2×2 cancels the checkerboard, L² = 0.5² = 0.25;
    /// L̃ = (1.25/4 + 0.25/2) / (1/4 + 1/2) = 0.583̅.
    #[test]
    fn matches_a_hand_computation() {
        let device = Device::flex();
        let diff: Vec<f32> = (0..16)
            .map(|i| 0.5 + if (i / 4 + i % 4) % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        let eps = Tensor::<4>::from_data(TensorData::new(diff, [1, 1, 4, 4]), &device);
        let n = NoiseLevels::uniform(0.3, 1, &device);
        let zero = Tensor::<4>::zeros([1, 1, 4, 4], &device);
        let loss = |min| {
            scalar(multiscale_loss(
                Weighting::Mse,
                Parameterization::Eps,
                LossInputs {
                    raw: zero.clone(),
                    target: zero.clone(),
                    eps: eps.clone(),
                    eps_hat: zero.clone(),
                    log_snr: &n.log_snr,
                    dlog_snr_dt: &[-1.0],
                },
                min,
            ))
        };
        let want = (1.25 / 4.0 + 0.25 / 2.0) / (1.0 / 4.0 + 1.0 / 2.0);
        assert!((loss(2) - want).abs() < 1e-6, "{} vs {want}", loss(2));
        assert!((loss(4) - 1.25).abs() < 1e-6, "single scale: {}", loss(4));
    }

    /// With one scale the multiscale loss is the plain loss, for v-prediction (ε̂ converted from v̂)
    /// under `mse` and `elbo` weightings.
    #[test]
    fn single_scale_equals_the_plain_loss() {
        let (device, mut rng) = crate::golden_data::seeded(8);
        let x0 = normal([2, 3, 8, 8], &mut rng, &device);
        let eps = normal([2, 3, 8, 8], &mut rng, &device);
        let raw = normal([2, 3, 8, 8], &mut rng, &device);
        let n = NoiseLevels::new(vec![-2.0, 3.0], &device);
        let z = x0.clone() * n.alpha.clone() + eps.clone() * n.sigma.clone();
        let dlog = [-3.0, -1.5];
        let p = Parameterization::V;
        let (target, eps_hat) = (
            p.target(x0.clone(), eps.clone(), &n),
            p.prediction(raw.clone(), z.clone(), &n).eps_hat,
        );
        let inputs = || LossInputs {
            raw: raw.clone(),
            target: target.clone(),
            eps: eps.clone(),
            eps_hat: eps_hat.clone(),
            log_snr: &n.log_snr,
            dlog_snr_dt: &dlog,
        };
        for weighting in [Weighting::Mse, Weighting::Elbo] {
            let plain = scalar(weighting.loss(inputs()));
            let multi = scalar(multiscale_loss(weighting, Parameterization::V, inputs(), 8));
            assert!(
                (plain - multi).abs() < 1e-4 * plain.abs(),
                "{weighting:?}: {plain} vs {multi}"
            );
            let coarse = scalar(multiscale_loss(weighting, Parameterization::V, inputs(), 2));
            assert!(coarse < plain, "{weighting:?}: pooled errors are smaller");
        }
    }
}
