//! What a model reads for a batch of clean images: the images in the model's space, and its
//! condition — the labels and context, a super-resolution stage's low-resolution image (in the
//! space too, noise-augmented as the stage says, [`crate::stage`]), an inpainting model's masked
//! image and mask. Training, evaluation and benchmarks prepare batches here, so they all feed the
//! model the same way.

use burn::tensor::Tensor;
use rand::RngCore;

use crate::nn::Condition;
use crate::space::{Space, SpaceConfig};
use crate::stage::StageConfig;
use crate::{Error, Result};

/// See the module docs.
#[derive(Debug)]
pub struct ModelInput {
    space: Box<dyn Space>,
    stage: StageConfig,
}

impl ModelInput {
    /// The input of a model diffusing in `space` at its place `stage` in a cascade.
    pub fn new(space: &SpaceConfig, stage: &StageConfig) -> Result<Self> {
        Ok(Self {
            space: space.build()?,
            stage: stage.clone(),
        })
    }

    /// The input of a model diffusing in the space `space` (already built) at `stage`.
    pub fn with_space(space: Box<dyn Space>, stage: &StageConfig) -> Self {
        Self {
            space,
            stage: stage.clone(),
        }
    }

    /// The space.
    pub fn space(&self) -> &dyn Space {
        self.space.as_ref()
    }

    /// Training: `images` (`[B, C, H, W]` in `[-1, 1]`) in the space, and the condition:
    /// `cond`'s labels and context with the stage's spatial condition added — an inpainting
    /// model's masks drawn from `rng`, a super-resolution stage's condition augmented at times
    /// drawn from `rng` (nothing is drawn without augmentation).
    pub fn prepare(
        &self,
        images: Tensor<4>,
        cond: Condition,
        rng: &mut dyn RngCore,
    ) -> Result<(Tensor<4>, Condition)> {
        let levels = self.stage.training_noise_aug(images.dims()[0], rng);
        self.prepare_with(images, cond, levels, rng)
    }

    /// Evaluation and sample grids: as [`ModelInput::prepare`], with the stage's sampling
    /// augmentation time for every image.
    pub fn prepare_for_sampling(
        &self,
        images: Tensor<4>,
        cond: Condition,
        rng: &mut dyn RngCore,
    ) -> Result<(Tensor<4>, Condition)> {
        let levels = vec![self.stage.sampling_noise_aug(); images.dims()[0]];
        self.prepare_with(images, cond, Some(levels), rng)
    }

    fn prepare_with(
        &self,
        images: Tensor<4>,
        cond: Condition,
        levels: Option<Vec<f64>>,
        rng: &mut dyn RngCore,
    ) -> Result<(Tensor<4>, Condition)> {
        let (image, image_noise) =
            match self
                .stage
                .training_mask(images.dims(), rng, &images.device())
            {
                Some(mask) => (Some(self.inpainting_condition(images.clone(), mask)?), None),
                None => match self.stage.training_condition(&images)? {
                    Some(c) => {
                        let c = self.space.encode(c)?;
                        let (c, l) = self.stage.augmented(c, levels.as_deref(), rng);
                        (Some(c), l)
                    }
                    None => (None, None),
                },
            };
        Ok((
            self.space.encode(images)?,
            Condition {
                image,
                image_noise,
                ..cond
            },
        ))
    }

    /// An inpainting model's spatial condition for `images` (`[B, C, H, W]`) and `mask`
    /// (`[B, 1, H, W]`, 1 = fill): the masked image `images · (1 − mask)` in the space, then the
    /// mask at the space's resolution ([`Space::mask`]), on the channel axis (`C_space + 1`).
    pub fn inpainting_condition(&self, images: Tensor<4>, mask: Tensor<4>) -> Result<Tensor<4>> {
        let [b, _, h, w] = images.dims();
        if mask.dims() != [b, 1, h, w] {
            return Err(Error::Shape(format!(
                "the mask is {:?}; the images [{b}, _, {h}, {w}] need [{b}, 1, {h}, {w}]",
                mask.dims()
            )));
        }
        let masked = images * (mask.clone().neg() + 1.0);
        Ok(Tensor::cat(
            vec![self.space.encode(masked)?, self.space.mask(mask)?],
            1,
        ))
    }
}
