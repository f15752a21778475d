//! Pipelines: a base model, then super-resolution stages, sampled in order; and a
//! super-resolution stage applied to a user's image in tiles ([`upscale`]). Each stage is a
//! trained checkpoint with its own config, process and space; a super-resolution stage takes the
//! output of the stage below as its spatial condition ([`crate::stage::StageConfig`]).
//!
//! A pipeline comes from a checkpoint (a super-resolution stage names its base, recursively) or
//! from a pipeline file:
//!
//! ```toml
//! [[stage]]
//! checkpoint = "runs/base/model.safetensors"
//! [[stage]]
//! checkpoint = "runs/sr/model.safetensors"
//! steps = 25              # optional: the stage's own sampler settings otherwise
//! sampler = "dpmpp-2m"
//! ```

mod inpaint;
mod stage;
mod upscale;

pub use stage::{Stage, StageSampling};
pub use upscale::{UpscaleOptions, upscale};

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor};
use serde::Deserialize;

use crate::nn::Condition;
use crate::sample::{Frame, SamplerKind};
use crate::{Error, Result};

/// The refusal of an inpainting model as a pipeline stage.
fn inpainting_model(path: &Path) -> Error {
    Error::invalid(format!(
        "'{}' is an inpainting model: it fills a masked image; use prism inpaint",
        path.display()
    ))
}

/// Stages deeper than this are refused (a base reference that loops).
const MAX_STAGES: usize = 8;

/// One `[[stage]]` of a pipeline file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageEntry {
    /// The stage's `model.safetensors`.
    pub checkpoint: PathBuf,
    /// Network evaluations (default: the stage's `sample.steps`).
    #[serde(default)]
    pub steps: Option<usize>,
    /// Sampler (default: the stage's `sample.sampler`).
    #[serde(default)]
    pub sampler: Option<SamplerKind>,
    /// Guidance weight (default: the stage's `sample.guidance`).
    #[serde(default)]
    pub guidance: Option<f64>,
    /// Guidance interval in logSNR, `[lo, hi]` (default: the stage's `sample.guidance_interval`).
    #[serde(default)]
    pub guidance_interval: Option<crate::denoiser::GuidanceInterval>,
}

/// A pipeline file: `[[stage]]` entries, the base model first.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineFile {
    /// The stages in sampling order.
    pub stage: Vec<StageEntry>,
}

/// Loaded stages in sampling order, each with its sampler settings.
#[derive(Debug)]
pub struct Pipeline {
    /// Base model first.
    pub stages: Vec<(Stage, StageSampling)>,
    /// Per-stage settings a pipeline file gave (they win over [`Pipeline::configure`]).
    overrides: Vec<Option<StageEntry>>,
}

impl Pipeline {
    /// The pipeline ending in the checkpoint at `path`: its `stage.base` references are followed
    /// down to a base model. Each stage samples with its own config's settings.
    pub fn from_checkpoint(path: &Path, device: &Device) -> Result<Self> {
        let mut stages = Vec::new();
        let mut next = Some(path.to_path_buf());
        while let Some(p) = next {
            if stages.len() == MAX_STAGES {
                return Err(Error::invalid(format!(
                    "'{}': more than {MAX_STAGES} stages below it (does a stage.base refer back?)",
                    path.display()
                )));
            }
            let stage = Stage::load(&p, device)?;
            if stage.cfg.stage.is_inpaint() {
                return Err(inpainting_model(&p));
            }
            next = match stage.cfg.stage.base() {
                Some(base) => Some(base.to_path_buf()),
                None if !stage.cfg.stage.is_base() => {
                    return Err(Error::invalid(format!(
                        "'{}' is a super-resolution stage that names no base checkpoint \
                         (stage.base); sample it with --pipeline FILE",
                        p.display()
                    )));
                }
                None => None,
            };
            let sampling = StageSampling::of(&stage);
            stages.push((stage, sampling));
        }
        stages.reverse();
        let overrides = vec![None; stages.len()];
        Self::checked(stages, overrides)
    }

    /// The pipeline a pipeline file describes (TOML, see the module docs).
    pub fn from_file(path: &Path, device: &Device) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
        let file: PipelineFile = toml::from_str(&text).map_err(|e| Error::Config {
            origin: Some(path.into()),
            reason: e.to_string().trim().to_string(),
        })?;
        let mut stages = Vec::new();
        for entry in &file.stage {
            let stage = Stage::load(&entry.checkpoint, device)?;
            let sampling = StageSampling::of(&stage);
            stages.push((stage, sampling));
        }
        let overrides = file.stage.into_iter().map(Some).collect();
        let mut pipeline = Self::checked(stages, overrides)?;
        pipeline.configure(|_| {});
        Ok(pipeline)
    }

    /// Changes every stage's sampler settings with `f`; the settings a pipeline file gave for a
    /// stage stay as the file says.
    pub fn configure(&mut self, f: impl Fn(&mut StageSampling)) {
        for ((_, sampling), entry) in self.stages.iter_mut().zip(&self.overrides) {
            f(sampling);
            if let Some(e) = entry {
                sampling.steps = e.steps.unwrap_or(sampling.steps);
                sampling.kind = e.sampler.unwrap_or(sampling.kind);
                sampling.guidance = e.guidance.unwrap_or(sampling.guidance);
                sampling.guidance_interval = e.guidance_interval.or(sampling.guidance_interval);
            }
        }
    }

    /// Checks the chain: a base model first, then super-resolution stages with the channels of
    /// the stage below, whose networks take `factor` times its side (they are fully
    /// convolutional, so the side they were trained on does not matter).
    fn checked(
        stages: Vec<(Stage, StageSampling)>,
        overrides: Vec<Option<StageEntry>>,
    ) -> Result<Self> {
        let Some((first, _)) = stages.first() else {
            return Err(Error::invalid("a pipeline needs at least one stage"));
        };
        if let Some((s, _)) = stages.iter().find(|(s, _)| s.cfg.stage.is_inpaint()) {
            return Err(inpainting_model(&s.path));
        }
        if !first.cfg.stage.is_base() {
            return Err(Error::invalid(format!(
                "the first stage '{}' must be a base model, not a super-resolution stage",
                first.path.display()
            )));
        }
        let mut side = first.cfg.data.image_size;
        for pair in stages.windows(2) {
            let (low, high) = (&pair[0].0, &pair[1].0);
            let (channels, low_channels) = (high.cfg.data.channels, low.cfg.data.channels);
            let Some(factor) = high.cfg.stage.factor() else {
                return Err(Error::invalid(format!(
                    "stage '{}' is a base model and cannot follow '{}'",
                    high.path.display(),
                    low.path.display()
                )));
            };
            let fits = high.cfg.model.validate_for(side * factor, channels);
            if channels != low_channels || fits.is_err() {
                return Err(Error::invalid(format!(
                    "stage '{}' ({channels} channels, ×{factor}) cannot follow '{}' ({low_channels} channels, {side}² images){}",
                    high.path.display(),
                    low.path.display(),
                    fits.err().map(|e| format!(": {e}")).unwrap_or_default()
                )));
            }
            side *= factor;
        }
        Ok(Self { stages, overrides })
    }

    /// Draws `n` images through every stage: the base model under `cond`, then each stage under
    /// `cond` with the image from the stage below. `on_stage(i, stages)` is called before stage
    /// `i` starts; `on_step` as in [`crate::sample::sample`].
    pub fn generate(
        &self,
        n: usize,
        cond: &Condition,
        seed: u64,
        device: &Device,
        on_stage: &mut dyn FnMut(usize, usize),
        on_step: &mut dyn FnMut(usize, usize),
    ) -> Result<Tensor<4>> {
        self.generate_traced(n, cond, seed, device, on_stage, on_step, None)
    }

    /// [`Pipeline::generate`], recording the trajectory of the last stage's first image (in
    /// that stage's space, see [`crate::sample::Frame`]) into `trace` when given.
    #[allow(clippy::too_many_arguments)]
    pub fn generate_traced(
        &self,
        n: usize,
        cond: &Condition,
        seed: u64,
        device: &Device,
        on_stage: &mut dyn FnMut(usize, usize),
        on_step: &mut dyn FnMut(usize, usize),
        mut trace: Option<&mut Vec<Frame>>,
    ) -> Result<Tensor<4>> {
        let mut images: Option<Tensor<4>> = None;
        let last = self.stages.len().saturating_sub(1);
        for (i, (stage, sampling)) in self.stages.iter().enumerate() {
            on_stage(i, self.stages.len());
            let stage_seed = seed.wrapping_add(i as u64);
            let trace = if i == last { trace.take() } else { None };
            images = Some(stage.generate_traced(
                n, sampling, cond, images, stage_seed, device, on_step, trace,
            )?);
        }
        images.ok_or_else(|| Error::invalid("a pipeline needs at least one stage"))
    }

    /// The last stage (the one whose images the pipeline returns).
    pub fn last(&self) -> &Stage {
        &self.stages[self.stages.len() - 1].0
    }
}
