//! DPM-Solver++(2M) SDE and DPM-Solver++(3M) SDE (Lu et al. 2022; k-diffusion's
//! `sample_dpmpp_2m_sde` with its default midpoint correction, and `sample_dpmpp_3m_sde`, both
//! with η = 1), coordinate by coordinate in the process's diagonal basis.
//!
//! k-diffusion writes them in variance-exploding form with `h = λ_s/2 − λ_t/2` (its λ is half
//! ours) and `ĥ = (1 + η) h`; multiplying by `α_s` gives the state's update:
//!
//! ```text
//! u_s = (σ_s/σ_t) e^{−ηh} u_t + α_s (1 − e^{−ĥ}) D_i + α_s · (multistep correction)
//!       + σ_s sqrt(1 − e^{−2ηh}) ξ
//! 2M:  correction = ½ (1 − e^{−ĥ}) (1/r) (D_i − D_{i−1}),  r = h_{i−1}/h
//! 3M:  φ₂ = (e^{−ĥ} − 1)/ĥ + 1,  φ₃ = φ₂/ĥ − ½,  r₀ = h_{i−1}/h,  r₁ = h_{i−2}/h
//!      d₀ = (D_i − D_{i−1})/r₀,  d₁ = (D_{i−1} − D_{i−2})/r₁
//!      correction = φ₂ (d₀ + (d₀ − d₁) r₀/(r₀ + r₁)) − φ₃ (d₀ − d₁)/(r₀ + r₁)
//!      (one previous D only: φ₂ d₀)
//! ```
//! The history starts afresh in every segment; the last segment ends with the step to σ = 0,
//! whose result is `D`. ξ is standard normal in the state, taken to the (orthonormal) basis.

use burn::tensor::Tensor;

use super::rungs::{coef_over, denoise, half_step, one_per_level, rungs};
use super::segments::Segment;
use super::{Noise, SamplerKind, Sampling};
use crate::Result;
use crate::process::Coord;

/// η: 1, k-diffusion's default (the reverse SDE).
const ETA: f64 = 1.0;

/// One segment from `z` at `seg.from`; in the last segment the result is the final `x̂`,
/// otherwise the state at `seg.to`.
pub(super) fn run_segment(
    s: &Sampling<'_>,
    seg: Segment,
    last_segment: bool,
    z: Tensor<4>,
    noise: &mut Noise<'_>,
    progress: (usize, usize),
    on_step: &mut dyn FnMut(usize, usize),
) -> Result<Tensor<4>> {
    let p = s.process;
    let third_order = s.kind == SamplerKind::DpmPp3mSde;
    let shape = z.dims();
    let device = z.device();
    let ladder = rungs(s, seg, one_per_level(seg, last_segment), shape)?;
    let mut u = p.to_basis(z)?;
    // The previous evaluations, latest last, with the index of their level.
    let mut history: Vec<(Tensor<4>, usize)> = Vec::new();
    for i in 0..seg.steps {
        let (rt, d) = (&ladder[i], denoise(s, &u, shape, ladder[i].level)?);
        on_step(progress.0 + i + 1, progress.1);
        let Some(rs) = ladder.get(i + 1) else {
            return p.to_state(d, shape); // the step to σ = 0
        };
        let both = [rt, rs];
        let keep = coef_over(&both, &device, |c| {
            c[1].sigma / c[0].sigma * (-ETA * half_step(c[0], c[1])).exp()
        });
        let jump = coef_over(&both, &device, |c| {
            -c[1].alpha * (-(1.0 + ETA) * half_step(c[0], c[1])).exp_m1()
        });
        let mut next = keep.mul(u) + jump.mul(d.clone());
        let back: Vec<&(Tensor<4>, usize)> = history.iter().rev().collect();
        match (third_order, back.as_slice()) {
            (_, []) => {}
            (false, [(d1, j), ..]) | (true, [(d1, j)]) => {
                // 2M: ½(1 − e^{−ĥ})/r, 3M with one previous D: φ₂/r; times α_s, on D_i − D_{i−1}.
                let c = coef_over(&[&ladder[*j], rt, rs], &device, |c| {
                    let (h1, h) = (half_step(c[0], c[1]), half_step(c[1], c[2]));
                    let he = (1.0 + ETA) * h;
                    let w = if third_order {
                        phi2(he)
                    } else {
                        -0.5 * (-he).exp_m1()
                    };
                    c[2].alpha * w * h / h1
                });
                next = next + c.mul(d.clone() - d1.clone());
            }
            (true, [(d1, j1), (d2, j2), ..]) => {
                let levels = [&ladder[*j2], &ladder[*j1], rt, rs];
                let w = |k: usize| {
                    coef_over(&levels, &device, move |c| {
                        c[3].alpha * third_order_weights(c)[k]
                    })
                };
                next = next + w(0).mul(d.clone()) + w(1).mul(d1.clone()) + w(2).mul(d2.clone());
            }
        }
        let sd = coef_over(&both, &device, |c| {
            c[1].sigma * (-(-2.0 * ETA * half_step(c[0], c[1])).exp_m1()).sqrt()
        });
        u = next + sd.mul(p.to_basis(noise.draw(shape, &device))?);
        history.push((d, i));
        if history.len() > 2 {
            history.remove(0);
        }
    }
    p.to_state(u, shape)
}

/// `φ₂(ĥ) = (e^{−ĥ} − 1)/ĥ + 1`.
fn phi2(he: f64) -> f64 {
    (-he).exp_m1() / he + 1.0
}

/// The 3M correction's weights on `(D_i, D_{i−1}, D_{i−2})` for one coordinate, from the
/// coordinates at levels `i−2, i−1, i, i+1`.
fn third_order_weights(c: &[Coord]) -> [f64; 3] {
    let (h2, h1, h) = (
        half_step(c[0], c[1]),
        half_step(c[1], c[2]),
        half_step(c[2], c[3]),
    );
    let he = (1.0 + ETA) * h;
    let (r0, r1) = (h1 / h, h2 / h);
    let (p2, p3) = (phi2(he), phi2(he) / he - 0.5);
    let d0 = [1.0 / r0, -1.0 / r0, 0.0];
    let diff = [1.0 / r0, -1.0 / r0 - 1.0 / r1, 1.0 / r1];
    std::array::from_fn(|k| {
        let d1 = d0[k] + diff[k] * r0 / (r0 + r1);
        let d2 = diff[k] / (r0 + r1);
        p2 * d1 - p3 * d2
    })
}
