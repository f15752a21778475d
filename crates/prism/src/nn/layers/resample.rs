//! 2× down- and up-sampling layers of the U-Net.

use crate::kernel::conv2d;
use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::{Device, Tensor};

/// Nearest-neighbour 2× upsampling: `[B, C, H, W] → [B, C, 2H, 2W]`.
pub fn upsample_nearest(x: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    x.reshape([b, c, h, 1, w, 1])
        .expand([b, c, h, 2, w, 2])
        .reshape([b, c, 2 * h, 2 * w])
}

/// Stride-2 3×3 convolution.
#[derive(Module, Debug)]
pub struct Downsample {
    conv: Conv2d,
}

impl Downsample {
    /// `channels → channels`, halving the spatial size.
    pub fn new(channels: usize, device: &Device) -> Self {
        Self {
            conv: Conv2dConfig::new([channels, channels], [3, 3])
                .with_stride([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device),
        }
    }

    /// `[B, C, H, W] → [B, C, H/2, W/2]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        conv2d(&self.conv, x)
    }
}

/// Nearest 2× upsampling followed by a 3×3 convolution.
#[derive(Module, Debug)]
pub struct Upsample {
    conv: Conv2d,
}

impl Upsample {
    /// `channels → channels`, doubling the spatial size.
    pub fn new(channels: usize, device: &Device) -> Self {
        Self {
            conv: super::resblock::conv3x3(channels, channels, device),
        }
    }

    /// `[B, C, H, W] → [B, C, 2H, 2W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        conv2d(&self.conv, upsample_nearest(x))
    }
}
