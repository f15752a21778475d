//! Isotropic Gaussian diffusion in logSNR form (formula sheet §1):
//! `z_t = α_t x + σ_t ε`, `α_t² = sigmoid(λ_t)`, `σ_t² = sigmoid(−λ_t)`.

use burn::tensor::Tensor;

use super::{AncestralStep, Diagonal, DiffusionProcess, Level};
use crate::Result;
use crate::schedule::{LogSnrSchedule, Schedule, alpha_from_log_snr, sigma_from_log_snr};
use crate::tensor::per_sample;

/// See the module docs.
#[derive(Debug, Clone)]
pub struct GaussianProcess {
    schedule: Schedule,
}

impl GaussianProcess {
    /// The process driven by `schedule`.
    pub fn new(schedule: Schedule) -> Self {
        Self { schedule }
    }
}

/// DDPM ancestral step (Kingma et al. 2021, eq. 33 in logSNR form):
/// `c = −expm1(λ_t − λ_s)`, `μ = α_s((1 − c) z_t/α_t + c x̂)`, `z_s = μ + sqrt(σ_s² c) ξ`.
/// `xi = None` takes the mean (the final step).
pub fn ddpm_step(
    z_t: Tensor<4>,
    x0_hat: Tensor<4>,
    xi: Option<Tensor<4>>,
    log_snr_t: f64,
    log_snr_s: f64,
) -> Tensor<4> {
    let (a_t, a_s, s_s) = (
        alpha_from_log_snr(log_snr_t),
        alpha_from_log_snr(log_snr_s),
        sigma_from_log_snr(log_snr_s),
    );
    let c = -(log_snr_t - log_snr_s).exp_m1();
    let mean = z_t * (a_s * (1.0 - c) / a_t) + x0_hat * (a_s * c);
    match xi {
        Some(xi) => mean + xi * (s_s * s_s * c).sqrt(),
        None => mean,
    }
}

impl DiffusionProcess for GaussianProcess {
    fn kind(&self) -> &'static str {
        "gaussian"
    }

    fn describe(&self) -> String {
        format!(
            "isotropic Gaussian diffusion, logSNR from {:+.2} to {:+.2}",
            self.schedule.log_snr(1.0),
            self.schedule.log_snr(0.0)
        )
    }

    fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// `z_t = α_t x0 + σ_t ε`, with a time per sample.
    fn corrupt(&self, x0: Tensor<4>, t: &[f64], eps: Tensor<4>) -> Result<Tensor<4>> {
        let device = x0.device();
        let log_snr: Vec<f64> = t.iter().map(|&t| self.schedule.log_snr(t)).collect();
        let alpha: Vec<f64> = log_snr.iter().map(|&l| alpha_from_log_snr(l)).collect();
        let sigma: Vec<f64> = log_snr.iter().map(|&l| sigma_from_log_snr(l)).collect();
        Ok(x0 * per_sample(&alpha, &device) + eps * per_sample(&sigma, &device))
    }

    /// [`ddpm_step`] on `x̂` (clipped to `[-1, 1]` when asked).
    fn ancestral_step(&self, a: AncestralStep) -> Result<Tensor<4>> {
        let x0_hat = if a.clip_x0 {
            a.pred.x0_hat.clamp(-1.0, 1.0)
        } else {
            a.pred.x0_hat
        };
        Ok(ddpm_step(a.z_t, x0_hat, a.noise, a.t.log_snr, a.s.log_snr))
    }

    /// `z_0 / α_0`.
    fn finish(&self, z0: Tensor<4>) -> Result<Tensor<4>> {
        Ok(z0 / alpha_from_log_snr(self.schedule.log_snr(0.0)))
    }

    fn diagonal(&self, level: Level, _state: [usize; 4]) -> Option<Diagonal> {
        Some(Diagonal::isotropic(level.log_snr))
    }

    fn has_elbo(&self) -> bool {
        true
    }

    fn is_pointwise(&self) -> bool {
        true
    }
}
