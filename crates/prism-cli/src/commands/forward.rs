//! `prism forward`: the configured forward process applied to one image at several times.

use anyhow::{Context, Result};
use burn::tensor::Tensor;
use prism::config::ExperimentConfig;
use rand::SeedableRng;

use crate::args::ForwardArgs;

pub fn run(a: ForwardArgs) -> Result<()> {
    super::check_extension("--out", &a.out, "png", "a PNG strip")?;
    let cfg = ExperimentConfig::load(&a.config)?;
    let times: Vec<f64> =
        a.t.split(',')
            .map(|s| {
                let t: f64 = s
                    .trim()
                    .parse()
                    .with_context(|| format!("--t: '{s}' is not a number"))?;
                anyhow::ensure!((0.0..=1.0).contains(&t), "--t: {t} is outside [0, 1]");
                Ok(t)
            })
            .collect::<Result<_>>()?;
    let device = prism::default_device();
    let d = &cfg.data;
    let x = prism::image::load_image(
        &a.image,
        d.channels,
        d.image_size,
        d.fit,
        d.background,
        &device,
    )?;
    let process = cfg.process.build()?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(a.seed);
    let shape = [1, d.channels, d.image_size, d.image_size];
    let eps = if a.no_noise {
        Tensor::zeros(shape, &device)
    } else {
        prism::tensor::normal(shape, &mut rng, &device)
    };
    // A state at a lower resolution (Laplacian diffusion) is shown upsampled (nearest).
    let panels: Vec<Tensor<4>> = times
        .iter()
        .map(|&t| {
            let z = process.corrupt(x.clone(), &[t], eps.clone())?;
            let f = d.image_size / z.dims()[2].max(1);
            Ok(prism::transform::up_nearest(z, f))
        })
        .collect::<prism::Result<_>>()?;
    let strip = Tensor::cat(panels, 0);
    prism::image::save_png(&prism::image::grid(strip, times.len())?, &a.out)?;
    for &t in &times {
        eprintln!("t = {t:.3}: {}", process.describe_time(t));
    }
    eprintln!("wrote {}", a.out.display());
    Ok(())
}
