//! ④ Forward processes: how data becomes noise (`corrupt`), what pure noise looks like (`prior`), and
//! the ancestral (posterior) step back. Processes turn the host-side schedule numbers into tensors.
//!
//! The Gaussian process is isotropic (`z_t = α_t x + σ_t ε`), so every sampler applies to it.
//! Processes that are not isotropic (blurring, Laplacian) supply their own posterior step.

mod blurring;
mod gaussian;

pub use blurring::{BlurringProcess, DELTA, StepCoefficients, frequencies};
pub use gaussian::GaussianProcess;

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::schedule::{LogSnrSchedule, Schedule, ScheduleConfig};

/// Which forward process; a TOML table with a `kind` key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ProcessConfig {
    /// Isotropic Gaussian diffusion (DDPM / VDM / simple diffusion).
    Gaussian {
        /// The logSNR schedule.
        #[serde(default)]
        schedule: ScheduleConfig,
    },
    /// Blurring diffusion (Hoogeboom & Salimans 2023): Gaussian diffusion in the DCT basis whose
    /// high frequencies fade first. Needs ε-prediction and the `ddpm` (ancestral) sampler.
    Blurring {
        /// The scalar logSNR schedule (`a_t`, `σ_t`); the paper's clipped cosine on [−10, 10] by default.
        #[serde(default = "blurring_schedule")]
        schedule: ScheduleConfig,
        /// `σ_B,max`: the blur (in pixels) at `t = 1`; 0 is Gaussian diffusion.
        blur_sigma_max: f64,
        /// `d_min`: the floor of the per-frequency scale `d_t` (paper: 0.001).
        #[serde(default = "default_min_scale")]
        min_scale: f64,
    },
}

/// The paper's noise schedule: cosine with logSNR clipped to [−10, 10].
fn blurring_schedule() -> ScheduleConfig {
    ScheduleConfig::Cosine {
        logsnr_min: -10.0,
        logsnr_max: 10.0,
    }
}

fn default_min_scale() -> f64 {
    0.001
}

impl Default for ProcessConfig {
    fn default() -> Self {
        ProcessConfig::Gaussian {
            schedule: ScheduleConfig::default(),
        }
    }
}

impl ProcessConfig {
    /// The logSNR schedule's configuration.
    pub fn schedule(&self) -> &ScheduleConfig {
        match self {
            ProcessConfig::Gaussian { schedule } | ProcessConfig::Blurring { schedule, .. } => {
                schedule
            }
        }
    }

    /// Builds the process.
    pub fn build(&self) -> Result<Process> {
        Ok(match self {
            ProcessConfig::Gaussian { schedule } => {
                Process::Gaussian(GaussianProcess::new(schedule.build()?))
            }
            ProcessConfig::Blurring {
                schedule,
                blur_sigma_max,
                min_scale,
            } => Process::Blurring(BlurringProcess::new(
                schedule.build()?,
                *blur_sigma_max,
                *min_scale,
            )?),
        })
    }
}

/// A built forward process.
#[derive(Debug, Clone)]
pub enum Process {
    /// See [`GaussianProcess`].
    Gaussian(GaussianProcess),
    /// See [`BlurringProcess`].
    Blurring(BlurringProcess),
}

impl Process {
    /// The logSNR schedule that drives the process (the noise level the network is told).
    pub fn schedule(&self) -> &Schedule {
        match self {
            Process::Gaussian(p) => p.schedule(),
            Process::Blurring(p) => p.schedule(),
        }
    }

    /// `λ(t)`.
    pub fn log_snr(&self, t: f64) -> f64 {
        self.schedule().log_snr(t)
    }

    /// `z_t` from clean data `x0`, per-sample times `t` and noise `eps` (same shape as `x0`).
    pub fn corrupt(&self, x0: Tensor<4>, t: &[f64], eps: Tensor<4>) -> Tensor<4> {
        match self {
            Process::Gaussian(p) => p.corrupt(x0, t, eps),
            Process::Blurring(p) => p.corrupt(x0, t, eps),
        }
    }

    /// The isotropic Gaussian view of the process, for samplers that need scalar `α_t, σ_t`.
    pub fn as_gaussian(&self) -> Option<&GaussianProcess> {
        match self {
            Process::Gaussian(p) => Some(p),
            Process::Blurring(_) => None,
        }
    }

    /// The blurring process, if this is one.
    pub fn as_blurring(&self) -> Option<&BlurringProcess> {
        match self {
            Process::Blurring(p) => Some(p),
            Process::Gaussian(_) => None,
        }
    }

    /// A short name for messages: `gaussian` or `blurring`.
    pub fn kind(&self) -> &'static str {
        match self {
            Process::Gaussian(_) => "gaussian",
            Process::Blurring(_) => "blurring",
        }
    }

    /// A sample from the prior at `t = 1`, given standard normal `noise`. For both processes this
    /// is `N(0, I)`: the signal left at `t = 1` (`α_1 ≤ a_1`, e.g. 0.0067 at `λ_min = −10`) is
    /// neglected, as in the papers.
    pub fn prior(&self, noise: Tensor<4>) -> Tensor<4> {
        match self {
            Process::Gaussian(_) | Process::Blurring(_) => noise,
        }
    }
}
