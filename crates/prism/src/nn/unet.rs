//! ADM-style U-Net (Dhariwal & Nichol 2021; Ho et al. 2020): residual blocks with scale-shift
//! noise conditioning, self-attention at chosen levels, skip connections, optional class label with a
//! null label for classifier-free guidance, dropout per level.
//!
//! The layout is the U shape of [`super::ushape`] with its middle block (ResBlock, Attention,
//! ResBlock) at the lowest resolution.
//! `tools/bench_torch.py` builds the same network in PyTorch (same parameter count).

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::UNet;
use super::netconfig::{Net, NetCore, NetKind};
use super::ushape::{Bottom, Spec, build};
use crate::{Error, Result};

/// U-Net hyper-parameters (`[model.unet]`): the shared [`NetCore`] and the U-Net's own keys.
pub type UNetConfig = Net<UNetOwn>;

/// The keys only a U-Net has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UNetOwn {
    /// Levels (0 = full resolution) with self-attention after each residual block.
    #[serde(default)]
    pub attention_levels: Vec<usize>,
    /// Channels per attention head.
    #[serde(default = "default_head_channels")]
    pub head_channels: usize,
    /// Dropout probability per level (empty: none; one value: all levels).
    #[serde(default)]
    pub dropout: Vec<f64>,
}

fn default_head_channels() -> usize {
    32
}

impl UNetOwn {
    /// Dropout at `level`.
    fn dropout_at(&self, level: usize) -> f64 {
        match self.dropout.len() {
            0 => 0.0,
            1 => self.dropout[0],
            _ => self.dropout.get(level).copied().unwrap_or(0.0),
        }
    }
}

impl NetKind for UNetOwn {
    const KEY: &'static str = "model.unet";

    fn depth(&self, core: &NetCore) -> usize {
        core.channel_mults.len().saturating_sub(1)
    }

    fn level_widths(&self, core: &NetCore) -> Vec<usize> {
        core.widths()
    }

    fn validate(&self, core: &NetCore) -> Result<()> {
        let err = |m: String| Err(Error::config(format!("{}: {m}", Self::KEY)));
        if self.head_channels == 0 {
            return err("head_channels must be positive".into());
        }
        let levels = core.channel_mults.len();
        if let Some(&l) = self.attention_levels.iter().find(|&&l| l >= levels) {
            return err(format!(
                "attention_levels contains {l}, but there are only {levels} levels"
            ));
        }
        for &l in &self.attention_levels {
            let ch = core.base_channels * core.channel_mults[l];
            if !ch.is_multiple_of(self.head_channels) {
                return err(format!(
                    "head_channels = {} does not divide {ch} channels at attention level {l}",
                    self.head_channels
                ));
            }
        }
        if self.dropout.iter().any(|p| !(0.0..1.0).contains(p)) {
            return err("dropout probabilities must lie in [0, 1)".into());
        }
        if self.dropout.len() > 1 && self.dropout.len() != levels {
            return err(format!(
                "dropout has {} values; give one, or one per level ({levels})",
                self.dropout.len()
            ));
        }
        Ok(())
    }

    fn build(&self, core: &NetCore, device: &Device) -> UNet {
        let levels = core.channel_mults.len();
        build(
            &Spec {
                core,
                widths: core.widths(),
                res_blocks: vec![core.res_blocks; levels],
                attention_levels: &self.attention_levels,
                head_channels: self.head_channels,
                dropout: (0..levels).map(|l| self.dropout_at(l)).collect(),
                bottom: Bottom::Middle,
            },
            device,
        )
    }
}

impl UNetConfig {
    /// A tiny U-Net for tests: `channels` in and out, two levels of 8 and 16 channels, one
    /// residual block each, 4 groups, 8-channel heads; no attention, dropout, classes or
    /// condition.
    pub fn tiny(channels: usize) -> Self {
        Net {
            core: NetCore {
                channels,
                cond_channels: 0,
                cond_noise_level: false,
                base_channels: 8,
                channel_mults: vec![1, 2],
                res_blocks: 1,
                norm_groups: 4,
                dropout_max_resolution: None,
                num_classes: 0,
                cross_attention: None,
            },
            own: UNetOwn {
                attention_levels: vec![],
                head_channels: 8,
                dropout: vec![],
            },
        }
    }

    /// The shipped Fashion-MNIST network (`configs/fashion-mnist.toml`, 1.19 M parameters):
    /// 1 channel, widths 32, 64, 64, attention at the lowest level, 10 classes.
    pub fn fmnist() -> Self {
        Net {
            core: NetCore {
                base_channels: 32,
                channel_mults: vec![1, 2, 2],
                norm_groups: 8,
                num_classes: 10,
                ..Self::tiny(1).core
            },
            own: UNetOwn {
                attention_levels: vec![2],
                head_channels: 32,
                dropout: vec![],
            },
        }
    }

    /// The benchmarks' 7.3 M-parameter network (BENCHMARKS.md): [`Self::fmnist`] at width 64,
    /// two residual blocks per level, attention at levels 1 and 2.
    pub fn bench() -> Self {
        let mut c = Self::fmnist();
        c.core.base_channels = 64;
        c.core.res_blocks = 2;
        c.core.norm_groups = 32;
        c.own.attention_levels = vec![1, 2];
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::Condition;
    use burn::module::Module;
    use burn::tensor::{Int, Tensor};

    /// Parameter counts printed by `tools/bench_torch.py` for the same architectures.
    #[test]
    fn parameter_count_matches_pytorch() {
        let device = Device::flex();
        let count = |c: UNetConfig| c.init(&device).unwrap().num_params();
        assert_eq!(count(UNetConfig::fmnist()), 1_192_641);
        let mut uncond = UNetConfig::fmnist();
        uncond.own.attention_levels = vec![];
        uncond.core.num_classes = 0;
        assert_eq!(count(uncond), 1_140_929);
        assert_eq!(count(UNetConfig::bench()), 7_281_217);
    }

    #[test]
    fn forward_keeps_the_image_shape() {
        let device = Device::flex();
        let net = UNetConfig::fmnist().init(&device).unwrap();
        let x = Tensor::<4>::zeros([2, 1, 16, 16], &device);
        let l = Tensor::<1>::from_floats([0.0, 3.0], &device);
        let y = net.forward(
            x,
            l,
            &Condition::labels(Some(Tensor::<1, Int>::from_ints([1, 10], &device))),
        );
        assert_eq!(y.dims(), [2, 1, 16, 16]);
    }

    /// Dropout acts only at levels whose side is within `dropout_max_resolution` (levels at 16, 8
    /// and 4 here), and only on a training (autodiff) device.
    #[test]
    fn dropout_only_at_low_resolution_levels() {
        use crate::tensor::{normal, to_vec};
        use rand::SeedableRng;
        let eval = Device::flex();
        let train = eval.clone().autodiff();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let x = normal([1, 1, 16, 16], &mut rng, &eval);
        let random = |threshold: Option<usize>, device: &Device| {
            let mut cfg = UNetConfig::fmnist();
            cfg.own.dropout = vec![0.5];
            cfg.core.dropout_max_resolution = threshold;
            cfg.core.num_classes = 0;
            let net = cfg.init(device).unwrap();
            let x = x.clone().to_device(device);
            let l = Tensor::<1>::from_floats([0.0], device);
            let a = to_vec(net.forward(x.clone(), l.clone(), &Condition::none()));
            let b = to_vec(net.forward(x, l, &Condition::none()));
            a.iter().zip(&b).any(|(p, q)| (p - q).abs() > 1e-6)
        };
        assert!(random(Some(4), &train), "active at the 4×4 level");
        assert!(!random(Some(2), &train), "no level is that small");
        assert!(random(None, &train), "no threshold: every level");
        assert!(!random(None, &eval), "off in evaluation");
    }

    #[test]
    fn bad_configs_name_the_key() {
        let mut c = UNetConfig::fmnist();
        c.core.norm_groups = 7;
        let e = c.validate().unwrap_err();
        assert!(e.to_string().contains("model.unet: norm_groups"), "{e}");
        let mut c = UNetConfig::fmnist();
        c.own.attention_levels = vec![5];
        let e = c.validate().unwrap_err();
        assert!(e.to_string().contains("attention_levels"), "{e}");
    }
}
