//! One trained stage: its checkpoint, config, model, process and space, and how it draws images.

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor};

use crate::config::ExperimentConfig;
use crate::denoiser::{DiffusionModel, GuidanceInterval};
use crate::nn::Condition;
use crate::process::Process;
use crate::sample::{Generate, SamplerKind, Spacing, generate};
use crate::space::Space;
use crate::{Error, Result};

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

    /// The shape of `n` of its images.
    pub fn image_shape(&self, n: usize) -> [usize; 4] {
        let d = &self.cfg.data;
        [n, d.channels, d.image_size, d.image_size]
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
        if self.cfg.stage.is_inpaint() {
            return Err(Error::invalid(format!(
                "'{}' is an inpainting model: it fills a masked image (prism inpaint)",
                self.path.display()
            )));
        }
        let image = match (low, self.cfg.stage.is_base()) {
            (None, true) => None,
            (Some(low), false) => self.cfg.stage.condition_from(low)?,
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
            image: image.map(|i| self.space.encode(i)).transpose()?,
            ..self.condition(cond)
        };
        self.draw(n, sampling, cond, seed, device, on_step)
    }

    /// The parts of `cond` the model takes: labels for a class-conditional model, a context for
    /// one that reads it.
    pub(super) fn condition(&self, cond: &Condition) -> Condition {
        Condition {
            label: cond
                .label
                .clone()
                .filter(|_| self.model.net.num_classes() > 0),
            context: cond.context.clone().filter(|_| self.model.reads_context()),
            image: None,
        }
    }

    /// Draws `n` images under the full condition `cond` (its spatial part already in the space),
    /// decoded.
    pub(super) fn draw(
        &self,
        n: usize,
        sampling: &StageSampling,
        cond: Condition,
        seed: u64,
        device: &Device,
        on_step: &mut dyn FnMut(usize, usize),
    ) -> Result<Tensor<4>> {
        let request = Generate {
            kind: sampling.kind,
            steps: sampling.steps,
            spacing: sampling.spacing,
            shape: self.space.shape(self.image_shape(n)),
            cond,
            guidance: sampling.guidance,
            guidance_interval: sampling.guidance_interval,
            clip_x0: sampling.clip_x0,
            seed,
        };
        let z = generate(
            &self.model,
            self.process.as_ref(),
            &request,
            device,
            on_step,
        )?;
        self.space.decode(z)
    }
}
