//! Bits per dimension from the continuous-time diffusion ELBO (Kingma et al. 2021, VDM eq. 17):
//!
//! `−log p(x) ≤ KL(q(z_1|x) ‖ N(0, I)) + E[−log p(x|z_0)] + ½ E_{t~U(0,1)}[(−dλ/dt) ‖ε − ε̂(z_t)‖²]`
//!
//! - prior: `½ Σ (σ_1² + α_1² x² − 1 − log σ_1²)`;
//! - reconstruction: a discretised Gaussian over the 256 pixel levels with mean `z_0/α_0` and
//!   standard deviation `σ_0/α_0` (edge bins extend to ±∞);
//! - diffusion: `½ ∫ ‖ε − ε̂(z_λ)‖² dλ` over `[λ_1, λ_0]` (the same integral written in λ, VDM eq. 21),
//!   Monte Carlo with λ uniform and stratified, `draws` evaluations per image; the integrand is
//!   bounded, unlike `(−dλ/dt)‖ε − ε̂‖²`, so the estimate has far lower variance.
//!
//! The bound holds for any end point `λ_0` of the integral (the continuous ELBO depends on the
//! schedule only through its end points, VDM §5.1), so the decoder may sit at a lower SNR than the
//! training schedule's `λ_max`: with `logsnr_max = Some(λ_0)` the diffusion term runs over
//! `λ ∈ [λ_1, λ_0]` and the decoder sees `z` at `λ_0`. Near σ/α ≪ one pixel level the ε error is
//! weighted by the huge `−dλ/dt` but carries no information about discrete pixels, so a `λ_0`
//! around 12 (σ/α ≈ 2.5·10⁻³, a third of a pixel level) gives a tighter and far less noisy bound.
//!
//! `bpd = nats / (D ln 2)`; the standard error is over images.

use burn::tensor::{Device, Tensor};
use rand::{Rng, SeedableRng};

use crate::data::Dataset;
use crate::denoiser::{DiffusionModel, ModelInput};
use crate::nn::Condition;
use crate::process::{DiffusionProcess, NoiseLevels};
use crate::schedule::{LogSnrSchedule, alpha_from_log_snr, sigma_from_log_snr};
use crate::tensor::{normal, to_vec};
use crate::{Error, Result};

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
    /// Monte Carlo logSNR draws per image.
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
            draws: 32,
            logsnr_max: Some(12.0),
            seed: 0,
        }
    }
}

/// What the estimator needs from a model: `ε̂` at `z` with logSNR `λ` under a condition.
pub trait EpsPredictor {
    /// Whether the predictor uses class labels.
    fn conditional(&self) -> bool;
    /// Whether the predictor reads the data's context sequences.
    fn reads_context(&self) -> bool {
        false
    }
    /// `ε̂(z, λ)`.
    fn eps_hat(&self, z: Tensor<4>, log_snr: f64, cond: &Condition) -> Result<Tensor<4>>;
}

/// The isotropic conversion of the network's output (the ELBO here is the isotropic process's).
impl EpsPredictor for DiffusionModel {
    fn conditional(&self) -> bool {
        self.net.num_classes() > 0
    }

    fn reads_context(&self) -> bool {
        DiffusionModel::reads_context(self)
    }

    fn eps_hat(&self, z: Tensor<4>, log_snr: f64, cond: &Condition) -> Result<Tensor<4>> {
        let levels = NoiseLevels::uniform(log_snr, z.dims()[0], &z.device());
        let raw = self.raw(z.clone(), &levels.log_snr, cond)?;
        Ok(self.parameterization().prediction(raw, z, &levels).eps_hat)
    }
}

/// Estimates bits/dim of `model` on held-out images. The ELBO here is that of the isotropic
/// Gaussian process: other processes are refused with an error naming them. Fails when an image
/// of a lazily decoded set no longer decodes.
pub fn bits_per_dim<P: EpsPredictor + ?Sized>(
    model: &P,
    process: &dyn DiffusionProcess,
    input: &ModelInput,
    held_out: &Dataset,
    opts: BpdOptions,
    device: &Device,
) -> Result<BitsPerDim> {
    if input.space().kind() != "pixels" {
        return Err(Error::invalid(format!(
            "bits/dim is defined on pixels; this model diffuses in the {} space",
            input.space().kind()
        )));
    }
    if !process.has_elbo() {
        return Err(Error::invalid(format!(
            "bits/dim is implemented for the Gaussian process only (there is no ELBO for the {} \
             process here); choose other metrics, e.g. --metrics mse,swd",
            process.kind()
        )));
    }
    let BpdOptions {
        images: n,
        draws,
        seed,
        ..
    } = opts;
    let n = n.min(held_out.len());
    let schedule = process.schedule();
    let conditional = model.conditional();
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
        let data = held_out.try_batch(&idx, &mut rng, device)?;
        let labels = if conditional {
            data.labels.clone()
        } else {
            None
        };
        let cond = Condition {
            context: data.context.clone().filter(|_| model.reads_context()),
            ..Condition::labels(labels)
        };
        let (_, cond) = input.prepare_for_sampling(data.images.clone(), cond, &mut rng)?;
        let x = to_vec(data.images.clone());
        let per = c * s * s;
        let mut diffusion = vec![0.0; b];
        let u0: f64 = rng.random();
        for k in 0..draws {
            // λ uniform on [λ_1, λ_0], stratified: ½ ∫ (−dλ/dt) ‖ε − ε̂‖² dt = ½ ∫ ‖ε − ε̂‖² dλ.
            let l = l1 + (l0 - l1) * (u0 + k as f64 / draws as f64).fract();
            let t = schedule.t_of_log_snr(l);
            let eps = normal([b, c, s, s], &mut rng, device);
            let z = process.corrupt(data.images.clone(), &vec![t; b], eps.clone())?;
            let eps_hat = model.eps_hat(z, schedule.log_snr(t), &cond)?;
            let sq = to_vec(
                (eps - eps_hat)
                    .powi_scalar(2)
                    .sum_dims(&[1, 2, 3])
                    .reshape([b]),
            );
            for (d, e) in diffusion.iter_mut().zip(sq) {
                *d += 0.5 * (l0 - l1) * e as f64 / draws as f64;
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
    Ok(BitsPerDim {
        bpd: mean,
        stderr: (var / m).sqrt(),
        prior: prior_sum / m,
        reconstruction: rec_sum / m,
        diffusion: diff_sum / m,
        images: per_image.len(),
    })
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

    /// For Gaussian data x ~ N(0, s²) per pixel and the optimal predictor, the expected squared ε error
    /// at logSNR λ is `sigmoid(λ + log s²)`, so the diffusion term is
    /// `½ [softplus(λ_0 + log s²) − softplus(λ_min + log s²)]` nats per pixel, and the prior term
    /// `½ (σ_1² + α_1² s² − 1 − log σ_1²)`. The estimator must reproduce both.
    #[test]
    fn matches_closed_form_on_gaussian_data() {
        use crate::data::{DataConfig, Dataset, Fit};
        use crate::process::ProcessConfig;
        use crate::schedule::ScheduleConfig;
        use rand_distr::StandardNormal;

        struct Optimal(f64);
        impl EpsPredictor for Optimal {
            fn conditional(&self) -> bool {
                false
            }
            fn eps_hat(&self, z: Tensor<4>, l: f64, _: &Condition) -> Result<Tensor<4>> {
                let (a, sg, s2) = (
                    alpha_from_log_snr(l),
                    sigma_from_log_snr(l),
                    self.0 * self.0,
                );
                Ok(z * (sg / (a * a * s2 + sg * sg)))
            }
        }
        let s = 0.3;
        let (n, side) = (400, 8);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let bytes: Vec<u8> = (0..n * side * side)
            .map(|_| {
                ((s * rng.sample::<f64, _>(StandardNormal) + 1.0) * 127.5)
                    .round()
                    .clamp(1.0, 254.0) as u8
            })
            .collect();
        let cfg = DataConfig {
            path: "gaussian".into(),
            image_size: side,
            channels: 1,
            fit: Fit::Resize,
            background: [0; 3],
            held_out: 0,
            load_size: None,
            random_flip: false,
            limit: 0,
            lazy: false,
            context: None,
        };
        let data = Dataset::from_grey_u8(&bytes, n, side, side, None, &cfg).unwrap();
        let process = ProcessConfig::Gaussian {
            schedule: ScheduleConfig::default(),
        }
        .build()
        .unwrap();
        let device = Device::flex();
        let l0 = 12.0;
        let opts = BpdOptions {
            images: n,
            draws: 64,
            logsnr_max: Some(l0),
            seed: 3,
        };
        let input = ModelInput::new(&Default::default(), &Default::default()).unwrap();
        let got =
            bits_per_dim(&Optimal(s), process.as_ref(), &input, &data, opts, &device).unwrap();
        let softplus = |x: f64| x.exp().ln_1p();
        let c = (s * s).ln();
        let bits = std::f64::consts::LN_2;
        let diffusion = 0.5 * (softplus(l0 + c) - softplus(-15.0 + c)) / bits;
        let (a1, s1) = (alpha_from_log_snr(-15.0), sigma_from_log_snr(-15.0));
        let prior = 0.5 * (s1 * s1 + a1 * a1 * s * s - 1.0 - (s1 * s1).ln()) / bits;
        assert!(
            (got.diffusion - diffusion).abs() < 0.01 * diffusion,
            "diffusion {} vs closed form {diffusion}",
            got.diffusion
        );
        assert!(
            (got.prior - prior).abs() < 1e-6 + 0.05 * prior,
            "prior {} vs {prior}",
            got.prior
        );
    }
}
