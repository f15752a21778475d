//! PSNR and SSIM against scikit-image (`tools/golden_paired.py`).

use super::*;
use crate::golden_data::{f32s, load};

#[test]
fn psnr_and_ssim_match_scikit_image() {
    let g = load("paired.json");
    let device = crate::default_device();
    for c in g["cases"].as_array().unwrap() {
        let s: Vec<usize> = crate::golden_data::f64s(&c["shape"])
            .into_iter()
            .map(|v| v as usize)
            .collect();
        let (a, b) = (f32s(&c["a"]), f32s(&c["b"]));
        let want_psnr = c["psnr"].as_f64().unwrap();
        let want_ssim = c["ssim"].as_f64().unwrap();
        let p = psnr(&a, &b, 1.0).unwrap();
        let q = ssim(&a, &b, [s[0], s[1], s[2]], 1.0).unwrap();
        assert!(
            (p - want_psnr).abs() < 1e-9 * want_psnr,
            "PSNR {p} vs {want_psnr}"
        );
        assert!(
            (q - want_ssim).abs() < 1e-9,
            "SSIM {q} vs {want_ssim} for {s:?}"
        );
        let shape = [1, s[0], s[1], s[2]];
        let ta = crate::golden_data::tensor4(&a, shape, &device);
        let tb = crate::golden_data::tensor4(&b, shape, &device);
        assert!((psnr_batch(ta.clone(), tb.clone()).unwrap()[0] - p).abs() < 1e-12);
        assert!((ssim_batch(ta, tb).unwrap()[0] - q).abs() < 1e-12);
    }
}

#[test]
fn paired_metrics_refuse_bad_input() {
    let device = crate::default_device();
    let img =
        |v: f32, s: usize| crate::golden_data::tensor4(&vec![v; s * s], [1, 1, s, s], &device);
    assert!(ssim(&[0.5; 100], &[0.5; 100], [1, 10, 10], 1.0).is_err());
    assert!(psnr(&[0.5; 4], &[0.5; 3], 1.0).is_err());
    assert!(psnr(&[0.5; 4], &[0.4; 4], f64::NAN).is_err());
    assert!(psnr_batch(img(0.5, 12), img(0.5, 13)).is_err());
    assert!(ssim_batch(img(1.5, 12), img(0.5, 12)).is_err());
    assert_eq!(psnr(&[0.5; 4], &[0.5; 4], 1.0).unwrap(), f64::INFINITY);
    assert!((ssim_batch(img(0.3, 12), img(0.3, 12)).unwrap()[0] - 1.0).abs() < 1e-12);
}
