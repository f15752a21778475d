//! The 5/3 (LeGall) discrete wavelet transform by lifting (formula sheet §2), periodic extension.
//!
//! One level, along one axis of even length `N` (indices modulo `N/2`):
//! ```text
//! analysis:   d[n] = x[2n+1] − ½(x[2n] + x[2n+2])        s[n] = x[2n] + ¼(d[n−1] + d[n])
//! synthesis:  x[2n] = s[n] − ¼(d[n−1] + d[n])            x[2n+1] = d[n] + ½(x[2n] + x[2n+2])
//! ```
//! Boundary handling: **periodic** extension (`x[N] = x[0]`, `d[−1] = d[N/2−1]`), the only extension
//! under which one level maps `N` samples to exactly `N/2 + N/2` coefficients for every even `N`.
//! Band scaling: PyWavelets' `bior2.2` with `mode='periodization'`, `cA = √2·s`, `cD = −d/√2`, so
//! the coefficients equal `pywt.dwt2(x, 'bior2.2', mode='periodization')` (golden test from
//! `tools/golden_dwt.py`). With that scaling white noise of variance 1 keeps a variance between
//! 0.56 (HH) and 2.07 (LL) per band and level, so no further normalisation is applied inside the
//! network (the band scaling is an open choice on the formula sheet).
//!
//! 2-D layout: `[B, C, H, W] → [B, 4C, H/2, W/2]`, sub-bands band-major (`channel = band·C + c`),
//! bands in PyWavelets' order `cA, cH` (detail along H)`, cV` (detail along W)`, cD`. Further levels
//! split every channel again, so two levels take `3 × 512²` to `48 × 128²` (the paper's layout).
//! Everything is built from reshapes, slices and sums, so gradients flow through both directions.

use burn::tensor::Tensor;

use crate::{Error, Result};

const SQRT2: f64 = std::f64::consts::SQRT_2;

/// Rotates the last axis: `out[n] = x[(n + shift) mod N]` for `shift` of ±1.
fn roll_last(x: Tensor<4>, shift: isize) -> Tensor<4> {
    let n = x.dims()[3];
    if n == 1 {
        return x;
    }
    let k = shift.rem_euclid(n as isize) as usize;
    Tensor::cat(vec![x.clone().narrow(3, k, n - k), x.narrow(3, 0, k)], 3)
}

/// One analysis level along the last axis: `[.., N] → ([.., N/2] approximation, [.., N/2] detail)`,
/// PyWavelets-scaled.
fn analysis_last(x: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
    let [a, b, c, n] = x.dims();
    let pairs = x.reshape([a, b, c * (n / 2), 2]);
    let even = pairs.clone().narrow(3, 0, 1).reshape([a, b, c, n / 2]);
    let odd = pairs.narrow(3, 1, 1).reshape([a, b, c, n / 2]);
    let d = odd - (even.clone() + roll_last(even.clone(), 1)) * 0.5;
    let s = even + (roll_last(d.clone(), -1) + d.clone()) * 0.25;
    (s * SQRT2, d * (-1.0 / SQRT2))
}

/// Inverse of [`analysis_last`]: `([.., M], [.., M]) → [.., 2M]`.
fn synthesis_last(approx: Tensor<4>, detail: Tensor<4>) -> Tensor<4> {
    let [a, b, c, m] = approx.dims();
    let s = approx * (1.0 / SQRT2);
    let d = detail * (-SQRT2);
    let even = s - (roll_last(d.clone(), -1) + d.clone()) * 0.25;
    let odd = d + (even.clone() + roll_last(even.clone(), 1)) * 0.5;
    Tensor::cat(
        vec![
            even.reshape([a, b, c * m, 1]),
            odd.reshape([a, b, c * m, 1]),
        ],
        3,
    )
    .reshape([a, b, c, 2 * m])
}

/// One 2-D level: `[B, C, H, W] → [B, 4C, H/2, W/2]` (layout in the module docs).
fn forward_level(x: Tensor<4>) -> Tensor<4> {
    let (lo_w, hi_w) = analysis_last(x);
    let along_h = |t: Tensor<4>| {
        let (lo, hi) = analysis_last(t.swap_dims(2, 3));
        (lo.swap_dims(2, 3), hi.swap_dims(2, 3))
    };
    let (ll, hl) = along_h(lo_w);
    let (lh, hh) = along_h(hi_w);
    // cA = low/low, cH = detail along H, cV = detail along W, cD = detail/detail.
    Tensor::cat(vec![ll, hl, lh, hh], 1)
}

/// Inverse of [`forward_level`]: `[B, 4C, H, W] → [B, C, 2H, 2W]`.
fn inverse_level(y: Tensor<4>) -> Tensor<4> {
    let c = y.dims()[1] / 4;
    let band = |i: usize| y.clone().narrow(1, i * c, c);
    let along_h = |lo: Tensor<4>, hi: Tensor<4>| {
        synthesis_last(lo.swap_dims(2, 3), hi.swap_dims(2, 3)).swap_dims(2, 3)
    };
    let lo_w = along_h(band(0), band(1));
    let hi_w = along_h(band(2), band(3));
    synthesis_last(lo_w, hi_w)
}

/// Checks that `levels` halvings fit `h × w`.
fn check_size(h: usize, w: usize, levels: usize) -> Result<()> {
    let f = 1usize.checked_shl(levels as u32).unwrap_or(0);
    if levels == 0 || f == 0 || !h.is_multiple_of(f) || !w.is_multiple_of(f) {
        return Err(Error::Shape(format!(
            "a {levels}-level wavelet transform needs height and width divisible by 2^{levels}, got {h}×{w}"
        )));
    }
    Ok(())
}

/// `levels` levels of the 2-D 5/3 DWT: `[B, C, H, W] → [B, C·4^levels, H/2^levels, W/2^levels]`.
/// H and W must be divisible by `2^levels`, `levels ≥ 1`.
pub fn dwt2(x: Tensor<4>, levels: usize) -> Result<Tensor<4>> {
    let [_, _, h, w] = x.dims();
    check_size(h, w, levels)?;
    Ok((0..levels).fold(x, |x, _| forward_level(x)))
}

/// The exact inverse of [`dwt2`]: `[B, C·4^levels, H, W] → [B, C, H·2^levels, W·2^levels]`.
/// The channel count must be divisible by `4^levels`.
pub fn idwt2(y: Tensor<4>, levels: usize) -> Result<Tensor<4>> {
    let [_, c, h, w] = y.dims();
    let bands = 1usize.checked_shl(2 * levels as u32).unwrap_or(0);
    if levels == 0 || bands == 0 || !c.is_multiple_of(bands) {
        return Err(Error::Shape(format!(
            "a {levels}-level inverse wavelet transform needs channels divisible by 4^{levels}, got {c} channels ({h}×{w})"
        )));
    }
    Ok((0..levels).fold(y, |y, _| inverse_level(y)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::{normal, to_vec};
    use burn::tensor::{Device, TensorData};
    use rand::{Rng, SeedableRng};

    /// Golden values from PyWavelets `dwt2(·, 'bior2.2', mode='periodization')`, written by
    /// `tools/golden_dwt.py` to `tests/data/dwt.json`.
    #[test]
    fn matches_pywavelets_bior22_periodization() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/dwt.json");
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let device = Device::flex();
        let cases = json["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 5);
        for case in cases {
            let shape: Vec<usize> = serde_json::from_value(case["shape"].clone()).unwrap();
            let levels = case["levels"].as_u64().unwrap() as usize;
            let image: Vec<f32> = serde_json::from_value(case["image"].clone()).unwrap();
            let want: Vec<f32> = serde_json::from_value(case["coeffs"].clone()).unwrap();
            let x = Tensor::<4>::from_data(
                TensorData::new(image.clone(), [1, shape[0], shape[1], shape[2]]),
                &device,
            );
            let y = dwt2(x, levels).unwrap();
            let f = 1 << levels;
            assert_eq!(y.dims(), [1, shape[0] * f * f, shape[1] / f, shape[2] / f]);
            let got = to_vec(y.clone());
            for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (a - b).abs() < 1e-4,
                    "{shape:?} L{levels} [{i}]: {a} vs {b}"
                );
            }
            let back = to_vec(idwt2(y, levels).unwrap());
            for (a, b) in back.iter().zip(&image) {
                assert!(
                    (a - b).abs() < 1e-4,
                    "{shape:?} L{levels} inverse: {a} vs {b}"
                );
            }
        }
    }

    /// `idwt2(dwt2(x)) = x` and `dwt2(idwt2(y)) = y` for random shapes and levels.
    #[test]
    fn round_trips_on_random_shapes() {
        let device = Device::flex();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        for _ in 0..12 {
            let levels = rng.random_range(1..=3);
            let f = 1 << levels;
            let shape = [
                rng.random_range(1..=2),
                rng.random_range(1..=3),
                f * rng.random_range(1..=4),
                f * rng.random_range(1..=4),
            ];
            let x = normal(shape, &mut rng, &device);
            let y = dwt2(x.clone(), levels).unwrap();
            let back = idwt2(y.clone(), levels).unwrap();
            assert_eq!(back.dims(), shape);
            let err = to_vec((back - x).abs().max())[0];
            assert!(err < 1e-5, "{shape:?} L{levels}: {err}");
            let again = dwt2(idwt2(y.clone(), levels).unwrap(), levels).unwrap();
            let err = to_vec((again - y).abs().max())[0];
            assert!(err < 1e-5, "{shape:?} L{levels} (coefficients): {err}");
        }
    }

    /// A constant image has energy only in the LL band, scaled by 2 per level.
    #[test]
    fn constant_image_lives_in_the_approximation_band() {
        let device = Device::flex();
        let x = Tensor::<4>::full([1, 1, 8, 8], 0.5, &device);
        let y = to_vec(dwt2(x, 2).unwrap());
        let ll = &y[..4];
        assert!(ll.iter().all(|v| (v - 2.0).abs() < 1e-6), "{ll:?}");
        assert!(y[4..].iter().all(|v| v.abs() < 1e-6));
    }

    /// White noise keeps per-band variances equal to the products of the analysis filters'
    /// energies: low-pass √2·[−⅛, ¼, ¾, ¼, −⅛] (energy 1.4375), high-pass −[−½, 1, −½]/√2
    /// (energy 0.75), so LL ≈ 2.07, LH = HL ≈ 1.08, HH ≈ 0.56 (the range quoted in the module docs).
    #[test]
    fn white_noise_band_variances_follow_the_filter_energies() {
        let device = Device::flex();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(12);
        let lo: f64 = [-0.125f64, 0.25, 0.75, 0.25, -0.125]
            .iter()
            .map(|t| 2.0 * t * t)
            .sum();
        let hi: f64 = [-0.5f64, 1.0, -0.5].iter().map(|t| t * t / 2.0).sum();
        let y = dwt2(normal([1, 1, 256, 256], &mut rng, &device), 1).unwrap();
        let v = to_vec(y);
        let n = 128 * 128;
        for (band, want) in [lo * lo, hi * lo, lo * hi, hi * hi].into_iter().enumerate() {
            let var = v[band * n..(band + 1) * n]
                .iter()
                .map(|&x| (x as f64).powi(2))
                .sum::<f64>()
                / n as f64;
            assert!(
                (var / want - 1.0).abs() < 0.05,
                "band {band}: {var} vs {want}"
            );
        }
    }

    /// Autodiff through both directions gives the adjoint: for `y = T x` with `T` = `dwt2` or
    /// `idwt2` and `L = ⟨g, y⟩`, the gradient `∂L/∂x = Tᵀ g` must satisfy `⟨Tᵀ g, δ⟩ = ⟨g, T δ⟩`
    /// for any `δ` (the dot-product test). The network trains through `idwt2`, so a wrong backward
    /// here would slow learning without breaking any forward test.
    #[test]
    fn gradients_are_the_adjoint() {
        let device = Device::flex().autodiff();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(13);
        let dot = |a: Tensor<4>, b: Tensor<4>| -> f64 {
            let (a, b) = (to_vec(a), to_vec(b));
            a.iter().zip(&b).map(|(p, q)| *p as f64 * *q as f64).sum()
        };
        for (levels, inverse, shape) in [
            (1, false, [2, 3, 8, 12]),
            (2, false, [1, 2, 16, 8]),
            (1, true, [2, 12, 4, 6]),
            (2, true, [1, 32, 4, 2]),
        ] {
            let t = |x: Tensor<4>| {
                if inverse {
                    idwt2(x, levels).unwrap()
                } else {
                    dwt2(x, levels).unwrap()
                }
            };
            let x = normal(shape, &mut rng, &device).require_grad();
            let y = t(x.clone());
            let g = normal(y.dims(), &mut rng, &device);
            let grads = (y * g.clone()).sum().backward();
            let grad = x.grad(&grads).unwrap();
            let delta = normal(shape, &mut rng, &device);
            let (lhs, rhs) = (dot(grad, delta.clone()), dot(g, t(delta)));
            assert!(
                (lhs - rhs).abs() < 1e-3 * rhs.abs().max(1.0),
                "levels {levels}, inverse {inverse}: ⟨Tᵀg, δ⟩ = {lhs}, ⟨g, Tδ⟩ = {rhs}"
            );
        }
    }

    #[test]
    fn indivisible_sizes_are_errors() {
        let device = Device::flex();
        let e = dwt2(Tensor::<4>::zeros([1, 1, 12, 10], &device), 2).unwrap_err();
        assert!(e.to_string().contains("2^2"), "{e}");
        assert!(idwt2(Tensor::<4>::zeros([1, 6, 4, 4], &device), 1).is_err());
        assert!(dwt2(Tensor::<4>::zeros([1, 1, 4, 4], &device), 0).is_err());
    }
}
