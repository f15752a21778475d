//! Sampler tests: single steps and deterministic trajectories against the numpy re-implementation
//! in `tools/golden_samplers.py` (`tests/data/samplers.json`), and sample moments with the analytic
//! optimal denoiser for Gaussian data, where the answer is known.

use burn::tensor::{Device, Tensor, TensorData};
use rand::SeedableRng;
use serde_json::Value;

use super::*;
use crate::denoiser::FnDenoiser;
use crate::golden_data::assert_close;
use crate::golden_data::f32s as floats;
use crate::process::{Level, Prediction, Process, ProcessConfig, ddpm_step};
use crate::schedule::{LogSnrSchedule, ScheduleConfig, alpha_from_log_snr, sigma_from_log_snr};
use crate::tensor::{normal, to_vec};

/// Runs `kind` for `steps` evaluations from `z1` (outputs of `z1`'s shape), without clipping.
pub(super) fn run(
    process: &dyn DiffusionProcess,
    denoiser: &dyn Denoise,
    kind: SamplerKind,
    steps: usize,
    z1: Tensor<4>,
    rng: &mut dyn rand::RngCore,
) -> Result<Tensor<4>> {
    let s = Sampling {
        process,
        denoiser,
        kind,
        steps,
        spacing: Spacing::default(),
        clip_x0: false,
    };
    let out = z1.dims();
    sample(&s, z1, out, rng, &mut |_, _| {})
}

/// [`run`] with the sampler's standard normal draws taken in order from `draws` (rows of the
/// state's size), and a generator for anything else.
pub(super) fn run_with_draws(
    process: &dyn DiffusionProcess,
    denoiser: &dyn Denoise,
    kind: SamplerKind,
    steps: usize,
    z1: Tensor<4>,
    draws: &[Vec<f32>],
) -> Result<Tensor<4>> {
    let s = Sampling {
        process,
        denoiser,
        kind,
        steps,
        spacing: Spacing::default(),
        clip_x0: false,
    };
    let out = z1.dims();
    let device = z1.device();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let mut next = draws.iter();
    let mut feed = |shape: [usize; 4]| {
        let row = next.next().expect("more draws than the reference made");
        Tensor::from_data(TensorData::new(row.clone(), shape), &device)
    };
    let mut noise = Noise {
        rng: &mut rng,
        given: Some(&mut feed),
    };
    sample_with_noise(&s, z1, out, &mut noise, &mut |_, _| {})
}

/// [`run`] with its own generator seeded with `seed`, as host values.
pub(super) fn trajectory(
    process: &dyn DiffusionProcess,
    denoiser: &dyn Denoise,
    kind: SamplerKind,
    steps: usize,
    z1: &Tensor<4>,
    seed: u64,
) -> Vec<f32> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    to_vec(run(process, denoiser, kind, steps, z1.clone(), &mut rng).unwrap())
}

pub(super) const M: f64 = 0.3;
pub(super) const S: f64 = 0.5;

fn golden() -> Value {
    crate::golden_data::load("samplers.json")
}

pub(super) fn t1(v: &[f32], device: &Device) -> Tensor<4> {
    Tensor::from_data(TensorData::new(v.to_vec(), [v.len(), 1, 1, 1]), device)
}

/// The optimal denoiser for x ~ N(M, S²): `x̂ = M + α S²/(α² S² + σ²) (z − α M)`.
pub(super) fn analytic() -> FnDenoiser<impl Fn(Tensor<4>, Level) -> Prediction> {
    FnDenoiser(|z: Tensor<4>, l: Level| {
        let l = l.log_snr;
        let (a, s) = (alpha_from_log_snr(l), sigma_from_log_snr(l));
        let k = a * S * S / (a * a * S * S + s * s);
        let x0_hat = (z.clone() - a * M) * k + M;
        let eps_hat = (z - x0_hat.clone() * a) / s;
        Prediction { x0_hat, eps_hat }
    })
}

pub(super) fn cosine() -> Process {
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
        assert_close(&got, &floats(&case["ddpm"]), 1e-5, "ddpm");
        let ddim = |eta| {
            to_vec(ddim_step(
                z.clone(),
                x.clone(),
                Some(xi.clone()),
                lt,
                ls,
                eta,
            ))
        };
        for (key, eta) in [("ddim_eta0", 0.0), ("ddim_eta05", 0.5), ("ddim_eta1", 1.0)] {
            assert_close(&ddim(eta), &floats(&case[key]), 1e-5, key);
        }
        // DDIM with η = 1 is the DDPM step.
        let (a, b) = (ddim(1.0), to_vec(ddpm_step(z, x, Some(xi), lt, ls)));
        assert_close(&a, &b, 1e-6, "ddim(1) vs ddpm");
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
            let out = run(
                process.as_ref(),
                &analytic(),
                kind,
                k,
                t1(&z1, &device),
                &mut rng,
            )
            .unwrap();
            assert_close(&to_vec(out), &want, 2e-4, &format!("{key} K={k}"));
        }
    }
}

#[test]
fn ddim_with_eta_one_is_ddpm() {
    let device = Device::flex();
    let process = cosine();
    let z1 = t1(&[0.4, -1.2, 2.0, 0.1], &device);
    let go = |kind| trajectory(process.as_ref(), &analytic(), kind, 20, &z1, 7);
    assert_close(
        &go(SamplerKind::Ddim { eta: 1.0 }),
        &go(SamplerKind::Ddpm),
        1e-6,
        "ddim(1) vs ddpm",
    );
}

pub(super) fn moments(v: &[f32]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// Exact mean and std of DDPM's output for Gaussian data: every step is affine in `z_t` plus
/// independent noise, so `(mean, var)` propagate in closed form from the prior N(0, 1).
fn ddpm_exact(process: &dyn DiffusionProcess, k: usize) -> (f64, f64) {
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
            let out = run(process.as_ref(), &analytic(), kind, k, z1, &mut rng).unwrap();
            let (mean, std) = moments(&to_vec(out));
            // What this sampler should give with K steps: closed form (DDPM) or the numpy run.
            let (want_mean, want_std) = match name {
                "ddpm" => ddpm_exact(process.as_ref(), k),
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
    for kind in [
        SamplerKind::Euler,
        SamplerKind::Heun,
        SamplerKind::DpmPp2mSde,
        SamplerKind::DpmPp3mSde,
        SamplerKind::UniPc,
    ] {
        assert_eq!(kind.to_string().parse::<SamplerKind>().unwrap(), kind);
    }
    let e = "lms".parse::<SamplerKind>().unwrap_err().to_string();
    assert!(e.contains("unknown sampler 'lms'"), "{e}");
    assert!("ddim:2".parse::<SamplerKind>().is_err());
}

/// A toy process at half resolution above `t = 0.5` (nearest upsampling at the switch): the
/// samplers follow its shape, start from its prior at 4×4, evaluate the network at the shape of
/// each segment, and end at 8×8.
#[derive(Debug)]
pub(super) struct TwoScale(pub(super) crate::process::GaussianProcess);

impl DiffusionProcess for TwoScale {
    fn kind(&self) -> &'static str {
        "two-scale"
    }
    fn describe(&self) -> String {
        "a test process at two resolutions".into()
    }
    fn schedule(&self) -> &crate::schedule::Schedule {
        self.0.schedule()
    }
    fn state_shape(&self, out: [usize; 4], t: f64) -> [usize; 4] {
        let [b, c, h, w] = out;
        if t > 0.5 { [b, c, h / 2, w / 2] } else { out }
    }
    fn switch_times(&self) -> Vec<f64> {
        vec![0.5]
    }
    fn switch(
        &self,
        z: Tensor<4>,
        t: f64,
        out: [usize; 4],
        _rng: &mut dyn rand::RngCore,
    ) -> Result<Tensor<4>> {
        assert_eq!(t, 0.5);
        let [b, c, h, w] = z.dims();
        let up = z
            .reshape([b, c, h, 1, w, 1])
            .expand([b, c, h, 2, w, 2])
            .reshape([b, c, 2 * h, 2 * w]);
        assert_eq!(up.dims(), out);
        Ok(up)
    }
    fn corrupt(&self, x0: Tensor<4>, t: &[f64], eps: Tensor<4>) -> Result<Tensor<4>> {
        self.0.corrupt(x0, t, eps)
    }
    fn ancestral_step(&self, step: crate::process::AncestralStep) -> Result<Tensor<4>> {
        self.0.ancestral_step(step)
    }
    fn finish(&self, z0: Tensor<4>) -> Result<Tensor<4>> {
        self.0.finish(z0)
    }
    fn diagonal(&self, level: Level, state: [usize; 4]) -> Option<crate::process::Diagonal> {
        self.0.diagonal(level, state)
    }
}

#[test]
fn samplers_follow_resolution_switches() {
    use std::cell::RefCell;
    let device = Device::flex();
    let process = TwoScale(crate::process::GaussianProcess::new(
        ScheduleConfig::default().build().unwrap(),
    ));
    let out = [2, 1, 8, 8];
    for kind in [
        SamplerKind::Ddpm,
        SamplerKind::Ddim { eta: 0.0 },
        SamplerKind::DpmPp2m,
        SamplerKind::Euler,
        SamplerKind::Heun,
        SamplerKind::DpmPp2mSde,
        SamplerKind::DpmPp3mSde,
        SamplerKind::UniPc,
    ] {
        let seen = RefCell::new(Vec::new());
        let recording = FnDenoiser(|z: Tensor<4>, l: Level| {
            seen.borrow_mut().push((z.dims()[2], l.t));
            Prediction {
                x0_hat: z.zeros_like(),
                eps_hat: z,
            }
        });
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let z1 = process.prior(out, &mut rng, &device);
        assert_eq!(z1.dims(), [2, 1, 4, 4]);
        let s = Sampling {
            process: &process,
            denoiser: &recording,
            kind,
            steps: 6,
            spacing: Spacing::default(),
            clip_x0: false,
        };
        let mut calls = Vec::new();
        let x = sample(&s, z1, out, &mut rng, &mut |i, n| calls.push((i, n))).unwrap();
        assert_eq!(x.dims(), out, "{kind}");
        let seen = seen.into_inner();
        let sides: Vec<usize> = seen.iter().map(|s| s.0).collect();
        assert_eq!(sides, vec![4, 4, 4, 8, 8, 8], "{kind}");
        assert!(
            seen[..3].iter().all(|s| s.1 > 0.5 - 1e-9),
            "{kind}: {seen:?}"
        );
        assert!(
            seen[3..].iter().all(|s| s.1 <= 0.5 + 1e-9),
            "{kind}: {seen:?}"
        );
        assert_eq!(calls, (1..=6).map(|i| (i, 6)).collect::<Vec<_>>());
    }
    let e = segments(&process, 1).unwrap_err().to_string();
    assert!(e.contains("at least 2 steps"), "{e}");
}

#[test]
fn segments_share_the_steps_by_length() {
    let process = TwoScale(crate::process::GaussianProcess::new(
        ScheduleConfig::default().build().unwrap(),
    ));
    let s = segments(&process, 7).unwrap();
    assert_eq!(s.iter().map(|s| s.steps).sum::<usize>(), 7);
    assert_eq!(
        (s[0].from, s[0].to, s[1].from, s[1].to),
        (1.0, 0.5, 0.5, 0.0)
    );
    assert!(s[0].steps.abs_diff(s[1].steps) <= 1);
    let one = segments(cosine().as_ref(), 5).unwrap();
    assert_eq!(
        one,
        vec![Segment {
            from: 1.0,
            to: 0.0,
            steps: 5
        }]
    );
}
