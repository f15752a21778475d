//! ADM residual block with scale-shift noise conditioning (Dhariwal & Nichol 2021, App. A):
//! `h = conv(SiLU(GN(x)))`, `h = GN(h)·(1 + scale) + shift`, `h = conv(dropout(SiLU(h)))`,
//! `out = skip(x) + h`.
//!
//! Dropout can be limited to low resolutions (simple diffusion §3.4): with a
//! `dropout_max_resolution` of `r`, it is applied only to feature maps whose larger side is `≤ r`.

use crate::kernel::{conv2d, group_norm, silu};
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Dropout, DropoutConfig, GroupNorm, Linear, LinearConfig, PaddingConfig2d};
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
    #[module(skip)]
    dropout_max_resolution: Option<usize>,
}

/// Whether dropout limited to sides `≤ max_resolution` applies to an `h × w` feature map.
pub fn dropout_active(max_resolution: Option<usize>, h: usize, w: usize) -> bool {
    max_resolution.is_none_or(|r| h.max(w) <= r)
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
            dropout_max_resolution: None,
        }
    }

    /// Applies dropout only to feature maps whose larger side is `≤ max_resolution` (`None`: at
    /// every resolution).
    pub fn with_dropout_max_resolution(mut self, max_resolution: Option<usize>) -> Self {
        self.dropout_max_resolution = max_resolution;
        self
    }

    /// `x`: `[B, c_in, H, W]`, `emb`: `[B, emb_dim]` → `[B, c_out, H, W]`.
    pub fn forward(&self, x: Tensor<4>, emb: Tensor<2>) -> Tensor<4> {
        let h = conv2d(&self.conv1, silu(group_norm(&self.norm1, x.clone())));
        let [b, c, height, width] = h.dims();
        let ss = self.emb.forward(silu(emb)).reshape([b, 2 * c, 1, 1]);
        let scale = ss.clone().narrow(1, 0, c);
        let shift = ss.narrow(1, c, c);
        let h = group_norm(&self.norm2, h) * (scale + 1.0) + shift;
        let h = silu(h);
        let h = if dropout_active(self.dropout_max_resolution, height, width) {
            self.dropout.forward(h)
        } else {
            h
        };
        let h = conv2d(&self.conv2, h);
        let skip = match &self.skip {
            Some(conv) => conv2d(conv, x),
            None => x,
        };
        skip + h
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::{normal, to_vec};
    use rand::SeedableRng;

    fn differs(block: &ResBlock, side: usize, device: &Device) -> bool {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let x = normal([1, 4, side, side], &mut rng, device);
        let emb = Tensor::<2>::zeros([1, 8], device);
        let a = to_vec(block.forward(x.clone(), emb.clone()));
        let b = to_vec(block.forward(x, emb));
        a.iter().zip(&b).any(|(p, q)| (p - q).abs() > 1e-6)
    }

    /// Dropout (p = ½) acts only at sides ≤ the threshold, and only on a training (autodiff) device.
    #[test]
    fn dropout_only_at_low_resolution_and_in_training() {
        let eval = Device::flex();
        let train = eval.clone().autodiff();
        let block = ResBlock::new(4, 4, 8, 2, 0.5, &train).with_dropout_max_resolution(Some(8));
        assert!(differs(&block, 8, &train), "active at 8×8");
        assert!(differs(&block, 4, &train), "active at 4×4");
        assert!(!differs(&block, 16, &train), "inactive at 16×16");
        let block = ResBlock::new(4, 4, 8, 2, 0.5, &eval).with_dropout_max_resolution(Some(8));
        assert!(!differs(&block, 8, &eval), "off in evaluation");
        let everywhere = ResBlock::new(4, 4, 8, 2, 0.5, &train);
        assert!(differs(&everywhere, 16, &train), "no threshold: everywhere");
        assert!(!dropout_active(Some(16), 32, 16));
        assert!(dropout_active(Some(16), 16, 16));
    }
}
