//! The experiment configuration: one TOML file with `[data]`, `[process]`, `[model]`,
//! `[objective]`, `[train]` and `[sample]` tables. Unknown keys are errors that name the key.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::data::DataConfig;
use burn::tensor::Tensor;

use crate::denoiser::{DiffusionModel, GuidanceInterval, ModelConfig, Networks};
use crate::objective::{LossInputs, Weighting, multiscale_loss};
use crate::process::Parameterization;
use crate::process::ProcessConfig;
use crate::sample::SamplerKind;
use crate::space::SpaceConfig;
use crate::stage::StageConfig;
use crate::train::{AdamWConfig, LrSchedule, ModuleSpec};
use crate::{Error, Result};

/// Everything that defines a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Free-form name, shown in logs.
    #[serde(default)]
    pub name: String,
    /// Data source and shape.
    pub data: DataConfig,
    /// The space the model diffuses in (pixels when absent).
    #[serde(default, skip_serializing_if = "SpaceConfig::is_pixels")]
    pub space: SpaceConfig,
    /// The model's place in a cascade (a base model when absent).
    #[serde(default, skip_serializing_if = "StageConfig::is_base")]
    pub stage: StageConfig,
    /// Forward process and schedule.
    #[serde(default)]
    pub process: ProcessConfig,
    /// Network and parameterisation.
    pub model: ModelConfig,
    /// Loss weighting.
    #[serde(default)]
    pub objective: ObjectiveConfig,
    /// Optimisation and logging.
    pub train: TrainConfig,
    /// Sampling defaults (also used for the grids written during training).
    #[serde(default)]
    pub sample: SampleConfig,
}

/// The training objective.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectiveConfig {
    /// How noise levels are weighted.
    #[serde(default)]
    pub weighting: Weighting,
    /// Use simple diffusion's multiscale loss on `ε` (formula sheet §2, [`multiscale_loss`]).
    #[serde(default)]
    pub multiscale: bool,
    /// The lowest resolution of the multiscale loss (the paper's 32).
    #[serde(default = "default_multiscale_min")]
    pub multiscale_min: usize,
}

fn default_multiscale_min() -> usize {
    32
}

impl Default for ObjectiveConfig {
    fn default() -> Self {
        Self {
            weighting: Weighting::default(),
            multiscale: false,
            multiscale_min: default_multiscale_min(),
        }
    }
}

impl ObjectiveConfig {
    /// Range checks; errors name the key.
    pub fn validate(&self) -> Result<()> {
        if self.multiscale_min == 0 {
            return Err(Error::config("objective.multiscale_min must be positive"));
        }
        if let Weighting::Sigmoid { bias } = self.weighting
            && !bias.is_finite()
        {
            return Err(Error::config(format!(
                "objective.weighting.bias must be a finite number, got {bias}"
            )));
        }
        Ok(())
    }

    /// The scalar training loss: the weighting's loss, or its multiscale version.
    pub fn loss(&self, p: Parameterization, i: LossInputs<'_>) -> Tensor<1> {
        if self.multiscale {
            multiscale_loss(self.weighting, p, i, self.multiscale_min)
        } else {
            self.weighting.loss(i)
        }
    }
}

/// Optimisation, EMA, logging and checkpoint intervals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Total optimiser steps.
    pub steps: u64,
    /// Images per step.
    pub batch_size: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Linear warm-up steps from 0 to `lr`.
    #[serde(default)]
    pub warmup_steps: u64,
    /// AdamW settings.
    #[serde(default)]
    pub adamw: AdamWConfig,
    /// Global gradient-norm clip (none if absent).
    #[serde(default)]
    pub grad_clip: Option<f64>,
    /// EMA decay.
    #[serde(default = "default_ema")]
    pub ema_decay: f64,
    /// Probability of replacing the label by the null label (classifier-free guidance training).
    #[serde(default)]
    pub cond_drop_prob: f64,
    /// Seed of every random choice in the run.
    #[serde(default)]
    pub seed: u64,
    /// Metrics line every this many steps.
    #[serde(default = "default_log_every")]
    pub log_every: u64,
    /// Sample grid and loss plot every this many steps (0: only at the end).
    #[serde(default)]
    pub sample_every: u64,
    /// Checkpoint every this many steps (0: only at the end).
    #[serde(default)]
    pub checkpoint_every: u64,
    /// Stop with an error after this many bad steps in a row (a non-finite loss or gradient
    /// norm); each bad step is skipped without an update. At least 1.
    #[serde(default = "default_max_bad_steps")]
    pub max_bad_steps: u64,
}

impl TrainConfig {
    /// How the trainer optimises the diffusion model: AdamW with `adamw`, linear warm-up over
    /// `warmup_steps` to `lr` then constant, `grad_clip`, EMA with `ema_decay`.
    pub fn module_spec(&self) -> ModuleSpec {
        ModuleSpec {
            adamw: self.adamw.clone(),
            lr: LrSchedule::WarmupConstant {
                peak: self.lr,
                warmup: self.warmup_steps,
            },
            grad_clip: self.grad_clip,
            ema_decay: Some(self.ema_decay),
        }
    }
}

fn default_ema() -> f64 {
    0.999
}
fn default_log_every() -> u64 {
    50
}
fn default_max_bad_steps() -> u64 {
    crate::train::DEFAULT_MAX_BAD_STEPS
}

/// Sampling defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleConfig {
    /// Sampler.
    #[serde(default = "default_sampler")]
    pub sampler: SamplerKind,
    /// Network evaluations.
    #[serde(default = "default_steps")]
    pub steps: usize,
    /// Images in a grid.
    #[serde(default = "default_num")]
    pub num: usize,
    /// Classifier-free guidance weight (1: none).
    #[serde(default = "default_guidance")]
    pub guidance: f64,
    /// Guide only at logSNR in `[lo, hi]` (Kynkäänniemi et al. 2024; absent: everywhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guidance_interval: Option<GuidanceInterval>,
    /// Clip `x̂` to `[-1, 1]` while sampling.
    #[serde(default = "default_clip")]
    pub clip_x0: bool,
}

fn default_sampler() -> SamplerKind {
    SamplerKind::DpmPp2m
}
fn default_steps() -> usize {
    50
}
fn default_num() -> usize {
    64
}
fn default_guidance() -> f64 {
    1.0
}
fn default_clip() -> bool {
    true
}

impl Default for SampleConfig {
    fn default() -> Self {
        Self {
            sampler: default_sampler(),
            steps: default_steps(),
            num: default_num(),
            guidance: default_guidance(),
            guidance_interval: None,
            clip_x0: default_clip(),
        }
    }
}

/// A classifier-free guidance weight must be a finite number, at least 0 (1: no guidance).
pub fn check_guidance(key: &str, w: f64) -> Result<()> {
    if !(w.is_finite() && w >= 0.0) {
        return Err(Error::config(format!(
            "{key} must be a finite number >= 0 (1: no guidance), got {w}"
        )));
    }
    Ok(())
}

impl ExperimentConfig {
    /// Parses TOML; errors name the key (and `origin` when given).
    pub fn from_toml(text: &str, origin: Option<&Path>) -> Result<Self> {
        let cfg: Self = toml::from_str(text).map_err(|e| Error::Config {
            origin: origin.map(Path::to_path_buf),
            reason: e.to_string().trim().to_string(),
        })?;
        cfg.validate().map_err(|e| match e {
            Error::Config { reason, .. } => Error::Config {
                origin: origin.map(Path::to_path_buf),
                reason,
            },
            other => other,
        })?;
        Ok(cfg)
    }

    /// Reads and parses a TOML file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
        Self::from_toml(&text, Some(path))
    }

    /// Serialises to TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serialises")
    }

    /// Cross-field checks.
    pub fn validate(&self) -> Result<()> {
        self.space.validate()?;
        let d = &self.data;
        match self
            .space
            .static_shape([1, d.channels, d.image_size, d.image_size])
        {
            Some([_, c, side, _]) => self.validate_in_space(side, c)?,
            // A latent space's side and channels come from its autoencoder: checked when it is
            // loaded (`check_space`).
            None => {
                self.model.validate()?;
                self.stage.validate(self.data.image_size)?;
            }
        }
        self.validate_context()?;
        self.objective.validate()?;
        let t = &self.train;
        if t.steps == 0 || t.batch_size == 0 {
            return Err(Error::config(
                "train.steps and train.batch_size must be positive",
            ));
        }
        if !(t.lr.is_finite() && t.lr > 0.0) {
            return Err(Error::config(format!(
                "train.lr must be a positive finite number, got {}",
                t.lr
            )));
        }
        t.adamw.validate("train.adamw")?;
        if !(0.0..1.0).contains(&t.ema_decay) {
            return Err(Error::config(format!(
                "train.ema_decay must lie in [0, 1), got {}",
                t.ema_decay
            )));
        }
        if !(0.0..1.0).contains(&t.cond_drop_prob) {
            return Err(Error::config(format!(
                "train.cond_drop_prob must lie in [0, 1), got {}",
                t.cond_drop_prob
            )));
        }
        if let Some(c) = t.grad_clip
            && !(c.is_finite() && c > 0.0)
        {
            return Err(Error::config(format!(
                "train.grad_clip must be a positive finite number, got {c}"
            )));
        }
        if t.max_bad_steps == 0 {
            return Err(Error::config(
                "train.max_bad_steps must be at least 1 (the bad steps in a row that stop a run)",
            ));
        }
        self.validate_process()?;
        if self.sample.steps == 0 || self.sample.num == 0 {
            return Err(Error::config(
                "sample.steps and sample.num must be positive",
            ));
        }
        check_guidance("sample.guidance", self.sample.guidance)?;
        if self.space.latent().is_some() && self.sample.clip_x0 {
            return Err(Error::config(
                "sample.clip_x0 = true clips x̂ to [-1, 1], the range of pixels, but this model diffuses in an autoencoder's latent space (unit variance, unbounded): set sample.clip_x0 = false (LDM does not clip)",
            ));
        }
        Ok(())
    }

    /// The model with fresh weights on `device`: one network, or one per resolution of the
    /// process (`model.networks`).
    pub fn init_model(&self, device: &burn::tensor::Device) -> Result<DiffusionModel> {
        self.model.init_for(&self.process.state_sides(), device)
    }

    /// How the model reads batches: its space and its place in a cascade.
    pub fn model_input(&self) -> Result<crate::denoiser::ModelInput> {
        let input = crate::denoiser::ModelInput::new(&self.space, &self.stage)?;
        self.check_space(input.space())?;
        Ok(input)
    }

    /// The network, stage and process fit the states of `space` (for a latent space, known once
    /// its autoencoder is loaded); errors say it is the latent space.
    pub fn check_space(&self, space: &dyn crate::space::Space) -> Result<()> {
        if self.space.static_shape([1, 1, 1, 1]).is_some() {
            return Ok(());
        }
        let d = &self.data;
        let [_, c, side, _] = space.shape([1, d.channels, d.image_size, d.image_size]);
        if let Some(l) = space.as_latent()
            && l.image_channels() != d.channels
        {
            return Err(Error::config(format!(
                "data.channels = {} but the autoencoder '{}' takes {}-channel images",
                d.channels,
                l.path().display(),
                l.image_channels()
            )));
        }
        self.validate_in_space(side, c).map_err(|e| match e {
            Error::Config { origin, reason } => Error::Config {
                origin,
                reason: format!(
                    "in the {} space ({c} channels of {side}×{side} for {}×{} images): {reason}",
                    space.kind(),
                    d.image_size,
                    d.image_size
                ),
            },
            other => other,
        })
    }

    /// The checks that depend on the states the model sees: `side` and `channels` of the space.
    fn validate_in_space(&self, side: usize, channels: usize) -> Result<()> {
        self.model.validate_for(side, channels)?;
        self.validate_stage(channels)?;
        if let Some(n) = self.process.image_size()
            && n != side
        {
            return Err(Error::config(format!(
                "process.image_size = {n} but the model diffuses {side}² states (data.image_size = {}); set them equal",
                self.data.image_size
            )));
        }
        Ok(())
    }

    /// `data.context` is set exactly when the network's cross-attention reads a supplied context.
    fn validate_context(&self) -> Result<()> {
        let net = &self.model.net;
        let reads = net
            .core()
            .cross_attention
            .as_ref()
            .is_some_and(|x| x.class_tokens().is_none());
        match (reads, &self.data.context) {
            (true, None) => Err(Error::config(format!(
                "{}.cross_attention.context = {{ kind = \"data\" }} needs data.context (a safetensors file of context sequences)",
                net.key()
            ))),
            (false, Some(c)) => Err(Error::config(format!(
                "data.context = '{}' is set, but the network reads no supplied context (set {}.cross_attention with context = {{ kind = \"data\" }})",
                c.display(),
                net.key()
            ))),
            _ => Ok(()),
        }
    }

    /// A super-resolution stage's network takes the low-resolution image beside the state; a
    /// base model's takes none. A stage that augments its condition with noise has a network
    /// that embeds the augmentation level (`cond_noise_level`), and only such a stage.
    fn validate_stage(&self, channels: usize) -> Result<()> {
        self.stage.validate(self.data.image_size)?;
        let net = &self.model.net;
        let want = self.stage.condition_channels(channels) * self.model.patching.channel_factor();
        if net.core().cond_channels != want {
            return Err(Error::config(format!(
                "{}.cond_channels = {} but this {} stage conditions on {want} channels (after patching)",
                net.key(),
                net.core().cond_channels,
                match self.stage {
                    StageConfig::Base => "base",
                    StageConfig::SuperResolution { .. } => "super-resolution",
                    StageConfig::Inpaint { .. } => "inpainting (channels + 1 for the mask)",
                }
            )));
        }
        if net.core().cond_noise_level != self.stage.augments() {
            return Err(Error::config(format!(
                "{}.cond_noise_level = {} but stage.noise_aug_max is {}: a stage that augments its condition with noise must tell the network the level (set both, or neither)",
                net.key(),
                net.core().cond_noise_level,
                if self.stage.augments() {
                    "positive"
                } else {
                    "0 or absent"
                }
            )));
        }
        Ok(())
    }

    /// The process builds and accepts the model, objective and sampler: the parameterisation is
    /// one the process converts, the ELBO weighting only for a process whose ELBO it is, and the
    /// sampler one that applies to the process.
    ///
    /// A shifted or interpolated schedule must be made for the trained side (simple diffusion
    /// §3.1 shifts by `2 log(r/d)` with `d` that side): a copied preset whose
    /// `process.schedule.image_size` was left behind would silently train at another noise level.
    fn validate_process(&self) -> Result<()> {
        let process = self.process.build()?;
        if let Some(d) = self.process.schedule().image_size()
            && d != self.data.image_size
        {
            return Err(Error::config(format!(
                "process.schedule.image_size = {d} but data.image_size = {}; a resolution-shifted schedule must be made for the trained side",
                self.data.image_size
            )));
        }
        if let Some(s) = self.process.smallest_side() {
            let f = self.model.patching.spatial_factor() << self.model.net.depth();
            if !s.is_multiple_of(f) {
                return Err(Error::config(format!(
                    "the process's smallest state is {s}², which the network cannot take: its side must be divisible by {f} (patching and the {} downsamplings of {}.channel_mults); use fewer levels or a shallower network",
                    self.model.net.depth(),
                    self.model.net.key()
                )));
            }
        }
        let kind = process.kind();
        if self.model.networks == Networks::PerResolution && self.process.state_sides().len() < 2 {
            return Err(Error::config(format!(
                "model.networks = \"per_resolution\" needs a process whose state changes resolution (process.kind = \"laplacian\"); the {kind} process has one, use \"shared\""
            )));
        }
        let p = self.model.parameterization;
        let allowed = process.parameterizations();
        if !allowed.contains(&p) {
            let names: Vec<String> = allowed
                .iter()
                .map(|a| format!("\"{}\"", a.name()))
                .collect();
            return Err(Error::config(format!(
                "process.kind = \"{kind}\" needs model.parameterization = {}, got \"{}\"",
                names.join(" or "),
                p.name()
            )));
        }
        if self.objective.weighting == Weighting::Elbo && !process.has_elbo() {
            return Err(Error::config(format!(
                "process.kind = \"{kind}\" cannot use objective.weighting = {{ kind = \"elbo\" }}: that is the ELBO of the isotropic process; use {{ kind = \"mse\" }}"
            )));
        }
        crate::sample::check_sampler(process.as_ref(), self.sample.sampler)
            .map_err(|e| Error::config(format!("sample.sampler: {e}")))?;
        if self.sample.steps > 0 {
            crate::sample::segments(process.as_ref(), self.sample.steps)
                .map_err(|e| Error::config(format!("sample.steps: {e}")))?;
        }
        Ok(())
    }
}
