//! `prism forward`: the configured forward process applied to one image at several times, and
//! with `--bands` the signal of each of the process's frequency bands above it.

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
    let mut rows = Vec::new();
    if a.bands {
        rows = band_rows(process.as_ref(), &x, &times)?;
    }
    let bands = rows.len() / times.len();
    rows.extend(panels);
    let strip = Tensor::cat(rows, 0);
    prism::image::save_png(&prism::image::grid(strip, times.len())?, &a.out)?;
    if a.bands {
        eprintln!(
            "rows: {bands} band(s) of the signal (finest first, each scaled by its own largest value), then z_t"
        );
    }
    for &t in &times {
        eprintln!("t = {t:.3}: {}", process.describe_time(t));
    }
    eprintln!("wrote {}", a.out.display());
    Ok(())
}

/// The rows of `--bands`: band `k`'s signal at every time, divided by its largest magnitude over
/// the times (so a fading band loses contrast towards grey, and a band that carries little
/// energy is still visible), band after band, finest first.
fn band_rows(
    process: &dyn prism::process::DiffusionProcess,
    x: &Tensor<4>,
    times: &[f64],
) -> Result<Vec<Tensor<4>>> {
    let per_time: Vec<Vec<Tensor<4>>> = times
        .iter()
        .map(|&t| process.signal_bands(x.clone(), t))
        .collect::<prism::Result<_>>()?;
    let count = per_time.first().map_or(0, Vec::len);
    let mut rows = Vec::with_capacity(count * times.len());
    for k in 0..count {
        let largest = per_time
            .iter()
            .map(|bands| prism::tensor::scalar(bands[k].clone().abs().max()))
            .fold(0.0f64, f64::max);
        let scale = if largest > 0.0 { 1.0 / largest } else { 1.0 };
        rows.extend(per_time.iter().map(|bands| bands[k].clone() * scale));
    }
    Ok(rows)
}
