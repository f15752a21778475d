//! The held-out denoising error on both sides of each resolution switch (Laplacian diffusion),
//! on the same images and the same noise `ε` at every time, so that the times are paired: at
//! `t_k − 3δ`, `t_k − δ` (the state still at the higher resolution, band `k` almost faded),
//! `t_k + δ` and `t_k + 3δ` (the state at the lower resolution). Two errors per pixel:
//!
//! - **full**: `||x − up(x̂)||²` on the image (`x̂` upsampled, nearest, where the state is
//!   smaller, as in [`super::denoise_mse`]). After the switch `up(x̂)` has no band `k` at all;
//!   before it the model may still predict the part of band `k` that the coarser bands imply.
//! - **coarse**: `||down(x) − down(x̂)||²` at the lower side of the switch: what the states on
//!   both sides carry.
//!
//! The error grows with `t` anyway, so the step across the switch, `e(t_k + δ) − e(t_k − δ)`, is
//! compared with what the slopes on either side predict for it, `(e(t_k − δ) − e(t_k − 3δ) +
//! e(t_k + 3δ) − e(t_k + δ))/2`: the **excess** (`−4 e‴ δ³ + O(δ⁵)` for an error that
//! is smooth in `t`) measures the jump, with its standard error over images — an excess within a
//! few standard errors is no jump beyond noise.

use burn::tensor::{Device, Tensor};
use rand::SeedableRng;

use super::denoise_mse::{held_out_batch, image_estimate};
use crate::data::Dataset;
use crate::denoiser::{DiffusionModel, ModelInput};
use crate::process::DiffusionProcess;
use crate::tensor::{normal, to_vec};
use crate::transform::avg_pool;
use crate::{Error, Result};

/// The errors around one switch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SwitchMse {
    /// The switch time `t_k`.
    pub t: f64,
    /// The state's side just before (higher) and just after (lower) the switch (the coarse
    /// error is measured on the images average-pooled by the ratio of the full state's side
    /// to the lower one).
    pub sides: (usize, usize),
    /// Full-image error per pixel at `t_k − 3δ`, `t_k − δ`, `t_k + δ`, `t_k + 3δ`.
    pub full: [f64; 4],
    /// The full error's excess step across the switch and its standard error (module docs).
    pub full_excess: (f64, f64),
    /// Error per pixel at the lower side of the switch, at the same four times.
    pub coarse: [f64; 4],
    /// The coarse error's excess step across the switch and its standard error.
    pub coarse_excess: (f64, f64),
}

/// The excess step across the switch of errors `e` at the four times (module docs).
fn excess(e: [f64; 4]) -> f64 {
    (e[2] - e[1]) - 0.5 * ((e[1] - e[0]) + (e[3] - e[2]))
}

/// Per-image sums of squares of `a − b` (`[B, C, H, W]`).
fn per_image(a: Tensor<4>, b: Tensor<4>) -> Vec<f64> {
    let [n, _, _, _] = a.dims();
    to_vec((a - b).powi_scalar(2).reshape([n as i32, -1]).sum_dim(1))
        .into_iter()
        .map(f64::from)
        .collect()
}

/// Mean and standard error of the mean of `d`.
fn mean_se(d: &[f64]) -> (f64, f64) {
    let n = d.len() as f64;
    let mean = d.iter().sum::<f64>() / n;
    let var = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, (var / n).sqrt())
}

/// Evaluates `model` around every switch of `process` on the first `n` images of `held_out`
/// (at least 2), at `t_k ± delta` and `t_k ± 3 delta` (inside the two segments that meet at
/// `t_k`), with fixed noise from `seed`. An error for a process without switches.
#[allow(clippy::too_many_arguments)]
pub fn switch_mse(
    model: &DiffusionModel,
    process: &dyn DiffusionProcess,
    input: &ModelInput,
    held_out: &Dataset,
    delta: f64,
    n: usize,
    seed: u64,
    device: &Device,
) -> Result<Vec<SwitchMse>> {
    let switches = process.switch_times();
    if switches.is_empty() {
        return Err(Error::invalid(format!(
            "the {} process has no resolution switches to evaluate around",
            process.kind()
        )));
    }
    if !(delta.is_finite() && delta > 0.0 && delta < 0.5) {
        return Err(Error::invalid(format!(
            "the distance from a switch must be in (0, 0.5), got {delta}"
        )));
    }
    // t_k ± 3δ must stay inside the two segments that meet at t_k.
    let mut bounds = vec![0.0];
    bounds.extend(switches.iter().rev());
    bounds.push(1.0);
    if let Some(w) = bounds
        .windows(3)
        .find(|w| w[1] - 3.0 * delta <= w[0] || w[1] + 3.0 * delta >= w[2])
    {
        return Err(Error::invalid(format!(
            "the switch at t = {} ± 3 × {delta} reaches the next switch or the end of (0, 1): take a smaller distance",
            w[1]
        )));
    }
    let n = n.min(held_out.len());
    if n < 2 {
        return Err(Error::invalid(
            "the errors around a switch need at least 2 held-out images",
        ));
    }
    let [c, s] = [held_out.channels(), held_out.image_size()];
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    // Per switch and time: per-image full and coarse sums.
    let mut sums = vec![[(); 4].map(|_| (Vec::new(), Vec::new())); switches.len()];
    let batch = 64;
    for start in (0..n).step_by(batch) {
        let idx: Vec<usize> = (start..(start + batch).min(n)).collect();
        let (images, x, cond) = held_out_batch(model, input, held_out, &idx, &mut rng, device)?;
        for (k, &t) in switches.iter().enumerate() {
            let eps = normal(x.dims(), &mut rng, device);
            let full = x.dims();
            let f = full[2] / process.state_shape(full, t + delta)[2].max(1);
            for (i, m) in [-3.0, -1.0, 1.0, 3.0].into_iter().enumerate() {
                let est = image_estimate(
                    model,
                    process,
                    input,
                    x.clone(),
                    &cond,
                    t + m * delta,
                    eps.clone(),
                    s,
                )?;
                sums[k][i].0.extend(per_image(est.clone(), images.clone()));
                sums[k][i]
                    .1
                    .extend(per_image(avg_pool(est, f), avg_pool(images.clone(), f)));
            }
        }
    }
    let per_pixel = (c * s * s) as f64;
    let state = input.space().shape([1, c, s, s]);
    Ok(switches
        .iter()
        .zip(sums)
        .map(|(&t, e)| {
            let low = process.state_shape(state, t + delta)[2];
            let high = process.state_shape(state, t - delta)[2];
            let coarse_side = s * low / state[2].max(1);
            let coarse_pixels = (c * coarse_side * coarse_side) as f64;
            // Per image: the errors at the four times, per pixel; their means and the excess.
            let summarise = |rows: [&Vec<f64>; 4], d: f64| {
                let means = rows.map(|r| r.iter().sum::<f64>() / (r.len() as f64 * d));
                let per: Vec<f64> = (0..rows[0].len())
                    .map(|j| excess(rows.map(|r| r[j] / d)))
                    .collect();
                (means, mean_se(&per))
            };
            let (full, full_excess) = summarise([&e[0].0, &e[1].0, &e[2].0, &e[3].0], per_pixel);
            let (coarse, coarse_excess) =
                summarise([&e[0].1, &e[1].1, &e[2].1, &e[3].1], coarse_pixels);
            SwitchMse {
                t,
                sides: (high, low),
                full,
                full_excess,
                coarse,
                coarse_excess,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The excess is 0 for an error linear in `t`, `O(δ³)` for a smooth one, and the height of a
    /// step at the switch; the standard error is that of the mean.
    #[test]
    fn excess_measures_the_step_beyond_the_slopes() {
        let at = |f: &dyn Fn(f64) -> f64, d: f64| [-3.0, -1.0, 1.0, 3.0].map(|m| f(0.5 + m * d));
        assert!(excess(at(&|t| 0.2 + 0.3 * t, 0.01)).abs() < 1e-15);
        let smooth = |t: f64| (3.0 * t).sin();
        let (a, b) = (excess(at(&smooth, 0.02)), excess(at(&smooth, 0.01)));
        assert!(a.abs() < 1e-3 && (a / b - 8.0).abs() < 0.05, "{a} {b}");
        let step = |t: f64| 0.1 * t + if t > 0.5 { 0.05 } else { 0.0 };
        assert!((excess(at(&step, 0.01)) - 0.05).abs() < 1e-12);
        let (m, se) = mean_se(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(m, 2.5);
        assert!((se - (5.0f64 / 3.0 / 4.0).sqrt()).abs() < 1e-12);
    }
}
