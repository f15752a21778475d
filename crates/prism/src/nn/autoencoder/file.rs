//! An autoencoder's inference file (`model.safetensors` of an autoencoder run, metadata
//! `format = prism-autoencoder` and the job's `config` JSON with its `autoencoder` table): read
//! here so that both `prism reconstruct` and a latent space ([`crate::space`]) load it the same
//! way, and hashed, so that a latent-diffusion model can name the exact file it was trained on.
//!
//! A diffusers `AutoencoderKL` (Stable Diffusion's VAE, [`super::DiffusersVae`]) loads here too,
//! so that it can be the first stage wherever prism takes an autoencoder file: a `.safetensors`
//! without prism's `format` metadata whose tensors are diffusers' (`encoder.conv_in.weight`,
//! `quant_conv.weight`, …), with diffusers' `config.json` beside it when there is one; or a
//! diffusers model folder (`diffusion_pytorch_model.safetensors` + `config.json`, or a pipeline
//! folder's `vae/`).

use std::io::Read;
use std::path::{Path, PathBuf};

use burn::tensor::Device;
use sha2::{Digest, Sha256};

use super::diffusers::{is_diffusers_vae, network, read_config};
use super::{Autoencoder, AutoencoderConfig};
use crate::io::{self, FORMAT_KEY, load_into};
use crate::{Error, Result};

/// The `format` metadata of an autoencoder's inference file.
pub const AUTOENCODER_FORMAT: &str = "prism-autoencoder";

/// The file name of an inference file inside a run directory.
const MODEL_FILE: &str = "model.safetensors";

/// The weights file of a diffusers model folder.
const DIFFUSERS_FILE: &str = "diffusion_pytorch_model.safetensors";

/// A loaded autoencoder file.
#[derive(Debug)]
pub struct AutoencoderFile {
    /// The file read (`dir/model.safetensors` when given a run directory).
    pub path: PathBuf,
    /// The network's configuration.
    pub config: AutoencoderConfig,
    /// The whole job config of the run that wrote it (JSON); `None` for a diffusers VAE.
    pub job_json: Option<String>,
    /// The training step it was written at (0 for a diffusers VAE).
    pub step: u64,
    /// A diffusers VAE's latent `scaling_factor` (its `config.json`'s), if it has one.
    pub scaling_factor: Option<f64>,
    /// The network.
    pub autoencoder: Autoencoder,
}

/// `path` itself, or for a directory the first file there of `model.safetensors` (a run
/// directory), `diffusion_pytorch_model.safetensors` (a diffusers model folder) and
/// `vae/diffusion_pytorch_model.safetensors` (a diffusers pipeline folder); `model.safetensors`
/// when none is.
pub fn autoencoder_file(path: &Path) -> PathBuf {
    if path.is_dir() {
        [
            path.join(MODEL_FILE),
            path.join(DIFFUSERS_FILE),
            path.join("vae").join(DIFFUSERS_FILE),
        ]
        .into_iter()
        .find(|f| f.is_file())
        .unwrap_or_else(|| path.join(MODEL_FILE))
    } else {
        path.to_path_buf()
    }
}

impl AutoencoderFile {
    /// Loads the autoencoder file (or run directory) `path` on `device`; errors name the file.
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        let file = autoencoder_file(path);
        let ck = io::load(&file)?;
        match ck.metadata.get(FORMAT_KEY).map(String::as_str) {
            Some(AUTOENCODER_FORMAT) => {}
            None if is_diffusers_vae(&ck.tensors) => {
                let cfg = read_config(&file)?;
                if let Some(s) = cfg.as_ref().and_then(|c| c.scaling_factor)
                    && !(s.is_finite() && s > 0.0)
                {
                    return Err(Error::Checkpoint {
                        path: file,
                        reason: format!(
                            "config.json's scaling_factor must be finite and > 0, got {s}"
                        ),
                    });
                }
                let (config, autoencoder) = network(&ck.tensors, cfg.as_ref(), &file, device)?;
                return Ok(Self {
                    path: file,
                    config,
                    job_json: None,
                    step: 0,
                    scaling_factor: cfg.and_then(|c| c.scaling_factor),
                    autoencoder,
                });
            }
            _ => {
                return Err(Error::Checkpoint {
                    path: file,
                    reason: "neither a prism autoencoder (train one with an [autoencoder] config) nor a diffusers AutoencoderKL".into(),
                });
            }
        }
        let job_json = ck.meta("config", &file)?.to_string();
        let bad = |e: serde_json::Error| Error::Checkpoint {
            path: file.clone(),
            reason: format!("config metadata does not parse: {e}"),
        };
        let job: serde_json::Value = serde_json::from_str(&job_json).map_err(bad)?;
        let config: AutoencoderConfig = serde_json::from_value(
            job.get("autoencoder")
                .cloned()
                .unwrap_or(serde_json::Value::Null),
        )
        .map_err(bad)?;
        let step = ck.meta_u64("step", &file)?;
        let autoencoder = load_into(config.init(device)?, &ck.tensors, &file)?;
        Ok(Self {
            path: file,
            config,
            job_json: Some(job_json),
            step,
            scaling_factor: None,
            autoencoder,
        })
    }
}

/// The SHA-256 of a file's bytes as `sha256:` and 64 hex digits: what a latent-diffusion
/// checkpoint records of its autoencoder.
pub fn file_hash(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io("read", path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io("read", path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(format!("sha256:{}", hex(&hasher.finalize())))
}

/// Lower-case hex digits of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
