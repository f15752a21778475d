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

use super::UNet;
use super::netconfig::{Net, NetCore, NetKind};
use super::ushape::{Bottom, Spec, build};
use crate::{Error, Result};

/// U-ViT hyper-parameters (`[model.uvit]`): the shared [`NetCore`] (its `channel_mults` are the
/// convolutional levels, each ending with a 2× downsampling) and the transformer's keys.
pub type UViTConfig = Net<UViTOwn>;

/// The keys only a U-ViT has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UViTOwn {
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
    /// Dropout probability (residual blocks and transformer blocks).
    #[serde(default)]
    pub dropout: f64,
}

fn default_head_channels() -> usize {
    64
}
fn default_mlp_ratio() -> usize {
    4
}

impl NetKind for UViTOwn {
    const KEY: &'static str = "model.uvit";

    /// The downsamplings before the transformer: one per convolutional level.
    fn depth(&self, core: &NetCore) -> usize {
        core.channel_mults.len()
    }

    /// The convolutional levels, then the transformer level.
    fn level_widths(&self, core: &NetCore) -> Vec<usize> {
        let mut w = core.widths();
        w.push(self.transformer_channels);
        w
    }

    fn validate(&self, core: &NetCore) -> Result<()> {
        let err = |m: String| Err(Error::config(format!("{}: {m}", Self::KEY)));
        if self.head_channels == 0 || self.mlp_ratio == 0 {
            return err("head_channels and mlp_ratio must be positive".into());
        }
        if self.transformer_blocks == 0 {
            return err("transformer_blocks must be positive".into());
        }
        let ch = self.transformer_channels;
        if ch == 0 || !ch.is_multiple_of(core.norm_groups) {
            return err(format!(
                "norm_groups = {} does not divide transformer_channels = {ch}",
                core.norm_groups
            ));
        }
        if !ch.is_multiple_of(self.head_channels) {
            return err(format!(
                "head_channels = {} does not divide transformer_channels = {ch}",
                self.head_channels
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return err(format!("dropout must lie in [0, 1), got {}", self.dropout));
        }
        Ok(())
    }

    fn build(&self, core: &NetCore, device: &Device) -> UNet {
        let mut widths = core.widths();
        let mut res_blocks = vec![core.res_blocks; widths.len()];
        // The transformer level: reached by the last downsampling, no residual blocks going down.
        widths.push(self.transformer_channels);
        res_blocks.push(0);
        let levels = widths.len();
        build(
            &Spec {
                core,
                widths,
                res_blocks,
                attention_levels: &[],
                head_channels: self.head_channels,
                dropout: vec![self.dropout; levels],
                bottom: Bottom::Transformer {
                    width: self.transformer_channels,
                    blocks: self.transformer_blocks,
                    mlp_ratio: self.mlp_ratio,
                },
            },
            device,
        )
    }
}

impl UViTConfig {
    /// A tiny U-ViT for tests: `channels` in and out, one convolutional level of 8 channels, one
    /// 16-wide transformer block with 8-channel heads, 4 groups; no dropout, classes or condition.
    pub fn tiny(channels: usize) -> Self {
        Net {
            core: NetCore {
                channel_mults: vec![1],
                ..super::UNetConfig::tiny(channels).core
            },
            own: UViTOwn {
                transformer_channels: 16,
                transformer_blocks: 1,
                head_channels: 8,
                mlp_ratio: 2,
                dropout: 0.0,
            },
        }
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

    /// Two convolutional levels, two 32-wide transformer blocks, 3 classes.
    fn small() -> UViTConfig {
        let mut c = UViTConfig::tiny(3);
        c.core.channel_mults = vec![1, 2];
        c.core.num_classes = 3;
        c.own.transformer_channels = 32;
        c.own.transformer_blocks = 2;
        c.own.head_channels = 16;
        c
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
        let mut cfg = small();
        cfg.core.num_classes = 0;
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
            let mut cfg = small();
            cfg.own.dropout = 0.5;
            cfg.core.dropout_max_resolution = threshold;
            cfg.core.num_classes = 0;
            let net = cfg.init(&device).unwrap();
            let a = to_vec(net.forward(x.clone(), l.clone(), &Condition::none()));
            let b = to_vec(net.forward(x.clone(), l.clone(), &Condition::none()));
            let differs = a.iter().zip(&b).any(|(p, q)| (p - q).abs() > 1e-6);
            assert_eq!(differs, active, "threshold {threshold:?}");
        }
    }

    #[test]
    fn bad_configs_name_the_key() {
        let bad = |change: fn(&mut UViTOwn)| {
            let mut c = small();
            change(&mut c.own);
            c.validate().unwrap_err().to_string()
        };
        let e = bad(|o| o.head_channels = 12);
        assert!(e.contains("model.uvit: head_channels"), "{e}");
        let e = bad(|o| o.transformer_blocks = 0);
        assert!(e.contains("transformer_blocks"), "{e}");
    }
}
