//! What a model is in a cascade: a base model that draws from noise alone, or a super-resolution
//! stage conditioned on an image `factor` times smaller (the previous stage's output, or in
//! training the data itself pooled down), upsampled to the stage's size and concatenated to the
//! network's input (the model's `cond_channels`).
//!
//! An upsampling stage names the checkpoint of the stage below it (`base`), so sampling it runs
//! the whole chain; `prism sample --pipeline` takes an explicit list instead.
//!
//! An inpainting model (latent diffusion's concat conditioning) is a stage of its own: it draws
//! from noise given a masked image and the mask (`C + 1` condition channels: the image with the
//! region to fill set to 0, then the mask, 1 = fill). Training draws the masks
//! ([`MaskConfig`]); `prism inpaint` takes them from the user.
//!
//! **Noise conditioning augmentation** (Ho et al. 2022, Cascaded Diffusion Models §4.2; Imagen
//! §2.5): the condition `c` (in the model's space) is corrupted as
//! `c_s = α_s c + σ_s ξ`, `ξ ~ N(0, I)`, with `α_s, σ_s` of the cosine schedule clipped to
//! logSNR `±` [`CLEAN_CONDITION_LOG_SNR`] ([`augmentation_schedule`]) at an augmentation time
//! `s ∈ [0, 1]`: `s ~ U(0, noise_aug_max)` per training image, `s = noise_aug` (or the sampler's
//! `--noise-aug`) at sampling. The network is told `λ_s` as a second noise embedding
//! (`cond_noise_level`; [`crate::nn::Condition::image_noise`]), as in Imagen, so one model
//! serves every level and the level is chosen at sampling. Augmenting makes the stage robust to
//! the artefacts of the stage below (and of a user's own images in `prism upscale`).
//!
//! The stage is fully convolutional: it trains on crops (`data.fit = "random_crop"`, the crop
//! side `data.image_size`) and refines images of any side that its network's downsamplings
//! divide.

use std::path::{Path, PathBuf};

use burn::tensor::Tensor;
use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};

use burn::tensor::Device;

use crate::data::MaskConfig;
use crate::nn::CLEAN_CONDITION_LOG_SNR;
use crate::schedule::{CosineSchedule, LogSnrSchedule, alpha_from_log_snr, sigma_from_log_snr};
use crate::tensor::{normal, per_sample, vector};
use crate::transform::{try_down, up_nearest};
use crate::{Error, Result};

/// `[stage]` in a config; a base model when absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum StageConfig {
    /// A model that draws images from noise.
    #[default]
    Base,
    /// A super-resolution stage: the condition is the image at `1/factor` of the resolution,
    /// upsampled by nearest neighbours.
    SuperResolution {
        /// The resolution ratio to the stage below (2 or more).
        factor: usize,
        /// The checkpoint of the stage below (`model.safetensors`), which sampling runs first.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        base: Option<PathBuf>,
        /// Training draws the condition's augmentation time `s ~ U(0, noise_aug_max)` per image
        /// (0: no augmentation; the network then has no `cond_noise_level`).
        #[serde(default, skip_serializing_if = "is_zero")]
        noise_aug_max: f64,
        /// The augmentation time sampling uses (at most `noise_aug_max`).
        #[serde(default, skip_serializing_if = "is_zero")]
        noise_aug: f64,
    },
    /// An inpainting model: conditioned on the masked image and the mask.
    Inpaint {
        /// How training masks are drawn.
        #[serde(default)]
        masks: MaskConfig,
    },
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

/// The schedule of the condition's noise augmentation: cosine, logSNR clipped to
/// `±`[`CLEAN_CONDITION_LOG_SNR`] (at `s = 0`, `σ_s = 4.5·10⁻⁵`: clean to far below one 8-bit
/// step).
pub fn augmentation_schedule() -> CosineSchedule {
    let l = f64::from(CLEAN_CONDITION_LOG_SNR);
    CosineSchedule::new(-l, l).expect("a valid clip range")
}

/// `c_s = α_s c + σ_s ξ` per sample (`levels`: the augmentation times `s`), and the logSNRs
/// `λ_s` the network is told; `noise` is `ξ`, of `c`'s shape.
pub fn augment(c: Tensor<4>, levels: &[f64], noise: Tensor<4>) -> (Tensor<4>, Tensor<1>) {
    let schedule = augmentation_schedule();
    let log_snr: Vec<f64> = levels.iter().map(|&s| schedule.log_snr(s)).collect();
    let device = c.device();
    let alpha: Vec<f64> = log_snr.iter().map(|&l| alpha_from_log_snr(l)).collect();
    let sigma: Vec<f64> = log_snr.iter().map(|&l| sigma_from_log_snr(l)).collect();
    let out = c * per_sample(&alpha, &device) + noise * per_sample(&sigma, &device);
    (out, vector(&log_snr, &device))
}

impl StageConfig {
    /// Whether this is a base model (configs leave `[stage]` out).
    pub fn is_base(&self) -> bool {
        *self == StageConfig::Base
    }

    /// Channels of the spatial condition in image space for data of `channels` channels.
    pub fn condition_channels(&self, channels: usize) -> usize {
        match self {
            StageConfig::Base => 0,
            StageConfig::SuperResolution { .. } => channels,
            StageConfig::Inpaint { .. } => channels + 1,
        }
    }

    /// The checkpoint of the stage below, if this stage names one.
    pub fn base(&self) -> Option<&Path> {
        match self {
            StageConfig::SuperResolution { base, .. } => base.as_deref(),
            StageConfig::Base | StageConfig::Inpaint { .. } => None,
        }
    }

    /// The side of the stage below for a stage of side `image_size`.
    pub fn input_size(&self, image_size: usize) -> Option<usize> {
        match self {
            StageConfig::SuperResolution { factor, .. } => Some(image_size / factor),
            StageConfig::Base | StageConfig::Inpaint { .. } => None,
        }
    }

    /// The resolution ratio to the stage below (`None` for a base or inpainting model).
    pub fn factor(&self) -> Option<usize> {
        match *self {
            StageConfig::SuperResolution { factor, .. } => Some(factor),
            StageConfig::Base | StageConfig::Inpaint { .. } => None,
        }
    }

    /// Whether training augments the condition with noise (the network must embed its level).
    pub fn augments(&self) -> bool {
        matches!(*self, StageConfig::SuperResolution { noise_aug_max, .. } if noise_aug_max > 0.0)
    }

    /// The augmentation time sampling uses by default (0 without augmentation).
    pub fn sampling_noise_aug(&self) -> f64 {
        match *self {
            StageConfig::SuperResolution { noise_aug, .. } => noise_aug,
            StageConfig::Base | StageConfig::Inpaint { .. } => 0.0,
        }
    }

    /// Range checks against the data side; errors name the key.
    pub fn validate(&self, image_size: usize) -> Result<()> {
        if let StageConfig::Inpaint { masks } = self {
            masks.validate("stage.masks")?;
        }
        if let StageConfig::SuperResolution {
            factor,
            noise_aug_max,
            noise_aug,
            ..
        } = *self
        {
            if factor < 2 || !image_size.is_multiple_of(factor) {
                return Err(Error::config(format!(
                    "stage.factor = {factor} must be at least 2 and divide data.image_size = {image_size}"
                )));
            }
            if !(0.0..=1.0).contains(&noise_aug_max) {
                return Err(Error::config(format!(
                    "stage.noise_aug_max = {noise_aug_max} must lie in [0, 1]"
                )));
            }
            self.check_noise_aug("stage.noise_aug", noise_aug)?;
        }
        Ok(())
    }

    /// Checks an augmentation time for sampling (`what` names the key or flag): finite, in
    /// `[0, noise_aug_max]` (a level the network never saw in training is refused).
    pub fn check_noise_aug(&self, what: &str, level: f64) -> Result<()> {
        let max = match *self {
            StageConfig::SuperResolution { noise_aug_max, .. } => noise_aug_max,
            StageConfig::Base | StageConfig::Inpaint { .. } => 0.0,
        };
        if !(0.0..=max).contains(&level) {
            return Err(Error::invalid(format!(
                "{what} = {level} must lie in [0, {max}] (stage.noise_aug_max: the augmentation levels the stage was trained on)"
            )));
        }
        Ok(())
    }

    /// Whether this is an inpainting model.
    pub fn is_inpaint(&self) -> bool {
        matches!(self, StageConfig::Inpaint { .. })
    }

    /// Training: the masks `[B, 1, H, W]` of an inpainting model for images of `shape`, drawn
    /// from `rng`; `None` for other stages.
    pub fn training_mask(
        &self,
        shape: [usize; 4],
        rng: &mut dyn RngCore,
        device: &Device,
    ) -> Option<Tensor<4>> {
        match self {
            StageConfig::Inpaint { masks } => {
                Some(masks.draw(shape[0], shape[2], shape[3], rng, device))
            }
            _ => None,
        }
    }

    /// Training: the augmentation times of a batch of `batch` images, `s ~ U(0, noise_aug_max)`
    /// drawn from `rng`; `None` (nothing drawn) without augmentation.
    pub fn training_noise_aug(&self, batch: usize, rng: &mut dyn RngCore) -> Option<Vec<f64>> {
        match *self {
            StageConfig::SuperResolution { noise_aug_max, .. } if noise_aug_max > 0.0 => Some(
                (0..batch)
                    .map(|_| rng.random::<f64>() * noise_aug_max)
                    .collect(),
            ),
            _ => None,
        }
    }

    /// The condition `c` (in the model's space) augmented at times `levels` with noise from
    /// `rng`, and its logSNRs; `c` unchanged and no level without augmentation.
    pub fn augmented(
        &self,
        c: Tensor<4>,
        levels: Option<&[f64]>,
        rng: &mut dyn RngCore,
    ) -> (Tensor<4>, Option<Tensor<1>>) {
        match levels.filter(|_| self.augments()) {
            Some(levels) => {
                let noise = normal(c.dims(), rng, &c.device());
                let (c, l) = augment(c, levels, noise);
                (c, Some(l))
            }
            None => (c, None),
        }
    }

    /// Training: the spatial condition of clean images `x0` (`x0` pooled by `factor`, then
    /// upsampled back); `None` for a base model and for an inpainting model (whose condition
    /// comes from its mask, see [`Self::training_mask`]).
    pub fn training_condition(&self, x0: &Tensor<4>) -> Result<Option<Tensor<4>>> {
        match *self {
            StageConfig::Base | StageConfig::Inpaint { .. } => Ok(None),
            StageConfig::SuperResolution { factor, .. } => {
                Ok(Some(up_nearest(try_down(x0.clone(), factor)?, factor)))
            }
        }
    }

    /// Sampling: the spatial condition from the stage below's output `low`.
    pub fn condition_from(&self, low: Tensor<4>) -> Result<Option<Tensor<4>>> {
        match *self {
            StageConfig::Base | StageConfig::Inpaint { .. } => Ok(None),
            StageConfig::SuperResolution { factor, .. } => Ok(Some(up_nearest(low, factor))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::to_vec;

    /// `s = 0` leaves the condition clean to 5·10⁻⁵; `α_s² + σ_s² = 1`; `s = ½` is logSNR 0
    /// (`α = σ = 1/√2`); the levels stay in the clip range; the network is told `λ_s`.
    #[test]
    fn augmentation_follows_the_cosine_schedule() {
        let (device, mut rng) = crate::golden_data::seeded(3);
        let c = normal([3, 1, 4, 4], &mut rng, &device);
        let xi = normal([3, 1, 4, 4], &mut rng, &device);
        let (out, l) = augment(c.clone(), &[0.0, 0.5, 1.0], xi.clone());
        let (out, c, xi) = (to_vec(out), to_vec(c), to_vec(xi));
        let l = to_vec(l);
        assert!((l[0] - 20.0).abs() < 1e-4, "{l:?}");
        assert!(l[1].abs() < 1e-5 && (l[2] + 20.0).abs() < 1e-4, "{l:?}");
        let h = std::f32::consts::FRAC_1_SQRT_2;
        for i in 0..16 {
            assert!((out[i] - c[i]).abs() < 1e-4 * (1.0 + xi[i].abs()));
            let j = 16 + i;
            assert!((out[j] - (h * c[j] + h * xi[j])).abs() < 1e-5);
            let k = 32 + i;
            assert!((out[k] - xi[k]).abs() < 1e-4 * (1.0 + c[k].abs()));
        }
    }

    #[test]
    fn training_levels_and_checks() {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let sr = StageConfig::SuperResolution {
            factor: 4,
            base: None,
            noise_aug_max: 0.3,
            noise_aug: 0.1,
        };
        let levels = sr.training_noise_aug(1000, &mut rng).unwrap();
        assert!(levels.iter().all(|&s| (0.0..0.3).contains(&s)));
        let mean = levels.iter().sum::<f64>() / 1000.0;
        assert!((mean - 0.15).abs() < 0.01, "{mean}");
        assert!(sr.validate(64).is_ok());
        let e = sr.check_noise_aug("--noise-aug", 0.5).unwrap_err();
        assert!(e.to_string().contains("--noise-aug = 0.5"), "{e}");
        assert!(sr.check_noise_aug("--noise-aug", f64::NAN).is_err());
        let plain = StageConfig::SuperResolution {
            factor: 4,
            base: None,
            noise_aug_max: 0.0,
            noise_aug: 0.0,
        };
        assert!(plain.training_noise_aug(4, &mut rng).is_none());
        let bad = StageConfig::SuperResolution {
            factor: 4,
            base: None,
            noise_aug_max: 1.5,
            noise_aug: 0.0,
        };
        let e = bad.validate(64).unwrap_err();
        assert!(e.to_string().contains("stage.noise_aug_max"), "{e}");
    }
}
