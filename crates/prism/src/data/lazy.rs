//! Lazily decoded image folders (simple diffusion's high-resolution data): the set keeps only the
//! file paths, and every batch decodes its images, optionally scales each so that its shorter side
//! is `load_size`, and cuts an `image_size` crop — random for training, centred for held-out
//! images. Memory stays at one batch of decoded photographs however large the folder is.

use std::path::Path;

use image::imageops::{self, FilterType};
use rand::Rng;

use super::folder::open_image;
use super::planes;
use crate::{Error, Result};

/// How the files of a lazy set are decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct LazyDecode {
    /// Background for transparent pixels.
    pub background: [u8; 3],
    /// Shorter side after scaling (none: full resolution).
    pub load_size: Option<usize>,
}

impl LazyDecode {
    /// Checks from the file header alone that `path` can give `size × size` crops.
    pub fn check(&self, path: &Path, size: usize) -> Result<()> {
        let (w, h) = image::image_dimensions(path).map_err(|source| Error::Image {
            path: path.into(),
            source,
        })?;
        let short = self.load_size.unwrap_or(w.min(h) as usize);
        if short < size {
            return Err(Error::Data {
                path: path.into(),
                reason: format!(
                    "a {w}×{h} image (shorter side {short} after scaling) is smaller than data.image_size = {size}"
                ),
            });
        }
        Ok(())
    }

    /// Decodes `path` and cuts one `size × size` crop as `channels` planes in `[-1, 1]`: at a
    /// random position drawn from `rng`, or centred when `rng` is `None`.
    pub fn crop<R: Rng + ?Sized>(
        &self,
        path: &Path,
        size: usize,
        channels: usize,
        rng: Option<&mut R>,
    ) -> Result<Vec<f32>> {
        let mut img = open_image(path, self.background)?;
        if let Some(short) = self.load_size {
            let (w, h) = img.dimensions();
            let scale = short as f64 / w.min(h) as f64;
            let (nw, nh) = (
                ((w as f64 * scale).round() as u32).max(short as u32),
                ((h as f64 * scale).round() as u32).max(short as u32),
            );
            img = imageops::resize(&img, nw, nh, FilterType::Triangle);
        }
        let (w, h) = (img.width() as usize, img.height() as usize);
        if w < size || h < size {
            return Err(Error::Data {
                path: path.into(),
                reason: format!("a {w}×{h} image cannot give {size}×{size} crops"),
            });
        }
        let (ox, oy) = match rng {
            Some(rng) => (
                rng.random_range(0..=w - size),
                rng.random_range(0..=h - size),
            ),
            None => ((w - size) / 2, (h - size) / 2),
        };
        let (s, x, y) = (size as u32, ox as u32, oy as u32);
        Ok(planes(
            &imageops::crop_imm(&img, x, y, s, s).to_image(),
            channels,
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::data::{DataConfig, Fit};
    use crate::tensor::to_vec;
    use burn::tensor::Device;
    use rand::SeedableRng;

    /// Red channel = x, green = y (so a crop's position can be read back), blue = file index.
    fn write_photos(dir: &std::path::Path) {
        std::fs::create_dir_all(dir).unwrap();
        for i in 0..3u8 {
            image::RgbImage::from_fn(40, 30, |x, y| image::Rgb([x as u8, y as u8, i]))
                .save(dir.join(format!("{i}.png")))
                .unwrap();
        }
    }

    fn cfg(dir: &std::path::Path) -> DataConfig {
        DataConfig {
            path: dir.into(),
            image_size: 8,
            channels: 3,
            fit: Fit::RandomCrop,
            background: [0; 3],
            held_out: 1,
            load_size: None,
            random_flip: false,
            limit: 0,
            lazy: true,
            context: None,
        }
    }

    fn byte(v: f32) -> u8 {
        ((v + 1.0) * 127.5).round() as u8
    }

    #[test]
    fn random_crops_are_decoded_per_batch() {
        let dir = std::env::temp_dir().join(format!("prism-lazy-{}", std::process::id()));
        write_photos(&dir);
        let (train, held_out) = cfg(&dir).load().unwrap().split(1);
        assert_eq!((train.len(), held_out.len()), (2, 1));
        let device = Device::flex();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let mut origins = std::collections::BTreeSet::new();
        for _ in 0..6 {
            let v = to_vec(train.try_batch(&[1], &mut rng, &device).unwrap().images);
            assert_eq!(v.len(), 3 * 8 * 8);
            let (x0, y0) = (byte(v[0]), byte(v[64]));
            // every pixel of the crop is the photo's pixel at (x0 + x, y0 + y)
            for y in 0..8 {
                for x in 0..8 {
                    assert_eq!(byte(v[y * 8 + x]), x0 + x as u8);
                    assert_eq!(byte(v[64 + y * 8 + x]), y0 + y as u8);
                    assert_eq!(byte(v[128 + y * 8 + x]), 1);
                }
            }
            assert!(x0 as usize + 8 <= 40 && y0 as usize + 8 <= 30);
            origins.insert((x0, y0));
        }
        assert!(origins.len() > 1, "random positions: {origins:?}");
        // held-out images are centre crops: (40 − 8)/2 = 16, (30 − 8)/2 = 11
        let v = to_vec(held_out.try_batch(&[0], &mut rng, &device).unwrap().images);
        assert_eq!((byte(v[0]), byte(v[64]), byte(v[128])), (16, 11, 2));
        // a file that breaks after loading is an error naming it, not a panic
        std::fs::write(dir.join("1.png"), b"not a png").unwrap();
        let e = train.try_batch(&[1], &mut rng, &device).unwrap_err();
        assert!(e.to_string().contains("1.png"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn small_images_and_scaling() {
        let dir = std::env::temp_dir().join(format!("prism-lazy-small-{}", std::process::id()));
        write_photos(&dir);
        let e = DataConfig {
            image_size: 32,
            ..cfg(&dir)
        }
        .load()
        .unwrap_err();
        assert!(e.to_string().contains("data.image_size = 32"), "{e:#}");
        // scaled to a shorter side of 60, 32² crops fit
        let set = DataConfig {
            image_size: 32,
            load_size: Some(60),
            ..cfg(&dir)
        }
        .load()
        .unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let b = set.try_batch(&[0, 2], &mut rng, &Device::flex()).unwrap();
        assert_eq!(b.images.dims(), [2, 3, 32, 32]);
        std::fs::remove_dir_all(&dir).ok();
    }

    /// The evaluation paths (`mean_image`, `denoise_mse`) return an error naming a file that was
    /// truncated after the set was loaded, instead of panicking.
    #[test]
    fn evaluation_fails_on_a_file_truncated_after_loading() {
        use crate::denoiser::ModelConfig;
        use crate::nn::UNetConfig;
        use crate::process::Parameterization;
        use crate::process::ProcessConfig;

        let dir = std::env::temp_dir().join(format!("prism-lazy-eval-{}", std::process::id()));
        write_photos(&dir);
        let (train, held_out) = cfg(&dir).load().unwrap().split(1);
        assert_eq!(train.mean_image().unwrap().len(), 3 * 8 * 8);
        let bytes = std::fs::read(dir.join("2.png")).unwrap();
        std::fs::write(dir.join("2.png"), &bytes[..bytes.len() / 2]).unwrap();
        let bytes = std::fs::read(dir.join("0.png")).unwrap();
        std::fs::write(dir.join("0.png"), &bytes[..bytes.len() / 2]).unwrap();

        let e = train.mean_image().unwrap_err();
        assert!(e.to_string().contains("0.png"), "{e}");
        let device = Device::flex();
        let mut unet = UNetConfig::tiny(3);
        unet.core.channel_mults = vec![1];
        let model = ModelConfig::with_unet(Parameterization::V, unet)
            .init(&device)
            .unwrap();
        let process = ProcessConfig::Gaussian {
            schedule: Default::default(),
        }
        .build()
        .unwrap();
        let mean = vec![0.0; 3 * 8 * 8];
        let input =
            crate::denoiser::ModelInput::new(&Default::default(), &Default::default()).unwrap();
        let e = crate::eval::denoise_mse(
            &model,
            process.as_ref(),
            &input,
            &held_out,
            &mean,
            &[0.5],
            1,
            0,
            &device,
        )
        .unwrap_err();
        assert!(e.to_string().contains("2.png"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
