//! Isotropic Gaussian diffusion in logSNR form (formula sheet §1):
//! `z_t = α_t x + σ_t ε`, `α_t² = sigmoid(λ_t)`, `σ_t² = sigmoid(−λ_t)`.

use burn::tensor::Tensor;

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

    /// The logSNR schedule.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// `z_t = α_t x0 + σ_t ε`, with a time per sample.
    pub fn corrupt(&self, x0: Tensor<4>, t: &[f64], eps: Tensor<4>) -> Tensor<4> {
        let device = x0.device();
        let log_snr: Vec<f64> = t.iter().map(|&t| self.schedule.log_snr(t)).collect();
        let alpha: Vec<f64> = log_snr.iter().map(|&l| alpha_from_log_snr(l)).collect();
        let sigma: Vec<f64> = log_snr.iter().map(|&l| sigma_from_log_snr(l)).collect();
        x0 * per_sample(&alpha, &device) + eps * per_sample(&sigma, &device)
    }
}
