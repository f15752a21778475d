//! DPM-Solver++(2M) (Lu et al. 2022, Alg. 2), written in VP form.
//!
//! In k-diffusion's variance-exploding form, `x = z/α`, `σ_VE = σ/α = e^{−λ/2}`, `h = λ_s/2 − λ_t/2`:
//! `x_s = (σ_s/σ_t) x_t − expm1(−h) D'`. Multiplying by `α_s` gives the VP update used here:
//! `z_s = (σ_s/σ_t) z_t − α_s expm1(−h) D'`, with
//! `D' = (1 + 1/(2r)) D_i − (1/(2r)) D_{i−1}`, `r = h_prev/h` (first step and the step to σ = 0: `D' = D_i`).

use burn::tensor::Tensor;

use crate::denoiser::Denoise;
use crate::schedule::{alpha_from_log_snr, sigma_from_log_snr};

/// Integrates from `z` at `levels[0]` through increasing logSNR `levels`, then to σ = 0.
/// One network evaluation per level; returns the clean-image estimate.
pub fn dpmpp_2m(
    denoiser: &dyn Denoise,
    z: Tensor<4>,
    levels: &[f64],
    on_step: &mut dyn FnMut(usize, usize),
) -> Tensor<4> {
    let mut z = z;
    let mut prev: Option<(Tensor<4>, f64)> = None; // (D_{i−1}, h_{i−1})
    let n = levels.len();
    for (i, &lt) in levels.iter().enumerate() {
        let d = denoiser.denoise(z.clone(), lt).x0_hat;
        on_step(i + 1, n);
        let Some(&ls) = levels.get(i + 1) else {
            return d; // final step to σ = 0
        };
        let h = (ls - lt) / 2.0;
        let d_prime = match prev.take() {
            Some((d_prev, h_prev)) => {
                let r = h_prev / h;
                d.clone() * (1.0 + 1.0 / (2.0 * r)) - d_prev * (1.0 / (2.0 * r))
            }
            None => d.clone(),
        };
        let (s_t, s_s, a_s) = (
            sigma_from_log_snr(lt),
            sigma_from_log_snr(ls),
            alpha_from_log_snr(ls),
        );
        z = z * (s_s / s_t) - d_prime * (a_s * (-h).exp_m1());
        prev = Some((d, h));
    }
    z
}
