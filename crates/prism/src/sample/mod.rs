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
//!
//! DDPM runs the process's own ancestral step. DDIM and DPM-Solver++ work coordinate by
//! coordinate in the basis where the process is diagonal (pixels for the isotropic process, the
//! DCT for blurring, a Haar packet for Laplacian diffusion), with per-coordinate `α`, `σ`; a
//! process without such a basis refuses them.

mod ancestral;
mod dpm_solver;
mod generate;
mod kind;
mod segments;

pub use ancestral::{ddim_step, ddim_update};
pub use generate::{Generate, generate};
pub use kind::SamplerKind;
pub use segments::{Segment, segments};

use burn::tensor::Tensor;
use rand::RngCore;

use crate::denoiser::Denoise;
use crate::process::{Diagonal, DiffusionProcess, Level};
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
    /// Clip `x̂` to the data range `[-1, 1]` ("static thresholding") inside every step.
    pub clip_x0: bool,
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
    if s.steps == 0 {
        return Err(Error::invalid(
            "the number of sampling steps must be at least 1",
        ));
    }
    check_sampler(s.process, s.kind)?;
    let segs = segments(s.process, s.steps)?;
    let mut z = z1;
    let mut done = 0;
    for (k, seg) in segs.iter().enumerate() {
        let last = k + 1 == segs.len();
        let progress = (done, s.steps);
        z = match s.kind {
            SamplerKind::Ddpm | SamplerKind::Ddim { .. } => {
                ancestral::run_segment(s, *seg, last, z, rng, progress, on_step)?
            }
            SamplerKind::DpmPp2m => dpm_solver::run_segment(s, *seg, last, z, progress, on_step)?,
        };
        done += seg.steps;
        if !last {
            z = s.process.switch(z, seg.to, out, rng)?;
        }
    }
    match s.kind {
        SamplerKind::DpmPp2m => Ok(z), // already the final x̂
        _ => s.process.finish(z),
    }
}

/// Checks that `kind` can sample `process`: every process has its ancestral step (`ddpm`); DDIM
/// and DPM-Solver++ need a basis where the process is diagonal.
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

/// The process's diagonal scales at `t` and `s` for states of `shape`, or an error naming the
/// process when it has none.
fn diagonals(
    process: &dyn DiffusionProcess,
    t: Level,
    s: Level,
    shape: [usize; 4],
) -> Result<(Diagonal, Diagonal)> {
    match (process.diagonal(t, shape), process.diagonal(s, shape)) {
        (Some(dt), Some(ds)) => Ok((dt, ds)),
        _ => Err(Error::invalid(format!(
            "the {} process has no diagonal basis for DDIM or DPM-Solver++",
            process.kind()
        ))),
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
#[path = "blurring_tests.rs"]
mod blurring_tests;

#[cfg(test)]
#[path = "laplacian_tests.rs"]
mod laplacian_tests;
