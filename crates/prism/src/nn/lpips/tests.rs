//! LPIPS against the `lpips` package (`tools/golden_lpips.py`): synthetic weights always, the real
//! converted weights when `data/weights/lpips-vgg16.safetensors` is present.

use super::*;
use crate::golden_data::{assert_close, f32s, load};
use crate::tensor::to_vec;

/// The golden script's image pairs at `side`.
fn images(side: usize, device: &Device) -> (Tensor<4>, Tensor<4>) {
    let mut x0 = Vec::new();
    let mut x1 = Vec::new();
    for k in 0..2 {
        for c in 0..3 {
            for y in 0..side {
                for x in 0..side {
                    let (xf, yf, cf, kf) = (x as f64, y as f64, c as f64, k as f64);
                    let a = (0.21 * xf + 0.17 * (kf + 1.0) * yf + 0.9 * cf + kf).sin();
                    let b = (0.7 * xf - 0.5 * yf + cf + 2.0 * kf).sin();
                    x0.push(a as f32);
                    x1.push((a + 0.3 * b).clamp(-1.0, 1.0) as f32);
                }
            }
        }
    }
    let t = |v: Vec<f32>| Tensor::from_data(TensorData::new(v, [2, 3, side, side]), device);
    (t(x0), t(x1))
}

/// Architecture, scaling, normalisation, lin layers and spatial average, and the gradient with
/// respect to an input (LPIPS as a loss), against the package with the same synthetic weights.
#[test]
fn lpips_matches_the_lpips_package_with_synthetic_weights() {
    let g = &load("lpips.json")["synthetic"];
    let u = &g["uniform_check"];
    let name = u["name"].as_str().unwrap();
    for (i, want) in f32s(&u["first"]).iter().enumerate() {
        assert_eq!(synthetic_uniform(name, i as u64), *want);
    }
    let device = crate::default_device().autodiff();
    let net = Lpips::new(&mut LpipsSynthetic, &device).unwrap();
    let (x0, x1) = images(32, &device);
    let x1 = x1.require_grad();
    let d = net.distance(x0, x1.clone()).unwrap();
    assert_eq!(d.dims(), [2, 1, 1, 1]);
    for (a, b) in to_vec(d.clone()).iter().zip(f32s(&g["distances"])) {
        assert!((a - b).abs() <= 1e-4 * b, "distance {a} vs {b}");
    }
    let grads = d.sum().backward();
    let grad = to_vec(x1.grad(&grads).unwrap());
    let want_first = f32s(&g["grad_first"]);
    let scale = want_first.iter().fold(0f32, |m, v| m.max(v.abs()));
    for (a, b) in grad.iter().zip(&want_first) {
        assert!((a - b).abs() <= 2e-3 * scale, "gradient {a} vs {b}");
    }
    let abs_sum: f64 = grad.iter().map(|v| v.abs() as f64).sum();
    let want = g["grad_abs_sum"].as_f64().unwrap();
    assert!(
        (abs_sum - want).abs() <= 2e-3 * want,
        "Σ|∇| {abs_sum} vs {want}"
    );
}

#[test]
fn lpips_is_zero_on_equal_images_and_rejects_bad_shapes() {
    let device = crate::default_device();
    let net = Lpips::new(&mut LpipsSynthetic, &device).unwrap();
    let (x0, _) = images(16, &device);
    let d = to_vec(net.distance(x0.clone(), x0.clone()).unwrap());
    assert!(d.iter().all(|v| v.abs() < 1e-7), "{d:?}");
    let grey = x0.clone().narrow(1, 0, 1);
    assert!(
        net.distance(grey.clone(), grey).is_ok(),
        "grey is repeated to RGB"
    );
    let small = x0.clone().narrow(2, 0, 8).narrow(3, 0, 8);
    let e = net.distance(small.clone(), small).unwrap_err().to_string();
    assert!(e.contains("16×16"), "{e}");
    let e = net
        .distance(x0.clone(), x0.narrow(0, 0, 1))
        .unwrap_err()
        .to_string();
    assert!(e.contains("one shape"), "{e}");
    let e = Lpips::load(Path::new("no/such/lpips.safetensors"), &device)
        .unwrap_err()
        .to_string();
    assert!(e.contains("convert_lpips.py"), "{e}");
}

/// Opt-in: with the converted ImageNet weights (tools/convert_lpips.py) in
/// `data/weights/lpips-vgg16.safetensors` (from the workspace root), the distances equal the
/// package's. Skipped, with a note, when the file is absent.
#[test]
fn lpips_matches_the_lpips_package_with_real_weights() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(DEFAULT_LPIPS_PATH);
    if !path.exists() {
        eprintln!(
            "skipped: {} is absent (tools/convert_lpips.py makes it)",
            path.display()
        );
        return;
    }
    let g = &load("lpips.json")["real"];
    let device = crate::default_device();
    let net = Lpips::load(&path, &device).unwrap();
    let (x0, x1) = images(64, &device);
    let d = to_vec(net.distance(x0.clone(), x1).unwrap());
    assert_close(&d, &f32s(&g["distances"]), 1e-4, "real distances");
    let same = to_vec(net.distance(x0.clone(), x0).unwrap());
    assert!(same.iter().all(|v| v.abs() < 1e-7));
}
