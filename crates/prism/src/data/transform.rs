//! Image-level transforms applied while loading: bring any image to a square of the training size.

use image::imageops::FilterType;
use image::{RgbImage, imageops};
use serde::{Deserialize, Serialize};

/// How an image is brought to `image_size × image_size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fit {
    /// Resize the shorter side to the target (Lanczos), then take the centre square.
    #[default]
    Resize,
    /// Centre the image on a background square of the target size (e.g. 28 → 32), shrinking it
    /// first if it is larger.
    Pad,
    /// Take the centre square of the target size without resizing (smaller images are padded).
    CenterCrop,
    /// Resize the shorter side to `load_size`, keep the centre square, and take a random
    /// `image_size` crop of it for every training batch.
    RandomCrop,
}

/// Brings `img` to a `size × size` square according to `fit` (`RandomCrop` is resolved at batch
/// time; here it behaves like `Resize` to the load size).
pub fn fit_to_size(img: &RgbImage, size: usize, fit: Fit, background: [u8; 3]) -> RgbImage {
    let size = size as u32;
    let (w, h) = img.dimensions();
    match fit {
        Fit::Resize | Fit::RandomCrop => {
            if (w, h) == (size, size) {
                return img.clone();
            }
            let scale = size as f64 / w.min(h) as f64;
            let (nw, nh) = (
                ((w as f64 * scale).round() as u32).max(size),
                ((h as f64 * scale).round() as u32).max(size),
            );
            let resized = imageops::resize(img, nw, nh, FilterType::Lanczos3);
            imageops::crop_imm(&resized, (nw - size) / 2, (nh - size) / 2, size, size).to_image()
        }
        Fit::Pad => {
            let src = if w > size || h > size {
                let scale = size as f64 / w.max(h) as f64;
                imageops::resize(
                    img,
                    ((w as f64 * scale).round() as u32).max(1),
                    ((h as f64 * scale).round() as u32).max(1),
                    FilterType::Lanczos3,
                )
            } else {
                img.clone()
            };
            paste_centred(&src, size, background)
        }
        Fit::CenterCrop => {
            if w >= size && h >= size {
                imageops::crop_imm(img, (w - size) / 2, (h - size) / 2, size, size).to_image()
            } else {
                paste_centred(img, size, background)
            }
        }
    }
}

fn paste_centred(src: &RgbImage, size: u32, background: [u8; 3]) -> RgbImage {
    let mut canvas = RgbImage::from_pixel(size, size, image::Rgb(background));
    let (w, h) = src.dimensions();
    let (x, y) = ((size.saturating_sub(w)) / 2, (size.saturating_sub(h)) / 2);
    imageops::overlay(&mut canvas, src, x as i64, y as i64);
    canvas
}

/// Flips a `[C, S, S]` image left–right in place.
pub fn hflip(pixels: &mut [f32], channels: usize, size: usize) {
    for c in 0..channels {
        for y in 0..size {
            let row = &mut pixels[(c * size + y) * size..(c * size + y + 1) * size];
            row.reverse();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pad_centres_on_background() {
        let img = RgbImage::from_pixel(28, 28, image::Rgb([0, 0, 0]));
        let out = fit_to_size(&img, 32, Fit::Pad, [255, 255, 255]);
        assert_eq!(out.dimensions(), (32, 32));
        assert_eq!(out.get_pixel(0, 0).0, [255, 255, 255]);
        assert_eq!(out.get_pixel(2, 2).0, [0, 0, 0]);
        assert_eq!(out.get_pixel(29, 29).0, [0, 0, 0]);
        assert_eq!(out.get_pixel(30, 30).0, [255, 255, 255]);
    }

    #[test]
    fn resize_takes_the_centre_of_the_short_side() {
        let mut img = RgbImage::from_pixel(40, 20, image::Rgb([0, 0, 0]));
        for y in 0..20 {
            for x in 10..30 {
                img.put_pixel(x, y, image::Rgb([200, 200, 200]));
            }
        }
        let out = fit_to_size(&img, 10, Fit::Resize, [0, 0, 0]);
        assert_eq!(out.dimensions(), (10, 10));
        assert!(out.pixels().all(|p| p.0[0] > 150));
    }

    #[test]
    fn hflip_reverses_rows() {
        let mut px = vec![1.0, 2.0, 3.0, 4.0];
        hflip(&mut px, 1, 2);
        assert_eq!(px, vec![2.0, 1.0, 4.0, 3.0]);
    }
}
