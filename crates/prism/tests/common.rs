//! Helpers shared by the integration tests. Each test file compiles this module on its own and
//! uses only some of it, hence `dead_code` is allowed.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use prism::config::ExperimentConfig;
use prism::io::Loaded;
use prism::nn::{NetConfig, UNetConfig};
use prism::run::TrainOptions;

/// The bundled Fashion-MNIST test split.
pub fn fashion_mnist() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/fashion-mnist/t10k-images-idx3-ubyte.gz")
}

/// A config from the shipped preset with a few fields replaced.
pub fn preset(name: &str) -> ExperimentConfig {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../configs")
        .join(name);
    let mut cfg = ExperimentConfig::load(&path).expect("preset parses");
    cfg.data.path = fashion_mnist();
    cfg
}

/// A preset shrunk for a quick training test: `limit` Fashion-MNIST images resized to 16×16, the
/// last `held_out` of them held out.
pub fn tiny_preset(name: &str, limit: usize, held_out: usize) -> ExperimentConfig {
    let mut cfg = preset(name);
    cfg.data.image_size = 16;
    cfg.data.fit = prism::data::Fit::Resize;
    cfg.data.limit = limit;
    cfg.data.held_out = held_out;
    cfg
}

/// The config's U-Net, to change it; panics for a U-ViT.
pub fn unet(cfg: &mut ExperimentConfig) -> &mut UNetConfig {
    match &mut cfg.model.net {
        NetConfig::UNet(u) => u,
        NetConfig::UViT(_) => panic!("a U-Net preset"),
    }
}

/// The preset's U-Net narrowed to two levels of 16 and 32 channels (4 groups, 16-channel heads)
/// with attention at `attention_levels`.
pub fn small_unet<'a>(
    cfg: &'a mut ExperimentConfig,
    attention_levels: &[usize],
) -> &'a mut UNetConfig {
    let unet = unet(cfg);
    unet.core.base_channels = 16;
    unet.core.channel_mults = vec![1, 2];
    unet.core.norm_groups = 4;
    unet.own.attention_levels = attention_levels.to_vec();
    unet.own.head_channels = 16;
    unet
}

/// A short run: `steps` steps of `batch_size`, no checkpoints or sample grids along the way.
pub fn short_run(cfg: &mut ExperimentConfig, batch_size: usize, steps: u64) {
    cfg.train.batch_size = batch_size;
    cfg.train.steps = steps;
    cfg.train.checkpoint_every = 0;
    cfg.train.sample_every = 0;
}

/// Training options for `dir` without progress bars or sample pictures.
pub fn quiet(dir: &Path) -> TrainOptions {
    let mut o = TrainOptions::new(dir);
    o.progress = false;
    o.pictures = false;
    o
}

/// burn's backend generator (weight init, dropout masks) is process-wide, so training runs in
/// one test binary take turns: hold this while training.
pub fn take_turn() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The loss of every line of a run's `metrics.jsonl`.
pub fn logged_losses(dir: &Path) -> Vec<f64> {
    read_metrics(dir).iter().map(|l| l.loss()).collect()
}

/// The step of every line of a run's `metrics.jsonl`.
pub fn logged_steps(dir: &Path) -> Vec<u64> {
    read_metrics(dir).iter().map(|l| l.step).collect()
}

fn read_metrics(dir: &Path) -> Vec<prism::train::MetricsLine> {
    prism::train::read_metrics(&dir.join("metrics.jsonl")).unwrap()
}

/// Loads the training state `file` of two runs and asserts that they hold the same tensors,
/// identical to the bit; returns both.
pub fn same_state(a: &Path, b: &Path, file: &str) -> (Loaded, Loaded) {
    let a = prism::io::load(&a.join(file)).unwrap();
    let b = prism::io::load(&b.join(file)).unwrap();
    assert_eq!(
        a.tensors.keys().collect::<Vec<_>>(),
        b.tensors.keys().collect::<Vec<_>>()
    );
    let differ: Vec<&String> = a
        .tensors
        .iter()
        .filter(|(k, t)| t.data != b.tensors[*k].data)
        .map(|(k, _)| k)
        .collect();
    assert!(
        differ.is_empty(),
        "{} of {} tensors differ after resume, e.g. {:?}",
        differ.len(),
        a.tensors.len(),
        &differ[..differ.len().min(8)]
    );
    (a, b)
}

/// A fresh temporary directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("prism-test-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The Fashion-MNIST images of the latent-diffusion learning tests: the first 3,300 of the test
/// split at 16² (resized), the last 300 held out.
pub const LDM_IMAGES: usize = 3300;
/// See [`LDM_IMAGES`].
pub const LDM_HELD_OUT: usize = 300;

/// The first stage of the latent-diffusion learning tests: a KL autoencoder (f = 2, 16/32
/// channels, 2 latent channels, no attention, L1 only) trained for 150 steps of 16 on the
/// training split of the [`LDM_IMAGES`] Fashion-MNIST images at 16² (latents 8×8×2). Trained once
/// per test binary, by the first test that asks, into a folder of the binary's own in cargo's
/// `CARGO_TARGET_TMPDIR` (emptied first, so one copy at most is left on disk); every later caller
/// gets the same run directory (its latent cache, `latents/` beside the model, is shared too).
/// Returns the run directory and the seconds it took to train (0 for every caller but the first).
/// Call it while holding [`take_turn`] (training runs one at a time).
pub fn fashion_autoencoder() -> (&'static Path, f64) {
    use prism::nn::autoencoder::{AutoencoderConfig, Regularizer};
    use prism::run::autoencoder::{AeConfig, AeTrainConfig, train_autoencoder};
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let mut seconds = 0.0;
    let dir = DIR.get_or_init(|| {
        let started = std::time::Instant::now();
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(concat!(env!("CARGO_CRATE_NAME"), "-fashion-ae"));
        std::fs::remove_dir_all(&dir).ok();
        let data = tiny_preset("fashion-mnist.toml", LDM_IMAGES, LDM_HELD_OUT).data;
        let cfg = AeConfig {
            name: "ldm-test-ae".into(),
            data,
            autoencoder: AutoencoderConfig {
                channels: 1,
                block_out_channels: vec![16, 32],
                layers_per_block: 1,
                latent_channels: 2,
                norm_groups: 4,
                mid_attention: false,
                regularizer: Regularizer::Kl,
            },
            loss: prism::objective::autoencoder::AeLossConfig {
                perceptual_weight: 0.0,
                gan: None,
                ..Default::default()
            },
            train: AeTrainConfig {
                steps: 150,
                batch_size: 16,
                lr: 2e-3,
                adamw: Default::default(),
                grad_clip: Some(1.0),
                seed: 1,
                log_every: 50,
                checkpoint_every: 0,
                sample_every: 0,
                max_bad_steps: 5,
            },
        };
        train_autoencoder(&cfg, &quiet(&dir)).unwrap();
        seconds = started.elapsed().as_secs_f64();
        dir
    });
    (dir.as_path(), seconds)
}
