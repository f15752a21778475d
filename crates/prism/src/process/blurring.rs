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

use burn::tensor::{Tensor, TensorData};

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

    /// The scalar logSNR schedule (`a_t`, `σ_t`; the level the network is told).
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
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

    /// `z_t = IDCT(α_t ⊙ DCT(x0)) + σ_t ε`, with a time per sample.
    pub fn corrupt(&self, x0: Tensor<4>, t: &[f64], eps: Tensor<4>) -> Tensor<4> {
        let [_, _, h, w] = x0.dims();
        let device = x0.device();
        let Ok(dct) = Dct2d::new(h, w, &device) else {
            return eps; // empty planes: nothing to blur
        };
        let alpha = self.alpha_tensor(t, h, w, &device);
        let sigma: Vec<f64> = t.iter().map(|&t| self.sigma(t)).collect();
        let blurred = dct
            .forward(x0)
            .and_then(|u| dct.inverse(u * alpha))
            .expect("the DCT is built for x0's own plane size");
        blurred + eps * crate::tensor::per_sample(&sigma, &device)
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
mod tests {
    use burn::tensor::Device;
    use rand::SeedableRng;
    use serde_json::Value;

    use super::*;
    use crate::process::GaussianProcess;
    use crate::schedule::CosineSchedule;
    use crate::tensor::{normal, to_vec};

    fn golden() -> Value {
        crate::golden_data::load("blurring.json")
    }

    fn floats(v: &Value) -> Vec<f32> {
        crate::golden_data::f32s(v)
    }

    /// The process of one golden case.
    fn golden_process(case: &Value) -> BlurringProcess {
        let f = |k: &str| case[k].as_f64().unwrap();
        let schedule =
            Schedule::Cosine(CosineSchedule::new(f("logsnr_min"), f("logsnr_max")).unwrap());
        BlurringProcess::new(schedule, f("blur_sigma_max"), f("min_scale")).unwrap()
    }

    fn tensor(v: &Value, shape: [usize; 4], device: &Device) -> Tensor<4> {
        Tensor::from_data(TensorData::new(floats(v), shape), device)
    }

    fn shape(case: &Value) -> [usize; 4] {
        let s: Vec<usize> = case["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect();
        [s[0], s[1], s[2], s[3]]
    }

    fn close(a: &[f32], b: &[f32], tol: f32, what: &str) {
        assert_eq!(a.len(), b.len(), "{what}: lengths");
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= tol * y.abs().max(1.0),
                "{what}[{i}]: {x} vs {y}"
            );
        }
    }

    /// `α_t` at t = 0.5 and forward samples `z_t` (per-sample times, fixed `x`, `ε`) against the
    /// pseudo-code's `get_alpha_sigma` and `diffuse` in `tools/golden_blurring.py`.
    #[test]
    fn forward_matches_pseudo_code() {
        let device = Device::flex();
        for case in golden()["processes"].as_array().unwrap() {
            let p = golden_process(case);
            let s = shape(case);
            let alpha: Vec<f32> = p.alpha(0.5, s[2], s[3]).iter().map(|&v| v as f32).collect();
            close(&alpha, &floats(&case["alpha_t0.5"]), 1e-6, "alpha(0.5)");
            let sigma = case["sigma_t0.5"].as_f64().unwrap();
            assert!((p.sigma(0.5) - sigma).abs() < 1e-12);
            let x = tensor(&case["x"], s, &device);
            let eps = tensor(&case["eps"], s, &device);
            for f in case["forward"].as_array().unwrap() {
                let t: Vec<f64> = f["t"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap())
                    .collect();
                let z = to_vec(p.corrupt(x.clone(), &t, eps.clone()));
                close(&z, &floats(&f["z_t"]), 2e-5, &format!("z_t at t = {t:?}"));
            }
        }
    }

    /// `σ_B,max = 0`: `d_t ≡ 1` and `corrupt` is the Gaussian process's.
    #[test]
    fn no_blur_is_gaussian_forward() {
        let device = Device::flex();
        let schedule = Schedule::Cosine(CosineSchedule::new(-10.0, 10.0).unwrap());
        let blur = BlurringProcess::new(schedule.clone(), 0.0, 0.001).unwrap();
        let gauss = GaussianProcess::new(schedule);
        assert!(blur.scale(0.7, 4, 6).iter().all(|&d| d == 1.0));
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let x = normal([3, 2, 8, 6], &mut rng, &device);
        let eps = normal([3, 2, 8, 6], &mut rng, &device);
        let t = [0.05, 0.5, 0.99];
        let a = to_vec(blur.corrupt(x.clone(), &t, eps.clone()));
        let b = to_vec(gauss.corrupt(x, &t, eps));
        close(&a, &b, 1e-5, "blurring(σ_B = 0) vs gaussian");
    }

    /// Blurring fades high frequencies first, never below `a_t d_min`, and not at all at `t = 0`.
    #[test]
    fn scale_is_one_at_zero_and_floored() {
        let schedule = Schedule::Cosine(CosineSchedule::new(-10.0, 10.0).unwrap());
        let p = BlurringProcess::new(schedule, 20.0, 0.001).unwrap();
        assert!(p.scale(0.0, 8, 8).iter().all(|&d| (d - 1.0).abs() < 1e-15));
        let d = p.scale(0.1, 8, 8);
        assert!((d[0] - 1.0).abs() < 1e-15, "the mean (DC) is never blurred");
        assert!(d[..8].windows(2).all(|w| w[1] < w[0]), "{d:?}");
        assert!(p.scale(0.6, 8, 8)[1..].iter().all(|&v| v < 0.0011));
        assert!(d.iter().all(|&v| v >= 0.001));
        assert!((p.scale(1.0, 8, 8)[63] - 0.001).abs() < 1e-12);
        assert!((p.blur_sigma(1.0) - 20.0).abs() < 1e-12);
    }

    /// With the true noise, `x0_from_eps` recovers the clean image.
    #[test]
    fn x0_from_true_eps_is_exact() {
        let device = Device::flex();
        let schedule = Schedule::Cosine(CosineSchedule::new(-10.0, 10.0).unwrap());
        let p = BlurringProcess::new(schedule, 3.0, 0.01).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        let x = normal([2, 1, 8, 8], &mut rng, &device);
        let eps = normal([2, 1, 8, 8], &mut rng, &device);
        let dct = Dct2d::new(8, 8, &device).unwrap();
        let z = p.corrupt(x.clone(), &[0.4, 0.4], eps.clone());
        let got = to_vec(p.x0_from_eps(&dct, z, eps, 0.4).unwrap());
        close(&got, &to_vec(x), 2e-3, "x̂");
    }

    #[test]
    fn bad_parameters_are_named() {
        let s = || Schedule::Cosine(CosineSchedule::new(-10.0, 10.0).unwrap());
        let e = BlurringProcess::new(s(), -1.0, 0.001)
            .unwrap_err()
            .to_string();
        assert!(e.contains("process.blur_sigma_max"), "{e}");
        let e = BlurringProcess::new(s(), 1.0, 0.0).unwrap_err().to_string();
        assert!(
            e.contains("process.min_scale must lie in (0, 1], got 0"),
            "{e}"
        );
        assert!(BlurringProcess::new(s(), f64::NAN, 0.5).is_err());
    }
}
