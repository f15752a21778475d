//! burn's wgpu backend against the CPU (`flex`) backend. The test build always holds the wgpu
//! backend (a dev-dependency of this crate enables it) while every other test, and the `prism`
//! binary, still compute on the CPU; CI runs this file on Mesa's software Vulkan driver
//! (lavapipe: `.ci/run` installs `mesa-vulkan-drivers`). Without any wgpu adapter the tests fail
//! and say so; `PRISM_SKIP_WGPU=1` skips them on such a machine.
//!
//! - the build does not silently compute on the GPU: `prism::default_device()` is the CPU
//!   unless the `wgpu` feature or `BURN_DEVICE` asks, and the wgpu device names itself;
//! - a short training run through the real trainer (a small U-Net, 16×16 Fashion-MNIST, AdamW,
//!   gradient clipping, EMA) on each device from the same seed: the same initial weights (drawn
//!   on the CPU), batches, times and noise (drawn on the host); every step's loss and the final
//!   weights agree within the tolerances below;
//! - a sample from the shipped checkpoint (DPM-Solver++(2M), 6 steps, guidance 1.5): every pixel
//!   within the tolerance below of the CPU's.
//!
//! Run alone: `cargo test --workspace --release --test wgpu`.

mod common;

use std::path::{Path, PathBuf};

use burn::tensor::{Device, DeviceKind, Tensor};
use prism::nn::Condition;
use prism::run::{load_model, train};
use prism::sample::{Generate, SamplerKind, Spacing, generate};
use prism::tensor::{scalar, to_vec};

/// Largest relative difference of a step's loss. Both devices compute in f32 from the same weights
/// and inputs and differ only in the order of their sums (GEMM tiling, reductions): measured on
/// lavapipe, 7e-8 at worst over the five steps (BENCHMARKS.md, "GPU"). 1e-5 leaves two orders of
/// magnitude for other drivers, and is far below what an error gives: a run whose initial weights
/// were drawn on the device instead of copied differed by 4e-2 at the first step.
const LOSS_RTOL: f64 = 1e-5;

/// Largest `‖θ_wgpu − θ_cpu‖ / ‖θ_cpu − θ_0‖` of the trained weights (`θ_0` the initial ones):
/// how far apart the devices end, as a share of how far training moved the weights. Measured:
/// 4e-5. AdamW's first steps take nearly the sign of each gradient, so a weight whose gradient is
/// within rounding of zero may step the other way on the other device: the share is never zero;
/// 2e-3 (50× the measurement) still fails any update that differs in substance.
const WEIGHT_SHARE: f64 = 2e-3;

/// Largest pixel difference of a sample, images in [-1, 1]. Measured: 2.6e-6 (f32 rounding through
/// 12 network evaluations and the solver's steps); 1e-4 leaves a margin of about 40×, while a
/// wrong kernel moves pixels by 1e-2 or more.
const PIXEL_ATOL: f32 = 1e-4;

/// The wgpu device (wgpu's default adapter), or `None` when `PRISM_SKIP_WGPU` is set. Panics,
/// saying what to install, when no adapter opens.
fn gpu() -> Option<Device> {
    if std::env::var_os("PRISM_SKIP_WGPU").is_some() {
        eprintln!("PRISM_SKIP_WGPU is set: not testing the wgpu backend");
        return None;
    }
    let device = Device::wgpu(DeviceKind::DefaultDevice);
    let probe = device.clone();
    let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        scalar(Tensor::<1>::ones([4], &probe).sum()) == 4.0
    }));
    assert!(
        matches!(opened, Ok(true)),
        "no working wgpu adapter: install a Vulkan driver (Debian: apt-get install \
         mesa-vulkan-drivers) or set PRISM_SKIP_WGPU=1 to skip these tests"
    );
    Some(device)
}

#[test]
fn cpu_stays_the_default_and_the_gpu_names_itself() {
    if std::env::var_os("BURN_DEVICE").is_none() {
        let cpu = prism::describe_device(&prism::default_device());
        assert!(
            cpu.contains("Flex"),
            "the test build's default device: {cpu}"
        );
    }
    let Some(gpu) = gpu() else { return };
    let name = prism::describe_device(&gpu);
    let adapter = gpu.identity().map_or("unknown".into(), |id| id.name);
    eprintln!("wgpu device: {name}, adapter {adapter}");
    assert!(name.contains("Wgpu"), "{name}");
}

/// Every weight of the network in the training state of the run in `dir`, in name order.
fn weights(dir: &Path) -> Vec<f32> {
    prism::io::load(&dir.join("train_state.safetensors"))
        .unwrap()
        .with_prefix("model")
        .into_values()
        .flat_map(|t| t.data)
        .collect()
}

#[test]
fn training_matches_the_cpu() {
    let Some(gpu) = gpu() else { return };
    let _turn = common::take_turn();
    let mut cfg = common::tiny_preset("fashion-mnist-cond.toml", 72, 8);
    // No dropout: its masks come from each backend's own generator.
    common::small_unet(&mut cfg, &[1]).own.dropout = Vec::new();
    common::short_run(&mut cfg, 8, 5);
    cfg.train.log_every = 1;
    let run = |name: &str, device: Device| -> PathBuf {
        let dir = common::temp_dir(name);
        let mut opts = common::quiet(&dir);
        opts.device = device;
        assert_eq!(train(&cfg, &opts).unwrap().step, 5);
        dir
    };
    let (cpu_dir, gpu_dir) = (run("wgpu-cpu", Device::flex()), run("wgpu-gpu", gpu));
    let (cpu, wgpu) = (
        common::logged_losses(&cpu_dir),
        common::logged_losses(&gpu_dir),
    );
    assert_eq!(cpu.len(), 5);
    let worst = cpu
        .iter()
        .zip(&wgpu)
        .map(|(a, b)| ((a - b) / a).abs())
        .fold(0.0f64, f64::max);
    eprintln!("losses: cpu {cpu:?}\n        wgpu {wgpu:?}\nlargest relative difference {worst:e}");
    assert!(worst < LOSS_RTOL, "losses differ by {worst:e} (relative)");

    // The trained weights, against how far training moved them.
    let initial = {
        let dir = common::temp_dir("wgpu-init");
        let mut opts = common::quiet(&dir);
        opts.stop_after = Some(0);
        opts.device = Device::flex();
        train(&cfg, &opts).unwrap();
        dir
    };
    let [a, b, init] = [&cpu_dir, &gpu_dir, &initial].map(|d| weights(d));
    assert_eq!((a.len(), b.len()), (init.len(), init.len()));
    let norm = |x: &[f32], y: &[f32]| -> f64 {
        x.iter()
            .zip(y)
            .map(|(p, q)| (*p as f64 - *q as f64).powi(2))
            .sum::<f64>()
            .sqrt()
    };
    let share = norm(&a, &b) / norm(&a, &init);
    eprintln!("‖θ_wgpu − θ_cpu‖ / ‖θ_cpu − θ_0‖ = {share:e}");
    assert!(share < WEIGHT_SHARE, "trained weights differ by {share:e}");
    for d in [cpu_dir, gpu_dir, initial] {
        std::fs::remove_dir_all(d).ok();
    }
}

#[test]
fn shipped_checkpoint_sample_matches_the_cpu() {
    let Some(gpu) = gpu() else { return };
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
            guidance_interval: None,
            clip_x0: true,
            seed: 3,
        };
        to_vec(generate(&model, process.as_ref(), &request, device, &mut |_, _| {}).unwrap())
    };
    let (a, b) = (draw(&Device::flex()), draw(&gpu));
    let worst = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    eprintln!("sample: largest |cpu − wgpu| = {worst:e}");
    assert!(worst < PIXEL_ATOL, "largest pixel difference {worst:e}");
}
