//! ③ Host-side f64 logSNR schedules (formula sheet §1).
//!
//! Conventions: `t ∈ [0, 1]`, `t = 1` is pure noise; variance preserving, `z_t = α_t x + σ_t ε` with
//! `α_t² + σ_t² = 1`; `λ_t = log(α_t²/σ_t²)`, so `α_t² = sigmoid(λ_t)` and `σ_t² = sigmoid(−λ_t)`.
//! Every schedule is strictly decreasing in `t`, which makes the inverse `t(λ)` well defined.

mod cosine;
mod interpolated;
mod linear_beta;

pub use cosine::{CosineSchedule, ShiftClip};
pub use interpolated::InterpolatedSchedule;
pub use linear_beta::LinearBetaSchedule;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// `sigmoid(x) = 1/(1 + e^{−x})`, evaluated without overflow for large |x|.
pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// `α = sqrt(sigmoid(λ))`.
pub fn alpha_from_log_snr(log_snr: f64) -> f64 {
    sigmoid(log_snr).sqrt()
}

/// `σ = sqrt(sigmoid(−λ))`.
pub fn sigma_from_log_snr(log_snr: f64) -> f64 {
    sigmoid(-log_snr).sqrt()
}

/// A noise schedule expressed as logSNR over time.
pub trait LogSnrSchedule {
    /// `λ(t)`; decreasing, `λ(0)` is the least noisy level.
    fn log_snr(&self, t: f64) -> f64;

    /// `dλ/dt` (negative).
    fn dlog_snr_dt(&self, t: f64) -> f64;

    /// The inverse `t(λ)`, clamped to `[0, 1]` when `λ` lies outside the schedule's range.
    /// The default bisects the monotone `λ(t)` to machine precision.
    fn t_of_log_snr(&self, log_snr: f64) -> f64 {
        bisect_decreasing(|t| self.log_snr(t), log_snr)
    }

    /// `α_t`.
    fn alpha(&self, t: f64) -> f64 {
        alpha_from_log_snr(self.log_snr(t))
    }

    /// `σ_t`.
    fn sigma(&self, t: f64) -> f64 {
        sigma_from_log_snr(self.log_snr(t))
    }
}

/// Solves `f(t) = target` on `[0, 1]` for a decreasing `f` by bisection (clamped at the ends).
pub(crate) fn bisect_decreasing(f: impl Fn(f64) -> f64, target: f64) -> f64 {
    let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
    if target >= f(lo) {
        return lo;
    }
    if target <= f(hi) {
        return hi;
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if f(mid) > target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Which schedule to use; serialised as a TOML table with a `kind` key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ScheduleConfig {
    /// Clipped cosine: `λ(t) = −2 log tan(t_min + t (t_max − t_min))`.
    Cosine {
        /// Lower clip `λ_min` (at `t = 1`).
        #[serde(default = "default_logsnr_min")]
        logsnr_min: f64,
        /// Upper clip `λ_max` (at `t = 0`).
        #[serde(default = "default_logsnr_max")]
        logsnr_max: f64,
    },
    /// Cosine shifted by resolution (simple diffusion §3.1): `λ + 2 log(r/d)`.
    Shifted {
        /// Image side `d`.
        image_size: usize,
        /// Reference side `r` whose SNR the schedule reproduces (64 in the paper).
        #[serde(default = "default_reference_size")]
        reference_size: usize,
        /// Lower clip.
        #[serde(default = "default_logsnr_min")]
        logsnr_min: f64,
        /// Upper clip.
        #[serde(default = "default_logsnr_max")]
        logsnr_max: f64,
        /// How the clip interacts with the shift.
        #[serde(default)]
        clip: ShiftClip,
    },
    /// `λ(t) = t·λ_shift(low)(t) + (1 − t)·λ_shift(high)(t)` (simple diffusion §3.1).
    Interpolated {
        /// Image side `d`.
        image_size: usize,
        /// Reference resolution followed near `t = 1` (32 in the paper's 512² model).
        #[serde(default = "default_low_reference")]
        low_reference: usize,
        /// Reference resolution followed near `t = 0` (256 in the paper's 512² model).
        #[serde(default = "default_high_reference")]
        high_reference: usize,
        /// Lower clip.
        #[serde(default = "default_logsnr_min")]
        logsnr_min: f64,
        /// Upper clip.
        #[serde(default = "default_logsnr_max")]
        logsnr_max: f64,
        /// How the clip interacts with the shift.
        #[serde(default)]
        clip: ShiftClip,
    },
    /// DDPM's discrete linear-β schedule as a continuous logSNR (Ho et al. 2020).
    LinearBeta {
        /// `β_1`.
        #[serde(default = "default_beta_start")]
        beta_start: f64,
        /// `β_N`.
        #[serde(default = "default_beta_end")]
        beta_end: f64,
        /// `N`.
        #[serde(default = "default_num_train_steps")]
        num_train_steps: usize,
        /// Upper clip (λ is +∞ at `t = 0`).
        #[serde(default = "default_logsnr_max")]
        logsnr_max: f64,
    },
}

fn default_logsnr_min() -> f64 {
    -15.0
}
fn default_logsnr_max() -> f64 {
    15.0
}
fn default_reference_size() -> usize {
    64
}
fn default_low_reference() -> usize {
    32
}
fn default_high_reference() -> usize {
    256
}
fn default_beta_start() -> f64 {
    1e-4
}
fn default_beta_end() -> f64 {
    0.02
}
fn default_num_train_steps() -> usize {
    1000
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig::Cosine {
            logsnr_min: default_logsnr_min(),
            logsnr_max: default_logsnr_max(),
        }
    }
}

impl ScheduleConfig {
    /// The image side a resolution-aware schedule was made for (`None` for the others).
    pub fn image_size(&self) -> Option<usize> {
        match *self {
            ScheduleConfig::Shifted { image_size, .. }
            | ScheduleConfig::Interpolated { image_size, .. } => Some(image_size),
            _ => None,
        }
    }

    /// Validates the parameters and builds the schedule.
    pub fn build(&self) -> Result<Schedule> {
        Ok(match *self {
            ScheduleConfig::Cosine {
                logsnr_min,
                logsnr_max,
            } => Schedule::Cosine(CosineSchedule::new(logsnr_min, logsnr_max)?),
            ScheduleConfig::Shifted {
                image_size,
                reference_size,
                logsnr_min,
                logsnr_max,
                clip,
            } => Schedule::Cosine(CosineSchedule::shifted(
                logsnr_min,
                logsnr_max,
                image_size,
                reference_size,
                clip,
            )?),
            ScheduleConfig::Interpolated {
                image_size,
                low_reference,
                high_reference,
                logsnr_min,
                logsnr_max,
                clip,
            } => Schedule::Interpolated(InterpolatedSchedule::new(
                CosineSchedule::shifted(logsnr_min, logsnr_max, image_size, low_reference, clip)?,
                CosineSchedule::shifted(logsnr_min, logsnr_max, image_size, high_reference, clip)?,
            )),
            ScheduleConfig::LinearBeta {
                beta_start,
                beta_end,
                num_train_steps,
                logsnr_max,
            } => Schedule::LinearBeta(LinearBetaSchedule::new(
                beta_start,
                beta_end,
                num_train_steps,
                logsnr_max,
            )?),
        })
    }
}

/// A built schedule: one of the kinds above, dispatching [`LogSnrSchedule`].
#[derive(Debug, Clone)]
pub enum Schedule {
    /// Clipped cosine, possibly shifted.
    Cosine(CosineSchedule),
    /// Interpolation of two shifted cosines.
    Interpolated(InterpolatedSchedule),
    /// DDPM linear β.
    LinearBeta(LinearBetaSchedule),
}

impl LogSnrSchedule for Schedule {
    fn log_snr(&self, t: f64) -> f64 {
        match self {
            Schedule::Cosine(s) => s.log_snr(t),
            Schedule::Interpolated(s) => s.log_snr(t),
            Schedule::LinearBeta(s) => s.log_snr(t),
        }
    }

    fn dlog_snr_dt(&self, t: f64) -> f64 {
        match self {
            Schedule::Cosine(s) => s.dlog_snr_dt(t),
            Schedule::Interpolated(s) => s.dlog_snr_dt(t),
            Schedule::LinearBeta(s) => s.dlog_snr_dt(t),
        }
    }

    fn t_of_log_snr(&self, log_snr: f64) -> f64 {
        match self {
            Schedule::Cosine(s) => s.t_of_log_snr(log_snr),
            Schedule::Interpolated(s) => s.t_of_log_snr(log_snr),
            Schedule::LinearBeta(s) => s.t_of_log_snr(log_snr),
        }
    }
}

pub(crate) fn check_clip(logsnr_min: f64, logsnr_max: f64) -> Result<()> {
    if !(logsnr_min.is_finite() && logsnr_max.is_finite() && logsnr_min < logsnr_max) {
        return Err(Error::config(format!(
            "schedule: need finite logsnr_min < logsnr_max, got logsnr_min = {logsnr_min}, logsnr_max = {logsnr_max}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
