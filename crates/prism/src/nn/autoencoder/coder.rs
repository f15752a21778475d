//! The encoder and decoder of the first-stage autoencoder (taming-transformers / LDM
//! `Encoder`/`Decoder`, diffusers' `Encoder`/`Decoder` key layout): `conv_in`, one block per
//! entry of `block_out_channels` (each but the last changes the resolution by 2), the mid block,
//! `conv_norm_out`, SiLU, `conv_out`.

use crate::kernel::{conv2d, group_norm, silu};
use burn::module::Module;
use burn::nn::GroupNorm;
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Tensor};

use super::blocks::{DownBlock, MidBlock, UpBlock, norm};
use crate::nn::layers::conv3x3;

/// Image `[B, in, H, W]` → `[B, out, H/f, W/f]` with `f = 2^(levels − 1)`.
#[derive(Module, Debug)]
pub struct Encoder {
    conv_in: Conv2d,
    down_blocks: Vec<DownBlock>,
    mid_block: MidBlock,
    conv_norm_out: GroupNorm,
    conv_out: Conv2d,
}

/// The shape shared by [`Encoder::new`] and [`Decoder::new`].
#[derive(Debug, Clone, Copy)]
pub struct CoderShape<'a> {
    /// Channels of each level, from the image side.
    pub block_out_channels: &'a [usize],
    /// Residual blocks per encoder level (the decoder has one more).
    pub layers_per_block: usize,
    /// GroupNorm groups.
    pub groups: usize,
    /// Self-attention in the mid block.
    pub mid_attention: bool,
}

impl Encoder {
    /// `c_in` image channels → `c_out` latent channels (2× the latent channels for a KL posterior).
    pub fn new(c_in: usize, c_out: usize, s: CoderShape<'_>, device: &Device) -> Self {
        let ch = s.block_out_channels;
        let last = ch.len() - 1;
        let down_blocks = (0..ch.len())
            .map(|i| {
                let prev = ch[i.saturating_sub(1)];
                DownBlock::new(prev, ch[i], s.layers_per_block, s.groups, i < last, device)
            })
            .collect();
        Self {
            conv_in: conv3x3(c_in, ch[0], device),
            down_blocks,
            mid_block: MidBlock::new(ch[last], s.groups, s.mid_attention, device),
            conv_norm_out: norm(s.groups, ch[last], device),
            conv_out: conv3x3(ch[last], c_out, device),
        }
    }

    /// See the type docs.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut h = conv2d(&self.conv_in, x);
        for b in &self.down_blocks {
            h = b.forward(h);
        }
        let h = self.mid_block.forward(h);
        conv2d(&self.conv_out, silu(group_norm(&self.conv_norm_out, h)))
    }
}

/// Latent `[B, c_in, h, w]` → image `[B, out, h·f, w·f]`.
#[derive(Module, Debug)]
pub struct Decoder {
    conv_in: Conv2d,
    mid_block: MidBlock,
    up_blocks: Vec<UpBlock>,
    conv_norm_out: GroupNorm,
    conv_out: Conv2d,
}

impl Decoder {
    /// `c_in` latent channels → `c_out` image channels.
    pub fn new(c_in: usize, c_out: usize, s: CoderShape<'_>, device: &Device) -> Self {
        let rev: Vec<usize> = s.block_out_channels.iter().rev().copied().collect();
        let last = rev.len() - 1;
        let up_blocks = (0..rev.len())
            .map(|i| {
                let prev = rev[i.saturating_sub(1)];
                UpBlock::new(
                    prev,
                    rev[i],
                    s.layers_per_block + 1,
                    s.groups,
                    i < last,
                    device,
                )
            })
            .collect();
        Self {
            conv_in: conv3x3(c_in, rev[0], device),
            mid_block: MidBlock::new(rev[0], s.groups, s.mid_attention, device),
            up_blocks,
            conv_norm_out: norm(s.groups, rev[last], device),
            conv_out: conv3x3(rev[last], c_out, device),
        }
    }

    /// The input of the last layer (`SiLU(GN(h))`, `[B, C, H, W]`) and the image it makes.
    pub fn forward_with_last_input(&self, z: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let mut h = self.mid_block.forward(conv2d(&self.conv_in, z));
        for b in &self.up_blocks {
            h = b.forward(h);
        }
        let h = silu(group_norm(&self.conv_norm_out, h));
        (h.clone(), conv2d(&self.conv_out, h))
    }

    /// See the type docs.
    pub fn forward(&self, z: Tensor<4>) -> Tensor<4> {
        self.forward_with_last_input(z).1
    }

    /// The last layer `W_L` (the 3×3 `conv_out`), whose gradients set the adaptive GAN weight.
    pub fn last_layer(&self) -> &Conv2d {
        &self.conv_out
    }
}
