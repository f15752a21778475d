//! `prism eval`: held-out denoising error against the best constant predictor, bits/dim, and the
//! sample metrics — multi-scale SWD, KID, FID and precision/recall of generated samples against
//! held-out images, each with its real-vs-real floor (held-out against training images). Image
//! sets from anywhere (`--samples/--reference`, `--pairs`) are in `eval_sets`.

use anyhow::{Context, Result, bail};
use prism::data::Dataset;
use prism::eval::{
    BpdOptions, Features, KidOptions, Planes, SwdOptions, bits_per_dim, denoise_mse, extract, fid,
    kid, precision_recall, swd,
};
use prism::run::load_model;
use prism::sample::Generate;
use prism::schedule::LogSnrSchedule;
use rand::SeedableRng;
use serde_json::json;

use crate::args::EvalArgs;

/// The first `n` images of a set (no flips or random crops: the set is an evaluation split).
pub(super) fn first_batch(
    set: &Dataset,
    n: usize,
    device: &burn::tensor::Device,
) -> prism::Result<burn::tensor::Tensor<4>> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let idx: Vec<usize> = (0..n.min(set.len())).collect();
    Ok(set.try_batch(&idx, &mut rng, device)?.images)
}

const METRICS: [&str; 8] = ["mse", "switch", "bpd", "swd", "kid", "fid", "pr", "acc"];
const FEATURE_METRICS: [&str; 3] = ["kid", "fid", "pr"];
/// Images per feature-network batch.
pub(super) const FEATURE_BATCH: usize = 50;

/// `--metrics` split on commas (or `default`), each checked against `known`.
pub(super) fn parse_metrics(
    given: Option<&str>,
    default: &str,
    known: &[&str],
) -> Result<Vec<String>> {
    let metrics: Vec<String> = given
        .unwrap_or(default)
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(String::from)
        .collect();
    if let Some(bad) = metrics.iter().find(|m| !known.contains(&m.as_str())) {
        bail!(
            "--metrics: unknown metric '{bad}' here (known: {})",
            known.join(", ")
        );
    }
    anyhow::ensure!(!metrics.is_empty(), "--metrics: no metric given");
    Ok(metrics)
}

/// The KID flags.
pub(super) struct KidArgs {
    subsets: usize,
    subset_size: usize,
    seed: u64,
}

impl From<&EvalArgs> for KidArgs {
    fn from(a: &EvalArgs) -> Self {
        Self {
            subsets: a.kid_subsets,
            subset_size: a.kid_subset_size,
            seed: a.seed,
        }
    }
}

impl KidArgs {
    pub(super) fn options(&self) -> KidOptions {
        KidOptions {
            subsets: self.subsets,
            subset_size: self.subset_size,
            seed: self.seed,
        }
    }
}

pub(super) fn to_planes(images: burn::tensor::Tensor<4>) -> Vec<Planes> {
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

pub(super) fn print_swd(label: &str, s: &prism::eval::Swd) {
    let levels: Vec<String> = s
        .resolutions
        .iter()
        .zip(&s.per_level)
        .map(|(r, v)| format!("{r}px {v:.2}"))
        .collect();
    println!("{label:<22} mean {:>7.2}   ({})", s.mean, levels.join(", "));
}

pub fn run(a: EvalArgs) -> Result<()> {
    if let Some(dirs) = &a.pairs {
        return super::eval_sets::run_pairs(&a, dirs);
    }
    if a.reference.is_some() {
        return super::eval_sets::run_sets(&a);
    }
    let Some(checkpoint) = a.checkpoint.clone() else {
        bail!(
            "give --checkpoint MODEL (a model against its held-out images), --samples S \
             --reference R (two image sets), --reference R --save-stats F.npz, or --pairs A B"
        );
    };
    let requested = super::requested_sampler(&a.sampling)?;
    let spacing = super::requested_spacing(&a.sampling)?;
    anyhow::ensure!(a.num > 0, "--num must be positive");
    super::check_count("--draws", a.draws, super::MAX_DRAWS)?;
    super::check_count("--steps", a.steps, super::MAX_STEPS)?;
    if let Some(json) = &a.json {
        super::check_extension("--json", json, "json", "JSON")?;
    }
    let file = prism::nn::autoencoder::autoencoder_file(&checkpoint);
    if file.is_file()
        && prism::io::read_format(&file)?.as_deref()
            == Some(prism::nn::autoencoder::AUTOENCODER_FORMAT)
    {
        return super::eval_autoencoder::run(&a, &checkpoint);
    }
    let device = prism::default_device();
    let (mut cfg, model, step) = load_model(&checkpoint, &device)
        .with_context(|| format!("loading the model '{}'", checkpoint.display()))?;
    let process = cfg.process.build()?;
    // Bits/dim needs the isotropic process's ELBO: leave it out of the default otherwise.
    let default_metrics = if process.has_elbo() {
        "mse,bpd,swd"
    } else {
        "mse,swd"
    };
    let metrics = parse_metrics(a.metrics.as_deref(), default_metrics, &METRICS)?;
    let metrics: Vec<&str> = metrics.iter().map(String::as_str).collect();
    let wants_features = metrics.iter().any(|m| FEATURE_METRICS.contains(m));
    let features = super::eval_sets::feature_net(&a, wants_features, &device)?;
    let classifier = if metrics.contains(&"acc") {
        Some(class_judge(&a, model.net.num_classes(), &device)?)
    } else {
        None
    };
    if let Some(p) = a.data.clone() {
        cfg.data.path = p;
    }
    let data = cfg.data.load()?;
    let total = data.len();
    let (train_set, held_out) = data.split(cfg.data.held_out);
    if held_out.is_empty() {
        bail!(
            "no held-out images to evaluate on: the model was trained with data.held_out = {} \
             over {total} images; evaluation needs images the model has not seen",
            cfg.data.held_out
        );
    }
    if metrics.contains(&"bpd") && !process.has_elbo() {
        bail!(
            "--metrics bpd: bits/dim is implemented for the Gaussian process only (there is no ELBO \
             for the {} process here); choose other metrics, e.g. --metrics mse,swd",
            process.kind()
        );
    }
    let kind = requested.unwrap_or(cfg.sample.sampler);
    prism::sample::check_sampler(process.as_ref(), kind)?;
    let input = cfg.model_input()?;
    let n = a.num.min(held_out.len());
    eprintln!(
        "prism eval: {} (step {step}) with {n} held-out images, seed {}",
        checkpoint.display(),
        a.seed
    );
    let mut report = json!({
        "checkpoint": checkpoint, "step": step, "num": n, "seed": a.seed,
        "prism_version": env!("CARGO_PKG_VERSION"),
    });

    if metrics.contains(&"mse") {
        let schedule = process.schedule();
        let times: Vec<f64> = match &a.mse_logsnr {
            Some(levels) => {
                let (hi, lo) = (schedule.log_snr(0.0), schedule.log_snr(1.0));
                if let Some(bad) = levels.iter().find(|l| !(lo..=hi).contains(*l)) {
                    bail!(
                        "--mse-logsnr: {bad} lies outside the model's schedule, logSNR {lo:.3} … {hi:.3}"
                    );
                }
                levels.iter().map(|&l| schedule.t_of_log_snr(l)).collect()
            }
            None => vec![0.1, 0.25, 0.5, 0.75, 0.9],
        };
        let mse = denoise_mse(
            &model,
            process.as_ref(),
            &input,
            &held_out,
            &train_set.mean_image()?,
            &times,
            n,
            a.seed,
            &device,
        )?;
        println!(
            "{:>6}  {:>7}  {:>10}  {:>14}  {:>8}",
            "t", "logSNR", "MSE(x̂)", "MSE(constant)", "ratio"
        );
        for r in &mse {
            println!(
                "{:>6.3}  {:>7.3}  {:>10.5}  {:>14.5}  {:>8.3}",
                r.t,
                schedule.log_snr(r.t),
                r.model,
                r.constant,
                r.model / r.constant
            );
        }
        report["denoise_mse"] = mse
            .iter()
            .map(|r| {
                json!({"t": r.t, "logsnr": schedule.log_snr(r.t), "mse_model": r.model,
                       "mse_constant": r.constant})
            })
            .collect();
    }
    if metrics.contains(&"switch") {
        report["switch_mse"] = super::eval_switch::run(
            &model,
            process.as_ref(),
            &input,
            &held_out,
            a.switch_delta,
            n,
            a.seed,
            &device,
        )?;
    }
    if metrics.contains(&"bpd") {
        let top = process.schedule().log_snr(0.0);
        if !(a.logsnr_max.is_finite() && a.logsnr_max <= top) {
            bail!(
                "--logsnr-max {} must be a finite number at most the schedule's λ(0) = {top:.3}",
                a.logsnr_max
            );
        }
        let opts = BpdOptions {
            images: n,
            draws: a.draws,
            logsnr_max: Some(a.logsnr_max),
            seed: a.seed,
        };
        let b = bits_per_dim(&model, process.as_ref(), &input, &held_out, opts, &device)?;
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
    let wants_samples = metrics
        .iter()
        .any(|m| *m == "swd" || *m == "acc" || FEATURE_METRICS.contains(m));
    if wants_samples {
        let classes = model.net.num_classes();
        let guidance = a.sampling.guidance.unwrap_or(cfg.sample.guidance);
        let real = first_batch(&held_out, n, &device)?;
        // A super-resolution stage refines the held-out images pooled to its input size.
        let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(a.seed);
        let prepared = input
            .prepare_for_sampling(real.clone(), prism::nn::Condition::none(), &mut rng)?
            .1;
        let d = &cfg.data;
        let request = Generate {
            kind,
            steps: a.steps,
            spacing,
            shape: input
                .space()
                .shape([n, d.channels, d.image_size, d.image_size]),
            cond: prism::nn::Condition {
                image: prepared.image,
                image_noise: prepared.image_noise,
                ..prism::nn::Condition::cycling_labels(n, classes, &device)
            },
            guidance,
            guidance_interval: a
                .sampling
                .guidance_interval
                .or(cfg.sample.guidance_interval),
            clip_x0: cfg.sample.clip_x0 && !a.sampling.no_clip,
            seed: a.seed,
        };
        let samples = input.space().decode(super::generate_with_progress(
            &model,
            process.as_ref(),
            &request,
            &device,
        )?)?;
        let other = first_batch(&train_set, n, &device)?;
        report["samples"] = json!({"num": n, "sampler": kind.to_string(),
            "spacing": spacing.rule.unwrap_or(kind.default_spacing()).to_string(),
            "sigma_min": spacing.sigma_min, "sigma_max": spacing.sigma_max, "steps": a.steps, "clip_x0": request.clip_x0,
            "guidance": guidance, "real_vs_real": "held-out vs the first N training images"});
        println!(
            "sample metrics: {n} samples ({kind}, {} steps, guidance {guidance}) vs {n} held-out images",
            a.steps
        );
        if metrics.contains(&"swd") {
            let o = SwdOptions {
                seed: a.seed,
                ..SwdOptions::default()
            };
            let real_p = to_planes(real.clone());
            let floor = swd(&real_p, &to_planes(other.clone()), &o)?;
            let generated = swd(&real_p, &to_planes(samples.clone()), &o)?;
            print_swd("SWD ×10³", &generated);
            print_swd("SWD ×10³ real vs real", &floor);
            report["swd"] = json!({"resolutions": generated.resolutions, "per_level": generated.per_level,
                "mean": generated.mean, "real_vs_real": {"per_level": floor.per_level, "mean": floor.mean}});
        }
        if let Some(clf) = &classifier {
            report["class_accuracy"] =
                class_accuracy(clf, &samples, &real, held_out.labels(), classes)?;
        }
        if let Some(net) = features {
            let bar = super::progress(3, "features");
            let f_real = extract(net.as_ref(), real, FEATURE_BATCH)?;
            bar.inc(1);
            let f_other = extract(net.as_ref(), other, FEATURE_BATCH)?;
            bar.inc(1);
            let f_gen = extract(net.as_ref(), samples, FEATURE_BATCH)?;
            bar.finish_and_clear();
            report["features"] =
                json!({"network": net.describe(), "file": a.features, "dim": net.dim()});
            println!("features: {}", net.describe());
            feature_metrics(&metrics, &f_real, &f_other, &f_gen, &a, &mut report)?;
        }
    }
    if let Some(path) = a.json {
        prism::fsutil::write_atomic(&path, serde_json::to_string_pretty(&report)?.as_bytes())?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// The classifier of `--classifier` for `--metrics acc`, checked against a model with `classes`
/// classes.
fn class_judge(
    a: &EvalArgs,
    classes: usize,
    device: &burn::tensor::Device,
) -> Result<prism::nn::Classifier> {
    anyhow::ensure!(
        classes > 0,
        "--metrics acc measures whether samples follow their class: this model is not class-conditional"
    );
    let Some(path) = &a.classifier else {
        bail!(
            "--metrics acc needs --classifier FILE, a classifier from `prism classifier` (for \
             Fashion-MNIST: checkpoints/fashion-mnist-classifier/classifier.safetensors)"
        );
    };
    let clf = prism::nn::Classifier::load(path, device)
        .with_context(|| format!("loading the classifier '{}'", path.display()))?;
    anyhow::ensure!(
        clf.config().num_classes == classes,
        "the classifier '{}' tells {} classes apart, the model draws {classes}",
        path.display(),
        clf.config().num_classes
    );
    Ok(clf)
}

/// How often the classifier assigns a sample to the class it was drawn for (labels cycle over
/// the classes, so each class has ⌊n/K⌋ or ⌈n/K⌉ samples), overall and per class, beside the
/// classifier's own accuracy on the held-out images (when they have labels): the ceiling a
/// model whose samples were real images would reach.
fn class_accuracy(
    clf: &prism::nn::Classifier,
    samples: &burn::tensor::Tensor<4>,
    real: &burn::tensor::Tensor<4>,
    real_labels: Option<&[u32]>,
    classes: usize,
) -> Result<serde_json::Value> {
    let n = samples.dims()[0];
    let [_, c, h, w] = samples.dims();
    let cfg = clf.config();
    anyhow::ensure!(
        c == cfg.channels && h == cfg.image_size && w == cfg.image_size,
        "the classifier reads {}×{}×{} images, the samples are {c}×{h}×{w}",
        cfg.channels,
        cfg.image_size,
        cfg.image_size
    );
    let pred = clf.predict(samples.clone(), FEATURE_BATCH);
    let mut hits = vec![0usize; classes];
    let mut counts = vec![0usize; classes];
    for (i, p) in pred.iter().enumerate() {
        counts[i % classes] += 1;
        hits[i % classes] += usize::from(*p == i % classes);
    }
    let acc = hits.iter().sum::<usize>() as f64 / n as f64;
    let per_class: Vec<f64> = hits
        .iter()
        .zip(&counts)
        .map(|(&h, &c)| if c > 0 { h as f64 / c as f64 } else { f64::NAN })
        .collect();
    let real_acc = real_labels.map(|labels| {
        let p = clf.predict(real.clone(), FEATURE_BATCH);
        p.iter()
            .zip(labels)
            .filter(|&(&p, &l)| p == l as usize)
            .count() as f64
            / p.len() as f64
    });
    let shown = real_acc.map_or("no labels".into(), |r| format!("{r:.3}"));
    println!(
        "{:<22} {:>9.3}   real held-out images {shown}   ({n} samples over {classes} classes; chance {:.3})",
        "class accuracy",
        acc,
        1.0 / classes as f64
    );
    let per: Vec<String> = per_class.iter().map(|v| format!("{v:.2}")).collect();
    println!("{:<22} {}", "  per class", per.join(" "));
    Ok(
        json!({"accuracy": acc, "per_class": per_class, "real_held_out": real_acc, "n": n,
        "classifier": clf.config().num_classes}),
    )
}

/// KID, FID and precision/recall of generated against real features, each beside its
/// real-vs-real floor.
fn feature_metrics(
    metrics: &[&str],
    real: &Features,
    other: &Features,
    generated: &Features,
    a: &EvalArgs,
    report: &mut serde_json::Value,
) -> Result<()> {
    if metrics.contains(&"kid") {
        let o = KidArgs::from(a).options();
        let g = kid(real, generated, o)?;
        let f = kid(real, other, o)?;
        println!(
            "{:<22} {:>9.3} ± {:.3}   real vs real {:.3} ± {:.3}   ({} subsets of {})",
            "KID ×10³",
            1e3 * g.mean,
            1e3 * g.std,
            1e3 * f.mean,
            1e3 * f.std,
            g.subsets,
            g.subset_size
        );
        report["kid"] = json!({"mean": g.mean, "std": g.std, "subsets": g.subsets, "subset_size": g.subset_size,
            "real_vs_real": {"mean": f.mean, "std": f.std}});
    }
    if metrics.contains(&"fid") {
        let g = fid(real, generated)?;
        let f = fid(real, other)?;
        println!(
            "{:<22} {:>9.3}   real vs real {:.3}   (N = {}; FID is biased by N)",
            "FID",
            g,
            f,
            real.len()
        );
        report["fid"] = json!({"value": g, "n": real.len(), "real_vs_real": f});
    }
    if metrics.contains(&"pr") {
        let g = precision_recall(real, generated, 3)?;
        let f = precision_recall(real, other, 3)?;
        println!(
            "{:<22} {:>9.3} / {:.3}   real vs real {:.3} / {:.3}   (k = 3)",
            "precision / recall", g.precision, g.recall, f.precision, f.recall
        );
        report["precision_recall"] = json!({"precision": g.precision, "recall": g.recall, "k": 3,
            "real_vs_real": {"precision": f.precision, "recall": f.recall}});
    }
    Ok(())
}
