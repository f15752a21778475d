//! The model's configuration (`[model]`): what the network predicts, the transform around it, and
//! the network itself.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::DiffusionModel;
pub use crate::nn::NetConfig;
use crate::nn::{PatchingConfig, UNetConfig, UViTConfig};
use crate::process::Parameterization;
use crate::{Error, Result};

/// How a model for a process at several resolutions (Laplacian diffusion) holds its networks:
/// `model.networks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Networks {
    /// One network for every state, told the state's resolution through the logSNR it reads
    /// (the default; the only choice for a process at one resolution).
    #[default]
    Shared,
    /// One network per resolution of the process, each built from the same `[model.unet]` /
    /// `[model.uvit]` table and trained only on the states of its resolution (Edify Image trains
    /// one denoiser per band resolution); the state's side picks the network.
    PerResolution,
}

impl Networks {
    /// The name written in a config.
    pub fn name(self) -> &'static str {
        match self {
            Networks::Shared => "shared",
            Networks::PerResolution => "per_resolution",
        }
    }
}

/// Network + parameterisation + input/output transform; serialisable description in
/// [`ModelConfig`]. Written as `[model]` with exactly one of the tables `[model.unet]` and
/// `[model.uvit]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawModelConfig", into = "RawModelConfig")]
pub struct ModelConfig {
    /// What the network predicts.
    pub parameterization: Parameterization,
    /// The transform before and after the network (simple diffusion §3.3).
    pub patching: PatchingConfig,
    /// The network.
    pub net: NetConfig,
    /// One network shared by every resolution, or one per resolution.
    pub networks: Networks,
}

/// `[model]` as written: the network as two optional tables.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModelConfig {
    #[serde(default)]
    parameterization: Parameterization,
    #[serde(default, skip_serializing_if = "is_no_patching")]
    patching: PatchingConfig,
    #[serde(default, skip_serializing_if = "is_shared")]
    networks: Networks,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unet: Option<UNetConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    uvit: Option<UViTConfig>,
}

fn is_no_patching(p: &PatchingConfig) -> bool {
    *p == PatchingConfig::None
}

fn is_shared(n: &Networks) -> bool {
    *n == Networks::Shared
}

impl TryFrom<RawModelConfig> for ModelConfig {
    type Error = Error;

    fn try_from(raw: RawModelConfig) -> Result<Self> {
        let net = match (raw.unet, raw.uvit) {
            (Some(u), None) => NetConfig::UNet(u),
            (None, Some(v)) => NetConfig::UViT(v),
            (Some(_), Some(_)) => {
                return Err(Error::config(
                    "model: both [model.unet] and [model.uvit] are set; keep exactly one",
                ));
            }
            (None, None) => {
                return Err(Error::config(
                    "model: no network; set exactly one of [model.unet] and [model.uvit]",
                ));
            }
        };
        Ok(ModelConfig {
            parameterization: raw.parameterization,
            patching: raw.patching,
            net,
            networks: raw.networks,
        })
    }
}

impl From<ModelConfig> for RawModelConfig {
    fn from(m: ModelConfig) -> Self {
        let (unet, uvit) = match m.net {
            NetConfig::UNet(u) => (Some(u), None),
            NetConfig::UViT(v) => (None, Some(v)),
        };
        RawModelConfig {
            parameterization: m.parameterization,
            patching: m.patching,
            networks: m.networks,
            unet,
            uvit,
        }
    }
}

impl ModelConfig {
    /// A U-Net model without patching.
    pub fn with_unet(parameterization: Parameterization, unet: UNetConfig) -> Self {
        Self {
            parameterization,
            patching: PatchingConfig::None,
            net: NetConfig::UNet(unet),
            networks: Networks::Shared,
        }
    }

    /// Number of classes (0: unconditional).
    pub fn num_classes(&self) -> usize {
        self.net.core().num_classes
    }

    /// The network's and the patching's own checks.
    pub fn validate(&self) -> Result<()> {
        self.net.validate()?;
        self.patching.validate()
    }

    /// Checks against the data: the network's channels are the image channels times the
    /// patching's channel factor, and the image side is divisible by every downsampling.
    pub fn validate_for(&self, image_size: usize, channels: usize) -> Result<()> {
        self.validate()?;
        let (net, core) = (&self.net, self.net.core());
        let want = channels * self.patching.channel_factor();
        if core.channels != want {
            return Err(Error::config(format!(
                "{}.channels = {} but the network sees data.channels × {} = {want} channels (patching {:?})",
                net.key(),
                core.channels,
                self.patching.channel_factor(),
                self.patching
            )));
        }
        if !core
            .cond_channels
            .is_multiple_of(self.patching.channel_factor())
        {
            return Err(Error::config(format!(
                "{}.cond_channels = {} is not a multiple of the patching's channel factor {}",
                net.key(),
                core.cond_channels,
                self.patching.channel_factor()
            )));
        }
        let f = self.patching.spatial_factor() << net.depth();
        if !image_size.is_multiple_of(f) {
            return Err(Error::config(format!(
                "data.image_size = {image_size} is not divisible by {f} (patching by {} and 2^{} for the {} downsamplings of {}.channel_mults)",
                self.patching.spatial_factor(),
                net.depth(),
                net.depth(),
                net.key()
            )));
        }
        Ok(())
    }

    /// Settings that are valid but likely to train badly, one message each (empty: none).
    ///
    /// Advised when a patched network's first level has fewer than twice its input channels. On
    /// emoji 64² behind one 5/3 DWT level (12 channels), a U-ViT with `base_channels` 16 or 24
    /// learned far more slowly than the same network without patching, and caught up at 64
    /// (docs/simple-diffusion.md, "Width of the patched level"). Twice is the simple-256 and
    /// simple-512 presets' ratio, so only the clearly narrow cases below it are flagged.
    pub fn advice(&self) -> Vec<String> {
        let net = &self.net;
        let (base, input) = (net.core().base_channels, net.core().channels);
        if base < 2 * input && self.patching != PatchingConfig::None {
            vec![format!(
                "{}.base_channels = {base} is less than twice the {input} channels the network sees after patching; \
                 narrow patched levels learn slowly (see docs/simple-diffusion.md; the presets use at least twice)",
                net.key()
            )]
        } else {
            Vec::new()
        }
    }

    /// Builds a model with one network and fresh weights on `device`; a model with one
    /// network per resolution is built by [`ModelConfig::init_for`] (with the process's state
    /// sides, e.g. through `ExperimentConfig::init_model`).
    pub fn init(&self, device: &Device) -> Result<DiffusionModel> {
        self.init_for(&[], device)
    }

    /// Builds the model with fresh weights on `device` for a process whose states have the
    /// sides `sides` (full resolution first; empty for a process at one resolution): one network
    /// for [`Networks::Shared`], one per side for [`Networks::PerResolution`] (which needs at
    /// least two sides).
    pub fn init_for(&self, sides: &[usize], device: &Device) -> Result<DiffusionModel> {
        self.validate()?;
        let factor = self.patching.channel_factor();
        let core = self.net.core();
        let (out, cond) = (core.channels / factor, core.cond_channels / factor);
        let net = self.net.init(device)?;
        let (lower, sides) = match self.networks {
            Networks::Shared => (Vec::new(), Vec::new()),
            Networks::PerResolution if sides.len() < 2 => {
                return Err(Error::config(
                    "model.networks = \"per_resolution\" needs a process whose state changes resolution \
                     (process.kind = \"laplacian\"); this one has a single resolution, use \"shared\"",
                ));
            }
            Networks::PerResolution => (
                sides[1..]
                    .iter()
                    .map(|_| self.net.init(device))
                    .collect::<Result<Vec<_>>>()?,
                sides.to_vec(),
            ),
        };
        Ok(DiffusionModel {
            net,
            lower,
            patching: self
                .patching
                .init((out + cond).max(1), out.max(1), device)?,
            parameterization: self.parameterization,
            sides,
        })
    }
}
