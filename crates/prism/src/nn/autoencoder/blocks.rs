//! The first-stage autoencoder's building blocks, named as diffusers' `AutoencoderKL` names them
//! (`resnets.{i}.norm1/conv1/norm2/conv2/conv_shortcut`, `attentions.0.group_norm/to_q/to_k/to_v/to_out.0`,
//! `downsamplers.0.conv`, `upsamplers.0.conv`): residual blocks without a time embedding,
//! GroupNorm + SiLU, single-head self-attention in the mid block (Rombach et al. 2022, App. G;
//! taming-transformers `Encoder`/`Decoder`).

use crate::kernel::{conv2d, group_norm, silu};
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{GroupNorm, GroupNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor};

use crate::nn::layers::{attention, conv3x3, upsample_nearest};

/// GroupNorm ε of the LDM / Stable Diffusion autoencoder.
pub const NORM_EPS: f64 = 1e-6;

/// GroupNorm with the autoencoder's ε.
pub fn norm(groups: usize, channels: usize, device: &Device) -> GroupNorm {
    GroupNormConfig::new(groups, channels)
        .with_epsilon(NORM_EPS)
        .init(device)
}

/// `out = shortcut(x) + conv2(SiLU(GN(conv1(SiLU(GN(x))))))`; the shortcut is a 1×1 convolution
/// when the channel count changes.
#[derive(Module, Debug)]
pub struct AeResBlock {
    norm1: GroupNorm,
    conv1: Conv2d,
    norm2: GroupNorm,
    conv2: Conv2d,
    conv_shortcut: Option<Conv2d>,
}

impl AeResBlock {
    /// `c_in → c_out` channels.
    pub fn new(c_in: usize, c_out: usize, groups: usize, device: &Device) -> Self {
        Self {
            norm1: norm(groups, c_in, device),
            conv1: conv3x3(c_in, c_out, device),
            norm2: norm(groups, c_out, device),
            conv2: conv3x3(c_out, c_out, device),
            conv_shortcut: (c_in != c_out)
                .then(|| Conv2dConfig::new([c_in, c_out], [1, 1]).init(device)),
        }
    }

    /// `[B, c_in, H, W] → [B, c_out, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let h = conv2d(&self.conv1, silu(group_norm(&self.norm1, x.clone())));
        let h = conv2d(&self.conv2, silu(group_norm(&self.norm2, h)));
        let skip = match &self.conv_shortcut {
            Some(conv) => conv2d(conv, x),
            None => x,
        };
        skip + h
    }
}

/// Single-head self-attention over the pixels, with a residual: `x + to_out(softmax(q kᵀ/√C) v)`,
/// `q, k, v = to_q/k/v(GN(x))` per pixel.
#[derive(Module, Debug)]
pub struct AeAttention {
    group_norm: GroupNorm,
    to_q: Linear,
    to_k: Linear,
    to_v: Linear,
    to_out: Vec<Linear>,
}

/// Upper bound on the elements of one attention score block (see [`attention`]).
const MAX_SCORES: usize = 1 << 24;

impl AeAttention {
    /// Attention over `channels` channels.
    pub fn new(channels: usize, groups: usize, device: &Device) -> Self {
        let lin = || LinearConfig::new(channels, channels).init(device);
        Self {
            group_norm: norm(groups, channels, device),
            to_q: lin(),
            to_k: lin(),
            to_v: lin(),
            to_out: vec![lin()],
        }
    }

    /// `[B, C, H, W] → [B, C, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let tokens = group_norm(&self.group_norm, x.clone())
            .reshape([b, c, h * w])
            .swap_dims(1, 2);
        let heads = |lin: &Linear| lin.forward(tokens.clone()).reshape([b, 1, h * w, c]);
        let q = heads(&self.to_q) * (1.0 / (c as f64).sqrt());
        let out = attention(q, heads(&self.to_k), heads(&self.to_v), MAX_SCORES);
        let out = self.to_out[0].forward(out.reshape([b, h * w, c]));
        x + out.swap_dims(1, 2).reshape([b, c, h, w])
    }
}

/// The mid block: residual block, self-attention (optional), residual block.
#[derive(Module, Debug)]
pub struct MidBlock {
    resnets: Vec<AeResBlock>,
    attentions: Vec<AeAttention>,
}

impl MidBlock {
    /// At `channels` channels, with or without attention.
    pub fn new(channels: usize, groups: usize, with_attention: bool, device: &Device) -> Self {
        Self {
            resnets: (0..2)
                .map(|_| AeResBlock::new(channels, channels, groups, device))
                .collect(),
            attentions: if with_attention {
                vec![AeAttention::new(channels, groups, device)]
            } else {
                vec![]
            },
        }
    }

    /// `[B, C, H, W] → [B, C, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut h = self.resnets[0].forward(x);
        for a in &self.attentions {
            h = a.forward(h);
        }
        self.resnets[1].forward(h)
    }
}

/// Stride-2 3×3 convolution after padding one row and column at the bottom and right (diffusers'
/// `Downsample2D(padding=0)`, taming's `Downsample`).
#[derive(Module, Debug)]
pub struct AeDownsample {
    conv: Conv2d,
}

impl AeDownsample {
    fn new(channels: usize, device: &Device) -> Self {
        Self {
            conv: Conv2dConfig::new([channels, channels], [3, 3])
                .with_stride([2, 2])
                .with_padding(PaddingConfig2d::Explicit(0, 0, 1, 1))
                .init(device),
        }
    }
}

/// Nearest 2× upsampling, then a 3×3 convolution.
#[derive(Module, Debug)]
pub struct AeUpsample {
    conv: Conv2d,
}

/// Residual blocks at one resolution, then an optional 2× downsampling.
#[derive(Module, Debug)]
pub struct DownBlock {
    resnets: Vec<AeResBlock>,
    downsamplers: Vec<AeDownsample>,
}

impl DownBlock {
    /// `layers` blocks `c_in → c_out`, halving the size when `down`.
    pub fn new(
        c_in: usize,
        c_out: usize,
        layers: usize,
        groups: usize,
        down: bool,
        device: &Device,
    ) -> Self {
        Self {
            resnets: (0..layers)
                .map(|i| AeResBlock::new(if i == 0 { c_in } else { c_out }, c_out, groups, device))
                .collect(),
            downsamplers: if down {
                vec![AeDownsample::new(c_out, device)]
            } else {
                vec![]
            },
        }
    }

    /// `[B, c_in, H, W] → [B, c_out, H/2, W/2]` (or `H, W` without downsampling).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut h = x;
        for r in &self.resnets {
            h = r.forward(h);
        }
        for d in &self.downsamplers {
            h = conv2d(&d.conv, h);
        }
        h
    }
}

/// Residual blocks at one resolution, then an optional 2× upsampling.
#[derive(Module, Debug)]
pub struct UpBlock {
    resnets: Vec<AeResBlock>,
    upsamplers: Vec<AeUpsample>,
}

impl UpBlock {
    /// `layers` blocks `c_in → c_out`, doubling the size when `up`.
    pub fn new(
        c_in: usize,
        c_out: usize,
        layers: usize,
        groups: usize,
        up: bool,
        device: &Device,
    ) -> Self {
        Self {
            resnets: (0..layers)
                .map(|i| AeResBlock::new(if i == 0 { c_in } else { c_out }, c_out, groups, device))
                .collect(),
            upsamplers: if up {
                vec![AeUpsample {
                    conv: conv3x3(c_out, c_out, device),
                }]
            } else {
                vec![]
            },
        }
    }

    /// `[B, c_in, H, W] → [B, c_out, 2H, 2W]` (or `H, W` without upsampling).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut h = x;
        for r in &self.resnets {
            h = r.forward(h);
        }
        for u in &self.upsamplers {
            h = conv2d(&u.conv, upsample_nearest(h));
        }
        h
    }
}
