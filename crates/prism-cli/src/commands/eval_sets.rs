//! `prism eval` without a model: image sets from anywhere. `--samples S --reference R` scores a
//! generated set against a reference set (SWD, FID, KID, precision/recall), `--reference R
//! --save-stats F.npz` caches the reference's feature statistics (clean-fid / pytorch-fid format),
//! and `--pairs A B` computes paired metrics (PSNR, SSIM, LPIPS) image by image.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::{Device, Tensor};
use prism::eval::{
    Features, PairedDistance, ReferenceStats, SwdOptions, extract, fit_gaussian, frechet_distance,
    kid, precision_recall, psnr_batch, ssim_batch, swd,
};
use prism::image::load_image_set;
use prism::nn::{FeatureNet, InceptionInput, load_feature_net_with};
use serde_json::json;

use super::eval::{FEATURE_BATCH, KidArgs, parse_metrics, print_swd, to_planes};
use crate::args::EvalArgs;

/// How SSIM is computed, for the JSON reports.
pub(super) const SSIM_SETUP: &str = "Gaussian window sigma 1.5 (11x11), population covariances, K1 0.01, K2 0.03, data range 1 on RGB in [0,1], mean over channels (scikit-image gaussian_weights=True, use_sample_covariance=False)";

/// Loads `--features` (with `--inception-mode`) when `needed`.
pub(super) fn feature_net(
    a: &EvalArgs,
    needed: bool,
    device: &Device,
) -> Result<Option<Box<dyn FeatureNet>>> {
    let mode = a
        .inception_mode
        .as_deref()
        .map(InceptionInput::parse)
        .transpose()?;
    match (&a.features, needed) {
        (Some(path), true) => Ok(Some(
            load_feature_net_with(path, mode, device)
                .with_context(|| format!("loading the feature network '{}'", path.display()))?,
        )),
        (None, true) => bail!(
            "kid, fid, pr and --save-stats need --features FILE: the standard FID Inception \
             (`bash tools/fetch_inception.sh` writes data/inception/inception-2015-12-05.safetensors), \
             or a classifier from `prism classifier` (for Fashion-MNIST: \
             checkpoints/fashion-mnist-classifier/classifier.safetensors)"
        ),
        _ => Ok(None),
    }
}

/// Whether `path` is an `.npz` of statistics (`mu`, `sigma`) rather than of images.
fn is_stats(path: &Path) -> Result<bool> {
    if path.is_dir() {
        return Ok(false);
    }
    let arrays = prism::io::read_npz(path)
        .with_context(|| format!("reading '{}' (a folder or an .npz)", path.display()))?;
    Ok(arrays.contains_key("mu"))
}

fn load_set(path: &Path, device: &Device) -> Result<(Tensor<4>, Vec<String>)> {
    load_image_set(path, device)
        .with_context(|| format!("loading images from '{}'", path.display()))
}

/// `--samples S --reference R` and `--reference R --save-stats F`.
pub fn run_sets(a: &EvalArgs) -> Result<()> {
    let reference = a.reference.clone().expect("run_sets needs --reference");
    let metrics = parse_metrics(
        a.metrics.as_deref(),
        "swd,fid,kid,pr",
        &["swd", "fid", "kid", "pr"],
    )?;
    if a.samples.is_none() && a.save_stats.is_none() {
        bail!("--reference needs --samples S (to score S against it) or --save-stats F.npz");
    }
    let device = prism::default_device();
    let scoring = a.samples.is_some();
    let wants_features = a.save_stats.is_some() || (scoring && metrics.iter().any(|m| m != "swd"));
    let net = feature_net(a, wants_features, &device)?;
    let mut report = json!({"reference": reference, "samples": a.samples, "prism_version": env!("CARGO_PKG_VERSION")});

    let (ref_images, mut ref_stats) = if is_stats(&reference)? {
        let s = ReferenceStats::load(&reference)?;
        eprintln!(
            "prism eval: reference statistics '{}' ({}-d{})",
            reference.display(),
            s.fit.mean.len(),
            if s.features.is_some() {
                ", with features"
            } else {
                ", mu/sigma only"
            }
        );
        (None, Some(s))
    } else {
        let (images, _) = load_set(&reference, &device)?;
        eprintln!(
            "prism eval: {} reference images from '{}'",
            images.dims()[0],
            reference.display()
        );
        (Some(images), None)
    };
    if let (Some(net), Some(images)) = (&net, &ref_images) {
        let bar = super::progress(0, "reference features");
        let f = extract(net.as_ref(), images.clone(), FEATURE_BATCH)?;
        bar.finish_and_clear();
        ref_stats = Some(ReferenceStats::from_features(f)?);
    }
    if let Some(net) = &net {
        println!("features: {}", net.describe());
        report["features"] =
            json!({"network": net.describe(), "file": a.features, "dim": net.dim()});
    }
    if let Some(path) = &a.save_stats {
        let s = ref_stats.as_ref().expect("statistics computed above");
        s.save(path)
            .with_context(|| format!("writing '{}'", path.display()))?;
        eprintln!(
            "wrote {} (mu, sigma{} of {} images)",
            path.display(),
            if s.features.is_some() { ", feats" } else { "" },
            s.n
        );
    }
    if let Some(samples_path) = &a.samples {
        let (samples, _) = load_set(samples_path, &device)?;
        let n = samples.dims()[0];
        println!(
            "{n} samples from '{}' vs reference '{}'",
            samples_path.display(),
            reference.display()
        );
        report["num_samples"] = json!(n);
        if metrics.iter().any(|m| m == "swd") {
            let Some(real) = &ref_images else {
                bail!(
                    "swd compares images: give reference images, not statistics (or leave swd out of --metrics)"
                );
            };
            let o = SwdOptions {
                seed: a.seed,
                ..SwdOptions::default()
            };
            let s = swd(&to_planes(real.clone()), &to_planes(samples.clone()), &o)?;
            print_swd("SWD ×10³", &s);
            report["swd"] =
                json!({"resolutions": s.resolutions, "per_level": s.per_level, "mean": s.mean});
        }
        if let (Some(net), Some(stats)) = (&net, &ref_stats) {
            let bar = super::progress(0, "sample features");
            let f_gen = extract(net.as_ref(), samples, FEATURE_BATCH)?;
            bar.finish_and_clear();
            score_features(&metrics, stats, &f_gen, &KidArgs::from(a), &mut report)?;
        }
    }
    if let Some(path) = &a.json {
        prism::fsutil::write_atomic(path, serde_json::to_string_pretty(&report)?.as_bytes())?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// FID, KID and precision/recall of `generated` against reference statistics.
fn score_features(
    metrics: &[String],
    reference: &ReferenceStats,
    generated: &Features,
    kid_args: &KidArgs,
    report: &mut serde_json::Value,
) -> Result<()> {
    let needs_feats = |m: &str| -> Result<&Features> {
        reference.features.as_ref().with_context(|| {
            format!("{m} needs the reference's features: these statistics hold only mu and sigma (compute them with --save-stats, which keeps feats)")
        })
    };
    if metrics.iter().any(|m| m == "fid") {
        anyhow::ensure!(
            generated.len() >= 2,
            "FID needs at least 2 samples, got {}",
            generated.len()
        );
        anyhow::ensure!(
            generated.dim == reference.fit.mean.len(),
            "feature dimensions differ: samples {} vs reference {}",
            generated.dim,
            reference.fit.mean.len()
        );
        let g = frechet_distance(&reference.fit, &fit_gaussian(generated));
        let n_ref = if reference.n > 0 {
            reference.n.to_string()
        } else {
            "?".into()
        };
        println!(
            "{:<22} {:>9.3}   (N = {} samples vs {n_ref} reference; FID is biased by N)",
            "FID",
            g,
            generated.len()
        );
        report["fid"] = json!({"value": g, "n": generated.len(), "n_reference": reference.n});
    }
    if metrics.iter().any(|m| m == "kid") {
        let real = needs_feats("kid")?;
        let k = kid(real, generated, kid_args.options())?;
        println!(
            "{:<22} {:>9.3} ± {:.3}   ({} subsets of {})",
            "KID ×10³",
            1e3 * k.mean,
            1e3 * k.std,
            k.subsets,
            k.subset_size
        );
        report["kid"] = json!({"mean": k.mean, "std": k.std, "subsets": k.subsets, "subset_size": k.subset_size});
    }
    if metrics.iter().any(|m| m == "pr") {
        let real = needs_feats("pr")?;
        let p = precision_recall(real, generated, 3)?;
        println!(
            "{:<22} {:>9.3} / {:.3}   (k = 3)",
            "precision / recall", p.precision, p.recall
        );
        report["precision_recall"] = json!({"precision": p.precision, "recall": p.recall, "k": 3});
    }
    Ok(())
}

/// The LPIPS network from `--lpips FILE`, or from [`prism::nn::DEFAULT_LPIPS_PATH`] (made by
/// `tools/convert_lpips.py`); a missing file is an error that says how to make it.
pub(super) fn load_lpips(weights: Option<&Path>) -> Result<Box<dyn PairedDistance>> {
    let path = weights.unwrap_or(Path::new(prism::nn::DEFAULT_LPIPS_PATH));
    let net = prism::nn::Lpips::load(path, &prism::default_device())?;
    Ok(Box::new(net))
}

pub(super) fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}

/// `--pairs A B`: PSNR, SSIM (and LPIPS) image by image, images matched by sorted file name.
pub fn run_pairs(a: &EvalArgs, dirs: &[PathBuf]) -> Result<()> {
    let metrics = parse_metrics(
        a.metrics.as_deref(),
        "psnr,ssim",
        &["psnr", "ssim", "lpips"],
    )?;
    let lpips = if metrics.iter().any(|m| m == "lpips") {
        Some(load_lpips(a.lpips.as_deref())?)
    } else {
        None
    };
    let device = prism::default_device();
    let (ra, na) = load_set(&dirs[0], &device)?;
    let (rb, nb) = load_set(&dirs[1], &device)?;
    if na.len() != nb.len() {
        bail!(
            "--pairs: '{}' has {} images, '{}' has {}",
            dirs[0].display(),
            na.len(),
            dirs[1].display(),
            nb.len()
        );
    }
    let both_dirs = dirs[0].is_dir() && dirs[1].is_dir();
    if let Some((x, y)) = na.iter().zip(&nb).find(|(x, y)| both_dirs && x != y) {
        bail!(
            "--pairs matches images by file name; '{x}' in '{}' meets '{y}' in '{}'",
            dirs[0].display(),
            dirs[1].display()
        );
    }
    if ra.dims() != rb.dims() {
        bail!(
            "--pairs: image sizes differ ({:?} vs {:?})",
            ra.dims(),
            rb.dims()
        );
    }
    let n = na.len();
    println!(
        "{n} image pairs: '{}' (reference) vs '{}'",
        dirs[0].display(),
        dirs[1].display()
    );
    let mut report = json!({"pairs": dirs, "num": n, "prism_version": env!("CARGO_PKG_VERSION"),
        "ssim_setup": SSIM_SETUP});
    score_pairs(&metrics, &ra, &rb, lpips.as_deref(), &mut report)?;
    if let Some(path) = &a.json {
        prism::fsutil::write_atomic(path, serde_json::to_string_pretty(&report)?.as_bytes())?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// PSNR, SSIM and LPIPS (those of `metrics`; others are skipped) of the pairs `(reference[i],
/// images[i])`, both `[N, C, H, W]` in `[-1, 1]`: printed as mean ± std and stored in `report`
/// with the per-image values. `lpips` must be given when `metrics` holds `lpips`.
pub(super) fn score_pairs(
    metrics: &[String],
    reference: &Tensor<4>,
    images: &Tensor<4>,
    lpips: Option<&dyn PairedDistance>,
    report: &mut serde_json::Value,
) -> Result<()> {
    let n = reference.dims()[0];
    let unit = |t: &Tensor<4>| (t.clone() + 1.0) * 0.5;
    for m in metrics {
        let (values, label) = match m.as_str() {
            "psnr" => (psnr_batch(unit(reference), unit(images))?, "PSNR (dB)"),
            "ssim" => (ssim_batch(unit(reference), unit(images))?, "SSIM"),
            "lpips" => (
                lpips
                    .context("LPIPS was asked for but its network is not loaded")?
                    .distances(reference.clone(), images.clone())?,
                "LPIPS",
            ),
            _ => continue,
        };
        let (mean, std) = mean_std(&values);
        println!("{label:<12} {mean:>9.4} ± {std:.4}   (mean ± std over {n} pairs)");
        report[m.as_str()] = json!({"mean": mean, "std": std, "per_image": values});
    }
    Ok(())
}
