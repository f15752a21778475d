//! The Laplacian process in its diagonal basis, the orthonormal Haar packet of the state
//! ([`crate::transform::haar_packet`] with `L = K − 1 − j` levels at level `j`): per-coordinate
//! scales, the conversion of a network's output (per-coordinate `v` or `x`), the training target
//! and the ancestral step. Band `k` of the state has `α = c_j a d_k`; `σ = c_j σ/2ʲ` for all.

use burn::tensor::{Tensor, TensorData};

use super::LaplacianProcess;
use crate::process::{
    AncestralStep, Coord, Diagonal, DiffusionProcess, Level, Parameterization, Prediction,
};
use crate::transform::packet_band;
use crate::{Error, Result};

/// Per-channel `α` of the packet at level `j` and time `t` for `channels` image channels, and `σ`.
fn packet_scales(p: &LaplacianProcess, j: usize, t: f64, channels: usize) -> (Vec<f64>, f64) {
    let (alphas, sigma) = p.state_scales(j, t);
    let l = p.levels - 1 - j;
    let n = channels * 4usize.pow(l as u32);
    // packet_band counts from the state's finest band (1) to its coarsest (l + 1).
    let alpha = (0..n)
        .map(|ch| alphas[packet_band(ch, channels, l) - 1])
        .collect();
    (alpha, sigma)
}

/// The scales at level `j`, time `t`, broadcasting as `[1, C·4^L, 1, 1]` over the packet.
pub(super) fn diagonal(p: &LaplacianProcess, j: usize, t: f64, channels: usize) -> Diagonal {
    let (alpha, sigma) = packet_scales(p, j, t, channels);
    let n = alpha.len();
    Diagonal {
        shape: [1, n, 1, 1],
        coords: alpha
            .into_iter()
            .map(|alpha| Coord {
                alpha,
                sigma,
                log_snr: 2.0 * (alpha / sigma).ln(),
            })
            .collect(),
    }
}

/// `f(α, σ)` per sample and packet channel, as a `[B, C·4^L, 1, 1]` tensor.
fn per_coord(
    p: &LaplacianProcess,
    j: usize,
    t: &[f64],
    channels: usize,
    device: &burn::tensor::Device,
    f: impl Fn(f64, f64) -> f64,
) -> Tensor<4> {
    let mut values = Vec::new();
    let mut n = 0;
    for &t in t {
        let (alpha, sigma) = packet_scales(p, j, t, channels);
        n = alpha.len();
        values.extend(alpha.into_iter().map(|a| f(a, sigma) as f32));
    }
    Tensor::from_data(TensorData::new(values, [t.len(), n, 1, 1]), device)
}

/// The level of `z`, with the packet transform at that level.
fn level_of(p: &LaplacianProcess, z: &Tensor<4>) -> Result<usize> {
    p.level_of_side(z.dims()[2])
}

/// The network's target at the state's level, per coordinate of the packet:
/// `x` for x-prediction, `v = (α ε − σ x)/r`, `r = sqrt(α² + σ²)`, for v-prediction.
pub(super) fn target(
    p: &LaplacianProcess,
    param: Parameterization,
    x0: Tensor<4>,
    eps: Tensor<4>,
    t: &[f64],
) -> Result<Tensor<4>> {
    match param {
        Parameterization::X => Ok(x0),
        Parameterization::V => {
            let j = level_of(p, &x0)?;
            let [_, c, _, _] = x0.dims();
            let dev = x0.device();
            let a = per_coord(p, j, t, c, &dev, |a, s| a / a.hypot(s));
            let s = per_coord(p, j, t, c, &dev, |a, s| s / a.hypot(s));
            let v = a * p.to_basis(eps)? - s * p.to_basis(x0)?;
            p.to_state(v, p.state_at(j, c))
        }
        Parameterization::Eps => Err(eps_refused()),
    }
}

fn eps_refused() -> Error {
    Error::invalid(
        "the Laplacian process needs a v- or x-predicting model (model.parameterization = \"v\" or \"x\"): ε-prediction cannot give x̂ where a band's α reaches 0",
    )
}

/// `x̂` and `ε̂` from the raw output at `z` (one level per sample), per packet coordinate:
/// x: `x̂ = raw`, `ε̂ = (z − α x̂)/σ`; v: `x̂ = α z/r² − σ v̂/r`, `ε̂ = σ z/r² + α v̂/r`.
pub(super) fn predict(
    p: &LaplacianProcess,
    param: Parameterization,
    raw: Tensor<4>,
    z: Tensor<4>,
    levels: &[Level],
) -> Result<Prediction> {
    let j = level_of(p, &z)?;
    let [_, c, _, _] = z.dims();
    let dev = z.device();
    let t: Vec<f64> = levels.iter().map(|l| l.t).collect();
    let state = p.state_at(j, c);
    let coef = |f: &dyn Fn(f64, f64) -> f64| per_coord(p, j, &t, c, &dev, f);
    let (u_z, u_raw) = (p.to_basis(z)?, p.to_basis(raw)?);
    let (x, e) = match param {
        Parameterization::X => {
            let eps = (u_z - coef(&|a, _| a) * u_raw.clone()) / coef(&|_, s| s);
            (u_raw, eps)
        }
        Parameterization::V => {
            let x = coef(&|a, s| a / (a * a + s * s)) * u_z.clone()
                - coef(&|a, s| s / a.hypot(s)) * u_raw.clone();
            let eps =
                coef(&|a, s| s / (a * a + s * s)) * u_z + coef(&|a, s| a / a.hypot(s)) * u_raw;
            (x, eps)
        }
        Parameterization::Eps => return Err(eps_refused()),
    };
    Ok(Prediction {
        x0_hat: p.to_state(x, state)?,
        eps_hat: p.to_state(e, state)?,
    })
}

/// The posterior `q(z_s | z_t, x = x̂)` per packet coordinate (formula sheet §1, per coordinate):
/// ```text
/// α_ts = α_t/α_s,   σ_ts² = σ_t² − α_ts² σ_s²
/// μ = (α_ts σ_s²/σ_t²) z_t + (α_s σ_ts²/σ_t²) x̂,   var = σ_ts² σ_s²/σ_t²
/// ```
/// A band whose `α_t` is 0 (at its switch) gets `μ = α_s x̂`, `var = σ_s²`; one with `α_s = 0`
/// too carries no signal and gets fresh noise.
pub(super) fn ancestral_step(p: &LaplacianProcess, a: AncestralStep) -> Result<Tensor<4>> {
    let shape = a.z_t.dims();
    let j = level_of(p, &a.z_t)?;
    let dev = a.z_t.device();
    let (dt, ds) = (
        diagonal(p, j, a.t.t, shape[1]),
        diagonal(p, j, a.s.t, shape[1]),
    );
    let coefs: Vec<[f64; 3]> = dt
        .coords
        .iter()
        .zip(&ds.coords)
        .map(|(t, s)| {
            if s.alpha <= 0.0 {
                return [0.0, 0.0, s.sigma];
            }
            let alpha_ts = t.alpha / s.alpha;
            let var_ts = (t.sigma * t.sigma - alpha_ts * alpha_ts * s.sigma * s.sigma).max(0.0);
            let (s2t, s2s) = (t.sigma * t.sigma, s.sigma * s.sigma);
            [
                alpha_ts * s2s / s2t,
                s.alpha * var_ts / s2t,
                (var_ts * s2s / s2t).sqrt(),
            ]
        })
        .collect();
    let tensor = |i: usize| {
        let v: Vec<f32> = coefs.iter().map(|c| c[i] as f32).collect();
        Tensor::<4>::from_data(TensorData::new(v, dt.shape), &dev)
    };
    let x0_hat = if a.clip_x0 {
        a.pred.x0_hat.clamp(-1.0, 1.0)
    } else {
        a.pred.x0_hat
    };
    let mut u = tensor(0) * p.to_basis(a.z_t)? + tensor(1) * p.to_basis(x0_hat)?;
    if let Some(xi) = a.noise {
        u = u + tensor(2) * p.to_basis(xi)?;
    }
    p.to_state(u, shape)
}
