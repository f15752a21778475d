//! ④ Forward processes: how data becomes noise (`corrupt`), what pure noise looks like (`prior`),
//! how a network's output becomes `x̂` and `ε̂`, and the ancestral (posterior) step back. Each
//! process answers every question about itself through [`DiffusionProcess`]; no code outside this
//! module asks which process it holds.
//!
//! Adding a process: one new file here that implements [`DiffusionProcess`], and one variant of
//! [`ProcessConfig`] that builds it.
//!
//! - [`GaussianProcess`]: isotropic, `z_t = α_t x + σ_t ε`; every sampler applies.
//! - [`BlurringProcess`]: Gaussian diffusion in the DCT basis with per-frequency `α_t`; diagonal
//!   in that basis, so DDIM and DPM-Solver++ apply there too.
//! - [`LaplacianProcess`]: Laplacian pyramid bands fading at their own rates, the state dropping
//!   to lower resolutions; diagonal in a Haar basis.

mod blurring;
mod coefficients;
mod gaussian;
mod laplacian;
mod parameterization;

pub use blurring::{BlurringProcess, DELTA, StepCoefficients, blurring_step, frequencies};
pub use coefficients::{Coef, Coord, Diagonal, coef, zip_all};
pub use gaussian::{GaussianProcess, ddpm_step};
pub use laplacian::{LaplacianProcess, LaplacianSettings};
pub use parameterization::{NoiseLevels, Parameterization, Prediction};

use burn::tensor::{Device, Tensor};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::schedule::{LogSnrSchedule, Schedule, ScheduleConfig};
use crate::tensor::normal;

/// A point on the process's time axis: `t` and the logSNR `λ(t)` the network is told. Samplers
/// that step uniformly in λ (DPM-Solver++) carry the λ they chose, so it reaches the network
/// exactly.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Level {
    /// `t ∈ [0, 1]`.
    pub t: f64,
    /// `λ(t)` of the process's scalar schedule.
    pub log_snr: f64,
}

/// The inputs of one ancestral (posterior) step `t → s`, `s < t`.
#[derive(Debug, Clone)]
pub struct AncestralStep {
    /// The state at `t`.
    pub z_t: Tensor<4>,
    /// The denoiser's prediction at `z_t`.
    pub pred: Prediction,
    /// The noisier end.
    pub t: Level,
    /// The end the step lands on.
    pub s: Level,
    /// A standard normal draw of the state's shape (`None`: the posterior mean, for the last
    /// step).
    pub noise: Option<Tensor<4>>,
    /// Clip `x̂` to the data range `[-1, 1]` where the process defines it.
    pub clip_x0: bool,
}

/// A forward process `q(z_t | x)` and everything samplers, objectives and evaluation need to know
/// about it. Times run from `t = 0` (data) to `t = 1` (noise); states are `[B, C, H, W]`.
pub trait DiffusionProcess: std::fmt::Debug + Send + Sync {
    /// A short name for messages and file metadata: `gaussian`, `blurring`.
    fn kind(&self) -> &'static str;

    /// One line describing the process and its settings.
    fn describe(&self) -> String;

    /// What the process does at time `t`, for `prism forward` (logSNR and any extra state).
    fn describe_time(&self, t: f64) -> String {
        format!("logSNR = {:+.3}", self.log_snr(t))
    }

    /// The scalar logSNR schedule `λ(t)`: the noise level the network is told.
    fn schedule(&self) -> &Schedule;

    /// `λ(t)`.
    fn log_snr(&self, t: f64) -> f64 {
        self.schedule().log_snr(t)
    }

    /// The [`Level`] at time `t`.
    fn level(&self, t: f64) -> Level {
        Level {
            t,
            log_snr: self.log_snr(t),
        }
    }

    /// The [`Level`] whose logSNR is `log_snr` (its time by the schedule's inverse).
    fn level_at_log_snr(&self, log_snr: f64) -> Level {
        Level {
            t: self.schedule().t_of_log_snr(log_snr),
            log_snr,
        }
    }

    /// The state's shape at time `t` for outputs of shape `out`. Processes whose resolution
    /// changes with `t` return a smaller shape where the state lives at a lower resolution.
    fn state_shape(&self, out: [usize; 4], _t: f64) -> [usize; 4] {
        out
    }

    /// The times in `(0, 1)` where the state's shape changes, in decreasing order (the order in
    /// which sampling crosses them). Empty for processes at one resolution.
    fn switch_times(&self) -> Vec<f64> {
        Vec::new()
    }

    /// Moves a sampling state across the switch at `t` (from the shape just above `t` to the
    /// shape at `t`, for outputs of shape `out`), drawing any new noise from `rng`.
    fn switch(
        &self,
        z: Tensor<4>,
        _t: f64,
        _out: [usize; 4],
        _rng: &mut dyn RngCore,
    ) -> Result<Tensor<4>> {
        Ok(z)
    }

    /// A sample from the prior at `t = 1` for outputs of shape `out`: `N(0, I)` at the state's
    /// shape. The signal left at `t = 1` (`α_1`, e.g. 0.0067 at `λ_min = −10`) is neglected, as
    /// in the papers.
    fn prior(&self, out: [usize; 4], rng: &mut dyn RngCore, device: &Device) -> Tensor<4> {
        normal(self.state_shape(out, 1.0), rng, device)
    }

    /// How training draws a batch's times: stratified, `t_i = (u₀ + i/B) mod 1` with one uniform
    /// draw `u₀` (Kingma et al. 2021, App. I.1).
    fn draw_times(&self, batch: usize, rng: &mut dyn RngCore) -> Vec<f64> {
        use rand::Rng;
        let u0: f64 = rng.random();
        (0..batch)
            .map(|i| (u0 + i as f64 / batch as f64).fract())
            .collect()
    }

    /// How a training batch with times `t` is grouped: the samples of one group share a state
    /// shape and go through the network together. One group for processes at one resolution.
    fn training_groups(&self, t: &[f64]) -> Vec<Vec<usize>> {
        vec![(0..t.len()).collect()]
    }

    /// The loss weight of a training sample at time `t`, relative to the others of its batch (a
    /// process at several resolutions weights its stages; 1 otherwise).
    fn group_weight(&self, _t: f64) -> f64 {
        1.0
    }

    /// `z_t` from clean data `x0`, per-sample times `t` and noise `eps` (same shape as `x0`), at
    /// the state's shape at `t` (all `t` of one training group).
    fn corrupt(&self, x0: Tensor<4>, t: &[f64], eps: Tensor<4>) -> Result<Tensor<4>>;

    /// The signal part of `z_t` for clean data `x0` at one time `t`, split into the process's
    /// frequency bands (finest first), each at the data's resolution and in its units: for
    /// pictures (`prism forward --bands`). The default is one band, the noise-free state
    /// `corrupt(x0, t, 0)` (a process at one resolution).
    fn signal_bands(&self, x0: Tensor<4>, t: f64) -> Result<Vec<Tensor<4>>> {
        let zeros = x0.zeros_like();
        Ok(vec![self.corrupt(x0, &[t], zeros)?])
    }

    /// The clean data and the noise as the state at `t` sees them (all `t` of one training
    /// group): the state is `α ⊙ x + σ ε` in these. The identity for processes at one
    /// resolution.
    fn at_state(
        &self,
        x0: Tensor<4>,
        eps: Tensor<4>,
        _t: &[f64],
    ) -> Result<(Tensor<4>, Tensor<4>)> {
        Ok((x0, eps))
    }

    /// The network's training target for parameterisation `p` from the state's clean data and
    /// noise ([`DiffusionProcess::at_state`]) at per-sample times `t`. The default is the
    /// isotropic target with the scalar schedule's `α`, `σ`.
    fn target(
        &self,
        p: Parameterization,
        x0: Tensor<4>,
        eps: Tensor<4>,
        t: &[f64],
    ) -> Result<Tensor<4>> {
        let n = NoiseLevels::new(t.iter().map(|&t| self.log_snr(t)).collect(), &x0.device());
        Ok(p.target(x0, eps, &n))
    }

    /// The logSNR the network is told at `level` for a state of shape `state` (the level's own
    /// for a process at one resolution).
    fn network_log_snr(&self, level: Level, _state: [usize; 4]) -> f64 {
        level.log_snr
    }

    /// The parameterisations a network of this process may use.
    fn parameterizations(&self) -> &'static [Parameterization] {
        &[
            Parameterization::Eps,
            Parameterization::V,
            Parameterization::X,
        ]
    }

    /// `x̂` and `ε̂` from a network output `raw` of parameterisation `p` at state `z`, one level
    /// per sample. The default is the isotropic conversion with per-sample `α`, `σ`.
    fn predict(
        &self,
        p: Parameterization,
        raw: Tensor<4>,
        z: Tensor<4>,
        levels: &[Level],
    ) -> Result<Prediction> {
        let n = NoiseLevels::new(levels.iter().map(|l| l.log_snr).collect(), &z.device());
        Ok(p.prediction(raw, z, &n))
    }

    /// One ancestral (posterior) step, see [`AncestralStep`].
    fn ancestral_step(&self, step: AncestralStep) -> Result<Tensor<4>>;

    /// The image estimate from a final state at `t = 0`: `z_0 / α_0` in the process's terms.
    fn finish(&self, z0: Tensor<4>) -> Result<Tensor<4>>;

    /// Per-coordinate `α`, `σ` and `λ` at `level` in the orthonormal basis where the process is
    /// diagonal ([`DiffusionProcess::to_basis`]), for states of shape `state`: what DDIM and
    /// DPM-Solver++ need. `None`: the process has no such basis and only ancestral sampling
    /// applies.
    fn diagonal(&self, level: Level, state: [usize; 4]) -> Option<Diagonal>;

    /// Whether the process has the diagonal basis of [`DiffusionProcess::diagonal`] (and so DDIM
    /// and DPM-Solver++ apply to it).
    fn is_diagonal(&self) -> bool {
        true
    }

    /// The orthonormal transform into the basis of [`DiffusionProcess::diagonal`] (identity for
    /// the isotropic process).
    fn to_basis(&self, z: Tensor<4>) -> Result<Tensor<4>> {
        Ok(z)
    }

    /// From the basis of [`DiffusionProcess::diagonal`] back to a state of shape `state`: the
    /// inverse of [`DiffusionProcess::to_basis`].
    fn to_state(&self, u: Tensor<4>, _state: [usize; 4]) -> Result<Tensor<4>> {
        Ok(u)
    }

    /// Whether [`DiffusionProcess::predict`] acts pixel by pixel (per-sample scalar `α`, `σ`),
    /// so that a state may be denoised in tiles whose predictions are blended
    /// ([`crate::denoiser::TiledDenoiser`]): true for the isotropic process only (the blurring
    /// process converts in the DCT basis of the whole image).
    fn is_pointwise(&self) -> bool {
        false
    }

    /// Whether the continuous-time ELBO (bits/dim, the `elbo` weighting) is that of this
    /// process: true for the isotropic process only.
    fn has_elbo(&self) -> bool {
        false
    }
}

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
    /// high frequencies fade first. Needs ε-prediction.
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
    /// Laplacian pyramid diffusion (NVIDIA Edify Image): the image's Laplacian bands fade at
    /// their own rates, finest first, and the state drops to the next lower resolution at each
    /// band's switch time. Needs v- or x-prediction.
    Laplacian {
        /// The scalar logSNR schedule (`a(t)`, `σ(t)`).
        #[serde(default)]
        schedule: ScheduleConfig,
        /// `K ∈ 2..=4`: the number of bands (and resolutions).
        levels: usize,
        /// `t_1 < … < t_{K−1}` in (0, 1): band `k` (finest first) has no signal from `t_k` on.
        switch_times: Vec<f64>,
        /// `s_k < t_k`: when band `k` starts to fade (all 0 when absent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fade_starts: Option<Vec<f64>>,
        /// The side of the images (equal to `data.image_size`): a state's side tells its level.
        image_size: usize,
        /// Loss weight per resolution stage, full resolution first (all 1 when absent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stage_weights: Option<Vec<f64>>,
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

/// A built forward process.
pub type Process = Box<dyn DiffusionProcess>;

impl ProcessConfig {
    /// The side of the images a resolution-changing process was made for (`None` for the
    /// others).
    pub fn image_size(&self) -> Option<usize> {
        match self {
            ProcessConfig::Laplacian { image_size, .. } => Some(*image_size),
            _ => None,
        }
    }

    /// The smallest side a state takes (the network must accept it); `None` for processes at one
    /// resolution.
    pub fn smallest_side(&self) -> Option<usize> {
        match self {
            ProcessConfig::Laplacian {
                image_size, levels, ..
            } => Some(image_size >> levels.saturating_sub(1).min(usize::BITS as usize - 1)),
            _ => None,
        }
    }

    /// The sides of the process's states, full resolution first (empty for a process at one
    /// resolution): a model with one network per resolution has one network for each.
    pub fn state_sides(&self) -> Vec<usize> {
        match self {
            ProcessConfig::Laplacian {
                image_size, levels, ..
            } => (0..(*levels).min(usize::BITS as usize))
                .map(|j| image_size >> j)
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The logSNR schedule's configuration.
    pub fn schedule(&self) -> &ScheduleConfig {
        match self {
            ProcessConfig::Gaussian { schedule }
            | ProcessConfig::Blurring { schedule, .. }
            | ProcessConfig::Laplacian { schedule, .. } => schedule,
        }
    }

    /// Builds the process.
    pub fn build(&self) -> Result<Process> {
        Ok(match self {
            ProcessConfig::Gaussian { schedule } => {
                Box::new(GaussianProcess::new(schedule.build()?))
            }
            ProcessConfig::Blurring {
                schedule,
                blur_sigma_max,
                min_scale,
            } => Box::new(BlurringProcess::new(
                schedule.build()?,
                *blur_sigma_max,
                *min_scale,
            )?),
            ProcessConfig::Laplacian {
                schedule,
                levels,
                switch_times,
                fade_starts,
                image_size,
                stage_weights,
            } => Box::new(LaplacianProcess::new(
                schedule.build()?,
                &LaplacianSettings {
                    levels: *levels,
                    switch_times: switch_times.clone(),
                    fade_starts: fade_starts.clone(),
                    image_size: *image_size,
                    stage_weights: stage_weights.clone(),
                },
            )?),
        })
    }
}
