//! The adversarial part of the first-stage loss (formula sheet §5; taming `LPIPSWithDiscriminator`):
//! the discriminator and generator losses, and the adaptive weight
//! `λ = clamp(‖∇_{W_L} L_rec‖ / (‖∇_{W_L} L_G‖ + 10⁻⁴), 0, 10⁴) · disc_weight` from the gradients
//! of the decoder's last layer `W_L`.
//!
//! The gradients with respect to `W_L` are computed without a second backward pass through the
//! network: each loss's gradient at the output `x̂` ([`output_grad`]) is pulled back through the
//! last layer alone ([`last_layer_grad`]): `x̂ = conv(h, W_L) + b` is linear in `W_L`, so
//! `∇_{W_L} L = ∇_{W} Σ conv(h, W) ⊙ ∂L/∂x̂`.

use burn::module::Param;
use burn::nn::conv::Conv2d;
use burn::tensor::Tensor;
use burn::tensor::activation::{relu, softplus};
use serde::{Deserialize, Serialize};

use crate::tensor::scalar;
use crate::{Error, Result};

/// The GAN objective of the discriminator `D` (logits per patch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GanLoss {
    /// `L_D = ½ (mean relu(1 − D(x)) + mean relu(1 + D(x̂)))`, `L_G = −mean D(x̂)` (LDM's choice).
    #[default]
    Hinge,
    /// `L_D = ½ (mean softplus(−D(x)) + mean softplus(D(x̂)))` (taming's `vanilla_d_loss`),
    /// `L_G = mean softplus(−D(x̂)) = −mean log σ(D(x̂))`.
    NonSaturating,
}

impl GanLoss {
    /// The discriminator's loss from its logits on real and reconstructed images.
    pub fn discriminator(&self, real: Tensor<4>, fake: Tensor<4>) -> Tensor<1> {
        match self {
            Self::Hinge => (relu(real.neg() + 1.0).mean() + relu(fake + 1.0).mean()) * 0.5,
            Self::NonSaturating => {
                (softplus(real.neg(), 1.0).mean() + softplus(fake, 1.0).mean()) * 0.5
            }
        }
    }

    /// The generator's (autoencoder's) loss from the logits on its reconstructions.
    pub fn generator(&self, fake: Tensor<4>) -> Tensor<1> {
        match self {
            Self::Hinge => fake.mean().neg(),
            Self::NonSaturating => softplus(fake.neg(), 1.0).mean(),
        }
    }
}

/// `clamp(nll_norm / (g_norm + 10⁻⁴), 0, 10⁴) · disc_weight` (taming's
/// `calculate_adaptive_weight`); NaN norms are an error.
pub fn adaptive_weight(nll_norm: f64, g_norm: f64, disc_weight: f64) -> Result<f64> {
    let w = nll_norm / (g_norm + 1e-4);
    if w.is_nan() {
        return Err(Error::invalid(format!(
            "adaptive GAN weight: gradient norms {nll_norm} and {g_norm}"
        )));
    }
    Ok(w.clamp(0.0, 1e4) * disc_weight)
}

/// The value of `loss(x)` and its gradient `∂loss/∂x` at `x` (detached first, so nothing flows
/// into the graph that made `x`). `x` must live on an autodiff device.
pub fn output_grad(
    x: Tensor<4>,
    loss: impl FnOnce(Tensor<4>) -> Result<Tensor<1>>,
) -> Result<(f64, Tensor<4>)> {
    let leaf = x.detach().require_grad();
    let l = loss(leaf.clone())?;
    let value = scalar(l.clone());
    let grads = l.backward();
    let g = leaf
        .grad(&grads)
        .ok_or_else(|| Error::invalid("the loss does not depend on the reconstruction"))?;
    Ok((value, Tensor::from_inner(g)))
}

/// `∇_W Σ conv(h, W) ⊙ d_out` for the convolution `conv` (its weight `W`): the gradient with
/// respect to the last layer's weight of a loss whose gradient at the layer's output is `d_out`.
pub fn last_layer_grad(conv: &Conv2d, h: Tensor<4>, d_out: Tensor<4>) -> Tensor<4> {
    let mut c = conv.clone();
    let w = conv.weight.val().detach().require_grad();
    c.weight = Param::from_tensor(w.clone());
    c.bias = conv
        .bias
        .as_ref()
        .map(|b| Param::from_tensor(b.val().detach()));
    let s = (c.forward(h.detach()) * d_out.detach()).sum();
    let grads = s.backward();
    Tensor::from_inner(w.grad(&grads).expect("W takes part in the product"))
}

/// The Euclidean norm of a tensor, on the host.
pub fn norm(t: Tensor<4>) -> f64 {
    scalar(t.powi_scalar(2).sum()).sqrt()
}
