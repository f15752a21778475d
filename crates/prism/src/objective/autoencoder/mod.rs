//! The first-stage autoencoder's training loss (Rombach et al. 2022 §3.1; formula sheet §5;
//! taming `LPIPSWithDiscriminator` for KL, `VQLPIPSWithDiscriminator` for VQ):
//!
//! ```text
//! rec   = |x − x̂| (or (x − x̂)²) + w_p · LPIPS(x, x̂)            per pixel
//! KL:   NLL = Σ (rec / exp(logvar) + logvar) / B,   L_G = NLL + kl_w · KL + λ · [step ≥ disc_start] · g
//! VQ:   NLL = mean(rec),                            L_G = NLL + λ · [step ≥ disc_start] · g + w_cb · L_vq
//! ```
//!
//! with the adaptive weight `λ` and the GAN losses of [`gan`]. Without LPIPS weights
//! (`perceptual_weight = 0`) the loss is L1 (or L2) + GAN only.

mod gan;

use std::path::PathBuf;

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

pub use self::gan::{GanLoss, adaptive_weight, last_layer_grad, norm, output_grad};
use crate::nn::{DEFAULT_LPIPS_PATH, DiscriminatorConfig, Lpips};
use crate::{Error, Result};

/// The pixel distance of the reconstruction term.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reconstruction {
    /// `|x − x̂|` (LDM's choice).
    #[default]
    L1,
    /// `(x − x̂)²`.
    L2,
}

/// The adversarial part (`[loss.gan]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GanConfig {
    /// Hinge (LDM) or non-saturating.
    #[serde(default)]
    pub loss: GanLoss,
    /// `disc_start`: the step from which the discriminator trains and its loss reaches the
    /// autoencoder.
    #[serde(default)]
    pub start: u64,
    /// `disc_weight` (LDM's f8 config: 0.5), multiplying the adaptive weight.
    #[serde(default = "default_disc_weight")]
    pub weight: f64,
    /// `disc_factor` (1), multiplying both GAN losses once they are on.
    #[serde(default = "one")]
    pub factor: f64,
    /// The PatchGAN.
    #[serde(default)]
    pub discriminator: DiscriminatorConfig,
    /// The discriminator's learning rate (the autoencoder's when absent).
    #[serde(default)]
    pub lr: Option<f64>,
}

fn default_disc_weight() -> f64 {
    0.5
}
fn one() -> f64 {
    1.0
}
fn default_kl_weight() -> f64 {
    1e-6
}

/// See the module docs (`[loss]` of an autoencoder config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AeLossConfig {
    /// L1 or L2.
    #[serde(default)]
    pub reconstruction: Reconstruction,
    /// `w_p` of the LPIPS term (1 in LDM; 0 for the LPIPS-free loss).
    #[serde(default = "one")]
    pub perceptual_weight: f64,
    /// The converted LPIPS weights (`tools/convert_lpips.py`); [`DEFAULT_LPIPS_PATH`] when absent.
    #[serde(default)]
    pub lpips: Option<PathBuf>,
    /// Weight of the KL term (KL autoencoders; LDM's f8 config: 10⁻⁶).
    #[serde(default = "default_kl_weight")]
    pub kl_weight: f64,
    /// Weight of the VQ codebook and commitment loss (VQ autoencoders).
    #[serde(default = "one")]
    pub codebook_weight: f64,
    /// Initial value of the learned log-variance of the KL loss's NLL.
    #[serde(default)]
    pub logvar_init: f64,
    /// The PatchGAN part; none for a reconstruction-only loss.
    #[serde(default)]
    pub gan: Option<GanConfig>,
}

impl Default for AeLossConfig {
    fn default() -> Self {
        Self {
            reconstruction: Reconstruction::L1,
            perceptual_weight: 1.0,
            lpips: None,
            kl_weight: default_kl_weight(),
            codebook_weight: 1.0,
            logvar_init: 0.0,
            gan: Some(GanConfig {
                loss: GanLoss::Hinge,
                start: 0,
                weight: default_disc_weight(),
                factor: 1.0,
                discriminator: DiscriminatorConfig::default(),
                lr: None,
            }),
        }
    }
}

impl AeLossConfig {
    /// Range checks; errors name the key.
    pub fn validate(&self) -> Result<()> {
        let check = |key: &str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(Error::config(format!(
                    "loss.{key} must be a finite number >= 0, got {v}"
                )))
            }
        };
        check("perceptual_weight", self.perceptual_weight)?;
        check("kl_weight", self.kl_weight)?;
        check("codebook_weight", self.codebook_weight)?;
        if !self.logvar_init.is_finite() {
            return Err(Error::config(format!(
                "loss.logvar_init must be finite, got {}",
                self.logvar_init
            )));
        }
        if let Some(g) = &self.gan {
            check("gan.weight", g.weight)?;
            check("gan.factor", g.factor)?;
            if let Some(lr) = g.lr
                && !(lr.is_finite() && lr > 0.0)
            {
                return Err(Error::config(format!(
                    "loss.gan.lr must be a positive finite number, got {lr}"
                )));
            }
            g.discriminator.validate()?;
        }
        Ok(())
    }

    /// The LPIPS network this loss needs (none when `perceptual_weight = 0`), from `lpips` or
    /// [`DEFAULT_LPIPS_PATH`].
    pub fn load_lpips(&self, device: &burn::tensor::Device) -> Result<Option<Lpips>> {
        if self.perceptual_weight == 0.0 {
            return Ok(None);
        }
        let path = self
            .lpips
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_LPIPS_PATH));
        Lpips::load(&path, device).map(Some)
    }

    /// `rec` per pixel, `[B, C, H, W]`: the pixel distance plus `w_p · LPIPS` of each image
    /// (broadcast over its pixels, as taming adds `p_loss`).
    pub fn reconstruction(
        &self,
        x: Tensor<4>,
        x_hat: Tensor<4>,
        lpips: Option<&Lpips>,
    ) -> Result<Tensor<4>> {
        let d = x.clone() - x_hat.clone();
        let pixel = match self.reconstruction {
            Reconstruction::L1 => d.abs(),
            Reconstruction::L2 => d.powi_scalar(2),
        };
        Ok(match lpips {
            Some(net) if self.perceptual_weight > 0.0 => {
                pixel + net.distance(x, x_hat)? * self.perceptual_weight
            }
            _ => pixel,
        })
    }
}

#[cfg(test)]
mod tests;
