//! Training the feature classifier `nn::Classifier` (formula sheet §6) as a step function of the
//! generic [`Trainer`]: cross-entropy with AdamW (module `classifier`, gradient clip 1), linear
//! warm-up then cosine decay, random horizontal flips; test accuracy on a separate labelled set
//! at the end. Deterministic for a seed: the data order comes from `(seed, epoch)`, flips from
//! `(seed, step)` (stream 1), weights from the backend generator seeded once. Nothing but the
//! classifier file is written.

use std::path::PathBuf;
use std::time::Instant;

use burn::module::Module;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};

use super::{AdamWConfig, LrSchedule, Metrics, ModuleSpec, Step, Trainer, TrainerConfig, step_rng};
use crate::data::{DataConfig, Dataset};
use crate::nn::{Classifier, ClassifierConfig};
use crate::tensor::{scalar, to_vec_int};
use crate::{Error, Result};

/// A classifier training job.
#[derive(Debug, Clone)]
pub struct ClassifierTraining {
    /// Labelled training images (random flips are applied when `random_flip` is set); the last
    /// `held_out` images of the set are left out.
    pub train: DataConfig,
    /// Labelled test images; with `held_out > 0`, only the last `held_out` images of the set (so one
    /// file can give disjoint training and test parts).
    pub test: DataConfig,
    /// The network.
    pub config: ClassifierConfig,
    /// Passes over the training set.
    pub epochs: usize,
    /// Images per step.
    pub batch_size: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Warm-up steps.
    pub warmup_steps: u64,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// Seed of initialisation, order and flips.
    pub seed: u64,
    /// Where to write the classifier.
    pub out: PathBuf,
    /// The command line, recorded in the file's metadata.
    pub command: String,
    /// Show a progress bar.
    pub progress: bool,
}

/// What a classifier run reached.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClassifierReport {
    /// Fraction of test images classified correctly.
    pub test_accuracy: f64,
    /// Number of test images.
    pub test_images: usize,
    /// Number of training images.
    pub train_images: usize,
    /// Optimiser steps.
    pub steps: u64,
    /// Mean training loss over the last epoch.
    pub final_loss: f64,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Cross-entropy of `logits` `[B, K]` against `labels` `[B]`.
pub fn cross_entropy(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
    let b = labels.dims()[0];
    let logp = log_softmax(logits, 1);
    logp.gather(1, labels.reshape([b, 1])).mean().neg()
}

/// Fraction of `set` that `model` classifies correctly; an error if a lazily decoded file no
/// longer decodes.
pub fn accuracy(model: &Classifier, set: &Dataset, batch: usize) -> Result<f64> {
    let device = crate::default_device();
    let mut rng = step_rng(0, 0, 0);
    let mut correct = 0usize;
    let idx: Vec<usize> = (0..set.len()).collect();
    for chunk in idx.chunks(batch.max(1)) {
        let b = set.try_batch(chunk, &mut rng, &device)?;
        let pred = model.predict(b.images, chunk.len());
        let labels = b.labels.ok_or_else(|| {
            Error::invalid(
                "accuracy needs a labelled set (an IDX images file with its labels file)",
            )
        })?;
        let truth = to_vec_int(labels);
        correct += pred
            .iter()
            .zip(&truth)
            .filter(|&(&p, &t)| p as i64 == t)
            .count();
    }
    Ok(correct as f64 / set.len().max(1) as f64)
}

fn load_labelled(cfg: &DataConfig, what: &str, classes: usize) -> Result<Dataset> {
    let set = cfg.load()?;
    if set.labels().is_none() {
        return Err(Error::Data {
            path: cfg.path.clone(),
            reason: format!(
                "the {what} set has no labels (an IDX images file needs its labels file beside it)"
            ),
        });
    }
    if set.num_classes() > classes {
        return Err(Error::Data {
            path: cfg.path.clone(),
            reason: format!(
                "the {what} set has {} classes, the classifier {classes}",
                set.num_classes()
            ),
        });
    }
    Ok(set)
}

/// Trains the classifier, writes it to `job.out` with its test accuracy in the metadata.
pub fn train_classifier(job: &ClassifierTraining) -> Result<ClassifierReport> {
    job.config.validate()?;
    if job.epochs == 0 {
        return Err(Error::config("the classifier needs at least 1 epoch"));
    }
    let classes = job.config.num_classes;
    let train = load_labelled(&job.train, "training", classes)?
        .split(job.train.held_out)
        .0;
    let test = load_labelled(&job.test, "test", classes)?;
    let test = match job.test.held_out {
        0 => test,
        n => test.split(n).1,
    };
    if train.is_empty() || test.is_empty() {
        return Err(Error::config(
            "the classifier's training or test set is empty (check held_out)",
        ));
    }
    if train.channels() != job.config.channels || train.image_size() != job.config.image_size {
        return Err(Error::config(format!(
            "the data gives {}×{} px × {} channels, the classifier takes {} px × {}",
            train.image_size(),
            train.image_size(),
            train.channels(),
            job.config.image_size,
            job.config.channels
        )));
    }
    let b = job.batch_size.max(1);
    let per_epoch = train.len().div_ceil(b) as u64;
    let total = per_epoch * job.epochs as u64;
    let device = crate::default_device().autodiff();
    device.seed(job.seed ^ 0x5EED_C1A5);
    let mut cfg = TrainerConfig::new(total, job.seed);
    cfg.progress = job.progress;
    cfg.log_every = per_epoch.max(1);
    cfg.throughput = Some(("images".into(), b));
    let mut trainer = Trainer::new(cfg);
    let net = trainer.add(
        "classifier",
        job.config.init(&device)?,
        ModuleSpec {
            adamw: AdamWConfig {
                weight_decay: job.weight_decay,
                ..AdamWConfig::default()
            },
            lr: LrSchedule::WarmupCosine {
                peak: job.lr,
                warmup: job.warmup_steps,
                total,
            },
            grad_clip: Some(1.0),
            ema_decay: None,
        },
    )?;
    let start = Instant::now();
    let (mut epoch_loss, mut epoch_steps) = (0.0, 0u64);
    let mut final_loss = f64::NAN;
    trainer.run(&mut |s: &mut Step<'_>| -> Result<Metrics> {
        let step = s.index();
        let mut rng = s.rng(1);
        let indices = train.indices_at(job.seed, step * b as u64, b);
        let batch = train.try_batch(&indices, &mut rng, &device)?;
        let labels = batch.labels.expect("checked labelled");
        let loss = cross_entropy(s.module(&net).logits(batch.images), labels);
        let grads = loss.backward();
        let value = s.finite("the classifier loss", scalar(loss), "lower --lr")?;
        s.update(&net, &grads)?;
        epoch_loss += value;
        epoch_steps += 1;
        if (step + 1).is_multiple_of(per_epoch) {
            final_loss = epoch_loss / epoch_steps as f64;
            (epoch_loss, epoch_steps) = (0.0, 0);
        }
        Ok(Metrics::from([("loss".to_string(), value)]))
    })?;
    let model = trainer.modules().get(&net).valid();
    let acc = accuracy(&model, &test, 256)?;
    let report = ClassifierReport {
        test_accuracy: acc,
        test_images: test.len(),
        train_images: train.len(),
        steps: total,
        final_loss,
        seconds: start.elapsed().as_secs_f64(),
    };
    model.save(
        &job.out,
        &[
            ("test_accuracy", format!("{acc:.4}")),
            ("test_images", test.len().to_string()),
            ("train_images", train.len().to_string()),
            ("train_data", job.train.path.display().to_string()),
            ("test_data", job.test.path.display().to_string()),
            ("epochs", job.epochs.to_string()),
            ("seed", job.seed.to_string()),
            ("command", job.command.clone()),
        ],
    )?;

    Ok(report)
}
