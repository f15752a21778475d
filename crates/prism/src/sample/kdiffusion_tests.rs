//! Euler, Heun, DPM-Solver++(2M/3M) SDE, UniPC and the Karras spacing against k-diffusion
//! 0.1.1.post1 and diffusers 0.42.1 themselves (`tools/golden_samplers_kdiffusion.py`,
//! `tests/data/samplers_kdiffusion.json`): the grid, whole trajectories (the SDE samplers fed the
//! reference's noise draws) and exact output moments for Gaussian data; plus evaluation counts,
//! spacing options and their refusals.

use std::cell::Cell;

use burn::tensor::{Device, Tensor};
use rand::SeedableRng;
use serde_json::Value;

use super::spacing::ladder;
use super::tests::{M, S, TwoScale, analytic, cosine, moments, run, run_with_draws, t1};
use super::*;
use crate::denoiser::FnDenoiser;
use crate::golden_data::{assert_close, f32s as floats};
use crate::process::{Level, Prediction};
use crate::schedule::ScheduleConfig;
use crate::tensor::{normal, to_vec};

fn golden() -> Value {
    crate::golden_data::load("samplers_kdiffusion.json")
}

const NEW: [(&str, SamplerKind); 5] = [
    ("euler", SamplerKind::Euler),
    ("heun", SamplerKind::Heun),
    ("dpmpp_2m_sde", SamplerKind::DpmPp2mSde),
    ("dpmpp_3m_sde", SamplerKind::DpmPp3mSde),
    ("unipc", SamplerKind::UniPc),
];

#[test]
fn karras_spacing_matches_k_diffusion() {
    let g = golden();
    let process = cosine();
    let (lo, hi) = (
        sigma_ve(process.log_snr(0.0)),
        sigma_ve(process.log_snr(1.0)),
    );
    assert!((lo / g["sigma_min"].as_f64().unwrap() - 1.0).abs() < 1e-12);
    assert!((hi / g["sigma_max"].as_f64().unwrap() - 1.0).abs() < 1e-12);
    for (n, want) in g["karras"].as_object().unwrap() {
        let n: usize = n.parse().unwrap();
        let got: Vec<f64> = ladder(
            SpacingRule::Karras { rho: 7.0 },
            process.as_ref(),
            1.0,
            0.0,
            n,
        )
        .iter()
        .map(|l| sigma_ve(l.log_snr))
        .collect();
        let want: Vec<f64> = want
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(got.len(), want.len());
        for (a, b) in got.iter().zip(&want) {
            assert!((a / b - 1.0).abs() < 1e-9, "n = {n}: σ̄ {a} vs {b}");
        }
    }
}

#[test]
fn trajectories_match_k_diffusion_and_diffusers() {
    let device = Device::flex();
    let g = golden();
    let z1 = floats(&g["z1"]);
    let process = cosine();
    for (key, kind) in NEW {
        for (k, want) in g["trajectories"][key].as_object().unwrap() {
            let steps: usize = k.parse().unwrap();
            let draws: Vec<Vec<f32>> = g["noise"][k]
                .as_array()
                .map(|rows| rows.iter().map(floats).collect())
                .unwrap_or_default();
            let out = run_with_draws(
                process.as_ref(),
                &analytic(),
                kind,
                steps,
                t1(&z1, &device),
                &draws,
            )
            .unwrap();
            assert_close(&to_vec(out), &floats(want), 2e-4, &format!("{key} K={k}"));
        }
    }
}

/// Sample mean and std of 20 000 draws against the exact moments of the reference sampler (the
/// same grid and number of evaluations; stochastic samplers with their own noise), within six
/// standard errors; with ~1000 evaluations every sampler reaches the data's N(0.3, 0.5²).
#[test]
fn sample_moments_match_references() {
    let device = Device::flex();
    let process = cosine();
    let g = golden();
    let n = 20_000;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(12);
    for (key, kind) in NEW {
        for (k, m) in g["moments"][key].as_object().unwrap() {
            let steps: usize = k.parse().unwrap();
            let (want_mean, want_std) = (m["mean"].as_f64().unwrap(), m["std"].as_f64().unwrap());
            let z1 = normal([n, 1, 1, 1], &mut rng, &device);
            let out = run(process.as_ref(), &analytic(), kind, steps, z1, &mut rng).unwrap();
            let (mean, std) = moments(&to_vec(out));
            let se = want_std / (n as f64).sqrt();
            assert!(
                (mean - want_mean).abs() < 6.0 * se,
                "{key} K={k}: mean {mean} vs {want_mean}"
            );
            assert!(
                (std - want_std).abs() < 6.0 * se,
                "{key} K={k}: std {std} vs {want_std}"
            );
            if steps >= 999 {
                assert!(
                    (mean - M).abs() < 0.01 && (std - S).abs() < 0.01,
                    "{key} K={k}: ({mean}, {std})"
                );
            }
        }
    }
}

/// Every sampler spends exactly the evaluations it is given, on one segment or across a
/// resolution switch, whatever their parity (Heun: two per interval, an Euler interval when
/// the count is odd).
#[test]
fn samplers_spend_exactly_their_evaluations() {
    let device = Device::flex();
    let two = TwoScale(crate::process::GaussianProcess::new(
        ScheduleConfig::default().build().unwrap(),
    ));
    let one = cosine();
    for (_, kind) in NEW {
        for steps in 2..9 {
            for (process, out) in [
                (one.as_ref() as &dyn DiffusionProcess, [1, 1, 4, 4]),
                (&two as &dyn DiffusionProcess, [1, 1, 8, 8]),
            ] {
                let calls = Cell::new(0);
                let counting = FnDenoiser(|z: Tensor<4>, _l: Level| {
                    calls.set(calls.get() + 1);
                    Prediction {
                        x0_hat: z.zeros_like(),
                        eps_hat: z,
                    }
                });
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
                let z1 = process.prior(out, &mut rng, &device);
                let s = Sampling {
                    process,
                    denoiser: &counting,
                    kind,
                    steps,
                    spacing: Spacing::default(),
                    clip_x0: false,
                };
                let mut ticks = 0;
                sample(&s, z1, out, &mut rng, &mut |i, _| ticks = i).unwrap();
                assert_eq!(calls.get(), steps, "{kind} K={steps} {}", process.kind());
                assert_eq!(ticks, steps, "{kind} K={steps}");
            }
        }
    }
}

/// The spacing options: Karras with another ρ, uniform λ and `t` change the result of a
/// deterministic sampler; σ̄ bounds start and end the grid where asked (the first evaluation
/// at σ̄_max, the last at σ̄_min); bad numbers are refused with the flag named.
#[test]
fn spacing_options_apply_and_are_checked() {
    let device = Device::flex();
    let process = cosine();
    let z1 = t1(&[0.4, -1.2, 2.0, 0.1], &device);
    let levels = std::cell::RefCell::new(Vec::new());
    let recording = FnDenoiser(|z: Tensor<4>, l: Level| {
        levels.borrow_mut().push(l.log_snr);
        analytic_prediction(z, l)
    });
    let go = |spacing: Spacing, kind: SamplerKind| {
        levels.borrow_mut().clear();
        let s = Sampling {
            process: process.as_ref(),
            denoiser: &recording,
            kind,
            steps: 8,
            spacing,
            clip_x0: false,
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        sample(&s, z1.clone(), z1.dims(), &mut rng, &mut |_, _| {}).map(to_vec)
    };
    let karras = go(Spacing::default(), SamplerKind::UniPc).unwrap();
    let explicit = Spacing::parse(Some("karras"), Some(7.0), None, None).unwrap();
    assert_eq!(go(explicit, SamplerKind::UniPc).unwrap(), karras);
    for other in [
        Spacing::parse(Some("karras"), Some(3.0), None, None).unwrap(),
        Spacing::parse(Some("logsnr"), None, None, None).unwrap(),
        Spacing::parse(Some("time"), None, None, None).unwrap(),
    ] {
        assert_ne!(go(other, SamplerKind::UniPc).unwrap(), karras, "{other:?}");
    }
    let bounded = Spacing::parse(Some("karras"), None, Some(0.002), Some(80.0)).unwrap();
    go(bounded, SamplerKind::Euler).unwrap();
    let seen = levels.borrow().clone();
    assert_eq!(seen.len(), 8);
    assert!((sigma_ve(seen[0]) / 80.0 - 1.0).abs() < 1e-6, "{seen:?}");
    assert!((sigma_ve(seen[7]) / 0.002 - 1.0).abs() < 1e-6, "{seen:?}");

    let err = |r: Result<Spacing>| r.unwrap_err().to_string();
    assert!(err(Spacing::parse(Some("cosine"), None, None, None)).contains("unknown spacing"));
    assert!(err(Spacing::parse(Some("logsnr"), Some(7.0), None, None)).contains("--rho"));
    for rho in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert!(err(Spacing::parse(Some("karras"), Some(rho), None, None)).contains("--rho"));
    }
    assert!(err(Spacing::parse(None, None, Some(0.0), None)).contains("--sigma-min"));
    assert!(err(Spacing::parse(None, None, None, Some(f64::NAN))).contains("--sigma-max"));
    assert!(err(Spacing::parse(None, None, Some(2.0), Some(1.0))).contains("below --sigma-max"));
    let far = Spacing::parse(None, None, None, Some(1e6)).unwrap();
    assert!(
        go(far, SamplerKind::Heun)
            .unwrap_err()
            .to_string()
            .contains("outside")
    );
    let near = Spacing::parse(None, None, Some(1e-9), None).unwrap();
    assert!(
        go(near, SamplerKind::Heun)
            .unwrap_err()
            .to_string()
            .contains("outside")
    );
    let e = go(bounded, SamplerKind::Ddim { eta: 0.0 })
        .unwrap_err()
        .to_string();
    assert!(e.contains("do not apply to 'ddim'"), "{e}");
}

fn analytic_prediction(z: Tensor<4>, l: Level) -> Prediction {
    use crate::denoiser::Denoise;
    analytic().denoise(z, l).unwrap()
}
