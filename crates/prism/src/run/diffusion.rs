//! The diffusion method as a step function of the generic trainer: data → label dropout →
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
use crate::process::Process;
use crate::tensor::scalar;
use crate::train::{Handle, Method, Metrics, Modules, Step};
use crate::{Error, Result};

/// The diffusion training job: what its step needs.
pub(super) struct Diffusion<'a> {
    pub(super) cfg: &'a ExperimentConfig,
    pub(super) process: Process,
    pub(super) input: ModelInput,
    pub(super) train_set: Dataset,
    pub(super) classes: usize,
    pub(super) model: Handle<DiffusionModel>,
    pub(super) device: Device,
    pub(super) dir: PathBuf,
    pub(super) pictures: bool,
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

    fn ema<'m>(&self, modules: &'m Modules) -> &'m DiffusionModel {
        modules.ema(&self.model).expect("the model has an EMA")
    }
}

impl Method for Diffusion<'_> {
    fn step(&mut self, s: &mut Step<'_>) -> Result<Metrics> {
        let t = &self.cfg.train;
        let b = t.batch_size;
        let mut rng = s.rng(0);
        // 1. Data: the step's images, labels (some dropped to the null label) and flips.
        let indices = self.train_set.indices_at(t.seed, s.index() * b as u64, b);
        let batch = self.train_set.try_batch(&indices, &mut rng, &self.device)?;
        let labels = self.labels_with_dropout(batch.labels, &mut rng);
        let (x0, cond) = self.input.prepare(batch.images, labels, &mut rng)?;
        // 2. Times, noise, forward process, network, objective.
        let loss = batch_loss(
            self.cfg,
            self.process.as_ref(),
            s.module(&self.model),
            x0,
            &cond,
            &mut rng,
        )?;
        // 3. Update and average.
        let grads = loss.backward();
        let loss = s.finite(
            "the loss",
            scalar(loss),
            "lower train.lr or set train.grad_clip",
        )?;
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

    fn begin(&mut self, _modules: &Modules, _step: u64) -> Result<()> {
        crate::fsutil::write_atomic(&self.dir.join("config.toml"), self.cfg.to_toml().as_bytes())
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
