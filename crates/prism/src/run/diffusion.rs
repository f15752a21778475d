//! The diffusion method as a step function of the generic trainer: data → label and context dropout →
//! [`batch_loss`] → AdamW and EMA of the one module `model`; the inference file after every
//! checkpoint, sample grids and the loss plot every `sample_every` steps.

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::Rng;

use super::{
    MODEL_FILE, MODEL_FORMAT, batch_loss, config_of, metadata, write_grid, write_loss_plot,
};
use crate::config::ExperimentConfig;
use crate::data::Dataset;
use crate::denoiser::{DiffusionModel, ModelInput};
use crate::io::{self, Loaded, host_params};
use crate::nn::Condition;
use crate::process::Process;
use crate::space::LatentCache;
use crate::tensor::scalar;
use crate::train::{Handle, Method, Metrics, Modules, Step};
use crate::{Error, Result};

/// The diffusion training job: what its step needs.
pub(super) struct Diffusion<'a> {
    pub(super) cfg: &'a ExperimentConfig,
    pub(super) process: Process,
    pub(super) input: ModelInput,
    /// The training images' latents, when a latent space caches them.
    pub(super) cache: Option<LatentCache>,
    pub(super) train_set: Dataset,
    pub(super) classes: usize,
    pub(super) model: Handle<DiffusionModel>,
    pub(super) device: Device,
    pub(super) dir: PathBuf,
    pub(super) pictures: bool,
    /// Whether this process writes files (rank 0 of a data-parallel run).
    pub(super) writer: bool,
}

impl Diffusion<'_> {
    /// The labels of the step: the batch's labels, each replaced by the null label
    /// (`classes`) with probability `train.cond_drop_prob` (classifier-free guidance training),
    /// drawn from `rng` in batch order; none for an unconditional model.
    fn labels_with_dropout(
        &self,
        labels: Option<Tensor<1, Int>>,
        rng: &mut impl Rng,
    ) -> Option<Tensor<1, Int>> {
        let (classes, b) = (self.classes, self.cfg.train.batch_size);
        labels.filter(|_| classes > 0).map(|l| {
            let mut v: Vec<i64> = crate::tensor::to_vec_int(l);
            for x in v.iter_mut() {
                if rng.random_bool(self.cfg.train.cond_drop_prob) {
                    *x = classes as i64;
                }
            }
            Tensor::<1, Int>::from_data(TensorData::new(v, [b]), &self.device)
        })
    }

    /// The batch's context sequences, each replaced by the null context (zeros, see
    /// [`crate::nn::ContextSource`]) with probability `train.cond_drop_prob`, drawn from `rng` in
    /// batch order; none when the data has none.
    fn context_with_dropout(
        &self,
        context: Option<Tensor<3>>,
        rng: &mut impl Rng,
    ) -> Option<Tensor<3>> {
        context.map(|c| {
            let [b, _, _] = c.dims();
            let keep: Vec<f32> = (0..b)
                .map(|_| f32::from(!rng.random_bool(self.cfg.train.cond_drop_prob)))
                .collect();
            c * Tensor::<1>::from_data(TensorData::new(keep, [b]), &self.device).reshape([b, 1, 1])
        })
    }

    fn ema<'m>(&self, modules: &'m Modules) -> &'m DiffusionModel {
        modules.ema(&self.model).expect("the model has an EMA")
    }
}

impl Method for Diffusion<'_> {
    fn step(&mut self, s: &mut Step<'_>) -> Result<Metrics> {
        let t = &self.cfg.train;
        let b = t.batch_size;
        let shard = s.collective().shard(b)?;
        let mut rng = s.rng(0);
        // 1. Data: the step's images, labels (some dropped to the null label) and flips, for the
        //    whole global batch (a data-parallel rank keeps its shard in `batch_loss`).
        let indices = self.train_set.indices_at(t.seed, s.index() * b as u64, b);
        let batch = self.train_set.try_batch(&indices, &mut rng, &self.device)?;
        let labels = self.labels_with_dropout(batch.labels, &mut rng);
        let context = self.context_with_dropout(batch.context, &mut rng);
        let cond = Condition {
            context,
            ..Condition::labels(labels)
        };
        let (x0, cond) = match (&self.cache, self.input.space().as_latent()) {
            // Cached latents (a base model): the latents of the batch's images as flipped.
            (Some(cache), Some(space)) => (
                cache.batch(&indices, &batch.flipped, &self.device)? * space.scale(),
                cond,
            ),
            _ => self.input.prepare(batch.images, cond, &mut rng)?,
        };
        // 2. Times, noise, forward process, network, objective.
        let loss = batch_loss(
            self.cfg,
            self.process.as_ref(),
            s.module(&self.model),
            x0,
            &cond,
            &mut rng,
            shard,
        )?;
        // 3. Update (gradients averaged over the ranks) and average.
        let grads = loss.backward();
        let loss = s.mean_over_ranks(scalar(loss))?;
        let loss = s.finite("the loss", loss, "lower train.lr or set train.grad_clip")?;
        let grad_norm = s.update(&self.model, &grads)?;
        Ok(Metrics::from([
            ("loss".to_string(), loss),
            ("grad_norm".to_string(), grad_norm),
        ]))
    }

    fn check_resume(&self, state: &Loaded, path: &Path) -> Result<()> {
        let saved = config_of(state, path)?;
        let cfg = self.cfg;
        for (what, same) in [
            ("model", saved.model == cfg.model),
            ("process", saved.process == cfg.process),
            ("space", saved.space == cfg.space),
            ("stage", saved.stage == cfg.stage),
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
        "lower train.lr or set train.grad_clip (train.max_bad_steps sets how many bad steps in a row stop a run)".into()
    }

    /// Writes `config.toml`; on a resume (`step > 0`), also checks that the model file belongs to
    /// the training state: each checkpoint writes the state, then the model, so a process killed
    /// between the two leaves the model one checkpoint behind. Such a model (or a missing or
    /// unreadable one) is rewritten from the state's EMA weights, with a note.
    fn begin(&mut self, modules: &Modules, step: u64) -> Result<()> {
        if !self.writer {
            return Ok(());
        }
        crate::fsutil::write_atomic(&self.dir.join("config.toml"), self.cfg.to_toml().as_bytes())?;
        if step == 0 {
            return Ok(());
        }
        let path = self.dir.join(MODEL_FILE);
        let model_step = io::load(&path)
            .and_then(|ck| ck.meta_u64("step", &path))
            .map_err(|e| e.to_string());
        if model_step == Ok(step) {
            return Ok(());
        }
        let was = match model_step {
            Ok(s) => format!("is at step {s}"),
            Err(e) => format!("cannot be used ({e})"),
        };
        eprintln!(
            "'{}' {was} but the training state is at step {step} (a save was interrupted between \
             the two files): rewriting it from the training state",
            path.display()
        );
        let dir = self.dir.clone();
        self.saved(modules, &dir, step)
    }

    fn saved(&mut self, modules: &Modules, dir: &Path, step: u64) -> Result<()> {
        io::save(
            &dir.join(MODEL_FILE),
            &host_params(self.ema(modules)),
            metadata(self.cfg, MODEL_FORMAT, step),
        )
    }

    fn after_step(&mut self, modules: &Modules, step: u64, done: bool) -> Result<()> {
        let every = self.cfg.train.sample_every;
        if !self.pictures || done || every == 0 || !step.is_multiple_of(every) {
            return Ok(());
        }
        write_grid(
            self.cfg,
            self.process.as_ref(),
            self.ema(modules),
            &self.train_set,
            &self.dir.join(format!("samples/step_{step:06}.png")),
        )?;
        write_loss_plot(&self.dir)
    }
}
