//! `prism sample`.

use anyhow::{Context, Result, bail};
use prism::run::load_model;
use prism::sample::{Generate, SamplerKind};

use crate::args::SampleArgs;

pub fn run(a: SampleArgs) -> Result<()> {
    let requested: Option<SamplerKind> = a.sampler.as_deref().map(str::parse).transpose()?;
    anyhow::ensure!(a.num > 0, "--num must be positive");
    anyhow::ensure!(a.steps > 0, "--steps must be positive");
    let device = prism::default_device();
    let (cfg, model, step) = load_model(&a.checkpoint, &device)
        .with_context(|| format!("loading the model '{}'", a.checkpoint.display()))?;
    let classes = model.net.num_classes();
    let labels = match (classes, a.class) {
        (0, Some(_)) => bail!("--class given, but this model is unconditional"),
        (0, None) => None,
        (k, Some(c)) if c >= k => bail!(
            "--class {c} is out of range: the model has classes 0..{}",
            k - 1
        ),
        (_, Some(c)) => Some(vec![c as i64; a.num]),
        (k, None) => Some((0..a.num).map(|i| (i % k) as i64).collect()),
    };
    let guidance = a.guidance.unwrap_or(cfg.sample.guidance);
    if classes == 0 && guidance != 1.0 {
        bail!("--guidance needs a class-conditional model");
    }
    let process = cfg.process.build()?;
    let kind = requested.unwrap_or(cfg.sample.sampler);
    let shape = [
        a.num,
        cfg.data.channels,
        cfg.data.image_size,
        cfg.data.image_size,
    ];
    eprintln!(
        "prism sample: {} (step {step}), {} × {}², {kind} with {} steps, guidance {guidance}, seed {}",
        a.checkpoint.display(),
        a.num,
        cfg.data.image_size,
        a.steps,
        a.seed
    );
    let request = Generate {
        kind,
        steps: a.steps,
        shape,
        labels,
        guidance,
        clip_x0: !a.no_clip,
        seed: a.seed,
    };
    let images = super::generate_with_progress(&model, &process, &request, &device)?;
    let cols = a.cols.unwrap_or(if classes > 0 && a.class.is_none() {
        classes
    } else {
        (a.num as f64).sqrt().ceil() as usize
    });
    prism::image::save_png(&prism::image::grid(images, cols)?, &a.out)?;
    eprintln!("wrote {}", a.out.display());
    Ok(())
}
