//! DPM-Solver++(2M) (Lu et al. 2022, Alg. 2), written in VP form, coordinate by coordinate in the
//! process's diagonal basis.
//!
//! In k-diffusion's variance-exploding form, `x = z/α`, `σ_VE = σ/α = e^{−λ/2}`, `h = λ_s/2 − λ_t/2`:
//! `x_s = (σ_s/σ_t) x_t − expm1(−h) D'`. Multiplying by `α_s` gives the VP update used here:
//! `z_s = (σ_s/σ_t) z_t − α_s expm1(−h) D'`, with
//! `D' = (1 + 1/(2r)) D_i − (1/(2r)) D_{i−1}`, `r = h_prev/h` (first step and the step to σ = 0: `D' = D_i`).
//! Levels are uniform in the scalar schedule's λ unless another spacing is asked for; the last
//! segment ends with a final step to σ = 0 (the setting that keeps it stable at ≤ 10 steps).

use burn::tensor::Tensor;

use super::Sampling;
use super::segments::Segment;
use super::spacing::ladder;
use crate::Result;
use crate::process::coef;

/// One segment of DPM-Solver++(2M) from `z` at `seg.from`: `seg.steps` levels (uniform in λ by
/// default). In the last segment they run from `from` to `to`, and the evaluation at `to` is the
/// result (the step to σ = 0); otherwise the segment steps on to `to` and returns the state there.
pub(super) fn run_segment(
    s: &Sampling<'_>,
    seg: Segment,
    last_segment: bool,
    z: Tensor<4>,
    progress: (usize, usize),
    on_step: &mut dyn FnMut(usize, usize),
) -> Result<Tensor<4>> {
    let p = s.process;
    let n = seg.steps;
    let levels = ladder(
        super::rule(s),
        p,
        seg.from,
        seg.to,
        if last_segment { n } else { n + 1 },
    );
    let mut z = z;
    let mut prev: Option<(Tensor<4>, Vec<f64>)> = None; // (D_{i−1} in the basis, h_{i−1})
    for i in 0..n {
        let lt = levels[i];
        let d = s.denoiser.denoise(z.clone(), lt)?.x0_hat;
        let d = if s.clip_x0 { d.clamp(-1.0, 1.0) } else { d };
        on_step(progress.0 + i + 1, progress.1);
        let Some(&ls) = levels.get(i + 1) else {
            return Ok(d); // final step to σ = 0
        };
        let device = z.device();
        let (dt, ds) = super::diagonals(p, lt, ls, z.dims())?;
        let (h, h_shape) = dt.zip_with(&ds, |t, s| (s.log_snr - t.log_snr) / 2.0);
        let d = p.to_basis(d)?;
        let d_prime = match prev.take() {
            Some((d_prev, h_prev)) => {
                let r: Vec<f64> = h_prev.iter().zip(&h).map(|(hp, h)| hp / h).collect();
                let now = coef(
                    (r.iter().map(|r| 1.0 + 1.0 / (2.0 * r)).collect(), h_shape),
                    &device,
                );
                let before = coef(
                    (r.iter().map(|r| 1.0 / (2.0 * r)).collect(), h_shape),
                    &device,
                );
                now.mul(d.clone()) - before.mul(d_prev)
            }
            None => d.clone(),
        };
        let keep = coef(dt.zip_with(&ds, |t, s| s.sigma / t.sigma), &device);
        let jump = coef(
            dt.zip_with(&ds, |t, s| {
                s.alpha * (-((s.log_snr - t.log_snr) / 2.0)).exp_m1()
            }),
            &device,
        );
        let shape = z.dims();
        let u = keep.mul(p.to_basis(z)?) - jump.mul(d_prime);
        z = p.to_state(u, shape)?;
        prev = Some((d, h));
    }
    Ok(z)
}
