use burn::tensor::Device;
use rand::SeedableRng;
use serde_json::Value;

use super::*;
use crate::process::{DiffusionProcess, GaussianProcess};

use crate::golden_data::f32s as floats;
use crate::golden_data::{assert_close, shape4, tensor4};
use crate::tensor::{normal, to_vec};

fn golden() -> Value {
    crate::golden_data::load("blurring.json")
}

/// The process of one golden case.
fn golden_process(case: &Value) -> BlurringProcess {
    let f = |k: &str| case[k].as_f64().unwrap();
    let schedule = crate::golden_data::cosine(f("logsnr_min"), f("logsnr_max"));
    BlurringProcess::new(schedule, f("blur_sigma_max"), f("min_scale")).unwrap()
}

/// `α_t` at t = 0.5 and forward samples `z_t` (per-sample times, fixed `x`, `ε`) against the
/// pseudo-code's `get_alpha_sigma` and `diffuse` in `tools/golden_blurring.py`.
#[test]
fn forward_matches_pseudo_code() {
    let device = Device::flex();
    for case in golden()["processes"].as_array().unwrap() {
        let p = golden_process(case);
        let s = shape4(&case["shape"]);
        let alpha: Vec<f32> = p.alpha(0.5, s[2], s[3]).iter().map(|&v| v as f32).collect();
        assert_close(&alpha, &floats(&case["alpha_t0.5"]), 1e-6, "alpha(0.5)");
        let sigma = case["sigma_t0.5"].as_f64().unwrap();
        assert!((p.sigma(0.5) - sigma).abs() < 1e-12);
        let x = tensor4(&floats(&case["x"]), s, &device);
        let eps = tensor4(&floats(&case["eps"]), s, &device);
        for f in case["forward"].as_array().unwrap() {
            let t: Vec<f64> = f["t"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            let z = to_vec(p.corrupt(x.clone(), &t, eps.clone()).unwrap());
            assert_close(&z, &floats(&f["z_t"]), 2e-5, &format!("z_t at t = {t:?}"));
        }
    }
}

/// `σ_B,max = 0`: `d_t ≡ 1` and `corrupt` is the Gaussian process's.
#[test]
fn no_blur_is_gaussian_forward() {
    let device = Device::flex();
    let schedule = crate::golden_data::cosine(-10.0, 10.0);
    let blur = BlurringProcess::new(schedule.clone(), 0.0, 0.001).unwrap();
    let gauss = GaussianProcess::new(schedule);
    assert!(blur.scale(0.7, 4, 6).iter().all(|&d| d == 1.0));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let x = normal([3, 2, 8, 6], &mut rng, &device);
    let eps = normal([3, 2, 8, 6], &mut rng, &device);
    let t = [0.05, 0.5, 0.99];
    let a = to_vec(blur.corrupt(x.clone(), &t, eps.clone()).unwrap());
    let b = to_vec(gauss.corrupt(x, &t, eps).unwrap());
    assert_close(&a, &b, 1e-5, "blurring(σ_B = 0) vs gaussian");
}

/// Blurring fades high frequencies first, never below `a_t d_min`, and not at all at `t = 0`.
#[test]
fn scale_is_one_at_zero_and_floored() {
    let schedule = crate::golden_data::cosine(-10.0, 10.0);
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
    let schedule = crate::golden_data::cosine(-10.0, 10.0);
    let p = BlurringProcess::new(schedule, 3.0, 0.01).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
    let x = normal([2, 1, 8, 8], &mut rng, &device);
    let eps = normal([2, 1, 8, 8], &mut rng, &device);
    let dct = Dct2d::new(8, 8, &device).unwrap();
    let z = p.corrupt(x.clone(), &[0.4, 0.4], eps.clone()).unwrap();
    let got = to_vec(p.x0_from_eps(&dct, z, eps, 0.4).unwrap());
    assert_close(&got, &to_vec(x), 2e-3, "x̂");
}

#[test]
fn bad_parameters_are_named() {
    let s = || crate::golden_data::cosine(-10.0, 10.0);
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
