//! Blurring diffusion is a forward process, so it must work with any network: the blurring preset
//! with its U-Net replaced by a tiny U-ViT behind a one-level 5/3 wavelet trains a few steps on
//! Fashion-MNIST, and the saved model samples with the paper's ancestral step.

mod common;

use prism::nn::{NetConfig, PatchingConfig, UViTConfig};
use prism::run::{load_model, train};
use prism::sample::{Generate, SamplerKind, generate};

#[test]
fn blurring_trains_and_samples_with_a_uvit() {
    let mut cfg = common::tiny_preset("fashion-mnist-blur.toml", 64, 16);
    cfg.model.patching = PatchingConfig::Dwt { levels: 1 };
    cfg.model.net = NetConfig::UViT(UViTConfig::tiny(4));
    common::short_run(&mut cfg, 4, 3);
    cfg.train.warmup_steps = 1;
    cfg.validate().unwrap();
    let dir = common::temp_dir("blur-uvit");
    let out = train(&cfg, &common::quiet(&dir)).unwrap();
    assert!(out.last_loss.is_finite() && out.last_loss > 0.0);

    let device = prism::default_device();
    let (loaded, model, _) = load_model(&dir.join("model.safetensors"), &device).unwrap();
    assert_eq!(loaded.process, cfg.process);
    let process = loaded.process.build().unwrap();
    let request = Generate {
        kind: SamplerKind::Ddpm,
        steps: 4,
        spacing: prism::sample::Spacing::default(),
        shape: [2, 1, 16, 16],
        cond: prism::nn::Condition::none(),
        guidance: 1.0,
        guidance_interval: None,
        clip_x0: true,
        seed: 1,
    };
    let x = generate(&model, process.as_ref(), &request, &device, &mut |_, _| {}).unwrap();
    assert_eq!(x.dims(), [2, 1, 16, 16]);
    let v = prism::tensor::to_vec(x);
    assert!(v.iter().all(|p| p.is_finite()), "non-finite sample");
    std::fs::remove_dir_all(&dir).ok();
}
