//! Clipped cosine logSNR schedule, optionally shifted by resolution (formula sheet §1;
//! Kingma et al. 2021 for the clipping, Hoogeboom et al. 2023 §3.1 for the shift).

use serde::{Deserialize, Serialize};

use super::{LogSnrSchedule, check_clip};
use crate::{Error, Result};

/// How clipping combines with the resolution shift. Public code does both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShiftClip {
    /// Clip the base cosine to `[λ_min, λ_max]`, then add the shift: the range moves to
    /// `[λ_min + shift, λ_max + shift]`. This is the paper's pseudo-code
    /// (`logsnr_schedule_cosine(t) + 2 log(noise_d/image_d)`) and the default.
    #[default]
    ClipThenShift,
    /// Shift the clip limits so that the shifted schedule still spans exactly `[λ_min, λ_max]`.
    ShiftedLimits,
}

/// `λ(t) = −2 log tan(t_min + t (t_max − t_min)) + shift`,
/// `t_min = atan(exp(−λ_hi/2))`, `t_max = atan(exp(−λ_lo/2))`.
#[derive(Debug, Clone, PartialEq)]
pub struct CosineSchedule {
    t_min: f64,
    t_max: f64,
    shift: f64,
}

impl CosineSchedule {
    /// The clipped cosine schedule with `λ(0) = logsnr_max`, `λ(1) = logsnr_min`.
    pub fn new(logsnr_min: f64, logsnr_max: f64) -> Result<Self> {
        check_clip(logsnr_min, logsnr_max)?;
        Ok(Self::with_limits(logsnr_min, logsnr_max, 0.0))
    }

    /// The cosine schedule shifted so that a `image_size²` image has the SNR a `reference_size²`
    /// image had: `λ_shift = λ + 2 log(reference_size/image_size)`.
    pub fn shifted(
        logsnr_min: f64,
        logsnr_max: f64,
        image_size: usize,
        reference_size: usize,
        clip: ShiftClip,
    ) -> Result<Self> {
        check_clip(logsnr_min, logsnr_max)?;
        if image_size == 0 || reference_size == 0 {
            return Err(Error::config(format!(
                "schedule: image_size and reference_size must be positive, got {image_size} and {reference_size}"
            )));
        }
        let shift = 2.0 * (reference_size as f64 / image_size as f64).ln();
        Ok(match clip {
            ShiftClip::ClipThenShift => Self::with_limits(logsnr_min, logsnr_max, shift),
            ShiftClip::ShiftedLimits => {
                Self::with_limits(logsnr_min - shift, logsnr_max - shift, shift)
            }
        })
    }

    fn with_limits(lo: f64, hi: f64, shift: f64) -> Self {
        Self {
            t_min: (-hi / 2.0).exp().atan(),
            t_max: (-lo / 2.0).exp().atan(),
            shift,
        }
    }

    /// The additive shift `2 log(r/d)` (0 for the unshifted schedule).
    pub fn shift(&self) -> f64 {
        self.shift
    }
}

impl LogSnrSchedule for CosineSchedule {
    fn log_snr(&self, t: f64) -> f64 {
        let u = self.t_min + t * (self.t_max - self.t_min);
        -2.0 * u.tan().ln() + self.shift
    }

    /// `dλ/dt = −2 (t_max − t_min) / (sin u cos u) = −4 (t_max − t_min) / sin 2u`.
    fn dlog_snr_dt(&self, t: f64) -> f64 {
        let u = self.t_min + t * (self.t_max - self.t_min);
        -4.0 * (self.t_max - self.t_min) / (2.0 * u).sin()
    }

    /// Closed form: `t = (atan(exp(−(λ − shift)/2)) − t_min)/(t_max − t_min)`, clamped.
    fn t_of_log_snr(&self, log_snr: f64) -> f64 {
        let u = (-(log_snr - self.shift) / 2.0).exp().atan();
        ((u - self.t_min) / (self.t_max - self.t_min)).clamp(0.0, 1.0)
    }
}
