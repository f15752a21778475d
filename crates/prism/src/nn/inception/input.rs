//! How images reach the FID Inception's 299×299 input (formula sheet §6: "clean-fid's modes differ
//! only in how images are resized to 299²"). Every pipeline takes prism images in `[-1, 1]`, grey
//! repeated to RGB (as `Image.convert('RGB')` in clean-fid):
//!
//! - [`InceptionInput::Clean`] — clean-fid's `mode="clean"` (the default for the standard network):
//!   quantise to bytes (what a PNG holds), resize each channel as a float image with PIL's bicubic
//!   filter (`Image.resize(…, BICUBIC)` on mode `'F'`: Keys cubic `a = −0.5`, support widened by the
//!   scale when shrinking, coefficients normalised per output pixel, horizontal pass then vertical),
//!   clip to `[0, 255]`, then the TF graph's normalisation `(v − 128)/128`.
//! - [`InceptionInput::TfLegacy`] — clean-fid's `mode="legacy_tensorflow"`, the original TF FID
//!   (TTUR) and StyleGAN2-ADA: bytes, TF1 `resize_bilinear` (`align_corners = false`,
//!   no half-pixel centres: source `j·in/out`, upper neighbour clamped), `(v − 128)/128`.
//! - [`InceptionInput::PytorchFid`] — pytorch-fid: bilinear with half-pixel centres
//!   (`F.interpolate(…, align_corners=False)`) on `[-1, 1]` values (its `2x − 1`).
//!
//! The two byte pipelines are separable linear maps, applied as `R_y · X · R_xᵀ` with resampling
//! matrices built here.

use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Tensor, TensorData};

use super::INCEPTION_SIZE;
use crate::{Error, Result};

/// The input pipeline; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InceptionInput {
    /// clean-fid `mode="clean"`: bytes, PIL bicubic, clip, `(v − 128)/128`.
    Clean,
    /// clean-fid `mode="legacy_tensorflow"` / TF FID: bytes, TF1 bilinear, `(v − 128)/128`.
    TfLegacy,
    /// pytorch-fid: bilinear (half-pixel centres) on `[-1, 1]`.
    PytorchFid,
}

impl InceptionInput {
    /// Parses `clean`, `legacy_tensorflow` or `pytorch_fid` (clean-fid's names).
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "clean" => Ok(Self::Clean),
            "legacy_tensorflow" => Ok(Self::TfLegacy),
            "pytorch_fid" | "legacy_pytorch" => Ok(Self::PytorchFid),
            _ => Err(Error::invalid(format!(
                "unknown Inception input mode '{s}' (known: clean, legacy_tensorflow, pytorch_fid)"
            ))),
        }
    }

    /// The name [`parse`](Self::parse) reads.
    pub fn name(self) -> &'static str {
        match self {
            Self::Clean => "clean",
            Self::TfLegacy => "legacy_tensorflow",
            Self::PytorchFid => "pytorch_fid",
        }
    }

    /// `[B, 1|3, H, W]` in `[-1, 1]` → `[B, 3, 299, 299]` as the network expects.
    pub fn prepare(self, images: Tensor<4>) -> Result<Tensor<4>> {
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
        let s = INCEPTION_SIZE;
        match self {
            Self::PytorchFid if h == s && w == s => Ok(rgb),
            Self::PytorchFid => Ok(interpolate(
                rgb,
                InterpolateOptions::new(InterpolateMode::Bilinear)
                    .with_align_corners(false)
                    .with_output_size([s, s]),
            )),
            Self::Clean | Self::TfLegacy => {
                let bytes = ((rgb.clamp(-1.0, 1.0) + 1.0) * 127.5).round();
                let matrix = if self == Self::Clean {
                    pil_bicubic_matrix
                } else {
                    tf_bilinear_matrix
                };
                let mut v = resample(bytes, &matrix(h, s), &matrix(w, s), s);
                if self == Self::Clean {
                    v = v.clamp(0.0, 255.0);
                }
                Ok((v - 128.0) / 128.0)
            }
        }
    }
}

/// `R_y · X · R_xᵀ` per plane, `R` given as `[out × in]` row-major.
fn resample(x: Tensor<4>, ry: &[f32], rx: &[f32], out: usize) -> Tensor<4> {
    let device = x.device();
    let [b, c, h, w] = x.dims();
    let rx_t = Tensor::<2>::from_data(TensorData::new(rx.to_vec(), [out, w]), &device)
        .transpose()
        .reshape([1, 1, w, out])
        .expand([b, c, w, out]);
    let ry = Tensor::<2>::from_data(TensorData::new(ry.to_vec(), [out, h]), &device)
        .reshape([1, 1, out, h])
        .expand([b, c, out, h]);
    // Horizontal first, as PIL.
    ry.matmul(x.matmul(rx_t))
}

/// PIL's bicubic kernel (`a = −0.5`).
fn pil_cubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// PIL's `precompute_coeffs` for `BICUBIC` (support 2) from `n_in` to `n_out` samples, as an
/// `[n_out × n_in]` matrix.
pub fn pil_bicubic_matrix(n_in: usize, n_out: usize) -> Vec<f32> {
    let scale = n_in as f64 / n_out as f64;
    let filter_scale = scale.max(1.0);
    let support = 2.0 * filter_scale;
    let mut m = vec![0f32; n_out * n_in];
    for o in 0..n_out {
        let center = (o as f64 + 0.5) * scale;
        // C's `(int)` truncates toward zero.
        let lo = ((center - support + 0.5) as i64).max(0) as usize;
        let hi = ((center + support + 0.5) as i64).min(n_in as i64) as usize;
        let k: Vec<f64> = (lo..hi)
            .map(|i| pil_cubic((i as f64 - center + 0.5) / filter_scale))
            .collect();
        let total: f64 = k.iter().sum();
        for (i, v) in (lo..hi).zip(k) {
            m[o * n_in + i] = if total != 0.0 { v / total } else { v } as f32;
        }
    }
    m
}

/// TF1 `resize_bilinear` with `align_corners = false` and no half-pixel centres: output `j` reads
/// source `j·n_in/n_out`, between `⌊·⌋` and `min(⌊·⌋ + 1, n_in − 1)`.
pub fn tf_bilinear_matrix(n_in: usize, n_out: usize) -> Vec<f32> {
    let scale = n_in as f32 / n_out as f32;
    let mut m = vec![0f32; n_out * n_in];
    for o in 0..n_out {
        let src = o as f32 * scale;
        let lo = (src.floor() as usize).min(n_in - 1);
        let hi = (lo + 1).min(n_in - 1);
        let frac = src - lo as f32;
        m[o * n_in + lo] += 1.0 - frac;
        m[o * n_in + hi] += frac;
    }
    m
}
