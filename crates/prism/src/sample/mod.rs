//! ⑨ Samplers. They see only a [`Denoise`] and the process; the step count is an argument.
//!
//! Grids (K = number of network evaluations):
//! - DDPM and DDIM: `t_i = 1 − i/K`, `i = 0..K`; the last step lands on `t = 0` (`λ_max`) without
//!   noise and the result is `z_0/α_0`.
//! - DPM-Solver++(2M): K levels uniform in λ from `λ(1)` to `λ(0)`, then a final step to σ = 0
//!   (the setting that keeps it stable at ≤ 10 steps).
//!
//! DDIM and DPM-Solver++ assume an isotropic process (scalar `α_t, σ_t`). For the blurring process,
//! `ddpm` runs its own ancestral step ([`blurring_sample`]); the other samplers refuse it.

mod ancestral;
mod blurring;
mod dpm_solver;

pub use ancestral::{ddim_step, ddpm_step};
pub use blurring::{blurring_sample, blurring_step};
pub use dpm_solver::dpmpp_2m;

use burn::tensor::Tensor;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::denoiser::Denoise;
use crate::process::Process;
use crate::schedule::{LogSnrSchedule, alpha_from_log_snr};
use crate::tensor::normal;
use crate::{Error, Result};

/// Which sampler.
/// Written in configs and on the command line as `ddpm`, `ddim`, `ddim:ETA` or `dpmpp-2m`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum SamplerKind {
    /// Ancestral sampling (Ho et al. 2020) in logSNR form.
    Ddpm,
    /// DDIM (Song et al. 2021); `eta = 0` deterministic, `eta = 1` equals DDPM.
    Ddim {
        /// Stochasticity η.
        eta: f64,
    },
    /// DPM-Solver++(2M) (Lu et al. 2022), multistep second order, data prediction.
    DpmPp2m,
}

impl std::fmt::Display for SamplerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SamplerKind::Ddpm => write!(f, "ddpm"),
            SamplerKind::Ddim { eta } if *eta == 0.0 => write!(f, "ddim"),
            SamplerKind::Ddim { eta } => write!(f, "ddim:{eta}"),
            SamplerKind::DpmPp2m => write!(f, "dpmpp-2m"),
        }
    }
}

impl From<SamplerKind> for String {
    fn from(k: SamplerKind) -> String {
        k.to_string()
    }
}

impl TryFrom<String> for SamplerKind {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl std::str::FromStr for SamplerKind {
    type Err = Error;

    /// `ddpm`, `ddim` (η = 0), `ddim:0.5`, `dpmpp-2m` (also `dpm++2m`).
    fn from_str(s: &str) -> Result<Self> {
        let lower = s.to_ascii_lowercase();
        match lower.as_str() {
            "ddpm" => Ok(SamplerKind::Ddpm),
            "ddim" => Ok(SamplerKind::Ddim { eta: 0.0 }),
            "dpmpp-2m" | "dpm++2m" | "dpm++-2m" | "dpmpp2m" => Ok(SamplerKind::DpmPp2m),
            _ => match lower.strip_prefix("ddim:").map(str::parse::<f64>) {
                Some(Ok(eta)) if (0.0..=1.0).contains(&eta) => Ok(SamplerKind::Ddim { eta }),
                _ => Err(Error::invalid(format!(
                    "unknown sampler '{s}': expected ddpm, ddim, ddim:ETA (0 ≤ ETA ≤ 1) or dpmpp-2m"
                ))),
            },
        }
    }
}

/// Runs `kind` for `steps` network evaluations from the prior sample `z1`.
/// `on_step(i, steps)` is called after each evaluation (progress bars).
/// For the blurring process only `ddpm` applies; it runs the paper's step without clipping.
pub fn sample<R: Rng + ?Sized>(
    process: &Process,
    denoiser: &dyn Denoise,
    kind: SamplerKind,
    steps: usize,
    z1: Tensor<4>,
    rng: &mut R,
    on_step: &mut dyn FnMut(usize, usize),
) -> Result<Tensor<4>> {
    run(process, denoiser, kind, steps, z1, rng, false, on_step)
}

/// Checks that `kind` can sample `process`: the non-isotropic blurring process has only its
/// ancestral step (`ddpm`).
pub fn check_sampler(process: &Process, kind: SamplerKind) -> Result<()> {
    if process.as_gaussian().is_none() && kind != SamplerKind::Ddpm {
        return Err(Error::invalid(format!(
            "the sampler '{kind}' needs an isotropic Gaussian process, but this model uses the {} \
             process; use the sampler 'ddpm' (its ancestral step)",
            process.kind()
        )));
    }
    Ok(())
}

/// [`sample`], with `blur_clip_x0` clipping `x̂` inside the blurring step (Gaussian samplers
/// clip in the denoiser instead).
#[allow(clippy::too_many_arguments)]
fn run<R: Rng + ?Sized>(
    process: &Process,
    denoiser: &dyn Denoise,
    kind: SamplerKind,
    steps: usize,
    z1: Tensor<4>,
    rng: &mut R,
    blur_clip_x0: bool,
    on_step: &mut dyn FnMut(usize, usize),
) -> Result<Tensor<4>> {
    if steps == 0 {
        return Err(Error::invalid(
            "the number of sampling steps must be at least 1",
        ));
    }
    check_sampler(process, kind)?;
    let gaussian = match process {
        Process::Gaussian(g) => g,
        Process::Blurring(b) => {
            return blurring_sample(b, denoiser, steps, z1, rng, blur_clip_x0, on_step);
        }
    };
    let schedule = gaussian.schedule();
    match kind {
        SamplerKind::Ddpm | SamplerKind::Ddim { .. } => {
            let eta = match kind {
                SamplerKind::Ddim { eta } => eta,
                _ => 1.0,
            };
            let mut z = z1;
            let shape = z.dims();
            let device = z.device();
            for i in 0..steps {
                let lt = schedule.log_snr(1.0 - i as f64 / steps as f64);
                let ls = schedule.log_snr(1.0 - (i + 1) as f64 / steps as f64);
                let x0_hat = denoiser.denoise(z.clone(), lt).x0_hat;
                let last = i + 1 == steps;
                let xi = (!last && eta > 0.0).then(|| normal(shape, rng, &device));
                z = if kind == SamplerKind::Ddpm {
                    ddpm_step(z, x0_hat, xi, lt, ls)
                } else {
                    ddim_step(z, x0_hat, xi, lt, ls, eta)
                };
                on_step(i + 1, steps);
            }
            Ok(z / alpha_from_log_snr(schedule.log_snr(0.0)))
        }
        SamplerKind::DpmPp2m => {
            let (lo, hi) = (schedule.log_snr(1.0), schedule.log_snr(0.0));
            let levels: Vec<f64> = (0..steps)
                .map(|i| {
                    if steps == 1 {
                        lo
                    } else {
                        lo + (hi - lo) * i as f64 / (steps - 1) as f64
                    }
                })
                .collect();
            Ok(dpmpp_2m(denoiser, z1, &levels, on_step))
        }
    }
}

/// What to draw: `shape[0]` images with `kind` for `steps` evaluations from prior noise seeded by
/// `seed`; class-conditional models take `labels` (one per image), with classifier-free guidance
/// when `guidance ≠ 1`.
#[derive(Debug, Clone, PartialEq)]
pub struct Generate {
    /// Sampler.
    pub kind: SamplerKind,
    /// Network evaluations.
    pub steps: usize,
    /// `[N, C, H, W]`.
    pub shape: [usize; 4],
    /// Class per image (`None`: unconditional).
    pub labels: Option<Vec<i64>>,
    /// Guidance weight (1: none).
    pub guidance: f64,
    /// Clip `x̂` to `[-1, 1]`.
    pub clip_x0: bool,
    /// Seed of the prior noise and the sampler's noise.
    pub seed: u64,
}

/// Draws images from `model` as described by `request`.
pub fn generate(
    model: &crate::denoiser::DiffusionModel,
    process: &Process,
    request: &Generate,
    device: &burn::tensor::Device,
    on_step: &mut dyn FnMut(usize, usize),
) -> Result<Tensor<4>> {
    use crate::denoiser::{GuidedDenoiser, ModelDenoiser};
    use burn::tensor::{Int, TensorData};
    use rand::SeedableRng;

    let r = request;
    check_sampler(process, r.kind)?;
    let blurring = process.as_blurring().is_some();
    if blurring && model.parameterization() != crate::denoiser::Parameterization::Eps {
        return Err(Error::invalid(format!(
            "the blurring process needs an ε-predicting model (model.parameterization = \"eps\"), this one is {}",
            model.parameterization().name()
        )));
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(r.seed);
    let z1 = process.prior(normal(r.shape, &mut rng, device));
    let label_tensor = r.labels.clone().map(|l| {
        let n = l.len();
        Tensor::<1, Int>::from_data(TensorData::new(l, [n]), device)
    });
    // The blurring step clips x̂ itself (in pixel space, through the DCT); the denoiser's clip
    // assumes an isotropic process.
    let clip_x0 = r.clip_x0 && !blurring;
    let blur_clip = r.clip_x0 && blurring;
    match label_tensor {
        Some(labels) if r.guidance != 1.0 => {
            let d = GuidedDenoiser {
                model,
                labels,
                guidance: r.guidance,
                clip_x0,
            };
            run(
                process, &d, r.kind, r.steps, z1, &mut rng, blur_clip, on_step,
            )
        }
        labels => {
            let d = ModelDenoiser {
                model,
                labels,
                clip_x0,
            };
            run(
                process, &d, r.kind, r.steps, z1, &mut rng, blur_clip, on_step,
            )
        }
    }
}

#[cfg(test)]
mod tests;
