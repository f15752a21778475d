//! Interpolated schedule of simple diffusion §3.1 (e.g. "32→256" at 512²):
//! `λ(t) = t·λ_low(t) + (1 − t)·λ_high(t)`, where `λ_low` is shifted to the low reference
//! resolution (followed near `t = 1`) and `λ_high` to the high one (followed near `t = 0`).

use super::{CosineSchedule, LogSnrSchedule};

/// See the module docs.
#[derive(Debug, Clone, PartialEq)]
pub struct InterpolatedSchedule {
    low: CosineSchedule,
    high: CosineSchedule,
}

impl InterpolatedSchedule {
    /// `low`: the schedule followed at `t = 1`; `high`: the one followed at `t = 0`.
    pub fn new(low: CosineSchedule, high: CosineSchedule) -> Self {
        Self { low, high }
    }
}

impl LogSnrSchedule for InterpolatedSchedule {
    fn log_snr(&self, t: f64) -> f64 {
        t * self.low.log_snr(t) + (1.0 - t) * self.high.log_snr(t)
    }

    /// Product rule: `λ_low − λ_high + t λ_low' + (1 − t) λ_high'`.
    fn dlog_snr_dt(&self, t: f64) -> f64 {
        self.low.log_snr(t) - self.high.log_snr(t)
            + t * self.low.dlog_snr_dt(t)
            + (1.0 - t) * self.high.dlog_snr_dt(t)
    }
}
