//! The training loop: data → `process.corrupt` → model → objective → AdamW → EMA, with a progress
//! bar, `metrics.jsonl`, sample grids, a loss plot and atomic checkpoints in the run directory.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use indicatif::{ProgressBar, ProgressStyle};
use rand::Rng;

use super::checkpoint::{self, FORMAT_KEY, check_matches};
use super::metrics::{self, MetricsLine};
use super::params::{host_params, host_to_flat, map_params};
use super::step::batch_loss;
use super::{AdamW, ema_decay, ema_update, step_rng};
use crate::config::ExperimentConfig;
use crate::denoiser::DiffusionModel;
use crate::nn::Condition;
use crate::process::DiffusionProcess;
use crate::tensor::scalar;
use crate::{Error, Result};

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

/// File names inside a run directory.
pub const MODEL_FILE: &str = "model.safetensors";
/// The training-state file.
pub const STATE_FILE: &str = "train_state.safetensors";

fn lr_at(cfg: &ExperimentConfig, step: u64) -> f64 {
    let t = &cfg.train;
    if t.warmup_steps > 0 && step < t.warmup_steps {
        t.lr * (step + 1) as f64 / t.warmup_steps as f64
    } else {
        t.lr
    }
}

fn metadata(cfg: &ExperimentConfig, kind: &str, step: u64) -> HashMap<String, String> {
    HashMap::from([
        (FORMAT_KEY.to_string(), kind.to_string()),
        (
            "prism_version".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        ),
        (
            "config".to_string(),
            serde_json::to_string(cfg).expect("config serialises"),
        ),
        ("step".to_string(), step.to_string()),
        ("seed".to_string(), cfg.train.seed.to_string()),
    ])
}

fn prefixed(
    prefix: &str,
    m: BTreeMap<String, super::HostTensor>,
) -> impl Iterator<Item = (String, super::HostTensor)> {
    m.into_iter()
        .map(move |(k, v)| (format!("{prefix}.{k}"), v))
}

/// Replaces the weights of `model` by the tensors of a checkpoint, checking names and shapes.
pub fn load_into<M: Module>(
    model: M,
    tensors: &BTreeMap<String, super::HostTensor>,
    path: &Path,
) -> Result<M> {
    check_matches(path, tensors, &host_params(&model))?;
    Ok(map_params(model, |name, like| {
        host_to_flat(&tensors[name], &like)
    }))
}

/// Loads an inference checkpoint (`model.safetensors`): the config from its metadata and the
/// EMA weights, on `device`.
pub fn load_model(path: &Path, device: &Device) -> Result<(ExperimentConfig, DiffusionModel, u64)> {
    let ck = checkpoint::load(path)?;
    if ck.meta(FORMAT_KEY, path)? != "prism-model" {
        return Err(Error::Checkpoint {
            path: path.into(),
            reason: "not a prism model file (use the run's model.safetensors)".into(),
        });
    }
    let cfg: ExperimentConfig =
        serde_json::from_str(ck.meta("config", path)?).map_err(|e| Error::Checkpoint {
            path: path.into(),
            reason: format!("config metadata does not parse: {e}"),
        })?;
    let step = ck.meta_u64("step", path)?;
    let model = load_into(cfg.model.init(device)?, &ck.tensors, path)?;
    Ok((cfg, model, step))
}

struct State {
    model: DiffusionModel,
    ema: DiffusionModel,
    opt: AdamW,
    step: u64,
}

fn save_all(cfg: &ExperimentConfig, dir: &Path, s: &State) -> Result<()> {
    let (opt_step, opt_state) = s.opt.state();
    let ema = host_params(&s.ema);
    let mut all: BTreeMap<String, super::HostTensor> =
        prefixed("model", host_params(&s.model)).collect();
    all.extend(prefixed("ema", ema.clone()));
    all.extend(opt_state);
    let mut meta = metadata(cfg, "prism-train-state", s.step);
    meta.insert("optimizer_step".into(), opt_step.to_string());
    meta.insert(
        "data_position".into(),
        (s.step * cfg.train.batch_size as u64).to_string(),
    );
    checkpoint::save(&dir.join(STATE_FILE), &all, meta)?;
    checkpoint::save(
        &dir.join(MODEL_FILE),
        &ema,
        metadata(cfg, "prism-model", s.step),
    )
}

fn restore(cfg: &ExperimentConfig, dir: &Path, device: &Device) -> Result<State> {
    let path = dir.join(STATE_FILE);
    let ck = checkpoint::load(&path)?;
    if ck.meta(FORMAT_KEY, &path)? != "prism-train-state" {
        return Err(Error::Checkpoint {
            path: path.clone(),
            reason: "not a prism training state".into(),
        });
    }
    let saved: ExperimentConfig =
        serde_json::from_str(ck.meta("config", &path)?).map_err(|e| Error::Checkpoint {
            path: path.clone(),
            reason: format!("config metadata does not parse: {e}"),
        })?;
    for (what, same) in [
        ("model", saved.model == cfg.model),
        ("process", saved.process == cfg.process),
        ("data", saved.data == cfg.data),
        ("objective", saved.objective == cfg.objective),
        (
            "train.batch_size",
            saved.train.batch_size == cfg.train.batch_size,
        ),
        ("train.seed", saved.train.seed == cfg.train.seed),
    ] {
        if !same {
            return Err(Error::Config {
                origin: Some(path.clone()),
                reason: format!(
                    "the [{what}] settings differ from the run being resumed; resume with the same config"
                ),
            });
        }
    }
    let step = ck.meta_u64("step", &path)?;
    let model = load_into(cfg.model.init(device)?, &ck.with_prefix("model"), &path)?;
    let ema = load_into(model.valid(), &ck.with_prefix("ema"), &path)?;
    let mut opt = AdamW::new(cfg.train.adamw.clone());
    let opt_tensors: BTreeMap<_, _> = ck
        .tensors
        .iter()
        .filter(|(k, _)| k.starts_with("adam_"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    opt.restore(
        ck.meta_u64("optimizer_step", &path)?,
        &opt_tensors,
        &device.clone().inner(),
    );
    Ok(State {
        model,
        ema,
        opt,
        step,
    })
}

/// Writes a sample grid from the EMA model (fixed seed, labels cycling through the classes).
pub fn write_grid(
    cfg: &ExperimentConfig,
    process: &dyn DiffusionProcess,
    ema: &DiffusionModel,
    path: &Path,
) -> Result<()> {
    let n = cfg.sample.num;
    let classes = ema.net.num_classes();
    let device = ema.devices().first().cloned().unwrap_or_default();
    let cond = Condition::cycling_labels(n, classes, &device);
    let shape = [
        n,
        cfg.data.channels,
        cfg.data.image_size,
        cfg.data.image_size,
    ];
    let request = crate::sample::Generate {
        kind: cfg.sample.sampler,
        steps: cfg.sample.steps,
        shape,
        cond,
        guidance: cfg.sample.guidance,
        clip_x0: cfg.sample.clip_x0,
        seed: cfg.train.seed ^ 0x5eed,
    };
    let images = crate::sample::generate(ema, process, &request, &device, &mut |_, _| {})?;
    let cols = if classes > 0 {
        classes
    } else {
        (n as f64).sqrt().ceil() as usize
    };
    crate::image::save_png(&crate::image::grid(images, cols)?, path)
}

fn write_loss_plot(dir: &Path) -> Result<()> {
    let lines = metrics::read_metrics(&dir.join("metrics.jsonl"))?;
    if lines.len() < 2 {
        return Ok(());
    }
    let series = crate::plot::Series {
        label: "training loss".into(),
        points: lines.iter().map(|l| (l.step as f64, l.loss)).collect(),
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
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
    let data = cfg.data.load()?;
    let (train_set, _held_out) = data.split(cfg.data.held_out);
    let classes = cfg.model.num_classes();
    let key = cfg.model.net()?.key();
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
    let metrics_path = dir.join("metrics.jsonl");

    let mut state = if opts.resume {
        let s = restore(cfg, dir, &device)?;
        metrics::truncate_after(&metrics_path, s.step)?;
        s
    } else {
        device.seed(init_seed(cfg.train.seed));
        let model = cfg.model.init(&device)?;
        let ema = model.valid();
        std::fs::remove_file(&metrics_path).ok();
        State {
            model,
            ema,
            opt: AdamW::new(cfg.train.adamw.clone()),
            step: 0,
        }
    };
    crate::fsutil::write_atomic(&dir.join("config.toml"), cfg.to_toml().as_bytes())?;

    let t = &cfg.train;
    let end = opts.stop_after.map_or(t.steps, |s| s.min(t.steps));
    let bar = if opts.progress {
        ProgressBar::new(t.steps)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg} ETA {eta}",
        )
        .expect("valid template"),
    );
    bar.set_position(state.step);

    let b = t.batch_size;
    let started = Instant::now();
    let mut window = (0.0, 0.0, 0u64, Instant::now()); // (loss sum, grad-norm sum, steps, since)
    let mut last_loss = f64::NAN;
    let mut interrupted = false;
    while state.step < end {
        if opts.stop.load(Ordering::SeqCst) {
            interrupted = true;
            break;
        }
        let step = state.step;
        let mut rng = step_rng(t.seed, step, 0);
        // 1. Data: the step's images, labels (some dropped to the null label) and flips.
        let indices = train_set.indices_at(t.seed, step * b as u64, b);
        let batch = train_set.try_batch(&indices, &mut rng, &device)?;
        let labels = batch.labels.filter(|_| classes > 0).map(|l| {
            let mut v: Vec<i64> = crate::tensor::to_vec_int(l);
            for x in v.iter_mut() {
                if rng.random_bool(t.cond_drop_prob) {
                    *x = classes as i64;
                }
            }
            Tensor::<1, Int>::from_data(TensorData::new(v, [b]), &device)
        });
        // 2. Times, noise, forward process, network, objective.
        let (x0, cond) = cfg.model_input()?.prepare(batch.images, labels)?;
        let loss = batch_loss(cfg, process.as_ref(), &state.model, x0, &cond, &mut rng)?;
        // 3. Update and average.
        let grads = loss.backward();
        let loss_value = scalar(loss);
        if !loss_value.is_finite() {
            save_all(cfg, dir, &state)?;
            return Err(Error::invalid(format!(
                "the loss became {loss_value} at step {}; the last good state is saved in '{}' (lower train.lr or set train.grad_clip)",
                step + 1,
                dir.display()
            )));
        }
        let lr = lr_at(cfg, step);
        let (model, grad_norm) = state.opt.update(state.model, &grads, lr, t.grad_clip);
        state.model = model;
        state.ema = ema_update(state.ema, &state.model, ema_decay(t.ema_decay, step));
        state.step += 1;

        // 4. Logging, pictures, checkpoints.
        window.0 += loss_value;
        window.1 += grad_norm;
        window.2 += 1;
        bar.set_position(state.step);
        let ips = window.2 as f64 * b as f64 / window.3.elapsed().as_secs_f64().max(1e-9);
        bar.set_message(format!(
            "loss {:.4} {:.1} img/s",
            window.0 / window.2 as f64,
            ips
        ));
        let done = state.step == end;
        if state.step % t.log_every.max(1) == 0 || done {
            last_loss = window.0 / window.2 as f64;
            metrics::append(
                &metrics_path,
                &MetricsLine {
                    step: state.step,
                    loss: last_loss,
                    lr,
                    grad_norm: window.1 / window.2 as f64,
                    images_per_s: ips,
                    elapsed_s: started.elapsed().as_secs_f64(),
                },
            )?;
            window = (0.0, 0.0, 0, Instant::now());
        }
        if !done && t.checkpoint_every > 0 && state.step % t.checkpoint_every == 0 {
            save_all(cfg, dir, &state)?;
        }
        if opts.pictures && !done && t.sample_every > 0 && state.step % t.sample_every == 0 {
            bar.suspend(|| -> Result<()> {
                write_grid(
                    cfg,
                    process.as_ref(),
                    &state.ema,
                    &dir.join(format!("samples/step_{:06}.png", state.step)),
                )?;
                write_loss_plot(dir)
            })?;
        }
    }
    bar.finish_and_clear();
    save_all(cfg, dir, &state)?;
    if opts.pictures && !interrupted {
        write_grid(cfg, process.as_ref(), &state.ema, &dir.join("samples.png"))?;
        write_loss_plot(dir)?;
    }
    Ok(TrainOutcome {
        step: state.step,
        interrupted,
        last_loss,
        seconds: started.elapsed().as_secs_f64(),
    })
}
