//! Autoencoder training runs (the first stage of latent diffusion, formula sheet §5) on the
//! generic trainer with two named modules: `autoencoder` (the network and the KL loss's learned
//! log-variance, [`AeTrainee`]) and `discriminator` (the PatchGAN), each with its own AdamW, both
//! in the training state for an exact resume.
//!
//! A run directory holds `model.safetensors` (the autoencoder's weights under diffusers-style
//! paths, metadata `format = prism-autoencoder` and the job's `config` JSON: what `prism
//! reconstruct` reads), `train_state.safetensors`, `metrics.jsonl` (`loss`, `nll`, `rec`, `kl` or
//! `vq_loss`/`codebook_usage`/`perplexity` (and `codes_restarted` with dead-code restarts), `g_loss`, `d_weight`, `d_loss`, `logits_real`,
//! `logits_fake`, `grad_norm`, `lr.*`, `images_per_s`), `config.toml` and reconstruction grids
//! of held-out images (inputs above reconstructions).

mod config;
mod step;

use std::collections::HashMap;
use std::path::Path;

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};
use rand::SeedableRng;

pub use self::config::{AeConfig, AeTrainConfig};
use self::step::AeStep;
pub use self::step::AeTrainee;
use super::{MODEL_FILE, TrainOptions, TrainOutcome};
use crate::data::Dataset;
use crate::io::{self, FORMAT_KEY, Loaded, host_params};
use crate::nn::autoencoder::{Autoencoder, AutoencoderFile};
use crate::train::{Method, Metrics, Modules, Step, Trainer, TrainerConfig};
use crate::{Error, Result};

pub use crate::nn::autoencoder::AUTOENCODER_FORMAT;
/// The autoencoder's module name in the training state.
pub const AUTOENCODER_MODULE: &str = "autoencoder";
/// The discriminator's module name in the training state.
pub const DISCRIMINATOR_MODULE: &str = "discriminator";

fn config_json(cfg: &AeConfig) -> String {
    serde_json::to_string(cfg).expect("config serialises")
}

/// Loads an autoencoder's inference file (a file, or a run directory holding `model.safetensors`,
/// or a diffusers VAE: see [`AutoencoderFile`]): its job config (`None` for a diffusers VAE), the
/// network on `device`, and the step it was written at.
pub fn load_autoencoder(
    path: &Path,
    device: &Device,
) -> Result<(Option<AeConfig>, Autoencoder, u64)> {
    let f = AutoencoderFile::load(path, device)?;
    let cfg = match &f.job_json {
        Some(json) => Some(serde_json::from_str(json).map_err(|e| Error::Checkpoint {
            path: f.path.clone(),
            reason: format!("config metadata does not parse: {e}"),
        })?),
        None => None,
    };
    Ok((cfg, f.autoencoder, f.step))
}

/// Reconstructions of `images` (`[B, C, H, W]` in `[-1, 1]`), in batches of `batch`, clipped to
/// `[-1, 1]`.
pub fn reconstruct_all(ae: &Autoencoder, images: Tensor<4>, batch: usize) -> Result<Tensor<4>> {
    let [n, _, _, _] = images.dims();
    let mut parts = Vec::new();
    for start in (0..n).step_by(batch.max(1)) {
        let len = batch.max(1).min(n - start);
        parts.push(
            ae.reconstruct(images.clone().narrow(0, start, len))?
                .clamp(-1.0, 1.0),
        );
    }
    Ok(Tensor::cat(parts, 0))
}

/// A grid with the first `n` images of `set` in the upper rows and their reconstructions below.
pub fn reconstruction_grid(
    ae: &Autoencoder,
    set: &Dataset,
    n: usize,
    device: &Device,
    path: &Path,
) -> Result<()> {
    let n = n.min(set.len());
    if n == 0 {
        return Err(Error::invalid("no images to reconstruct"));
    }
    let idx: Vec<usize> = (0..n).collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let x = set.try_batch(&idx, &mut rng, device)?.images;
    let x_hat = reconstruct_all(ae, x.clone(), 16)?;
    let cols = (n as f64).sqrt().ceil() as usize;
    let rows = n.div_ceil(cols);
    // Pad each half to whole rows so the reconstructions start on a new row.
    let pad = |t: Tensor<4>| {
        let [b, c, h, w] = t.dims();
        if b == rows * cols {
            t
        } else {
            Tensor::cat(
                vec![
                    t.clone(),
                    Tensor::ones([rows * cols - b, c, h, w], &t.device()),
                ],
                0,
            )
        }
    };
    let both = Tensor::cat(vec![pad(x), pad(x_hat)], 0);
    crate::image::save_png(&crate::image::grid(both, cols)?, path)
}

/// The mean absolute error `mean |x − x̂|` (pixels in `[-1, 1]`) of an autoencoder on `set`.
pub fn held_out_l1(ae: &Autoencoder, set: &Dataset, device: &Device) -> Result<f64> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let mut total = 0.0;
    for start in (0..set.len()).step_by(16) {
        let idx: Vec<usize> = (start..(start + 16).min(set.len())).collect();
        let x = set.try_batch(&idx, &mut rng, device)?.images;
        let x_hat = reconstruct_all(ae, x.clone(), 16)?;
        total += crate::tensor::scalar((x - x_hat).abs().sum());
    }
    let per_image = set.channels() * set.image_size() * set.image_size();
    Ok(total / (set.len() * per_image) as f64)
}

struct AeMethod<'a> {
    step: AeStep<'a>,
    held_out: Dataset,
    dir: std::path::PathBuf,
    pictures: bool,
}

impl AeMethod<'_> {
    fn metadata(&self, step: u64) -> HashMap<String, String> {
        let cfg = self.step.cfg;
        HashMap::from([
            (FORMAT_KEY.to_string(), AUTOENCODER_FORMAT.to_string()),
            (
                "prism_version".to_string(),
                env!("CARGO_PKG_VERSION").to_string(),
            ),
            ("config".to_string(), config_json(cfg)),
            ("step".to_string(), step.to_string()),
            ("seed".to_string(), cfg.train.seed.to_string()),
        ])
    }

    fn grid(&self, modules: &Modules, path: &Path) -> Result<()> {
        let ae = modules.get(&self.step.generator).ae.valid();
        let device = crate::default_device();
        reconstruction_grid(&ae, &self.held_out, 16, &device, path)
    }
}

impl Method for AeMethod<'_> {
    fn step(&mut self, s: &mut Step<'_>) -> Result<Metrics> {
        self.step.step_metrics(s)
    }

    fn check_resume(&self, state: &Loaded, path: &Path) -> Result<()> {
        let saved: AeConfig =
            serde_json::from_str(state.meta("config", path)?).map_err(|e| Error::Checkpoint {
                path: path.into(),
                reason: format!("config metadata does not parse: {e}"),
            })?;
        let cfg = self.step.cfg;
        for (what, same) in [
            ("autoencoder", saved.autoencoder == cfg.autoencoder),
            ("loss", saved.loss == cfg.loss),
            ("data", saved.data == cfg.data),
            (
                "train.batch_size",
                saved.train.batch_size == cfg.train.batch_size,
            ),
        ] {
            if !same {
                return Err(Error::Config {
                    origin: Some(path.into()),
                    reason: format!(
                        "the [{what}] settings differ from the run being resumed; resume with the same config"
                    ),
                });
            }
        }
        Ok(())
    }

    fn divergence_hint(&self) -> String {
        "lower train.lr or loss.gan.weight, or set train.grad_clip".into()
    }

    fn begin(&mut self, _modules: &Modules, _step: u64) -> Result<()> {
        crate::fsutil::write_atomic(
            &self.dir.join("config.toml"),
            self.step.cfg.to_toml().as_bytes(),
        )
    }

    fn saved(&mut self, modules: &Modules, dir: &Path, step: u64) -> Result<()> {
        let ae = &modules.get(&self.step.generator).ae;
        io::save(&dir.join(MODEL_FILE), &host_params(ae), self.metadata(step))
    }

    fn after_step(&mut self, modules: &Modules, step: u64, done: bool) -> Result<()> {
        let every = self.step.cfg.train.sample_every;
        if !self.pictures || !(done || (every > 0 && step.is_multiple_of(every))) {
            return Ok(());
        }
        let name = if done {
            "reconstructions.png".to_string()
        } else {
            format!("reconstructions/step_{step:06}.png")
        };
        self.grid(modules, &self.dir.join(name))
    }
}

/// Runs (or resumes) the autoencoder job `cfg` in `opts.run_dir`; `last_loss` is the last
/// logged `loss`.
pub fn train_autoencoder(cfg: &AeConfig, opts: &TrainOptions) -> Result<TrainOutcome> {
    cfg.validate()?;
    let dir = &opts.run_dir;
    let (train_set, held_out) = cfg.data.load()?.split(cfg.data.held_out);
    let device = crate::default_device().autodiff();
    let lpips = cfg
        .loss
        .load_lpips(&crate::default_device())?
        .map(|l| l.to_device(&device));

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
    tc.bar_metrics = vec!["loss".into(), "rec".into(), "d_loss".into()];
    let mut trainer = Trainer::new(tc);
    device.seed(t.seed ^ 0xA5A5_5A5A_0F0F_F0F0);
    let trainee = AeTrainee {
        ae: cfg.autoencoder.init(&device)?,
        logvar: Param::from_tensor(Tensor::full([1], cfg.loss.logvar_init, &device)),
    };
    let generator = trainer.add(AUTOENCODER_MODULE, trainee, t.module_spec(t.lr))?;
    let (disc_cfg, disc_lr) = match &cfg.loss.gan {
        Some(g) => (g.discriminator.clone(), g.lr.unwrap_or(t.lr)),
        None => (Default::default(), t.lr),
    };
    let discriminator = trainer.add(
        DISCRIMINATOR_MODULE,
        disc_cfg.init(cfg.autoencoder.channels, &device),
        t.module_spec(disc_lr),
    )?;
    let mut method = AeMethod {
        step: AeStep {
            cfg,
            train_set,
            lpips,
            generator,
            discriminator,
            device,
        },
        held_out,
        dir: dir.clone(),
        pictures: opts.pictures,
    };
    let out = trainer.run(&mut method)?;
    Ok(TrainOutcome {
        step: out.step,
        interrupted: out.interrupted,
        last_loss: out.last.get("loss").copied().unwrap_or(f64::NAN),
        seconds: out.seconds,
    })
}
