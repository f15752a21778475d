//! Random inpainting masks for training (1 = the region to fill, 0 = known), after the masks LDM's
//! inpainting model was trained with, LaMa's generator (Suvorov et al. 2022, "wide" masks): each
//! mask is, with probability `box_prob`, 1 to `max_boxes` axis-aligned boxes, otherwise 1 to
//! `max_strokes` brush strokes.
//!
//! - a box has each side uniform in `[0.1, 0.5]` of the image side, at a uniform position inside
//!   the image;
//! - a stroke is a polyline from a uniform start of 1 to 4 segments, each in a uniform direction
//!   with a length uniform in `[0.1, 0.4]` of the side, drawn with a round brush whose width is
//!   uniform in `[0.05, 0.15]` of the side (at least one pixel): every pixel whose centre lies
//!   within half the width of a segment is filled. Strokes may leave the image; only the pixels
//!   inside count.
//!
//! An all-known mask is never returned: an empty draw fills the centre pixel.

use burn::tensor::{Device, Tensor, TensorData};
use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How training masks are drawn (`[stage] masks = { … }` of an inpainting stage).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskConfig {
    /// Probability that a mask is boxes rather than brush strokes.
    #[serde(default = "default_box_prob")]
    pub box_prob: f64,
    /// Most boxes in one mask.
    #[serde(default = "default_max_boxes")]
    pub max_boxes: usize,
    /// Most strokes in one mask.
    #[serde(default = "default_max_strokes")]
    pub max_strokes: usize,
}

fn default_box_prob() -> f64 {
    0.5
}
fn default_max_boxes() -> usize {
    3
}
fn default_max_strokes() -> usize {
    4
}

impl Default for MaskConfig {
    fn default() -> Self {
        Self {
            box_prob: default_box_prob(),
            max_boxes: default_max_boxes(),
            max_strokes: default_max_strokes(),
        }
    }
}

impl MaskConfig {
    /// Range checks; errors start with `key`.
    pub fn validate(&self, key: &str) -> Result<()> {
        if !(0.0..=1.0).contains(&self.box_prob) {
            return Err(Error::config(format!(
                "{key}.box_prob must lie in [0, 1], got {}",
                self.box_prob
            )));
        }
        if self.max_boxes == 0 || self.max_strokes == 0 {
            return Err(Error::config(format!(
                "{key}.max_boxes and {key}.max_strokes must be positive"
            )));
        }
        Ok(())
    }

    /// One `h × w` mask, row-major, values 0 or 1 (see the module docs).
    pub fn draw_one(&self, h: usize, w: usize, rng: &mut dyn RngCore) -> Vec<f32> {
        let mut m = vec![0.0f32; h * w];
        let side = h.min(w) as f64;
        if rng.random_bool(self.box_prob) {
            for _ in 0..rng.random_range(1..=self.max_boxes) {
                let bh = ((rng.random_range(0.1..=0.5) * h as f64).round() as usize).clamp(1, h);
                let bw = ((rng.random_range(0.1..=0.5) * w as f64).round() as usize).clamp(1, w);
                let (y0, x0) = (rng.random_range(0..=h - bh), rng.random_range(0..=w - bw));
                for y in y0..y0 + bh {
                    m[y * w + x0..y * w + x0 + bw].fill(1.0);
                }
            }
        } else {
            for _ in 0..rng.random_range(1..=self.max_strokes) {
                let width = (rng.random_range(0.05..=0.15) * side).max(1.0);
                let mut p = (
                    rng.random_range(0.0..h as f64),
                    rng.random_range(0.0..w as f64),
                );
                for _ in 0..rng.random_range(1..=4) {
                    let angle = rng.random_range(0.0..std::f64::consts::TAU);
                    let len = rng.random_range(0.1..=0.4) * side;
                    let q = (p.0 + len * angle.sin(), p.1 + len * angle.cos());
                    paint_segment(&mut m, h, w, p, q, width / 2.0);
                    p = q;
                }
            }
        }
        if m.iter().all(|&v| v == 0.0) {
            m[(h / 2) * w + w / 2] = 1.0;
        }
        m
    }

    /// `n` masks `[n, 1, h, w]` on `device`.
    pub fn draw(
        &self,
        n: usize,
        h: usize,
        w: usize,
        rng: &mut dyn RngCore,
        device: &Device,
    ) -> Tensor<4> {
        let data: Vec<f32> = (0..n).flat_map(|_| self.draw_one(h, w, rng)).collect();
        Tensor::from_data(TensorData::new(data, [n, 1, h, w]), device)
    }
}

/// Fills the pixels (centres at `(y + ½, x + ½)`) within `radius` of the segment `p`–`q`.
fn paint_segment(m: &mut [f32], h: usize, w: usize, p: (f64, f64), q: (f64, f64), radius: f64) {
    let (dy, dx) = (q.0 - p.0, q.1 - p.1);
    let len2 = dy * dy + dx * dx;
    let lo = |a: f64, b: f64| ((a.min(b) - radius).floor().max(0.0)) as usize;
    let hi = |a: f64, b: f64, n: usize| ((a.max(b) + radius).ceil().max(0.0) as usize).min(n);
    for y in lo(p.0, q.0)..hi(p.0, q.0, h) {
        for x in lo(p.1, q.1)..hi(p.1, q.1, w) {
            let (cy, cx) = (y as f64 + 0.5, x as f64 + 0.5);
            let s = if len2 > 0.0 {
                (((cy - p.0) * dy + (cx - p.1) * dx) / len2).clamp(0.0, 1.0)
            } else {
                0.0
            };
            let (ey, ex) = (cy - p.0 - s * dy, cx - p.1 - s * dx);
            if ey * ey + ex * ex <= radius * radius {
                m[y * w + x] = 1.0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// Masks are binary, never empty, never the whole image on average, and both kinds occur;
    /// boxes are filled rectangles.
    #[test]
    fn masks_are_binary_boxes_or_strokes() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let cfg = MaskConfig::default();
        let (h, w) = (32, 24);
        let mut cover = Vec::new();
        for _ in 0..200 {
            let m = cfg.draw_one(h, w, &mut rng);
            assert!(m.iter().all(|&v| v == 0.0 || v == 1.0));
            let c = m.iter().sum::<f32>() / (h * w) as f32;
            assert!(c > 0.0);
            cover.push(c);
        }
        let mean = cover.iter().sum::<f32>() / cover.len() as f32;
        assert!((0.05..0.6).contains(&mean), "mean cover {mean}");
        let boxes = MaskConfig {
            box_prob: 1.0,
            max_boxes: 1,
            ..cfg.clone()
        };
        let m = boxes.draw_one(h, w, &mut rng);
        let rows: Vec<usize> = (0..h)
            .filter(|&y| m[y * w..(y + 1) * w].contains(&1.0))
            .collect();
        let cols: Vec<usize> = (0..w)
            .filter(|&x| (0..h).any(|y| m[y * w + x] == 1.0))
            .collect();
        let area = m.iter().filter(|&&v| v == 1.0).count();
        assert_eq!(
            area,
            rows.len() * cols.len(),
            "one box is a filled rectangle"
        );
        let strokes = MaskConfig {
            box_prob: 0.0,
            ..cfg.clone()
        };
        let m = strokes.draw_one(h, w, &mut rng);
        assert!(m.contains(&1.0));
        let e = MaskConfig {
            box_prob: 1.5,
            ..cfg
        }
        .validate("stage.masks")
        .unwrap_err();
        assert!(e.to_string().contains("stage.masks.box_prob"), "{e}");
    }
}
