//! Cross-attention conditioning (latent diffusion, Rombach et al. 2022, §3.3; formula sheet §5):
//! LDM's `SpatialTransformer`, the structure of diffusers' `Transformer2DModel` with
//! `use_linear_projection = False` and its `BasicTransformerBlock` (`activation_fn = "geglu"`,
//! `attention_bias = False`):
//!
//! ```text
//! h = proj_in(GN(x))                       1×1 conv to width D = heads · head_dim, tokens [B, H·W, D]
//! per block:  h = h + attn1(LN1(h))        self-attention
//!             h = h + attn2(LN2(h), c)     cross-attention: Q from h, K, V from the context c [B, L, context_dim]
//!             h = h + ff(LN3(h))           GEGLU: W2 (a ⊙ GELU(g)), [a, g] = W1 h, hidden 4D
//! out = x + proj_out(h)                    1×1 conv back to the input width
//! attn(q_in, kv_in) = W_o softmax(Q Kᵀ/√head_dim) V per head, Q = W_q q_in, K = W_k kv_in, V = W_v kv_in (no biases)
//! ```
//!
//! GroupNorm ε = 1e-6, LayerNorm ε = 1e-5, exact (erf) GELU, as diffusers. The golden test
//! (`tools/golden_spatial_transformer.py`) runs diffusers' module with the same weights.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{GroupNorm, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::gelu;
use burn::tensor::{Device, Tensor};

use super::attention::attention;
use super::group_norm;
use crate::kernel::{self, conv2d};

/// Upper bound on the elements of one attention score block (as in the attention layer).
const MAX_SCORES: usize = 1 << 24;

/// GroupNorm ε of diffusers' `Transformer2DModel`.
const GROUP_NORM_EPS: f64 = 1e-6;

/// Hyper-parameters of a [`SpatialTransformer`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpatialTransformerSpec {
    /// Channels of the feature map (in and out).
    pub channels: usize,
    /// Attention heads; the token width is `heads · head_dim`.
    pub heads: usize,
    /// Channels per head.
    pub head_dim: usize,
    /// Width of the context tokens.
    pub context_dim: usize,
    /// Transformer blocks.
    pub depth: usize,
    /// GroupNorm groups (divide `channels`).
    pub groups: usize,
}

/// Multi-head attention of `query` tokens over `kv` tokens (self-attention when they are the
/// same), diffusers' `Attention` with `bias = False` on Q, K, V and a biased output projection.
#[derive(Module, Debug)]
pub struct Attention {
    to_q: Linear,
    to_k: Linear,
    to_v: Linear,
    to_out: Linear,
    heads: usize,
}

impl Attention {
    fn new(dim: usize, kv_dim: usize, heads: usize, head_dim: usize, device: &Device) -> Self {
        let inner = heads * head_dim;
        let plain = |i: usize| LinearConfig::new(i, inner).with_bias(false).init(device);
        Self {
            to_q: plain(dim),
            to_k: plain(kv_dim),
            to_v: plain(kv_dim),
            to_out: LinearConfig::new(inner, dim).init(device),
            heads,
        }
    }

    /// `x`: `[B, N, dim]`, `kv`: `[B, L, kv_dim]` → `[B, N, dim]`.
    fn forward(&self, x: Tensor<3>, kv: Tensor<3>) -> Tensor<3> {
        let [b, n, _] = x.dims();
        let l = kv.dims()[1];
        let q = self.to_q.forward(x);
        let inner = q.dims()[2];
        let hd = inner / self.heads;
        let split = |t: Tensor<3>, len: usize| t.reshape([b, len, self.heads, hd]).swap_dims(1, 2);
        let q = split(q, n) * (1.0 / (hd as f64).sqrt());
        let k = split(self.to_k.forward(kv.clone()), l);
        let v = split(self.to_v.forward(kv), l);
        let a = attention(q, k, v, MAX_SCORES)
            .swap_dims(1, 2)
            .reshape([b, n, inner]);
        self.to_out.forward(a)
    }
}

/// GEGLU feed-forward (Shazeer 2020): `out(a ⊙ GELU(g))`, `[a, g] = proj(x)`, hidden `4·dim`.
#[derive(Module, Debug)]
pub struct GegluFeedForward {
    proj: Linear,
    out: Linear,
}

impl GegluFeedForward {
    fn new(dim: usize, device: &Device) -> Self {
        let hidden = 4 * dim;
        Self {
            proj: LinearConfig::new(dim, 2 * hidden).init(device),
            out: LinearConfig::new(hidden, dim).init(device),
        }
    }

    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let h = self.proj.forward(x);
        let hidden = h.dims()[2] / 2;
        let a = h.clone().narrow(2, 0, hidden);
        let g = h.narrow(2, hidden, hidden);
        self.out.forward(a * gelu(g))
    }
}

/// diffusers' `BasicTransformerBlock`: self-attention, cross-attention, GEGLU, each pre-norm
/// with a residual.
#[derive(Module, Debug)]
pub struct BasicTransformerBlock {
    norm1: LayerNorm,
    attn1: Attention,
    norm2: LayerNorm,
    attn2: Attention,
    norm3: LayerNorm,
    ff: GegluFeedForward,
}

impl BasicTransformerBlock {
    fn new(s: &SpatialTransformerSpec, device: &Device) -> Self {
        let d = s.heads * s.head_dim;
        let ln = || LayerNormConfig::new(d).init(device);
        Self {
            norm1: ln(),
            attn1: Attention::new(d, d, s.heads, s.head_dim, device),
            norm2: ln(),
            attn2: Attention::new(d, s.context_dim, s.heads, s.head_dim, device),
            norm3: ln(),
            ff: GegluFeedForward::new(d, device),
        }
    }

    /// `x`: `[B, N, D]`, `context`: `[B, L, context_dim]`.
    fn forward(&self, x: Tensor<3>, context: Tensor<3>) -> Tensor<3> {
        let h = self.norm1.forward(x.clone());
        let x = x + self.attn1.forward(h.clone(), h);
        let x = x.clone() + self.attn2.forward(self.norm2.forward(x), context);
        x.clone() + self.ff.forward(self.norm3.forward(x))
    }
}

/// See the module docs.
#[derive(Module, Debug)]
pub struct SpatialTransformer {
    norm: GroupNorm,
    proj_in: Conv2d,
    blocks: Vec<BasicTransformerBlock>,
    proj_out: Conv2d,
    #[module(skip)]
    context_dim: usize,
}

impl SpatialTransformer {
    /// A transformer as described by `spec` (the caller has checked that `groups` divides
    /// `channels`).
    pub fn new(spec: &SpatialTransformerSpec, device: &Device) -> Self {
        let d = spec.heads * spec.head_dim;
        Self {
            norm: group_norm(spec.groups, spec.channels)
                .with_epsilon(GROUP_NORM_EPS)
                .init(device),
            proj_in: Conv2dConfig::new([spec.channels, d], [1, 1]).init(device),
            blocks: (0..spec.depth)
                .map(|_| BasicTransformerBlock::new(spec, device))
                .collect(),
            proj_out: Conv2dConfig::new([d, spec.channels], [1, 1]).init(device),
            context_dim: spec.context_dim,
        }
    }

    /// The width of the context tokens it reads.
    pub fn context_dim(&self) -> usize {
        self.context_dim
    }

    /// `x`: `[B, C, H, W]`, `context`: `[B, L, context_dim]` → `[B, C, H, W]`.
    pub fn forward(&self, x: Tensor<4>, context: Tensor<3>) -> Tensor<4> {
        let h = conv2d(&self.proj_in, kernel::group_norm(&self.norm, x.clone()));
        let [b, d, hh, ww] = h.dims();
        let mut tokens = h.reshape([b, d, hh * ww]).swap_dims(1, 2);
        for block in &self.blocks {
            tokens = block.forward(tokens, context.clone());
        }
        let h = tokens.swap_dims(1, 2).reshape([b, d, hh, ww]);
        x + conv2d(&self.proj_out, h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::golden_data::assert_close;
    use crate::tensor::to_vec;

    /// diffusers' `Transformer2DModel` (two blocks, 2 heads of 8, context width 12, GroupNorm of 8
    /// groups over 32 channels) with seeded weights, on a seeded input and context: the output
    /// matches. Made by `tools/golden_spatial_transformer.py`; the file holds the weights under
    /// this module's parameter paths (`param.*`, linear weights transposed to `[in, out]`).
    #[test]
    fn matches_diffusers_transformer_2d_model() {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/spatial_transformer.safetensors");
        let golden = crate::io::load(&path).unwrap();
        let spec: Vec<usize> = golden.metadata["spec"]
            .split(',')
            .map(|s| s.parse().unwrap())
            .collect();
        let spec = SpatialTransformerSpec {
            channels: spec[0],
            heads: spec[1],
            head_dim: spec[2],
            context_dim: spec[3],
            depth: spec[4],
            groups: spec[5],
        };
        let device = Device::flex();
        let net = crate::io::load_into(
            SpatialTransformer::new(&spec, &device),
            &golden.with_prefix("param"),
            &path,
        )
        .unwrap();
        let t = |name: &str| &golden.tensors[name];
        let x = t("input");
        let c = t("context");
        let x = Tensor::<4>::from_data(
            burn::tensor::TensorData::new(
                x.data.clone(),
                [x.shape[0], x.shape[1], x.shape[2], x.shape[3]],
            ),
            &device,
        );
        let c = Tensor::<3>::from_data(
            burn::tensor::TensorData::new(c.data.clone(), [c.shape[0], c.shape[1], c.shape[2]]),
            &device,
        );
        let out = to_vec(net.forward(x, c));
        assert_close(&out, &t("output").data, 2e-5, "spatial transformer output");
    }
}
