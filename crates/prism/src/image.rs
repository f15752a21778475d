//! Tensors ⇄ PNG: save a batch in `[-1, 1]` as a grid picture, or load one image as a tensor.

use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};
use image::{ImageBuffer, Rgb, RgbImage};

use crate::tensor::to_vec;
use crate::{Error, Result};

/// `[-1, 1]` → byte, rounding and clamping.
fn to_byte(v: f32) -> u8 {
    ((v.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8
}

/// Lays out a `[B, C, H, W]` batch (C = 1 or 3) as a grid with `cols` columns and a 2-pixel
/// border between images.
pub fn grid(images: Tensor<4>, cols: usize) -> Result<RgbImage> {
    let [b, c, h, w] = images.dims();
    if !(c == 1 || c == 3) || b == 0 {
        return Err(Error::Shape(format!(
            "a grid needs [B>0, 1|3, H, W], got [{b}, {c}, {h}, {w}]"
        )));
    }
    let cols = cols.clamp(1, b);
    let rows = b.div_ceil(cols);
    let pad = 2;
    let data = to_vec(images);
    let (gw, gh) = (cols * (w + pad) + pad, rows * (h + pad) + pad);
    let mut out: RgbImage = ImageBuffer::from_pixel(gw as u32, gh as u32, Rgb([40, 40, 40]));
    for i in 0..b {
        let (ox, oy) = (pad + (i % cols) * (w + pad), pad + (i / cols) * (h + pad));
        for y in 0..h {
            for x in 0..w {
                let px = |ch: usize| data[((i * c + ch) * h + y) * w + x];
                let rgb = if c == 1 {
                    let v = to_byte(px(0));
                    [v, v, v]
                } else {
                    [to_byte(px(0)), to_byte(px(1)), to_byte(px(2))]
                };
                out.put_pixel((ox + x) as u32, (oy + y) as u32, Rgb(rgb));
            }
        }
    }
    Ok(out)
}

/// One image `[1, C, H, W]` (C = 1 or 3) in `[-1, 1]` as 8-bit RGB at its own size (no border).
pub fn to_image(image: Tensor<4>) -> Result<RgbImage> {
    let [b, _, h, w] = image.dims();
    if b != 1 {
        return Err(Error::Shape(format!(
            "one image [1, C, H, W] expected, got a batch of {b}"
        )));
    }
    // The grid of one image is the image inside a 2-pixel border.
    let framed = grid(image, 1)?;
    Ok(image::imageops::crop_imm(&framed, 2, 2, w as u32, h as u32).to_image())
}

/// Saves an image as PNG, atomically, creating the parent directory.
pub fn save_png(img: &RgbImage, path: &Path) -> Result<()> {
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .map_err(|source| Error::Image {
        path: path.into(),
        source,
    })?;
    crate::fsutil::write_atomic(path, &bytes)
}

/// Loads one image (any size) as `[1, channels, size, size]` in `[-1, 1]`, fitted with `fit`.
pub fn load_image(
    path: &Path,
    channels: usize,
    size: usize,
    fit: crate::data::Fit,
    background: [u8; 3],
    device: &Device,
) -> Result<Tensor<4>> {
    let img = crate::data::open_image(path, background)?;
    let img = crate::data::fit_to_size(&img, size, fit, background);
    let data = crate::data::planes(&img, channels);
    Ok(Tensor::from_data(
        TensorData::new(data, [1, channels, size, size]),
        device,
    ))
}
