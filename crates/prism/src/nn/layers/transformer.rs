//! Transformer blocks over the pixels of a low-resolution feature map (U-ViT, simple diffusion
//! §3.5): pre-norm self-attention and MLP, each modulated by the noise embedding (adaLN: LayerNorm
//! with a learned scale and no bias, then `·(1 + scale) + shift` from a linear map of the embedding), with
//! a 2-D sinusoidal position embedding added to the tokens.
//!
//! `TransformerStack`: `[B, C_in, h, w]` → 1×1 conv to width `D` → tokens `[B, h·w, D]` + position
//! embedding → blocks → LayerNorm → linear → `[B, D, h, w]`.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Dropout, DropoutConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::gelu;

use crate::kernel::{conv2d, silu};
use burn::tensor::{Device, Tensor};

use super::attention::attention;
use super::noise_embedding::sinusoidal_embedding;
use super::resblock::dropout_active;
use crate::tensor::vector;

/// Upper bound on the elements of one attention score block (as in the attention layer).
const MAX_SCORES: usize = 1 << 24;

/// Hyper-parameters of a [`TransformerStack`].
#[derive(Debug, Clone, Copy)]
pub struct TransformerSpec {
    /// Input channels of the feature map.
    pub c_in: usize,
    /// Token width `D`.
    pub width: usize,
    /// Number of blocks.
    pub blocks: usize,
    /// Channels per attention head (divides `width`).
    pub head_channels: usize,
    /// MLP hidden width as a multiple of `width`.
    pub mlp_ratio: usize,
    /// Width of the noise embedding.
    pub emb_dim: usize,
    /// Dropout probability (after attention and inside the MLP).
    pub dropout: f64,
    /// Dropout only when the map's larger side is at most this (`None`: always).
    pub dropout_max_resolution: Option<usize>,
}

/// One pre-norm block with adaLN modulation.
#[derive(Module, Debug)]
pub struct TransformerBlock {
    norm1: LayerNorm,
    qkv: Linear,
    proj: Linear,
    norm2: LayerNorm,
    mlp1: Linear,
    mlp2: Linear,
    modulation: Linear,
    dropout: Dropout,
    heads: usize,
}

fn plain_layer_norm(width: usize, device: &Device) -> LayerNorm {
    LayerNormConfig::new(width).with_bias(false).init(device)
}

impl TransformerBlock {
    fn new(s: &TransformerSpec, device: &Device) -> Self {
        let d = s.width;
        Self {
            norm1: plain_layer_norm(d, device),
            qkv: LinearConfig::new(d, 3 * d).init(device),
            proj: LinearConfig::new(d, d).init(device),
            norm2: plain_layer_norm(d, device),
            mlp1: LinearConfig::new(d, s.mlp_ratio * d).init(device),
            mlp2: LinearConfig::new(s.mlp_ratio * d, d).init(device),
            modulation: LinearConfig::new(s.emb_dim, 4 * d).init(device),
            dropout: DropoutConfig::new(s.dropout).init(),
            heads: (d / s.head_channels).max(1),
        }
    }

    /// `x`: `[B, N, D]`, `emb`: `[B, emb_dim]`; `drop`: whether dropout applies at this resolution.
    fn forward(&self, x: Tensor<3>, emb: Tensor<2>, drop: bool) -> Tensor<3> {
        let [b, n, d] = x.dims();
        let m = self.modulation.forward(silu(emb)).reshape([b, 1, 4 * d]);
        let part = |i: usize| m.clone().narrow(2, i * d, d);
        let dropout = |t: Tensor<3>| if drop { self.dropout.forward(t) } else { t };

        let h = self.norm1.forward(x.clone()) * (part(0) + 1.0) + part(1);
        let (heads, hd) = (self.heads, d / self.heads);
        let qkv = self.qkv.forward(h);
        let split = |i: usize| {
            qkv.clone()
                .narrow(2, i * d, d)
                .reshape([b, n, heads, hd])
                .swap_dims(1, 2)
        };
        let q = split(0) * (1.0 / (hd as f64).sqrt());
        let a = attention(q, split(1), split(2), MAX_SCORES)
            .swap_dims(1, 2)
            .reshape([b, n, d]);
        let x = x + dropout(self.proj.forward(a));

        let h = self.norm2.forward(x.clone()) * (part(2) + 1.0) + part(3);
        let h = dropout(gelu(self.mlp1.forward(h)));
        x + self.mlp2.forward(h)
    }
}

/// 2-D sinusoidal position embedding `[h·w, width]`: half the features for the row, half for the
/// column (each the [`sinusoidal_embedding`] of the index).
fn position_embedding(h: usize, w: usize, width: usize, device: &Device) -> Tensor<2> {
    let half = width / 2;
    let rows: Vec<f64> = (0..h * w).map(|i| (i / w) as f64).collect();
    let cols: Vec<f64> = (0..h * w).map(|i| (i % w) as f64).collect();
    let r = sinusoidal_embedding(vector(&rows, device), half);
    let c = sinusoidal_embedding(vector(&cols, device), width - half);
    Tensor::cat(vec![r, c], 1)
}

/// See the module docs.
#[derive(Module, Debug)]
pub struct TransformerStack {
    proj_in: Conv2d,
    blocks: Vec<TransformerBlock>,
    norm_out: LayerNorm,
    proj_out: Linear,
    #[module(skip)]
    dropout_max_resolution: Option<usize>,
}

impl TransformerStack {
    /// A stack as described by `spec`.
    pub fn new(spec: &TransformerSpec, device: &Device) -> Self {
        Self {
            proj_in: Conv2dConfig::new([spec.c_in, spec.width], [1, 1]).init(device),
            blocks: (0..spec.blocks)
                .map(|_| TransformerBlock::new(spec, device))
                .collect(),
            norm_out: LayerNormConfig::new(spec.width).init(device),
            proj_out: LinearConfig::new(spec.width, spec.width).init(device),
            dropout_max_resolution: spec.dropout_max_resolution,
        }
    }

    /// `[B, C_in, h, w]`, `emb`: `[B, emb_dim]` → `[B, D, h, w]`.
    pub fn forward(&self, x: Tensor<4>, emb: Tensor<2>) -> Tensor<4> {
        let device = x.device();
        let h = conv2d(&self.proj_in, x);
        let [b, d, hh, ww] = h.dims();
        let n = hh * ww;
        let pos = position_embedding(hh, ww, d, &device).reshape([1, n, d]);
        let mut tokens = h.reshape([b, d, n]).swap_dims(1, 2) + pos;
        let drop = dropout_active(self.dropout_max_resolution, hh, ww);
        for block in &self.blocks {
            tokens = block.forward(tokens, emb.clone(), drop);
        }
        let out = self.proj_out.forward(self.norm_out.forward(tokens));
        out.swap_dims(1, 2).reshape([b, d, hh, ww])
    }
}
