//! The building blocks of the FID Inception-v3: folded `BasicConv2d` and pytorch-fid's
//! `FIDInceptionA/B/C/D/E` blocks, loaded from a [`WeightSource`] by their state-dict names.

use burn::tensor::activation::relu;
use burn::tensor::module::{avg_pool2d, conv2d, max_pool2d};
use burn::tensor::ops::{AvgPoolOptions, ConvOptions, MaxPoolOptions};
use burn::tensor::{Device, Tensor, TensorData};

use super::weights::WeightSource;
use crate::Result;

/// BatchNorm ε of the FID Inception.
const BN_EPS: f32 = 1e-3;

/// A folded `BasicConv2d`: `ReLU(conv(x)·s + b)`.
#[derive(Debug, Clone)]
pub(super) struct BasicConv {
    weight: Tensor<4>,
    bias: Tensor<1>,
    stride: [usize; 2],
    padding: [usize; 2],
}

impl BasicConv {
    /// Loads `<name>.conv.weight` (`[c_out, c_in, kh, kw]`) and `<name>.bn.*`, folds the BN.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn load(
        src: &mut dyn WeightSource,
        name: &str,
        c_in: usize,
        c_out: usize,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        device: &Device,
    ) -> Result<Self> {
        let w = src.tensor(
            &format!("{name}.conv.weight"),
            &[c_out, c_in, kernel[0], kernel[1]],
        )?;
        let gamma = src.tensor(&format!("{name}.bn.weight"), &[c_out])?;
        let beta = src.tensor(&format!("{name}.bn.bias"), &[c_out])?;
        let mean = src.tensor(&format!("{name}.bn.running_mean"), &[c_out])?;
        let var = src.tensor(&format!("{name}.bn.running_var"), &[c_out])?;
        let scale: Vec<f32> = gamma
            .iter()
            .zip(&var)
            .map(|(g, v)| g / (v + BN_EPS).sqrt())
            .collect();
        let per_out = c_in * kernel[0] * kernel[1];
        let folded: Vec<f32> = w
            .iter()
            .enumerate()
            .map(|(i, v)| v * scale[i / per_out])
            .collect();
        let bias: Vec<f32> = (0..c_out).map(|o| beta[o] - mean[o] * scale[o]).collect();
        Ok(Self {
            weight: Tensor::from_data(
                TensorData::new(folded, [c_out, c_in, kernel[0], kernel[1]]),
                device,
            ),
            bias: Tensor::from_data(TensorData::new(bias, [c_out]), device),
            stride,
            padding,
        })
    }

    pub(super) fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let opts = ConvOptions::new(self.stride, self.padding, [1, 1], 1);
        relu(conv2d(
            x,
            self.weight.clone(),
            Some(self.bias.clone()),
            opts,
        ))
    }
}

/// Shorthand constructors for the block definitions below.
pub(super) struct Loader<'a> {
    pub(super) src: &'a mut dyn WeightSource,
    pub(super) device: &'a Device,
    pub(super) prefix: String,
}

impl Loader<'_> {
    pub(super) fn conv(
        &mut self,
        name: &str,
        c_in: usize,
        c_out: usize,
        k: [usize; 2],
        p: [usize; 2],
    ) -> Result<BasicConv> {
        self.strided(name, c_in, c_out, k, [1, 1], p)
    }

    pub(super) fn strided(
        &mut self,
        name: &str,
        c_in: usize,
        c_out: usize,
        k: [usize; 2],
        s: [usize; 2],
        p: [usize; 2],
    ) -> Result<BasicConv> {
        let full = if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        };
        BasicConv::load(self.src, &full, c_in, c_out, k, s, p, self.device)
    }
}

/// 3×3 average pooling, stride 1, padding 1, padded zeros not counted (the FID blocks' patch).
fn avg3(x: Tensor<4>) -> Tensor<4> {
    avg_pool2d(
        x,
        AvgPoolOptions::new([3, 3])
            .with_stride([1, 1])
            .with_padding([1, 1])
            .with_count_include_pad(false),
    )
}

/// 3×3 max pooling with stride `s` and padding `p`.
pub(super) fn max3(x: Tensor<4>, s: usize, p: usize) -> Tensor<4> {
    max_pool2d(
        x,
        MaxPoolOptions::new([3, 3])
            .with_stride([s, s])
            .with_padding([p, p]),
    )
}

/// `FIDInceptionA`.
#[derive(Debug, Clone)]
pub(super) struct BlockA {
    b1: BasicConv,
    b5: [BasicConv; 2],
    b3: [BasicConv; 3],
    pool: BasicConv,
}

impl BlockA {
    pub(super) fn load(l: &mut Loader<'_>, c_in: usize, pool_features: usize) -> Result<Self> {
        Ok(Self {
            b1: l.conv("branch1x1", c_in, 64, [1, 1], [0, 0])?,
            b5: [
                l.conv("branch5x5_1", c_in, 48, [1, 1], [0, 0])?,
                l.conv("branch5x5_2", 48, 64, [5, 5], [2, 2])?,
            ],
            b3: [
                l.conv("branch3x3dbl_1", c_in, 64, [1, 1], [0, 0])?,
                l.conv("branch3x3dbl_2", 64, 96, [3, 3], [1, 1])?,
                l.conv("branch3x3dbl_3", 96, 96, [3, 3], [1, 1])?,
            ],
            pool: l.conv("branch_pool", c_in, pool_features, [1, 1], [0, 0])?,
        })
    }

    pub(super) fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b1 = self.b1.forward(x.clone());
        let b5 = chain(&self.b5, x.clone());
        let b3 = chain(&self.b3, x.clone());
        let pool = self.pool.forward(avg3(x));
        Tensor::cat(vec![b1, b5, b3, pool], 1)
    }
}

fn chain(convs: &[BasicConv], x: Tensor<4>) -> Tensor<4> {
    convs.iter().fold(x, |x, c| c.forward(x))
}

/// `InceptionB` (grid reduction 35 → 17).
#[derive(Debug, Clone)]
pub(super) struct BlockB {
    b3: BasicConv,
    b3dbl: [BasicConv; 3],
}

impl BlockB {
    pub(super) fn load(l: &mut Loader<'_>, c_in: usize) -> Result<Self> {
        Ok(Self {
            b3: l.strided("branch3x3", c_in, 384, [3, 3], [2, 2], [0, 0])?,
            b3dbl: [
                l.conv("branch3x3dbl_1", c_in, 64, [1, 1], [0, 0])?,
                l.conv("branch3x3dbl_2", 64, 96, [3, 3], [1, 1])?,
                l.strided("branch3x3dbl_3", 96, 96, [3, 3], [2, 2], [0, 0])?,
            ],
        })
    }

    pub(super) fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b3 = self.b3.forward(x.clone());
        let b3dbl = chain(&self.b3dbl, x.clone());
        Tensor::cat(vec![b3, b3dbl, max3(x, 2, 0)], 1)
    }
}

/// `FIDInceptionC` (factorised 7×7).
#[derive(Debug, Clone)]
pub(super) struct BlockC {
    b1: BasicConv,
    b7: [BasicConv; 3],
    b7dbl: [BasicConv; 5],
    pool: BasicConv,
}

impl BlockC {
    pub(super) fn load(l: &mut Loader<'_>, c_in: usize, c7: usize) -> Result<Self> {
        let (row, col) = (([1, 7], [0, 3]), ([7, 1], [3, 0]));
        Ok(Self {
            b1: l.conv("branch1x1", c_in, 192, [1, 1], [0, 0])?,
            b7: [
                l.conv("branch7x7_1", c_in, c7, [1, 1], [0, 0])?,
                l.conv("branch7x7_2", c7, c7, row.0, row.1)?,
                l.conv("branch7x7_3", c7, 192, col.0, col.1)?,
            ],
            b7dbl: [
                l.conv("branch7x7dbl_1", c_in, c7, [1, 1], [0, 0])?,
                l.conv("branch7x7dbl_2", c7, c7, col.0, col.1)?,
                l.conv("branch7x7dbl_3", c7, c7, row.0, row.1)?,
                l.conv("branch7x7dbl_4", c7, c7, col.0, col.1)?,
                l.conv("branch7x7dbl_5", c7, 192, row.0, row.1)?,
            ],
            pool: l.conv("branch_pool", c_in, 192, [1, 1], [0, 0])?,
        })
    }

    pub(super) fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b1 = self.b1.forward(x.clone());
        let b7 = chain(&self.b7, x.clone());
        let b7dbl = chain(&self.b7dbl, x.clone());
        let pool = self.pool.forward(avg3(x));
        Tensor::cat(vec![b1, b7, b7dbl, pool], 1)
    }
}

/// `InceptionD` (grid reduction 17 → 8).
#[derive(Debug, Clone)]
pub(super) struct BlockD {
    b3: [BasicConv; 2],
    b7x3: [BasicConv; 4],
}

impl BlockD {
    pub(super) fn load(l: &mut Loader<'_>, c_in: usize) -> Result<Self> {
        Ok(Self {
            b3: [
                l.conv("branch3x3_1", c_in, 192, [1, 1], [0, 0])?,
                l.strided("branch3x3_2", 192, 320, [3, 3], [2, 2], [0, 0])?,
            ],
            b7x3: [
                l.conv("branch7x7x3_1", c_in, 192, [1, 1], [0, 0])?,
                l.conv("branch7x7x3_2", 192, 192, [1, 7], [0, 3])?,
                l.conv("branch7x7x3_3", 192, 192, [7, 1], [3, 0])?,
                l.strided("branch7x7x3_4", 192, 192, [3, 3], [2, 2], [0, 0])?,
            ],
        })
    }

    pub(super) fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b3 = chain(&self.b3, x.clone());
        let b7x3 = chain(&self.b7x3, x.clone());
        Tensor::cat(vec![b3, b7x3, max3(x, 2, 0)], 1)
    }
}

/// `FIDInceptionE_1` (average pool) and `FIDInceptionE_2` (max pool) — expanded filter banks.
#[derive(Debug, Clone)]
pub(super) struct BlockE {
    b1: BasicConv,
    b3_1: BasicConv,
    b3_2: [BasicConv; 2],
    b3dbl: [BasicConv; 2],
    b3dbl_3: [BasicConv; 2],
    pool: BasicConv,
    max_pool: bool,
}

impl BlockE {
    pub(super) fn load(l: &mut Loader<'_>, c_in: usize, max_pool: bool) -> Result<Self> {
        let (row, col) = (([1, 3], [0, 1]), ([3, 1], [1, 0]));
        Ok(Self {
            b1: l.conv("branch1x1", c_in, 320, [1, 1], [0, 0])?,
            b3_1: l.conv("branch3x3_1", c_in, 384, [1, 1], [0, 0])?,
            b3_2: [
                l.conv("branch3x3_2a", 384, 384, row.0, row.1)?,
                l.conv("branch3x3_2b", 384, 384, col.0, col.1)?,
            ],
            b3dbl: [
                l.conv("branch3x3dbl_1", c_in, 448, [1, 1], [0, 0])?,
                l.conv("branch3x3dbl_2", 448, 384, [3, 3], [1, 1])?,
            ],
            b3dbl_3: [
                l.conv("branch3x3dbl_3a", 384, 384, row.0, row.1)?,
                l.conv("branch3x3dbl_3b", 384, 384, col.0, col.1)?,
            ],
            pool: l.conv("branch_pool", c_in, 192, [1, 1], [0, 0])?,
            max_pool,
        })
    }

    pub(super) fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b1 = self.b1.forward(x.clone());
        let b3 = self.b3_1.forward(x.clone());
        let b3 = Tensor::cat(
            vec![self.b3_2[0].forward(b3.clone()), self.b3_2[1].forward(b3)],
            1,
        );
        let d = chain(&self.b3dbl, x.clone());
        let d = Tensor::cat(
            vec![
                self.b3dbl_3[0].forward(d.clone()),
                self.b3dbl_3[1].forward(d),
            ],
            1,
        );
        let pooled = if self.max_pool {
            max3(x, 1, 1)
        } else {
            avg3(x)
        };
        Tensor::cat(vec![b1, b3, d, self.pool.forward(pooled)], 1)
    }
}
