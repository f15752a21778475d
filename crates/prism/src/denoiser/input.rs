//! What a model reads for a batch of clean images: the images in the model's space, and its
//! condition — the labels, and a super-resolution stage's low-resolution image (in the space
//! too), noise-augmented as the stage says ([`crate::stage`]). Training, evaluation and
//! benchmarks prepare batches here, so they all feed the model the same way.

use burn::tensor::{Int, Tensor};
use rand::RngCore;

use crate::Result;
use crate::nn::Condition;
use crate::space::{Space, SpaceConfig};
use crate::stage::StageConfig;

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

    /// The space.
    pub fn space(&self) -> &dyn Space {
        self.space.as_ref()
    }

    /// Training: `images` (`[B, C, H, W]` in `[-1, 1]`) in the space, and the condition with
    /// `labels`; a super-resolution stage's condition is augmented at times drawn from `rng`
    /// (nothing is drawn without augmentation).
    pub fn prepare(
        &self,
        images: Tensor<4>,
        labels: Option<Tensor<1, Int>>,
        rng: &mut dyn RngCore,
    ) -> Result<(Tensor<4>, Condition)> {
        let levels = self.stage.training_noise_aug(images.dims()[0], rng);
        self.prepare_with(images, labels, levels, rng)
    }

    /// Evaluation and sample grids: as [`ModelInput::prepare`], with the stage's sampling
    /// augmentation time for every image.
    pub fn prepare_for_sampling(
        &self,
        images: Tensor<4>,
        labels: Option<Tensor<1, Int>>,
        rng: &mut dyn RngCore,
    ) -> Result<(Tensor<4>, Condition)> {
        let levels = vec![self.stage.sampling_noise_aug(); images.dims()[0]];
        self.prepare_with(images, labels, Some(levels), rng)
    }

    fn prepare_with(
        &self,
        images: Tensor<4>,
        labels: Option<Tensor<1, Int>>,
        levels: Option<Vec<f64>>,
        rng: &mut dyn RngCore,
    ) -> Result<(Tensor<4>, Condition)> {
        let (image, image_noise) = match self.stage.training_condition(&images)? {
            Some(c) => {
                let c = self.space.encode(c)?;
                let (c, l) = self.stage.augmented(c, levels.as_deref(), rng);
                (Some(c), l)
            }
            None => (None, None),
        };
        let cond = Condition {
            image,
            image_noise,
            ..Condition::labels(labels)
        };
        Ok((self.space.encode(images)?, cond))
    }
}
