//! `prism eval`: held-out denoising error against the best constant predictor, and bits/dim.

use anyhow::{Context, Result};
use prism::eval::{BpdOptions, bits_per_dim, denoise_mse};
use prism::train::load_model;

use crate::args::EvalArgs;

pub fn run(a: EvalArgs) -> Result<()> {
    let device = prism::default_device();
    let (mut cfg, model, step) = load_model(&a.checkpoint, &device)
        .with_context(|| format!("loading the model '{}'", a.checkpoint.display()))?;
    if let Some(p) = a.data {
        cfg.data.path = p;
    }
    let data = cfg.data.load()?;
    let (train_set, held_out) = data.split(cfg.data.held_out);
    let process = cfg.process.build()?;
    let n = a.num.min(held_out.len());
    eprintln!(
        "prism eval: {} (step {step}) on {n} held-out images, seed {}",
        a.checkpoint.display(),
        a.seed
    );
    let times = [0.1, 0.25, 0.5, 0.75, 0.9];
    let mse = denoise_mse(
        &model,
        &process,
        &held_out,
        &train_set.mean_image(),
        &times,
        n,
        a.seed,
        &device,
    );
    println!(
        "{:>6}  {:>10}  {:>14}  {:>8}",
        "t", "MSE(x̂)", "MSE(constant)", "ratio"
    );
    for r in &mse {
        println!(
            "{:>6.2}  {:>10.5}  {:>14.5}  {:>8.3}",
            r.t,
            r.model,
            r.constant,
            r.model / r.constant
        );
    }
    let bar = super::progress(1, "bits/dim");
    let opts = BpdOptions {
        images: n,
        draws: a.draws,
        logsnr_max: Some(a.logsnr_max),
        seed: a.seed,
    };
    let b = bits_per_dim(&model, &process, &held_out, opts, &device);
    bar.finish_and_clear();
    println!(
        "bits/dim: {:.4} ± {:.4} (n = {}, {} draws, decoder at logSNR {}; prior {:.4}, reconstruction {:.4}, diffusion {:.4})",
        b.bpd, b.stderr, b.images, a.draws, a.logsnr_max, b.prior, b.reconstruction, b.diffusion
    );
    if let Some(path) = a.json {
        let rows: Vec<_> = mse
            .iter()
            .map(
                |r| serde_json::json!({"t": r.t, "mse_model": r.model, "mse_constant": r.constant}),
            )
            .collect();
        let json = serde_json::json!({
            "checkpoint": a.checkpoint, "step": step, "num": n, "seed": a.seed, "draws": a.draws, "logsnr_max": a.logsnr_max,
            "prism_version": env!("CARGO_PKG_VERSION"),
            "denoise_mse": rows,
            "bits_per_dim": {"mean": b.bpd, "stderr": b.stderr, "prior": b.prior,
                             "reconstruction": b.reconstruction, "diffusion": b.diffusion},
        });
        prism::fsutil::write_atomic(&path, serde_json::to_string_pretty(&json)?.as_bytes())?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
