//! `prism upscale`: a super-resolution stage applied to a user's image, in overlapping tiles.

use anyhow::{Context, Result, bail, ensure};
use burn::tensor::{Tensor, TensorData};
use prism::pipeline::{Stage, StageSampling, UpscaleOptions, upscale};

use crate::args::UpscaleArgs;

/// How many times the stage runs for `scale` with a stage of `factor`: `scale = factor^k`.
fn passes(scale: usize, factor: usize) -> Option<u32> {
    (1..=8).find(|&k| factor.checked_pow(k) == Some(scale))
}

pub fn run(a: UpscaleArgs) -> Result<()> {
    let requested = super::requested_sampler(&a.sampling)?;
    if let Some(g) = a.sampling.guidance {
        ensure!(
            g == 1.0,
            "--guidance: a super-resolution stage is not guided"
        );
    }
    let ext = a
        .out
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    ensure!(
        matches!(ext.as_str(), "png" | "jpg" | "jpeg"),
        "--out {}: prism upscale writes PNG or JPEG; give a file ending in .png, .jpg or .jpeg",
        a.out.display()
    );
    ensure!(a.steps != Some(0), "--steps must be positive");
    ensure!(a.tile > 0, "--tile must be positive");
    let device = prism::default_device();
    let stage = Stage::load(&a.checkpoint, &device)
        .with_context(|| format!("loading the model '{}'", a.checkpoint.display()))?;
    let Some(factor) = stage.cfg.stage.factor() else {
        bail!(
            "'{}' is a base model; prism upscale needs a super-resolution stage",
            a.checkpoint.display()
        );
    };
    let Some(k) = passes(a.scale, factor) else {
        bail!(
            "--scale {} must be the stage's factor {factor} or a power of it ({}, {}, …)",
            a.scale,
            factor * factor,
            factor * factor * factor
        );
    };
    let mut sampling = StageSampling::of(&stage);
    sampling.steps = a.steps.unwrap_or(sampling.steps);
    sampling.kind = requested.unwrap_or(sampling.kind);
    sampling.clip_x0 = !a.sampling.no_clip;
    if let Some(level) = a.noise_aug {
        stage.cfg.stage.check_noise_aug("--noise-aug", level)?;
        sampling.noise_aug = level;
    }
    let d = &stage.cfg.data;
    let img = prism::data::open_image(&a.image, d.background)
        .with_context(|| format!("reading --image '{}'", a.image.display()))?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let channels = d.channels;
    let mut x = Tensor::<4>::from_data(
        TensorData::new(prism::data::planes(&img, channels), [1, channels, h, w]),
        &device,
    );
    let opts = UpscaleOptions {
        sampling,
        tile: a.tile,
        overlap: a.overlap,
        seed: a.seed,
    };
    eprintln!(
        "prism upscale: {} ({w}×{h}) → {}×{} with '{}' (step {}, ×{factor}{}), {} with {} steps, noise augmentation {}, tiles {} overlapping by {}, seed {}",
        a.image.display(),
        w * a.scale,
        h * a.scale,
        a.checkpoint.display(),
        stage.step,
        if k > 1 {
            format!(" {k} times")
        } else {
            String::new()
        },
        opts.sampling.kind,
        opts.sampling.steps,
        opts.sampling.noise_aug,
        opts.tile,
        opts.overlap,
        a.seed
    );
    for pass in 0..k {
        let what = if k > 1 {
            format!("pass {}/{k}", pass + 1)
        } else {
            "upscaling".into()
        };
        let bar = super::progress(opts.sampling.steps as u64, &what);
        let pass_opts = UpscaleOptions {
            seed: opts.seed.wrapping_add(pass as u64),
            ..opts.clone()
        };
        x = upscale(&stage, x, &pass_opts, &mut |i, _| {
            bar.set_position(i as u64)
        })?;
        bar.finish_and_clear();
    }
    prism::image::save_image(&prism::image::to_image(x)?, &a.out)?;
    eprintln!("wrote {}", a.out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn scale_is_a_power_of_the_factor() {
        assert_eq!(super::passes(4, 4), Some(1));
        assert_eq!(super::passes(16, 4), Some(2));
        assert_eq!(super::passes(8, 2), Some(3));
        assert_eq!(super::passes(2, 4), None);
        assert_eq!(super::passes(12, 4), None);
        assert_eq!(super::passes(1, 4), None);
    }
}
