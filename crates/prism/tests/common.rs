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
