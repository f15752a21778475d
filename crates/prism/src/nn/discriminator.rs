//! The PatchGAN discriminator of the first-stage autoencoder (Isola et al. 2017; taming
//! `NLayerDiscriminator`, LDM's choice with `n_layers = 3`, `ndf = 64`): 4×4 convolutions, the first
//! `layers` with stride 2, LeakyReLU(0.2), BatchNorm after every convolution but the first and the
//! last; one logit per overlapping patch (`[B, 1, h, w]`, 30×30 for 256² inputs).
//!
//! Weights start as taming's `weights_init`: convolutions `N(0, 0.02²)`, BatchNorm `γ ~ N(1, 0.02²)`,
//! `β = 0`.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, PaddingConfig2d};
use burn::tensor::activation::leaky_relu;
use burn::tensor::module::batch_norm_train;
use burn::tensor::{Device, Distribution, Tensor};
use serde::{Deserialize, Serialize};

use crate::kernel::conv2d;
use crate::{Error, Result};

/// See the module docs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscriminatorConfig {
    /// Strided layers `n_layers` (LDM: 3).
    #[serde(default = "default_layers")]
    pub layers: usize,
    /// Channels of the first layer `ndf` (LDM: 64); doubled per layer up to 8×.
    #[serde(default = "default_channels")]
    pub channels: usize,
}

fn default_layers() -> usize {
    3
}
fn default_channels() -> usize {
    64
}

impl Default for DiscriminatorConfig {
    fn default() -> Self {
        Self {
            layers: default_layers(),
            channels: default_channels(),
        }
    }
}

/// BatchNorm in training mode: `γ (x − mean) / √(var + 10⁻⁵) + β` with the batch's per-channel
/// mean and (biased) variance.
#[derive(Module, Debug)]
pub struct BatchStatNorm {
    gamma: Param<Tensor<1>>,
    beta: Param<Tensor<1>>,
}

impl BatchStatNorm {
    /// `[B, C, H, W] → [B, C, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        batch_norm_train(x, self.gamma.val(), self.beta.val(), 1e-5).output
    }
}

/// See the module docs. `convs[i]` is taming's `main.{conv index}`, `norms[i]` the BatchNorm after
/// `convs[i + 1]`.
#[derive(Module, Debug)]
pub struct NLayerDiscriminator {
    convs: Vec<Conv2d>,
    norms: Vec<BatchStatNorm>,
}

impl DiscriminatorConfig {
    /// Range checks; errors name the key.
    pub fn validate(&self) -> Result<()> {
        if !(1..=6).contains(&self.layers) || self.channels == 0 {
            return Err(Error::config(format!(
                "loss.discriminator: layers must be 1 to 6 and channels positive, got {} and {}",
                self.layers, self.channels
            )));
        }
        Ok(())
    }

    /// The discriminator for images of `in_channels` channels.
    pub fn init(&self, in_channels: usize, device: &Device) -> NLayerDiscriminator {
        let ndf = self.channels;
        let conv = |a: usize, b: usize, stride: usize, bias: bool| {
            Conv2dConfig::new([a, b], [4, 4])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_bias(bias)
                .with_initializer(Initializer::Normal {
                    mean: 0.0,
                    std: 0.02,
                })
                .init(device)
        };
        let bn = |c: usize| BatchStatNorm {
            gamma: Param::from_tensor(Tensor::random([c], Distribution::Normal(1.0, 0.02), device)),
            beta: Param::from_tensor(Tensor::zeros([c], device)),
        };
        let mut convs = vec![conv(in_channels, ndf, 2, true)];
        let mut norms = vec![];
        let mut mult = 1;
        for n in 1..=self.layers {
            let prev = mult;
            mult = (1 << n).min(8);
            let stride = if n < self.layers { 2 } else { 1 };
            convs.push(conv(ndf * prev, ndf * mult, stride, false));
            norms.push(bn(ndf * mult));
        }
        convs.push(conv(ndf * mult, 1, 1, true));
        NLayerDiscriminator { convs, norms }
    }
}

impl NLayerDiscriminator {
    /// Images `[B, C, H, W]` in `[-1, 1]` → patch logits `[B, 1, h, w]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let last = self.convs.len() - 1;
        let mut h = leaky_relu(conv2d(&self.convs[0], x), 0.2);
        for (conv, norm) in self.convs[1..last].iter().zip(&self.norms) {
            h = leaky_relu(norm.forward(conv2d(conv, h)), 0.2);
        }
        conv2d(&self.convs[last], h)
    }

    /// The PyTorch (`taming`) state-dict name of each parameter path of this network, for loading
    /// reference weights: `convs.0.weight → main.0.weight`, `norms.0.gamma → main.3.weight`, …
    pub fn torch_names(&self) -> Vec<(String, String)> {
        let last = self.convs.len() - 1;
        let mut out = vec![
            ("convs.0.weight".into(), "main.0.weight".into()),
            ("convs.0.bias".into(), "main.0.bias".into()),
        ];
        for i in 1..last {
            let c = 3 * i - 1;
            out.push((format!("convs.{i}.weight"), format!("main.{c}.weight")));
            for (ours, theirs) in [("gamma", "weight"), ("beta", "bias")] {
                out.push((
                    format!("norms.{}.{ours}", i - 1),
                    format!("main.{}.{theirs}", c + 1),
                ));
            }
        }
        let c = 3 * last - 1;
        out.push((format!("convs.{last}.weight"), format!("main.{c}.weight")));
        out.push((format!("convs.{last}.bias"), format!("main.{c}.bias")));
        out
    }
}
