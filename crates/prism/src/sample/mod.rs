//! ⑨ Samplers. They see only a [`Denoise`] and the process; the step count is an argument.
//!
//! Time is split into [segments] at the process's resolution switches (one segment for a process
//! at one resolution); each segment gets its share of the K network evaluations, and the process
//! moves the state across each switch. Grids inside a segment `[from, to]`:
//! - DDPM and DDIM: `t_i = from − (from − to)·i/K`, `i = 0..K`; the last step of the last
//!   segment lands on `t = 0` without noise, and the process turns `z_0` into the image
//!   (`z_0/α_0`).
//! - DPM-Solver++(2M): levels uniform in λ; the last segment ends with a final step to σ = 0
//!   (the setting that keeps it stable at ≤ 10 steps).
//! - Euler, Heun, DPM-Solver++(2M/3M) SDE, UniPC: Karras et al.'s spacing (ρ = 7) by default,
//!   and the same final step to σ = 0 as k-diffusion and diffusers.
//!
//! Any sampler takes another [`Spacing`] (uniform in `t`, in `λ`, Karras with any ρ) and
//! optional σ̄ bounds. K levels in the last segment (then the step to σ = 0), K + 1 (ending on the
//! switch) in the others; Heun spends two evaluations per interval (see `heun.rs`).
//!
//! DDPM runs the process's own ancestral step. Every other sampler works coordinate by coordinate
//! in the basis where the process is diagonal (pixels for the isotropic process, the DCT for
//! blurring, a Haar packet for Laplacian diffusion), with per-coordinate `α`, `σ`, `λ`; a process without such a basis refuses them.
//!
//! Noise: the stochastic samplers draw i.i.d. standard normal increments from the seeded
//! generator, one per step ([`Noise`]). k-diffusion's SDE samplers default to a `BrownianTree`,
//! whose increments are the same in distribution for a fixed grid but come from one Brownian path
//! shared by every grid (so changing the step count perturbs a sample less); prism's draws depend
//! on the step count. Golden tests feed both sides the same increments.

mod ancestral;
mod dpm_solver;
mod dpm_solver_sde;
mod generate;
mod heun;
mod kind;
mod rungs;
mod segments;
mod spacing;
mod trajectory;
mod unipc;

pub use ancestral::{ddim_step, ddim_update};
pub use generate::{Generate, generate, generate_traced};
pub use kind::SamplerKind;
pub use segments::{Segment, segments};
pub use spacing::{KARRAS_RHO, Spacing, SpacingRule, log_snr_of_sigma_ve, sigma_ve};
pub use trajectory::{Frame, Recording, pick_frames, trajectory_strip};

use burn::tensor::{Device, Tensor};
use rand::RngCore;

use crate::denoiser::Denoise;
use crate::process::{Diagonal, DiffusionProcess, Level};
use crate::tensor::normal;
use crate::{Error, Result};

/// What to run: a sampler of `kind` for `steps` network evaluations of `denoiser` under `process`.
pub struct Sampling<'a> {
    /// The forward process the model was trained for.
    pub process: &'a dyn DiffusionProcess,
    /// The model (with its condition and guidance).
    pub denoiser: &'a dyn Denoise,
    /// The sampler.
    pub kind: SamplerKind,
    /// Network evaluations in all.
    pub steps: usize,
    /// Where the levels go (default: the sampler's own grid over the whole time axis).
    pub spacing: Spacing,
    /// Clip `x̂` to the data range `[-1, 1]` ("static thresholding") inside every step.
    pub clip_x0: bool,
}

/// The standard normal draws of the stochastic samplers: from the seeded generator, or (tests)
/// handed in by a caller that feeds a reference implementation the same draws.
pub struct Noise<'a> {
    /// The generator (also used by the process's resolution switches).
    pub rng: &'a mut dyn RngCore,
    /// Draws to use instead of the generator's, called with the shape wanted.
    pub given: Option<&'a mut dyn FnMut([usize; 4]) -> Tensor<4>>,
}

impl Noise<'_> {
    /// A standard normal tensor of `shape`.
    pub fn draw(&mut self, shape: [usize; 4], device: &Device) -> Tensor<4> {
        match &mut self.given {
            Some(f) => f(shape),
            None => normal(shape, self.rng, device),
        }
    }
}

/// Runs `s` from the prior sample `z1` (its shape is the process's state shape at `t = 1` for
/// outputs of shape `out`). `on_step(i, steps)` is called after each evaluation (progress bars).
pub fn sample(
    s: &Sampling<'_>,
    z1: Tensor<4>,
    out: [usize; 4],
    rng: &mut dyn RngCore,
    on_step: &mut dyn FnMut(usize, usize),
) -> Result<Tensor<4>> {
    let mut noise = Noise { rng, given: None };
    sample_with_noise(s, z1, out, &mut noise, on_step)
}

/// [`sample`] with the sampler's noise from `noise`.
pub fn sample_with_noise(
    s: &Sampling<'_>,
    z1: Tensor<4>,
    out: [usize; 4],
    noise: &mut Noise<'_>,
    on_step: &mut dyn FnMut(usize, usize),
) -> Result<Tensor<4>> {
    if s.steps == 0 {
        return Err(Error::invalid(
            "the number of sampling steps must be at least 1",
        ));
    }
    check_sampler(s.process, s.kind)?;
    if s.spacing.is_bounded() && !s.kind.ends_with_denoised() {
        return Err(Error::invalid(format!(
            "--sigma-min/--sigma-max do not apply to '{}': its grid lands on t = 0, where the process \
             finishes the image; use a sampler that ends with a step to σ = 0 (euler, heun, dpmpp-2m, \
             dpmpp-2m-sde, dpmpp-3m-sde, unipc)",
            s.kind
        )));
    }
    let segs = segments::bounded(s.process, segments(s.process, s.steps)?, &s.spacing)?;
    let mut z = z1;
    let mut done = 0;
    for (k, seg) in segs.iter().enumerate() {
        let last = k + 1 == segs.len();
        let progress = (done, s.steps);
        z = match s.kind {
            SamplerKind::Ddpm | SamplerKind::Ddim { .. } => {
                ancestral::run_segment(s, *seg, last, z, noise, progress, on_step)?
            }
            SamplerKind::DpmPp2m => dpm_solver::run_segment(s, *seg, last, z, progress, on_step)?,
            SamplerKind::Euler => heun::run_segment(s, *seg, last, z, false, progress, on_step)?,
            SamplerKind::Heun => heun::run_segment(s, *seg, last, z, true, progress, on_step)?,
            SamplerKind::DpmPp2mSde | SamplerKind::DpmPp3mSde => {
                dpm_solver_sde::run_segment(s, *seg, last, z, noise, progress, on_step)?
            }
            SamplerKind::UniPc => unipc::run_segment(s, *seg, last, z, progress, on_step)?,
        };
        done += seg.steps;
        if !last {
            z = s.process.switch(z, seg.to, out, noise.rng)?;
        }
    }
    if s.kind.ends_with_denoised() {
        Ok(z) // already the final x̂
    } else {
        s.process.finish(z)
    }
}

/// The spacing rule `s` uses.
fn rule(s: &Sampling<'_>) -> SpacingRule {
    s.spacing.rule.unwrap_or(s.kind.default_spacing())
}

/// Checks that `kind` can sample `process`: every process has its ancestral step (`ddpm`); the
/// other samplers need a basis where the process is diagonal.
pub fn check_sampler(process: &dyn DiffusionProcess, kind: SamplerKind) -> Result<()> {
    if kind != SamplerKind::Ddpm && !process.is_diagonal() {
        return Err(Error::invalid(format!(
            "the sampler '{kind}' needs a process that is diagonal in some basis, but this model uses the {} \
             process; use the sampler 'ddpm' (its ancestral step)",
            process.kind()
        )));
    }
    Ok(())
}

/// The process's diagonal scales at `level` for states of `shape`, or an error naming the
/// process when it has none.
fn diagonal(process: &dyn DiffusionProcess, level: Level, shape: [usize; 4]) -> Result<Diagonal> {
    process.diagonal(level, shape).ok_or_else(|| {
        Error::invalid(format!(
            "the {} process has no diagonal basis for DDIM, DPM-Solver++, Euler, Heun or UniPC",
            process.kind()
        ))
    })
}

/// [`diagonal`] at `t` and at `s`.
fn diagonals(
    process: &dyn DiffusionProcess,
    t: Level,
    s: Level,
    shape: [usize; 4],
) -> Result<(Diagonal, Diagonal)> {
    Ok((diagonal(process, t, shape)?, diagonal(process, s, shape)?))
}

#[cfg(test)]
mod tests;

#[cfg(test)]
#[path = "blurring_tests.rs"]
mod blurring_tests;

#[cfg(test)]
#[path = "laplacian_tests.rs"]
mod laplacian_tests;

#[cfg(test)]
#[path = "kdiffusion_tests.rs"]
mod kdiffusion_tests;
