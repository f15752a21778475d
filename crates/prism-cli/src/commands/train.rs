//! `prism train`: a diffusion model, or (for a config with an `[autoencoder]` table) the first-stage
//! autoencoder of latent diffusion.

use std::path::PathBuf;
use std::sync::atomic::Ordering;

use anyhow::{Context, Result};
use prism::config::ExperimentConfig;
use prism::run::autoencoder::{AeConfig, train_autoencoder};
use prism::run::{TrainOptions, train_with};
use prism::train::{Collective, Single};

use crate::args::TrainArgs;

/// The run directory (from `--resume`, `--out` or the config's name) and the training options,
/// with the Ctrl-C / SIGTERM handler installed; refuses to overwrite a run unless asked. Only the
/// `writer` (rank 0 of a data-parallel run) shows progress and messages.
fn prepare(a: &TrainArgs, writer: bool) -> Result<(String, PathBuf, TrainOptions)> {
    let stem = a
        .config
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("run")
        .to_string();
    let run_dir = match (&a.resume, &a.out) {
        (Some(dir), Some(out)) if dir != out => anyhow::bail!(
            "--resume {} and --out {} name different directories; a run resumes in its own \
             directory (drop --out)",
            dir.display(),
            out.display()
        ),
        (Some(dir), _) => dir.clone(),
        (None, Some(dir)) => dir.clone(),
        (None, None) => PathBuf::from("runs").join(&stem),
    };
    if a.resume.is_none() && !a.overwrite {
        let existing: Vec<&str> = [prism::train::STATE_FILE, prism::run::MODEL_FILE]
            .into_iter()
            .filter(|f| run_dir.join(f).exists())
            .collect();
        anyhow::ensure!(
            existing.is_empty(),
            "'{}' already holds a run ({}); continue it with --resume {0}, start it over with \
             --overwrite, or choose another --out",
            run_dir.display(),
            existing.join(", ")
        );
    }
    let mut opts = TrainOptions::new(&run_dir);
    opts.resume = a.resume.is_some();
    opts.progress = !a.quiet && writer;
    opts.pictures = !a.no_pictures;
    let stop = opts.stop.clone();
    // Ctrl-C (SIGINT), SIGTERM and SIGHUP (the `termination` feature of ctrlc) all stop after
    // the current step and save; a second one exits at once with 130.
    ctrlc::set_handler(move || {
        if stop.swap(true, Ordering::SeqCst) {
            std::process::exit(130); // second Ctrl-C: leave now
        }
        if writer {
            eprintln!(
                "\nstopping after this step and saving (Ctrl-C or SIGTERM again to quit at once)…"
            );
        }
    })
    .context("installing the Ctrl-C and SIGTERM handler")?;
    Ok((stem, run_dir, opts))
}

/// The error of an interrupted run, after printing how to resume it.
fn interrupted(a: &TrainArgs, step: u64, run_dir: &std::path::Path) -> anyhow::Error {
    eprintln!(
        "interrupted at step {step}; resume with: prism train --config {} --resume {}",
        a.config.display(),
        run_dir.display()
    );
    prism::Error::Interrupted {
        step,
        path: run_dir.join("train_state.safetensors"),
    }
    .into()
}

fn run_autoencoder(a: TrainArgs, collective: &dyn Collective) -> Result<()> {
    anyhow::ensure!(
        collective.size() == 1,
        "data-parallel training of an autoencoder is not supported yet: run it as one process"
    );
    let mut cfg = AeConfig::load(&a.config)?;
    if let Some(data) = a.data.clone() {
        cfg.data.path = data;
    }
    if let Some(steps) = a.steps {
        anyhow::ensure!(steps > 0, "--steps must be positive");
        cfg.train.steps = steps;
    }
    let (stem, run_dir, opts) = prepare(&a, true)?;
    let t = &cfg.train;
    eprintln!(
        "prism train: autoencoder '{}' (f{}) → {} ({} steps, batch {}, seed {})",
        if cfg.name.is_empty() {
            &stem
        } else {
            &cfg.name
        },
        cfg.autoencoder.factor(),
        run_dir.display(),
        t.steps,
        t.batch_size,
        t.seed
    );
    let out = train_autoencoder(&cfg, &opts)
        .with_context(|| format!("training '{}'", a.config.display()))?;
    if out.interrupted {
        return Err(interrupted(&a, out.step, &run_dir));
    }
    eprintln!(
        "done: {} steps in {:.0} s, final loss {:.4}\n  model   {}\n  grid    {}\n  metrics {}",
        out.step,
        out.seconds,
        out.last_loss,
        run_dir.join("model.safetensors").display(),
        run_dir.join("reconstructions.png").display(),
        run_dir.join("metrics.jsonl").display(),
    );
    Ok(())
}

pub fn run(a: TrainArgs) -> Result<()> {
    // Data-parallel training: under `mpirun -np R` every rank trains its shard of each batch.
    #[cfg(feature = "mpi")]
    let mpi = prism::train::Mpi::from_env()?;
    #[cfg(feature = "mpi")]
    let collective: &dyn Collective = match &mpi {
        Some(m) => m,
        None => &Single,
    };
    #[cfg(not(feature = "mpi"))]
    let collective: &dyn Collective = match prism::train::launched_ranks() {
        Some(r) if r > 1 => anyhow::bail!(
            "started by mpirun as one of {r} processes, but this prism was built without the \
             `mpi` feature (each process would train alone); build it with \
             `cargo build --release -p prism-cli --features mpi`"
        ),
        _ => &Single,
    };
    let writer = collective.rank() == 0;
    let text =
        std::fs::read_to_string(&a.config).map_err(|e| prism::Error::io("read", &a.config, e))?;
    if AeConfig::is_autoencoder_toml(&text) {
        return run_autoencoder(a, collective);
    }
    let mut cfg = ExperimentConfig::from_toml(&text, Some(&a.config))?;
    if let Some(data) = a.data.clone() {
        cfg.data.path = data;
    }
    if let Some(steps) = a.steps {
        anyhow::ensure!(steps > 0, "--steps must be positive");
        cfg.train.steps = steps;
    }
    let (stem, run_dir, opts) = prepare(&a, writer)?;
    if !writer {
        let out = train_with(&cfg, &opts, collective)?;
        if out.interrupted {
            return Err(prism::Error::Interrupted {
                step: out.step,
                path: run_dir.join("train_state.safetensors"),
            }
            .into());
        }
        return Ok(());
    }
    let ranks = match collective.size() {
        1 => String::new(),
        r => format!(
            ", {r} processes of batch {}",
            cfg.train.batch_size / r.max(1)
        ),
    };
    eprintln!(
        "prism train: '{}' → {} ({} steps, batch {}{ranks}, seed {})",
        if cfg.name.is_empty() {
            &stem
        } else {
            &cfg.name
        },
        run_dir.display(),
        cfg.train.steps,
        cfg.train.batch_size,
        cfg.train.seed
    );
    for advice in cfg.model.advice() {
        eprintln!("warning: {advice}");
    }
    let out = train_with(&cfg, &opts, collective)
        .with_context(|| format!("training '{}'", a.config.display()))?;
    let model = run_dir.join("model.safetensors");
    if out.interrupted {
        return Err(interrupted(&a, out.step, &run_dir));
    }
    let samples = if a.no_pictures {
        "none (--no-pictures)".to_string()
    } else {
        run_dir.join("samples.png").display().to_string()
    };
    eprintln!(
        "done: {} steps in {:.0} s, final loss {:.4}\n  model   {}\n  samples {samples}\n  metrics {}",
        out.step,
        out.seconds,
        out.last_loss,
        model.display(),
        run_dir.join("metrics.jsonl").display(),
    );
    Ok(())
}
