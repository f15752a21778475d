//! Tests of the feature-network metrics against `tools/golden_feature_metrics.py` (pytorch-fid,
//! numpy). The networks' own tests are in `nn::feature_tests`.

use serde_json::Value;

use super::*;

fn golden(name: &str) -> Value {
    crate::golden_data::load(name)
}

fn floats(v: &Value) -> Vec<f32> {
    crate::golden_data::f32s(v)
}

fn cases() -> Vec<(Features, Features, Value)> {
    let g = golden("feature_metrics.json");
    g["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let dim = c["dim"].as_u64().unwrap() as usize;
            (
                Features::new(dim, floats(&c["real"])).unwrap(),
                Features::new(dim, floats(&c["fake"])).unwrap(),
                c.clone(),
            )
        })
        .collect()
}

#[test]
fn fid_matches_pytorch_fid() {
    for (real, fake, c) in cases() {
        let want = c["fid"].as_f64().unwrap();
        let got = fid(&real, &fake).unwrap();
        assert!(
            (got - want).abs() < 1e-6 * want.abs().max(1.0),
            "FID {got} vs pytorch-fid {want}"
        );
    }
}

#[test]
fn fid_of_a_set_with_itself_is_zero() {
    let (real, _, _) = cases().remove(1);
    assert!(fid(&real, &real).unwrap().abs() < 1e-9);
}

#[test]
fn mmd2_matches_numpy_and_kid_averages_subsets() {
    for (real, fake, c) in cases() {
        let m = c["m"].as_u64().unwrap() as usize;
        let first: Vec<usize> = (0..m).collect();
        let want = c["mmd2_first_m"].as_f64().unwrap();
        let got = mmd2_unbiased(&real.select(&first), &fake.select(&first)).unwrap();
        assert!(
            (got - want).abs() < 1e-9 * want.abs().max(1.0),
            "MMD² {got} vs {want}"
        );
    }
    // With one subset holding every image of two equal sets, KID is that MMD² with zero spread.
    let (real, fake, c) = cases().remove(0);
    let k = kid(
        &real,
        &fake,
        KidOptions {
            subsets: 1,
            subset_size: 1000,
            seed: 3,
        },
    )
    .unwrap();
    assert_eq!(k.subset_size, 64);
    assert!((k.mean - c["mmd2_first_m"].as_f64().unwrap()).abs() < 1e-9);
    assert_eq!(k.std, 0.0);
    // Subsets of 20: a spread, and a mean near the full-set value (unbiased estimator).
    let k = kid(
        &real,
        &fake,
        KidOptions {
            subsets: 200,
            subset_size: 20,
            seed: 3,
        },
    )
    .unwrap();
    assert!(k.std > 0.0);
    let full = c["mmd2_first_m"].as_f64().unwrap();
    assert!(
        (k.mean - full).abs() < 3.0 * k.std / (200f64).sqrt() + 0.05 * full.abs(),
        "subset mean {} vs full {full} (std {})",
        k.mean,
        k.std
    );
}

#[test]
fn precision_recall_match_the_reference_algorithm() {
    for (real, fake, c) in cases() {
        let pr = precision_recall(&real, &fake, 3).unwrap();
        assert_eq!(pr.precision, c["precision"].as_f64().unwrap());
        assert_eq!(pr.recall, c["recall"].as_f64().unwrap());
    }
}

#[test]
fn metrics_reject_mismatched_or_tiny_sets() {
    let a = Features::new(2, vec![0.0; 8]).unwrap();
    let b = Features::new(4, vec![0.0; 8]).unwrap();
    assert!(fid(&a, &b).is_err());
    assert!(precision_recall(&a, &Features::new(2, vec![0.0; 4]).unwrap(), 3).is_err());
    assert!(Features::new(3, vec![0.0; 8]).is_err());
}
