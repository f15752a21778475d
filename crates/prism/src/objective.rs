//! ⑦ Training losses (formula sheet §1; the first-stage autoencoder's in [`autoencoder`], §5).
//!
//! - `mse`: plain mean squared error on the parameterisation's own target (ε, v or x).
//! - `elbo`: `½ (−dλ/dt) ||ε − ε̂||²` (Kingma et al. 2021), per pixel mean.
//! - `sigmoid`: `½ sigmoid(b − λ) (−dλ/dt) ||ε − ε̂||²` (Kingma & Gao 2023; SiD2).
//!
//! All are averaged over pixels and the batch, so their scale does not depend on the image size.
//! [`multiscale_loss`] (simple diffusion §3.2) sums any of them over average-pooled resolutions.

pub mod autoencoder;
mod multiscale;

pub use multiscale::multiscale_loss;

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::process::Parameterization;
use crate::schedule::sigmoid;
use crate::tensor::per_sample;

/// How the per-noise-level losses are weighted.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Weighting {
    /// Unweighted MSE on the network's target.
    #[default]
    Mse,
    /// The continuous-time ELBO weighting `−dλ/dt / 2` on the ε error.
    Elbo,
    /// `sigmoid(b − λ) · (−dλ/dt) / 2` on the ε error.
    Sigmoid {
        /// The bias `b`.
        #[serde(default)]
        bias: f64,
    },
}

/// Inputs of one loss evaluation. The process converts between the network's output, its
/// target and `ε̂` ([`crate::process::DiffusionProcess::target`] and `predict`), so the losses
/// need no knowledge of the process.
pub struct LossInputs<'a> {
    /// Raw network output.
    pub raw: Tensor<4>,
    /// The parameterisation's target (ε, v or x) for `raw`.
    pub target: Tensor<4>,
    /// The noise that made `z_t` (at the state's shape).
    pub eps: Tensor<4>,
    /// `ε̂` implied by `raw`.
    pub eps_hat: Tensor<4>,
    /// The logSNR per sample (as the network is told it).
    pub log_snr: &'a [f64],
    /// `dλ/dt` per sample.
    pub dlog_snr_dt: &'a [f64],
}

impl Weighting {
    /// Per-sample weight on the mean squared ε error (`None` for `mse`).
    pub fn eps_weight(&self, log_snr: f64, dlog_snr_dt: f64) -> Option<f64> {
        match *self {
            Weighting::Mse => None,
            Weighting::Elbo => Some(-0.5 * dlog_snr_dt),
            Weighting::Sigmoid { bias } => Some(-0.5 * dlog_snr_dt * sigmoid(bias - log_snr)),
        }
    }

    /// Per-sample weights on the mean squared `ε` error that give this weighting's loss. For `mse`
    /// they convert the parameterisation's own error to the `ε` error (formula sheet §1, derived):
    /// `||v − v̂||² = (1 + e^{−λ}) ||ε − ε̂||²`, `||x − x̂||² = e^{−λ} ||ε − ε̂||²`.
    pub fn eps_weights(
        &self,
        p: Parameterization,
        log_snr: &[f64],
        dlog_snr_dt: &[f64],
    ) -> Vec<f64> {
        log_snr
            .iter()
            .zip(dlog_snr_dt)
            .map(|(&l, &d)| {
                self.eps_weight(l, d).unwrap_or(match p {
                    Parameterization::Eps => 1.0,
                    Parameterization::V => 1.0 + (-l).exp(),
                    Parameterization::X => (-l).exp(),
                })
            })
            .collect()
    }

    /// The scalar loss (a `[1]` tensor).
    pub fn loss(&self, i: LossInputs<'_>) -> Tensor<1> {
        match self {
            Weighting::Mse => (i.raw - i.target).powi_scalar(2).mean(),
            _ => {
                let w: Vec<f64> = i
                    .log_snr
                    .iter()
                    .zip(i.dlog_snr_dt)
                    .map(|(&l, &d)| self.eps_weight(l, d).expect("weighted"))
                    .collect();
                let eps_hat = i.eps_hat;
                let [b, c, h, wd] = eps_hat.dims();
                let weights = per_sample(&w, &eps_hat.device());
                let per = (i.eps - eps_hat).powi_scalar(2) * weights;
                per.sum() / ((b * c * h * wd) as f64)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::NoiseLevels;
    use crate::tensor::scalar;
    use burn::tensor::Device;

    /// `||v − v̂||² = (1 + e^{−λ}) ||ε − ε̂||²` (formula sheet, derived) checked through the losses.
    #[test]
    fn v_error_is_scaled_eps_error() {
        let device = Device::flex();
        let x0 = Tensor::<4>::from_floats([[[[0.2, -0.4]]]], &device);
        let eps = Tensor::<4>::from_floats([[[[1.0, -0.5]]]], &device);
        let l = 1.3;
        let n = NoiseLevels::uniform(l, 1, &device);
        let z = x0.clone() * n.alpha.clone() + eps.clone() * n.sigma.clone();
        let v = Parameterization::V.target(x0.clone(), eps.clone(), &n);
        let raw = v.clone() + 0.1; // a wrong v̂
        let eps_hat = Parameterization::V.prediction(raw.clone(), z, &n).eps_hat;
        let inputs = || LossInputs {
            raw: raw.clone(),
            target: v.clone(),
            eps: eps.clone(),
            eps_hat: eps_hat.clone(),
            log_snr: &n.log_snr,
            dlog_snr_dt: &[-2.0],
        };
        let mse_v = scalar(Weighting::Mse.loss(inputs()));
        // ELBO weight with dλ/dt = −2 is exactly 1 on the ε error.
        let mse_eps = scalar(Weighting::Elbo.loss(inputs()));
        assert!(
            (mse_v - (1.0 + (-l).exp()) * mse_eps).abs() < 1e-5,
            "{mse_v} vs {mse_eps}"
        );
    }

    #[test]
    fn sigmoid_weight_matches_formula() {
        let w = Weighting::Sigmoid { bias: 2.0 }
            .eps_weight(1.0, -4.0)
            .unwrap();
        assert!((w - 2.0 * sigmoid(1.0)).abs() < 1e-12);
        assert_eq!(Weighting::Elbo.eps_weight(0.0, -3.0), Some(1.5));
    }
}
