//! An autoencoder's inference file (`model.safetensors` of an autoencoder run, metadata
//! `format = prism-autoencoder` and the job's `config` JSON with its `autoencoder` table): read
//! here so that both `prism reconstruct` and a latent space ([`crate::space`]) load it the same
//! way, and hashed, so that a latent-diffusion model can name the exact file it was trained on.

use std::io::Read;
use std::path::{Path, PathBuf};

use burn::tensor::Device;
use sha2::{Digest, Sha256};

use super::{Autoencoder, AutoencoderConfig};
use crate::io::{self, FORMAT_KEY, load_into};
use crate::{Error, Result};

/// The `format` metadata of an autoencoder's inference file.
pub const AUTOENCODER_FORMAT: &str = "prism-autoencoder";

/// The file name of an inference file inside a run directory.
const MODEL_FILE: &str = "model.safetensors";

/// A loaded autoencoder file.
#[derive(Debug)]
pub struct AutoencoderFile {
    /// The file read (`dir/model.safetensors` when given a run directory).
    pub path: PathBuf,
    /// The network's configuration.
    pub config: AutoencoderConfig,
    /// The whole job config of the run that wrote it (JSON).
    pub job_json: String,
    /// The training step it was written at.
    pub step: u64,
    /// The network.
    pub autoencoder: Autoencoder,
}

/// `path` itself, or `path/model.safetensors` for a run directory.
pub fn autoencoder_file(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join(MODEL_FILE)
    } else {
        path.to_path_buf()
    }
}

impl AutoencoderFile {
    /// Loads the autoencoder file (or run directory) `path` on `device`; errors name the file.
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        let file = autoencoder_file(path);
        let ck = io::load(&file)?;
        if ck.meta(FORMAT_KEY, &file)? != AUTOENCODER_FORMAT {
            return Err(Error::Checkpoint {
                path: file,
                reason: "not a prism autoencoder (train one with an [autoencoder] config)".into(),
            });
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
            job_json,
            step,
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
