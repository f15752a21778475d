//! Sampler tests: single steps and deterministic trajectories against the numpy re-implementation
//! in `tools/golden_samplers.py` (`tests/data/samplers.json`), and sample moments with the analytic
//! optimal denoiser for Gaussian data, where the answer is known.

use burn::tensor::{Device, Tensor, TensorData};
use rand::SeedableRng;
use serde_json::Value;

use super::*;
use crate::denoiser::{FnDenoiser, Prediction};
use crate::process::ProcessConfig;
use crate::schedule::{ScheduleConfig, sigma_from_log_snr};
use crate::tensor::to_vec;

const M: f64 = 0.3;
const S: f64 = 0.5;

fn golden() -> Value {
    crate::golden_data::load("samplers.json")
}

fn floats(v: &Value) -> Vec<f32> {
    crate::golden_data::f32s(v)
}

fn t1(v: &[f32], device: &Device) -> Tensor<4> {
    Tensor::from_data(TensorData::new(v.to_vec(), [v.len(), 1, 1, 1]), device)
}

fn close(a: &[f32], b: &[f32], tol: f32, what: &str) {
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= tol * y.abs().max(1.0),
            "{what}[{i}]: {x} vs {y}"
        );
    }
}

/// The optimal denoiser for x ~ N(M, S²): `x̂ = M + α S²/(α² S² + σ²) (z − α M)`.
fn analytic() -> FnDenoiser<impl Fn(Tensor<4>, f64) -> Prediction> {
    FnDenoiser(|z: Tensor<4>, l: f64| {
        let (a, s) = (alpha_from_log_snr(l), sigma_from_log_snr(l));
        let k = a * S * S / (a * a * S * S + s * s);
        let x0_hat = (z.clone() - a * M) * k + M;
        let eps_hat = (z - x0_hat.clone() * a) / s;
        Prediction { x0_hat, eps_hat }
    })
}

fn cosine() -> Process {
    ProcessConfig::Gaussian {
        schedule: ScheduleConfig::default(),
    }
    .build()
    .unwrap()
}

#[test]
fn single_steps_match_numpy() {
    let device = Device::flex();
    let g = golden();
    for case in g["single_steps"].as_array().unwrap() {
        let (lt, ls) = (
            case["logsnr_t"].as_f64().unwrap(),
            case["logsnr_s"].as_f64().unwrap(),
        );
        let z = t1(&floats(&case["z_t"]), &device);
        let x = t1(&floats(&case["x_hat"]), &device);
        let xi = t1(&floats(&case["xi"]), &device);
        let got = to_vec(ddpm_step(z.clone(), x.clone(), Some(xi.clone()), lt, ls));
        close(&got, &floats(&case["ddpm"]), 1e-5, "ddpm");
        for (key, eta) in [("ddim_eta0", 0.0), ("ddim_eta05", 0.5), ("ddim_eta1", 1.0)] {
            let got = to_vec(ddim_step(
                z.clone(),
                x.clone(),
                Some(xi.clone()),
                lt,
                ls,
                eta,
            ));
            close(&got, &floats(&case[key]), 1e-5, key);
        }
        // DDIM with η = 1 is the DDPM step.
        let a = to_vec(ddim_step(
            z.clone(),
            x.clone(),
            Some(xi.clone()),
            lt,
            ls,
            1.0,
        ));
        let b = to_vec(ddpm_step(z, x, Some(xi), lt, ls));
        close(&a, &b, 1e-6, "ddim(1) vs ddpm");
    }
}

#[test]
fn deterministic_trajectories_match_numpy() {
    let device = Device::flex();
    let g = golden();
    let z1 = floats(&g["z1"]);
    let process = cosine();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    for (key, kind) in [
        ("ddim", SamplerKind::Ddim { eta: 0.0 }),
        ("dpmpp_2m", SamplerKind::DpmPp2m),
    ] {
        for k in [10usize, 50] {
            let want = floats(&g["trajectories"][key][k.to_string()]);
            let out = sample(
                &process,
                &analytic(),
                kind,
                k,
                t1(&z1, &device),
                &mut rng,
                &mut |_, _| {},
            )
            .unwrap();
            close(&to_vec(out), &want, 2e-4, &format!("{key} K={k}"));
        }
    }
}

#[test]
fn ddim_with_eta_one_is_ddpm() {
    let device = Device::flex();
    let process = cosine();
    let z1 = t1(&[0.4, -1.2, 2.0, 0.1], &device);
    let run = |kind| {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        to_vec(
            sample(
                &process,
                &analytic(),
                kind,
                20,
                z1.clone(),
                &mut rng,
                &mut |_, _| {},
            )
            .unwrap(),
        )
    };
    close(
        &run(SamplerKind::Ddim { eta: 1.0 }),
        &run(SamplerKind::Ddpm),
        1e-6,
        "ddim(1) vs ddpm",
    );
}

fn moments(v: &[f32]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// Exact mean and std of DDPM's output for Gaussian data: every step is affine in `z_t` plus
/// independent noise, so `(mean, var)` propagate in closed form from the prior N(0, 1).
fn ddpm_exact(process: &Process, k: usize) -> (f64, f64) {
    let s = process.schedule();
    let (mut mu, mut var) = (0.0, 1.0);
    for i in 0..k {
        let (lt, ls) = (
            s.log_snr(1.0 - i as f64 / k as f64),
            s.log_snr(1.0 - (i + 1) as f64 / k as f64),
        );
        let (a_t, sg_t) = (alpha_from_log_snr(lt), sigma_from_log_snr(lt));
        let (a_s, sg_s) = (alpha_from_log_snr(ls), sigma_from_log_snr(ls));
        let c = -(lt - ls).exp_m1();
        let kk = a_t * S * S / (a_t * a_t * S * S + sg_t * sg_t);
        // z_s = α_s((1−c) z/α_t + c (M + kk (z − α_t M))) + noise
        let slope = a_s * ((1.0 - c) / a_t + c * kk);
        let offset = a_s * c * (M - kk * a_t * M);
        let noise = if i + 1 == k { 0.0 } else { sg_s * sg_s * c };
        mu = slope * mu + offset;
        var = slope * slope * var + noise;
    }
    let a0 = alpha_from_log_snr(s.log_snr(0.0));
    (mu / a0, var.sqrt() / a0)
}

#[test]
fn sample_moments_match_gaussian_data() {
    let device = Device::flex();
    let process = cosine();
    let g = golden();
    let n = 20_000;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    for k in [10usize, 50, 1000] {
        for (name, kind) in [
            ("ddpm", SamplerKind::Ddpm),
            ("ddim", SamplerKind::Ddim { eta: 0.0 }),
            ("dpmpp_2m", SamplerKind::DpmPp2m),
        ] {
            let z1 = normal([n, 1, 1, 1], &mut rng, &device);
            let out = sample(&process, &analytic(), kind, k, z1, &mut rng, &mut |_, _| {}).unwrap();
            let (mean, std) = moments(&to_vec(out));
            // What this sampler should give with K steps: closed form (DDPM) or the numpy run.
            let (want_mean, want_std) = match name {
                "ddpm" => ddpm_exact(&process, k),
                _ => {
                    let m = &g["moments"][name][k.to_string()];
                    (m["mean"].as_f64().unwrap(), m["std"].as_f64().unwrap())
                }
            };
            // Monte Carlo tolerance: 6 standard errors of the mean.
            let se = 0.5 / (n as f64).sqrt();
            assert!(
                (mean - want_mean).abs() < 6.0 * se,
                "{name} K={k}: mean {mean} vs {want_mean}"
            );
            assert!(
                (std - want_std).abs() < 6.0 * se,
                "{name} K={k}: std {std} vs {want_std}"
            );
            if k == 1000 {
                assert!(
                    (mean - M).abs() < 0.01 && (std - S).abs() < 0.01,
                    "{name} K=1000: ({mean}, {std})"
                );
            }
        }
    }
}

#[test]
fn sampler_names_parse() {
    assert_eq!("ddpm".parse::<SamplerKind>().unwrap(), SamplerKind::Ddpm);
    assert_eq!(
        "ddim:0.5".parse::<SamplerKind>().unwrap(),
        SamplerKind::Ddim { eta: 0.5 }
    );
    assert_eq!(
        "dpm++2m".parse::<SamplerKind>().unwrap(),
        SamplerKind::DpmPp2m
    );
    let e = "euler".parse::<SamplerKind>().unwrap_err().to_string();
    assert!(e.contains("unknown sampler 'euler'"), "{e}");
    assert!("ddim:2".parse::<SamplerKind>().is_err());
}
