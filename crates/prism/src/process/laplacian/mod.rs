//! Laplacian pyramid diffusion (NVIDIA Edify Image, 2024; formula sheet §4): the image's Laplacian
//! bands ([`crate::transform::pyramid_bands`]) fade at their own rates, the finest first, and the
//! state drops to the next lower resolution once a band carries no signal.
//!
//! ```text
//! z_t      = Σ_k α_k(t) · upᵏ⁻¹(x⁽ᵏ⁾) + σ(t) ε                      (§4.2, full resolution)
//! α_k(t)   = a(t) · d_k(t),   a, σ = sqrt(sigmoid(±λ(t)))          (the scalar schedule)
//! d_k(t)   = 1 (t ≤ s_k),  cos²(π/2 · (t − s_k)/(t_k − s_k)) (s_k < t < t_k),  0 (t ≥ t_k);  d_K ≡ 1
//! j(t)     = #{k : t > t_k}                                          (the state's level: side N/2^j)
//! state    = c_j(t) · downʲ(z_t),   c_j = 1/sqrt(a² + σ²/4ʲ)
//! ```
//!
//! Choices where the source is silent ([derived] on the formula sheet), and why:
//! - **d_k**: a cos² fade from `s_k` (default 0) to exactly 0 at `t_k`, C¹ at both ends. Exactly
//!   zero, not a floor as in blurring diffusion, so the new band's signal is zero at the switch and
//!   the switch is exact (§4.4). Between `t_k` and `1` the band is gone, so nothing is lost.
//! - **The state at level j** is the average-pooled full-resolution state (the sheet's §4.3: the
//!   signal stays, the noise variance drops by 4 per level, logSNR + log 4), rescaled by `c_j` so
//!   that the coarsest band is variance preserving: its `(α, σ)` at level j are those of the
//!   isotropic process at `λ_j(t) = λ(t) + j·log 4`, with `α² + σ² = 1`. The network sees inputs
//!   of unit scale at every resolution and is told `λ_j` ([`DiffusionProcess::network_log_snr`]):
//!   that is simple diffusion's resolution shift, and how a shared network learns which
//!   resolution it works at.
//! - **Basis**: the process is diagonal in the orthonormal Haar packet of the state
//!   ([`crate::transform::haar_packet`], `K − 1 − j` levels): band `k` has `α = c_j a d_k`, all
//!   bands share `σ = c_j σ/2ʲ`. DDIM and DPM-Solver++ run there coordinate by coordinate.
//! - **Parameterisations**: `x`, and `v` per coordinate of that basis in normalised form
//!   (`r = sqrt(α² + σ²)`, `v = (α ε − σ x)/r`; the isotropic `v` where `r = 1`). `ε` is refused:
//!   `x̂ = (z − σ ε̂)/α` is undefined where a band's `α` reaches 0 at its switch.
//! - **The image size** is part of the process (`image_size`, as for resolution-shifted
//!   schedules): at a switch time two resolutions meet, and only the state's side tells which one
//!   a state is at.
//!
//! Which band each step works on, the switch and its inverse: [`switch`] (§4.4).

mod basis;
mod switch;

use burn::tensor::{Device, Tensor};
use rand::RngCore;

use super::{AncestralStep, Diagonal, DiffusionProcess, Level, Parameterization, Prediction};
use crate::schedule::{LogSnrSchedule, Schedule};
use crate::tensor::{normal, per_sample};
use crate::transform::{down_by, haar_packet, haar_packet_inverse, pyramid_bands, up_by};
use crate::{Error, Result};

/// See the module docs.
#[derive(Debug, Clone)]
pub struct LaplacianProcess {
    schedule: Schedule,
    /// `K`, the number of bands.
    levels: usize,
    /// `t_1 < … < t_{K−1}`: band `k` has no signal from `t_k` on.
    switch_times: Vec<f64>,
    /// `s_k < t_k`: band `k` starts to fade at `s_k`.
    fade_starts: Vec<f64>,
    /// `N`, the side of the output images.
    image_size: usize,
    /// Loss weight of the samples at each level `j` (index 0: full resolution).
    stage_weights: Vec<f64>,
}

/// The settings of a [`LaplacianProcess`] besides its schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct LaplacianSettings {
    /// `K ∈ 2..=4`.
    pub levels: usize,
    /// `t_1 < … < t_{K−1}` in `(0, 1)`.
    pub switch_times: Vec<f64>,
    /// `s_k ∈ [0, t_k)`; all 0 when absent.
    pub fade_starts: Option<Vec<f64>>,
    /// `N`, divisible by `2^(K−1)`.
    pub image_size: usize,
    /// One positive weight per level (full resolution first); all 1 when absent.
    pub stage_weights: Option<Vec<f64>>,
}

impl LaplacianProcess {
    /// The process with scalar schedule `schedule` and `settings`, validated: `K ∈ 2..=4`,
    /// `K − 1` finite increasing switch times in `(0, 1)`, fade starts in `[0, t_k)`, the image
    /// side divisible by `2^(K−1)`, positive finite stage weights.
    pub fn new(schedule: Schedule, s: &LaplacianSettings) -> Result<Self> {
        let err = |m: String| Err(Error::config(format!("process (laplacian): {m}")));
        let k = s.levels;
        if !(2..=4).contains(&k) {
            return err(format!("levels must be 2, 3 or 4, got {k}"));
        }
        let t = &s.switch_times;
        if t.len() != k - 1 {
            return err(format!(
                "switch_times needs {} times (one per band but the coarsest) for levels = {k}, got {}",
                k - 1,
                t.len()
            ));
        }
        if t.iter().any(|t| !(t.is_finite() && *t > 0.0 && *t < 1.0))
            || t.windows(2).any(|w| w[0] >= w[1])
        {
            return err(format!(
                "switch_times must be finite, strictly increasing and inside (0, 1) (finest band first), got {t:?}"
            ));
        }
        let fade_starts = s.fade_starts.clone().unwrap_or_else(|| vec![0.0; k - 1]);
        if fade_starts.len() != k - 1
            || fade_starts
                .iter()
                .zip(t)
                .any(|(s, t)| !(s.is_finite() && *s >= 0.0 && s < t))
        {
            return err(format!(
                "fade_starts must hold {} finite times with 0 ≤ s_k < t_k (switch_times {t:?}), got {fade_starts:?}",
                k - 1
            ));
        }
        let f = 1usize << (k - 1);
        if s.image_size == 0 || !s.image_size.is_multiple_of(f) {
            return err(format!(
                "image_size = {} must be a positive multiple of 2^(levels − 1) = {f}",
                s.image_size
            ));
        }
        let stage_weights = s.stage_weights.clone().unwrap_or_else(|| vec![1.0; k]);
        if stage_weights.len() != k || stage_weights.iter().any(|w| !(w.is_finite() && *w > 0.0)) {
            return err(format!(
                "stage_weights must hold {k} positive finite weights (full resolution first), got {stage_weights:?}"
            ));
        }
        Ok(Self {
            schedule,
            levels: k,
            switch_times: t.clone(),
            fade_starts,
            image_size: s.image_size,
            stage_weights,
        })
    }

    /// `K`.
    pub fn levels(&self) -> usize {
        self.levels
    }

    /// `j(t) = #{k : t > t_k}`: the state at `t` has side `N/2^j`.
    pub fn level_at(&self, t: f64) -> usize {
        self.switch_times.iter().filter(|&&s| t > s).count()
    }

    /// The level `j` of a state of side `side`, or an error naming the sides the process has.
    pub fn level_of_side(&self, side: usize) -> Result<usize> {
        (0..self.levels)
            .find(|&j| self.image_size >> j == side)
            .ok_or_else(|| {
                let sides: Vec<usize> = (0..self.levels).map(|j| self.image_size >> j).collect();
                Error::Shape(format!(
                    "the Laplacian process for {}² images has states of side {sides:?}, got {side}",
                    self.image_size
                ))
            })
    }

    /// `d_k(t)` for band `k ∈ 1..=K` (module docs).
    pub fn attenuation(&self, k: usize, t: f64) -> f64 {
        if k >= self.levels {
            return 1.0;
        }
        let (s, end) = (self.fade_starts[k - 1], self.switch_times[k - 1]);
        if t <= s {
            1.0
        } else if t >= end {
            0.0
        } else {
            (std::f64::consts::FRAC_PI_2 * (t - s) / (end - s))
                .cos()
                .powi(2)
        }
    }

    /// `α_k(t) = a(t) d_k(t)` at full resolution.
    pub fn alpha(&self, k: usize, t: f64) -> f64 {
        self.schedule.alpha(t) * self.attenuation(k, t)
    }

    /// `c_j(t) = 1/sqrt(a² + σ²/4ʲ)`, the scale of the pooled state at level `j`.
    pub fn state_scale(&self, j: usize, t: f64) -> f64 {
        let (a, s) = (self.schedule.alpha(t), self.schedule.sigma(t));
        1.0 / (a * a + s * s / 4f64.powi(j as i32)).sqrt()
    }

    /// The state's `(α_k for k = j+1..=K, σ)` at level `j` and time `t`.
    pub fn state_scales(&self, j: usize, t: f64) -> (Vec<f64>, f64) {
        let c = self.state_scale(j, t);
        let alphas = (j + 1..=self.levels)
            .map(|k| c * self.alpha(k, t))
            .collect();
        (alphas, c * self.schedule.sigma(t) / f64::from(1u32 << j))
    }

    /// One level `j` shared by all `t`, or an error (a batch must be grouped by
    /// [`DiffusionProcess::training_groups`] first).
    fn shared_level(&self, t: &[f64]) -> Result<usize> {
        let j = t.first().map_or(0, |&t| self.level_at(t));
        if t.iter().any(|&t| self.level_at(t) != j) {
            return Err(Error::invalid(
                "the Laplacian process corrupts a batch at one resolution: its times must share a segment between switch times (group them with training_groups)",
            ));
        }
        Ok(j)
    }
}

impl DiffusionProcess for LaplacianProcess {
    fn kind(&self) -> &'static str {
        "laplacian"
    }

    fn describe(&self) -> String {
        format!(
            "Laplacian pyramid diffusion, {} bands, {}² down to {}², switches at t = {:?}, logSNR from {:+.2} to {:+.2}",
            self.levels,
            self.image_size,
            self.image_size >> (self.levels - 1),
            self.switch_times,
            self.schedule.log_snr(1.0),
            self.schedule.log_snr(0.0)
        )
    }

    fn describe_time(&self, t: f64) -> String {
        let j = self.level_at(t);
        let d: Vec<String> = (1..=self.levels)
            .map(|k| format!("{:.3}", self.attenuation(k, t)))
            .collect();
        format!(
            "logSNR = {:+.3}, state {}² (λ_j = {:+.3}), band attenuation d (finest first) = [{}]",
            self.schedule.log_snr(t),
            self.image_size >> j,
            self.schedule.log_snr(t) + j as f64 * 4f64.ln(),
            d.join(", ")
        )
    }

    fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    fn state_shape(&self, out: [usize; 4], t: f64) -> [usize; 4] {
        let [b, c, h, w] = out;
        let j = self.level_at(t);
        [b, c, h >> j, w >> j]
    }

    fn switch_times(&self) -> Vec<f64> {
        self.switch_times.iter().rev().copied().collect()
    }

    fn switch(
        &self,
        z: Tensor<4>,
        t: f64,
        out: [usize; 4],
        rng: &mut dyn RngCore,
    ) -> Result<Tensor<4>> {
        let k = self
            .switch_times
            .iter()
            .position(|&s| s == t)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "t = {t} is not a switch time of the Laplacian process ({:?})",
                    self.switch_times
                ))
            })?;
        // Switch time t_{k+1} (0-based k) takes level k + 1 to level k.
        let high = self.state_shape(out, t);
        let xi = normal(high, rng, &z.device());
        self.switch_with(z, t, k + 1, xi)
    }

    /// `N(0, σ_j(1)² I)` at the coarsest level (the signal left at `t = 1` neglected).
    fn prior(&self, out: [usize; 4], rng: &mut dyn RngCore, device: &Device) -> Tensor<4> {
        let (_, sigma) = self.state_scales(self.levels - 1, 1.0);
        normal(self.state_shape(out, 1.0), rng, device) * sigma
    }

    fn training_groups(&self, t: &[f64]) -> Vec<Vec<usize>> {
        (0..self.levels)
            .map(|j| (0..t.len()).filter(|&i| self.level_at(t[i]) == j).collect())
            .collect()
    }

    fn group_weight(&self, t: f64) -> f64 {
        self.stage_weights[self.level_at(t)]
    }

    /// `c_j · downʲ(Σ_k α_k upᵏ⁻¹(x⁽ᵏ⁾) + σ ε)`, computed at level `j`: the bands of `downʲ(x)`
    /// are those of `x` from `j + 1` on, and `downʲ(ε)` has variance `1/4ʲ`.
    fn corrupt(&self, x0: Tensor<4>, t: &[f64], eps: Tensor<4>) -> Result<Tensor<4>> {
        let j = self.shared_level(t)?;
        let [_, _, h, _] = x0.dims();
        if h != self.image_size {
            return Err(Error::Shape(format!(
                "the Laplacian process corrupts {}² images, got {h}²",
                self.image_size
            )));
        }
        let device = x0.device();
        let bands = pyramid_bands(down_by(x0, j), self.levels - j)?;
        let mut z = down_by(eps, j)
            * per_sample(
                &t.iter()
                    .map(|&t| self.state_scale(j, t) * self.schedule.sigma(t))
                    .collect::<Vec<_>>(),
                &device,
            );
        for (i, band) in bands.into_iter().enumerate() {
            let k = j + 1 + i;
            let scale: Vec<f64> = t
                .iter()
                .map(|&t| self.state_scale(j, t) * self.alpha(k, t))
                .collect();
            z = z + up_by(band, i) * per_sample(&scale, &device);
        }
        Ok(z)
    }

    /// `α_k(t) · upᵏ⁻¹(x⁽ᵏ⁾)` for `k = 1..=K` at full resolution and in its units: they sum to
    /// the signal of the full-resolution `z_t` of §4.2 (before pooling and the scale `c_j`).
    fn signal_bands(&self, x0: Tensor<4>, t: f64) -> Result<Vec<Tensor<4>>> {
        Ok(pyramid_bands(x0, self.levels)?
            .into_iter()
            .enumerate()
            .map(|(i, band)| up_by(band, i) * self.alpha(i + 1, t))
            .collect())
    }

    /// `(downʲ(x), 2ʲ downʲ(ε))`: the state at level `j` is `α ⊙ x + σ ε` in these.
    fn at_state(&self, x0: Tensor<4>, eps: Tensor<4>, t: &[f64]) -> Result<(Tensor<4>, Tensor<4>)> {
        let j = self.shared_level(t)?;
        Ok((down_by(x0, j), down_by(eps, j) * f64::from(1u32 << j)))
    }

    fn parameterizations(&self) -> &'static [Parameterization] {
        &[Parameterization::V, Parameterization::X]
    }

    fn network_log_snr(&self, level: Level, state: [usize; 4]) -> f64 {
        let j = self.level_of_side(state[2]).unwrap_or(0);
        level.log_snr + j as f64 * 4f64.ln()
    }

    fn target(
        &self,
        p: Parameterization,
        x0: Tensor<4>,
        eps: Tensor<4>,
        t: &[f64],
    ) -> Result<Tensor<4>> {
        basis::target(self, p, x0, eps, t)
    }

    fn predict(
        &self,
        p: Parameterization,
        raw: Tensor<4>,
        z: Tensor<4>,
        levels: &[Level],
    ) -> Result<Prediction> {
        basis::predict(self, p, raw, z, levels)
    }

    fn ancestral_step(&self, a: AncestralStep) -> Result<Tensor<4>> {
        basis::ancestral_step(self, a)
    }

    /// `z_0 / a(0)`: at `t = 0` every band has `d_k = 1` and the state is at full resolution.
    fn finish(&self, z0: Tensor<4>) -> Result<Tensor<4>> {
        Ok(z0 / self.schedule.alpha(0.0))
    }

    fn diagonal(&self, level: Level, state: [usize; 4]) -> Option<Diagonal> {
        let j = self.level_of_side(state[2]).ok()?;
        Some(basis::diagonal(self, j, level.t, state[1]))
    }

    fn to_basis(&self, z: Tensor<4>) -> Result<Tensor<4>> {
        let j = self.level_of_side(z.dims()[2])?;
        haar_packet(z, self.levels - 1 - j)
    }

    fn to_state(&self, u: Tensor<4>, state: [usize; 4]) -> Result<Tensor<4>> {
        let j = self.level_of_side(state[2])?;
        haar_packet_inverse(u, self.levels - 1 - j)
    }
}

#[cfg(test)]
mod tests;
