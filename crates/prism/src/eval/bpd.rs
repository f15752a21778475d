//! Bits per dimension from the continuous-time diffusion ELBO (Kingma et al. 2021, VDM eq. 17):
//!
//! `−log p(x) ≤ KL(q(z_1|x) ‖ N(0, I)) + E[−log p(x|z_0)] + ½ E_{t~U(0,1)}[(−dλ/dt) ‖ε − ε̂(z_t)‖²]`
//!
//! - prior: `½ Σ (σ_1² + α_1² x² − 1 − log σ_1²)`;
//! - reconstruction: a discretised Gaussian over the 256 pixel levels with mean `z_0/α_0` and
//!   standard deviation `σ_0/α_0` (edge bins extend to ±∞);
//! - diffusion: Monte Carlo over `t`, stratified, `draws` evaluations per image.
//!
//! The bound holds for any end point `λ_0` of the integral (the continuous ELBO depends on the
//! schedule only through its end points, VDM §5.1), so the decoder may sit at a lower SNR than the
//! training schedule's `λ_max`: with `logsnr_max = Some(λ_0)` the diffusion term runs over
//! `t ∈ [t(λ_0), 1]` and the decoder sees `z` at `λ_0`. Near σ/α ≪ one pixel level the ε error is
//! weighted by the huge `−dλ/dt` but carries no information about discrete pixels, so a `λ_0`
//! around 12 (σ/α ≈ 2.5·10⁻³, a third of a pixel level) gives a tighter and far less noisy bound.
//!
//! `bpd = nats / (D ln 2)`; the standard error is over images.

use burn::tensor::Device;
use rand::{Rng, SeedableRng};

use crate::data::Dataset;
use crate::denoiser::{DiffusionModel, NoiseLevels};
use crate::process::Process;
use crate::schedule::{LogSnrSchedule, alpha_from_log_snr, sigma_from_log_snr};
use crate::tensor::{normal, to_vec};

/// Result of [`bits_per_dim`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BitsPerDim {
    /// Mean bits per dimension.
    pub bpd: f64,
    /// Standard error of the mean over images.
    pub stderr: f64,
    /// Mean prior term (bits/dim).
    pub prior: f64,
    /// Mean reconstruction term (bits/dim).
    pub reconstruction: f64,
    /// Mean diffusion term (bits/dim).
    pub diffusion: f64,
    /// Images evaluated.
    pub images: usize,
}

/// Standard normal CDF.
fn phi(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

/// `−log p(x|z_0)` for one pixel `x ∈ [-1, 1]` on the 256-level grid, decoder mean `mu`, std `s`.
fn discretised_gaussian_nll(x: f64, mu: f64, s: f64) -> f64 {
    let half = 1.0 / 255.0;
    let (lo, hi) = ((x - half - mu) / s, (x + half - mu) / s);
    let upper = if x > 1.0 - half { 1.0 } else { phi(hi) };
    let lower = if x < -1.0 + half { 0.0 } else { phi(lo) };
    -(upper - lower).max(1e-300).ln()
}

/// How to estimate bits/dim.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BpdOptions {
    /// Held-out images to use (the first ones).
    pub images: usize,
    /// Monte Carlo time draws per image.
    pub draws: usize,
    /// The decoder's logSNR `λ_0` (clamped to the schedule's range); `None`: the schedule's `λ(0)`.
    pub logsnr_max: Option<f64>,
    /// Seed of the noise and times.
    pub seed: u64,
}

impl Default for BpdOptions {
    fn default() -> Self {
        Self {
            images: 500,
            draws: 16,
            logsnr_max: Some(12.0),
            seed: 0,
        }
    }
}

/// Estimates bits/dim of `model` on held-out images.
pub fn bits_per_dim(
    model: &DiffusionModel,
    process: &Process,
    held_out: &Dataset,
    opts: BpdOptions,
    device: &Device,
) -> BitsPerDim {
    let BpdOptions {
        images: n,
        draws,
        seed,
        ..
    } = opts;
    let n = n.min(held_out.len());
    let schedule = process.schedule();
    let conditional = model.net.num_classes() > 0;
    let [c, s] = [held_out.channels(), held_out.image_size()];
    let dims = (c * s * s) as f64;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let t0 = opts.logsnr_max.map_or(0.0, |l| schedule.t_of_log_snr(l));
    let (l0, l1) = (schedule.log_snr(t0), schedule.log_snr(1.0));
    let (a0, s0) = (alpha_from_log_snr(l0), sigma_from_log_snr(l0));
    let (a1, s1) = (alpha_from_log_snr(l1), sigma_from_log_snr(l1));
    let mut per_image = Vec::with_capacity(n);
    let (mut prior_sum, mut rec_sum, mut diff_sum) = (0.0, 0.0, 0.0);
    let batch = 32;
    for start in (0..n).step_by(batch) {
        let idx: Vec<usize> = (start..(start + batch).min(n)).collect();
        let b = idx.len();
        let data = held_out.batch(&idx, &mut rng, device);
        let labels = if conditional {
            data.labels.clone()
        } else {
            None
        };
        let x = to_vec(data.images.clone());
        let per = c * s * s;
        let mut diffusion = vec![0.0; b];
        let u0: f64 = rng.random();
        for k in 0..draws {
            let t = t0 + (1.0 - t0) * (u0 + k as f64 / draws as f64).fract();
            let l = schedule.log_snr(t);
            let eps = normal([b, c, s, s], &mut rng, device);
            let z = process.corrupt(data.images.clone(), &vec![t; b], eps.clone());
            let levels = NoiseLevels::uniform(l, b, device);
            let eps_hat = model.predict(z, &levels, labels.clone()).eps_hat;
            let sq = to_vec(
                (eps - eps_hat)
                    .powi_scalar(2)
                    .sum_dims(&[1, 2, 3])
                    .reshape([b]),
            );
            for (d, e) in diffusion.iter_mut().zip(sq) {
                *d += 0.5 * (1.0 - t0) * (-schedule.dlog_snr_dt(t)) * e as f64 / draws as f64;
            }
        }
        for i in 0..b {
            let xi = &x[i * per..(i + 1) * per];
            let prior: f64 = xi
                .iter()
                .map(|&v| 0.5 * (s1 * s1 + a1 * a1 * (v as f64).powi(2) - 1.0 - (s1 * s1).ln()))
                .sum();
            let rec: f64 = xi
                .iter()
                .map(|&v| {
                    let v = v as f64;
                    let z0 = a0 * v + s0 * rng.sample::<f64, _>(rand_distr::StandardNormal);
                    discretised_gaussian_nll(v, z0 / a0, s0 / a0)
                })
                .sum();
            let to_bits = 1.0 / (dims * std::f64::consts::LN_2);
            prior_sum += prior * to_bits;
            rec_sum += rec * to_bits;
            diff_sum += diffusion[i] * to_bits;
            per_image.push((prior + rec + diffusion[i]) * to_bits);
        }
    }
    let m = per_image.len() as f64;
    let mean = per_image.iter().sum::<f64>() / m;
    let var = per_image.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (m - 1.0).max(1.0);
    BitsPerDim {
        bpd: mean,
        stderr: (var / m).sqrt(),
        prior: prior_sum / m,
        reconstruction: rec_sum / m,
        diffusion: diff_sum / m,
        images: per_image.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discretised_gaussian_is_a_distribution() {
        // Summing the probabilities of all 256 levels gives 1 for any mean and scale.
        for (mu, s) in [(0.1, 0.01), (-0.7, 0.3), (0.99, 0.002)] {
            let total: f64 = (0..256)
                .map(|k| (-discretised_gaussian_nll(-1.0 + 2.0 * k as f64 / 255.0, mu, s)).exp())
                .sum();
            assert!((total - 1.0).abs() < 1e-9, "μ={mu}, s={s}: {total}");
        }
    }
}
