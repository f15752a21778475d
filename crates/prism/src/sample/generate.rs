//! Drawing images from a trained model: prior noise from a seed, the sampler, classifier-free
//! guidance where asked.

use burn::tensor::{Device, Tensor};
use rand::SeedableRng;

use super::trajectory::{Frame, Recording};
use super::{SamplerKind, Sampling, Spacing, sample};
use crate::denoiser::{Denoise, DiffusionModel, GuidanceInterval, GuidedDenoiser, ModelDenoiser};
use crate::nn::Condition;
use crate::process::DiffusionProcess;
use crate::{Error, Result};

/// What to draw: `shape[0]` images with `kind` for `steps` evaluations from prior noise seeded by
/// `seed`, under `cond` (one entry per image), with classifier-free guidance when `guidance ≠ 1`
/// and the condition has a label or context to guide by.
#[derive(Debug, Clone)]
pub struct Generate {
    /// Sampler.
    pub kind: SamplerKind,
    /// Network evaluations.
    pub steps: usize,
    /// Where the sampler puts its levels (default: its own grid).
    pub spacing: Spacing,
    /// `[N, C, H, W]` of the output.
    pub shape: [usize; 4],
    /// The condition of every image (`Condition::none()`: unconditional).
    pub cond: Condition,
    /// Guidance weight (1: none).
    pub guidance: f64,
    /// Guide only inside this logSNR window (`None`: everywhere).
    pub guidance_interval: Option<GuidanceInterval>,
    /// Clip `x̂` to `[-1, 1]`.
    pub clip_x0: bool,
    /// Seed of the prior noise and the sampler's noise.
    pub seed: u64,
}

/// Draws images from `model` (trained for `process`) as described by `request`.
pub fn generate(
    model: &DiffusionModel,
    process: &dyn DiffusionProcess,
    request: &Generate,
    device: &Device,
    on_step: &mut dyn FnMut(usize, usize),
) -> Result<Tensor<4>> {
    generate_traced(model, process, request, device, on_step, None)
}

/// [`generate`], recording the first image's trajectory (every network evaluation) into `trace`
/// when given; the images are the same as without it.
pub fn generate_traced(
    model: &DiffusionModel,
    process: &dyn DiffusionProcess,
    request: &Generate,
    device: &Device,
    on_step: &mut dyn FnMut(usize, usize),
    trace: Option<&mut Vec<Frame>>,
) -> Result<Tensor<4>> {
    let r = request;
    let p = model.parameterization();
    if !process.parameterizations().contains(&p) {
        return Err(Error::invalid(format!(
            "the {} process needs model.parameterization in {:?}, this model is {}",
            process.kind(),
            process
                .parameterizations()
                .iter()
                .map(|p| p.name())
                .collect::<Vec<_>>(),
            p.name()
        )));
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(r.seed);
    let z1 = process.prior(r.shape, &mut rng, device);
    let guided = r.guidance != 1.0 && (r.cond.label.is_some() || r.cond.context.is_some());
    let denoiser: Box<dyn Denoise + '_> = if guided {
        Box::new(GuidedDenoiser {
            model,
            process,
            cond: r.cond.clone(),
            guidance: r.guidance,
            interval: r.guidance_interval,
        })
    } else {
        Box::new(ModelDenoiser {
            model,
            process,
            cond: r.cond.clone(),
        })
    };
    let recording = trace.is_some().then(|| Recording::new(denoiser.as_ref()));
    let s = Sampling {
        process,
        denoiser: match &recording {
            Some(r) => r,
            None => denoiser.as_ref(),
        },
        kind: r.kind,
        steps: r.steps,
        spacing: r.spacing,
        clip_x0: r.clip_x0,
    };
    let images = sample(&s, z1, r.shape, &mut rng, on_step)?;
    if let (Some(trace), Some(recording)) = (trace, recording) {
        *trace = recording.into_frames();
    }
    Ok(images)
}
