//! UniPC (Zhao et al. 2023): the UniP-2 predictor and UniC corrector with `B(h) = e^h − 1`
//! ("bh2"), data prediction, as diffusers' `UniPCMultistepScheduler` runs them with its defaults
//! (`solver_order = 2`, `lower_order_final`), coordinate by coordinate in the process's diagonal
//! basis. With `h = λ_b/2 − λ_a/2` (diffusers' λ is half ours), `ĥ = −h`, `φ₁ = e^{ĥ} − 1`,
//! `B = e^{ĥ} − 1`:
//!
//! ```text
//! predictor a → b:  u_b = (σ_b/σ_a) u_a − α_b φ₁ D_a − α_b B · ½ (D_{a−1} − D_a)/r,
//!                   r = (λ_{a−1} − λ_a)/(2h)                       (order 1: no last term)
//! corrector at b, from the state u_a the predictor started at, with D_b at the predicted state:
//!   order 1:  u_b = (σ_b/σ_a) u_a − α_b φ₁ D_a − α_b B · ½ (D_b − D_a)
//!   order 2:  … − α_b B (ρ₀ (D_{a−1} − D_a)/r + ρ₁ (D_b − D_a)),
//!             [1 1; r 1] (ρ₀, ρ₁) = (b₁, b₂),  b₁ = (φ₁/ĥ − 1)/B,  b₂ = 2((φ₁/ĥ − 1)/ĥ − ½)/B
//! ```
//! The predictor is first order on a segment's first and last step (warm-up and
//! `lower_order_final`), second order otherwise; the corrector has the order of the predictor
//! step it corrects. The last segment ends with the step to σ = 0, whose result is `D`.

use burn::tensor::{Device, Tensor};

use super::Sampling;
use super::rungs::{Rung, coef_over, denoise, half_step, one_per_level, rungs};
use super::segments::Segment;
use crate::Result;
use crate::process::Coord;

/// One segment from `z` at `seg.from`; in the last segment the result is the final `x̂`,
/// otherwise the state at `seg.to`.
pub(super) fn run_segment(
    s: &Sampling<'_>,
    seg: Segment,
    last_segment: bool,
    z: Tensor<4>,
    progress: (usize, usize),
    on_step: &mut dyn FnMut(usize, usize),
) -> Result<Tensor<4>> {
    let p = s.process;
    let k = seg.steps;
    let device = z.device();
    let ladder = rungs(s, seg, one_per_level(seg, last_segment), z.dims())?;
    let shape = z.dims();
    let mut u = p.to_basis(z)?;
    let mut ds: Vec<Tensor<4>> = Vec::with_capacity(k);
    // The state the last predictor step started from, and that step's order.
    let mut started: Option<(Tensor<4>, usize)> = None;
    for i in 0..k {
        let d = denoise(s, &u, shape, ladder[i].level)?;
        on_step(progress.0 + i + 1, progress.1);
        let Some(next) = ladder.get(i + 1) else {
            return p.to_state(d, shape); // the step to σ = 0
        };
        if let Some((u_prev, order)) = started.take() {
            let prev2 = (order == 2).then(|| (&ds[i - 2], &ladder[i - 2]));
            u = corrector(
                &u_prev,
                [&ds[i - 1], &d],
                prev2,
                [&ladder[i - 1], &ladder[i]],
                &device,
            );
        }
        let order = if i == 0 || i + 1 == k { 1 } else { 2 };
        let prev = (order == 2).then(|| (&ds[i - 1], &ladder[i - 1]));
        let predicted = predictor(&u, &d, prev, [&ladder[i], next], &device);
        started = Some((u, order));
        u = predicted;
        ds.push(d);
    }
    p.to_state(u, shape)
}

/// `ĥ = −h`, `φ₁ = B = e^{ĥ} − 1` of the step `a → b`.
fn hat(a: Coord, b: Coord) -> (f64, f64) {
    let hh = -half_step(a, b);
    (hh, hh.exp_m1())
}

/// The UniP step from `u` (at `a`, with `D_a = d`) to `b`; `prev`: `D_{a−1}` and its level, for
/// the second-order step.
fn predictor(
    u: &Tensor<4>,
    d: &Tensor<4>,
    prev: Option<(&Tensor<4>, &Rung)>,
    [a, b]: [&Rung; 2],
    device: &Device,
) -> Tensor<4> {
    let keep = coef_over(&[a, b], device, |c| c[1].sigma / c[0].sigma);
    let on_d = coef_over(&[a, b], device, |c| -c[1].alpha * hat(c[0], c[1]).1);
    let x = keep.mul(u.clone()) + on_d.mul(d.clone());
    match prev {
        None => x,
        Some((d_prev, r_prev)) => {
            // − α_b B · ½ (D_{a−1} − D_a)/r,  r = (λ_{a−1} − λ_a)/(2h)
            let w = coef_over(&[r_prev, a, b], device, |c| {
                let r = half_step(c[1], c[0]) / half_step(c[1], c[2]);
                -c[2].alpha * hat(c[1], c[2]).1 * 0.5 / r
            });
            x + w.mul(d_prev.clone() - d.clone())
        }
    }
}

/// The UniC correction of the state at `b`: `u_a` the state the predictor started from, `D_a`
/// and `D_b` (at the predicted state); `prev2`: `D_{a−1}` and its level for order 2.
fn corrector(
    u_a: &Tensor<4>,
    [d_a, d_b]: [&Tensor<4>; 2],
    prev2: Option<(&Tensor<4>, &Rung)>,
    [a, b]: [&Rung; 2],
    device: &Device,
) -> Tensor<4> {
    let keep = coef_over(&[a, b], device, |c| c[1].sigma / c[0].sigma);
    let on_d = coef_over(&[a, b], device, |c| -c[1].alpha * hat(c[0], c[1]).1);
    let x = keep.mul(u_a.clone()) + on_d.mul(d_a.clone());
    let slope = d_b.clone() - d_a.clone();
    match prev2 {
        None => {
            let w = coef_over(&[a, b], device, |c| -c[1].alpha * hat(c[0], c[1]).1 * 0.5);
            x + w.mul(slope)
        }
        Some((d_prev, r_prev)) => {
            let levels = [r_prev, a, b];
            let rhos = |c: &[Coord]| {
                let (hh, bh) = hat(c[1], c[2]);
                let r = half_step(c[1], c[0]) / half_step(c[1], c[2]);
                let k1 = bh / hh - 1.0;
                let (b1, b2) = (k1 / bh, 2.0 * (k1 / hh - 0.5) / bh);
                let rho0 = (b1 - b2) / (1.0 - r);
                (rho0, b1 - rho0, r)
            };
            let w_prev = coef_over(&levels, device, |c| {
                let (rho0, _, r) = rhos(c);
                -c[2].alpha * hat(c[1], c[2]).1 * rho0 / r
            });
            let w_slope = coef_over(&levels, device, |c| {
                -c[2].alpha * hat(c[1], c[2]).1 * rhos(c).1
            });
            x + w_prev.mul(d_prev.clone() - d_a.clone()) + w_slope.mul(slope)
        }
    }
}
