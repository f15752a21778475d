//! Invariant tests, plus golden values from `tools/golden_schedules.py` (numpy, and diffusers for
//! the linear-β ᾱ), stored in `tests/data/schedules.json`.

use super::*;
use serde_json::Value;

fn all_kinds() -> Vec<(&'static str, Schedule)> {
    let cfgs = [
        ("cosine", ScheduleConfig::default()),
        (
            "shifted",
            ScheduleConfig::Shifted {
                image_size: 256,
                reference_size: 64,
                logsnr_min: -15.0,
                logsnr_max: 15.0,
                clip: ShiftClip::ShiftedLimits,
            },
        ),
        (
            "interpolated",
            ScheduleConfig::Interpolated {
                image_size: 512,
                low_reference: 32,
                high_reference: 256,
                logsnr_min: -15.0,
                logsnr_max: 15.0,
                clip: ShiftClip::ClipThenShift,
            },
        ),
        (
            "linear",
            ScheduleConfig::LinearBeta {
                beta_start: 1e-4,
                beta_end: 0.02,
                num_train_steps: 1000,
                logsnr_max: 15.0,
            },
        ),
    ];
    cfgs.into_iter()
        .map(|(n, c)| (n, c.build().unwrap()))
        .collect()
}

#[test]
fn cosine_hits_its_clip_limits() {
    let s = CosineSchedule::new(-12.0, 9.0).unwrap();
    assert!((s.log_snr(0.0) - 9.0).abs() < 1e-12);
    assert!((s.log_snr(1.0) + 12.0).abs() < 1e-12);
}

#[test]
fn unclipped_cosine_is_cos_sin() {
    // With a very wide clip the schedule approaches α = cos(πt/2), σ = sin(πt/2).
    let s = CosineSchedule::new(-60.0, 60.0).unwrap();
    for i in 1..10 {
        let t = i as f64 / 10.0;
        let (a, sg) = (
            (std::f64::consts::FRAC_PI_2 * t).cos(),
            (std::f64::consts::FRAC_PI_2 * t).sin(),
        );
        assert!((s.alpha(t) - a).abs() < 1e-9, "t = {t}");
        assert!((s.sigma(t) - sg).abs() < 1e-9, "t = {t}");
    }
}

#[test]
fn every_schedule_is_decreasing_variance_preserving_and_invertible() {
    for (name, s) in all_kinds() {
        let mut prev = f64::INFINITY;
        for i in 0..=400 {
            let t = i as f64 / 400.0;
            let l = s.log_snr(t);
            assert!(l.is_finite(), "{name}: λ({t}) = {l}");
            assert!(l < prev || (i == 0), "{name}: not decreasing at t = {t}");
            prev = l;
            let (a, sg) = (s.alpha(t), s.sigma(t));
            assert!((a * a + sg * sg - 1.0).abs() < 1e-12, "{name}: α² + σ² ≠ 1");
            let back = s.t_of_log_snr(l);
            assert!((back - t).abs() < 1e-9, "{name}: t(λ({t})) = {back}");
            // derivative against a central difference
            if i > 0 && i < 400 {
                let h = 1e-6;
                let fd = (s.log_snr(t + h) - s.log_snr(t - h)) / (2.0 * h);
                let d = s.dlog_snr_dt(t);
                assert!(d < 0.0, "{name}: dλ/dt ≥ 0 at {t}");
                if name != "linear" || (t * 1000.0).fract().abs() > 1e-3 {
                    assert!(
                        (fd - d).abs() <= 1e-5 * d.abs().max(1.0),
                        "{name}: dλ/dt({t}) = {d}, fd = {fd}"
                    );
                }
            }
        }
    }
}

#[test]
fn shift_variants_differ_as_documented() {
    let a = CosineSchedule::shifted(-15.0, 15.0, 256, 64, ShiftClip::ClipThenShift).unwrap();
    let b = CosineSchedule::shifted(-15.0, 15.0, 256, 64, ShiftClip::ShiftedLimits).unwrap();
    let shift = 2.0 * (64.0_f64 / 256.0).ln();
    assert!((a.log_snr(0.0) - (15.0 + shift)).abs() < 1e-12);
    assert!((a.log_snr(1.0) - (-15.0 + shift)).abs() < 1e-12);
    assert!((b.log_snr(0.0) - 15.0).abs() < 1e-12);
    assert!((b.log_snr(1.0) + 15.0).abs() < 1e-12);
    // In the interior both equal base + shift, where the base is the same cosine (wide clip).
    let base = CosineSchedule::new(-15.0, 15.0).unwrap();
    assert!((a.log_snr(0.5) - base.log_snr(0.5) - shift).abs() < 1e-12);
}

#[test]
fn interpolated_follows_low_at_one_and_high_at_zero() {
    let low = CosineSchedule::shifted(-15.0, 15.0, 512, 32, ShiftClip::ClipThenShift).unwrap();
    let high = CosineSchedule::shifted(-15.0, 15.0, 512, 256, ShiftClip::ClipThenShift).unwrap();
    let s = InterpolatedSchedule::new(low.clone(), high.clone());
    assert!((s.log_snr(1.0) - low.log_snr(1.0)).abs() < 1e-12);
    assert!((s.log_snr(0.0) - high.log_snr(0.0)).abs() < 1e-12);
}

#[test]
fn bad_parameters_are_config_errors() {
    assert!(CosineSchedule::new(5.0, -5.0).is_err());
    assert!(CosineSchedule::shifted(-15.0, 15.0, 0, 64, ShiftClip::default()).is_err());
    assert!(LinearBetaSchedule::new(0.02, 1e-4, 1000, 15.0).is_err());
    let err = ScheduleConfig::Cosine {
        logsnr_min: f64::NAN,
        logsnr_max: 1.0,
    }
    .build()
    .unwrap_err();
    assert!(err.to_string().contains("logsnr_min"), "{err}");
}

fn golden() -> Value {
    crate::golden_data::load("schedules.json")
}

fn floats(v: &Value) -> Vec<f64> {
    crate::golden_data::f64s(v)
}

fn clip_of(case: &Value) -> ShiftClip {
    match case["clip"].as_str().unwrap() {
        "clip_then_shift" => ShiftClip::ClipThenShift,
        "shifted_limits" => ShiftClip::ShiftedLimits,
        other => panic!("unknown clip {other}"),
    }
}

/// Builds the schedule a golden case describes (the case's parameters are its keys).
fn schedule_of(case: &Value) -> Schedule {
    let f = |k: &str| case[k].as_f64().unwrap();
    let u = |k: &str| case[k].as_u64().unwrap() as usize;
    let name = case["name"].as_str().unwrap();
    let cfg = if name.starts_with("cosine") {
        ScheduleConfig::Cosine {
            logsnr_min: f("logsnr_min"),
            logsnr_max: f("logsnr_max"),
        }
    } else if name.starts_with("shifted") {
        ScheduleConfig::Shifted {
            image_size: u("image_size"),
            reference_size: u("reference_size"),
            logsnr_min: f("logsnr_min"),
            logsnr_max: f("logsnr_max"),
            clip: clip_of(case),
        }
    } else if name.starts_with("interpolated") {
        ScheduleConfig::Interpolated {
            image_size: u("image_size"),
            low_reference: u("low_reference"),
            high_reference: u("high_reference"),
            logsnr_min: f("logsnr_min"),
            logsnr_max: f("logsnr_max"),
            clip: clip_of(case),
        }
    } else if name.starts_with("linear") {
        ScheduleConfig::LinearBeta {
            beta_start: f("beta_start"),
            beta_end: f("beta_end"),
            num_train_steps: u("num_train_steps"),
            logsnr_max: f("logsnr_max"),
        }
    } else {
        panic!("unknown golden case {name}")
    };
    cfg.build().unwrap()
}

#[test]
fn matches_numpy_golden_values() {
    let g = golden();
    let ts = floats(&g["t"]);
    let cases = g["cases"].as_array().unwrap();
    assert!(cases.len() >= 10, "golden file has {} cases", cases.len());
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let s = schedule_of(case);
        let (l, d, a, sg) = (
            floats(&case["logsnr"]),
            floats(&case["dlogsnr_dt"]),
            floats(&case["alpha"]),
            floats(&case["sigma"]),
        );
        for (i, &t) in ts.iter().enumerate() {
            assert!(
                (s.log_snr(t) - l[i]).abs() < 1e-9,
                "{name}: λ({t}) = {} vs {}",
                s.log_snr(t),
                l[i]
            );
            assert!((s.alpha(t) - a[i]).abs() < 1e-12, "{name}: α({t})");
            assert!((s.sigma(t) - sg[i]).abs() < 1e-12, "{name}: σ({t})");
            let tol = if name.starts_with("linear") {
                1e-9
            } else {
                1e-4
            };
            assert!(
                (s.dlog_snr_dt(t) - d[i]).abs() <= tol * d[i].abs().max(1.0),
                "{name}: dλ/dt({t}) = {} vs {}",
                s.dlog_snr_dt(t),
                d[i]
            );
        }
        if let Some(inv) = case.get("inverse") {
            for (l, t) in floats(&inv["logsnr"]).into_iter().zip(floats(&inv["t"])) {
                assert!((s.t_of_log_snr(l) - t).abs() < 1e-10, "{name}: t({l})");
            }
        }
    }
}

#[test]
fn linear_beta_matches_diffusers_alphas_cumprod() {
    let g = golden();
    let d = &g["diffusers_linear"];
    let n = d["num_train_timesteps"].as_u64().unwrap() as usize;
    let s = LinearBetaSchedule::new(
        d["beta_start"].as_f64().unwrap(),
        d["beta_end"].as_f64().unwrap(),
        n,
        15.0,
    )
    .unwrap();
    let ac = floats(&d["alphas_cumprod"]);
    assert_eq!(ac.len(), n);
    // diffusers accumulates in float32: compare with a float32-sized tolerance.
    for (i, &want) in ac.iter().enumerate() {
        let got = s.log_alpha_bar((i + 1) as f64 / n as f64).exp();
        assert!(
            (got - want).abs() < 2e-6 * want.max(1e-3),
            "ᾱ[{i}] = {got} vs diffusers {want}"
        );
        let l = s.log_snr((i + 1) as f64 / n as f64);
        assert!(
            (sigmoid(l) - want).abs() < 2e-6 * want.max(1e-3),
            "sigmoid(λ) at step {i}"
        );
    }
}
