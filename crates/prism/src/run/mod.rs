//! Diffusion training runs from an [`ExperimentConfig`]: the layer above `config` that turns a
//! config into a data set, a process and a model, and runs the diffusion method (its step is
//! [`batch_loss`] with label dropout) on the generic [`crate::train::Trainer`]. Also the
//! inference file of a run and what reads it back.
//!
//! A run directory holds:
//! - `model.safetensors` — the inference file: EMA weights under their bare parameter paths;
//!   metadata `format = prism-model`, `prism_version`, `config` (the full experiment config as
//!   JSON), `step`, `seed`. Enough for `prism sample`.
//! - `train_state.safetensors` — the trainer's state for an exact resume, with the one module
//!   `model` (`model.*`, `ema.model.*`, `adam_m.model.*`, `adam_v.model.*`) and the config in
//!   its metadata;
//! - `metrics.jsonl` (`loss`, `grad_norm`, `lr.model`, `images_per_s`), `config.toml`,
//!   `loss.png` and sample grids.

mod diffusion;
mod step;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use burn::module::Module;
use burn::tensor::Device;

pub use step::batch_loss;

use self::diffusion::Diffusion;
use crate::config::ExperimentConfig;
use crate::data::Dataset;
use crate::denoiser::DiffusionModel;
use crate::io::{self, FORMAT_KEY, load_into};
use crate::nn::Condition;
use crate::process::DiffusionProcess;
use crate::train::{METRICS_FILE, Trainer, TrainerConfig};
use crate::{Error, Result};
use rand::SeedableRng;

/// The inference file inside a run directory.
pub const MODEL_FILE: &str = "model.safetensors";
/// The `format` metadata of an inference file.
pub const MODEL_FORMAT: &str = "prism-model";
/// The name of the diffusion model in the training state.
pub const MODEL_MODULE: &str = "model";

/// How to run a training job.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Where checkpoints, metrics and pictures go.
    pub run_dir: PathBuf,
    /// Continue from `run_dir/train_state.safetensors`.
    pub resume: bool,
    /// Show a progress bar.
    pub progress: bool,
    /// Set to stop after the current step, save and return.
    pub stop: Arc<AtomicBool>,
    /// Stop (and save) after this step even if the config asks for more.
    pub stop_after: Option<u64>,
    /// Write sample grids and the loss plot.
    pub pictures: bool,
}

impl TrainOptions {
    /// Defaults for `run_dir`: no resume, progress bar, pictures.
    pub fn new(run_dir: impl Into<PathBuf>) -> Self {
        Self {
            run_dir: run_dir.into(),
            resume: false,
            progress: true,
            stop: Arc::new(AtomicBool::new(false)),
            stop_after: None,
            pictures: true,
        }
    }
}

/// What a training job ended with.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    /// Steps completed.
    pub step: u64,
    /// Whether it stopped on request before the configured step count.
    pub interrupted: bool,
    /// Mean loss over the last logged window.
    pub last_loss: f64,
    /// Wall time of this process's training.
    pub seconds: f64,
}

/// The metadata of a file written for `cfg` at `step`: `format = kind`, `prism_version`,
/// `config` (JSON), `step`, `seed`.
fn metadata(cfg: &ExperimentConfig, kind: &str, step: u64) -> HashMap<String, String> {
    HashMap::from([
        (FORMAT_KEY.to_string(), kind.to_string()),
        (
            "prism_version".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        ),
        ("config".to_string(), config_json(cfg)),
        ("step".to_string(), step.to_string()),
        ("seed".to_string(), cfg.train.seed.to_string()),
    ])
}

fn config_json(cfg: &ExperimentConfig) -> String {
    serde_json::to_string(cfg).expect("config serialises")
}

/// The experiment config in a file's `config` metadata; errors name the file.
fn config_of(ck: &io::Loaded, path: &Path) -> Result<ExperimentConfig> {
    serde_json::from_str(ck.meta("config", path)?).map_err(|e| Error::Checkpoint {
        path: path.into(),
        reason: format!("config metadata does not parse: {e}"),
    })
}

/// Loads an inference checkpoint (`model.safetensors`): the config from its metadata and the
/// EMA weights, on `device`; and the step it was written at.
pub fn load_model(path: &Path, device: &Device) -> Result<(ExperimentConfig, DiffusionModel, u64)> {
    let ck = io::load(path)?;
    if ck.meta(FORMAT_KEY, path)? != MODEL_FORMAT {
        return Err(Error::Checkpoint {
            path: path.into(),
            reason: "not a prism model file (use the run's model.safetensors)".into(),
        });
    }
    let cfg = config_of(&ck, path)?;
    let step = ck.meta_u64("step", path)?;
    let model = load_into(cfg.model.init(device)?, &ck.tensors, path)?;
    Ok((cfg, model, step))
}

/// Writes a sample grid from the EMA model (fixed seed, labels cycling through the classes). A
/// super-resolution stage refines the first images of `data`, pooled to its input size.
pub fn write_grid(
    cfg: &ExperimentConfig,
    process: &dyn DiffusionProcess,
    ema: &DiffusionModel,
    data: &Dataset,
    path: &Path,
) -> Result<()> {
    let classes = ema.net.num_classes();
    let device = ema.devices().first().cloned().unwrap_or_default();
    let input = cfg.model_input()?;
    let n = if cfg.stage.is_base() {
        cfg.sample.num
    } else {
        cfg.sample.num.min(data.len())
    };
    let mut cond = Condition::cycling_labels(n, classes, &device);
    if !cfg.stage.is_base() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let idx: Vec<usize> = (0..n).collect();
        let images = data.try_batch(&idx, &mut rng, &device)?.images;
        let prepared = input.prepare_for_sampling(images, None, &mut rng)?.1;
        cond.image = prepared.image;
        cond.image_noise = prepared.image_noise;
    }
    let d = &cfg.data;
    let request = crate::sample::Generate {
        kind: cfg.sample.sampler,
        steps: cfg.sample.steps,
        shape: input
            .space()
            .shape([n, d.channels, d.image_size, d.image_size]),
        cond,
        guidance: cfg.sample.guidance,
        clip_x0: cfg.sample.clip_x0,
        seed: cfg.train.seed ^ 0x5eed,
    };
    let z = crate::sample::generate(ema, process, &request, &device, &mut |_, _| {})?;
    let images = input.space().decode(z)?;
    let cols = if classes > 0 {
        classes
    } else {
        (n as f64).sqrt().ceil() as usize
    };
    crate::image::save_png(&crate::image::grid(images, cols)?, path)
}

/// Plots the `loss` of `dir/metrics.jsonl` into `dir/loss.png` (nothing with fewer than two
/// lines).
fn write_loss_plot(dir: &Path) -> Result<()> {
    let lines = crate::train::read_metrics(&dir.join(METRICS_FILE))?;
    if lines.len() < 2 {
        return Ok(());
    }
    let series = crate::plot::Series {
        label: "training loss".into(),
        points: lines.iter().map(|l| (l.step as f64, l.loss())).collect(),
    };
    crate::plot::line_plot(
        &dir.join("loss.png"),
        "training loss",
        "step",
        "loss",
        &[series],
        false,
    )
}

/// The backend seed for weight initialisation (separate from the per-step streams).
fn init_seed(seed: u64) -> u64 {
    seed ^ 0xA5A5_5A5A_0F0F_F0F0
}

/// Runs (or resumes) the training job `cfg` in `opts.run_dir`.
pub fn train(cfg: &ExperimentConfig, opts: &TrainOptions) -> Result<TrainOutcome> {
    cfg.validate()?;
    let dir = &opts.run_dir;
    let data = cfg.data.load()?;
    let (train_set, _held_out) = data.split(cfg.data.held_out);
    let classes = cfg.model.num_classes();
    let key = cfg.model.net.key();
    if classes > 0 && train_set.num_classes() == 0 {
        return Err(Error::config(format!(
            "{key}.num_classes = {classes} but the data at '{}' has no labels",
            cfg.data.path.display()
        )));
    }
    if classes > 0 && train_set.num_classes() > classes {
        return Err(Error::config(format!(
            "the data has {} classes but {key}.num_classes = {classes}",
            train_set.num_classes()
        )));
    }
    let process = cfg.process.build()?;
    let device = crate::default_device().autodiff();

    let t = &cfg.train;
    let mut tc = TrainerConfig::new(t.steps, t.seed);
    tc.log_every = t.log_every;
    tc.checkpoint_every = t.checkpoint_every;
    tc.run_dir = Some(dir.clone());
    tc.resume = opts.resume;
    tc.progress = opts.progress;
    tc.stop = opts.stop.clone();
    tc.stop_after = opts.stop_after;
    tc.metadata = HashMap::from([("config".to_string(), config_json(cfg))]);
    tc.throughput = Some(("images".into(), t.batch_size));
    tc.max_bad_steps = t.max_bad_steps;
    let mut trainer = Trainer::new(tc);
    // Fresh weights from the seeded backend generator (overwritten by a resume).
    device.seed(init_seed(t.seed));
    let model = trainer.add(MODEL_MODULE, cfg.model.init(&device)?, t.module_spec())?;

    let mut method = Diffusion {
        cfg,
        process,
        input: cfg.model_input()?,
        train_set,
        classes,
        model,
        device,
        dir: dir.clone(),
        pictures: opts.pictures,
    };
    let out = trainer.run(&mut method)?;
    if opts.pictures && !out.interrupted {
        let ema = trainer.modules().ema(&model).expect("the model has an EMA");
        write_grid(
            cfg,
            method.process.as_ref(),
            ema,
            &method.train_set,
            &dir.join("samples.png"),
        )?;
        write_loss_plot(dir)?;
    }
    Ok(TrainOutcome {
        step: out.step,
        interrupted: out.interrupted,
        last_loss: out.last.get("loss").copied().unwrap_or(f64::NAN),
        seconds: out.seconds,
    })
}
