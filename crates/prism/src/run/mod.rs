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

pub mod autoencoder;
mod diffusion;
mod latent;
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
use crate::train::{Collective, METRICS_FILE, Single, Trainer, TrainerConfig};
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
    /// The device that trains ([`crate::default_device`] unless set).
    pub device: Device,
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
            device: crate::default_device(),
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
    let model = load_into(cfg.init_model(device)?, &ck.tensors, path)?;
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
    let device = ema
        .devices()
        .first()
        .cloned()
        .unwrap_or_else(crate::default_device);
    let input = cfg.model_input()?;
    // A stage with a spatial condition, or a model that reads the data's contexts, draws for the
    // first images of `data`.
    let from_data = !cfg.stage.is_base() || ema.reads_context();
    let n = if from_data {
        cfg.sample.num.min(data.len())
    } else {
        cfg.sample.num
    };
    let mut cond = Condition::cycling_labels(n, classes, &device);
    if from_data {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let idx: Vec<usize> = (0..n).collect();
        let batch = data.try_batch(&idx, &mut rng, &device)?;
        let prepared = input
            .prepare_for_sampling(batch.images, Condition::none(), &mut rng)?
            .1;
        cond.image = prepared.image;
        cond.image_noise = prepared.image_noise;
        cond.context = batch.context.filter(|_| ema.reads_context());
    }
    let d = &cfg.data;
    let request = crate::sample::Generate {
        kind: cfg.sample.sampler,
        steps: cfg.sample.steps,
        spacing: crate::sample::Spacing::default(),
        shape: input
            .space()
            .shape([n, d.channels, d.image_size, d.image_size]),
        cond,
        guidance: cfg.sample.guidance,
        guidance_interval: cfg.sample.guidance_interval,
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

/// Bytes the tensors of one training batch certainly take: the batch's images, times the eight
/// image-sized tensors every step holds at once (the clean batch, the noise, `z_t`, the network's
/// output, the target, and their gradients), in `f32`. The network's activations come on top,
/// so this is a lower bound: a batch that fails it cannot run.
pub fn batch_memory_floor(cfg: &ExperimentConfig) -> u128 {
    let d = &cfg.data;
    let image = (d.channels as u128) * (d.image_size as u128).pow(2);
    (cfg.train.batch_size as u128) * image * 8 * 4
}

/// Refuses a `train.batch_size` whose [`batch_memory_floor`] exceeds `available` bytes (the
/// memory the system says is available; no check where it cannot say), before anything is
/// allocated: otherwise the allocator aborts the process mid-step without a message.
pub fn check_batch_memory(cfg: &ExperimentConfig, available: Option<u64>) -> Result<()> {
    let need = batch_memory_floor(cfg);
    match available {
        Some(have) if need > u128::from(have) => Err(Error::config(format!(
            "train.batch_size = {} needs at least {:.1} GiB for its {}×{}² images alone, but \
             {:.1} GiB of memory is available; lower train.batch_size",
            cfg.train.batch_size,
            need as f64 / (1u64 << 30) as f64,
            cfg.data.channels,
            cfg.data.image_size,
            have as f64 / (1u64 << 30) as f64,
        ))),
        _ => Ok(()),
    }
}

/// The memory available to new allocations (Linux's `MemAvailable`), if the system says.
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// The backend seed for weight initialisation (separate from the per-step streams).
fn init_seed(seed: u64) -> u64 {
    seed ^ 0xA5A5_5A5A_0F0F_F0F0
}

/// Runs (or resumes) the training job `cfg` in `opts.run_dir`.
pub fn train(cfg: &ExperimentConfig, opts: &TrainOptions) -> Result<TrainOutcome> {
    train_with(cfg, opts, &Single)
}

/// [`train`] as one rank of a data-parallel job over `collective`: each rank computes the loss of
/// its shard of every global batch of `train.batch_size` (which the rank count must divide), the
/// gradients are averaged, and rank 0 alone writes the run directory. With `R` ranks the weights
/// equal one process's up to the order of floating-point sums (and the dropout masks, drawn per
/// shard); a run resumes from a checkpoint written with any number of ranks.
pub fn train_with(
    cfg: &ExperimentConfig,
    opts: &TrainOptions,
    collective: &dyn Collective,
) -> Result<TrainOutcome> {
    cfg.validate()?;
    collective.shard(cfg.train.batch_size)?;
    if collective.size() > 1 && cfg.model.networks == crate::denoiser::Networks::PerResolution {
        // A shard may hold no state of some resolution: that network would have no gradient
        // on one rank and one on another, and the ranks' gradients would not line up.
        return Err(Error::config(
            "model.networks = \"per_resolution\" does not train data-parallel yet (a rank's shard may hold no state of some resolution); train it in one process or use \"shared\"",
        ));
    }
    let writer = collective.rank() == 0;
    let dir = &opts.run_dir;
    check_batch_memory(cfg, available_memory())?;
    let data = cfg.data.load()?;
    // The labels of every split: the held-out images are what `prism eval` conditions on.
    let all_classes = data.num_classes();
    let (train_set, _held_out) = data.split(cfg.data.held_out);
    let classes = cfg.model.num_classes();
    let key = cfg.model.net.key();
    if classes > 0 && all_classes == 0 {
        return Err(Error::config(format!(
            "{key}.num_classes = {classes} but the data at '{}' has no labels",
            cfg.data.path.display()
        )));
    }
    if classes > 0 && all_classes > classes {
        return Err(Error::config(format!(
            "the data at '{}' has {all_classes} classes (training and held-out images together) \
             but {key}.num_classes = {classes}",
            cfg.data.path.display()
        )));
    }
    if let (Some(c), Some(d)) = (train_set.contexts(), cfg.model.net.core().context_dim())
        && c.dim() != d
    {
        return Err(Error::config(format!(
            "data.context has tokens of width {}, but {key}.cross_attention.context_dim = {d}",
            c.dim()
        )));
    }
    // A latent space: the autoencoder loaded, its latents cached, the scale measured; the run's
    // config records the autoencoder's hash and the scale.
    let (resolved, input, cache) = match cfg.space.latent() {
        Some(l) => {
            let run = latent::prepare(cfg, l, &train_set, writer)?;
            let input = crate::denoiser::ModelInput::with_space(Box::new(run.space), &cfg.stage);
            (Some(run.cfg), input, run.cache)
        }
        None => (None, cfg.model_input()?, None),
    };
    let cfg = resolved.as_ref().unwrap_or(cfg);
    let process = cfg.process.build()?;
    let device = opts.device.clone().autodiff();

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
    // Fresh weights (overwritten by a resume) from the seeded generator of the CPU backend, copied
    // to the training device: a seed starts from the same weights on every device. (Copied by
    // value: burn initialises parameters lazily, and moving an untouched module would move the
    // initialisation, random draws included, to the device.)
    let host = Device::flex().autodiff();
    host.seed(init_seed(t.seed));
    let mut init = cfg.init_model(&host)?;
    if device != host {
        let weights = io::host_params(&init);
        init = load_into(
            cfg.init_model(&device)?,
            &weights,
            Path::new("the initial weights"),
        )?;
    }
    let model = trainer.add(MODEL_MODULE, init, t.module_spec())?;

    let mut method = Diffusion {
        cfg,
        process,
        input,
        cache,
        train_set,
        classes,
        model,
        device,
        dir: dir.clone(),
        pictures: opts.pictures && writer,
        writer,
    };
    let out = trainer.run_with(&mut method, collective)?;
    if method.pictures && !out.interrupted {
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
