//! `prism inpaint`: fill the masked region of one image with an inpainting model.

use std::path::Path;

use anyhow::{Context, Result, bail};
use burn::tensor::{Device, Tensor, TensorData};
use prism::nn::Condition;
use prism::pipeline::{Stage, StageSampling};

use crate::args::InpaintArgs;

/// `path` as `[1, channels, H, W]` in `[-1, 1]` at its own size (transparent pixels on black).
fn read(path: &Path, channels: usize, device: &Device) -> Result<(Tensor<4>, [usize; 2])> {
    let img = prism::data::open_image(path, [0, 0, 0])?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let data = prism::data::planes(&img, channels);
    Ok((
        Tensor::from_data(TensorData::new(data, [1, channels, h, w]), device),
        [h, w],
    ))
}

pub fn run(a: InpaintArgs) -> Result<()> {
    let requested = super::requested_sampler(&a.sampling)?;
    anyhow::ensure!(a.num > 0, "--num must be positive");
    anyhow::ensure!(a.steps > 0, "--steps must be positive");
    let ext = a.out.extension().and_then(|e| e.to_str()).unwrap_or("");
    anyhow::ensure!(
        ext.eq_ignore_ascii_case("png"),
        "--out {}: prism inpaint writes PNG; give a file ending in .png",
        a.out.display()
    );
    let device = prism::default_device();
    let stage = Stage::load(&a.checkpoint, &device)
        .with_context(|| format!("loading the model '{}'", a.checkpoint.display()))?;
    let d = &stage.cfg.data;
    let (image, [h, w]) = read(&a.image, d.channels, &device)
        .with_context(|| format!("reading the image '{}'", a.image.display()))?;
    let (mask, [mh, mw]) = read(&a.mask, 1, &device)
        .with_context(|| format!("reading the mask '{}'", a.mask.display()))?;
    if [mh, mw] != [h, w] {
        bail!(
            "the mask '{}' is {mw}×{mh} but the image '{}' is {w}×{h}; give a mask of the image's size",
            a.mask.display(),
            a.image.display()
        );
    }
    if [h, w] != [d.image_size, d.image_size] {
        bail!(
            "the image '{}' is {w}×{h}; this model fills {s}×{s} images",
            a.image.display(),
            s = d.image_size
        );
    }
    // White (grey level ≥ 128, i.e. ≥ 0 in [-1, 1]) = fill.
    let mask = mask.greater_equal_elem(0.0).float();
    let classes = stage.model.net.num_classes();
    let cond = match (classes, a.class) {
        (0, Some(_)) => bail!("--class given, but this model is unconditional"),
        (k, Some(c)) if c >= k => bail!(
            "--class {c} is out of range: the model has classes 0..{}",
            k - 1
        ),
        (_, Some(c)) => Condition::from_labels(&vec![c as i64; a.num], &device),
        (_, None) => Condition::none(),
    };
    if cond.label.is_none() && a.sampling.guidance.is_some_and(|g| g != 1.0) {
        bail!("--guidance needs a class-conditional model and --class");
    }
    let mut sampling = StageSampling::of(&stage);
    sampling.steps = a.steps;
    sampling.kind = requested.unwrap_or(sampling.kind);
    sampling.guidance = a.sampling.guidance.unwrap_or(sampling.guidance);
    sampling.guidance_interval = a.sampling.guidance_interval.or(sampling.guidance_interval);
    sampling.clip_x0 = !a.sampling.no_clip;
    let fill = 100.0 * prism::tensor::scalar(mask.clone().mean());
    eprintln!(
        "prism inpaint: {} (step {}), {} fill(s) of {:.1}% of {w}×{h}, {} with {} steps, seed {}",
        stage.path.display(),
        stage.step,
        a.num,
        fill,
        sampling.kind,
        sampling.steps,
        a.seed
    );
    let n = a.num;
    let images = image.repeat_dim(0, n);
    let masks = mask.repeat_dim(0, n);
    let bar = super::progress(sampling.steps as u64, "inpainting");
    let out = stage.inpaint(
        images,
        masks,
        &sampling,
        &cond,
        a.seed,
        &device,
        &mut |i, _| bar.set_position(i as u64),
    )?;
    bar.finish_and_clear();
    let picture = if n == 1 {
        prism::image::to_image(out)?
    } else {
        prism::image::grid(out, (n as f64).sqrt().ceil() as usize)?
    };
    prism::image::save_png(&picture, &a.out)?;
    eprintln!("wrote {}", a.out.display());
    Ok(())
}
