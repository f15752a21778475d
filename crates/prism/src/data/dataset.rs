//! An in-memory image set in `[-1, 1]`, `[C, S, S]` per image, with optional labels, a held-out
//! split and deterministic batches: the order of epoch `e` is a permutation seeded by
//! `(seed, e)`, so the data position of any step is known without replaying the run.
//! A lazy set ([`Dataset::lazy`]) holds file paths instead of pixels and decodes each batch.

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Int, Tensor, TensorData};
use image::RgbImage;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::{Contexts, DataConfig, Fit, LazyDecode, fit_to_size, hflip};
use crate::{Error, Result};

/// See the module docs.
#[derive(Debug, Clone)]
pub struct Dataset {
    pixels: Vec<f32>,
    /// Lazily decoded sets: the files and how to decode them (empty / `None` in memory).
    files: Vec<PathBuf>,
    decode: Option<LazyDecode>,
    labels: Option<Vec<u32>>,
    contexts: Option<Contexts>,
    channels: usize,
    stored: usize,
    size: usize,
    random_crop: bool,
    random_flip: bool,
}

/// One batch on a device.
#[derive(Debug, Clone)]
pub struct Batch {
    /// `[B, C, S, S]` in `[-1, 1]`.
    pub images: Tensor<4>,
    /// `[B]` class indices, when the set is labelled.
    pub labels: Option<Tensor<1, Int>>,
    /// `[B, L, D]` context sequences, when the set has them (`data.context`).
    pub context: Option<Tensor<3>>,
    /// Which images were flipped horizontally (`data.random_flip`), in batch order.
    pub flipped: Vec<bool>,
}

fn to_unit(v: u8) -> f32 {
    v as f32 / 127.5 - 1.0
}

/// An RGB image as `channels` planes in `[-1, 1]`: RGB, or grey by ITU-R BT.601 luma (as PIL's
/// `convert("L")`).
pub fn planes(img: &RgbImage, channels: usize) -> Vec<f32> {
    if channels == 1 {
        img.pixels()
            .map(|p| {
                let [r, g, b] = p.0;
                (r as f32 * 299.0 + g as f32 * 587.0 + b as f32 * 114.0) / 1000.0 / 127.5 - 1.0
            })
            .collect()
    } else {
        (0..3)
            .flat_map(|c| img.pixels().map(move |p| to_unit(p.0[c])))
            .collect()
    }
}

impl Dataset {
    fn empty(cfg: &DataConfig, stored: usize) -> Self {
        Self {
            pixels: Vec::new(),
            files: Vec::new(),
            decode: None,
            labels: None,
            contexts: None,
            channels: cfg.channels,
            stored,
            size: cfg.image_size,
            random_crop: cfg.fit == Fit::RandomCrop,
            random_flip: cfg.random_flip,
        }
    }

    fn push_rgb(&mut self, img: &RgbImage) {
        self.pixels.extend(planes(img, self.channels));
    }

    /// Grey images (`n` of `h × w` bytes) fitted to the configured size.
    pub fn from_grey_u8(
        pixels: &[u8],
        n: usize,
        h: usize,
        w: usize,
        labels: Option<Vec<u32>>,
        cfg: &DataConfig,
    ) -> Result<Self> {
        let stored = cfg.stored_size();
        let mut set = Self::empty(cfg, stored);
        for i in 0..n {
            let img = &pixels[i * h * w..(i + 1) * h * w];
            if (h, w) == (stored, stored) && cfg.channels == 1 {
                set.pixels.extend(img.iter().map(|&v| to_unit(v)));
                continue;
            }
            let rgb = RgbImage::from_fn(w as u32, h as u32, |x, y| {
                let v = img[y as usize * w + x as usize];
                image::Rgb([v, v, v])
            });
            set.push_rgb(&fit_to_size(&rgb, stored, cfg.fit, cfg.background));
        }
        set.labels = labels;
        Ok(set)
    }

    /// RGB images already fitted to the stored size.
    pub fn from_rgb(
        images: &[RgbImage],
        labels: Option<Vec<u32>>,
        cfg: &DataConfig,
        origin: &Path,
    ) -> Result<Self> {
        let stored = cfg.stored_size();
        let mut set = Self::empty(cfg, stored);
        for img in images {
            if img.dimensions() != (stored as u32, stored as u32) {
                return Err(Error::Data {
                    path: origin.into(),
                    reason: format!(
                        "image of size {:?} after fitting to {stored}",
                        img.dimensions()
                    ),
                });
            }
            set.push_rgb(img);
        }
        set.labels = labels;
        Ok(set)
    }

    /// A set that decodes `files` batch by batch (see [`LazyDecode`]); crops are random when
    /// `cfg.fit` is `random_crop`.
    pub fn lazy(
        files: Vec<PathBuf>,
        labels: Option<Vec<u32>>,
        decode: LazyDecode,
        cfg: &DataConfig,
    ) -> Self {
        let mut set = Self::empty(cfg, cfg.image_size);
        set.files = files;
        set.decode = Some(decode);
        set.labels = labels;
        set
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        if self.decode.is_some() {
            self.files.len()
        } else {
            self.pixels.len() / self.image_len()
        }
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn image_len(&self) -> usize {
        self.channels * self.stored * self.stored
    }

    /// Channels per image.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Side of the images batches return.
    pub fn image_size(&self) -> usize {
        self.size
    }

    /// The labels, if any.
    pub fn labels(&self) -> Option<&[u32]> {
        self.labels.as_deref()
    }

    /// The set with a context sequence per image.
    pub fn with_contexts(mut self, contexts: Contexts) -> Self {
        self.contexts = Some(contexts);
        self
    }

    /// The context sequences, if any.
    pub fn contexts(&self) -> Option<&Contexts> {
        self.contexts.as_ref()
    }

    /// Number of classes (`max label + 1`; 0 if unlabelled).
    pub fn num_classes(&self) -> usize {
        self.labels
            .as_ref()
            .map_or(0, |l| l.iter().max().map_or(0, |&m| m as usize + 1))
    }

    /// The first `n` images.
    pub fn take(mut self, n: usize) -> Self {
        let n = n.min(self.len());
        self.pixels.truncate(n * self.image_len());
        self.files.truncate(n);
        if let Some(l) = &mut self.labels {
            l.truncate(n);
        }
        if let Some(c) = &mut self.contexts {
            c.take(n);
        }
        self
    }

    /// Splits off the last `held_out` images: `(train, held_out)`. Held-out images are never
    /// flipped or randomly cropped.
    pub fn split(mut self, held_out: usize) -> (Dataset, Dataset) {
        let keep = self.len().saturating_sub(held_out);
        let mut test = self.clone();
        test.pixels = self
            .pixels
            .split_off((keep * self.image_len()).min(self.pixels.len()));
        test.files = self.files.split_off(keep.min(self.files.len()));
        test.labels = self.labels.as_mut().map(|l| l.split_off(keep));
        test.contexts = self.contexts.as_mut().map(|c| c.split_off(keep));
        test.random_flip = false;
        test.random_crop = false;
        (self, test)
    }

    /// The images at `indices` (cropped and flipped as configured, using `rng`) and their labels;
    /// an error if a lazily decoded file no longer decodes.
    pub fn try_batch<R: Rng + ?Sized>(
        &self,
        indices: &[usize],
        rng: &mut R,
        device: &Device,
    ) -> Result<Batch> {
        let (c, out) = (self.channels, self.size);
        let (data, flipped) = match &self.decode {
            Some(decode) => self.decode_batch(decode, indices, rng)?,
            None => self.memory_batch(indices, Some(rng)),
        };
        let images = Tensor::from_data(TensorData::new(data, [indices.len(), c, out, out]), device);
        let labels = self.labels.as_ref().map(|l| {
            let v: Vec<i64> = indices.iter().map(|&i| l[i] as i64).collect();
            Tensor::<1, Int>::from_data(TensorData::new(v, [indices.len()]), device)
        });
        let context = self.contexts.as_ref().map(|c| c.batch(indices, device));
        Ok(Batch {
            images,
            labels,
            context,
            flipped,
        })
    }

    /// The images at `indices` of an in-memory set, without random crops or flips (centre
    /// crops), `[B, C, S, S]`; `None` for a lazily decoded set. What a latent cache encodes.
    pub fn plain_images(&self, indices: &[usize], device: &Device) -> Option<Tensor<4>> {
        if self.decode.is_some() {
            return None;
        }
        let (data, _) = self.memory_batch::<ChaCha8Rng>(indices, None);
        let (c, out) = (self.channels, self.size);
        Some(Tensor::from_data(
            TensorData::new(data, [indices.len(), c, out, out]),
            device,
        ))
    }

    /// The stored pixels of an in-memory set (`None` when decoded lazily), with the geometry
    /// that reads them: what identifies a set's content (latent cache keys).
    pub fn stored_pixels(&self) -> Option<(&[f32], [usize; 3])> {
        self.decode
            .is_none()
            .then_some((&self.pixels[..], [self.channels, self.stored, self.size]))
    }

    /// Whether batches are flipped at random (`data.random_flip`).
    pub fn random_flip(&self) -> bool {
        self.random_flip
    }

    /// Whether batches are random crops of larger stored images (`data.fit = "random_crop"`).
    pub fn random_crop(&self) -> bool {
        self.random_crop && self.stored > self.size
    }

    /// Crops and flips as configured when `rng` is given (centre crops and no flips otherwise);
    /// the pixels and which images were flipped.
    fn memory_batch<R: Rng + ?Sized>(
        &self,
        indices: &[usize],
        mut rng: Option<&mut R>,
    ) -> (Vec<f32>, Vec<bool>) {
        let (c, s, out) = (self.channels, self.stored, self.size);
        let mut data = Vec::with_capacity(indices.len() * c * out * out);
        let mut flipped = Vec::with_capacity(indices.len());
        for &i in indices {
            let img = &self.pixels[i * self.image_len()..(i + 1) * self.image_len()];
            let (ox, oy) = match rng.as_deref_mut() {
                Some(rng) if self.random_crop && s > out => {
                    (rng.random_range(0..=s - out), rng.random_range(0..=s - out))
                }
                _ => ((s - out) / 2, (s - out) / 2),
            };
            let start = data.len();
            for ch in 0..c {
                for y in 0..out {
                    let row = (ch * s + oy + y) * s + ox;
                    data.extend_from_slice(&img[row..row + out]);
                }
            }
            let flip = match rng.as_deref_mut() {
                Some(rng) => self.random_flip && rng.random_bool(0.5),
                None => false,
            };
            if flip {
                hflip(&mut data[start..], c, out);
            }
            flipped.push(flip);
        }
        (data, flipped)
    }

    /// Decodes the files at `indices` in parallel; each image's crop and flip come from its own
    /// generator, seeded from `rng` in batch order, so batches are reproducible.
    fn decode_batch<R: Rng + ?Sized>(
        &self,
        decode: &LazyDecode,
        indices: &[usize],
        rng: &mut R,
    ) -> Result<(Vec<f32>, Vec<bool>)> {
        let seeds: Vec<u64> = indices.iter().map(|_| rng.random()).collect();
        let (c, out) = (self.channels, self.size);
        let images: Vec<(Vec<f32>, bool)> = indices
            .par_iter()
            .zip(&seeds)
            .map(|(&i, &seed)| {
                let mut r = ChaCha8Rng::seed_from_u64(seed);
                let mut img = if self.random_crop {
                    decode.crop(&self.files[i], out, c, Some(&mut r))?
                } else {
                    decode.crop::<ChaCha8Rng>(&self.files[i], out, c, None)?
                };
                let flip = self.random_flip && r.random_bool(0.5);
                if flip {
                    hflip(&mut img, c, out);
                }
                Ok((img, flip))
            })
            .collect::<Result<_>>()?;
        let flipped = images.iter().map(|(_, f)| *f).collect();
        Ok((images.into_iter().flat_map(|(i, _)| i).collect(), flipped))
    }

    /// The permutation of epoch `epoch` under `seed`.
    pub fn epoch_order(&self, seed: u64, epoch: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.len()).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        order.shuffle(&mut rng);
        order
    }

    /// Indices of the `batch_size` images starting at data position `position` (counted in images
    /// since the start of training, across epochs).
    pub fn indices_at(&self, seed: u64, position: u64, batch_size: usize) -> Vec<usize> {
        let n = self.len() as u64;
        let mut out = Vec::with_capacity(batch_size);
        let mut cached: Option<(u64, Vec<usize>)> = None;
        for k in 0..batch_size as u64 {
            let p = position + k;
            let epoch = p / n;
            if cached.as_ref().is_none_or(|(e, _)| *e != epoch) {
                cached = Some((epoch, self.epoch_order(seed, epoch)));
            }
            out.push(cached.as_ref().unwrap().1[(p % n) as usize]);
        }
        out
    }

    /// Per-pixel mean image `[C·S·S]` over the set (the best constant predictor of `x`).
    /// A lazy set decodes the centre crop of every file; a file that no longer decodes is an
    /// error naming it. In-memory sets cannot fail.
    pub fn mean_image(&self) -> Result<Vec<f32>> {
        if let Some(decode) = &self.decode {
            let mut rng = ChaCha8Rng::seed_from_u64(0);
            let all: Vec<usize> = (0..self.len()).collect();
            let mut centre = self.clone();
            centre.random_crop = false;
            centre.random_flip = false;
            let mut mean = vec![0f64; self.channels * self.size * self.size];
            for chunk in all.chunks(16) {
                let (data, _) = centre.decode_batch(decode, chunk, &mut rng)?;
                for img in data.chunks(mean.len()) {
                    for (m, &v) in mean.iter_mut().zip(img) {
                        *m += v as f64;
                    }
                }
            }
            return Ok(mean
                .iter()
                .map(|&m| (m / self.len() as f64) as f32)
                .collect());
        }
        let len = self.image_len();
        let mut mean = vec![0f64; len];
        for img in self.pixels.chunks(len) {
            for (m, &v) in mean.iter_mut().zip(img) {
                *m += v as f64;
            }
        }
        Ok(mean
            .iter()
            .map(|&m| (m / self.len() as f64) as f32)
            .collect())
    }
}
