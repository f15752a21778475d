//! Euler and Heun steps of the probability-flow ODE (Karras et al. 2022, Alg. 1 and 2 without
//! churn; k-diffusion's `sample_euler`, `sample_heun`), coordinate by coordinate in the process's
//! diagonal basis. Each coordinate has its own variance-exploding form `x̄ = u/α`, `σ̄ = σ/α`,
//! where the ODE is `dx̄/dσ̄ = (x̄ − D)/σ̄`:
//!
//! ```text
//! Euler:  x̄' = x̄_t + Δ d,  d = (x̄_t − D_t)/σ̄_t,  Δ = σ̄_s − σ̄_t       (this is DDIM with η = 0)
//! Heun:   x̄_s = x̄_t + Δ (d + d')/2,  d' = (x̄' − D(x̄', s))/σ̄_s
//! ```
//! In the state's (VP) terms, `u = α x̄`:
//! `u_s = (α_s/α_t)(1 + Δ/(2σ̄_t)) u_t − α_s Δ/(2σ̄_t) D_t + Δ/(2σ̄_s) u' − α_s Δ/(2σ̄_s) D'`.
//!
//! Evaluations: a segment with K of them spends one on the final step to σ = 0 when it is the
//! last (the result is `D` there, as k-diffusion's Euler step to σ = 0 gives), and the rest on
//! intervals: ⌊E/2⌋ Heun intervals (two each), then one Euler interval when E is odd. With K odd
//! in one segment this is exactly k-diffusion's `sample_heun` on `(K + 1)/2` levels.

use burn::tensor::Tensor;

use super::Sampling;
use super::ancestral::ddim_update;
use super::rungs::{Rung, coef_over, denoise, rungs, sigma_bar};
use super::segments::Segment;
use crate::Result;
use crate::process::Coord;

/// Heun intervals and Euler intervals of a segment with `k` evaluations (`second_order`: Heun,
/// otherwise only Euler).
pub(super) fn intervals(k: usize, last_segment: bool, second_order: bool) -> (usize, usize) {
    let e = if last_segment { k - 1 } else { k };
    if second_order { (e / 2, e % 2) } else { (0, e) }
}

/// One segment of Euler (`second_order = false`) or Heun sampling from `z` at `seg.from`; in the
/// last segment the result is the final `x̂`, otherwise the state at `seg.to`.
pub(super) fn run_segment(
    s: &Sampling<'_>,
    seg: Segment,
    last_segment: bool,
    z: Tensor<4>,
    second_order: bool,
    progress: (usize, usize),
    on_step: &mut dyn FnMut(usize, usize),
) -> Result<Tensor<4>> {
    let p = s.process;
    let (heun, euler) = intervals(seg.steps, last_segment, second_order);
    let device = z.device();
    let ladder = rungs(s, seg, heun + euler + 1, z.dims())?;
    let shape = z.dims();
    let mut u = p.to_basis(z)?;
    let mut done = progress.0;
    for i in 0..heun + euler {
        let (rt, rs) = (&ladder[i], &ladder[i + 1]);
        let d = denoise(s, &u, shape, rt.level)?;
        done += 1;
        on_step(done, progress.1);
        let u_euler = ddim_update(u.clone(), d.clone(), None, &rt.diag, &rs.diag, 0.0);
        if i >= heun {
            u = u_euler;
            continue;
        }
        let d2 = denoise(s, &u_euler, shape, rs.level)?;
        done += 1;
        on_step(done, progress.1);
        u = heun_update([&u, &d, &u_euler, &d2], rt, rs, &device);
    }
    if last_segment {
        let d = denoise(s, &u, shape, ladder[heun + euler].level)?;
        done += 1;
        on_step(done, progress.1);
        return p.to_state(d, shape);
    }
    p.to_state(u, shape)
}

/// Heun's correction from `[u_t, D_t, u', D']` (the Euler predictor `u'` and the evaluation
/// there), in the basis.
fn heun_update(
    [u, d, u_euler, d2]: [&Tensor<4>; 4],
    rt: &Rung,
    rs: &Rung,
    device: &burn::tensor::Device,
) -> Tensor<4> {
    let both = [rt, rs];
    let delta = |c: &[Coord]| sigma_bar(c[1]) - sigma_bar(c[0]);
    let on_u = coef_over(&both, device, |c| {
        c[1].alpha / c[0].alpha * (1.0 + delta(c) / (2.0 * sigma_bar(c[0])))
    });
    let on_d = coef_over(&both, device, |c| {
        -c[1].alpha * delta(c) / (2.0 * sigma_bar(c[0]))
    });
    let on_u2 = coef_over(&both, device, |c| delta(c) / (2.0 * sigma_bar(c[1])));
    let on_d2 = coef_over(&both, device, |c| {
        -c[1].alpha * delta(c) / (2.0 * sigma_bar(c[1]))
    });
    on_u.mul(u.clone()) + on_d.mul(d.clone()) + on_u2.mul(u_euler.clone()) + on_d2.mul(d2.clone())
}
