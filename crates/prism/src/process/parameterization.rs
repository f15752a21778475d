//! What a network's output means, and the conversions between it, `x̂` and `ε̂` for a process
//! whose signal and noise scales are `α` and `σ` (formula sheet §1):
//!
//! ```text
//! v  = α ε − σ x
//! x̂ = α z − σ v̂ = (z − σ ε̂)/α
//! ε̂ = σ z + α v̂ = (z − α x̂)/σ
//! ```
//! `α` and `σ` are tensors that broadcast over the state (one value per sample here; a process
//! whose scales differ per coordinate of its own basis converts in that basis itself).

use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::schedule::{alpha_from_log_snr, sigma_from_log_snr};
use crate::tensor::per_sample;

/// What the network outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Parameterization {
    /// The noise `ε`.
    Eps,
    /// The velocity `v = α ε − σ x` (simple diffusion's choice).
    #[default]
    V,
    /// The clean image `x`.
    X,
}

/// `α` and `σ` for each sample, as `[B, 1, 1, 1]` tensors.
#[derive(Debug, Clone)]
pub struct NoiseLevels {
    /// `λ` per sample.
    pub log_snr: Vec<f64>,
    /// `α` per sample, broadcastable over images.
    pub alpha: Tensor<4>,
    /// `σ` per sample, broadcastable over images.
    pub sigma: Tensor<4>,
}

impl NoiseLevels {
    /// The levels for per-sample `log_snr`.
    pub fn new(log_snr: Vec<f64>, device: &Device) -> Self {
        let a: Vec<f64> = log_snr.iter().map(|&l| alpha_from_log_snr(l)).collect();
        let s: Vec<f64> = log_snr.iter().map(|&l| sigma_from_log_snr(l)).collect();
        Self {
            alpha: per_sample(&a, device),
            sigma: per_sample(&s, device),
            log_snr,
        }
    }

    /// The same level for all `batch` samples.
    pub fn uniform(log_snr: f64, batch: usize, device: &Device) -> Self {
        Self::new(vec![log_snr; batch], device)
    }
}

/// The denoiser's two views of the clean image and the noise.
#[derive(Debug, Clone)]
pub struct Prediction {
    /// `x̂`, the predicted clean image.
    pub x0_hat: Tensor<4>,
    /// `ε̂`, the predicted noise.
    pub eps_hat: Tensor<4>,
}

impl Parameterization {
    /// The name used in configs: `eps`, `v` or `x`.
    pub fn name(self) -> &'static str {
        match self {
            Parameterization::Eps => "eps",
            Parameterization::V => "v",
            Parameterization::X => "x",
        }
    }

    /// `x̂` and `ε̂` from the network's raw output at `z` with levels `n`.
    pub fn prediction(self, raw: Tensor<4>, z: Tensor<4>, n: &NoiseLevels) -> Prediction {
        let (a, s) = (n.alpha.clone(), n.sigma.clone());
        match self {
            Parameterization::Eps => Prediction {
                x0_hat: (z - raw.clone() * s) / a,
                eps_hat: raw,
            },
            Parameterization::V => Prediction {
                x0_hat: z.clone() * a.clone() - raw.clone() * s.clone(),
                eps_hat: z * s + raw * a,
            },
            Parameterization::X => Prediction {
                eps_hat: (z - raw.clone() * a) / s,
                x0_hat: raw,
            },
        }
    }

    /// The training target for this parameterisation.
    pub fn target(self, x0: Tensor<4>, eps: Tensor<4>, n: &NoiseLevels) -> Tensor<4> {
        match self {
            Parameterization::Eps => eps,
            Parameterization::V => eps * n.alpha.clone() - x0 * n.sigma.clone(),
            Parameterization::X => x0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::to_vec;

    /// The three parameterisations agree: from exact targets each recovers `x` and `ε`.
    #[test]
    fn conversions_round_trip() {
        let device = Device::flex();
        let x = Tensor::<4>::from_floats([[[[0.5, -0.25], [0.9, -1.0]]]], &device);
        let eps = Tensor::<4>::from_floats([[[[1.5, 0.3], [-0.7, 0.2]]]], &device);
        for l in [-6.0, 0.0, 4.0] {
            let n = NoiseLevels::uniform(l, 1, &device);
            let z = x.clone() * n.alpha.clone() + eps.clone() * n.sigma.clone();
            for p in [
                Parameterization::Eps,
                Parameterization::V,
                Parameterization::X,
            ] {
                let target = p.target(x.clone(), eps.clone(), &n);
                let pred = p.prediction(target, z.clone(), &n);
                for (a, b) in to_vec(pred.x0_hat).iter().zip(to_vec(x.clone())) {
                    assert!((a - b).abs() < 2e-4, "{p:?} λ={l}: x̂ {a} vs {b}");
                }
                for (a, b) in to_vec(pred.eps_hat).iter().zip(to_vec(eps.clone())) {
                    assert!((a - b).abs() < 2e-4, "{p:?} λ={l}: ε̂ {a} vs {b}");
                }
            }
        }
    }
}
