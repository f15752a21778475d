//! Multi-scale sliced Wasserstein distance (Karras et al. 2018, "Progressive Growing of GANs", §5
//! and their `sliced_wasserstein.py`):
//!
//! 1. a Laplacian pyramid per image with the 5×5 binomial kernel `[1,4,6,4,1]⊗[1,4,6,4,1]/256`,
//!    reflect-101 borders (OpenCV's `pyrDown`/`pyrUp`), down to `min_size` (16) pixels;
//! 2. 128 random 7×7 patches per image and level (all channels), flattened;
//! 3. per level, each set's descriptors normalised per channel (its own mean and std);
//! 4. the sliced Wasserstein distance: 4 × 128 random unit directions, projections sorted, mean
//!    absolute difference, averaged over the repeats;
//! 5. reported ×10³ per level, and their mean.

use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use rayon::prelude::*;

use crate::{Error, Result};

/// A planar image `[C, H, W]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Planes {
    /// Channels.
    pub c: usize,
    /// Height.
    pub h: usize,
    /// Width.
    pub w: usize,
    /// `c·h·w` values, channel-major.
    pub data: Vec<f32>,
}

const KERNEL: [f32; 5] = [1.0, 4.0, 6.0, 4.0, 1.0];

/// Reflect-101 index (`d c b | a b c d | c b a`).
fn reflect101(i: isize, n: usize) -> usize {
    let n = n as isize;
    if n == 1 {
        return 0;
    }
    let period = 2 * (n - 1);
    let mut i = i.rem_euclid(period);
    if i >= n {
        i = period - i;
    }
    i as usize
}

/// Separable 5-tap binomial filter of one plane with reflect-101 borders, scaled by `gain`.
fn blur(plane: &[f32], h: usize, w: usize, gain: f32) -> Vec<f32> {
    let mut tmp = vec![0.0; h * w];
    for y in 0..h {
        for x in 0..w {
            let mut acc = 0.0;
            for (k, &kv) in KERNEL.iter().enumerate() {
                acc += kv * plane[y * w + reflect101(x as isize + k as isize - 2, w)];
            }
            tmp[y * w + x] = acc / 16.0;
        }
    }
    let mut out = vec![0.0; h * w];
    for y in 0..h {
        for x in 0..w {
            let mut acc = 0.0;
            for (k, &kv) in KERNEL.iter().enumerate() {
                acc += kv * tmp[reflect101(y as isize + k as isize - 2, h) * w + x];
            }
            out[y * w + x] = gain * acc / 16.0;
        }
    }
    out
}

/// OpenCV's `pyrDown`: blur, keep even rows and columns; size `((H+1)/2, (W+1)/2)`.
pub fn pyr_down(img: &Planes) -> Planes {
    let (h2, w2) = (img.h.div_ceil(2), img.w.div_ceil(2));
    let mut data = Vec::with_capacity(img.c * h2 * w2);
    for ch in img.data.chunks(img.h * img.w) {
        let b = blur(ch, img.h, img.w, 1.0);
        for y in 0..h2 {
            for x in 0..w2 {
                data.push(b[2 * y * img.w + 2 * x]);
            }
        }
    }
    Planes {
        c: img.c,
        h: h2,
        w: w2,
        data,
    }
}

/// OpenCV's `pyrUp` to `(h, w)`: samples at the even positions of a zero `2h' × 2w'` image, blur
/// with gain 4 (reflect-101 on that image), crop to `h × w`.
pub fn pyr_up(img: &Planes, h: usize, w: usize) -> Planes {
    let (h2, w2) = (2 * img.h, 2 * img.w);
    let mut data = Vec::with_capacity(img.c * h * w);
    for ch in img.data.chunks(img.h * img.w) {
        let mut up = vec![0.0; h2 * w2];
        for y in 0..img.h {
            for x in 0..img.w {
                up[2 * y * w2 + 2 * x] = ch[y * img.w + x];
            }
        }
        let b = blur(&up, h2, w2, 4.0);
        for y in 0..h.min(h2) {
            data.extend_from_slice(&b[y * w2..y * w2 + w.min(w2)]);
        }
    }
    Planes {
        c: img.c,
        h: h.min(h2),
        w: w.min(w2),
        data,
    }
}

/// Laplacian pyramid, finest level first; the last level is the Gaussian level at `min_size`.
pub fn laplacian_pyramid(img: &Planes, min_size: usize) -> Vec<Planes> {
    let mut levels = vec![img.clone()];
    while levels.last().is_some_and(|l| l.h.min(l.w) / 2 >= min_size) {
        let down = pyr_down(levels.last().unwrap());
        let last = levels.last_mut().unwrap();
        let up = pyr_up(&down, last.h, last.w);
        for (v, u) in last.data.iter_mut().zip(up.data) {
            *v -= u;
        }
        levels.push(down);
    }
    levels
}

/// Settings of the metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SwdOptions {
    /// Smallest pyramid level (16 in the paper).
    pub min_size: usize,
    /// Patch side (7).
    pub patch: usize,
    /// Patches per image and level (128).
    pub patches_per_image: usize,
    /// Repeats of the random directions (4).
    pub repeats: usize,
    /// Directions per repeat (128).
    pub directions: usize,
    /// Seed of patch positions and directions.
    pub seed: u64,
}

impl Default for SwdOptions {
    fn default() -> Self {
        Self {
            min_size: 16,
            patch: 7,
            patches_per_image: 128,
            repeats: 4,
            directions: 128,
            seed: 0,
        }
    }
}

/// Per-level distances ×10³ (finest first) and their mean.
#[derive(Debug, Clone, PartialEq)]
pub struct Swd {
    /// Resolution of each level.
    pub resolutions: Vec<usize>,
    /// SWD ×10³ per level.
    pub per_level: Vec<f64>,
    /// Mean over levels.
    pub mean: f64,
}

/// Descriptors of one level for a set of images: `[n·patches, C·p·p]`, normalised per channel.
fn descriptors(
    levels: &[Vec<Planes>],
    level: usize,
    o: &SwdOptions,
    seed: u64,
) -> (Vec<f32>, usize) {
    let first = &levels[0][level];
    let (c, p) = (first.c, o.patch);
    let dim = c * p * p;
    let per_image: Vec<Vec<f32>> = levels
        .par_iter()
        .enumerate()
        .map(|(i, pyr)| {
            let img = &pyr[level];
            let mut rng =
                rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ (i as u64).wrapping_mul(0x9E37_79B9));
            let mut out = Vec::with_capacity(o.patches_per_image * dim);
            for _ in 0..o.patches_per_image {
                let y = rng.random_range(0..=img.h - p);
                let x = rng.random_range(0..=img.w - p);
                for ch in 0..c {
                    for dy in 0..p {
                        let row = (ch * img.h + y + dy) * img.w + x;
                        out.extend_from_slice(&img.data[row..row + p]);
                    }
                }
            }
            out
        })
        .collect();
    let mut d: Vec<f32> = per_image.into_iter().flatten().collect();
    // normalise each channel over all descriptors and positions
    let n = d.len() / dim;
    for ch in 0..c {
        let cols = (ch * p * p)..((ch + 1) * p * p);
        let (mut s, mut s2) = (0.0f64, 0.0f64);
        for r in 0..n {
            for k in cols.clone() {
                let v = d[r * dim + k] as f64;
                s += v;
                s2 += v * v;
            }
        }
        let m = (n * p * p) as f64;
        let mean = s / m;
        let std = (s2 / m - mean * mean).max(0.0).sqrt().max(1e-8);
        for r in 0..n {
            for k in cols.clone() {
                let v = &mut d[r * dim + k];
                *v = ((*v as f64 - mean) / std) as f32;
            }
        }
    }
    (d, dim)
}

/// Sliced Wasserstein distance between two descriptor sets of the same size.
fn sliced_wasserstein(a: &[f32], b: &[f32], dim: usize, o: &SwdOptions, rng: &mut impl Rng) -> f64 {
    let n = a.len() / dim;
    let mut total = 0.0;
    for _ in 0..o.repeats {
        let dirs: Vec<Vec<f32>> = (0..o.directions)
            .map(|_| {
                let v: Vec<f32> = (0..dim)
                    .map(|_| rng.sample::<f32, _>(StandardNormal))
                    .collect();
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                v.into_iter().map(|x| x / norm).collect()
            })
            .collect();
        let dist: f64 = dirs
            .par_iter()
            .map(|dir| {
                let project = |set: &[f32]| {
                    let mut p: Vec<f32> = set
                        .chunks(dim)
                        .map(|row| row.iter().zip(dir).map(|(x, d)| x * d).sum())
                        .collect();
                    p.sort_by(f32::total_cmp);
                    p
                };
                let (pa, pb) = (project(a), project(b));
                pa.iter()
                    .zip(&pb)
                    .map(|(x, y)| (x - y).abs() as f64)
                    .sum::<f64>()
                    / n as f64
            })
            .sum();
        total += dist / o.directions as f64;
    }
    total / o.repeats as f64
}

/// Multi-scale SWD between two equally sized sets of images of one shape.
pub fn swd(a: &[Planes], b: &[Planes], o: &SwdOptions) -> Result<Swd> {
    if a.is_empty() || a.len() != b.len() {
        return Err(Error::invalid(format!(
            "SWD needs two non-empty sets of equal size, got {} and {}",
            a.len(),
            b.len()
        )));
    }
    let shape = (a[0].c, a[0].h, a[0].w);
    if a.iter().chain(b).any(|p| (p.c, p.h, p.w) != shape) {
        return Err(Error::invalid("SWD needs images of one shape"));
    }
    if shape.1.min(shape.2) < o.min_size.max(o.patch) {
        return Err(Error::invalid(format!(
            "SWD needs images of at least {} pixels, got {}×{}",
            o.min_size.max(o.patch),
            shape.1,
            shape.2
        )));
    }
    let pa: Vec<Vec<Planes>> = a
        .par_iter()
        .map(|i| laplacian_pyramid(i, o.min_size))
        .collect();
    let pb: Vec<Vec<Planes>> = b
        .par_iter()
        .map(|i| laplacian_pyramid(i, o.min_size))
        .collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(o.seed);
    let mut per_level = Vec::new();
    let mut resolutions = Vec::new();
    for level in 0..pa[0].len() {
        let (da, dim) = descriptors(&pa, level, o, o.seed.wrapping_add(1 + 2 * level as u64));
        let (db, _) = descriptors(&pb, level, o, o.seed.wrapping_add(2 + 2 * level as u64));
        per_level.push(1e3 * sliced_wasserstein(&da, &db, dim, o, &mut rng));
        resolutions.push(pa[0][level].h);
    }
    let mean = per_level.iter().sum::<f64>() / per_level.len() as f64;
    Ok(Swd {
        resolutions,
        per_level,
        mean,
    })
}

#[cfg(test)]
#[path = "swd_tests.rs"]
mod tests;
