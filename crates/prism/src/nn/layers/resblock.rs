//! ADM residual block with scale-shift noise conditioning (Dhariwal & Nichol 2021, App. A):
//! `h = conv(SiLU(GN(x)))`, `h = GN(h)·(1 + scale) + shift`, `h = conv(dropout(SiLU(h)))`,
//! `out = skip(x) + h`.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Dropout, DropoutConfig, GroupNorm, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::silu;
use burn::tensor::{Device, Tensor};

use super::init_group_norm;

/// A 3×3 convolution with padding 1.
pub fn conv3x3(c_in: usize, c_out: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([c_in, c_out], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(device)
}

/// See the module docs.
#[derive(Module, Debug)]
pub struct ResBlock {
    norm1: GroupNorm,
    conv1: Conv2d,
    emb: Linear,
    norm2: GroupNorm,
    dropout: Dropout,
    conv2: Conv2d,
    skip: Option<Conv2d>,
}

impl ResBlock {
    /// `c_in → c_out` channels, conditioned on an embedding of width `emb_dim`.
    pub fn new(
        c_in: usize,
        c_out: usize,
        emb_dim: usize,
        groups: usize,
        dropout: f64,
        device: &Device,
    ) -> Self {
        Self {
            norm1: init_group_norm(groups, c_in, device),
            conv1: conv3x3(c_in, c_out, device),
            emb: LinearConfig::new(emb_dim, 2 * c_out).init(device),
            norm2: init_group_norm(groups, c_out, device),
            dropout: DropoutConfig::new(dropout).init(),
            conv2: conv3x3(c_out, c_out, device),
            skip: (c_in != c_out).then(|| Conv2dConfig::new([c_in, c_out], [1, 1]).init(device)),
        }
    }

    /// `x`: `[B, c_in, H, W]`, `emb`: `[B, emb_dim]` → `[B, c_out, H, W]`.
    pub fn forward(&self, x: Tensor<4>, emb: Tensor<2>) -> Tensor<4> {
        let h = self.conv1.forward(silu(self.norm1.forward(x.clone())));
        let [b, c, _, _] = h.dims();
        let ss = self.emb.forward(silu(emb)).reshape([b, 2 * c, 1, 1]);
        let scale = ss.clone().narrow(1, 0, c);
        let shift = ss.narrow(1, c, c);
        let h = self.norm2.forward(h) * (scale + 1.0) + shift;
        let h = self.conv2.forward(self.dropout.forward(silu(h)));
        let skip = match &self.skip {
            Some(conv) => conv.forward(x),
            None => x,
        };
        skip + h
    }
}
