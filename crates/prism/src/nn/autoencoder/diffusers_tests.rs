//! Stable Diffusion's VAE in diffusers' format: a small `AutoencoderKL` with SD's configuration
//! and random float16 weights (`tools/golden_sd_vae.py`), loaded by [`DiffusersVae`], encodes,
//! scales and decodes as diffusers does; older attention names and 1×1-convolution attention
//! weights load to the same network; bad files get clear errors.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};

use super::*;
use crate::io::{HostTensor, host_params};
use crate::tensor::to_vec;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn tensor4(t: &HostTensor, device: &Device) -> Tensor<4> {
    let s = &t.shape;
    Tensor::from_data(
        TensorData::new(t.data.clone(), [s[0], s[1], s[2], s[3]]),
        device,
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

/// Tolerance: max |Δ| ≤ 10⁻⁴ · max |reference| for the moments, the scaled latent and the
/// decoded image (float32 on both sides; the weights are float16 values).
#[test]
fn matches_diffusers_autoencoder_kl() {
    let device = Device::flex();
    let vae = DiffusersVae::load(
        &data("sd_vae_tiny/diffusion_pytorch_model.safetensors"),
        None,
        &device,
    )
    .unwrap();
    assert_eq!(vae.scaling_factor, SD_SCALING_FACTOR, "from config.json");
    assert_eq!(vae.config.block_out_channels, [8, 16, 32, 32]);
    assert_eq!(
        (vae.config.layers_per_block, vae.config.latent_channels),
        (2, 4)
    );
    assert_eq!(
        (vae.config.norm_groups, vae.config.mid_attention),
        (4, true)
    );
    assert_eq!(vae.autoencoder.factor(), 8);
    let g = crate::io::load(&data("sd_vae_tiny_golden.safetensors")).unwrap();
    let x = tensor4(&g.tensors["input"], &device);
    let e = rel_err(
        vae.autoencoder.moments(x.clone()).unwrap(),
        &g.tensors["moments"],
    );
    assert!(e < 1e-4, "moments: {e}");
    let e = rel_err(vae.encode(x).unwrap(), &g.tensors["latent"]);
    assert!(e < 1e-4, "latent: {e}");
    let z = tensor4(&g.tensors["latent"], &device);
    let e = rel_err(vae.decode(z), &g.tensors["decoded"]);
    assert!(e < 1e-4, "decoded: {e}");
    // An explicit factor overrides config.json's (SDXL's VAE has SD's architecture).
    let xl = DiffusersVae::load(
        &data("sd_vae_tiny/diffusion_pytorch_model.safetensors"),
        Some(SDXL_SCALING_FACTOR),
        &device,
    )
    .unwrap();
    assert_eq!(xl.scaling_factor, SDXL_SCALING_FACTOR);
}

/// Older diffusers files name the attention `query/key/value/proj_attn`, and some store its
/// weights as `[C, C, 1, 1]` convolutions: both map to the same parameters.
#[test]
fn older_attention_names_and_conv_weights_load_the_same() {
    let ck = crate::io::load(&data("sd_vae_tiny/diffusion_pytorch_model.safetensors")).unwrap();
    let new = diffusers_to_prism(&ck.tensors);
    let old: BTreeMap<String, HostTensor> = ck
        .tensors
        .iter()
        .map(|(k, t)| {
            let mut k = k.clone();
            for (n, o) in [
                (".to_q.", ".query."),
                (".to_k.", ".key."),
                (".to_v.", ".value."),
                (".to_out.0.", ".proj_attn."),
            ] {
                k = k.replace(n, o);
            }
            let mut t = t.clone();
            if k.contains(".attentions.") && t.shape.len() == 2 {
                t.shape.extend([1, 1]);
            }
            (k, t)
        })
        .collect();
    assert!(
        old.keys()
            .any(|k| k.ends_with("mid_block.attentions.0.proj_attn.weight"))
    );
    assert_eq!(diffusers_to_prism(&old), new);
    // And the mapped names are exactly the network's.
    let device = Device::flex();
    let vae =
        DiffusersVae::from_tensors(&old, None, Some(1.0), Path::new("old.safetensors"), &device);
    // Without config.json the groups default to SD's 32, which this small model does not have.
    let e = vae.unwrap_err().to_string();
    assert!(
        e.contains("norm_groups") && e.contains("old.safetensors"),
        "{e}"
    );
    let cfg = DiffusersVaeConfig {
        norm_num_groups: Some(4),
        ..Default::default()
    };
    let vae =
        DiffusersVae::from_tensors(&old, Some(&cfg), Some(1.0), Path::new("old"), &device).unwrap();
    assert_eq!(host_params(&vae.autoencoder), new);
}

#[test]
fn bad_inputs_get_clear_errors() {
    let ck = crate::io::load(&data("sd_vae_tiny/diffusion_pytorch_model.safetensors")).unwrap();
    let device = Device::flex();
    let p = Path::new("vae.safetensors");
    let cfg = DiffusersVaeConfig {
        norm_num_groups: Some(4),
        ..Default::default()
    };
    let err = |t: &BTreeMap<String, HostTensor>, c: &DiffusersVaeConfig, s: Option<f64>| {
        DiffusersVae::from_tensors(t, Some(c), s, p, &device)
            .unwrap_err()
            .to_string()
    };
    let e = err(&ck.tensors, &cfg, None);
    assert!(e.contains("0.18215") && e.contains("0.13025"), "{e}");
    let e = err(&ck.tensors, &cfg, Some(f64::NAN));
    assert!(e.contains("finite"), "{e}");
    let flux = DiffusersVaeConfig {
        shift_factor: Some(0.1159),
        ..cfg.clone()
    };
    assert!(err(&ck.tensors, &flux, Some(0.3611)).contains("shift_factor"));
    let mut t = ck.tensors.clone();
    t.remove("decoder.conv_out.bias");
    let e = err(&t, &cfg, Some(1.0));
    assert!(
        e.contains("decoder.conv_out.bias") && e.contains("vae.safetensors"),
        "{e}"
    );
    let e = err(&BTreeMap::new(), &cfg, Some(1.0));
    assert!(e.contains("not a diffusers AutoencoderKL"), "{e}");
}
