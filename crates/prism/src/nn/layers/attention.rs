//! Multi-head self-attention over the pixels of a feature map, with a residual connection:
//! `x + proj(attn(qkv(GN(x))))`, `attn = softmax(q kᵀ/√d) v` per head.
//!
//! Memory is bounded for large maps: queries are processed in chunks so the score matrix never
//! exceeds `max_scores` elements per chunk (batch × heads × chunk × tokens).

use burn::module::Module;
use burn::nn::GroupNorm;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor};

use super::init_group_norm;
use crate::kernel::{conv2d, group_norm};

/// Upper bound on the elements of one attention score block.
const MAX_SCORES: usize = 1 << 24;

/// `softmax(q kᵀ) v` for `[B, heads, N, d]` inputs (q already scaled), computed over chunks of
/// queries so that no score block exceeds `max_scores` elements.
pub fn attention(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>, max_scores: usize) -> Tensor<4> {
    let [b, heads, n, _] = q.dims();
    let kt = k.swap_dims(2, 3);
    let chunk = (max_scores / (b * heads * n).max(1)).clamp(1, n);
    if chunk >= n {
        return softmax(q.matmul(kt), 3).matmul(v);
    }
    let parts = (0..n)
        .step_by(chunk)
        .map(|start| {
            let len = chunk.min(n - start);
            let qc = q.clone().narrow(2, start, len);
            softmax(qc.matmul(kt.clone()), 3).matmul(v.clone())
        })
        .collect();
    Tensor::cat(parts, 2)
}

/// See the module docs.
#[derive(Module, Debug)]
pub struct AttentionBlock {
    norm: GroupNorm,
    qkv: Conv2d,
    proj: Conv2d,
    heads: usize,
}

impl AttentionBlock {
    /// Attention over `channels` channels split into heads of `head_channels`.
    pub fn new(channels: usize, head_channels: usize, groups: usize, device: &Device) -> Self {
        Self {
            norm: init_group_norm(groups, channels, device),
            qkv: Conv2dConfig::new([channels, 3 * channels], [1, 1]).init(device),
            proj: Conv2dConfig::new([channels, channels], [1, 1]).init(device),
            heads: (channels / head_channels).max(1),
        }
    }

    /// `[B, C, H, W] → [B, C, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let (heads, n) = (self.heads, h * w);
        let d = c / heads;
        let qkv = conv2d(&self.qkv, group_norm(&self.norm, x.clone()));
        // [B, 3C, H, W] → three [B, heads, N, d]
        let split = |i: usize| {
            qkv.clone()
                .narrow(1, i * c, c)
                .reshape([b, heads, d, n])
                .swap_dims(2, 3)
        };
        let (q, k, v) = (split(0) * (1.0 / (d as f64).sqrt()), split(1), split(2));
        let out = attention(q, k, v, MAX_SCORES);
        let out = out.swap_dims(2, 3).reshape([b, c, h, w]);
        x + conv2d(&self.proj, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::{normal, to_vec};

    #[test]
    fn chunked_attention_equals_full_attention() {
        let (device, mut rng) = crate::golden_data::seeded(3);
        let q = normal([2, 2, 50, 8], &mut rng, &device);
        let k = normal([2, 2, 50, 8], &mut rng, &device);
        let v = normal([2, 2, 50, 8], &mut rng, &device);
        let full = to_vec(attention(q.clone(), k.clone(), v.clone(), usize::MAX));
        // 2·2·7·50 scores per chunk: chunks of 7 queries, the last one shorter
        let chunked = to_vec(attention(q, k, v, 2 * 2 * 7 * 50));
        for (a, b) in full.iter().zip(&chunked) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }
}
