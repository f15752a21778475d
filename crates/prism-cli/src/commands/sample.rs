//! `prism sample`: a model, or a pipeline of a base model and super-resolution stages.

use anyhow::{Context, Result, bail};
use prism::nn::Condition;
use prism::pipeline::Pipeline;

use crate::args::SampleArgs;

pub fn run(a: SampleArgs) -> Result<()> {
    let requested = super::requested_sampler(&a.sampling)?;
    let spacing = super::requested_spacing(&a.sampling)?;
    super::check_count("--num", a.num, super::MAX_SAMPLES)?;
    super::check_count("--steps", a.steps, super::MAX_STEPS)?;
    super::check_extension("--out", &a.out, "png", "PNG")?;
    if let Some(path) = &a.trajectory {
        super::check_extension("--trajectory", path, "png", "PNG")?;
        anyhow::ensure!(
            (2..=200).contains(&a.trajectory_frames),
            "--trajectory-frames must be in 2..=200, got {}",
            a.trajectory_frames
        );
    }
    let device = prism::default_device();
    let mut pipeline = match (&a.checkpoint, &a.pipeline) {
        (Some(path), _) => Pipeline::from_checkpoint(path, &device)
            .with_context(|| format!("loading the model '{}'", path.display()))?,
        (None, Some(path)) => Pipeline::from_file(path, &device)
            .with_context(|| format!("loading the pipeline '{}'", path.display()))?,
        (None, None) => bail!("give --checkpoint MODEL or --pipeline FILE"),
    };
    let base = &pipeline.stages[0].0;
    let classes = base.model.net.num_classes();
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
    // Flags apply to every stage; a pipeline file's own per-stage settings win over them.
    pipeline.configure(|sampling| {
        sampling.steps = a.steps;
        sampling.kind = requested.unwrap_or(sampling.kind);
        sampling.spacing = spacing;
        sampling.guidance = a.sampling.guidance.unwrap_or(sampling.guidance);
        sampling.guidance_interval = a.sampling.guidance_interval.or(sampling.guidance_interval);
        sampling.clip_x0 = !a.sampling.no_clip;
    });
    for (stage, sampling) in &pipeline.stages {
        eprintln!(
            "prism sample: {} (step {}), {} × {}², {} ({} spacing) with {} steps, guidance {}{}, seed {}",
            stage.path.display(),
            stage.step,
            a.num,
            stage.cfg.data.image_size,
            sampling.kind,
            sampling
                .spacing
                .rule
                .unwrap_or(sampling.kind.default_spacing()),
            sampling.steps,
            sampling.guidance,
            sampling
                .guidance_interval
                .map_or(String::new(), |i| format!(" in logSNR {i}")),
            a.seed
        );
    }
    let mut cond = match labels {
        Some(l) => Condition::from_labels(&l, &device),
        None => Condition::none(),
    };
    let reads_context = pipeline.stages.iter().any(|(s, _)| s.model.reads_context());
    match (&a.context, reads_context) {
        (Some(path), true) => {
            let c = prism::data::Contexts::read(path, a.num, None)
                .with_context(|| format!("reading --context '{}'", path.display()))?;
            let all: Vec<usize> = (0..a.num).collect();
            cond.context = Some(c.batch(&all, &device));
        }
        (Some(_), false) => {
            bail!("--context given, but no stage's cross-attention reads a context")
        }
        (None, true) => bail!(
            "this model's cross-attention reads a context sequence: give --context FILE \
             (a tensor 'context' [N, L, D] with N = --num)"
        ),
        (None, false) => {}
    }
    if classes == 0 && !reads_context && a.sampling.guidance.is_some_and(|g| g != 1.0) {
        bail!("--guidance needs a class-conditional model (or one that reads a context)");
    }
    let stages = pipeline.stages.len();
    if a.trajectory.is_some() && !pipeline.last().cfg.space.is_pixels() {
        bail!(
            "--trajectory shows pixel-space states; this model diffuses in an autoencoder's latents"
        );
    }
    let mut frames = Vec::new();
    let bar = std::cell::RefCell::new(super::progress(0, "sampling"));
    let images = pipeline.generate_traced(
        a.num,
        &cond,
        a.seed,
        &device,
        &mut |i, n| {
            let what = if n > 1 {
                format!("stage {}/{n}", i + 1)
            } else {
                "sampling".into()
            };
            bar.borrow().finish_and_clear();
            *bar.borrow_mut() = super::progress(0, &what);
        },
        &mut |i, n| {
            let bar = bar.borrow();
            bar.set_length(n as u64);
            bar.set_position(i as u64);
        },
        a.trajectory.is_some().then_some(&mut frames),
    )?;
    bar.borrow().finish_and_clear();
    let cols = a.cols.unwrap_or(if classes > 0 && a.class.is_none() {
        classes
    } else {
        (a.num as f64).sqrt().ceil() as usize
    });
    if let Some(dir) = &a.out_dir {
        prism::image::save_pngs(images.clone(), dir)?;
        eprintln!("wrote {} PNGs to {}", a.num, dir.display());
    }
    if let Some(path) = &a.npz {
        prism::image::save_npz(images.clone(), path)?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(path) = &a.trajectory {
        write_trajectory(pipeline.last(), &frames, a.trajectory_frames, path)?;
    }
    prism::image::save_png(&prism::image::grid(images, cols)?, &a.out)?;
    eprintln!(
        "wrote {}{}",
        a.out.display(),
        if stages > 1 {
            format!(" ({stages} stages)")
        } else {
            String::new()
        }
    );
    Ok(())
}

/// The picture of the first image's trajectory (`--trajectory`): the picked frames as columns,
/// `z_t` above `x̂`, with each column's level printed.
fn write_trajectory(
    stage: &prism::pipeline::Stage,
    frames: &[prism::sample::Frame],
    columns: usize,
    path: &std::path::Path,
) -> Result<()> {
    let picked = prism::sample::pick_frames(frames, columns);
    let side = frames.iter().map(|f| f.z.dims()[2]).max().unwrap_or(0);
    let strip = prism::sample::trajectory_strip(frames, &picked, side)?;
    prism::image::save_png(&prism::image::grid(strip, picked.len())?, path)?;
    for (col, &i) in picked.iter().enumerate() {
        let f = &frames[i];
        eprintln!(
            "trajectory column {col}: evaluation {}/{}, t = {:.4}, {}",
            i + 1,
            frames.len(),
            f.level.t,
            stage.process.describe_time(f.level.t)
        );
    }
    eprintln!(
        "wrote {} (top: z_t, bottom: x̂; {} of {} evaluations)",
        path.display(),
        picked.len(),
        frames.len()
    );
    Ok(())
}
