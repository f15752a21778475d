//! Blurring diffusion (Hoogeboom & Salimans, ICLR 2023), formula sheet §3: Gaussian diffusion in the
//! orthonormal DCT basis with a per-frequency signal scale.
//!
//! ```text
//! Λ_ij   = (π i/H)² + (π j/W)²                       (the paper's N×N grid, generalised to H×W)
//! σ_B(t) = σ_B,max · sin²(π t/2),   τ_t = σ_B(t)²/2
//! d_t    = (1 − d_min) · exp(−Λ τ_t) + d_min
//! α_t    = a_t · d_t   (per frequency),   a_t, σ_t = sqrt(sigmoid(±λ_t))  (the scalar schedule)
//! z_t    = IDCT(α_t ⊙ DCT(x)) + σ_t ε
//! ```
//! The network is told the scalar schedule's `λ_t`, as for Gaussian diffusion, and predicts `ε`.
//! With `σ_B,max = 0`, `d_t ≡ 1` and the process is exactly [`GaussianProcess`](super::GaussianProcess).
//!
//! The process is diagonal in the DCT basis (per-frequency `α_t`, scalar `σ_t`), so besides its
//! own ancestral step ([`blurring_step`]) the DDIM and DPM-Solver++ updates apply there,
//! frequency by frequency.

mod step;

pub use step::blurring_step;

use burn::tensor::{Tensor, TensorData};

use super::{
    AncestralStep, Coord, Diagonal, DiffusionProcess, Level, Parameterization, Prediction,
};
use crate::schedule::{LogSnrSchedule, Schedule};
use crate::transform::Dct2d;
use crate::{Error, Result};

/// The pseudo-code's `δ`: the floor of every variance the denoising step divides by.
pub const DELTA: f64 = 1e-8;

/// See the module docs.
#[derive(Debug, Clone)]
pub struct BlurringProcess {
    schedule: Schedule,
    blur_sigma_max: f64,
    min_scale: f64,
}

/// Host-side coefficients of one denoising step `t → s` (formula sheet §3), one value per
/// frequency of an `H×W` plane (row-major), computed in f64.
#[derive(Debug, Clone, PartialEq)]
pub struct StepCoefficients {
    /// `c1 = α_ts σ²_den / (σ²_ts + δ)`, the weight on `u_t`.
    pub c1: Vec<f64>,
    /// `c2 = α_st σ²_den / clip(σ_s², δ)`, the weight on `u_t − σ_t DCT(ε̂) = α_t û_0`.
    pub c2: Vec<f64>,
    /// `sqrt(σ²_den)`, the standard deviation of the step's noise.
    pub std: Vec<f64>,
    /// `α_t`, per frequency.
    pub alpha_t: Vec<f64>,
    /// `σ_t`.
    pub sigma_t: f64,
}

/// `Λ_ij = (π i/H)² + (π j/W)²`, row-major `[H·W]`.
pub fn frequencies(height: usize, width: usize) -> Vec<f64> {
    use std::f64::consts::PI;
    (0..height)
        .flat_map(|i| {
            (0..width).map(move |j| {
                let (fi, fj) = (PI * i as f64 / height as f64, PI * j as f64 / width as f64);
                fi * fi + fj * fj
            })
        })
        .collect()
}

/// A `[B, 1, H, W]` tensor from `B·H·W` host values (per-sample, per-frequency factors).
fn per_frequency(values: Vec<f64>, shape: [usize; 4], device: &burn::tensor::Device) -> Tensor<4> {
    let data: Vec<f32> = values.into_iter().map(|v| v as f32).collect();
    Tensor::from_data(TensorData::new(data, shape), device)
}

impl BlurringProcess {
    /// The process with noise schedule `schedule`, maximum blur `blur_sigma_max` (σ_B,max ≥ 0, in
    /// pixels) and minimum frequency scale `min_scale` (d_min ∈ (0, 1]; the paper uses 0.001).
    pub fn new(schedule: Schedule, blur_sigma_max: f64, min_scale: f64) -> Result<Self> {
        if !(blur_sigma_max.is_finite() && blur_sigma_max >= 0.0) {
            return Err(Error::config(format!(
                "process.blur_sigma_max must be finite and ≥ 0, got {blur_sigma_max}"
            )));
        }
        if !(min_scale > 0.0 && min_scale <= 1.0) {
            return Err(Error::config(format!(
                "process.min_scale must lie in (0, 1], got {min_scale}"
            )));
        }
        Ok(Self {
            schedule,
            blur_sigma_max,
            min_scale,
        })
    }

    /// `σ_B,max`.
    pub fn blur_sigma_max(&self) -> f64 {
        self.blur_sigma_max
    }

    /// `d_min`.
    pub fn min_scale(&self) -> f64 {
        self.min_scale
    }

    /// `σ_B(t) = σ_B,max sin²(π t/2)`.
    pub fn blur_sigma(&self, t: f64) -> f64 {
        self.blur_sigma_max * (std::f64::consts::FRAC_PI_2 * t).sin().powi(2)
    }

    /// `d_t = (1 − d_min) exp(−Λ τ_t) + d_min`, `τ_t = σ_B(t)²/2`, per frequency.
    pub fn scale(&self, t: f64, height: usize, width: usize) -> Vec<f64> {
        let tau = self.blur_sigma(t).powi(2) / 2.0;
        frequencies(height, width)
            .into_iter()
            .map(|l| (1.0 - self.min_scale) * (-l * tau).exp() + self.min_scale)
            .collect()
    }

    /// `α_t = a_t d_t`, per frequency.
    pub fn alpha(&self, t: f64, height: usize, width: usize) -> Vec<f64> {
        let a = self.schedule.alpha(t);
        self.scale(t, height, width)
            .into_iter()
            .map(|d| a * d)
            .collect()
    }

    /// `σ_t` (a scalar: the noise stays white).
    pub fn sigma(&self, t: f64) -> f64 {
        self.schedule.sigma(t)
    }

    /// `α_t` for every sample of a `[B, C, H, W]` batch as a `[B, 1, H, W]` tensor.
    fn alpha_tensor(
        &self,
        t: &[f64],
        h: usize,
        w: usize,
        device: &burn::tensor::Device,
    ) -> Tensor<4> {
        let values = t.iter().flat_map(|&t| self.alpha(t, h, w)).collect();
        per_frequency(values, [t.len(), 1, h, w], device)
    }

    /// `x̂ = IDCT((DCT(z_t) − σ_t DCT(ε̂)) / α_t)` (the same `t` for the whole batch): the clean
    /// image that the prediction `ε̂` implies. Division by `α_t ≥ a_t d_min` amplifies errors in
    /// `ε̂` by up to `σ_t/(a_t d_min)` at high frequencies.
    pub fn x0_from_eps(
        &self,
        dct: &Dct2d,
        z_t: Tensor<4>,
        eps_hat: Tensor<4>,
        t: f64,
    ) -> Result<Tensor<4>> {
        let [_, _, h, w] = z_t.dims();
        let alpha = per_frequency(self.alpha(t, h, w), [1, 1, h, w], &z_t.device());
        let u = dct.forward(z_t - eps_hat * self.sigma(t))?;
        dct.inverse(u / alpha)
    }

    /// The coefficients of the denoising step `t → s` (`s < t`), exactly as the paper's
    /// pseudo-code (formula sheet §3, δ = 1e−8):
    ///
    /// ```text
    /// α_ts = α_t/α_s;  α_st = 1/α_ts;  σ²_ts = σ_t² − α_ts² σ_s²
    /// σ²_den = 1 / clip(1/clip(σ_s², δ) + 1/clip(σ_t²/α_ts² − σ_s², δ), δ)
    /// c1 = α_ts σ²_den / (σ²_ts + δ);   c2 = α_st σ²_den / clip(σ_s², δ)
    /// ```
    pub fn step_coefficients(
        &self,
        t: f64,
        s: f64,
        height: usize,
        width: usize,
    ) -> StepCoefficients {
        let (alpha_t, alpha_s) = (self.alpha(t, height, width), self.alpha(s, height, width));
        let (sigma_t, sigma_s) = (self.sigma(t), self.sigma(s));
        let (s2_t, s2_s) = (sigma_t * sigma_t, sigma_s * sigma_s);
        let n = alpha_t.len();
        let (mut c1, mut c2, mut std) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for (&a_t, &a_s) in alpha_t.iter().zip(&alpha_s) {
            // 1. Transition t|s per frequency.
            let alpha_ts = a_t / a_s;
            let alpha_st = 1.0 / alpha_ts;
            let sigma2_ts = s2_t - alpha_ts * alpha_ts * s2_s;
            // 2. Posterior variance, with the pseudo-code's clips.
            let sigma2_den = 1.0
                / (1.0 / s2_s.max(DELTA) + 1.0 / (s2_t / (alpha_ts * alpha_ts) - s2_s).max(DELTA))
                    .max(DELTA);
            // 3. Weights of u_t and of u_t − σ_t DCT(ε̂) in the posterior mean.
            c1.push(alpha_ts * sigma2_den / (sigma2_ts + DELTA));
            c2.push(alpha_st * sigma2_den / s2_s.max(DELTA));
            std.push(sigma2_den.sqrt());
        }
        StepCoefficients {
            c1,
            c2,
            std,
            alpha_t,
            sigma_t,
        }
    }
}

impl DiffusionProcess for BlurringProcess {
    fn kind(&self) -> &'static str {
        "blurring"
    }

    fn describe(&self) -> String {
        format!(
            "blurring diffusion, σ_B,max = {} px, d_min = {}, logSNR from {:+.2} to {:+.2}",
            self.blur_sigma_max,
            self.min_scale,
            self.schedule.log_snr(1.0),
            self.schedule.log_snr(0.0)
        )
    }

    fn describe_time(&self, t: f64) -> String {
        format!(
            "logSNR = {:+.3}, blur σ_B = {:.3} px",
            self.schedule.log_snr(t),
            self.blur_sigma(t)
        )
    }

    fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// `z_t = IDCT(α_t ⊙ DCT(x0)) + σ_t ε`, with a time per sample.
    fn corrupt(&self, x0: Tensor<4>, t: &[f64], eps: Tensor<4>) -> Result<Tensor<4>> {
        let [_, _, h, w] = x0.dims();
        let device = x0.device();
        let dct = Dct2d::new(h, w, &device)?;
        let alpha = self.alpha_tensor(t, h, w, &device);
        let sigma: Vec<f64> = t.iter().map(|&t| self.sigma(t)).collect();
        let blurred = dct.inverse(dct.forward(x0)? * alpha)?;
        Ok(blurred + eps * crate::tensor::per_sample(&sigma, &device))
    }

    /// The denoising step takes `ε̂`: only ε-prediction.
    fn parameterizations(&self) -> &'static [Parameterization] {
        &[Parameterization::Eps]
    }

    /// `ε̂` is the network's output; `x̂ = IDCT((DCT(z_t) − σ_t DCT(ε̂)) / α_t)` per sample.
    fn predict(
        &self,
        p: Parameterization,
        raw: Tensor<4>,
        z: Tensor<4>,
        levels: &[Level],
    ) -> Result<Prediction> {
        if p != Parameterization::Eps {
            return Err(Error::invalid(format!(
                "the blurring process needs an ε-predicting model (model.parameterization = \"eps\"), this one is {}",
                p.name()
            )));
        }
        let [_, _, h, w] = z.dims();
        let device = z.device();
        let dct = Dct2d::new(h, w, &device)?;
        let x0_hat = match levels {
            [first, rest @ ..] if rest.iter().all(|l| l.t == first.t) => {
                self.x0_from_eps(&dct, z, raw.clone(), first.t)?
            }
            _ => {
                let t: Vec<f64> = levels.iter().map(|l| l.t).collect();
                let sigma: Vec<f64> = t.iter().map(|&t| self.sigma(t)).collect();
                let alpha = self.alpha_tensor(&t, h, w, &device);
                let u =
                    dct.forward(z - raw.clone() * crate::tensor::per_sample(&sigma, &device))?;
                dct.inverse(u / alpha)?
            }
        };
        Ok(Prediction {
            x0_hat,
            eps_hat: raw,
        })
    }

    /// [`blurring_step`] with [`BlurringProcess::step_coefficients`]; the noise is drawn in pixel
    /// space and transformed, `ξ_u = DCT(ξ)` (the DCT is orthonormal, so `ξ_u ~ N(0, I)` as in
    /// the pseudo-code, and with `σ_B,max = 0` the trajectory equals DDPM's for the same stream).
    fn ancestral_step(&self, a: AncestralStep) -> Result<Tensor<4>> {
        let [_, _, h, w] = a.z_t.dims();
        let dct = Dct2d::new(h, w, &a.z_t.device())?;
        let xi_u = a.noise.map(|xi| dct.forward(xi)).transpose()?;
        let c = self.step_coefficients(a.t.t, a.s.t, h, w);
        blurring_step(&dct, &c, a.z_t, a.pred.eps_hat, xi_u, a.clip_x0)
    }

    /// `IDCT(DCT(z_0) / α_0)`.
    fn finish(&self, z0: Tensor<4>) -> Result<Tensor<4>> {
        let [_, _, h, w] = z0.dims();
        let device = z0.device();
        let dct = Dct2d::new(h, w, &device)?;
        let alpha_0 = per_frequency(self.alpha(0.0, h, w), [1, 1, h, w], &device);
        dct.inverse(dct.forward(z0)? / alpha_0)
    }

    /// Per frequency: `α_t = a_t d_t`, `σ_t`, `λ = log(α_t²/σ_t²)`.
    fn diagonal(&self, level: Level, state: [usize; 4]) -> Option<Diagonal> {
        let [_, _, h, w] = state;
        let sigma = self.sigma(level.t);
        let coords = self
            .alpha(level.t, h, w)
            .into_iter()
            .map(|alpha| Coord {
                alpha,
                sigma,
                log_snr: 2.0 * (alpha / sigma).ln(),
            })
            .collect();
        Some(Diagonal {
            shape: [1, 1, h, w],
            coords,
        })
    }

    fn to_basis(&self, z: Tensor<4>) -> Result<Tensor<4>> {
        let [_, _, h, w] = z.dims();
        Dct2d::new(h, w, &z.device())?.forward(z)
    }

    fn to_state(&self, u: Tensor<4>, _state: [usize; 4]) -> Result<Tensor<4>> {
        let [_, _, h, w] = u.dims();
        Dct2d::new(h, w, &u.device())?.inverse(u)
    }
}

impl StepCoefficients {
    /// The coefficients as `[1, 1, H, W]` tensors `(c1, c2, std, α_t)`.
    pub fn tensors(
        &self,
        height: usize,
        width: usize,
        device: &burn::tensor::Device,
    ) -> [Tensor<4>; 4] {
        let shape = [1, 1, height, width];
        [&self.c1, &self.c2, &self.std, &self.alpha_t]
            .map(|v| per_frequency(v.clone(), shape, device))
    }
}

#[cfg(test)]
mod tests;
