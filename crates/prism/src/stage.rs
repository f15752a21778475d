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

use std::path::{Path, PathBuf};

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use burn::tensor::Device;
use rand::RngCore;

use crate::data::MaskConfig;
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
    },
    /// An inpainting model: conditioned on the masked image and the mask.
    Inpaint {
        /// How training masks are drawn.
        #[serde(default)]
        masks: MaskConfig,
    },
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

    /// Range checks against the data side; errors name the key.
    pub fn validate(&self, image_size: usize) -> Result<()> {
        if let StageConfig::Inpaint { masks } = self {
            masks.validate("stage.masks")?;
        }
        if let StageConfig::SuperResolution { factor, .. } = *self
            && (factor < 2 || !image_size.is_multiple_of(factor))
        {
            return Err(Error::config(format!(
                "stage.factor = {factor} must be at least 2 and divide data.image_size = {image_size}"
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
