//! An autoencoder training job (`prism train --config configs/fluent-ae-kl-f8.toml`): `[data]`,
//! `[autoencoder]`, `[loss]`, `[train]`. Unknown keys are errors that name the key.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::data::DataConfig;
use crate::nn::autoencoder::AutoencoderConfig;
use crate::objective::autoencoder::AeLossConfig;
use crate::train::{AdamWConfig, DEFAULT_MAX_BAD_STEPS, LrSchedule, ModuleSpec};
use crate::{Error, Result};

/// See the module docs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AeConfig {
    /// Free-form name, shown in logs.
    #[serde(default)]
    pub name: String,
    /// The images.
    pub data: DataConfig,
    /// The network.
    pub autoencoder: AutoencoderConfig,
    /// The loss (L1 + LPIPS + PatchGAN by default).
    #[serde(default)]
    pub loss: AeLossConfig,
    /// Optimisation and logging.
    pub train: AeTrainConfig,
}

/// Optimisation of the autoencoder and its discriminator (two AdamW optimisers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AeTrainConfig {
    /// Total steps (each updates the autoencoder, then the discriminator once it is on).
    pub steps: u64,
    /// Images per step.
    pub batch_size: usize,
    /// The autoencoder's learning rate (LDM: 4.5·10⁻⁶ × batch size × GPUs).
    pub lr: f64,
    /// AdamW settings of both networks (LDM: β = (0.5, 0.9), no weight decay).
    #[serde(default = "ldm_adam")]
    pub adamw: AdamWConfig,
    /// Global gradient-norm clip of each network (none if absent).
    #[serde(default)]
    pub grad_clip: Option<f64>,
    /// Seed of every random choice in the run.
    #[serde(default)]
    pub seed: u64,
    /// Metrics line every this many steps.
    #[serde(default = "default_log_every")]
    pub log_every: u64,
    /// Training state every this many steps (0: only at the end).
    #[serde(default)]
    pub checkpoint_every: u64,
    /// Reconstruction grid of held-out images every this many steps (0: only at the end).
    #[serde(default)]
    pub sample_every: u64,
    /// Bad steps in a row that stop the run.
    #[serde(default = "default_max_bad_steps")]
    pub max_bad_steps: u64,
}

fn ldm_adam() -> AdamWConfig {
    AdamWConfig {
        beta1: 0.5,
        beta2: 0.9,
        ..AdamWConfig::default()
    }
}
fn default_log_every() -> u64 {
    50
}
fn default_max_bad_steps() -> u64 {
    DEFAULT_MAX_BAD_STEPS
}

impl AeTrainConfig {
    /// A constant learning rate `lr` with the shared AdamW settings.
    pub fn module_spec(&self, lr: f64) -> ModuleSpec {
        ModuleSpec {
            adamw: self.adamw.clone(),
            lr: LrSchedule::Constant(lr),
            grad_clip: self.grad_clip,
            ema_decay: None,
        }
    }
}

impl AeConfig {
    /// Parses TOML; errors name the key (and `origin` when given).
    pub fn from_toml(text: &str, origin: Option<&Path>) -> Result<Self> {
        let with_origin = |reason: String| Error::Config {
            origin: origin.map(Path::to_path_buf),
            reason,
        };
        let cfg: Self =
            toml::from_str(text).map_err(|e| with_origin(e.to_string().trim().into()))?;
        cfg.validate().map_err(|e| match e {
            Error::Config { reason, .. } => with_origin(reason),
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

    /// Whether a TOML text is an autoencoder job (it has an `[autoencoder]` table).
    pub fn is_autoencoder_toml(text: &str) -> bool {
        toml::from_str::<toml::Table>(text).is_ok_and(|t| t.contains_key("autoencoder"))
    }

    /// Range and cross-field checks; errors name the key.
    pub fn validate(&self) -> Result<()> {
        self.autoencoder.validate()?;
        self.loss.validate()?;
        if self.data.channels != self.autoencoder.channels {
            return Err(Error::config(format!(
                "data.channels = {} but autoencoder.channels = {}",
                self.data.channels, self.autoencoder.channels
            )));
        }
        let f = self.autoencoder.factor();
        if !self.data.image_size.is_multiple_of(f) {
            return Err(Error::config(format!(
                "data.image_size = {} is not a multiple of the autoencoder's factor {f}",
                self.data.image_size
            )));
        }
        if self.loss.perceptual_weight > 0.0 && self.data.image_size < 16 {
            return Err(Error::config(
                "LPIPS needs data.image_size >= 16 (or set loss.perceptual_weight = 0)",
            ));
        }
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
        if let Some(c) = t.grad_clip
            && !(c.is_finite() && c > 0.0)
        {
            return Err(Error::config(format!(
                "train.grad_clip must be a positive finite number, got {c}"
            )));
        }
        if t.max_bad_steps == 0 {
            return Err(Error::config("train.max_bad_steps must be at least 1"));
        }
        Ok(())
    }
}
