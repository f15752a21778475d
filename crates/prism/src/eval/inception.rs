//! Inception-v3 as used for FID by pytorch-fid (`FIDInceptionA/C/E_1/E_2`, the TensorFlow FID
//! graph's variant), for users who supply its weights (`pt_inception-2015-12-05`, converted to
//! safetensors with the PyTorch state-dict names). No registry ships these weights, so prism never
//! downloads them; numbers computed with other weights are not comparable to published FIDs.
//!
//! Inference only: each `BasicConv2d` (conv without bias → BatchNorm(ε = 10⁻³) → ReLU) is folded
//! into one convolution with bias. Input: images in `[-1, 1]`, grey repeated to RGB, bilinear resize
//! to 299×299 (`align_corners = false`, as pytorch-fid), then the network; the output is the 2048-d
//! global average pool (pytorch-fid's `dims = 2048`).

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::activation::relu;
use burn::tensor::module::{adaptive_avg_pool2d, avg_pool2d, conv2d, interpolate, max_pool2d};
use burn::tensor::ops::{
    AvgPoolOptions, ConvOptions, InterpolateMode, InterpolateOptions, MaxPoolOptions,
};
use burn::tensor::{Device, Tensor, TensorData};

use super::features::FeatureNet;
use crate::train::HostTensor;
use crate::{Error, Result};

/// A tensor name present in every pytorch-fid Inception state dict.
pub const INCEPTION_MARKER: &str = "Mixed_7c.";

/// Side length of the network's input.
pub const INCEPTION_SIZE: usize = 299;

/// BatchNorm ε of the FID Inception.
const BN_EPS: f32 = 1e-3;

/// Where the weights come from: a state dict, or a deterministic generator (tests).
pub trait WeightSource {
    /// The tensor `name` with `shape`, row-major.
    fn tensor(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>>;
}

/// Weights from a loaded state dict, checked for presence and shape.
pub struct StateDict<'a> {
    tensors: &'a BTreeMap<String, HostTensor>,
    path: &'a Path,
}

impl WeightSource for StateDict<'_> {
    fn tensor(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let bad = |reason: String| Error::Checkpoint {
            path: self.path.into(),
            reason,
        };
        let t = self
            .tensors
            .get(name)
            .ok_or_else(|| bad(format!("missing Inception tensor '{name}'")))?;
        if t.shape != shape {
            return Err(bad(format!(
                "Inception tensor '{name}' has shape {:?}, expected {shape:?}",
                t.shape
            )));
        }
        Ok(t.data.clone())
    }
}

/// Deterministic pseudo-random weights, a pure function of each tensor's name (SplitMix64 over
/// the FNV-1a hash of the name), reproduced by `tools/golden_inception.py`:
/// conv weights `√3·u·√(2/fan_in)`, BN `γ = 1 + 0.1u`, `β = 0.1u`, mean `0.1u`, var `1 + 0.25(u + 1)`,
/// with `u` uniform in `[−1, 1)`.
pub struct SyntheticWeights;

/// `u ∈ [−1, 1)` number `i` of the stream for `name`.
pub fn synthetic_uniform(name: &str, i: u64) -> f32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut z = h.wrapping_add(0x9E37_79B9_7F4A_7C15u64.wrapping_mul(i + 1));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    ((z >> 40) as f64 / (1u64 << 24) as f64 * 2.0 - 1.0) as f32
}

impl WeightSource for SyntheticWeights {
    fn tensor(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let n: usize = shape.iter().product();
        let u = |i: usize| synthetic_uniform(name, i as u64);
        let v = if name.ends_with("conv.weight") {
            let fan_in: usize = shape[1..].iter().product();
            let a = 3f32.sqrt() * (2.0 / fan_in as f32).sqrt();
            (0..n).map(|i| a * u(i)).collect()
        } else if name.ends_with("bn.weight") {
            (0..n).map(|i| 1.0 + 0.1 * u(i)).collect()
        } else if name.ends_with("bn.running_var") {
            (0..n).map(|i| 1.0 + 0.25 * (u(i) + 1.0)).collect()
        } else {
            (0..n).map(|i| 0.1 * u(i)).collect()
        };
        Ok(v)
    }
}

/// A folded `BasicConv2d`: `ReLU(conv(x)·s + b)`.
#[derive(Debug, Clone)]
struct BasicConv {
    weight: Tensor<4>,
    bias: Tensor<1>,
    stride: [usize; 2],
    padding: [usize; 2],
}

impl BasicConv {
    /// Loads `<name>.conv.weight` (`[c_out, c_in, kh, kw]`) and `<name>.bn.*`, folds the BN.
    #[allow(clippy::too_many_arguments)]
    fn load(
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

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
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
struct Loader<'a> {
    src: &'a mut dyn WeightSource,
    device: &'a Device,
    prefix: String,
}

impl Loader<'_> {
    fn conv(
        &mut self,
        name: &str,
        c_in: usize,
        c_out: usize,
        k: [usize; 2],
        p: [usize; 2],
    ) -> Result<BasicConv> {
        self.strided(name, c_in, c_out, k, [1, 1], p)
    }

    fn strided(
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
fn max3(x: Tensor<4>, s: usize, p: usize) -> Tensor<4> {
    max_pool2d(
        x,
        MaxPoolOptions::new([3, 3])
            .with_stride([s, s])
            .with_padding([p, p]),
    )
}

/// `FIDInceptionA`.
#[derive(Debug, Clone)]
struct BlockA {
    b1: BasicConv,
    b5: [BasicConv; 2],
    b3: [BasicConv; 3],
    pool: BasicConv,
}

impl BlockA {
    fn load(l: &mut Loader<'_>, c_in: usize, pool_features: usize) -> Result<Self> {
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

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
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
struct BlockB {
    b3: BasicConv,
    b3dbl: [BasicConv; 3],
}

impl BlockB {
    fn load(l: &mut Loader<'_>, c_in: usize) -> Result<Self> {
        Ok(Self {
            b3: l.strided("branch3x3", c_in, 384, [3, 3], [2, 2], [0, 0])?,
            b3dbl: [
                l.conv("branch3x3dbl_1", c_in, 64, [1, 1], [0, 0])?,
                l.conv("branch3x3dbl_2", 64, 96, [3, 3], [1, 1])?,
                l.strided("branch3x3dbl_3", 96, 96, [3, 3], [2, 2], [0, 0])?,
            ],
        })
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b3 = self.b3.forward(x.clone());
        let b3dbl = chain(&self.b3dbl, x.clone());
        Tensor::cat(vec![b3, b3dbl, max3(x, 2, 0)], 1)
    }
}

/// `FIDInceptionC` (factorised 7×7).
#[derive(Debug, Clone)]
struct BlockC {
    b1: BasicConv,
    b7: [BasicConv; 3],
    b7dbl: [BasicConv; 5],
    pool: BasicConv,
}

impl BlockC {
    fn load(l: &mut Loader<'_>, c_in: usize, c7: usize) -> Result<Self> {
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

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b1 = self.b1.forward(x.clone());
        let b7 = chain(&self.b7, x.clone());
        let b7dbl = chain(&self.b7dbl, x.clone());
        let pool = self.pool.forward(avg3(x));
        Tensor::cat(vec![b1, b7, b7dbl, pool], 1)
    }
}

/// `InceptionD` (grid reduction 17 → 8).
#[derive(Debug, Clone)]
struct BlockD {
    b3: [BasicConv; 2],
    b7x3: [BasicConv; 4],
}

impl BlockD {
    fn load(l: &mut Loader<'_>, c_in: usize) -> Result<Self> {
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

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b3 = chain(&self.b3, x.clone());
        let b7x3 = chain(&self.b7x3, x.clone());
        Tensor::cat(vec![b3, b7x3, max3(x, 2, 0)], 1)
    }
}

/// `FIDInceptionE_1` (average pool) and `FIDInceptionE_2` (max pool) — expanded filter banks.
#[derive(Debug, Clone)]
struct BlockE {
    b1: BasicConv,
    b3_1: BasicConv,
    b3_2: [BasicConv; 2],
    b3dbl: [BasicConv; 2],
    b3dbl_3: [BasicConv; 2],
    pool: BasicConv,
    max_pool: bool,
}

impl BlockE {
    fn load(l: &mut Loader<'_>, c_in: usize, max_pool: bool) -> Result<Self> {
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

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
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

/// The FID Inception-v3 up to its 2048-d pool. See the module docs.
#[derive(Debug, Clone)]
pub struct InceptionV3 {
    stem: Vec<BasicConv>,
    a: Vec<BlockA>,
    b: BlockB,
    c: Vec<BlockC>,
    d: BlockD,
    e: Vec<BlockE>,
}

impl InceptionV3 {
    /// Builds the network from `src`.
    pub fn new(src: &mut dyn WeightSource, device: &Device) -> Result<Self> {
        let mut l = Loader {
            src,
            device,
            prefix: String::new(),
        };
        let stem = vec![
            l.strided("Conv2d_1a_3x3", 3, 32, [3, 3], [2, 2], [0, 0])?,
            l.conv("Conv2d_2a_3x3", 32, 32, [3, 3], [0, 0])?,
            l.conv("Conv2d_2b_3x3", 32, 64, [3, 3], [1, 1])?,
            l.conv("Conv2d_3b_1x1", 64, 80, [1, 1], [0, 0])?,
            l.conv("Conv2d_4a_3x3", 80, 192, [3, 3], [0, 0])?,
        ];
        fn block<'l, 'a>(l: &'l mut Loader<'a>, name: &str) -> &'l mut Loader<'a> {
            l.prefix = name.to_string();
            l
        }
        let a = vec![
            BlockA::load(block(&mut l, "Mixed_5b"), 192, 32)?,
            BlockA::load(block(&mut l, "Mixed_5c"), 256, 64)?,
            BlockA::load(block(&mut l, "Mixed_5d"), 288, 64)?,
        ];
        let b = BlockB::load(block(&mut l, "Mixed_6a"), 288)?;
        let c = vec![
            BlockC::load(block(&mut l, "Mixed_6b"), 768, 128)?,
            BlockC::load(block(&mut l, "Mixed_6c"), 768, 160)?,
            BlockC::load(block(&mut l, "Mixed_6d"), 768, 160)?,
            BlockC::load(block(&mut l, "Mixed_6e"), 768, 192)?,
        ];
        let d = BlockD::load(block(&mut l, "Mixed_7a"), 768)?;
        let e = vec![
            BlockE::load(block(&mut l, "Mixed_7b"), 1280, false)?,
            BlockE::load(block(&mut l, "Mixed_7c"), 2048, true)?,
        ];
        Ok(Self {
            stem,
            a,
            b,
            c,
            d,
            e,
        })
    }

    /// From a state dict in the pytorch-fid layout (extra tensors such as `fc.*` are ignored).
    pub fn from_tensors(
        tensors: &BTreeMap<String, HostTensor>,
        path: &Path,
        device: &Device,
    ) -> Result<Self> {
        Self::new(&mut StateDict { tensors, path }, device)
    }

    /// From a safetensors file.
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        let ck = crate::train::load_checkpoint(path)?;
        Self::from_tensors(&ck.tensors, path, device)
    }

    /// The 2048-d pool features of images already at 299×299×3 in `[-1, 1]`.
    pub fn forward_299(&self, x: Tensor<4>) -> Tensor<2> {
        let s = &self.stem;
        let x = s[2].forward(s[1].forward(s[0].forward(x)));
        let x = max3(x, 2, 0);
        let x = s[4].forward(s[3].forward(x));
        let mut x = max3(x, 2, 0);
        for a in &self.a {
            x = a.forward(x);
        }
        x = self.b.forward(x);
        for c in &self.c {
            x = c.forward(x);
        }
        x = self.d.forward(x);
        for e in &self.e {
            x = e.forward(x);
        }
        let [b, c, _, _] = x.dims();
        adaptive_avg_pool2d(x, [1, 1]).reshape([b, c])
    }
}

/// Grey to RGB and bilinear resize to 299×299 (`align_corners = false`), as pytorch-fid. Resizing
/// is linear, so images in `[-1, 1]` give what pytorch-fid computes from `[0, 1]` then `2x − 1`.
pub fn inception_input(images: Tensor<4>) -> Result<Tensor<4>> {
    let [b, c, h, w] = images.dims();
    let rgb = match c {
        3 => images,
        1 => images.expand([b, 3, h, w]),
        _ => {
            return Err(Error::Shape(format!(
                "Inception takes grey or RGB images, got {c} channels"
            )));
        }
    };
    if h == INCEPTION_SIZE && w == INCEPTION_SIZE {
        return Ok(rgb);
    }
    Ok(interpolate(
        rgb,
        InterpolateOptions::new(InterpolateMode::Bilinear)
            .with_align_corners(false)
            .with_output_size([INCEPTION_SIZE, INCEPTION_SIZE]),
    ))
}

impl FeatureNet for InceptionV3 {
    fn dim(&self) -> usize {
        2048
    }

    fn describe(&self) -> String {
        "Inception-v3 (pytorch-fid layout, user-supplied weights), 2048-d pool".into()
    }

    fn embed(&self, images: Tensor<4>) -> Result<Tensor<2>> {
        Ok(self.forward_299(inception_input(images)?))
    }
}
