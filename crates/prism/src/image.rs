//! Tensors ⇄ PNG/JPEG: save a batch in `[-1, 1]` as a grid picture or one image, or load one image
//! as a tensor.

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

/// The first image of a `[B, C, H, W]` batch (C = 1 or 3) in `[-1, 1]` as 8-bit RGB, without a
/// border.
pub fn to_rgb(images: Tensor<4>) -> Result<RgbImage> {
    let [b, c, h, w] = images.dims();
    if !(c == 1 || c == 3) || b == 0 {
        return Err(Error::Shape(format!(
            "an image needs [B>0, 1|3, H, W], got [{b}, {c}, {h}, {w}]"
        )));
    }
    let data = to_vec(images.narrow(0, 0, 1));
    Ok(ImageBuffer::from_fn(w as u32, h as u32, |x, y| {
        let px = |ch: usize| to_byte(data[(ch * h + y as usize) * w + x as usize]);
        if c == 1 {
            Rgb([px(0); 3])
        } else {
            Rgb([px(0), px(1), px(2)])
        }
    }))
}

/// Saves an image as PNG, atomically, creating the parent directory.
pub fn save_png(img: &RgbImage, path: &Path) -> Result<()> {
    save_as(img, path, image::ImageFormat::Png)
}

/// Saves an image as PNG or JPEG (quality 95) by the extension of `path` (`.png`, `.jpg`,
/// `.jpeg`), atomically; another extension is an error.
pub fn save_image(img: &RgbImage, path: &Path) -> Result<()> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("png") => save_png(img, path),
        Some("jpg" | "jpeg") => {
            let mut bytes = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 95)
                .encode_image(img)
                .map_err(|source| Error::Image {
                    path: path.into(),
                    source,
                })?;
            crate::fsutil::write_atomic(path, &bytes)
        }
        _ => Err(Error::invalid(format!(
            "'{}': images are written as .png, .jpg or .jpeg",
            path.display()
        ))),
    }
}

fn save_as(img: &RgbImage, path: &Path, format: image::ImageFormat) -> Result<()> {
    let mut bytes = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut bytes), format)
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
