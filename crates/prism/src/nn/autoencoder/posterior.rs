//! The KL-regularised autoencoder's diagonal Gaussian posterior `q(z|x) = N(μ, σ²)` (taming /
//! LDM `DiagonalGaussianDistribution`): the encoder's `2·z_channels` moments split into `μ` and
//! `log σ²` (clamped to `[−30, 20]`), and the KL divergence to `N(0, I)` of formula sheet §5:
//! `KL = Σ 0.5 (μ² + σ² − 1 − log σ²) / B`.

use burn::tensor::Tensor;

/// See the module docs.
#[derive(Debug, Clone)]
pub struct DiagonalGaussian {
    /// `μ`, `[B, z, h, w]`.
    pub mean: Tensor<4>,
    /// `log σ²`, `[B, z, h, w]`, clamped to `[−30, 20]`.
    pub log_var: Tensor<4>,
}

impl DiagonalGaussian {
    /// From moments `[B, 2z, h, w]` (`μ` first, then `log σ²`).
    pub fn new(moments: Tensor<4>) -> Self {
        let [_, c2, _, _] = moments.dims();
        let z = c2 / 2;
        let mean = moments.clone().narrow(1, 0, z);
        let log_var = moments.narrow(1, z, z).clamp(-30.0, 20.0);
        Self { mean, log_var }
    }

    /// `σ`.
    pub fn std(&self) -> Tensor<4> {
        (self.log_var.clone() * 0.5).exp()
    }

    /// The reparameterised draw `μ + σ ε` for standard normal `eps` of the same shape.
    pub fn sample(&self, eps: Tensor<4>) -> Tensor<4> {
        self.mean.clone() + self.std() * eps
    }

    /// `Σ_{c,h,w} 0.5 (μ² + σ² − 1 − log σ²)` summed over the batch and divided by `B`.
    pub fn kl(&self) -> Tensor<1> {
        let [b, _, _, _] = self.mean.dims();
        let lv = self.log_var.clone();
        let terms = self.mean.clone().powi_scalar(2) + lv.clone().exp() - lv - 1.0;
        terms.sum() * (0.5 / b as f64)
    }
}
