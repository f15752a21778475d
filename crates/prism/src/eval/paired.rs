//! What the paired metrics (PSNR, SSIM) share: checking two batches of images for equal shape and
//! finite values in `[0, 1]`, and reading them to the host.

use burn::tensor::Tensor;

use crate::tensor::to_vec;
use crate::{Error, Result};

/// The shape and host values of two batches that pair image by image.
pub(crate) fn check_images(
    a: Tensor<4>,
    b: Tensor<4>,
    metric: &str,
) -> Result<([usize; 4], Vec<f32>, Vec<f32>)> {
    let (da, db) = (a.dims(), b.dims());
    if da != db || da[0] == 0 {
        return Err(Error::Shape(format!(
            "{metric} pairs images of one shape, got {da:?} and {db:?}"
        )));
    }
    let (a, b) = (to_vec(a), to_vec(b));
    if a.iter().chain(&b).any(|v| !(0.0..=1.0).contains(v)) {
        return Err(Error::invalid(format!(
            "{metric} takes images in [0, 1]; a value is outside (or not finite)"
        )));
    }
    Ok((da, a, b))
}

/// A learned paired distance (LPIPS): one value per image pair of two `[B, C, H, W]` batches in
/// `[-1, 1]`. The CLI's `--metrics lpips` talks only to this trait.
pub trait PairedDistance {
    /// What it is, for reports.
    fn describe(&self) -> String;
    /// One distance per pair.
    fn distances(&self, a: Tensor<4>, b: Tensor<4>) -> Result<Vec<f64>>;
}

/// Pairs per LPIPS forward pass: bounds the VGG16 activations held at once.
const LPIPS_CHUNK: usize = 16;

impl PairedDistance for crate::nn::Lpips {
    fn describe(&self) -> String {
        "LPIPS (VGG16, lpips v0.1 linear layers)".into()
    }

    fn distances(&self, a: Tensor<4>, b: Tensor<4>) -> Result<Vec<f64>> {
        let n = a.dims()[0];
        let mut out = Vec::with_capacity(n);
        for start in (0..n).step_by(LPIPS_CHUNK) {
            let len = LPIPS_CHUNK.min(n - start);
            let d = self.distance(
                a.clone().narrow(0, start, len),
                b.clone().narrow(0, start, len),
            )?;
            out.extend(to_vec(d).into_iter().map(f64::from));
        }
        Ok(out)
    }
}
