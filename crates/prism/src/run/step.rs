//! One training step's loss: times, noise, the forward process, the network and the objective.
//! The trainer and `prism bench` both call [`batch_loss`], so the benchmark times the step that
//! training runs.

use std::ops::Range;

use burn::tensor::{Int, Tensor, TensorData};
use rand::{Rng, RngCore};

use crate::Result;
use crate::config::ExperimentConfig;
use crate::denoiser::DiffusionModel;
use crate::nn::Condition;
use crate::objective::LossInputs;
use crate::process::{DiffusionProcess, Level};
use crate::schedule::LogSnrSchedule;
use crate::tensor::normal;

/// The config's objective on the images `shard` (a range of batch indices) of the clean batch
/// `x0` (`[B, C, H, W]`) under `cond`: the mean loss of those images (`0..B`: of the batch).
///
/// Draws, in this order from `rng`: the times (the process's [`DiffusionProcess::draw_times`]:
/// one offset of stratified times), the noise `ε`, and the seed of the device generator (dropout
/// masks) — always for the whole batch, so that the ranks of a data-parallel step, each given
/// its shard, use exactly the times and noise that one process would for the whole batch (the
/// dropout masks differ: the device generator of a shard is seeded with the shard's start
/// added). The process groups the batch by state shape ([`DiffusionProcess::training_groups`]);
/// each group is corrupted, `z_t = process.corrupt(x0, t, ε)`, and scored by the objective
/// (formula sheet §1, with the multiscale loss of §2 where the config asks for it) on the model's
/// raw output; the loss is the group losses weighted by their share of the batch, times the
/// process's stage weights ([`DiffusionProcess::group_weight`]). The process gives the state's
/// clean data and noise (`at_state`), the network's logSNR (`network_log_snr`), the target
/// (`target`) and `ε̂` (`predict`).
pub fn batch_loss(
    cfg: &ExperimentConfig,
    process: &dyn DiffusionProcess,
    model: &DiffusionModel,
    x0: Tensor<4>,
    cond: &Condition,
    rng: &mut dyn RngCore,
    shard: Range<usize>,
) -> Result<Tensor<1>> {
    let device = x0.device();
    let dims = x0.dims();
    let times = process.draw_times(dims[0], rng);
    let eps = normal(dims, rng, &device);
    device.seed(rng.random::<u64>().wrapping_add(shard.start as u64));
    if shard.end > dims[0] || shard.is_empty() {
        return Err(crate::Error::invalid(format!(
            "the shard {shard:?} of a batch of {}",
            dims[0]
        )));
    }
    let (x0, eps, times, cond) = if shard.len() == dims[0] {
        (x0, eps, times, cond.clone())
    } else {
        let keep: Vec<usize> = shard.clone().collect();
        let idx = Tensor::<1, Int>::from_data(
            TensorData::new(
                keep.iter().map(|&i| i as i64).collect::<Vec<_>>(),
                [keep.len()],
            ),
            &device,
        );
        (
            x0.select(0, idx.clone()),
            eps.select(0, idx),
            times[shard].to_vec(),
            cond.select(&keep),
        )
    };
    let cond = &cond;
    let b = times.len();
    let groups = process.training_groups(&times);
    if let [group] = groups.as_slice()
        && group.len() == b
        && times.iter().all(|&t| process.group_weight(t) == 1.0)
    {
        return group_loss(cfg, process, model, x0, &times, eps, cond);
    }
    let mut total: Option<Tensor<1>> = None;
    for group in groups.iter().filter(|g| !g.is_empty()) {
        let idx = Tensor::<1, Int>::from_data(
            TensorData::new(
                group.iter().map(|&i| i as i64).collect::<Vec<_>>(),
                [group.len()],
            ),
            &device,
        );
        let t: Vec<f64> = group.iter().map(|&i| times[i]).collect();
        let weight: f64 = t.iter().map(|&t| process.group_weight(t)).sum::<f64>() / b as f64;
        let loss = group_loss(
            cfg,
            process,
            model,
            x0.clone().select(0, idx.clone()),
            &t,
            eps.clone().select(0, idx),
            &cond.select(group),
        )? * weight;
        total = Some(match total {
            Some(sum) => sum + loss,
            None => loss,
        });
    }
    total.ok_or_else(|| crate::Error::invalid("an empty training batch"))
}

/// The objective on one group of samples that share a state shape.
fn group_loss(
    cfg: &ExperimentConfig,
    process: &dyn DiffusionProcess,
    model: &DiffusionModel,
    x0: Tensor<4>,
    times: &[f64],
    eps: Tensor<4>,
    cond: &Condition,
) -> Result<Tensor<1>> {
    let schedule = process.schedule();
    let dlog: Vec<f64> = times.iter().map(|&t| schedule.dlog_snr_dt(t)).collect();
    let z = process.corrupt(x0.clone(), times, eps.clone())?;
    let (x0, eps) = process.at_state(x0, eps, times)?;
    let levels: Vec<Level> = times.iter().map(|&t| process.level(t)).collect();
    let log_snr: Vec<f64> = levels
        .iter()
        .map(|&l| process.network_log_snr(l, z.dims()))
        .collect();
    let raw = model.raw(z.clone(), &log_snr, cond)?;
    let p = model.parameterization();
    let target = process.target(p, x0, eps.clone(), times)?;
    let eps_hat = process.predict(p, raw.clone(), z, &levels)?.eps_hat;
    Ok(cfg.objective.loss(
        p,
        LossInputs {
            raw,
            target,
            eps,
            eps_hat,
            log_snr: &log_snr,
            dlog_snr_dt: &dlog,
        },
    ))
}
