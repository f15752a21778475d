//! ④ Forward processes: how data becomes noise (`corrupt`), what pure noise looks like (`prior`), and
//! the ancestral (posterior) step back. Processes turn the host-side schedule numbers into tensors.
//!
//! The Gaussian process is isotropic (`z_t = α_t x + σ_t ε`), so every sampler applies to it.
//! Processes that are not isotropic (blurring, Laplacian) supply their own posterior step.

mod gaussian;

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
}

impl Default for ProcessConfig {
    fn default() -> Self {
        ProcessConfig::Gaussian {
            schedule: ScheduleConfig::default(),
        }
    }
}

impl ProcessConfig {
    /// Builds the process.
    pub fn build(&self) -> Result<Process> {
        Ok(match self {
            ProcessConfig::Gaussian { schedule } => {
                Process::Gaussian(GaussianProcess::new(schedule.build()?))
            }
        })
    }
}

/// A built forward process.
#[derive(Debug, Clone)]
pub enum Process {
    /// See [`GaussianProcess`].
    Gaussian(GaussianProcess),
}

impl Process {
    /// The logSNR schedule that drives the process (the noise level the network is told).
    pub fn schedule(&self) -> &Schedule {
        match self {
            Process::Gaussian(p) => p.schedule(),
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
        }
    }

    /// The isotropic Gaussian view of the process, for samplers that need scalar `α_t, σ_t`.
    pub fn as_gaussian(&self) -> Option<&GaussianProcess> {
        match self {
            Process::Gaussian(p) => Some(p),
        }
    }

    /// A sample from the prior at `t = 1`, given standard normal `noise`.
    pub fn prior(&self, noise: Tensor<4>) -> Tensor<4> {
        match self {
            Process::Gaussian(_) => noise,
        }
    }
}
