//! Stable Diffusion's own VAE as prism's first stage: diffusers-format `AutoencoderKL` weights
//! (`vae/diffusion_pytorch_model.safetensors` of SD 1.x, 2.x and SDXL, float32, float16 or
//! bfloat16) loaded into [`Autoencoder`], with the latent scaling factor of Rombach et al. 2022
//! §4.3.2 (`z = s · E(x)`, `s` = 0.18215 for SD 1.x/2.x, 0.13025 for SDXL; formula sheet §5).
//!
//! prism's parameter paths already are diffusers' (module docs of [`super`]); what differs is
//! mapped here: GroupNorm `weight`/`bias` → `gamma`/`beta`, attention Linear weights `[out, in]`
//! → burn's `[in, out]`, the older diffusers attention names `query`/`key`/`value`/`proj_attn`
//! → `to_q`/`to_k`/`to_v`/`to_out.0`, and attention weights stored as 1×1 convolutions
//! (`[C, C, 1, 1]`) → Linear. The architecture is read from the tensor shapes; `config.json`
//! beside the weights (diffusers' own) gives the GroupNorm groups and the scaling factor.
//! The original CompVis/LDM key layout (`first_stage_model.encoder.down.0.block.0…`) is not
//! read: convert it with diffusers' `convert_original_stable_diffusion_to_diffusers.py` first.

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::{Device, Tensor};
use serde::Deserialize;

use super::{Autoencoder, AutoencoderConfig, Regularizer};
use crate::io::{HostTensor, load_into};
use crate::{Error, Result};

/// The latent scaling factor of Stable Diffusion 1.x and 2.x's VAE.
pub const SD_SCALING_FACTOR: f64 = 0.18215;

/// The latent scaling factor of SDXL's VAE.
pub const SDXL_SCALING_FACTOR: f64 = 0.13025;

/// The GroupNorm groups of every Stable Diffusion VAE (diffusers' default `norm_num_groups`).
const DEFAULT_GROUPS: usize = 32;

/// The fields of diffusers' `AutoencoderKL` `config.json` that prism reads (others are ignored).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DiffusersVaeConfig {
    /// `_class_name` (must be `AutoencoderKL` when present).
    #[serde(rename = "_class_name")]
    pub class_name: Option<String>,
    /// GroupNorm groups.
    pub norm_num_groups: Option<usize>,
    /// The latent scaling factor `s`.
    pub scaling_factor: Option<f64>,
    /// A latent shift (SD3 / Flux VAEs): not supported.
    pub shift_factor: Option<f64>,
    /// Per-channel latent statistics (some later VAEs): not supported.
    pub latents_mean: Option<Vec<f64>>,
    /// Activation (must be `silu`).
    pub act_fn: Option<String>,
    /// `quant_conv` present (must be true, diffusers' default).
    pub use_quant_conv: Option<bool>,
    /// `post_quant_conv` present (must be true, diffusers' default).
    pub use_post_quant_conv: Option<bool>,
}

/// A diffusers `AutoencoderKL` loaded into prism: the network, its architecture and `s`.
#[derive(Debug)]
pub struct DiffusersVae {
    /// The network.
    pub autoencoder: Autoencoder,
    /// Its architecture, as prism's configuration.
    pub config: AutoencoderConfig,
    /// The latent scaling factor `s`.
    pub scaling_factor: f64,
}

impl DiffusersVae {
    /// Reads `weights` (a diffusers `AutoencoderKL` safetensors file) and the `config.json` in
    /// the same folder when there is one. `scaling_factor` overrides the config's; without
    /// either, loading fails and says which value to give.
    pub fn load(weights: &Path, scaling_factor: Option<f64>, device: &Device) -> Result<Self> {
        let ck = crate::io::load(weights)?;
        let config = read_config(weights)?;
        Self::from_tensors(
            &ck.tensors,
            config.as_ref(),
            scaling_factor,
            weights,
            device,
        )
    }

    /// From tensors under diffusers' names (`path` names the file in errors).
    pub fn from_tensors(
        tensors: &BTreeMap<String, HostTensor>,
        config: Option<&DiffusersVaeConfig>,
        scaling_factor: Option<f64>,
        path: &Path,
        device: &Device,
    ) -> Result<Self> {
        let bad = |m: String| Err(Error::config(format!("{}: {m}", path.display())));
        let s = match scaling_factor.or(config.and_then(|c| c.scaling_factor)) {
            Some(s) if s.is_finite() && s > 0.0 => s,
            Some(s) => {
                return bad(format!(
                    "the scaling factor must be finite and > 0, got {s}"
                ));
            }
            None => {
                return bad(format!(
                    "no scaling factor: put diffusers' config.json beside the weights or give it ({SD_SCALING_FACTOR} for Stable Diffusion 1.x/2.x, {SDXL_SCALING_FACTOR} for SDXL)"
                ));
            }
        };
        let (config, autoencoder) = network(tensors, config, path, device)?;
        Ok(Self {
            autoencoder,
            config,
            scaling_factor: s,
        })
    }

    /// The scaled latent `s · μ(x)` of images in `[-1, 1]` (the posterior mean, as diffusion
    /// models are trained on; diffusers' `latent_dist.mean * scaling_factor`).
    pub fn encode(&self, x: Tensor<4>) -> Result<Tensor<4>> {
        Ok(self.autoencoder.encode(x)? * self.scaling_factor)
    }

    /// Images in `[-1, 1]` (unclipped) from scaled latents: `D(z / s)`.
    pub fn decode(&self, z: Tensor<4>) -> Tensor<4> {
        self.autoencoder.decode(z / self.scaling_factor)
    }
}

/// The `config.json` beside `weights` (diffusers' model folder layout), if there is one.
pub(super) fn read_config(weights: &Path) -> Result<Option<DiffusersVaeConfig>> {
    let cfg_path = weights.with_file_name("config.json");
    if !cfg_path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&cfg_path).map_err(|e| Error::io("read", &cfg_path, e))?;
    serde_json::from_str::<DiffusersVaeConfig>(&text)
        .map(Some)
        .map_err(|e| {
            Error::config(format!(
                "{}: not a diffusers config ({e})",
                cfg_path.display()
            ))
        })
}

/// Whether `tensors` (of a file without prism's `format` metadata) look like a diffusers
/// `AutoencoderKL`: its encoder and decoder convolutions and `quant_conv`.
pub(super) fn is_diffusers_vae(tensors: &BTreeMap<String, HostTensor>) -> bool {
    [
        "encoder.conv_in.weight",
        "decoder.conv_out.weight",
        "quant_conv.weight",
        "post_quant_conv.weight",
    ]
    .iter()
    .all(|k| tensors.contains_key(*k))
}

/// The network of diffusers' `AutoencoderKL` tensors (`config`: its `config.json`, if any; `path`
/// names the file in errors), without the scaling factor: its architecture and weights.
pub(super) fn network(
    tensors: &BTreeMap<String, HostTensor>,
    config: Option<&DiffusersVaeConfig>,
    path: &Path,
    device: &Device,
) -> Result<(AutoencoderConfig, Autoencoder)> {
    let cfg = config.cloned().unwrap_or_default();
    let bad = |m: String| Err(Error::config(format!("{}: {m}", path.display())));
    if let Some(c) = cfg.class_name.as_deref().filter(|c| *c != "AutoencoderKL") {
        return bad(format!("config.json describes a {c}, not an AutoencoderKL"));
    }
    if cfg.shift_factor.is_some() || cfg.latents_mean.is_some() {
        return bad("VAEs with a latent shift_factor or latents_mean (SD3, Flux) are not supported; Stable Diffusion 1.x, 2.x and SDXL VAEs have neither".into());
    }
    if let Some(a) = cfg.act_fn.as_deref().filter(|a| *a != "silu") {
        return bad(format!(
            "act_fn {a} is not supported (Stable Diffusion's VAE uses silu)"
        ));
    }
    if cfg.use_quant_conv == Some(false) || cfg.use_post_quant_conv == Some(false) {
        return bad("VAEs without quant_conv / post_quant_conv are not supported".into());
    }
    let groups = cfg.norm_num_groups.unwrap_or(DEFAULT_GROUPS);
    let tensors = diffusers_to_prism(tensors);
    let config = infer_config(&tensors, groups, path)?;
    let autoencoder = load_into(config.init(device)?, &tensors, path)?;
    Ok((config, autoencoder))
}

/// diffusers' `AutoencoderKL` tensors under prism's parameter paths (see the module docs).
pub fn diffusers_to_prism(tensors: &BTreeMap<String, HostTensor>) -> BTreeMap<String, HostTensor> {
    tensors
        .iter()
        .map(|(name, t)| {
            let mut k = name.clone();
            for (old, new) in [
                (".query.", ".to_q."),
                (".key.", ".to_k."),
                (".value.", ".to_v."),
                (".proj_attn.", ".to_out.0."),
            ] {
                k = k.replace(old, new);
            }
            let is_norm = [".norm1.", ".norm2.", "conv_norm_out.", ".group_norm."]
                .iter()
                .any(|n| k.contains(n));
            if is_norm {
                k = rename_last(&k, "weight", "gamma");
                k = rename_last(&k, "bias", "beta");
            }
            let attn_weight = k.contains(".attentions.")
                && !is_norm
                && k.ends_with(".weight")
                && (t.shape.len() == 2 || (t.shape.len() == 4 && t.shape[2..] == [1, 1]));
            let t = if attn_weight { transpose(t) } else { t.clone() };
            (k, t)
        })
        .collect()
}

fn rename_last(k: &str, from: &str, to: &str) -> String {
    match k.strip_suffix(from) {
        Some(stem) if stem.ends_with('.') => format!("{stem}{to}"),
        _ => k.to_string(),
    }
}

/// `[out, in]` (or `[out, in, 1, 1]`) → `[in, out]`.
fn transpose(t: &HostTensor) -> HostTensor {
    let (o, i) = (t.shape[0], t.shape[1]);
    let mut data = vec![0.0; o * i];
    for r in 0..o {
        for c in 0..i {
            data[c * o + r] = t.data[r * i + c];
        }
    }
    HostTensor {
        shape: vec![i, o],
        data,
    }
}

/// The architecture implied by the tensor shapes (under prism's names).
fn infer_config(
    t: &BTreeMap<String, HostTensor>,
    groups: usize,
    path: &Path,
) -> Result<AutoencoderConfig> {
    let shape = |k: &str| t.get(k).map(|v| v.shape.clone());
    let missing = |k: &str| Error::Checkpoint {
        path: path.into(),
        reason: format!("not a diffusers AutoencoderKL: no tensor '{k}'"),
    };
    let conv_in =
        shape("encoder.conv_in.weight").ok_or_else(|| missing("encoder.conv_in.weight"))?;
    let mut block_out_channels = vec![];
    while let Some(s) = shape(&format!(
        "encoder.down_blocks.{}.resnets.0.conv1.weight",
        block_out_channels.len()
    )) {
        block_out_channels.push(s[0]);
    }
    let mut layers_per_block = 0;
    while t.contains_key(&format!(
        "encoder.down_blocks.0.resnets.{layers_per_block}.conv1.weight"
    )) {
        layers_per_block += 1;
    }
    let post = shape("post_quant_conv.weight").ok_or_else(|| missing("post_quant_conv.weight"))?;
    let config = AutoencoderConfig {
        channels: conv_in[1],
        block_out_channels,
        layers_per_block,
        latent_channels: post[0],
        norm_groups: groups,
        mid_attention: t
            .keys()
            .any(|k| k.starts_with("encoder.mid_block.attentions.0.")),
        regularizer: Regularizer::Kl,
    };
    config.validate().map_err(|e| Error::Checkpoint {
        path: path.into(),
        reason: format!("the weights' architecture is not one prism builds: {e}"),
    })?;
    Ok(config)
}
