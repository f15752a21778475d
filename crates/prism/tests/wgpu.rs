//! The `wgpu` feature against the CPU: burn's wgpu backend (in CI Mesa's lavapipe, a software
//! Vulkan driver: `.ci/run` installs `mesa-vulkan-drivers`) must give the CPU backend's numbers.
//!
//! - `prism::default_device()` is the wgpu device once the feature is on;
//! - a short training run (a small U-Net, 16×16 random images, AdamW) from the same initial
//!   weights and the same host-drawn batches, noise and times: every step's loss within 2e-3
//!   (relative) of the CPU's;
//! - a sample from the shipped checkpoint (DPM-Solver++(2M), 6 steps, guidance 1.5): every pixel
//!   within 5e-3 of the CPU's (images in [-1, 1]).
//!
//! Run: `cargo test --release -p prism --features wgpu --test wgpu`.
#![cfg(feature = "wgpu")]

mod common;

use std::path::PathBuf;

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use prism::nn::Condition;
use prism::run::{batch_loss, load_model};
use prism::sample::{Generate, SamplerKind, Spacing, generate};
use prism::tensor::{scalar, to_vec};
use prism::train::{AdamW, step_rng};
use rand::{Rng, SeedableRng};

fn gpu() -> Device {
    let d = prism::default_device();
    let name = prism::describe_device(&d);
    assert!(
        !name.contains("Flex"),
        "the wgpu build's default device: {name}"
    );
    d
}

#[test]
fn default_device_is_the_gpu() {
    eprintln!("wgpu device: {}", prism::describe_device(&gpu()));
}

/// Five training steps on each device from the same weights and inputs.
#[test]
fn training_matches_the_cpu() {
    let _turn = common::take_turn();
    let mut cfg = common::tiny_preset("fashion-mnist-cond.toml", 64, 8);
    common::small_unet(&mut cfg, &[1]).own.dropout = Vec::new();
    cfg.train.batch_size = 4;
    let process = cfg.process.build().unwrap();
    let input = cfg.model_input().unwrap();
    let cpu = Device::flex().autodiff();
    cpu.seed(5);
    let init = cfg.init_model(&cpu).unwrap();
    let run = |device: &Device| -> Vec<f64> {
        let mut model = init.clone().to_device(device);
        let mut opt = AdamW::new(cfg.train.adamw.clone());
        let mut images = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        (0..5u64)
            .map(|step| {
                let [b, s] = [cfg.train.batch_size, cfg.data.image_size];
                let host: Vec<f32> = (0..b * s * s)
                    .map(|_| images.random_range(-1.0f32..1.0))
                    .collect();
                let x0 = Tensor::<4>::from_data(TensorData::new(host, [b, 1, s, s]), device);
                let labels = Condition::cycling_labels(b, cfg.model.num_classes(), device).label;
                let (x0, cond) = input.prepare(x0, labels).unwrap();
                let mut rng = step_rng(cfg.train.seed, step, 0);
                let loss = batch_loss(&cfg, process.as_ref(), &model, x0, &cond, &mut rng).unwrap();
                let grads = loss.backward();
                let loss = scalar(loss);
                let (m, _) = opt.update(model.clone(), &grads, cfg.train.lr, cfg.train.grad_clip);
                model = m;
                loss
            })
            .collect()
    };
    let (on_cpu, on_gpu) = (run(&cpu), run(&gpu().autodiff()));
    eprintln!("losses: cpu {on_cpu:?}, wgpu {on_gpu:?}");
    for (i, (a, b)) in on_cpu.iter().zip(&on_gpu).enumerate() {
        assert!(
            ((a - b) / a).abs() < 2e-3,
            "step {}: cpu {a} vs wgpu {b}",
            i + 1
        );
    }
}

#[test]
fn shipped_checkpoint_sample_matches_the_cpu() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../checkpoints/fashion-mnist-cond/model.safetensors");
    let draw = |device: &Device| {
        let (cfg, model, _) = load_model(&path, device).unwrap();
        let process = cfg.process.build().unwrap();
        let request = Generate {
            kind: SamplerKind::DpmPp2m,
            steps: 6,
            spacing: Spacing::default(),
            shape: [4, 1, 32, 32],
            cond: Condition::cycling_labels(4, 10, device),
            guidance: 1.5,
            clip_x0: true,
            seed: 3,
        };
        to_vec(generate(&model, process.as_ref(), &request, device, &mut |_, _| {}).unwrap())
    };
    let (a, b) = (draw(&Device::flex()), draw(&gpu()));
    let worst = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    eprintln!("sample: largest |cpu − wgpu| = {worst:e}");
    assert!(worst < 5e-3, "largest pixel difference {worst}");
}
