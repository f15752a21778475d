//! `prism eval`: held-out denoising error against the best constant predictor, bits/dim, and the
//! multi-scale SWD of generated samples against held-out images (with the real-vs-real floor).

use anyhow::{Context, Result, bail};
use prism::data::Dataset;
use prism::eval::{BpdOptions, Planes, SwdOptions, bits_per_dim, denoise_mse, swd};
use prism::sample::{Generate, SamplerKind};
use prism::train::load_model;
use rand::SeedableRng;
use serde_json::json;

use crate::args::EvalArgs;

/// The first `n` images of a set as host planes.
fn first_images(set: &Dataset, n: usize, device: &burn::tensor::Device) -> Vec<Planes> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let idx: Vec<usize> = (0..n.min(set.len())).collect();
    to_planes(set.batch(&idx, &mut rng, device).images)
}

fn to_planes(images: burn::tensor::Tensor<4>) -> Vec<Planes> {
    let [b, c, h, w] = images.dims();
    let data = prism::tensor::to_vec(images);
    (0..b)
        .map(|i| Planes {
            c,
            h,
            w,
            data: data[i * c * h * w..(i + 1) * c * h * w].to_vec(),
        })
        .collect()
}

fn print_swd(label: &str, s: &prism::eval::Swd) {
    let levels: Vec<String> = s
        .resolutions
        .iter()
        .zip(&s.per_level)
        .map(|(r, v)| format!("{r}px {v:.2}"))
        .collect();
    println!("{label:<22} mean {:>7.2}   ({})", s.mean, levels.join(", "));
}

pub fn run(a: EvalArgs) -> Result<()> {
    let metrics: Vec<&str> = a
        .metrics
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .collect();
    if let Some(bad) = metrics.iter().find(|m| !["mse", "bpd", "swd"].contains(m)) {
        bail!("--metrics: unknown metric '{bad}' (known: mse, bpd, swd)");
    }
    let kind: SamplerKind = a.sampler.parse()?;
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
        "prism eval: {} (step {step}) with {n} held-out images, seed {}",
        a.checkpoint.display(),
        a.seed
    );
    let mut report = json!({
        "checkpoint": a.checkpoint, "step": step, "num": n, "seed": a.seed,
        "prism_version": env!("CARGO_PKG_VERSION"),
    });

    if metrics.contains(&"mse") {
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
        report["denoise_mse"] = mse
            .iter()
            .map(|r| json!({"t": r.t, "mse_model": r.model, "mse_constant": r.constant}))
            .collect();
    }
    if metrics.contains(&"bpd") {
        let opts = BpdOptions {
            images: n,
            draws: a.draws,
            logsnr_max: Some(a.logsnr_max),
            seed: a.seed,
        };
        let b = bits_per_dim(&model, &process, &held_out, opts, &device);
        println!(
            "bits/dim: {:.4} ± {:.4} (n = {}, {} draws, decoder at logSNR {}; prior {:.4}, reconstruction {:.4}, diffusion {:.4})",
            b.bpd,
            b.stderr,
            b.images,
            a.draws,
            a.logsnr_max,
            b.prior,
            b.reconstruction,
            b.diffusion
        );
        report["bits_per_dim"] = json!({"mean": b.bpd, "stderr": b.stderr, "draws": a.draws, "logsnr_max": a.logsnr_max,
            "prior": b.prior, "reconstruction": b.reconstruction, "diffusion": b.diffusion});
    }
    if metrics.contains(&"swd") {
        let classes = model.net.num_classes();
        let labels = (classes > 0).then(|| (0..n).map(|i| (i % classes) as i64).collect());
        let guidance = a.guidance.unwrap_or(cfg.sample.guidance);
        let shape = [
            n,
            cfg.data.channels,
            cfg.data.image_size,
            cfg.data.image_size,
        ];
        let request = Generate {
            kind,
            steps: a.steps,
            shape,
            labels,
            guidance,
            clip_x0: cfg.sample.clip_x0,
            seed: a.seed,
        };
        let samples = super::generate_with_progress(&model, &process, &request, &device)?;
        let o = SwdOptions {
            seed: a.seed,
            ..SwdOptions::default()
        };
        let real = first_images(&held_out, n, &device);
        let floor = swd(&real, &first_images(&train_set, n, &device), &o)?;
        let generated = swd(&real, &to_planes(samples), &o)?;
        print_swd(&format!("SWD ×10³ ({kind}, {} steps)", a.steps), &generated);
        print_swd("SWD ×10³ real vs real", &floor);
        report["swd"] = json!({"samples": n, "sampler": kind.to_string(), "steps": a.steps, "guidance": guidance,
            "resolutions": generated.resolutions, "per_level": generated.per_level, "mean": generated.mean,
            "real_vs_real": {"per_level": floor.per_level, "mean": floor.mean}});
    }
    if let Some(path) = a.json {
        prism::fsutil::write_atomic(&path, serde_json::to_string_pretty(&report)?.as_bytes())?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
