//! The denoising network's configuration: one [`NetConfig`], a U-Net (`[model.unet]`) or a U-ViT
//! (`[model.uvit]`). Both are U-shaped, so the keys they share live once, in [`NetCore`]; a
//! [`Net`] is that core plus its kind's own keys, written as one flat table.
//!
//! Unknown keys are errors that name the key. serde's `deny_unknown_fields` does not combine with
//! the `flatten` that keeps the table flat, so [`Net`]'s `Deserialize` collects what neither part
//! takes and refuses it.

use std::collections::BTreeMap;

use burn::tensor::Device;
use serde::de::{Error as _, IgnoredAny};
use serde::{Deserialize, Deserializer, Serialize};

use super::UNet;
use super::cross_attention::CrossAttentionConfig;
use crate::{Error, Result};

/// The keys every U-shaped network has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetCore {
    /// Image channels out (and in, besides the spatial condition), after any patching.
    pub channels: usize,
    /// Channels of a spatial condition concatenated to the input (a low-resolution image, a
    /// masked image and its mask; after any patching): the network reads `channels +
    /// cond_channels` and writes `channels`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cond_channels: usize,
    /// Embed the spatial condition's noise level ([`super::Condition::image_noise`], a logSNR
    /// per sample) with a second noise embedding added to the first: a super-resolution stage
    /// trained with noise augmentation of its low-resolution image is told how noisy it is.
    #[serde(default, skip_serializing_if = "is_false")]
    pub cond_noise_level: bool,
    /// Width `C` of the first level; the noise embedding is `4C` wide.
    pub base_channels: usize,
    /// Width multiplier per convolutional level.
    pub channel_mults: Vec<usize>,
    /// Residual blocks per convolutional level on the way down (`+1` on the way up).
    pub res_blocks: usize,
    /// GroupNorm groups; must divide every level's width.
    #[serde(default = "default_norm_groups")]
    pub norm_groups: usize,
    /// Apply the dropout only to feature maps whose side is at most this (simple diffusion §3.4;
    /// the side is the network's, after any patching). Absent: at every level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropout_max_resolution: Option<usize>,
    /// Number of classes for conditioning (0: unconditional). Label `num_classes` is the null label.
    #[serde(default)]
    pub num_classes: usize,
    /// Cross-attention conditioning (`[model.unet.cross_attention]`; absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross_attention: Option<CrossAttentionConfig>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn default_norm_groups() -> usize {
    32
}

impl NetCore {
    /// The width of each convolutional level.
    pub fn widths(&self) -> Vec<usize> {
        self.channel_mults
            .iter()
            .map(|m| m * self.base_channels)
            .collect()
    }

    /// Width of the context tokens a supplied context must have (`None`: the network reads none).
    pub fn context_dim(&self) -> Option<usize> {
        self.cross_attention
            .as_ref()
            .filter(|x| x.class_tokens().is_none())
            .map(|x| x.context_dim)
    }

    /// The checks every kind needs; messages start with `key`.
    fn validate(&self, key: &str) -> Result<()> {
        let err = |m: String| Err(Error::config(format!("{key}: {m}")));
        if self.channels == 0 || self.base_channels == 0 || !self.base_channels.is_multiple_of(2) {
            return err(format!(
                "channels must be positive and base_channels positive and even, got {} and {}",
                self.channels, self.base_channels
            ));
        }
        if self.channel_mults.is_empty() || self.channel_mults.contains(&0) {
            return err("channel_mults must be a non-empty list of positive integers".into());
        }
        if self.norm_groups == 0 {
            return err("norm_groups must be positive".into());
        }
        if let Some(ch) = self
            .widths()
            .into_iter()
            .find(|ch| !ch.is_multiple_of(self.norm_groups))
        {
            return err(format!(
                "norm_groups = {} does not divide a level width of {ch} channels",
                self.norm_groups
            ));
        }
        if self.cond_noise_level && self.cond_channels == 0 {
            return err("cond_noise_level needs a spatial condition (cond_channels > 0)".into());
        }
        if self.dropout_max_resolution == Some(0) {
            return err("dropout_max_resolution must be positive".into());
        }
        Ok(())
    }
}

/// What a kind of network adds to [`NetCore`].
pub trait NetKind {
    /// The table's name, for messages.
    const KEY: &'static str;
    /// Number of 2× downsamplings: the side must be divisible by `2^depth`.
    fn depth(&self, core: &NetCore) -> usize;
    /// The width of each level, as cross-attention levels count them.
    fn level_widths(&self, core: &NetCore) -> Vec<usize>;
    /// The kind's own checks (the core's have passed); errors name the key.
    fn validate(&self, core: &NetCore) -> Result<()>;
    /// Builds the network with freshly initialised weights (the config is valid).
    fn build(&self, core: &NetCore, device: &Device) -> UNet;
}

/// A network's configuration: the shared keys and its kind's own, one flat table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Net<K> {
    /// The keys every kind has.
    #[serde(flatten)]
    pub core: NetCore,
    /// The kind's own keys.
    #[serde(flatten)]
    pub own: K,
}

impl<K: NetKind> Net<K> {
    /// Number of 2× downsamplings: the image side must be divisible by `2^depth`.
    pub fn depth(&self) -> usize {
        self.own.depth(&self.core)
    }

    /// Checks every constraint `init` relies on; errors name the key.
    pub fn validate(&self) -> Result<()> {
        self.core.validate(K::KEY)?;
        self.own.validate(&self.core)?;
        match &self.core.cross_attention {
            Some(x) => x.validate(
                K::KEY,
                &self.own.level_widths(&self.core),
                self.core.norm_groups,
                self.core.num_classes,
            ),
            None => Ok(()),
        }
    }

    /// Builds the network with freshly initialised weights.
    pub fn init(&self, device: &Device) -> Result<UNet> {
        self.validate()?;
        Ok(self.own.build(&self.core, device))
    }
}

/// The table as read: both parts, and whatever neither takes.
#[derive(Deserialize)]
struct RawNet<K> {
    #[serde(flatten)]
    core: NetCore,
    #[serde(flatten)]
    own: K,
    #[serde(flatten)]
    unknown: BTreeMap<String, IgnoredAny>,
}

impl<'de, K: Deserialize<'de>> Deserialize<'de> for Net<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let raw = RawNet::<K>::deserialize(deserializer)?;
        match raw.unknown.keys().next() {
            Some(key) => Err(D::Error::custom(format!("unknown field `{key}`"))),
            None => Ok(Net {
                core: raw.core,
                own: raw.own,
            }),
        }
    }
}

/// The network of a model: exactly one of `[model.unet]` and `[model.uvit]`.
#[derive(Debug, Clone, PartialEq)]
pub enum NetConfig {
    /// `[model.unet]`: a convolutional U-Net.
    UNet(super::UNetConfig),
    /// `[model.uvit]`: a U-ViT (transformer blocks at the lowest resolution).
    UViT(super::UViTConfig),
}

impl NetConfig {
    /// The keys both kinds share.
    pub fn core(&self) -> &NetCore {
        match self {
            NetConfig::UNet(c) => &c.core,
            NetConfig::UViT(c) => &c.core,
        }
    }

    /// The keys both kinds share, to change them.
    pub fn core_mut(&mut self) -> &mut NetCore {
        match self {
            NetConfig::UNet(c) => &mut c.core,
            NetConfig::UViT(c) => &mut c.core,
        }
    }

    /// The table name, for messages.
    pub fn key(&self) -> &'static str {
        match self {
            NetConfig::UNet(_) => super::unet::UNetOwn::KEY,
            NetConfig::UViT(_) => super::uvit::UViTOwn::KEY,
        }
    }

    /// Number of 2× downsamplings inside the network.
    pub fn depth(&self) -> usize {
        match self {
            NetConfig::UNet(c) => c.depth(),
            NetConfig::UViT(c) => c.depth(),
        }
    }

    /// The network's checks; errors name the key.
    pub fn validate(&self) -> Result<()> {
        match self {
            NetConfig::UNet(c) => c.validate(),
            NetConfig::UViT(c) => c.validate(),
        }
    }

    /// Builds the network with freshly initialised weights.
    pub fn init(&self, device: &Device) -> Result<UNet> {
        match self {
            NetConfig::UNet(c) => c.init(device),
            NetConfig::UViT(c) => c.init(device),
        }
    }
}
