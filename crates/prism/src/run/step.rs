//! One training step's loss: times, noise, the forward process, the network and the objective.
//! The trainer and `prism bench` both call [`batch_loss`], so the benchmark times the step that
//! training runs.

use burn::tensor::{Int, Tensor};
use rand::Rng;

use crate::config::ExperimentConfig;
use crate::denoiser::{DiffusionModel, NoiseLevels};
use crate::objective::LossInputs;
use crate::process::Process;
use crate::schedule::LogSnrSchedule;
use crate::tensor::normal;

/// The config's objective on clean images `x0` (`[B, C, H, W]`) with optional labels.
///
/// Draws, in this order from `rng`: the offset of the stratified times `t_i = (u₀ + i/B) mod 1`
/// (Kingma et al. 2021, App. I.1), the noise `ε`, and the seed of the device generator (dropout
/// masks). Then `z_t = process.corrupt(x0, t, ε)` and the objective (formula sheet §1, with the
/// multiscale loss of §2 where the config asks for it) on the model's raw output.
pub fn batch_loss(
    cfg: &ExperimentConfig,
    process: &Process,
    model: &DiffusionModel,
    x0: Tensor<4>,
    labels: Option<Tensor<1, Int>>,
    rng: &mut impl Rng,
) -> Tensor<1> {
    let device = x0.device();
    let dims = x0.dims();
    let b = dims[0];
    let u0: f64 = rng.random();
    let times: Vec<f64> = (0..b).map(|i| (u0 + i as f64 / b as f64).fract()).collect();
    let eps = normal(dims, rng, &device);
    device.seed(rng.random());
    let schedule = process.schedule();
    let log_snr: Vec<f64> = times.iter().map(|&t| schedule.log_snr(t)).collect();
    let dlog: Vec<f64> = times.iter().map(|&t| schedule.dlog_snr_dt(t)).collect();
    let z = process.corrupt(x0.clone(), &times, eps.clone());
    let levels = NoiseLevels::new(log_snr, &device);
    let raw = model.raw(z.clone(), &levels, labels);
    cfg.objective.loss(
        model.parameterization(),
        LossInputs {
            raw,
            z,
            x0,
            eps,
            levels: &levels,
            dlog_snr_dt: &dlog,
        },
    )
}
