//! `prism bench`: time a config's training step and sampling step and report peak memory.
//!
//! The training step is the trainer's: forward process, network, the config's objective
//! (multiscale loss included), backward, AdamW with the config's gradient clipping, EMA update.
//! Its images are random (uniform in `[-1, 1]`), so no data is read: decoding is not timed.
//! The sampling step is one step of `prism::sample::generate` with the config's sampler.
//! Sampling runs first, so the peak resident memory read after it (Linux `VmHWM` of
//! `/proc/self/status`) is the sampling peak; the peak is then reset (`/proc/self/clear_refs`) and
//! read again after training.

use std::time::Instant;

use anyhow::{Context, Result};
use burn::module::Module;
use burn::tensor::{Distribution, Tensor};
use prism::config::ExperimentConfig;
use prism::run::batch_loss;
use prism::tensor::scalar;
use prism::train::{AdamW, ema_update, step_rng};

use crate::args::BenchArgs;

/// Peak resident memory of this process in bytes (`VmHWM`), where the OS reports it (Linux).
fn peak_resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Resets the peak to the current resident size (Linux ≥ 4.0); whether it worked.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn gib(bytes: Option<u64>) -> String {
    bytes.map_or("unknown (no /proc/self/status)".into(), |b| {
        format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64)
    })
}

/// Minimum and mean of `times` (seconds), `(NaN, NaN)` when empty.
fn min_mean(times: &[f64]) -> (f64, f64) {
    if times.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let min = times.iter().copied().fold(f64::INFINITY, f64::min);
    (min, times.iter().sum::<f64>() / times.len() as f64)
}

pub fn run(a: BenchArgs) -> Result<()> {
    anyhow::ensure!(a.train_steps > 0, "--train-steps must be positive");
    anyhow::ensure!(a.sample_steps > 0, "--sample-steps must be positive");
    anyhow::ensure!(a.sample_batch > 0, "--sample-batch must be positive");
    let mut cfg = ExperimentConfig::load(&a.config)?;
    // A latent space's scale is measured when training starts; its value does not change the
    // time of a step.
    if let prism::space::SpaceConfig::Latent(l) = &mut cfg.space {
        l.scale.get_or_insert(1.0);
    }
    cfg.validate()?;
    let batch = a.batch.unwrap_or(cfg.train.batch_size);
    anyhow::ensure!(batch > 0, "--batch must be positive");
    let [c, s] = [cfg.data.channels, cfg.data.image_size];
    let process = cfg.process.build()?;
    let classes = cfg.model.num_classes();
    println!(
        "prism bench: {} ({}×{s}², {} threads available)",
        a.config.display(),
        c,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    // Sampling, without autodiff.
    let device = prism::default_device();
    device.seed(a.seed);
    let model = cfg.init_model(&device)?;
    println!("parameters: {}", model.num_params());
    let n = a.sample_batch;
    // A super-resolution stage samples given its low-resolution input, an inpainting model given
    // a masked image and a mask: from random images here.
    let input = cfg.model_input()?;
    let state = input.space().shape([n, c, s, s]);
    let (_, prepared) = input.prepare_for_sampling(
        Tensor::<4>::random([n, c, s, s], Distribution::Uniform(-1.0, 1.0), &device),
        prism::nn::Condition::none(),
        &mut step_rng(a.seed, 0, 1),
    )?;
    let request = prism::sample::Generate {
        kind: cfg.sample.sampler,
        steps: a.sample_steps,
        spacing: prism::sample::Spacing::default(),
        shape: state,
        cond: prism::nn::Condition {
            image: prepared.image,
            image_noise: prepared.image_noise,
            ..prism::nn::Condition::cycling_labels(n, classes, &device)
        },
        guidance: cfg.sample.guidance,
        guidance_interval: cfg.sample.guidance_interval,
        clip_x0: cfg.sample.clip_x0,
        seed: a.seed,
    };
    let mut marks = vec![Instant::now()];
    let started = Instant::now();
    let images =
        prism::sample::generate(&model, process.as_ref(), &request, &device, &mut |_, _| {
            marks.push(Instant::now())
        })
        .context("sampling")?;
    let _ = scalar(images.sum()); // wait for the result
    let total = started.elapsed().as_secs_f64();
    let steps: Vec<f64> = marks
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64())
        .collect();
    let (min, _) = min_mean(&steps);
    println!(
        "sampling ({}, batch {n}, {} steps): {:.3} s per step (total / steps), fastest step {:.3} s; peak resident {}",
        cfg.sample.sampler,
        a.sample_steps,
        total / a.sample_steps as f64,
        min,
        gib(peak_resident_bytes())
    );
    drop(model);

    // Training.
    let reset = reset_peak();
    let device = device.autodiff();
    let mut model = cfg.init_model(&device)?;
    let mut ema = model.valid();
    let mut opt = AdamW::new(cfg.train.adamw.clone());
    let mut times = Vec::with_capacity(a.train_steps);
    for step in 0..a.train_steps as u64 {
        let started = Instant::now();
        let mut rng = step_rng(a.seed, step, 0);
        let x0 = Tensor::<4>::random([batch, c, s, s], Distribution::Uniform(-1.0, 1.0), &device);
        let labels = prism::nn::Condition::cycling_labels(batch, classes, &device).label;
        let (x0, cond) = input.prepare(x0, prism::nn::Condition::labels(labels), &mut rng)?;
        let loss = batch_loss(
            &cfg,
            process.as_ref(),
            &model,
            x0,
            &cond,
            &mut rng,
            0..batch,
        )?;
        let grads = loss.backward();
        let loss = scalar(loss);
        let (m, _) = opt.update(model, &grads, cfg.train.lr, cfg.train.grad_clip);
        model = m;
        ema = ema_update(ema, &model, cfg.train.ema_decay);
        let secs = started.elapsed().as_secs_f64();
        println!("  train step {}: {secs:.3} s (loss {loss:.4})", step + 1);
        times.push(secs);
    }
    let (min, mean) = min_mean(&times[1.min(times.len() - 1)..]);
    println!(
        "training (batch {batch}, {} steps; first step {:.3} s): {min:.3} s per step fastest, {mean:.3} s mean after the first, {:.2} img/s; peak resident {}{}",
        a.train_steps,
        times[0],
        batch as f64 / min,
        gib(peak_resident_bytes()),
        if reset {
            ""
        } else {
            " (could not reset the peak: it includes sampling)"
        }
    );
    Ok(())
}
