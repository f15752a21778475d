//! The denoising step of blurring diffusion (Hoogeboom & Salimans 2023, the paper's pseudo-code;
//! formula sheet §3).
//!
//! ```text
//! u_t = DCT(z_t)
//! μ   = IDCT(c1 ⊙ u_t) + IDCT(c2 ⊙ (u_t − σ_t DCT(ε̂)))
//! z_s = μ + IDCT(sqrt(σ²_den) ⊙ ξ_u)
//! ```
//! This is the Gaussian posterior `q(u_s | u_t, û_0)` per frequency with `û_0 = (u_t − σ_t DCT(ε̂))/α_t`;
//! with `σ_B,max = 0` it is [`ddpm_step`](crate::process::ddpm_step).

use burn::tensor::Tensor;

use super::StepCoefficients;
use crate::Result;
use crate::transform::Dct2d;

/// One denoising step `t → s` with coefficients `c` (from
/// [`BlurringProcess::step_coefficients`](super::BlurringProcess::step_coefficients)), the
/// network's `eps_hat` at `z_t`, and frequency-space noise `xi_u` (`None`: the posterior mean,
/// used for the final step).
///
/// `clip_x0` clips the implied clean image `x̂ = IDCT(û_0)` to `[-1, 1]` before it enters the
/// mean, i.e. `u_t − σ_t DCT(ε̂)` is replaced by `α_t ⊙ DCT(clip(x̂))`. The paper does not clip;
/// `false` is its pseudo-code exactly.
pub fn blurring_step(
    dct: &Dct2d,
    c: &StepCoefficients,
    z_t: Tensor<4>,
    eps_hat: Tensor<4>,
    xi_u: Option<Tensor<4>>,
    clip_x0: bool,
) -> Result<Tensor<4>> {
    let [h, w] = dct.size();
    let [c1, c2, std, alpha_t] = c.tensors(h, w, &z_t.device());
    // 1. Frequency space.
    let u_t = dct.forward(z_t)?;
    let mut u_x = u_t.clone() - dct.forward(eps_hat)? * c.sigma_t; // α_t ⊙ û_0
    if clip_x0 {
        let x0_hat = dct.inverse(u_x / alpha_t.clone())?.clamp(-1.0, 1.0);
        u_x = dct.forward(x0_hat)? * alpha_t;
    }
    // 2. Posterior mean, term by term as in the pseudo-code.
    let mean = dct.inverse(u_t * c1)? + dct.inverse(u_x * c2)?;
    // 3. Posterior noise.
    match xi_u {
        Some(xi) => Ok(mean + dct.inverse(xi * std)?),
        None => Ok(mean),
    }
}
