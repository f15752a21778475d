//! Held-out denoising error at fixed times: `mean ||x − x̂(z_t)||²` per pixel, against the best
//! predictor that ignores `z_t` (the per-pixel mean image of the training set). Where the state
//! at `t` has a lower resolution (Laplacian diffusion), `x̂` is upsampled (nearest) to the space's
//! full size — in a latent space before it is decoded, since the decoder reads latents of the
//! full size — and so to the image: the error then includes the detail bands the state no longer
//! carries.

use burn::tensor::{Device, Tensor, TensorData};
use rand::SeedableRng;

use crate::Result;
use crate::data::Dataset;
use crate::denoiser::{DiffusionModel, ModelInput};
use crate::nn::Condition;
use crate::process::DiffusionProcess;
use crate::tensor::{normal, scalar};
use crate::transform::up_nearest;

/// `x` upsampled (nearest) to side `side` when it is smaller by an integer factor.
fn to_side(x: Tensor<4>, side: usize) -> Tensor<4> {
    let h = x.dims()[2];
    if h < side && side.is_multiple_of(h) {
        up_nearest(x, side / h)
    } else {
        x
    }
}

/// The held-out images `idx` (`[B, C, H, W]` in `[-1, 1]`), the same in the model's space
/// (with a super-resolution stage's low-resolution condition), and the model's condition: the
/// images' labels for a class-conditional model, their contexts for one that reads them.
pub(super) fn held_out_batch(
    model: &DiffusionModel,
    input: &ModelInput,
    held_out: &Dataset,
    idx: &[usize],
    rng: &mut rand_chacha::ChaCha8Rng,
    device: &Device,
) -> Result<(Tensor<4>, Tensor<4>, Condition)> {
    let data = held_out.try_batch(idx, rng, device)?;
    let conditional = model.net.num_classes() > 0;
    let cond = Condition {
        context: data.context.filter(|_| model.reads_context()),
        ..Condition::labels(if conditional { data.labels } else { None })
    };
    let (x, cond) = input.prepare_for_sampling(data.images.clone(), cond, rng)?;
    Ok((data.images, x, cond))
}

/// `x̂(z_t)` for the clean batch `x` (in the model's space) with noise `eps` at time `t`,
/// upsampled (nearest) to `x`'s size where the state is smaller, decoded to images, and brought
/// to side `side`.
#[allow(clippy::too_many_arguments)]
pub(super) fn image_estimate(
    model: &DiffusionModel,
    process: &dyn DiffusionProcess,
    input: &ModelInput,
    x: Tensor<4>,
    cond: &Condition,
    t: f64,
    eps: Tensor<4>,
    side: usize,
) -> Result<Tensor<4>> {
    let [b, _, full, _] = x.dims();
    let z = process.corrupt(x, &vec![t; b], eps)?;
    let levels = vec![process.level(t); b];
    let x0_hat = to_side(model.predict(process, z, &levels, cond)?.x0_hat, full);
    Ok(to_side(input.space().decode(x0_hat)?, side))
}

/// One row of the comparison.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DenoiseMse {
    /// The time `t`.
    pub t: f64,
    /// The model's per-pixel MSE of `x̂`.
    pub model: f64,
    /// The per-pixel MSE of the constant predictor.
    pub constant: f64,
}

/// Evaluates `model` on the first `n` images of `held_out` at each of `times`, with the label of
/// each image when the model is class-conditional (and the model's `input`: its space and, for a
/// super-resolution stage, the image's low-resolution version), and fixed noise from `seed`. The
/// error is measured on images (`x̂` decoded from the model's space). Fails when an
/// image of a lazily decoded set no longer decodes.
#[allow(clippy::too_many_arguments)]
pub fn denoise_mse(
    model: &DiffusionModel,
    process: &dyn DiffusionProcess,
    input: &ModelInput,
    held_out: &Dataset,
    mean_image: &[f32],
    times: &[f64],
    n: usize,
    seed: u64,
    device: &Device,
) -> Result<Vec<DenoiseMse>> {
    let n = n.min(held_out.len());
    let batch = 64;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut sums = vec![(0.0, 0.0); times.len()];
    let [c, s] = [held_out.channels(), held_out.image_size()];
    let mean = Tensor::<4>::from_data(TensorData::new(mean_image.to_vec(), [1, c, s, s]), device);
    for start in (0..n).step_by(batch) {
        let idx: Vec<usize> = (start..(start + batch).min(n)).collect();
        let b = idx.len();
        let (images, x, cond) = held_out_batch(model, input, held_out, &idx, &mut rng, device)?;
        for (k, &t) in times.iter().enumerate() {
            let eps = normal(x.dims(), &mut rng, device);
            let x0_hat = image_estimate(model, process, input, x.clone(), &cond, t, eps, s)?;
            let err = scalar((x0_hat - images.clone()).powi_scalar(2).sum());
            let cerr = scalar(
                (mean.clone().expand([b, c, s, s]) - images.clone())
                    .powi_scalar(2)
                    .sum(),
            );
            sums[k].0 += err;
            sums[k].1 += cerr;
        }
    }
    let d = (n * c * s * s) as f64;
    Ok(times
        .iter()
        .zip(sums)
        .map(|(&t, (m, k))| DenoiseMse {
            t,
            model: m / d,
            constant: k / d,
        })
        .collect())
}
