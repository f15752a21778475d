//! Sampling segments: the stretches of time between a process's resolution switches, inside which
//! the state keeps its shape. A process at one resolution has one segment, `t` from 1 to 0.

use super::spacing::{Spacing, time_of_sigma};
use crate::process::DiffusionProcess;
use crate::{Error, Result};

/// `from > to`: a stretch of time sampled with `steps` network evaluations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    /// Start (noisier end).
    pub from: f64,
    /// End.
    pub to: f64,
    /// Network evaluations in the segment.
    pub steps: usize,
}

/// Splits `steps` evaluations over the segments between `process`'s switch times, in proportion
/// to each segment's length in `t` and at least one each (largest remainders first).
pub fn segments(process: &dyn DiffusionProcess, steps: usize) -> Result<Vec<Segment>> {
    let mut bounds = vec![1.0];
    bounds.extend(process.switch_times());
    bounds.push(0.0);
    if bounds
        .windows(2)
        .any(|w| w[0].partial_cmp(&w[1]) != Some(std::cmp::Ordering::Greater))
    {
        return Err(Error::invalid(format!(
            "the {} process's switch times {:?} are not decreasing inside (0, 1)",
            process.kind(),
            process.switch_times()
        )));
    }
    let n = bounds.len() - 1;
    if steps < n {
        return Err(Error::invalid(format!(
            "the {} process switches resolution {} times: sampling needs at least {n} steps, got {steps}",
            process.kind(),
            n - 1
        )));
    }
    let lengths: Vec<f64> = bounds.windows(2).map(|w| w[0] - w[1]).collect();
    let spare = (steps - n) as f64;
    let mut counts: Vec<usize> = lengths
        .iter()
        .map(|l| 1 + (spare * l).floor() as usize)
        .collect();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| {
        let frac = |i: usize| spare * lengths[i] - (spare * lengths[i]).floor();
        frac(b).total_cmp(&frac(a))
    });
    let mut k = 0;
    while counts.iter().sum::<usize>() < steps {
        counts[order[k % n]] += 1;
        k += 1;
    }
    Ok(bounds
        .windows(2)
        .zip(counts)
        .map(|(w, steps)| Segment {
            from: w[0],
            to: w[1],
            steps,
        })
        .collect())
}

/// `segs` cut to the σ̄ bounds of `spacing`: the first segment starts at `t(σ̄_max)`, the last
/// ends at `t(σ̄_min)`; an error when a bound falls outside its segment (past a resolution switch)
/// or outside the process's range.
pub(super) fn bounded(
    process: &dyn DiffusionProcess,
    mut segs: Vec<Segment>,
    spacing: &Spacing,
) -> Result<Vec<Segment>> {
    if let Some(hi) = spacing.sigma_max {
        let t = time_of_sigma(process, "--sigma-max", hi)?;
        let first = &mut segs[0];
        if t <= first.to {
            return Err(Error::invalid(format!(
                "--sigma-max {hi} (t = {t:.4}) lies past the {} process's first resolution switch at t = {}",
                process.kind(),
                first.to
            )));
        }
        first.from = t;
    }
    if let Some(lo) = spacing.sigma_min {
        let t = time_of_sigma(process, "--sigma-min", lo)?;
        let last = segs.last_mut().expect("at least one segment");
        if t >= last.from {
            return Err(Error::invalid(format!(
                "--sigma-min {lo} (t = {t:.4}) lies above the start of the {} process's last segment (t = {})",
                process.kind(),
                last.from
            )));
        }
        last.to = t;
    }
    Ok(segs)
}
