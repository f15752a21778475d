//! Blurring diffusion is a forward process, so it must work with any network: the blurring preset
//! with its U-Net replaced by a tiny U-ViT behind a one-level 5/3 wavelet trains a few steps on
//! Fashion-MNIST, and the saved model samples with the paper's ancestral step.

mod common;

use prism::nn::{PatchingConfig, UViTConfig};
use prism::run::{TrainOptions, load_model, train};
use prism::sample::{Generate, SamplerKind, generate};

#[test]
fn blurring_trains_and_samples_with_a_uvit() {
    let mut cfg = common::tiny_preset("fashion-mnist-blur.toml", 64, 16);
    cfg.model.unet = None;
    cfg.model.patching = PatchingConfig::Dwt { levels: 1 };
    cfg.model.uvit = Some(UViTConfig {
        channels: 4,
        cond_channels: 0,
        base_channels: 8,
        channel_mults: vec![1],
        res_blocks: 1,
        transformer_channels: 16,
        transformer_blocks: 1,
        head_channels: 8,
        mlp_ratio: 2,
        norm_groups: 4,
        dropout: 0.0,
        dropout_max_resolution: None,
        num_classes: 0,
    });
    cfg.train.batch_size = 4;
    cfg.train.steps = 3;
    cfg.train.warmup_steps = 1;
    cfg.train.checkpoint_every = 0;
    cfg.train.sample_every = 0;
    cfg.validate().unwrap();
    let dir = common::temp_dir("blur-uvit");
    let mut o = TrainOptions::new(&dir);
    o.progress = false;
    o.pictures = false;
    let out = train(&cfg, &o).unwrap();
    assert!(out.last_loss.is_finite() && out.last_loss > 0.0);

    let device = prism::default_device();
    let (loaded, model, _) = load_model(&dir.join("model.safetensors"), &device).unwrap();
    assert_eq!(loaded.process, cfg.process);
    let process = loaded.process.build().unwrap();
    let request = Generate {
        kind: SamplerKind::Ddpm,
        steps: 4,
        shape: [2, 1, 16, 16],
        cond: prism::nn::Condition::none(),
        guidance: 1.0,
        clip_x0: true,
        seed: 1,
    };
    let x = generate(&model, process.as_ref(), &request, &device, &mut |_, _| {}).unwrap();
    assert_eq!(x.dims(), [2, 1, 16, 16]);
    let v = prism::tensor::to_vec(x);
    assert!(v.iter().all(|p| p.is_finite()), "non-finite sample");
    std::fs::remove_dir_all(&dir).ok();
}
