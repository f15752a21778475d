//! A diffusers `AutoencoderKL` (Stable Diffusion's VAE) as the first stage: the latent space on
//! the committed tiny SD-configured VAE (`tools/golden_sd_vae.py`) encodes and decodes as
//! diffusers does (`latent_dist.mean * scaling_factor`, `decode(z / scaling_factor)`), scaled by
//! its `config.json`'s `scaling_factor` unless `space.scale` says otherwise, and names the
//! weights file by its hash.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use burn::tensor::{Tensor, TensorData};

use super::{LatentConfig, LatentSpace, Space};
use crate::io::HostTensor;
use crate::nn::autoencoder::{AutoencoderFile, SD_SCALING_FACTOR, SDXL_SCALING_FACTOR, file_hash};
use crate::tensor::to_vec;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn tensor4(t: &HostTensor) -> Tensor<4> {
    let s = &t.shape;
    Tensor::from_data(
        TensorData::new(t.data.clone(), [s[0], s[1], s[2], s[3]]),
        &crate::default_device(),
    )
}

/// `max |a − b| / max |b|`.
fn rel_err(a: Tensor<4>, b: &HostTensor) -> f32 {
    let a = to_vec(a);
    assert_eq!(a.len(), b.data.len());
    let scale = b.data.iter().fold(0f32, |m, v| m.max(v.abs()));
    let diff = a
        .iter()
        .zip(&b.data)
        .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    diff / scale
}

/// Tolerance as `nn::autoencoder`'s diffusers test: max |Δ| ≤ 10⁻⁴ · max |reference|.
#[test]
fn latent_space_on_a_diffusers_vae_matches_diffusers() {
    let dir = data("sd_vae_tiny");
    let weights = dir.join("diffusion_pytorch_model.safetensors");
    let space = LatentSpace::load(&LatentConfig::new(&dir), None).unwrap();
    assert_eq!(space.path(), weights, "the model folder's weights file");
    assert_eq!(space.hash(), file_hash(&weights).unwrap());
    assert_eq!(
        space.scale(),
        SD_SCALING_FACTOR,
        "config.json's scaling_factor"
    );
    assert_eq!(space.file_scale(), Some(SD_SCALING_FACTOR));
    assert_eq!((space.image_channels(), space.kind()), (3, "latent"));
    let g = crate::io::load(&data("sd_vae_tiny_golden.safetensors")).unwrap();
    let x = tensor4(&g.tensors["input"]);
    let [n, _, h, w] = x.dims();
    assert_eq!(space.shape([n, 3, h, w]), [n, 4, h / 8, w / 8]);
    let e = rel_err(space.encode(x).unwrap(), &g.tensors["latent"]);
    assert!(e < 1e-4, "latent: {e}");
    let z = tensor4(&g.tensors["latent"]);
    let e = rel_err(space.decode(z).unwrap(), &g.tensors["decoded"]);
    assert!(e < 1e-4, "decoded: {e}");

    // space.scale overrides config.json's; the weights file itself loads the same network.
    let mut cfg = LatentConfig::new(&weights);
    cfg.scale = Some(SDXL_SCALING_FACTOR);
    let xl = LatentSpace::load(&cfg, None).unwrap();
    assert_eq!(xl.scale(), SDXL_SCALING_FACTOR);
    assert_eq!(xl.hash(), space.hash());

    let f = AutoencoderFile::load(&dir, &crate::default_device()).unwrap();
    assert_eq!((f.job_json, f.step), (None, 0));
    assert_eq!(f.config.latent_channels, 4);
    assert_eq!(
        (
            f.autoencoder.image_channels(),
            f.autoencoder.latent_channels()
        ),
        (3, 4)
    );
}

/// A safetensors file that is neither prism's autoencoder nor diffusers' is refused, clearly.
#[test]
fn a_foreign_safetensors_is_not_an_autoencoder() {
    let dir = std::env::temp_dir().join(format!("prism-foreign-ae-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("weights.safetensors");
    let tensors = BTreeMap::from([(
        "conv.weight".to_string(),
        HostTensor {
            shape: vec![2],
            data: vec![1.0, 2.0],
        },
    )]);
    crate::io::save(&path, &tensors, HashMap::new()).unwrap();
    let mut cfg = LatentConfig::new(&path);
    cfg.scale = Some(1.0);
    let err = LatentSpace::load(&cfg, None).unwrap_err().to_string();
    assert!(
        err.contains("neither a prism autoencoder") && err.contains("diffusers AutoencoderKL"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
