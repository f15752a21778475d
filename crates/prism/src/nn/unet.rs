//! ADM-style U-Net (Dhariwal & Nichol 2021; Ho et al. 2020): residual blocks with scale-shift
//! noise conditioning, self-attention at chosen levels, skip connections, optional class label with a
//! null label for classifier-free guidance, dropout per level.
//!
//! Layout (level `i` works at resolution `size / 2^i` with `base_channels · channel_mults[i]`):
//! `conv_in` → per level: `res_blocks` × (ResBlock [+ Attention]) then Downsample (not at the last
//! level) → middle: ResBlock, Attention, ResBlock → per level, reversed: `res_blocks + 1` ×
//! (concat skip, ResBlock [+ Attention]) then Upsample (not at level 0) → GN, SiLU, `conv_out`.
//! `tools/bench_torch.py` builds the same network in PyTorch (same parameter count).

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::{Embedding, EmbeddingConfig, GroupNorm};
use burn::tensor::activation::silu;
use burn::tensor::{Device, Int, Tensor};
use serde::{Deserialize, Serialize};

use super::Condition;
use super::layers::{
    AttentionBlock, Downsample, NoiseEmbedding, ResBlock, TransformerSpec, TransformerStack,
    Upsample, init_group_norm,
};
use crate::{Error, Result};

/// U-Net hyper-parameters (serde; `deny_unknown_fields` so a typo names the key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UNetConfig {
    /// Image channels out (and in, besides the spatial condition).
    pub channels: usize,
    /// Channels of a spatial condition concatenated to the input (a low-resolution image, a
    /// masked image and its mask; after any patching): the network reads `channels +
    /// cond_channels` and writes `channels`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cond_channels: usize,
    /// Width `C` of the first level; the noise embedding is `4C` wide.
    pub base_channels: usize,
    /// Width multiplier per level.
    pub channel_mults: Vec<usize>,
    /// Residual blocks per level on the way down (`+1` on the way up).
    pub res_blocks: usize,
    /// Levels (0 = full resolution) with self-attention after each residual block.
    #[serde(default)]
    pub attention_levels: Vec<usize>,
    /// Channels per attention head.
    #[serde(default = "default_head_channels")]
    pub head_channels: usize,
    /// GroupNorm groups; must divide every level's width.
    #[serde(default = "default_norm_groups")]
    pub norm_groups: usize,
    /// Dropout probability per level (empty: none; one value: all levels).
    #[serde(default)]
    pub dropout: Vec<f64>,
    /// Apply the dropout only to feature maps whose side is at most this (simple diffusion §3.4;
    /// the side is the network's, after any patching). Absent: at every level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropout_max_resolution: Option<usize>,
    /// Number of classes for conditioning (0: unconditional). Label `num_classes` is the null label.
    #[serde(default)]
    pub num_classes: usize,
}

fn default_head_channels() -> usize {
    32
}

pub(crate) fn is_zero(n: &usize) -> bool {
    *n == 0
}
fn default_norm_groups() -> usize {
    32
}

impl UNetConfig {
    /// Dropout at `level`.
    fn dropout_at(&self, level: usize) -> f64 {
        match self.dropout.len() {
            0 => 0.0,
            1 => self.dropout[0],
            _ => self.dropout.get(level).copied().unwrap_or(0.0),
        }
    }

    /// Number of 2× downsamplings: the image side must be divisible by `2^depth`.
    pub fn depth(&self) -> usize {
        self.channel_mults.len().saturating_sub(1)
    }

    /// Checks every constraint `init` relies on; errors name the key.
    pub fn validate(&self) -> Result<()> {
        let err = |m: String| Err(Error::config(format!("model: {m}")));
        if self.channels == 0 || self.base_channels == 0 || !self.base_channels.is_multiple_of(2) {
            return err(format!(
                "channels must be positive and base_channels positive and even, got {} and {}",
                self.channels, self.base_channels
            ));
        }
        if self.channel_mults.is_empty() || self.channel_mults.contains(&0) {
            return err("channel_mults must be a non-empty list of positive integers".into());
        }
        if self.norm_groups == 0 || self.head_channels == 0 {
            return err("norm_groups and head_channels must be positive".into());
        }
        for &m in &self.channel_mults {
            let ch = self.base_channels * m;
            if !ch.is_multiple_of(self.norm_groups) {
                return err(format!(
                    "norm_groups = {} does not divide a level width of {ch} channels",
                    self.norm_groups
                ));
            }
        }
        if let Some(&l) = self
            .attention_levels
            .iter()
            .find(|&&l| l >= self.channel_mults.len())
        {
            return err(format!(
                "attention_levels contains {l}, but there are only {} levels",
                self.channel_mults.len()
            ));
        }
        for &l in &self.attention_levels {
            let ch = self.base_channels * self.channel_mults[l];
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
        if self.dropout_max_resolution == Some(0) {
            return err("dropout_max_resolution must be positive".into());
        }
        if self.dropout.len() > 1 && self.dropout.len() != self.channel_mults.len() {
            return err(format!(
                "dropout has {} values; give one, or one per level ({})",
                self.dropout.len(),
                self.channel_mults.len()
            ));
        }
        Ok(())
    }

    /// Builds the network with freshly initialised weights.
    pub fn init(&self, device: &Device) -> Result<UNet> {
        self.validate()?;
        let levels = self.channel_mults.len();
        Ok(build(
            &Spec {
                channels: self.channels,
                cond_channels: self.cond_channels,
                base_channels: self.base_channels,
                widths: self
                    .channel_mults
                    .iter()
                    .map(|m| m * self.base_channels)
                    .collect(),
                res_blocks: vec![self.res_blocks; levels],
                attention_levels: &self.attention_levels,
                head_channels: self.head_channels,
                norm_groups: self.norm_groups,
                dropout: (0..levels).map(|l| self.dropout_at(l)).collect(),
                dropout_max_resolution: self.dropout_max_resolution,
                num_classes: self.num_classes,
                bottom: Bottom::Middle,
            },
            device,
        ))
    }
}

/// What works at the lowest resolution.
pub(crate) enum Bottom {
    /// ResBlock, attention, ResBlock (the U-Net's middle).
    Middle,
    /// A transformer stack (U-ViT).
    Transformer {
        width: usize,
        blocks: usize,
        mlp_ratio: usize,
    },
}

/// Everything the shared U-shaped builder needs (U-Net and U-ViT).
pub(crate) struct Spec<'a> {
    pub channels: usize,
    pub cond_channels: usize,
    pub base_channels: usize,
    /// Width per level.
    pub widths: Vec<usize>,
    /// Residual blocks per level on the way down (`+1` on the way up).
    pub res_blocks: Vec<usize>,
    pub attention_levels: &'a [usize],
    pub head_channels: usize,
    pub norm_groups: usize,
    /// Dropout per level.
    pub dropout: Vec<f64>,
    pub dropout_max_resolution: Option<usize>,
    pub num_classes: usize,
    pub bottom: Bottom,
}

/// Builds the U-shaped network of the module docs; with [`Bottom::Transformer`] the middle is a
/// transformer stack instead.
pub(crate) fn build(s: &Spec<'_>, device: &Device) -> UNet {
    let c = s.base_channels;
    let emb_dim = 4 * c;
    let g = s.norm_groups;
    let levels = s.widths.len();
    let attn = |level: usize, ch: usize| {
        s.attention_levels
            .contains(&level)
            .then(|| AttentionBlock::new(ch, s.head_channels, g, device))
    };
    let res = |c_in: usize, c_out: usize, level: usize| {
        ResBlock::new(c_in, c_out, emb_dim, g, s.dropout[level], device)
            .with_dropout_max_resolution(s.dropout_max_resolution)
    };

    let mut skips = vec![c];
    let mut ch = c;
    let mut down = Vec::new();
    for (level, &out) in s.widths.iter().enumerate() {
        let mut blocks = Vec::new();
        for _ in 0..s.res_blocks[level] {
            blocks.push(Block {
                res: res(ch, out, level),
                attn: attn(level, out),
            });
            ch = out;
            skips.push(ch);
        }
        let downsample = (level + 1 < levels).then(|| Downsample::new(ch, device));
        if downsample.is_some() {
            skips.push(ch);
        }
        down.push(DownLevel { blocks, downsample });
    }

    let deepest = levels - 1;
    let (middle, transformer) = match s.bottom {
        Bottom::Middle => (
            Some(Middle {
                res1: res(ch, ch, deepest),
                attn: AttentionBlock::new(ch, s.head_channels, g, device),
                res2: res(ch, ch, deepest),
            }),
            None,
        ),
        Bottom::Transformer {
            width,
            blocks,
            mlp_ratio,
        } => {
            let stack = TransformerStack::new(
                &TransformerSpec {
                    c_in: ch,
                    width,
                    blocks,
                    head_channels: s.head_channels,
                    mlp_ratio,
                    emb_dim,
                    dropout: s.dropout[deepest],
                    dropout_max_resolution: s.dropout_max_resolution,
                },
                device,
            );
            ch = width;
            (None, Some(stack))
        }
    };

    let mut up = Vec::new();
    for (level, &out) in s.widths.iter().enumerate().rev() {
        let mut blocks = Vec::new();
        for _ in 0..=s.res_blocks[level] {
            let skip = skips.pop().expect("one skip per block");
            blocks.push(Block {
                res: res(ch + skip, out, level),
                attn: attn(level, out),
            });
            ch = out;
        }
        let upsample = (level > 0).then(|| Upsample::new(ch, device));
        up.push(UpLevel { blocks, upsample });
    }

    UNet {
        noise_embedding: NoiseEmbedding::new(c, emb_dim, device),
        class_embedding: (s.num_classes > 0)
            .then(|| EmbeddingConfig::new(s.num_classes + 1, emb_dim).init(device)),
        conv_in: super::layers::conv3x3(s.channels + s.cond_channels, c, device),
        down,
        middle,
        transformer,
        up,
        norm_out: init_group_norm(g, ch, device),
        conv_out: super::layers::conv3x3(ch, s.channels, device),
        num_classes: s.num_classes,
        cond_channels: s.cond_channels,
    }
}

#[derive(Module, Debug)]
struct Block {
    res: ResBlock,
    attn: Option<AttentionBlock>,
}

impl Block {
    fn forward(&self, x: Tensor<4>, emb: Tensor<2>) -> Tensor<4> {
        let h = self.res.forward(x, emb);
        match &self.attn {
            Some(a) => a.forward(h),
            None => h,
        }
    }
}

#[derive(Module, Debug)]
struct DownLevel {
    blocks: Vec<Block>,
    downsample: Option<Downsample>,
}

#[derive(Module, Debug)]
struct UpLevel {
    blocks: Vec<Block>,
    upsample: Option<Upsample>,
}

#[derive(Module, Debug)]
struct Middle {
    res1: ResBlock,
    attn: AttentionBlock,
    res2: ResBlock,
}

/// The U-shaped network; build it with [`UNetConfig::init`] (a U-Net) or
/// [`crate::nn::UViTConfig::init`] (a U-ViT: a transformer stack in place of the middle).
#[derive(Module, Debug)]
pub struct UNet {
    noise_embedding: NoiseEmbedding,
    class_embedding: Option<Embedding>,
    conv_in: Conv2d,
    down: Vec<DownLevel>,
    middle: Option<Middle>,
    transformer: Option<TransformerStack>,
    up: Vec<UpLevel>,
    norm_out: GroupNorm,
    conv_out: Conv2d,
    num_classes: usize,
    cond_channels: usize,
}

impl UNet {
    /// `x`: `[B, C + C_c, H, W]`, the state with any spatial condition already concatenated on
    /// the channel axis (H, W divisible by `2^depth`); `log_snr`: `[B]`; `cond.label`: `[B]`
    /// class indices (`num_classes` = null label; absent: the null label), ignored by an
    /// unconditional network.
    pub fn forward(&self, x: Tensor<4>, log_snr: Tensor<1>, cond: &Condition) -> Tensor<4> {
        let mut emb = self.noise_embedding.forward(log_snr);
        if let Some(table) = &self.class_embedding {
            let [b, d] = emb.dims();
            let labels = cond.label.clone().unwrap_or_else(|| {
                Tensor::<1, Int>::full([b], self.num_classes as i64, &emb.device())
            });
            emb = emb + table.forward(labels.reshape([b, 1])).reshape([b, d]);
        }

        let mut h = self.conv_in.forward(x);
        let mut skips = vec![h.clone()];
        for level in &self.down {
            for block in &level.blocks {
                h = block.forward(h, emb.clone());
                skips.push(h.clone());
            }
            if let Some(ds) = &level.downsample {
                h = ds.forward(h);
                skips.push(h.clone());
            }
        }
        if let Some(middle) = &self.middle {
            h = middle.res1.forward(h, emb.clone());
            h = middle.attn.forward(h);
            h = middle.res2.forward(h, emb.clone());
        }
        if let Some(transformer) = &self.transformer {
            h = transformer.forward(h, emb.clone());
        }
        for level in &self.up {
            for block in &level.blocks {
                let skip = skips.pop().expect("one skip per block");
                h = block.forward(Tensor::cat(vec![h, skip], 1), emb.clone());
            }
            if let Some(us) = &level.upsample {
                h = us.forward(h);
            }
        }
        self.conv_out.forward(silu(self.norm_out.forward(h)))
    }

    /// Number of classes (0: unconditional).
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// Channels of the spatial condition the network expects beside the state.
    pub fn cond_channels(&self) -> usize {
        self.cond_channels
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn fmnist() -> UNetConfig {
        UNetConfig {
            channels: 1,
            cond_channels: 0,
            base_channels: 32,
            channel_mults: vec![1, 2, 2],
            res_blocks: 1,
            attention_levels: vec![2],
            head_channels: 32,
            norm_groups: 8,
            dropout: vec![],
            dropout_max_resolution: None,
            num_classes: 10,
        }
    }

    /// Parameter counts printed by `tools/bench_torch.py` for the same architectures.
    #[test]
    fn parameter_count_matches_pytorch() {
        let device = Device::flex();
        assert_eq!(fmnist().init(&device).unwrap().num_params(), 1_192_641);
        let uncond = UNetConfig {
            attention_levels: vec![],
            num_classes: 0,
            ..fmnist()
        };
        assert_eq!(uncond.init(&device).unwrap().num_params(), 1_140_929);
        let bench = UNetConfig {
            base_channels: 64,
            res_blocks: 2,
            attention_levels: vec![1, 2],
            norm_groups: 32,
            ..fmnist()
        };
        assert_eq!(bench.init(&device).unwrap().num_params(), 7_281_217);
    }

    #[test]
    fn forward_keeps_the_image_shape() {
        let device = Device::flex();
        let net = fmnist().init(&device).unwrap();
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
            let net = UNetConfig {
                dropout: vec![0.5],
                dropout_max_resolution: threshold,
                num_classes: 0,
                ..fmnist()
            }
            .init(device)
            .unwrap();
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
        let e = UNetConfig {
            norm_groups: 7,
            ..fmnist()
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("norm_groups"), "{e}");
        let e = UNetConfig {
            attention_levels: vec![5],
            ..fmnist()
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("attention_levels"), "{e}");
    }
}
