//! Inception-v3 as used for FID by pytorch-fid (`FIDInceptionA/C/E_1/E_2`, the TensorFlow FID
//! graph's variant), for users who supply its weights (`pt_inception-2015-12-05`, converted to
//! safetensors with the PyTorch state-dict names). No registry ships these weights, so prism never
//! downloads them; numbers computed with other weights are not comparable to published FIDs.
//!
//! Inference only: each `BasicConv2d` (conv without bias → BatchNorm(ε = 10⁻³) → ReLU) is folded
//! into one convolution with bias. Input: images in `[-1, 1]`, grey repeated to RGB, bilinear resize
//! to 299×299 (`align_corners = false`, as pytorch-fid), then the network; the output is the 2048-d
//! global average pool (pytorch-fid's `dims = 2048`).

mod blocks;
mod weights;

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::module::{adaptive_avg_pool2d, interpolate};
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Tensor};

use self::blocks::{BasicConv, BlockA, BlockB, BlockC, BlockD, BlockE, Loader, max3};
pub use self::weights::{StateDict, SyntheticWeights, WeightSource, synthetic_uniform};
use super::features::FeatureNet;
use crate::io::HostTensor;
use crate::{Error, Result};

/// A tensor name present in every pytorch-fid Inception state dict.
pub const INCEPTION_MARKER: &str = "Mixed_7c.";

/// Side length of the network's input.
pub const INCEPTION_SIZE: usize = 299;

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
        let ck = crate::io::load(path)?;
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
