//! The autoencoder's configuration (`[autoencoder]` in an autoencoder config file): the
//! architecture of Rombach et al. 2022 (App. G; diffusers `AutoencoderKL` / `VQModel` arguments
//! where they have one) and its regularisation.

use serde::{Deserialize, Serialize};

use super::codebook::CodebookUpdate;
use crate::{Error, Result};

/// How the latent space is regularised (formula sheet §5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Regularizer {
    /// A diagonal Gaussian posterior (`double_z`) with a KL penalty to `N(0, I)`.
    Kl,
    /// A vector-quantised codebook with a commitment loss.
    Vq {
        /// Codebook size.
        n_embed: usize,
        /// Code dimension (`quant_conv` maps the latent channels to it).
        embed_dim: usize,
        /// Commitment weight β.
        #[serde(default = "default_beta")]
        beta: f64,
        /// Exponential moving-average codebook updates instead of the codebook loss (van den
        /// Oord et al. 2017, App. A.1; [`super::codebook`]).
        #[serde(default, skip_serializing_if = "is_false")]
        ema: bool,
        /// The decay γ of the codebook's moving averages (EMA updates and usage counts).
        #[serde(default = "default_decay", skip_serializing_if = "is_default_decay")]
        decay: f64,
        /// The Laplace smoothing ε of the EMA cluster sizes.
        #[serde(default = "default_eps", skip_serializing_if = "is_default_eps")]
        eps: f64,
        /// Restart codes whose moving-average usage falls below this to encoder outputs of the
        /// batch (Jukebox; vector-quantize-pytorch's `threshold_ema_dead_code`); 0: never.
        #[serde(default, skip_serializing_if = "is_zero")]
        dead_code_threshold: f64,
    },
}

fn default_beta() -> f64 {
    0.25
}
fn default_decay() -> f64 {
    0.99
}
fn default_eps() -> f64 {
    1e-5
}
fn is_false(b: &bool) -> bool {
    !*b
}
fn is_default_decay(v: &f64) -> bool {
    *v == default_decay()
}
fn is_default_eps(v: &f64) -> bool {
    *v == default_eps()
}
fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

impl Regularizer {
    /// A VQ codebook of `n_embed` codes of `embed_dim` channels with commitment weight `beta`,
    /// trained by its gradient, no restarts.
    pub fn vq(n_embed: usize, embed_dim: usize, beta: f64) -> Self {
        Self::Vq {
            n_embed,
            embed_dim,
            beta,
            ema: false,
            decay: default_decay(),
            eps: default_eps(),
            dead_code_threshold: 0.0,
        }
    }

    /// The VQ codebook's maintenance (`None` for KL).
    pub fn codebook_update(&self) -> Option<CodebookUpdate> {
        match *self {
            Self::Kl => None,
            Self::Vq {
                ema,
                decay,
                eps,
                dead_code_threshold,
                ..
            } => Some(CodebookUpdate {
                ema,
                decay,
                eps,
                dead_code_threshold,
            }),
        }
    }
}

/// See the module docs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoencoderConfig {
    /// Image channels (in and out).
    #[serde(default = "default_channels")]
    pub channels: usize,
    /// Channels of each level from the image side; the downsampling factor is
    /// `f = 2^(len − 1)` (SD's f8 VAE: `[128, 256, 512, 512]`).
    pub block_out_channels: Vec<usize>,
    /// Residual blocks per encoder level (the decoder has one more per level).
    #[serde(default = "default_layers")]
    pub layers_per_block: usize,
    /// Latent channels `z_channels` (the KL encoder outputs twice as many: mean and log-variance).
    pub latent_channels: usize,
    /// GroupNorm groups (must divide every level's channels).
    #[serde(default = "default_groups")]
    pub norm_groups: usize,
    /// Self-attention in the mid blocks.
    #[serde(default = "default_true")]
    pub mid_attention: bool,
    /// KL or VQ.
    pub regularizer: Regularizer,
}

fn default_channels() -> usize {
    3
}
fn default_layers() -> usize {
    2
}
fn default_groups() -> usize {
    32
}
fn default_true() -> bool {
    true
}

impl AutoencoderConfig {
    /// Stable Diffusion's f8 KL autoencoder (`kl-f8`, 4 latent channels, 83.7 M parameters).
    pub fn kl_f8() -> Self {
        Self {
            channels: 3,
            block_out_channels: vec![128, 256, 512, 512],
            layers_per_block: 2,
            latent_channels: 4,
            norm_groups: 32,
            mid_attention: true,
            regularizer: Regularizer::Kl,
        }
    }

    /// LDM's `vq-f4` (3 latent channels, 8192 codes).
    pub fn vq_f4() -> Self {
        Self {
            channels: 3,
            block_out_channels: vec![128, 256, 512],
            layers_per_block: 2,
            latent_channels: 3,
            norm_groups: 32,
            mid_attention: true,
            regularizer: Regularizer::vq(8192, 3, 0.25),
        }
    }

    /// A small f8 KL autoencoder that learns in minutes on two CPU cores (the Fluent Emoji
    /// preset, `configs/fluent-ae-kl-f8.toml`).
    pub fn small_kl_f8() -> Self {
        Self {
            block_out_channels: vec![32, 32, 64, 64],
            layers_per_block: 1,
            ..Self::kl_f8()
        }
    }

    /// A small f4 VQ autoencoder (the Fluent Emoji preset, `configs/fluent-ae-vq-f4.toml`).
    pub fn small_vq_f4() -> Self {
        Self {
            block_out_channels: vec![32, 64, 64],
            layers_per_block: 1,
            regularizer: Regularizer::vq(256, 3, 0.25),
            ..Self::vq_f4()
        }
    }

    /// The downsampling factor `f = 2^(levels − 1)`.
    pub fn factor(&self) -> usize {
        1 << self.block_out_channels.len().saturating_sub(1)
    }

    /// The channels the encoder's `conv_out` produces.
    pub fn encoder_out_channels(&self) -> usize {
        match self.regularizer {
            Regularizer::Kl => 2 * self.latent_channels,
            Regularizer::Vq { .. } => self.latent_channels,
        }
    }

    /// The channels of the latent the decoder reads (after `quant_conv`): the latent channels
    /// (KL) or the code dimension (VQ).
    pub fn code_channels(&self) -> usize {
        match self.regularizer {
            Regularizer::Kl => self.latent_channels,
            Regularizer::Vq { embed_dim, .. } => embed_dim,
        }
    }

    /// Range checks; errors name the key.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::config(format!("autoencoder.{m}")));
        if !(self.channels == 1 || self.channels == 3) {
            return bad(format!("channels must be 1 or 3, got {}", self.channels));
        }
        let levels = self.block_out_channels.len();
        if !(1..=6).contains(&levels) {
            return bad(format!(
                "block_out_channels needs 1 to 6 levels (f = 1 … 32), got {levels}"
            ));
        }
        if self.layers_per_block == 0 || self.latent_channels == 0 || self.norm_groups == 0 {
            return bad(
                "layers_per_block, latent_channels and norm_groups must be positive".into(),
            );
        }
        if let Some(c) = self
            .block_out_channels
            .iter()
            .find(|&&c| c == 0 || c % self.norm_groups != 0)
        {
            return bad(format!(
                "block_out_channels: {c} is not a positive multiple of norm_groups = {}",
                self.norm_groups
            ));
        }
        if let Regularizer::Vq {
            n_embed,
            embed_dim,
            beta,
            decay,
            eps,
            dead_code_threshold,
            ..
        } = self.regularizer
        {
            if n_embed < 2 || embed_dim == 0 {
                return bad(format!(
                    "regularizer: n_embed must be at least 2 and embed_dim positive, got {n_embed} and {embed_dim}"
                ));
            }
            if !(beta.is_finite() && beta >= 0.0) {
                return bad(format!(
                    "regularizer.beta must be finite and >= 0, got {beta}"
                ));
            }
            if !(decay > 0.0 && decay < 1.0) {
                return bad(format!("regularizer.decay must be in (0, 1), got {decay}"));
            }
            if !(eps.is_finite() && eps > 0.0) {
                return bad(format!(
                    "regularizer.eps must be a positive finite number, got {eps}"
                ));
            }
            if !(dead_code_threshold.is_finite() && dead_code_threshold >= 0.0) {
                return bad(format!(
                    "regularizer.dead_code_threshold must be finite and >= 0, got {dead_code_threshold}"
                ));
            }
        }
        Ok(())
    }
}
