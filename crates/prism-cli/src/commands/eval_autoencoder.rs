//! `prism eval --checkpoint AE`: an autoencoder's reconstructions of its held-out images (or of
//! `--data`), scored as the LDM paper scores its first stages (Rombach et al. 2022, Tab. 8):
//! mean |x − x̂|, PSNR, SSIM, LPIPS and rFID — the FID between the feature statistics of the
//! images and of their reconstructions.

use std::path::Path;

use anyhow::{Context, Result};
use prism::eval::{extract, fid};
use prism::run::autoencoder::{load_autoencoder, reconstruct_all};
use serde_json::json;

use super::eval::{FEATURE_BATCH, first_batch, parse_metrics};
use super::eval_sets::{SSIM_SETUP, feature_net, load_lpips, score_pairs};
use crate::args::EvalArgs;

/// What `prism eval` measures on an autoencoder.
const AE_METRICS: [&str; 5] = ["l1", "psnr", "ssim", "lpips", "fid"];

/// Images per reconstruction pass.
const BATCH: usize = 16;

pub fn run(a: &EvalArgs, checkpoint: &Path) -> Result<()> {
    let metrics = parse_metrics(a.metrics.as_deref(), "l1,psnr,ssim", &AE_METRICS)?;
    anyhow::ensure!(a.num > 0, "--num must be positive");
    if let Some(json) = &a.json {
        super::check_extension("--json", json, "json", "JSON")?;
    }
    let device = prism::default_device();
    let lpips = if metrics.iter().any(|m| m == "lpips") {
        Some(load_lpips(a.lpips.as_deref())?)
    } else {
        None
    };
    let wants_fid = metrics.iter().any(|m| m == "fid");
    let features = feature_net(a, wants_fid, &device)?;
    let (cfg, ae, step) = load_autoencoder(checkpoint, &device)
        .with_context(|| format!("loading the autoencoder '{}'", checkpoint.display()))?;
    let Some(cfg) = cfg else {
        anyhow::bail!(
            "'{}' is a diffusers VAE, with no data of its own to hold out: score its \
             reconstructions with `prism reconstruct --data DIR --image-size N` or `prism eval --pairs`",
            checkpoint.display()
        );
    };
    let set = super::reconstruct::autoencoder_images(cfg.data, a.data.as_deref(), a.num)?;
    let n = a.num.min(set.len());
    anyhow::ensure!(n > 0, "no images to evaluate on");
    eprintln!(
        "prism eval: autoencoder {} (f{}, step {step}) on {n} {} images",
        checkpoint.display(),
        ae.factor(),
        if a.data.is_some() {
            "given"
        } else {
            "held-out"
        }
    );
    let x = first_batch(&set, n, &device)?;
    let x_hat = reconstruct_all(&ae, x.clone(), BATCH)?;
    let mut report = json!({
        "checkpoint": checkpoint, "step": step, "num": n, "factor": ae.factor(),
        "prism_version": env!("CARGO_PKG_VERSION"), "ssim_setup": SSIM_SETUP,
    });
    if metrics.iter().any(|m| m == "l1") {
        let l1 = prism::tensor::scalar((x.clone() - x_hat.clone()).abs().mean());
        println!("{:<12} {l1:>9.4}   (pixels in [-1, 1])", "mean |x − x̂|");
        report["l1"] = json!(l1);
    }
    score_pairs(&metrics, &x, &x_hat, lpips.as_deref(), &mut report)?;
    if let Some(net) = &features {
        anyhow::ensure!(
            n >= 2,
            "rFID needs at least 2 images, got {n}: raise --num or give more --data"
        );
        let real = extract(net.as_ref(), x, FEATURE_BATCH)?;
        let recon = extract(net.as_ref(), x_hat, FEATURE_BATCH)?;
        let r = fid(&real, &recon)?;
        println!(
            "{:<12} {r:>9.3}   ({}; {n} images against their reconstructions; FID is biased by N)",
            "rFID",
            net.describe()
        );
        report["rfid"] = json!({"value": r, "n": n, "features": net.describe()});
    }
    if let Some(path) = &a.json {
        prism::fsutil::write_atomic(path, serde_json::to_string_pretty(&report)?.as_bytes())?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
