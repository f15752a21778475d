//! ⑥ The denoiser: network + parameterisation (ε / v / x) + conditioning (+ guidance) → predictions.
//!
//! Conversions (formula sheet §1): `v = α ε − σ x`, `x̂ = α z − σ v̂ = (z − σ ε̂)/α`,
//! `ε̂ = σ z + α v̂ = (z − α x̂)/σ`. Samplers see only the [`Denoise`] trait.

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::nn::{Patching, PatchingConfig, UNet, UNetConfig, UViTConfig};
use crate::schedule::{alpha_from_log_snr, sigma_from_log_snr};
use crate::tensor::{per_sample, vector};
use crate::{Error, Result};

/// What the network outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Parameterization {
    /// The noise `ε`.
    Eps,
    /// The velocity `v = α ε − σ x` (simple diffusion's choice).
    #[default]
    V,
    /// The clean image `x`.
    X,
}

/// `α` and `σ` for each sample, as `[B, 1, 1, 1]` tensors.
#[derive(Debug, Clone)]
pub struct NoiseLevels {
    /// `λ` per sample.
    pub log_snr: Vec<f64>,
    /// `α` per sample, broadcastable over images.
    pub alpha: Tensor<4>,
    /// `σ` per sample, broadcastable over images.
    pub sigma: Tensor<4>,
}

impl NoiseLevels {
    /// The levels for per-sample `log_snr`.
    pub fn new(log_snr: Vec<f64>, device: &Device) -> Self {
        let a: Vec<f64> = log_snr.iter().map(|&l| alpha_from_log_snr(l)).collect();
        let s: Vec<f64> = log_snr.iter().map(|&l| sigma_from_log_snr(l)).collect();
        Self {
            alpha: per_sample(&a, device),
            sigma: per_sample(&s, device),
            log_snr,
        }
    }

    /// The same level for all `batch` samples.
    pub fn uniform(log_snr: f64, batch: usize, device: &Device) -> Self {
        Self::new(vec![log_snr; batch], device)
    }
}

/// The denoiser's two views of the clean image and the noise.
#[derive(Debug, Clone)]
pub struct Prediction {
    /// `x̂`, the predicted clean image.
    pub x0_hat: Tensor<4>,
    /// `ε̂`, the predicted noise.
    pub eps_hat: Tensor<4>,
}

impl Parameterization {
    /// The name used in configs: `eps`, `v` or `x`.
    pub fn name(self) -> &'static str {
        match self {
            Parameterization::Eps => "eps",
            Parameterization::V => "v",
            Parameterization::X => "x",
        }
    }

    /// `x̂` and `ε̂` from the network's raw output at `z` with levels `n`.
    pub fn prediction(self, raw: Tensor<4>, z: Tensor<4>, n: &NoiseLevels) -> Prediction {
        let (a, s) = (n.alpha.clone(), n.sigma.clone());
        match self {
            Parameterization::Eps => Prediction {
                x0_hat: (z - raw.clone() * s) / a,
                eps_hat: raw,
            },
            Parameterization::V => Prediction {
                x0_hat: z.clone() * a.clone() - raw.clone() * s.clone(),
                eps_hat: z * s + raw * a,
            },
            Parameterization::X => Prediction {
                eps_hat: (z - raw.clone() * a) / s,
                x0_hat: raw,
            },
        }
    }

    /// The training target for this parameterisation.
    pub fn target(self, x0: Tensor<4>, eps: Tensor<4>, n: &NoiseLevels) -> Tensor<4> {
        match self {
            Parameterization::Eps => eps,
            Parameterization::V => eps * n.alpha.clone() - x0 * n.sigma.clone(),
            Parameterization::X => x0,
        }
    }
}

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

/// A diffusion model: the network, its input/output transform and what its output means.
#[derive(Module, Debug)]
pub struct DiffusionModel {
    /// The network.
    pub net: UNet,
    /// The transform around the network.
    pub patching: Patching,
    #[module(skip)]
    parameterization: Parameterization,
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
        let image_channels = self.net()?.channels() / self.patching.channel_factor();
        Ok(DiffusionModel {
            net,
            patching: self.patching.init(image_channels.max(1), device)?,
            parameterization: self.parameterization,
        })
    }
}

impl DiffusionModel {
    /// The parameterisation of the network's output.
    pub fn parameterization(&self) -> Parameterization {
        self.parameterization
    }

    /// The raw network output at `z` with levels `n` and optional labels, through the patching
    /// transform and its inverse. `z`'s side must be divisible by the patching factor (checked for
    /// configured image sizes by [`ModelConfig::validate_for`]).
    pub fn raw(&self, z: Tensor<4>, n: &NoiseLevels, labels: Option<Tensor<1, Int>>) -> Tensor<4> {
        let l = vector(&n.log_snr, &z.device());
        let inner = self
            .patching
            .encode(z)
            .expect("image side divisible by the patching factor (ModelConfig::validate_for)");
        let out = self.net.forward(inner, l, labels);
        self.patching
            .decode(out)
            .expect("network output has the patched shape")
    }

    /// `x̂` and `ε̂` at `z`.
    pub fn predict(
        &self,
        z: Tensor<4>,
        n: &NoiseLevels,
        labels: Option<Tensor<1, Int>>,
    ) -> Prediction {
        let raw = self.raw(z.clone(), n, labels);
        self.parameterization.prediction(raw, z, n)
    }
}

/// What a sampler calls: `z_t` at logSNR `λ` (same for the whole batch) → predictions.
pub trait Denoise {
    /// Predict `x̂`, `ε̂` at `z` with logSNR `log_snr`.
    fn denoise(&self, z: Tensor<4>, log_snr: f64) -> Prediction;
}

/// A model with fixed labels (or none); `x̂` optionally clipped to the data range `[-1, 1]`.
pub struct ModelDenoiser<'a> {
    /// The model.
    pub model: &'a DiffusionModel,
    /// Labels for the batch (`None`: unconditional / null label).
    pub labels: Option<Tensor<1, Int>>,
    /// Clip `x̂` to `[-1, 1]` ("static thresholding") and recompute `ε̂` from it.
    pub clip_x0: bool,
}

fn clip(p: Prediction, z: Tensor<4>, n: &NoiseLevels) -> Prediction {
    let x0_hat = p.x0_hat.clamp(-1.0, 1.0);
    let eps_hat = (z - x0_hat.clone() * n.alpha.clone()) / n.sigma.clone();
    Prediction { x0_hat, eps_hat }
}

impl Denoise for ModelDenoiser<'_> {
    fn denoise(&self, z: Tensor<4>, log_snr: f64) -> Prediction {
        let n = NoiseLevels::uniform(log_snr, z.dims()[0], &z.device());
        let p = self.model.predict(z.clone(), &n, self.labels.clone());
        if self.clip_x0 { clip(p, z, &n) } else { p }
    }
}

/// Classifier-free guidance (Ho & Salimans 2022): `ε̃ = ε_u + w (ε_c − ε_u)`.
///
/// Every parameterisation is affine in `ε` at fixed `z`, so guiding the raw output is the same as
/// guiding `ε`; both halves run in one batch. `w = 1` is the plain conditional model.
pub struct GuidedDenoiser<'a> {
    /// The class-conditional model.
    pub model: &'a DiffusionModel,
    /// Labels for the batch.
    pub labels: Tensor<1, Int>,
    /// Guidance weight `w`.
    pub guidance: f64,
    /// As in [`ModelDenoiser`].
    pub clip_x0: bool,
}

impl Denoise for GuidedDenoiser<'_> {
    fn denoise(&self, z: Tensor<4>, log_snr: f64) -> Prediction {
        let b = z.dims()[0];
        let device = z.device();
        let null = Tensor::<1, Int>::full([b], self.model.net.num_classes() as i64, &device);
        let labels = Tensor::cat(vec![self.labels.clone(), null], 0);
        let n2 = NoiseLevels::uniform(log_snr, 2 * b, &device);
        let raw = self.model.raw(
            Tensor::cat(vec![z.clone(), z.clone()], 0),
            &n2,
            Some(labels),
        );
        let cond = raw.clone().narrow(0, 0, b);
        let uncond = raw.narrow(0, b, b);
        let guided = uncond.clone() + (cond - uncond) * self.guidance;
        let n = NoiseLevels::uniform(log_snr, b, &device);
        let p = self
            .model
            .parameterization()
            .prediction(guided, z.clone(), &n);
        if self.clip_x0 { clip(p, z, &n) } else { p }
    }
}

/// Wraps a closure as a [`Denoise`] (analytic denoisers in tests and tools).
pub struct FnDenoiser<F>(pub F);

impl<F: Fn(Tensor<4>, f64) -> Prediction> Denoise for FnDenoiser<F> {
    fn denoise(&self, z: Tensor<4>, log_snr: f64) -> Prediction {
        (self.0)(z, log_snr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::to_vec;

    /// Guidance weight 1 is the conditional model; weight 0 the unconditional (null label) one.
    #[test]
    fn guidance_interpolates_conditional_and_unconditional() {
        use crate::nn::UNetConfig;
        use rand::SeedableRng;
        let device = Device::flex();
        let cfg = ModelConfig::with_unet(
            Parameterization::V,
            UNetConfig {
                channels: 1,
                base_channels: 8,
                channel_mults: vec![1, 2],
                res_blocks: 1,
                attention_levels: vec![],
                head_channels: 8,
                norm_groups: 4,
                dropout: vec![],
                dropout_max_resolution: None,
                num_classes: 3,
            },
        );
        let model = cfg.init(&device).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let z = crate::tensor::normal([2, 1, 8, 8], &mut rng, &device);
        let labels = Tensor::<1, Int>::from_ints([0, 2], &device);
        let null = Tensor::<1, Int>::from_ints([3, 3], &device);
        let eps = |d: &dyn Denoise| to_vec(d.denoise(z.clone(), 0.7).eps_hat);
        let cond = eps(&ModelDenoiser {
            model: &model,
            labels: Some(labels.clone()),
            clip_x0: false,
        });
        let uncond = eps(&ModelDenoiser {
            model: &model,
            labels: Some(null),
            clip_x0: false,
        });
        for (w, want) in [(1.0, &cond), (0.0, &uncond)] {
            let got = eps(&GuidedDenoiser {
                model: &model,
                labels: labels.clone(),
                guidance: w,
                clip_x0: false,
            });
            for (a, b) in got.iter().zip(want.iter()) {
                assert!((a - b).abs() < 1e-4, "w = {w}: {a} vs {b}");
            }
        }
        // w = 3: ε̃ = ε_u + 3 (ε_c − ε_u)
        let got = eps(&GuidedDenoiser {
            model: &model,
            labels,
            guidance: 3.0,
            clip_x0: false,
        });
        for ((g, c), u) in got.iter().zip(&cond).zip(&uncond) {
            assert!((g - (u + 3.0 * (c - u))).abs() < 1e-4);
        }
    }

    /// The three parameterisations agree: from exact targets each recovers `x` and `ε`.
    #[test]
    fn conversions_round_trip() {
        let device = Device::flex();
        let x = Tensor::<4>::from_floats([[[[0.5, -0.25], [0.9, -1.0]]]], &device);
        let eps = Tensor::<4>::from_floats([[[[1.5, 0.3], [-0.7, 0.2]]]], &device);
        for l in [-6.0, 0.0, 4.0] {
            let n = NoiseLevels::uniform(l, 1, &device);
            let z = x.clone() * n.alpha.clone() + eps.clone() * n.sigma.clone();
            for p in [
                Parameterization::Eps,
                Parameterization::V,
                Parameterization::X,
            ] {
                let target = p.target(x.clone(), eps.clone(), &n);
                let pred = p.prediction(target, z.clone(), &n);
                for (a, b) in to_vec(pred.x0_hat).iter().zip(to_vec(x.clone())) {
                    assert!((a - b).abs() < 2e-4, "{p:?} λ={l}: x̂ {a} vs {b}");
                }
                for (a, b) in to_vec(pred.eps_hat).iter().zip(to_vec(eps.clone())) {
                    assert!((a - b).abs() < 2e-4, "{p:?} λ={l}: ε̂ {a} vs {b}");
                }
            }
        }
    }
}
