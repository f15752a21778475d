//! Blurring sampler tests: one step against the paper's pseudo-code (numpy, `tools/golden_blurring.py`
//! → `tests/data/blurring.json`), the reduction to DDPM at `σ_B,max = 0`, and sample moments with
//! the analytic optimal denoiser for Gaussian data in DCT space, where the answer is known.

use burn::tensor::{Device, Tensor};
use rand::SeedableRng;
use serde_json::Value;

use super::tests::{analytic, run, trajectory};
use crate::denoiser::FnDenoiser;
use crate::golden_data::f32s as floats;
use crate::golden_data::{assert_close, cosine, tensor4};
use crate::process::{
    BlurringProcess, DiffusionProcess, GaussianProcess, Level, Prediction, blurring_step, ddpm_step,
};
use crate::sample::SamplerKind;
use crate::schedule::{LogSnrSchedule, alpha_from_log_snr, sigma_from_log_snr};
use crate::tensor::{normal, to_vec};
use crate::transform::Dct2d;

fn golden() -> Value {
    crate::golden_data::load("blurring.json")
}

/// One denoising step (fixed `z_t`, `ε̂`, frequency-space `ξ`) against the pseudo-code's `denoise`,
/// at the start (t = 1), middle and end (s = 0) of sampling, for three processes.
#[test]
fn step_matches_pseudo_code() {
    let device = Device::flex();
    for case in golden()["processes"].as_array().unwrap() {
        let f = |k: &str| case[k].as_f64().unwrap();
        let p = BlurringProcess::new(
            cosine(f("logsnr_min"), f("logsnr_max")),
            f("blur_sigma_max"),
            f("min_scale"),
        )
        .unwrap();
        let shape = crate::golden_data::shape4(&case["shape"]);
        let dct = Dct2d::new(shape[2], shape[3], &device).unwrap();
        for step in case["steps"].as_array().unwrap() {
            let (t, s) = (step["t"].as_f64().unwrap(), step["s"].as_f64().unwrap());
            let c = p.step_coefficients(t, s, shape[2], shape[3]);
            let z_t = tensor4(&floats(&step["z_t"]), shape, &device);
            let eps_hat = tensor4(&floats(&step["eps_hat"]), shape, &device);
            let xi = tensor4(&floats(&step["xi"]), shape, &device);
            let what = format!("σ_B,max = {} t = {t} → s = {s}", f("blur_sigma_max"));
            let mean = blurring_step(&dct, &c, z_t.clone(), eps_hat.clone(), None, false).unwrap();
            assert_close(
                &to_vec(mean),
                &floats(&step["mean"]),
                1e-4,
                &format!("mean, {what}"),
            );
            let z_s = blurring_step(&dct, &c, z_t, eps_hat, Some(xi), false).unwrap();
            assert_close(
                &to_vec(z_s),
                &floats(&step["z_s"]),
                1e-4,
                &format!("z_s, {what}"),
            );
        }
    }
}

/// `σ_B,max = 0`: the step is DDPM's ancestral step with `x̂ = (z_t − σ_t ε̂)/α_t` and pixel noise
/// `IDCT(ξ_u)`, for several pairs of times.
#[test]
fn no_blur_step_is_ddpm_step() {
    let (device, mut rng) = crate::golden_data::seeded(5);
    let schedule = cosine(-10.0, 10.0);
    let p = BlurringProcess::new(schedule.clone(), 0.0, 0.001).unwrap();
    let shape = [2, 3, 8, 4];
    let dct = Dct2d::new(8, 4, &device).unwrap();
    for (t, s) in [(1.0, 0.95), (0.7, 0.6), (0.3, 0.29), (0.02, 0.0)] {
        let z_t = normal(shape, &mut rng, &device);
        let eps_hat = normal(shape, &mut rng, &device);
        let xi_u = normal(shape, &mut rng, &device);
        let (lt, ls) = (schedule.log_snr(t), schedule.log_snr(s));
        let x0_hat =
            (z_t.clone() - eps_hat.clone() * sigma_from_log_snr(lt)) / alpha_from_log_snr(lt);
        let want = ddpm_step(
            z_t.clone(),
            x0_hat,
            Some(dct.inverse(xi_u.clone()).unwrap()),
            lt,
            ls,
        );
        let c = p.step_coefficients(t, s, 8, 4);
        let got = blurring_step(&dct, &c, z_t, eps_hat, Some(xi_u), false).unwrap();
        assert_close(
            &to_vec(got),
            &to_vec(want),
            1e-4,
            &format!("t = {t} → s = {s}"),
        );
    }
}

/// `σ_B,max = 0`: whole runs of every sampler equal the Gaussian process's runs for the same seed
/// (ancestral: the blurring step; DDIM and DPM-Solver++: per-frequency coefficients in the DCT
/// basis against the scalar ones in pixels).
#[test]
fn no_blur_trajectories_are_gaussian() {
    let (device, mut rng) = crate::golden_data::seeded(9);
    let schedule = cosine(-10.0, 10.0);
    let blur = BlurringProcess::new(schedule.clone(), 0.0, 0.001).unwrap();
    let gauss = GaussianProcess::new(schedule);
    let z1 = normal([4, 1, 6, 6], &mut rng, &device);
    for kind in [
        SamplerKind::Ddpm,
        SamplerKind::Ddim { eta: 0.0 },
        SamplerKind::Ddim { eta: 0.5 },
        SamplerKind::DpmPp2m,
        SamplerKind::Euler,
        SamplerKind::Heun,
        SamplerKind::DpmPp2mSde,
        SamplerKind::DpmPp3mSde,
        SamplerKind::UniPc,
    ] {
        let go = |p: &dyn DiffusionProcess| trajectory(p, &analytic(), kind, 25, &z1, 10);
        assert_close(
            &go(&blur),
            &go(&gauss),
            2e-4,
            &format!("{kind}: blurring(σ_B = 0) vs gaussian"),
        );
    }
}

/// DDIM with η = 1 in the DCT basis is the per-frequency posterior step: it equals the paper's
/// ancestral step (up to the pseudo-code's δ = 1e−8 regularisers) for the same noise.
#[test]
fn ddim_eta_one_is_the_blurring_step() {
    let (device, mut rng) = crate::golden_data::seeded(21);
    let (h, w) = (8, 8);
    let p = BlurringProcess::new(cosine(-10.0, 10.0), 3.0, 0.01).unwrap();
    let z1 = normal([3, 1, h, w], &mut rng, &device);
    let go = |kind| trajectory(&p, &analytic_frequencies(&p, h, w), kind, 20, &z1, 22);
    assert_close(
        &go(SamplerKind::Ddim { eta: 1.0 }),
        &go(SamplerKind::Ddpm),
        2e-3,
        "ddim:1 vs the blurring step",
    );
}

/// Gaussian data in DCT space: `u_0 ~ N(μ, diag v)` per frequency, `μ, v` below.
fn data_moments(h: usize, w: usize) -> (Vec<f64>, Vec<f64>) {
    let lam = crate::process::frequencies(h, w);
    let mu = lam.iter().map(|&l| 0.8 * (-2.0 * l).exp()).collect();
    let var = lam.iter().map(|&l| 0.5 * (-0.5 * l).exp() + 0.05).collect();
    (mu, var)
}

/// The optimal `ε̂` for that data: `DCT(ε̂) = σ_t (u_t − α_t μ)/(α_t² v + σ_t²)` per frequency.
fn analytic_frequencies(
    p: &BlurringProcess,
    h: usize,
    w: usize,
) -> FnDenoiser<impl Fn(Tensor<4>, Level) -> Prediction + '_> {
    FnDenoiser(move |z: Tensor<4>, l: Level| {
        let device = z.device();
        let dct = Dct2d::new(h, w, &device).unwrap();
        let t = l.t;
        let (alpha, sigma) = (p.alpha(t, h, w), p.sigma(t));
        let (mu, var) = data_moments(h, w);
        let k: Vec<f32> = alpha
            .iter()
            .zip(&var)
            .map(|(a, v)| (sigma / (a * a * v + sigma * sigma)) as f32)
            .collect();
        let off: Vec<f32> = alpha
            .iter()
            .zip(&mu)
            .zip(&var)
            .map(|((a, m), v)| (sigma * a * m / (a * a * v + sigma * sigma)) as f32)
            .collect();
        let u = dct.forward(z.clone()).unwrap();
        let eps_u = u * tensor4(&k, [1, 1, h, w], &device) - tensor4(&off, [1, 1, h, w], &device);
        let eps_hat = dct.inverse(eps_u).unwrap();
        let x0_hat = p.x0_from_eps(&dct, z, eps_hat.clone(), t).unwrap();
        Prediction { x0_hat, eps_hat }
    })
}

/// Exact per-frequency mean and variance of the sampler's output with the analytic denoiser:
/// every step is affine in `u_t` plus independent noise, so both propagate in closed form from
/// the prior N(0, 1).
fn exact_output_moments(p: &BlurringProcess, k: usize, h: usize, w: usize) -> (Vec<f64>, Vec<f64>) {
    let (mu, var) = data_moments(h, w);
    let n = h * w;
    let (mut m, mut v) = (vec![0.0; n], vec![1.0; n]);
    for i in 0..k {
        let (t, s) = (1.0 - i as f64 / k as f64, 1.0 - (i + 1) as f64 / k as f64);
        let c = p.step_coefficients(t, s, h, w);
        let sg = p.sigma(t);
        for f in 0..n {
            let a = c.alpha_t[f];
            let d = a * a * var[f] + sg * sg;
            // u_t − σ_t ε̂_u = (1 − σ_t²/d) u_t + σ_t² α_t μ / d
            let slope = c.c1[f] + c.c2[f] * (1.0 - sg * sg / d);
            let offset = c.c2[f] * sg * sg * a * mu[f] / d;
            let noise = if i + 1 == k { 0.0 } else { c.std[f].powi(2) };
            m[f] = slope * m[f] + offset;
            v[f] = slope * slope * v[f] + noise;
        }
    }
    let a0 = p.alpha(0.0, h, w);
    (
        m.iter().zip(&a0).map(|(m, a)| m / a).collect(),
        v.iter().zip(&a0).map(|(v, a)| v / (a * a)).collect(),
    )
}

/// With the optimal denoiser for Gaussian data, the samples' per-frequency mean and variance
/// match the closed-form propagation through the sampler (Monte Carlo tolerance: 6 standard
/// errors), and with 500 steps those moments are the data's own (mean within 2 % of the data's
/// standard deviation, variance within 5 %: ancestral sampling misses a little variance at finite K,
/// most at the low-variance frequencies). More steps do not get closer: the pseudo-code's `+δ`
/// in `c1`'s denominator shrinks `u_t` by `δ/σ²_ts` per step, which compounds when `σ²_ts` is
/// small (with 2000 steps the mean at frequency 0 is 3 % low; see docs/blurring.md).
#[test]
fn sample_moments_match_gaussian_data() {
    let device = Device::flex();
    let (h, w, n) = (8, 8, 4000);
    let (mu, var) = data_moments(h, w);
    let dct = Dct2d::new(h, w, &device).unwrap();
    for sigma_max in [0.0, 1.0, 5.0] {
        let p = BlurringProcess::new(cosine(-10.0, 10.0), sigma_max, 0.001).unwrap();
        for k in [20usize, 200, 500] {
            let (want_m, want_v) = exact_output_moments(&p, k, h, w);
            if k == 500 {
                for f in 0..h * w {
                    assert!(
                        (want_m[f] - mu[f]).abs() < 0.02 * var[f].sqrt()
                            && (want_v[f] / var[f] - 1.0).abs() < 0.05,
                        "σ_B,max = {sigma_max}, K = 500, frequency {f}: ({}, {}) vs data ({}, {})",
                        want_m[f],
                        want_v[f],
                        mu[f],
                        var[f]
                    );
                }
            }
            if k == 500 || (k == 200 && sigma_max != 5.0) {
                continue; // Monte Carlo runs: K = 20 for each process, K = 200 for the blurriest
            }
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(k as u64);
            let z1 = normal([n, 1, h, w], &mut rng, &device);
            let x = run(
                &p,
                &analytic_frequencies(&p, h, w),
                SamplerKind::Ddpm,
                k,
                z1,
                &mut rng,
            )
            .unwrap();
            let u = to_vec(dct.forward(x).unwrap());
            for f in 0..h * w {
                let vals: Vec<f64> = (0..n).map(|i| u[i * h * w + f] as f64).collect();
                let mean = vals.iter().sum::<f64>() / n as f64;
                let v = vals.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
                let se_m = (want_v[f] / n as f64).sqrt();
                let se_v = want_v[f] * (2.0 / (n - 1) as f64).sqrt();
                assert!(
                    (mean - want_m[f]).abs() < 6.0 * se_m + 1e-4,
                    "σ_B,max = {sigma_max}, K = {k}, frequency {f}: mean {mean} vs {}",
                    want_m[f]
                );
                assert!(
                    (v - want_v[f]).abs() < 6.0 * se_v + 1e-4,
                    "σ_B,max = {sigma_max}, K = {k}, frequency {f}: variance {v} vs {}",
                    want_v[f]
                );
            }
        }
    }
}

/// Clipping `x̂` changes nothing while `x̂` lies in [−1, 1], and otherwise uses the clipped image:
/// the clipped step equals the unclipped step given the `ε̂` that the clipped `x̂` implies.
#[test]
fn clipping_acts_only_outside_the_data_range() {
    let (device, mut rng) = crate::golden_data::seeded(4);
    let p = BlurringProcess::new(cosine(-10.0, 10.0), 1.0, 0.01).unwrap();
    let dct = Dct2d::new(8, 8, &device).unwrap();
    let x = normal([2, 1, 8, 8], &mut rng, &device).clamp(-2.0, 2.0) * 0.25;
    let eps = normal([2, 1, 8, 8], &mut rng, &device);
    let (t, s) = (0.3, 0.28);
    let z_t = p.corrupt(x, &[t, t], eps.clone()).unwrap();
    let c = p.step_coefficients(t, s, 8, 8);
    let step = |eps_hat: Tensor<4>, clip| {
        to_vec(blurring_step(&dct, &c, z_t.clone(), eps_hat, None, clip).unwrap())
    };
    assert_close(
        &step(eps.clone(), true),
        &step(eps.clone(), false),
        1e-4,
        "x̂ in range",
    );
    let wrong = eps + 3.0;
    let x0_clipped = p
        .x0_from_eps(&dct, z_t.clone(), wrong.clone(), t)
        .unwrap()
        .clamp(-1.0, 1.0);
    // ε̂ implied by the clipped x̂: IDCT((u_t − α_t DCT(x̂))/σ_t).
    let [_, _, _, alpha] = c.tensors(8, 8, &device);
    let u = dct.forward(z_t.clone()).unwrap() - dct.forward(x0_clipped).unwrap() * alpha;
    let eps_implied = dct.inverse(u / c.sigma_t).unwrap();
    let clipped = step(wrong.clone(), true);
    assert_close(&clipped, &step(eps_implied, false), 1e-3, "clipped step");
    let unclipped = step(wrong, false);
    assert!(
        clipped
            .iter()
            .zip(&unclipped)
            .any(|(a, b)| (a - b).abs() > 0.1),
        "clipping changed nothing"
    );
}

/// DPM-Solver++(2M), Euler, Heun, DPM-Solver++(2M/3M) SDE and UniPC in the DCT basis with the
/// optimal denoiser for Gaussian data: 100 evaluations carry the prior to the data's
/// per-frequency moments (mean within 3 % of the data's standard deviation plus Monte Carlo
/// error, variance within 8 %; Euler, first order, within 12 %).
#[test]
fn solvers_reach_gaussian_data_in_dct_basis() {
    for (kind, var_tol) in [
        (SamplerKind::DpmPp2m, 0.08),
        (SamplerKind::Euler, 0.12),
        (SamplerKind::Heun, 0.08),
        (SamplerKind::DpmPp2mSde, 0.08),
        (SamplerKind::DpmPp3mSde, 0.08),
        (SamplerKind::UniPc, 0.08),
    ] {
        reaches_gaussian_data(kind, var_tol);
    }
}

fn reaches_gaussian_data(kind: SamplerKind, var_tol: f64) {
    let device = Device::flex();
    let (h, w, n) = (8, 8, 4000);
    let (mu, var) = data_moments(h, w);
    let dct = Dct2d::new(h, w, &device).unwrap();
    let p = BlurringProcess::new(cosine(-10.0, 10.0), 2.0, 0.001).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(31);
    let z1 = normal([n, 1, h, w], &mut rng, &device);
    let x = run(&p, &analytic_frequencies(&p, h, w), kind, 100, z1, &mut rng).unwrap();
    let u = to_vec(dct.forward(x).unwrap());
    for f in 0..h * w {
        let vals: Vec<f64> = (0..n).map(|i| u[i * h * w + f] as f64).collect();
        let mean = vals.iter().sum::<f64>() / n as f64;
        let v = vals.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        let sd = var[f].sqrt();
        assert!(
            (mean - mu[f]).abs() < 0.03 * sd + 6.0 * sd / (n as f64).sqrt(),
            "{kind}: frequency {f}: mean {mean} vs {}",
            mu[f]
        );
        assert!(
            (v / var[f] - 1.0).abs() < var_tol + 6.0 * (2.0 / n as f64).sqrt(),
            "{kind}: frequency {f}: variance {v} vs {}",
            var[f]
        );
    }
}
