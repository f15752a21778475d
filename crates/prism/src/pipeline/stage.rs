//! One trained stage: its checkpoint, config, model, process and space, and how it draws images.

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor};
use rand::SeedableRng;

use crate::config::ExperimentConfig;
use crate::denoiser::{DiffusionModel, GuidanceInterval};
use crate::nn::Condition;
use crate::process::Process;
use crate::sample::{Frame, Generate, SamplerKind, Spacing, generate_traced};
use crate::space::Space;
use crate::{Error, Result};

/// Mixed into the seed of a stage's condition augmentation noise, apart from its sampler's.
const NOISE_AUG_STREAM: u64 = 0x0A06_0A06_0A06_0A06;

/// A loaded checkpoint, ready to sample.
#[derive(Debug)]
pub struct Stage {
    /// Its `model.safetensors`.
    pub path: PathBuf,
    /// The config it was trained with (from the checkpoint's metadata).
    pub cfg: ExperimentConfig,
    /// The EMA weights.
    pub model: DiffusionModel,
    /// Its forward process.
    pub process: Process,
    /// Its space.
    pub space: Box<dyn Space>,
    /// The training step the checkpoint was written at.
    pub step: u64,
}

/// How a stage samples.
#[derive(Debug, Clone, PartialEq)]
pub struct StageSampling {
    /// Sampler.
    pub kind: SamplerKind,
    /// Network evaluations.
    pub steps: usize,
    /// Where the sampler puts its levels.
    pub spacing: Spacing,
    /// Classifier-free guidance weight (1: none).
    pub guidance: f64,
    /// Guide only inside this logSNR window (`None`: everywhere).
    pub guidance_interval: Option<GuidanceInterval>,
    /// Clip `x̂` to `[-1, 1]`.
    pub clip_x0: bool,
    /// A super-resolution stage's noise augmentation time for its condition ([`crate::stage`]).
    pub noise_aug: f64,
}

impl StageSampling {
    /// The stage's config's `[sample]` settings.
    pub fn of(stage: &Stage) -> Self {
        let s = &stage.cfg.sample;
        Self {
            kind: s.sampler,
            steps: s.steps,
            spacing: Spacing::default(),
            guidance: s.guidance,
            guidance_interval: s.guidance_interval,
            clip_x0: s.clip_x0,
            noise_aug: stage.cfg.stage.sampling_noise_aug(),
        }
    }
}

impl Stage {
    /// Loads `model.safetensors` at `path` on `device`.
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        let (cfg, model, step) = crate::run::load_model(path, device)?;
        let process = cfg.process.build()?;
        let space = cfg.space.build()?;
        Ok(Self {
            path: path.to_path_buf(),
            cfg,
            model,
            process,
            space,
            step,
        })
    }

    /// The shape of `n` of its images: the trained side for a base model; for a
    /// super-resolution stage (fully convolutional) `factor` times the side of the stage below,
    /// `low_side`.
    pub fn image_shape(&self, n: usize, low_side: Option<[usize; 2]>) -> [usize; 4] {
        let d = &self.cfg.data;
        match (self.cfg.stage.factor(), low_side) {
            (Some(f), Some([h, w])) => [n, d.channels, h * f, w * f],
            _ => [n, d.channels, d.image_size, d.image_size],
        }
    }

    /// The spatial condition (in the stage's space) of the images `low` of the stage below,
    /// augmented at time `noise_aug` with noise seeded by `seed` when the stage was trained with
    /// augmentation; errors for a base model or a level outside the trained range.
    pub fn condition(&self, low: Tensor<4>, noise_aug: f64, seed: u64) -> Result<Condition> {
        let stage = &self.cfg.stage;
        stage.check_noise_aug("the noise augmentation level", noise_aug)?;
        let n = low.dims()[0];
        let Some(image) = stage.condition_from(low)? else {
            return Err(Error::invalid(format!(
                "'{}' is a base model: it takes no images from a stage below",
                self.path.display()
            )));
        };
        let image = self.space.encode(image)?;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ NOISE_AUG_STREAM);
        let (image, image_noise) = stage.augmented(image, Some(&vec![noise_aug; n]), &mut rng);
        Ok(Condition {
            image: Some(image),
            image_noise,
            ..Condition::none()
        })
    }

    /// Draws `n` images under `cond` (only the parts the model takes: labels for a
    /// class-conditional model) and, for a super-resolution stage, the images `low` of the stage
    /// below; in the stage's space, then decoded.
    #[allow(clippy::too_many_arguments)]
    pub fn generate(
        &self,
        n: usize,
        sampling: &StageSampling,
        cond: &Condition,
        low: Option<Tensor<4>>,
        seed: u64,
        device: &Device,
        on_step: &mut dyn FnMut(usize, usize),
    ) -> Result<Tensor<4>> {
        self.generate_traced(n, sampling, cond, low, seed, device, on_step, None)
    }

    /// [`Stage::generate`], recording the first image's trajectory (in the stage's space) into
    /// `trace` when given.
    #[allow(clippy::too_many_arguments)]
    pub fn generate_traced(
        &self,
        n: usize,
        sampling: &StageSampling,
        cond: &Condition,
        low: Option<Tensor<4>>,
        seed: u64,
        device: &Device,
        on_step: &mut dyn FnMut(usize, usize),
        trace: Option<&mut Vec<Frame>>,
    ) -> Result<Tensor<4>> {
        if self.cfg.stage.is_inpaint() {
            return Err(Error::invalid(format!(
                "'{}' is an inpainting model: it fills a masked image (prism inpaint)",
                self.path.display()
            )));
        }
        let low_side = low.as_ref().map(|l| [l.dims()[2], l.dims()[3]]);
        let spatial = match (low, self.cfg.stage.is_base()) {
            (None, true) => Condition::none(),
            (Some(low), false) => self.condition(low, sampling.noise_aug, seed)?,
            (None, false) => {
                return Err(Error::invalid(format!(
                    "'{}' is a super-resolution stage: it needs the images of the stage below",
                    self.path.display()
                )));
            }
            (Some(_), true) => {
                return Err(Error::invalid(format!(
                    "'{}' is a base model: it takes no images from a stage below",
                    self.path.display()
                )));
            }
        };
        let cond = Condition {
            image: spatial.image,
            image_noise: spatial.image_noise,
            ..self.model_condition(cond)
        };
        let shape = self.image_shape(n, low_side);
        self.draw(shape, sampling, cond, seed, device, on_step, trace)
    }

    /// The parts of `cond` the model takes: labels for a class-conditional model, a context for
    /// one that reads it.
    pub(super) fn model_condition(&self, cond: &Condition) -> Condition {
        Condition {
            label: cond
                .label
                .clone()
                .filter(|_| self.model.net.num_classes() > 0),
            context: cond.context.clone().filter(|_| self.model.reads_context()),
            image: None,
            image_noise: None,
        }
    }

    /// Draws images of `shape` (`[N, C, H, W]` in image space) under the full condition `cond`
    /// (its spatial part already in the space), decoded; records the first image's trajectory
    /// (in the model's space) into `trace` when given.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn draw(
        &self,
        shape: [usize; 4],
        sampling: &StageSampling,
        cond: Condition,
        seed: u64,
        device: &Device,
        on_step: &mut dyn FnMut(usize, usize),
        trace: Option<&mut Vec<Frame>>,
    ) -> Result<Tensor<4>> {
        let request = Generate {
            kind: sampling.kind,
            steps: sampling.steps,
            spacing: sampling.spacing,
            shape: self.space.shape(shape),
            cond,
            guidance: sampling.guidance,
            guidance_interval: sampling.guidance_interval,
            clip_x0: sampling.clip_x0,
            seed,
        };
        let z = generate_traced(
            &self.model,
            self.process.as_ref(),
            &request,
            device,
            on_step,
            trace,
        )?;
        self.space.decode(z)
    }
}
