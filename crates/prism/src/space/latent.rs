//! The latent space of a trained autoencoder (latent diffusion, Rombach et al. 2022 §3.2; formula
//! sheet §5): `encode(x) = s · E(x)`, `decode(z) = D(z / s)`, with the autoencoder's diffusion
//! latent ([`Autoencoder::latent`]: the posterior mean for KL, the unquantised latent for VQ,
//! whose decoder quantises) and the latent scale `s`.
//!
//! **Scale.** LDM and Stable Diffusion scale latents to unit variance before diffusion:
//! `s = 1 / std(z)` over a sample of training latents (LDM's `scale_by_std`, measured on the
//! first batch; SD's VAE has the fixed `s = 0.18215`). Training measures it ([`latent_scale`])
//! when `space.scale` is absent and records it in the checkpoint's config, so sampling and
//! evaluation decode with the value the model was trained with. A diffusers VAE (Stable
//! Diffusion's, see [`crate::nn::autoencoder::AutoencoderFile`]) brings its own: the
//! `scaling_factor` of its `config.json` is the scale when `space.scale` is absent, as in
//! diffusers' pipelines (0.18215 for SD 1.x/2.x, 0.13025 for SDXL).
//!
//! **Naming the autoencoder.** The config names the autoencoder's file (or run directory) and,
//! once trained, its SHA-256: loading a model whose autoencoder file has changed since is an
//! error, not a silent mismatch.
//!
//! ```toml
//! [space]
//! kind = "latent"
//! autoencoder = "runs/fluent-ae-kl-f4"   # run directory or its model.safetensors, or a
//!                                       # diffusers VAE folder (e.g. stable-diffusion-v1-5/vae)
//! # scale = 0.18215                     # absent: measured at the start of training
//! # latents = "on_the_fly"              # default "cache": encoded once, kept on disk
//! ```

use std::path::{Path, PathBuf};

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::Space;
use crate::nn::autoencoder::{Autoencoder, AutoencoderFile, autoencoder_file, file_hash};
use crate::{Error, Result};

/// Where the training latents come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LatentSource {
    /// Encoded once (both orientations with `data.random_flip`) and kept on disk, keyed by the
    /// autoencoder's hash and the images ([`crate::space::LatentCache`]); needs an in-memory
    /// data set without random crops.
    #[default]
    Cache,
    /// Encoded every step (any data set, any stage; one encoder pass per batch).
    OnTheFly,
}

/// `[space] kind = "latent"`. See the module docs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatentConfig {
    /// The autoencoder: its `model.safetensors` or its run directory.
    pub autoencoder: PathBuf,
    /// The SHA-256 of the autoencoder file (`sha256:…`), written by training; when set, loading
    /// checks the file against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// The latent scale `s` (SD's VAE: 0.18215). Absent: a diffusers VAE's `scaling_factor`
    /// (its `config.json`'s), else measured at the start of training as `1 / std` of the latents
    /// of `scale_images` training images; recorded in the checkpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<f64>,
    /// Training images whose latents measure the scale (the first of the training order).
    #[serde(default = "default_scale_images")]
    pub scale_images: usize,
    /// Cached or encoded on the fly.
    #[serde(default)]
    pub latents: LatentSource,
    /// Where cached latents go (default: a `latents/` folder beside the autoencoder file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_dir: Option<PathBuf>,
}

fn default_scale_images() -> usize {
    1024
}

impl LatentConfig {
    /// A config for the autoencoder at `path` with the defaults.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            autoencoder: path.into(),
            hash: None,
            scale: None,
            scale_images: default_scale_images(),
            latents: LatentSource::default(),
            cache_dir: None,
        }
    }

    /// Range checks; errors name the key.
    pub fn validate(&self) -> Result<()> {
        if let Some(s) = self.scale
            && !(s.is_finite() && s > 0.0)
        {
            return Err(Error::config(format!(
                "space.scale must be a positive finite number (SD's VAE: 0.18215), got {s}"
            )));
        }
        if self.scale_images == 0 {
            return Err(Error::config("space.scale_images must be positive"));
        }
        if let Some(h) = &self.hash
            && !(h.len() == 71
                && h.starts_with("sha256:")
                && h[7..].bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(Error::config(format!(
                "space.hash must be 'sha256:' and 64 hex digits (written by training), got '{h}'"
            )));
        }
        Ok(())
    }

    /// The cache folder: `cache_dir`, or `latents/` beside the autoencoder file.
    pub fn cache_folder(&self) -> PathBuf {
        self.cache_dir.clone().unwrap_or_else(|| {
            autoencoder_file(&self.autoencoder)
                .parent()
                .unwrap_or(Path::new("."))
                .join("latents")
        })
    }
}

/// `1 / std(z)` over `latents` (the sample standard deviation, `torch.std`'s default, about the
/// mean): LDM's `scale_by_std`. Errors for fewer than two values, a non-finite value or zero
/// spread.
pub fn latent_scale(latents: &[f32]) -> Result<f64> {
    let n = latents.len();
    if n < 2 {
        return Err(Error::invalid(format!(
            "the latent scale needs at least two latent values, got {n}"
        )));
    }
    if latents.iter().any(|v| !v.is_finite()) {
        return Err(Error::invalid(
            "the autoencoder gave a non-finite latent: cannot measure the latent scale",
        ));
    }
    let mean = latents.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
    let var = latents
        .iter()
        .map(|&v| (v as f64 - mean).powi(2))
        .sum::<f64>()
        / (n - 1) as f64;
    if var <= 0.0 {
        return Err(Error::invalid(
            "every latent of the sample is the same value: the autoencoder's latents have no \
             spread, so no scale makes them unit-variance (set space.scale, or check the autoencoder)",
        ));
    }
    Ok(1.0 / var.sqrt())
}

/// See the module docs.
#[derive(Debug)]
pub struct LatentSpace {
    ae: Autoencoder,
    scale: f64,
    file_scale: Option<f64>,
    hash: String,
    path: PathBuf,
    image_channels: usize,
}

impl LatentSpace {
    /// Loads the autoencoder `cfg` names on the default device, checks it against `cfg.hash`,
    /// and scales by `scale` when given (training, before the scale is known), else `cfg.scale`,
    /// else a diffusers VAE's `scaling_factor`.
    pub fn load(cfg: &LatentConfig, scale: Option<f64>) -> Result<Self> {
        cfg.validate()?;
        let path = autoencoder_file(&cfg.autoencoder);
        if !path.exists() {
            return Err(Error::config(format!(
                "space.autoencoder = '{}': no such file (train the autoencoder first: prism train --config configs/fluent-ae-kl-f8.toml)",
                path.display()
            )));
        }
        let hash = file_hash(&path)?;
        if let Some(want) = &cfg.hash
            && *want != hash
        {
            return Err(Error::Checkpoint {
                path: path.clone(),
                reason: format!(
                    "this autoencoder file has changed since the model was trained on it (its {hash}, the model's {want}); use the autoencoder the model was trained with"
                ),
            });
        }
        let file = AutoencoderFile::load(&path, &crate::default_device())?;
        let Some(scale) = scale.or(cfg.scale).or(file.scaling_factor) else {
            return Err(Error::config(
                "space.scale is not set: training measures it (prism train) and records it in the checkpoint, or set it (SD's VAE: 0.18215)",
            ));
        };
        Ok(Self {
            image_channels: file.config.channels,
            ae: file.autoencoder,
            scale,
            file_scale: file.scaling_factor,
            hash,
            path,
        })
    }

    /// The same space with the scale `scale`.
    pub fn with_scale(self, scale: f64) -> Self {
        Self { scale, ..self }
    }

    /// The autoencoder.
    pub fn autoencoder(&self) -> &Autoencoder {
        &self.ae
    }

    /// The latent scale `s`.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// A diffusers VAE's own `scaling_factor` (from its `config.json`), if it has one.
    pub fn file_scale(&self) -> Option<f64> {
        self.file_scale
    }

    /// The autoencoder file's SHA-256 (`sha256:…`).
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// The autoencoder file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The autoencoder's image channels.
    pub fn image_channels(&self) -> usize {
        self.image_channels
    }

    /// The unscaled latents `E(x)` of images in `[-1, 1]` (no autodiff: the autoencoder is
    /// frozen), in batches of `batch`.
    pub fn unscaled(&self, x: Tensor<4>, batch: usize) -> Result<Tensor<4>> {
        self.check_channels(&x)?;
        let n = x.dims()[0];
        let mut parts = Vec::new();
        for start in (0..n).step_by(batch.max(1)) {
            let len = batch.max(1).min(n - start);
            parts.push(self.ae.latent(x.clone().narrow(0, start, len).inner())?);
        }
        Ok(Tensor::cat(parts, 0))
    }

    fn check_channels(&self, x: &Tensor<4>) -> Result<()> {
        let c = x.dims()[1];
        if c != self.image_channels {
            return Err(Error::Shape(format!(
                "the autoencoder '{}' takes {}-channel images, got {c} channels (data.channels)",
                self.path.display(),
                self.image_channels
            )));
        }
        Ok(())
    }

    /// Brings a latent computed without autodiff onto `like`'s autodiff setting.
    fn like(z: Tensor<4>, like_autodiff: bool) -> Tensor<4> {
        if like_autodiff { z.autodiff() } else { z }
    }
}

impl Space for LatentSpace {
    fn kind(&self) -> &'static str {
        "latent"
    }

    fn shape(&self, image: [usize; 4]) -> [usize; 4] {
        let f = self.ae.factor();
        [
            image[0],
            self.ae.latent_channels(),
            image[2] / f,
            image[3] / f,
        ]
    }

    fn encode(&self, x: Tensor<4>) -> Result<Tensor<4>> {
        let autodiff = x.is_autodiff();
        let z = self.unscaled(x, 64)? * self.scale;
        Ok(Self::like(z, autodiff))
    }

    fn decode(&self, z: Tensor<4>) -> Result<Tensor<4>> {
        let autodiff = z.is_autodiff();
        let x = self.ae.decode_latent(z.inner() / self.scale);
        Ok(Self::like(x, autodiff))
    }

    /// The fraction of each `f × f` cell to fill (average pooling): 1 inside the hole, 0 where
    /// the image is kept, in between on the hole's edge. LDM resizes the mask with nearest
    /// neighbours; the average keeps every cell the hole touches.
    fn mask(&self, mask: Tensor<4>) -> Result<Tensor<4>> {
        crate::transform::try_down(mask, self.ae.factor())
    }

    fn as_latent(&self) -> Option<&LatentSpace> {
        Some(self)
    }
}
