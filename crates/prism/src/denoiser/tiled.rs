//! Denoising a large state in overlapping tiles, so that the network's memory stays that of one
//! tile however large the image (`prism upscale` to 4K).
//!
//! At every network evaluation the state `z` is cut into tiles that overlap by at least
//! `overlap` pixels; each tile is denoised under its own crop of the spatial condition, and the
//! tiles' `x̂` and `ε̂` are blended with weights that ramp linearly from the tile's inner edges
//! (`w(i) = min(1, (i+1)/(overlap+1), (len−i)/(overlap+1))` per axis, 1 at the image border) and
//! are normalised per pixel. The sampler then steps the whole state, as MultiDiffusion (Bar-Tal
//! et al. 2023) does: one state and one noise draw per pixel, so overlapping tiles see the same
//! noise, and seams do not appear because every pixel's prediction is a convex blend of
//! predictions made from the same state. For a process whose conversion acts pixel by pixel
//! ([`crate::process::DiffusionProcess::is_pointwise`]) `x̂` and `ε̂` are the same affine function
//! of the raw output, so blending both keeps them consistent; and a denoiser that itself acts
//! pixel by pixel gives exactly the untiled result (tested).
//!
//! Memory: the network sees one tile; the state, the blended predictions and the sampler's
//! buffers are full size (`4 B × C × H × W` each, 201 MB at 4096² RGB).

use burn::tensor::{Tensor, TensorData};

use super::Denoise;
use crate::nn::Condition;
use crate::process::{Level, Prediction};
use crate::tensor::to_vec;
use crate::{Error, Result};

/// How a state is cut into tiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tiling {
    /// Tile side (a multiple of `align`).
    pub tile: usize,
    /// Least overlap of neighbouring tiles, in pixels.
    pub overlap: usize,
    /// Tile corners and sides are multiples of this (the network's downsampling, a stage's
    /// factor).
    pub align: usize,
}

impl Tiling {
    /// Range checks: a positive `align` dividing `tile`, and tiles that advance by at least
    /// `align` (`tile − overlap ≥ align`).
    pub fn validate(&self) -> Result<()> {
        if self.align == 0 || self.tile == 0 || !self.tile.is_multiple_of(self.align) {
            return Err(Error::invalid(format!(
                "the tile side {} must be a positive multiple of {} (the network's downsampling and the stage's factor)",
                self.tile, self.align
            )));
        }
        if self.overlap + self.align > self.tile {
            return Err(Error::invalid(format!(
                "the tile overlap {} must be at most the tile side {} minus {}",
                self.overlap, self.tile, self.align
            )));
        }
        Ok(())
    }

    /// The tiles along an axis of `n` pixels (`n` a multiple of `align`): `(start, len)`, from
    /// 0 to the end, neighbours overlapping by at least `overlap`.
    pub fn spans(&self, n: usize) -> Vec<(usize, usize)> {
        if n <= self.tile {
            return vec![(0, n)];
        }
        let stride = self.tile - self.overlap;
        let mut out = Vec::new();
        let mut p = 0;
        while p + self.tile < n {
            out.push((p, self.tile));
            p = (p + stride) / self.align * self.align;
        }
        out.push((n - self.tile, self.tile));
        out
    }

    /// The blend weight of each of the `len` pixels of the tile at `start` on an axis of `n`.
    fn ramp(&self, start: usize, len: usize, n: usize) -> Vec<f32> {
        let o = (self.overlap + 1) as f32;
        (0..len)
            .map(|i| {
                let left = if start > 0 { (i + 1) as f32 / o } else { 1.0 };
                let right = if start + len < n {
                    (len - i) as f32 / o
                } else {
                    1.0
                };
                left.min(right).min(1.0)
            })
            .collect()
    }
}

/// A [`Denoise`] that runs `denoise(z_tile, level, cond_tile)` on the tiles of the state and
/// blends the predictions (see the module docs). `cond`'s spatial condition has the state's
/// height and width; its other parts are per image and go to every tile whole.
pub struct TiledDenoiser<F> {
    /// How to cut the state.
    pub tiling: Tiling,
    /// The condition of the whole state.
    pub cond: Condition,
    /// Denoises one tile under its condition.
    pub denoise: F,
}

/// The `[.., .., y, x]` window of a 4-D tensor.
fn window(t: &Tensor<4>, (y, h): (usize, usize), (x, w): (usize, usize)) -> Tensor<4> {
    let [b, c, _, _] = t.dims();
    t.clone().slice([0..b, 0..c, y..y + h, x..x + w])
}

impl<F: Fn(Tensor<4>, Level, &Condition) -> Result<Prediction>> Denoise for TiledDenoiser<F> {
    fn denoise(&self, z: Tensor<4>, level: Level) -> Result<Prediction> {
        self.tiling.validate()?;
        let [b, c, h, w] = z.dims();
        if let Some(image) = &self.cond.image {
            let [_, _, ih, iw] = image.dims();
            if (ih, iw) != (h, w) {
                return Err(Error::Shape(format!(
                    "the spatial condition is {ih}×{iw} but the state is {h}×{w}"
                )));
            }
        }
        let (rows, cols) = (self.tiling.spans(h), self.tiling.spans(w));
        if rows.len() == 1 && cols.len() == 1 {
            return (self.denoise)(z, level, &self.cond);
        }
        let mut x0 = vec![0f32; b * c * h * w];
        let mut eps = vec![0f32; b * c * h * w];
        let mut total = vec![0f32; h * w];
        for &(y, th) in &rows {
            let wy = self.tiling.ramp(y, th, h);
            for &(x, tw) in &cols {
                let wx = self.tiling.ramp(x, tw, w);
                let cond = Condition {
                    image: self
                        .cond
                        .image
                        .as_ref()
                        .map(|i| window(i, (y, th), (x, tw))),
                    ..self.cond.clone()
                };
                let pred = (self.denoise)(window(&z, (y, th), (x, tw)), level, &cond)?;
                let (px, pe) = (to_vec(pred.x0_hat), to_vec(pred.eps_hat));
                for (i, &a) in wy.iter().enumerate() {
                    for (j, &bx) in wx.iter().enumerate() {
                        total[(y + i) * w + x + j] += a * bx;
                    }
                }
                for plane in 0..b * c {
                    for (i, &a) in wy.iter().enumerate() {
                        let src = (plane * th + i) * tw;
                        let dst = (plane * h + y + i) * w + x;
                        for (j, &bx) in wx.iter().enumerate() {
                            x0[dst + j] += a * bx * px[src + j];
                            eps[dst + j] += a * bx * pe[src + j];
                        }
                    }
                }
            }
        }
        for plane in 0..b * c {
            for (k, &t) in total.iter().enumerate() {
                x0[plane * h * w + k] /= t;
                eps[plane * h * w + k] /= t;
            }
        }
        let device = z.device();
        let tensor = |v: Vec<f32>| Tensor::from_data(TensorData::new(v, [b, c, h, w]), &device);
        Ok(Prediction {
            x0_hat: tensor(x0),
            eps_hat: tensor(eps),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_cover_the_axis_with_the_overlap() {
        let t = Tiling {
            tile: 64,
            overlap: 16,
            align: 8,
        };
        assert_eq!(t.spans(48), vec![(0, 48)]);
        assert_eq!(t.spans(64), vec![(0, 64)]);
        let s = t.spans(200);
        assert_eq!(s, vec![(0, 64), (48, 64), (96, 64), (136, 64)]);
        for pair in s.windows(2) {
            assert!(pair[0].0 + pair[0].1 >= pair[1].0 + 16);
        }
        // The weights of overlapping ramps are positive everywhere and 1 in tile interiors.
        let r = t.ramp(48, 64, 200);
        assert!(r.iter().all(|&v| v > 0.0));
        assert_eq!(r[0], 1.0 / 17.0);
        assert_eq!(r[32], 1.0);
        assert_eq!(t.ramp(0, 64, 200)[0], 1.0);
        assert!(
            Tiling {
                tile: 60,
                overlap: 8,
                align: 8
            }
            .validate()
            .is_err()
        );
        assert!(
            Tiling {
                tile: 64,
                overlap: 60,
                align: 8
            }
            .validate()
            .is_err()
        );
    }

    /// Where tiles do not matter, tiling changes nothing: with a denoiser that acts pixel by
    /// pixel on the state and the condition (`x̂ = tanh(z/2 + c)`), DDPM and DPM-Solver++ in
    /// 2 × 3 tiles of 24×24 overlapping by at least 8 give the untiled result to float rounding,
    /// on a 40×56 state, with the same noise per pixel.
    #[test]
    fn tiled_sampling_equals_untiled_for_a_pointwise_denoiser() {
        use crate::process::{DiffusionProcess, GaussianProcess, NoiseLevels, Parameterization};
        use crate::sample::{SamplerKind, Sampling, sample};
        use crate::schedule::{CosineSchedule, Schedule};
        use rand::SeedableRng;
        let (device, mut rng) = crate::golden_data::seeded(11);
        let process =
            GaussianProcess::new(Schedule::Cosine(CosineSchedule::new(-15.0, 15.0).unwrap()));
        let shape = [2, 3, 40, 56];
        let cond = Condition {
            image: Some(crate::tensor::normal(shape, &mut rng, &device)),
            ..Condition::none()
        };
        let pointwise = |z: Tensor<4>, level: Level, c: &Condition| -> Result<Prediction> {
            let raw = (z.clone() * 0.5 + c.image.clone().unwrap()).tanh();
            let n = NoiseLevels::new(vec![level.log_snr; z.dims()[0]], &z.device());
            Ok(Parameterization::X.prediction(raw, z, &n))
        };
        let untiled = TiledDenoiser {
            tiling: Tiling {
                tile: 64,
                overlap: 8,
                align: 8,
            },
            cond: cond.clone(),
            denoise: pointwise,
        };
        let tiled = TiledDenoiser {
            tiling: Tiling {
                tile: 24,
                overlap: 8,
                align: 8,
            },
            cond,
            denoise: pointwise,
        };
        assert_eq!(tiled.tiling.spans(40), vec![(0, 24), (16, 24)]);
        assert_eq!(tiled.tiling.spans(56).len(), 3);
        for kind in [SamplerKind::Ddpm, SamplerKind::DpmPp2m] {
            let run = |d: &dyn crate::denoiser::Denoise| {
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
                let z1 = process.prior(shape, &mut rng, &device);
                let s = Sampling {
                    process: &process,
                    denoiser: d,
                    kind,
                    steps: 6,
                    spacing: crate::sample::Spacing::default(),
                    clip_x0: true,
                };
                to_vec(sample(&s, z1, shape, &mut rng, &mut |_, _| {}).unwrap())
            };
            let (a, b) = (run(&untiled), run(&tiled));
            let err = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (x - y).abs())
                .fold(0f32, f32::max);
            assert!(err < 1e-5, "{kind}: {err}");
            assert!(a.iter().any(|v| v.abs() > 0.1));
        }
    }
}
