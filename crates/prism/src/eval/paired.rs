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

/// The message for `lpips` while no LPIPS network is part of this build.
pub const LPIPS_UNAVAILABLE: &str = "LPIPS is not available in this build: its network is not \
     part of prism yet (it will take its weights with --lpips FILE); use --metrics psnr,ssim";
