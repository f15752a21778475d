//! Peak signal-to-noise ratio of paired images (formula sheet §6, paired metrics):
//! `PSNR = 10 log₁₀(R² / MSE)` with the data range `R` (1 for images in `[0, 1]`) and the mean
//! squared error over every pixel and channel of one image, as scikit-image's
//! `peak_signal_noise_ratio(a, b, data_range=R)`. A set's PSNR is the mean of its images' PSNRs
//! (the usual super-resolution report); identical images give `+∞`.

use burn::tensor::Tensor;

use super::paired::check_images;
use crate::{Error, Result};

/// PSNR (dB) of two images given as equal-length values with data range `data_range`.
pub fn psnr(a: &[f32], b: &[f32], data_range: f64) -> Result<f64> {
    if a.len() != b.len() || a.is_empty() {
        return Err(Error::Shape(format!(
            "PSNR compares images of equal size, got {} and {} values",
            a.len(),
            b.len()
        )));
    }
    if !(data_range.is_finite() && data_range > 0.0) {
        return Err(Error::invalid(format!(
            "PSNR data range must be finite and positive, got {data_range}"
        )));
    }
    let mse = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    Ok(10.0 * (data_range * data_range / mse).log10())
}

/// The PSNR of each pair of images in two `[B, C, H, W]` batches in `[0, 1]` (data range 1).
pub fn psnr_batch(a: Tensor<4>, b: Tensor<4>) -> Result<Vec<f64>> {
    let (dims, a, b) = check_images(a, b, "PSNR")?;
    let per = dims[1] * dims[2] * dims[3];
    a.chunks(per)
        .zip(b.chunks(per))
        .map(|(x, y)| psnr(x, y, 1.0))
        .collect()
}
