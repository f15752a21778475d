//! A folder of PNG, JPEG or WebP images. Images directly inside are unlabelled; if the folder holds only
//! sub-folders, each sub-folder (sorted by name) is a class. Transparent pixels are composited
//! on the configured background.

use std::path::{Path, PathBuf};

use image::{DynamicImage, RgbImage};
use rayon::prelude::*;

use super::{Contexts, DataConfig, Dataset, Fit, LazyDecode, fit_to_size};
use crate::{Error, Result};

fn is_image(p: &Path) -> bool {
    matches!(
        p.extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase())
            .as_deref(),
        Some("png" | "jpg" | "jpeg" | "webp")
    )
}

/// The PNG/JPEG files directly inside `dir`, sorted by name.
pub fn image_files(dir: &Path) -> Result<Vec<PathBuf>> {
    Ok(list(dir)?.into_iter().filter(|p| is_image(p)).collect())
}

fn list(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io("read directory", dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    Ok(entries)
}

/// Composites `img` over `background` and returns 8-bit RGB.
pub fn composite(img: DynamicImage, background: [u8; 3]) -> RgbImage {
    let rgba = img.to_rgba8();
    let (w, h) = rgba.dimensions();
    RgbImage::from_fn(w, h, |x, y| {
        let p = rgba.get_pixel(x, y).0;
        let a = p[3] as f32 / 255.0;
        image::Rgb(std::array::from_fn(|c| {
            (p[c] as f32 * a + background[c] as f32 * (1.0 - a)).round() as u8
        }))
    })
}

/// Decodes one image file, naming the file on failure.
pub fn open_image(path: &Path, background: [u8; 3]) -> Result<RgbImage> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    decode_image(path, &bytes, background)
}

/// [`open_image`] on the bytes of the file `path` (which errors name); the format is guessed
/// from the bytes, and the decoder's default limits (512 MiB of pixels) refuse image bombs.
pub fn decode_image(path: &Path, bytes: &[u8], background: [u8; 3]) -> Result<RgbImage> {
    let img = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::io("read", path, e))?
        .decode()
        .map_err(|source| Error::Image {
            path: path.into(),
            source,
        })?;
    Ok(composite(img, background))
}

/// Loads a folder as configured by `cfg`.
pub fn read_folder(dir: &Path, cfg: &DataConfig) -> Result<Dataset> {
    let entries = list(dir)?;
    let subdirs: Vec<&PathBuf> = entries.iter().filter(|p| p.is_dir()).collect();
    let mut files: Vec<(PathBuf, Option<u32>)> = entries
        .iter()
        .filter(|p| is_image(p))
        .map(|p| (p.clone(), None))
        .collect();
    if files.is_empty() && !subdirs.is_empty() {
        for (class, sub) in subdirs.iter().enumerate() {
            for p in list(sub)?.into_iter().filter(|p| is_image(p)) {
                files.push((p, Some(class as u32)));
            }
        }
    }
    if files.is_empty() {
        return Err(Error::Data {
            path: dir.into(),
            reason: "no PNG, JPEG or WebP images found (directly or in class sub-folders)".into(),
        });
    }
    let contexts = cfg
        .context
        .as_ref()
        .filter(|_| !cfg.lazy)
        .map(|c| {
            let names: Vec<String> = files
                .iter()
                .map(|(p, _)| {
                    let rel = p.strip_prefix(dir).unwrap_or(p);
                    rel.components()
                        .map(|c| c.as_os_str().to_string_lossy())
                        .collect::<Vec<_>>()
                        .join("/")
                })
                .collect();
            Contexts::read(c, files.len(), Some(&names))
        })
        .transpose()?;
    if cfg.limit > 0 {
        files.truncate(cfg.limit);
    }
    let labels = files[0]
        .1
        .map(|_| files.iter().map(|(_, l)| l.unwrap_or(0)).collect());
    if cfg.lazy {
        let decode = LazyDecode {
            background: cfg.background,
            load_size: cfg.load_size,
        };
        files
            .par_iter()
            .try_for_each(|(p, _)| decode.check(p, cfg.image_size))?;
        let paths = files.into_iter().map(|(p, _)| p).collect();
        return Ok(Dataset::lazy(paths, labels, decode, cfg));
    }
    let load_size = cfg.stored_size();
    let fit = cfg.fit;
    let images: Vec<RgbImage> = files
        .par_iter()
        .map(|(p, _)| {
            open_image(p, cfg.background)
                .map(|img| fit_to_size(&img, load_size, fit, cfg.background))
        })
        .collect::<Result<_>>()?;
    let set = Dataset::from_rgb(&images, labels, cfg, dir)?;
    Ok(match contexts {
        Some(mut c) => {
            c.take(set.len());
            set.with_contexts(c)
        }
        None => set,
    })
}

impl DataConfig {
    /// The side images are stored at: `load_size` for random crops, else `image_size`.
    pub fn stored_size(&self) -> usize {
        match (self.fit, self.load_size) {
            (Fit::RandomCrop, Some(s)) => s.max(self.image_size),
            _ => self.image_size,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(path: &Path, channels: usize) -> DataConfig {
        DataConfig {
            path: path.into(),
            image_size: 4,
            channels,
            fit: Fit::Resize,
            background: [255, 0, 0],
            held_out: 0,
            load_size: None,
            random_flip: false,
            limit: 0,
            lazy: false,
            context: None,
        }
    }

    #[test]
    fn class_folders_label_images_and_alpha_is_composited() {
        let dir = std::env::temp_dir().join(format!("prism-folder-{}", std::process::id()));
        for (class, colour) in [("a_cats", [0u8, 0, 255, 0]), ("b_dogs", [0, 255, 0, 255])] {
            std::fs::create_dir_all(dir.join(class)).unwrap();
            for i in 0..2 {
                image::RgbaImage::from_pixel(8, 6, image::Rgba(colour))
                    .save(dir.join(class).join(format!("{i}.png")))
                    .unwrap();
            }
        }
        let set = read_folder(&dir, &cfg(&dir, 3)).unwrap();
        assert_eq!((set.len(), set.num_classes()), (4, 2));
        assert_eq!(set.labels().unwrap(), &[0, 0, 1, 1]);
        let mut rng = rand::rng();
        let b = set
            .try_batch(&[0, 2], &mut rng, &burn::tensor::Device::flex())
            .unwrap();
        let v = crate::tensor::to_vec(b.images);
        // image 0 is fully transparent → the red background; image 2 is opaque green
        assert_eq!(&v[0..1], &[1.0]); // R plane of image 0
        assert_eq!(v[16], -1.0); // G plane of image 0
        assert_eq!(v[48 + 16], 1.0); // G plane of image 2
        // grey conversion of the background red: luma 0.299·255
        let grey = read_folder(&dir, &cfg(&dir, 1)).unwrap();
        let g = crate::tensor::to_vec(
            grey.try_batch(&[0], &mut rng, &burn::tensor::Device::flex())
                .unwrap()
                .images,
        );
        assert!((g[0] - (0.299 * 255.0 / 127.5 - 1.0)).abs() < 1e-5);
        std::fs::remove_dir_all(&dir).ok();
    }

    /// WebP files (the Fluent Emoji set's format) are read, their transparency composited.
    #[test]
    fn webp_images_are_read() {
        let dir = std::env::temp_dir().join(format!("prism-webp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let img = image::RgbaImage::from_fn(4, 4, |x, _| {
            image::Rgba(if x < 2 {
                [0, 0, 255, 255]
            } else {
                [0, 0, 0, 0]
            })
        });
        img.save(dir.join("a.webp")).unwrap();
        let set = read_folder(&dir, &cfg(&dir, 3)).unwrap();
        assert_eq!(set.len(), 1);
        let mut rng = rand::rng();
        let v = crate::tensor::to_vec(
            set.try_batch(&[0], &mut rng, &burn::tensor::Device::flex())
                .unwrap()
                .images,
        );
        // Row 0: blue where opaque, the red background where transparent.
        assert_eq!(&v[0..4], &[-1.0, -1.0, 1.0, 1.0]); // R
        assert_eq!(&v[32..36], &[1.0, 1.0, -1.0, -1.0]); // B
        std::fs::remove_dir_all(&dir).ok();
    }
}
