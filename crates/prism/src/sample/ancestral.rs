//! Single steps `t → s` (s less noisy) of ancestral sampling, in logSNR form (formula sheet §1).

use burn::tensor::Tensor;

use crate::schedule::{alpha_from_log_snr, sigma_from_log_snr};

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

/// DDIM(η) step: `ε̂ = (z_t − α_t x̂)/σ_t`, `σ̃² = η² σ_s² c`,
/// `z_s = α_s x̂ + sqrt(σ_s² − σ̃²) ε̂ + σ̃ ξ`. With η = 1 this equals [`ddpm_step`].
pub fn ddim_step(
    z_t: Tensor<4>,
    x0_hat: Tensor<4>,
    xi: Option<Tensor<4>>,
    log_snr_t: f64,
    log_snr_s: f64,
    eta: f64,
) -> Tensor<4> {
    let (a_t, s_t) = (alpha_from_log_snr(log_snr_t), sigma_from_log_snr(log_snr_t));
    let (a_s, s_s) = (alpha_from_log_snr(log_snr_s), sigma_from_log_snr(log_snr_s));
    let c = -(log_snr_t - log_snr_s).exp_m1();
    let var = eta * eta * s_s * s_s * c;
    let eps_hat = (z_t - x0_hat.clone() * a_t) / s_t;
    let z_s = x0_hat * a_s + eps_hat * (s_s * s_s - var).max(0.0).sqrt();
    match xi {
        Some(xi) => z_s + xi * var.sqrt(),
        None => z_s,
    }
}
