//! Tests of the feature-network metrics against `tools/golden_feature_metrics.py` (pytorch-fid,
//! numpy) and of the Inception-v3 against pytorch-fid's network (`tools/golden_inception.py`).

use serde_json::Value;

use super::*;
use crate::eval::inception::inception_input;

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

fn test_images(device: &burn::tensor::Device) -> burn::tensor::Tensor<4> {
    let data: Vec<f32> = (0..2)
        .flat_map(|k| {
            (0..32).flat_map(move |y| {
                (0..32).map(move |x| {
                    let v = 0.5
                        + 0.5 * (0.3 * x as f64 + 0.2 * (k + 1) as f64 * y as f64 + k as f64).sin();
                    (2.0 * v - 1.0) as f32
                })
            })
        })
        .collect();
    burn::tensor::Tensor::from_data(burn::tensor::TensorData::new(data, [2, 1, 32, 32]), device)
}

/// Architecture, BN folding, pooling variants and resize against pytorch-fid's network with the
/// same synthetic weights; then determinism, batch independence and the safetensors path.
#[test]
fn inception_matches_pytorch_fid_with_synthetic_weights() {
    let g = golden("inception.json");
    let u = &g["uniform_check"];
    let name = u["name"].as_str().unwrap();
    for (i, want) in floats(&u["first"]).iter().enumerate() {
        assert_eq!(synthetic_uniform(name, i as u64), *want);
    }
    let device = crate::default_device();
    let net = InceptionV3::new(&mut SyntheticWeights, &device).unwrap();
    let images = test_images(&device);
    assert_eq!(
        inception_input(images.clone()).unwrap().dims(),
        [2, 3, 299, 299]
    );
    let got = crate::tensor::to_vec(net.embed(images.clone()).unwrap());
    assert_eq!(got.len(), 2 * 2048);
    let want: Vec<f32> = g["features"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(floats)
        .collect();
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    let err = got
        .iter()
        .zip(&want)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(err < 1e-3 * scale, "max |Δ| {err} vs max |feature| {scale}");

    // Deterministic and independent of the batch it is in.
    let again = crate::tensor::to_vec(net.embed(images.clone()).unwrap());
    assert_eq!(got, again);
    let single = crate::tensor::to_vec(net.embed(images.clone().slice(1..2)).unwrap());
    let err1 = single
        .iter()
        .zip(&got[2048..])
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(err1 < 1e-5 * scale);

    // Through a safetensors file with the pytorch-fid names (what a user supplies).
    let mut tensors = std::collections::BTreeMap::new();
    struct Record<'a>(&'a mut std::collections::BTreeMap<String, crate::train::HostTensor>);
    impl WeightSource for Record<'_> {
        fn tensor(&mut self, name: &str, shape: &[usize]) -> crate::Result<Vec<f32>> {
            let data = SyntheticWeights.tensor(name, shape)?;
            self.0.insert(
                name.to_string(),
                crate::train::HostTensor {
                    shape: shape.to_vec(),
                    data: data.clone(),
                },
            );
            Ok(data)
        }
    }
    InceptionV3::new(&mut Record(&mut tensors), &device).unwrap();
    let dir = std::env::temp_dir().join(format!("prism-inception-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("pt_inception.safetensors");
    crate::train::save_checkpoint(&path, &tensors, Default::default()).unwrap();
    let loaded = load_feature_net(&path, &device).unwrap();
    assert_eq!(loaded.dim(), 2048);
    let f = extract(loaded.as_ref(), images, 1).unwrap();
    assert_eq!(f.len(), 2);
    assert!(
        f.data
            .iter()
            .zip(&got)
            .all(|(a, b)| (a - b).abs() < 1e-5 * scale)
    );

    // A file missing a tensor is named in the error.
    tensors.remove("Mixed_6b.branch7x7_2.bn.running_var");
    crate::train::save_checkpoint(&path, &tensors, Default::default()).unwrap();
    let err = load_feature_net(&path, &device).err().unwrap().to_string();
    assert!(err.contains("Mixed_6b.branch7x7_2.bn.running_var"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn classifier_round_trips_through_its_file() {
    let device = crate::default_device();
    device.seed(7);
    let cfg = ClassifierConfig {
        widths: vec![8, 16],
        feature_dim: 12,
        image_size: 16,
        ..ClassifierConfig::default()
    };
    let net = cfg.init(&device).unwrap();
    let dir = std::env::temp_dir().join(format!("prism-classifier-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("c.safetensors");
    net.save(&path, &[("test_accuracy", "0.5".into())]).unwrap();
    let back = load_feature_net(&path, &device).unwrap();
    assert_eq!(back.dim(), 12);
    let x = crate::tensor::normal(
        [3, 1, 16, 16],
        &mut crate::train::step_rng(1, 0, 0),
        &device,
    );
    let a = extract(&net, x.clone(), 2).unwrap();
    let b = extract(back.as_ref(), x, 3).unwrap();
    assert_eq!(a.len(), 3);
    assert!(
        a.data
            .iter()
            .zip(&b.data)
            .all(|(p, q)| (p - q).abs() < 1e-6)
    );
    // Wrong input size is an error, not a panic.
    let wrong = crate::tensor::normal([1, 1, 8, 8], &mut crate::train::step_rng(1, 0, 0), &device);
    assert!(back.embed(wrong).is_err());
    std::fs::remove_dir_all(&dir).ok();
}
