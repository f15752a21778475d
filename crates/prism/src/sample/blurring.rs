//! The denoising step of blurring diffusion (Hoogeboom & Salimans 2023, the paper's pseudo-code;
//! formula sheet §3) and the ancestral sampler built from it.
//!
//! ```text
//! u_t = DCT(z_t)
//! μ   = IDCT(c1 ⊙ u_t) + IDCT(c2 ⊙ (u_t − σ_t DCT(ε̂)))
//! z_s = μ + IDCT(sqrt(σ²_den) ⊙ ξ_u)
//! ```
//! This is the Gaussian posterior `q(u_s | u_t, û_0)` per frequency with `û_0 = (u_t − σ_t DCT(ε̂))/α_t`;
//! with `σ_B,max = 0` it is [`ddpm_step`](super::ddpm_step).

use burn::tensor::Tensor;
use rand::Rng;

use crate::Result;
use crate::denoiser::Denoise;
use crate::process::{BlurringProcess, StepCoefficients};
use crate::schedule::LogSnrSchedule;
use crate::tensor::normal;
use crate::transform::Dct2d;

/// One denoising step `t → s` with coefficients `c` (from
/// [`BlurringProcess::step_coefficients`]), the network's `eps_hat` at `z_t`, and frequency-space
/// noise `xi_u` (`None`: the posterior mean, used for the final step).
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

/// Ancestral sampling with [`blurring_step`] on the grid `t_i = 1 − i/K`, `i = 0..K`, from the
/// prior sample `z1`. As for DDPM, the last step (to `t = 0`) takes the mean and the result is
/// `IDCT(DCT(z_0)/α_0)`. Each step's noise is drawn in pixel space and transformed, `ξ_u = DCT(ξ)`;
/// the DCT is orthonormal, so `ξ_u ~ N(0, I)` as in the pseudo-code, and with `σ_B,max = 0` the
/// trajectory equals DDPM's for the same random stream.
pub fn blurring_sample<R: Rng + ?Sized>(
    process: &BlurringProcess,
    denoiser: &dyn Denoise,
    steps: usize,
    z1: Tensor<4>,
    rng: &mut R,
    clip_x0: bool,
    on_step: &mut dyn FnMut(usize, usize),
) -> Result<Tensor<4>> {
    let shape = z1.dims();
    let [_, _, h, w] = shape;
    let device = z1.device();
    let dct = Dct2d::new(h, w, &device)?;
    let schedule = process.schedule();
    let mut z = z1;
    for i in 0..steps {
        let t = 1.0 - i as f64 / steps as f64;
        let s = 1.0 - (i + 1) as f64 / steps as f64;
        let eps_hat = denoiser.denoise(z.clone(), schedule.log_snr(t)).eps_hat;
        let last = i + 1 == steps;
        let xi_u = if last {
            None
        } else {
            Some(dct.forward(normal(shape, rng, &device))?)
        };
        let c = process.step_coefficients(t, s, h, w);
        z = blurring_step(&dct, &c, z, eps_hat, xi_u, clip_x0)?;
        on_step(i + 1, steps);
    }
    let alpha_0 = process.alpha(0.0, h, w);
    let alpha_0 = Tensor::<4>::from_data(
        burn::tensor::TensorData::new(
            alpha_0.into_iter().map(|v| v as f32).collect::<Vec<f32>>(),
            [1, 1, h, w],
        ),
        &device,
    );
    dct.inverse(dct.forward(z)? / alpha_0)
}

#[cfg(test)]
#[path = "blurring_tests.rs"]
mod tests;
