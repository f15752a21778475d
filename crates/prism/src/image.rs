//! Tensors ⇄ image files: save a batch in `[-1, 1]` as a grid picture, as one PNG per image or as
//! an `.npz`; load one image, or a whole evaluation set (a folder or an `.npz`), as a tensor.

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

/// Image `i` of a `[B, 1|3, H, W]` batch in `[-1, 1]` as 8-bit RGB (grey repeated).
fn to_rgb(data: &[f32], i: usize, c: usize, h: usize, w: usize) -> RgbImage {
    RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let px = |ch: usize| to_byte(data[((i * c + ch) * h + y as usize) * w + x as usize]);
        if c == 1 {
            let v = px(0);
            Rgb([v, v, v])
        } else {
            Rgb([px(0), px(1), px(2)])
        }
    })
}

fn check_batch(images: &Tensor<4>) -> Result<[usize; 4]> {
    let [b, c, h, w] = images.dims();
    if !(c == 1 || c == 3) || b == 0 {
        return Err(Error::Shape(format!(
            "an image set needs [B>0, 1|3, H, W], got [{b}, {c}, {h}, {w}]"
        )));
    }
    Ok([b, c, h, w])
}

/// Writes each image of a batch in `[-1, 1]` as its own PNG, `DIR/000000.png`, `000001.png`, …
/// (what clean-fid, torch-fidelity and pytorch-fid read from a folder).
pub fn save_pngs(images: Tensor<4>, dir: &Path) -> Result<()> {
    let [b, c, h, w] = check_batch(&images)?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
    let data = to_vec(images);
    for i in 0..b {
        save_png(&to_rgb(&data, i, c, h, w), &dir.join(format!("{i:06}.png")))?;
    }
    Ok(())
}

/// Writes a batch in `[-1, 1]` as an `.npz` with `arr_0`: `uint8 [N, H, W, 3]` (the layout of
/// OpenAI's guided-diffusion sample batches and evaluator).
pub fn save_npz(images: Tensor<4>, path: &Path) -> Result<()> {
    let [b, c, h, w] = check_batch(&images)?;
    let data = to_vec(images);
    let mut bytes = Vec::with_capacity(b * h * w * 3);
    for i in 0..b {
        let img = to_rgb(&data, i, c, h, w);
        bytes.extend(img.as_raw().iter().map(|&v| v as f64));
    }
    let a = crate::io::NpyArray {
        shape: vec![b, h, w, 3],
        dtype: crate::io::NpyDtype::U8,
        data: bytes,
    };
    crate::io::write_npz(path, &[("arr_0", &a)])
}

/// A set of images to evaluate, `[N, 3, H, W]` in `[-1, 1]` (grey repeated to RGB, as clean-fid's
/// `convert('RGB')`), with a name per image: a folder of PNG/JPEG files (sorted by name; all of one
/// size), or an `.npz` whose `arr_0` holds `uint8` images `[N, H, W]`, `[N, H, W, 1|3]`.
pub fn load_image_set(path: &Path, device: &Device) -> Result<(Tensor<4>, Vec<String>)> {
    let bad = |reason: String| Error::Data {
        path: path.into(),
        reason,
    };
    if path.is_dir() {
        let files = crate::data::image_files(path)?;
        if files.is_empty() {
            return Err(bad("no PNG or JPEG images in this folder".into()));
        }
        let mut data = Vec::new();
        let mut size = None;
        let mut names = Vec::with_capacity(files.len());
        for f in &files {
            let img = crate::data::open_image(f, [0, 0, 0])?;
            let dims = img.dimensions();
            if *size.get_or_insert(dims) != dims {
                return Err(bad(format!(
                    "images differ in size: {} is {}×{}, the first is {}×{}",
                    f.display(),
                    dims.0,
                    dims.1,
                    size.unwrap().0,
                    size.unwrap().1
                )));
            }
            data.extend(crate::data::planes(&img, 3));
            names.push(
                f.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
        let (w, h) = size.expect("at least one image");
        let n = files.len();
        let t = Tensor::from_data(
            TensorData::new(data, [n, 3, h as usize, w as usize]),
            device,
        );
        return Ok((t, names));
    }
    let arrays = crate::io::read_npz(path)?;
    let a = arrays.get("arr_0").ok_or_else(|| {
        bad(format!(
            "an image .npz needs 'arr_0' (uint8 [N, H, W, C]); it holds {:?}",
            arrays.keys().collect::<Vec<_>>()
        ))
    })?;
    let (n, h, w, c) = match a.shape[..] {
        [n, h, w] => (n, h, w, 1),
        [n, h, w, c] if c == 1 || c == 3 => (n, h, w, c),
        _ => {
            return Err(bad(format!(
                "arr_0 has shape {:?}; expected [N, H, W] or [N, H, W, 1|3]",
                a.shape
            )));
        }
    };
    if n == 0 || a.dtype != crate::io::NpyDtype::U8 {
        return Err(bad(format!(
            "arr_0 must hold at least one uint8 image, got {n} of {:?}",
            a.dtype
        )));
    }
    let mut data = vec![0f32; n * 3 * h * w];
    for i in 0..n {
        for ch in 0..3 {
            for p in 0..h * w {
                let v = a.data[(i * h * w + p) * c + ch.min(c - 1)];
                data[(i * 3 + ch) * h * w + p] = (v / 127.5 - 1.0) as f32;
            }
        }
    }
    let names = (0..n).map(|i| format!("arr_0[{i}]")).collect();
    Ok((
        Tensor::from_data(TensorData::new(data, [n, 3, h, w]), device),
        names,
    ))
}
