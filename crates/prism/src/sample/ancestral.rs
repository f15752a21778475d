//! Ancestral (DDPM) and DDIM sampling on K + 1 levels of each segment, by default the grid
//! `t_i = from − (from − to)·i/K`.
//! The ancestral step is the process's own posterior step; DDIM works coordinate by coordinate in
//! the process's diagonal basis (formula sheet §1):
//!
//! ```text
//! c = −expm1(λ_t − λ_s),   σ̃² = η² σ_s² c
//! ε̂ = (z_t − α_t x̂)/σ_t,   z_s = α_s x̂ + sqrt(σ_s² − σ̃²) ε̂ + σ̃ ξ
//! ```
//! η = 1 reproduces the DDPM step, η = 0 is deterministic.

use burn::tensor::Tensor;

use super::segments::Segment;
use super::spacing::ladder;
use super::{Noise, SamplerKind, Sampling};
use crate::Result;
use crate::process::{AncestralStep, Diagonal, Level, coef};

/// The DDIM(η) update of a state `u_t` towards `u_x` (the prediction `x̂`), both in the basis
/// where `dt` and `ds` (the scales at `t` and `s`) are diagonal; `xi_u` is standard normal noise
/// in that basis (`None`: none).
pub fn ddim_update(
    u_t: Tensor<4>,
    u_x: Tensor<4>,
    xi_u: Option<Tensor<4>>,
    dt: &Diagonal,
    ds: &Diagonal,
    eta: f64,
) -> Tensor<4> {
    let device = u_t.device();
    let var = |t: crate::process::Coord, s: crate::process::Coord| {
        let c = -(t.log_snr - s.log_snr).exp_m1();
        eta * eta * s.sigma * s.sigma * c
    };
    let a_t = coef(dt.map(|c| c.alpha), &device);
    let s_t = coef(dt.map(|c| c.sigma), &device);
    let a_s = coef(ds.map(|c| c.alpha), &device);
    let keep = coef(
        dt.zip_with(ds, |t, s| (s.sigma * s.sigma - var(t, s)).max(0.0).sqrt()),
        &device,
    );
    let eps_hat = s_t.div(u_t - a_t.mul(u_x.clone()));
    let u_s = a_s.mul(u_x) + keep.mul(eps_hat);
    match xi_u {
        Some(xi) => u_s + coef(dt.zip_with(ds, |t, s| var(t, s).sqrt()), &device).mul(xi),
        None => u_s,
    }
}

/// The isotropic DDIM step between logSNRs `log_snr_t` and `log_snr_s` (the scalar formula).
pub fn ddim_step(
    z_t: Tensor<4>,
    x0_hat: Tensor<4>,
    xi: Option<Tensor<4>>,
    log_snr_t: f64,
    log_snr_s: f64,
    eta: f64,
) -> Tensor<4> {
    ddim_update(
        z_t,
        x0_hat,
        xi,
        &Diagonal::isotropic(log_snr_t),
        &Diagonal::isotropic(log_snr_s),
        eta,
    )
}

/// One segment of ancestral or DDIM sampling from `z` at `seg.from`. In the last segment the final
/// step lands on `t = 0` without noise; otherwise the segment ends with a noisy state at
/// `seg.to`. `done` evaluations came before; `on_step(done + i, total)` follows each one.
pub(super) fn run_segment(
    s: &Sampling<'_>,
    seg: Segment,
    last_segment: bool,
    z: Tensor<4>,
    noise: &mut Noise<'_>,
    progress: (usize, usize),
    on_step: &mut dyn FnMut(usize, usize),
) -> Result<Tensor<4>> {
    let eta = match s.kind {
        SamplerKind::Ddim { eta } => eta,
        _ => 1.0,
    };
    let p = s.process;
    let n = seg.steps;
    let levels = ladder(super::rule(s), p, seg.from, seg.to, n + 1);
    let mut z = z;
    for i in 0..n {
        let (t, s_level) = (levels[i], levels[i + 1]);
        let pred = s.denoiser.denoise(z.clone(), t)?;
        let last = last_segment && i + 1 == n;
        let shape = z.dims();
        let xi = (!last && eta > 0.0).then(|| noise.draw(shape, &z.device()));
        z = if s.kind == SamplerKind::Ddpm {
            p.ancestral_step(AncestralStep {
                z_t: z,
                pred,
                t,
                s: s_level,
                noise: xi,
                clip_x0: s.clip_x0,
            })?
        } else {
            ddim(s, z, pred.x0_hat, xi, t, s_level, eta)?
        };
        on_step(progress.0 + i + 1, progress.1);
    }
    Ok(z)
}

fn ddim(
    s: &Sampling<'_>,
    z: Tensor<4>,
    x0_hat: Tensor<4>,
    xi: Option<Tensor<4>>,
    t: Level,
    s_level: Level,
    eta: f64,
) -> Result<Tensor<4>> {
    let p = s.process;
    let shape = z.dims();
    let (dt, ds) = super::diagonals(p, t, s_level, shape)?;
    let x0_hat = if s.clip_x0 {
        x0_hat.clamp(-1.0, 1.0)
    } else {
        x0_hat
    };
    let xi_u = xi.map(|xi| p.to_basis(xi)).transpose()?;
    let u = ddim_update(p.to_basis(z)?, p.to_basis(x0_hat)?, xi_u, &dt, &ds, eta);
    p.to_state(u, shape)
}
