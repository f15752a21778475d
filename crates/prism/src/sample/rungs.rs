//! What the solvers of the probability-flow ODE and SDE share (Euler, Heun, DPM-Solver++ SDE,
//! UniPC): a segment's levels with the process's per-coordinate scales there, network evaluations
//! seen in the process's diagonal basis, and update coefficients computed coordinate by coordinate
//! from the logSNRs of a few levels.

use burn::tensor::{Device, Tensor};

use super::Sampling;
use super::segments::Segment;
use super::spacing::ladder;
use crate::Result;
use crate::process::{Coef, Coord, Diagonal, Level, coef, zip_all};

/// A level of the grid and the process's per-coordinate scales there.
pub(super) struct Rung {
    /// The level the network is told.
    pub level: Level,
    /// Per-coordinate `α`, `σ`, `λ` in the process's basis.
    pub diag: Diagonal,
}

/// `n` levels of `seg` under `s`'s spacing, with their scales for states of `shape`.
pub(super) fn rungs(
    s: &Sampling<'_>,
    seg: Segment,
    n: usize,
    shape: [usize; 4],
) -> Result<Vec<Rung>> {
    ladder(super::rule(s), s.process, seg.from, seg.to, n)
        .into_iter()
        .map(|level| {
            Ok(Rung {
                level,
                diag: super::diagonal(s.process, level, shape)?,
            })
        })
        .collect()
}

/// The number of levels of a solver that spends one evaluation per level: the segment's K in the
/// last segment (the evaluation at the last level is the step to σ = 0), K + 1 in the others
/// (ending on the switch, where nothing is evaluated).
pub(super) fn one_per_level(seg: Segment, last_segment: bool) -> usize {
    if last_segment {
        seg.steps
    } else {
        seg.steps + 1
    }
}

/// The network's `x̂` (clipped when `s` asks) at the state whose basis coordinates are `u`, in
/// the basis.
pub(super) fn denoise(
    s: &Sampling<'_>,
    u: &Tensor<4>,
    state: [usize; 4],
    level: Level,
) -> Result<Tensor<4>> {
    let z = s.process.to_state(u.clone(), state)?;
    let d = s.denoiser.denoise(z, level)?.x0_hat;
    let d = if s.clip_x0 { d.clamp(-1.0, 1.0) } else { d };
    s.process.to_basis(d)
}

/// The coefficient `f(coords of rungs[0], coords of rungs[1], …)`, coordinate by coordinate.
pub(super) fn coef_over(rungs: &[&Rung], device: &Device, f: impl Fn(&[Coord]) -> f64) -> Coef {
    let ds: Vec<&Diagonal> = rungs.iter().map(|r| &r.diag).collect();
    coef(zip_all(&ds, f), device)
}

/// Half the logSNR step from `a` to `b`: DPM-Solver's `h = λ_b/2 − λ_a/2` (its λ is half ours).
pub(super) fn half_step(a: Coord, b: Coord) -> f64 {
    (b.log_snr - a.log_snr) / 2.0
}

/// `σ̄ = σ/α` of one coordinate: its variance-exploding noise level.
pub(super) fn sigma_bar(c: Coord) -> f64 {
    c.sigma / c.alpha
}
