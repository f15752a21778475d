//! DDPM's linear-β schedule (Ho et al. 2020) as a continuous logSNR.
//!
//! `β_j = linspace(β_start, β_end, N)`, `ᾱ_k = Π_{j<k} (1 − β_j)`. With knots
//! `L_k = Σ_{j<k} log(1 − β_j)`, `log ᾱ(t)` is the linear interpolation of `L` at `u = t·N`, so
//! `ᾱ((i + 1)/N)` is exactly the discrete `alphas_cumprod[i]` of diffusers' `DDPMScheduler`.
//! `λ = log ᾱ − log(1 − ᾱ)`, clipped above at `λ_max` (it is +∞ at `t = 0`).

use super::LogSnrSchedule;
use crate::{Error, Result};

/// See the module docs.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearBetaSchedule {
    /// `L_0 … L_N` (`L_0 = 0`), decreasing.
    log_alpha_bar: Vec<f64>,
    logsnr_max: f64,
}

impl LinearBetaSchedule {
    /// Builds the knots; needs `0 < β_start ≤ β_end < 1` and `N ≥ 1`.
    pub fn new(
        beta_start: f64,
        beta_end: f64,
        num_train_steps: usize,
        logsnr_max: f64,
    ) -> Result<Self> {
        if !(beta_start > 0.0 && beta_start <= beta_end && beta_end < 1.0) || num_train_steps == 0 {
            return Err(Error::config(format!(
                "schedule: linear_beta needs 0 < beta_start <= beta_end < 1 and num_train_steps >= 1, \
                 got beta_start = {beta_start}, beta_end = {beta_end}, num_train_steps = {num_train_steps}"
            )));
        }
        if !logsnr_max.is_finite() {
            return Err(Error::config("schedule: logsnr_max must be finite"));
        }
        let n = num_train_steps;
        let mut log_alpha_bar = Vec::with_capacity(n + 1);
        log_alpha_bar.push(0.0);
        let mut acc = 0.0;
        for j in 0..n {
            let beta = if n == 1 {
                beta_start
            } else {
                beta_start + (beta_end - beta_start) * j as f64 / (n - 1) as f64
            };
            acc += (-beta).ln_1p();
            log_alpha_bar.push(acc);
        }
        Ok(Self {
            log_alpha_bar,
            logsnr_max,
        })
    }

    fn steps(&self) -> usize {
        self.log_alpha_bar.len() - 1
    }

    /// Segment index `k` and fraction within it for time `t`.
    fn locate(&self, t: f64) -> (usize, f64) {
        let n = self.steps();
        let u = t.clamp(0.0, 1.0) * n as f64;
        let k = (u.floor() as usize).min(n - 1);
        (k, u - k as f64)
    }

    /// `log ᾱ(t)`.
    pub fn log_alpha_bar(&self, t: f64) -> f64 {
        let (k, frac) = self.locate(t);
        let l = &self.log_alpha_bar;
        l[k] + frac * (l[k + 1] - l[k])
    }
}

/// `λ = log ᾱ − log(1 − ᾱ)` from `log ᾱ < 0`.
fn log_snr_of_log_alpha_bar(log_alpha_bar: f64) -> f64 {
    log_alpha_bar - (-log_alpha_bar.exp_m1()).ln()
}

impl LogSnrSchedule for LinearBetaSchedule {
    fn log_snr(&self, t: f64) -> f64 {
        let la = self.log_alpha_bar(t);
        if la >= 0.0 {
            return self.logsnr_max;
        }
        log_snr_of_log_alpha_bar(la).min(self.logsnr_max)
    }

    /// `dλ/dt = N (L_{k+1} − L_k) / (1 − ᾱ)` on segment `k`; 0 where the clip is active.
    fn dlog_snr_dt(&self, t: f64) -> f64 {
        let la = self.log_alpha_bar(t);
        if la >= 0.0 || log_snr_of_log_alpha_bar(la) >= self.logsnr_max {
            return 0.0;
        }
        let (k, _) = self.locate(t);
        let l = &self.log_alpha_bar;
        self.steps() as f64 * (l[k + 1] - l[k]) / (-la.exp_m1())
    }

    /// Exact inverse of the piecewise-linear `log ᾱ`: `log ᾱ = log sigmoid(λ)`.
    fn t_of_log_snr(&self, log_snr: f64) -> f64 {
        if log_snr >= self.logsnr_max {
            return 0.0;
        }
        // log sigmoid(λ) = −softplus(−λ)
        let target = -((-log_snr).exp().ln_1p());
        let l = &self.log_alpha_bar;
        let n = self.steps();
        if target <= l[n] {
            return 1.0;
        }
        // l is decreasing: find k with l[k] ≥ target > l[k+1].
        let k = l
            .partition_point(|&v| v >= target)
            .saturating_sub(1)
            .min(n - 1);
        let frac = (target - l[k]) / (l[k + 1] - l[k]);
        (k as f64 + frac) / n as f64
    }
}
