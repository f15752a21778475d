//! U-ViT (simple diffusion §3.5): convolutional residual levels down to a low resolution
//! (16×16 in the paper), a stack of transformer blocks there (self-attention + MLP, adaLN noise
//! conditioning, see [`crate::nn::layers::TransformerStack`]), and convolutional levels back up
//! with skip connections. It shares the U-Net's builder and module type ([`UNet`]); only the
//! lowest level differs: no residual blocks on the way down and no middle block, the transformer
//! stack instead, then one residual block that merges the last downsampling's skip.
//!
//! With `channel_mults` of length `L`, the transformer works at `side / 2^L` (the network's side,
//! after any patching): `channel_mults = [1, 2, 2, 4]` on a 128² map gives 16×16 tokens.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::unet::{Bottom, Spec, UNet, build, is_zero};
use crate::{Error, Result};

/// U-ViT hyper-parameters (`[model.uvit]`; `deny_unknown_fields` so a typo names the key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UViTConfig {
    /// Image channels out (and in, besides the spatial condition), after patching.
    pub channels: usize,
    /// Channels of a spatial condition concatenated to the input, after patching (see
    /// [`crate::nn::UNetConfig::cond_channels`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cond_channels: usize,
    /// Width `C` of the first convolutional level; the noise embedding is `4C` wide.
    pub base_channels: usize,
    /// Width multiplier per convolutional level; each level ends with a 2× downsampling.
    pub channel_mults: Vec<usize>,
    /// Residual blocks per convolutional level on the way down (`+1` on the way up).
    pub res_blocks: usize,
    /// Token width of the transformer.
    pub transformer_channels: usize,
    /// Number of transformer blocks.
    pub transformer_blocks: usize,
    /// Channels per attention head; divides `transformer_channels`.
    #[serde(default = "default_head_channels")]
    pub head_channels: usize,
    /// MLP hidden width as a multiple of `transformer_channels`.
    #[serde(default = "default_mlp_ratio")]
    pub mlp_ratio: usize,
    /// GroupNorm groups; must divide every convolutional width and `transformer_channels`.
    #[serde(default = "default_norm_groups")]
    pub norm_groups: usize,
    /// Dropout probability (residual blocks and transformer blocks).
    #[serde(default)]
    pub dropout: f64,
    /// Apply dropout only to feature maps whose side is at most this (absent: everywhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropout_max_resolution: Option<usize>,
    /// Number of classes for conditioning (0: unconditional). Label `num_classes` is the null label.
    #[serde(default)]
    pub num_classes: usize,
}

fn default_head_channels() -> usize {
    64
}
fn default_mlp_ratio() -> usize {
    4
}
fn default_norm_groups() -> usize {
    32
}

impl UViTConfig {
    /// Number of 2× downsamplings before the transformer: the side must be divisible by `2^depth`.
    pub fn depth(&self) -> usize {
        self.channel_mults.len()
    }

    /// Checks every constraint `init` relies on; errors name the key.
    pub fn validate(&self) -> Result<()> {
        let err = |m: String| Err(Error::config(format!("model.uvit: {m}")));
        if self.channels == 0 || self.base_channels == 0 || !self.base_channels.is_multiple_of(2) {
            return err(format!(
                "channels must be positive and base_channels positive and even, got {} and {}",
                self.channels, self.base_channels
            ));
        }
        if self.channel_mults.is_empty() || self.channel_mults.contains(&0) {
            return err("channel_mults must be a non-empty list of positive integers".into());
        }
        if self.norm_groups == 0 || self.head_channels == 0 || self.mlp_ratio == 0 {
            return err("norm_groups, head_channels and mlp_ratio must be positive".into());
        }
        if self.transformer_blocks == 0 {
            return err("transformer_blocks must be positive".into());
        }
        let widths = self.channel_mults.iter().map(|m| m * self.base_channels);
        for ch in widths.chain([self.transformer_channels]) {
            if ch == 0 || !ch.is_multiple_of(self.norm_groups) {
                return err(format!(
                    "norm_groups = {} does not divide a width of {ch} channels",
                    self.norm_groups
                ));
            }
        }
        if !self.transformer_channels.is_multiple_of(self.head_channels) {
            return err(format!(
                "head_channels = {} does not divide transformer_channels = {}",
                self.head_channels, self.transformer_channels
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return err(format!("dropout must lie in [0, 1), got {}", self.dropout));
        }
        if self.dropout_max_resolution == Some(0) {
            return err("dropout_max_resolution must be positive".into());
        }
        Ok(())
    }

    /// Builds the network with freshly initialised weights.
    pub fn init(&self, device: &Device) -> Result<UNet> {
        self.validate()?;
        let mut widths: Vec<usize> = self
            .channel_mults
            .iter()
            .map(|m| m * self.base_channels)
            .collect();
        let mut res_blocks = vec![self.res_blocks; widths.len()];
        // The transformer level: reached by the last downsampling, no residual blocks going down.
        widths.push(self.transformer_channels);
        res_blocks.push(0);
        let levels = widths.len();
        Ok(build(
            &Spec {
                channels: self.channels,
                cond_channels: self.cond_channels,
                base_channels: self.base_channels,
                widths,
                res_blocks,
                attention_levels: &[],
                head_channels: self.head_channels,
                norm_groups: self.norm_groups,
                dropout: vec![self.dropout; levels],
                dropout_max_resolution: self.dropout_max_resolution,
                num_classes: self.num_classes,
                bottom: Bottom::Transformer {
                    width: self.transformer_channels,
                    blocks: self.transformer_blocks,
                    mlp_ratio: self.mlp_ratio,
                },
            },
            device,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::Condition;
    use crate::tensor::{normal, scalar, to_vec};
    use crate::train::{AdamW, AdamWConfig};
    use burn::module::Module;
    use burn::tensor::{Int, Tensor};
    use rand::SeedableRng;

    pub(crate) fn small() -> UViTConfig {
        UViTConfig {
            channels: 3,
            cond_channels: 0,
            base_channels: 8,
            channel_mults: vec![1, 2],
            res_blocks: 1,
            transformer_channels: 32,
            transformer_blocks: 2,
            head_channels: 16,
            mlp_ratio: 2,
            norm_groups: 4,
            dropout: 0.0,
            dropout_max_resolution: None,
            num_classes: 3,
        }
    }

    #[test]
    fn forward_keeps_the_image_shape() {
        let device = Device::flex();
        let net = small().init(&device).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        for side in [8, 16] {
            let x = normal([2, 3, side, 2 * side], &mut rng, &device);
            let l = Tensor::<1>::from_floats([0.0, -3.0], &device);
            let y = net.forward(
                x,
                l,
                &Condition::labels(Some(Tensor::<1, Int>::from_ints([0, 3], &device))),
            );
            assert_eq!(y.dims(), [2, 3, side, 2 * side]);
        }
    }

    /// A few Adam steps on one fixed batch lower the loss (the network trains end to end).
    #[test]
    fn trains_on_a_fixed_batch() {
        let device = Device::flex().autodiff();
        let cfg = UViTConfig {
            num_classes: 0,
            ..small()
        };
        let mut net = cfg.init(&device).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        let x = normal([4, 3, 8, 8], &mut rng, &device);
        let target = normal([4, 3, 8, 8], &mut rng, &device) * 0.5;
        let l = Tensor::<1>::from_floats([-2.0, 0.0, 1.0, 3.0], &device);
        let mut optim = AdamW::new(AdamWConfig::default());
        let loss_of = |net: &UNet| {
            (net.forward(x.clone(), l.clone(), &Condition::none()) - target.clone())
                .powi_scalar(2)
                .mean()
        };
        let first = scalar(loss_of(&net));
        for _ in 0..15 {
            let loss = loss_of(&net);
            let grads = loss.backward();
            net = optim.update(net, &grads, 2e-3, None).0;
        }
        let last = scalar(loss_of(&net));
        assert!(last < 0.7 * first, "loss {first} → {last}");
        assert!(net.num_params() > 0);
    }

    #[test]
    fn dropout_reaches_the_transformer_only_below_the_threshold() {
        let device = Device::flex().autodiff();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(6);
        let x = normal([1, 3, 16, 16], &mut rng, &device);
        let l = Tensor::<1>::from_floats([0.0], &device);
        // Levels at 16, 8; transformer at 4×4.
        for (threshold, active) in [(Some(4), true), (Some(2), false), (None, true)] {
            let net = UViTConfig {
                dropout: 0.5,
                dropout_max_resolution: threshold,
                num_classes: 0,
                ..small()
            }
            .init(&device)
            .unwrap();
            let a = to_vec(net.forward(x.clone(), l.clone(), &Condition::none()));
            let b = to_vec(net.forward(x.clone(), l.clone(), &Condition::none()));
            let differs = a.iter().zip(&b).any(|(p, q)| (p - q).abs() > 1e-6);
            assert_eq!(differs, active, "threshold {threshold:?}");
        }
    }

    #[test]
    fn bad_configs_name_the_key() {
        let e = UViTConfig {
            head_channels: 12,
            ..small()
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("head_channels"), "{e}");
        let e = UViTConfig {
            transformer_blocks: 0,
            ..small()
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("transformer_blocks"), "{e}");
    }
}
