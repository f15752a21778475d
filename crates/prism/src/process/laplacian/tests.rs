//! Laplacian process tests: the forward process and the switch against the numpy
//! re-implementation of `tools/golden_laplacian.py` (`tests/data/laplacian.json`), the diagonal
//! basis, the parameterisations, and the switch's mean and covariance in closed form.

use burn::tensor::Tensor;

use super::*;
use crate::golden_data::{assert_close, cosine, f32s, f64s, seeded, shape4, tensor4};
use crate::tensor::to_vec;

fn process(levels: usize, switch: &[f64], fade: &[f64], size: usize) -> LaplacianProcess {
    LaplacianProcess::new(
        cosine(-15.0, 15.0),
        &LaplacianSettings {
            levels,
            switch_times: switch.to_vec(),
            fade_starts: Some(fade.to_vec()),
            image_size: size,
            stage_weights: None,
        },
    )
    .unwrap()
}

/// `corrupt` (states at every level), the attenuations and the switch against numpy.
#[test]
fn corrupt_and_switch_match_numpy() {
    let device = burn::tensor::Device::flex();
    let g = crate::golden_data::load("laplacian.json");
    for case in g["process"].as_array().unwrap() {
        let k = case["levels"].as_u64().unwrap() as usize;
        let p = process(
            k,
            &f64s(&case["switch_times"]),
            &f64s(&case["fade_starts"]),
            case["image_size"].as_u64().unwrap() as usize,
        );
        let shape = shape4(&case["shape"]);
        let x = tensor4(&f32s(&case["x"]), shape, &device);
        let eps = tensor4(&f32s(&case["eps"]), shape, &device);
        for c in case["cases"].as_array().unwrap() {
            let t = c["t"].as_f64().unwrap();
            let z = p.corrupt(x.clone(), &[t, t], eps.clone()).unwrap();
            assert_eq!(z.dims(), p.state_shape(shape, t), "K={k} t={t}");
            assert_close(&to_vec(z), &f32s(&c["z"]), 2e-5, &format!("K={k} t={t}"));
            for (i, d) in f64s(&c["attenuation"]).iter().enumerate() {
                assert!((p.attenuation(i + 1, t) - d).abs() < 1e-12);
            }
        }
        for s in case["switches"].as_array().unwrap() {
            let (kk, t) = (s["k"].as_u64().unwrap() as usize, s["t"].as_f64().unwrap());
            let side = 8 >> kk;
            let low = tensor4(&f32s(&s["z_low"]), [2, 1, side, side], &device);
            let xi = tensor4(&f32s(&s["xi"]), [2, 1, 2 * side, 2 * side], &device);
            let high = p.switch_with(low, t, kk, xi).unwrap();
            assert_close(&to_vec(high), &f32s(&s["z_high"]), 2e-5, "switch");
        }
    }
}

/// In the Haar packet the state is `α ⊙ x + σ ε` coordinate by coordinate, with the scales of
/// `diagonal` and the data of `at_state`; the coarsest band is variance preserving with logSNR
/// `λ + j log 4`.
#[test]
fn the_state_is_diagonal_in_the_haar_packet() {
    let (device, mut rng) = seeded(4);
    let p = process(3, &[0.3, 0.6], &[0.0, 0.1], 16);
    let x = crate::tensor::normal([2, 3, 16, 16], &mut rng, &device);
    let eps = crate::tensor::normal([2, 3, 16, 16], &mut rng, &device);
    for t in [0.0, 0.1, 0.3, 0.35, 0.6, 0.8, 1.0] {
        let z = p.corrupt(x.clone(), &[t, t], eps.clone()).unwrap();
        let (xs, es) = p.at_state(x.clone(), eps.clone(), &[t, t]).unwrap();
        let d = p.diagonal(p.level(t), z.dims()).unwrap();
        let a = crate::process::coef(d.map(|c| c.alpha), &device);
        let s = crate::process::coef(d.map(|c| c.sigma), &device);
        let want = a.mul(p.to_basis(xs).unwrap()) + s.mul(p.to_basis(es).unwrap());
        assert_close(
            &to_vec(p.to_basis(z).unwrap()),
            &to_vec(want),
            1e-4,
            &format!("t={t}"),
        );
        let j = p.level_at(t);
        let coarse = d.coords[0];
        assert!((coarse.alpha.powi(2) + coarse.sigma.powi(2) - 1.0).abs() < 1e-9);
        let lam = p.log_snr(t) + j as f64 * 4f64.ln();
        assert!((coarse.log_snr - lam).abs() < 1e-9, "t={t}");
        assert!((p.network_log_snr(p.level(t), [1, 3, 16 >> j, 16 >> j]) - lam).abs() < 1e-12);
    }
}

/// From exact targets, `predict` recovers `x` and `ε` for v- and x-prediction (also where a band's
/// `α` is 0, at a switch time); ε-prediction is refused.
#[test]
fn parameterisations_round_trip() {
    let (device, mut rng) = seeded(6);
    let p = process(3, &[0.3, 0.6], &[0.0, 0.0], 8);
    let x = crate::tensor::normal([2, 2, 8, 8], &mut rng, &device) * 0.5;
    let eps = crate::tensor::normal([2, 2, 8, 8], &mut rng, &device);
    for t in [0.02, 0.3, 0.45, 0.6, 0.95] {
        let ts = [t, t];
        let z = p.corrupt(x.clone(), &ts, eps.clone()).unwrap();
        let (xs, es) = p.at_state(x.clone(), eps.clone(), &ts).unwrap();
        for param in [Parameterization::V, Parameterization::X] {
            let target = p.target(param, xs.clone(), es.clone(), &ts).unwrap();
            let pred = p
                .predict(param, target, z.clone(), &[p.level(t), p.level(t)])
                .unwrap();
            let what = format!("{param:?} t={t}");
            assert_close(&to_vec(pred.x0_hat), &to_vec(xs.clone()), 1e-3, &what);
            assert_close(&to_vec(pred.eps_hat), &to_vec(es.clone()), 1e-3, &what);
        }
        let e = p
            .target(Parameterization::Eps, xs, es, &ts)
            .unwrap_err()
            .to_string();
        assert!(e.contains("v- or x-predicting"), "{e}");
    }
}

/// The switch is exact: without noise it maps the state at level k at `t_k` to the state at level
/// k − 1 (band k has no signal there), and noise `N(0, σ_k² I)` becomes `N(0, σ_{k−1}² I)`, with
/// no correlation inside the 2×2 blocks that nearest upsampling alone would leave (closed form:
/// the identity times the state's σ²).
#[test]
fn switch_preserves_the_marginal() {
    let (device, mut rng) = seeded(9);
    let p = process(3, &[0.3, 0.6], &[0.0, 0.2], 8);
    let x = crate::tensor::normal([3, 2, 8, 8], &mut rng, &device);
    let zero = x.zeros_like();
    for (k, &t) in [0.3, 0.6].iter().enumerate() {
        let k = k + 1;
        // The mean: the signal-only state at level k (pooled from the full state) → level k − 1.
        let full = p.corrupt(x.clone(), &[0.0; 3], zero.clone()).unwrap();
        assert_eq!(full.dims()[2], 8);
        let signal_high = p.corrupt(x.clone(), &[t; 3], zero.clone()).unwrap();
        assert_eq!(signal_high.dims()[2], 8 >> (k - 1));
        let signal_low = crate::transform::avg_pool(signal_high.clone(), 2)
            * (p.state_scale(k, t) / p.state_scale(k - 1, t));
        let xi0 = signal_high.zeros_like();
        let back = p.switch_with(signal_low, t, k, xi0).unwrap();
        assert_close(&to_vec(back), &to_vec(signal_high), 1e-5, "mean");

        // The covariance, over 20000 draws of a 2×2 block.
        let n = 20_000;
        let (_, s_low) = p.state_scales(k, t);
        let (_, s_high) = p.state_scales(k - 1, t);
        let side = 8 >> k;
        let low = crate::tensor::normal([n, 1, side, side], &mut rng, &device) * s_low;
        let xi = crate::tensor::normal([n, 1, 2 * side, 2 * side], &mut rng, &device);
        let high = to_vec(
            p.switch_with(low, t, k, xi)
                .unwrap()
                .narrow(2, 0, 2)
                .narrow(3, 0, 2),
        );
        for a in 0..4 {
            for b in 0..4 {
                let cov: f64 = (0..n)
                    .map(|i| f64::from(high[4 * i + a]) * f64::from(high[4 * i + b]))
                    .sum::<f64>()
                    / n as f64;
                let want = if a == b { s_high * s_high } else { 0.0 };
                // 5 standard errors of a (co)variance estimate: σ² sqrt(2/n) on the diagonal.
                let tol = 5.0 * s_high * s_high * (2.0 / n as f64).sqrt();
                assert!(
                    (cov - want).abs() < tol,
                    "k={k} cov[{a}][{b}] = {cov} vs {want}"
                );
            }
        }
    }
}

/// The bands of `prism forward --bands`: at every level their sum, pooled to the state's side
/// and scaled by `c_j`, is the noise-free state `corrupt(x, t, 0)` (golden-tested above); band
/// `k` is exactly zero from its switch time on and untouched before its fade starts.
#[test]
fn signal_bands_sum_to_the_noise_free_state() {
    let (device, mut rng) = seeded(11);
    let p = process(3, &[0.3, 0.6], &[0.0, 0.1], 16);
    let x = crate::tensor::normal([2, 1, 16, 16], &mut rng, &device);
    for t in [0.0, 0.05, 0.2, 0.3, 0.45, 0.6, 0.8, 1.0] {
        let bands = p.signal_bands(x.clone(), t).unwrap();
        assert_eq!(bands.len(), 3);
        let j = p.level_at(t);
        let sum = bands.iter().cloned().reduce(|a, b| a + b).unwrap();
        let want = p.corrupt(x.clone(), &[t, t], x.zeros_like()).unwrap();
        let got = down_by(sum, j) * p.state_scale(j, t);
        assert_close(&to_vec(got), &to_vec(want), 1e-5, &format!("t = {t}"));
        for (k, band) in bands.iter().enumerate() {
            let max = to_vec(band.clone())
                .iter()
                .fold(0f32, |m, v| m.max(v.abs()));
            if k < 2 && t >= [0.3, 0.6][k] {
                assert_eq!(max, 0.0, "band {} at t = {t}", k + 1);
            } else {
                assert!(max > 0.0, "band {} at t = {t}", k + 1);
            }
        }
    }
    let bands = p.signal_bands(x.clone(), 0.05).unwrap();
    let whole = pyramid_bands(x, 3).unwrap();
    let a0 = p.schedule.alpha(0.05);
    // Band 2 starts to fade at 0.1: at 0.05 it is a(t) times the pyramid band, upsampled.
    assert_close(
        &to_vec(bands[1].clone()),
        &to_vec(up_by(whole[1].clone(), 1) * a0),
        1e-6,
        "band 2 before its fade",
    );
}

#[test]
fn resolution_follows_the_switch_times() {
    let p = process(4, &[0.2, 0.4, 0.7], &[0.0, 0.0, 0.0], 32);
    assert_eq!(p.switch_times(), vec![0.7, 0.4, 0.2]);
    let out = [5, 3, 32, 32];
    for (t, side) in [
        (0.0, 32),
        (0.2, 32),
        (0.21, 16),
        (0.4, 16),
        (0.5, 8),
        (0.71, 4),
        (1.0, 4),
    ] {
        assert_eq!(p.state_shape(out, t), [5, 3, side, side], "t={t}");
    }
    let groups = p.training_groups(&[0.1, 0.5, 0.9, 0.3, 0.8]);
    assert_eq!(groups, vec![vec![0], vec![3], vec![1], vec![2, 4]]);
    let (device, mut rng) = seeded(1);
    assert_eq!(p.prior(out, &mut rng, &device).dims(), [5, 3, 4, 4]);
    let x = Tensor::<4>::zeros(out, &device);
    let e = p.corrupt(x.clone(), &[0.1, 0.5], x.clone()).unwrap_err();
    assert!(e.to_string().contains("training_groups"), "{e}");
    assert!(p.switch(x.clone(), 0.5, out, &mut rng).is_err());
    assert!(
        p.level_of_side(12)
            .unwrap_err()
            .to_string()
            .contains("[32, 16, 8, 4]")
    );
}

#[test]
fn settings_are_validated() {
    let bad = |levels: usize, switch: Vec<f64>, fade: Option<Vec<f64>>, size: usize| {
        LaplacianProcess::new(
            cosine(-15.0, 15.0),
            &LaplacianSettings {
                levels,
                switch_times: switch,
                fade_starts: fade,
                image_size: size,
                stage_weights: None,
            },
        )
        .unwrap_err()
        .to_string()
    };
    assert!(bad(5, vec![0.1, 0.2, 0.3, 0.4], None, 32).contains("levels must be 2, 3 or 4"));
    assert!(bad(1, vec![], None, 32).contains("levels must be 2, 3 or 4"));
    assert!(bad(3, vec![0.5], None, 32).contains("needs 2 times"));
    assert!(bad(3, vec![0.6, 0.3], None, 32).contains("strictly increasing"));
    assert!(bad(3, vec![0.3, f64::NAN], None, 32).contains("strictly increasing"));
    assert!(bad(2, vec![1.0], None, 32).contains("inside (0, 1)"));
    assert!(bad(2, vec![0.5], Some(vec![0.5]), 32).contains("s_k < t_k"));
    assert!(bad(3, vec![0.3, 0.6], None, 30).contains("multiple of 2^(levels − 1) = 4"));
    let e = LaplacianProcess::new(
        cosine(-15.0, 15.0),
        &LaplacianSettings {
            levels: 2,
            switch_times: vec![0.5],
            fade_starts: None,
            image_size: 8,
            stage_weights: Some(vec![1.0, -1.0]),
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("stage_weights"), "{e}");
}
