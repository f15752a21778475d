//! What a model reads for a batch of clean images: the images in the model's space, and its
//! condition — the labels, and a super-resolution stage's low-resolution image (in the space
//! too). Training, evaluation and benchmarks prepare batches here, so they all feed the model
//! the same way.

use burn::tensor::{Int, Tensor};

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

    /// `images` (`[B, C, H, W]` in `[-1, 1]`) in the space, and the condition with `labels`.
    pub fn prepare(
        &self,
        images: Tensor<4>,
        labels: Option<Tensor<1, Int>>,
    ) -> Result<(Tensor<4>, Condition)> {
        let image = self
            .stage
            .training_condition(&images)?
            .map(|i| self.space.encode(i))
            .transpose()?;
        let cond = Condition {
            image,
            ..Condition::labels(labels)
        };
        Ok((self.space.encode(images)?, cond))
    }
}
