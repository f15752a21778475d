//! A super-resolution stage applied to images of any size (`prism upscale`): the stage is fully
//! convolutional, so it refines an `H × W` image to `factor·H × factor·W`, sampling in
//! overlapping tiles ([`TiledDenoiser`]) so that the network's memory is that of one tile.
//!
//! Sides that the network's downsampling does not divide are padded by repeating the last row
//! and column, and the output is cropped back to `factor` times the input.

use burn::tensor::Tensor;
use rand::SeedableRng;

use super::{Stage, StageSampling};
use crate::denoiser::{TiledDenoiser, Tiling};
use crate::nn::Condition;
use crate::process::Level;
use crate::sample::{Sampling, check_sampler, sample};
use crate::{Error, Result};

/// How to upscale.
#[derive(Debug, Clone, PartialEq)]
pub struct UpscaleOptions {
    /// Sampler, steps, clipping and the condition's noise augmentation time.
    pub sampling: StageSampling,
    /// Tile side in output pixels (rounded down to [`Stage::output_multiple`]).
    pub tile: usize,
    /// Least overlap of neighbouring tiles, in output pixels.
    pub overlap: usize,
    /// Seed of the prior noise, the sampler's noise and the augmentation noise.
    pub seed: u64,
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

impl Stage {
    /// The multiple every output side and tile corner of a super-resolution stage must be: the
    /// least common multiple of its factor and its network's downsampling (patching times
    /// `2^depth`), so that tiles align with the blocks of the upsampled condition.
    pub fn output_multiple(&self) -> usize {
        let m = &self.cfg.model;
        let net = m.patching.spatial_factor() << m.net.depth();
        let f = self.cfg.stage.factor().unwrap_or(1);
        net / gcd(net, f) * f
    }
}

/// `x` (`[B, C, H, W]`) extended to `h × w` (at least its size) by repeating its last row and
/// column.
fn pad_edge(x: Tensor<4>, h: usize, w: usize) -> Tensor<4> {
    let [b, c, h0, w0] = x.dims();
    let x = if h > h0 {
        let last = x.clone().slice([0..b, 0..c, h0 - 1..h0, 0..w0]);
        Tensor::cat(vec![x, last.repeat_dim(2, h - h0)], 2)
    } else {
        x
    };
    if w > w0 {
        let last = x.clone().slice([0..b, 0..c, 0..h, w0 - 1..w0]);
        Tensor::cat(vec![x, last.repeat_dim(3, w - w0)], 3)
    } else {
        x
    }
}

/// Refines `low` (`[B, C, H, W]` in `[-1, 1]`, the stage's channels) to
/// `[B, C, factor·H, factor·W]` with the super-resolution `stage`. `on_step(i, steps)` after
/// each network evaluation (all tiles of it).
pub fn upscale(
    stage: &Stage,
    low: Tensor<4>,
    opts: &UpscaleOptions,
    on_step: &mut dyn FnMut(usize, usize),
) -> Result<Tensor<4>> {
    let Some(factor) = stage.cfg.stage.factor() else {
        return Err(Error::invalid(format!(
            "'{}' is a base model, not a super-resolution stage (stage.kind = \"super_resolution\")",
            stage.path.display()
        )));
    };
    let [n, c, h, w] = low.dims();
    if c != stage.cfg.data.channels {
        return Err(Error::Shape(format!(
            "the image has {c} channels, the stage '{}' takes {}",
            stage.path.display(),
            stage.cfg.data.channels
        )));
    }
    let multiple = stage.output_multiple();
    let q = multiple / factor;
    let (ph, pw) = (h.div_ceil(q) * q, w.div_ceil(q) * q);
    let low = pad_edge(low, ph, pw);
    let device = low.device();
    let s = &opts.sampling;
    let cond = stage.condition(low, s.noise_aug, opts.seed)?;
    let shape = stage.space.shape([n, c, ph * factor, pw * factor]);
    let tiling = Tiling {
        tile: (opts.tile / multiple * multiple).max(multiple),
        overlap: opts.overlap,
        align: multiple,
    };
    tiling.validate()?;
    let process = stage.process.as_ref();
    let tiled = shape[2] > tiling.tile || shape[3] > tiling.tile;
    if tiled && !process.is_pointwise() {
        return Err(Error::invalid(format!(
            "the {} process converts the network's output over the whole image, so it cannot be \
             sampled in tiles; give a tile side of at least the output ({}×{})",
            process.kind(),
            shape[2],
            shape[3]
        )));
    }
    check_sampler(process, s.kind)?;
    let model = &stage.model;
    let denoiser = TiledDenoiser {
        tiling,
        cond,
        denoise: |z: Tensor<4>, level: Level, cond: &Condition| {
            let b = z.dims()[0];
            model.predict(process, z, &vec![level; b], cond)
        },
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(opts.seed);
    let z1 = process.prior(shape, &mut rng, &device);
    let sampling = Sampling {
        process,
        denoiser: &denoiser,
        kind: s.kind,
        steps: s.steps,
        spacing: s.spacing,
        clip_x0: s.clip_x0,
    };
    let z = sample(&sampling, z1, shape, &mut rng, on_step)?;
    let out = stage.space.decode(z)?;
    Ok(out.slice([0..n, 0..c, 0..h * factor, 0..w * factor]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::to_vec;

    #[test]
    fn padding_repeats_the_last_row_and_column() {
        let device = burn::tensor::Device::flex();
        let x = Tensor::<4>::from_floats([[[[1.0, 2.0], [3.0, 4.0]]]], &device);
        let p = pad_edge(x, 3, 4);
        assert_eq!(p.dims(), [1, 1, 3, 4]);
        assert_eq!(
            to_vec(p),
            vec![1.0, 2.0, 2.0, 2.0, 3.0, 4.0, 4.0, 4.0, 3.0, 4.0, 4.0, 4.0]
        );
        assert_eq!(gcd(12, 8), 4);
    }
}
