//! Structural similarity (Wang, Bovik, Sheikh & Simoncelli 2004; formula sheet §6, paired
//! metrics) in the paper's setup, as scikit-image's `structural_similarity(a, b,
//! gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=R)`:
//!
//! `SSIM = (2μₐμ_b + C₁)(2σ_ab + C₂) / ((μₐ² + μ_b² + C₁)(σₐ² + σ_b² + C₂))` per pixel, with the
//! local moments `μ, σ², σ_ab` from an isotropic Gaussian window (σ = 1.5, truncated at 3.5σ, so
//! 11×11 taps, scipy's 'reflect' borders `d c b a | a b c d`), population (not sample) covariances,
//! `C₁ = (0.01 R)²`, `C₂ = (0.03 R)²`; the image's SSIM is the mean over the pixels at least 5 from
//! every border, and a colour image's SSIM the mean over its channels. Images must be at least
//! 11×11.

use burn::tensor::Tensor;

use super::paired::check_images;
use crate::{Error, Result};

/// Gaussian window σ.
pub const SSIM_SIGMA: f64 = 1.5;
/// Half the window: `⌊3.5σ + 0.5⌋` (scipy's `truncate = 3.5`, as scikit-image passes).
const RADIUS: usize = 5;
/// The window side, the smallest image side SSIM accepts.
pub const SSIM_WINDOW: usize = 2 * RADIUS + 1;

/// scipy's normalised 1-D Gaussian taps for `σ`, radius [`RADIUS`].
fn taps() -> [f64; SSIM_WINDOW] {
    let mut k = [0.0; SSIM_WINDOW];
    for (i, v) in k.iter_mut().enumerate() {
        let x = i as f64 - RADIUS as f64;
        *v = (-0.5 * x * x / (SSIM_SIGMA * SSIM_SIGMA)).exp();
    }
    let s: f64 = k.iter().sum();
    k.map(|v| v / s)
}

/// scipy's 'reflect' border: index `i` of a line of `n` mirrored about the half-sample edges.
fn reflect(i: isize, n: usize) -> usize {
    let p = 2 * n as isize;
    let m = i.rem_euclid(p);
    (if m >= n as isize { p - 1 - m } else { m }) as usize
}

/// The separable Gaussian filter of an `h × w` plane (rows first, then columns, as scipy).
fn gaussian(x: &[f64], h: usize, w: usize, k: &[f64; SSIM_WINDOW]) -> Vec<f64> {
    let r = RADIUS as isize;
    let mut tmp = vec![0.0; h * w];
    for y in 0..h {
        for xx in 0..w {
            tmp[y * w + xx] = (0..SSIM_WINDOW)
                .map(|j| k[j] * x[reflect(y as isize + j as isize - r, h) * w + xx])
                .sum();
        }
    }
    let mut out = vec![0.0; h * w];
    for y in 0..h {
        for xx in 0..w {
            out[y * w + xx] = (0..SSIM_WINDOW)
                .map(|j| k[j] * tmp[y * w + reflect(xx as isize + j as isize - r, w)])
                .sum();
        }
    }
    out
}

/// The mean SSIM of one plane pair.
fn ssim_plane(a: &[f64], b: &[f64], h: usize, w: usize, data_range: f64) -> f64 {
    let k = taps();
    let prod = |f: &dyn Fn(usize) -> f64| (0..h * w).map(f).collect::<Vec<f64>>();
    let ua = gaussian(a, h, w, &k);
    let ub = gaussian(b, h, w, &k);
    let uaa = gaussian(&prod(&|i| a[i] * a[i]), h, w, &k);
    let ubb = gaussian(&prod(&|i| b[i] * b[i]), h, w, &k);
    let uab = gaussian(&prod(&|i| a[i] * b[i]), h, w, &k);
    let c1 = (0.01 * data_range).powi(2);
    let c2 = (0.03 * data_range).powi(2);
    let mut sum = 0.0;
    let mut count = 0usize;
    for y in RADIUS..h - RADIUS {
        for x in RADIUS..w - RADIUS {
            let i = y * w + x;
            let (va, vb) = (uaa[i] - ua[i] * ua[i], ubb[i] - ub[i] * ub[i]);
            let vab = uab[i] - ua[i] * ub[i];
            sum += (2.0 * ua[i] * ub[i] + c1) * (2.0 * vab + c2)
                / ((ua[i] * ua[i] + ub[i] * ub[i] + c1) * (va + vb + c2));
            count += 1;
        }
    }
    sum / count as f64
}

/// SSIM of two `[channels, height, width]` images (row-major) with data range `data_range`.
pub fn ssim(a: &[f32], b: &[f32], shape: [usize; 3], data_range: f64) -> Result<f64> {
    let [c, h, w] = shape;
    if a.len() != c * h * w || b.len() != a.len() || c == 0 {
        return Err(Error::Shape(format!(
            "SSIM compares two images of shape {shape:?}, got {} and {} values",
            a.len(),
            b.len()
        )));
    }
    if h < SSIM_WINDOW || w < SSIM_WINDOW {
        return Err(Error::invalid(format!(
            "SSIM's {SSIM_WINDOW}×{SSIM_WINDOW} window needs images at least that large, got {h}×{w}"
        )));
    }
    if !(data_range.is_finite() && data_range > 0.0) {
        return Err(Error::invalid(format!(
            "SSIM data range must be finite and positive, got {data_range}"
        )));
    }
    let plane = h * w;
    let total: f64 = (0..c)
        .map(|ch| {
            let pa: Vec<f64> = a[ch * plane..(ch + 1) * plane]
                .iter()
                .map(|&v| v as f64)
                .collect();
            let pb: Vec<f64> = b[ch * plane..(ch + 1) * plane]
                .iter()
                .map(|&v| v as f64)
                .collect();
            ssim_plane(&pa, &pb, h, w, data_range)
        })
        .sum();
    Ok(total / c as f64)
}

/// The SSIM of each pair of images in two `[B, C, H, W]` batches in `[0, 1]` (data range 1).
pub fn ssim_batch(a: Tensor<4>, b: Tensor<4>) -> Result<Vec<f64>> {
    let (dims, a, b) = check_images(a, b, "SSIM")?;
    let per = dims[1] * dims[2] * dims[3];
    a.chunks(per)
        .zip(b.chunks(per))
        .map(|(x, y)| ssim(x, y, [dims[1], dims[2], dims[3]], 1.0))
        .collect()
}
