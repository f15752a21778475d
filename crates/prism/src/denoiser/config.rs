//! The model's configuration (`[model]`): what the network predicts, the transform around it, and
//! the network itself.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::DiffusionModel;
use crate::nn::{PatchingConfig, UNetConfig, UViTConfig};
use crate::process::Parameterization;
use crate::{Error, Result};

/// Network + parameterisation + input/output transform; serialisable description in
/// [`ModelConfig`]. Exactly one of `unet` and `uvit` is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// What the network predicts.
    #[serde(default)]
    pub parameterization: Parameterization,
    /// The transform before and after the network (simple diffusion §3.3).
    #[serde(default, skip_serializing_if = "is_no_patching")]
    pub patching: PatchingConfig,
    /// A convolutional U-Net.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unet: Option<UNetConfig>,
    /// A U-ViT (transformer blocks at the lowest resolution).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uvit: Option<UViTConfig>,
}

fn is_no_patching(p: &PatchingConfig) -> bool {
    *p == PatchingConfig::None
}

/// The network a [`ModelConfig`] names.
#[derive(Debug, Clone, Copy)]
pub enum NetConfig<'a> {
    /// `[model.unet]`.
    UNet(&'a UNetConfig),
    /// `[model.uvit]`.
    UViT(&'a UViTConfig),
}

impl NetConfig<'_> {
    /// Channels the network sees (image channels × the patching's channel factor).
    pub fn channels(&self) -> usize {
        match self {
            NetConfig::UNet(c) => c.channels,
            NetConfig::UViT(c) => c.channels,
        }
    }

    /// Width of the first convolutional level.
    pub fn base_channels(&self) -> usize {
        match self {
            NetConfig::UNet(c) => c.base_channels,
            NetConfig::UViT(c) => c.base_channels,
        }
    }

    /// Number of classes (0: unconditional).
    pub fn num_classes(&self) -> usize {
        match self {
            NetConfig::UNet(c) => c.num_classes,
            NetConfig::UViT(c) => c.num_classes,
        }
    }

    /// Channels of the spatial condition beside the state (after patching).
    pub fn cond_channels(&self) -> usize {
        match self {
            NetConfig::UNet(c) => c.cond_channels,
            NetConfig::UViT(c) => c.cond_channels,
        }
    }

    /// Number of 2× downsamplings inside the network.
    pub fn depth(&self) -> usize {
        match self {
            NetConfig::UNet(c) => c.depth(),
            NetConfig::UViT(c) => c.depth(),
        }
    }

    /// The table name, for messages.
    pub fn key(&self) -> &'static str {
        match self {
            NetConfig::UNet(_) => "model.unet",
            NetConfig::UViT(_) => "model.uvit",
        }
    }
}

impl ModelConfig {
    /// A U-Net model without patching.
    pub fn with_unet(parameterization: Parameterization, unet: UNetConfig) -> Self {
        Self {
            parameterization,
            patching: PatchingConfig::None,
            unet: Some(unet),
            uvit: None,
        }
    }

    /// The network section; an error unless exactly one of `[model.unet]` and `[model.uvit]` is set.
    pub fn net(&self) -> Result<NetConfig<'_>> {
        match (&self.unet, &self.uvit) {
            (Some(u), None) => Ok(NetConfig::UNet(u)),
            (None, Some(v)) => Ok(NetConfig::UViT(v)),
            (Some(_), Some(_)) => Err(Error::config(
                "model: both [model.unet] and [model.uvit] are set; keep exactly one",
            )),
            (None, None) => Err(Error::config(
                "model: no network; set exactly one of [model.unet] and [model.uvit]",
            )),
        }
    }

    /// Number of classes (0: unconditional, or no network configured).
    pub fn num_classes(&self) -> usize {
        self.net().map_or(0, |n| n.num_classes())
    }

    /// The network's and the patching's own checks.
    pub fn validate(&self) -> Result<()> {
        match self.net()? {
            NetConfig::UNet(u) => u.validate()?,
            NetConfig::UViT(v) => v.validate()?,
        }
        self.patching.validate()
    }

    /// Checks against the data: the network's channels are the image channels times the
    /// patching's channel factor, and the image side is divisible by every downsampling.
    pub fn validate_for(&self, image_size: usize, channels: usize) -> Result<()> {
        self.validate()?;
        let net = self.net()?;
        let want = channels * self.patching.channel_factor();
        if net.channels() != want {
            return Err(Error::config(format!(
                "{}.channels = {} but the network sees data.channels × {} = {want} channels (patching {:?})",
                net.key(),
                net.channels(),
                self.patching.channel_factor(),
                self.patching
            )));
        }
        if !net
            .cond_channels()
            .is_multiple_of(self.patching.channel_factor())
        {
            return Err(Error::config(format!(
                "{}.cond_channels = {} is not a multiple of the patching's channel factor {}",
                net.key(),
                net.cond_channels(),
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
        let Ok(net) = self.net() else {
            return Vec::new();
        };
        let (base, input) = (net.base_channels(), net.channels());
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

    /// Builds the model with fresh weights on `device`.
    pub fn init(&self, device: &Device) -> Result<DiffusionModel> {
        self.validate()?;
        let net = match self.net()? {
            NetConfig::UNet(u) => u.init(device)?,
            NetConfig::UViT(v) => v.init(device)?,
        };
        let factor = self.patching.channel_factor();
        let (out, cond) = (
            self.net()?.channels() / factor,
            self.net()?.cond_channels() / factor,
        );
        Ok(DiffusionModel {
            net,
            patching: self
                .patching
                .init((out + cond).max(1), out.max(1), device)?,
            parameterization: self.parameterization,
        })
    }
}
