//! Evidence that Laplacian pyramid diffusion learns, on the bundled Fashion-MNIST test split (real
//! data), bounded to about a minute in release mode (`cargo test --release --test laplacian_learning`).
//!
//! The `fashion-mnist-laplacian` preset (32², 3 bands, switches at t = 0.35 and 0.65) with a small
//! U-Net (C = 16, shared by the 32², 16² and 8² states) is trained for 200 steps of batch 32; then,
//! on 300 held-out images, the denoising error `E||x − up(x̂(z_t))||²` at one time in each
//! resolution segment must be below a stated fraction of that of the best predictor that ignores
//! `z_t` (the training set's mean image), and below the same model's error before training.
//!
//! Skipped in debug builds, where it would be slow.

mod common;

use prism::eval::denoise_mse;
use prism::run::{load_model, train};

/// Held-out x̂ error must be at most this fraction of the constant predictor's, at a time in each
/// segment (32², 16², 8² states).
const MAX_MSE_RATIO: [(f64, f64); 3] = [(0.2, 0.3), (0.5, 0.45), (0.8, 0.75)];

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "release-mode learning test: cargo test --release"
)]
fn laplacian_fashion_mnist_learns() {
    let mut cfg = common::preset("fashion-mnist-laplacian.toml");
    let unet = common::unet(&mut cfg);
    unet.core.base_channels = 16;
    unet.core.norm_groups = 4;
    unet.own.head_channels = 16;
    common::short_run(&mut cfg, 32, 200);
    cfg.train.warmup_steps = 20;
    cfg.train.ema_decay = 0.98;
    let device = prism::default_device();
    let (train_set, held_out) = cfg.data.load().unwrap().split(cfg.data.held_out);
    let process = cfg.process.build().unwrap();
    let times: Vec<f64> = MAX_MSE_RATIO.iter().map(|r| r.0).collect();
    let input = cfg.model_input().unwrap();
    let mean = train_set.mean_image().unwrap();
    let evaluate = |model: &prism::denoiser::DiffusionModel| {
        denoise_mse(
            model,
            process.as_ref(),
            &input,
            &held_out,
            &mean,
            &times,
            300,
            1,
            &device,
        )
        .unwrap()
    };
    device.seed(7);
    let untrained = evaluate(&cfg.init_model(&device).unwrap());

    let dir = common::temp_dir("laplacian-learning");
    let out = train(&cfg, &common::quiet(&dir)).unwrap();
    assert_eq!(out.step, 200);
    let (_, model, _) = load_model(&dir.join("model.safetensors"), &device).unwrap();
    let rows = evaluate(&model);
    let report = format!(
        "trained {rows:?}\nuntrained {untrained:?}\n{:.0} s of training",
        out.seconds
    );
    eprintln!("{report}");
    for ((row, before), &(t, max_ratio)) in rows.iter().zip(&untrained).zip(&MAX_MSE_RATIO) {
        assert!(
            row.model < max_ratio * row.constant,
            "t = {t}: held-out MSE {:.4} is not below {max_ratio} × constant {:.4}\n{report}",
            row.model,
            row.constant
        );
        assert!(
            row.model < before.model,
            "t = {t}: no better than untrained\n{report}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
